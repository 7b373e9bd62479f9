"""Checkpoint and restart: a run killed with SIGTERM under mpirun -n 2 and continued with
``ecm-fem run --restart`` on another number of ranks ends where the uninterrupted run ends, with
the same history, interface profiles and ParaView time series.

The cases are the two-way coupled Li-filled flaw (normal_traction kinetics, growth
eigenstrain): staggered with Norton creep (phi, V_we, U_mech, u, creep strain, stress at the
quadrature points, growth strain must all come back), and monolithic with elastic Li and an SEI
film (also eta_ct and the growth currents of the monolithic Newton unknowns)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, _clean_env, run_cli

pytestmark = pytest.mark.serial_only

FLAW = ["configs/electrolyte_flaw_li_llzo.yaml",
        "--set", "kinetics.stress_coupling=normal_traction", "--set", "time.dt=2.5",
        "--set", "time.adaptive=false", "--set", "output.fields_every=2"]
CASES = {
    # (extra settings, field outputs before the kill, checkpoint step at the kill, ranks of the
    # restart); the staggered case is killed after the field output of step 4, past its state
    # checkpoint of step 3, so the restart must drop what the killed run wrote after it
    "staggered-norton": (["--set", "time.t_end=20", "--set", "output.checkpoint_every=3",
                          "--set", "mechanics.coupling.scheme=staggered"],
                         2, 3, 3),
    "monolithic-film": (["--set", "time.t_end=10", "--set", "output.checkpoint_every=2",
                         "--set", "mechanics.coupling.scheme=monolithic",
                         "--set", "mechanics.li_law=elastic",
                         "--set", "kinetics.sei_film.thickness=50e-9",
                         "--set", "geometry.interface_mesh_size=0.5e-6",
                         "--set", "geometry.mesh_size=4e-6"], 1, 2, 1),
}


def _history(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run_dir / "history.csv")))


def _bp_times(path: Path) -> list[float]:
    import adios2

    with adios2.FileReader(str(path)) as reader:
        return [float(t) for t in reader.read("step", step_selection=[0, reader.num_steps()])]


def _kill_after_checkpoint(args: list[str], run_dir: Path, nprocs: int, field_outputs: int
                           ) -> dict:
    """Start the flaw run under mpirun and send SIGTERM once its first state checkpoint and
    ``field_outputs`` field outputs are complete; return the checkpoint index it left."""
    cmd = ["mpirun", "-n", str(nprocs), "--oversubscribe", sys.executable, "-m", "ecm_fem.cli",
           "run", *args, "-o", str(run_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    index_path = run_dir / "checkpoint" / "index.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if index_path.exists():
                index = json.loads(index_path.read_text())
                if index["checkpoints"] and len(index["field_times"]) >= field_outputs:
                    break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (run_dir / "summary.json").exists(), f"the run finished before the kill:\n{output}"
    return json.loads(index_path.read_text())


def _assert_same_run(reference: Path, restarted: Path, restart_ranks: int,
                     columns: tuple[str, ...], groups: tuple[str, ...]) -> None:
    """The restarted run ends where the uninterrupted one ends: summary, history, interface
    table and the time steps of every ParaView file (one field output every second step)."""
    ref = json.loads((reference / "summary.json").read_text())
    got = json.loads((restarted / "summary.json").read_text())
    assert got["restarts"] >= 1 and got["ranks"] == restart_ranks and got["complete"]
    for key, value in ref.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    ref_rows, got_rows = _history(reference), _history(restarted)
    assert [r["step"] for r in got_rows] == [r["step"] for r in ref_rows]
    for a, b in zip(ref_rows, got_rows, strict=True):
        for column in columns:
            assert float(b[column]) == pytest.approx(float(a[column]), rel=1e-9), column
    ref_profile = list(csv.reader(open(reference / "interface.csv")))
    got_profile = list(csv.reader(open(restarted / "interface.csv")))
    assert len(got_profile) == len(ref_profile)
    for group in groups:
        times = _bp_times(restarted / "fields" / f"{group}.bp")
        assert times == _bp_times(reference / "fields" / f"{group}.bp"), group
    assert times == [float(r["time"]) for r in ref_rows[1::2]]


@pytest.mark.parametrize("case", CASES)
def test_killed_run_restarts_on_another_rank_count(tmp_path, case):
    extra, field_outputs, checkpoint_step, restart_ranks = CASES[case]
    args = FLAW + extra
    reference = tmp_path / "uninterrupted"
    out = run_cli(["run", *args, "-o", str(reference)], nprocs=2)
    assert out.returncode == 0, out.stdout + out.stderr

    killed = tmp_path / "killed"
    index = _kill_after_checkpoint(args, killed, nprocs=2, field_outputs=field_outputs)
    step = index["checkpoints"][-1]["step"]
    assert step == checkpoint_step, index["checkpoints"]
    if case == "staggered-norton":  # the killed run got past its checkpoint
        assert index["field_times"][-1] > index["checkpoints"][-1]["time"]
        assert len(index["history"]) > step

    out = run_cli(["run", "--restart", str(killed)], nprocs=restart_ranks)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"continuing from the checkpoint of step {step}" in out.stdout + out.stderr

    _assert_same_run(reference, killed, restart_ranks,
                     ("time", "V_we", "focusing_factor", "max_p_li", "KI_flaw"),
                     ("phi", "current_density", "displacement", "stress", "stress_measures"))

    out = run_cli(["run", "--restart", str(killed)])
    assert out.returncode == 2 and "is complete" in out.stderr, out.stderr


STOPPED = {
    # (config and settings, steps before the stop, ranks of the restart, history columns and
    # field groups compared)
    "periodic-monroe-newman": (
        ["configs/rough_interface_li_llzo.yaml", "--set", "mechanics.sides=periodic",
         "--set", "time.adaptive=false", "--set", "time.dt=2.5",
         "--set", "geometry.interface_mesh_size=1e-6"], 3, 3,
        ("time", "V_we", "focusing_factor", "max_p_li", "max_creep_strain_li"),
        ("phi", "current_density", "displacement", "stress_measures")),
    "3d-void": (
        ["configs/interfacial_void_3d_li_llzo.yaml", "--set", "time.t_end=20",
         "--set", "time.adaptive=false", "--set", "control.current_density=-5",
         "--set", "geometry.interface_mesh_size=1.5e-6", "--set", "geometry.mesh_size=5e-6"],
        2, 1, ("time", "V_we", "focusing_factor", "i_max"), ("phi", "current_density")),
}


@pytest.mark.parametrize("case", STOPPED)
def test_stopped_run_continues_on_another_rank_count(tmp_path, case):
    """``--stop-after N`` (a job of limited wall time) leaves a folder that ``--restart``
    continues: periodic lateral sides of the mechanics (dolfinx_mpc constraint rebuilt on the
    new partition) with Monroe-Newman kinetics and creep, and a 3D mesh. The stop falls between
    the regular checkpoints (every 4 steps), between field outputs (periodic) or on one (3D)."""
    base, stop, restart_ranks, columns, groups = STOPPED[case]
    args = [*base, "--set", "output.fields_every=2", "--set", "output.checkpoint_every=4"]
    reference = tmp_path / "uninterrupted"
    out = run_cli(["run", *args, "-o", str(reference)], nprocs=2)
    assert out.returncode == 0, out.stdout + out.stderr
    stopped = tmp_path / "stopped"
    out = run_cli(["run", *args, "-o", str(stopped), "--stop-after", str(stop)], nprocs=2)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"stopped after {stop} steps" in out.stdout + out.stderr
    summary = json.loads((stopped / "summary.json").read_text())
    assert summary["converged"] and not summary["complete"] and summary["steps"] == stop
    index = json.loads((stopped / "checkpoint" / "index.json").read_text())
    assert index["checkpoints"][-1]["step"] == stop and len(_history(stopped)) == stop

    out = run_cli(["run", "--restart", str(stopped)], nprocs=restart_ranks)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"continuing from the checkpoint of step {stop}" in out.stdout + out.stderr
    _assert_same_run(reference, stopped, restart_ranks, columns, groups)


def test_restart_refuses_what_it_cannot_continue(tmp_path):
    out = run_cli(["run", "--restart", str(tmp_path)])
    assert out.returncode == 2 and "has no checkpoint" in out.stderr, out.stderr
    out = run_cli(["run", "configs/planar_li_llzo.yaml", "--restart", str(tmp_path)])
    assert out.returncode == 2 and "give no config file" in out.stderr, out.stderr
    out = run_cli(["run"])
    assert out.returncode == 2 and "give a config file" in out.stderr, out.stderr
    out = run_cli(["run", "configs/planar_li_llzo.yaml", "--stop-after", "0"])
    assert out.returncode == 2 and "--stop-after: needs a number of steps" in out.stderr
    out = run_cli(["run", "configs/planar_li_llzo.yaml", "--stop-after", "2", "-o",
                   str(tmp_path / "x"), "--set", "output.checkpoint_every=0"])
    assert out.returncode == 2 and "output.checkpoint_every is 0" in out.stderr, out.stderr
    assert not (tmp_path / "x").exists()
