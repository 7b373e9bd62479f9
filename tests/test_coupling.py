"""The kinetics fed by the finite-element stresses (coupling.py, PHYSICS.md 3.1).

Uniform state (acceptance of the coupled-problem issue): a flat Li | LLZO bilayer under the
stack pressure P, laterally confined (symmetric sides, plane strain), elastic. Then in each layer
sigma_yy = -P and sigma_xx = sigma_zz = -P nu / (1 - nu), so on the interface (n = +y)
sigma_nn = -P, sigma_h = -P (1 + nu) / (3 (1 - nu)) and tau_nn = sigma_nn - sigma_h. Every
coupling model must put its closed form into the kinetics: U_mech in interface.csv and the
shift of V_we against the uncoupled run (normal_traction, hydrostatic), or the exchange current
i0 exp(alpha_a dmu_e / (R T)) (monroe_newman), to 1e-8 relative, on any number of ranks.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ecm_fem import simulation
from ecm_fem.config import RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT, thermal_voltage
from ecm_fem.physics.stress_coupling import (
    CouplingParameters,
    InterfaceStress,
    monroe_newman_dmu,
)

P = 2.0e6  # Pa
OMEGA_LI, OMEGA_LLZO = 1.30e-5, 1.3e-6  # materials library: lithium, llzo
NU_LI, NU_LLZO = 0.381, 0.257
I_APP = -5.0  # A/m^2, plating
T = 298.15


def uniform_stress() -> InterfaceStress:
    def lateral(nu: float) -> float:
        return -P * nu / (1 - nu)

    def hydrostatic(nu: float) -> float:
        return (2 * lateral(nu) - P) / 3

    h_li, h_e = hydrostatic(NU_LI), hydrostatic(NU_LLZO)
    return InterfaceStress(sigma_nn_li=-P, sigma_h_li=h_li, sigma_h_e=h_e, tau_nn_li=-P - h_li,
                           tau_nn_e=-P - h_e, curvature=0.0, sigma_nn_e=-P,
                           sigma_tt_li=lateral(NU_LI), sigma_tt_e=lateral(NU_LLZO))


def config(coupling: str, growth: bool = False, t_end: float = 0.0) -> RunConfig:
    return RunConfig.model_validate({
        "geometry": {"width": 4e-6, "li_thickness": 4e-6, "electrolyte_thickness": 8e-6,
                     "mesh_size": 2e-6, "interface_mesh_size": 1e-6},
        "materials": {"li": "lithium", "electrolyte": "llzo"},
        "kinetics": {"i0": 51.0, "stress_coupling": coupling},
        "control": {"current_density": I_APP},
        "mechanics": {"li_law": "elastic", "stack_pressure": P, "growth": growth},
        "time": {"t_end": t_end, "dt": 1.0},
    })


def interface_rows(run_dir) -> list[dict[str, float]]:
    with open(run_dir / "interface.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def uncoupled(tmp_path_factory):
    from mpi4py import MPI

    path = tmp_path_factory.mktemp("none") if MPI.COMM_WORLD.rank == 0 else None
    path = MPI.COMM_WORLD.bcast(path, root=0)
    return simulation.run(config("none"), path / "r")


@pytest.mark.mpi
@pytest.mark.parametrize("model", ["normal_traction", "hydrostatic"])
def test_potential_shift_models_on_uniform_stack(model, uncoupled, shared_tmp):
    s = uniform_stress()
    expected = (OMEGA_LI * s.sigma_nn_li / FARADAY if model == "normal_traction"
                else (OMEGA_LI * s.sigma_h_li - OMEGA_LLZO * s.sigma_h_e) / FARADAY)
    summary = simulation.run(config(model), shared_tmp / "r")
    rows = interface_rows(shared_tmp / "r")
    u_mech = np.array([r["U_mech"] for r in rows])
    assert np.allclose(u_mech, expected, rtol=1e-8, atol=0)
    assert summary["V_we"] - uncoupled["V_we"] == pytest.approx(expected, rel=1e-8)
    assert np.allclose([r["sigma_nn_li"] for r in rows], -P, rtol=1e-9)
    assert abs(expected) > 1e-4  # 0.27 mV (normal traction): a shift the test can see


@pytest.mark.mpi
def test_monroe_newman_on_uniform_stack(uncoupled, shared_tmp):
    params = CouplingParameters(omega_li=OMEGA_LI, omega_li_ion=OMEGA_LLZO, gamma=0.556,
                                alpha_a=0.5, temperature=T)
    dmu = monroe_newman_dmu(uniform_stress(), params)
    summary = simulation.run(config("monroe_newman"), shared_tmp / "r")
    rows = interface_rows(shared_tmp / "r")
    assert np.allclose([r["dmu_e"] for r in rows], dmu, rtol=1e-8, atol=0)
    assert np.allclose([r["U_mech"] for r in rows], 0.0, atol=0)
    i0_eff = 51.0 * np.exp(0.5 * dmu / (GAS_CONSTANT * T))
    eta = 2 * thermal_voltage(T) * np.arcsinh(I_APP / (2 * i0_eff))
    eta0 = 2 * thermal_voltage(T) * np.arcsinh(I_APP / (2 * 51.0))
    assert summary["V_we"] - uncoupled["V_we"] == pytest.approx(eta - eta0, rel=1e-8)
    assert abs(eta - eta0) > 1e-6


def flaw_config(coupling: str, rtol: float = 1e-8, scheme: str = "monolithic") -> RunConfig:
    """A coarse Li-filled flaw in LLZO (configs/electrolyte_flaw_li_llzo.yaml) plated for 10 s."""
    return RunConfig.model_validate({
        "geometry": {"kind": "electrolyte_flaw", "width": 10e-6, "li_thickness": 5e-6,
                     "electrolyte_thickness": 20e-6, "flaw_depth": 3e-6, "flaw_opening": 0.2e-6,
                     "filled": True, "mesh_size": 2e-6, "interface_mesh_size": 0.35e-6},
        "materials": {"li": "lithium", "electrolyte": "llzo"},
        "kinetics": {"i0": 51.0, "stress_coupling": coupling},
        "control": {"current_density": -10.0},
        "mechanics": {"li_law": "norton", "stack_pressure": 1e6, "growth_band": 0.2e-6,
                      "coupling": {"rtol": rtol, "scheme": scheme}},
        "time": {"t_end": 10.0, "dt": 5.0},
    })


def test_pressurised_flaw_limits_its_own_plating(shared_tmp):
    """Two-way coupling on the Li-filled flaw: plating pressurises the Li in the flaw, and with
    normal_traction the compression (U_mech < 0) holds back plating there, so the Li pressure
    and K_I stay below the uncoupled run's. The step's fixed point is converged: loosening
    mechanics.coupling.rtol from 1e-8 to 1e-4 moves K_I by about that much, not more (the
    staggered scheme, whose fixed-point iteration that rtol stops)."""
    runs = {name: simulation.run(flaw_config(model, rtol, "staggered"), shared_tmp / name)
            for name, model, rtol in (("none", "none", 1e-8), ("tight", "normal_traction", 1e-8),
                                      ("loose", "normal_traction", 1e-4))}
    none, tight, loose = runs["none"], runs["tight"], runs["loose"]
    assert tight["converged"] and tight["steps"] == 2
    with open(shared_tmp / "tight" / "history.csv") as f:
        coupling_its = [int(r["coupling_its"]) for r in csv.DictReader(f)]
    assert max(coupling_its) <= 15, coupling_its
    assert tight["max_p_li"] < 0.9 * none["max_p_li"]
    assert tight["KI_flaw"] < 0.9 * none["KI_flaw"]
    assert loose["KI_flaw"] == pytest.approx(tight["KI_flaw"], rel=1e-3)
    assert loose["max_p_li"] == pytest.approx(tight["max_p_li"], rel=1e-3)


def test_stalled_coupling_is_detected():
    from ecm_fem.coupling import stalled

    converging = [0.96, 0.34, 0.09, 0.12, 0.046, 6.4e-3, 2.1e-4, 1.3e-4, 8.1e-5, 1.4e-5]
    assert not any(stalled(converging[:k]) for k in range(1, len(converging) + 1))
    hovering = [0.87, 4.9, 4.4, 1.1, 0.71, 0.41, 26.7, 0.82]
    assert not stalled(hovering[:6])  # 0.41 < 0.5 * 4.9
    assert stalled(hovering[:7])
