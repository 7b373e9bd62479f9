"""Heterogeneous SEI in 3D (sei_heterogeneous, dim: 3): patches that are rectangles of the
interface with their own thickness, a gap through the SEI, the base layer around them.

References. Every piece is a box, so volumes and areas are exact (to rounding, 1e-10 asked):
the base layer covers the interface minus the patches' footprints, each patch its footprint,
the electrolyte the rest of its box; the interface is the whole of y = 0 (W D) and the
SEI | electrolyte boundary the tops of the SEI pieces plus the walls of the steps (height
difference times length). The current distribution is checked against the 1D columns of the
parallel-resistor model of test_sei.py: with an electrolyte far more conductive than the SEI
the potential on top of the SEI is uniform, and a column of SEI of thickness t and conductivity
k over Li with kinetics i(eta) carries i with V_we - phi_top = eta + i t / k.

Two meshes: ``sei_mesh: flat`` (0.5 um along the interface and one element across each level
of the SEI, 0.05, 0.1 and 0.3 um: the affordable choice in 3D, used for the run) and
``sei_mesh: resolved`` (elements of half the thinnest SEI piece, on a small cell).
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure
from dolfinx import mesh as dmesh
from scipy.optimize import brentq

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

F_RT = 1 / thermal_voltage(298.15)
UM = 1e-6

# The flat-meshed cell (lengths in um): W != D so that x and z cannot be mixed up. A thick patch
# (tag 101) on x 1-6, z 1-6; a gap (no tag, index 1) across the depth on x 8-9, given without
# z_min / z_max; a thin patch (tag 103) on x 1-6, z 6.5-8 (z_max defaulting to the depth).
W, D, L_LI, L_E, T_BASE = 12.0, 8.0, 2.0, 4.0, 0.1
THICK, THIN = 0.3, 0.05
PATCHES = [
    {"name": "thick", "x_min": 1 * UM, "x_max": 6 * UM, "z_min": 1 * UM, "z_max": 6 * UM,
     "thickness": THICK * UM},
    {"name": "gap", "x_min": 8 * UM, "x_max": 9 * UM, "thickness": 0.0},
    {"name": "thin", "x_min": 1 * UM, "x_max": 6 * UM, "z_min": 6.5 * UM, "thickness": THIN * UM},
]
STEPS = [(1, 6, 1, 6), (8, 9, 0, D), (1, 6, 6.5, D)]  # footprints (x0, x1, z0, z1) [um]


def flat_geometry(**over) -> dict:
    return {"kind": "sei_heterogeneous", "dim": 3, "width": W * UM, "depth": D * UM,
            "li_thickness": L_LI * UM, "electrolyte_thickness": L_E * UM,
            "sei_thickness": T_BASE * UM, "sei_mesh": "flat", "mesh_size": 2 * UM,
            "interface_mesh_size": 0.5 * UM, "patches": PATCHES, **over}


def flat_exact() -> dict:
    """Exact measures [um^3, um^2] of the flat-meshed cell."""
    a_thick, a_gap, a_thin = 5 * 5, 1 * D, 5 * (D - 6.5)
    a_base = W * D - a_thick - a_gap - a_thin
    sei = {"sei": a_base * T_BASE, 101: a_thick * THICK, 103: a_thin * THIN}
    walls = (20 * (THICK - T_BASE)  # the thick patch stands above the base on its 4 sides
             + (5 + 2 * 1.5) * (T_BASE - THIN)  # base walls around the thin patch (z = D: side)
             + 2 * D * T_BASE)  # the gap's two walls
    return {"li": W * D * L_LI, **sei,
            "electrolyte": W * D * L_E - sum(sei.values()),
            "sei_electrolyte": a_base + a_thick + a_thin + walls}


# The resolved-meshed cell [um]: base 0.2, a 0.4 patch (tag 101) on x 0.5-1.5, z 0.5-1.5, a gap
# across the depth on x 2-2.5; elements of 0.1 um (half the base) at the interface.
RW, RD, R_BASE, R_PATCH = 3.0, 2.0, 0.2, 0.4


def resolved_geometry() -> dict:
    return {"kind": "sei_heterogeneous", "dim": 3, "width": RW * UM, "depth": RD * UM,
            "li_thickness": 1 * UM, "electrolyte_thickness": 2 * UM,
            "sei_thickness": R_BASE * UM, "mesh_size": 1 * UM, "interface_mesh_size": 0.5 * UM,
            "patches": [{"name": "p", "x_min": 0.5 * UM, "x_max": 1.5 * UM, "z_min": 0.5 * UM,
                         "z_max": 1.5 * UM, "thickness": R_PATCH * UM},
                        {"name": "g", "x_min": 2 * UM, "x_max": 2.5 * UM, "thickness": 0.0}]}


def resolved_exact() -> dict:
    a_base = RW * RD - 1.0 - 0.5 * RD
    sei = {"sei": a_base * R_BASE, 101: 1.0 * R_PATCH}
    return {"li": RW * RD * 1.0, **sei, "electrolyte": RW * RD * 2.0 - sum(sei.values()),
            "sei_electrolyte": a_base + 1.0 + 4 * (R_PATCH - R_BASE) + 2 * RD * R_BASE}


CASES = {  # name: (geometry, exact measures, W, D, L_li + L_e, sub-regions, SEI levels) [um]
    "flat": (flat_geometry, flat_exact, W, D, L_LI + L_E,
             {"thick": ("sei", 101), "thin": ("sei", 103)}, (0.0, THIN, T_BASE, THICK)),
    "resolved": (resolved_geometry, resolved_exact, RW, RD, 3.0, {"p": ("sei", 101)},
                 (0.0, R_BASE, R_PATCH)),
}


def measures(md) -> dict:
    """Volumes of the cell tags and areas of the facet tags [um^3, um^2]."""
    out = {n: tagged_measure(md.mesh, md.cell_tags, "dx", t) / UM**3
           for n, t in CELL_TAGS.items()}
    out |= {t: tagged_measure(md.mesh, md.cell_tags, "dx", t) / UM**3 for t in (101, 102, 103)}
    for name, tag in FACET_TAGS.items():
        out[name] = (tagged_measure(md.mesh, md.facet_tags, "ds", tag)
                     + tagged_measure(md.mesh, md.facet_tags, "dS", tag)) / UM**2
    return out


def sei_vertex_heights(md) -> np.ndarray:
    """The distinct y [um] of the vertices of the SEI cells (base and patches), all ranks."""
    tags = md.cell_tags
    cells = tags.indices[(tags.values == CELL_TAGS["sei"]) | (tags.values > 100)]
    nodes = dmesh.entities_to_geometry(md.mesh, 3, cells, False)
    local = np.unique(np.round(md.mesh.geometry.x[nodes.ravel(), 1] / UM, 9))
    return np.unique(np.concatenate(md.mesh.comm.allgather(local)))


@pytest.mark.mpi
@pytest.mark.parametrize("case", CASES)
def test_boxes_have_their_exact_volumes_areas_and_tags(case):
    """Each region and patch sub-region and the interface, SEI | electrolyte, li_cc, counter
    and side areas equal the box values to 1e-10; no other tag. The SEI is structured: its
    vertices lie on y = 0 and the tops of the SEI pieces only (flat: one element across each
    layer) or also on levels 0.1 um apart (resolved: elements of 0.1 um)."""
    geometry, exact, w, d, height, subregions, levels = CASES[case]
    md = generate(RunConfig.model_validate({"geometry": geometry()}))
    assert md.mesh.topology.dim == 3
    assert md.subregions == subregions
    assert md.region_tags("sei") == [CELL_TAGS["sei"], *(t for _, t in subregions.values())]
    m = measures(md)
    for key, value in exact().items():
        assert value > 0 and m[key] == pytest.approx(value, rel=1e-10), key
    for key in ("interface", "li_cc", "counter"):
        assert m[key] == pytest.approx(w * d, rel=1e-10), key
    assert m["side"] == pytest.approx(2 * (w + d) * height, rel=1e-10)
    absent = {"gb", 102, "void_surface", "crack_surface", "gb_boundary"} | (
        {103} if case == "resolved" else set())
    for key in absent:
        assert m[key] == 0.0, key
    heights = sei_vertex_heights(md)
    if case == "flat":
        np.testing.assert_allclose(heights, levels, atol=1e-9)
    else:
        np.testing.assert_allclose(heights, np.arange(0.0, R_PATCH + 0.05, 0.1), atol=1e-9)


@pytest.mark.mpi
def test_same_mesh_on_one_two_and_three_ranks():
    """gmsh runs on rank 0 and the mesh is distributed: the same global cell count (16440
    tetrahedra with this gmsh), thick-patch volume and interface area on 1 rank, on all ranks
    and, under mpirun -n 3, on a communicator of 2 of them (so -n 3 compares 1, 2 and 3)."""
    world = MPI.COMM_WORLD
    config = RunConfig.model_validate({"geometry": flat_geometry()})
    comms = [MPI.COMM_SELF, world]
    if world.size == 3:
        comms.append(world.Split(0 if world.rank < 2 else 1, world.rank))
    results = []
    for comm in comms:
        md = generate(config, comm)
        results.append((comm.size, md.mesh.topology.index_map(3).size_global,
                        tagged_measure(md.mesh, md.cell_tags, "dx", 101),
                        tagged_measure(md.mesh, md.facet_tags, "dS", FACET_TAGS["interface"])))
    cells = {n for _, n, _, _ in results}
    assert len(cells) == 1, results
    for _, _, patch, interface in results[1:]:
        assert patch == pytest.approx(results[0][2], rel=1e-12)
        assert interface == pytest.approx(results[0][3], rel=1e-12)
    gathered = world.allgather([(size, n) for size, n, _, _ in results])
    assert {size for row in gathered for size, _ in row} == (
        {1, 2, 3} if world.size == 3 else {1, world.size})
    assert {n for row in gathered for _, n in row} == cells
    if len(comms) == 3:
        comms[2].Free()


def column_current(V: float, i0: float, aa: float, ac: float, R: float) -> float:
    """Current [A/m^2] of a 1D column Li | film R [Ohm m^2] | top at V = eta + i(eta) R."""
    def current(eta):
        return i0 * (np.exp(aa * F_RT * eta) - np.exp(-ac * F_RT * eta))
    eta = brentq(lambda e: e + R * current(e) - V, -2.0, 2.0, xtol=1e-15, rtol=1e-14)
    return current(eta)


def distance_to_steps(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Distance [um] in the x-z plane from (x, z) [um] to the nearest patch edge (a step of the
    SEI; the cell's sides are no steps)."""
    out = np.full(x.shape, np.inf)
    for x0, x1, z0, z1 in STEPS:
        edges = [(x0, x0, z0, z1), (x1, x1, z0, z1), (x0, x1, z0, z0), (x0, x1, z1, z1)]
        for ax, bx, az, bz in edges:
            if (az == bz and az in (0, D)) or (ax == bx and ax in (0, W)):
                continue  # on the cell's side
            px = np.clip(x, min(ax, bx), max(ax, bx))
            pz = np.clip(z, min(az, bz), max(az, bz))
            out = np.minimum(out, np.hypot(x - px, z - pz))
    return out


