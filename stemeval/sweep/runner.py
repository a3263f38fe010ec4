"""Running a sweep's cells: the cell files, their shards, and the local runner.

Every cell is what ``evaluate.py --resume`` would keep and write, through the same life
cycle (``stemeval.runfiles.lifecycle``, which owns what a resume keeps and the identity it
must match): a results CSV with its sidecar (the same identity a run records, checked on
every resume: a cell whose sidecar names other weights, another map or another condition is
refused), its kept scores (``<cell>.csv.scores.npz``, so ``computeaccuracy.py --map``
re-derives a cell's rows as a run's) and its lock file (a second sweep on the same output
stops at once). Rows already there are kept, a row cut by a kill is repaired, and only the
stems a cell lacks are run. A dataset's stems are cut into shards of ``options.chunk``
stems, in path order; each shard's rows are appended to every cell file in the stems'
order, so a cell's file is the same whichever runner, shard size or interruption made it.
Everything is checked, and every cell locked, before any file is written. With
``options.embeddings`` each cell also keeps its embeddings as a run's ``--embeddings`` does
(``config.embeddings_path``). What is left here is the sweep's own: which cells there are,
their shards, and whose rows go to which cell.
"""

import dataclasses
import os
import sys
from contextlib import ExitStack

from stemeval.common.errors import UserError, os_reason
from stemeval.datasets import DATASETS
from stemeval.datasets.selection import find_stems
from stemeval.engine.progress import Progress
from stemeval.runfiles.lifecycle import RunLifecycle
from stemeval.runfiles.outputs import check_report_outputs, locked_path
from stemeval.sweep.work import EMBEDDING, KEPT, evaluate_shard, load_tagger, sweep_device
from stemeval.taggers.published_files import ensure_speech_model

SUMMARY_FILES = ("summary.csv", "summary.json", "accuracy.png")
DISTANCE_PLOT = "distance.png"  # with embeddings: the accuracy drop against FAD


def dataset_stems(config, dataset):
    """The stems and category map of a dataset, as ``evaluate.py`` selects them."""
    try:
        return find_stems(DATASETS[dataset.layout], dataset.folder, dataset.map, dataset.split,
                          dataset.limit, dataset.follow_links)
    except UserError as error:
        raise UserError(f"{config.path}: datasets.{dataset.name}: {error}") from None


@dataclasses.dataclass
class SweepCell:
    """One cell: its tagger, its condition and the life cycle of its files."""

    tagger: str
    condition: object
    run: RunLifecycle


class DatasetCells:
    """The cells of one dataset and the work they still lack."""

    def __init__(self, config, dataset):
        self.dataset = dataset
        self.stems, self.category_map = dataset_stems(config, dataset)
        self.cells = [SweepCell(tagger, condition,
                                RunLifecycle(config.cell_path(dataset, tagger, condition),
                                             embeddings=config.embeddings_path(
                                                 dataset, tagger, condition)))
                      for d, tagger, condition in config.cells() if d == dataset]
        self.todo = []

    def inputs(self):
        """``(role, path)`` of what this dataset's cells read (stems, manifest, map)."""
        manifest = self.dataset.folder if DATASETS[self.dataset.layout].input_is_file else None
        return ([("stem", stem.path) for stem in self.stems] +
                [(role, path) for role, path in (("manifest", manifest), ("map", self.dataset.map))
                 if path])

    def plan(self, config, device):
        """Read and check what every cell keeps (nothing is written)."""
        dataset, options = self.dataset, config.options
        for cell in self.cells:
            cell.run.plan(DATASETS[dataset.layout], dataset.folder, self.stems,
                          self.category_map, cell.condition.spec, options.precision,
                          options.speech_backend, device, dataset.split, dataset.limit,
                          dataset.follow_links)
        self.todo = [{stem.path for stem in cell.run.resume.todo} for cell in self.cells]

    def check(self, config, speech_model, hashed):
        """Check every cell against its loaded model files (``speech_model``: the speech
        graph's file; ``hashed``: the files hashed so far), finished cells included."""
        loaded = {cell.tagger: load_tagger(cell.tagger, config.options,
                                           list(self.category_map.categories))
                  for cell in self.cells}
        for cell in self.cells:
            cell.run.check_identity(loaded[cell.tagger], speech_model, hashed)
        for cell in self.cells:
            cell.run.check_kept_files(loaded[cell.tagger])

    def start(self, config, device, stack):
        """Open the files of each cell with work left (its sidecar, CSV, embeddings and kept
        scores); ``stack`` closes them, as interrupted, unless ``finish`` ends them first."""
        for cell, todo in zip(self.cells, self.todo):
            if todo:
                stack.callback(cell.run.close, False, True)  # failing: the logs stay
                cell.run.open(_cell_options(config, self.dataset, cell), device)

    def remaining(self):
        return sum(map(len, self.todo))

    def shards(self, size):
        """``(stems, [(tagger, condition, paths to do)])`` for each shard with work left."""
        for start in range(0, len(self.stems), size):
            stems = self.stems[start:start + size]
            cells = [(cell.tagger, cell.condition, {s.path for s in stems if s.path in todo})
                     for cell, todo in zip(self.cells, self.todo)]
            cells = [cell for cell in cells if cell[2]]
            if cells:
                yield stems, cells

    def write(self, cells, results, progress):
        """Append a shard's rows (and their embeddings and kept scores, first) to its cells'
        files."""
        by_cell = {(cell.tagger, cell.condition): index for index, cell in enumerate(self.cells)}
        stems = {stem.path: stem for stem in self.stems}
        for (tagger, condition, _), rows in zip(cells, results):
            index = by_cell[(tagger, condition)]
            run = self.cells[index].run
            for row in rows:
                stem = stems[row["path"]]
                embedding, kept = row.pop(EMBEDDING, None), row.pop(KEPT, None)
                if embedding is not None:
                    run.embed(stem, embedding)
                if kept is not None:
                    run.keep(stem, kept)
                run.write(row)
                self.todo[index].discard(row["path"])
                progress.done(row)

    def finish(self):
        """End every cell this sweep wrote: its embeddings and kept scores assembled (their
        logs removed), then its sidecar's session."""
        for cell in self.cells:
            if cell.run.sidecar is not None:
                cell.run.finish()


