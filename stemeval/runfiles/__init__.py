"""Everything a run writes and reads back: the output guard, the results CSV, the provenance
sidecar, the embeddings, the kept scores, and the one life cycle of a run's files."""
