#!/usr/bin/env bash
# Make the project runnable on this machine, doing only what is missing:
#   - ffmpeg (pydub decodes mp3 with it), from Debian's packages when run as root or with sudo;
#   - a virtual environment at .venv (or at $VENV) holding the packages of the requirements
#     file given (requirements.txt to run, requirements-dev.txt to test, and its -nodeps.txt
#     companion installed without dependencies) and the package itself, editable; made again
#     when one of them or pyproject.toml changes. Python 3.11 or newer.
# Usage: [VENV=FOLDER] scripts/setup.sh [requirements.txt|requirements-dev.txt]
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${1:-requirements.txt}"

if ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
    if [ "$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ffmpeg (needed for mp3 stems)" >&2
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "setup: warning: ffmpeg is not installed; mp3 stems will get error rows" >&2
    fi
fi

venv="${VENV:-$project/.venv}"
stamp="$venv/.installed-$(basename "$requirements" .txt)"
# What this environment is made from: the file given, requirements.txt (which the dev file
# includes), the -nodeps companion and pyproject.toml; a change to another requirements
# file leaves it as it is.
sources=("$requirements" requirements.txt pyproject.toml)
companion="$(basename "$requirements" .txt)-nodeps.txt"
[ ! -f "$project/$companion" ] || sources+=("$companion")
wanted="$(cd "$project" && cat "${sources[@]}" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi
python="${PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: stemeval needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" \
         "(set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi
echo "setup: installing $requirements into $venv with $python (the first time takes a few minutes)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
log="$venv/pip.log"
install() {
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@" >>"$log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 20 >&2
        echo "setup: pip failed; the whole log is in $log" >&2
        exit 1
    fi
}
: >"$log"
install -r "$project/$requirements"
# Test oracles whose own dependencies are not wanted (see the file).
nodeps="$project/$(basename "$requirements" .txt)-nodeps.txt"
[ ! -f "$nodeps" ] || install --no-deps -r "$nodeps"
# The package itself, editable and without dependencies (requirements.txt pinned them): the
# `stemeval` command in $venv/bin, and `import stemeval` from any folder.
install --no-deps -e "$project"
echo "$wanted" >"$stamp"
