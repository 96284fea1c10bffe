"""Benchmark harness (`python -m evaluation eval RECIPE`) and, next, the contamination audit.

Reads models from `out/<name>/train/hf/` (or any HF folder or hub id) and corpora from files."""
