"""The published home of the speech model file, and the published import path of the model
files' functions (``from AST.models import load_ast``); the code is ``stemeval.weights``."""

from stemeval.weights.published import (DEFAULT_CHECKPOINT, DEFAULT_SPEECH_MODEL,  # noqa: F401
                                        ensure_speech_model, load_ast, load_ast_file,
                                        load_model_files)
