"""What the stages share, and nothing else: the recipe (loading, `extends`, errors), the run layout
(every `out/<name>/` path), the benchmark item schema, and the contamination index.

`curation`, `training` and `evaluation` import this package and never each other; they exchange
data only through the files the layout names."""
