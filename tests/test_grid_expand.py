"""Grid expansion (axes x zip - exclude, x seeds) and stable cell ids."""

from __future__ import annotations

import hashlib
import json

import yaml

from lofw.grid import GridConfig, cell_id, expand_grid, load_grid
from lofw.grid.expand import set_path, variant_label

DESIGN_EXAMPLE = {
    "name": "star_weight_decay",
    "base": {"recipe": "star", "task": "digits_mlp", "meta_steps": 5, "horizon": 100,
             "estimator": {"name": "pes", "truncation": 50, "std": 0.01, "particles": 8}},
    "axes": {"recipe": ["star", "blackbox", "hyperparam"], "outer.weight_decay": [0.0, 0.1, 0.5, 1.0]},
    "zip": [{"estimator.truncation": [25, 50], "estimator.std": [0.02, 0.01]}],
    "exclude": [{"recipe": "blackbox", "outer.weight_decay": 1.0}],
    "seeds": [0, 1, 2, 3, 4],
}


def test_design_example_cell_count_by_hand():
    cells = expand_grid(GridConfig.model_validate(DESIGN_EXAMPLE))
    # 3 recipes x 4 decays x 2 zip rows = 24 variants, minus blackbox@1.0 (2 zip rows) = 22, x 5 seeds.
    assert len(cells) == 110
    variants = {json.dumps(c.variant, sort_keys=True) for c in cells}
    assert len(variants) == 22
    assert not any(c.overrides["recipe"] == "blackbox" and c.overrides["outer.weight_decay"] == 1.0 for c in cells)
    assert [c.index for c in cells] == list(range(110))


def test_small_grid_exact_cells_and_order():
    grid = GridConfig.model_validate({
        "name": "g",
        "base": {"recipe": "star", "outer": {"lr": 0.1}},
        "axes": {"recipe": ["star", "blackbox"], "horizon": [100, 200]},
        "zip": [{"estimator.truncation": [10, 20], "estimator.std": [0.1, 0.2]}],
        "exclude": [{"recipe": "blackbox", "horizon": 200}, {"estimator.truncation": 20, "horizon": 100}],
        "seeds": [7, 8],
    })
    got = [(c.overrides["seed"], c.overrides["recipe"], c.overrides["horizon"], c.overrides["estimator.truncation"])
           for c in expand_grid(grid)]
    # Hand-written: seeds outermost, then axes in file order (last fastest), then the zip group.
    expected = []
    for seed in (7, 8):
        expected += [(seed, "star", 100, 10), (seed, "star", 200, 10), (seed, "star", 200, 20),
                     (seed, "blackbox", 100, 10)]
    assert got == expected
    cell = expand_grid(grid)[2]
    assert cell.config == {"recipe": "star", "outer": {"lr": 0.1}, "horizon": 200,
                           "estimator": {"truncation": 20, "std": 0.2}, "seed": 7}
    assert grid.base == {"recipe": "star", "outer": {"lr": 0.1}}  # base is not mutated


def test_no_axes_is_one_cell_per_seed():
    cells = expand_grid(GridConfig.model_validate({"name": "g", "seeds": [0, 1, 2]}))
    assert [c.config for c in cells] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]


def test_set_path_nested_copy():
    base = {"outer": {"lr": 1.0}}
    out = set_path(base, "outer.weight_decay", 0.5)
    assert out == {"outer": {"lr": 1.0, "weight_decay": 0.5}}
    assert base == {"outer": {"lr": 1.0}}
    assert set_path({}, "a.b.c", [1]) == {"a": {"b": {"c": [1]}}}


def test_cell_id_is_sha256_of_canonical_json():
    obj = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}}
    text = '{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}'
    assert cell_id(obj) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert cell_id({"a": {"y": True, "z": None}, "b": [1, 2.5, "x"]}) == cell_id(obj)
    assert cell_id({**obj, "b": [1, 2.5, "y"]}) != cell_id(obj)


def _write(tmp_path, data, name="g.yaml"):
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_ids_stable_unique_and_independent_of_other_cells(tmp_path):
    small = {**DESIGN_EXAMPLE, "seeds": [0, 1]}
    first = load_grid(_write(tmp_path, small))
    again = load_grid(_write(tmp_path, small))
    assert [c.id for c in first.cells] == [c.id for c in again.cells]
    assert len({c.id for c in first.cells}) == len(first.cells)
    # Growing the grid (a seed, an axis value) keeps the ids of the cells that were there.
    bigger = {**small, "seeds": [0, 1, 2],
              "axes": {**small["axes"], "outer.weight_decay": [0.0, 0.1, 0.5, 1.0, 2.0]}}
    grown = {c.id for c in load_grid(_write(tmp_path, bigger, "h.yaml")).cells}
    assert {c.id for c in first.cells} <= grown
    # The id covers the resolved config: an equivalent spelling gives the same id.
    explicit = {**small, "base": {**small["base"], "outer": {"lr": 1e-4, "clip": 1.0}}}
    assert [c.id for c in load_grid(_write(tmp_path, explicit, "e.yaml")).cells] == [c.id for c in first.cells]
    # The evaluation default (10x the horizon) is filled in.
    assert first.cells[0].eval.horizons == [1000]


