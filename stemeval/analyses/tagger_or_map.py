"""Is a miss the tagger's or the map's? ``computeaccuracy.py``'s ``--map``, ``--labels`` and
``--oracle``, on the rows of one results CSV.

- **Re-mapping** (``--map FILE``): every row derived again from the run's kept scores
  (``stemeval.runfiles.kept_scores``) with the published pick and another map, as a run with that
  map would have written it.
- **Where the labels land** (``--labels``): the tagger's picks (the ``prediction`` column)
  against the ground truth, and for each ground-truth category the picks its map counted as
  it, counted as another category, or left to ``other`` (named by no category).
- **The map's share** (``--oracle``): the oracle map (``stemeval.scoring.stats.oracle_map``: each
  pick mapped to the category it most often is, learned on training folds grouped by track
  and scored on the held-out tracks) against the rows' own map, per category. Its gain over
  the rows' map is what a better map could win; its misses are the tagger's (or the gate's:
  rows the speech gate sent to speech, and error rows, keep their rows under any map). With
  the run's embeddings, the probe's recall (``stemeval.analyses.probes``) stands beside it: what the
  embedding knows.

A stem the speech gate sent to speech is known from the kept scores (``gated``) where the
run kept them, else from its row speech,speech. Groups (tracks) come from the ``group``
column (``--details``), else from the kept scores, which hold every stem's group, else,
for rows of the published layouts (DSD100, MoisesDB, as ``stemeval.scoring.published_rows`` recognises
them: the published rows too), from the path: the song folder, the song id.
"""

from stemeval.analyses import probes
from stemeval.common.errors import UserError
from stemeval.datasets.categories import read_map
from stemeval.labels.matching import normalise
from stemeval.report.text import align
from stemeval.runfiles.results import ERROR
from stemeval.scoring.published_rows import dataset_of, group_of

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.runfiles.embeddings, stemeval.runfiles.kept_scores, stemeval.scoring.stats.

GATED, ERRORS = "speech (gate)", "error"


def remap(results, rows, kept, map_file):
    """The rows of ``results`` derived again from ``kept`` with the map ``map_file``."""
    from stemeval.runfiles.kept_scores import rederive, scores_path

    category_map = read_map(map_file)
    if kept is None:
        raise UserError(f"{results}: no kept scores {scores_path(results)} beside it (the run "
                        f"was made before scores were kept, or they were moved), so its rows "
                        f"cannot be derived again with --map; run the evaluation again")
    return rederive(rows, kept, category_map, results)


def remap_heading(results, kept, map_file):
    return [f"Re-mapped: every row of {results} derived again from its kept scores "
            f"{kept.file} with the published pick and the map {map_file}; these are not the "
            f"rows in the file."]


def groups_of(rows, kept, results):
    """Each row's group (track), or a UserError naming the rows that have none."""
    layout = dataset_of(rows)
    groups = []
    for row in rows:
        path = row.get("path") or ""
        group = (row.get("group") or "").strip()
        if not group and kept is not None and path in kept.stems:
            group = kept.stems[path][1].strip()
        if not group and layout is not None:
            group = group_of(path, layout)
        groups.append(group)
    if not all(groups):
        missing = next(row.get("path") for row, group in zip(rows, groups) if not group)
        raise UserError(f"{results}: {groups.count('')} of its {len(rows)} rows have no group "
                        f"(track), e.g. {missing}, so the folds cannot be grouped by track; "
                        f"give a CSV written with --details, or keep its kept scores beside it")
    return groups


def _pick(row, gated):
    prediction = normalise(row.get("prediction"))
    return GATED if gated else ERRORS if prediction == ERROR else prediction


# --- Where the labels land -------------------------------------------------------------


