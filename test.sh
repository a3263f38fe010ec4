#!/usr/bin/env bash
# Run the test suite, setting the project up first if needed; arguments go to pytest.
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$project/scripts/setup.sh" requirements-dev.txt
cd "$project"
exec .venv/bin/python -m pytest "$@"
