"""Axisymmetric runs (``geometry.axisymmetric: true``): a 2D mesh in (r, z) = (x, y), r >= 0,
stands for the solid of revolution about the axis x = 0, and every field is independent of the
angle theta (no swirl, no torsion).

Then every integral of the run, bulk and boundary, over the 3D body is the 2D integral weighted
by 2 pi r: the residuals (their Jacobians, derived from them, follow), the totals (current, salt
and vacancy amounts), the areas and volumes. ``weigh`` applies the weight to a whole form, so
the physics modules write their forms once for plane and axisymmetric runs and the run decides.
Totals are then whole-body values: A (total current), mol, m^2 and m^3, not per unit depth.

The axis r = 0 needs no boundary condition for scalar fields (the weight makes it a no-flux
line) and u_r = 0 for the displacement (the lateral "side" roller does it); the lateral side at
r = width is the cylinder's mantle. Strain and stress carry the hoop components
(physics/mechanics.py, ``Kinematics.AXISYMMETRIC``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ufl


def radial_weight(msh: Any) -> Any:
    """2 pi r [m] on ``msh`` (r = x[0]): the factor that turns dx (ds) into the volume (area)
    element of the body of revolution."""
    return 2.0 * np.pi * ufl.SpatialCoordinate(msh)[0]


def weigh(form: Any, axisymmetric: bool) -> Any:
    """``form`` with every integrand multiplied by 2 pi r when ``axisymmetric`` (interior facet
    integrals take r from the '+' side; r is continuous), else ``form`` itself. Apply it once,
    to forms written without the weight."""
    if not axisymmetric or form is None:
        return form
    integrals = []
    for itg in form.integrals():
        w = radial_weight(itg.ufl_domain())
        if itg.integral_type().startswith("interior_facet"):
            w = w("+")
        integrals.append(itg.reconstruct(integrand=w * itg.integrand()))
    return ufl.Form(integrals)


def facet_weights(midpoints: np.ndarray, axisymmetric: bool) -> np.ndarray:
    """The factor that turns the lengths of straight 2D facets with ``midpoints`` (n, 2) [m]
    into the areas of their surfaces of revolution (exact: r is linear along a facet), or
    ones."""
    if not axisymmetric:
        return np.ones(len(midpoints))
    return 2.0 * np.pi * np.asarray(midpoints)[:, 0]
