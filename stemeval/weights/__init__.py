"""Every model file a run needs: where it comes from, where it lives, how it is fetched and
checked, and ``stemeval weights fetch|status`` over all of them.

- ``sources``: addresses, homes and the declarations a tagger's registry entry holds;
- ``download``, ``hub``: fetching over HTTP(S) and from the Hugging Face hub, complete or not
  at all; ``safe_load``: reading PyTorch files without running code; ``checks``: what
  makes weights usable;
- ``published``: the two published files (the AST's weights, the speech model) in their
  published homes; ``ast_checkpoint``, ``speech_model``, ``released``: fetch and check of
  each kind of file;
- ``registry``: fetch and status of every tagger's weights, derived from
  ``stemeval.taggers.TAGGERS``; ``status``: what is reported; ``cli``: the command.
"""
