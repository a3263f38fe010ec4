"""The one run loop: stems -> prepared on the CPU (worker processes) -> the networks in
batches (this process) -> rows in the stems' order; and the evaluation run built on it.
Evaluation runs, the analyze scripts and every sweep cell run this loop.

``run_cells`` runs several *cells* (a tagger on a condition, each with its own ``write``)
over the same stems: each stem is decoded once and prepared for every condition and tagger
in a worker (``stemeval.workers``), then each tagger runs on batches of stems and each cell
gets its rows in the stems' order, one flushed row per stem. ``run_stems`` is one cell.
``evaluate`` is a whole evaluation run: checks, model files, the results CSV with its
sidecar and embeddings, progress, and the published ending.
"""

import sys
from dataclasses import dataclass


@dataclass
class Cell:
    """One tagger on one condition: its ``Evaluator``, where its rows go, and (optionally)
    where its embeddings go (``embed(stem, vector)``, called before the row is written)."""

    evaluator: object
    write: object
    embed: object = None


def _unique(values):
    """The distinct values, in order of first appearance (by identity)."""
    return list({id(value): value for value in values}.values())


def run_cells(cells, stems, batch_size=1, workers=0):
    """Evaluate ``stems`` for every cell; see the module docstring. The cells share one
    speech model; conditions are told apart by their deformer, taggers by identity."""
    from stemeval.pipeline import Preparer
    from stemeval.workers import prepared_in_order

    speech_models = cells[0].evaluator.speech_models
    deforms = _unique(cell.evaluator.deform for cell in cells)
    taggers = _unique(cell.evaluator.tagger for cell in cells)
    where = [([id(d) for d in deforms].index(id(cell.evaluator.deform)),
              [id(t) for t in taggers].index(id(cell.evaluator.tagger))) for cell in cells]
    preparer = Preparer(deforms, taggers, speech_models,
                        features_for_speech=any(cell.evaluator.embeddings for cell in cells))
    queue = []

    def flush():
        if speech_models.on_gpu:
            speech_models.complete([condition.speech for prepared in queue
                                    for condition in prepared.conditions
                                    if condition.speech is not None])
        items = []
        for cell, (condition, tagger) in zip(cells, where):
            items.append([cell.evaluator.item(prepared.stem, prepared.conditions[condition],
                                              tagger) for prepared in queue])
            cell.evaluator.classify(items[-1])
        for index in range(len(queue)):
            for cell, cell_items in zip(cells, items):
                item = cell_items[index]
                if cell.embed is not None and item.embedding is not None:
                    cell.embed(item.stem, item.embedding)
                cell.write(item.row)
        queue.clear()

    for prepared in prepared_in_order(preparer, stems, workers, batch_size):
        for condition in prepared.conditions:
            if condition.speech is not None:
                speech_models.attach(condition.speech)
        queue.append(prepared)
        waiting = sum(any(condition.awaits_networks for condition in item.conditions)
                      for item in queue)
        if waiting == 0 or waiting >= batch_size:
            flush()
    flush()


def run_stems(evaluator, stems, write, batch_size=1, workers=0, embed=None):
    """Evaluate ``stems`` with one evaluator and pass each finished row to ``write``, in the
    stems' order (``embed(stem, embedding)`` first, for each stem the tagger ran on)."""
    run_cells([Cell(evaluator, write, embed)], stems, batch_size, workers)


def evaluate(dataset, args):
    """One evaluation run of ``dataset`` (a ``stemeval.datasets.base.Dataset``) with the
    command line's ``args``; returns the exit status. Bad input is a UserError before any
    stem is analysed."""
    from stemeval.datasets.selection import find_stems
    from stemeval.devices import pick_device, warm_up
    from stemeval.results import check_output_path
    from stemeval.taggers import check_name

    check_name(args.tagger)
    deform = None
    if args.deform is not None:
        from stemeval.deform import Deformer

        deform = Deformer(args.deform, args.folder)
    stems, category_map = find_stems(dataset, args.folder, args.map, args.split, args.limit,
                                     args.follow_links)
    check_output_path(args.output)
    if args.embeddings is not None:
        check_output_path(args.embeddings, "embeddings")
    device = pick_device(args.device)
    warm_up(device)

    from stemeval import taggers
    from stemeval.devices import default_batch_size, default_workers, share_cores
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
    workers = default_workers(device) if args.workers is None else args.workers
    share_cores(device, workers)
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
                          workers=workers, embed=store.add if store else None)
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
