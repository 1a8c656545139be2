"""Collapsed meta-trainings: each cell paired with its hyperparam control, counted by hand."""

from __future__ import annotations

import numpy as np

from lofw.grid.collapse import collapse_section, control_pairs, tied_paths
from lofw.grid.expand import LABEL_KEY
from lofw.grid.results import CellData

#: The grid's zip: recipe and weight decay vary together (labelled, as in fig3_digits_h2000).
LABELLED = {"zip": [{LABEL_KEY: ["star", "hyperparam"], "recipe": ["star", "hyperparam"],
                     "outer.weight_decay": [0.5, 0.1]}], "axes": {"outer.lr": [1e-4, 3e-3]}}
#: The same without labels (as in fig3_fmnist).
UNLABELLED = {"zip": [{"recipe": ["star", "hyperparam"], "outer.weight_decay": [0.5, 0.1]}],
              "axes": {"outer.lr": [1e-4, 3e-3]}}


def _cell(label: str, recipe: str, decay: float, lr: float, seed: int, losses, status: str = "done",
          labelled: bool = True) -> CellData:
    overrides = {"outer.lr": lr, "recipe": recipe, "outer.weight_decay": decay, "seed": seed}
    if labelled:
        overrides[LABEL_KEY] = [[label, ["recipe", "outer.weight_decay"]]]
    loss = np.asarray(losses, dtype=np.float64)
    return CellData(id=f"{label}-{lr}-{seed}-{decay}", variant=f"{label}, outer.lr={lr}", task="digits_mlp",
                    seed=seed, horizon=20, status=status, meta_steps=np.arange(1, loss.size + 1), meta_loss=loss,
                    curves={}, diverged={}, overrides=overrides, recipe=recipe)


RAMP = np.linspace(2.0, 1.0, 18).tolist()   # 20 meta-steps each: the final meta-loss is the mean of the last 2


def _grid(labelled: bool = True):
    def cell(*args, **kw):
        return _cell(*args, labelled=labelled, **kw)

    return [
        cell("hyperparam", "hyperparam", 0.1, 1e-4, 0, RAMP + [0.5, 0.7]),      # control final 0.6
        cell("hyperparam", "hyperparam", 0.1, 1e-4, 1, RAMP + [0.2, 0.2]),      # control final 0.2
        cell("hyperparam", "hyperparam", 0.1, 3e-3, 0, RAMP + [0.9, 0.9]),      # control final 0.9
        cell("star", "star", 0.5, 1e-4, 0, RAMP + [0.55, 0.66]),                # 0.605 > 0.6: collapsed
        cell("star", "star", 0.5, 1e-4, 1, RAMP + [0.1, 0.3]),                  # 0.2, not above 0.2: not
        cell("star", "star", 0.5, 3e-3, 0, RAMP + [0.1, np.nan]),               # not finite: collapsed
        cell("star", "star", 0.5, 3e-3, 1, RAMP + [9.0, 9.0]),                  # no control for lr 3e-3 seed 1
        cell("star", "star", 0.5, 1e-4, 2, RAMP + [9.0, 9.0]),                  # no control for seed 2
        cell("star", "star", 0.5, 1e-4, 0, RAMP + [3.0, 3.0], status="running"),  # unfinished: not counted
    ]


def test_the_recipe_and_what_is_zipped_with_it_are_tied():
    assert tied_paths(LABELLED) == tied_paths(UNLABELLED) == {"recipe", "outer.weight_decay"}
    assert tied_paths({"axes": {"recipe": ["star", "hyperparam"]}}) == {"recipe"}


def test_each_cell_is_paired_with_the_control_of_its_seed_and_outer_lr():
    for grid, labelled in ((LABELLED, True), (UNLABELLED, False)):
        pairs, skipped = control_pairs(_grid(labelled), tied_paths(grid))
        assert sorted(pairs) == ["star, outer.lr=0.0001", "star, outer.lr=0.003"] and skipped == 2
        got = {(c.variant, c.seed): (final, control) for group in pairs.values() for c, final, control in group}
        assert set(got) == {("star, outer.lr=0.0001", 0), ("star, outer.lr=0.0001", 1), ("star, outer.lr=0.003", 0)}
        assert got[("star, outer.lr=0.0001", 0)] == (np.mean([0.55, 0.66]), np.mean([0.5, 0.7]))
        assert got[("star, outer.lr=0.0001", 1)] == (np.mean([0.1, 0.3]), 0.2)
        final, control = got[("star, outer.lr=0.003", 0)]
        assert np.isnan(final) and control == 0.9


def test_the_section_counts_collapses_per_variant():
    md = "\n".join(collapse_section(UNLABELLED, _grid(labelled=False)))
    assert md.startswith("## Collapsed meta-trainings")
    assert "| star, outer.lr=0.0001 | **1/2** | 0.605 (seed 0), 0.2 (seed 1) | 0.6, 0.2 |" in md
    assert "| star, outer.lr=0.003 | **1/1** | nan (seed 0) | 0.9 |" in md
    assert "2 finished cell(s) not compared" in md


def test_several_or_non_finite_controls_compare_nothing():
    star = _cell("star", "star", 0.5, 1e-4, 0, RAMP + [0.1, 0.1])
    twice = [_cell("hyperparam", "hyperparam", d, 1e-4, 0, RAMP + [0.5, 0.5]) for d in (0.1, 0.2)]
    assert control_pairs([star, *twice], {"recipe", "outer.weight_decay"}) == ({}, 1)
    broken = _cell("hyperparam", "hyperparam", 0.1, 1e-4, 0, RAMP + [np.nan, 0.5])
    assert control_pairs([star, broken], {"recipe", "outer.weight_decay"}) == ({}, 1)


def test_no_section_without_a_finished_control():
    cells = [c for c in _grid() if c.recipe != "hyperparam"]
    assert control_pairs(cells, tied_paths(LABELLED))[0] == {} and collapse_section(LABELLED, cells) == []


def test_only_ended_meta_trainings_have_a_final_meta_loss():
    from lofw.grid.results import meta_training_ended
    from lofw.grid.tables import final_meta_losses

    running = _cell("star", "star", 0.5, 1e-4, 0, RAMP + [3.0, 3.0], status="running")
    assert not meta_training_ended(running) and final_meta_losses([running]) == []
    running.planned_meta_steps = 21          # one meta-step to go
    assert not meta_training_ended(running)
    running.planned_meta_steps = 20          # trained to the end, its evaluation still to come
    assert meta_training_ended(running) and final_meta_losses([running]) == [3.0]
    control = _cell("hyperparam", "hyperparam", 0.1, 1e-4, 0, RAMP + [0.5, 0.7])
    pairs, _ = control_pairs([running, control], tied_paths(LABELLED))
    assert [(c.seed, final, ctrl) for c, final, ctrl in pairs["star, outer.lr=0.0001"]] == [(0, 3.0, 0.6)]
