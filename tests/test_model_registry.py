"""The one model-file registry: every tagger's weights listed, fetched (from a local
127.0.0.1 server) and checked by ``stemeval weights``, with one line per failure."""


import pytest
import torch

from stemeval.commands.weights import main as models_main
from stemeval.common.errors import UserError
from stemeval.taggers import weight_files
from stemeval.weights.checks import CheckpointError
from stemeval.weights.sources import HubRepo
from stemeval.weights.sources import Released as Source

CLASSES = 527


def check(path):
    """A strict loader: one tensor ``w`` of AudioSet's class count."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError("not a PyTorch weights file") from None
    if state["w"].shape != (CLASSES,):
        raise CheckpointError(f"it has {state['w'].shape[0]} classes where AudioSet has 527")
    return state["w"]


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def toy(server, tmp_path, classes=CLASSES, cut=False):
    """Registry entries with one toy released file served by ``server``."""
    torch.save({"w": torch.zeros(classes)}, tmp_path / "src.pth")
    url = server.serve("/toy.pth", (tmp_path / "src.pth").read_bytes(), cut=cut)
    source = Source(title="toy weights", url=url, file_name="toy_mAP=0.1.pth", size="1 kB",
                    licence="none")
    return {"toy": weight_files.ReleasedFile("toy", source, check)}


def test_the_taggers_with_weights_are_registered():
    files = weight_files.tagger_files()
    assert {"panns-cnn14", "passt"} <= set(files)
    assert files["panns-cnn14"].path.parent.name == "checkpoints"
    assert files["panns-cnn14"].origin().startswith("https://zenodo.org/record/3987831/")


def test_status_then_fetch_then_status(server, tmp_path, monkeypatch, capsys):
    files = toy(server, tmp_path)
    monkeypatch.setattr(weight_files, "tagger_files", lambda: files)
    path = tmp_path / "torch" / "hub" / "checkpoints" / "toy_mAP=0.1.pth"
    assert models_main(["status", "toy"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"toy weights: {path}", "  missing", f"  from: {files['toy'].source.url}",
        "  get it with: stemeval weights fetch toy"]
    assert models_main(["fetch", "toy"]) == 0
    assert capsys.readouterr().out == f"toy weights ready: {path}\n"
    assert models_main(["status", "toy"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("checks passed")
    path.write_bytes(b"junk")
    assert models_main(["status", "toy"]) == 1
    assert "check failed: not a PyTorch weights file" in capsys.readouterr().out
    with pytest.raises(UserError, match=r"^status: unknown file 'nope' \(choose from "
                                        r"checkpoint, speech-model, toy\)$"):
        models_main(["status", "nope"])


@pytest.mark.parametrize("classes, cut", [(10, False), (CLASSES, True)])
def test_wrong_or_truncated_download_is_refused_in_one_line(server, tmp_path, monkeypatch,
                                                           capsys, classes, cut):
    files = toy(server, tmp_path, classes=classes, cut=cut)
    monkeypatch.setattr(weight_files, "tagger_files", lambda: files)
    assert models_main(["fetch", "toy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert ("was cut after" if cut else "(it has 10 classes where AudioSet has 527); "
            "it was removed") in err
    assert not files["toy"].path.exists()


def test_hub_model_entry_offline(tmp_path):
    entry = weight_files.HubModel("clap", HubRepo("someone/clapish", licence="none",
                                              files=("*.json",)),
                              load=lambda folder, categories: None)
    assert entry.path == tmp_path / "hub" / "models--someone--clapish"
    assert entry.origin() == "Hugging Face hub someone/clapish"
    with pytest.raises(UserError) as error:
        entry.fetch()
    assert str(error.value) == (
        f"Hugging Face model someone/clapish is not in the cache {tmp_path / 'hub'} and "
        f"cannot be downloaded (HF_HUB_OFFLINE is set)")
