"""Charge conservation in single-ion conductors (PHYSICS.md section 2): div(kappa grad phi) = 0
in every ion-conducting region, j = -kappa grad phi, phi and j.n continuous between regions.

The weak form with test function v, outward normal n_out of the ion-conducting domain, is
    int kappa grad(phi).grad(v) dx + int (j.n_out) v ds = 0,
and on the Li interface j.n_out = -i_n (n_out = -n, n pointing from Li into the electrolyte);
on a Butler-Volmer counter boundary j.n_out = -i_c with i_c the current leaving that electrode.
"""

from __future__ import annotations

from typing import Any

import ufl


def ohmic_residual(phi: Any, v: Any, kappa: Any, dx: ufl.Measure) -> ufl.Form:
    """Bulk part of the charge-conservation residual [A per unit depth in 2D]."""
    return kappa * ufl.inner(ufl.grad(phi), ufl.grad(v)) * dx


def electrode_flux_residual(i_into_electrolyte: Any, v: Any, ds: ufl.Measure) -> ufl.Form:
    """Boundary term of an electrode that injects ``i_into_electrolyte`` [A/m^2]."""
    return -i_into_electrolyte * v * ds


def current_density(phi: Any, kappa: Any) -> Any:
    """j = -kappa grad phi [A/m^2]."""
    return -kappa * ufl.grad(phi)
