"""Collapsed meta-trainings: each cell paired with its hyperparam control, counted by hand."""

from __future__ import annotations

import numpy as np

from lofw.grid.collapse import collapse_section, collapses
from lofw.grid.results import CellData

LABEL = "label"


def _cell(label: str, recipe: str, decay: float, lr: float, seed: int, losses, status: str = "done") -> CellData:
    overrides = {"outer.lr": lr, "recipe": recipe, "outer.weight_decay": decay, "seed": seed,
                 LABEL: [[label, ["recipe", "outer.weight_decay"]]]}
    loss = np.asarray(losses, dtype=np.float64)
    return CellData(id=f"{label}-{lr}-{seed}", variant=f"{label}, outer.lr={lr}", task="digits_mlp", seed=seed,
                    horizon=20, status=status, meta_steps=np.arange(1, loss.size + 1), meta_loss=loss,
                    curves={}, diverged={}, overrides=overrides, recipe=recipe)


def _grid():
    # 20 meta-steps each: the final meta-loss is the mean of the last 2
    ramp = np.linspace(2.0, 1.0, 18).tolist()
    return [
        _cell("hyperparam", "hyperparam", 0.1, 1e-4, 0, ramp + [0.5, 0.7]),      # control final 0.6
        _cell("hyperparam", "hyperparam", 0.1, 1e-4, 1, ramp + [0.2, 0.2]),      # control final 0.2
        _cell("hyperparam", "hyperparam", 0.1, 3e-3, 0, ramp + [0.9, 0.9]),      # control final 0.9
        _cell("star", "star", 0.5, 1e-4, 0, ramp + [0.55, 0.66]),                # 0.605 > 0.6: collapsed
        _cell("star", "star", 0.5, 1e-4, 1, ramp + [0.1, 0.3]),                  # 0.2, not above 0.2: not
        _cell("star", "star", 0.5, 3e-3, 0, ramp + [0.1, np.nan]),               # not finite: collapsed
        _cell("star", "star", 0.5, 3e-3, 1, ramp + [9.0, 9.0]),                  # no control for lr 3e-3 seed 1
        _cell("star", "star", 0.5, 1e-4, 2, ramp + [9.0, 9.0]),                  # no control for seed 2
        _cell("star_stable", "star_stable", 0.5, 1e-4, 0, ramp + [3.0, 3.0], status="running"),  # unfinished
    ]


def test_each_cell_is_paired_with_the_control_of_its_seed_and_outer_lr():
    pairs = collapses(_grid())
    assert sorted(pairs) == ["star, outer.lr=0.0001", "star, outer.lr=0.003"]   # star_stable is running
    got = {(c.variant, c.seed): (final, control) for group in pairs.values() for c, final, control in group}
    assert set(got) == {("star, outer.lr=0.0001", 0), ("star, outer.lr=0.0001", 1), ("star, outer.lr=0.003", 0)}
    assert got[("star, outer.lr=0.0001", 0)] == (np.mean([0.55, 0.66]), np.mean([0.5, 0.7]))
    assert got[("star, outer.lr=0.0001", 1)] == (np.mean([0.1, 0.3]), 0.2)
    final, control = got[("star, outer.lr=0.003", 0)]
    assert np.isnan(final) and control == 0.9


def test_the_section_counts_collapses_per_variant():
    md = "\n".join(collapse_section(_grid()))
    assert md.startswith("## Collapsed meta-trainings")
    assert "| star, outer.lr=0.0001 | **1/2** | 0.605 (seed 0), 0.2 (seed 1) | 0.6, 0.2 |" in md
    assert "| star, outer.lr=0.003 | **1/1** | nan (seed 0) | 0.9 |" in md
    assert "star_stable" not in md


def test_no_section_without_a_finished_control():
    cells = [c for c in _grid() if c.recipe != "hyperparam"]
    assert collapses(cells) == {} and collapse_section(cells) == []
