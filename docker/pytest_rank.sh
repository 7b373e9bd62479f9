#!/usr/bin/env bash
# One MPI rank of a parallel pytest run: rank 0 reports to the terminal, the other ranks to a
# log file that is shown only when that rank fails, so the output is readable but nothing hides.
rank="${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}"
if [ "$rank" = 0 ]; then
    exec python3 -m pytest -p no:cacheprovider --color=no -q "$@"
fi
log="$(mktemp "/tmp/pytest-rank$rank.XXXXXX.log")"
# fd 3 stays on the terminal for the hang watchdog of tests/conftest.py
ECM_FEM_WATCHDOG_FD=3 python3 -m pytest -p no:cacheprovider --color=no -q "$@" 3>&2 >"$log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    echo "----- rank $rank failed (exit $rc): its output -----"; cat "$log"
fi
rm -f "$log"
exit "$rc"
