"""A sweep's throughput on a local Ray cluster of two nodes against one node of the same size.

Starts a Ray head node on 127.0.0.1 with ``--cpus`` CPUs, runs a sweep on it (``sweep.py
--ray``), adds a second node of the same size, runs the same sweep into a fresh folder, and
prints both times, their ratio, and whether the two sweeps (and a local one, with
``--local``) wrote the same files. It also prints each sweep's steady throughput: the rows
written per second from the first shard's rows to the last's (the cell files are watched
while the sweep runs), which leaves out what each sweep pays once, whatever its size:
``sweep.py``'s start, each node's first task importing and loading its models, and the
summary at the end. On the 2-core development machine, compare one node given
one CPU with two such nodes. Ray 2.60 authenticates every connection with a token, which
``ray start --head`` does not make: the nodes and the sweep here are given one token in
``RAY_AUTH_TOKEN`` (``$RAY_AUTH_TOKEN`` if set, else a random one), with
``RAY_AUTH_MODE=token`` set for all of them. Only the Ray processes it started
are stopped (they are told apart by their temporary folder), with SIGKILL after SIGTERM.

    .venv/bin/python benchmarks/ray_scaling.py [--stems 24] [--seconds 40] [--cpus 1] [--local]
"""

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import RATE, synthetic_stem  # noqa: E402  (benchmarks/ is on sys.path)

from stemeval.taggers.ast_model import ASTConfig  # noqa: E402
from tests.helpers.ast_weights import random_model, save_original_checkpoint  # noqa: E402
from tests.helpers.tf_graphs import write_vggish_graph  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
CONFIG = """
output = "{output}"
taggers = ["ast"]
conditions = ["clean", "noise:snr=10"]
[datasets.bench]
layout = "moisesdb"
folder = "moisesdb"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
chunk = 2
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_project(folder, stems, seconds):
    for index in range(stems):
        path = folder / "moisesdb" / f"song{index // 3:03d}" / ("bass", "drums", "vocals")[
            index % 3] / f"stem{index:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, synthetic_stem(seconds, index), RATE, subtype="PCM_16")
    config = ASTConfig(embed_dim=384, depth=6, num_heads=6, mlp_hidden=1536)  # DeiT-small
    save_original_checkpoint(random_model(config, seed=0), folder / "ast.pth")
    write_vggish_graph(folder / "speech.pb", 0)


# Ray 2.60's token authentication: ray start --head makes no token, so the cluster gets one of
# its own (64 hex digits, as Ray's), given to every node and the sweep (docs/tasks/ray.md).
ENV = {**os.environ, "RAY_AUTH_MODE": "token",
       "RAY_AUTH_TOKEN": os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32)}


def ray_start(*args):
    subprocess.run([RAY, "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)


def ray_stop(temp):
    """Stop the Ray processes of the cluster whose head has the folder ``temp`` (and no
    others); a joining node's processes name it too."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _started_in(temp):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(2)


def _started_in(temp):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(temp).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                yield int(pid)
        except OSError:
            continue


def written_rows(folder):
    """The rows in the cell files (``<dataset>/<tagger>/<condition>.csv``) under ``folder``
    so far: whole lines, headers left out."""
    return sum(max(path.read_bytes().count(b"\n") - 1, 0) for path in folder.glob("*/*/*.csv"))


def steady_rate(samples):
    """Rows per second from the first sample with rows to the first with all of them."""
    total = samples[-1][1]
    first = next((when, rows) for when, rows in samples if rows)
    last = next(when for when, rows in samples if rows == total)
    return (total - first[1]) / (last - first[0]) if last > first[0] else float("nan")


def sweep(folder, output, *ray):
    """Run the sweep ``output``; ``(seconds, steady rows per second)``."""
    (folder / f"{output}.toml").write_text(CONFIG.format(output=output))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "sweep.py"), f"{output}.toml",
                                "--quiet", *ray], cwd=folder, stdout=subprocess.DEVNULL, env=ENV)
    samples = []
    while process.poll() is None:
        samples.append((time.perf_counter() - start, written_rows(folder / output)))
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"sweep {output} failed: exit status {process.returncode}")
    samples.append((seconds, written_rows(folder / output)))
    return seconds, steady_rate(samples)


def files(folder):
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*.csv"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of each node (default 1)")
    parser.add_argument("--local", action="store_true", help="also time a local sweep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        folder, temp = Path(tmp), Path(tmp) / "ray"
        make_project(folder, args.stems, args.seconds)
        address = f"127.0.0.1:{free_port()}"
        try:
            ray_start("--head", f"--port={address.split(':')[1]}", f"--temp-dir={temp}",
                      "--include-dashboard=false", f"--num-cpus={args.cpus}")
            one = sweep(folder, "one", "--ray", address)
            ray_start(f"--address={address}", f"--num-cpus={args.cpus}")  # the head's folder
            two = sweep(folder, "two", "--ray", address)
        finally:
            ray_stop(temp)
        same = files(folder / "one") == files(folder / "two")
        print(f"{args.stems} stems x 2 conditions, {args.seconds:g} s each; nodes of "
              f"{args.cpus} CPU(s): one node {one[0]:.1f} s, two nodes {two[0]:.1f} s, "
              f"ratio {one[0] / two[0]:.2f}; steady throughput: one node {one[1]:.2f} rows/s, "
              f"two nodes {two[1]:.2f} rows/s, ratio {two[1] / one[1]:.2f}; files "
              f"{'identical' if same else 'DIFFER'}")
        if args.local:
            local = sweep(folder, "local")
            same_local = files(folder / "local") == files(folder / "one")
            print(f"local sweep {local[0]:.1f} s, steady {local[1]:.2f} rows/s; files "
                  f"{'identical' if same_local else 'DIFFER'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
