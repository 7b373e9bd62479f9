"""Geometry family ``from_file``: meshes written by the builders (gmsh .msh in micrometres, and
meshio conversions to .vtu / .xdmf in metres and micrometres) and a small 3D tetrahedral stack
read back must give the builders' cells, region measures and facet tags (automatic or from the
file) to round-off, the same run results, and a config error naming the key for every broken
file or mapping, the same on every rank. Axisymmetric (``axisymmetric: true``): the builder's
axisymmetric void read back gives its 2 pi r-weighted measures, projected area and coupled
electro-mechanical run; a section shifted off the axis is a hollow cylinder (annulus)."""

from __future__ import annotations

import os
from pathlib import Path

from mpi4py import MPI

import gmsh
import meshio
import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text, dump_config, load_config
from ecm_fem.geometry import interfacial_void, planar
from ecm_fem.geometry._gmsh import MODEL_UNIT
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

PLANAR = {"kind": "planar", "width": 10e-6, "li_thickness": 5e-6,
          "electrolyte_thickness": 10e-6, "mesh_size": 2e-6, "interface_mesh_size": 1e-6}
VOID = {"kind": "interfacial_void", "width": 20e-6, "li_thickness": 10e-6,
        "electrolyte_thickness": 30e-6, "void_half_width": 5e-6, "void_depth": 3e-6,
        "mesh_size": 5e-6, "interface_mesh_size": 1e-6}
VOID_AXI = {**VOID, "axisymmetric": True}
REGIONS = {"li": [1], "electrolyte": [3]}  # the builders' physical group ids
BOX = (4.0, 3.0, 2.0, 3.0)  # um: 3D stack: lateral extents, Li and electrolyte thickness
ANNULUS_INNER = 5e-6  # m: the axisymmetric void shifted off the axis, a hollow cylinder


def _write_builder_msh(module, geometry: dict, path: Path) -> None:
    g = RunConfig.model_validate({"geometry": geometry}).geometry
    gmsh.model.add(path.stem)
    module.build(g, MODEL_UNIT)
    gmsh.write(str(path))
    gmsh.model.remove()


def _write_box_msh(path: Path, axis: int) -> None:
    """Li 0 < s < 2 um under an electrolyte 2 < s < 5 um along the coordinate ``axis``, the
    lateral extents 4 and 3 um; tags 7 and 9, no facet groups."""
    a, b, t_li, t_el = BOX
    lateral = [k for k in range(3) if k != axis]
    occ = gmsh.model.occ
    gmsh.model.add(path.stem)
    boxes = []
    for start, size in ((0.0, t_li), (t_li, t_el)):
        corner, extent = np.zeros(3), np.zeros(3)
        corner[axis], extent[axis] = start, size
        extent[lateral] = a, b
        boxes.append(occ.addBox(*corner, *extent))
    occ.fragment([(3, boxes[0])], [(3, boxes[1])])
    occ.synchronize()
    for _, v in gmsh.model.getEntities(3):
        s = occ.getCenterOfMass(3, v)[axis]
        gmsh.model.addPhysicalGroup(3, [v], 7 if s < t_li else 9)
    gmsh.option.setNumber("Mesh.MeshSizeMax", 1.0)
    gmsh.model.mesh.generate(3)
    gmsh.write(str(path))
    gmsh.model.remove()


