"""The CPU steps of many stems at once, in worker processes, handed back in the stems' order.

A process pool runs a ``Preparer`` over the stems in ``workers`` processes, with a bounded
look-ahead, so memory stays flat for any number of stems; tensors come back through shared
memory (PyTorch's pickling of tensors between processes). The look-ahead covers a batch of
the main process's and two stems per worker besides, so that no worker waits for one slow
stem ahead of it to be handed over. With ``workers=0`` everything runs in this process.

The workers are forked from this process, so they share its read-only state (the speech
graph's weights, the feature extractors) without copying or reading files again; with
Essentia's TensorFlow for the speech graph, which does not survive a fork once used, they
are started fresh (``forkserver``) and build their own models from the files.

A worker that dies (killed, or out of memory) does not stop the run: the pool is started
again, the next stem is prepared alone in a fresh process, and a stem whose process dies
alone gets an error row. A dead worker is noticed where its stem's result is awaited, never
in the middle of other work. A worker ends with the process that started it: a run killed
outright (SIGKILL, out of memory) cannot stop its workers, which would otherwise wait for
work for ever, holding their memory and the run's output pipes open.
"""

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from stemeval.common.essentia_setup import essentia_standard

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch and stemeval.engine.pipeline.

WORKER_DIED = "the process preparing it died"

_preparer = None  # this worker's Preparer: inherited when forked, sent when started fresh


def _start_worker(preparer):
    """A preparing process computes one stem at a time (no thread pools of its own), and
    ends when the process that started it has gone. It does not take over the command's
    signal handlers (forked, it has them): SIGTERM, which the pool sends its other workers
    when one was killed, ends it quietly, and Ctrl-C is the parent's to handle (it shuts the
    pool down), so neither prints a worker's traceback."""
    import torch

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _preparer
    torch.set_num_threads(1)
    threading.Thread(target=_end_with_parent, daemon=True).start()
    if preparer is not None:
        _preparer = preparer


def _end_with_parent():
    """Wait until the parent has gone (its sentinel becomes readable), then end this
    process at once."""
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def _prepare(stem):
    return _preparer(stem)


def _pool(preparer, workers):
    global _preparer
    fresh = preparer.speech_models.backend == "essentia"
    _preparer = preparer
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("forkserver" if fresh else "fork"),
        initializer=_start_worker, initargs=(preparer if fresh else None,))


def prepared_in_order(preparer, stems, workers, batch_size=1):
    """``preparer(stem)`` for each stem, in order; see the module docstring."""
    if workers == 0:
        yield from map(preparer, stems)
        return
    essentia_standard()  # imported once here, where the workers fork from, not in each
    window = batch_size + 2 * workers
    done = 0
    while done < len(stems):
        pool = _pool(preparer, workers)
        pending = deque()
        try:
            while done + len(pending) < len(stems) or pending:
                while len(pending) < window and done + len(pending) < len(stems):
                    pending.append(pool.submit(_prepare, stems[done + len(pending)]))
                prepared = pending.popleft().result()
                done += 1
                yield prepared
        except BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)
            yield _alone(preparer, stems[done])
            done += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _alone(preparer, stem):
    """``preparer(stem)`` in a fresh process of its own; an error row if that process dies."""
    from stemeval.engine.pipeline import PreparedCondition, PreparedStem

    pool = _pool(preparer, 1)
    try:
        return pool.submit(_prepare, stem).result()
    except BrokenProcessPool:
        return PreparedStem(stem, [PreparedCondition(failure=f"{WORKER_DIED} (killed, e.g. "
                                                             f"out of memory)")
                                   for _ in preparer.deformers])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