def test_zip_labels_name_variants_and_stay_out_of_the_config(tmp_path):
    grid = {"name": "labelled", "base": {"task": "digits_mlp"},
            "zip": [{"label": ["star_wd0.1", "bb"], "recipe": ["star", "blackbox"], "outer.weight_decay": [0.1, 0.0]}],
            "axes": {"horizon": [100, 200]},
            "seeds": [0]}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(grid))
    cells = load_grid(path).cells
    assert [variant_label(c.variant) for c in cells] == [
        "star_wd0.1, horizon=100", "bb, horizon=100", "star_wd0.1, horizon=200", "bb, horizon=200"]
    assert "label" not in cells[0].resolved["meta_train"]
    assert (cells[0].config.recipe, cells[0].config.outer.weight_decay) == ("star", 0.1)
    # the label is cosmetic: renaming it keeps the cell ids
    grid["zip"][0]["label"] = ["a", "b"]
    path.write_text(yaml.safe_dump(grid))
    assert [c.id for c in load_grid(path).cells] == [c.id for c in cells]


def test_inline_recipes_get_short_labels():
    assert variant_label({"recipe": {"extends": "star", "blackbox_scale": 1e-3}}) == "star+blackbox_scale"


def _committed_cells():
    """(grid name, cell id) of every cell in the reports' finished_cells.tar.xz."""
    import pathlib
    import tarfile

    reports = pathlib.Path(__file__).resolve().parent.parent / "docs" / "reports"
    found = []
    for archive in sorted(reports.glob("*/finished_cells.tar.xz")):
        with tarfile.open(archive) as tar:
            for name in tar.getnames():
                parts = name.split("/")
                if len(parts) == 4 and parts[1] == "cells" and parts[3] == "cell.json":
                    found.append((parts[0], parts[2]))
    return found


def test_committed_cells_keep_their_ids():
    # A grid resumes its committed finished cells only while their ids stay the
    # same: a field added to MetaTrainConfig at its old value must not rename
    # them (horizon_schedule once did, making 6 finished Figure-3 cells pending).
    committed = _committed_cells()
    assert {grid for grid, _ in committed} >= {"fig3_digits_h2000", "task_distribution"}
    for grid in sorted({grid for grid, _ in committed}):
        ids = {cell.id for cell in load_grid(grid).cells}
        missing = [cell for g, cell in committed if g == grid and cell not in ids]
        assert not missing, f"{grid}: committed cells no longer in the grid: {missing}"


def test_prepare_notes_cell_folders_of_no_cell(tmp_path, capsys):
    from lofw.grid.runner import prepare

    spec = {"name": "strays", "base": {"task": "digits_mlp", "horizon": 20, "meta_steps": 2,
                                       "estimator": {"truncation": 10}}, "seeds": [0, 1]}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_grid(tmp_path / "g.yaml")
    out = tmp_path / "out"
    prepare(loaded, out)
    assert "note:" not in capsys.readouterr().err
    (out / "cells" / "0123456789ab").mkdir()   # e.g. a cell of an older id
    prepare(loaded, out)
    err = capsys.readouterr().err
    assert "note: 1 folder(s) in" in err and "kept and not used: 0123456789ab" in err
    assert (out / "cells" / "0123456789ab").is_dir() and all((out / "cells" / c.id).is_dir() for c in loaded.cells)


def test_pretrained_cards_name_cells_of_their_grids():
    # a card's `regenerate` re-runs its grid and exports its cell: that cell must still exist
    import pathlib

    cards = sorted((pathlib.Path(__file__).resolve().parent.parent / "plugins" / "pretrained").glob("*/card.json"))
    assert len(cards) >= 5
    for path in cards:
        card = json.loads(path.read_text())
        ids = {cell.id for cell in load_grid(card["grid"]["name"]).cells}
        assert card["cell"]["id"] in ids, f"{path}: cell {card['cell']['id']} is not in grid {card['grid']['name']}"
        assert f"--cell {card['cell']['id']}" in card["regenerate"]
