"""sweep.py on Ray when things go wrong: no cluster at the address, a peer that never answers
(a wait bounded by STEMEVAL_RAY_TIMEOUT, naming a missing token), and a task whose worker is
killed every time it is tried (one line naming the cells; the rows already written stay and
the same command run again finishes the sweep). Everything listens on 127.0.0.1 only."""

import csv
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import ROOT, run_script
from tests.helpers.python_hooks import hooked_env
from tests.helpers.servers import closed_port
from tests.helpers.signals import tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

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


def project(folder):
    for index, relative in enumerate(STEMS):
        path = folder / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, tone(1.2, 16000, 200 + 100 * index), 16000)
    save_original_checkpoint(random_model(), folder / "ast.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0))
    (folder / "sweep.toml").write_text(CONFIG)
    return folder


def sweep(folder, *args, env=None, process=False):
    """sweep.py run in this process as its own would run it (tests/helpers/cli.py: each
    refusal below comes before Ray starts here), or with ``process`` (Ray's workers started
    with test hooks) in a process of its own."""
    if not process:
        return run_script("sweep.py", "sweep.toml", "--quiet", *args, cwd=folder, env=env)
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), "sweep.toml", "--quiet",
                           *args], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=env)


def error_line(result):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_nothing_listening_at_the_address_is_one_line_at_once(tmp_path):
    port = closed_port()
    started = time.monotonic()
    line = error_line(sweep(project(tmp_path), "--ray", f"127.0.0.1:{port}"))
    assert time.monotonic() - started < 60
    assert line.startswith(f"error: cannot join the Ray cluster at 127.0.0.1:{port}: "
                           f"Connection refused (start it there with ray start --head --port "
                           f"{port}")


def test_a_peer_that_never_answers_is_given_up_after_the_timeout(tmp_path):
    """A cluster with token authentication ignores a process without its token, as this
    silent peer does; with no token here, the line names that cause."""
    project(tmp_path)
    with socket.socket() as peer:
        peer.bind(("127.0.0.1", 0))
        peer.listen(8)
        port = peer.getsockname()[1]
        env = hooked_env(tmp_path / "hooks")
        env.update(STEMEVAL_RAY_TIMEOUT="3", HOME=str(tmp_path / "home"))
        env.pop("RAY_AUTH_TOKEN", None)
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        started = time.monotonic()
        line = error_line(sweep(tmp_path, "--ray", f"127.0.0.1:{port}", env=env))
    assert time.monotonic() - started < 60
    assert line == (f"error: cannot join the Ray cluster at 127.0.0.1:{port}: no answer within "
                    f"3 s; this process has no Ray token, and a cluster with token "
                    f"authentication (on by default since Ray 2.60) does not answer without "
                    f"one: set RAY_AUTH_MODE=token and give this process the head's token (ray "
                    f"get-auth-token, on the head) in RAY_AUTH_TOKEN or ~/.ray/auth_token (set "
                    f"STEMEVAL_RAY_TIMEOUT to wait longer)")


def test_a_bad_timeout_is_one_line(tmp_path):
    env = hooked_env(tmp_path / "hooks")
    env["STEMEVAL_RAY_TIMEOUT"] = "soon"
    line = error_line(sweep(project(tmp_path), "--ray", f"127.0.0.1:{closed_port()}", env=env))
    assert line.startswith("error: STEMEVAL_RAY_TIMEOUT=soon: give the seconds to wait")


@pytest.mark.slow
def test_a_task_whose_worker_keeps_dying_names_its_cell_and_the_rerun_finishes(tmp_path):
    """The shard of s2/ kills its worker each time (Ray retries it, then gives up); the shards
    before it are written, and the same command without the fault completes the cell."""
    folder = project(tmp_path)
    line = error_line(sweep(folder, "--ray", env=hooked_env(tmp_path / "hooks",
                                                            crash_ray_tasks="s2/"),
                            process=True))
    assert line == ("error: sweep cell(s) toy/ast/clean failed on Ray at the shard from "
                    "tree/s2/bass/c.wav: its worker process died (killed or crashed) more times "
                    "than Ray retries a task (WorkerCrashedError); the rows already written are "
                    "kept: run the same command again to go on")
    cell = folder / "out" / "toy" / "ast" / "clean.csv"
    with open(cell, newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [
            "tree/s1/bass/a.wav", "tree/s1/drums/b.wav"]
    again = sweep(folder, "--ray", env=hooked_env(tmp_path / "hooks"), process=True)
    assert again.returncode == 0, again.stderr
    with open(cell, newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [
            f"tree/{relative}" for relative in STEMS]
