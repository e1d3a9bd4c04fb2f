#!/usr/bin/env bash
# Installs what edgeprune and its tests need on a Debian/Ubuntu machine: system packages (only the missing
# ones) and a virtualenv at .venv with edgeprune installed editable, with its dev extra.
#   bash scripts/setup.sh            # everything (tests included)
#   EDGEPRUNE_SETUP=minimal bash scripts/setup.sh   # only the Python side, for export + local bench
#   EDGEPRUNE_SETUP=none bash scripts/setup.sh      # nothing: use the .venv as it is (the README examples test)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
  local wanted=(openssh-server openssh-client chromium qemu-user-static binfmt-support debootstrap zstd iproute2
                postgresql)
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "system packages present"
    return
  fi
  log "installing ${missing[*]}"
  sudo_if_needed apt-get update -q >/dev/null
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  local python="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  log "python environment ready: .venv ($(.venv/bin/python --version))"
}

case "${EDGEPRUNE_SETUP:-full}" in
  full) install_system_packages; install_python_packages ;;
  minimal) install_python_packages ;;
  none) [ -x .venv/bin/edgeprune ] || { log "EDGEPRUNE_SETUP=none needs an existing .venv with edgeprune"; exit 1; } ;;
  *) log "EDGEPRUNE_SETUP is full, minimal or none, not '${EDGEPRUNE_SETUP}'"; exit 2 ;;
esac
