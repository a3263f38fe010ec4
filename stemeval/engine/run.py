"""The one run loop: stems -> prepared on the CPU (worker processes) -> the networks in
batches (this process) -> rows in the stems' order; and the evaluation run built on it.
Evaluation runs, the analyze scripts and every sweep cell run this loop.

``run_cells`` runs several *cells* (a tagger on a condition, each with its own ``write``)
over the same stems: each stem is decoded once and prepared for every condition and tagger
in a worker (``stemeval.engine.workers``), then each tagger runs on batches of stems and each cell
gets its rows in the stems' order, one flushed row per stem. ``run_stems`` is one cell.
``evaluate_dataset`` is a whole evaluation run: checks, model files, the results CSV with
its sidecar, kept scores and embeddings, progress. What it may write, what a resume keeps
and when it refuses are decided apart from the loop, by ``stemeval.runfiles.lifecycle``
(the one life cycle of a run's files, which every sweep cell goes through too).
"""

import sys
from dataclasses import dataclass

from stemeval import taggers as tagger_registry
from stemeval.audio.deform import CLEAN, Deformer
from stemeval.common.errors import UserError, needs_packages, shown
from stemeval.datasets.clap_prompts import prompts_for
from stemeval.datasets.selection import find_stems
from stemeval.engine.devices import (
    default_batch_size,
    default_workers,
    pick_device,
    share_cores,
    warm_up,
)
from stemeval.engine.pipeline import Evaluator, Preparer
from stemeval.engine.precision import use_exact_fp32
from stemeval.engine.progress import Progress
from stemeval.engine.workers import prepared_in_order
from stemeval.runfiles.embeddings import VGGISH
from stemeval.runfiles.lifecycle import RunLifecycle
from stemeval.runfiles.outputs import run_inputs
from stemeval.runfiles.results import COLUMNS, DETAIL_COLUMNS
from stemeval.speech.gate import check_embeddings_backend, speech_model_factory
from stemeval.taggers.published_files import load_model_files


@dataclass
class EvaluationCell:
    """One tagger on one condition: its ``Evaluator``, where its rows go, and (optionally)
    where its embeddings and kept scores go (``embed(stem, vector)``, ``keep(stem, kept)``,
    called before the row is written)."""

    evaluator: object
    write: object
    embed: object = None
    keep: object = None


def _unique(values):
    """The distinct values, in order of first appearance (by identity)."""
    return list({id(value): value for value in values}.values())


def run_cells(cells, stems, batch_size=1, workers=0):
    """Evaluate ``stems`` for every cell; see the module docstring. The cells share one
    speech model; conditions are told apart by their deformer, taggers by identity."""
    speech_models = cells[0].evaluator.speech_models
    deforms = _unique(cell.evaluator.deform for cell in cells)
    taggers = _unique(cell.evaluator.tagger for cell in cells)
    where = [([id(d) for d in deforms].index(id(cell.evaluator.deform)),
              [id(t) for t in taggers].index(id(cell.evaluator.tagger))) for cell in cells]
    preparer = Preparer(deforms, taggers, speech_models,
                        features_for_speech=any(cell.evaluator.embeddings == "tagger"
                                                for cell in cells))
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
                if cell.keep is not None and item.kept is not None:
                    cell.keep(item.stem, item.kept)
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


def run_stems(evaluator, stems, write, batch_size=1, workers=0, embed=None, keep=None):
    """Evaluate ``stems`` with one evaluator and pass each finished row to ``write``, in the
    stems' order (``embed(stem, embedding)`` first, for each stem the tagger ran on, and
    ``keep(stem, kept)`` for each row other than error)."""
    run_cells([EvaluationCell(evaluator, write, embed, keep)], stems, batch_size, workers)


def evaluate_dataset(dataset, args):
    """One evaluation run of ``dataset`` (a ``stemeval.datasets.walker.Dataset``) with the
    command line's ``args``; returns the exit status. Bad input is a UserError before any
    stem is analysed; a refused run changes no file."""
    tagger_registry.check_name(args.tagger)
    if args.embeddings_from != "tagger" and args.embeddings is None:
        raise UserError(f"--embeddings-from {args.embeddings_from} says where --embeddings come "
                        f"from; give --embeddings PATH too")
    if args.embeddings_from == "vggish":
        check_embeddings_backend(args.speech_backend)
    if args.prompts is not None and not tagger_registry.entry(args.tagger).zero_shot:
        raise UserError(f"--prompts is for a zero-shot tagger (clap), whose scores are its "
                        f"categories' prompts; --tagger {args.tagger} scores AudioSet's labels")
    deform = None
    if args.deform is not None:
        with needs_packages("--deform"):
            deform = Deformer(args.deform, args.folder)
    stems, category_map = find_stems(dataset, args.folder, args.map, args.split, args.limit,
                                     args.follow_links)
    prompts = prompts_for(category_map.categories, args.prompts) if args.prompts else None
    run = RunLifecycle(args.output, COLUMNS + DETAIL_COLUMNS if args.details else COLUMNS,
                       args.embeddings)
    run.files.check(run_inputs(stems, args.tagger,
                               args.folder if dataset.input_is_file else None, args.map,
                               args.checkpoint, args.speech_model)
                    + [("--prompts", args.prompts)])
    device = pick_device(args.device)
    warm_up(device)
    with run.files.locked():
        run.plan(dataset, args.folder, stems, category_map, deform.spec if deform else CLEAN,
                 args.precision, args.speech_backend, device, args.split, args.limit,
                 args.follow_links, resume=args.resume)
        return _run(args, category_map, prompts, device, deform, run)


def _run(args, category_map, prompts, device, deform, run):
    """The run proper, under the output's lock: models, the checks of the resumed file
    (``run``: its ``RunLifecycle``, planned), then the sidecar, the CSV, the embeddings and
    the kept scores, written in that order."""
    use_exact_fp32(device)
    workers = default_workers(device) if args.workers is None else args.workers
    share_cores(device, workers)
    tagger, graph = load_model_files(
        args.checkpoint, args.speech_model,
        load_weights=lambda spec: tagger_registry.load(args.tagger, spec,
                                                       list(category_map.categories), prompts),
        speech_backend=args.speech_backend)
    run.check_identity(tagger, graph)
    source = args.embeddings_from if args.embeddings else None
    speech_models = speech_model_factory(graph, args.speech_backend, device,
                                         embeddings=source == VGGISH)
    run.check_kept_files(tagger, source, speech_models)
    evaluator = Evaluator(tagger, speech_models, category_map, device=device,
                          precision=args.precision, details=args.details, deform=deform,
                          embeddings=source or False, keep_scores=True)
    kept, todo = len(run.kept_rows), run.resume.todo
    run.open(vars(args), device)
    complete = False
    try:
        with Progress(len(todo), quiet=args.quiet, verbose=args.verbose) as progress:
            def write(row):
                run.write(row)
                progress.done(row)

            run_stems(evaluator, todo, write,
                      batch_size=args.batch_size or default_batch_size(device),
                      workers=workers, embed=run.embed, keep=run.keep)
        complete = True
    except KeyboardInterrupt as interrupt:
        raise type(interrupt)(
            f"interrupted: the rows so far are in {shown(args.output)}; the same command with "
            f"--resume continues the run") from None
    finally:
        run.close(complete, failing=not complete)
    run.finish()
    print(f"wrote {len(todo)} rows to {shown(args.output)} ({kept} kept from before, "
          f"{progress.errors} errors)", file=sys.stderr)
    return 0
