"""Every tagger works from a plain install: the environment ``./run.sh`` makes, built from
requirements.txt alone (scripts/setup.sh with VENV=.venv-runtime), imports every tagger's
module, runs a tiny CLAP and a tiny non-AST Hugging Face classifier through the command
line, and asks a tiny AST run's files every analysis question (kept scores re-mapped,
labels, oracle map and intervals, the leaderboard's paired test, probe and set distances).

The only network use in this test is pip reaching the package index while setup.sh builds
that environment (the first time: a few minutes, PyTorch is large). The environment is kept
in the project's ``.venv-runtime`` (ignored by git) and reused while the requirements files
are unchanged, as setup.sh stamps it, so a rerun costs seconds. The runs themselves are
offline (HF_HUB_OFFLINE) on models made here.
"""

import csv
import os
import subprocess
from pathlib import Path

import pytest

from stemeval.taggers import HF_ENTRY, TAGGERS
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.clap_models import save_tiny_clap
from tests.helpers.hf_models import hf_wav2vec2
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-runtime"
RATE = 22050

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime_python():
    """The python of the runtime environment, built or reused by scripts/setup.sh."""
    done = subprocess.run([str(ROOT / "scripts" / "setup.sh"), "requirements.txt"],
                          env=dict(os.environ, VENV=str(VENV)), capture_output=True, text=True,
                          timeout=3000)
    assert done.returncode == 0, done.stderr
    return str(VENV / "bin" / "python")


def offline(python, *args, cwd):
    return subprocess.run([python, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1",
                                                PYTHONPATH=str(ROOT)))


def test_every_tagger_module_imports(runtime_python, tmp_path):
    modules = [entry.module for entry in (*TAGGERS.values(), HF_ENTRY)]
    done = offline(runtime_python, "-c", f"import importlib; "
                   f"[importlib.import_module(m) for m in {modules!r}]", cwd=ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("tagger, build", [
    ("clap", save_tiny_clap), ("hf:someone/w2v-audioset", hf_wav2vec2)])
def test_a_tiny_model_runs_through_the_command_line(runtime_python, tmp_path, tagger, build):
    build(tmp_path / "model")
    (tmp_path / "tree" / "song").mkdir(parents=True)
    for index, name in enumerate(("bass", "drums")):
        write_wav(tmp_path / "tree" / "song" / f"{name}.wav",
                  concat(tone(1.5, RATE, 200 + 150 * index), silence(0.7, RATE),
                         tone(0.6, RATE, 600)), RATE)
    graph = write_constant_speech_graph(tmp_path / "music.pb", logit_for_score(3.0))
    done = offline(runtime_python, ROOT / "analyze_dsd100.py", "tree", "--tagger", tagger,
                   "--checkpoint", tmp_path / "model", "--speech-model", graph, "--quiet",
                   "--output", "rows.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == ["bass", "drums"]
    assert all(row["prediction"] not in ("", "error") for row in rows)


def test_the_analysis_commands_run_on_a_run_s_files(runtime_python, tmp_path):
    """The scoring and analysis commands need only requirements.txt (scipy, scikit-learn):
    --map from kept scores, --labels, --oracle with a probe, --stats, the leaderboard's
    paired test, probe.py and setdistance.py, on the files of one tiny AST run."""
    save_original_checkpoint(random_model(seed=3), tmp_path / "ast.pth")
    for song in range(6):
        for index, name in enumerate(("bass", "drums", "vocals")):
            path = tmp_path / "tree" / f"song{song}" / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, concat(tone(1.2, RATE, 110 * (index + 1) + 37 * song, seed=song),
                                   silence(0.5, RATE), tone(0.5, RATE, 500 + 20 * song)), RATE)
    graph = write_constant_speech_graph(tmp_path / "music.pb", logit_for_score(3.0))
    done = offline(runtime_python, ROOT / "analyze_dsd100.py", "tree", "--checkpoint", "ast.pth",
                   "--speech-model", graph, "--quiet", "--output", "rows.csv",
                   "--embeddings", "rows.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    dsd_map = ROOT / "stemeval" / "datasets" / "maps" / "dsd100.toml"
    commands = [
        [ROOT / "computeaccuracy.py", "rows.csv", "--map", dsd_map, "--labels", "--stats"],
        [ROOT / "computeaccuracy.py", "rows.csv", "--oracle", "--embeddings", "rows.npz",
         "--folds", "3"],
        [ROOT / "computeaccuracy.py", "rows.csv", "rows.csv", "--stats"],
        [ROOT / "probe.py", "rows.npz", "--zero-shot", "rows.csv", "--folds", "3"],
        [ROOT / "setdistance.py", "rows.npz", "rows.npz", "--k", "2", "--boot", "20"],
    ]
    for command in commands:
        done = offline(runtime_python, *command, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.strip(), command


def test_the_package_installs_and_works_from_another_folder(runtime_python, tmp_path):
    """``pip install`` of the project gives the ``stemeval`` command and the Python API
    outside the checkout: no ``AST/`` or ``reference/`` beside the installed package (its
    data travel inside it), the published model files' home moves to ``$STEMEVAL_HOME``,
    the help, the weights report and a demo run work from another folder, and
    requirements.txt's pins satisfy the package's declared dependencies (``pip check``)."""
    site = tmp_path / "site"
    done = subprocess.run([runtime_python, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(site), str(ROOT)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([runtime_python, "-m", "pip", "check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), HF_HUB_OFFLINE="1", STEMEVAL_HOME=str(tmp_path / "home"),
               STEMEVAL_SPEECH_MODEL_URL="http://127.0.0.1:9/x.pb")

    def command(*args):
        return subprocess.run([str(site / "bin" / "stemeval"), *map(str, args)], cwd=work,
                              env=env, capture_output=True, text=True, timeout=600)

    where = subprocess.run([runtime_python, "-c", "import stemeval; print(stemeval.__file__); "
                            "print(stemeval.score, stemeval.evaluate)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site / "stemeval" / "__init__.py")), where.stderr
    done = command("--help")
    assert done.returncode == 0 and "evaluate" in done.stdout and "weights" in done.stdout
    done = command("evaluate", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: stemeval evaluate")
    done = command("weights", "status", "--checkpoint", tmp_path / "no.pth")
    assert (done.returncode, done.stderr) == (1, "")
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"AST weights: {tmp_path / 'no.pth'}", "  missing"]
    assert (f"speech model: {tmp_path / 'home' / 'models'}/genre_rosamerica-vggish-audioset-1.pb"
            in lines)
    save_original_checkpoint(random_model(seed=3), tmp_path / "ast.pth")
    graph = write_constant_speech_graph(tmp_path / "music.pb", logit_for_score(3.0))
    done = command("demo", "--checkpoint", tmp_path / "ast.pth", "--speech-model", graph,
                   "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Accuracy:" in done.stdout
    assert (work / "demo" / "results_dsd100.csv").exists()
    assert (work / "demo" / "results_moises.csv").exists()
    done = command("score", "demo/results_dsd100.csv", "--compare", "published")
    assert done.returncode == 0, done.stderr
