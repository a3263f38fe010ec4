"""The published result rows shipped in ``reference/``: the figures a run is compared with."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "reference"
PUBLISHED_RESULTS = {
    "dsd100": FOLDER / "published_results_dsd100.csv",
    "moisesdb": FOLDER / "published_results_moises.csv",
}
