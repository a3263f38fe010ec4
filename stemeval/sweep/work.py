"""One shard of a sweep: a few stems of one dataset through every cell that lacks them, on
the engine evaluation runs use (``stemeval.engine.run.run_cells``).

The local runner calls ``evaluate_shard`` in its own process, the Ray runner in Ray tasks;
both write the rows it returns, so both write the same files. Each stem is decoded once for
all the cells that lack it (the engine prepares every condition and tagger from one decode),
so a stem is decoded once per sweep however many cells there are. Each tagger, the speech
graph and each deformer are loaded once per process (a Ray worker keeps them between tasks);
a zero-shot tagger's prompts are made per dataset from that one loaded model. With
``options.embeddings``, each row that has an embedding carries it under ``EMBEDDING``.
"""

import os

_LOADED = {}  # (working folder, kind, ...) -> tagger, speech models, deformer or device
EMBEDDING = "embedding"  # a row's key for its stem's embedding (``taggers.interface.pack``)


def _once(key, load):
    """``load()`` once per process for ``key`` (and working folder: paths may be relative)."""
    key = (os.getcwd(), *key)
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


def forget_loaded():
    """Free every model this process loaded, and what the speech graph's file check kept:
    a Ray sweep's driver loads them to check the cells, then runs none of them."""
    from stemeval.speech.gate import forget_checked_graphs

    _LOADED.clear()
    forget_checked_graphs()


def sweep_device(options):
    """The device the sweep's options pick (once per process)."""
    from stemeval.engine.devices import pick_device

    return _once(("device", options.device), lambda: pick_device(options.device))


def load_tagger(name, options, categories):
    """The tagger ``name`` with its configured checkpoint for a dataset's ``categories``,
    its model loaded once per process (a zero-shot tagger's prompts once per categories)."""
    from stemeval import taggers

    checkpoint = options.checkpoints.get(name)
    loaded = _once(("tagger", name, checkpoint),
                   lambda: taggers.load(name, checkpoint, list(categories)))
    return _once(("tagger", name, checkpoint, tuple(categories)),
                 lambda: loaded.for_categories(list(categories)))


def speech_models(options):
    """The speech gate's models, shared by every cell (the gate does not depend on them)."""
    from stemeval.speech.gate import SpeechModels
    from stemeval.taggers.published_files import ensure_speech_model

    return _once(("speech", options.speech_model, options.speech_backend),
                 lambda: SpeechModels(ensure_speech_model(options.speech_model,
                                                          options.speech_backend),
                                      options.speech_backend, sweep_device(options)))


def _deformer(condition, folder):
    """The condition's deformer (one object per condition, so cells can share its stems);
    None for the clean condition."""
    from stemeval.audio.deform import Deformer

    if not condition.steps:
        return None
    return _once(("deform", condition.spec, folder), lambda: Deformer(condition.spec, folder))


def _collect(rows):
    """``(write, embed)`` of one cell: its rows appended to ``rows``, each with its stem's
    embedding under ``EMBEDDING`` when it has one (given by ``embed`` before the row)."""
    pending = {}

    def embed(stem, embedding):
        pending[stem.path] = embedding

    def write(row):
        rows.append({**row, EMBEDDING: pending.pop(row["path"])} if row["path"] in pending
                    else row)

    return write, embed


def evaluate_shard(options, dataset, category_map, stems, cells, cpus=None):
    """Rows of ``stems`` (one shard, in order) for each cell that lacks them.

    ``cells``: ``[(tagger, condition, paths still to do)]``; returns one list of rows per
    cell, in the same order, each in the stems' order. Cells lacking the same stems run
    together, each of those stems decoded once. ``cpus``: the cores this shard may use
    (None: this machine's).
    """
    from stemeval.engine.devices import default_batch_size, default_workers, share_cores
    from stemeval.engine.pipeline import Evaluator
    from stemeval.engine.precision import use_exact_fp32
    from stemeval.engine.run import EvaluationCell, run_cells

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
                                  embeddings=options.embeddings),
                        *_collect(rows[index])) for index in indices],
                  [stem for stem in stems if stem.path in todo],
                  batch_size=options.batch_size or default_batch_size(device), workers=workers)
    return rows
