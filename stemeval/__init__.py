"""Evaluate audio taggers (the AST, PANNs, PaSST, CLAP, Hugging Face AudioSet classifiers) as
instrument recognisers on multitrack stems.

The Python API (``stemeval.api``), for a notebook::

    import stemeval
    run = stemeval.evaluate("dsd100", "DSD100/Sources", "results.csv", tagger="ast")
    report = stemeval.score("results.csv")          # accuracy, per category, intervals
    board = stemeval.compare(["a.csv", "b.csv"])     # several runs side by side

Bad input raises ``stemeval.UserError`` with the command line's one-line message. The
names are loaded on first use, so ``import stemeval.x`` stays as quick as ``x`` alone.
"""

import importlib

__all__ = ["evaluate", "score", "compare", "label_counts", "Run", "UserError", "DATASETS",
           "TAGGERS"]
_HOMES = {"evaluate": "stemeval.api", "score": "stemeval.api", "compare": "stemeval.api",
          "label_counts": "stemeval.api", "Run": "stemeval.api",
          "UserError": "stemeval.common.errors", "DATASETS": "stemeval.datasets",
          "TAGGERS": "stemeval.taggers"}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'stemeval' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
