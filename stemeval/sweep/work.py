"""One shard of a sweep: a few stems of one dataset through every cell that lacks them.

The local runner calls ``evaluate_shard`` in its own process, the Ray runner in Ray tasks;
both write the rows it returns, so both write the same files.

Decoding once: a shard's stems are decoded into a small per-process cache (``DecodeCache``,
as many stems as the shard holds) and every cell (tagger x condition) of the shard is run
over them from that cache, each deforming its own copy; the next shard replaces them. So a
stem is decoded once per sweep however many cells there are, and memory holds at most one
shard of decoded stems. Models, the speech graph and the deformers are loaded once per
process (a Ray worker keeps them between tasks).
"""

import os
import threading

from stemeval.audio import decode

_LOADED = {}  # (kind, ...) -> model, speech model factory or deformer, for this process
_LOAD_LOCK = threading.RLock()


class DecodeCache:
    """``decode`` memoised for the stems of one shard (the outcome, an error included)."""

    def __init__(self):
        self._decoded = {}
        self._lock = threading.Lock()

    def __call__(self, path):
        with self._lock:
            outcome = self._decoded.get(path)
        if outcome is None:
            try:
                outcome = (decode(path), None)
            except Exception as error:  # the stem's error row says why, in every cell
                outcome = (None, error)
            with self._lock:
                self._decoded[path] = outcome
        if outcome[1] is not None:
            raise outcome[1]
        return outcome[0]


def _once(key, load):
    """``load()`` once per process for ``key`` (and working folder: paths may be relative)."""
    key = (os.getcwd(), *key)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


def sweep_device(options):
    """The device the sweep's options pick (once per process)."""
    from stemeval.devices import pick_device

    return _once(("device", options.device), lambda: pick_device(options.device))


def load_tagger(name, options, categories=None):
    """The tagger ``name`` with its configured checkpoint; ``categories``: a zero-shot
    tagger's dataset categories."""
    from stemeval import taggers

    checkpoint = options.checkpoints.get(name)
    key = ("tagger", name, checkpoint, tuple(categories or ()))
    return _once(key, lambda: taggers.load(name, checkpoint, categories))


def speech_factory(options):
    """One speech model per thread, shared by every cell (the gate does not depend on it)."""
    from stemeval.speech import speech_model_factory
    from stemeval.weights.published import ensure_speech_model

    def load():
        build = speech_model_factory(ensure_speech_model(options.speech_model),
                                     options.speech_backend, sweep_device(options))
        per_thread = threading.local()

        def model():
            if not hasattr(per_thread, "model"):
                per_thread.model = build()
            return per_thread.model
        return model

    return _once(("speech", options.speech_model, options.speech_backend), load)


def evaluate_shard(options, dataset, category_map, stems, cells):
    """Rows of ``stems`` (one shard, in order) for each cell that lacks them.

    ``cells``: ``[(tagger, condition, paths still to do)]``; returns one list of rows per
    cell, in the same order, each in the stems' order.
    """
    from stemeval.deform import Deformer
    from stemeval.devices import default_batch_size, default_workers
    from stemeval.pipeline import Evaluator
    from stemeval.precision import use_exact_fp32
    from stemeval.run import run_stems

    device = sweep_device(options)
    use_exact_fp32(device)
    cache = DecodeCache()
    results = []
    for tagger, condition, todo in cells:
        deform = _once(("deform", condition.spec, dataset.folder),
                       lambda: Deformer(condition.spec, dataset.folder))
        evaluator = Evaluator(load_tagger(tagger, options, list(category_map.categories)),
                              speech_factory(options),
                              category_map, device=device, precision=options.precision,
                              deform=deform if condition.steps else None, decode=cache)
        rows = []
        run_stems(evaluator, [stem for stem in stems if stem.path in todo], rows.append,
                  batch_size=options.batch_size or default_batch_size(device),
                  workers=default_workers(device) if options.workers is None else options.workers)
        results.append(rows)
    return results
