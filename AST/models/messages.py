"""The one-line messages for a model file that is missing and cannot be downloaded.

Each says which file, the folder it is looked for in, why it could not be fetched, how to
get it (the fetch command and the address), and that a path can be given instead.
"""

from AST.models.sources import AST_HUB_ID, AUTHORS_CHECKPOINT_NAME, FETCH_COMMAND


def missing_checkpoint(path, why):
    """The default AST weights file is missing and the hub could not be reached."""
    return (f"AST weights missing: {path.name} is not in {path.parent} and cannot be "
            f"downloaded ({why}); on a machine that is online run \"{FETCH_COMMAND} checkpoint\" "
            f"(it saves the Hugging Face model {AST_HUB_ID} as that file) and copy the file "
            f"there, or pass --checkpoint PATH (the authors' {AUTHORS_CHECKPOINT_NAME} or a "
            f"Hugging Face model folder)")


def missing_speech_model(path, url, why):
    """The default speech model is missing and its download address could not be reached."""
    return (f"speech model missing: {path.name} is not in {path.parent} and cannot be "
            f"downloaded ({why}); on a machine that is online run \"{FETCH_COMMAND} "
            f"speech-model\" or download {url}, and copy the file there, or pass "
            f"--speech-model PATH")
