#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system packages, .venv, and the project installed editable.
# A second run with nothing changed does no network access and takes about a second.
# Environment: PYTHON (default python3, must be >= 3.11) creates the venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cmake espeak-ng build-essential
    python3-venv gdb-multiarch openocd
)
VENV=.venv
STAMP="$VENV/.tinyml-install-stamp"  # sha256 of pyproject.toml at the last successful install
PYTHON="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

apt_packages() {
    if ! command -v dpkg-query >/dev/null; then
        say "not a Debian system: install by hand: ${APT_PACKAGES[*]}"
        return
    fi
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "system packages: all present"
        return
    fi
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    say "installing system packages: ${missing[*]}"
    local log
    log="$(mktemp -t tinyml-apt.XXXXXX)"
    if ! { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "apt-get failed (full log: $log)"
    fi
    rm -f "$log"
}

check_python() {  # $1: interpreter
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
        die "$1 is missing or older than Python 3.11 (set PYTHON=/path/to/python3.11)"
}

python_venv() {
    if [[ -x "$VENV/bin/python" ]]; then
        check_python "$VENV/bin/python"
        say "virtual environment: $VENV present"
        return
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3.11)"
    check_python "$PYTHON"
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
}

python_packages() {
    local hash
    hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" ]]; then
        say "Python packages: up to date"
        return
    fi
    say "installing Python packages (pip install -e '.[dev]'; the first time takes minutes)"
    local log="$VENV/.pip-install.log"
    if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
        >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "pip install failed (full log: $log)"
    fi
    printf '%s\n' "$hash" >"$STAMP"
}

apt_packages
python_venv
python_packages
say "setup done"
