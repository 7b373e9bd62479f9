"""Li protrusion in 3D (li_protrusion, dim: 3): a quarter of a half-spheroid of Li at the corner
x = z = 0 of the box, the sides x = 0 and z = 0 being symmetry planes.

References. The boss has semi-axes b (along x and z) and h (along +y); a quarter of the half
spheroid has the volume pi b^2 h / 6, added to the Li box W L_li D and cut from the electrolyte
box W L_e D. The interface is the flat part W D - pi b^2 / 4 plus the dome, an eighth of the
full spheroid's surface area (closed forms for the prolate and the oblate spheroid in
``spheroid_area``). The outer faces are flat, so their areas are exact to rounding.

Discretisation. Straight-sided tetrahedra with their nodes on the dome: the faceted dome lies
inside the true one, so the Li volume and the dome's area come out low and the flat part's area
high (its rim is a polygon inscribed in the quarter circle), each by O(s^2) in the element size s
on the dome. Elements there are min(interface_mesh_size, tip_mesh_size + d/8) at a distance d
from the tip (the builders' size grading), so the error falls a little slower than s^2 while the
dome is only a few elements across. Measured relative errors for interface_mesh_size
0.5 um -> 0.25 um (mesh_size 2 um -> 1 um, b = 2 um, h = 3 um; b = 3 um, h = 1.5 um) are in
``test_quarter_half_spheroid_converges_to_the_closed_forms``.
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

W, D, L_LI, L_E = 8e-6, 6e-6, 3e-6, 12e-6  # m; W != D so that x and z cannot be mixed up
SHAPES = {"prolate": (2e-6, 3e-6), "oblate": (3e-6, 1.5e-6)}  # (b, h) [m]
I_APP = -10.0  # A/m^2, plating


def geometry(b: float, h: float, h_if: float, h_max: float, **over) -> dict:
    return {"kind": "li_protrusion", "dim": 3, "width": W, "depth": D, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "protrusion_half_width": b, "protrusion_height": h,
            "mesh_size": h_max, "interface_mesh_size": h_if, **over}


def spheroid_area(b: float, h: float) -> float:
    """Surface area [m^2] of the spheroid with semi-axes b, b (equator) and h (polar axis):
    prolate (h > b) 2 pi b^2 (1 + h / (b e) asin e), e^2 = 1 - b^2/h^2; oblate (h < b)
    2 pi b^2 (1 + (1 - e^2) / e atanh e), e^2 = 1 - h^2/b^2; 4 pi b^2 for the sphere."""
    if math.isclose(b, h):
        return 4 * math.pi * b**2
    if h > b:
        e = math.sqrt(1 - (b / h) ** 2)
        return 2 * math.pi * b**2 * (1 + h / (b * e) * math.asin(e))
    e = math.sqrt(1 - (h / b) ** 2)
    return 2 * math.pi * b**2 * (1 + (1 - e**2) / e * math.atanh(e))


def depolarisation_factor(b: float, h: float) -> float:
    """N_y of the prolate spheroid (h > b) along its axis, (1 - e^2) / e^3 (atanh e - e) with
    e^2 = 1 - b^2/h^2: a conducting spheroid in a uniform field along y has 1 / N_y times that
    field at its poles."""
    e = math.sqrt(1 - (b / h) ** 2)
    return (1 - e**2) / e**3 * (math.atanh(e) - e)


def exact(b: float, h: float) -> dict[str, float]:
    boss = math.pi * b**2 * h / 6  # a quarter of the half spheroid
    dome, flat = spheroid_area(b, h) / 8, W * D - math.pi * b**2 / 4
    return {"li": W * D * L_LI + boss, "electrolyte": W * D * L_E - boss,
            "interface": flat + dome, "dome": dome, "flat": flat}


def measures(md) -> dict[str, float]:
    """Global volumes of the regions, areas of the facet tags, and the interface split into the
    dome (facet midpoints above y = 0) and the flat part."""
    out = {n: tagged_measure(md.mesh, md.cell_tags, "dx", t) for n, t in CELL_TAGS.items()}
    for name, tag in FACET_TAGS.items():
        out[name] = (tagged_measure(md.mesh, md.facet_tags, "ds", tag)
                     + tagged_measure(md.mesh, md.facet_tags, "dS", tag))
    ft = md.facet_tags
    facets = ft.indices[ft.values == FACET_TAGS["interface"]]
    y = dmesh.compute_midpoints(md.mesh, 2, facets)[:, 1]
    parts = dmesh.meshtags(md.mesh, 2, facets, np.where(y > 1e-3 * W, 1, 2).astype(np.int32))
    out["dome"] = tagged_measure(md.mesh, parts, "dS", 1)
    out["flat"] = tagged_measure(md.mesh, parts, "dS", 2)
    return out


@pytest.mark.mpi
@pytest.mark.parametrize("shape", SHAPES)
def test_quarter_half_spheroid_converges_to_the_closed_forms(shape):
    """Every tag of the family present with its measure (li, electrolyte; interface, li_cc,
    counter, side), none other; li_cc and counter W D and the sides 2 (W + D)(L_li + L_e) to
    1e-12. Relative errors (Li volume, electrolyte volume, interface, dome, flat part), measured
    at interface_mesh_size 0.5 um and 0.25 um:
    prolate b = 2, h = 3 um: 4.0e-4, 1.1e-4, 2.6e-4, 4.7e-3, 5.9e-4 -> 1.6e-4, 4.1e-5, 1.6e-4,
    1.9e-3, 1.7e-4; oblate b = 3, h = 1.5 um: 5.9e-4, 1.6e-4, 9.1e-4, 7.7e-3, 7.1e-4 ->
    2.0e-4, 5.2e-5, 3.1e-4, 2.4e-3, 2.0e-4 (2.5x to 3.6x smaller; the dome low and the flat
    part high, so their errors partly cancel in the interface, which falls by 1.6x and 3.0x).
    At 1 um the errors are 1.2-1.5x those at 0.5 um only: the dome is then inside the tip's
    graded zone. Asserted: below 1.5e-3 (volumes, interface) and 1e-2 (dome, flat part) at
    0.5 um, each more than halved under the refinement, the interface by more than 1.4x.
    """
    b, h = SHAPES[shape]
    ref = exact(b, h)
    errors = []
    for h_if, h_max in ((0.5e-6, 2e-6), (0.25e-6, 1e-6)):
        md = generate(RunConfig.model_validate({"geometry": geometry(b, h, h_if, h_max)}))
        assert md.mesh.geometry.dim == 3 and md.mesh.topology.dim == 3
        m = measures(md)
        for name in ("sei", "gb"):
            assert m[name] == 0.0, name
        for name in ("sei_electrolyte", "gb_boundary", "void_surface", "crack_surface"):
            assert m[name] == 0.0, name
        assert m["li_cc"] == pytest.approx(W * D, rel=1e-12)
        assert m["counter"] == pytest.approx(W * D, rel=1e-12)
        assert m["side"] == pytest.approx(2 * (W + D) * (L_LI + L_E), rel=1e-12)
        assert m["dome"] + m["flat"] == pytest.approx(m["interface"], rel=1e-12)
        assert m["dome"] < ref["dome"] and m["flat"] > ref["flat"]  # inscribed facets
        assert m["li"] + m["electrolyte"] == pytest.approx(W * D * (L_LI + L_E), rel=1e-12)
        errors.append(np.array([abs(m[k] / ref[k] - 1) for k in
                                ("li", "electrolyte", "interface", "dome", "flat")]))
    coarse, fine = errors
    assert np.all(coarse[:3] < 1.5e-3) and np.all(coarse[3:] < 1e-2), coarse
    assert np.all(fine[[0, 1, 3, 4]] < coarse[[0, 1, 3, 4]] / 2), errors
    assert fine[2] < coarse[2] / 1.4, errors


@pytest.mark.mpi
def test_curved_elements_follow_the_spheroid():
    """Quadratic geometry (discretisation.phi_degree 2, geometry_order 2 by default): gmsh puts
    the edge midpoints on the CAD dome, so the faceting error drops from O(s^2) to O(s^4) and
    what is left measures how exactly the revolved quarter ellipse is the spheroid. Measured at
    interface_mesh_size 0.5 um (prolate): relative errors 4.7e-7 (Li), 1.3e-7 (electrolyte),
    7.9e-7 (interface), 7.0e-6 (dome), 3.7e-7 (flat part), against 4.0e-4 ... 4.7e-3 with
    straight elements; asserted below 3e-5."""
    b, h = SHAPES["prolate"]
    ref = exact(b, h)
    md = generate(RunConfig.model_validate({"geometry": geometry(b, h, 0.5e-6, 2e-6),
                                            "discretisation": {"phi_degree": 2}}))
    m = measures(md)
    for key in ("li", "electrolyte", "interface", "dome", "flat"):
        assert m[key] == pytest.approx(ref[key], rel=3e-5), key


@pytest.mark.mpi
def test_same_mesh_on_one_two_and_three_ranks():
    """gmsh runs on rank 0 of the communicator and the mesh is distributed: the same global
    cell count (13050 tetrahedra with this gmsh), Li volume and interface area on 1 rank, on all
    ranks of the run and, under mpirun -n 3, on a communicator of 2 of them (so one run under
    -n 3 compares 1, 2 and 3 ranks)."""
    world = MPI.COMM_WORLD
    config = RunConfig.model_validate({"geometry": geometry(*SHAPES["prolate"], 0.5e-6, 2e-6)})
    comms = [MPI.COMM_SELF, world]
    if world.size == 3:
        comms.append(world.Split(0 if world.rank < 2 else 1, world.rank))
    results = []
    for comm in comms:
        md = generate(config, comm)
        m = measures(md)
        results.append((comm.size, md.mesh.topology.index_map(3).size_global, m["li"],
                        m["interface"], m["dome"]))
    # every rank holds results for sizes 1 and world.size (and 2 or 1 from the split)
    cells = {n for _, n, *_ in results}
    assert len(cells) == 1, results
    for _, _, li, itf, dome in results[1:]:
        assert li == pytest.approx(results[0][2], rel=1e-12)
        assert itf == pytest.approx(results[0][3], rel=1e-12)
        assert dome == pytest.approx(results[0][4], rel=1e-12)
    gathered = world.allgather([(size, n) for size, n, *_ in results])
    sizes = {size for row in gathered for size, _ in row}
    assert sizes == ({1, 2, 3} if world.size == 3 else {1, world.size})
    assert {n for row in gathered for _, n in row} == cells
    if len(comms) == 3:
        comms[2].Free()


def _run(tmp, name: str, h_if: float, h_max: float, **kinetics) -> dict[str, float]:
    """Solve the current distribution on the prolate boss (one quasi-static solve, plating at
    I_APP) and return the run's summary with, from interface.csv, the tip's i_n (the node at
    (0, h, 0)) and the mean i_n over the flat part far from the boss (the nodes of y = 0 with
    x > W - 2 um and z > D - 2 um, over 7 um from the axis; b = 2 um)."""
    b, h = SHAPES["prolate"]
    config = RunConfig.model_validate({"geometry": geometry(b, h, h_if, h_max),
                                       "kinetics": kinetics,
                                       "control": {"current_density": I_APP}})
    summary = simulation.run(config, tmp / name)
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(tmp / name / "interface.csv", delimiter=",", names=True)
    x, y, z, i_n = table["x"], table["y"], table["z"], table["i_n"]
    tip = np.flatnonzero(np.hypot(np.hypot(x, y - h), z) < 1e-9 * W)
    assert len(tip) == 1  # the tip is a mesh node
    far = (np.abs(y) < 1e-9 * W) & (x > W - 2e-6) & (z > D - 2e-6)
    assert far.sum() >= 4
    peak = np.argmax(np.abs(i_n))
    return {**summary, "tip": float(i_n[tip[0]]), "far": float(i_n[far].mean()),
            "peak_at_tip": bool(peak == tip[0])}


@pytest.mark.mpi
def test_current_focuses_at_the_tip_while_plating(shared_tmp):
    """Butler-Volmer Li | LLZO (i0 = 51 A/m^2, kappa = 0.04 S/m, Wagner number
    kappa / (i0 f b) about 10 at b = 2 um), plating at 10 A/m^2. Measured at
    interface_mesh_size 1 um (5295 cells) and 0.5 um (13050 cells): the tip carries
    |i_n| = 1.022 |i_app| and 1.129 times the flat part far from the boss (1.0221 / 1.1290 and
    1.0222 / 1.1294), the largest |i_n| of the interface, so the focusing factor
    i_max / i_mean is 1.135 (1.1349 and 1.1352); the flat part carries 0.905 |i_app| (the
    contact is larger than the cell's cross-section). Asserted: the tip above the far flat
    part by more than 10 %, the factors of the two meshes within 1e-3 of each other, and the
    interface carrying the applied charge to the solver tolerance (measured 2.9e-6).
    A ten times faster interface (i0 = 510 A/m^2, Wa about 1, 1 um mesh) focuses more: measured
    tip 1.79 |i_app|, 1.95 times the far flat part, focusing factor 1.99, still below the
    primary-current limit of an isolated conducting half-spheroid on a plane, 1 / N_y = 4.29
    for h/b = 1.5 (N_y its depolarisation factor along the axis; Landau & Lifshitz,
    Electrodynamics of Continuous Media, sec. 4)."""
    coarse = _run(shared_tmp, "coarse", 1e-6, 4e-6)
    fine = _run(shared_tmp, "fine", 0.5e-6, 2e-6)
    for r in (coarse, fine):
        assert r["tip"] < r["far"] < 0  # plating everywhere, most at the tip
        assert r["tip"] / r["far"] > 1.10, r
        assert r["peak_at_tip"]
        assert r["focusing_factor"] == pytest.approx(r["tip"] / r["i_mean"], rel=1e-12)
        assert r["i_mean"] * r["contact_fraction"] == pytest.approx(I_APP, rel=1e-5)
        assert r["contact_fraction"] == pytest.approx(exact(*SHAPES["prolate"])["interface"]
                                                      / (W * D), rel=2e-3)
    assert fine["tip"] / fine["far"] == pytest.approx(coarse["tip"] / coarse["far"], abs=1e-3)
    assert fine["focusing_factor"] == pytest.approx(coarse["focusing_factor"], abs=1e-3)
    fast = _run(shared_tmp, "fast", 1e-6, 4e-6, i0=510.0)
    assert fast["peak_at_tip"]
    assert fast["tip"] / fast["far"] > coarse["tip"] / coarse["far"] + 0.5, fast
    assert 1.5 < fast["tip"] / I_APP < 1 / depolarisation_factor(*SHAPES["prolate"]), fast


@pytest.mark.parametrize(("geometry_text", "message"), [
    ("{kind: li_protrusion, dim: 3, width: 2.0e-5, depth: 4.0e-6, protrusion_half_width: "
     "4.0e-6}", r"protrusion_half_width = 4e-06 m must be smaller than depth = 4e-06 m"),
    ("{kind: li_protrusion, dim: 3, width: 2.0e-5, depth: 4.0e-6, protrusion_half_width: "
     "5.0e-6}", r"protrusion_half_width = 5e-06 m must be smaller than depth = 4e-06 m"),
    ("{kind: li_protrusion, dim: 3, width: 4.0e-6, depth: 2.0e-5, protrusion_half_width: "
     "4.0e-6}", r"protrusion_half_width = 4e-06 m must be smaller than width = 4e-06 m"),
    ("{kind: li_protrusion, dim: 3, width: 4.0e-6, protrusion_half_width: 4.0e-6}",
     r"protrusion_half_width = 4e-06 m must be smaller than width"),  # depth defaults to width
    ("{kind: li_protrusion, dim: 3, electrolyte_thickness: 3.0e-6, protrusion_height: "
     "3.0e-6, mesh_size: 1.0e-6}", "protrusion_height = 3e-06 m must be smaller than "
     "electrolyte_thickness"),
])
def test_bad_3d_protrusions_name_the_key(geometry_text, message):
    with pytest.raises(ConfigError, match=r"geometry \(line 1\): " + message):
        config_from_text(f"geometry: {geometry_text}\n")


def test_3d_protrusion_config_passes_with_monroe_newman():
    """A base radius below width and depth passes, with mechanics and with Monroe-Newman
    kinetics (the curvature of the triangulated interface: mesh.InterfaceSurface)."""
    ok = config_from_text("geometry: {kind: li_protrusion, dim: 3, width: 2.0e-5, "
                          "depth: 6.0e-6, protrusion_half_width: 5.0e-6}\n")
    assert ok.geometry.cell_depth == 6e-6 and ok.geometry.projected_area == pytest.approx(1.2e-10)
    assert config_from_text("geometry: {kind: li_protrusion, dim: 3}\nmechanics: {}\n"
                            "kinetics: {stress_coupling: monroe_newman}\n").mechanics is not None


@pytest.mark.mpi
def test_interface_curvature_at_the_tip_converges():
    """kappa_c of the prolate boss (b = 2, h = 3 um) from the triangulated interface
    (mesh.InterfaceSurface, with the symmetry planes x = 0 and z = 0 mirrored): at the tip both
    principal radii are b^2 / h, so kappa_c = 2 h / b^2 = 1.5e6 1/m; on the flat part it is 0.
    Measured at the tip: +6.4e-3, then +2.0e-3 with every size halved (asserted: below 2e-2
    and falling more than 2.5x); the flat part's vertices 0 to 1e-9 of the tip's value. The
    arrays are gathered and sorted, so every rank count gives the same values."""
    from ecm_fem.mesh import InterfaceSurface

    b, h = SHAPES["prolate"]
    errors = []
    for refine in (1, 2):
        config = RunConfig.model_validate({"geometry": geometry(
            b, h, 0.5e-6 / refine, 3e-6 / refine, tip_mesh_size=0.125e-6 / refine)})
        md = generate(config)
        surface = InterfaceSurface.of_boundary(md.ion.mesh, md.ion.facet_tags,
                                               FACET_TAGS["interface"], li_inside=False)
        tip = surface.at(np.array([[0.0, h, 0.0]]))[0]
        errors.append(tip / (2 * h / b**2) - 1)
        flat = (np.abs(surface.vertices[:, 1]) < 1e-12) & (np.hypot(
            surface.vertices[:, 0], surface.vertices[:, 2]) > b + 1.5e-6)
        assert flat.sum() > 10
        assert np.abs(surface.vertex_curvature[flat]).max() < 1e-9 * 2 * h / b**2
    print("relative error of kappa_c at the tip:", errors)
    assert abs(errors[0]) < 2e-2 and abs(errors[1]) < abs(errors[0]) / 2.5, errors
