"""PaSST-S (Koutini et al. 2022) as a tagger (``--tagger passt``).

Weights: the authors' AudioSet release ``passt-s-f128-p16-s10-ap.476-swa.pt`` (128 mel bands,
16x16 patches at stride 10, 10 s input), the file ``hear21passt`` and the authors'
``get_model`` load by default: the paper's PaSST-S (mAP 0.471), its weights averaged over the
last epochs (SWA), which the file's name credits with 0.476.

Windows: the model reads at most 10 s. The excerpt (30-60 s) is cut into 10 s windows, the
last one ending at the excerpt's end (so every sample is read and no window is padded), and
the window scores (sigmoid probabilities) and embeddings are averaged. Mean, not max: after
the speech gate and silence trim a stem holds one instrument throughout, so every window is
evidence for the same label, and the mean estimates the stem's label with less variance,
while a max lets one window's spurious class (a pluck read as percussion, a breath as
speech) decide the whole stem. It is also how ``hear21passt`` summarises a clip longer than
its window (the mean of its windows' embeddings). Excerpts shorter than 10 s are one window.

Resampling: the same ``kaiser_best`` windowed sinc as the PANNs tagger (``stemeval.audio.resample``).
Front end: the authors' ``AugmentMelSTFT`` in evaluation mode (pre-emphasis 0.97; 1024-point
STFT of an 800-sample symmetric Hann window, hop 320; 128 kaldi mel bands 0 - 15 kHz;
``(log(mel + 1e-5) + 4.5) / 5``).

Scores: the sigmoid of the head's logits; embedding: the 768-d mean of the class and
distillation tokens the head reads. The release's ``head_dist`` is checked but unused, as in
the authors' inference.
"""

import re
from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn
from torchaudio.compliance.kaldi import get_mel_banks

from stemeval.audio.resample import resample
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers import TAGGERS
from stemeval.taggers.interface import Tagger, TaggerOutput
from stemeval.weights.checks import CheckpointError, check_classes
from stemeval.weights.released import build, load_checked, read_tensors

SAMPLE_RATE = 32000
WINDOW_SECONDS = 10
N_FFT, WIN_LENGTH, HOP = 1024, 800, 320
MEL_BANDS = 128
F_MAX = 15000.0  # the authors' fmax: sr / 2 - fmax_aug_range / 2
PATCH, STRIDE = 16, 10
MIN_SAMPLES = (PATCH + 1) * HOP  # one patch of frames, after pre-emphasis drops a sample
FREQ_PATCHES = (MEL_BANDS - PATCH) // STRIDE + 1  # 12
TIME_PATCHES = 99  # the release's grid for 10 s (its img_size 998 frames // stride)
HEAD_DIM = 64

SOURCE = TAGGERS["passt"].weights  # its released file, from its registry entry


class MelSpectrogram(nn.Module):
    """The authors' ``AugmentMelSTFT`` without its training-time augmentation: [128, T]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=False),
                             persistent=False)
        banks, _ = get_mel_banks(MEL_BANDS, N_FFT, float(SAMPLE_RATE), 0.0, F_MAX,
                                 vtln_low=100.0, vtln_high=-500.0, vtln_warp_factor=1.0)
        self.register_buffer("mel", F.pad(banks, (0, 1)), persistent=False)  # [128, 513]

    def forward(self, wave):
        emphasised = wave[..., 1:] - 0.97 * wave[..., :-1]
        spec = torch.stft(emphasised, N_FFT, hop_length=HOP, win_length=WIN_LENGTH,
                          window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        mel = self.mel @ spec.abs().square()
        return ((mel + 1e-5).log() + 4.5) / 5.0


class PasstPatchEmbed(nn.Module):
    """Overlapping 16x16 patches of the spectrogram, projected to the embedding width."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, PATCH, stride=STRIDE)

    def forward(self, mel):
        return self.proj(mel[:, None])  # [B, dim, freq patches, time patches]


