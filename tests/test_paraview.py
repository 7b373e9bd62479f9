"""ParaView itself is the client: a small planar run with mechanics on 2 ranks, then ParaView's
pvpython (under xvfb-run) opens every fields/*.bp with the ADIOS2VTXReader, by a path relative
to the run folder and by an absolute one, and sees what DOLFINx wrote: the points and cells of
each rank, the distinct nodes and cells of the mesh, the arrays, one time step per output and
the values (phi against the interface table, |j| against the applied current). The run's own
open_in_paraview.py, from a copy of the run folder, renders a screenshot that is a picture.

Expected counts: on 2 ranks VTX holds the nodes and cells shared by the ranks once per rank
(ParaView's reader drops DOLFINx's vtkGhostType), so the point and cell totals are compared with
the per-rank NumberOfNodes/NumberOfCells in the .bp files, and the distinct nodes
(vtkOriginalPointIds) and cells (their sets of node ids) with the mesh: phi (P1 on the
electrolyte) has summary.json dofs.phi nodes, the displacement (P2 vectors) dofs.u / 2, the DG0
stress files the mesh's vertices (``ecm-fem mesh --json``), the DG1 current density 3 nodes per
electrolyte triangle."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import _clean_env, run_cli

pytestmark = pytest.mark.serial_only

CONFIG = """\
name: paraview_check
geometry: {kind: planar, width: 20.0e-6, li_thickness: 10.0e-6, electrolyte_thickness: 30.0e-6,
           mesh_size: 5.0e-6, interface_mesh_size: 2.0e-6}
materials: {li: lithium, electrolyte: llzo}
kinetics: {model: butler_volmer, i0: 51.0}
control:
  mode: galvanostatic
  steps: [{until: 30.0, current_density: -10.0}]
