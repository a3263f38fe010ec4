"""Analyses across runs and files: the leaderboard, tagger-or-map, probes on embeddings."""
