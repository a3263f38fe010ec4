"""Running a sweep's cells: the cell files, their shards, and the local runner.

Every cell is what ``evaluate.py --resume`` would keep and write: a results CSV with its
sidecar (the same identity a run records, checked on every resume: a cell whose sidecar
names other weights, another map or another condition is refused) and its lock file (a
second sweep on the same output stops at once). Rows already there are kept, a row cut by a
kill is repaired, and only the stems a cell lacks are run. A dataset's stems are cut into
shards of ``options.chunk`` stems, in path order; each shard's rows are appended to every
cell file in the stems' order, so a cell's file is the same whichever runner, shard size or
interruption made it. Everything is checked, and every cell locked, before any file is
written. With ``options.embeddings`` each cell also keeps its embeddings as a run's
``--embeddings`` does (``config.embeddings_path``: guarded, logged before each row, resumed,
and refused when the rows kept have none).
"""

import dataclasses
import os
import sys
from contextlib import ExitStack

from stemeval.runfiles import embeddings
from stemeval.common.errors import UserError
from stemeval.runfiles.outputs import RunFiles, check_outputs
from stemeval.engine.progress import Progress
from stemeval.runfiles.results import COLUMNS, ERROR, ResultWriter, left_out_stems, read_results

SUMMARY_FILES = ("summary.csv", "summary.json", "accuracy.png")
DISTANCE_PLOT = "distance.png"  # with embeddings: the accuracy drop against FAD


def dataset_stems(config, dataset):
    """The stems and category map of a dataset, as ``evaluate.py`` selects them."""
    from stemeval.datasets import DATASETS
    from stemeval.datasets.selection import find_stems

    try:
        return find_stems(DATASETS[dataset.layout], dataset.folder, dataset.map, dataset.split,
                          dataset.limit, dataset.follow_links)
    except UserError as error:
        raise UserError(f"{config.path}: datasets.{dataset.name}: {error}") from None


class SweepCell:
    """One cell's files, what its resume keeps, and (once started) its writer, sidecar and
    embeddings store."""

    def __init__(self, path, tagger, condition, embeddings=None):
        self.files = RunFiles(path, embeddings)
        self.tagger, self.condition = tagger, condition
        self.identity = self.resume = self.writer = self.sidecar = self.store = None
        self.written = 0
        self.complete = False


