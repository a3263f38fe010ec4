"""User-facing errors: one line on stderr and a non-zero exit, never a traceback."""

import argparse
import errno
import os
import re
import signal
import sys
from contextlib import contextmanager

RUNTIME_REQUIREMENTS = "requirements.txt"


class UserError(Exception):
    """Bad input or set-up: the message is one line saying what is wrong and what to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, as a cluster scheduler sends it: a command stops as on Ctrl-C (rows flushed,
    embeddings assembled, how to go on said), with exit status 143 (128 + 15)."""

    status = 143


def _terminate(signum, frame):
    raise Terminated()


def single_line(text):
    """``text`` as one printable line: its lines joined by a space (a YAML parser's report, a
    label holding a newline) and other control characters escaped (a raw NUL shows as
    ``\\x00``), so an ``error:`` line is always one line whatever input it quotes."""
    joined = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: " " if match.group() == "\t"
                  else match.group().encode("unicode_escape").decode("ascii"), joined)


def one_line(error):
    """An exception (or OS error reason) as one short line: its message's first line without
    a leading ``[Errno N]``, or its type's name when it has no message."""
    text = str(getattr(error, "strerror", None) or error).strip()
    if not text:
        return type(error).__name__
    return re.sub(r"^\[Errno -?\d+\] ", "", text.splitlines()[0])


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def os_reason(error):
    """An OSError's reason as one line, naming a full disk (or quota) as such: "the disk is
    full (No space left on device)"."""
    reason = one_line(error)
    if getattr(error, "errno", None) in DISK_FULL:
        return f"the disk is full ({reason})"
    return reason


DISK_FULL_ADVICE = ("; what was written is kept: free some space, then the same command "
                    "goes on from there (an evaluation run with --resume, a sweep as it is)")


def is_disk_full(error):
    """Whether ``error`` is an OSError saying the disk (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in DISK_FULL


def shown(text):
    """A file name (or any text) for a message that must stay one line: control characters
    written as Python escapes them (a newline as ``\\n``), the rest as it is."""
    return re.sub(r"[\x00-\x1f\x7f]",
                  lambda match: match.group().encode("unicode_escape").decode("ascii"), str(text))


@contextmanager
def needs_packages(what):
    """A missing third-party package inside the block is one UserError naming it, what needs
    it (``what``: an option or command) and the requirements file that installs it."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] in ("stemeval", "AST"):
            raise
        raise UserError(f"{what} needs the Python package {error.name.split('.')[0]}, which is "
                        f"not installed: pip install -r {RUNTIME_REQUIREMENTS} (./run.sh "
                        f"installs it)") from None


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one-line UserErrors."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def exit_status(main):
    """``main()``'s exit status (None counts as 0), or 2 with its one ``error:`` line on stderr
    when it raises a UserError: a command run in-process by another (the demo) fails as it
    would on its own."""
    try:
        return main() or 0
    except UserError as error:
        print(f"error: {single_line(error)}", file=sys.stderr)
        return 2


def run_main(main):
    """Run a command's ``main()``; a UserError becomes one line on stderr (``single_line``,
    whatever its message quotes) and exit status 2.

    Ctrl-C prints the KeyboardInterrupt's message (a command may raise one saying how to go
    on), else "interrupted", and exits with status 130; SIGTERM does the same with status
    143 (see ``Terminated``).

    A reader that goes away (``| head``) ends the command quietly.
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        status = exit_status(main)
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "interrupted", file=sys.stderr)
        sys.exit(getattr(interrupt, "status", 130))
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    finally:
        signal.signal(signal.SIGTERM, previous)  # a test calling this in-process keeps its own
    sys.exit(status)
