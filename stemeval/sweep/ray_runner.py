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

Failures are one line: joining a cluster gives up after ``STEMEVAL_RAY_TIMEOUT`` seconds
(default 30; ``ray.init`` itself retries for minutes), checking first that something
listens at the address; a shard whose task Ray gave up on (its worker killed or out of
memory more often than Ray retries) names its cells and the cause, and the rows already
written stay, so running the same command again goes on from there.
"""

import os
import socket
import subprocess
import sys
from contextlib import ExitStack

from stemeval.common.errors import UserError, needs_packages, one_line
from stemeval.engine.progress import Progress
from stemeval.sweep.runner import finish_datasets, open_datasets
from stemeval.sweep.work import evaluate_shard, forget_loaded

# Imported inside the functions that use them, so that what needs none of them starts without them:
# ray.

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_VARIABLE = "STEMEVAL_RAY_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
TOKEN_HELP = ("set RAY_AUTH_MODE=token and give this process the head's token (ray "
              "get-auth-token, on the head) in RAY_AUTH_TOKEN or ~/.ray/auth_token")


def _has_token():
    """Whether this process has a Ray token where Ray looks for one."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


def _token_missing():
    """Why this process sends no Ray token (None when it sends one): a cluster with token
    authentication, on by default since Ray 2.60, ignores a process that does not send its
    token, which Ray does only with ``RAY_AUTH_MODE=token``, and ``ray.init`` retries
    without saying why."""
    if os.environ.get("RAY_AUTH_MODE") == "token" and _has_token():
        return None
    missing = ("this process has no Ray token" if not _has_token() else
               "this process does not send its Ray token (RAY_AUTH_MODE is not token)")
    return (f"{missing}, and a cluster with token authentication (on by default since Ray "
            f"2.60) does not answer without one: {TOKEN_HELP}")


def _no_answer(where, timeout):
    """Why a cluster that accepts connections may not answer: not Ray, or no token sent."""
    why = _token_missing() or "is it a Ray head's address, and is this process's token the head's?"
    return (f"cannot join {where}: no answer within {timeout:g} s; {why} (set "
            f"{TIMEOUT_VARIABLE} to wait longer)")


def _not_joined(where, message, authentication):
    """The line for a join that failed with ``message`` (Ray's own, one line), naming the
    token where it can be the cause: Ray says only ``Failed to connect`` when a cluster with
    token authentication ignored this process (no token sent, or another token)."""
    if authentication:
        why = (f"this process has no Ray token: {TOKEN_HELP}" if not _has_token() else
               f"the cluster refused this process's Ray token; {TOKEN_HELP}")
    elif "Failed to connect" in message:
        why = (f"{message}; " + (_token_missing() or
                                 "is this process's Ray token the head's? A cluster with token "
                                 "authentication does not answer another one"))
    else:
        why = message
    return f"cannot start or join {where}: {why}"


def connect_timeout():
    """Seconds to wait for a Ray cluster to answer: ``STEMEVAL_RAY_TIMEOUT``, default 30."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UserError(f"{TIMEOUT_VARIABLE}={text}: give the seconds to wait for the Ray "
                        f"cluster, a number above 0")
    return value


def _host_port(address):
    """``(host, port)`` of an address Ray is given as ``HOST:PORT`` or ``ray://HOST:PORT``;
    None for ``auto`` and the like, which Ray resolves itself."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    return (host.strip("[]"), int(port)) if colon and host and port.isdigit() else None


def _check_listening(address, timeout):
    """A UserError at once when nothing accepts connections at ``address``."""
    found = _host_port(address)
    if found is None:
        return
    try:
        socket.create_connection(found, timeout=timeout).close()
    except OSError as error:
        why = "nothing answered in time" if isinstance(error, TimeoutError) else one_line(error)
        raise UserError(f"cannot join the Ray cluster at {address}: {why} (start it there with "
                        f"ray start --head --port {found[1]}, or give the head's address)") from None


PROBE = ("import sys, ray\n"
         "ray.init(address=sys.argv[1], logging_level='error', log_to_driver=False)\n"
         "ray.shutdown()\n")


def _connect(address):
    """Use Ray as already started in this process, or start/join it; True if started here.

    Joining an address is tried first by a separate process (``_probe``), so that a cluster
    that never answers is given up after ``connect_timeout()`` seconds, rather than after
    Ray's own minutes of retries, and leaves nothing of Ray running here."""
    import ray

    if ray.is_initialized():
        return False
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    if address:
        timeout = connect_timeout()
        _check_listening(address, timeout)
        _probe(address, where, timeout)
    try:
        ray.init(address=address, logging_level="warning", configure_logging=True,
                 log_to_driver=True)
    except Exception as error:
        raise UserError(_not_joined(where, one_line(error), isinstance(
            error, ray.exceptions.AuthenticationError))) from None
    return True


def _probe(address, where, timeout):
    """Join ``address`` from a child process, killed after ``timeout`` seconds."""
    try:
        joined = subprocess.run([sys.executable, "-c", PROBE, address], capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(_no_answer(where, timeout)) from None
    if joined.returncode != 0:
        lines = [line for line in joined.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {joined.returncode}"
        raise UserError(_not_joined(where, last, "AuthenticationError" in last))


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

    os.chdir(folder)
    cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))
    return evaluate_shard(*args, cpus=cpus)


def _result(ref, cells, todo):
    """The rows of one shard's task, or a UserError naming its cells and why Ray gave up."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None) or error
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        why = f"{type(cause).__name__}: {one_line(cause)}"
    except ray.exceptions.RayError as error:
        why = _ray_cause(error)
    names = ", ".join(f"{cells.dataset.name}/{tagger}/{condition.spec}"
                      for tagger, condition, _ in todo)
    first = min(path for _, _, paths in todo for path in paths)
    raise UserError(f"sweep cell(s) {names} failed on Ray at the shard from {first}: {why}; "
                    f"the rows already written are kept: run the same command again to go "
                    f"on") from None


def _ray_cause(error):
    """Why Ray gave up on a task, in a few words."""
    import ray

    known = ((ray.exceptions.OutOfMemoryError, "Ray killed its worker for lack of memory"),
             (ray.exceptions.WorkerCrashedError, "its worker process died (killed or crashed) "
                                                 "more times than Ray retries a task"),
             (ray.exceptions.NodeDiedError, "the node running it died"))
    for kind, text in known:
        if isinstance(error, kind):
            return f"{text} ({kind.__name__})"
    return f"{type(error).__name__}: {one_line(error)}"


def run_ray(config, address=None, quiet=False):
    """Run the sweep's remaining cells as Ray tasks; write their rows here, in order."""
    with needs_packages("--ray"):
        import ray

    with ExitStack() as stack:
        datasets, remaining = open_datasets(config, stack)
        forget_loaded()  # the cells run in Ray's processes, which load their own
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
                        cells.write(todo, _result(ref, cells, todo), progress)
            finally:
                if started:
                    ray.shutdown()
        finish_datasets(datasets)
    print(f"ran {remaining} rows as Ray tasks", file=sys.stderr)
