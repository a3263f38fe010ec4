"""Running a sweep's cells: the cell files, their shards, and the local runner.

Every cell file is a results CSV opened with ``--resume``'s machinery (``ResultWriter``):
rows already there are kept, a line cut by a kill is repaired, and only the stems a cell
lacks are run. A dataset's stems are cut into shards of ``options.chunk`` stems, in path
order; each shard's rows are appended to every cell file in the stems' order, so a cell's
file is the same whichever runner, shard size or interruption made it.
"""

import os
import sys
from contextlib import ExitStack

from stemeval.errors import UserError
from stemeval.progress import Progress
from stemeval.results import COLUMNS, ResultWriter, check_output_path, stems_to_do


def dataset_stems(config, dataset):
    """The stems and category map of a dataset, as ``evaluate.py`` selects them."""
    from stemeval.datasets import DATASETS
    from stemeval.datasets.selection import find_stems

    try:
        return find_stems(DATASETS[dataset.layout], dataset.folder, dataset.map, dataset.split,
                          dataset.limit, dataset.follow_links)
    except UserError as error:
        raise UserError(f"{config.path}: datasets.{dataset.name}: {error}") from None


def check_outputs(config):
    """Fail before any work if a cell file cannot be written (folders are made here)."""
    for cell in config.cells():
        path = config.cell_path(*cell)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot make the folder of {path}: {error.strerror}") from None
        check_output_path(path)


class DatasetCells:
    """The open cell files of one dataset and the work they still lack."""

    def __init__(self, config, dataset, stack):
        self.dataset = dataset
        self.stems, self.category_map = dataset_stems(config, dataset)
        self.cells = [(tagger, condition) for d, tagger, condition in config.cells()
                      if d == dataset]
        self.writers, self.todo = [], []
        for cell in self.cells:
            path = config.cell_path(dataset, *cell)
            writer = stack.enter_context(ResultWriter(path, COLUMNS, resume=True))
            self.writers.append(writer)
            self.todo.append({stem.path for stem in stems_to_do(writer.kept, self.stems,
                                                                dataset.folder, path)})

    def remaining(self):
        return sum(map(len, self.todo))

    def shards(self, size):
        """``(stems, [(tagger, condition, paths to do)])`` for each shard with work left."""
        for start in range(0, len(self.stems), size):
            stems = self.stems[start:start + size]
            cells = [(tagger, condition, {s.path for s in stems if s.path in todo})
                     for (tagger, condition), todo in zip(self.cells, self.todo)]
            cells = [cell for cell in cells if cell[2]]
            if cells:
                yield stems, cells

    def write(self, cells, results, progress):
        """Append a shard's rows to its cells' files."""
        by_cell = {cell: index for index, cell in enumerate(self.cells)}
        for (tagger, condition, _), rows in zip(cells, results):
            index = by_cell[(tagger, condition)]
            for row in rows:
                self.writers[index].write(row)
                self.todo[index].discard(row["path"])
                progress.done(row)


def open_datasets(config, stack):
    """Open every dataset's cell files; returns them and the number of rows left to do."""
    check_outputs(config)
    datasets = [DatasetCells(config, dataset, stack) for dataset in config.datasets]
    return datasets, sum(cells.remaining() for cells in datasets)


def run_local(config, quiet=False):
    """Run the sweep's remaining cells in this process, shard by shard."""
    from stemeval.sweep.work import evaluate_shard, load_models

    with ExitStack() as stack:
        datasets, remaining = open_datasets(config, stack)
        if remaining:
            load_models(config, [cells.category_map for cells in datasets])
        with Progress(remaining, quiet=quiet) as progress:
            for cells in datasets:
                for stems, todo in cells.shards(config.options.chunk):
                    results = evaluate_shard(config.options, cells.dataset, cells.category_map,
                                             stems, todo)
                    cells.write(todo, results, progress)
    print(f"ran {remaining} rows", file=sys.stderr)
