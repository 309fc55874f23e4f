"""The sample generator's parts; `sample_data/generate.py` is the door."""
