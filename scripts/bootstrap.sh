#!/usr/bin/env bash
# Find uv (PATH, ~/.local/bin, pyenv shims, or `python3 -m uv`), install it with pip if it is missing,
# then build .venv exactly from uv.lock. Needs only Python and PyPI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
export PATH="$HOME/.local/bin:$PATH"

find_uv() {
    # `--version`, not `command -v`: a pyenv shim exists even when its Python version has no uv.
    if uv --version >/dev/null 2>&1; then
        echo "uv"
    elif "$PYTHON" -m uv --version >/dev/null 2>&1; then
        echo "$PYTHON -m uv"
    else
        return 1
    fi
}

install_uv() {
    echo "bootstrap: uv not found, installing it with pip" >&2
    # --user fails inside a virtualenv, and a Debian system Python refuses both without the last flag.
    "$PYTHON" -m pip install --quiet --user uv 2>/dev/null \
        || "$PYTHON" -m pip install --quiet uv 2>/dev/null \
        || "$PYTHON" -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
        || install_pip_then_uv
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash || true
    fi
    hash -r
}

install_pip_then_uv() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: cannot install uv: $PYTHON has no working pip (install python3-pip)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq python3-pip >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
    "$PYTHON" -m pip install --quiet --user --break-system-packages uv \
        || "$PYTHON" -m pip install --quiet --user uv
}

if ! UV="$(find_uv)"; then
    install_uv
    UV="$(find_uv)" || { echo "bootstrap: uv was installed but cannot be run" >&2; exit 1; }
fi
# Precompile bytecode once per lock change: every app process and test server otherwise compiles
# the AWS SDK and friends again at each start when PYTHONDONTWRITEBYTECODE is set (as on CI images).
STAMP=.venv/.bytecode-compiled
COMPILE=()
if [ ! -e "$STAMP" ] || [ uv.lock -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    COMPILE=(--compile-bytecode)
fi
# $UV is "uv" or "python3 -m uv": word splitting is wanted here.
# shellcheck disable=SC2086
$UV sync --frozen "${COMPILE[@]}"
if [ ${#COMPILE[@]} -gt 0 ]; then
    touch "$STAMP"
fi