def _triangles(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, triangles, tags) of a 2D .msh."""
    m = meshio.read(path)
    blocks = [k for k, b in enumerate(m.cells) if b.type == "triangle"]
    cells = np.concatenate([m.cells[k].data for k in blocks])
    tags = np.concatenate([m.cell_data["gmsh:physical"][k] for k in blocks])
    return m.points, cells, tags


def _write(path: Path, points: np.ndarray, cells: np.ndarray, tags: np.ndarray | None,
           cell_type: str = "triangle") -> None:
    data = {"cell_tags": [tags.astype(np.int32)]} if tags is not None else {}
    meshio.write(path, meshio.Mesh(points, [(cell_type, cells)], cell_data=data))


@pytest.fixture(scope="module")
def files() -> Path:
    """The input files, written by rank 0 into a folder shared by all ranks."""
    import shutil
    import tempfile

    comm = MPI.COMM_WORLD
    folder = Path(comm.bcast(tempfile.mkdtemp(prefix="ecm_ff_") if comm.rank == 0 else None))
    if comm.rank == 0:
        initialised_here = not gmsh.isInitialized()
        if initialised_here:
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        try:
            _write_builder_msh(planar, PLANAR, folder / "planar.msh")
            _write_builder_msh(interfacial_void, VOID, folder / "void.msh")
            _write_builder_msh(interfacial_void, VOID_AXI, folder / "void_axi.msh")
            _write_box_msh(folder / "box_y.msh", 1)
            _write_box_msh(folder / "box_z.msh", 2)
        finally:
            if initialised_here:
                gmsh.finalize()
        x, cells, tags = _triangles(folder / "void.msh")
        _write(folder / "void_um.vtu", x, cells, tags)
        _write(folder / "void_m.vtu", x * 1e-6, cells, tags)
        _write(folder / "void_m.xdmf", x * 1e-6, cells, tags)
        x, cells, tags = _triangles(folder / "void_axi.msh")
        _write(folder / "void_axi_m.vtu", x * 1e-6, cells, tags)
        _write(folder / "void_axi_left.vtu", x - [1.0, 0.0, 0.0], cells, tags)
        _write(folder / "void_axi_ring.vtu", x + [ANNULUS_INNER * 1e6, 0.0, 0.0], cells, tags)
        x, cells, tags = _triangles(folder / "void.msh")
        flipped = cells.copy()
        flipped[7] = flipped[7, ::-1]
        _write(folder / "flipped.vtu", x, flipped, tags)
        collapsed = cells.copy()
        collapsed[7, 2] = collapsed[7, 1]
        _write(folder / "collapsed.vtu", x, collapsed, tags)
        split = cells.copy()  # the Li cells on their own copy of the nodes: no shared interface
        split[tags == 1] += len(x)
        _write(folder / "split.vtu", np.vstack([x, x]), split, tags)
        _write(folder / "upside_down.vtu", x * np.array([1.0, -1.0, 1.0]), cells, tags)
        _write(folder / "quads.vtu", np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]]),
               np.array([[0, 1, 2, 3]]), np.array([1]), "quad")
        _write(folder / "untagged.vtu", x, cells, None)
        (folder / "garbage.vtu").write_text("not a mesh\n")
    comm.barrier()
    yield folder
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)


def from_file(path: Path, **extra) -> RunConfig:
    geometry = {"kind": "from_file", "path": str(path), "regions": REGIONS, **extra}
    return RunConfig.model_validate({"geometry": geometry})


def measures(md, axisymmetric: bool = False) -> dict[str, float]:
    """Cell count, region measures and facet measures (interface as an interior facet set);
    ``axisymmetric``: of the body of revolution (weighted by 2 pi r)."""
    msh = md.mesh
    out = {"cells": msh.topology.index_map(msh.topology.dim).size_global}
    out.update({n: tagged_measure(msh, md.cell_tags, "dx", t, axisymmetric)
                for n, t in CELL_TAGS.items()})
    out.update({n: tagged_measure(msh, md.facet_tags, "dS" if n == "interface" else "ds", t,
                                  axisymmetric)
                for n, t in FACET_TAGS.items()})
    out["interface_ion"] = tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds",
                                          FACET_TAGS["interface"], axisymmetric)
    return out


def assert_same(a: dict, b: dict) -> None:
    scale = max(abs(v) for v in a.values() if isinstance(v, float))
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-12, abs=1e-12 * scale), key


@pytest.mark.mpi
def test_planar_msh_matches_the_builder(files):
    reference = measures(generate(RunConfig.model_validate({"geometry": PLANAR})))
    config = from_file(files / "planar.msh", scale=1e-6)
    g = config.geometry
    assert g.dim == 2 and g.cell_data == "gmsh:physical" and not g.has_resolved_sei
    assert g.width == pytest.approx(PLANAR["width"], rel=1e-14)
    assert g.projected_area == pytest.approx(PLANAR["width"], rel=1e-14)
    assert 0.5e-6 < g.interface_mesh_size <= 1.01e-6
    assert g.subregions() == {} and g.crack_tips() == []
    got = measures(generate(config))
    assert_same(reference, got)
    assert got["side"] > 0 and got["interface"] == pytest.approx(PLANAR["width"], rel=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("name, scale", [("void.msh", 1e-6), ("void_um.vtu", 1e-6),
                                         ("void_m.vtu", 1.0), ("void_m.xdmf", 1.0)])
def test_void_formats_match_the_builder(files, name, scale):
    """Automatic facet tags (no facet elements in the .vtu/.xdmf files) equal the builder's:
    the void wall and the electrolyte face above it are off the bounding box (void_surface)."""
    reference = measures(generate(RunConfig.model_validate({"geometry": VOID})))
    got = measures(generate(from_file(files / name, scale=scale)))
    assert_same(reference, got)
    assert got["void_surface"] > VOID["void_half_width"]


@pytest.mark.mpi
def test_facet_tags_from_the_file(files):
    """Facet names given in ``boundaries`` come from the file's line elements; a name given
    there is never derived (the rest of the top boundary becomes void_surface)."""
    reference = measures(generate(RunConfig.model_validate({"geometry": VOID})))
    ids = {n: [FACET_TAGS[n]] for n in ("interface", "li_cc", "counter", "side",
                                        "void_surface")}
    assert_same(reference, measures(generate(from_file(files / "void.msh", scale=1e-6,
                                                       boundaries=ids))))
    cfg = from_file(files / "void.msh", scale=1e-6, boundaries={"counter": [FACET_TAGS["side"]]})
    got = measures(generate(cfg))
    assert got["counter"] == pytest.approx(reference["side"], rel=1e-12)
    assert got["side"] == 0.0
    assert got["void_surface"] == pytest.approx(reference["void_surface"] + reference["counter"],
                                                rel=1e-12)


@pytest.mark.mpi
def test_round_trip_of_an_exported_mesh(files):
    """``ecm-fem mesh`` export (.vtu in metres, cells and tagged facets in one 'tags' array)
    read back, with the facet tags from the file and derived: the builder's measures."""
    from ecm_fem.meshinfo import export

    md = generate(RunConfig.model_validate({"geometry": VOID}))
    reference = measures(md)
    export(md, files / "exported.vtu")
    MPI.COMM_WORLD.barrier()
    ids = {n: [FACET_TAGS[n]] for n in ("interface", "li_cc", "counter", "side",
                                        "void_surface")}
    for boundaries in ({}, ids):
        config = from_file(files / "exported.vtu", boundaries=boundaries)
        assert config.geometry.cell_data == "tags"
        assert_same(reference, measures(generate(config)))