class DatasetCells:
    """The cells of one dataset and the work they still lack."""

    def __init__(self, config, dataset):
        self.dataset = dataset
        self.stems, self.category_map = dataset_stems(config, dataset)
        self.cells = [SweepCell(config.cell_path(dataset, tagger, condition), tagger, condition,
                           config.embeddings_path(dataset, tagger, condition))
                      for d, tagger, condition in config.cells() if d == dataset]
        self.todo = []

    def inputs(self):
        """``(role, path)`` of what this dataset's cells read (stems, manifest, map)."""
        from stemeval.datasets import DATASETS

        manifest = self.dataset.folder if DATASETS[self.dataset.layout].input_is_file else None
        return ([("stem", stem.path) for stem in self.stems] +
                [(role, path) for role, path in (("manifest", manifest), ("map", self.dataset.map))
                 if path])

    def plan(self, config, device):
        """Read and check what every cell keeps (nothing is written)."""
        from stemeval.datasets import DATASETS
        from stemeval.engine.run import plan_resume
        from stemeval.runfiles.sidecar import condition_identity

        dataset = self.dataset
        left_out = left_out_stems(DATASETS[dataset.layout], dataset.folder, self.category_map,
                                  dataset.split, dataset.limit, dataset.follow_links)
        for cell in self.cells:
            cell.identity = condition_identity(dataset.layout, self.category_map,
                                               cell.condition.spec, config.options.precision,
                                               config.options.speech_backend, device)
            cell.resume = plan_resume(cell.files.output, COLUMNS, cell.identity, self.stems,
                                      dataset.folder, left_out)
        self.todo = [{stem.path for stem in cell.resume.todo} for cell in self.cells]

    def start(self, config, device, models, stack):
        """Check each cell against its model files (``models``: (dataset, tagger) -> identity
        fields), then write the sidecar and open the CSV of each cell with work left."""
        from stemeval.runfiles.sidecar import Sidecar, check_resume

        for cell in self.cells:
            cell.identity = {**models[self.dataset.name, cell.tagger], **cell.identity}
            check_resume(cell.resume.previous, cell.identity, cell.files.output)
        made = {cell.tagger: self._maker(config, cell) for cell in self.cells
                if cell.files.embeddings}
        for cell in self.cells:
            if cell.files.embeddings and cell.resume.kept and cell.resume.kept.rows:
                embeddings.check_resume(cell.files.embeddings, made[cell.tagger]["tagger"],
                                        cell.resume.kept.rows, cell.files.output,
                                        made[cell.tagger]["layer"],
                                        made[cell.tagger]["weights"])
        for cell, todo in zip(self.cells, self.todo):
            if not todo:
                continue
            cell.sidecar = Sidecar(cell.files.output, cell.identity,
                                   _cell_options(config, self.dataset, cell), device,
                                   cell.resume.previous)
            cell.sidecar.start()
            cell.writer = stack.enter_context(ResultWriter(cell.files.output, COLUMNS,
                                                           cell.resume.kept))
            if cell.files.embeddings:
                cell.store = embeddings.EmbeddingStore(
                    cell.files.embeddings, resume=cell.resume.kept is not None,
                    **made[cell.tagger])
                stack.callback(lambda cell=cell: cell.store.close(cell.complete))

    def _maker(self, config, cell):
        """What makes the cell's embeddings (``embeddings.maker``): its tagger's."""
        from stemeval.sweep.work import load_tagger

        tagger = load_tagger(cell.tagger, config.options, list(self.category_map.categories))
        return embeddings.maker("tagger", cell.identity, tagger)

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
        """Append a shard's rows (and their embeddings, first) to its cells' files."""
        from stemeval.sweep.work import EMBEDDING

        by_cell = {(cell.tagger, cell.condition): index for index, cell in enumerate(self.cells)}
        stems = {stem.path: stem for stem in self.stems}
        for (tagger, condition, _), rows in zip(cells, results):
            index = by_cell[(tagger, condition)]
            for row in rows:
                embedding = row.pop(EMBEDDING, None)
                if embedding is not None and self.cells[index].store is not None:
                    self.cells[index].store.add(stems[row["path"]], embedding)
                self.cells[index].writer.write(row)
                self.cells[index].written += 1
                self.todo[index].discard(row["path"])
                progress.done(row)

    def finish(self):
        """The sidecar's end of every cell this sweep wrote (its embeddings are assembled and
        their log removed as the sweep closes its files)."""
        for cell in self.cells:
            cell.complete = True
            if cell.sidecar is not None:
                rows = read_results(cell.files.output)
                cell.sidecar.finish(stems=len(rows),
                                    errors=sum(row["prediction"] == ERROR for row in rows),
                                    stems_this_run=cell.written)


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


def _model_identities(config, datasets):
    """(dataset, tagger name) -> its model identity fields (the taggers are loaded once per
    process; a zero-shot tagger's prompts are its dataset's)."""
    from stemeval.runfiles.sidecar import model_identity
    from stemeval.taggers.published_files import ensure_speech_model
    from stemeval.sweep.work import load_tagger

    speech_model = ensure_speech_model(config.options.speech_model,
                                       config.options.speech_backend)
    found = {}
    for cells in datasets:
        for tagger in config.taggers:
            model = load_tagger(tagger, config.options, list(cells.category_map.categories))
            found[cells.dataset.name, tagger] = model_identity(model, speech_model)
    return found


def open_datasets(config, stack):
    """Check, lock and open every cell of the sweep (refusals before any write); returns the
    ``DatasetCells`` and the number of rows left to do. ``finish_datasets`` ends them."""
    from stemeval.sweep.work import sweep_device

    datasets = [DatasetCells(config, dataset) for dataset in config.datasets]
    inputs = _sweep_inputs(config, datasets)
    for cells in datasets:
        for cell in cells.cells:
            cell.files.check(inputs, make_folders=True)
    summary = SUMMARY_FILES + ((DISTANCE_PLOT,) if config.options.embeddings else ())
    check_outputs([(name, os.path.join(config.output, name)) for name in summary],
                  inputs, make_folders=True)
    for cells in datasets:
        for cell in cells.cells:
            try:
                os.makedirs(os.path.dirname(cell.files.output), exist_ok=True)
            except OSError as error:
                raise UserError(f"cannot make the folder of {cell.files.output}: "
                                f"{error.strerror}") from None
            stack.enter_context(cell.files.locked())
    device = sweep_device(config.options)
    for cells in datasets:
        cells.plan(config, device)
    models = _model_identities(config, datasets)
    for cells in datasets:
        cells.start(config, device, models, stack)
    return datasets, sum(cells.remaining() for cells in datasets)


def finish_datasets(datasets):
    """End every cell's sidecar once all shards are written."""
    for cells in datasets:
        cells.finish()


def run_local(config, quiet=False):
    """Run the sweep's remaining cells in this process, shard by shard."""
    from stemeval.sweep.work import evaluate_shard

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
