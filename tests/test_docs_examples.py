"""Every example on the documentation pages and in the README that shows a command's output
is run here, and what it shows must be what the command prints.

An example is a ```` ```console ```` block: lines starting with ``$ `` are commands, the lines
after each are its output (stdout; ``2>&1`` adds stderr). A page's examples run in order in
one fresh folder holding ``reference`` and ``stemeval`` (links to the project's) and small
random models: the default AST (``ast.pth``, biased to pick ``Synthesizer`` for every stem),
``drums.pth`` (biased to ``Drum kit``) and a speech model that never hears speech, as the
pages say. ``stemeval COMMAND ...`` runs in this process (``stemeval.commands.main``); what
follows a ``|`` or ``>`` on its line, and any other command (``sed``), runs in bash. A page
whose first command was already the first command of another page (``stemeval demo
--distances``) starts from what that command printed and left in its folder.

Where output depends on the random weights (and only there) a page may elide it: a line
``…`` stands for one or more lines, and ``…`` inside a line for any text within it.
Everything else must match exactly, so an example edited by hand fails (see
``test_an_edited_example_fails``).
"""

import contextlib
import difflib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from stemeval import commands
from stemeval.common.errors import exit_status
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers import published_files
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
ELISION = "…"
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")


def doc_pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def code_blocks(text):
    """``(first line number, language, lines)`` of each fenced block of a Markdown text."""
    blocks, lines, index = [], text.split("\n"), 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != opened.group(1):
            end += 1
        blocks.append((index + 1, opened.group(2), lines[index + 1:end]))
        index = end + 1
    return blocks


def examples(text):
    """Each console block as ``(line number, [(command, shown output lines), ...])``."""
    found = []
    for number, language, lines in code_blocks(text):
        if language != "console":
            continue
        assert lines and lines[0].startswith("$ "), f"line {number}: a console block " \
                                                    f"starts with a $ command"
        steps = []
        for line in lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        found.append((number, steps))
    return found


def matches(shown, printed):
    """Whether the printed lines are the shown ones, ``…`` eliding as the module says."""
    @lru_cache(maxsize=None)
    def match(i, j):
        if i == len(shown):
            return j == len(printed)
        if shown[i] == ELISION:
            return any(match(i + 1, k) for k in range(j + 1, len(printed) + 1))
        if j == len(printed):
            return False
        if ELISION in shown[i]:
            pattern = ".*".join(map(re.escape, shown[i].split(ELISION)))
            same = re.fullmatch(pattern, printed[j]) is not None
        else:
            same = shown[i] == printed[j]
        return same and match(i + 1, j + 1)

    return match(0, 0)


def check(command, shown, printed):
    if not matches(tuple(shown), tuple(printed)):
        diff = "\n".join(difflib.unified_diff(shown, printed, "shown", "printed", lineterm=""))
        raise AssertionError(f"$ {command}\nwhat the page shows is not what it prints:\n{diff}")


# What follows a stemeval command on its line and goes to bash: a pipe or a redirection.
SHELL_TAIL = re.compile(r"\s(\||>|2>&1)(\s|$)")


def run_line(line, env, fresh=None):
    """Run one example line in the current folder; ``(exit status, stdout, stderr)``.
    ``fresh``: ``(folder, cache)`` for a page's first command (see ``run_first``)."""
    words = shlex.split(line)
    tail = SHELL_TAIL.search(line)
    if words[0] != "stemeval":
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env)
        assert done.returncode == 0, f"$ {line}\n{done.stderr}"
        return 0, done.stdout, done.stderr
    head, rest = (line[:tail.start()], line[tail.start():].strip()) if tail else (line, "")
    merge = rest.startswith("2>&1")
    rest = rest.removeprefix("2>&1").strip()
    argv = shlex.split(head)[1:]
    status, printed, err = (run_first(argv, merge, *fresh) if fresh else
                            run_stemeval(argv, merge))
    if rest:
        printed = subprocess.run(["bash", "-c", f"cat {rest}"], input=printed, text=True,
                                 capture_output=True, env=env, check=True).stdout
    return status, printed, err


