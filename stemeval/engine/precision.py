"""The networks' arithmetic: float32 that means float32, or autocast on request.

The published rows were made on CPU in float32 (``fp32``, the default on every device).
``fp16`` is what the published code ran on CUDA: the AST under float16 autocast with the
sigmoid under it too, so its scores were float16 values, ranked as such. ``bf16`` is
bfloat16 autocast. Needs only torch (the CUDA check runs it where nothing else is installed).
"""

from contextlib import nullcontext

import torch

AUTOCAST_TYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def autocast(device, precision):
    """The autocast context for ``precision`` on ``device``; fp32 runs without one."""
    if precision in AUTOCAST_TYPES:
        return torch.autocast(device_type=torch.device(device).type, dtype=AUTOCAST_TYPES[precision])
    return nullcontext()


def use_exact_fp32(device):
    """On CUDA, make float32 mean float32: no TF32 in matmuls or cuDNN convolutions.

    Both are allowed by default there (TF32 keeps 10 mantissa bits) and move the speech score
    by far more than the gate's decision margin.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"


def sigmoid_scores(model, batch, precision):
    """The model's sigmoid scores for ``batch`` (on the model's device), as numpy [B, classes]:
    float16 in fp16 (as published on CUDA), else float32."""
    with torch.inference_mode(), autocast(batch.device, precision):
        logits = model(batch)
        if precision == "fp16":
            return torch.sigmoid(logits).cpu().numpy()
    return torch.sigmoid(logits.float()).cpu().numpy()
