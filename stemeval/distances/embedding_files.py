"""How far apart two sets of stems are (``setdistance.py``): the set distances of
``stemeval.distances.set_metrics`` on two embeddings files, overall and per category, each with a
bootstrap interval over tracks.

- FAD: ``frechet_distance`` over the windows' embeddings where both files keep them (PaSST
  and CLAP 10 s windows, VGGish 0.96 s patches: as the field computes FAD, on the
  embeddings of the frames the network reads), else over the stems' (one window per stem:
  the AST, CNN14).
- KD: ``kernel_distance``, the unbiased MMD^2 with the cubic polynomial kernel (KID), over
  the stems' embeddings, every pair.
- PRDC: ``prdc`` with ``k`` nearest neighbours (Naeem et al. 2020) over the stems'
  embeddings, A being the real set and B the one measured against it.

Intervals: ``group_bootstrap`` over tracks (a stem without a track is its own), with
duplicated tracks for FAD and without for KD and PRDC, whose neighbours and within-set
pairs duplicates would distort (see its docstring); paired (the same tracks drawn in both
sets) where both sets hold the same tracks, as a dataset and its deformed copy do. A
resample too small for its metric leaves the interval undefined (null), said in the
output. Two files made by different taggers, layers or weights, or sets too small for a
metric, are refused with one line.
"""

import sys
from dataclasses import dataclass

import numpy as np

from stemeval.common.errors import UserError
from stemeval.distances.set_metrics import (
    MIN_SAMPLES_FRECHET,
    MIN_SAMPLES_KERNEL,
    frechet_distance,
    group_bootstrap,
    kernel_distance,
    prdc,
)
from stemeval.report.text import align

METRICS = ("fad", "kd", "prdc")
PRDC_KEYS = ("precision", "recall", "density", "coverage")
TITLES = {"fad": "FAD", "kd": "KD", "prdc": "PRDC", **{key: key for key in PRDC_KEYS}}
MAKER = (("tagger", "taggers"), ("layer", "layers"), ("weights", "weights"))


@dataclass
class Side:
    """One set of stems: their embeddings [stems, dim], windows' (per stem, or None) and
    tracks."""

    stems: np.ndarray
    windows: list
    tracks: np.ndarray

    @classmethod
    def of(cls, data, keep=None):
        """The stems of an ``embeddings.Embeddings`` (those at ``keep``, if given)."""
        keep = np.arange(len(data.paths)) if keep is None else np.asarray(keep)
        tracks = np.array([group or path for group, path in zip(data.groups, data.paths)])
        return cls(np.asarray(data.embeddings, np.float64)[keep],
                   None if data.windows is None else [data.windows[i] for i in keep],
                   tracks[keep])

    def rows(self, windows):
        """``(rows, track of each row)``: the windows' embeddings or the stems'."""
        if not windows:
            return self.stems, self.tracks
        counts = [len(stem) for stem in self.windows]
        return (np.concatenate(self.windows).astype(np.float64),
                np.repeat(self.tracks, counts))

    def sizes(self):
        return {"stems": len(self.stems), "tracks": len(set(self.tracks)),
                "windows": None if self.windows is None else int(sum(map(len, self.windows)))}


def parse_metrics(text):
    """The metrics of ``--metrics`` (comma-separated), in their order; a UserError if not."""
    chosen = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in METRICS]
    if unknown or not chosen:
        raise UserError(f"--metrics {text!r}: choose one or more of {', '.join(METRICS)}, "
                        f"comma-separated")
    return [name for name in METRICS if name in chosen]


def check_pair(a, b):
    """UserError unless both files' embeddings were made alike (tagger, layer, weights) and
    have the same width; a warning when an older file does not say its layer or weights."""
    for key, plural in MAKER:
        first, second = getattr(a, key), getattr(b, key)
        if first is not None and second is not None and first != second:
            raise UserError(f"{a.file} and {b.file} hold embeddings of different {plural} "
                            f"({first}; {second}): distances between them mean nothing; "
                            f"compare embeddings made alike")
        if (first is None) != (second is None):
            print(f"warning: {a.file if first is None else b.file} does not record its "
                  f"embeddings' {key} (written before it was), so the two files' cannot be "
                  f"compared", file=sys.stderr)
    if a.embeddings.shape[1] != b.embeddings.shape[1]:
        raise UserError(f"{a.file} and {b.file} hold embeddings of different widths "
                        f"({a.embeddings.shape[1]}; {b.embeddings.shape[1]})")


