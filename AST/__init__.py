"""The Audio Spectrogram Transformer: model code, AudioSet labels and the model files' home."""
