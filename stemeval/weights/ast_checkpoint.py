"""Find, fetch and load the AST weights a run asks for (``--checkpoint SPEC``).

SPEC is a path to an authors' ``.pth`` or a Hugging Face folder, ``hf:<repo id>``, or an
``http(s)://`` URL of an authors' ``.pth``. Without SPEC the default file is used; when it is
missing, the published model is fetched from the hub and saved there in the authors' format.
"""

from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from AST.ast_model import CheckpointError
from AST.models import messages
from AST.models.checks import load_checked
from AST.models.convert import save_hf_as_original
from AST.models.download import DownloadError, Unreachable, download
from AST.models.hub import hub_snapshot
from AST.models.sources import (AST_HUB_ID, AUTHORS_CHECKPOINT_NAME, FETCH_COMMAND,
                                hub_cache_dir)
from stemeval.errors import UserError

HUB_PREFIX = "hf:"
URL_PREFIXES = ("http://", "https://")


def load_ast(spec, default):
    """``(checked ASTModel, its local path)`` for ``spec`` (None: the ``default`` file)."""
    path = resolve_checkpoint(spec, default)
    hint = (f"; delete it and run \"{FETCH_COMMAND} checkpoint\""
            if spec is None and path.parent == default.parent else "")
    return load_local(path, hint), path


def resolve_checkpoint(spec, default):
    """A local file or folder holding the weights ``spec`` names, fetched if need be."""
    if spec is None:
        return present_default(default) or _fetch_default(default)
    spec = str(spec)
    if spec.startswith(HUB_PREFIX):
        return hub_folder(spec[len(HUB_PREFIX):].strip())
    if spec.lower().startswith(URL_PREFIXES):
        return _url_file(spec, default.parent)
    return Path(spec)


def present_default(default):
    """The default weights file if present, else the authors' file under its released name
    placed by hand next to it, else None: what runs, fetch and status all use."""
    for candidate in (default, default.parent / AUTHORS_CHECKPOINT_NAME):
        if candidate.exists():
            return candidate
    return None


def load_local(path, hint=""):
    """Load and check a local ``.pth`` or Hugging Face folder; any problem is a UserError."""
    if not path.exists():
        raise UserError(f"AST weights {path} do not exist")
    try:
        return load_checked(path)
    except CheckpointError as error:
        raise UserError(f"AST weights {path} are not usable: {error}{hint}") from None


def _fetch_default(default):
    """Fetch the published model from the hub and save it as the default file."""
    try:
        folder = hub_snapshot(AST_HUB_ID)
    except Unreachable as error:
        raise UserError(messages.missing_checkpoint(default, error)) from None
    except DownloadError as error:
        raise UserError(f"AST weights download failed: {error}; run again to retry") from None
    try:
        return save_hf_as_original(folder, default)
    except CheckpointError as error:
        raise UserError(f"the Hugging Face model {AST_HUB_ID} ({folder}) is not usable: "
                        f"{error}; nothing was saved") from None


def hub_folder(repo_id, also=()):
    """The cached snapshot of hub model ``repo_id`` (fetched if online), else a UserError;
    ``also``: patterns of files it needs beyond the config and weights."""
    if not repo_id:
        raise UserError(f"--checkpoint {HUB_PREFIX} needs a Hugging Face model id, "
                        f"e.g. {HUB_PREFIX}{AST_HUB_ID}")
    try:
        return hub_snapshot(repo_id, also)
    except Unreachable as error:
        raise UserError(f"Hugging Face model {repo_id} is not in the cache {hub_cache_dir()} "
                        f"and cannot be downloaded ({error})") from None
    except DownloadError as error:
        raise UserError(f"Hugging Face model {repo_id} could not be downloaded: {error}") from None


def _url_file(url, folder):
    """The authors' ``.pth`` at ``url``, downloaded once into ``folder`` under its own name."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name.endswith(".pth") or name.startswith("."):
        raise UserError(f"--checkpoint {url}: the URL must end in a file name ending in .pth")
    target = folder / name
    if target.exists():
        return target
    try:
        return download(url, target, load_checked)
    except DownloadError as error:
        raise UserError(f"cannot download {url}: {error}") from None
    except CheckpointError as error:
        raise UserError(f"the file downloaded from {url} is not usable AST weights "
                        f"({error}); it was removed") from None
