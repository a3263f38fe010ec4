"""Running a sweep on a Ray cluster: each shard of stems is one Ray task.

Ray does all the scheduling: every shard with work left (``options.chunk`` stems of one
dataset, through every cell that lacks them; see ``stemeval.sweep.work``) is submitted as a
task that takes a whole node's CPUs (the smallest node's count), which its worker processes
use for the CPU steps, and one GPU where the cluster has GPUs (and the options do not ask
for the CPU). The tasks return rows; only this process writes files, taking the tasks'
results in shard order, so the files are those of a local sweep, and an interrupted Ray
sweep resumes like a local one.

A task works in this process's folder, so the config's relative paths mean what they mean
here; it reads the datasets and model files there and imports this project from its folder
here (put on their ``PYTHONPATH``): on a cluster of several machines, both must be at the
same paths on every node (a shared file system).
"""

import os
import sys
from contextlib import ExitStack

from stemeval.errors import UserError, one_line
from stemeval.progress import Progress
from stemeval.sweep.runner import finish_datasets, open_datasets

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _connect(address):
    """Use Ray as already started in this process, or start/join it; True if started here."""
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level="warning", configure_logging=True,
                 log_to_driver=True)
    except (ConnectionError, ValueError, RuntimeError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise UserError(f"cannot start or join {where}: {one_line(error)}") from None
    return True


def _task_options(config):
    """A whole node's CPUs (the smallest node's), and a GPU where the cluster has them."""
    import ray

    pythonpath = os.pathsep.join(filter(None, [PROJECT, os.environ.get("PYTHONPATH")]))
    gpus = ray.cluster_resources().get("GPU", 0) > 0 and config.options.device in ("auto",
                                                                                     "cuda")
    cpus = min((node["Resources"].get("CPU", 1) for node in ray.nodes() if node["Alive"]),
               default=1)
    return {"num_cpus": max(1, int(cpus)), "num_gpus": 1 if gpus else 0,
            "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}}}


def _shard_task(folder, *args):
    """``evaluate_shard`` in ``folder`` (the driver's), with the CPUs Ray gave the task."""
    import ray

    from stemeval.sweep.work import evaluate_shard

    os.chdir(folder)
    cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))
    return evaluate_shard(*args, cpus=cpus)


def _result(ref):
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None) or error
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        raise UserError(f"a sweep task failed: {type(cause).__name__}: {one_line(cause)}") from None


def run_ray(config, address=None, quiet=False):
    """Run the sweep's remaining cells as Ray tasks; write their rows here, in order."""
    import ray

    with ExitStack() as stack:
        datasets, remaining = open_datasets(config, stack)
        if remaining:
            started = _connect(address)
            try:
                task = ray.remote(_shard_task).options(**_task_options(config))
                submitted = [(cells, todo, task.remote(os.getcwd(), config.options,
                                                        cells.dataset, cells.category_map,
                                                        stems, todo))
                             for cells in datasets
                             for stems, todo in cells.shards(config.options.chunk)]
                with Progress(remaining, quiet=quiet) as progress:
                    for cells, todo, ref in submitted:
                        cells.write(todo, _result(ref), progress)
            finally:
                if started:
                    ray.shutdown()
        finish_datasets(datasets)
    print(f"ran {remaining} rows as Ray tasks", file=sys.stderr)
