"""The kept scores: every evaluation run (and every sweep cell) keeps, beside its results
CSV, what each row was derived from, so that a scoring command can derive the rows again
(with another map, say) without running the tagger again.

The file is ``<output>.scores.npz`` (named as the sidecar ``<output>.json`` is), one entry
per stem that got a row other than ``error``:

- ``scores`` float32 [stems, classes]: the tagger's scores as the row was made from them
  (AudioSet's 527 sigmoid scores, or a zero-shot tagger's category logits); NaN where the
  tagger did not run (a stem the gate sent to speech, unless ``--embeddings`` ran it);
- ``gated`` bool [stems]: the speech gate sent the stem to speech (its row is speech,speech);
- ``speech_rule`` int8 [stems]: the answer the pick got to "is the speech score >= 8?",
  which it asks only when Speech ranks first: 1 yes, 0 no, -1 not asked. This is all the
  Speech rule needs: the same scores ask the same question again, and a question not asked
  then is not asked now;
- ``paths``, ``labels``, ``groups`` str [stems]: as the CSV writes them;
- ``classes`` str [classes]: what the scores are of (AudioSet display names in score order,
  or the categories), ``tagger``, ``zero_shot``, and ``identity``: the run's identity (the
  sidecar's, JSON), which a resume must match.

While a run goes, each entry is appended to ``<output>.scores.npz.part`` before its row is
written (``stemeval.runfiles.record_log``: its names path/label/group, then the scores followed by
``gated`` and ``speech_rule``), after a first entry that holds the header (tagger, classes,
identity). The ``.npz`` is assembled from the log at the end of every run, interrupted or
not; ``--resume`` appends to the log (or starts it from the ``.npz``). A stem run twice keeps
its latest entry. When they are opened, checked and closed is ``stemeval.runfiles.lifecycle``'s.
"""

import json
import os
import sys
import zipfile
from dataclasses import dataclass

import numpy as np

from stemeval.common.atomic import write_atomically
from stemeval.common.errors import (
    DISK_FULL_ADVICE,
    UserError,
    is_disk_full,
    one_line,
    os_reason,
)
from stemeval.labels.audioset import INSTRUMENT_LABELS
from stemeval.labels.matching import normalise
from stemeval.labels.pick import SPEECH, pick
from stemeval.runfiles import record_log
from stemeval.runfiles.results import ERROR, encode_text
from stemeval.runfiles.sidecar import (
    IDENTITY,
    first_difference,
    identity_key,
    identity_text,
    run_identity,
    sidecar_path,
)

NOT_ASKED, BELOW, AT_LEAST = -1, 0, 1
HEADER = "stemeval kept scores"
STEM_COLUMNS = ("paths", "labels", "groups")


def scores_path(output):
    """The kept scores of the results CSV ``output``."""
    return f"{output}.scores.npz"


def log_path(output):
    """The log a run appends each stem's kept scores to."""
    return f"{scores_path(output)}.part"


@dataclass
class StemScores:
    """What one stem's row was derived from (see the module docstring)."""

    scores: object  # float32 [classes], or None where the tagger did not run
    gated: bool
    speech_rule: int = NOT_ASKED


def header_of(tagger, identity):
    """The header of a run's kept scores: its tagger, what its scores are of, its identity."""
    zero_shot = tagger.labels is None
    return {"tagger": tagger.name, "zero_shot": zero_shot,
            "classes": list(tagger.categories if zero_shot else tagger.labels),
            "identity": identity}


def _load(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: not a readable kept scores .npz file "
                        f"({one_line(error)})") from None


def _header_from_arrays(arrays, path=None):
    """The header an ``.npz``'s arrays hold; its ``identity`` must be a JSON object (a
    UserError naming ``path`` otherwise)."""
    try:
        identity = json.loads(str(arrays["identity"]))
    except ValueError as error:
        identity = error
    if not isinstance(identity, dict):
        why = one_line(identity) if isinstance(identity, ValueError) else "not a JSON object"
        raise UserError(f"{path}: its identity array is not the JSON of a run's identity "
                        f"({why}): the kept scores are damaged; run the evaluation again to "
                        f"keep them")
    return {"tagger": str(arrays["tagger"]), "zero_shot": bool(arrays["zero_shot"]),
            "classes": [str(name) for name in arrays["classes"]], "identity": identity}


