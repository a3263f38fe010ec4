"""Where the networks run, and how much work is in flight there: device choice, batch size
and preparing workers, the same for evaluation runs and sweeps."""

import os

from stemeval.common.errors import UserError

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch.

DEVICES = ("auto", "cpu", "cuda", "mps")
CPU_BATCH_SIZE = 4  # larger batches are no faster on a CPU
GPU_BYTES_PER_STEM = 256 * 2 ** 20  # a tagger's activations per stem in a batch, generously
MAX_GPU_BATCH_SIZE = 64


def pick_device(name):
    """The device ``--device NAME`` asks for: ``auto`` is cuda where there is one, else cpu."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: no MPS device is available")
    return name


def warm_up(device):
    """Start a CUDA device's initialisation now, in the background, while weights are read."""
    import threading

    import torch

    if torch.device(device).type == "cuda":
        threading.Thread(target=torch.cuda.init, daemon=True).start()


def default_batch_size(device):
    """Stems per tagger forward pass: 4 on a CPU; on CUDA, as many as free memory allows."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(MAX_GPU_BATCH_SIZE, free // GPU_BYTES_PER_STEM))


def default_workers(device, cpus=None):
    """Worker processes for the CPU steps, of ``cpus`` cores (None: this machine's).

    On CUDA, one per core: the main process mostly waits on the GPU. On a CPU the main
    process's network needs cores too: a third of them prepare (the tagger costs about twice
    what a stem's preparing does), at least one when there are two cores, none on one core,
    where a second process would only take turns with the first.
    """
    import torch

    cpus = cpus or cpu_count()
    if torch.device(device).type == "cuda":
        return cpus
    return 0 if cpus == 1 else max(1, cpus // 3)


def share_cores(device, workers, cpus=None):
    """On a CPU, leave the main process's network the cores the workers do not take."""
    import torch

    if torch.device(device).type == "cpu" and workers:
        torch.set_num_threads(max(1, (cpus or cpu_count()) - workers))


def cpu_count():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))