def minimum(metric, k):
    """The fewest stems (or windows, for FAD over windows) a set needs for ``metric``."""
    return {"fad": MIN_SAMPLES_FRECHET, "kd": MIN_SAMPLES_KERNEL, "prdc": k + 1}[metric]


def _metric(metric, k):
    """``(f(a, b), keys or None, bootstrap with duplicated tracks)`` of a metric name."""
    return {"fad": (frechet_distance, None, True),
            "kd": (kernel_distance, None, False),
            "prdc": (lambda real, fake: prdc(real, fake, k), PRDC_KEYS, False)}[metric]


def _too_small(a, b, metric, k, windows):
    """Why the sets are too small for ``metric``, or None."""
    need = minimum(metric, k)
    unit = "windows" if metric == "fad" and windows else "stems"
    counts = [len(side.rows(metric == "fad" and windows)[0]) for side in (a, b)]
    if min(counts) >= need:
        return None
    what = f"PRDC with k={k}" if metric == "prdc" else TITLES[metric]
    return f"{counts[0]} and {counts[1]} {unit}: too few for {what}, which needs {need} per set"


def paired(a, b):
    """Whether two ``Side``s hold the same tracks, which are then resampled together."""
    return set(a.tracks) == set(b.tracks)


def _interval(estimate, low, high):
    return {"estimate": float(estimate),
            "low": None if np.isnan(low) else float(low),
            "high": None if np.isnan(high) else float(high)}


def measure(a, b, metrics, k=5, windows=False, boot=200, level=0.95, seed=0):
    """Each metric of ``b`` against ``a`` (two ``Side``s) with its interval: a dict of
    ``{"estimate", "low", "high"}`` (PRDC: one per key), or ``{"skipped": why}`` for a
    metric the sets are too small for. ``windows``: FAD over the windows."""
    found = {}
    for metric in metrics:
        why = _too_small(a, b, metric, k, windows)
        if why:
            found[metric] = {"skipped": why}
            continue
        function, keys, duplicates = _metric(metric, k)
        (rows_a, tracks_a), (rows_b, tracks_b) = (side.rows(metric == "fad" and windows)
                                                  for side in (a, b))
        if boot == 0 or min(len(set(tracks_a)), len(set(tracks_b))) < 2:
            value = function(rows_a, rows_b)
            nan = float("nan")
            found[metric] = ({key: _interval(value[key], nan, nan) for key in keys} if keys
                             else _interval(value, nan, nan))
            continue

        def safe(x, y, function=function, keys=keys):
            try:
                return function(x, y)
            except ValueError:  # a resample with too few stems for the metric
                return dict.fromkeys(keys, float("nan")) if keys else float("nan")

        result = group_bootstrap(safe, rows_a, rows_b, tracks_a, tracks_b, n_boot=boot,
                                 level=level, seed=seed, duplicates=duplicates,
                                 paired=paired(a, b))
        found[metric] = ({key: _interval(*result[key]) for key in keys} if keys
                         else _interval(*result))
    return found


