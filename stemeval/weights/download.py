"""Download one file over HTTP(S) so that the target only ever holds a complete, checked file.

The bytes go to a temporary ``.part`` file beside the target, are checked, and only then
renamed into place (see ``atomic``), so an interrupted or refused download leaves nothing
behind and the next run starts afresh.
"""

import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from stemeval.common.atomic import part_file, publish
from stemeval.common.errors import one_line
from stemeval.weights.sources import host_of

CHUNK = 1 << 20
TIMEOUT = 30  # seconds to connect, or without data, before giving up


class DownloadError(Exception):
    """The file could not be downloaded; the message says why."""


class Unreachable(DownloadError):
    """No connection to the server at all: the machine is probably offline."""


def download(url, target, check):
    """Fetch ``url`` to ``target`` and return it; ``check(part_path)`` raises to refuse the file."""
    target = Path(target)
    with part_file(target) as part:
        _fetch(url, part, target.name)
        check(part)
        return publish(part, target)


def _open(url):
    """The server's response; connection failures become Unreachable, HTTP errors DownloadError."""
    request = urllib.request.Request(url, headers={"User-Agent": "stemeval-model-fetch"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"HTTP {error.code} {error.reason} from {url}") from None
    except urllib.error.URLError as error:
        raise Unreachable(f"no connection to {host_of(url)}: {one_line(error.reason)}") from None
    except OSError as error:
        raise Unreachable(f"no connection to {host_of(url)}: {one_line(error)}") from None
    except ValueError as error:
        raise DownloadError(f"cannot download {url!r}: {one_line(error)}") from None


def _fetch(url, part, name):
    """Stream the response body into ``part`` with a progress bar; a short body is an error."""
    with _open(url) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=name, file=sys.stderr,
                                           leave=False) as bar:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, ValueError) as error:
                raise DownloadError(
                    f"the connection to {host_of(url)} broke after {received} bytes "
                    f"({one_line(error)})") from None
    if total is not None and received != total:
        raise DownloadError(f"the connection to {host_of(url)} was cut after {received} "
                            f"of {total} bytes")
