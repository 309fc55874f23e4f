"""Seeded sample data for the demo, the tests and the benchmarks; see `sample_data/generate.py`."""