mechanics: {li_law: norton, stack_pressure: 1.0e6}
time: {t_end: 30.0, dt: 10.0}
output: {dir: results/paraview_check, fields_every: 1}
"""

ARRAYS = {"phi": ("points", {"phi"}), "current_density": ("points", {"current_density"}),
          "displacement": ("points", {"u"}), "stress": ("cells", {"stress"}),
          "stress_measures": ("cells", {"von_mises", "pressure", "equivalent_creep_strain"})}

CHECKER = r'''
"""Run by pvpython: what ParaView sees in each fields/*.bp of the run folder argv[1], opened
with the ADIOS2VTXReader by a relative and by an absolute path, as one JSON line."""
import json
import os
import sys

import numpy as np
from paraview import servermanager, simple
from vtkmodules.util.numpy_support import vtk_to_numpy


def grid_at(reader, time):
    reader.UpdatePipeline(time)
    blocks = servermanager.Fetch(reader).NewIterator()
    blocks.InitTraversal()
    grids = []
    while not blocks.IsDoneWithTraversal():
        grids.append(blocks.GetCurrentDataObject())
        blocks.GoToNextItem()
    assert len(grids) == 1, f"{len(grids)} pieces"
    return grids[0]


def describe(path):
    reader = simple.ADIOS2VTXReader(FileName=path)
    times = list(reader.TimestepValues)
    grid = grid_at(reader, times[-1])
    ids = vtk_to_numpy(grid.GetPointData().GetArray("vtkOriginalPointIds"))
    connectivity = vtk_to_numpy(grid.GetCells().GetConnectivityArray())
    offsets = vtk_to_numpy(grid.GetCells().GetOffsetsArray())
    cells = {tuple(sorted(ids[connectivity[a:b]])) for a, b in zip(offsets[:-1], offsets[1:])}
    arrays = {}
    for where, data in (("points", grid.GetPointData()), ("cells", grid.GetCellData())):
        for k in range(data.GetNumberOfArrays()):
            array = data.GetArray(k)
            if array.GetName().startswith("vtk"):
                continue
            values = vtk_to_numpy(array)
            size = np.linalg.norm(values, axis=1) if values.ndim == 2 else values
            arrays[array.GetName()] = {"where": where,
                                       "components": array.GetNumberOfComponents(),
                                       "min": float(size.min()), "max": float(size.max())}
    simple.Delete(reader)
    return {"times": times, "points": grid.GetNumberOfPoints(), "cells": grid.GetNumberOfCells(),
            "distinct_points": int(np.unique(ids).size), "distinct_cells": len(cells),
            "arrays": arrays}


run_dir = os.path.abspath(sys.argv[1])
os.chdir(run_dir)
names = sorted(n[:-3] for n in os.listdir("fields") if n.endswith(".bp"))
print("PARAVIEW_REPORT " + json.dumps({
    "relative": {n: describe(os.path.join("fields", n + ".bp")) for n in names},
    "absolute": {n: describe(os.path.join(run_dir, "fields", n + ".bp")) for n in names}}))
'''


def pvpython(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``xvfb-run -a pvpython ARGS``; fails (not skips) without ParaView: the image ships it."""
    for tool in ("pvpython", "xvfb-run"):
        assert shutil.which(tool), (f"{tool} not found: the ecm_fem image ships ParaView "
                                    "(paraview, python3-paraview, xvfb); rebuild it (make image)")
    return subprocess.run(["xvfb-run", "-a", "pvpython", *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env=_clean_env())


def output_of(proc: subprocess.CompletedProcess) -> str:
    return f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def written_by_dolfinx(bp: Path) -> tuple[int, int, list[float]]:
    """(points, cells, times) of a VTX file as DOLFINx wrote it: the per-rank node and cell
    counts of the last step, summed over the ranks. DOLFINx 0.9 names the cell count
    NumberOfEntities for a function's own mesh (P1, P2, DG1) and NumberOfCells for the mesh
    (DG0 fields)."""
    import adios2

    with adios2.FileReader(str(bp)) as f:
        variables = f.available_variables()
        steps = int(variables["step"]["AvailableStepsCount"])
        ranks = int(variables["NumberOfNodes"]["Shape"])
        last = [steps - 1, 1]
        nodes = f.read("NumberOfNodes", start=[0], count=[ranks], step_selection=last)
        cell_count = "NumberOfCells" if "NumberOfCells" in variables else "NumberOfEntities"
        cells = f.read(cell_count, start=[0], count=[ranks], step_selection=last)
        times = f.read("step", step_selection=[0, steps])
    return int(nodes.sum()), int(cells.sum()), [float(t) for t in times]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("paraview")
    config = base / "paraview_check.yaml"
    config.write_text(CONFIG)
    out = run_cli(["run", str(config), "-o", str(base / "run")], nprocs=2)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run_cli(["mesh", str(config), "--json", str(base / "mesh.json")])
    assert out.returncode == 0, out.stdout + out.stderr
    return base / "run"


def test_paraview_reads_what_dolfinx_wrote(run_dir, tmp_path):
    checker = tmp_path / "check_vtx.py"
    checker.write_text(CHECKER)
    proc = pvpython([str(checker), str(run_dir)], cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PARAVIEW_REPORT ")]
    assert proc.returncode == 0 and lines, output_of(proc)
    report = json.loads(lines[0].split(" ", 1)[1])
    assert report["relative"] == report["absolute"], "relative and absolute paths differ"
    seen = report["absolute"]

    summary = json.loads((run_dir / "summary.json").read_text())
    mesh = json.loads((run_dir.parent / "mesh.json").read_text())
    history = list(csv.DictReader(open(run_dir / "history.csv")))
    electrolyte_cells = mesh["regions"]["electrolyte"]["cells"]
    assert summary["ranks"] == 2 and summary["cells"] == mesh["cells"]
    distinct = {"phi": (summary["dofs"]["phi"], electrolyte_cells),
                "current_density": (3 * electrolyte_cells, electrolyte_cells),
                "displacement": (summary["dofs"]["u"] // 2, mesh["cells"]),
                "stress": (mesh["vertices"], mesh["cells"]),
                "stress_measures": (mesh["vertices"], mesh["cells"])}
    assert sorted(seen) == sorted(distinct), sorted(seen)
    output_times = [float(row["time"]) for row in history]
    for name, info in seen.items():
        points, cells, times = written_by_dolfinx(run_dir / "fields" / f"{name}.bp")
        assert (info["points"], info["cells"]) == (points, cells), name
        assert (info["distinct_points"], info["distinct_cells"]) == distinct[name], name
        assert info["times"] == pytest.approx(times), name
        assert times == pytest.approx(output_times), name
        where, arrays = ARRAYS[name]
        assert set(info["arrays"]) == arrays, (name, info["arrays"])
        assert all(a["where"] == where for a in info["arrays"].values()), name
    assert seen["current_density"]["arrays"]["current_density"]["components"] == 3
    assert seen["stress"]["arrays"]["stress"]["components"] == 9

    # phi: from the interface's potential (V_we - eta - U_mech, interface.csv) to 0 at the
    # counter reference; |j| is the applied current everywhere in a planar cell
    last = history[-1]
    profile = [r for r in csv.DictReader(open(run_dir / "interface.csv"))
               if float(r["time"]) == float(last["time"])]
    phi_interface = [float(last["V_we"]) - float(r["eta"]) - float(r["U_mech"]) for r in profile]
    phi = seen["phi"]["arrays"]["phi"]
    assert phi["min"] == pytest.approx(min(phi_interface), rel=1e-9)
    assert phi["max"] == pytest.approx(0.0, abs=1e-12)
    j = seen["current_density"]["arrays"]["current_density"]
    assert j["min"] == pytest.approx(abs(float(last["i_app"])), rel=1e-6)
    assert j["max"] == pytest.approx(abs(float(last["i_app"])), rel=1e-6)
    measures = seen["stress_measures"]["arrays"]
    assert measures["von_mises"]["max"] >= float(last["max_vm_electrolyte"]) * (1 - 1e-9)
    assert measures["pressure"]["max"] >= float(last["max_p_li"]) * (1 - 1e-9)
    assert measures["equivalent_creep_strain"]["max"] == pytest.approx(
        float(last["max_creep_strain_li"]), rel=1e-9)


def test_shipped_script_renders_a_picture(run_dir, tmp_path):
    """From a copy of the run folder (the script finds its files relative to itself), and from
    another working directory."""
    shipped = Path(__file__).resolve().parents[1] / "ecm_fem" / "open_in_paraview.py"
    assert (run_dir / "open_in_paraview.py").read_text() == shipped.read_text()
    copy = shutil.copytree(run_dir, tmp_path / "moved_run")
    png = tmp_path / "view.png"
    proc = pvpython([str(copy / "open_in_paraview.py"), "--screenshot", str(png)], cwd=tmp_path)
    assert proc.returncode == 0, output_of(proc)
    for name in ARRAYS:
        assert f"fields/{name}.bp" in proc.stdout and "3 time steps" in proc.stdout, \
            output_of(proc)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", output_of(proc)

    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    assert pixels.shape[:2] == (800, 1200)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert pixels.std() > 0.05 and len(colours) > 50, (pixels.std(), len(colours))

    proc = pvpython([str(copy / "open_in_paraview.py"), "--field", "no_such_array"], cwd=tmp_path)
    assert proc.returncode != 0 and "available: current_density" in proc.stderr, \
        output_of(proc)
