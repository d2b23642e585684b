"""Benchmarks: each script prints one table of figures, as ratios against a baseline measured in the same run."""
