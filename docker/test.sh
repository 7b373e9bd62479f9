#!/usr/bin/env bash
# The test suite as `make test` runs it inside the container: serially, then every test again
# under `mpirun -n 2`, then the tests marked `mpi` under `mpirun -n 3`. Exits non-zero if any
# stage fails. Extra arguments go to every pytest call (e.g. -k bv3).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # test the working tree, not the image copy
status=0
stage() { echo; echo "=== $1"; }
# Backstop for a hang outside any test (a hang inside one is ended by the watchdog of
# tests/conftest.py): no stage may take more than this many seconds (each takes about 10 min).
STAGE_LIMIT="${ECM_FEM_STAGE_LIMIT:-1800}"

stopped() { [ "$1" = 124 ] && echo "=== stage stopped after $STAGE_LIMIT s"; }

stage "serial"
timeout --kill-after=30 "$STAGE_LIMIT" python3 -m pytest -p no:cacheprovider --durations=15 "$@" tests
rc=$?
stopped "$rc"
if [ "$rc" -ne 0 ]; then status=1; fi

for n in 2 3; do
    marker="not serial_only"
    [ "$n" = 3 ] && marker="mpi and not serial_only"
    stage "mpirun -n $n (-m '$marker')"
    timeout --kill-after=30 "$STAGE_LIMIT" \
        mpirun -n "$n" --oversubscribe "$ROOT/docker/pytest_rank.sh" -m "$marker" "$@" tests
    rc=$?
    stopped "$rc"
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=1; fi
done

echo
if [ "$status" -eq 0 ]; then echo "=== all test stages passed"; else echo "=== some test stage FAILED"; fi
exit "$status"
