"""The provenance sidecar ``<output>.json``: what made a results CSV, so runs can be compared
and a resume cannot mix two conditions in one file.

Its ``identity`` holds every setting that can change a row: the tagger, its weights (path
and sha256; for a folder, a sha256 over its files), a zero-shot tagger's prompts (their
source and a sha256 of their texts), the speech model (sha256), the dataset layout, the
category map (sha256 of its categories and labels), the deformation, the precision, the
speech backend, and, under fp16 or bf16, the kind of device. ``--resume``
(and a resumed sweep cell) refuses a file whose sidecar names another value for any of them,
in one line naming it; the columns (``--details``) are checked by the CSV's header. Left out
on purpose, as they change no row: ``--limit`` and ``--split`` (which stems, not their rows),
``--workers``, ``--batch-size`` (each stem's scores are its own; batching changes no fp32
row, see the exactness section of docs/tasks/engine.md) and the device under fp32 (TF32
off: the CPU and a GPU choose the same labels).

It also records the package versions, and one *session* per run of the file (the first and
each resume): its start and end (UTC), the rows it wrote and their rate, its options and
device; at the end of each, the rows in the file and the error rows among them. It is
written when a session starts (``finished`` null: an interrupted session still says what
made its rows) and again when it ends.
"""

import hashlib
import json
import os
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from stemeval.common.atomic import write_atomically
from stemeval.common.errors import (
    DISK_FULL_ADVICE,
    UserError,
    is_disk_full,
    one_line,
    os_reason,
)

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch.

# torch is imported where a CUDA device is named (``_device_text``), not with this module.

PACKAGES = ("torch", "torchaudio", "transformers", "timm", "numpy", "essentia-tensorflow",
            "pydub", "soundfile", "huggingface_hub", "panns-inference", "hear21passt")
CHUNK = 1 << 20
# identity field -> how a refusal names it, in the order they are checked
IDENTITY = {"tagger": "tagger", "weights": "weights", "prompts": "prompts",
            "speech_model": "speech model",
            "dataset": "dataset", "map": "map", "deform": "--deform",
            "precision": "--precision", "speech_backend": "--speech-backend",
            "device": "device (under fp16 or bf16)"}
LEGACY_IDENTITY = ("tagger", "weights", "speech_model", "precision")  # sidecars before it


def sidecar_path(output):
    return f"{output}.json"


def sha256(path):
    """The sha256 of a file; of a folder (a Hugging Face model), of its files' names and
    sha256s in sorted order, so the same snapshot always gives the same digest."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{sha256(item)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _versions():
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _device_text(device):
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name()})"
    return device


def file_record(path):
    """Path and sha256 of a model file or folder; a hub id as given (sha256 null)."""
    if path and os.path.exists(path):
        return {"path": str(Path(path).resolve()), "sha256": sha256(path)}
    return {"path": path, "sha256": None}


def model_identity(tagger, speech_model, hashed=None):
    """The identity fields of the loaded model files (see the module docstring); ``hashed``:
    a dict that keeps each file's record, so that several identities made in one process (a
    sweep's cells) hash each file once."""
    def record(path):
        if hashed is None:
            return file_record(path)
        if path not in hashed:
            hashed[path] = file_record(path)
        return hashed[path]

    prompts = {"prompts": tagger.prompting.identity()} if tagger.prompting else {}
    return {"tagger": tagger.name, "weights": record(tagger.weights), **prompts,
            "speech_model": record(str(speech_model))}


def condition_identity(dataset, category_map, deform, precision, speech_backend, device):
    """The identity fields known before any model is loaded: the dataset layout, its map
    (``CategoryMap``), the canonical ``--deform`` SPEC, precision, speech backend, device."""
    content = json.dumps([list(category_map.categories), sorted(category_map.labels.items())])
    return {"dataset": dataset,
            "map": {"path": category_map.source,
                    "sha256": hashlib.sha256(content.encode()).hexdigest()},
            "deform": deform, "precision": precision, "speech_backend": speech_backend,
            "device": None if precision == "fp32" else device}


def identity_of(record):
    """A sidecar's identity (for a sidecar written before it had one: its tagger, weights,
    speech model and precision)."""
    identity = record.get("identity")
    if isinstance(identity, dict):
        return identity
    return {key: record[key] for key in LEGACY_IDENTITY if key in record}


def identity_key(value):
    """What is compared of an identity field: a file's sha256 (its path if it has none)."""
    return (value.get("sha256") or value.get("path")) if isinstance(value, dict) else value


