"""A whole run on a GPU machine: stems per second, CPU cores busy, GPU busy, and CUDA's rows
against the CPU's.

Made for a machine that has PyTorch, timm, numpy and tensorboard but not Essentia's
TensorFlow: it needs beside them only the wheels of essentia (the plain 14 MB one: the same
MonoLoader, Resample and TensorflowInputVGGish code), soundfile, cffi, pycparser, pydub and
timm 1.0.31 (about 18 MB together; see README.md). Everything it measures it first makes on
the machine it runs on:

1. the stem set: ``--stems`` MoisesDB-shaped stems (``<song>/<category>/<stem>.wav``, 44.1
   kHz stereo 16-bit WAV, about ``--minutes`` long, with silent sections as real stems have),
   written by every core at once;
2. a full-size random AST in the authors' format and a VGGish-sized speech graph, its
   speech bias set so that the stems' speech scores sit below the gate, as music's do;
3. ``analyze_moisesdb.py --device cuda`` with its defaults (fp32), and with each number of
   ``--gpu-workers`` asked for: the whole process's time, the time to the first row written,
   its start phase by phase (imports, reading the weights, the first stem's preparation
   begun: ``phases.py``), the loop's stems per second (the sidecar's), CPU time over wall
   time (the cores busy, worker processes included), and the GPU's utilisation sampled by
   nvidia-smi every 200 ms; with ``--fp16``, the same with ``--precision fp16`` and the rows
   it changes;
4. ``--device cpu`` on the first ``--cpu-stems`` stems, with its default workers and each
   number of ``--cpu-workers`` asked for: stems per second, and its rows against the CUDA
   run's rows of the same stems.

    python benchmarks/gpu_run.py --work /tmp/gpu_run [--stems 160] [--minutes 3.5]
        [--cpu-stems 48] [--gpu-workers N,...] [--cpu-workers N,...] [--fp16] [--json FILE]

Without a GPU it runs every step on the CPU (a dry run of the script itself).
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import phases  # noqa: E402  (benchmarks/ is on sys.path)
from throughput import RATE, synthetic_stem  # noqa: E402

from stemeval.audio.decode import decode  # noqa: E402
from stemeval.audio.resample import resample_16k  # noqa: E402
from stemeval.speech.graph import GraphRunner, PatchActivations  # noqa: E402
from stemeval.taggers.ast_model import ASTConfig  # noqa: E402
from tests.helpers.ast_weights import random_model, save_original_checkpoint  # noqa: E402
from tests.helpers.tf_graphs import (  # noqa: E402
    REAL_VGGISH_CHANNELS,
    REAL_VGGISH_FC,
    SPEECH_COLUMN,
    write_vggish_graph,
)

CATEGORIES = ("drums", "bass", "guitar", "vocals", "piano", "other_keys", "percussion",
              "bowed_strings", "wind", "other_plucked")


def _write_stem(job):
    index, path, seconds = job
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, synthetic_stem(seconds, index), RATE, subtype="PCM_16")


def make_stems(folder, count, minutes):
    """The MoisesDB-shaped stem set, written by every core; returns its folder."""
    rng = np.random.default_rng(0)
    jobs = [(index, folder / f"song{index // 4:03d}" / CATEGORIES[index % len(CATEGORIES)] /
             f"stem{index:03d}.wav", 60 * minutes * rng.uniform(0.8, 1.2))
            for index in range(count)]
    with Pool(os.cpu_count()) as pool:
        pool.map(_write_stem, jobs)
    return folder


def make_speech_graph(path, stems, device):
    """A VGGish-sized graph whose speech scores (on a few of the stems) sit near 25: below
    the gate, so every stem reaches the AST, and above 8, so the Speech rule is live."""
    def write(bias):
        return write_vggish_graph(path, 0, channels=REAL_VGGISH_CHANNELS, fc=REAL_VGGISH_FC,
                                  head_hidden=100, speech_scale=-1.0, speech_bias=bias)

    runner = GraphRunner.from_pb(write(0.0), output_name="model/dense_1/add").to(device).eval()
    logits = []
    for stem in stems[:4]:
        decoded = decode(str(stem))
        units = PatchActivations(runner, resample_16k(decoded.essentia_mono[:30 * RATE],
                                                      decoded.rate))
        logits.append(units.expand(units.compute(0, units.units))[:, SPEECH_COLUMN])
    logits = np.concatenate(logits).astype(np.float64)
    bias = min(np.arange(-60, 60, 0.1),
               key=lambda b: abs(100 * np.mean(1 / (1 + np.exp(-(logits + b)))) - 25))
    write(float(bias))


class GpuSampler:
    """nvidia-smi's GPU utilisation every 200 ms while a run goes."""

    def __init__(self):
        self.samples = []
        self._process = None
        if shutil.which("nvidia-smi"):
            self._process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", "200"], stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self._process.stdout:
            if line.strip().isdigit():
                self.samples.append(int(line))

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            self._process.wait()
        return {"gpu_busy_mean_percent": round(float(np.mean(self.samples)), 1)
                if self.samples else None, "gpu_samples": len(self.samples)}


