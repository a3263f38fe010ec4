#!/usr/bin/env bash
# Run the test suite, setting the project up first if needed; arguments go to pytest.
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then  # answered at once, nothing set up
    cat <<'EOF'
usage: ./test.sh [PYTEST ARGUMENTS]

Runs the test suite with pytest, building .venv first if needed (requirements-dev.txt: the
packages of requirements.txt and the tests' oracles; a few minutes the first time).
Arguments go to pytest, e.g.:
  ./test.sh -m "not slow"          skip the tests marked slow (a Ray cluster, a fresh environment)
  ./test.sh -k silence             only the tests whose name holds "silence"
  ./test.sh tests/test_docs.py     one file
pytest's own options: .venv/bin/python -m pytest --help (once .venv is built).
EOF
    exit 0
fi
"$project/scripts/setup.sh" requirements-dev.txt
cd "$project"
exec .venv/bin/python -m pytest "$@"
