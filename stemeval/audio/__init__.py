"""A stem's audio: decoded once, trimmed of silence, resampled, deformed on request."""
