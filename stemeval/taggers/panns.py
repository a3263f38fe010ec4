"""PANNs CNN14 (Kong et al. 2020, AudioSet mAP 0.431) as a tagger (``--tagger panns-cnn14``).

Input: the excerpt at 32 kHz, read whole in one pass, as the authors' and ``panns_inference``'s
inference read a clip of any length: CNN14 ends in global pooling (mean + max over time), so
it has no window to split the excerpt into. Excerpts under ``MIN_SECONDS`` are zero-padded
to it (five 2x poolings need 32 frames).

Resampling: ``stemeval.audio.resample.resample`` with resampy's ``kaiser_best`` filter, which
``librosa.load`` used when the authors resampled AudioSet to 32 kHz.

Front end: the log-mel spectrogram of the authors' torchlibrosa layers (1024-point periodic
Hann STFT, hop 320, reflect padding; 64 slaney mel bands 50 Hz - 14 kHz; 10 log10 of the
power, floored at 1e-10), computed with ``torch.stft`` instead of torchlibrosa's convolutions.
The checkpoint carries those layers' fixed tensors: their names and shapes are checked, their
values are not used.

Scores: the clipwise sigmoid of ``fc_audioset``; embedding: the 2048-d ``fc1`` output it reads.
"""

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from stemeval.audio.resample import resample
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers import TAGGERS
from stemeval.taggers.interface import Tagger, TaggerOutput
from stemeval.weights.checks import check_classes
from stemeval.weights.released import build, load_checked, read_tensors

SAMPLE_RATE = 32000
N_FFT = 1024
HOP = 320
MEL_BANDS = 64
F_MIN, F_MAX = 50.0, 14000.0
MIN_SECONDS = 1.0
CHANNELS = (64, 128, 256, 512, 1024, 2048)
EMBEDDING = 2048

SOURCE = TAGGERS["panns-cnn14"].weights  # its released file, from its registry entry
CHECKPOINT_KEY = "model"  # the released file is a dict; the state dict is under 'model'
# the torchlibrosa front end's fixed tensors, in the file but recomputed here
FRONT_END = {
    "spectrogram_extractor.stft.conv_real.weight": (N_FFT // 2 + 1, 1, N_FFT),
    "spectrogram_extractor.stft.conv_imag.weight": (N_FFT // 2 + 1, 1, N_FFT),
    "logmel_extractor.melW": (N_FFT // 2 + 1, MEL_BANDS),
}

class LogMel(nn.Module):
    """torchlibrosa's Spectrogram + LogmelFilterBank with CNN14's settings: [T, 64] per wave."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        mel = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, F_MIN, F_MAX, MEL_BANDS, SAMPLE_RATE, norm="slaney",
            mel_scale="slaney")
        self.register_buffer("mel", mel, persistent=False)  # [513, 64], librosa's filters

    def forward(self, wave):
        spec = torch.stft(wave, N_FFT, hop_length=HOP, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        power = spec.abs().square().transpose(-1, -2)  # [..., frames, 513]
        return 10.0 * torch.log10(torch.clamp(power @ self.mel, min=1e-10))


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, then average pooling."""

    def __init__(self, inputs, outputs, pool):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.pool = pool

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool != 1 else x


class Cnn14(nn.Module):
    """CNN14 from the log-mel on; tensor names are the released checkpoint's."""

    def __init__(self, classes=len(AUDIOSET_LABELS)):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(MEL_BANDS)  # normalises each mel band
        inputs = (1,) + CHANNELS[:-1]
        for index, (cin, cout) in enumerate(zip(inputs, CHANNELS), start=1):
            setattr(self, f"conv_block{index}", ConvBlock(cin, cout, 2 if index < 6 else 1))
        self.fc1 = nn.Linear(EMBEDDING, EMBEDDING)
        self.fc_audioset = nn.Linear(EMBEDDING, classes)

    def forward(self, logmel):
        """``logmel`` [B, T, 64] -> (sigmoid scores [B, classes], embedding [B, 2048])."""
        x = self.bn0(logmel[:, :, :, None].transpose(1, 2)).transpose(1, 3)  # [B, 1, T, 64]
        for index in range(1, 7):
            x = getattr(self, f"conv_block{index}")(x)
        x = x.mean(dim=3)  # over frequency
        x = x.amax(dim=2) + x.mean(dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        return torch.sigmoid(self.fc_audioset(embedding)), embedding


class PannsTagger(Tagger):
    name = "panns-cnn14"
    sample_rate = SAMPLE_RATE
    labels = AUDIOSET_LABELS
    embedding = "fc1: the ReLU output fc_audioset reads (pooled over time inside the network)"

    def __init__(self, model, weights):
        self.model = model.eval()
        self.logmel = LogMel()
        self.weights = str(weights)

    def features(self, excerpt):
        wave = resample(excerpt.to_float(), excerpt.rate, SAMPLE_RATE, kaiser_best=True)
        wave = F.pad(wave, (0, max(0, int(MIN_SECONDS * SAMPLE_RATE) - len(wave))))
        return self.logmel(wave)

    def forward(self, features, device):
        """One pass per stem: excerpts differ in length, and padding would change the pooling."""
        scores, embeddings = [], []
        with torch.inference_mode():
            for logmel in features:
                score, embedding = self.model(logmel[None].to(device))
                scores.append(score.float().cpu())
                embeddings.append(embedding.float().cpu())
        return TaggerOutput(scores=torch.cat(scores), embeddings=torch.cat(embeddings))


def check(path):
    """The eval-mode Cnn14 in the released file ``path``; CheckpointError says what is wrong."""
    state = read_tensors(path, CHECKPOINT_KEY)
    if "fc_audioset.weight" in state:
        check_classes(state["fc_audioset.weight"].shape[0])
    return build(Cnn14, state, ignored=FRONT_END)


def load(checkpoint=None, categories=None):
    """The CNN14 tagger with the weights at ``checkpoint`` (None: the default, fetched if missing)."""
    model, path = load_checked(SOURCE, checkpoint, check)
    return PannsTagger(model, path)