def _cell_options(config, dataset, cell):
    """A cell's options for its sidecar: the config, the dataset and the cell's condition."""
    options = {key: value for key, value in dataclasses.asdict(config.options).items()
               if key != "checkpoints"}
    return {"config": config.path, **dataclasses.asdict(dataset), "tagger": cell.tagger,
            "checkpoint": config.options.checkpoints.get(cell.tagger),
            "deform": cell.condition.spec, **options}


def _sweep_inputs(config, datasets):
    """``(role, path)`` of everything the sweep reads."""
    options = config.options
    inputs = [("sweep config", config.path),
              ("speech model", options.speech_model)]
    inputs += [("checkpoint", path) for path in options.checkpoints.values()
               if path and os.path.exists(path)]
    for cells in datasets:
        inputs += cells.inputs()
    return [(role, path) for role, path in inputs if path]


def open_datasets(config, stack):
    """Check, lock and open every cell of the sweep (refusals before any write); returns the
    ``DatasetCells`` and the number of rows left to do. ``finish_datasets`` ends them."""
    datasets = [DatasetCells(config, dataset) for dataset in config.datasets]
    inputs = _sweep_inputs(config, datasets)
    for cells in datasets:
        for cell in cells.cells:
            cell.run.files.check(inputs, make_folders=True)
    summary = SUMMARY_FILES + ((DISTANCE_PLOT,) if config.options.embeddings else ())
    check_report_outputs([(name, os.path.join(config.output, name)) for name in summary],
                         inputs, make_folders=True)
    for cells in datasets:
        for cell in cells.cells:
            try:
                os.makedirs(os.path.dirname(cell.run.output), exist_ok=True)
            except OSError as error:
                raise UserError(f"cannot make the folder of {cell.run.output}: "
                                f"{os_reason(error)}") from None
    for cells in datasets:
        for cell in cells.cells:
            stack.enter_context(cell.run.files.locked())
    stack.enter_context(summary_lock(config))  # and one sweep at a time in the folder
    device = sweep_device(config.options)
    for cells in datasets:
        cells.plan(config, device)
    speech_model = ensure_speech_model(config.options.speech_model,
                                       config.options.speech_backend)
    hashed = {}  # each model file hashed once for every cell's identity
    for cells in datasets:
        cells.check(config, speech_model, hashed)
    for cells in datasets:
        cells.start(config, device, stack)
    return datasets, sum(cells.remaining() for cells in datasets)


def summary_lock(config):
    """The lock of the sweep's folder (its ``summary.csv``): a second sweep writing into the
    same folder stops at once, naming the first, so one summary never mixes two sweeps nor
    loses one; held while the cells run and again while the summary is written."""
    return locked_path(os.path.join(config.output, SUMMARY_FILES[0]), "sweep")


def finish_datasets(datasets):
    """End every cell this sweep wrote once all shards are written (``DatasetCells.finish``)."""
    for cells in datasets:
        cells.finish()


def run_local(config, quiet=False):
    """Run the sweep's remaining cells in this process, shard by shard."""
    with ExitStack() as stack:
        datasets, remaining = open_datasets(config, stack)
        with Progress(remaining, quiet=quiet) as progress:
            for cells in datasets:
                for stems, todo in cells.shards(config.options.chunk):
                    results = evaluate_shard(config.options, cells.dataset, cells.category_map,
                                             stems, todo)
                    cells.write(todo, results, progress)
        finish_datasets(datasets)
    print(f"ran {remaining} rows", file=sys.stderr)
