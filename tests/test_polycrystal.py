"""The polycrystal geometry: Voronoi grains separated by a resolved grain-boundary phase.

References are exact statements about the drawn geometry and the model, not regression numbers:
- the tessellation covers the layer, and every cell holds its seed (Voronoi by construction);
- region areas and the grain-boundary length equal those of the grain polygons (straight edges:
  round-off), the interface is the whole width, the same mesh on any rank count;
- a grain-boundary phase with the grains' own properties is invisible: V_we equals the 1D
  closed form (VERIFICATION.md BV-3);
- with resistive grain boundaries, the effective conductivity of the layer lies within the
  Wiener bounds (harmonic and arithmetic means by volume fraction), which hold for any
  microstructure, and the Li | gb contacts carry less than the mean current.
"""

from __future__ import annotations

import csv

from mpi4py import MPI

import numpy as np
import pytest
from conftest import resistive_boundaries, tagged_measure, wiener_bounds

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry import polycrystal
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS, SUBREGION_TAG_START
from ecm_fem.mesh import generate

UM = 1e-6
W, L_LI, L_E, H = 12e-6, 4e-6, 16e-6, 12e-6
VT = thermal_voltage(298.15)


def geometry(**over):
    return {"kind": "polycrystal", "width": W, "li_thickness": L_LI, "electrolyte_thickness": L_E,
            "grain_layer_thickness": H, "grain_size": 4e-6, "gb_width": 0.3e-6,
            "mesh_size": 3e-6, "interface_mesh_size": 1e-6, "seed": 3, **over}


@pytest.fixture(scope="module")
def poly():
    cfg = RunConfig.model_validate({"geometry": geometry()})
    return cfg, generate(cfg)


def _grains(g):
    return polycrystal.grain_polygons(g, UM)


def _boundary_length(grains, W_um, H_um) -> float:
    """Length of the gb | electrolyte boundary: the grains' edges that face the boundary phase
    (not on the layer's box), and the boundary strips' ends on the layer's top y = H, where the
    bulk electrolyte begins."""
    total = W_um
    for p in grains.values():
        q = np.roll(p, -1, axis=0)
        on_box = [np.allclose([a[k], b[k]], v, atol=1e-9)
                  for a, b in zip(p, q, strict=True) for k, v in ((0, 0), (0, W_um), (1, 0),
                                                                  (1, H_um))]
        on_box = np.array(on_box).reshape(len(p), 4).any(axis=1)
        lengths = np.linalg.norm(q - p, axis=1)
        on_top = np.isclose(p[:, 1], H_um, atol=1e-9) & np.isclose(q[:, 1], H_um, atol=1e-9)
        total += lengths[~on_box].sum() - lengths[on_top].sum()
    return total * UM


def test_tessellation_covers_the_layer_and_holds_its_seeds():
    g = RunConfig.model_validate({"geometry": geometry()}).geometry
    seeds = polycrystal.grain_seeds(g, UM)
    cells = polycrystal.voronoi_cells(seeds, (0.0, 0.0, W / UM, H / UM))
    assert sum(polycrystal.area(c) for c in cells) == pytest.approx(W * H / UM**2, rel=1e-12)
    for s, c in zip(seeds, cells, strict=True):
        d = seeds - s
        # s is in its own cell: it is closer to itself than to any other seed
        x = c.mean(axis=0)
        assert np.argmin(np.linalg.norm(seeds - x, axis=1)) == np.argmin(
            np.linalg.norm(d, axis=1))
    again = polycrystal.grain_polygons(g, UM)
    other = polycrystal.grain_polygons(g.model_copy(update={"seed": 4}), UM)
    assert all(np.array_equal(again[k], p) for k, p in _grains(g).items())
    assert not all(np.array_equal(other.get(k, p[:0]), p) for k, p in again.items())


@pytest.mark.mpi
def test_polycrystal_measures(poly):
    cfg, md = poly
    g, rel = cfg.geometry, 1e-10  # straight edges: round-off
    grains = _grains(g)
    grain_area = sum(polycrystal.area(p) for p in grains.values()) * UM**2
    gb_area = W * H - grain_area
    assert gb_area > 0.05 * W * H
    msh = md.mesh
    assert tagged_measure(msh, md.cell_tags, "dx", CELL_TAGS["li"]) == pytest.approx(
        W * L_LI, rel)
    assert tagged_measure(msh, md.cell_tags, "dx", CELL_TAGS["gb"]) == pytest.approx(gb_area, rel)
    assert tagged_measure(msh, md.cell_tags, "dx", CELL_TAGS["electrolyte"]) == pytest.approx(
        W * L_E - gb_area, rel)
    for name, length in [("li_cc", W), ("counter", W), ("side", 2 * (L_LI + L_E)),
                         ("gb_boundary", _boundary_length(grains, W / UM, H / UM))]:
        measure = tagged_measure(msh, md.facet_tags, "ds", FACET_TAGS[name]) + tagged_measure(
            msh, md.facet_tags, "dS", FACET_TAGS[name])
        assert measure == pytest.approx(length, rel), name
    ion = md.ion
    assert tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["interface"]) == \
        pytest.approx(W, rel)


@pytest.mark.mpi
def test_same_mesh_on_every_rank_count(poly):
    cfg, md = poly
    serial = generate(cfg, MPI.COMM_SELF)
    assert serial.mesh.topology.index_map(2).size_global == \
        md.mesh.topology.index_map(2).size_global


