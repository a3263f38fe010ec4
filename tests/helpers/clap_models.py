"""A tiny random CLAP saved as a Hugging Face folder, with a made-up RoBERTa vocabulary
(CLAP's own tokenizer files cannot be downloaded here)."""

import torch

WORDS = ["the", "sound", "of", "bass", "drums", "vocals", "other", "keys", "piano"]


def tiny_tokenizer():
    """A byte-level BPE RoBERTa tokenizer over single characters and a few whole words."""
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for char in sorted(set("".join(WORDS)) | {"Ġ"}):
        vocab.setdefault(char, len(vocab))
    merges = []
    for word in WORDS:
        for text in ("Ġ" + word, word):
            for end in range(2, len(text) + 1):  # left-to-right merges build the word
                if text[:end] not in vocab:
                    merges.append((text[:end - 1], text[end - 1]))
                    vocab[text[:end]] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=merges)


def save_tiny_clap(folder, fusion=False, seed=0):
    """Save a random ClapModel and its processor (1 s windows at 48 kHz) into ``folder``."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    vocab_size = len(tiny_tokenizer())
    config = ClapConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=64, projection_dim=16),
        audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=2,
                          patch_stride=2, patch_embeds_hidden_size=16, hidden_size=32,
                          depths=[1, 1], num_attention_heads=[2, 2], projection_dim=16,
                          enable_fusion=fusion),
        projection_dim=16)
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    model.save_pretrained(folder)
    extractor = ClapFeatureExtractor(feature_size=16, sampling_rate=48000, max_length_s=1,
                                     truncation="fusion" if fusion else "rand_trunc")
    ClapProcessor(feature_extractor=extractor, tokenizer=tiny_tokenizer()).save_pretrained(folder)
    return folder
