"""Aggregation: cell statistics of protocol tables in DuckDB, and the release's protection problem.

One door per job: `build_table_cells` (one table), `build_release_cells` (every table of an audience),
`insider_contributions` (what the largest contributors know of their own) and `build_problem`.
"""

from .cells import AuxRelation, TableCells, build_release_cells, build_table_cells
from .problem import InconsistentCells, build_problem, insider_contributions
from .query import AggregationError

__all__ = [
    "AggregationError",
    "AuxRelation",
    "InconsistentCells",
    "TableCells",
    "build_problem",
    "build_release_cells",
    "build_table_cells",
    "insider_contributions",
]