@pytest.mark.mpi
@pytest.mark.parametrize("name, axis", [("box_y.msh", {}), ("box_z.msh", {"stacking_axis": "z"})])
def test_tetrahedral_stack(files, name, axis):
    """Stacked along y (the builders' convention, the default) or, with stacking_axis, z."""
    lx, ly, t_li, t_el = (v * 1e-6 for v in BOX)
    config = RunConfig.model_validate({"geometry": {
        "kind": "from_file", "path": str(files / name), "scale": 1e-6,
        "regions": {"li": [7], "electrolyte": [9]}, **axis}})
    g = config.geometry
    assert g.dim == 3 and g.projected_area == pytest.approx(lx * ly, rel=1e-14)
    assert g.width == pytest.approx(lx, rel=1e-14)
    got = measures(generate(config))
    expected = {"li": lx * ly * t_li, "electrolyte": lx * ly * t_el, "interface": lx * ly,
                "interface_ion": lx * ly, "li_cc": lx * ly, "counter": lx * ly,
                "side": 2 * (lx + ly) * (t_li + t_el), "void_surface": 0.0}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-30), key


@pytest.mark.mpi
@pytest.mark.parametrize("name, scale", [("void_axi.msh", 1e-6), ("void_axi_m.vtu", 1.0)])
def test_axisymmetric_void_matches_the_builder(files, name, scale):
    """The builder's axisymmetric void read back: the same cells, 2 pi r-weighted region and
    facet measures, projected area (the disc pi W^2) and Newton tolerance scale; the flat
    contact is the disc minus the void's mouth, pi (W^2 - a^2)."""
    builder = RunConfig.model_validate({"geometry": VOID_AXI})
    reference = measures(generate(builder), axisymmetric=True)
    config = from_file(files / name, scale=scale, axisymmetric=True)
    assert config.axisymmetric
    width, mouth = VOID["width"], VOID["void_half_width"]
    assert config.geometry.projected_area == pytest.approx(np.pi * width ** 2, rel=1e-14)
    assert config.tolerance_scale == pytest.approx(builder.tolerance_scale, rel=1e-14)
    got = measures(generate(config), axisymmetric=True)
    assert_same(reference, got)
    assert got["interface"] == pytest.approx(np.pi * (width ** 2 - mouth ** 2), rel=1e-12)


