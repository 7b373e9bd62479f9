#!/usr/bin/env bash
# Run a command inside the ecm_fem image with the repository mounted at its own path (so paths
# are the same inside and out), as the invoking user (results on the host belong to them), and
# with the FFCx JIT cache on a named volume (compiled forms survive the container).
#
#   docker/container.sh CMD [ARGS...]        e.g. docker/container.sh mpirun -n 2 ecm-fem run x.yaml
#   ECM_FEM_TTY=1 docker/container.sh bash   interactive
#   ECM_FEM_IMAGE=ecm_fem:latest ...         skip the rebuild check (development: with
#                                            PYTHONPATH=$PWD the working tree is what runs)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/docker/runtime.sh" ensure
TAG="${ECM_FEM_IMAGE:-$("$ROOT/docker/image.sh")}"

tty_flags=()
if [ "${ECM_FEM_TTY:-0}" = 1 ] && [ -t 0 ]; then tty_flags=(-it); fi

exec docker run --rm "${tty_flags[@]}" \
    --user "$(id -u):$(id -g)" -e HOME=/tmp \
    --shm-size=1g \
    -e CI="${CI:-}" -e ECM_FEM_LOG_LEVEL="${ECM_FEM_LOG_LEVEL:-}" \
    -v "$ROOT:$ROOT" -w "$ROOT" \
    -v ecm_fem-jit-cache:/opt/ecm_fem/cache \
    "$TAG" "$@"