def run_stemeval(argv, merge):
    """``stemeval ARGV`` in this process: ``(exit status, stdout, stderr)`` (stderr within
    stdout when ``merge``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out if merge else err):
        status = exit_status(lambda: commands.main(argv))
    return status, out.getvalue(), err.getvalue()


# A page's first command, run in its fresh folder, and what it left there: a later page
# whose first command is the same (``stemeval demo --distances``, a few seconds) starts from
# a copy of that folder and that output, which the same command on the same models gives.
FIRST = {}


def run_first(argv, merge, folder, cache):
    key = (tuple(argv), merge)
    if key not in FIRST:
        before = set(os.listdir(folder))
        result = run_stemeval(argv, merge)
        saved = cache / str(len(FIRST))
        saved.mkdir()
        for name in set(os.listdir(folder)) - before:
            (shutil.copytree if (folder / name).is_dir() else shutil.copy2)(
                folder / name, saved / name)
        FIRST[key] = result, saved
    result, saved = FIRST[key]
    shutil.copytree(saved, folder, dirs_exist_ok=True)
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The pages' models, and (``cache``) where ``run_first`` keeps what it saves."""
    folder = tmp_path_factory.mktemp("models")
    (folder / "cache").mkdir()
    label = AUDIOSET_LABELS.index
    save_original_checkpoint(random_model(label_bias={label("Synthesizer"): 8.0}),
                             folder / "ast.pth")
    save_original_checkpoint(random_model(label_bias={label("Drum kit"): 8.0}),
                             folder / "drums.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(3.0))
    return folder


RESULTS = {}  # page -> [(command, shown, printed)], for the test of an edited example


def run_page(page, models, folder, monkeypatch):
    """Run every example of ``page`` in ``folder``; ``[(command, shown, printed lines)]``."""
    for name in ("ast.pth", "drums.pth", "speech.pb"):
        shutil.copy(models / name, folder / name)
    for name in ("reference", "stemeval"):
        (folder / name).symlink_to(ROOT / name)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(published_files, "DEFAULT_CHECKPOINT", folder / "ast.pth")
    monkeypatch.setattr(published_files, "DEFAULT_SPEECH_MODEL", folder / "speech.pb")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ran = []
    for number, steps in examples(page.read_text(encoding="utf-8")):
        for command, shown in steps:
            fresh = (folder, models / "cache") if not ran else None
            status, printed, err = run_line(command, env, fresh)
            lines = printed.split("\n")
            if lines[-1] == "":
                lines.pop()
            failed = any(line.startswith("error:") for line in shown)
            assert (status != 0) == failed, f"{page.name}:{number}: $ {command}: exit " \
                                            f"status {status}\n{err}"
            ran.append((command, shown, lines))
    return ran


def pages_with_examples():
    return [page for page in doc_pages() if examples(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", pages_with_examples(),
                         ids=lambda page: str(page.relative_to(ROOT)))
def test_each_example_prints_what_it_shows(page, models, tmp_path, monkeypatch):
    RESULTS[page.name] = ran = run_page(page, models, tmp_path, monkeypatch)
    for command, shown, printed in ran:
        check(command, shown, printed)


def test_an_edited_example_fails(models, tmp_path, monkeypatch):
    """The worked example of the tagger-or-map page with the status of its bass stem edited
    to ``[fixed]`` (what the README once claimed), or any one character of a shown line
    changed, no longer passes; an elision takes other lines or text, and only there."""
    page = ROOT / "docs" / "tasks" / "tagger-or-map.md"
    ran = RESULTS.get(page.name) or run_page(page, models, tmp_path, monkeypatch)
    [(command, shown, printed)] = [step for step in ran if "--compare" in step[0]]
    check(command, shown, printed)
    edited = [line.replace("[broke]", "[fixed]") for line in shown]
    assert edited != shown
    with pytest.raises(AssertionError, match=r"\[fixed\] demo-song/bass"):
        check(command, edited, printed)
    for index, line in enumerate(shown):
        if line:
            changed = shown[:index] + [line[:-1] + chr(ord(line[-1]) ^ 1)] + shown[index + 1:]
            assert not matches(tuple(changed), tuple(printed)), line
    assert matches(("a", ELISION, "d"), ("a", "b", "c", "d"))
    assert not matches(("a", ELISION, "d"), ("a", "d"))
    assert matches(("FAD …  […]", "x"), ("FAD 6.4  [5, 8]", "x"))
    assert not matches(("FAD …  […]", "x"), ("KD 6.4  [5, 8]", "x"))


def test_every_shown_command_is_an_example():
    """A command shown with a ``$`` prompt anywhere but in a console block (which runs) would
    be an example no test runs."""
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        for number, language, lines in code_blocks(text):
            assert language == "console" or not any(line.startswith("$ ") for line in lines), \
                f"{page.relative_to(ROOT)}:{number}: a $ command outside a console block"
        outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        assert not re.search(r"^ {4,}\$ ", outside, flags=re.M), \
            f"{page.relative_to(ROOT)}: an indented $ command (make it a console block)"
