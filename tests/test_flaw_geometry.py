"""Electrolyte flaw (2D surface flaw in the electrolyte at the Li interface, the Porz geometry):
tags and measures against the analytic shape for a half flaw on the symmetry line and a whole
inclined one, Li-filled and empty; the tip's refinement and crack-tip data; config errors.

Analytic shape (w = flaw_opening, r = w / 2, L = flaw_depth, inclination theta): flaw area
w (L - r) + pi r^2 / 2, walls 2 (L - r) long together (they differ by 2 r tan(theta)), tip arc
pi r, mouth on y = 0 w / cos(theta) wide; a half flaw has half of each (one wall, L - r). The
straight pieces are exact to round-off. The tip's arcs are drawn by chords of at most
h = tip_mesh_size, each cutting off the segment r^2 (phi - sin phi) / 2 and the length
r (phi - 2 sin(phi / 2)) for its angle phi; both per unit angle grow with phi, so over an arc
of angle Theta the polygon misses at most Theta / phi_h times those, phi_h = 2 asin(h / 2r):
about Theta r h^2 / 12 of area and Theta h^2 / 24 of length, O(h^2). At the test sizes
(r = 0.2 um, h = 50 nm) gmsh puts 7 equal chords on each quarter arc, and the measured
deficits equal those of the 7-chord polygon (2.63e-16 m^2 and 6.59e-10 m per quarter arc,
relative 6e-6 of the Li area and 5e-5 of the interface); halving all sizes divides them by
3.4 and then 4.0.
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, L_LI, L_E = 10e-6, 4e-6, 12e-6
DEPTH, OPENING = 3e-6, 0.4e-6
VARIANTS = {
    "half_filled": {},
    "half_empty": {"filled": False},
    "inclined_filled": {"flaw_position": 5e-6, "inclination": 30.0},
    "inclined_empty": {"flaw_position": 5e-6, "inclination": -30.0, "filled": False},
}


def flaw_config(refine: float = 1.0, **flaw) -> RunConfig:
    return RunConfig.model_validate({"geometry": {
        "kind": "electrolyte_flaw", "width": W, "li_thickness": L_LI,
        "electrolyte_thickness": L_E, "mesh_size": 2e-6 / refine,
        "interface_mesh_size": 0.5e-6 / refine, "tip_mesh_size": 0.05e-6 / refine,
        "flaw_depth": DEPTH, "flaw_opening": OPENING, **flaw}})


def shape(g) -> dict[str, float]:
    """Analytic measures of the part of the flaw inside the cell, and the polygon bounds of
    the tip arcs (module docstring)."""
    r, share = g.flaw_opening / 2, 0.5 if g.flaw_position == 0 else 1.0
    phi = 2 * math.asin(g.tip_size / (2 * r))
    chords = share * math.pi / phi
    return {"area": share * (g.flaw_opening * (g.flaw_depth - r) + math.pi * r**2 / 2),
            "mouth": share * g.flaw_opening / math.cos(math.radians(g.inclination)),
            "walls": 2 * share * (g.flaw_depth - r), "arc": share * math.pi * r,
            "area_gap": chords * r**2 * (phi - math.sin(phi)) / 2,
            "arc_gap": chords * r * (phi - 2 * math.sin(phi / 2))}


def _count(tags, tag) -> int:
    return MPI.COMM_WORLD.allreduce(len(tags.find(tag)), op=MPI.SUM)


@pytest.fixture(scope="module")
def meshes():
    """The four variants, generated once (collectively) on first use."""
    made: dict = {}

    def get(name: str):
        if name not in made:
            config = flaw_config(**VARIANTS[name])
            made[name] = (config.geometry, generate(config))
        return made[name]

    return get


@pytest.mark.mpi
@pytest.mark.parametrize("name", list(VARIANTS))
def test_tags_and_measures_match_the_shape(meshes, name):
    """Every expected tag present with the analytic measure; the straight pieces exact, the
    tip arcs short by at most the polygon bound; tags that do not belong absent."""
    g, md = meshes(name)
    s, half = shape(g), g.flaw_position == 0
    expected = {"interface", "li_cc", "counter", "side"}
    if not g.filled:
        expected.add("crack_surface")
    for tag_name, tag in FACET_TAGS.items():
        assert (_count(md.facet_tags, tag) > 0) == (tag_name in expected), tag_name
    for tag_name, tag in CELL_TAGS.items():
        assert (_count(md.cell_tags, tag) > 0) == (tag_name in ("li", "electrolyte")), tag_name

    def parent(tag_name):
        return tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS[tag_name])

    def ion(tag_name):
        return tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS[tag_name])

    li = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"])
    el = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"])
    rel = 1e-12
    assert parent("li_cc") == pytest.approx(W, rel)
    assert ion("counter") == pytest.approx(W, rel)
    # on a half flaw, x = 0 inside an empty flaw is outside the mesh; Li in it is `side`
    side = 2 * (L_LI + L_E) - (g.flaw_depth if half and not g.filled else 0.0)
    assert parent("side") == pytest.approx(side, rel)
    area_gap = el - (W * L_E - s["area"])  # the polygon's missing area
    assert 0 < area_gap <= s["area_gap"] * (1 + 1e-6), (area_gap, s["area_gap"])
    walls_and_tip = s["walls"] + s["arc"]
    if g.filled:
        assert li + el == pytest.approx(W * (L_LI + L_E), rel)
        arc_gap = W - s["mouth"] + walls_and_tip - ion("interface")
    else:
        assert li == pytest.approx(W * L_LI, rel)
        assert ion("interface") == pytest.approx(W - s["mouth"], rel)
        # the electrolyte's walls and tip, and the Li face under the mouth
        arc_gap = walls_and_tip - ion("crack_surface")
        assert parent("crack_surface") == pytest.approx(
            walls_and_tip + s["mouth"] - arc_gap, rel)
    assert 0 < arc_gap <= s["arc_gap"] * (1 + 1e-6), (arc_gap, s["arc_gap"])


@pytest.mark.mpi
def test_tip_polygon_error_falls_under_refinement():
    """Halving every size (tip elements included) cuts the tip arcs' missing area and length by
    more than 3x (O(h^2); measured 3.4x and 4.0x: 7 -> 13 -> 26 chords per quarter arc)."""
    gaps = []
    for refine in (1, 2, 4):
        config = flaw_config(refine, **VARIANTS["inclined_filled"])
        md, s = generate(config), shape(config.geometry)
        el = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"])
        itf = tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
        gaps.append((el - (W * L_E - s["area"]),
                     W - s["mouth"] + s["walls"] + s["arc"] - itf))
    gaps = np.array(gaps)
    assert np.all(gaps > 0), gaps
    assert np.all(gaps[1:] < gaps[:-1] / 3), gaps


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["half_filled", "inclined_empty"])
def test_tip_is_a_vertex_and_refined(meshes, name):
    """The apex of the tip is a mesh vertex; the cells touching it are about tip_mesh_size and
    those within the flaw's length of the counter boundary are far larger."""
    g, md = meshes(name)
    msh = md.mesh
    tip = g.crack_tips()[0].position
    n_local = msh.topology.index_map(2).size_local
    cells = np.arange(n_local, dtype=np.int32)
    h = msh.h(2, cells)
    x = msh.geometry.x[msh.geometry.dofmap[:n_local]]  # (cells, vertices, 3)
    at_tip = np.any(np.hypot(x[:, :, 0] - tip[0], x[:, :, 1] - tip[1]) < 1e-12, axis=1)
    comm = msh.comm
    assert comm.allreduce(int(at_tip.sum()), op=MPI.SUM) >= 2
    h_tip = comm.allreduce(h[at_tip].max() if at_tip.any() else 0.0, op=MPI.MAX)
    assert h_tip < 2 * g.tip_size, (h_tip, g.tip_size)
    far = x[:, :, 1].mean(axis=1) > L_E - DEPTH
    h_far = comm.allreduce(h[far].min() if far.any() else np.inf, op=MPI.MIN)
    assert h_far > 10 * g.tip_size


