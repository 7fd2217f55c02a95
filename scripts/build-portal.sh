#!/usr/bin/env bash
# Builds the web portal (portal/) into pbx_app/web/static/, where the app serves it and the app
# image picks it up. Node and npm come from Debian when missing; `npm ci` runs only when
# node_modules is missing or older than the lock file, so warm builds only bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=pbx_app/web/static

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "==> installing nodejs and npm (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm writes node_modules/.package-lock.json on every install: its age is the install's.
if [[ ! -f portal/node_modules/.package-lock.json ||
      portal/package-lock.json -nt portal/node_modules/.package-lock.json ]]; then
  echo "==> npm ci (portal/)"
  (cd portal && npm ci --no-audit --no-fund --loglevel=error)
  touch portal/node_modules/.package-lock.json
fi

echo "==> bundling the portal into $OUT"
# A fresh directory each time: chunk names carry content hashes, old ones would pile up.
rm -rf "$OUT"
mkdir -p "$OUT"
# ESM with splitting, so that a view imported lazily (the phone's JsSIP) is a chunk of its own.
portal/node_modules/.bin/esbuild app=portal/src/main.js \
  --bundle --minify --sourcemap --splitting --format=esm \
  --target=chrome110,firefox115,safari16 \
  --jsx-factory=h --jsx-fragment=Fragment \
  --chunk-names='chunks/[name]-[hash]' \
  --outdir="$OUT" --log-level=warning
test -s "$OUT/app.js" && test -s "$OUT/app.css"
