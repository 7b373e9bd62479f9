"""Interfacial rate laws for Li(metal) <-> Li+ + e- (PHYSICS.md section 3).

Sign convention: anodic (stripping) current is positive; ``eta = V_we - phi - U_mech``; the
returned current density i_n crosses the interface from Li into the electrolyte. The same
functions evaluate UFL expressions (for the forms) and NumPy arrays (for post-processing): pass
the matching ``exp``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl


@dataclass(frozen=True)
class RateLaw:
    """Parameters of one interface's kinetics.

    Attributes:
        model: 'butler_volmer' (default), 'linear' (i0 f (aa + ac) eta) or 'tafel' (the
            dominant exponential branch on each side of eta = 0).
        i0: exchange current density [A/m^2].
        alpha_a, alpha_c: anodic and cathodic transfer coefficients [-].
        f: F / (R T) [1/V].
    """

    model: str
    i0: float
    alpha_a: float
    alpha_c: float
    f: float

    def current(self, eta: Any, i0: Any = None, exp: Callable = ufl.exp) -> Any:
        """i_n(eta) [A/m^2]; ``i0`` may be an expression (stress-modified i0_eff)."""
        i0 = self.i0 if i0 is None else i0
        aa, ac, f = self.alpha_a, self.alpha_c, self.f
        if self.model == "butler_volmer":
            return i0 * (exp(aa * f * eta) - exp(-ac * f * eta))
        if self.model == "linear":
            return i0 * f * (aa + ac) * eta
        if self.model == "tafel":
            if exp is ufl.exp:
                return ufl.conditional(
                    ufl.ge(eta, 0), i0 * exp(aa * f * eta), -i0 * exp(-ac * f * eta)
                )
            eta = np.asarray(eta)
            return np.where(eta >= 0, i0 * np.exp(aa * f * eta), -i0 * np.exp(-ac * f * eta))
        raise ValueError(f"kinetics.model: unknown rate law '{self.model}'")

    def current_numpy(self, eta: np.ndarray) -> np.ndarray:
        return self.current(np.asarray(eta, dtype=float), exp=np.exp)

    def overpotential(self, i: float) -> float:
        """eta [V] that carries current density ``i`` [A/m^2] (inverse of ``current``)."""
        if self.model == "linear":
            return i / (self.i0 * self.f * (self.alpha_a + self.alpha_c))
        if self.model == "butler_volmer" and self.alpha_a == self.alpha_c:
            return np.arcsinh(i / (2 * self.i0)) / (self.alpha_a * self.f)
        # general case: Newton on the monotone scalar law
        eta = 0.0
        for _ in range(100):
            r = float(self.current_numpy(np.array(eta))) - i
            d = (float(self.current_numpy(np.array(eta + 1e-9))) - (r + i)) / 1e-9
            step = r / d
            eta -= step
            if abs(step) < 1e-15:
                break
        return eta
