"""A sweep's TOML config, read and checked whole before any work (see sweeps/example.toml).

Every mistake (a TOML syntax error, an unknown key, tagger, layout, deformation or
parameter, a missing dataset folder, a dataset without stems) is one ``UserError`` naming
the config file and what is wrong.
"""

import os
from dataclasses import dataclass, field

from stemeval import taggers as tagger_registry
from stemeval.audio.deform import CLEAN, canonical, is_random, parse_spec
from stemeval.common.errors import UserError
from stemeval.common.toml_files import read_toml
from stemeval.datasets import DATASETS

TOP_KEYS = {"output", "taggers", "conditions", "datasets", "checkpoints", "options", "repeats"}
DATASET_KEYS = {"layout", "folder", "map", "split", "limit", "follow_links"}
OPTION_DEFAULTS = {"speech_model": None, "device": "auto", "precision": "fp32",
                   "batch_size": None, "workers": None, "speech_backend": "torch", "chunk": 8,
                   "embeddings": False}
OPTION_CHOICES = {"device": ("auto", "cpu", "cuda", "mps"), "precision": ("fp32", "fp16", "bf16"),
                  "speech_backend": ("torch", "essentia")}


def layouts():
    return DATASETS


@dataclass(frozen=True)
class SweepDataset:
    """One dataset of a sweep: what ``evaluate.py LAYOUT FOLDER`` takes, by name."""

    name: str
    layout: str  # an evaluate.py DATASET name
    folder: str  # as written in the config (relative to the current folder); rows keep it
    map: str = None  # --map
    split: str = None  # --split
    limit: int = None  # --limit
    follow_links: bool = False  # --follow-links


@dataclass(frozen=True)
class Condition:
    spec: str  # the canonical SPEC (``clean`` for none), its draw ``@seedK`` included
    steps: tuple
    draw: int = 0  # which draw of a random condition (0: the one a plain run makes)

    @property
    def base(self):
        """The SPEC without its draw: what the draws of one condition share."""
        return canonical(self.steps)

    @property
    def file_name(self):
        """``noise_snr=10.csv``: the SPEC with ``:`` (not allowed everywhere) made ``_``."""
        return self.spec.replace(":", "_") + ".csv"

    @property
    def strength(self):
        """(deformation, parameter, value) for the plot, or None (clean, or a chain); the
        deformation keeps its other parameters (``reverb:wet=0.3``): one line per setting."""
        if len(self.steps) != 1:
            return None
        step = self.steps[0]
        others = step.text().split(":", 1)[1].split(",")[1:]
        return ":".join([step.name, ",".join(others)] if others else [step.name]), \
            step.kind.strength, step.strength


@dataclass(frozen=True)
class Options:
    """What the analyze scripts take as options, for every cell of the sweep."""

    checkpoints: dict = field(default_factory=dict)  # tagger name -> --checkpoint SPEC
    speech_model: str = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = None
    workers: int = None  # None: as an evaluation run (1 on a CPU, the core count on CUDA)
    speech_backend: str = "torch"
    chunk: int = 8  # stems decoded and held at once; also the stems of one Ray task
    embeddings: bool = False  # each cell keeps its stems' embeddings (``embeddings_path``)


@dataclass(frozen=True)
class SweepConfig:
    path: str
    output: str
    datasets: tuple
    taggers: tuple
    conditions: tuple
    options: Options
    repeats: int = 1  # draws of each random condition (deterministic ones are drawn once)

    def cells(self):
        """Every (dataset, tagger, condition), datasets outermost, in config order."""
        return [(d, t, c) for d in self.datasets for t in self.taggers for c in self.conditions]

    def cell_path(self, dataset, tagger, condition):
        """``<output>/<dataset>/<tagger>/<condition>.csv``."""
        return os.path.join(self.output, _safe(dataset.name), _safe(tagger), condition.file_name)

    def embeddings_path(self, dataset, tagger, condition):
        """Where a cell keeps its embeddings (with ``options.embeddings``): beside its CSV,
        ``<condition>.npz``; None without."""
        if not self.options.embeddings:
            return None
        return os.path.splitext(self.cell_path(dataset, tagger, condition))[0] + ".npz"


def _safe(name):
    return name.replace("/", "_").replace(":", "_")


