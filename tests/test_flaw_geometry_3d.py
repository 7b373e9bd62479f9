"""Electrolyte flaw in 3D (electrolyte_flaw, dim: 3): the 2D flaw section swept along z from the
symmetry plane z = 0, through the whole depth (a prism) or as a slot of length flaw_length with a
rounded end; a half flaw on x = 0 and a whole inclined one, Li-filled and empty. Tags and
measures against the analytic shape, the refined tip line, rank independence, config errors and
the current distribution on a Li-filled slot.

Analytic shape (w = flaw_opening, r = w / 2, L = flaw_depth, l = flaw_length, inclination theta,
cell depth D; a half flaw on x = 0 has half of every flaw quantity). The 2D section has the area
A2 = w (L - r) + pi r^2 / 2 and the perimeter inside the electrolyte P2 = 2 (L - r) + pi r (both
independent of theta: tilting shifts as much of the walls below y = 0 as above). A through flaw
is a prism of length D: volume A2 D, walls and tip P2 D, mouth on y = 0 w D / cos(theta). A slot
is the prism of length l - r plus its end, the half section revolved by 180 degrees about the
axis: a half cylinder pi r^2 (L - r) / 2 (walls pi r (L - r)) and a quarter sphere pi r^3 / 3
(area pi r^2) (the oblique cut at y = 0 removes as much on one side of the axis as it adds on
the other); its mouth ends in half of the ellipse r / cos(theta) by r, (w (l - r) + pi r^2 / 2)
/ cos(theta) in all. In the flaw's mid-plane the slot's outline is the rectangle L x l with the
corner at the tip rounded to radius r: L l - (1 - pi / 4) r^2.

Exact (flat faces with straight edges, to round-off): li_cc and counter W D; the sides
2 (W + D)(L_li + L_e) with a filled flaw (its Li on the symmetry planes is `side`); the Li volume
W D L_li with an empty flaw; the flat interface W D - mouth of a through flaw.

Discretisation. Tetrahedra with their nodes on the curved faces (the tip, the slot's end) lie
inside the convex flaw, so the flaw's volume comes out low, and so does its surface (its
facets are chords of the curved faces): a face of area A and
radius r meshed at the size s misses about A s^2 / (12 r) of volume and A s^2 / (24 r^2) of area
(the 2D chord-polygon deficits per unit length, h^2 / (12 r) and h^2 / (24 r^2) per unit arc).
The builder's sizes are tip_mesh_size on the rim and grow by 1/8 of the distance from it, so
across the curved faces (up to r sqrt 2 from the rim) s = tip_mesh_size + r / 8 is typical.
Likewise a flat face whose outline follows an arc of angle Theta (the mouth of a slot, a
symmetry plane through an empty flaw) is off by the chord polygon's Theta s^2 / 12. Measured,
each deficit is 0.55 to 0.8 of these models (asserted: between 0.4 and 1 of them); halving
tip_mesh_size and interface_mesh_size cuts the volume and surface errors by 2.75x to 2.9x, as
the model's (s1 / s2)^2 = 2.8 predicts for these s (asserted: more than 2.5x).
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure
from dolfinx import mesh as dmesh

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, D, L_LI, L_E = 3e-6, 2.5e-6, 1e-6, 4e-6  # m; W != D so that x and z cannot be mixed up
DEPTH, OPENING, LENGTH = 1.5e-6, 0.4e-6, 1.5e-6
VARIANTS = {
    "half_through_filled": {},
    "half_slot_empty": {"flaw_length": LENGTH, "filled": False},
    "inclined_slot_filled": {"flaw_position": 1.2e-6, "inclination": 20.0,
                             "flaw_length": LENGTH},
    "inclined_through_empty": {"flaw_position": 1.2e-6, "inclination": -20.0,
                               "filled": False},
}
I_APP = -10.0  # A/m^2, plating


def geometry(refine: float = 1.0, **flaw) -> dict:
    return {"kind": "electrolyte_flaw", "dim": 3, "width": W, "depth": D, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "mesh_size": 1e-6,
            "interface_mesh_size": 0.5e-6 / refine, "tip_mesh_size": 0.1e-6 / refine,
            "flaw_depth": DEPTH, "flaw_opening": OPENING, **flaw}


def flaw_config(refine: float = 1.0, **flaw) -> RunConfig:
    return RunConfig.model_validate({"geometry": geometry(refine, **flaw)})


def shape(g) -> dict[str, float]:
    """Analytic measures of the part of the flaw inside the cell (module docstring), and the
    faceting models of its curved faces and arcs at s = tip_size + r / 8."""
    w, L, theta = g.flaw_opening, g.flaw_depth, math.radians(g.inclination)
    r, half = w / 2, g.flaw_position == 0
    share = 0.5 if half else 1.0
    a2, p2 = w * (L - r) + math.pi * r**2 / 2, 2 * (L - r) + math.pi * r
    if g.flaw_length is None:
        straight, end_volume, end_surface, end_mouth = D, 0.0, 0.0, 0.0
        on_faces = 2  # the flaw's section lies on z = 0 and z = D
        mid_plane, mid_plane_arc = L * D, 0.0
    else:
        length = g.flaw_length
        straight = length - r
        end_volume = math.pi * r**2 * (L - r) / 2 + math.pi * r**3 / 3
        end_surface = math.pi * r * (L - r) + math.pi * r**2
        end_mouth = math.pi * r**2 / 2
        on_faces = 1  # on z = 0
        mid_plane, mid_plane_arc = L * length - (1 - math.pi / 4) * r**2, math.pi / 2
    curved = math.pi * r * straight + end_surface
    s = g.tip_size + r / 8
    return {"volume": share * (a2 * straight + end_volume),
            "surface": share * (p2 * straight + end_surface),
            "mouth": share * (w * straight + end_mouth) / math.cos(theta),
            # the flaw's sections on the faces of the cell (the mid-plane is x = 0 for a half)
            "sections": on_faces * share * a2 + (mid_plane if half else 0.0),
            "volume_gap": share * curved * s**2 / (12 * r),
            "surface_gap": share * curved * s**2 / (24 * r**2),
            "mouth_gap": 0.0 if g.flaw_length is None else share * math.pi * s**2 / 12,
            # the tip's arcs on those sections (pi for a whole tip) and the slot's corner
            "sections_gap": (on_faces * share * math.pi + (mid_plane_arc if half else 0.0))
            * s**2 / 12}


def _count(tags, tag) -> int:
    return MPI.COMM_WORLD.allreduce(len(tags.find(tag)), op=MPI.SUM)


def _split_by_height(msh, tags, tag) -> tuple[float, float]:
    """Areas of the facets tagged ``tag`` of ``msh`` above y = 0 (on the flaw) and on y = 0."""
    facets = tags.indices[tags.values == tag]
    y = dmesh.compute_midpoints(msh, 2, facets)[:, 1]
    parts = dmesh.meshtags(msh, 2, facets, np.where(y > 1e-3 * OPENING, 1, 2).astype(np.int32))
    return tagged_measure(msh, parts, "ds", 1), tagged_measure(msh, parts, "ds", 2)


def measures(g, md) -> dict[str, float]:
    """Meshed volumes and areas: the regions, the outer faces, and the flaw's volume, surface
    (walls, tip, end) and the flat interface."""
    out = {name: tagged_measure(md.mesh, md.cell_tags, "dx", tag)
           for name, tag in CELL_TAGS.items()}
    for name, tag in FACET_TAGS.items():
        out[name] = (tagged_measure(md.mesh, md.facet_tags, "ds", tag)
                     + tagged_measure(md.mesh, md.facet_tags, "dS", tag))
    ion, tags = md.ion.mesh, md.ion.facet_tags
    if g.filled:
        out["flaw_volume"] = out["li"] - W * D * L_LI
        out["flaw_surface"], out["flat"] = _split_by_height(ion, tags, FACET_TAGS["interface"])
    else:
        out["flaw_volume"] = W * D * L_E - out["electrolyte"]
        out["flaw_surface"] = tagged_measure(ion, tags, "ds", FACET_TAGS["crack_surface"])
        out["flat"] = tagged_measure(ion, tags, "ds", FACET_TAGS["interface"])
    return out


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
    """Every expected tag present with a non-zero measure and the others absent; the flat
    faces exact; the flaw's volume and surface, a slot's mouth and an empty flaw's sections on
    the symmetry planes short by less than the faceting models (module docstring)."""
    g, md = meshes(name)
    assert md.mesh.geometry.dim == 3 and md.mesh.topology.dim == 3
    s, m = shape(g), measures(g, md)
    expected = {"interface", "li_cc", "counter", "side"}
    if not g.filled:
        expected.add("crack_surface")
    for tag_name, tag in FACET_TAGS.items():
        present = _count(md.facet_tags, tag) > 0
        assert present == (tag_name in expected), tag_name
        assert (m[tag_name] > 0) == present, tag_name
    for tag_name, tag in CELL_TAGS.items():
        present = _count(md.cell_tags, tag) > 0
        assert present == (tag_name in ("li", "electrolyte")), tag_name
        assert (m[tag_name] > 0) == present, tag_name

    rel = 1e-12
    assert m["li_cc"] == pytest.approx(W * D, rel)
    assert m["counter"] == pytest.approx(W * D, rel)
    sides = 2 * (W + D) * (L_LI + L_E)
    if g.filled:
        assert m["li"] + m["electrolyte"] == pytest.approx(W * D * (L_LI + L_E), rel)
        assert m["side"] == pytest.approx(sides, rel)
        assert m["interface"] == pytest.approx(m["flat"] + m["flaw_surface"], rel)
    else:
        assert m["li"] == pytest.approx(W * D * L_LI, rel)
        # the electrolyte's walls, tip and end, and the Li face under the mouth
        assert m["crack_surface"] == pytest.approx(m["flaw_surface"] + W * D - m["flat"], rel)
        sections_gap = m["side"] - (sides - s["sections"])  # the missing flaw sections
        assert 0 < sections_gap <= s["sections_gap"], (sections_gap, s["sections_gap"])
        assert sections_gap > 0.4 * s["sections_gap"], (sections_gap, s["sections_gap"])
    mouth_gap = m["flat"] - (W * D - s["mouth"])  # the mouth is short by its chords
    if g.flaw_length is None:
        assert m["flat"] == pytest.approx(W * D - s["mouth"], rel)
    else:
        assert 0.4 * s["mouth_gap"] < mouth_gap <= s["mouth_gap"], (mouth_gap, s["mouth_gap"])
    for key in ("volume", "surface"):
        gap = s[key] - m[f"flaw_{key}"]
        assert 0.4 * s[f"{key}_gap"] < gap <= s[f"{key}_gap"], (key, gap, s[f"{key}_gap"])


@pytest.mark.mpi
def test_faceting_error_falls_under_refinement(meshes):
    """Halving tip_mesh_size and interface_mesh_size cuts the flaw's volume and surface errors
    by more than 2.5x (measured on the inclined slot: 9.02e-3 -> 3.20e-3 and 4.34e-3 ->
    1.58e-3 relative, 2.8x and 2.75x; 19319 -> 48121 cells), the slot's mouth by more than
    2x (4.5e-4 -> 1.7e-4 of the flat interface)."""
    g, md = meshes("inclined_slot_filled")
    fine_config = flaw_config(2.0, **VARIANTS["inclined_slot_filled"])
    fine_g, fine_md = fine_config.geometry, generate(fine_config)
    errors = []
    for geometry, mesh_data in ((g, md), (fine_g, fine_md)):
        s, m = shape(geometry), measures(geometry, mesh_data)
        errors.append(np.array([1 - m["flaw_volume"] / s["volume"],
                                1 - m["flaw_surface"] / s["surface"],
                                m["flat"] / (W * D - s["mouth"]) - 1]))
    coarse, fine = errors
    assert np.all(fine > 0), errors
    assert np.all(coarse[:2] > 2.5 * fine[:2]) and coarse[2] > 2 * fine[2], errors
    assert np.all(coarse < 1e-2), coarse


def _rim_distance(g, points: np.ndarray) -> np.ndarray:
    """Distance [m] of ``points`` (n, 3) from the flaw's rim (module docstring of the builder):
    the curve at r from the rectangle (axis <= L - r) x (z <= l - r) in the mid-plane."""
    dx, dy = g.flaw_axis()
    r = g.flaw_opening / 2
    x, y, z = points[:, 0] - g.flaw_position, points[:, 1], points[:, 2]
    along, across = x * dx + y * dy, x * dy - y * dx
    beyond_end = 0.0 if g.flaw_length is None else np.maximum(z - (g.flaw_length - r), 0.0)
    in_plane = np.hypot(np.maximum(along - (g.flaw_depth - r), 0.0), beyond_end) - r
    return np.hypot(across, in_plane)


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["half_through_filled", "inclined_slot_filled"])
def test_tip_line_is_meshed_finely(meshes, name):
    """The tip line (the apex of the 2D tip swept along z) is a chain of mesh edges from z = 0
    to its end (D through, l - r for a slot) with nodes at most 1.5 tip_mesh_size apart. The
    cells touching the rim have longest edges of 1.4 to 1.75 tip_mesh_size on average (at most
    2.4), those within 1 um of the counter 5.4 to 5.9 (asserted: below 2 and 3, above 4).
    crack_tips() is empty in 3D."""
    g, md = meshes(name)
    msh = md.mesh
    x = msh.geometry.x
    n_owned = msh.geometry.index_map().size_local
    x_tip, y_tip = g.apex()
    on_line = np.hypot(x[:, 0] - x_tip, x[:, 1] - y_tip) < 1e-9 * W
    z_line = np.sort(np.concatenate(msh.comm.allgather(
        x[:n_owned][on_line[:n_owned], 2])))
    end = D if g.flaw_length is None else g.flaw_length - g.flaw_opening / 2
    assert z_line[0] == pytest.approx(0.0, abs=1e-12) and z_line[-1] == pytest.approx(end)
    assert np.diff(z_line).max() < 1.5 * g.tip_size, np.diff(z_line).max()

    n_cells = msh.topology.index_map(3).size_local
    h = msh.h(3, np.arange(n_cells, dtype=np.int32))  # longest edges
    corners = x[msh.geometry.dofmap[:n_cells]]  # (cells, 4, 3)
    at_rim = np.any(_rim_distance(g, corners.reshape(-1, 3)).reshape(-1, 4) < 1e-9 * W, axis=1)
    far = corners[:, :, 1].mean(axis=1) > L_E - 1e-6
    comm = msh.comm

    def mean(values):
        return comm.allreduce(values.sum(), op=MPI.SUM) / comm.allreduce(len(values), op=MPI.SUM)

    assert comm.allreduce(int(at_rim.sum()), op=MPI.SUM) > 100
    h_rim_max = comm.allreduce(h[at_rim].max() if at_rim.any() else 0.0, op=MPI.MAX)
    assert mean(h[at_rim]) < 2 * g.tip_size and h_rim_max < 3 * g.tip_size
    assert mean(h[far]) > 4 * g.tip_size
    assert g.crack_tips() == []


@pytest.mark.mpi
def test_same_mesh_on_one_two_and_three_ranks():
    """gmsh runs on rank 0 of the communicator and the mesh is distributed: the same global
    cell count (19319 tetrahedra with this gmsh for the inclined slot), flaw volume and
    interface area on 1 rank, on all ranks of the run and, under mpirun -n 3, on a
    communicator of 2 of them (so one run under -n 3 compares 1, 2 and 3 ranks)."""
    world = MPI.COMM_WORLD
    config = flaw_config(**VARIANTS["inclined_slot_filled"])
    comms = [MPI.COMM_SELF, world]
    if world.size == 3:
        comms.append(world.Split(0 if world.rank < 2 else 1, world.rank))
    results = []
    for comm in comms:
        md = generate(config, comm)
        m = measures(config.geometry, md)
        results.append((comm.size, md.mesh.topology.index_map(3).size_global,
                        m["flaw_volume"], m["interface"]))
    cells = {n for _, n, *_ in results}
    assert len(cells) == 1, results
    for _, _, volume, interface in results[1:]:
        assert volume == pytest.approx(results[0][2], rel=1e-10)
        assert interface == pytest.approx(results[0][3], rel=1e-12)
    gathered = world.allgather([(size, n) for size, n, *_ in results])
    sizes = {size for row in gathered for size, _ in row}
    assert sizes == ({1, 2, 3} if world.size == 3 else {1, world.size})
    assert {n for row in gathered for _, n in row} == cells
    if len(comms) == 3:
        comms[2].Free()


@pytest.mark.mpi
def test_li_filled_slot_conserves_charge_and_focuses_current(shared_tmp):
    """Butler-Volmer Li | LLZO, plating at 10 A/m^2 into the half slot on x = 0, Li-filled:
    the interface (flat part and the flaw's walls, tip and end) carries the applied charge,
    int i_n dA = i_app W D to the solver tolerance; its area is the analytic one to the
    faceting error (measured 1.0e-3 low); the current crowds on the flaw's rim, so the largest
    |i_n| lies there and exceeds the mean. Measured (11783 cells): focusing factor
    i_max / i_mean 1.073, the peak at the tip line's end (0, L, l - r), where it meets the
    rounded corner, 1.067 times the mean |i_n| of the flat interface far from the flaw
    (asserted: above 1.04 and 1.03). The Wagner number kappa / (i0 f r) is about 100 for this
    0.2 um tip radius, so the kinetics keep the focusing mild."""
    config = RunConfig.model_validate({"geometry": geometry(flaw_length=LENGTH),
                                       "control": {"current_density": I_APP}})
    g = config.geometry
    s = shape(g)
    summary = simulation.run(config, shared_tmp / "slot")
    assert summary["i_mean"] * summary["contact_fraction"] == pytest.approx(I_APP, rel=1e-5)
    contact = (W * D - s["mouth"] + s["surface"]) / (W * D)
    assert summary["contact_fraction"] == pytest.approx(contact, rel=2e-3)
    assert summary["focusing_factor"] > 1.04, summary
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(shared_tmp / "slot" / "interface.csv", delimiter=",", names=True)
    table = table[table["time"] == table["time"].max()]
    points = np.column_stack([table["x"], table["y"], table["z"]])
    i_n = table["i_n"]
    peak = np.argmax(np.abs(i_n))
    assert _rim_distance(g, points[peak:peak + 1])[0] < 1e-9 * W, points[peak]
    assert i_n[peak] == pytest.approx(summary["i_max"], rel=1e-12)
    on_y0 = np.abs(points[:, 1]) < 1e-9 * W
    far = on_y0 & (points[:, 0] > W - 1e-6) & (points[:, 2] > D - 1e-6)  # 1.8 um from the slot
    assert far.sum() >= 4
    assert i_n[peak] < i_n[far].mean() < 0  # plating everywhere, most on the rim
    assert i_n[peak] / i_n[far].mean() > 1.03


@pytest.mark.parametrize(("geometry_text", "message"), [
    ("{kind: electrolyte_flaw, dim: 3, depth: 4.0e-6, flaw_length: 3.9e-6}",
     r"geometry \(line 1\): flaw_length = 3.9e-06 m must be at most depth - flaw_opening = "
     r"3.8e-06 m"),
    ("{kind: electrolyte_flaw, dim: 3, width: 5.0e-6, flaw_length: 5.0e-6}",  # depth = width
     r"geometry \(line 1\): flaw_length = 5e-06 m must be at most depth - flaw_opening"),
    ("{kind: electrolyte_flaw, dim: 3, flaw_length: 1.0e-7}",
     r"geometry \(line 1\): flaw_length = 1e-07 m must be at least flaw_opening = 2e-07 m"),
    ("{kind: electrolyte_flaw, flaw_length: 5.0e-6}",
     r"geometry \(line 1\): flaw_length: only for dim: 3"),
    ("{kind: electrolyte_flaw, dim: 3, flaw_length: -5.0e-6}",
     r"geometry.flaw_length \(line 1\): .*greater than 0"),
    ("{kind: electrolyte_flaw, dim: 3, flaw_opening: -2.0e-7}",
     r"geometry.flaw_opening \(line 1\): .*greater than 0"),
    ("{kind: electrolyte_flaw, dim: 3, electrolyte_thickness: 3.0e-6, mesh_size: 1.0e-6}",
     r"geometry \(line 1\): flaw_depth = 3e-06 m must be at most 0.8 electrolyte_thickness"),
    ("{kind: electrolyte_flaw, dim: 3, width: 1.0e-5, flaw_position: 9.9e-6}",
     r"geometry \(line 1\): flaw_position = 9.9e-06 m: the flaw spans x = "),
    ("{kind: electrolyte_flaw, dim: 3, tip_mesh_size: 1.0e-7}",
     r"geometry \(line 1\): tip_mesh_size: the tip elements \(1e-07 m\) must be at most "
     r"flaw_opening / 4 = 5e-08 m"),
], ids=["beyond_depth", "beyond_default_depth", "shorter_than_opening", "in_2d", "negative",
        "negative_opening", "deeper_than_electrolyte", "outside_width", "coarse_tip"])
def test_bad_3d_flaws_name_the_key(geometry_text, message):
    """Checked while the config is parsed, before gmsh runs."""
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry: {geometry_text}\n")


def test_3d_flaw_config_passes_with_mechanics():
    """The defaults pass in 3D (a flaw through the whole depth; the 3D default tip size
    flaw_opening / 4) and have no crack tips; a mechanics section is accepted."""
    g = config_from_text("geometry: {kind: electrolyte_flaw, dim: 3}\n").geometry
    assert g.flaw_length is None and g.cell_depth == g.width
    assert g.tip_size == pytest.approx(g.flaw_opening / 4) and g.crack_tips() == []
    assert config_from_text("geometry: {kind: electrolyte_flaw, dim: 3}\nmechanics: {}\n"
                            ).mechanics is not None
