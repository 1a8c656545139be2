"""Which cells of a grid meta-train together, as one population.

``lofw ablate GRID --population N`` groups the cells to run into populations
of at most ``N`` cells whose configs differ only in the fields a population
member may change (:data:`lofw.meta.population.MEMBER_FIELDS`: the meta-seed,
the outer learning rate and weight decay); each group is meta-trained as one
vmapped program (:func:`lofw.grid.runner.run_population`), each cell keeping
its folder, files, lock and resume. Cells that share a program with no other
cell (another recipe, task, horizon or estimator; a mixture task) run alone,
as without the option. Groups keep the grid's order: a group is formed where
its first cell comes.

``N`` bounds memory: a population holds ``N`` copies of the estimator state
(the particles' inner parameters and optimizer states) and computes ``N``
meta-steps at once.
"""

from __future__ import annotations

from lofw.grid.validate import Cell
from lofw.meta.population import can_join, population_key
from lofw.registry import Registry

#: ``--population`` when it is not given: every cell alone (the numbers of a
#: run alone; a population's agree with them to float rounding only).
DEFAULT_POPULATION = 1


def plan_populations(cells: list[Cell], size: int, registry: Registry) -> list[list[Cell]]:
    """``cells`` in groups of at most ``size`` that can share a program (module docstring)."""
    if size < 1:
        raise ValueError(f"population size must be at least 1, got {size}")
    groups: list[list[Cell]] = []
    open_groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = population_key(cell.config) if size > 1 and can_join(cell.config, registry) else None
        group = open_groups.get(key) if key is not None else None
        if group is None or len(group) >= size:
            group = [cell]
            groups.append(group)
            if key is not None:
                open_groups[key] = group
        else:
            group.append(cell)
    return groups
