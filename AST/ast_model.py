"""The Audio Spectrogram Transformer in one file, at its published path; the code is
``stemeval.taggers.ast_model`` (``from AST.ast_model import ASTModel`` keeps working)."""

from stemeval.taggers.ast_model import (  # noqa: F401
                                        ASTConfig,
                                        ASTModel,
                                        build_model,
                                        config_from_hf,
                                        config_from_state_dict,
                                        convert_hf_state_dict,
                                        load_hf_folder,
                                        load_original_checkpoint,
                                        read_hf_folder,
)
