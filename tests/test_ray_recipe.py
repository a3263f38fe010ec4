"""The Ray recipe of docs/tasks/ray.md, run as written (slow): a token made by step 1, given
to a head and a second node on 127.0.0.1 and to the sweep in ``RAY_AUTH_TOKEN`` with
``RAY_AUTH_MODE=token``, and the sweep run by the ``stemeval`` command with no token file
in its home folder; the same sweep without ``RAY_AUTH_MODE`` prints the line the page shows,
naming the token. And (fast) the line a failed join prints for each cause.

Each ``ray start`` gets, besides the recipe's own words, only what keeps this cluster apart
from any other on the machine: 127.0.0.1, one CPU, its own temporary folder and ports, no
dashboard. Only the processes this test started are stopped: those whose environment holds
its token."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stemeval.sweep import ray_runner
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tasks" / "ray.md"
BIN = Path(sys.executable).parent
STEMS = ["s1/bass/a.wav", "s1/drums/b.wav", "s2/bass/c.wav"]
CONFIG = """output = "out"
taggers = ["ast"]
conditions = ["clean"]
[datasets.toy]
layout = "moisesdb"
folder = "tree"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
workers = 0
chunk = 1
"""


def recipe():
    """The recipe's steps: ``[(comment, [command lines])]``, from the page's bash block."""
    text = PAGE.read_text(encoding="utf-8")
    [block] = [block for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)
               if "ray start --head" in block]
    steps = []
    for line in block.splitlines():
        if line.startswith("#"):
            steps.append((line, []))
        elif line.strip():
            steps[-1][1].append(line)
    return steps


def documented_error():
    """The line the page shows for the sweep of step 5 without RAY_AUTH_MODE."""
    [line] = [line.strip() for line in PAGE.read_text(encoding="utf-8").splitlines()
              if line.startswith("    error: cannot start or join")]
    return line


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project(folder):
    for index, relative in enumerate(STEMS):
        path = folder / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, tone(1.2, 16000, 200 + 100 * index), 16000)
    save_original_checkpoint(random_model(), folder / "ast.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0))
    (folder / "CONFIG.toml").write_text(CONFIG)


def stop_processes_holding(token):
    """SIGTERM, then SIGKILL, to every process whose environment holds ``token``."""
    marker = f"RAY_AUTH_TOKEN={token}".encode()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(pid) != os.getpid() and marker in Path(f"/proc/{pid}/environ").read_bytes():
                    os.kill(int(pid), sig)
            except (OSError, ValueError):
                continue
        time.sleep(2)


@pytest.mark.slow
def test_the_recipe_as_written_on_a_local_cluster(tmp_path):
    steps = recipe()
    assert [len(commands) for _, commands in steps] == [1, 2, 1, 1, 1], steps
    (make_token,), exports, (head,), (other,), (sweep,) = (commands for _, commands in steps)
    project(tmp_path)
    port = free_port()
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"

    def words(line):
        return line.replace("HEAD:6379", f"127.0.0.1:{port}").replace(
            "--port=6379", f"--port={port}").split()

    token = subprocess.run(["bash", "-c", make_token], capture_output=True, text=True,
                           check=True, env={**os.environ, "PATH": path}).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(PATH=path, HOME=str(tmp_path / "home"))
    for line in exports:
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value.replace("<the token of step 1>", token)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == token
    (tmp_path / "home").mkdir()

    def ports(*names):
        return [f"--{name}={free_port()}" for name in names]

    apart = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
             *ports("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                    "runtime-env-agent-port", "metrics-export-port")]
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's sockets need a short path
    try:
        started = subprocess.run(
            [*words(head), *apart, f"--temp-dir={temp}", "--include-dashboard=false",
             *ports("ray-client-server-port")], capture_output=True, text=True, env=env,
            timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        joined = subprocess.run([*words(other), *apart[:3], *ports(
            "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
            "metrics-export-port")], capture_output=True, text=True, env=env, timeout=180)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert not (tmp_path / "home" / ".ray" / "auth_token").exists()
        done = subprocess.run(words(sweep) + ["--quiet"], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "ran 3 rows as Ray tasks" in done.stderr + done.stdout
        cell = (tmp_path / "out" / "toy" / "ast" / "clean.csv").read_text().splitlines()
        assert len(cell) == 1 + len(STEMS)
        # The same sweep without RAY_AUTH_MODE: the line the page shows, naming the token.
        no_mode = {key: value for key, value in env.items() if key != "RAY_AUTH_MODE"}
        failed = subprocess.run(words(sweep.replace("CONFIG.toml", "CONFIG.toml --output o2")),
                                cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={**no_mode, "STEMEVAL_RAY_TIMEOUT": "120"})
        assert failed.returncode == 2, failed.stderr
        [line] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
        shown = re.escape(documented_error().replace("HEAD:6379", f"127.0.0.1:{port}"))
        assert re.fullmatch(shown.replace(re.escape("<address>"), r"\S+"), line), line
    finally:
        stop_processes_holding(token)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize("environment, message, authentication, cause", [
    ({}, "ConnectionError: Failed to connect to Ray cluster at 10.0.0.1:6379", False,
     "this process has no Ray token, and a cluster with token authentication"),
    ({"RAY_AUTH_TOKEN": "ab"}, "ConnectionError: Failed to connect to Ray cluster at x:1",
     False, "this process does not send its Ray token (RAY_AUTH_MODE is not token)"),
    ({"RAY_AUTH_TOKEN": "ab", "RAY_AUTH_MODE": "token"},
     "ConnectionError: Failed to connect to Ray cluster at x:1", False,
     "is this process's Ray token the head's? A cluster with token authentication does not "
     "answer another one"),
    ({"RAY_AUTH_MODE": "token"}, "AuthenticationError: no authentication token was found",
     True, "this process has no Ray token: set RAY_AUTH_MODE=token"),
    ({"RAY_AUTH_TOKEN": "ab", "RAY_AUTH_MODE": "token"}, "AuthenticationError: bad token",
     True, "the cluster refused this process's Ray token"),
    ({"RAY_AUTH_MODE": "token"}, "RuntimeError: something else", False,
     "RuntimeError: something else"),
])
def test_a_failed_join_names_its_cause(monkeypatch, tmp_path, environment, message,
                                       authentication, cause):
    """Ray says only ``Failed to connect`` when a cluster with token authentication ignores
    this process; the line names the token where it can be the cause."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    line = ray_runner._not_joined("the Ray cluster at x:1", message, authentication)
    assert line.startswith("cannot start or join the Ray cluster at x:1: ")
    assert cause in line, line
    if not authentication:
        assert message in line
