"""A private torch hub folder for tests of default weights files, with no proxy in the way."""

import pytest


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """``torch.hub.get_dir()/checkpoints`` under tmp_path; local addresses are reached directly."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"
