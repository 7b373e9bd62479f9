"""The SEI in the current distribution: as a film resistance on the interface, as a resolved
layer, and as a heterogeneous layer of patches with their own thickness, conductivity and
kinetics (the ``sei_heterogeneous`` geometry and ``kinetics.regions``).

References are exact statements of the model, not regression numbers:
- a uniform film of thickness t and conductivity k adds the series resistance t / k in 1D
  (VERIFICATION.md BV-3 with one more resistor), for the film and the resolved layer alike;
- with linear kinetics a film R_f in series with the charge-transfer resistance R_ct = 1/(i0 f)
  is the same interface law as linear kinetics with R_ct + R_f, on any geometry (here the void);
- with an electrolyte far more conductive than the SEI, the potential on top of the SEI is
  uniform and each patch carries the current of its own 1D column, V_we - phi_top =
  eta_k(i_k) + i_k t_k / k_k (a parallel-resistor model), away from the patch edges; this
  checks per-patch i0, alpha_a, alpha_c and conductivity, and a gap through the SEI.
"""

from __future__ import annotations

import csv

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure
from scipy.optimize import brentq

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

VT = thermal_voltage(298.15)
F_RT = 1 / VT


def planar(**geometry):
    return {"width": 5e-6, "li_thickness": 5e-6, "electrolyte_thickness": 20e-6,
            "mesh_size": 2e-6, "interface_mesh_size": 1e-6, **geometry}


@pytest.mark.mpi
@pytest.mark.parametrize("representation", ["resolved", "film"])
def test_uniform_sei_adds_its_series_resistance(shared_tmp, representation):
    t, k_sei, kappa, L, i = 50e-9, 1e-5, 0.04, 20e-6, -10.0
    if representation == "resolved":
        geometry, kinetics, L_el = planar(sei_thickness=t), {}, L - t
    else:
        geometry, kinetics, L_el = planar(), {"sei_film": {"thickness": t}}, L
    config = RunConfig.model_validate({"geometry": geometry, "kinetics": kinetics,
                                       "control": {"current_density": i}})
    s = simulation.run(config, shared_tmp / "r")
    exact = 2 * VT * np.arcsinh(i / (2 * 51.0)) + i * t / k_sei + i * L_el / kappa
    assert s["V_we"] == pytest.approx(exact, rel=1e-9)


@pytest.mark.mpi
def test_film_with_linear_kinetics_is_a_larger_charge_transfer_resistance(shared_tmp):
    """Void geometry (2D current focusing): film R_f + linear kinetics i0 must give the same
    V_we and focusing factor as linear kinetics with 1/(i0' f) = 1/(i0 f) + R_f."""
    i0, R_f = 51.0, 5e-3  # R_ct = 1/(i0 f) = 5.04e-4 Ohm m^2: the film dominates
    geometry = {"kind": "interfacial_void", "width": 20e-6, "li_thickness": 10e-6,
                "electrolyte_thickness": 50e-6, "void_half_width": 5e-6, "void_depth": 5e-6}
    film = RunConfig.model_validate({
        "geometry": geometry, "kinetics": {"model": "linear", "i0": i0,
                                           "sei_film": {"thickness": R_f * 1e-5}},
        "materials": {"sei": {"base": "sei", "conductivity": 1e-5}}})
    i0_equivalent = 1 / (F_RT * (1 / (i0 * F_RT) + R_f))
    plain = RunConfig.model_validate({"geometry": geometry,
                                      "kinetics": {"model": "linear", "i0": i0_equivalent}})
    a = simulation.run(film, shared_tmp / "film")
    b = simulation.run(plain, shared_tmp / "plain")
    assert a["converged"] and b["converged"]
    assert a["V_we"] == pytest.approx(b["V_we"], rel=1e-8)
    assert a["focusing_factor"] == pytest.approx(b["focusing_factor"], rel=1e-8)
    assert 1.01 < b["focusing_factor"] < 1.5


# ----------------------------------------------------------------------------- patches
W, L_E, T_BASE = 20e-6, 10e-6, 100e-9
PATCHES = [{"name": "thin", "x_min": 4e-6, "x_max": 8e-6, "thickness": 50e-9},
           {"name": "gap", "x_min": 12e-6, "x_max": 14e-6, "thickness": 0.0}]


def patch_config(**extra) -> dict:
    return {
        "geometry": {"kind": "sei_heterogeneous", "width": W, "li_thickness": 5e-6,
                     "electrolyte_thickness": L_E, "sei_thickness": T_BASE,
                     "mesh_size": 2e-6, "interface_mesh_size": 0.5e-6, "patches": PATCHES},
        **extra,
    }


