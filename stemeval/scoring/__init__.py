"""Scores of a results file: the metrics, defined once; intervals and tests over tracks; the
published rows."""
