"""One shard of a sweep: a few stems of one dataset through every cell that lacks them, on
the engine evaluation runs use (``stemeval.engine.run.run_cells``).

The local runner calls ``evaluate_shard`` in its own process, the Ray runner in Ray tasks;
both write the rows it returns, so both write the same files. Each stem is decoded once for
all the cells that lack it (the engine prepares every condition and tagger from one decode),
so a stem is decoded once per sweep however many cells there are. Each tagger, the speech
graph and each deformer are loaded once per process (a Ray worker keeps them between tasks);
a zero-shot tagger's prompts are made per dataset from that one loaded model. Each row
other than error carries its stem's kept scores (``kept_scores.StemScores``) under ``KEPT``,
and with ``options.embeddings`` each row that has an embedding carries it under
``EMBEDDING``; the process that writes the cell files takes them off the row.
"""

import os

from stemeval import taggers as tagger_registry
from stemeval.audio.deform import Deformer
from stemeval.engine.devices import default_batch_size, default_workers, pick_device, share_cores
from stemeval.engine.pipeline import Evaluator
from stemeval.engine.precision import use_exact_fp32
from stemeval.engine.run import EvaluationCell, run_cells
from stemeval.speech.gate import SpeechModels, forget_checked_graphs
from stemeval.taggers.published_files import ensure_speech_model

_LOADED = {}  # (working folder, kind, ...) -> tagger, speech models, deformer or device
EMBEDDING = "embedding"  # a row's key for its stem's embedding (``taggers.interface.pack``)
KEPT = "kept scores"  # a row's key for its stem's ``kept_scores.StemScores``


def _once(key, load):
    """``load()`` once per process for ``key`` (and working folder: paths may be relative)."""
    key = (os.getcwd(), *key)
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


def forget_loaded():
    """Free every model this process loaded, and what the speech graph's file check kept:
    a Ray sweep's driver loads them to check the cells, then runs none of them."""
    _LOADED.clear()
    forget_checked_graphs()


def sweep_device(options):
    """The device the sweep's options pick (once per process)."""
    return _once(("device", options.device), lambda: pick_device(options.device))


def load_tagger(name, options, categories):
    """The tagger ``name`` with its configured checkpoint for a dataset's ``categories``,
    its model loaded once per process (a zero-shot tagger's prompts once per categories)."""
    checkpoint = options.checkpoints.get(name)
    loaded = _once(("tagger", name, checkpoint),
                   lambda: tagger_registry.load(name, checkpoint, list(categories)))
    return _once(("tagger", name, checkpoint, tuple(categories)),
                 lambda: loaded.for_categories(list(categories)))


def speech_models(options):
    """The speech gate's models, shared by every cell (the gate does not depend on them)."""
    return _once(("speech", options.speech_model, options.speech_backend),
                 lambda: SpeechModels(ensure_speech_model(options.speech_model,
                                                          options.speech_backend),
                                      options.speech_backend, sweep_device(options)))


def _deformer(condition, folder):
    """The condition's deformer (one object per condition, so cells can share its stems);
    None for the clean condition."""
    if not condition.steps:
        return None
    return _once(("deform", condition.spec, folder), lambda: Deformer(condition.spec, folder))


def _collect(rows):
    """``(write, embed, keep)`` of one cell: its rows appended to ``rows``, each with its
    stem's embedding under ``EMBEDDING`` and its kept scores under ``KEPT`` when it has them
    (given by ``embed`` and ``keep`` before the row)."""
    pending = {EMBEDDING: {}, KEPT: {}}

    def embed(stem, embedding):
        pending[EMBEDDING][stem.path] = embedding

    def keep(stem, kept):
        pending[KEPT][stem.path] = kept

    def write(row):
        rows.append({**row, **{key: found.pop(row["path"]) for key, found in pending.items()
                               if row["path"] in found}})

    return write, embed, keep


def evaluate_shard(options, dataset, category_map, stems, cells, cpus=None):
    """Rows of ``stems`` (one shard, in order) for each cell that lacks them.

    ``cells``: ``[(tagger, condition, paths still to do)]``; returns one list of rows per
    cell, in the same order, each in the stems' order. Cells lacking the same stems run
    together, each of those stems decoded once. ``cpus``: the cores this shard may use
    (None: this machine's).
    """
    device = sweep_device(options)
    use_exact_fp32(device)
    workers = default_workers(device, cpus) if options.workers is None else options.workers
    share_cores(device, workers, cpus)
    rows = [[] for _ in cells]
    together = {}
    for index, (_, _, todo) in enumerate(cells):
        together.setdefault(frozenset(todo), []).append(index)
    for todo, indices in together.items():
        run_cells([EvaluationCell(Evaluator(load_tagger(cells[index][0], options, category_map.categories),
                                  speech_models(options), category_map, device=device,
                                  precision=options.precision,
                                  deform=_deformer(cells[index][1], dataset.folder),
                                  embeddings=options.embeddings, keep_scores=True),
                        *_collect(rows[index])) for index in indices],
                  [stem for stem in stems if stem.path in todo],
                  batch_size=options.batch_size or default_batch_size(device), workers=workers)
    return rows
