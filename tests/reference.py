"""The published result files in ../shared/reference/, or a skip saying they are absent."""

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def reference(name):
    """Path of a published reference file; skips the test when the folder is not here."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"the published reference results are not here: {path}")
    return path
