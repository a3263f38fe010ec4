"""The taggers a run can use, by their ``--tagger`` name.

Each name maps to a module of this package with ``load(checkpoint=None, categories=None)``
returning a ``Tagger`` (see ``base``); ``checkpoint`` names the weights in the tagger's
released format (None: its default, fetched where missing), ``categories`` the dataset's
categories for zero-shot taggers. ``hf:<repo id>`` names any Hugging Face audio classifier
whose labels are AudioSet's (see ``hf``).
"""

import importlib

from stemeval.errors import UserError
from stemeval.taggers.hf import PREFIX as HF_PREFIX

DEFAULT = "ast"
TAGGERS = {
    "ast": "stemeval.taggers.ast",
    "panns-cnn14": "stemeval.taggers.panns",
    "passt": "stemeval.taggers.passt",
    "clap": "stemeval.taggers.clap",
}


def is_tagger(name):
    """Whether ``name`` names a tagger: a registered name or ``hf:<repo id>``."""
    return name in TAGGERS or (name.startswith(HF_PREFIX) and bool(name[len(HF_PREFIX):].strip()))


def check_name(name):
    """``name`` if it names a tagger, else a UserError."""
    if is_tagger(name):
        return name
    raise UserError(f"--tagger {name!r}: unknown tagger (choose {', '.join(TAGGERS)}, "
                    f"or {HF_PREFIX}<repo id> for a Hugging Face model with AudioSet labels)")


def load(name, checkpoint=None, categories=None):
    """The ``Tagger`` called ``name``, its weights checked, on the CPU."""
    if check_name(name).startswith(HF_PREFIX):
        from stemeval.taggers import hf

        return hf.load(name[len(HF_PREFIX):].strip(), checkpoint, categories)
    try:
        module = importlib.import_module(TAGGERS[name])
    except ModuleNotFoundError as error:
        if error.name != TAGGERS[name]:
            raise
        raise UserError(f"--tagger {name}: not available in this version") from None
    return module.load(checkpoint=checkpoint, categories=categories)