def compare(a, b, metrics, by_category=False, k=5, boot=200, level=0.95, seed=0):
    """The report of two checked ``Embeddings`` (A the reference): overall, and per category
    with ``by_category``. Sets too small overall are a UserError."""
    windows = a.windows is not None and b.windows is not None
    if (a.windows is None) != (b.windows is None):
        print(f"warning: only {a.file if b.windows is None else b.file} keeps its windows' "
              f"embeddings, so FAD is over the stems'", file=sys.stderr)
    whole_a, whole_b = Side.of(a), Side.of(b)
    for metric in metrics:
        why = _too_small(whole_a, whole_b, metric, k, windows)
        if why:
            advice = " (lower --k, or leave prdc out of --metrics)" if metric == "prdc" else ""
            raise UserError(f"{a.file} and {b.file}: {why}{advice}")
    options = dict(k=k, windows=windows, boot=boot, level=level, seed=seed)
    report = {
        "a": {"file": str(a.file), "tagger": a.tagger, "layer": a.layer, "weights": a.weights,
              **whole_a.sizes()},
        "b": {"file": str(b.file), "tagger": b.tagger, "layer": b.layer, "weights": b.weights,
              **whole_b.sizes()},
        "settings": {"metrics": list(metrics), "fad_over": "windows" if windows else "stems",
                     "kd": {"kernel": "polynomial", "degree": 3, "gamma": "1/dim", "coef0": 1},
                     "prdc_k": k, "bootstrap": {"over": "tracks", "resamples": boot,
                                                "level": level, "seed": seed}},
        "overall": {**_sizes(whole_a, whole_b), **measure(whole_a, whole_b, metrics, **options)},
    }
    if by_category:
        report["categories"] = {}
        for label in sorted(set(a.labels) | set(b.labels)):
            keep_a = [i for i, value in enumerate(a.labels) if value == label]
            keep_b = [i for i, value in enumerate(b.labels) if value == label]
            if not keep_a or not keep_b:
                report["categories"][label] = {
                    "stems": [len(keep_a), len(keep_b)],
                    "skipped": f"only in {a.file if keep_a else b.file}"}
                continue
            side_a, side_b = Side.of(a, keep_a), Side.of(b, keep_b)
            report["categories"][label] = {**_sizes(side_a, side_b),
                                           **measure(side_a, side_b, metrics, **options)}
    return report


def _sizes(a, b):
    sizes = [a.sizes(), b.sizes()]
    return {**{key: [size[key] for size in sizes] for key in sizes[0]}, "paired": paired(a, b)}


def _number(value):
    return "-" if value is None else f"{value:.4g}"


def format_report(report):
    """The report as text lines: what was compared, then one line per set and metric."""
    a, b, settings = report["a"], report["b"], report["settings"]
    boot = settings["bootstrap"]
    lines = [f"A (reference): {a['file']}: {a['stems']} stems of {a['tracks']} tracks",
             f"B: {b['file']}: {b['stems']} stems of {b['tracks']} tracks",
             f"embeddings: {a['tagger']}" + (f" ({a['layer']})" if a["layer"] else ""),
             f"FAD over the {settings['fad_over']}' embeddings; KD (KID) and PRDC (k="
             f"{settings['prdc_k']}, B against A) over the stems'"]
    lines.append(f"intervals: {100 * boot['level']:g}% percentile intervals of "
                 f"{boot['resamples']} bootstrap resamples of the tracks (seed {boot['seed']})"
                 if boot["resamples"] else "no intervals (--boot 0)")
    if boot["resamples"] and report["overall"]["paired"]:
        lines.append("paired: both sets hold the same tracks, drawn together in each resample")
    table = [["set", "stems A/B", "metric", "value", "interval"]]
    sets = [("all", report["overall"]), *report.get("categories", {}).items()]
    undefined, notes = False, []
    for name, found in sets:
        first = [name, "/".join(map(str, found["stems"]))]
        if "skipped" in found:
            table.append(first + ["", "-", ""])
            notes.append(f"{name}: {found['skipped']}")
            continue
        for metric in settings["metrics"]:
            entry = found[metric]
            if "skipped" in entry:
                table.append(first + [TITLES[metric], "-", ""])
                notes.append(f"{name}: {entry['skipped']}")
                first = ["", ""]
                continue
            for key, value in (entry.items() if metric == "prdc" else [(metric, entry)]):
                span = (f"[{_number(value['low'])}, {_number(value['high'])}]"
                        if boot["resamples"] else "")
                undefined |= bool(boot["resamples"]) and value["low"] is None
                table.append(first + [TITLES[key], _number(value["estimate"]), span])
                first = ["", ""]
    lines += [""] + align(table, left=3, indent="") + [""] * bool(notes or undefined) + notes
    if undefined:
        lines.append("[-, -]: no interval: some resamples of the tracks were too small for "
                     "the metric, or a set has a single track")
    return lines
