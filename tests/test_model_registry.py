"""The one model-file registry for every tagger's weights: URL files in torch hub's cache,
hub models in the Hugging Face cache; fetched from a local 127.0.0.1 server, checked,
refused with one line, and listed by ``python -m AST.models``."""

import pytest
import torch

from AST.models import registry
from AST.models.__main__ import main as models_main
from AST.models.registry import HubWeights, UrlWeights
from stemeval.errors import UserError
from tests.test_model_files import Server, closed_port, hf_model, put_in_hub_cache

CLASSES = 527


def build(path):
    """A strict loader: one tensor ``w`` of AudioSet's class count."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ValueError("not a PyTorch weights file") from None
    if set(state) != {"w"}:
        raise ValueError(f"unexpected tensors {sorted(state)}")
    if state["w"].shape != (CLASSES,):
        raise ValueError(f"it has {state['w'].shape[0]} classes where AudioSet has {CLASSES}")
    return state["w"]


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def weights_bytes(tmp_path, classes=CLASSES):
    torch.save({"w": torch.arange(classes, dtype=torch.float32)}, tmp_path / "src.pth")
    return (tmp_path / "src.pth").read_bytes()


def url_file(url):
    return UrlWeights("toy", "toy weights", url, "toy_mAP=0.1.pth", build)


def test_download_lands_in_torch_hub_checkpoints_and_loads(server, tmp_path):
    body = weights_bytes(tmp_path)
    model_file = url_file(server.serve("/toy.pth", body))
    weights, path = model_file.load()
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "toy_mAP=0.1.pth"
    assert path.read_bytes() == body and weights.shape == (CLASSES,)
    model_file.load()
    assert len(server.hits) == 1  # cached: not downloaded again
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy_mAP=0.1.pth"]


def test_truncated_download_is_refused(server, tmp_path):
    body = weights_bytes(tmp_path)
    model_file = url_file(server.serve("/toy.pth", body, cut=True))
    host = server.base.removeprefix("http://")
    with pytest.raises(UserError) as error:
        model_file.load()
    assert str(error.value) == (
        f"toy weights download failed: the connection to {host} was cut after "
        f"{len(body) // 2} of {len(body) * 2} bytes; nothing was saved, run again to retry")
    assert not model_file.path.parent.exists() or list(model_file.path.parent.iterdir()) == []


def test_wrong_file_is_refused_and_removed(server, tmp_path):
    model_file = url_file(server.serve("/toy.pth", weights_bytes(tmp_path, classes=10)))
    with pytest.raises(UserError) as error:
        model_file.load()
    assert str(error.value) == (
        f"the file downloaded from {model_file.url} is not usable toy weights (it has 10 "
        f"classes where AudioSet has 527); it was removed")
    assert list(model_file.path.parent.iterdir()) == []


def test_offline_message_byte_for_byte(tmp_path):
    port = closed_port()
    model_file = url_file(f"http://127.0.0.1:{port}/toy.pth")
    with pytest.raises(UserError) as error:
        model_file.load()
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert str(error.value) == (
        f"toy weights missing: toy_mAP=0.1.pth is not in {folder} and cannot be downloaded "
        f"(no connection to 127.0.0.1:{port}: Connection refused); on a machine that is "
        f"online run \"python -m AST.models fetch toy\" or download "
        f"http://127.0.0.1:{port}/toy.pth, and copy the file there, or pass --checkpoint PATH")


def test_given_checkpoint_is_checked_never_downloaded(server, tmp_path):
    model_file = url_file(server.serve("/toy.pth", weights_bytes(tmp_path)))
    (tmp_path / "bad.pth").write_bytes(b"junk")
    with pytest.raises(UserError) as error:
        model_file.load(tmp_path / "bad.pth")
    assert str(error.value) == (
        f"toy weights {tmp_path / 'bad.pth'} are not usable: not a PyTorch weights file")
    with pytest.raises(UserError, match="do not exist"):
        model_file.load(tmp_path / "absent.pth")
    assert server.hits == []


def test_hub_weights_from_the_cache_and_offline(tmp_path):
    snapshot = put_in_hub_cache(tmp_path / "hub", "someone/toy", hf_model())
    model_file = HubWeights("toyhub", "toy hub model", "someone/toy", lambda folder: folder)
    assert model_file.load() == (snapshot, snapshot)
    assert model_file.load("hf:someone/toy")[1] == snapshot
    with pytest.raises(UserError) as error:
        model_file.load("hf:someone/absent")
    assert str(error.value) == (
        f"Hugging Face model someone/absent is not in the cache {tmp_path / 'hub'} and cannot "
        f"be downloaded (HF_HUB_OFFLINE is set)")


def test_fetch_and_status_list_tagger_files(server, tmp_path, monkeypatch, capsys):
    model_file = url_file(server.serve("/toy.pth", weights_bytes(tmp_path)))
    monkeypatch.setattr(registry, "tagger_files", lambda: {"toy": model_file})
    assert models_main(["status", "toy"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"toy weights: {model_file.path}", "  missing", f"  from: {model_file.url}",
        "  get it with: python -m AST.models fetch toy"]
    assert models_main(["fetch", "toy"]) == 0
    assert capsys.readouterr().out == f"toy weights ready: {model_file.path}\n"
    assert models_main(["status", "toy"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("checks passed")
    with pytest.raises(UserError, match=r"^status: unknown file 'nope' \(choose from "
                                        r"checkpoint, speech-model, toy\)$"):
        models_main(["status", "nope"])
