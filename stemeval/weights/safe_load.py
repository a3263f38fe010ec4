"""Reading a PyTorch weights file without running code: ``torch.load(weights_only=True)``.

A file whose pickle names Python objects is refused (unpickling them could run code), and
torch's advice to load it with ``weights_only=False`` is never passed on: a tool must not
give that advice about a file it did not make. Every tagger's loader reads through here;
each words the refusal for its own files.
"""

import pickle
import pickletools
import re
import warnings

from stemeval.weights.checks import CheckpointError

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch.


class PickledObjects(CheckpointError):
    """The file's pickle names Python objects; ``name`` is the first, when torch says it."""

    def __init__(self, name=None):
        super().__init__(f"it holds pickled Python objects ({name or 'unnamed'})")
        self.name = name


class NotWeights(CheckpointError):
    """torch cannot read the file as tensors: cut short, or a file of another kind.

    ``error`` is torch's exception; ``refused`` says the weights-only reader refused the
    pickle (rather than failing to read the file at all).
    """

    def __init__(self, error, refused=False):
        super().__init__(str(error))
        self.error = error
        self.refused = refused


def load_tensors(path):
    """What ``torch.load(path, weights_only=True)`` reads; PickledObjects or NotWeights."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of old files
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a cut or foreign file
        message = str(error)
        named = re.search(r"Unsupported global: GLOBAL (\S+)", message)
        if named:
            raise PickledObjects(named.group(1)) from None
        refused = (isinstance(error, pickle.UnpicklingError)
                   and message.startswith("Weights only load failed"))
        if refused and ("global" in message.lower() or _names_objects(path)):
            raise PickledObjects() from None
        raise NotWeights(error, refused) from None


def state_dict_of(loaded, key=None):
    """The ``{name: tensor}`` dict in what ``load_tensors`` read (under ``key`` when the file
    wraps it in a dict), else CheckpointError."""
    import torch

    if key is not None:
        if not isinstance(loaded, dict) or key not in loaded:
            raise CheckpointError(f"no {key!r} entry holding the state dict")
        loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(
            isinstance(name, str) and isinstance(value, torch.Tensor)
            for name, value in loaded.items()):
        raise CheckpointError("not a state dict of tensors")
    return loaded


def _names_objects(path):
    """Whether the file is a pickle that names Python callables (read without running it)."""
    try:
        with open(path, "rb") as handle:
            return any(opcode.name in ("GLOBAL", "STACK_GLOBAL", "INST")
                       for opcode, _, _ in pickletools.genops(handle))
    except Exception:  # not a pickle: pickletools raises what its byte reader meets
        return False