@pytest.mark.mpi
def test_patch_columns_carry_their_1d_currents(shared_tmp):
    """Plating at 10 A/m^2 on the flat mesh (16440 cells); SEI 1e-5 S/m (base, thin patch),
    3e-6 S/m (thick patch), electrolyte 100 S/m; i0 10 A/m^2 under the SEI, 5 A/m^2 with
    alpha 0.3 / 0.7 under the thick patch, 100 A/m^2 in the gap. Film resistances 0.01 (base),
    0.1 (thick), 0.005 Ohm m^2 (thin).

    Measured (nodes of the interface, relative to their 1D column): in the gap within 3.4e-5
    (every node, its edges included); on the SEI, by distance from the nearest step in elements
    of 0.5 um: 1.6 (at one element), 0.31, 0.096, 0.017 (four elements, 2 um) and 0.0045 (five
    elements or more): flat elements smear the boundary layer at a step and the current
    overshoots before it settles (module docstring). At their centres: V_we -24.6 mV, the gap
    99.3 A/m^2, the thin patch 3.26, the base 1.96 and the thick patch 0.233 A/m^2. Asserted:
    2 % at 2 um or more, 0.6 % at 2.5 um or more, 1e-3 in the gap, the order of the currents,
    and the interface carrying the applied charge, int i_n = I W D, to the solver tolerance
    (measured 1e-6)."""
    kinetics = {"i0": 10.0, "regions": {"thick": {"i0": 5.0, "alpha_a": 0.3, "alpha_c": 0.7},
                                        "electrolyte": {"i0": 100.0}}}
    materials = {"electrolyte": {"base": "llzo", "conductivity": 100.0},
                 "sei": {"base": "sei", "conductivity": 1e-5},
                 "patches": {"thick": {"base": "sei", "conductivity": 3e-6},
                             "thin": {"base": "sei", "conductivity": 1e-5}}}
    i_app = -10.0
    config = RunConfig.model_validate({"geometry": flat_geometry(), "kinetics": kinetics,
                                       "materials": materials,
                                       "control": {"current_density": i_app}})
    s = simulation.run(config, shared_tmp / "r")
    assert s["converged"]
    assert s["contact_fraction"] == pytest.approx(1.0, rel=1e-12)
    assert s["i_mean"] * s["contact_fraction"] == pytest.approx(i_app, rel=1e-5)

    V_rel = s["V_we"] - i_app * L_E * UM / 100.0  # minus the (uniform) electrolyte drop
    columns = {  # cell tag of the contact: (i0, alpha_a, alpha_c, film resistance)
        CELL_TAGS["sei"]: (10.0, 0.5, 0.5, T_BASE * UM / 1e-5),
        101: (5.0, 0.3, 0.7, THICK * UM / 3e-6),
        103: (10.0, 0.5, 0.5, THIN * UM / 1e-5),
        CELL_TAGS["electrolyte"]: (100.0, 0.5, 0.5, 0.0),
    }
    expected = {tag: column_current(V_rel, *c) for tag, c in columns.items()}
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(shared_tmp / "r" / "interface.csv", delimiter=",", names=True)
    x, z, i_n = table["x"] / UM, table["z"] / UM, table["i_n"]
    region = table["region"].astype(int)
    assert set(region) == set(columns)
    error = i_n / np.array([expected[r] for r in region]) - 1
    far = distance_to_steps(x, z)
    gap = region == CELL_TAGS["electrolyte"]
    assert np.abs(error[gap]).max() < 1e-3
    for distance, bound in ((2.0, 2e-2), (2.5, 6e-3)):
        for tag in (CELL_TAGS["sei"], 101):
            nodes = (region == tag) & (far >= distance - 1e-9)
            assert nodes.any() and np.abs(error[nodes]).max() < bound, (tag, distance)

    def at(px, pz, tag):
        k = np.flatnonzero(region == tag)
        return i_n[k[np.argmin(np.hypot(x[k] - px, z[k] - pz))]]

    thick, base, thin, gap_centre = (at(3.5, 3.5, 101), at(11.5, 4.0, CELL_TAGS["sei"]),
                                     at(3.5, 7.25, 103), at(8.5, 4.0, CELL_TAGS["electrolyte"]))
    assert gap_centre < thin < base < thick < 0  # plating everywhere, least under thick SEI
    assert thin == pytest.approx(expected[103], rel=2e-2)


