#!/usr/bin/env bash
# Stand-in hosts for the Ansible host roles: two Debian 13 containers playing the two sites'
# Docker hosts (pbx-labhost-fra, pbx-labhost-ber), so voice_tuning/voice_qos/voice_firewall/
# tls_material/time_sync run against real kernels' netfilter and sysctls without touching this
# machine. Each has its own network namespace; NET_ADMIN plus a writable /proc/sys
# (systempaths=unconfined) let nft and the namespaced net sysctls work there. Host-global sysctls
# stay read-only inside a namespace (the roles skip them); no --privileged: no CAP_SYS_ADMIN or
# CAP_SYS_TIME, so nothing in a stand-in can retune or re-clock this machine.
#
#   scripts/labhosts.sh up      build the image (if absent) and start both containers
#   scripts/labhosts.sh down    remove the containers and their network (the image is kept)
#   scripts/labhosts.sh status
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE=pbx-lab/labhost:trixie
LABEL=pbx.lab=hosts
# NETWORK, SUBNET, SITES, ADDRESS[site], NAME[site]: from the one list of stand-ins, which the
# Ansible inventory is generated from too (pbx_infra.inventory.LAB_STAND_INS).
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
STAND_INS="$(cd "$REPO" && "$PYTHON" -m labkit.hosts)"
eval "$STAND_INS"
# Stand-in TLS material for the tls_material role (the inventory points here); never production.
TLS_DIR="$REPO/.lab/labhosts/tls"

build_image() {
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then return; fi
    echo "==> building $IMAGE"
    docker build -q --label "$LABEL" -t "$IMAGE" - <<'DOCKERFILE'
FROM debian:trixie-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 nftables chrony openssl ca-certificates procps iproute2 \
 && rm -rf /var/lib/apt/lists/*
CMD ["sleep", "infinity"]
DOCKERFILE
}

tls_material() {
    if [ -s "$TLS_DIR/server.crt" ] && openssl x509 -noout -checkend $((60 * 86400)) -in "$TLS_DIR/server.crt" >/dev/null; then
        return
    fi
    echo "==> generating stand-in TLS material in $TLS_DIR"
    local sans=DNS:pbx.lab site
    for site in "${SITES[@]}"; do sans+=",DNS:${NAME[$site]}"; done
    mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=pbx lab-hosts CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pbx.lab" \
        -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
    openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
        -CAcreateserial -days 397 -out "$TLS_DIR/server.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans") 2>/dev/null
    rm -f "$TLS_DIR/server.csr"
}

up() {
    tls_material
    build_image
    if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
        docker network create --label "$LABEL" --subnet "$SUBNET" "$NETWORK" >/dev/null
    fi
    for site in "${SITES[@]}"; do
        name="${NAME[$site]}"
        if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
            continue
        fi
        docker rm -f "$name" >/dev/null 2>&1 || true
        docker run -d --name "$name" --hostname "$name" --label "$LABEL" \
            --label "pbx.site=$site" \
            --cap-add NET_ADMIN --security-opt systempaths=unconfined \
            --network "$NETWORK" --ip "${ADDRESS[$site]}" "$IMAGE" >/dev/null
        echo "==> $name up (${ADDRESS[$site]})"
    done
}

down() {
    for site in "${SITES[@]}"; do
        docker rm -f "${NAME[$site]}" >/dev/null 2>&1 || true
    done
    docker network rm "$NETWORK" >/dev/null 2>&1 || true
    echo "==> stand-in hosts removed"
}

status() {
    docker ps -a --filter "label=$LABEL" --format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
