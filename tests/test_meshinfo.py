"""``ecm-fem mesh``: the mesh report (counts, measures per tag, sizes, quality) is exact on a
planar stack and the same on any rank count; the export writes shared nodes and every tag and
reads back with meshio; the command line writes the report, JSON and a preview PNG."""

from __future__ import annotations

import json

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_cli

from ecm_fem import meshinfo
from ecm_fem.config import RunConfig
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, L_LI, L_E = 10e-6, 5e-6, 20e-6


@pytest.fixture(scope="module")
def planar():
    cfg = RunConfig.model_validate({"geometry": {
        "width": W, "li_thickness": L_LI, "electrolyte_thickness": L_E, "mesh_size": 4e-6,
        "interface_mesh_size": 1e-6}})
    return cfg, generate(cfg)


@pytest.mark.mpi
def test_report_is_exact_and_rank_independent(planar):
    cfg, md = planar
    rep = meshinfo.report(md)
    assert rep.dim == 2 and rep.cells == md.mesh.topology.index_map(2).size_global
    assert set(rep.regions) == {"li", "electrolyte"}
    assert rep.regions["li"][1] == pytest.approx(W * L_LI, rel=1e-12)
    assert rep.regions["electrolyte"][1] == pytest.approx(W * L_E, rel=1e-12)
    assert sum(n for n, _ in rep.regions.values()) == rep.cells
    expected = {"interface": W, "li_cc": W, "counter": W, "side": 2 * (L_LI + L_E)}
    assert set(rep.boundaries) == set(expected)
    for name, length in expected.items():
        assert rep.boundaries[name][1] == pytest.approx(length, rel=1e-12), name
    # facets on a straight edge of length L with sizes in [h_min, h_max]
    n_if = rep.boundaries["interface"][0]
    assert W / rep.h_max <= n_if <= W / rep.h_min
    assert 0 < rep.quality_min <= rep.quality_mean <= 1 and rep.poor_cells == 0
    serial = meshinfo.report(generate(cfg, MPI.COMM_SELF))
    assert (serial.cells, serial.vertices, serial.boundaries.keys()) == (
        rep.cells, rep.vertices, rep.boundaries.keys())
    for name in rep.boundaries:
        assert serial.boundaries[name][0] == rep.boundaries[name][0]
    assert serial.quality_min == pytest.approx(rep.quality_min, rel=1e-12)
    assert serial.h_min == pytest.approx(rep.h_min, rel=1e-12)


@pytest.mark.mpi
def test_axisymmetric_report_gives_the_cylinder():
    """An axisymmetric stack of radius W: the regions are the cylinders pi W^2 L and the
    boundaries the discs pi W^2 and the mantle 2 pi W (L_li + L_e) (the axis x = 0 has no
    area); the header says so."""
    cfg = RunConfig.model_validate({"geometry": {
        "axisymmetric": True, "width": W, "li_thickness": L_LI, "electrolyte_thickness": L_E,
        "mesh_size": 4e-6, "interface_mesh_size": 1e-6}})
    rep = meshinfo.report(generate(cfg), axisymmetric=True)
    assert rep.regions["li"][1] == pytest.approx(np.pi * W**2 * L_LI, rel=1e-12)
    assert rep.regions["electrolyte"][1] == pytest.approx(np.pi * W**2 * L_E, rel=1e-12)
    for name in ("interface", "li_cc", "counter"):
        assert rep.boundaries[name][1] == pytest.approx(np.pi * W**2, rel=1e-12), name
    assert rep.boundaries["side"][1] == pytest.approx(2 * np.pi * W * (L_LI + L_E), rel=1e-12)
    assert rep.format().startswith("2D axisymmetric mesh (measures of the body of revolution)")
    assert "m^3" in rep.format() and rep.as_dict()["axisymmetric"]


@pytest.mark.mpi
@pytest.mark.parametrize("suffix", [".vtu", ".msh"])
def test_export_reads_back_with_every_tag(planar, shared_tmp, suffix):
    import meshio

    _, md = planar
    rep = meshinfo.report(md)
    path = shared_tmp / f"planar{suffix}"
    meshinfo.export(md, path)
    MPI.COMM_WORLD.barrier()
    if MPI.COMM_WORLD.rank != 0:
        return
    m = meshio.read(path)
    assert len(m.points) == rep.vertices  # shared nodes, not one copy per rank or cell
    key = "gmsh:physical" if suffix == ".msh" else "tags"
    tags = dict(zip([b.type for b in m.cells], m.cell_data[key], strict=True))
    triangles = m.cells_dict["triangle"]
    assert len(triangles) == rep.cells
    for name in ("li", "electrolyte"):
        assert np.count_nonzero(tags["triangle"] == CELL_TAGS[name]) == rep.regions[name][0]
    for name, (count, length) in rep.boundaries.items():
        lines = m.cells_dict["line"][tags["line"] == FACET_TAGS[name]]
        assert len(lines) == count, name
        seg = m.points[lines[:, 1], :2] - m.points[lines[:, 0], :2]
        assert np.linalg.norm(seg, axis=1).sum() == pytest.approx(length, rel=1e-12), name
    # every triangle is a cell of the mesh: total area
    a, b = (m.points[triangles[:, k], :2] - m.points[triangles[:, 0], :2] for k in (1, 2))
    area = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()
    assert area == pytest.approx(W * (L_LI + L_E), rel=1e-12)


@pytest.mark.serial_only
@pytest.mark.parametrize("nprocs", [1, 2])
def test_mesh_command_writes_report_json_and_preview(tmp_path, nprocs):
    png, js = tmp_path / "mesh.png", tmp_path / "mesh.json"
    out = run_cli(["mesh", "configs/interfacial_void_li_llzo.yaml", "--png", str(png),
                   "--json", str(js), "--window", "0,10e-6,-6e-6,2e-6"], nprocs=nprocs)
    assert out.returncode == 0, out.stderr
    assert "void_surface" in out.stdout and "interface" in out.stdout
    report = json.loads(js.read_text())
    assert report["regions"]["li"]["measure"] < 20e-6 * 10e-6  # the void is cut from the Li
    assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.serial_only
def test_mesh_command_bad_window_is_a_config_error():
    out = run_cli(["mesh", "configs/planar_li_llzo.yaml", "--window", "0,1"])
    assert out.returncode == 2 and "--window" in out.stderr
