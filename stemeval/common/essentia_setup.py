"""Import Essentia once, quietly: TensorFlow's and Essentia's start-up logs are noise here."""

import functools
import os

# Imported inside the functions that use them, so that what needs none of them starts without them:
# essentia.


@functools.lru_cache(maxsize=None)
def essentia_standard():
    """``essentia.standard``, with TensorFlow's C++ logging and Essentia's warnings off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import essentia

    essentia.log.infoActive = False  # before essentia.standard, which logs as it loads
    essentia.log.warningActive = False
    import essentia.standard

    return essentia.standard
