"""Import Essentia once, quietly: TensorFlow's and Essentia's start-up logs are noise here."""

import functools
import os


@functools.lru_cache(maxsize=None)
def essentia_standard():
    """``essentia.standard``, with TensorFlow's C++ logging and Essentia's warnings off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import essentia
    import essentia.standard

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    return essentia.standard
