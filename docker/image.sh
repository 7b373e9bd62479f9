#!/usr/bin/env bash
# Print the ecm_fem image tag for this tree, building the image first if it does not exist.
# The tag is a hash of every file that goes into the image, so an unchanged tree never
# rebuilds, and a changed one rebuilds only the layers after the change (the Debian layer stays
# in Docker's cache).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE_DIR="${ECM_FEM_RUNTIME_DIR:-/tmp/ecm_fem-runtime}"
mkdir -p "$STATE_DIR"

image_files() {
    printf '%s\n' docker/Dockerfile pyproject.toml README.md
    find ecm_fem -type f \( -name '*.py' -o -name '*.yaml' -o -name 'py.typed' \) \
        -not -path '*/__pycache__/*' | LC_ALL=C sort
}
HASH="$(image_files | while read -r f; do printf '%s\0' "$f"; cat "$f"; done | sha256sum | cut -c1-12)"
TAG="ecm_fem:$HASH"

if ! docker image inspect "$TAG" >/dev/null 2>&1; then
    LOG="$STATE_DIR/build-$HASH.log"
    echo "[image] building $TAG (log: $LOG)" >&2
    start=$(date +%s)
    if ! docker build -f docker/Dockerfile -t "$TAG" -t ecm_fem:latest . >"$LOG" 2>&1; then
        tail -n 40 "$LOG" >&2
        echo "[image] error: docker build failed (full log: $LOG)" >&2
        exit 1
    fi
    echo "[image] built $TAG in $(( $(date +%s) - start )) s" >&2
fi
echo "$TAG"
