"""The command line shared by ``evaluate.py``, ``analyze_dsd100.py`` and ``analyze_moisesdb.py``,
at its published path; the code is ``stemeval.commands.evaluate``."""

from stemeval.commands.evaluate import build_parser, main  # noqa: F401
