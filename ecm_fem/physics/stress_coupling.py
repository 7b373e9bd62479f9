"""How mechanics enters the interface kinetics (PHYSICS.md section 3.1, ``kinetics.
stress_coupling``): each model maps the interface stresses to a mechanical shift of the
equilibrium potential U_mech [V] and a factor on the exchange current density, so that
    eta = V_we - phi - U_mech,   i0_eff = i0 * factor.

Stresses are Cauchy stresses [Pa], tension positive; sigma_h = tr(sigma) / 3, p = -sigma_h,
sigma_nn = n.sigma.n with n from Li into the electrolyte, sigma_tt = t.sigma.t with t the unit
tangent of the interface in the plane of the analysis (``interface_stress_from_tensors``).
``interface_stress_from_tensors`` builds every measure from the two one-sided stress tensors;
``mechanical_terms`` works on floats, NumPy arrays and UFL expressions alike.

Sources: normal_traction: Shishvan, Fleck, McMeeking, Deshpande, J. Power Sources 456 (2020)
227989 (linearised j = (eta - T_n Omega / F) / Z). hydrostatic: Li(M) <-> Li+ + e- with
dmu = -Omega sigma_h on each side. monroe_newman: Monroe & Newman, J. Electrochem. Soc. 152
(2005) A396, with the stress measures and signs of their two-dimensional interface analysis as
generalised by Ahmad & Viswanathan, Phys. Rev. Lett. 119 (2017) 056003 (public code: GitHub
ahzeeshan/screening-ml, data-gen/calcMu.m, functions chipres, chitau, chisurf); see
``monroe_newman_dmu`` for the formula, its derivation and how it differs from the literal
3D-hydrostatic reading of PHYSICS.md 3.1. ``ecm_fem.stability`` verifies it with finite
elements on Monroe and Newman's own problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ecm_fem.constants import FARADAY, GAS_CONSTANT

MODELS = ("none", "normal_traction", "hydrostatic", "monroe_newman")


@dataclass(frozen=True)
class InterfaceStress:
    """Interface stress measures [Pa] (floats, NumPy arrays or UFL expressions).

    ``interface_stress_from_tensors`` fills every field from the stress tensors; a caller that
    builds the measures itself must fill the ones its model reads: sigma_nn_li
    (normal_traction), sigma_h_li and sigma_h_e (hydrostatic), sigma_nn_li, sigma_nn_e,
    sigma_tt_li, sigma_tt_e and curvature (monroe_newman).

    Attributes:
        sigma_nn_li: normal stress n.sigma.n on the Li side.
        sigma_h_li, sigma_h_e: hydrostatic stress tr(sigma)/3 on the Li / electrolyte side.
        tau_nn_li, tau_nn_e: 3D deviatoric normal component n.(sigma - sigma_h I).n per side
            (an output measure; no model reads it).
        curvature: mean curvature of the interface [1/m], positive where Li bulges into the
            electrolyte.
        sigma_nn_e: normal stress n.sigma.n on the electrolyte side.
        sigma_tt_li, sigma_tt_e: tangential normal stress t.sigma.t on the Li / electrolyte
            side (t: ``interface_stress_from_tensors``).
    """

    sigma_nn_li: Any = 0.0
    sigma_h_li: Any = 0.0
    sigma_h_e: Any = 0.0
    tau_nn_li: Any = 0.0
    tau_nn_e: Any = 0.0
    curvature: Any = 0.0
    sigma_nn_e: Any = 0.0
    sigma_tt_li: Any = 0.0
    sigma_tt_e: Any = 0.0


@dataclass(frozen=True)
class CouplingParameters:
    """omega_li: molar volume of Li [m^3/mol]; omega_li_ion: partial molar volume of Li+ in
    the electrolyte [m^3/mol]; gamma: Li surface energy [J/m^2]; alpha_a [-]; temperature [K]."""

    omega_li: float
    omega_li_ion: float
    gamma: float
    alpha_a: float
    temperature: float


def interface_stress_from_tensors(sigma_li: Any, sigma_e: Any, n: Any, curvature: Any = 0.0,
                                  xp: Any = np, *, tangent: Any = None,
                                  nu: tuple[float, float] | None = None) -> InterfaceStress:
    """Every measure of ``InterfaceStress`` from the one-sided stress tensors at interface
    points.

    Args:
        sigma_li, sigma_e: (..., 3, 3) Cauchy stresses [Pa] on the Li and the electrolyte side
            (2D models: the 3x3 tensors of ``mechanics.stress3``, index 2 out of plane, z or
            the hoop direction).
        n: (..., 3) unit normals from Li into the electrolyte ((..., 2) is padded with 0).
        curvature: mean curvature [1/m], positive where Li bulges into the electrolyte
            (scalar or (...)).
        xp: the array namespace (NumPy).
        tangent: (..., 3) unit tangents t for sigma_tt = t.sigma.t. Default: t = e_3 x n /
            |e_3 x n|, the in-plane tangent of a 2D (plane strain or axisymmetric) model, which
            is the tangent of Monroe and Newman's two-dimensional analysis. On 3D meshes pass
            the direction of the perturbation (e.g. of the larger principal curvature), or
            give ``nu``.
        nu: (nu_li, nu_e), Poisson's ratios [-]: use instead the isotropic 3D rule
            sigma_tt = tr(sigma) / (1 + nu) - sigma_nn per side. For an elastic interface
            field it equals, for every Fourier mode of the interface shape whatever its
            direction, the tangential stress along the mode's wave vector (each mode is a
            plane-strain state in the plane of n and its wave vector, where the third normal
            stress is nu times the sum of the other two); by linearity it is then exact for any
            superposition of modes, and it reduces to the 2D rule in elastic plane strain. It
            does not hold where inelastic strains (Li creep) are present.

    Returns:
        The ``InterfaceStress`` (arrays of shape (...)).
    """
    sigma_li, sigma_e, n = xp.asarray(sigma_li), xp.asarray(sigma_e), xp.asarray(n)
    if n.shape[-1] == 2:
        n = xp.concatenate([n, xp.zeros(n.shape[:-1] + (1,))], axis=-1)

    def quad(a: Any, s: Any, b: Any) -> Any:
        return xp.sum(a[..., :, None] * s * b[..., None, :], axis=(-2, -1))

    if nu is None:
        if tangent is None:
            tangent = xp.stack([-n[..., 1], n[..., 0], xp.zeros(n.shape[:-1])], axis=-1)
            norm = xp.sqrt(xp.sum(tangent * tangent, axis=-1))
            if xp.any(norm < 1e-12):
                raise ValueError("interface_stress_from_tensors: a normal along e_3 has no "
                                 "in-plane tangent; on 3D meshes pass tangent= or nu=")
            tangent = tangent / norm[..., None]
        tangent = xp.asarray(tangent)
    out: dict[str, Any] = {}
    for side, sigma in (("li", sigma_li), ("e", sigma_e)):
        s_nn = quad(n, sigma, n)
        trace = sigma[..., 0, 0] + sigma[..., 1, 1] + sigma[..., 2, 2]
        if nu is None:
            s_tt = quad(tangent, sigma, tangent)
        else:
            s_tt = trace / (1.0 + nu[0 if side == "li" else 1]) - s_nn
        out[f"sigma_nn_{side}"] = s_nn
        out[f"sigma_h_{side}"] = trace / 3.0
        out[f"tau_nn_{side}"] = s_nn - trace / 3.0
        out[f"sigma_tt_{side}"] = s_tt
    return InterfaceStress(curvature=curvature, **out)


def monroe_newman_measures(s: InterfaceStress) -> tuple[Any, Any, Any, Any]:
    """(p_li, p_e, tau_li, tau_e) [Pa]: the pressure p = -(sigma_nn + sigma_tt) / 2 and the
    deviatoric normal stress tau = (sigma_nn - sigma_tt) / 2 of Monroe and Newman's
    two-dimensional analysis on each side (``monroe_newman_dmu``)."""
    return (-0.5 * (s.sigma_nn_li + s.sigma_tt_li), -0.5 * (s.sigma_nn_e + s.sigma_tt_e),
            0.5 * (s.sigma_nn_li - s.sigma_tt_li), 0.5 * (s.sigma_nn_e - s.sigma_tt_e))


def monroe_newman_dmu(s: InterfaceStress, c: CouplingParameters) -> Any:
    """Mechanical change dmu_e [J/mol] of the Monroe-Newman kinetics (positive speeds the
    reaction: i0_eff = i0 exp(alpha_a dmu_e / (R T))). With Omega = Omega_Li, Omega+ =
    Omega_Li+ (electrolyte), kappa the curvature (positive where Li bulges into the
    electrolyte) and the measures of ``monroe_newman_measures``,

        dmu_e = -1/2 (Omega + Omega+) (gamma kappa - (tau^Li - tau^E))
                + 1/2 (Omega - Omega+) (p^Li + p^E),
        p = -(sigma_nn + sigma_tt) / 2,   tau = (sigma_nn - sigma_tt) / 2,

    equivalently 1/2 [Omega+ (sigma_nn^Li + sigma_tt^E) - Omega (sigma_tt^Li + sigma_nn^E)]
    - 1/2 (Omega + Omega+) gamma kappa.

    Why these measures and signs. Monroe and Newman (J. Electrochem. Soc. 152 (2005) A396)
    derive the stresses in two dimensions: two elastic half-spaces in plane strain, bonded,
    the interface displaced by delta cos(kx) in both (their perturbation: the normal
    displacement is prescribed, the tangential displacement is continuous and follows from
    the balance of shear tractions; the normal tractions may jump). Ahmad and Viswanathan
    (Phys. Rev. Lett. 119 (2017) 056003) generalised their stability parameter to any
    Omega+/Omega; in their code (GitHub ahzeeshan/screening-ml, data-gen/calcMu.m) the
    pressure part is chipres = (V_M - V_M+) (G_s^2 (3 - 4 nu_e) - G_e^2 (3 - 4 nu_s)) k /
    (2 D), the deviatoric part chitau = 2 G_e G_s (V_M + V_M+) (2 - 3 nu_s - 3 nu_e
    + 4 nu_e nu_s) k / D, D = G_s (3 - 4 nu_e)(1 - nu_s) + G_e (1 - nu_e)(3 - 4 nu_s), and the
    surface part chisurf = -(V_M + V_M+) gamma k^2 / 2, with chi > 0 unstable (e: electrode,
    Li; s: separator). Solving that elasticity problem in closed form (``ecm_fem.stability``)
    and trying the candidate measures, chipres is exactly 1/2 (V_M - V_M+) (p^Li + p^E) /
    delta and chitau exactly 1/2 (V_M + V_M+) (tau^Li - tau^E) / delta at the peak with the
    in-plane (2D) measures above, and chisurf is -1/2 (V_M + V_M+) gamma kappa / delta with
    kappa = k^2 delta at the peak. The literal reading of PHYSICS.md 3.1 (3D p = -tr(sigma)/3,
    3D deviator, the deviatoric and the surface term with the opposite sign) puts the neutral
    ratio G_E/G_Li at 0.48 instead of 2.16 (G_Li = 3.4 GPa, nu_Li = 0.42, nu_E = 0.33,
    Omega+/Omega = 3.85); with the 2D measures but the written sign it is 0.59 (the negative
    root of the published quadratic in magnitude), with the 3D measures and the corrected
    sign 3.23. The out-of-plane stress (sigma_zz = nu (sigma_xx + sigma_yy) in plane strain)
    is not part of the analysis: it is what the 3D trace adds.

    3D generalisation: p and tau are the in-plane trace and deviatoric normal stress in the
    plane spanned by n and the interface tangent t along which the interface is perturbed;
    ``interface_stress_from_tensors`` takes t in the model's plane for 2D models and offers,
    for 3D elastic fields, the isotropic rule sigma_tt = tr(sigma) / (1 + nu) - sigma_nn, exact
    for every Fourier mode of the interface shape (see there).
    """
    o_sum = c.omega_li + c.omega_li_ion
    o_diff = c.omega_li - c.omega_li_ion
    p_li, p_e, tau_li, tau_e = monroe_newman_measures(s)
    return (-0.5 * o_sum * (c.gamma * s.curvature - (tau_li - tau_e))
            + 0.5 * o_diff * (p_li + p_e))


def mechanical_terms(model: str, s: InterfaceStress, c: CouplingParameters,
                     exp: Any = None) -> tuple[Any, Any]:
    """(U_mech [V], i0 factor [-]) of ``model`` for the stresses ``s``; ``exp`` is the
    exponential of the caller's algebra (default ufl.exp; np.exp for arrays)."""
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
