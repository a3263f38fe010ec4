"""The label lists and dataset maps give the published proposed label for every published row."""

import csv
import hashlib

import pytest

from stemeval.datasets import category_map
from stemeval.labels.audioset import AUDIOSET_LABELS, CLASS_LABELS_CSV, INSTRUMENT_LABELS
from stemeval.scoring.published_rows import PUBLISHED_RESULTS


def reference_rows(dataset):
    with open(PUBLISHED_RESULTS[dataset], newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("dataset,count", [("dsd100", 300), ("moisesdb", 2542)])
def test_maps_give_published_proposed_labels(dataset, count):
    rows = reference_rows(dataset)
    assert len(rows) == count
    instruments = {label.lower() for label in INSTRUMENT_LABELS}
    for row in rows:
        assert row["prediction"] in instruments, row
        assert category_map(dataset).category(row["prediction"]) == row["proposed_label"], row


def test_label_lists():
    assert len(AUDIOSET_LABELS) == 527
    assert len(INSTRUMENT_LABELS) == 91
    assert INSTRUMENT_LABELS <= set(AUDIOSET_LABELS)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_label_order_is_the_published_table():
    """The shipped table is whisper-at 0.5's byte for byte, and the labels are read from it."""
    assert sha256(CLASS_LABELS_CSV) == \
        "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"
    with open(CLASS_LABELS_CSV, newline="", encoding="utf-8") as handle:
        assert [row["display_name"] for row in csv.DictReader(handle)] == AUDIOSET_LABELS


@pytest.mark.parametrize("dataset,digest", [
    ("dsd100", "014c0f57751f782df8b3080c0f02a9ba995c17aa27c7cd3dd3c46157597cd420"),
    ("moisesdb", "6d963433514a9236830000d4236035a6f264699716e251673cbf3a7136a0422a")])
def test_published_rows_are_shipped_unchanged(dataset, digest):
    """The files of the source repository at commit 765402a, byte for byte."""
    assert sha256(PUBLISHED_RESULTS[dataset]) == digest