def _read_log(log):
    """``(header, entries)`` of a log: entries ``[(names, vector), ...]``."""
    with open(log, "rb") as handle:
        found, _ = record_log.records(handle)
    if not found or found[0][0][:1] != [HEADER]:
        return None, []
    try:
        header = json.loads(found[0][0][1])
    except ValueError:
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("identity"), dict):
        raise UserError(f"{log}: its header is not the JSON of a run's identity: the kept "
                        f"scores log is damaged; drop --resume to start anew")
    return header, found[1:]


def _has_entries(log):
    """Whether a log holds a whole entry (a header cut short by a full disk holds none, and
    is no log: a resume goes on from the ``.npz``, or begins the log anew)."""
    with open(log, "rb") as handle:
        return bool(record_log.records(handle)[0])


def _check_header(saved, header, where, output):
    """UserError when ``saved`` (a kept scores header) is not of this run's ``header``."""
    for key, name in IDENTITY.items():
        old, new = saved["identity"].get(key), header["identity"].get(key)
        if key in saved["identity"] and key in header["identity"] and \
                identity_key(old) != identity_key(new):
            raise UserError(f"cannot resume {output}: its kept scores {where} were made with "
                            f"{name} {identity_text(old)}, this run uses {identity_text(new)}; "
                            f"drop --resume to start anew")
    if saved.get("classes") != header["classes"]:
        raise UserError(f"cannot resume {output}: its kept scores {where} are over other "
                        f"classes than this run's tagger scores; drop --resume to start anew")


def _saved(output, header):
    """``(where, paths)`` of the kept scores a resume of ``output`` would go on from,
    checked against ``header``; None when there are none."""
    log, path = log_path(output), scores_path(output)
    if os.path.exists(log) and os.path.getsize(log) and _has_entries(log):
        saved, entries = _read_log(log)
        if saved is None:
            raise UserError(f"cannot resume {output}: its kept scores log {log} has no header "
                            f"(not a kept scores log); drop --resume to start anew")
        _check_header(saved, header, log, output)
        return log, {str(names[0]) for names, _ in entries}
    if os.path.exists(path) and os.path.getsize(path):
        arrays = _load(path)
        _check_header(_header_from_arrays(arrays, path), header, path, output)
        return path, {str(name) for name in arrays["paths"]}
    return None


def check_covers_kept_rows(output, header, rows):
    """UserError, before anything is written, when a resume of ``output`` would mix kept
    scores: those there are of another run (tagger, model files, condition), or lack some of
    the kept ``rows`` (error rows have none). A file without kept scores at all (made before
    they were kept) is resumed: the kept scores then hold the rows this run writes. A
    resume's check, made by ``stemeval.runfiles.lifecycle``."""
    saved = _saved(output, header)
    if saved is None:
        return
    where, paths = saved
    missing = [row["path"] for row in rows if row["prediction"] != ERROR
               and row["path"] not in paths]
    if missing:
        raise UserError(f"cannot resume {output}: {len(missing)} of its {len(rows)} rows have "
                        f"no kept scores in {where} (e.g. {missing[0]}), so they would not "
                        f"hold the whole file's; drop --resume to start anew")


