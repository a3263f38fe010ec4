"""How far the batched, fused-attention AST is from the published one-stem, plain-attention AST.

The published code ran the AST one stem at a time with timm 0.4.5's explicit attention
(``softmax((q @ k^T) * scale) @ v``); this project runs stems in batches (4 on a CPU) with
PyTorch's fused ``scaled_dot_product_attention``. Over many full-size inputs (kaldi fbanks of
varied synthetic audio: noise, tones, chirps, bursts, short excerpts padded with zeros) and
a full-size random AST whose head does not saturate the sigmoid, it prints the largest logit
and score differences and how often the chosen instrument label differs.

    .venv/bin/python benchmarks/ast_exactness.py [--inputs 100] [--batch-size 4] [--seed 0]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemeval.audio.resample import SAMPLE_RATE  # noqa: E402
from stemeval.engine.devices import CPU_BATCH_SIZE  # noqa: E402
from stemeval.labels.pick import choose_label  # noqa: E402
from stemeval.taggers.ast_features import fbank_features  # noqa: E402
from tests.helpers.ast_weights import random_ast  # noqa: E402
from tests.helpers.published import published_ast  # noqa: E402

SECONDS = 10.24  # the AST's 1024 frames


def synthetic_wave(rng):
    """16 kHz audio of one of several kinds, random level and length."""
    n = int(SECONDS * SAMPLE_RATE * rng.choice([1.0, 1.0, 0.7, 0.3, 0.05]))
    t = np.arange(n) / SAMPLE_RATE
    kind = rng.integers(5)
    if kind == 0:
        wave = rng.standard_normal(n)
    elif kind == 1:
        wave = sum(np.sin(2 * np.pi * rng.uniform(40, 6000) * t + rng.uniform(0, 6))
                   for _ in range(rng.integers(1, 6)))
    elif kind == 2:
        wave = np.sin(2 * np.pi * (rng.uniform(50, 500) + rng.uniform(10, 500) * t) * t)
    elif kind == 3:
        wave = rng.standard_normal(n) * (np.sin(2 * np.pi * rng.uniform(0.5, 8) * t) > 0.3)
    else:
        wave = np.cumsum(rng.standard_normal(n))
        wave -= np.convolve(wave, np.ones(64) / 64, mode="same")
    wave = wave / (np.abs(wave).max() + 1e-9) * 10 ** rng.uniform(-4, 0)
    return wave.astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=CPU_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    fbanks = torch.stack([fbank_features(synthetic_wave(rng), 1024) for _ in range(args.inputs)])
    fast = random_ast(args.seed)
    exact = published_ast(fast)
    start = time.perf_counter()
    with torch.inference_mode():
        fast_logits = torch.cat([fast(fbanks[i:i + args.batch_size])
                                 for i in range(0, args.inputs, args.batch_size)])
        exact_logits = torch.cat([exact(fbanks[i:i + 1]) for i in range(args.inputs)])
    seconds = time.perf_counter() - start

    fast_scores = torch.sigmoid(fast_logits).numpy()
    exact_scores = torch.sigmoid(exact_logits).numpy()
    differ = {allowed: sum(choose_label(a, lambda: allowed)[0] != choose_label(b, lambda: allowed)[0]
                           for a, b in zip(fast_scores, exact_scores))
              for allowed in (True, False)}
    margins = [np.diff(np.sort(scores)[-2:])[0] for scores in exact_scores]
    print(f"{args.inputs} inputs, fast path batch {args.batch_size} (fused attention) vs "
          f"batch 1 (timm 0.4.5 attention), torch {torch.__version__}, {seconds:.0f} s")
    print(f"logits: spread {exact_logits.std():.3f}, largest difference "
          f"{(fast_logits - exact_logits).abs().max():.3g}")
    print(f"scores: largest difference {np.abs(fast_scores - exact_scores).max():.3g}; "
          f"smallest gap between the two best scores of an input {min(margins):.3g}")
    print(f"chosen label differs: {differ[True]} of {args.inputs} (Speech allowed), "
          f"{differ[False]} of {args.inputs} (Speech passed over)")


if __name__ == "__main__":
    main()
