"""Benchmark harness and contamination audit (issue #4): reads out/<name>/train/ and corpus files."""
