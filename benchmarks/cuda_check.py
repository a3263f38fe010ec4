"""Both networks on CUDA against the CPU: scores, chosen labels and speech decisions, and speed.

Runs where only torch, numpy and timm are installed (no Essentia, torchaudio or tensorboard):
the inputs are made beforehand, where the project's environment is, by

    python benchmarks/cuda_check.py --prepare benchmarks/cuda_check_data     # here (~5 MiB)

which saves kaldi fbanks of varied synthetic audio (the AST's input), the VGGish patches
Essentia computes for such audio (the speech graph's input) and the structure of a
VGGish-sized speech graph (its large weights as seeds, drawn again on load). On the GPU:

    python benchmarks/cuda_check.py --data benchmarks/cuda_check_data [--device cuda]

The AST has the AudioSet model's size with random weights (``tests/ast_weights.random_ast``,
seeded). For each network it compares the device in fp32 (TF32 off, as a run sets it), the
device with TF32 on (the CUDA default, to show why it is off) and, for the AST, fp16
autocast (``--precision fp16``), with the CPU in fp32; then it times both networks on the
device. ``--device cpu`` is a dry run of the whole script on the CPU. Exit status 1 if fp32
on the device chooses another label or speech decision than the CPU.
"""

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemeval.engine.precision import sigmoid_scores, use_exact_fp32  # noqa: E402
from stemeval.labels.audioset import AUDIOSET_LABELS  # noqa: E402
from stemeval.labels.pick import choose_label  # noqa: E402
from stemeval.speech.gate import DECISION_MARGIN, GATE_SCORE, SPEECH_LABEL_MIN_SCORE, speech_score  # noqa: E402
from stemeval.speech.graph import GraphRunner, Node  # noqa: E402
from tests.helpers.ast_weights import random_ast  # noqa: E402

SAVED_FBANKS = 6
SAVED_PATCHES = 24
PATCHES_PER_STEM = 258  # a 4-minute stem at 16 kHz
SEEDED_SIZE = 4096  # constants with more values are saved as a seed, shape, mean and std


def prepare(folder):
    """Save the inputs and the speech graph's structure; needs the project's environment."""
    from ast_exactness import synthetic_wave  # noqa: E402  (benchmarks/ is on sys.path)

    from stemeval.speech.graph import read_graph
    from stemeval.taggers.ast_features import fbank_features
    from tests.helpers.speech_patches import vggish_patches
    from tests.helpers.tf_graphs import REAL_VGGISH_CHANNELS, REAL_VGGISH_FC, write_vggish_graph

    rng = np.random.default_rng(13)
    waves = [synthetic_wave(rng) for _ in range(SAVED_FBANKS)]
    fbanks = torch.stack([fbank_features(wave, 1024) for wave in waves])
    patches = np.concatenate([vggish_patches(synthetic_wave(rng)) for _ in range(3 * SAVED_FBANKS)])
    patches = patches[rng.choice(len(patches), min(SAVED_PATCHES, len(patches)), replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        graph = write_vggish_graph(Path(tmp) / "vggish.pb", 0, channels=REAL_VGGISH_CHANNELS,
                                   fc=REAL_VGGISH_FC, head_hidden=100, speech_bias=-1.0)
        nodes = [_packed(node, seed) for seed, node in enumerate(read_graph(graph))]
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"fbanks": fbanks, "patches": torch.from_numpy(patches), "graph": nodes},
               folder / "inputs.pt")
    print(f"wrote {folder / 'inputs.pt'} ({(folder / 'inputs.pt').stat().st_size / 2**20:.1f} MiB)")


def _packed(node, seed):
    value = node.value
    seeded = value is not None and value.size > SEEDED_SIZE
    return {"name": node.name, "op": node.op, "inputs": node.inputs, "attrs": node.attrs,
            "value": None if value is None or seeded else torch.from_numpy(np.array(value)),
            "seeded": [seed, list(value.shape), float(value.mean()), float(value.std())]
            if seeded else None}


def _unpacked(item):
    value = item["value"]
    if item["seeded"]:
        seed, shape, mean, std = item["seeded"]
        value = np.random.default_rng(seed).normal(mean, std, shape).astype(np.float32)
    elif value is not None:
        value = value.numpy()
    return Node(item["name"], item["op"], item["inputs"], item["attrs"], value)


def load(folder):
    data = torch.load(folder / "inputs.pt", weights_only=True)
    runner = GraphRunner.from_nodes([_unpacked(item) for item in data["graph"]]).eval()
    return data["fbanks"], data["patches"], runner


def varied_fbanks(saved, count):
    """The saved fbanks, then shifted, louder or quieter and noisier copies of them."""
    generator = torch.Generator().manual_seed(0)
    out = list(saved)
    while len(out) < count:
        base = saved[len(out) % len(saved)]
        shift = int(torch.randint(0, 1024, (), generator=generator))
        gain = float(torch.empty(()).uniform_(-0.3, 0.3, generator=generator))
        noise = 0.05 * torch.randn(base.shape, generator=generator)
        out.append(torch.roll(base, shift, dims=0) + gain + noise)
    return torch.stack(out[:count])


