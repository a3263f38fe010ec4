"""Weights that their authors release as one PyTorch file at a URL (PANNs, PaSST).

The default file is ``torch.hub.get_dir()/checkpoints/<released name>``, where torch.hub's
own downloads put it, so a researcher's existing cache is reused. A missing default is
downloaded there and checked before it is kept; an explicit path is never downloaded.

Reading is strict and safe: ``torch.load(weights_only=True)`` refuses a pickle that holds
Python objects (unpickling them could run code), and every tensor the network has must be
in the file with its shape, and nothing else.
"""

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from AST.ast_model import CheckpointError, check_shapes
from AST.models.download import DownloadError, Unreachable, download
from stemeval.errors import UserError, one_line


@dataclass(frozen=True)
class Source:
    """Where a released weights file comes from, for messages and the model-file registry."""

    title: str  # what the file is, e.g. "PANNs CNN14 weights"
    url: str
    file_name: str  # the released name, also the default file's name
    size: str  # approximate, for people deciding whether to fetch it
    licence: str

    def default_path(self):
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name


def read_tensors(path, key=None):
    """The state dict in ``path`` (under ``key`` when the file wraps it in a dict).

    Raises CheckpointError with a one-line reason.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a cut or foreign file
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise CheckpointError(f"it holds pickled Python objects ({found.group(1)}), which "
                                  f"are refused because loading them could run code") from None
        reason = ("an unreadable pickle" if isinstance(error, pickle.UnpicklingError)
                  else one_line(error))
        raise CheckpointError(f"not a complete PyTorch weights file, truncated or of another "
                              f"kind ({reason})") from None
    if key is not None:
        if not isinstance(loaded, dict) or key not in loaded:
            raise CheckpointError(f"no {key!r} entry holding the state dict")
        loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(
            isinstance(name, str) and isinstance(value, torch.Tensor)
            for name, value in loaded.items()):
        raise CheckpointError("not a state dict of tensors")
    return loaded


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


def check_classes(count, expected=527):
    """CheckpointError unless the head scores AudioSet's ``expected`` classes."""
    if count != expected:
        raise CheckpointError(f"it scores {count} classes where AudioSet has {expected}")


def load_checked(source, checkpoint, check):
    """``(check(path), path)`` for ``checkpoint`` (None: the default file, fetched if missing).

    ``check(path)`` builds the network or raises CheckpointError; any problem is a UserError.
    """
    path = source.default_path() if checkpoint is None else Path(checkpoint)
    if checkpoint is None and not path.exists():
        _fetch(source, path, check)
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


def _fetch(source, path, check):
    try:
        download(source.url, path, check)
    except Unreachable as error:
        raise UserError(missing_message(source, path, error)) from None
    except DownloadError as error:
        raise UserError(f"{source.title} download failed: {error}; run again to retry") from None
    except CheckpointError as error:
        raise UserError(f"the file downloaded from {source.url} is not usable "
                        f"{source.title} ({error}); it was removed") from None
