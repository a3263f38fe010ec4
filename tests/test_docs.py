"""The documentation: the site builds with ``mkdocs build --strict`` (no broken link or
anchor), the page of every option holds each command's parser (every option there, none the
parser lacks), the table of datasets holds the registry, the README stays a front door, and
help answers at once: ``./run.sh --help``, ``./run.sh demo --help`` and ``./test.sh --help``
without building anything (with the standard library alone), ``stemeval COMMAND --help``
within a second and without the heavy libraries. (The examples that show output are run by
``test_docs_examples.py``; the table of taggers and the Layout by ``test_layout.py``.)"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stemeval import commands
from stemeval.datasets import DATASETS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_site_builds_strict(tmp_path):
    """Into a temporary folder, never into the tree; the API page is made from the code."""
    site = tmp_path / "site"
    had_site = (ROOT / "site").exists()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("evaluate", "score", "compare", "label_counts", "Run"):
        assert f'id="stemeval.api.{name}"' in api, name
    assert (ROOT / "site").exists() == had_site


def sections(text):
    """``{heading: body}`` of a page's ``## `` sections."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def parser_of(command):
    """The parser ``stemeval COMMAND`` parses its arguments with, caught as it parses."""
    caught = []

    class Caught(Exception):
        pass

    def catch(parser, args=None, namespace=None):
        caught.append(parser)
        raise Caught

    original = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = catch
    try:
        with pytest.raises(Caught):
            commands.main([command, "x"])
    finally:
        argparse.ArgumentParser.parse_known_args = original
    return caught[0]


def parser_names(parser):
    """Every option (its long form) and positional argument (its metavar) of a parser, and
    of its subcommands'."""
    names = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= parser_names(sub)
        if action.option_strings:
            names.add(max(action.option_strings, key=len))
        else:
            names.add(action.metavar if isinstance(action.metavar, str) else action.dest)
    return names


def documented_names(body):
    """The first word of each table row's first cell: the options a section lists."""
    return {cell.split()[0] for cell in re.findall(r"^\| `([^`]+)`", body, flags=re.M)}


def test_the_options_page_holds_every_parser():
    found = sections((DOCS / "reference" / "options.md").read_text(encoding="utf-8"))
    documented = {heading.strip("`").removeprefix("stemeval "): body
                  for heading, body in found.items() if heading.startswith("`stemeval ")}
    assert sorted(documented) == sorted(commands.COMMANDS), "a command without its section"
    for command, body in documented.items():
        assert documented_names(body) == parser_names(parser_of(command)), command


def test_a_missing_or_stale_option_would_be_found():
    body = sections((DOCS / "reference" / "options.md").read_text(encoding="utf-8"))[
        "`stemeval labels`"]
    names = parser_names(parser_of("labels"))
    assert documented_names(body.replace("| `--counts` |", "| x |")) != names
    assert documented_names(body + "| `--colour` | red |\n") != names


def test_the_datasets_table_is_the_registry():
    """Its rows are the registry's datasets, in order, each with its splits and map file."""
    body = sections((DOCS / "reference" / "datasets.md").read_text(encoding="utf-8"))[
        "The datasets"]
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in body.splitlines() if line.startswith("| `")]
    assert [row[0].strip("`") for row in rows] == list(DATASETS)
    for row, dataset in zip(rows, DATASETS.values()):
        splits = re.findall(r"`([^`]+)`", row[4]) if row[4] != "-" else []
        assert tuple(splits) == dataset.splits, dataset.name
        maps = set(re.findall(r"`([\w-]+)\.toml`", row[5]))
        assert maps == ({dataset.map_name} if dataset.map_name else set()), dataset.name


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in DOCS.rglob("*.md"):  # every page is linked from the README
        assert f"docs/{page.relative_to(DOCS)}" in readme, page
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):  # and no link is broken
        assert (ROOT / target).exists(), target


# A Python with nothing but the standard library (and the project's own code): as on a fresh
# machine, before ./run.sh or ./test.sh has built anything.
STDLIB_ONLY = """
import importlib.abc, sys
ALLOWED = set(sys.stdlib_module_names) | {"stemeval", "evaluate", "commonutils",
                                           "analyze_dsd100", "analyze_moisesdb", "sweep"}
class StdlibOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, StdlibOnly())
"""


@pytest.fixture
def fresh_clone(tmp_path):
    """A copy of the scripts without .venv, whose set-up step would leave a mark and fail."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("run.sh", "test.sh"):
        shutil.copy(ROOT / name, clone / name)
    for name in ("stemeval", "analyze_dsd100.py", "analyze_moisesdb.py", "evaluate.py",
                 "sweep.py", "commonutils.py"):
        (clone / name).symlink_to(ROOT / name)
    setup = clone / "scripts" / "setup.sh"
    setup.write_text('#!/usr/bin/env bash\ntouch "$(dirname "$0")/../SET-UP-RAN"\nexit 1\n')
    setup.chmod(0o755)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(STDLIB_ONLY)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(hooks)}
    env.pop("VIRTUAL_ENV", None)
    return clone, env


@pytest.mark.parametrize("argv, usage", [
    (["run.sh", "--help"], "usage: ./run.sh"),
    (["run.sh", "-h"], "usage: ./run.sh"),
    (["run.sh", "demo", "--help"], "usage: stemeval demo"),
    (["run.sh", "dsd100", "--help"], "usage: analyze_dsd100.py"),
    (["run.sh", "musdb18hq", "x", "--help"], "usage: evaluate.py"),
    (["test.sh", "--help"], "usage: ./test.sh"),
])
def test_help_answers_without_building_anything(fresh_clone, argv, usage):
    clone, env = fresh_clone
    done = subprocess.run([str(clone / argv[0]), *argv[1:]], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(usage), done.stdout
    assert not (clone / "SET-UP-RAN").exists() and not (clone / ".venv").exists()


HEAVY = {"torch", "torchaudio", "timm", "transformers", "tensorflow", "essentia", "ray",
         "matplotlib", "sklearn", "scipy", "audiomentations"}
HELP = """
import contextlib, io, runpy, sys
sys.argv = ["stemeval", sys.argv[1], "--help"]
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        runpy.run_module("stemeval", run_name="__main__")
    except SystemExit as end:
        assert end.code == 0, end.code
assert out.getvalue().startswith("usage: ")
print(sorted({name.split(".")[0] for name in sys.modules} & set(%r)))
"""


@pytest.mark.parametrize("command", sorted(commands.COMMANDS))
def test_every_command_helps_within_a_second(command):
    """The whole process, Python's start included; the best of three (the machine is
    shared), and in any case without the heavy libraries."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", HELP % (sorted(HEAVY),), command],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        times.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "[]\n", f"stemeval {command} --help imports {done.stdout}"
        if times[-1] < 1.0:
            break
    assert min(times) < 1.0, times
