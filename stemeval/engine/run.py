"""The one run loop: stems -> prepared on the CPU (worker processes) -> the networks in
batches (this process) -> rows in the stems' order; and the evaluation run built on it.
Evaluation runs, the analyze scripts and every sweep cell run this loop.

``run_cells`` runs several *cells* (a tagger on a condition, each with its own ``write``)
over the same stems: each stem is decoded once and prepared for every condition and tagger
in a worker (``stemeval.engine.workers``), then each tagger runs on batches of stems and each cell
gets its rows in the stems' order, one flushed row per stem. ``run_stems`` is one cell.
``evaluate`` is a whole evaluation run: checks, model files, the results CSV with its
sidecar, kept scores and embeddings, progress. What it may write
and when it refuses are decided apart from the loop: ``outputs.RunFiles`` (the files and their lock),
``plan_resume`` (what a resume keeps; sweeps use it too), ``sidecar`` (the identity a resume
must match).
"""

import sys
from dataclasses import dataclass

from stemeval.common.errors import UserError, needs_packages


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
    from stemeval.engine.pipeline import Preparer
    from stemeval.engine.workers import prepared_in_order

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
    from stemeval.datasets.clap_prompts import prompts_for
    from stemeval.datasets.selection import find_stems
    from stemeval.engine.devices import pick_device, warm_up
    from stemeval.runfiles.outputs import RunFiles, run_inputs
    from stemeval.runfiles.results import COLUMNS, DETAIL_COLUMNS, left_out_stems
    from stemeval.runfiles.sidecar import condition_identity
    from stemeval.taggers import check_name, entry

    check_name(args.tagger)
    if args.embeddings_from != "tagger" and args.embeddings is None:
        raise UserError(f"--embeddings-from {args.embeddings_from} says where --embeddings come "
                        f"from; give --embeddings PATH too")
    if args.embeddings_from == "vggish":
        from stemeval.speech.gate import check_embeddings_backend

        check_embeddings_backend(args.speech_backend)
    if args.prompts is not None and not entry(args.tagger).zero_shot:
        raise UserError(f"--prompts is for a zero-shot tagger (clap), whose scores are its "
                        f"categories' prompts; --tagger {args.tagger} scores AudioSet's labels")
    deform = None
    if args.deform is not None:
        with needs_packages("--deform"):
            from stemeval.audio.deform import Deformer

            deform = Deformer(args.deform, args.folder)
    from stemeval.audio.deform import CLEAN  # after --deform's check, which names a missing package

    stems, category_map = find_stems(dataset, args.folder, args.map, args.split, args.limit,
                                     args.follow_links)
    prompts = prompts_for(category_map.categories, args.prompts) if args.prompts else None
    files = RunFiles(args.output, args.embeddings, keep_scores=True)
    files.check(run_inputs(stems, args.tagger, args.folder if dataset.input_is_file else None,
                           args.map, args.checkpoint, args.speech_model)
                + [("--prompts", args.prompts)])
    device = pick_device(args.device)
    warm_up(device)
    columns = COLUMNS + DETAIL_COLUMNS if args.details else COLUMNS
    condition = condition_identity(dataset.name, category_map, deform.spec if deform else CLEAN,
                                   args.precision, args.speech_backend, device)
    with files.locked():
        resume = (plan_resume(args.output, columns, condition, stems, args.folder,
                              left_out_stems(dataset, args.folder, category_map, args.split,
                                             args.limit, args.follow_links))
                  if args.resume else Resume(None, None, stems))
        return _run(args, stems, category_map, prompts, device, deform, columns, condition,
                    resume)


@dataclass
class Resume:
    """What a run goes on from: the kept rows (``results.KeptRows``, None for a new file), the
    sidecar record they were made under (None if none), and the stems still to do."""

    kept: object
    previous: dict
    todo: list