@pytest.mark.mpi
def test_axisymmetric_section_off_the_axis_is_an_annulus(files):
    """The void section shifted to ANNULUS_INNER < x: a hollow cylinder. Projected area, current
    collector and counter face are the annulus pi (R_out^2 - R_in^2); the void is now a ring
    groove on the inner mantle, so the contact is pi (R_out^2 - (R_in + a)^2)."""
    config = from_file(files / "void_axi_ring.vtu", scale=1e-6, axisymmetric=True)
    inner = ANNULUS_INNER
    outer = inner + VOID["width"]
    annulus = np.pi * (outer ** 2 - inner ** 2)
    assert config.geometry.width == pytest.approx(VOID["width"], rel=1e-12)
    assert config.geometry.projected_area == pytest.approx(annulus, rel=1e-12)
    got = measures(generate(config), axisymmetric=True)
    assert got["li_cc"] == pytest.approx(annulus, rel=1e-12)
    assert got["counter"] == pytest.approx(annulus, rel=1e-12)
    contact = np.pi * (outer ** 2 - (inner + VOID["void_half_width"]) ** 2)
    assert got["interface"] == pytest.approx(contact, rel=1e-12)
    height = VOID["li_thickness"] + VOID["electrolyte_thickness"]
    mantles = 2 * np.pi * outer * height + 2 * np.pi * inner * (height - VOID["void_depth"])
    assert got["side"] == pytest.approx(mantles, rel=1e-12)


def test_relative_path_is_relative_to_the_config_file(files, tmp_path):
    """tmp_path is per rank: each rank writes its own config."""
    relative = os.path.relpath(files / "void_um.vtu", tmp_path)
    text = (f"geometry: {{kind: from_file, path: {relative}, scale: 1.0e-6,\n"
            "           regions: {li: [1], electrolyte: [3]}}\n")
    (tmp_path / "rel.yaml").write_text(text)
    config = load_config(tmp_path / "rel.yaml")
    assert config.geometry.path == str((files / "void_um.vtu").resolve())
    assert config.geometry.cell_data == "cell_tags"
    again = config_from_text(dump_config(config))  # the dumped config runs from anywhere
    assert again.geometry.path == config.geometry.path
    with pytest.raises(ConfigError, match="geometry.path"):
        config_from_text(text)  # not from a file: relative to the working directory