def set_tf32(enabled):
    precision = "tf32" if enabled else "ieee"
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.conv.fp32_precision = precision


def labels_of(scores, speech_allowed):
    return [choose_label(row, lambda: speech_allowed)[0] for row in scores]


def ast_scores(model, fbanks, device, precision, batch):
    model = model.to(device)
    return np.concatenate([sigmoid_scores(model, fbanks[i:i + batch].to(device), precision)
                           for i in range(0, len(fbanks), batch)]).astype(np.float32)


def compare_ast(model, fbanks, device, batch):
    reference = ast_scores(model, fbanks, "cpu", "fp32", 4)
    print(f"AST (AudioSet size, random weights), {len(fbanks)} inputs; reference: CPU fp32, batch 4")
    ok = True
    for name, precision, tf32 in (("fp32, TF32 off", "fp32", False), ("fp32, TF32 on", "fp32", True),
                                  ("fp16 autocast", "fp16", False)):
        if tf32 and device.type != "cuda":
            continue
        set_tf32(tf32)
        scores = ast_scores(model, fbanks, device, precision, batch)
        differ = [sum(a != b for a, b in zip(labels_of(scores, allowed), labels_of(reference, allowed)))
                  for allowed in (True, False)]
        print(f"  {device.type} {name}, batch {batch}: largest score difference "
              f"{np.abs(scores - reference).max():.3g}; chosen label differs for {differ[0]} "
              f"(Speech allowed) and {differ[1]} (Speech passed over) of {len(fbanks)}")
        ok &= not (name == "fp32, TF32 off" and any(differ))
    use_exact_fp32(device)
    return ok


def compare_speech(runner, patches, device):
    with torch.inference_mode():
        reference = runner.to("cpu")(patches).numpy()
    print(f"speech graph (VGGish size, random weights), {len(patches)} patches; reference: CPU fp32")
    ok = True
    for name, tf32 in (("fp32, TF32 off", False), ("fp32, TF32 on", True)):
        if tf32 and device.type != "cuda":
            continue
        set_tf32(tf32)
        with torch.inference_mode():
            got = runner.to(device)(patches.to(device)).cpu().numpy()
        score, expected = speech_score(got), speech_score(reference)
        same = all((score >= t) == (expected >= t) for t in (GATE_SCORE, SPEECH_LABEL_MIN_SCORE))
        print(f"  {device.type} {name}: largest activation difference "
              f"{100 * np.abs(got - reference).max():.3g} points; speech score {score:.6f} vs "
              f"{expected:.6f} (gate and Speech-rule decisions {'equal' if same else 'DIFFER'}; "
              f"a decision taken early needs a margin of {DECISION_MARGIN} points)")
        ok &= same or tf32
    use_exact_fp32(device)
    return ok


def _timed(fn, device, repeats):
    fn()  # warm-up (kernel selection, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def throughput(model, runner, fbanks, patches, device, batch, repeats):
    model, runner = model.to(device), runner.to(device)
    stems = torch.cat([fbanks] * (-(-batch // len(fbanks))))[:batch].to(device)
    print(f"speed on {device.type} (one process, inputs already on the device):")
    for precision in ("fp32", "fp16"):
        seconds = _timed(lambda: sigmoid_scores(model, stems, precision), device, repeats)
        print(f"  AST {precision}, batch {batch}: {batch / seconds:.3g} stems/s")
    many = torch.cat([patches] * (-(-256 // len(patches))))[:256].to(device)
    with torch.inference_mode():
        seconds = _timed(lambda: runner(many), device, repeats)
    rate = len(many) / seconds
    print(f"  speech graph fp32, batch {len(many)}: {rate:.3g} patches/s, "
          f"{rate / PATCHES_PER_STEM:.3g} stems/s were every patch of a 4-minute stem computed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="write the inputs to DIR and stop")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/cuda_check_data"), metavar="DIR")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--inputs", type=int, default=32, help="AST inputs compared (default 32)")
    parser.add_argument("--batch-size", type=int, default=32, help="AST batch on the device")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each batch")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare)
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; --device cpu runs the check on the CPU", file=sys.stderr)
        return 2
    if not (args.data / "inputs.pt").is_file():
        print(f"error: {args.data / 'inputs.pt'} is missing: run this with --prepare "
              f"{args.data} where the project's environment is", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"{name or device.type}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    fbanks, patches, runner = load(args.data)
    fbanks = varied_fbanks(fbanks, args.inputs)
    model = random_ast(0)
    assert len(AUDIOSET_LABELS) == model.config.num_classes
    ok = compare_ast(model, fbanks, device, args.batch_size)
    ok &= compare_speech(runner, patches, device)
    throughput(model, runner, fbanks, patches, device, args.batch_size, args.repeats)
    print("OK: fp32 on the device gives the CPU's labels and decisions" if ok else
          "MISMATCH: fp32 on the device changes a label or a speech decision")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