@pytest.mark.mpi
def test_same_mesh_on_any_number_of_ranks():
    """gmsh runs on rank 0 of the communicator: the mesh distributed over all ranks has as many
    cells and the same interface as the one each rank builds alone."""
    config = flaw_config(**VARIANTS["inclined_filled"])
    shared, alone = generate(config, MPI.COMM_WORLD), generate(config, MPI.COMM_SELF)
    for md_a, md_b in [(shared, alone), (shared.ion, alone.ion)]:
        assert (md_a.mesh.topology.index_map(2).size_global
                == md_b.mesh.topology.index_map(2).size_global)
    lengths = [tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
               for md in (shared, alone)]
    assert lengths[0] == pytest.approx(lengths[1], rel=1e-12)


def test_crack_tips():
    """Apex and unit axis of the flaw (metres), and its K_I ring: r_out a quarter of the
    depth, r_in the opening; geometries without cracks have none."""
    half = flaw_config().geometry
    assert half.crack_tips() == [("flaw", (0.0, DEPTH), (0.0, 1.0), True, OPENING, DEPTH / 4,
                                  "geometry.flaw_opening")]
    (name, tip, axis, filled, *_), = flaw_config(
        **VARIANTS["inclined_filled"]).geometry.crack_tips()
    assert name == "flaw" and filled
    assert tip == pytest.approx((5e-6 + DEPTH / 2, DEPTH * math.sqrt(3) / 2), rel=1e-12)
    assert axis == pytest.approx((0.5, math.sqrt(3) / 2), rel=1e-12)
    (_, tip, axis, filled, *_), = flaw_config(
        **VARIANTS["inclined_empty"]).geometry.crack_tips()
    assert not filled and axis[0] == pytest.approx(-0.5)
    assert tip[0] == pytest.approx(5e-6 - DEPTH / 2, rel=1e-12)
    for kind in ("planar", "interfacial_void", "li_protrusion"):
        assert RunConfig.model_validate({"geometry": {"kind": kind}}).geometry.crack_tips() == []


