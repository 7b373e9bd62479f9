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
from conftest import tagged_measure

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
    """Grains fill the whole electrolyte; fast kinetics so V_we is ohmic up to ~1e-7 V."""
    i, kappa, kappa_gb, i0 = -10.0, 0.04, 0.002, 1e5
    cfg = RunConfig.model_validate({
        "geometry": geometry(grain_layer_thickness=L_E), "control": {"current_density": i},
        "kinetics": {"i0": i0, "regions": {"gb": {"i0": i0}}},
        "materials": {"gb": {"base": "llzo", "conductivity": kappa_gb}}})
    s = simulation.run(cfg, shared_tmp / "resistive")
    g = cfg.geometry
    f_gb = 1 - sum(polycrystal.area(p) for p in _grains(g).values()) * UM**2 / (W * L_E)
    eta = 2 * VT * np.arcsinh(i / (2 * i0))
    kappa_eff = i * L_E / (s["V_we"] - eta)
    harmonic = 1 / ((1 - f_gb) / kappa + f_gb / kappa_gb)
    arithmetic = (1 - f_gb) * kappa + f_gb * kappa_gb
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
