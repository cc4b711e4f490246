#!/usr/bin/env bash
# Create ./.venv (Python >= 3.11) and install the appliance into it, with EXTRAS (e.g. "test").
# On a fresh Debian the venv module lives in the python3-venv package: install it when missing (root only).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python >= 3.11 is required ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "the Python venv module is missing: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
