"""The published per-stem pipeline, re-created with the very libraries it used: an oracle.

Each stem was decoded three times: Essentia's MonoLoader for the speech gate, pydub for the
silence trim, and MonoLoader again on the trimmed excerpt written to a wav.
"""

import copy
import functools

import numpy as np
from pydub import AudioSegment
from pydub.silence import split_on_silence

from stemeval.essentia_setup import essentia_standard


def pydub_excerpt(path):
    """The trimmed excerpt as a pydub AudioSegment, or None where the published code failed."""
    segment = AudioSegment.from_file(path).set_channels(1)
    chunks = split_on_silence(segment, min_silence_len=500, silence_thresh=segment.dBFS - 10,
                              keep_silence=200, seek_step=100)
    if not chunks:
        return None
    joined = sum(chunks)
    if len(joined) > 60000:
        joined = joined[30000:60000]
    return joined


def monoloader_16k(path):
    return essentia_standard().MonoLoader(filename=str(path), sampleRate=16000,
                                          resampleQuality=4)()


def excerpt_16k(path, wav_path):
    """The excerpt exported to ``wav_path`` and read back at 16 kHz, as published."""
    pydub_excerpt(path).export(str(wav_path), format="wav")
    return monoloader_16k(wav_path)


def speech_score(path, graph):
    """MonoLoader on the file, then the graph in Essentia's TensorFlow; 100 x mean speech."""
    activations = np.asarray(essentia_standard().TensorflowPredictVGGish(
        graphFilename=str(graph), input="model/Placeholder", output="model/Sigmoid")(
        monoloader_16k(path)))
    return 0.0 if activations.size == 0 else float(100 * np.mean(activations, axis=0)[7])


def published_attention(attn, x, attn_mask=None, is_causal=False):
    """timm 0.4.5's ``Attention.forward``: ``softmax((q @ k^T) * scale) @ v``, no fused kernel."""
    batch, tokens, width = x.shape
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads, width // attn.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    weights = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(dim=-1)
    return attn.proj((weights @ v).transpose(1, 2).reshape(batch, tokens, width))


def published_ast(model):
    """A copy of an ASTModel whose attention is timm 0.4.5's, as the published code ran it."""
    model = copy.deepcopy(model)
    for block in model.v.blocks:
        block.attn.forward = functools.partial(published_attention, block.attn)
    return model
