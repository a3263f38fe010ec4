"""What ``stemeval weights status`` reports for one model file, of any tagger.

Present or missing, size, where it comes from, and whether it passes the same checks a run
applies before use (or why not).
"""

from dataclasses import dataclass
from pathlib import Path

from stemeval.speech.gate import SpeechModelError, check_speech_graph


@dataclass(frozen=True)
class FileStatus:
    title: str
    path: Path
    source: str
    fetch: str
    problem: str | None = None  # None: present and checked

    @property
    def present(self):
        return self.path.exists()

    @property
    def ok(self):
        return self.present and self.problem is None


def speech_model_status(path, source, fetch):
    """Status of a speech model graph."""
    return FileStatus("speech model", path, source, fetch,
                      problem_of(path, check_speech_graph, SpeechModelError))


def format_status(status):
    """The report lines for one file."""
    if not status.present:
        state = "missing"
    else:
        check = "checks passed" if status.problem is None else f"check failed: {status.problem}"
        state = f"present, {_size_text(status.path)}, {check}"
    lines = [f"{status.title}: {status.path}", f"  {state}", f"  from: {status.source}"]
    if not status.ok and status.fetch:
        lines.append(f"  get it with: {status.fetch}")
    return lines


def problem_of(path, check, error_type):
    if not path.exists():
        return None
    try:
        check(path)
    except error_type as error:
        return str(error)
    return None


def _size_text(path):
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
