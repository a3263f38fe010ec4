"""The one run loop: stems -> prepared on the CPU -> the tagger in batches -> rows in the
stems' order, and the evaluation run built on it (what ``evaluate.py``, the analyze scripts
and every sweep cell run).

``run_stems`` prepares stems ahead in worker threads (bounded look-ahead, so memory stays
flat for any dataset size), runs the tagger on batches of them and hands each finished row
to ``write`` in the stems' order. ``evaluate`` is a whole evaluation run: checks, model
files, the results CSV with its sidecar and embeddings, progress, and the published ending.
"""

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from stemeval.errors import needs_packages


def _prepared_in_order(evaluator, stems, workers, lookahead):
    """Prepared stems in input order; with workers, at most ``lookahead`` ahead in flight."""
    if workers == 0:
        for stem in stems:
            yield evaluator.prepare(stem)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        pending = deque()
        stems = iter(stems)
        for stem in stems:
            pending.append(pool.submit(evaluator.prepare, stem))
            if len(pending) >= lookahead:
                break
        while pending:
            yield pending.popleft().result()
            next_stem = next(stems, None)
            if next_stem is not None:
                pending.append(pool.submit(evaluator.prepare, next_stem))


def run_stems(evaluator, stems, write, batch_size=1, workers=0, embed=None):
    """Evaluate ``stems`` and pass each finished row to ``write``, in the stems' order.

    With ``embed``, ``embed(stem, embedding)`` is called before ``write`` for each stem the
    tagger ran on (so a row on disk always has its embedding saved).
    """
    queue = []

    def flush():
        evaluator.classify(queue)
        for item in queue:
            if embed is not None and item.embedding is not None:
                embed(item.stem, item.embedding)
            write(item.row)
        queue.clear()

    for prepared in _prepared_in_order(evaluator, stems, workers, lookahead=workers + batch_size):
        queue.append(prepared)
        waiting = sum(item.features is not None for item in queue)
        if waiting == 0 or waiting >= batch_size:
            flush()
    flush()


def evaluate(dataset, args):
    """One evaluation run of ``dataset`` (a ``stemeval.datasets.base.Dataset``) with the
    command line's ``args``; returns the exit status. Bad input is a UserError before any
    stem is analysed."""
    from stemeval.datasets.selection import find_stems
    from stemeval.devices import pick_device
    from stemeval.results import check_output_path
    from stemeval.taggers import check_name

    check_name(args.tagger)
    deform = None
    if args.deform is not None:
        with needs_packages("--deform"):
            from stemeval.deform import Deformer

            deform = Deformer(args.deform, args.folder)
    stems, category_map = find_stems(dataset, args.folder, args.map, args.split, args.limit,
                                     args.follow_links)
    check_output_path(args.output)
    if args.embeddings is not None:
        check_output_path(args.embeddings, "embeddings")
    device = pick_device(args.device)

    from stemeval import taggers
    from stemeval.devices import default_batch_size, default_workers
    from stemeval.embeddings import EmbeddingStore
    from stemeval.pipeline import Evaluator
    from stemeval.precision import use_exact_fp32
    from stemeval.progress import Progress
    from stemeval.results import (COLUMNS, DETAIL_COLUMNS, ERROR, ResultWriter, read_results,
                                  stems_to_do)
    from stemeval.sidecar import Sidecar
    from stemeval.speech import speech_model_factory
    from stemeval.weights.published import load_model_files

    use_exact_fp32(device)
    tagger, graph = load_model_files(
        args.checkpoint, args.speech_model,
        load_weights=lambda spec: taggers.load(args.tagger, spec, list(category_map.categories)))
    sidecar = Sidecar(args.output, tagger, graph, vars(args), device, args.precision)
    if args.resume:
        sidecar.check_resume(args.output)
    store = (EmbeddingStore(args.embeddings, tagger.name, resume=args.resume)
             if args.embeddings else None)
    evaluator = Evaluator(tagger, speech_model_factory(graph, args.speech_backend, device),
                          category_map, device=device, precision=args.precision,
                          details=args.details, deform=deform, embeddings=store is not None)
    columns = COLUMNS + DETAIL_COLUMNS if args.details else COLUMNS
    groups = {stem.path: stem.group for stem in stems}
    with ResultWriter(args.output, columns, resume=args.resume) as writer:
        todo = stems_to_do(writer.kept, stems, args.folder, args.output)
        sidecar.start()
        complete = False
        try:
            with Progress(len(todo), quiet=args.quiet, verbose=args.verbose) as progress:
                def write(row):
                    writer.write({**row, "group": groups[row["path"]]})
                    progress.done(row)

                run_stems(evaluator, todo, write,
                          batch_size=args.batch_size or default_batch_size(device),
                          workers=(default_workers(device) if args.workers is None
                                   else args.workers),
                          embed=store.add if store else None)
            complete = True
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"interrupted: the rows so far are in {args.output}; the same command with "
                f"--resume continues the run") from None
        finally:
            if store is not None:
                store.close(complete)
    rows = read_results(args.output)
    sidecar.finish(stems=len(rows), errors=sum(row["prediction"] == ERROR for row in rows),
                   stems_this_run=len(todo))
    print(f"wrote {len(todo)} rows to {args.output} ({len(writer.kept)} kept from before, "
          f"{progress.errors} errors)", file=sys.stderr)
    print_published_ending(args.output)
    return 0


def print_published_ending(output):
    """The published scripts' last words: where the results are, then their score."""
    from stemeval.report.published import format_published
    from stemeval.results import read_results

    print(f"Analysis complete. Results written to '{output}'.")
    print("\n".join(format_published(read_results(output))))