@pytest.mark.mpi
@pytest.mark.parametrize("name, extra, key, message", [
    ("nothing.vtu", {}, "geometry.path", "not found"),
    ("garbage.vtu", {}, "geometry.path", "cannot read"),
    ("quads.vtu", {}, "geometry.path", "no triangle (2D) or tetra (3D) cells (found: quad)"),
    ("flipped.vtu", {}, "geometry.path", "1 inverted cell(s)"),
    ("collapsed.vtu", {}, "geometry.path", "1 degenerate cell(s)"),
    ("void_um.vtu", {"scale": 1.0}, "geometry.scale",
     "is the file in micrometres? set geometry.scale: 1e-6"),
    ("void_m.vtu", {"scale": 1e-6}, "geometry.scale", "in metres 1.0"),
    ("void_um.vtu", {"cell_data": "material"}, "geometry.cell_data",
     "no integer cell-data array 'material' (found: cell_tags)"),
    ("untagged.vtu", {}, "geometry.cell_data", "integer arrays found: none"),
    ("void_um.vtu", {"regions": {"li": [1], "electrolyte": [3, 8]}}, "geometry.regions",
     "electrolyte: tag value(s) 8 not in the file's 'cell_tags' cell data (found: 1 ("),
    ("void_um.vtu", {"regions": {"li": [1]}}, "geometry.regions", "needs li and at least one"),
    ("void_um.vtu", {"regions": {"li": [1], "sei": [3]}, "cell_data": "cell_tags"}, None, None),
    ("void_um.vtu", {"regions": {"li": [1], "gb": [2]}}, "geometry.regions", "not in the"),
    ("void_um.vtu", {"regions": {"li": [1, 3], "electrolyte": [3]}}, "geometry.regions",
     "tag value 3 is mapped to two regions (li, electrolyte)"),
    ("void.msh", {"regions": {"li": [1], "sei": [2]}}, "geometry.regions", "not in the"),
    ("void.msh", {"regions": {"electrolyte": [1, 3]}}, "geometry.regions", "needs li"),
    ("void.msh", {"boundaries": {"interface": [99]}}, "geometry.boundaries",
     "interface: tag value(s) 99 not on the file's facet elements"),
    ("void_um.vtu", {"boundaries": {"side": [14]}}, "geometry.boundaries",
     "no line elements tagged in 'cell_tags'"),
    ("split.vtu", {}, "geometry.regions.li", "no Li | electrolyte interface"),
    ("upside_down.vtu", {}, "geometry", "on the smallest y (li_cc) are on non-Li cells"),
    ("box_z.msh", {"regions": {"li": [7], "electrolyte": [9]}}, "geometry.stacking_axis",
     "on the smallest y (li_cc) are on non-Li cells: set geometry.stacking_axis"),
    ("void.msh", {"stacking_axis": "z"}, "geometry", "stacking_axis: z in a 2D mesh"),
    ("box_y.msh", {"regions": {"li": [7], "electrolyte": [9]}, "axisymmetric": True},
     "geometry.axisymmetric", "only for a 2D (triangle) mesh"),
    ("void_axi.msh", {"axisymmetric": True, "stacking_axis": "x"}, "geometry.axisymmetric",
     "needs stacking_axis: y, not x"),
    ("void_axi_left.vtu", {"axisymmetric": True}, "geometry.axisymmetric",
     "the axis of revolution is x = 0, but"),
])
def test_errors_name_the_key(files, name, extra, key, message):
    """Every rank raises the same ConfigError; nothing is collective in the validation."""
    geometry = {"kind": "from_file", "path": str(files / name), "scale": 1e-6,
                "regions": REGIONS, **extra}
    lines = "\n".join(f"  {k}: {v}" for k, v in geometry.items())
    text = f"geometry:\n{lines}\n"
    if key is None:  # a valid mapping of another region: sei
        assert config_from_text(text).geometry.has_resolved_sei
        return
    with pytest.raises(ConfigError) as err:
        config_from_text(text)
    assert key in str(err.value) and message in str(err.value), str(err.value)
    messages = MPI.COMM_WORLD.allgather(str(err.value))
    assert all(m == messages[0] for m in messages)


