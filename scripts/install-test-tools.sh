#!/usr/bin/env bash
# Host packages the tests drive as real peers: PostgreSQL binaries for the app's throwaway
# clusters; Debian's Chromium (with certutil, to trust the lab CA) for the browser tests; promtool
# for the alert rules' unit tests (tests/iac/test_alert_rules.py).
# Installed only when missing, so warm runs cost nothing.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
# The fax engines' tests (tests/efax): spandsp (Debian 12 calls it libspandsp2, 13 adds t64),
# Ghostscript to render fax pages, libtiff's tools to turn them into PDF.
ldconfig -p | grep -q 'libspandsp\.so' || need+=(spandsp)
command -v gs >/dev/null || need+=(ghostscript)
command -v tiff2pdf >/dev/null || need+=(libtiff-tools)
if ((${#need[@]})); then
  echo "==> installing test tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  spandsp=$(apt-cache -q show libspandsp2t64 >/dev/null 2>&1 && echo libspandsp2t64 || echo libspandsp2)
  need=("${need[@]/#spandsp/$spandsp}")
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a cluster on install where systemd runs; the tests bring their own.
  command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi
# promtool alone, from Debian's prometheus package unpacked (installing it would start a server).
if ! command -v promtool >/dev/null; then
  echo "==> fetching promtool (Debian's prometheus package, unpacked)"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/unpacked"
  install -m 0755 "$tmp/unpacked/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
fi