def labels_table(rows, gated):
    """``{pick: {ground truth: stems}}`` and the ground-truth categories, sorted."""
    table, truths = {}, set()
    for row, flag in zip(rows, gated):
        truth = normalise(row.get("label"))
        truths.add(truth)
        counts = table.setdefault(_pick(row, flag), {})
        counts[truth] = counts.get(truth, 0) + 1
    return table, sorted(truths)


def landing(rows, gated):
    """Per ground-truth category: its stems, and its picks by where they landed: ``right``
    (mapped to it), ``elsewhere`` ({pick: {category: stems}}), ``other`` (named by no
    category), ``gated`` and ``errors`` (counts)."""
    found = {}
    for row, flag in zip(rows, gated):
        truth = normalise(row.get("label"))
        entry = found.setdefault(truth, {"stems": 0, "right": {}, "elsewhere": {}, "other": {},
                                         "gated": 0, "errors": 0})
        entry["stems"] += 1
        pick, proposed = _pick(row, flag), normalise(row.get("proposed_label"))
        if pick in (GATED, ERRORS):
            entry["gated" if pick == GATED else "errors"] += 1
        elif proposed == truth:
            entry["right"][pick] = entry["right"].get(pick, 0) + 1
        elif proposed == "other":
            entry["other"][pick] = entry["other"].get(pick, 0) + 1
        else:
            to = entry["elsewhere"].setdefault(pick, {})
            to[proposed] = to.get(proposed, 0) + 1
    return dict(sorted(found.items()))


def _most_first(counts):
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def format_labels(rows, gated):
    """The ``--labels`` report: the pick x ground-truth table, then each category's picks."""
    table, truths = labels_table(rows, gated)
    totals = {pick: sum(counts.values()) for pick, counts in table.items()}
    lines = ["Where the labels land (rows: the tagger's pick, most frequent first; columns: "
             "ground truth; cells: stems):"]
    cells = [["pick", *truths, "all"]]
    for pick, total in _most_first(totals):
        cells.append([pick, *(str(table[pick].get(truth, 0)) for truth in truths), str(total)])
    cells.append(["all", *(str(sum(counts.get(truth, 0) for counts in table.values()))
                           for truth in truths), str(len(rows))])
    lines += align(cells)
    lines += ["", "Per ground-truth category, its stems' picks: mapped to it, mapped to another "
                  "category, or fallen to other (named by no category of the map):"]
    for truth, entry in landing(rows, gated).items():
        right = sum(entry["right"].values())
        lines.append(f"  {truth} ({entry['stems']} stems, {right} right)")
        lines.append(f"    mapped to {truth}: " + _listed(entry["right"]))
        elsewhere = sorted(((pick, to, count) for pick, targets in entry["elsewhere"].items()
                            for to, count in targets.items()), key=lambda x: (-x[2], x[0], x[1]))
        lines.append("    mapped elsewhere: " + (", ".join(
            f"{pick} {count} ({to})" for pick, to, count in elsewhere) or "-"))
        lines.append("    fell to other: " + _listed(entry["other"]))
        for key, name in (("gated", "gated as speech"), ("errors", "errors")):
            if entry[key]:
                lines.append(f"    {name}: {entry[key]}")
    return lines


def _listed(counts):
    return ", ".join(f"{pick} {count}" for pick, count in _most_first(counts)) or "-"


# --- The map's share -------------------------------------------------------------------


