"""Fixtures shared by several test files (their builders live in ``tests/helpers``)."""

import pytest

from tests.helpers.servers import Server


@pytest.fixture
def server():
    """A 127.0.0.1 HTTP server for download tests (see ``Server``), shut down afterwards."""
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """``torch.hub.get_dir()/checkpoints`` under tmp_path; local addresses are reached directly."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"
