"""The AST's weights (``--checkpoint SPEC`` of ``--tagger ast``): found, fetched, converted
and checked.

SPEC is a path to an authors' ``.pth`` or a Hugging Face folder, ``hf:<repo id>``, or an
``http(s)://`` URL of an authors' ``.pth``. Without SPEC the default file is used; when it is
missing, the published model is fetched from the hub and saved there in the authors' format,
so that it loads, as in the published system, with timm's LayerNorm epsilons (the Hugging
Face config says 1e-12).
"""

import dataclasses
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import torch

from stemeval.common.atomic import part_file, publish
from stemeval.common.errors import UserError
from stemeval.taggers.ast_model import (
    ASTConfig,
    config_from_hf,
    convert_hf_state_dict,
    load_hf_folder,
    load_original_checkpoint,
    read_hf_folder,
)
from stemeval.weights.checks import (
    CheckpointError,
    check_audioset_labels,
    hf_labels,
    looks_like_tensorflow_graph,
)
from stemeval.weights.download import DownloadError, Unreachable, download
from stemeval.weights.hub import hub_folder, hub_repo_id, hub_snapshot
from stemeval.weights.sources import (
    AST_HUB_ID,
    AUTHORS_CHECKPOINT_NAME,
    FETCH_COMMAND,
    URL_PREFIXES,
    unsupported_address,
)
from stemeval.weights.status import FileStatus, problem_of


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
    unsupported = unsupported_address(spec, "--checkpoint", "a local path, an http:// or "
                                      "https:// URL, or hf:<repo id>")
    if unsupported:
        raise UserError(unsupported)
    repo_id = hub_repo_id(spec, example=AST_HUB_ID)
    if repo_id is not None:
        return hub_folder(repo_id)
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


def load_checked(path):
    """An eval-mode ASTModel from an authors' ``.pth`` or a Hugging Face folder; raises
    CheckpointError for anything that is not an AudioSet AST."""
    path = Path(path)
    if path.is_dir():
        model, labels = load_hf_folder(path)
        check_audioset_labels(labels)
        return model
    if looks_like_tensorflow_graph(path):
        raise CheckpointError("it looks like a TensorFlow graph (a .pb file such as the "
                              "--speech-model file), not PyTorch AST weights")
    model = load_original_checkpoint(path)
    classes = model.config.num_classes
    if classes != 527:
        raise CheckpointError(f"it has {classes} outputs where the AudioSet AST has 527")
    return model


def missing_message(path, why):
    """The default AST weights file is missing and the hub could not be reached."""
    return (f"AST weights missing: {path.name} is not in {path.parent} and cannot be "
            f"downloaded ({why}); on a machine that is online run \"{FETCH_COMMAND} checkpoint\" "
            f"(it saves the Hugging Face model {AST_HUB_ID} as that file) and copy the file "
            f"there, or pass --checkpoint PATH (the authors' {AUTHORS_CHECKPOINT_NAME} or a "
            f"Hugging Face model folder)")


def _fetch_default(default):
    """Fetch the published model from the hub and save it as the default file."""
    try:
        folder = hub_snapshot(AST_HUB_ID)
    except Unreachable as error:
        raise UserError(missing_message(default, error)) from None
    except DownloadError as error:
        raise UserError(f"AST weights download failed: {error}; run again to retry") from None
    try:
        return save_hf_as_original(folder, default)
    except CheckpointError as error:
        raise UserError(f"the Hugging Face model {AST_HUB_ID} ({folder}) is not usable: "
                        f"{error}; nothing was saved") from None


def save_hf_as_original(folder, target):
    """Convert the Hugging Face AST in ``folder`` to the authors' checkpoint (``module.v.*``,
    ``module.mlp_head.*``); write ``target`` once the copy loads back with the same size."""
    hf_config, hf_state = read_hf_folder(folder)
    check_audioset_labels(hf_labels(hf_config))
    config = config_from_hf(hf_config)
    state = {"module." + key: value.contiguous()
             for key, value in convert_hf_state_dict(hf_state, config.depth).items()}
    published_eps = dict(norm_eps=ASTConfig.norm_eps, head_norm_eps=ASTConfig.head_norm_eps)
    with part_file(target) as part:
        torch.save(state, part)
        if load_original_checkpoint(part).config != dataclasses.replace(config, **published_eps):
            raise CheckpointError(f"its size ({config}) cannot be kept in the authors' format")
        return publish(part, target)


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


def checkpoint_status(path, source, fetch):
    """Status of AST weights (an authors' ``.pth`` or a Hugging Face folder)."""
    return FileStatus("AST weights", path, source, fetch,
                      problem_of(path, load_checked, CheckpointError))
