"""The model files: fetched where a machine is online, checked before use, clear when offline.

Nothing here reaches the internet: downloads come from an HTTP server on 127.0.0.1 started by
the test, the hub is a local folder in huggingface_hub's cache layout with HF_HUB_OFFLINE=1,
and "offline" is a closed port on 127.0.0.1.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import stemeval.taggers.published_files as models  # noqa: E402
from stemeval.commands.weights import main as models_main  # noqa: E402
from stemeval.common.errors import UserError  # noqa: E402
from stemeval.labels.audioset import AUDIOSET_LABELS  # noqa: E402
from stemeval.speech.gate import check_speech_graph  # noqa: E402
from stemeval.taggers.ast_model import load_original_checkpoint  # noqa: E402
from stemeval.weights.sources import AST_HUB_ID, SPEECH_MODEL_NAME, SPEECH_MODEL_URL  # noqa: E402
from tests.helpers.ast_weights import SMALL, random_model, save_original_checkpoint  # noqa: E402
from tests.helpers.hf_models import hf_model, put_in_hub_cache  # noqa: E402
from tests.helpers.servers import closed_port  # noqa: E402
from tests.helpers.tf_graphs import write_constant_speech_graph  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent


# --- fixtures: a private layout, a local server, no way out to the internet -----------------

@pytest.fixture(autouse=True)
def layout(tmp_path, monkeypatch):
    """Default files in tmp_path; every address points at a closed local port or an empty cache."""
    port = closed_port()
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", f"http://127.0.0.1:{port}/{SPEECH_MODEL_NAME}")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(models, "DEFAULT_CHECKPOINT",
                        tmp_path / "pretrained_models" / "audio_mdl.pth")
    monkeypatch.setattr(models, "DEFAULT_SPEECH_MODEL", tmp_path / "models" / SPEECH_MODEL_NAME)
    return tmp_path


@pytest.fixture
def graph_bytes(tmp_path):
    return write_constant_speech_graph(tmp_path / "made.pb", 0.0).read_bytes()


def leftovers(folder):
    return sorted(p.name for p in Path(folder).glob("*.part"))


# --- the speech model -----------------------------------------------------------------------

def test_speech_model_download_lands_and_is_used(server, graph_bytes, monkeypatch):
    url = server.serve("/m/" + SPEECH_MODEL_NAME, graph_bytes)
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", url)
    path = models.ensure_speech_model()
    assert path == models.DEFAULT_SPEECH_MODEL
    assert path.read_bytes() == graph_bytes
    check_speech_graph(path)
    assert leftovers(path.parent) == [] and path.stat().st_mode & 0o777 == 0o644
    assert models.ensure_speech_model() == path  # present now: no second download
    assert len(server.hits) == 1


def test_cut_connection_leaves_nothing_and_the_next_run_succeeds(server, graph_bytes, monkeypatch):
    url = server.serve("/" + SPEECH_MODEL_NAME, graph_bytes, cut=True)
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", url)
    host = server.base.removeprefix("http://")
    with pytest.raises(UserError) as error:
        models.ensure_speech_model()
    assert str(error.value) == (
        f"speech model download failed: the connection to {host} was cut after "
        f"{len(graph_bytes) // 2} of {len(graph_bytes) * 2} bytes; nothing was saved, "
        f"run again to retry")
    target = models.DEFAULT_SPEECH_MODEL
    assert not target.exists() and leftovers(target.parent) == []
    server.serve("/" + SPEECH_MODEL_NAME, graph_bytes)
    assert models.ensure_speech_model() == target
    assert target.read_bytes() == graph_bytes


def test_download_that_is_not_a_graph_is_refused_and_removed(server, monkeypatch):
    url = server.serve("/" + SPEECH_MODEL_NAME, b"<html>moved</html>\n" * 20)
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", url)
    with pytest.raises(UserError) as error:
        models.ensure_speech_model()
    assert str(error.value) == (
        f"the file downloaded from {url} is not a usable speech model (Essentia cannot run "
        f"it: Error importing graph. Invalid GraphDef); it was removed")
    assert not models.DEFAULT_SPEECH_MODEL.exists()
    assert leftovers(models.DEFAULT_SPEECH_MODEL.parent) == []


def test_http_error_is_reported(server, monkeypatch):
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", server.base + "/nothing-here.pb")
    with pytest.raises(UserError,
                       match=r"HTTP 404 .* from http://127\.0\.0\.1:\d+/nothing-here\.pb"):
        models.ensure_speech_model()
    assert not models.DEFAULT_SPEECH_MODEL.exists()


def test_explicit_speech_model_is_checked_never_downloaded(server, graph_bytes, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", server.serve("/x.pb", graph_bytes))
    good = tmp_path / "mine.pb"
    good.write_bytes(graph_bytes)
    assert models.ensure_speech_model(good) == good
    with pytest.raises(UserError) as error:
        models.ensure_speech_model(tmp_path / "absent.pb")
    assert str(error.value) == f"speech model {tmp_path / 'absent.pb'} does not exist"
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"not a graph")
    with pytest.raises(UserError, match="is not usable: Essentia cannot run it"):
        models.ensure_speech_model(str(bad))
    assert server.hits == [] and not models.DEFAULT_SPEECH_MODEL.exists()


def test_speech_model_offline_message(layout, monkeypatch):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/{SPEECH_MODEL_NAME}"
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", url)
    with pytest.raises(UserError) as error:
        models.ensure_speech_model()
    folder = layout / "models"
    assert str(error.value) == (
        f"speech model missing: genre_rosamerica-vggish-audioset-1.pb is not in {folder} and "
        f"cannot be downloaded (no connection to 127.0.0.1:{port}: Connection refused); on a "
        f"machine that is online run \"stemeval weights fetch speech-model\" or download "
        f"{url}, and copy the file there, or pass --speech-model PATH")
    assert "\n" not in str(error.value)
    assert not (layout / "models" / SPEECH_MODEL_NAME).exists()


def test_speech_model_url_default_and_override(monkeypatch):
    from stemeval.weights.sources import speech_model_url

    monkeypatch.delenv("STEMEVAL_SPEECH_MODEL_URL")
    assert speech_model_url() == SPEECH_MODEL_URL == (
        "https://essentia.upf.edu/models/legacy/classifiers/genre_rosamerica/"
        "genre_rosamerica-vggish-audioset-1.pb")
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", "http://127.0.0.1:1/m.pb")
    assert speech_model_url() == "http://127.0.0.1:1/m.pb"


# --- AST weights from a URL -----------------------------------------------------------------

def test_checkpoint_url_is_downloaded_and_loaded(server, tmp_path):
    reference = random_model(SMALL, seed=3)
    body = save_original_checkpoint(reference, tmp_path / "src.pth").read_bytes()
    url = server.serve("/w/ast_small.pth?dl=1", body)
    model = models.load_ast(url)
    target = models.DEFAULT_CHECKPOINT.parent / "ast_small.pth"
    assert target.read_bytes() == body and leftovers(target.parent) == []
    fbank = torch.randn(1, 1024, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(fbank), reference(fbank))
    assert not model.training
    models.load_ast(url)  # present: loaded from the folder, not downloaded again
    assert len(server.hits) == 1


@pytest.mark.parametrize("content, reason", [
    ({"module.x": torch.randn(3)}, "not an AST state dict: no tensor 'v.pos_embed'"),
    ("ten_classes", "it has 10 outputs where the AudioSet AST has 527"),
])
def test_checkpoint_url_of_the_wrong_shape_is_refused_and_removed(server, tmp_path, content,
                                                                  reason):
    source = tmp_path / "src.pth"
    if content == "ten_classes":
        from dataclasses import replace

        save_original_checkpoint(random_model(replace(SMALL, num_classes=10)), source)
    else:
        torch.save(content, source)
    url = server.serve("/odd.pth", source.read_bytes())
    with pytest.raises(UserError) as error:
        models.load_ast(url)
    assert str(error.value) == (
        f"the file downloaded from {url} is not usable AST weights ({reason}); it was removed")
    assert not (models.DEFAULT_CHECKPOINT.parent / "odd.pth").exists()
    assert leftovers(models.DEFAULT_CHECKPOINT.parent) == []


def test_checkpoint_url_must_name_a_pth(server):
    with pytest.raises(UserError, match="must end in a file name ending in .pth"):
        models.load_ast(server.base + "/weights.bin")
    assert server.hits == []


def test_local_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(UserError) as error:
        models.load_ast(tmp_path / "none.pth")
    assert str(error.value) == f"AST weights {tmp_path / 'none.pth'} do not exist"
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(UserError, match=rf"^AST weights {junk} are not usable: not a PyTorch"):
        models.load_ast(str(junk))


# --- AST weights from the Hugging Face hub (a local cache, offline) -------------------------

def test_hub_model_converts_and_matches_transformers(layout):
    reference = hf_model()
    put_in_hub_cache(layout / "hub", "someone/ast-small", reference)
    model = models.load_ast("hf:someone/ast-small")
    fbank = torch.randn(2, 1024, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(fbank), reference(fbank).logits, atol=1e-4, rtol=0)
    assert model.config.norm_eps == 1e-12  # Hugging Face weights run with their own config


def test_hub_model_with_other_labels_is_refused(layout):
    labels = list(AUDIOSET_LABELS)
    labels[5] = "Not a sound"
    snapshot = put_in_hub_cache(layout / "hub", "someone/ast-other", hf_model(labels))
    with pytest.raises(UserError) as error:
        models.load_ast("hf:someone/ast-other")
    assert str(error.value) == (
        f"AST weights {snapshot} are not usable: its labels are not AudioSet's: label 5 is "
        f"'Not a sound' where AudioSet has {AUDIOSET_LABELS[5]!r}")
    put_in_hub_cache(layout / "hub", "someone/ast-short", hf_model(AUDIOSET_LABELS[:10]))
    with pytest.raises(UserError, match="it has 10 labels where AudioSet has 527 "
                                        r"\(first difference at index 10\)"):
        models.load_ast("hf:someone/ast-short")


def test_hub_model_not_in_cache_offline(layout):
    with pytest.raises(UserError) as error:
        models.load_ast("hf:someone/absent")
    assert str(error.value) == (
        f"Hugging Face model someone/absent is not in the cache {layout / 'hub'} and cannot "
        f"be downloaded (HF_HUB_OFFLINE is set)")


def test_missing_default_is_fetched_from_the_hub_and_saved_in_the_authors_format(layout):
    reference = hf_model(seed=1)
    put_in_hub_cache(layout / "hub", AST_HUB_ID, reference)
    default = models.DEFAULT_CHECKPOINT
    model = models.load_ast()
    assert default.is_file() and leftovers(default.parent) == []
    state = torch.load(default, map_location="cpu", weights_only=True)
    assert all(key.startswith(("module.v.", "module.mlp_head.")) for key in state)
    original = load_original_checkpoint(default)
    assert original.config.norm_eps == 1e-6 and model.config == original.config
    fbank = torch.randn(1, 1024, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(fbank), original(fbank))
        # Only the LayerNorm epsilons differ from the Hugging Face run (1e-6 vs 1e-12).
        torch.testing.assert_close(model(fbank), reference(fbank).logits, atol=1e-3, rtol=0)


def test_missing_default_with_other_labels_saves_nothing(layout):
    labels = list(AUDIOSET_LABELS)
    labels[0] = "Talk"
    put_in_hub_cache(layout / "hub", AST_HUB_ID, hf_model(labels))
    with pytest.raises(UserError, match=r"is not usable: its labels are not AudioSet's: label "
                                        r"0 is 'Talk' where AudioSet has 'Speech'; "
                                        r"nothing was saved"):
        models.load_ast()
    assert not models.DEFAULT_CHECKPOINT.exists()
    assert leftovers(models.DEFAULT_CHECKPOINT.parent) == []


def checkpoint_offline_message(folder, why):
    return (
        f"AST weights missing: audio_mdl.pth is not in {folder} and cannot be downloaded "
        f"({why}); on a machine that is online run \"stemeval weights fetch checkpoint\" "
        f"(it saves the Hugging Face model MIT/ast-finetuned-audioset-10-10-0.4593 as that "
        f"file) and copy the file there, or pass --checkpoint PATH (the authors' "
        f"audioset_10_10_0.4593.pth or a Hugging Face model folder)")


def test_checkpoint_offline_message_with_hf_hub_offline(layout):
    with pytest.raises(UserError) as error:
        models.load_ast()
    assert str(error.value) == checkpoint_offline_message(
        layout / "pretrained_models", "HF_HUB_OFFLINE is set")
    assert not models.DEFAULT_CHECKPOINT.exists()


def test_checkpoint_offline_message_without_connection(layout, monkeypatch):
    from huggingface_hub import constants

    port = closed_port()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(UserError) as error:
        models.load_ast()
    assert str(error.value) == checkpoint_offline_message(
        layout / "pretrained_models", f"no connection to 127.0.0.1:{port}: Connection refused")


def test_present_default_that_fails_says_how_to_replace_it():
    default = models.DEFAULT_CHECKPOINT
    default.parent.mkdir(parents=True)
    default.write_bytes(b"truncated")
    with pytest.raises(UserError, match=r"; delete it and run \"stemeval weights fetch "
                                        r"checkpoint\"$"):
        models.load_ast()


def test_authors_file_placed_by_hand_serves_as_the_default(layout, monkeypatch):
    from tests.helpers.ast_weights import random_model, save_original_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.DEFAULT_CHECKPOINT.parent.mkdir(parents=True)
    placed = models.DEFAULT_CHECKPOINT.parent / "audioset_10_10_0.4593.pth"
    save_original_checkpoint(random_model(), placed)
    assert models.load_ast().config.embed_dim == 64
    assert not models.DEFAULT_CHECKPOINT.exists()


# --- the command ----------------------------------------------------------------------------

def test_status_reports_present_and_missing(layout, graph_bytes, capsys):
    models.DEFAULT_SPEECH_MODEL.parent.mkdir()
    models.DEFAULT_SPEECH_MODEL.write_bytes(graph_bytes)
    assert models_main(["status"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        f"AST weights: {models.DEFAULT_CHECKPOINT}",
        "  missing",
        f"  from: Hugging Face hub {AST_HUB_ID}, converted to the authors' format",
        "  get it with: stemeval weights fetch checkpoint",
    ]
    assert out.splitlines()[4:6] == [
        f"speech model: {models.DEFAULT_SPEECH_MODEL}",
        f"  present, {len(graph_bytes) / 1000:.1f} kB, checks passed",
    ]
    models.DEFAULT_CHECKPOINT.parent.mkdir()
    save_original_checkpoint(random_model(), models.DEFAULT_CHECKPOINT)
    assert models_main(["status"]) == 0
    assert "  missing" not in capsys.readouterr().out


def test_status_command_runs_as_a_module(tmp_path, graph_bytes):
    speech = tmp_path / "speech.pb"
    speech.write_bytes(b"junk")
    env = dict(os.environ, HF_HUB_OFFLINE="1", STEMEVAL_SPEECH_MODEL_URL="http://127.0.0.1:9/x.pb")
    result = subprocess.run(
        [sys.executable, "-m", "stemeval", "weights", "status", "--checkpoint", str(tmp_path / "no.pth"),
         "--speech-model", str(speech)],
        cwd=tmp_path, env=dict(env, PYTHONPATH=str(PROJECT)), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"AST weights: {tmp_path / 'no.pth'}", "  missing",
                         "  from: given with --checkpoint"]
    assert lines[3] == f"speech model: {speech}"
    assert lines[4].startswith("  present, 4 bytes, check failed: Essentia cannot run it")


def test_fetch_prepares_files_and_reports_each_failure(server, graph_bytes, monkeypatch, capsys):
    monkeypatch.setenv("STEMEVAL_SPEECH_MODEL_URL", server.serve("/s.pb", graph_bytes))
    assert models_main(["fetch", "speech-model"]) == 0
    assert capsys.readouterr().out == f"speech model ready: {models.DEFAULT_SPEECH_MODEL}\n"
    assert models_main(["fetch"]) == 2  # the hub is offline: one line for the checkpoint
    captured = capsys.readouterr()
    assert captured.out == f"speech model ready: {models.DEFAULT_SPEECH_MODEL}\n"
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: AST weights missing")


def test_command_line_errors_are_one_line():
    with pytest.raises(UserError, match=r"^fetch: unknown file 'weights'"):
        models_main(["fetch", "weights"])
    with pytest.raises(UserError, match=r"see stemeval weights --help\)$"):
        models_main(["download"])


def test_default_paths_are_absolute_in_the_project(monkeypatch):
    monkeypatch.undo()  # the layout fixture moved them into tmp_path
    assert models.DEFAULT_CHECKPOINT == PROJECT / "AST" / "pretrained_models" / "audio_mdl.pth"
    assert models.DEFAULT_SPEECH_MODEL == PROJECT / "AST" / "models" / SPEECH_MODEL_NAME
    assert models.DEFAULT_CHECKPOINT.is_absolute()


# --- status, fetch and runs agree; every problem at once --------------------------------------

def test_status_fetch_and_runs_use_the_authors_file_placed_by_hand(graph_bytes, capsys):
    models.DEFAULT_CHECKPOINT.parent.mkdir(parents=True)
    placed = models.DEFAULT_CHECKPOINT.parent / "audioset_10_10_0.4593.pth"
    save_original_checkpoint(random_model(), placed)
    models.DEFAULT_SPEECH_MODEL.parent.mkdir()
    models.DEFAULT_SPEECH_MODEL.write_bytes(graph_bytes)
    assert models_main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"AST weights: {placed}"
    assert lines[1].endswith(", checks passed")
    assert models_main(["fetch", "checkpoint"]) == 0
    assert capsys.readouterr().out == f"AST weights ready: {placed}\n"
    assert models.load_model_files()[1] == models.DEFAULT_SPEECH_MODEL
    assert not models.DEFAULT_CHECKPOINT.exists()


def test_both_missing_files_are_named_at_once(layout):
    with pytest.raises(UserError) as error:
        models.load_model_files()
    message = str(error.value)
    assert message.startswith(checkpoint_offline_message(layout / "pretrained_models",
                                                         "HF_HUB_OFFLINE is set"))
    assert "; and speech model missing: genre_rosamerica-vggish-audioset-1.pb is not in" in message


def test_speech_graph_given_as_checkpoint_is_named_as_such(tmp_path, graph_bytes):
    for name in ("speech.pb", "speech.bin"):
        (tmp_path / name).write_bytes(graph_bytes)
        with pytest.raises(UserError, match=r"are not usable: it looks like a TensorFlow graph "
                                            r"\(a \.pb file such as the --speech-model file\), "
                                            r"not PyTorch AST weights$"):
            models.load_ast(str(tmp_path / name))
