"""IMVO aggregator: sealed submissions in, protected sector-level tables out."""

__version__ = "0.1.0"