class PaSST(nn.Module):
    """The PaSST-S transformer in evaluation mode; tensor names are the release's."""

    def __init__(self, dim=768, depth=12, mlp_hidden=3072, classes=len(AUDIOSET_LABELS)):
        super().__init__()
        self.patch_embed = PasstPatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, dim))  # of the two tokens
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, FREQ_PATCHES, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, TIME_PATCHES))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(*[
            Block(dim, max(1, dim // HEAD_DIM), mlp_ratio=mlp_hidden / dim, qkv_bias=True,
                  norm_layer=norm) for _ in range(depth)])
        self.norm = norm(dim)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))
        self.head_dist = nn.Linear(dim, classes)  # in the release; unused at inference

    def forward(self, mel):
        """``mel`` [B, 128, T] of at most 10 s -> (logits [B, classes], embedding [B, dim])."""
        x = self.patch_embed(mel)
        x = x + self.time_new_pos_embed[..., :x.shape[-1]] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token, self.dist_token], dim=1) + self.new_pos_embed
        x = torch.cat([tokens.expand(len(x), -1, -1), x], dim=1)
        x = self.norm(self.blocks(x))
        embedding = (x[:, 0] + x[:, 1]) / 2
        return self.head(embedding), embedding


def windows(wave):
    """``wave`` as 10 s windows [N, samples]: the last ends at the end; a short wave is one."""
    size = WINDOW_SECONDS * SAMPLE_RATE
    if len(wave) <= size:
        return F.pad(wave, (0, max(0, MIN_SAMPLES - len(wave))))[None]
    starts = list(range(0, len(wave) - size, size)) + [len(wave) - size]
    return torch.stack([wave[start:start + size] for start in starts])


class PasstTagger(Tagger):
    name = "passt"
    sample_rate = SAMPLE_RATE
    labels = AUDIOSET_LABELS
    embedding = ("mean of the cls and distillation tokens after the final norm; mean over "
                 "10 s windows")

    def __init__(self, model, weights):
        self.model = model.eval()
        self.mel = MelSpectrogram()
        self.weights = str(weights)

    def features(self, excerpt):
        """The mel spectrograms of the excerpt's windows, [windows, 128, frames]."""
        return self.mel(windows(resample(excerpt.to_float(), excerpt.rate, SAMPLE_RATE,
                                         kaiser_best=True)))

    def forward(self, features, device):
        """All stems' windows of one length in one pass; each stem gets its windows' mean."""
        windows = [mel for mels in features for mel in mels]
        scores = torch.empty(len(windows), self.model.head[1].out_features)
        embeddings = torch.empty(len(windows), self.model.norm.normalized_shape[0])
        by_length = {}
        for index, mel in enumerate(windows):
            by_length.setdefault(mel.shape[-1], []).append(index)
        with torch.inference_mode():
            for indices in by_length.values():
                logits, embedding = self.model(
                    torch.stack([windows[i] for i in indices]).to(device))
                scores[indices] = torch.sigmoid(logits.float()).cpu()
                embeddings[indices] = embedding.float().cpu()
        counts = [len(mels) for mels in features]
        windows = list(embeddings.split(counts))
        return TaggerOutput(
            scores=torch.stack([stem.mean(0) for stem in scores.split(counts)]),
            embeddings=torch.stack([stem.mean(0) for stem in windows]), windows=windows)


def _config(state):
    """The width, depth and classes of the network in ``state`` (the release: 768, 12, 527)."""
    try:
        return dict(
            dim=state["cls_token"].shape[-1],
            depth=len({m.group(1) for key in state if (m := re.match(r"blocks\.(\d+)\.", key))}),
            mlp_hidden=state["blocks.0.mlp.fc1.weight"].shape[0],
            classes=state["head.1.weight"].shape[0])
    except KeyError as error:
        raise CheckpointError(f"not a PaSST state dict: no tensor {error}") from None


def check(path):
    """The eval-mode PaSST in the released file ``path``; CheckpointError says what is wrong."""
    state = read_tensors(path)
    config = _config(state)
    check_classes(config["classes"])
    return build(partial(PaSST, **config), state)


def load(checkpoint=None, categories=None):
    """The PaSST tagger with the weights at ``checkpoint`` (None: the default, fetched if missing)."""
    model, path = load_checked(SOURCE, checkpoint, check)
    return PasstTagger(model, path)
