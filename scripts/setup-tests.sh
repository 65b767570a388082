#!/usr/bin/env bash
# Everything the tests need, on a fresh Debian machine or a developer's laptop:
#   - the Python packages of requirements-test.txt (the app's, pytest, hypothesis, Playwright) and
#     the bundled decoder's package, through scripts/install.sh;
#   - Debian's chromium, which the browser tests drive through Playwright
#     (no `playwright install`: its browser download is not reachable from every machine).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh requirements-test.txt

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "The browser tests need Debian's chromium: run 'apt-get install -y chromium' as root." >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(/usr/bin/chromium --version)"
