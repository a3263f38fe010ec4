"""How far apart two sets of stems are, on their embeddings: FAD, KD and PRDC."""
