"""3D builders (planar and interfacial_void, dim: 3) and the current distribution on them.

References: the box stack's volumes and areas are exact (flat faces); the quarter ellipsoidal
void's volume, rim-cut interface and wall areas are closed forms (spheroid surface area),
approached at second order under refinement; on the planar stack V_we is the 1D closed form
(VERIFICATION.md BV-3), which linear elements reproduce exactly; the void run conserves charge.
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, D, L_LI, L_E = 10e-6, 8e-6, 5e-6, 20e-6
A, B = 4e-6, 2e-6  # void semi-axes: along x and z, and into the Li
VT = thermal_voltage(298.15)


def box(**over):
    return {"kind": "planar", "dim": 3, "width": W, "depth": D, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "mesh_size": 4e-6, "interface_mesh_size": 2e-6, **over}


def void(h_if, **over):
    return box(kind="interfacial_void", void_half_width=A, void_depth=B, interface_mesh_size=h_if,
               **over)


def _measures(md):
    cells = {n: tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS[n])
             for n in ("li", "electrolyte")}
    facets = {n: tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS[n])
              + tagged_measure(md.mesh, md.facet_tags, "dS", FACET_TAGS[n])
              for n in ("interface", "li_cc", "counter", "side", "void_surface")}
    return cells, facets


@pytest.mark.mpi
def test_box_stack_measures_and_rank_independence():
    cfg = RunConfig.model_validate({"geometry": box()})
    md = generate(cfg)
    assert md.mesh.geometry.dim == 3 and md.mesh.topology.dim == 3
    cells, facets = _measures(md)
    rel = 1e-12
    assert cells["li"] == pytest.approx(W * D * L_LI, rel)
    assert cells["electrolyte"] == pytest.approx(W * D * L_E, rel)
    for name in ("interface", "li_cc", "counter"):
        assert facets[name] == pytest.approx(W * D, rel), name
    assert facets["side"] == pytest.approx(2 * (W + D) * (L_LI + L_E), rel)
    assert facets["void_surface"] == 0.0
    serial = generate(cfg, MPI.COMM_SELF)
    assert serial.mesh.topology.index_map(3).size_global == \
        md.mesh.topology.index_map(3).size_global
    assert cfg.geometry.projected_area == pytest.approx(W * D)


def _void_exact() -> dict[str, float]:
    e = math.sqrt(1 - (B / A) ** 2)  # oblate spheroid with semi-axes A, A, B
    spheroid = 2 * math.pi * A**2 * (1 + (1 - e**2) / e * math.atanh(e))
    return {"li": W * D * L_LI - (2 / 3 * math.pi * A**2 * B) / 4,
            "interface": W * D - math.pi * A**2 / 4,
            # a quarter of the half spheroid (the Li's wall) and of the disk above it
            "void_surface": spheroid / 8 + math.pi * A**2 / 4}


@pytest.mark.mpi
def test_quarter_void_converges_to_the_closed_forms():
    exact = _void_exact()
    errors = []
    for h_if in (2e-6, 1e-6):
        md = generate(RunConfig.model_validate({"geometry": void(h_if)}))
        cells, facets = _measures(md)
        assert cells["electrolyte"] == pytest.approx(W * D * L_E, rel=1e-12)
        assert facets["counter"] == pytest.approx(W * D, rel=1e-12)
        errors.append(np.array([abs(cells["li"] / exact["li"] - 1),
                                abs(facets["interface"] / exact["interface"] - 1),
                                abs(facets["void_surface"] / exact["void_surface"] - 1)]))
    # measured relative errors (Li volume, interface, void wall): [5.5e-3, 4.8e-3, 4.5e-2] at
    # 2 um, [1.5e-3, 1.6e-3, 1.5e-2] at 1 um: flat facets on the curved wall
    assert np.all(errors[1] < 0.6 * errors[0]), errors
    assert np.all(errors[1] < 2e-2), errors


@pytest.mark.mpi
def test_box_stack_current_distribution_is_the_1d_closed_form(shared_tmp):
    i, kappa = -10.0, 0.04
    cfg = RunConfig.model_validate({"geometry": box(), "control": {"current_density": i}})
    s = simulation.run(cfg, shared_tmp / "box")
    exact = 2 * VT * np.arcsinh(i / (2 * 51.0)) + i * L_E / kappa
    assert s["V_we"] == pytest.approx(exact, rel=1e-9)
    assert s["focusing_factor"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.mpi
def test_void_run_focuses_current_and_conserves_charge(shared_tmp):
    i = -10.0
    cfg = RunConfig.model_validate({"geometry": void(1e-6), "control": {"current_density": i}})
    s = simulation.run(cfg, shared_tmp / "void")
    # the interface carries the applied charge, to the solver tolerance (measured 1.7e-6)
    assert s["i_mean"] * s["contact_fraction"] == pytest.approx(i, rel=1e-5)
    assert s["focusing_factor"] > 1.02  # the current crowds at the rim


@pytest.mark.parametrize("geometry, message", [
    ("{kind: planar, depth: 1.0e-5}", "depth: only for dim: 3"),
    ("{kind: interfacial_void, dim: 3, width: 2.0e-5, depth: 4.0e-6, void_half_width: 5.0e-6}",
     "void_half_width"),
])
def test_bad_3d_geometries_name_the_key(geometry, message):
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry: {geometry}\n")


@pytest.mark.parametrize("extra, message", [
    ("mechanics: {sides: periodic}", "mechanics.sides: periodic is built for 2D"),
])
def test_3d_mechanics_options_not_built_are_refused_before_any_mesh(extra, message):
    with pytest.raises(ConfigError, match=message):
        config_from_text(f"geometry: {{dim: 3}}\n{extra}\n")
