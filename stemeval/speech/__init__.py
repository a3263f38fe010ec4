"""The speech gate: Essentia's VGGish genre classifier (class 7 is speech), run in PyTorch or
TensorFlow, and the VGGish embeddings it can give."""