def analyze(work, name, device, *options):
    """One ``analyze_moisesdb.py`` run as a subprocess, timed and sampled."""
    output, marks = work / f"{name}.csv", work / f"{name}.marks"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = GpuSampler() if device == "cuda" else None
    environment = phases.environment(marks)
    start = time.perf_counter()
    process = subprocess.Popen(
        phases.command(work, device, output, *options), cwd=ROOT,
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_row = None
    while process.poll() is None:
        if first_row is None and output.exists() and output.read_bytes().count(b"\n") >= 2:
            first_row = time.perf_counter() - start
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    gpu = sampler.stop() if sampler else {}
    if process.returncode != 0:
        raise SystemExit(f"{name}: exit {process.returncode}: {process.stderr.read()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sidecar = json.loads(Path(f"{output}.json").read_text())
    with open(output, newline="", encoding="utf-8") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    return {"run": name, "device": device, "options": list(options), "stems": len(rows),
            "errors": sum(row["prediction"] == "error" for row in rows.values()),
            "process_seconds": round(seconds, 1),
            "process_stems_per_second": round(len(rows) / seconds, 2),
            "loop_stems_per_second": sidecar["stems_per_second"],
            "first_row_seconds": round(first_row, 1) if first_row else None,
            **phases.read(marks),
            "cpu_seconds": round(cpu, 1), "cores_busy": round(cpu / seconds, 1),
            **gpu}, rows


def _numbers(text):
    return [int(value) for value in text.split(",") if value]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a folder for the stems")
    parser.add_argument("--stems", type=int, default=160)
    parser.add_argument("--minutes", type=float, default=3.5)
    parser.add_argument("--cpu-stems", type=int, default=48)
    parser.add_argument("--gpu-workers", type=_numbers, default=[], metavar="N,...",
                        help="also time the CUDA run with these --workers")
    parser.add_argument("--cpu-workers", type=_numbers, default=[], metavar="N,...",
                        help="also time the CPU run with these --workers")
    parser.add_argument("--fp16", action="store_true", help="also time --precision fp16")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stems = sorted(make_stems(args.work / "moisesdb", args.stems, args.minutes).rglob("*.wav"))
    save_original_checkpoint(random_model(ASTConfig(), seed=0), args.work / "ast.pth")
    make_speech_graph(args.work / "speech.pb", stems, device)
    made = time.perf_counter() - start
    machine = {"gpu": torch.cuda.get_device_name() if device == "cuda" else None,
               "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
               "numpy": np.__version__, "stems": len(stems), "minutes_each": args.minutes,
               "audio_hours": round(sum(soundfile.info(s).duration for s in stems) / 3600, 2),
               "setup_seconds": round(made, 1)}
    print(json.dumps(machine), flush=True)

    results = []

    def report(result):
        results.append(result)
        print(json.dumps(result), flush=True)

    cuda, cuda_rows = analyze(args.work, "cuda_fp32", device)
    report(cuda)
    for workers in args.gpu_workers:
        report(analyze(args.work, f"cuda_fp32_w{workers}", device, "--workers", str(workers))[0])
    if args.fp16:
        fp16, fp16_rows = analyze(args.work, "cuda_fp16", device, "--precision", "fp16")
        fp16["rows_equal_to_fp32"] = sum(fp16_rows[path] == row
                                         for path, row in cuda_rows.items())
        report(fp16)
    differ = 0
    for workers in [None, *args.cpu_workers]:
        options = ["--limit", str(args.cpu_stems)] + (["--workers", str(workers)] if workers
                                                       else [])
        cpu, cpu_rows = analyze(args.work, f"cpu_fp32_w{workers or 'default'}", "cpu", *options)
        cpu["rows_equal_to_cuda"] = sum(cuda_rows[path] == row for path, row in cpu_rows.items())
        differ += cpu["stems"] - cpu["rows_equal_to_cuda"]
        report(cpu)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "runs": results}, indent=2) + "\n")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
