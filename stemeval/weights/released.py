"""Weights that their authors release as one PyTorch file at a URL (PANNs, PaSST).

The default file is ``torch.hub.get_dir()/checkpoints/<released name>``, where torch.hub's
own downloads put it, so a researcher's existing cache is reused. A missing default is
downloaded there and checked before it is kept; an explicit path is never downloaded.

Reading is strict and safe: through ``safe_load`` (no pickled Python objects), and every
tensor the network has must be in the file with its shape, and nothing else.
"""

import pickle
from pathlib import Path

import torch

from stemeval.common.errors import UserError, one_line
from stemeval.weights.checks import CheckpointError, check_shapes
from stemeval.weights.download import DownloadError, Unreachable, download
from stemeval.weights.safe_load import NotWeights, PickledObjects, load_tensors, state_dict_of
from stemeval.weights.sources import unsupported_address


def read_tensors(path, key=None):
    """The state dict in ``path`` (under ``key`` when the file wraps it in a dict).

    Raises CheckpointError with a one-line reason.
    """
    try:
        loaded = load_tensors(path)
    except PickledObjects as error:
        raise CheckpointError(f"it holds pickled Python objects ({error.name or 'unnamed'}), "
                              f"which are refused because loading them could run code") from None
    except NotWeights as error:
        reason = ("an unreadable pickle" if isinstance(error.error, pickle.UnpicklingError)
                  else one_line(error.error))
        raise CheckpointError(f"not a complete PyTorch weights file, truncated or of another "
                              f"kind ({reason})") from None
    return state_dict_of(loaded, key)


def build(make, state, ignored=None):
    """``make()``'s network in eval mode holding exactly the tensors of ``state`` (float32).

    ``ignored``: name -> shape of tensors the file must hold too, then drops. The network is
    built on the meta device, so no weights are initialised only to be overwritten.
    """
    with torch.device("meta"):
        model = make()
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    check_shapes(state, {**expected, **(ignored or {})})
    model.load_state_dict({name: state[name].float() if state[name].is_floating_point()
                           else state[name] for name in expected}, assign=True)
    return model.eval()


def load_checked(source, checkpoint, check):
    """``(check(path), path)`` for ``checkpoint`` (None: the default file of the ``Released``
    ``source``, fetched if missing).

    ``check(path)`` builds the network or raises CheckpointError; any problem is a UserError.
    """
    unsupported = unsupported_address(checkpoint, "--checkpoint", "a local path") \
        if checkpoint is not None else None
    if unsupported:
        raise UserError(unsupported)
    path = source.default_path() if checkpoint is None else Path(checkpoint)
    if checkpoint is None and not path.exists():
        fetch(source, path, check)
    if not path.exists():
        raise UserError(f"{source.title} {path} do not exist")
    try:
        return check(path), path
    except CheckpointError as error:
        hint = (f"; delete it to download {source.file_name} again"
                if checkpoint is None else "")
        raise UserError(f"{source.title} {path} are not usable: {error}{hint}") from None


def missing_message(source, path, why):
    """One line: the default file is missing and cannot be downloaded; how to get it."""
    return (f"{source.title} missing: {path.name} is not in {path.parent} and cannot be "
            f"downloaded ({why}); on a machine that is online download {source.url} "
            f"({source.size}) and copy it there, or pass --checkpoint PATH")


def fetch(source, path, check):
    """Download the released file to ``path``, kept only once ``check`` accepts it."""
    try:
        return download(source.url, path, check)
    except Unreachable as error:
        raise UserError(missing_message(source, path, error)) from None
    except DownloadError as error:
        raise UserError(f"{source.title} download failed: {error}; run again to retry") from None
    except CheckpointError as error:
        raise UserError(f"the file downloaded from {source.url} is not usable "
                        f"{source.title} ({error}); it was removed") from None
