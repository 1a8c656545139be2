"""Ablation grids: a YAML file of axes over one base meta-training config,
expanded into cells with stable ids, run resumably, and reported.

Public API: :class:`GridConfig`, :func:`expand_grid`, :func:`load_grid`,
:func:`run_grid`, :func:`write_report`.
"""

from lofw.grid.config import EvalConfig, GridConfig
from lofw.grid.expand import CellSpec, cell_id, expand_grid
from lofw.grid.report import write_report
from lofw.grid.runner import GridOutcome, run_cell, run_grid
from lofw.grid.validate import Cell, LoadedGrid, load_grid

__all__ = [
    "Cell", "CellSpec", "EvalConfig", "GridConfig", "GridOutcome", "LoadedGrid",
    "cell_id", "expand_grid", "load_grid", "run_cell", "run_grid", "write_report",
]
