"""Aggregation: cell statistics of protocol tables in DuckDB, and the release's protection problem.

One door per job: `build_table_cells` (one table), `build_release_cells` (every table of an audience),
`build_problem` (the release as one protection problem) with `with_insiders` (what the largest contributors
know of their own), and `release_contributions` (every contributor's own share of every cell).
"""

from .cells import AuxRelation, TableCells, build_release_cells, build_table_cells
from .contributions import insiders_of, release_contributions
from .problem import InconsistentCells, build_problem, key_index, with_insiders
from .query import AggregationError

__all__ = [
    "AggregationError",
    "AuxRelation",
    "InconsistentCells",
    "TableCells",
    "build_problem",
    "build_release_cells",
    "build_table_cells",
    "insiders_of",
    "key_index",
    "release_contributions",
    "with_insiders",
]