# ----------------------------------------------------------------------------- config errors
def _patches(*patches: str) -> str:
    return "[" + ", ".join("{" + p + "}" for p in patches) + "]"


@pytest.mark.parametrize("geometry, message", [
    ("{kind: sei_heterogeneous, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, z_min: 0, thickness: 0") + "}",
     r"patches\[0\] \(a\): z_min: only for dim: 3"),
    ("{kind: sei_heterogeneous, dim: 3, width: 1.0e-5, depth: 4.0e-6, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, thickness: 0",
                "name: b, x_min: 2.0e-6, x_max: 3.0e-6, z_max: 5.0e-6, thickness: 0") + "}",
     r"patches\[1\] \(b\): z_max = 5e-06 m is beyond depth = 4e-06 m"),
    ("{kind: sei_heterogeneous, dim: 3, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, z_min: 2.0e-6, z_max: 1.0e-6, "
                "thickness: 0") + "}",
     r"patches\[0\] \(a\): z_max must exceed z_min"),
    ("{kind: sei_heterogeneous, dim: 3, width: 1.0e-5, depth: 4.0e-6, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, z_min: 4.0e-6, thickness: 0") + "}",
     r"patches\[0\] \(a\): z_min = 4e-06 m is not inside depth = 4e-06 m"),
    ("{kind: sei_heterogeneous, dim: 3, width: 1.0e-5, depth: 1.0e-5, patches: "
     + _patches("name: a, x_min: 0, x_max: 5.0e-6, z_min: 0, z_max: 5.0e-6, thickness: 0",
                "name: b, x_min: 4.0e-6, x_max: 6.0e-6, z_min: 4.0e-6, thickness: 0") + "}",
     r"patches\[1\] \(b\): overlaps patches\[0\] \(a\) in the x-z plane"),
    ("{kind: sei_heterogeneous, dim: 3, width: 1.0e-5, patches: "
     + _patches("name: a, x_min: 0, x_max: 2.0e-5, thickness: 0") + "}",
     r"patches\[0\] \(a\): x_max = 2e-05 m is beyond width"),
    ("{kind: sei_heterogeneous, sei_mesh: flat, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, thickness: 0") + "}",
     r"sei_mesh: flat is for dim: 3"),
    ("{kind: sei_heterogeneous, dim: 3, sei_thickness: 5.0e-8, patches: "
     + _patches("name: a, x_min: 0, x_max: 1.0e-6, thickness: 0") + "}",
     r"sei_mesh: resolved puts elements of 2.5e-08 m .* about 1.3e\+06 triangles"),
])
def test_bad_3d_patches_name_the_key(geometry, message):
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry: {geometry}\n")


