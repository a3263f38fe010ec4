"""The header of a comparison names each side by its file and, where its rows were derived
again with another map (``stemeval score FILE --map MAP --compare ...``), by that map too:
a file compared with itself under another map says which side is which."""

from stemeval.report.text import format_compare

COMPARISON = {"a": "run.csv", "b": "run.csv", "name_a": "A", "name_b": "B",
              "matched_by": "path", "accuracy_a": (1, 2), "accuracy_b": (0, 2), "matched": 0,
              "identical": 0, "differ": [], "only_in_a": [], "only_in_b": [],
              "duplicates_a": 0, "duplicates_b": 0}


def test_a_side_derived_again_is_named_by_its_map():
    assert format_compare(COMPARISON)[0] == \
        "Comparison of run.csv (A) with run.csv (B), rows matched by path:"
    assert format_compare({**COMPARISON, "map_a": "other.toml"})[0] == (
        "Comparison of run.csv re-mapped with other.toml (A) with run.csv (B), rows matched "
        "by path:")
    published = {**COMPARISON, "a": "reference/published_results_dsd100.csv",
                 "name_a": "published", "name_b": "mine", "map_b": "other.toml"}
    assert format_compare(published)[0] == (
        "Comparison of reference/published_results_dsd100.csv (published) with run.csv "
        "re-mapped with other.toml (mine), rows matched by path:")
