"""Stress-coupling hook of the kinetics (PHYSICS.md 3.1) on uniform prescribed stress states,
through the full solve; each model must reproduce its closed form.

monroe_newman uses the in-plane measures of Monroe and Newman's analysis (stress_coupling.
monroe_newman_dmu; verified on their problem in test_stability.py), so its expected numbers
changed with that formula.

BV-1 (VERIFICATION.md): zero current, Li under a uniform normal compressive stress p = 10 MPa,
model normal_traction: the open-circuit potential shifts by -Omega_Li p / F = -1.3472 mV.
Note: that table value corresponds to F = 96500 C/mol; with the CODATA F = 96485.332 C/mol the
shift is -1.34736 mV. The test asserts the formula to 1e-8 and the table to 2e-4 mV.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecm_fem import simulation
from ecm_fem.config import RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT, thermal_voltage

OMEGA_LI = 1.30e-5
OMEGA_ION = 1.3e-6  # llzo in the materials library


def config(coupling: str, stress: dict, i: float = 0.0) -> RunConfig:
    return RunConfig.model_validate({
        "geometry": {"width": 4e-6, "li_thickness": 4e-6, "electrolyte_thickness": 20e-6,
                     "mesh_size": 4e-6, "interface_mesh_size": 2e-6},
        "kinetics": {"i0": 10.0, "stress_coupling": coupling, "prescribed_stress": stress},
        "control": {"current_density": i},
    })


@pytest.mark.mpi
def test_bv1_normal_traction_shifts_ocp(shared_tmp):
    p = 10e6
    s = simulation.run(config("normal_traction", {"sigma_nn_li": -p}), shared_tmp / "r")
    assert s["V_cell"] * 1e3 == pytest.approx(-1.3472, abs=2e-4)
    assert s["V_cell"] == pytest.approx(-OMEGA_LI * p / FARADAY, rel=1e-8)


@pytest.mark.mpi
def test_hydrostatic_shift(shared_tmp):
    sh_li, sh_e = -5e6, -20e6
    s = simulation.run(config("hydrostatic", {"sigma_h_li": sh_li,
                                              "sigma_h_electrolyte": sh_e}), shared_tmp / "r")
    expected = (OMEGA_LI * sh_li - OMEGA_ION * sh_e) / FARADAY
    assert s["V_cell"] == pytest.approx(expected, rel=1e-8)


@pytest.mark.mpi
def test_monroe_newman_scales_exchange_current(shared_tmp):
    """The prescribed-stress path offers sigma_nn_li and the curvature of the measures that
    monroe_newman reads (the others are 0): dmu_e = 1/2 Omega_Li+ sigma_nn_li
    - 1/2 (Omega_Li + Omega_Li+) gamma kappa (test_monroe_newman_formula for the rest)."""
    stress = {"sigma_nn_li": -4e6, "sigma_h_li": -3e6, "sigma_h_electrolyte": -8e6,
              "tau_nn_li": 1e6, "tau_nn_electrolyte": -2e6, "curvature": 1e5}
    i = 10.0
    s = simulation.run(config("monroe_newman", stress, i), shared_tmp / "r")
    gamma = 0.556
    dmu = 0.5 * OMEGA_ION * (-4e6) - 0.5 * (OMEGA_LI + OMEGA_ION) * gamma * 1e5
    i0_eff = 10.0 * np.exp(0.5 * dmu / (GAS_CONSTANT * 298.15))
    eta = 2 * thermal_voltage(298.15) * np.arcsinh(i / (2 * i0_eff))
    ohmic = i * 20e-6 / 0.04
    assert s["V_cell"] == pytest.approx(eta + ohmic, rel=1e-8)


def test_monroe_newman_formula():
    """dmu_e of the in-plane measures (stress_coupling.monroe_newman_dmu), written out as
    1/2 [Omega+ (sigma_nn^Li + sigma_tt^E) - Omega (sigma_tt^Li + sigma_nn^E)]
    - 1/2 (Omega + Omega+) gamma kappa, on floats, arrays and UFL expressions."""
    import ufl

    from ecm_fem.physics.stress_coupling import (
        CouplingParameters,
        InterfaceStress,
        mechanical_terms,
        monroe_newman_dmu,
    )

    c = CouplingParameters(OMEGA_LI, OMEGA_ION, 0.556, 0.5, 298.15)
    values = dict(sigma_nn_li=-4e6, sigma_nn_e=-5e6, sigma_tt_li=2e6, sigma_tt_e=-7e6,
                  curvature=3e5, sigma_h_li=1e9, sigma_h_e=1e9, tau_nn_li=1e9, tau_nn_e=1e9)
    expected = (0.5 * (OMEGA_ION * (-4e6 - 7e6) - OMEGA_LI * (2e6 - 5e6))
                - 0.5 * (OMEGA_LI + OMEGA_ION) * 0.556 * 3e5)
    assert monroe_newman_dmu(InterfaceStress(**values), c) == pytest.approx(expected, rel=1e-12)
    arrays = InterfaceStress(**{k: np.full(3, v) for k, v in values.items()})
    assert monroe_newman_dmu(arrays, c) == pytest.approx(np.full(3, expected), rel=1e-12)
    _, factor = mechanical_terms("monroe_newman", arrays, c, exp=np.exp)
    assert factor == pytest.approx(np.exp(0.5 * expected / (GAS_CONSTANT * 298.15)), rel=1e-12)
    x = ufl.variable(ufl.as_ufl(1.0))
    _, factor = mechanical_terms("monroe_newman", InterfaceStress(
        **{**values, "sigma_nn_li": values["sigma_nn_li"] * x}), c)
    assert isinstance(factor, ufl.core.expr.Expr)


def test_coupling_without_stress_is_a_config_error():
    from ecm_fem.config import ConfigError, config_from_text

    with pytest.raises(ConfigError, match="kinetics"):
        config_from_text("kinetics:\n  stress_coupling: hydrostatic\n")
