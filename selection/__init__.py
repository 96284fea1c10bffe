"""Data selection: LLM grades distilled into a classifier, base-model scores (FinPythia's ETS and ETA),
and token budgets that keep the best of the domain training documents, each a training corpus."""
