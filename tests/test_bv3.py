"""BV-3 of VERIFICATION.md: symmetric Li | SSE | Li cell, Butler-Volmer + ohmic, exact in 1D.

eta(i) = (2RT/F) asinh(i / (2 i0)),  V = 2 eta + i L / kappa,
alpha_a = alpha_c = 0.5, i0 = 10 A/m^2, kappa = 0.1 S/m, L = 100 um, T = 298.15 K.
The potential is linear in y, which P1 holds exactly, so the only error left is Newton's
tolerance: the solver must match the formula to 1e-6 relative, and the table to its 4 printed
decimals. Runs through the whole pipeline (gmsh mesh, submesh, blocked Newton, output).
"""

from __future__ import annotations

import numpy as np
import pytest

from ecm_fem import simulation
from ecm_fem.config import RunConfig
from ecm_fem.constants import thermal_voltage

TABLE = {1.0: (2.5682, 6.1364), 10.0: (24.7271, 59.4543), 50.0: (84.6432, 219.2865)}  # mV


def bv3_config(i: float, **extra) -> RunConfig:
    return RunConfig.model_validate({
        "name": "bv3",
        "geometry": {"width": 10e-6, "li_thickness": 5e-6, "electrolyte_thickness": 100e-6,
                     "mesh_size": 10e-6, "interface_mesh_size": 5e-6},
        "materials": {"electrolyte": {"base": "llzo", "conductivity": 0.1}},
        "kinetics": {"i0": 10.0, "alpha_a": 0.5, "alpha_c": 0.5},
        "counter": {"kind": "butler_volmer", "i0": 10.0},
        "control": {"mode": "galvanostatic", "current_density": i},
        **extra,
    })


def exact(i: float) -> tuple[float, float]:
    eta = 2 * thermal_voltage(298.15) * np.arcsinh(i / 20.0)
    return eta, 2 * eta + i * 100e-6 / 0.1


@pytest.mark.mpi
@pytest.mark.parametrize("i", sorted(TABLE))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_bv3_symmetric_cell(i, sign, shared_tmp):
    summary = simulation.run(bv3_config(sign * i), shared_tmp / "run")
    eta_exact, V_exact = exact(sign * i)
    assert summary["converged"]
    assert summary["V_cell"] == pytest.approx(V_exact, rel=1e-6)
    assert summary["i_mean"] == pytest.approx(sign * i, rel=1e-9)
    eta_table, V_table = TABLE[i]
    assert abs(summary["V_cell"] * 1e3 - sign * V_table) < 5e-5
    assert abs(eta_exact * 1e3 - sign * eta_table) < 5e-5
    # local overpotential at every interface point of the working electrode
    import csv

    rows = list(csv.DictReader(open(shared_tmp / "run" / "interface.csv")))
    eta = np.array([float(r["eta"]) for r in rows])
    assert np.allclose(eta, eta_exact, rtol=1e-6, atol=0)


def test_bv3_direct_solver_agrees(shared_tmp):
    cfg = bv3_config(10.0, solver={"linear_solver": "direct"})
    summary = simulation.run(cfg, shared_tmp / "run")
    assert summary["V_cell"] == pytest.approx(exact(10.0)[1], rel=1e-6)


def test_potentiostatic_inverts_galvanostatic(shared_tmp):
    V = exact(10.0)[1]
    cfg = bv3_config(0.0, control={"mode": "potentiostatic", "voltage": V})
    summary = simulation.run(cfg, shared_tmp / "run")
    assert summary["i_mean"] == pytest.approx(10.0, rel=1e-6)


@pytest.mark.mpi
def test_resolved_sei_adds_its_series_resistance(shared_tmp):
    """Li | SEI | LLZO | reference: V = eta_BV(i) + i (t / kappa_sei + (L - t) / kappa_e),
    exact for P1 (phi piecewise linear in y, mesh aligned with the layers)."""
    t, L, k_sei, k_e, i = 50e-9, 20e-6, 1e-4, 0.04, -10.0
    cfg = RunConfig.model_validate({
        "geometry": {"width": 2e-6, "li_thickness": 2e-6, "electrolyte_thickness": L,
                     "mesh_size": 2e-6, "interface_mesh_size": 0.5e-6, "sei_thickness": t},
        "materials": {"sei": {"base": "sei", "conductivity": k_sei}},
        "kinetics": {"i0": 10.0},
        "control": {"current_density": i},
    })
    summary = simulation.run(cfg, shared_tmp / "run")
    eta = 2 * thermal_voltage(298.15) * np.arcsinh(i / 20.0)
    expected = eta + i * (t / k_sei + (L - t) / k_e)
    assert summary["V_cell"] == pytest.approx(expected, rel=1e-8)
