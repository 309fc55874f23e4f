"""A covenant's confidentiality protocol: which tables exist, for whom, and under which disclosure rules.

The protocol is a TOML file (format in docs/protocols.md). `load_protocol` (loader.py) validates every key
against the covenant's templates and returns the frozen dataclasses of model.py; every mistake is a ConfigError
that names the file and the dotted key, e.g. "protocols/textile.toml: tables[2].measure.column: 'weight' is not
a column of template materials".
"""

from pathlib import Path

from aggregator.protocol.labels import TOTAL_LABEL, code_label, dimension_label
from aggregator.protocol.loader import ColumnLookup, load_protocol, protocol_from_data, template_columns
from aggregator.protocol.m49 import m49_hierarchy
from aggregator.protocol.model import (
    TOTAL_CODE,
    UNKNOWN_CODE,
    Audience,
    Column,
    Covenant,
    Dimension,
    Disclosure,
    Filter,
    Hierarchy,
    LogicalRelation,
    Measure,
    Operand,
    Protocol,
    TableSpec,
    Text,
    other_code,
)

# The sample covenants' protocols (the repository's protocols/, shipped in the package): starting points.
SAMPLE_PROTOCOLS = Path(__file__).resolve().parent / "samples"

__all__ = [
    "SAMPLE_PROTOCOLS",
    "TOTAL_CODE",
    "TOTAL_LABEL",
    "UNKNOWN_CODE",
    "Audience",
    "Column",
    "ColumnLookup",
    "Covenant",
    "Dimension",
    "Disclosure",
    "Filter",
    "Hierarchy",
    "LogicalRelation",
    "Measure",
    "Operand",
    "Protocol",
    "TableSpec",
    "Text",
    "code_label",
    "dimension_label",
    "load_protocol",
    "m49_hierarchy",
    "other_code",
    "protocol_from_data",
    "template_columns",
]
