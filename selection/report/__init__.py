"""What `make select` shows: the console summary and `select/report.html`."""
