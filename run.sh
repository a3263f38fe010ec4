#!/usr/bin/env bash
# Run the evaluation, setting the project up first if needed.
#   ./run.sh [demo [options]]                  demo: generated stems in both layouts
#   ./run.sh dsd100 /path/to/DSD100/Sources [options]
#   ./run.sh moisesdb /path/to/moisesdb/moisesdb_v0.1 [options]
#   ./run.sh DATASET FOLDER [options]          any dataset of evaluate.py (musdb18hq, slakh2100...)
#   ./run.sh sweep CONFIG.toml [options]        a robustness sweep (sweep.py)
# Options are those of evaluate.py / analyze_dsd100.py / analyze_moisesdb.py (see README.md).
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$project/scripts/setup.sh" requirements.txt
python="$project/.venv/bin/python"
case "${1:-demo}" in
    demo) [ $# -eq 0 ] || shift
          PYTHONPATH="$project${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m stemeval demo "$@" ;;
    dsd100) shift; exec "$python" "$project/analyze_dsd100.py" "$@" ;;
    moisesdb) shift; exec "$python" "$project/analyze_moisesdb.py" "$@" ;;
    sweep) shift; exec "$python" "$project/sweep.py" "$@" ;;
    -*) echo "usage: ./run.sh [demo | dsd100 FOLDER | moisesdb FOLDER | DATASET FOLDER | sweep CONFIG] [options]" >&2; exit 2 ;;
    *) exec "$python" "$project/evaluate.py" "$@" ;;
esac
