"""Interfacial void (2D, half void on the symmetry line): geometry measures against the analytic
shape, and current focusing at the insulating void edge.

Focusing physics (Newman, "Resistance for flow of current to a disk", J. Electrochem. Soc. 113
(1966) 501, and Newman & Thomas-Alyea, Electrochemical Systems, 3rd ed., section 18.4): with
linear kinetics the distribution is governed by the Wagner number Wa = kappa / (i0 f a), the
ratio of kinetic to ohmic resistance over the void size a. For Wa >> 1 the current is uniform
over the contact (focusing factor -> 1). For Wa -> 0 it approaches the primary distribution,
which is singular like r^(-1/2) at an electrode | insulator junction meeting at 180 degrees, so
the peak grows without bound under mesh refinement. Whatever Wa, charge conservation fixes the
contact-mean current at i_app W / (W - a).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, A, L_LI = 20e-6, 5e-6, 10e-6
KAPPA = 0.04
F_RT = 1 / thermal_voltage(298.15)


def void_config(refine: float = 1.0, **kinetics) -> RunConfig:
    return RunConfig.model_validate({
        "geometry": {"kind": "interfacial_void", "width": W, "li_thickness": L_LI,
                     "electrolyte_thickness": 50e-6, "void_half_width": A, "void_depth": A,
                     "mesh_size": 5e-6 / refine, "interface_mesh_size": 1e-6 / refine},
        "kinetics": kinetics or {},
        "control": {"current_density": -10.0},
    })


@pytest.mark.mpi
def test_void_measures_converge_to_the_shape():
    """Quarter-circle void (a = b): Li area W L_li - pi a^2 / 4, void surface a + pi a / 2
    (electrolyte face + arc), interface W - a. The straight parts are exact; the arc is
    approximated by chords, so the error is O(h^2): below 5e-4 relative on the default mesh
    and at least 2x smaller per halving of h."""
    errors = []
    for refine in (1, 2, 4):
        md = generate(void_config(refine))
        li = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"])
        el = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"])
        vs = tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS["void_surface"])
        itf = tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
        assert itf == pytest.approx(W - A, rel=1e-12)
        assert el == pytest.approx(W * 50e-6, rel=1e-12)
        errors.append((abs(li / (W * L_LI - np.pi * A**2 / 4) - 1),
                       abs(vs / (A + np.pi * A / 2) - 1)))
    errors = np.array(errors)
    assert errors[0].max() < 5e-4
    assert np.all(errors[1:] < errors[:-1] / 2)


@pytest.mark.mpi
def test_contact_mean_current_is_conserved(shared_tmp):
    s = simulation.run(void_config(), shared_tmp / "r")
    assert s["contact_fraction"] == pytest.approx((W - A) / W, rel=1e-12)
    assert s["i_mean"] == pytest.approx(-10.0 * W / (W - A), rel=1e-8)
    assert s["focusing_factor"] > 1.0


def _focusing(shared_tmp, wagner: float, refine: float = 1.0) -> float:
    i0 = KAPPA / (wagner * F_RT * A)
    s = simulation.run(void_config(refine, model="linear", i0=i0), shared_tmp / "r")
    return s["focusing_factor"]


@pytest.mark.mpi
def test_focusing_grows_as_the_wagner_number_falls(shared_tmp):
    wa = [100.0, 10.0, 1.0, 0.1, 0.01]
    ff = [_focusing(shared_tmp, w) for w in wa]
    assert all(b > a for a, b in zip(ff, ff[1:], strict=False)), ff
    assert ff[0] - 1 < 0.01  # kinetics-dominated: nearly uniform
    assert ff[-1] > 2.0  # near-primary: strong edge peak


@pytest.mark.mpi
def test_primary_limit_is_singular_secondary_is_not(shared_tmp):
    """Refining the mesh leaves the focusing factor unchanged at Wa = 10 but raises it at
    Wa = 1e-3 (the r^(-1/2) edge singularity of the primary distribution)."""
    coarse, fine = _focusing(shared_tmp, 10.0, 1), _focusing(shared_tmp, 10.0, 4)
    assert fine == pytest.approx(coarse, rel=2e-3)
    coarse, fine = _focusing(shared_tmp, 1e-3, 1), _focusing(shared_tmp, 1e-3, 4)
    assert fine > 1.3 * coarse


def test_void_wider_than_cell_is_a_config_error():
    with pytest.raises(ConfigError, match=r"geometry \(line 1\): void_half_width = 2e-05 m "
                       "must be smaller than width"):
        config_from_text("geometry:\n  kind: interfacial_void\n  width: 1.0e-5\n"
                         "  void_half_width: 2.0e-5\n")
    with pytest.raises(ConfigError, match="unknown geometry kind"):
        config_from_text("geometry:\n  kind: hexagon\n")


@pytest.mark.mpi
def test_butler_volmer_far_in_the_tafel_regime_converges(shared_tmp):
    """i0 = 0.1 A/m^2 carrying 13 A/m^2 needs eta near -0.25 V; Newton from V_we = 0 overshoots
    to exp(66) and diverged before the galvanostatic initial guess and the line search. The
    overpotential must match the Butler-Volmer inverse at the contact-mean current within the
    spread that focusing adds (the factor is about 1.02 here)."""
    s = simulation.run(void_config(i0=0.1), shared_tmp / "r")
    assert s["converged"] and s["newton_its"] <= 10
    assert s["i_mean"] == pytest.approx(-10.0 * W / (W - A), rel=1e-8)
    eta_uniform = 2 * thermal_voltage(298.15) * np.arcsinh(s["i_mean"] / 0.2)
    ohmic_bound = abs(s["i_max"]) * 50e-6 / KAPPA
    assert eta_uniform - ohmic_bound - 0.01 < s["V_we"] < eta_uniform
