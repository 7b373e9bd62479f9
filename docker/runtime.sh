#!/usr/bin/env bash
# Provide the container runtime ecm_fem needs: a Docker engine that answers and the
# debian:trixie-slim base image. Idempotent and quiet when everything is present; one line
# per step it takes. Works on a user's workstation (engine + registry) and on a bare Debian 12
# machine with only a Docker client (installs Debian's docker.io, starts dockerd, builds the
# base image from Debian's archive with mmdebstrap).
#
#   docker/runtime.sh ensure   engine + base image (default)
#   docker/runtime.sh stop     stop the engine if (and only if) this script started it
set -euo pipefail

STATE_DIR="${ECM_FEM_RUNTIME_DIR:-/tmp/ecm_fem-runtime}"
PID_FILE="$STATE_DIR/dockerd.pid"
BASE_IMAGE="debian:trixie-slim"
DEBIAN_MIRROR="${ECM_FEM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

say() { echo "[runtime] $*" >&2; }
die() { echo "[runtime] error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $* (no sudo available)"; fi
}

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

apt_install() {
    local log="$STATE_DIR/apt.log"
    if [ ! -f "$STATE_DIR/apt-updated" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
        touch "$STATE_DIR/apt-updated"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "could not install $* (log: $log)"; }
}

ensure_engine() {
    engine_answers && return 0
    command -v docker >/dev/null 2>&1 || { say "installing the Docker client (Debian docker.io)"; apt_install docker.io; }
    if ! command -v dockerd >/dev/null 2>&1; then
        say "no Docker engine answers: installing Debian's docker.io"
        apt_install docker.io
    fi
    if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        say "waiting for the dockerd started earlier (pid $(cat "$PID_FILE"))"
    else
        say "starting dockerd in the background (log: $STATE_DIR/dockerd.log)"
        as_root bash -c "nohup dockerd >'$STATE_DIR/dockerd.log' 2>&1 & echo \$! >'$PID_FILE'"
    fi
    for _ in $(seq 1 60); do
        engine_answers && return 0
        sleep 1
    done
    tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s (see $STATE_DIR/dockerd.log)"
}

ensure_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    say "pulling $BASE_IMAGE"
    if timeout 120 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
    say "no registry: building $BASE_IMAGE from Debian's archive with mmdebstrap"
    command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
    as_root mmdebstrap --quiet --variant=minbase trixie - "$DEBIAN_MIRROR" 2>>"$STATE_DIR/mmdebstrap.log" \
        | docker import - "$BASE_IMAGE" >/dev/null
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "could not create $BASE_IMAGE"
}

stop_engine() {
    [ -f "$PID_FILE" ] || return 0
    local pid; pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping the dockerd this script started (pid $pid)"
        as_root kill "$pid" || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$PID_FILE"
}

mkdir -p "$STATE_DIR"
case "${1:-ensure}" in
    ensure) ensure_engine; ensure_base_image ;;
    stop) stop_engine ;;
    *) die "usage: $0 [ensure|stop]" ;;
esac
