"""Run a published script (``analyze_dsd100.py``, ``computeaccuracy.py``, ...) or
``python -m stemeval`` in the test's own process, as its own process would run it.

``run_script("analyze_dsd100.py", "tree", "--quiet", cwd=folder)`` executes the script file
as ``__main__`` (``runpy``): the same ``run_main`` around the same ``main``, with
``sys.argv[0]`` the script's path, so usage and ``error:`` lines name the script as they do
in a process of its own. It returns a ``subprocess.CompletedProcess``: ``returncode`` from
the script's ``SystemExit`` (as Python turns one into an exit status), ``stdout`` and
``stderr`` as ``subprocess.run(..., capture_output=True, text=True)`` gives them (file
descriptors 1 and 2 captured, so what a C library prints is there too; universal newlines).
Python warnings go to stderr under Python's default filters, as in a fresh interpreter.

A fresh process is still what a test needs where it is about the process: signals, start-up
(environment variables read at import, hidden packages), pipes, memory. Saves Python's and
torch's start-up (2 s or more) per run otherwise.
"""

import io
import locale
import os
import runpy
import subprocess
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The warning filters of a fresh interpreter started without -W (Python's defaults), in order.
_DEFAULT_FILTERS = [("default", DeprecationWarning, "__main__"),
                    ("ignore", DeprecationWarning, ""), ("ignore", PendingDeprecationWarning, ""),
                    ("ignore", ImportWarning, ""), ("ignore", ResourceWarning, "")]


def run_script(script, *args, cwd=None, env=None, input=None, text=True):
    """``subprocess.run([sys.executable, ROOT / script, *args], cwd=cwd, env=env,
    input=input, capture_output=True, text=text)``, run in this process (``cwd`` None: the
    current folder)."""
    path = ROOT / script
    return _run(lambda: runpy.run_path(str(path), run_name="__main__"),
                [str(path), *map(str, args)], path.parent, cwd, env, input, text)


def run_stemeval(*args, cwd=None, env=None, input=None, text=True):
    """``python -m stemeval *args`` (the ``stemeval`` command), run in this process."""
    main = ROOT / "stemeval" / "__main__.py"
    return _run(lambda: runpy.run_module("stemeval", run_name="__main__", alter_sys=True),
                [str(main), *map(str, args)], Path(cwd or os.getcwd()).resolve(), cwd, env,
                input, text)


def _run(execute, argv, path0, cwd, env, input, text):
    captured = []
    with _process_state(argv, path0, cwd, env, input), _captured(captured):
        try:
            execute()
            status = 0
        except SystemExit as end:
            status = _exit_status(end.code)
    out, err = captured
    if text:
        out, err = _decode(out), _decode(err)
    return subprocess.CompletedProcess(argv, status, out, err)


def _exit_status(code):
    """The status Python exits with on ``sys.exit(code)``; a message goes to stderr."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _decode(data):
    """What ``subprocess.run(..., text=True)`` makes of the bytes: the locale's encoding,
    universal newlines."""
    decoded = data.decode(locale.getpreferredencoding(False))
    return decoded.replace("\r\n", "\n").replace("\r", "\n")


@contextmanager
def _process_state(argv, path0, cwd, env, input):
    """sys.argv, sys.path[0] (the script's folder), the working folder, the environment and
    stdin of the run; all put back afterwards, and torch's number of threads too, as a
    process of its own leaves this one's alone."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    saved_environ, saved_stdin = dict(os.environ), sys.stdin
    previous_cwd = os.getcwd()
    torch = sys.modules.get("torch")  # a run with workers gives torch fewer threads
    threads = torch.get_num_threads() if torch else None
    try:
        sys.argv = list(argv)
        sys.path.insert(0, str(path0))
        os.chdir(cwd or previous_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        sys.stdin = io.StringIO(input.decode() if isinstance(input, bytes) else input or "")
        yield
    finally:
        sys.argv, sys.stdin = saved_argv, saved_stdin
        sys.path[:] = saved_path
        if env is not None:
            os.environ.clear()
            os.environ.update(saved_environ)
        os.chdir(previous_cwd)
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextmanager
def _captured(captured):
    """Capture file descriptors 1 and 2 and sys.stdout/sys.stderr into two temporary files;
    ``captured`` gets their bytes, ``out`` then ``err``, when the block ends."""
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    streams = (sys.stdout, sys.stderr)
    for stream in streams:
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    # Text streams over descriptors 1 and 2 themselves, as in a process of its own: one
    # kept by the code after the run (a logging handler) writes where 1 and 2 then lead.
    encoding = locale.getpreferredencoding(False)
    new_streams = [io.TextIOWrapper(open(1, "wb", closefd=False), encoding=encoding),
                   io.TextIOWrapper(open(2, "wb", closefd=False), encoding=encoding,
                                    errors="backslashreplace", line_buffering=True)]
    try:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        sys.stdout, sys.stderr = new_streams
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in _DEFAULT_FILTERS:
                warnings.filterwarnings(action, category=category, module=module, append=True)
            warnings.showwarning = _show_warning
            yield
    finally:
        for stream in new_streams:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        for file in files:
            file.seek(0)
            captured.append(file.read())
            file.close()

