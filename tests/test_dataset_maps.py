"""The label lists and dataset maps give the published proposed label for every published row."""

import csv
import pytest

from AST.labels import AUDIOSET_LABELS, INSTRUMENT_LABELS, map_prediction
from tests.reference import reference



def reference_rows(name):
    with open(reference(name), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name,dataset,count", [
    ("results_dsd100.csv", "dsd100", 300), ("results_moises.csv", "moisesdb", 2542)])
def test_maps_give_published_proposed_labels(name, dataset, count):
    rows = reference_rows(name)
    assert len(rows) == count
    instruments = {label.lower() for label in INSTRUMENT_LABELS}
    for row in rows:
        assert row["prediction"] in instruments, row
        assert map_prediction(row["prediction"], dataset) == row["proposed_label"], row


def test_label_lists():
    assert len(AUDIOSET_LABELS) == 527
    assert len(INSTRUMENT_LABELS) == 91
    assert INSTRUMENT_LABELS <= set(AUDIOSET_LABELS)


def test_label_order_is_the_published_table():
    with open(reference("class_labels_indices.csv"), newline="", encoding="utf-8") as handle:
        assert [row["display_name"] for row in csv.DictReader(handle)] == AUDIOSET_LABELS