def identity_text(value):
    """An identity field for people: ``path (sha256 0123456789ab)`` for a file."""
    if isinstance(value, dict):
        digest = value.get("sha256")
        return f"{value.get('path')} (sha256 {digest[:12] if digest else 'unknown'})"
    return "none (fp32)" if value is None else str(value)


def check_same_identity(previous, identity, output):
    """UserError naming the first identity field whose value in the ``previous`` sidecar
    record differs from this run's ``identity`` (fields either lacks are not compared); a
    resume's check, made by ``stemeval.runfiles.lifecycle``."""
    if previous is None:
        return
    old = identity_of(previous)
    for key, name in IDENTITY.items():
        if key in old and key in identity and \
                identity_key(old[key]) != identity_key(identity[key]):
            raise UserError(f"cannot resume {output}: its sidecar {sidecar_path(output)} names "
                            f"{name} {identity_text(old[key])}, this run uses "
                            f"{identity_text(identity[key])}")


def read_previous(output):
    """The sidecar record of a resumed results file, or None when it has none. One that
    cannot be read is refused: resuming past it would skip the identity check."""
    path = sidecar_path(output)
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if not identity_of(record):  # a report written over it, say: nothing to check by
            raise ValueError("it records no run identity: it is not a sidecar a run wrote")
    except (OSError, ValueError) as error:
        raise UserError(f"cannot resume {output}: its sidecar {path} cannot be read "
                        f"({one_line(error)}), so what made its rows cannot be checked; "
                        f"restore it, or drop --resume to start anew") from None
    return record


def _sessions(previous):
    """The sessions of a resumed file's sidecar (one made of its times if it has none)."""
    if previous is None:
        return []
    if isinstance(previous.get("sessions"), list):
        return previous["sessions"]
    return [{"started": previous.get("started"), "finished": previous.get("finished"),
             "stems_written": previous.get("stems_this_run")}]


class Sidecar:
    """The sidecar of one session of a results file: ``start()`` writes it, ``finish()``
    again; ``previous``: the record of the file this session resumes (its sessions go on);
    ``scores``: the file of its kept scores (``stemeval.runfiles.kept_scores``), if it keeps them."""

    def __init__(self, output, identity, options, device, previous=None, scores=None):
        self.path = sidecar_path(output)
        packages = _versions()
        self.session = {"started": None, "finished": None, "stems_written": None,
                        "stems_per_second": None, "device": _device_text(device),
                        "options": options, "packages": packages}
        self.record = {
            "tagger": identity["tagger"],
            "weights": identity["weights"],
            "speech_model": identity["speech_model"],
            "identity": identity,
            "packages": packages,
            "options": options,
            "device": self.session["device"],
            "precision": identity["precision"],
            "started": None,
            "finished": None,
            "stems": None,
            "errors": None,
            "stems_this_run": None,
            "stems_per_second": None,
            "sessions": _sessions(previous) + [self.session],
        }
        if scores is not None:
            self.record["scores"] = scores
        self._clock = None

    def start(self):
        self.session["started"] = _now()
        self.record["started"] = self.record["sessions"][0]["started"] or self.session["started"]
        self._clock = time.monotonic()
        self._write()

    def finish(self, stems, errors, stems_this_run):
        seconds = time.monotonic() - self._clock
        rate = round(stems_this_run / seconds, 4) if seconds else None
        self.session.update(finished=_now(), stems_written=stems_this_run,
                            stems_per_second=rate)
        self.record.update(finished=self.session["finished"], stems=stems, errors=errors,
                           stems_this_run=stems_this_run, stems_per_second=rate)
        self._write()

    def _write(self):
        def dump(handle):
            json.dump(self.record, handle, indent=2)
            handle.write("\n")

        try:
            write_atomically(self.path, dump)
        except OSError as error:
            raise UserError(f"cannot write the sidecar {self.path}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None


def read_sidecar(path):
    """The sidecar's record, or None when there is none (or it is not a sidecar)."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_identity(results):
    """The identity the sidecar of the results CSV ``results`` records; None when it has no
    readable sidecar."""
    record = read_sidecar(sidecar_path(results))
    return identity_of(record) if record is not None else None


def first_difference(made, identity):
    """``(name, made's value, identity's value)`` of the first identity field (in
    ``sidecar.IDENTITY``'s order) both hold and on which they differ; None if none."""
    for key, name in IDENTITY.items():
        if key in made and key in identity and \
                identity_key(made[key]) != identity_key(identity[key]):
            return name, made[key], identity[key]
    return None