def oracle_share(rows, gated, groups, folds, seed, results):
    """Per ground-truth category (and ``all``): stems, right under the rows' map, misses
    gated as speech, error rows, the tagger/map's other misses, and right under the oracle
    map; the oracle is learned and scored on the rows the tagger picked for."""
    from stemeval.scoring.stats import oracle_map

    truths = [normalise(row.get("label")) for row in rows]
    picks = [_pick(row, flag) for row, flag in zip(rows, gated)]
    right = [truth == normalise(row.get("proposed_label")) for truth, row in zip(truths, rows)]
    tagged = [index for index, pick in enumerate(picks) if pick not in (GATED, ERRORS)]
    if not tagged:
        raise UserError(f"{results}: --oracle: each of its {len(rows)} rows was gated as speech "
                        f"or is an error row, so the tagger picked for none of them and there "
                        f"is no map to learn; --labels shows where they went")
    try:
        oracle = oracle_map([picks[i] for i in tagged], [truths[i] for i in tagged],
                            [groups[i] for i in tagged], folds=folds, seed=seed)
    except ValueError as error:
        raise UserError(f"{results}: --oracle: {error} among the rows the tagger picked for "
                        f"(--folds sets the folds)") from None
    oracle_right = list(right)
    for index, guess in zip(tagged, oracle.predictions):
        oracle_right[index] = guess == truths[index]
    table = {}
    for index, truth in enumerate(truths):
        for key in (truth, "all"):
            entry = table.setdefault(key, {"stems": 0, "right": 0, "gated": 0, "errors": 0,
                                           "tagger_or_map": 0, "oracle_right": 0})
            entry["stems"] += 1
            entry["right"] += right[index]
            entry["oracle_right"] += oracle_right[index]
            if not right[index]:
                entry["gated" if picks[index] == GATED else "errors" if picks[index] == ERRORS
                      else "tagger_or_map"] += 1
    categories = sorted(key for key in table if key != "all")
    return {key: table[key] for key in categories + ["all"]}


def probe_recall(embeddings, results, folds, seed):
    """``{category: (right, stems)}`` of the probe on the run's embeddings, cross-validated
    with folds grouped by track, and ``(right, stems)`` over all its stems."""
    from stemeval.runfiles.embeddings import check_embeddings_stems, read_embeddings

    data = read_embeddings(embeddings)
    probes.check_pairing(data, results)
    check_embeddings_stems(data, results)
    data = probes.without_single_stems(data)
    pooled = probes.probe_embeddings(data, folds, seed)["pooled"][probes.PROBE]
    recall = {label: (pooled["correct"][i], pooled["support"][i])
              for i, label in enumerate(pooled["labels"]) if pooled["support"][i]}
    recall["all"] = (sum(right for right, _ in recall.values()),
                     sum(stems for _, stems in recall.values()))
    return recall


def _share(right, stems):
    return f"{right} ({100.0 * right / stems:.2f}%)" if stems else "-"


def format_oracle(share, folds, seed, probe=None):
    """The ``--oracle`` report: one line per category (see ``oracle_share``)."""
    errors = any(entry["errors"] for entry in share.values())
    head = ["category", "stems", "this map", "gated as speech", *(["errors"] if errors else []),
            "tagger/map", "oracle map", "map's share", *(["probe"] if probe else [])]
    cells = [head]
    for category, entry in share.items():
        gain = entry["oracle_right"] - entry["right"]
        cells.append([
            category, str(entry["stems"]), _share(entry["right"], entry["stems"]),
            str(entry["gated"]), *([str(entry["errors"])] if errors else []),
            str(entry["tagger_or_map"]), _share(entry["oracle_right"], entry["stems"]),
            f"{gain:+d} ({100.0 * gain / entry['stems']:+.2f})",
            *([_share(*probe[category]) if category in probe else "-"] if probe else [])])
    lines = [f"The map's share of the error (oracle map: each pick mapped to the category it "
             f"most often is, learned on {folds} folds grouped by track, seed {seed}, scored "
             f"on the held-out tracks):"]
    lines += align(cells)
    lines += ["  this map: right under the rows' map; gated as speech, tagger/map: its misses "
              "the speech gate made, and the others;",
              "  oracle map: right under the oracle, whose misses are the tagger's (gated "
              "stems keep their rows); map's share: oracle - this map (stems, points of "
              "recall), what a better map could win"
              + ("; probe: the probe's recall on the run's embeddings (folds grouped by track), "
                 "what the embedding knows" if probe else "")]
    return lines
