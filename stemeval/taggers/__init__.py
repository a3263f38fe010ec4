"""The taggers a run can use: one declarative entry each, as timm registers its models.

Everything that lists taggers derives from ``TAGGERS``: the ``--tagger`` choices and help,
``stemeval weights fetch|status`` (``stemeval.taggers.weight_files``), the sweep config's
check, and the documentation's table (``markdown_table``; a test keeps the table of
docs/reference/taggers.md equal to it). Importing this module imports no network code: a
tagger's module is imported when it is loaded.

Adding a tagger is one module of this package with ``load(checkpoint=None,
categories=None)`` returning a ``base.Tagger``, and one ``TaggerEntry`` below.
"""

import importlib
from dataclasses import dataclass

from stemeval.common.errors import UserError, needs_packages
from stemeval.weights.sources import HF_PREFIX, HubRepo, PublishedCheckpoint, Released

DEFAULT = "ast"


@dataclass(frozen=True)
class TaggerEntry:
    """What a tagger is, what it reads, and where its default weights come from."""

    name: str  # the --tagger name
    module: str  # the module whose load(checkpoint, categories) builds it
    title: str  # what it is, with its reference
    reads: str  # its input
    checkpoint: str  # what --checkpoint takes
    weights: object  # its default weights: PublishedCheckpoint, Released or HubRepo
    zero_shot: bool = False  # scores the dataset's categories, not AudioSet's labels
    requires: tuple = ()  # runtime packages beyond the published pipeline's

    @property
    def home(self):
        """Where its default weights live, for people."""
        return self.weights.home


TAGGERS = {entry.name: entry for entry in (
    TaggerEntry(
        name="ast", module="stemeval.taggers.ast",
        title="the published AST (Gong et al. 2021, AudioSet mAP 0.459)",
        reads="16 kHz (Essentia's resampler, as published), first 1024 fbank frames",
        checkpoint="authors' `.pth`, a Hugging Face folder, `hf:<id>`, or a URL (see below)",
        weights=PublishedCheckpoint()),
    TaggerEntry(
        name="panns-cnn14", module="stemeval.taggers.panns",
        title="PANNs CNN14 (Kong et al. 2020, mAP 0.431)",
        reads="32 kHz waveform",
        checkpoint="`Cnn14_mAP=0.431.pth` (Zenodo 3987831)",
        weights=Released(
            title="PANNs CNN14 weights",
            url="https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth",
            file_name="Cnn14_mAP=0.431.pth", size="about 327 MB",
            licence="CC BY 4.0 (Zenodo record 3987831)")),
    TaggerEntry(
        name="passt", module="stemeval.taggers.passt",
        title="PaSST-S (Koutini et al. 2022, mAP 0.471)",
        reads="32 kHz, 10 s windows",
        checkpoint="the `passt-s-f128-p16-s10` AudioSet release (kkoutini/PaSST)",
        weights=Released(
            title="PaSST-S weights",
            url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/"
                "passt-s-f128-p16-s10-ap.476-swa.pt",
            file_name="passt-s-f128-p16-s10-ap.476-swa.pt", size="about 345 MB",
            licence="Apache-2.0 (kkoutini/PaSST)")),
    TaggerEntry(
        name="clap", module="stemeval.taggers.clap",
        title="zero-shot CLAP (`laion/larger_clap_music`)",
        reads="48 kHz",
        checkpoint="a Hugging Face folder or `hf:<id>`",
        weights=HubRepo("laion/larger_clap_music", licence="Apache-2.0",
                        files=("*.json", "merges.txt")),
        zero_shot=True, requires=("transformers",)),
)}

# ``hf:<repo id>``: a family of taggers, one per hub model, rather than one entry.
HF_ENTRY = TaggerEntry(
    name=f"{HF_PREFIX}<repo id>", module="stemeval.taggers.hf",
    title="any Hugging Face audio classifier whose labels are AudioSet's, in order",
    reads="its feature extractor's rate (resampled with torchaudio's windowed sinc)",
    checkpoint="a local copy of the model folder",
    weights=HubRepo("<repo id>", licence="the model's"), requires=("transformers",))


def is_tagger(name):
    """Whether ``name`` names a tagger: a registered name or ``hf:<repo id>``."""
    return name in TAGGERS or (name.startswith(HF_PREFIX) and bool(name[len(HF_PREFIX):].strip()))


def choices():
    """The tagger names as a user may write them, for messages and help."""
    return f"{', '.join(TAGGERS)}, or {HF_ENTRY.name}"


def help_text():
    """Each tagger's name and what it is, for ``--tagger``'s help."""
    described = [f"{name}{' (default)' if name == DEFAULT else ''}: {found.title}"
                 for name, found in (*TAGGERS.items(), (HF_ENTRY.name, HF_ENTRY))]
    return "; ".join(described).replace("`", "")


def check_name(name):
    """``name`` if it names a tagger, else a UserError."""
    if is_tagger(name):
        return name
    raise UserError(f"--tagger {name!r}: unknown tagger (choose {choices()} for a Hugging "
                    f"Face model with AudioSet labels)")


def entry(name):
    """The ``TaggerEntry`` of a tagger name (``hf:<id>`` gives ``HF_ENTRY``)."""
    return HF_ENTRY if check_name(name).startswith(HF_PREFIX) else TAGGERS[name]


def load(name, checkpoint=None, categories=None, prompts=None):
    """The ``Tagger`` called ``name``, its weights checked, on the CPU; a missing package is
    one UserError naming it and the requirements file that installs it. ``prompts``: a
    zero-shot tagger's (``clap_prompts.Prompts``; None: those of its categories)."""
    found = entry(name)
    with needs_packages(f"--tagger {name}"):
        module = importlib.import_module(found.module)
        if found is HF_ENTRY:
            return module.load(name[len(HF_PREFIX):].strip(), checkpoint, categories)
        if found.zero_shot:
            return module.load(checkpoint=checkpoint, categories=categories, prompts=prompts)
        return module.load(checkpoint=checkpoint, categories=categories)


def markdown_table():
    """The table of taggers of docs/reference/taggers.md, one row per entry and one for
    ``hf:<repo id>``."""
    lines = ["| `--tagger` | what it is | input | weights (`--checkpoint`, released format) "
             "| where the default lives |", "|---|---|---|---|---|"]
    for found in (*TAGGERS.values(), HF_ENTRY):
        default = " (default)" if found.name == DEFAULT else ""
        lines.append(f"| `{found.name}`{default} | {found.title} | {found.reads} | "
                     f"{found.checkpoint} | {found.home} |")
    return lines
