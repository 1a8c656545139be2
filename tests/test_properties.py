"""Property-based tests (hypothesis): mutated run configs and grids, random bytes, aliases and deep
nesting either pass validation or are refused with exit status 2 and a message naming the file, never a
traceback.

Each mutation starts from a valid file (the quickstart's run config, the quickstart grid) and
deletes a key, or replaces a value with a value of another type, an extreme or non-finite number,
a deep structure or text. A valid meta-train config is validated completely (every name and
component argument, as `lofw meta-train` does before it writes anything) and not run; a valid grid
is listed (`--dry-run`) and each of its cells validated as `lofw ablate` does before it runs them.
The examples are derandomised, so CI tries the same ones every time.
"""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import lofw
from lofw.cli.main import main as cli
from lofw.grid.validate import load_grid
from lofw.meta.training import check_run_config

EXAMPLES = 300
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

RUN = {"recipe": "star", "task": "digits_mlp", "meta_steps": 30, "horizon": 20, "seed": 0, "checkpoint_every": 10,
       "estimator": {"name": "pes", "truncation": 10, "std": 0.01, "particles": 8},
       "outer": {"lr": 3.0e-3, "weight_decay": 0.1, "clip": 1.0}}
GRID = {"name": "q", "base": {**RUN, "meta_steps": 1500},
        "zip": [{"label": ["star_wd0.1", "blackbox"], "recipe": ["star", "blackbox"],
                 "outer.weight_decay": [0.1, 0.0]}],
        "seeds": [0, 1], "eval": {"horizons": [200], "seeds": 4, "baselines": ["adam@horizon", "adam"]}}

numbers = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 1e308, -0.0, 1e-320, math.inf, -math.inf, math.nan]))
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12),
                   st.sampled_from(["star", "pes", "digits_mlp", "adam", "nosuch", "", "1e-3", ".inf"]))
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def _paths(data, prefix=()):
    """Every key path of a nested mapping (list items included)."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


@st.composite
def mutated(draw, valid):
    """``valid`` with a few of its values deleted or replaced, or a key added."""
    data = yaml.safe_load(yaml.safe_dump(valid))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return data


def _refused_in_one_line_or_accepted(argv, path) -> int:
    """Run the command; a refusal is exit 2 with one error line naming ``path`` (a message listing
    several errors of one file gives each its own line, each naming the file), never a traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli(argv)
        except SystemExit as e:  # argparse
            status = e.code
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert status in (0, 2), (status, text)
    if status == 2:
        first, *more = text.strip().splitlines()
        assert first.startswith(f"lofw {argv[0]}: error: ") and str(path) in first, text
        assert all(line.startswith(str(path)) for line in more), text
    return status


class _Valid(Exception):
    """What the stubbed meta_train raises: the config passed every check."""


@pytest.fixture
def no_meta_training(monkeypatch):
    def stub(*args, **kwargs):
        raise _Valid
    monkeypatch.setattr("lofw.cli.meta_train.meta_train", stub)


@PROPERTY
@given(config=mutated(RUN))
def test_a_mutated_run_config_is_accepted_or_refused_in_one_line(config, tmp_path_factory, no_meta_training):
    folder = tmp_path_factory.mktemp("run")
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        _refused_in_one_line_or_accepted(["meta-train", "--config", str(path), "--out", str(folder / "out"),
                                          "--no-compile-cache", "--no-progress"], path)
    except _Valid:
        pass
    assert not (folder / "out").exists()


@PROPERTY
@given(grid=mutated(GRID))
def test_a_mutated_grid_is_accepted_or_refused_in_one_line(grid, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    path = folder / "g.yaml"
    path.write_text(yaml.safe_dump(grid))
    if _refused_in_one_line_or_accepted(["ablate", str(path), "--dry-run", "--out", str(folder / "out")], path) == 0:
        for cell in load_grid(path).cells:  # what `lofw ablate` checks next, before it runs a cell
            with contextlib.suppress(lofw.ConfigError):
                check_run_config(cell.config)
    assert not (folder / "out").exists()


@st.composite
def damaged_text(draw):
    """The quickstart grid's text with random bytes, an alias bomb or deep nesting spliced in."""
    text = yaml.safe_dump(GRID).encode()
    at = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["bytes", "aliases", "nesting"]))
    if kind == "bytes":
        insert = draw(st.binary(min_size=1, max_size=16))
    elif kind == "aliases":
        n = draw(st.integers(2, 12))
        insert = ("\nx0: &x0 [a, a, a, a, a, a, a, a]\n" + "".join(
            f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 8) + "]\n" for i in range(1, n))).encode()
    else:
        depth = draw(st.integers(10, 3000))
        insert = b"\ndeep: " + b"[" * depth + b"]" * depth + b"\n"
    return text[:at] + insert + text[at:]


@PROPERTY
@given(data=damaged_text())
def test_damaged_grid_text_is_accepted_or_refused_in_one_line(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / "g.yaml"
    path.write_bytes(data)
    _refused_in_one_line_or_accepted(["ablate", str(path), "--dry-run", "--out", str(folder / "out")], path)
    assert not (folder / "out").exists()