@pytest.mark.parametrize(("extra", "message"), [
    ("  electrolyte_thickness: 3.0e-6\n  mesh_size: 1.0e-6\n",
     r"flaw_depth = 3e-06 m must be at most 0.8 electrolyte_thickness = 2.4e-06 m"),
    ("  flaw_opening: 2.0e-6\n", r"flaw_opening = 2e-06 m must be at most half of flaw_depth"),
    ("  flaw_position: 1.99e-5\n", r"flaw_position = 1.99e-05 m: the flaw spans x = "),
    ("  flaw_position: 1.8e-5\n  inclination: 45\n",
     r"flaw_position = 1.8e-05 m: the flaw spans .* \(with flaw_depth and inclination\)"),
    ("  flaw_position: 1.0e-7\n", r"flaw_position = 1e-07 m: the flaw spans x = 0 \.\. "),
    ("  inclination: 10\n", r"inclination = 10 deg needs flaw_position > 0"),
    ("  sei_thickness: 1.0e-8\n",
     "sei_thickness: a resolved SEI is not supported with an electrolyte flaw"),
    ("  tip_mesh_size: 2.0e-6\n", "tip_mesh_size = 2e-06 m must not exceed interface_mesh_size"),
    ("  tip_mesh_size: 1.0e-7\n",
     r"tip_mesh_size: the tip elements \(1e-07 m\) must be at most flaw_opening / 4 = 5e-08 m"),
], ids=["depth", "opening", "outside", "inclined_outside", "left_side", "inclination", "sei",
        "tip_vs_interface", "tip_vs_opening"])
def test_flaw_config_errors_name_the_key(extra, message):
    """Cross-field checks run while the config is parsed, before any mesh is made."""
    with pytest.raises(ConfigError, match=r"geometry \(line 1\): " + message):
        config_from_text("geometry:\n  kind: electrolyte_flaw\n" + extra)


def test_flaw_field_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"geometry.inclination \(line 4\): .*less than or "
                       "equal to 60"):
        config_from_text("geometry:\n  kind: electrolyte_flaw\n  flaw_position: 1.0e-5\n"
                         "  inclination: 70\n")
    with pytest.raises(ConfigError, match=r"unknown geometry kind \(known: .*electrolyte_flaw"):
        config_from_text("geometry:\n  kind: notch\n")
