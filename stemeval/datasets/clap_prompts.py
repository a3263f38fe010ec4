"""CLAP's prompts as data: the text a zero-shot tagger scores each category against.

One TOML file per dataset map in ``prompts/`` (``category = "prompt text"``, named as the
map in ``maps/``), or any file given with ``--prompts``. A run's prompts are:

- with ``--prompts FILE``: that file's, which must name every category of the run (more
  are allowed: one file may serve several maps);
- else those of the shipped file whose categories are exactly the run's (the dataset's own
  map's, or a ``--map`` with the same categories);
- else ``the sound of {category}`` with underscores read as spaces, for every category (a
  manifest, or a ``--map`` with other categories).

A file is checked when read: a TOML table of non-empty strings, or one line naming the file
and the fault.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from stemeval.common.errors import UserError
from stemeval.common.toml_files import read_toml

PROMPTS = Path(__file__).with_name("prompts")
PROMPT = "the sound of {category}"


def prompt(category):
    """The template's text for ``category``: ``PROMPT`` with underscores read as spaces."""
    return PROMPT.format(category=" ".join(category.replace("_", " ").split()))


@dataclass(frozen=True)
class Prompts:
    """The prompt of each category (in the categories' order), and where they come from."""

    source: str
    texts: dict

    def identity(self):
        """The prompts as a sidecar identity field: their source and a sha256 of the texts."""
        content = json.dumps(list(self.texts.items()))
        return {"path": self.source, "sha256": hashlib.sha256(content.encode()).hexdigest(),
                "texts": self.texts}


def template(categories):
    """The template's prompts of ``categories``."""
    return Prompts(PROMPT, {category: prompt(category) for category in categories})


def read_prompts(path):
    """``{category: prompt}`` of a prompts file; a bad one is a UserError naming the fault."""
    table = read_toml(path, "prompts ")
    if not table:
        raise UserError(f'prompts {path}: no prompt in it (expected lines such as '
                        f'bass = "the sound of a bass line")')
    for category, text in table.items():
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"prompts {path}: category {category!r} must be a prompt text in "
                            f"quotes")
    return table


def prompts_for(categories, path=None):
    """The ``Prompts`` of a run over ``categories`` (see the module docstring); ``path``:
    the ``--prompts`` file, if given."""
    categories = list(categories)
    if path is not None:
        table = read_prompts(path)
        missing = [category for category in categories if category not in table]
        if missing:
            raise UserError(f"prompts {path}: no prompt for {len(missing)} of the run's "
                            f"categories: {', '.join(missing)}")
        return Prompts(str(path), {category: table[category] for category in categories})
    for shipped in sorted(PROMPTS.glob("*.toml")):
        table = read_prompts(shipped)
        if set(table) == set(categories):
            return Prompts(str(shipped.relative_to(PROMPTS.parents[2])),
                           {category: table[category] for category in categories})
    return template(categories)
