"""Evaluate an AudioSet tagger (the AST) as an instrument recogniser on multitrack stems."""
