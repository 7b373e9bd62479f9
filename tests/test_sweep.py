"""``ecm-fem sweep`` on a tiny planar cell with linear kinetics and one quasi-static step, where
V_we = i_app (L / kappa + R T / (F i0 (alpha_a + alpha_c))) exactly: grid rows equal single runs
and the closed form, the bisection brackets the closed-form critical current within its
tolerance (and says when the bracket misses it), a bad key is a config error (exit code 2)
before anything runs, and a failing run is a row, not the end of the sweep. In-process tests
run serially and under mpirun -n 2; the CLI test launches mpirun itself."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from mpi4py import MPI

import pytest
from conftest import run_cli

from ecm_fem import cli, simulation, sweep
from ecm_fem.config import ConfigError, load_config
from ecm_fem.constants import thermal_voltage

L, KAPPA = 1.0e-5, 0.04  # electrolyte thickness [m], LLZO conductivity [S/m]
TINY = f"""name: tiny
geometry: {{kind: planar, width: 1.0e-5, li_thickness: 1.0e-5, electrolyte_thickness: {L},
           mesh_size: 5.0e-6, interface_mesh_size: 5.0e-6}}
kinetics: {{model: linear, i0: 51.0}}
control: {{mode: galvanostatic, current_density: -10.0}}
time: {{t_end: 0.0}}
output: {{dir: results/tiny, fields_every: 0}}
"""


def resistance(i0: float) -> float:
    """Area-specific resistance of the tiny cell [Ohm m^2]: electrolyte + linear kinetics."""
    return L / KAPPA + thermal_voltage(298.15) / (i0 * 1.0)


@pytest.fixture
def tiny(shared_tmp) -> Path:
    path = shared_tmp / "tiny.yaml"
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(TINY)
    MPI.COMM_WORLD.barrier()
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_parsing():
    assert sweep.parse_param("mechanics.stack_pressure=1e5,1.0e6") == (
        "mechanics.stack_pressure", [1e5, 1e6])
    assert sweep.parse_param("mechanics.li_law=[norton, elastic]")[1] == ["norton", "elastic"]
    c = sweep.parse_criterion(" KI_over_KIc_flaw >= 1 ")
    assert (c.column, c.op, c.threshold) == ("KI_over_KIc_flaw", ">=", 1.0)
    assert c.extreme([0.2, math.nan, 1.5, 0.9]) == 1.5 and c.met(1.0) and not c.met(math.nan)
    assert sweep.parse_criterion("V_we<=-0.1").extreme([-0.05, -0.2]) == -0.2
    for bad in ("KI>1", "KI>=x", "1>=KI", ""):
        with pytest.raises(ConfigError, match="criterion"):
            sweep.parse_criterion(bad)
    assert sweep._midpoint(-1.0, -100.0) == pytest.approx(-10.0)
    assert sweep._midpoint(0.0, -100.0) == -50.0
    assert sweep.format_value(1e6) == "1e+06" and sweep.format_value(-2.5) == "-2.5"


def test_grid_rows_equal_single_runs(tiny, shared_tmp):
    out = shared_tmp / "grid"
    code = cli.main(["sweep", str(tiny), "--param", "control.current_density=-1,-5",
                     "--param", "kinetics.i0=51,102", "--results", "V_we,i_max",
                     "-o", str(out)])
    assert code == 0
    rows = read_rows(out / "sweep.csv")
    assert [(r["control.current_density"], r["kinetics.i0"]) for r in rows] == [
        ("-1", "51"), ("-1", "102"), ("-5", "51"), ("-5", "102")]
    assert all(r["converged"] == "true" and r["steps"] == "1" for r in rows)
    for r in rows:
        i_app, i0 = float(r["control.current_density"]), float(r["kinetics.i0"])
        assert float(r["V_we_final"]) == pytest.approx(i_app * resistance(i0), rel=1e-9)
        assert Path(r["run_dir"]).name.startswith(f"{r['point'].zfill(3)}_current_density=")
    assert Path(rows[3]["run_dir"]).name == "003_current_density=-5_i0=102"
    single = simulation.run(
        load_config(tiny, [("control.current_density", -5.0), ("kinetics.i0", 102.0)]),
        shared_tmp / "single", MPI.COMM_WORLD)
    for column in ("V_we", "i_max"):
        assert float(rows[3][f"{column}_final"]) == pytest.approx(single[column], rel=1e-9)
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["mode"] == "grid" and summary["runs"] == 4 and summary["failed_runs"] == 0
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_critical_current_of_linear_kinetics(tiny, shared_tmp):
    """V_we <= -50 mV: met above |i*| = 0.05 / R(i0). i0 = 51 A/m^2 puts i* inside the
    bracket [-30, -100] A/m^2, i0 = 1 below it (already met at -30), i0 = 204 beyond it."""
    out, rtol = shared_tmp / "crit", 0.05
    code = cli.main(["sweep", str(tiny), "--param", "kinetics.i0=1,51,204",
                     "--critical", "control.current_density", "--criterion", "V_we<=-0.05",
                     "--bracket", "-100", "-30", "--rtol", str(rtol), "-o", str(out)])
    assert code == 0
    weak, found, beyond = read_rows(out / "sweep.csv")
    exact = -0.05 / resistance(51.0)
    assert found["status"] == "found" and found["bracket_found"] == "true"
    lo, hi = float(found["not_met_at"]), float(found["met_at"])
    assert abs(lo) < abs(exact) < abs(hi) and abs(hi - lo) <= rtol * abs(hi)
    assert float(found["critical"]) == pytest.approx(exact, rel=rtol)
    bisections = math.ceil(math.log2(math.log(100 / 30) / -math.log(1 - rtol)))
    assert int(found["runs"]) == 2 + bisections  # geometric midpoints
    assert weak["status"] == "met_at_weak_end" and weak["critical"] == ""
    assert weak["runs"] == "2" and "already met at the weak end" in weak["reason"]
    assert beyond["status"] == "not_met" and beyond["critical"] == ""
    assert beyond["runs"] == "1" and "not met at the strong end" in beyond["reason"]
    runs = read_rows(out / "runs.csv")
    assert len(runs) == 2 + int(found["runs"]) + 1
    for r in runs:
        v = float(r["criterion_value"])
        assert v == pytest.approx(
            float(r["control.current_density"]) * resistance(float(r["kinetics.i0"])), rel=1e-9)
        assert r["met"] == ("true" if v <= -0.05 else "false")


def test_bad_keys_are_config_errors_before_anything_runs(tiny, shared_tmp):
    out = shared_tmp / "bad"
    cases = [
        (["--param", "kinetics.i00=1,2"], "kinetics.i00"),
        (["--param", "mechanics.stack_pressure=1.0e5,1.0e6"], "no 'mechanics' section"),
        (["--param", "kinetics.i0=51,-1"], "kinetics.i0"),
        (["--set", "control.steps=[{until: 1.0, current_density: -1.0}]",
          "--param", "control.current_density=-1,-2"], "control.steps override it"),
        (["--critical", "control.current_density", "--criterion", "V_wee<=-1",
          "--bracket", "-1", "-10"], "'V_wee' is not a history column"),
        (["--critical", "control.current_density", "--criterion", "V_we<=-1",
          "--bracket", "1", "-10"], "same sign"),
    ]
    for args, message in cases:
        parsed = cli._parser().parse_args(["sweep", str(tiny), *args, "-o", str(out)])
        with pytest.raises(ConfigError, match=message):
            sweep.main(parsed)
    assert cli.main(["sweep", str(tiny), *cases[0][0], "-o", str(out)]) == 2
    assert not out.exists()


def test_a_failing_run_does_not_stop_the_sweep(tiny, shared_tmp, capfd):
    """At -1 V Butler-Volmer needs more than 6 Newton iterations (the solver fails), at -10 mV
    it needs 3: the failure is a row and the next run goes ahead."""
    out = shared_tmp / "fail"
    code = cli.main(["sweep", str(tiny), "--param", "control.voltage=-1,-0.01",
                     "--set", "control.mode=potentiostatic", "--set",
                     "kinetics.model=butler_volmer", "--set", "solver.max_iterations=6",
                     "-o", str(out)])
    assert code == 0
    failed, ok = read_rows(out / "sweep.csv")
    assert failed["converged"] == "false" and failed["steps"] == "0"
    assert "solver failure" in failed["reason"] and "DIVERGED_MAX_IT" in failed["reason"]
    assert ok["converged"] == "true" and ok["reason"] == "" and ok["steps"] == "1"
    if MPI.COMM_WORLD.rank == 0:
        assert "2 run(s), 1 failed" in capfd.readouterr().out


@pytest.mark.serial_only
def test_sweep_file_under_mpirun(tmp_path):
    """The real CLI under mpirun -n 2 with a sweep file: progress from rank 0 only."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "sweep.yaml").write_text(
        "config: tiny.yaml\nset: {kinetics.i0: 102.0}\n"
        "parameters: {control.current_density: [-1.0, -3.0]}\nresults: [V_we]\n")
    out = run_cli(["sweep", str(tmp_path / "sweep.yaml"), "-o", str(tmp_path / "s")],
                  nprocs=2, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("[1/2]") == 1 and "2 run(s), 0 failed" in out.stdout
    rows = read_rows(tmp_path / "s" / "sweep.csv")
    for r in rows:
        i_app = float(r["control.current_density"])
        assert float(r["V_we_final"]) == pytest.approx(i_app * resistance(102.0), rel=1e-9)
    assert (tmp_path / "s" / "sweep.png").exists()
