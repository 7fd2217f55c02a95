#!/usr/bin/env bash
# Make sure a Python able to create virtual environments exists (a fresh Debian lacks python3-venv).
set -euo pipefail
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  echo "==> installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip >/dev/null
fi