@pytest.mark.mpi
def test_patch_geometry_has_the_drawn_areas_and_tags():
    """Rectangles only, so areas and lengths are exact: base SEI over 14 um of 20, the thin
    patch 4 um x 50 nm (tag 101), no SEI in the 2 um gap; the SEI | electrolyte boundary is the
    SEI's top (18 um) plus the step walls (2 x 50 nm at the thin patch, 2 x 100 nm at the gap)."""
    md = generate(RunConfig.model_validate(patch_config()))
    assert md.subregions == {"thin": ("sei", 101)}
    assert md.region_tags("sei") == [CELL_TAGS["sei"], 101]
    exact_cells = {CELL_TAGS["li"]: W * 5e-6, CELL_TAGS["sei"]: 14e-6 * T_BASE,
                   101: 4e-6 * 50e-9,
                   CELL_TAGS["electrolyte"]: W * L_E - 14e-6 * T_BASE - 4e-6 * 50e-9}
    for tag, area in exact_cells.items():
        assert tagged_measure(md.mesh, md.cell_tags, "dx", tag) == pytest.approx(area, rel=1e-10)
    assert tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"]) == \
        pytest.approx(W, rel=1e-12)
    assert tagged_measure(md.mesh, md.facet_tags, "dS", FACET_TAGS["sei_electrolyte"]) == \
        pytest.approx(18e-6 + 2 * 50e-9 + 2 * 100e-9, rel=1e-10)
    ion_cells = md.ion.mesh.topology.index_map(2).size_global
    counts = [np.count_nonzero(md.ion.cell_tags.values[:md.ion.mesh.topology.index_map(2)
                                                      .size_local] == t) for t in (2, 3, 101)]
    assert md.mesh.comm.allreduce(sum(counts), op=MPI.SUM) == ion_cells


def _column_current(V: float, i0: float, aa: float, ac: float, R: float) -> float:
    """Current of a 1D column Li | film R | top at potential difference V = eta + i(eta) R."""
    def current(eta):
        return i0 * (np.exp(aa * F_RT * eta) - np.exp(-ac * F_RT * eta))
    eta = brentq(lambda e: e + R * current(e) - V, -2.0, 2.0, xtol=1e-15, rtol=1e-14)
    return current(eta)


@pytest.mark.mpi
def test_patches_carry_the_currents_of_their_own_columns(shared_tmp):
    kinetics = {"i0": 10.0, "regions": {"thin": {"i0": 5.0, "alpha_a": 0.3, "alpha_c": 0.7},
                                        "electrolyte": {"i0": 100.0}}}
    materials = {"electrolyte": {"base": "llzo", "conductivity": 100.0},
                 "sei": {"base": "sei", "conductivity": 1e-5},
                 "patches": {"thin": {"base": "sei", "conductivity": 1e-4}}}
    config = RunConfig.model_validate(patch_config(
        kinetics=kinetics, materials=materials, control={"current_density": -10.0}))
    s = simulation.run(config, shared_tmp / "r")
    columns = {  # region tag: (i0, alpha_a, alpha_c, film resistance, width, sample x)
        2: (10.0, 0.5, 0.5, T_BASE / 1e-5, 14e-6, [1e-6, 10e-6, 17e-6]),
        101: (5.0, 0.3, 0.7, 50e-9 / 1e-4, 4e-6, [6e-6]),
        3: (100.0, 0.5, 0.5, 0.0, 2e-6, [13e-6]),
    }
    drop = -10.0 * L_E / 100.0  # uniform electrolyte drop (phi at the SEI top, i = -10 A/m^2)
    V_rel = s["V_we"] - drop
    # the columns carry all but the edge currents (lateral paths through the SEI's walls,
    # within about one SEI thickness of each step): measured 0.26 %
    columns_total = sum(w * _column_current(V_rel, i0, aa, ac, R)
                        for i0, aa, ac, R, w, _ in columns.values())
    assert 0.99 < columns_total / (-10.0 * W) < 1.0

    rows = list(csv.DictReader(open(shared_tmp / "r" / "interface.csv")))
    assert {int(r["region"]) for r in rows} == {2, 3, 101}
    for tag, (i0, aa, ac, R, _, xs) in columns.items():
        expected = _column_current(V_rel, i0, aa, ac, R)
        for x in xs:
            near = min((r for r in rows if int(r["region"]) == tag),
                       key=lambda r: abs(float(r["x"]) - x))
            assert float(near["i_n"]) == pytest.approx(expected, rel=3e-4), (tag, x)


# ----------------------------------------------------------------------------- config errors
@pytest.mark.parametrize("text, message", [
    ("geometry: {kind: sei_heterogeneous, sei_thickness: 1.0e-7, patches: "
     "[{name: a, x_min: 0, x_max: 5.0e-6, thickness: 0}, "
     "{name: b, x_min: 4.0e-6, x_max: 6.0e-6, thickness: 0}]}",
     r"patches\[1\] \(b\): patches must be listed left to right without overlap"),
    ("geometry: {kind: sei_heterogeneous, width: 1.0e-5, patches: "
     "[{name: a, x_min: 0, x_max: 2.0e-5, thickness: 0}]}",
     r"patches\[0\] \(a\): x_max = 2e-05 m is beyond width"),
    ("geometry: {kind: sei_heterogeneous, patches: "
     "[{name: a, x_min: 0, x_max: 1.0e-6, thickness: 1.0e-8}]}\n"
     "kinetics: {regions: {b: {i0: 1.0}}}",
     r"kinetics.regions.b: no such region or sub-region \(known: electrolyte, sei, gb, a\)"),
    ("materials: {patches: {a: sei}}",
     r"materials.patches.a: the geometry has no sub-region 'a'"),
    ("geometry: {sei_thickness: 1.0e-8}\nkinetics: {sei_film: {thickness: 1.0e-8}}",
     r"kinetics.sei_film: the geometry already resolves the SEI"),
    ("kinetics: {sei_film: {thickness: -1.0e-8}}", r"kinetics.sei_film.thickness"),
])
def test_bad_sei_configs_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        config_from_text(text)