def test_patches_in_any_order_and_touching_pass():
    """In 3D patches need no x order: a checkerboard of four touching patches, listed out of
    order, is valid; tags follow the list, gaps take none; a mechanics section is accepted."""
    quarter = "x_min: {}, x_max: {}, z_min: {}, z_max: {}, thickness: {}"
    text = ("geometry: {kind: sei_heterogeneous, dim: 3, width: 1.0e-5, sei_mesh: flat, "
            "patches: " + _patches(
                "name: d, " + quarter.format("5.0e-6", "1.0e-5", "5.0e-6", "1.0e-5", "1.0e-7"),
                "name: a, " + quarter.format(0, "5.0e-6", 0, "5.0e-6", "1.0e-7"),
                "name: c, " + quarter.format(0, "5.0e-6", "5.0e-6", "1.0e-5", 0),
                "name: b, " + quarter.format("5.0e-6", "1.0e-5", 0, "5.0e-6", "2.0e-7"))
            + "}\n")
    config = config_from_text(text)
    assert config.geometry.subregions() == {"d": ("sei", 101), "a": ("sei", 102),
                                            "b": ("sei", 104)}
    assert config.geometry.sei_element_size == pytest.approx(1e-6)  # interface_mesh_size
    assert config_from_text(text + "mechanics: {}\n").mechanics is not None
