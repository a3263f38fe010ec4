"""The provenance sidecar ``<output>.json``: what made a results CSV, so runs can be compared.

It names the tagger, its weights file and sha256, the speech model and its sha256, package
versions, the run's options, device, precision, start and end time, and, at the end, the
rows in the file, the error rows among them and the stems per second of this run. It is
written when the run starts (``finished`` null: an interrupted run still says what made
it) and again when it ends. ``--resume`` refuses a sidecar naming other weights or tagger.
"""

import hashlib
import json
import os
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from stemeval.atomic import write_atomically
from stemeval.errors import UserError

PACKAGES = ("torch", "torchaudio", "transformers", "timm", "numpy", "essentia-tensorflow",
            "pydub", "soundfile", "huggingface_hub", "panns-inference", "hear21passt")
CHUNK = 1 << 20


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


def _weights_record(weights):
    """Path and sha256 of a tagger's weights (a local file or folder); a hub id as given."""
    if weights and os.path.exists(weights):
        return {"path": str(Path(weights).resolve()), "sha256": sha256(weights)}
    return {"path": weights, "sha256": None}


def _weights_text(record):
    digest = record.get("sha256")
    return f"{record.get('path')} (sha256 {digest[:12] if digest else 'unknown'})"


class Sidecar:
    """The sidecar of one run; ``start()`` checks a resumed file's and writes the first version."""

    def __init__(self, output, tagger, speech_model, options, device, precision):
        self.path = sidecar_path(output)
        self.record = {
            "tagger": tagger.name,
            "weights": _weights_record(tagger.weights),
            "speech_model": _weights_record(str(speech_model)),
            "packages": _versions(),
            "options": options,
            "device": _device_text(device),
            "precision": precision,
            "started": None,
            "finished": None,
            "stems": None,
            "errors": None,
            "stems_this_run": None,
            "stems_per_second": None,
        }
        self._clock = None

    def check_resume(self, output):
        """UserError if the existing sidecar names another tagger or other weights."""
        previous = read_sidecar(self.path)
        if previous is None:
            return
        old, new = previous.get("tagger"), self.record["tagger"]
        if old != new:
            raise UserError(f"cannot resume {output}: its sidecar {self.path} names tagger "
                            f"{old}, this run uses {new}")
        old, new = previous.get("weights") or {}, self.record["weights"]
        if old.get("sha256") != new["sha256"]:
            raise UserError(f"cannot resume {output}: its sidecar {self.path} names weights "
                            f"{_weights_text(old)}, this run uses {_weights_text(new)}")

    def start(self):
        self.record["started"] = _now()
        self._clock = time.monotonic()
        self._write()

    def finish(self, stems, errors, stems_this_run):
        seconds = time.monotonic() - self._clock
        self.record.update(finished=_now(), stems=stems, errors=errors,
                           stems_this_run=stems_this_run,
                           stems_per_second=round(stems_this_run / seconds, 4) if seconds else None)
        self._write()

    def _write(self):
        def dump(handle):
            json.dump(self.record, handle, indent=2)
            handle.write("\n")

        try:
            write_atomically(self.path, dump)
        except OSError as error:
            raise UserError(f"cannot write the sidecar {self.path}: {error.strerror}") from None


def read_sidecar(path):
    """The sidecar's record, or None when there is none (or it is not a sidecar)."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