def test_tagged_grains_are_subregions_of_the_electrolyte():
    cfg = RunConfig.model_validate({"geometry": geometry(tag_grains=True)})
    md = generate(cfg, MPI.COMM_SELF)
    grains = _grains(cfg.geometry)
    assert set(cfg.geometry.subregions()) == {f"grain_{k}" for k in range(cfg.geometry.n_grains)}
    for k, p in grains.items():
        assert tagged_measure(md.mesh, md.cell_tags, "dx", SUBREGION_TAG_START + k) == \
            pytest.approx(polycrystal.area(p) * UM**2, rel=1e-10)
    assert md.region_tags("electrolyte")[1:] == [SUBREGION_TAG_START + k
                                                 for k in range(cfg.geometry.n_grains)]


@pytest.mark.mpi
def test_boundary_phase_with_the_grains_properties_is_invisible(shared_tmp):
    i, kappa = -10.0, 0.04
    cfg = RunConfig.model_validate({
        "geometry": geometry(), "control": {"current_density": i},
        "materials": {"gb": {"base": "llzo"}}, "kinetics": {"regions": {"gb": {"i0": 51.0}}}})
    s = simulation.run(cfg, shared_tmp / "same")
    exact = 2 * VT * np.arcsinh(i / (2 * 51.0)) + i * L_E / kappa
    assert s["V_we"] == pytest.approx(exact, rel=1e-9)


@pytest.mark.mpi
def test_resistive_boundaries_within_wiener_bounds(shared_tmp):
    """Grains fill the whole electrolyte (conftest.resistive_boundaries)."""
    kappa_gb = 0.002
    cfg, kappa_eff, kappa = resistive_boundaries(geometry(grain_layer_thickness=L_E), L_E,
                                                 shared_tmp / "resistive", kappa_gb)
    f_gb = 1 - sum(polycrystal.area(p) for p in _grains(cfg.geometry).values()) * UM**2 / (
        W * L_E)
    harmonic, arithmetic = wiener_bounds(f_gb, kappa, kappa_gb)
    assert harmonic < kappa_eff < arithmetic
    if MPI.COMM_WORLD.rank == 0:
        with open(shared_tmp / "resistive" / "interface.csv") as f:
            rows = list(csv.DictReader(f))
        current = {r: [float(row["i_n"]) for row in rows if row["region"] == str(CELL_TAGS[r])]
                   for r in ("gb", "electrolyte")}
        assert current["gb"] and current["electrolyte"]
        assert abs(np.mean(current["gb"])) < 0.9 * abs(np.mean(current["electrolyte"]))


@pytest.mark.parametrize("over, message", [
    ({"gb_width": 1.0e-6}, "gb_width"),
    ({"grain_layer_thickness": 20e-6}, "grain_layer_thickness"),
    ({"grain_size": 0.5e-6, "gb_width": 0.05e-6}, "grains, more than"),
    ({"gb_mesh_size": 0.5e-6}, "gb_mesh_size"),
    ({"sei_thickness": 50e-9}, "sei_thickness"),
    ({"seed": -1}, "geometry.seed"),
])
def test_bad_polycrystal_configs_name_the_key(over, message):
    lines = "\n".join(f"  {k}: {v}" for k, v in geometry(**over).items())
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry:\n{lines}\n")


VOID = {"void_half_width": 3e-6, "void_depth": 2e-6}


@pytest.mark.mpi
def test_void_under_the_grains(shared_tmp):
    """A void cut from the Li under the grains (kind interfacial_void's void, combined): the Li
    loses the quarter ellipse pi a b / 4, the void wall and the face above it are
    void_surface, the contact is width - a, and the grains and boundaries above are unchanged
    (the ellipse is drawn as chords: stated bounds, measured 4.1e-4 and -4.6e-4). Plating
    around it focuses the current next to the void."""
    from scipy import integrate

    a, b = VOID["void_half_width"], VOID["void_depth"]
    cfg = RunConfig.model_validate({"geometry": geometry(**VOID),
                                    "control": {"current_density": -10.0}})
    md = generate(cfg)
    msh = md.mesh

    def facets(name):
        return tagged_measure(msh, md.facet_tags, "ds", FACET_TAGS[name]) + tagged_measure(
            msh, md.facet_tags, "dS", FACET_TAGS[name])

    arc = integrate.quad(lambda t: np.hypot(a * np.sin(t), b * np.cos(t)), 0, np.pi / 2)[0]
    li = tagged_measure(msh, md.cell_tags, "dx", CELL_TAGS["li"])
    assert li == pytest.approx(W * L_LI - np.pi * a * b / 4, rel=1e-3)
    assert facets("void_surface") == pytest.approx(a + arc, rel=1e-3)
    assert facets("interface") == pytest.approx(W - a, rel=1e-12)
    grain_area = sum(polycrystal.area(p) for p in _grains(cfg.geometry).values()) * UM**2
    assert tagged_measure(msh, md.cell_tags, "dx", CELL_TAGS["gb"]) == pytest.approx(
        W * H - grain_area, rel=1e-10)
    s = simulation.run(cfg, shared_tmp / "void")
    assert s["contact_fraction"] == pytest.approx((W - a) / W, rel=1e-12)
    assert s["focusing_factor"] > 1.05


@pytest.mark.parametrize("over, message", [
    ({"void_half_width": 3e-6}, "give both"),
    ({"void_half_width": 13e-6, "void_depth": 1e-6}, "void_half_width = 1.3e-05 m must be"),
    ({"void_half_width": 3e-6, "void_depth": 5e-6}, "void_depth = 5e-06 m must be smaller"),
    ({"void_mesh_size": 0.1e-6}, "void_mesh_size: only with"),
])
def test_bad_void_under_the_grains_names_the_key(over, message):
    lines = "\n".join(f"  {k}: {v}" for k, v in geometry(**over).items())
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry:\n{lines}\n")
