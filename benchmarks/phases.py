"""A launched run's start, phase by phase: for ``startup.py`` and ``gpu_run.py``.

``command(work, ...)`` runs ``analyze_moisesdb.py`` in a fresh Python process that notes
the wall clock, in seconds after ``environment(marks)`` was made, when reading the model
files begins and ends (``load_model_files``) and when a stem's preparation begins
(``Preparer.__call__``, in whichever process prepares it); ``read(marks)`` gives the
phases. The launched process imports the project's modules before the script does, so
its imports all count before the model files are read.
"""

import os
import sys
import time

TARGET_SECONDS = 3.0  # the first stem begins within this of launch, beside reading the weights

WRAPPER = """
import os, runpy, sys, time
sys.path.insert(0, os.getcwd())
launch, marks = float(os.environ["STARTUP_LAUNCH"]), os.environ["STARTUP_MARKS"]

def mark(name):
    with open(marks, "a") as handle:
        handle.write(f"{name} {time.time() - launch:.3f}\\n")

import stemeval.engine.pipeline as pipeline
import stemeval.taggers.published_files as published

prepare, load = pipeline.Preparer.__call__, published.load_model_files

def timed_prepare(self, stem):
    mark("prepare")
    return prepare(self, stem)

def timed_load(*args, **kwargs):
    mark("load_start")
    try:
        return load(*args, **kwargs)
    finally:
        mark("load_end")

pipeline.Preparer.__call__, published.load_model_files = timed_prepare, timed_load
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def command(work, device, output, *options):
    """The command line, run from the project's folder, of ``analyze_moisesdb.py`` with
    marks, on a benchmark's ``work`` folder: the stems in ``moisesdb/``, ``ast.pth`` and
    ``speech.pb``."""
    return [sys.executable, "-c", WRAPPER, "analyze_moisesdb.py", str(work / "moisesdb"),
            "--checkpoint", str(work / "ast.pth"), "--speech-model", str(work / "speech.pb"),
            "--device", device, "--output", str(output), "--quiet", *options]


def environment(marks):
    """The launched process's environment; launch time is now. Removes stale marks."""
    marks.unlink(missing_ok=True)
    return {**os.environ, "STARTUP_LAUNCH": repr(time.time()), "STARTUP_MARKS": str(marks)}


def read(marks):
    """Seconds after launch: imports (until the model files are read), weights (reading
    them), first stem (its preparation begins), and over target (first stem minus 3 s and
    the weights; at or below 0 meets it)."""
    seen = {}
    for line in marks.read_text().splitlines():
        name, seconds = line.split()
        seen.setdefault(name, float(seconds))  # the first of each: the first stem's
    weights = seen["load_end"] - seen["load_start"]
    return {"imports_s": round(seen["load_start"], 2), "weights_s": round(weights, 2),
            "first_stem_s": round(seen["prepare"], 2),
            "over_target_s": round(seen["prepare"] - TARGET_SECONDS - weights, 2)}
