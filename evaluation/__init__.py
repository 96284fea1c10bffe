"""Benchmark harness and contamination audit (issue #4). So far: task files (`tasks`), log-likelihood
multiple-choice scoring (`scoring`) and bootstrap intervals (`intervals`); `make eval`/`make audit`
come next. Reads models from `out/<name>/train/hf/` and corpora from files, never other packages."""
