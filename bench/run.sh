#!/bin/bash
# `make bench`: install the peers ukitool is compared with, then run bench/run.py.
#
# The peers are Debian packages (all listed in the Makefile's APT_PACKAGES); only the
# missing ones are installed. LIEF is not packaged for Debian 12: it is tried from PyPI
# into a private venv (system site packages visible, so Debian's pefile is used too) and
# its row is skipped when that fails. Arguments are passed to run.py (--quick, --only ROW).
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=(python3 python3-pefile python3-venv sbsigntool osslsigncode pesign binutils openssl
    mtools dosfstools gdisk fdisk util-linux bmap-tools hyperfine time systemd xfsprogs grub-common)
missing=()
for p in "${PEERS[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; }
    else
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    fi
fi

# Debian's interpreter, where python3-pefile lives (a pyenv python3 on PATH would not see it).
PY=/usr/bin/python3
VENV=${UKITOOL_BENCH_VENV:-$HOME/.cache/ukitool-bench/venv}
if ! "$VENV/bin/python" -c 'import lief' 2>/dev/null; then
    echo "bench: trying LIEF from PyPI into $VENV (optional)"
    if "$PY" -m venv --system-site-packages "$VENV" >/dev/null 2>&1 &&
        timeout 300 "$VENV/bin/pip" install -q lief >/dev/null 2>&1 &&
        "$VENV/bin/python" -c 'import lief' 2>/dev/null; then
        echo "bench: LIEF $("$VENV/bin/python" -c 'import lief; print(lief.__version__)')"
    else
        echo "bench: LIEF unavailable; its rows will say so"
    fi
fi
export UKITOOL_BENCH_LIEF_PYTHON="$VENV/bin/python"
# The page's large-disk figures (tests/artifacts/bigdisk-bench.json: the 8 GiB raw image
# and the 4247 MiB Talos image as .raw.zst and .raw.xz), folded into the results by
# run.py; the 4247 MiB test is too slow for `make test`.
if [ -f web/pkg/ukitool_web_wasm.js ] && [ -d tests/e2e/node_modules ]; then
    UKITOOL_E2E_BIG=1 node --test tests/e2e/bigdisk.test.js || echo "bench: tests/e2e/bigdisk.test.js failed; its figures are missing"
fi
exec "$PY" bench/run.py "$@"
