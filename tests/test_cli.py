"""The real command line, launched as a subprocess (serially and under mpirun -n 2): help,
version, config errors (exit code 2 on every rank, no hang, nothing damaged), a full run whose
every output file parses, and equal summaries on 1 and 2 ranks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from conftest import run_cli

from ecm_fem.io import HISTORY_COLUMNS, INTERFACE_COLUMNS

pytestmark = pytest.mark.serial_only

SMALL = ["--set", "geometry.electrolyte_thickness=50.0e-6", "--set", "time.t_end=20",
         "--set", "time.dt=10"]


def test_help_and_version():
    out = run_cli(["--help"])
    assert out.returncode == 0 and "run" in out.stdout and "validate" in out.stdout
    out = run_cli(["--version"])
    assert out.returncode == 0 and out.stdout.startswith("ecm_fem ")


def test_validate_good_and_bad(tmp_path):
    out = run_cli(["validate", "configs/planar_li_llzo.yaml"])
    assert out.returncode == 0, out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkinetics:\n  i0: -5\n")
    out = run_cli(["validate", str(bad)])
    assert out.returncode == 2
    assert "kinetics.i0 (line 3)" in out.stderr


@pytest.mark.parametrize("nprocs", [1, 2])
def test_bad_config_under_mpirun_exits_cleanly(tmp_path, nprocs):
    previous = tmp_path / "out"
    previous.mkdir()
    (previous / "summary.json").write_text('{"keep": true}')
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: x\noutput: {{dir: {previous}}}\ngeometry:\n  widht: 1.0e-5\n")
    out = run_cli(["run", str(bad)], nprocs=nprocs, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "geometry.widht (line 4)" in out.stderr
    assert json.loads((previous / "summary.json").read_text()) == {"keep": True}


def _check_outputs(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("V_we", "V_cell", "focusing_factor", "versions", "ranks", "dofs", "timings",
                "converged", "config"):
        assert key in summary, key
    assert summary["converged"] is True
    hist = list(csv.DictReader(open(run_dir / "history.csv")))
    assert list(hist[0]) == HISTORY_COLUMNS and len(hist) == 2
    prof = list(csv.DictReader(open(run_dir / "interface.csv")))
    assert list(prof[0]) == INTERFACE_COLUMNS and len(prof) > 10
    assert all(math.isfinite(float(r["i_n"])) for r in prof)
    assert (run_dir / "config.yaml").read_text().startswith("name:")
    assert "step    2" in (run_dir / "run.log").read_text()
    for field in ("phi", "current_density"):
        bp = run_dir / "fields" / f"{field}.bp"
        assert (bp / "md.idx").stat().st_size > 0 and (bp / "data.0").stat().st_size > 0
    for png in ("history.png", "interface.png", "fields.png"):
        head = (run_dir / "plots" / png).read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n", png
    compile((run_dir / "open_in_paraview.py").read_text(), "open_in_paraview.py", "exec")
    index = json.loads((run_dir / "checkpoint" / "index.json").read_text())
    assert index["checkpoints"][-1]["step"] == len(hist) and index["field_times"]
    assert [row["step"] for row in index["history"]] == [int(r["step"]) for r in hist]
    assert (run_dir / "checkpoint" / index["state"] / "md.idx").stat().st_size > 0
    return summary


def test_plot_remakes_the_figures_and_rejects_other_folders(tmp_path):
    run_dir = tmp_path / "r"
    out = run_cli(["run", "configs/planar_li_llzo.yaml", *SMALL, "-o", str(run_dir)])
    assert out.returncode == 0, out.stderr
    for png in (run_dir / "plots").iterdir():
        png.unlink()
    out = run_cli(["plot", str(run_dir)])
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == [
        "fields.png", "history.png", "interface.png"]
    out = run_cli(["plot", str(tmp_path)])
    assert out.returncode == 2 and "no history.csv" in out.stderr


def test_run_outputs_and_rank_agreement(tmp_path):
    summaries = {}
    for n in (1, 2):
        out = run_cli(["run", "configs/planar_li_llzo.yaml", *SMALL, "-o",
                       str(tmp_path / f"np{n}")], nprocs=n)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "step    2" in out.stdout
        summaries[n] = _check_outputs(tmp_path / f"np{n}")
    a, b = summaries[1], summaries[2]
    assert b["ranks"] == 2
    for key in ("V_we", "V_cell", "i_mean", "i_max", "focusing_factor", "asr"):
        assert b[key] == pytest.approx(a[key], rel=1e-10, abs=0), key
    assert a["dofs"] == b["dofs"] and a["cells"] == b["cells"]


def test_rerun_moves_earlier_results_aside(tmp_path):
    target = tmp_path / "run"
    for _ in range(2):
        out = run_cli(["run", "configs/planar_li_llzo.yaml", *SMALL, "-o", str(target)])
        assert out.returncode == 0, out.stderr
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.")]
    assert len(moved) == 1 and (moved[0] / "summary.json").exists()
    assert (target / "summary.json").exists()


def test_solver_failure_exit_code(tmp_path):
    out = run_cli(["run", "configs/planar_li_llzo.yaml", *SMALL, "-o", str(tmp_path / "f"),
                   "--set", "solver.max_iterations=1", "--set", "solver.rtol=1e-14",
                   "--set", "solver.atol=1e-30"], nprocs=2)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "did not converge" in out.stderr
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["converged"] is False


def test_failing_mechanics_step_is_cut_then_the_run_stops(tmp_path):
    """A mechanics step that cannot converge is retried with half the step down to dt_min, then
    the run stops with exit code 3 and converged: false, nothing unconverged accepted."""
    out = run_cli(["run", "configs/electrolyte_flaw_li_llzo.yaml", "-o", str(tmp_path / "m"),
                   "--set", "time.t_end=10", "--set", "time.dt=5", "--set", "time.dt_min=1.25",
                   "--set", "time.adaptive=false",
                   "--set", "mechanics.petsc_options.snes_max_it=1"])
    assert out.returncode == 3, out.stdout + out.stderr
    log = out.stdout + out.stderr
    assert "retrying with dt = 2.5 s" in log and "retrying with dt = 1.25 s" in log
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["converged"] is False and summary["steps"] == 0
