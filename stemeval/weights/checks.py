"""What makes a tagger's weights usable here, whatever the tagger.

Loading is strict (every tensor the network has, with its shape, and nothing else) and the
scores must be AudioSet's 527 classes in ``class_labels_indices.csv`` order, because the
pipeline reads score i as ``AUDIOSET_LABELS[i]``: a model trained on other labels (or in
another order) would give wrong names silently; it is refused instead.
"""

from stemeval.labels.audioset import AUDIOSET_LABELS


class CheckpointError(ValueError):
    """A weights file that is not what its tagger reads, or of the wrong shape; the message
    says why in one line."""


def check_shapes(state, expected):
    """CheckpointError unless ``state`` has exactly the tensors ``expected`` (name -> shape)."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:5])}"] if extra else [])
        raise CheckpointError("; ".join(parts))
    for name, shape in expected.items():
        if tuple(state[name].shape) != tuple(shape):
            raise CheckpointError(f"{name} has shape {tuple(state[name].shape)}, "
                                  f"expected {tuple(shape)}")


def check_classes(count, expected=len(AUDIOSET_LABELS)):
    """CheckpointError unless a head scores AudioSet's ``expected`` classes."""
    if count != expected:
        raise CheckpointError(f"it scores {count} classes where AudioSet has {expected}")


def check_audioset_labels(labels):
    """CheckpointError naming the first index where ``labels`` differ from AudioSet's."""
    expected = AUDIOSET_LABELS
    for index in range(max(len(labels), len(expected))):
        got = labels[index] if index < len(labels) else None
        want = expected[index] if index < len(expected) else None
        if got == want:
            continue
        if got is None or want is None:
            raise CheckpointError(
                f"it has {len(labels)} labels where AudioSet has {len(expected)} "
                f"(first difference at index {index})")
        raise CheckpointError(f"its labels are not AudioSet's: label {index} is {got!r} "
                              f"where AudioSet has {want!r}")


def hf_labels(hf_config):
    """The ``id2label`` names of a Hugging Face config (a dict) in output order, else
    CheckpointError."""
    try:
        id2label = hf_config["id2label"]
        return [id2label[str(index)] for index in range(len(id2label))]
    except (KeyError, TypeError, AttributeError):
        raise CheckpointError("config.json has no id2label for indices 0..N-1") from None


def looks_like_tensorflow_graph(path):
    """True for a ``.pb`` file, or one that opens as a TensorFlow GraphDef does (a node
    field, then a Placeholder op early on); PyTorch files are zip archives or pickles."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return path.suffix.lower() == ".pb" or (head[:1] == b"\n" and b"Placeholder" in head)