class KeptScoresStore:
    """Collects a run's kept scores into ``scores_path(output)`` (see the module docstring);
    ``kept_rows``: how many rows a resumed file already holds."""

    def __init__(self, output, header, resume=False, kept_rows=0):
        self.path = scores_path(output)
        self.log = log_path(output)
        self.header = header
        try:
            if resume and _saved(output, header) is not None:
                if not (os.path.exists(self.log) and os.path.getsize(self.log)
                        and _has_entries(self.log)):
                    self._seed_from(_load(self.path))
                record_log.repair(self.log)
            else:
                if resume and kept_rows:
                    print(f"warning: {output} has {kept_rows} rows but no kept scores "
                          f"{self.path} (it was made before scores were kept, or they were "
                          f"removed): the kept scores will hold only the rows this run "
                          f"writes", file=sys.stderr)
                try:
                    with open(self.log, "wb") as handle:
                        record_log.append(handle, [HEADER, json.dumps(header)], [])
                except OSError:  # a header cut short is no log: begun anew next time
                    os.unlink(self.log)
                    raise
            self._handle = open(self.log, "ab", buffering=0)  # each entry written at once
        except OSError as error:
            raise UserError(f"cannot write the kept scores {self.log}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None

    def _seed_from(self, arrays):
        try:
            with open(self.log, "wb") as handle:
                record_log.append(handle, [HEADER, json.dumps(self.header)], [])
                for index, names in enumerate(zip(*(arrays[c] for c in STEM_COLUMNS))):
                    record_log.append(handle, names, np.concatenate([
                        arrays["scores"][index],
                        [arrays["gated"][index], arrays["speech_rule"][index]]]))
        except OSError:  # a log half begun from the .npz would hide its other entries
            os.unlink(self.log)
            raise

    def add(self, stem, kept):
        """Append one stem's ``StemScores`` (before its row is written)."""
        classes = len(self.header["classes"])
        scores = (np.full(classes, np.nan, np.float32) if kept.scores is None
                  else np.asarray(kept.scores, np.float32))
        try:
            record_log.append(self._handle, [encode_text(str(name))
                                             for name in (stem.path, stem.label, stem.group)],
                              np.concatenate([scores, [float(kept.gated),
                                                       float(kept.speech_rule)]]))
            self._handle.flush()
        except OSError as error:
            raise UserError(f"cannot write the kept scores log {self.log}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None

    def close(self, complete):
        """Write the npz from the log; a complete run removes the log."""
        self._handle.close()
        _, entries = _read_log(self.log)
        latest = {}
        for names, vector in entries:
            latest[names[0]] = (names, vector)
        ordered = [latest[key] for key in sorted(latest)]
        classes = len(self.header["classes"])
        vectors = (np.stack([vector for _, vector in ordered]) if ordered
                   else np.zeros((0, classes + 2), np.float32))
        arrays = {name: np.array([names[index] for names, _ in ordered], dtype=str)
                  for index, name in enumerate(STEM_COLUMNS)}
        arrays.update(scores=vectors[:, :classes].astype(np.float32),
                      gated=vectors[:, classes].astype(bool),
                      speech_rule=vectors[:, classes + 1].astype(np.int8),
                      classes=np.array(self.header["classes"], dtype=str),
                      tagger=np.array(self.header["tagger"]),
                      zero_shot=np.array(self.header["zero_shot"]),
                      identity=np.array(json.dumps(self.header["identity"])))
        try:
            write_atomically(self.path, lambda handle: record_log.save_npz(handle, arrays),
                             binary=True)
        except OSError as error:
            raise UserError(f"cannot write the kept scores {self.path}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None
        if complete:
            os.unlink(self.log)


# --- Reading them back -----------------------------------------------------------------


@dataclass
class KeptScores:
    """A results CSV's kept scores: one ``(label, group, StemScores)`` per path."""

    file: str
    tagger: str
    zero_shot: bool
    classes: list
    stems: dict  # path as the CSV writes it -> (label, group, StemScores)


ARRAYS = ("scores", "gated", "speech_rule", "classes", "tagger", "zero_shot", "identity",
          *STEM_COLUMNS)


def read_kept_scores(results):
    """The kept scores of the results CSV ``results``, checked; None when it has none."""
    path = scores_path(results)
    if not os.path.isfile(path):
        return None
    arrays = _load(path)
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise UserError(f"{path}: missing array(s) {', '.join(missing)} (kept scores hold "
                        f"{', '.join(ARRAYS)})")
    scores, stems = arrays["scores"], len(arrays["paths"])
    if scores.ndim != 2 or scores.shape != (stems, len(arrays["classes"])):
        raise UserError(f"{path}: scores of shape {list(scores.shape)} for {stems} stems and "
                        f"{len(arrays['classes'])} classes")
    if any(len(arrays[name]) != stems for name in ("gated", "speech_rule", *STEM_COLUMNS)):
        raise UserError(f"{path}: its arrays do not hold one value per stem")
    header = _header_from_arrays(arrays, path)
    check_kept_scores_identity(path, header["identity"], results)
    if not header["zero_shot"] and not INSTRUMENT_LABELS.intersection(header["classes"]):
        raise UserError(f"{path}: its {len(header['classes'])} classes hold no AudioSet "
                        f"instrument label, so no row can be derived from its scores (the "
                        f"published pick names instruments); they are not the kept scores of "
                        f"an AudioSet tagger's run")
    entries = {str(path_): (str(label), str(group), StemScores(row, bool(gated), int(rule)))
               for path_, label, group, row, gated, rule in zip(
                   arrays["paths"], arrays["labels"], arrays["groups"], scores,
                   arrays["gated"], arrays["speech_rule"])}
    return KeptScores(path, header["tagger"], header["zero_shot"], header["classes"], entries)


def rederive(rows, kept, category_map, results):
    """The rows of ``results`` derived again from their ``kept`` scores with the published
    pick and ``category_map``: label, path, prediction, proposed_label and group. Error rows
    stay error rows. A row without kept scores, or whose kept scores do not give its own
    prediction back (they are another file's), is a UserError."""
    if kept.zero_shot and list(category_map.categories) != kept.classes:
        raise UserError(f"{results}: its tagger {kept.tagger} is zero-shot: its scores are over "
                        f"its own categories ({', '.join(kept.classes)}), so another map's "
                        f"categories need a new run (evaluate.py --map)")
    derived, missing = [], []
    for row in rows:
        path = row.get("path") or ""
        if row.get("prediction") == ERROR:
            derived.append({"label": row.get("label"), "path": path, "prediction": ERROR,
                            "proposed_label": ERROR, "group": row.get("group")})
            continue
        if path not in kept.stems:
            missing.append(path)
            continue
        _, group, stem = kept.stems[path]
        prediction, proposed = _derive(stem, kept, category_map, path)
        if prediction != normalise(row.get("prediction")):
            raise UserError(f"{kept.file}: the kept scores of {path} give the prediction "
                            f"{prediction!r} where {results} has {row.get('prediction')!r}: "
                            f"they are not the scores of its rows")
        derived.append({"label": row.get("label"), "path": path, "prediction": prediction,
                        "proposed_label": proposed, "group": group})
    if missing:
        raise UserError(f"{results}: {len(missing)} of its {len(rows)} rows have no kept scores "
                        f"in {kept.file} (e.g. {missing[0]}); run the evaluation again to "
                        f"keep them")
    return derived


def _derive(stem, kept, category_map, path):
    """``(prediction, proposed label)`` of one stem's ``StemScores``."""
    if stem.gated:
        return SPEECH, SPEECH

    def speech_allowed():
        if stem.speech_rule == NOT_ASKED:
            raise UserError(f"{kept.file}: {path}: the pick asks the Speech rule, which its "
                            f"run did not ask: the kept scores are damaged")
        return stem.speech_rule == AT_LEAST

    classes = kept.classes
    try:
        prediction, _, proposed = pick(stem.scores, speech_allowed, category_map,
                                       labels=None if kept.zero_shot else classes,
                                       categories=classes)
    except ValueError as error:  # no instrument label the pick may name
        raise UserError(f"{kept.file}: {path}: no row can be derived from its kept scores "
                        f"({one_line(error)})") from None
    return prediction, proposed


def gated_flags(rows, kept):
    """Per row, whether the speech gate sent its stem to speech: the ``gated`` of its kept
    scores (``kept``, None when the run kept none), else whether its row is speech,speech,
    which a pick of Speech that a map sends to a category named speech would also give."""
    flags = []
    for row in rows:
        entry = kept.stems.get(row.get("path") or "") if kept is not None else None
        if entry is not None:
            flags.append(entry[2].gated)
        else:
            flags.append(normalise(row.get("prediction")) == SPEECH ==
                         normalise(row.get("proposed_label")))
    return flags


def check_kept_scores_identity(kept_file, header_identity, results):
    """UserError when the kept scores ``kept_file`` (their header's identity
    ``header_identity``) are not of the run the sidecar of ``results`` names."""
    identity = run_identity(results)
    if not identity or not isinstance(header_identity, dict):
        return
    differs = first_difference(header_identity, identity)
    if differs:
        name, theirs, ours = differs
        raise UserError(f"{kept_file} are not the kept scores of {results}: they were made with "
                        f"{name} {identity_text(theirs)}, its sidecar "
                        f"{sidecar_path(results)} names {identity_text(ours)}; run the "
                        f"evaluation again to keep them")
