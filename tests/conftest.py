"""Fixtures shared by several test files."""

import pytest

from tests.test_model_files import Server


@pytest.fixture
def server():
    """A 127.0.0.1 HTTP server for download tests (see ``Server``), shut down afterwards."""
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
