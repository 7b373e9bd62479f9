"""How mechanics enters the interface kinetics (PHYSICS.md section 3.1, ``kinetics.
stress_coupling``): each model maps the interface stresses to a mechanical shift of the
equilibrium potential U_mech [V] and a factor on the exchange current density, so that
    eta = V_we - phi - U_mech,   i0_eff = i0 * factor.

Stresses are Cauchy stresses [Pa], tension positive; sigma_h = tr(sigma) / 3, p = -sigma_h,
sigma_nn = n.sigma.n with n from Li into the electrolyte. The mechanics module supplies them as
UFL expressions; until it exists (and in verification tests) they are prescribed uniform values.

Sources: normal_traction: Shishvan, Fleck, McMeeking, Deshpande, J. Power Sources 456 (2020)
227989 (linearised j = (eta - T_n Omega / F) / Z). hydrostatic: Li(M) <-> Li+ + e- with
dmu = -Omega sigma_h on each side. monroe_newman: Monroe & Newman, J. Electrochem. Soc. 152
(2005) A396, in the form written in PHYSICS.md 3.1. PHYSICS.md notes that the literal
3D-hydrostatic reading of that formula does not reproduce the published stability criterion;
the coupled-problem issue settles which stress measures to use. Here the formula is implemented
as written and verified only on uniform stress states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecm_fem.constants import FARADAY, GAS_CONSTANT

MODELS = ("none", "normal_traction", "hydrostatic", "monroe_newman")


@dataclass(frozen=True)
class InterfaceStress:
    """Interface stress measures [Pa] (floats or UFL expressions).

    Attributes:
        sigma_nn_li: normal stress n.sigma.n on the Li side.
        sigma_h_li, sigma_h_e: hydrostatic stress tr(sigma)/3 on the Li / electrolyte side.
        tau_nn_li, tau_nn_e: deviatoric normal component n.(sigma - sigma_h I).n per side.
        curvature: mean curvature of the interface [1/m], positive where Li bulges into the
            electrolyte.
    """

    sigma_nn_li: Any = 0.0
    sigma_h_li: Any = 0.0
    sigma_h_e: Any = 0.0
    tau_nn_li: Any = 0.0
    tau_nn_e: Any = 0.0
    curvature: Any = 0.0


@dataclass(frozen=True)
class CouplingParameters:
    """omega_li: molar volume of Li [m^3/mol]; omega_li_ion: partial molar volume of Li+ in
    the electrolyte [m^3/mol]; gamma: Li surface energy [J/m^2]; alpha_a [-]; temperature [K]."""

    omega_li: float
    omega_li_ion: float
    gamma: float
    alpha_a: float
    temperature: float


def monroe_newman_dmu(s: InterfaceStress, c: CouplingParameters) -> Any:
    """dmu_e [J/mol] of PHYSICS.md 3.1 (positive speeds the reaction)."""
    o_sum = c.omega_li + c.omega_li_ion
    o_diff = c.omega_li - c.omega_li_ion
    p_li, p_e = -s.sigma_h_li, -s.sigma_h_e
    return (-0.5 * o_sum * (-c.gamma * s.curvature + (s.tau_nn_li - s.tau_nn_e))
            + 0.5 * o_diff * (p_li + p_e))


def mechanical_terms(model: str, s: InterfaceStress, c: CouplingParameters,
                     exp: Any = None) -> tuple[Any, Any]:
    """(U_mech [V], i0 factor [-]) of ``model`` for the stresses ``s``."""
    if model == "none":
        return 0.0, 1.0
    if model == "normal_traction":
        return c.omega_li * s.sigma_nn_li / FARADAY, 1.0
    if model == "hydrostatic":
        return (c.omega_li * s.sigma_h_li - c.omega_li_ion * s.sigma_h_e) / FARADAY, 1.0
    if model == "monroe_newman":
        if exp is None:
            import ufl

            exp = ufl.exp
        dmu = monroe_newman_dmu(s, c)
        return 0.0, exp(c.alpha_a * dmu / (GAS_CONSTANT * c.temperature))
    raise ValueError(f"kinetics.stress_coupling: unknown model '{model}' (known: {MODELS})")
