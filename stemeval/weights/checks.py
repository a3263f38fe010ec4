"""What makes AST weights usable here: they load strictly and score AudioSet's 527 classes.

The pipeline reads output i as ``AUDIOSET_LABELS[i]``, so a model trained on other labels
(or in another order) would give wrong names silently; it is refused instead.
"""

from pathlib import Path

from AST.ast_model import CheckpointError, hf_labels, load_hf_folder, load_original_checkpoint
from AST.labels import AUDIOSET_LABELS


def load_checked(path):
    """An eval-mode ASTModel from an authors' ``.pth`` or a Hugging Face folder.

    Raises CheckpointError for anything that is not an AudioSet AST.
    """
    path = Path(path)
    if path.is_dir():
        model, labels = load_hf_folder(path)
        check_labels(labels)
        return model
    if looks_like_tensorflow_graph(path):
        raise CheckpointError("it looks like a TensorFlow graph (a .pb file such as the "
                              "--speech-model file), not PyTorch AST weights")
    model = load_original_checkpoint(path)
    check_outputs(model.config.num_classes)
    return model


def looks_like_tensorflow_graph(path):
    """True for a ``.pb`` file, or one that opens as a TensorFlow GraphDef does (a node
    field, then a Placeholder op early on); PyTorch files are zip archives or pickles."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return path.suffix.lower() == ".pb" or (head[:1] == b"\n" and b"Placeholder" in head)


def labels_of(hf_config):
    """The ``id2label`` names of a Hugging Face config in output order, else CheckpointError."""
    try:
        return hf_labels(hf_config)
    except (KeyError, TypeError, AttributeError):
        raise CheckpointError("config.json has no id2label for indices 0..N-1") from None


def check_labels(labels):
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


def check_outputs(num_classes):
    """CheckpointError unless a model without label names has one output per AudioSet class."""
    if num_classes != len(AUDIOSET_LABELS):
        raise CheckpointError(f"it has {num_classes} outputs where the AudioSet AST has "
                              f"{len(AUDIOSET_LABELS)}")
