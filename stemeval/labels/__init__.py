"""AudioSet's labels and the published pick of a stem's label from a tagger's scores."""
