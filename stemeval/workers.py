"""The CPU steps of many stems at once, in worker processes, handed back in the stems' order.

PyTorch's ``DataLoader`` runs a ``Preparer`` over the stems in ``workers`` processes, with a
bounded look-ahead (``prefetch`` stems per worker), so memory stays flat for any number of
stems; tensors come back through shared memory. With ``workers=0`` everything runs in this
process. The workers are forked from this one, so they share its read-only state (the
speech graph's weights, the feature extractors) without copying or reading files again;
with Essentia's TensorFlow for the speech graph, which does not survive a fork once used,
they are started fresh (``forkserver``) and build their own models from the files.

A worker that dies (killed, or out of memory) does not stop the run: the stems it may have
held are prepared again one at a time, each in a fresh process, and a stem whose process
dies alone gets an error row.
"""

import torch

PREFETCH = 2  # stems prepared ahead per worker

WORKER_DIED = "the process preparing it died"


def _start_worker(_):
    """A preparing process computes one stem at a time: no thread pools of its own."""
    torch.set_num_threads(1)


def _as_is(item):
    return item


class _Stems(torch.utils.data.Dataset):
    def __init__(self, stems, preparer):
        self.stems, self.preparer = stems, preparer

    def __len__(self):
        return len(self.stems)

    def __getitem__(self, index):
        return self.preparer(self.stems[index])


def _loader(stems, preparer, workers):
    context = "forkserver" if preparer.speech_models.backend == "essentia" else "fork"
    return torch.utils.data.DataLoader(
        _Stems(stems, preparer), batch_size=None, shuffle=False, num_workers=workers,
        collate_fn=_as_is, prefetch_factor=PREFETCH, worker_init_fn=_start_worker,
        multiprocessing_context=context)


def _died(error):
    """Whether a DataLoader error says one of its workers died."""
    return isinstance(error, RuntimeError) and "DataLoader worker" in str(error)


def prepared_in_order(preparer, stems, workers):
    """``preparer(stem)`` for each stem, in order; see the module docstring."""
    if workers == 0:
        yield from map(preparer, stems)
        return
    done = 0
    while done < len(stems):
        try:
            for prepared in _loader(stems[done:], preparer, workers):
                done += 1
                yield prepared
        except Exception as error:
            if not _died(error):
                raise
            yield _alone(preparer, stems[done])
            done += 1


def _alone(preparer, stem):
    """``preparer(stem)`` in a fresh process of its own; an error row if that process dies."""
    from stemeval.errors import one_line
    from stemeval.pipeline import PreparedCondition, PreparedStem

    try:
        return next(iter(_loader([stem], preparer, 1)))
    except Exception as error:
        if not _died(error):
            raise
        return PreparedStem(stem, [PreparedCondition(failure=f"{WORKER_DIED} ({one_line(error)})")
                                   for _ in preparer.deformers])
