"""A ``sitecustomize`` for test subprocesses: hide packages (as if not installed), make a
sweep's Ray tasks kill their worker, or hold a run still once it has written some rows (so
that a test's signal lands mid-run however fast the run is), with no test hook in the
project's own code.

``hooked_env(folder, block=..., crash_ray_tasks=PART, pause_after_rows=N)`` writes
``folder/sitecustomize.py`` and returns an environment whose ``PYTHONPATH`` starts with
``folder`` (Ray passes it on to its workers), so every Python process of the test imports it
at start-up.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = '''
import importlib.abc
import importlib.util
import os
import sys

BLOCKED = set(filter(None, os.environ.get("TEST_BLOCK_PACKAGES", "").split(",")))
CRASH = os.environ.get("TEST_CRASH_RAY_TASKS")
PAUSE_AFTER_ROWS = int(os.environ.get("TEST_PAUSE_AFTER_ROWS", "0"))
REAL = {}


def pausing(write):
    """``ResultWriter.write`` that, once this process has written TEST_PAUSE_AFTER_ROWS rows,
    sleeps until a signal ends the run."""
    import time

    written = 0

    def write_then_pause(self, row):
        nonlocal written
        write(self, row)
        written += 1
        if written == PAUSE_AFTER_ROWS:
            time.sleep(600)

    return write_then_pause


def crash_or_run(options, dataset, category_map, stems, cells, **engine):
    """A sweep shard's task that kills its Ray worker process, every time it is tried, when
    one of its stems' paths holds TEST_CRASH_RAY_TASKS; other shards run as usual."""
    if any(CRASH in stem.path for stem in stems):
        os._exit(1)
    import stemeval.sweep.work  # noqa: F401  (fills REAL in a fresh worker)

    return REAL["evaluate_shard"](options, dataset, category_map, stems, cells, **engine)


def pause_writer(module):
    module.ResultWriter.write = pausing(module.ResultWriter.write)


def crash_shards(module):
    REAL["evaluate_shard"] = module.evaluate_shard
    module.evaluate_shard = crash_or_run  # pickled by reference to this module


class Hooks(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        change = {"stemeval.sweep.work": CRASH and crash_shards,
                  "stemeval.runfiles.results": PAUSE_AFTER_ROWS and pause_writer}.get(name)
        if not change:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            change(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Hooks())
'''


def hooked_env(folder, block=(), crash_ray_tasks=None, pause_after_rows=0):
    """The environment of a subprocess with the hooks above, and this project importable:
    ``block`` packages cannot be imported; a sweep's Ray task whose stems include a path
    holding ``crash_ray_tasks`` kills its worker each time it is tried; a run that has
    written ``pause_after_rows`` rows to a results CSV sleeps until a signal ends it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(ROOT)]),
               TEST_BLOCK_PACKAGES=",".join(block))
    if crash_ray_tasks:
        env["TEST_CRASH_RAY_TASKS"] = crash_ray_tasks
    if pause_after_rows:
        env["TEST_PAUSE_AFTER_ROWS"] = str(pause_after_rows)
    return env
