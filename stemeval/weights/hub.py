"""Fetch a model folder from the Hugging Face hub through huggingface_hub's cache.

``snapshot_download`` caches and resumes; only the config, one weights file and the files a
caller names (e.g. a processor's) are fetched.
``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are read at each call, so they take
effect even when set after huggingface_hub was imported.
"""

from pathlib import Path

from stemeval.common.errors import UserError, one_line
from stemeval.weights.download import DownloadError, Unreachable
from stemeval.weights.sources import HF_PREFIX, host_of, hub_cache_dir, hub_endpoint, hub_offline

# Imported inside the functions that use them, so that what needs none of them starts without them:
# huggingface_hub.

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def hub_folder(repo_id, also=(), what="Hugging Face model", cache="the cache", advice=""):
    """The cached snapshot of hub model ``repo_id`` (fetched if online), else one UserError
    naming it as ``what``, the ``cache`` folder it is looked for in, and ``advice``; ``also``:
    patterns of files it needs beyond the config and weights."""
    try:
        return hub_snapshot(repo_id, also)
    except Unreachable as error:
        raise UserError(f"{what} {repo_id} is not in {cache} {hub_cache_dir()} and cannot be "
                        f"downloaded ({error}){advice}") from None
    except DownloadError as error:
        raise UserError(f"{what} {repo_id} could not be downloaded: {error}") from None


def hub_snapshot(repo_id, also=()):
    """Local folder holding ``config.json``, the weights of hub model ``repo_id`` and the
    files matching the patterns ``also``; Unreachable or DownloadError."""
    folder = _snapshot(repo_id, WEIGHT_FILES[0], also)
    if not (folder / WEIGHT_FILES[0]).is_file():  # older repos only have the .bin
        folder = _snapshot(repo_id, WEIGHT_FILES[1], also)
    return folder


def _snapshot(repo_id, weights, also):
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = hub_offline()
    try:
        return Path(snapshot_download(
            repo_id, allow_patterns=["config.json", weights, *also], cache_dir=hub_cache_dir(),
            endpoint=hub_endpoint(), local_files_only=offline))
    except LocalEntryNotFoundError as error:
        if offline:
            raise Unreachable("HF_HUB_OFFLINE is set") from None
        cause = error.__cause__
        if isinstance(cause, HfHubHTTPError):
            raise DownloadError(f"{host_of(hub_endpoint())}: {one_line(cause)}") from None
        reason = f": {one_line(cause)}" if cause else ""
        raise Unreachable(f"no connection to {host_of(hub_endpoint())}{reason}") from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise DownloadError(f"{repo_id}: {one_line(error)}") from None


def hub_repo_id(spec, example):
    """The repo id that ``--checkpoint hf:<repo id>`` names, None for a spec of another kind;
    ``hf:`` alone is a UserError showing ``example``."""
    if not str(spec).startswith(HF_PREFIX):
        return None
    repo_id = str(spec)[len(HF_PREFIX):].strip()
    if not repo_id:
        raise UserError(f"--checkpoint {HF_PREFIX} needs a Hugging Face model id, "
                        f"e.g. {HF_PREFIX}{example}")
    return repo_id
