"""dacp corpus engine: documents in, a deduplicated, classified, tokenized corpus out (on datatrove)."""