def plan_resume(output, columns, condition, stems, folder, left_out=None):
    """The ``Resume`` of a results file with ``--resume``, read and checked without writing:
    its rows (refused if damaged), its sidecar (refused if unreadable or of another
    ``condition``; the model files are checked once loaded, with ``sidecar.check_resume``)
    and the stems it lacks (refused if its rows are not of these stems)."""
    from stemeval.runfiles.results import read_kept, stems_to_do
    from stemeval.runfiles.sidecar import check_resume, read_previous, sidecar_path

    kept = read_kept(output, columns)
    if kept is None or not kept.rows:
        return Resume(kept, None, list(stems))
    previous = read_previous(output)
    check_resume(previous, condition, output)
    todo = stems_to_do([(row["path"], row["label"]) for row in kept.rows], stems, folder,
                       output, left_out)
    if previous is None:
        print(f"warning: {output} has no sidecar {sidecar_path(output)}: its "
              f"{len(kept.rows)} rows are kept without checking what made them",
              file=sys.stderr)
    return Resume(kept, previous, todo)


def _run(args, stems, category_map, prompts, device, deform, columns, condition, resume):
    """The run proper, under the output's lock: models, checks against the resumed file,
    then the sidecar, the CSV, the embeddings and the kept scores, written in that order."""
    from stemeval import taggers
    from stemeval.runfiles import embeddings
    from stemeval.runfiles import kept_scores
    from stemeval.engine.devices import default_batch_size, default_workers, share_cores
    from stemeval.engine.pipeline import Evaluator
    from stemeval.engine.precision import use_exact_fp32
    from stemeval.engine.progress import Progress
    from stemeval.runfiles.results import ERROR, ResultWriter, read_results
    from stemeval.runfiles.sidecar import Sidecar, check_resume, model_identity
    from stemeval.speech.gate import speech_model_factory
    from stemeval.taggers.published_files import load_model_files

    use_exact_fp32(device)
    workers = default_workers(device) if args.workers is None else args.workers
    share_cores(device, workers)
    tagger, graph = load_model_files(
        args.checkpoint, args.speech_model,
        load_weights=lambda spec: taggers.load(args.tagger, spec, list(category_map.categories),
                                               prompts),
        speech_backend=args.speech_backend)
    identity = {**model_identity(tagger, graph), **condition}
    check_resume(resume.previous, identity, args.output)
    kept = resume.kept.rows if resume.kept else []
    source = args.embeddings_from if args.embeddings else None
    speech_models = speech_model_factory(graph, args.speech_backend, device,
                                         embeddings=source == embeddings.VGGISH)
    made = embeddings.maker(source, identity, tagger, speech_models) if source else None
    if args.embeddings and kept:
        embeddings.check_resume(args.embeddings, made["tagger"], kept, args.output,
                                made["layer"], made["weights"])
    scores_header = kept_scores.header_of(tagger, identity)
    if kept:
        kept_scores.check_resume(args.output, scores_header, kept)
    evaluator = Evaluator(tagger, speech_models, category_map, device=device,
                          precision=args.precision, details=args.details, deform=deform,
                          embeddings=source or False, keep_scores=True)
    groups = {stem.path: stem.group for stem in stems}
    sidecar = Sidecar(args.output, identity, vars(args), device, resume.previous,
                      scores=kept_scores.scores_path(args.output))
    sidecar.start()
    with ResultWriter(args.output, columns, resume.kept) as writer:
        store = (embeddings.EmbeddingStore(args.embeddings, resume=resume.kept is not None,
                                           **made)
                 if args.embeddings else None)
        keeper = kept_scores.KeptScoresStore(args.output, scores_header,
                                             resume=resume.kept is not None,
                                             kept_rows=len(kept))
        complete = False
        try:
            with Progress(len(resume.todo), quiet=args.quiet, verbose=args.verbose) as progress:
                def write(row):
                    writer.write({**row, "group": groups[row["path"]]})
                    progress.done(row)

                run_stems(evaluator, resume.todo, write,
                          batch_size=args.batch_size or default_batch_size(device),
                          workers=workers, embed=store.add if store else None,
                          keep=keeper.add)
            complete = True
        except KeyboardInterrupt as interrupt:
            raise type(interrupt)(
                f"interrupted: the rows so far are in {args.output}; the same command with "
                f"--resume continues the run") from None
        finally:
            if store is not None:
                store.close(complete)
            keeper.close(complete)
    rows = read_results(args.output)
    sidecar.finish(stems=len(rows), errors=sum(row["prediction"] == ERROR for row in rows),
                   stems_this_run=len(resume.todo))
    print(f"wrote {len(resume.todo)} rows to {args.output} ({len(kept)} kept from before, "
          f"{progress.errors} errors)", file=sys.stderr)
    return 0