@pytest.mark.mpi
def test_unmapped_cells_are_listed(files):
    x, cells, tags = None, None, None
    if MPI.COMM_WORLD.rank == 0:
        x, cells, tags = _triangles(files / "void.msh")
        tags = tags.copy()
        tags[:5] = 42
        _write(files / "extra_tag.vtu", x, cells, tags)
    MPI.COMM_WORLD.barrier()
    with pytest.raises(ConfigError, match=r"geometry\.regions.*tag value\(s\) 42 are in no "
                       r"region; map every value \(found: 1 \(\d+ cells\), 3 \(\d+ cells\), "
                       r"42 \(5 cells\)\)"):
        config_from_text(f"geometry: {{kind: from_file, path: {files / 'extra_tag.vtu'}, "
                         "scale: 1.0e-6, regions: {li: [1], electrolyte: [3]}}")


@pytest.mark.mpi
def test_build_error_is_raised_on_every_rank(files):
    """A failure inside the gmsh stage (periodic sides cannot be matched on a file's mesh)
    is a RuntimeError on every rank, not a hang."""
    with pytest.raises(RuntimeError, match="from_file"):
        generate(from_file(files / "void.msh", scale=1e-6), match_sides=True)


@pytest.mark.mpi
def test_run_equals_the_builder_run(files, shared_tmp):
    """A quasi-static Butler-Volmer solve on the void geometry: the same V_we and currents
    from the builder's mesh and from its file."""
    common = {"control": {"current_density": -10.0},
              "kinetics": {"model": "butler_volmer", "i0": 51.0}}
    runs = {}
    for label, geometry in (("builder", VOID), ("file", {
            "kind": "from_file", "path": str(files / "void_m.vtu"), "regions": REGIONS})):
        config = RunConfig.model_validate({"name": label, "geometry": geometry, **common})
        runs[label] = simulation.run(config, shared_tmp / label)
    a, b = runs["builder"], runs["file"]
    assert a["cells"] == b["cells"]
    for key in ("V_we", "i_mean", "i_max", "focusing_factor", "contact_fraction"):
        assert b[key] == pytest.approx(a[key], rel=1e-10), key


@pytest.mark.mpi
def test_axisymmetric_run_equals_the_builder_run(files, shared_tmp):
    """The axisymmetric void under stack pressure with stress-coupled kinetics (elastic Li on
    LLZO with its growth band, one step): the same V_we, currents, contact and stresses from
    the builder's mesh and from its file. The band's width is given: its default, 3
    interface_mesh_size, is the nominal size in the builder but the mean interface edge of a
    file (a different band: V_we 1.8e-3 relative apart)."""
    common = {"materials": {"li": "lithium", "electrolyte": "llzo"},
              "control": {"current_density": -10.0},
              "kinetics": {"i0": 51.0, "stress_coupling": "normal_traction"},
              "mechanics": {"li_law": "elastic", "stack_pressure": 2e6, "sides": "symmetric",
                            "growth_band": 3 * VOID["interface_mesh_size"]},
              "time": {"t_end": 1.0, "dt": 1.0},
              "output": {"fields_every": 0, "checkpoint_every": 0}}
    runs = {}
    for label, geometry in (("builder", VOID_AXI), ("file", {
            "kind": "from_file", "path": str(files / "void_axi_m.vtu"), "regions": REGIONS,
            "axisymmetric": True})):
        config = RunConfig.model_validate({"name": label, "geometry": geometry, **common})
        runs[label] = simulation.run(config, shared_tmp / label)
    a, b = runs["builder"], runs["file"]
    assert a["cells"] == b["cells"] and a["steps"] == b["steps"] >= 1
    stresses = [k for k in a if k.startswith("max_")]
    assert "max_p_li" in stresses
    for key in ("V_we", "i_mean", "i_max", "focusing_factor", "contact_fraction", *stresses):
        assert b[key] == pytest.approx(a[key], rel=1e-10), key
