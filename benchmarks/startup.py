"""Start-up: how long after launch a run's first stem is being prepared, against the target
of 3 s plus the time it takes to read the weights.

Makes in ``--work`` a few MoisesDB-shaped stems, a full-size random AST in the authors'
format and a VGGish-sized speech graph (as ``gpu_run.py`` makes them), then launches
``analyze_moisesdb.py --limit 2`` ``--runs`` times from each ``--project`` checkout in turn
(alternating, so that every checkout sees the machine in the same state), each noting its
phases (``phases.py``). For each run and as medians:

- imports: launch until the model files begin to be read (Python, PyTorch, timm and the
  project);
- weights: reading and checking both model files (and Essentia's first import, which the
  speech graph's check makes);
- first stem: launch until the first stem is being prepared;
- over target: first stem minus (3 s + weights); at or below 0 meets the target.

    python benchmarks/startup.py --work /tmp/startup [--runs 3] [--device cpu|cuda|auto]
                                 [--project DIR ...] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import phases  # noqa: E402  (benchmarks/ is on sys.path)
from gpu_run import make_speech_graph, make_stems  # noqa: E402

from stemeval.taggers.ast_model import ASTConfig  # noqa: E402
from tests.helpers.ast_weights import random_model, save_original_checkpoint  # noqa: E402


def make_files(work):
    """The stems and both model files, made once per ``work`` folder."""
    stems_folder = work / "moisesdb"
    if not stems_folder.exists():
        make_stems(stems_folder, 4, 0.5)
    if not (work / "ast.pth").exists():
        save_original_checkpoint(random_model(ASTConfig(), seed=0), work / "ast.pth")
    if not (work / "speech.pb").exists():
        make_speech_graph(work / "speech.pb", sorted(stems_folder.rglob("*.wav")), "cpu")


def launch(project, work, device, index):
    """One run from ``project``: its phases in seconds after launch."""
    output, marks = work / f"run{index}.csv", work / f"run{index}.marks"
    for stale in (output, *work.glob(f"run{index}.csv.*")):
        stale.unlink(missing_ok=True)
    environment = phases.environment(marks)
    start = time.perf_counter()
    process = subprocess.run(
        phases.command(work, device, output, "--limit", "2"), cwd=project,
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{project}: exit {process.returncode}: {process.stderr[-2000:]}")
    return {"project": str(project), **phases.read(marks), "process_s": round(total, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="a folder for the stems and model files (made once)")
    parser.add_argument("--runs", type=int, default=3, help="runs per checkout")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--project", type=Path, nargs="+", default=[ROOT], metavar="DIR",
                        help="checkouts to launch from, in turn (default: this one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    make_files(args.work)
    machine = {"cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
               "device": args.device, "runs": args.runs}
    print(json.dumps(machine), flush=True)
    runs = []
    for index in range(args.runs):
        for project in args.project:
            runs.append(launch(project.resolve(), args.work, args.device, len(runs)))
            print(json.dumps(runs[-1]), flush=True)
    medians = []
    for project in args.project:
        mine = [run for run in runs if run["project"] == str(project.resolve())]
        medians.append({"project": str(project.resolve()), "median": {
            key: round(statistics.median(run[key] for run in mine), 2)
            for key in ("imports_s", "weights_s", "first_stem_s", "over_target_s",
                        "process_s")}})
        print(json.dumps(medians[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "runs": runs,
                                         "medians": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
