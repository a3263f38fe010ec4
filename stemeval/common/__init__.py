"""What every layer shares: one-line errors, files written whole, TOML files, a quiet Essentia import."""
