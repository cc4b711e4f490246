#!/usr/bin/env bash
# Install everything the tests need (virtual environment, Python packages, system packages) and run them.
# This is the README's test command; .ci/run runs exactly this. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the test suite drives for real: the broker, TLS tools, the shell linter, the browser.
apt_packages=(mosquitto mosquitto-clients openssl shellcheck chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing system packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

scripts/bootstrap_venv.sh test
exec .venv/bin/python -m pytest "$@"