def _is_count(value, low):
    """Whether ``value`` is an integer of at least ``low`` (TOML's ``true`` is not: a Python
    bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _fail(path, message):
    raise UserError(f"{path}: {message}")


def _check_keys(path, table, allowed, where):
    unknown = sorted(set(table) - allowed)
    if unknown:
        _fail(path, f"unknown key {unknown[0]!r} in {where} (valid: {', '.join(sorted(allowed))})")


def _string_list(path, data, key):
    values = data.get(key)
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        _fail(path, f"{key} must be a non-empty list of strings")
    return values


def _datasets(path, data):
    tables = data.get("datasets")
    if not isinstance(tables, dict) or not tables:
        _fail(path, "no [datasets.NAME] table (each with layout and folder)")
    datasets = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            _fail(path, f"datasets.{name} must be a table with layout and folder")
        _check_keys(path, table, DATASET_KEYS, f"[datasets.{name}]")
        layout = table.get("layout", name)
        if layout not in layouts():
            _fail(path, f"datasets.{name}: unknown layout {layout!r} "
                        f"(valid: {', '.join(sorted(layouts()))})")
        folder = table.get("folder")
        if not isinstance(folder, str) or not folder:
            _fail(path, f"datasets.{name}: folder must be the dataset's folder")
        if not os.path.exists(folder):
            _fail(path, f"datasets.{name}: {folder}: no such "
                        f"{'file' if layouts()[layout].input_is_file else 'folder'}")
        for key, kind in (("map", str), ("split", str), ("follow_links", bool)):
            if key in table and not isinstance(table[key], kind):
                _fail(path, f"datasets.{name}: {key} must be a {kind.__name__}")
        if "limit" in table and not _is_count(table["limit"], 1):
            _fail(path, f"datasets.{name}: limit must be a whole number of stems, 1 or more, "
                        f"not {table['limit']!r}")
        datasets.append(SweepDataset(name, layout, folder, table.get("map"), table.get("split"),
                                     table.get("limit"), table.get("follow_links", False)))
    return tuple(datasets)


def _conditions(path, data, repeats):
    """The conditions in config order, clean first if missing; a random one (see
    ``deform.is_random``) is followed by its draws 1 to ``repeats - 1``."""
    conditions = []
    for text in _string_list(path, data, "conditions"):
        if "@" in text:
            _fail(path, f"condition {text!r}: draws are not listed; set repeats = N to draw "
                        f"each random condition N times")
        steps = parse_spec(text, context=f"{path}: condition")
        condition = Condition(canonical(steps), steps)
        if condition in conditions:
            _fail(path, f"condition {text!r} is listed twice (as {condition.spec})")
        conditions.append(condition)
    if not any(condition.spec == CLEAN for condition in conditions):
        conditions.insert(0, Condition(CLEAN, ()))
    drawn = []
    for condition in conditions:
        drawn.append(condition)
        if is_random(condition.steps):
            drawn += [Condition(canonical(condition.steps, draw), condition.steps, draw)
                      for draw in range(1, repeats)]
    return tuple(drawn)


def _options(path, data, taggers):
    table = data.get("options", {})
    checkpoints = data.get("checkpoints", {})
    if not isinstance(table, dict) or not isinstance(checkpoints, dict):
        _fail(path, "[options] and [checkpoints] must be tables")
    _check_keys(path, table, set(OPTION_DEFAULTS), "[options]")
    _check_keys(path, checkpoints, set(taggers), "[checkpoints] (the sweep's taggers)")
    values = {**OPTION_DEFAULTS, **table}
    for key, choices in OPTION_CHOICES.items():
        if values[key] not in choices:
            _fail(path, f"options.{key} must be one of {', '.join(choices)}")
    for key, low in (("batch_size", 1), ("workers", 0), ("chunk", 1)):
        value = values[key]
        if value is not None and not _is_count(value, low):
            _fail(path, f"options.{key} must be an integer of at least {low}")
    if not isinstance(values["embeddings"], bool):
        _fail(path, f"options.embeddings must be true or false, not {values['embeddings']!r}")
    if values["speech_model"] is not None and not os.path.isfile(values["speech_model"]):
        _fail(path, f"options.speech_model: {values['speech_model']}: no such file")
    return Options(checkpoints=dict(checkpoints), **values)


def load_config(path, output=None):
    """Read and check the config at ``path``; ``output`` overrides its ``output`` key."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    data = read_toml(path)
    _check_keys(path, data, TOP_KEYS, "the config")
    taggers = _string_list(path, data, "taggers")
    for name in taggers:
        if not tagger_registry.is_tagger(name):
            _fail(path, f"unknown tagger {name!r} (valid: {tagger_registry.choices()})")
    if len(set(taggers)) != len(taggers):
        _fail(path, "a tagger is listed twice")
    repeats = data.get("repeats", 1)
    if not _is_count(repeats, 1):
        _fail(path, f"repeats must be a whole number of draws, 1 or more, not {repeats!r}")
    conditions = _conditions(path, data, repeats)
    datasets = _datasets(path, data)
    output = output or data.get("output")
    if not isinstance(output, str) or not output:
        _fail(path, "no output folder: set output = \"FOLDER\" or pass --output")
    return SweepConfig(path, output, datasets, tuple(taggers), conditions,
                       _options(path, data, taggers), repeats)
