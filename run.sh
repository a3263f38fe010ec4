#!/usr/bin/env bash
# Run the evaluation, setting the project up first if needed (usage: ./run.sh --help).
# --help (anywhere) answers at once, without setting anything up.
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<'EOF'
usage: ./run.sh [demo [options]]                      generated stems, both evaluations, scores
       ./run.sh dsd100 /path/to/DSD100/Sources [options]          writes results_dsd100.csv
       ./run.sh moisesdb /path/to/moisesdb/moisesdb_v0.1 [options] writes results_moises.csv
       ./run.sh DATASET FOLDER [options]     any dataset evaluate.py knows, e.g. musdb18hq
       ./run.sh sweep CONFIG.toml [options]  a robustness sweep (sweep.py)
       ./run.sh --help                       this; ./run.sh demo|dsd100|DATASET|sweep --help: options

Options are those of evaluate.py, analyze_dsd100.py and analyze_moisesdb.py (or of the demo,
or of sweep.py). The first run sets the project up: ffmpeg where missing, and a virtual
environment in .venv with the pinned packages of requirements.txt (a few minutes).
Documentation: README.md, and the site in docs/ (README.md says how to build it).
EOF
}

# A Python that can print a command's --help before the environment is built: .venv's, else
# the one scripts/setup.sh would choose (3.11 or newer).
help_python() {
    local candidate
    for candidate in "$project/.venv/bin/python" "${PYTHON:-}" python3.11 python3.12 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

case "${1:-demo}" in
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
esac
case "${1:-demo}" in
    demo) [ $# -eq 0 ] || shift; command=(-m stemeval demo) ;;
    dsd100) shift; command=("$project/analyze_dsd100.py") ;;
    moisesdb) shift; command=("$project/analyze_moisesdb.py") ;;
    sweep) shift; command=("$project/sweep.py") ;;
    *) command=("$project/evaluate.py") ;;
esac
export PYTHONPATH="$project${PYTHONPATH:+:$PYTHONPATH}"
for arg in "$@"; do
    case "$arg" in
        -h|--help)
            if python="$(help_python)"; then exec "$python" "${command[@]}" "$@"; fi
            usage
            echo "(no Python 3.11 or newer found: set PYTHON=/path/to/python3.11)" >&2
            exit 0 ;;
    esac
done
"$project/scripts/setup.sh" requirements.txt
exec "$project/.venv/bin/python" "${command[@]}" "$@"
