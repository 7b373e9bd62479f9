"""Fracture metrics of the electrolyte (PHYSICS.md section 4): the J-integral and the mode I and
II stress intensity factors at a crack tip of a 2D plane-strain problem, by the equivalent
domain integral (EDI), and their comparison with the fracture toughness K_Ic. SI units: J
[J/m^2 = N/m], K [Pa m^0.5], lengths [m], moduli [Pa].

Frame and weight. The tip x_tip and the unit vector e1 along the crack, pointing ahead of the
tip, define the tip frame: x1 = (x - x_tip).e1, x2 = (x - x_tip).e2 with e2 = e1 rotated by
+90 degrees; the crack faces lie on x2 = 0, x1 < 0, at polar angle theta = +pi (upper face,
solid at x2 > 0) and -pi. Any tip position and crack direction is allowed (inclined cracks).
The weight q is the P1 interpolant of q(r) = 1 for r <= r_in, 0 for r >= r_out, linear in
between (r = |x - x_tip|): continuous, so its gradient is cell-wise constant and the domain
integrals are integrated without a kink inside a cell. Its support (the cells with a vertex
closer than r_out) must lie in the selected cells, be homogeneous, and touch no boundary other
than the crack faces and symmetry planes along the crack line (checked).

J by the EDI (Li, Shih & Needleman, Eng. Fract. Mech. 21 (1985) 405; Moran & Shih, Eng. Fract.
Mech. 27 (1987) 615; Anderson, Fracture Mechanics, 3rd ed. 2005, ch. 7, the domain integral,
whose thermal-strain term is generalised here to any eigenstrain):
    J = int_A [sigma_ij u_i,1 - W delta_1j] q,j dA + int_A sigma_ij eps*_ij,1 q dA
        - int_faces t_i u_i,1 q ds,
with W = 1/2 sigma : (eps - eps*) the strain-energy density (3x3 tensors, eps_zz = 0 in plane
strain), m the outward normal of the solid, t = sigma.m the traction acting on the crack
faces (their W m_1 term vanishes: m_1 = 0 along the crack line). Derivation: the
divergence theorem on the contour definition J = lim int_Gamma (W n_1 - sigma_ij n_j u_i,1)
with q = 1 on Gamma and 0 on the outer contour; the area term vanishes for a homogeneous
body without eigenstrain or body force, and sigma_ij eps*_ij,1 is what remains otherwise.

Interaction integral (Yau, Wang & Corten, J. Appl. Mech. 47 (1980) 335; Shih & Asaro, J. Appl.
Mech. 55 (1988) 299; Anderson ch. 7, mixed-mode fracture): with the actual state (1) and an
auxiliary state (2)
of the same material,
    I = int_A [sigma1_ij u2_i,1 + sigma2_ij u1_i,1 - W12 delta_1j] q,j dA
        + int_A sigma2_ij eps*_ij,1 q dA - int_faces t1_i u2_i,1 q ds,
    W12 = sigma1_ij eps2_ij,      I = 2 (K_I K_I^aux + K_II K_II^aux) / E',
the auxiliary fields being traction-free on the faces. Mode I (II) auxiliary fields with
K^aux = 1 give K_I (K_II) = E' I / 2. Plane strain: E' = E / (1 - nu^2), and for a
homogeneous body J = (K_I^2 + K_II^2) / E' (Irwin).

Auxiliary fields: the first (singular) Williams terms, tip frame, kappa = 3 - 4 nu (plane
strain), mu = E / (2 (1 + nu)) (Williams, J. Appl. Mech. 24 (1957) 109; Anderson ch. 2, the
mode I and II crack-tip displacement fields; Tada, Paris & Irwin, The Stress Analysis of
Cracks Handbook, 3rd ed. 2000, part I):
    u1 = K_I/(2 mu) sqrt(r/2pi) cos(t/2) [kappa - 1 + 2 sin^2(t/2)]
       + K_II/(2 mu) sqrt(r/2pi) sin(t/2) [kappa + 1 + 2 cos^2(t/2)],
    u2 = K_I/(2 mu) sqrt(r/2pi) sin(t/2) [kappa + 1 - 2 cos^2(t/2)]
       - K_II/(2 mu) sqrt(r/2pi) cos(t/2) [kappa - 1 - 2 sin^2(t/2)].
Their gradient is taken by UFL with respect to r and t (then d/dx1 = cos t d/dr - sin t / r
d/dt, d/dx2 = sin t d/dr + cos t / r d/dt), so that on the crack faces, where t = +-pi sits
on the branch cut of atan2, the side is read from the face's normal instead of the round-off
sign of x2. The auxiliary stress is Hooke's law of their strain (``mechanics.hooke``), which
reproduces the Williams stresses (checked in tests/test_fracture.py).

Half models: a body symmetric about the crack line (u2 = 0 on the ligament ahead of the tip),
meshed on one side only, has mode I only; its domain gives half of J and of the mode I
interaction integral (the integrands are even in x2), so ``half_model=True`` doubles both and
reports K_II = 0.

Loaded crack faces (a pressurised crack, a Li-filled flaw): give the faces inside the domain as
``face_measure``, a ds (faces on the mesh boundary) or dS (faces between the selected cells and
another material) measure. On a dS facet the integrand is evaluated on the side of the selected
cells, whatever DOLFINx's '+'/'-' ordering (weighted by the selected-cell indicator). The
traction on the faces is a prescribed pressure (t = -p m), a prescribed vector, or, on dS
faces, sigma.m of the filling material's stress taken on its own side. The selected side's
own stress would be the wrong choice: its discretisation error near the tip, ~K / sqrt(h) over
the tip element, multiplies the r^-1/2 displacement gradient there into an O(K^2 / E') error
that no refinement removes (measured on a pressurised crack filled with a soft material:
K_I -41 %, -40 %, -40 %, -42 % and J -70 %, -69 %, -68 %, -73 % at h_tip = a/20 ... a/160).

Blunt notch roots (a flaw's semicircular tip; tip = the apex): faces may leave the crack line
inside r_in only (checked), where q = 1, and carry no W m_1 term (nor W12 m_1 - t2.u1,1 in the
interaction integral). The area integral over the whole solid then equals the contour integral
that hugs the root, Rice's J = int_root W n_1 ds of a notch (Rice, J. Appl. Mech. 35 (1968)
379) when it is traction free. With those terms added every face inside r_out carries its
own, and the divergence theorem leaves only singular points, which a notch has none of: J and
K_I came out as 2e-3 ... 6e-3 and 1e-4 of the edge crack's (tests/test_notch_root.py). A loaded
root has a second difficulty: a uniform pressure p, which has no K, gets one of about -0.36 p
sqrt(pi rho) through the auxiliary field's singularity at the apex, on the loaded surface
(measured -0.098, -0.059, -0.033 of the edge crack's at rho/a = 1/10, 1/30, 1/100; zero on
straight faces). So the integrals are taken of the actual state less the uniform state of
in-plane pressure p_ref (sigma* = -p_ref in plane, -2 nu p_ref out of plane in plane strain;
an exact elastic solution whose faces carry -p_ref m), p_ref the q-weighted mean of -t.m over
the faces; the faces then carry t + p_ref m. Exact for a uniform pressure; nothing changes on
straight faces. Slot of depth a, root radius rho, under pressure: K_I / K_ref = 0.958, 0.987,
0.997 (rho/a = 1/10, 1/30, 1/100), converging like rho/a as under remote tension (1.0025,
1.0016, 1.0011), against 0.864, 0.930, 0.965 without the reference state.

Parallel: cell and facet integrals are assembled over owned entities only and summed over
ranks; nothing is evaluated at points; the support checks work on vertices, so a dS
face_measure is the only thing that needs a mesh with shared-facet ghosts. Accuracy: keep r_in
at a few tip elements, so that the r^-1/2 auxiliary stress never meets the quadrature of the
area integrals (grad q = 0 near the tip; with r_in = 0 the error grows to ~2e-3 at 40 P2
elements per a). On the faces the auxiliary gradient's r^-1/2 is integrated by a rule made for
it (``_endpoint_singular_rule``): with 7 Gauss points instead, K_I of a pressurised crack was
off by -2.4 %, -1.2 %, -0.8 %, -0.6 % at h_tip = a/10 ... a/80, converging like h^1/2.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx import mesh as dmesh

from ecm_fem.physics import mechanics as mech

_KIN = mech.Kinematics.PLANE_STRAIN


@dataclass(frozen=True)
class CrackTipResult:
    """Fracture metrics at one crack tip, from one integration domain r_in <= r <= r_out."""

    J: float  #: J-integral [J/m^2]
    K_I: float  #: mode I stress intensity factor [Pa m^0.5]
    K_II: float  #: mode II stress intensity factor [Pa m^0.5] (0 for a half model)
    r_in: float  #: inner radius of the weight q (q = 1 inside) [m]
    r_out: float  #: outer radius of the weight q (q = 0 outside) [m]
    E_prime: float  #: plane-strain modulus E / (1 - nu^2) of the material at the tip [Pa]

    @property
    def J_from_K(self) -> float:
        """(K_I^2 + K_II^2) / E' [J/m^2]: equals J up to discretisation error (a check)."""
        return (self.K_I**2 + self.K_II**2) / self.E_prime

    @property
    def K_from_J(self) -> float:
        """sqrt(E' J) [Pa m^0.5]: the effective (mode-mixed) stress intensity from J."""
        return float(np.sqrt(max(self.J, 0.0) * self.E_prime))


def plane_strain_modulus(E: float, nu: float) -> float:
    """E' = E / (1 - nu^2) [Pa], the modulus of Irwin's relation in plane strain."""
    if not (E > 0 and -1.0 < nu < 0.5):
        raise ValueError(f"plane_strain_modulus: need E > 0 and -1 < nu < 0.5, got E = {E} Pa, "
                         f"nu = {nu}")
    return E / (1.0 - nu * nu)


def j_from_k(K_I: float, K_II: float, E: float, nu: float) -> float:
    """J = (K_I^2 + K_II^2) / E' [J/m^2] (plane strain, Irwin)."""
    return (K_I**2 + K_II**2) / plane_strain_modulus(E, nu)


def k_from_j(J: float, E: float, nu: float) -> float:
    """sqrt(E' J) [Pa m^0.5] (plane strain, Irwin): K_I when the tip is in pure mode I."""
    if J < 0:
        raise ValueError(f"k_from_j: J = {J} J/m^2 is negative")
    return float(np.sqrt(J * plane_strain_modulus(E, nu)))


def k_ratio(result: CrackTipResult | float, K_Ic: float) -> float:
    """K_I / K_Ic [-]: the tip is predicted to propagate in mode I when this reaches 1.

    ``result`` is a CrackTipResult or a K_I [Pa m^0.5]; K_Ic [Pa m^0.5] is the electrolyte's
    fracture toughness."""
    if not K_Ic > 0:
        raise ValueError(f"k_ratio: the fracture toughness K_Ic must be > 0 Pa m^0.5, got {K_Ic}")
    K_I = result.K_I if isinstance(result, CrackTipResult) else float(result)
    return K_I / K_Ic


def williams_displacement_gradient(r: Any, theta: Any, K_I: Any, K_II: Any, E: Any,
                                   nu: Any) -> ufl.core.expr.Expr:
    """Gradient d u_i / d x_j (2x2, tip frame) [-] of the plane-strain Williams near-tip
    displacement with factors K_I, K_II [Pa m^0.5] (module docstring), as UFL of the polar
    coordinates (r [m], theta in [-pi, pi]) of the tip frame."""
    rv, tv = ufl.variable(r), ufl.variable(theta)
    mu = E / (2.0 * (1.0 + nu))
    kappa = 3.0 - 4.0 * nu
    c = ufl.sqrt(rv / (2.0 * np.pi)) / (2.0 * mu)
    ch, sh = ufl.cos(tv / 2.0), ufl.sin(tv / 2.0)
    u = ufl.as_vector([
        K_I * c * ch * (kappa - 1.0 + 2.0 * sh**2) + K_II * c * sh * (kappa + 1.0 + 2.0 * ch**2),
        K_I * c * sh * (kappa + 1.0 - 2.0 * ch**2) - K_II * c * ch * (kappa - 1.0 - 2.0 * sh**2),
    ])
    du_dr, du_dt = ufl.diff(u, rv), ufl.diff(u, tv)
    ct, st = ufl.cos(theta), ufl.sin(theta)
    d1 = ct * du_dr - st / r * du_dt
    d2 = st * du_dr + ct / r * du_dt
    return ufl.as_matrix([[d1[0], d2[0]], [d1[1], d2[1]]])


def _endpoint_singular_rule(n: int) -> dict[str, Any]:
    """An n-point rule on the reference facet [0, 1] for integrands with an s^-1/2 (or
    (1 - s)^-1/2) endpoint singularity, as the auxiliary displacement gradient has on the face
    facet at the tip: Gauss-Legendre in t with s = sin^2(pi t / 2), ds = pi/2 sin(pi t) dt,
    which makes s^-1/2 ds smooth in t at both ends. On int_0^1 s^-1/2 p(s) ds with a quadratic
    p the relative error is 1.5e-2 with 12 Gauss-Legendre points, 5e-16 with 12 points of this
    rule (and 4e-12 on the smooth s^5)."""
    t, w = np.polynomial.legendre.leggauss(n)
    t, w = 0.5 * (t + 1.0), 0.5 * w
    s = np.sin(0.5 * np.pi * t) ** 2
    return {"quadrature_rule": "custom", "quadrature_degree": 2 * n - 1,
            "quadrature_points": s.reshape(-1, 1),
            "quadrature_weights": w * 0.5 * np.pi * np.sin(np.pi * t)}


_FACE_RULE = _endpoint_singular_rule(12)


def _in_plane_strain3(grad2: Any) -> ufl.core.expr.Expr:
    """3x3 plane-strain strain of an in-plane displacement gradient (``mechanics.strain3``
    takes a displacement field; the auxiliary field is known by its gradient)."""
    e = ufl.sym(grad2)
    return ufl.as_tensor([[e[0, 0], e[0, 1], 0.0], [e[1, 0], e[1, 1], 0.0], [0.0, 0.0, 0.0]])


def _in_plane(t3: Any) -> ufl.core.expr.Expr:
    return ufl.as_matrix([[t3[i, j] for j in range(2)] for i in range(2)])


def _form(form: Any) -> fem.Form:
    """fem.form, without UFL's warning about the NumPy arrays of the custom face rule in the
    metadata (they enter the form signature through str(), which is complete for 12 points)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Applying str\\(\\) to a metadata value")
        return fem.form(form)


def _assemble(form: Any, comm: MPI.Comm) -> float:
    return comm.allreduce(fem.assemble_scalar(_form(form)), op=MPI.SUM)


def _tip_modulus(name: str, value: Any, cells: np.ndarray, comm: MPI.Comm, where: str
                 ) -> float:
    """The single value of E or nu on ``cells`` (owned, support of q): a float, a Constant or
    a DG0 Function; ValueError if it varies there."""
    if isinstance(value, fem.Function):
        el = value.function_space.element
        if value.function_space.dofmap.index_map_bs != 1 or el.basix_element.degree != 0:
            raise TypeError(f"{name} must be a float, a Constant or a scalar DG0 Function")
        vals = value.x.array[value.function_space.dofmap.list[cells, 0]].real
        lo = comm.allreduce(float(vals.min()) if vals.size else np.inf, op=MPI.MIN)
        hi = comm.allreduce(float(vals.max()) if vals.size else -np.inf, op=MPI.MAX)
        if hi - lo > 1e-10 * max(abs(hi), abs(lo)):
            raise ValueError(f"{where}: {name} varies from {lo:g} to {hi:g} among the selected "
                             "cells within r_out of the tip; the domain integral needs a "
                             "homogeneous material there (select only the electrolyte's cell "
                             "tags, or reduce r_out)")
        return hi
    if isinstance(value, fem.Constant):
        return float(np.asarray(value.value).item())
    return float(value)


def crack_tip_integrals(
    u: fem.Function,
    E: float | fem.Constant | fem.Function,
    nu: float | fem.Constant | fem.Function,
    cell_tags: dmesh.MeshTags,
    tags: Sequence[int],
    tip: Sequence[float],
    direction: Sequence[float],
    r_in: float,
    r_out: float,
    *,
    eps_inelastic: Any = None,
    face_measure: ufl.Measure | None = None,
    face_pressure: Any = None,
    face_traction: Any = None,
    face_stress: Any = None,
    half_model: bool = False,
    quadrature_degree: int | None = None,
) -> CrackTipResult:
    """J, K_I and K_II at one crack tip of a plane-strain solution (module docstring).
    Collective.

    Args:
        u: displacement [m], vector Lagrange (P1 or P2) on a 2D mesh.
        E: Young's modulus [Pa]: float, Constant or DG0 Function (per-cell moduli); it must
            be uniform on the selected cells within r_out of the tip.
        nu: Poisson's ratio [-], likewise.
        cell_tags: cell tags of u's mesh.
        tags: the tags of the cells the domain integral runs over (the electrolyte's).
        tip: crack-tip coordinates (x, y) [m].
        direction: vector along the crack, pointing ahead of the tip (normalised here).
        r_in, r_out: radii [m] of the weight q (1 inside r_in, 0 outside r_out); r_in a few
            tip elements, r_out inside the selected material and away from other boundaries.
        eps_inelastic: 3x3 UFL inelastic strain [-] as in ``mechanics.stress3`` (None for the
            elastic electrolyte); it must be differentiable in space (its x1-derivative enters).
        face_measure: the loaded crack faces inside the domain: ds(tag) (mesh boundary) or
            dS(tag) (between the selected cells and another material, e.g. Li in a flaw).
            Omit for traction-free faces along the crack line; a traction-free notch root
            (inside r_in) is given with face_pressure=0.0. Needs exactly one of the three
            loads below; their q-weighted mean normal pressure is the reference state's
            (module docstring, blunt notch roots).
        face_pressure: pressure [Pa] on the faces, t = -p m (m the outward normal of the
            selected material); UFL scalar or float, unrestricted.
        face_traction: traction vector [Pa] acting on the selected material at the faces, UFL,
            unrestricted (it is evaluated on the selected side).
        face_stress: 3x3 UFL stress [Pa] of the material filling the crack (e.g.
            ``mechanics.stress3`` with the Li moduli and creep strain), dS faces only: t =
            sigma.m from the filling side. Not the selected side's own stress: near the tip
            its discretisation error (~K / sqrt(h) over the tip element) meets the r^-1/2
            displacement gradient and costs an O(1) error in J and K that does not go away
            under refinement (measured: K_I -40 %, J -70 % at any h; module docstring).
        half_model: the mesh is one half of a body symmetric about the crack line: J and K_I
            are doubled, K_II = 0.
        quadrature_degree: of the area integrals (default 2 k + 4 for P_k); the faces use a
            12-point rule for the r^-1/2 singularity at the tip (``_endpoint_singular_rule``).

    Returns:
        CrackTipResult with J [J/m^2], K_I, K_II [Pa m^0.5], the radii and E'.
    """
    msh = u.function_space.mesh
    comm = msh.comm
    tdim = msh.topology.dim
    where = f"crack_tip_integrals (tip {tuple(float(c) for c in tip)})"
    if msh.geometry.dim != 2 or tdim != 2 or ufl.shape(u) != (2,):
        raise ValueError(f"{where}: needs a 2D vector displacement on a 2D mesh (plane strain)")
    if cell_tags.dim != tdim:
        raise ValueError(f"{where}: cell_tags has dimension {cell_tags.dim}, expected {tdim}")
    if not 0.0 <= r_in < r_out:
        raise ValueError(f"{where}: need 0 <= r_in < r_out, got r_in = {r_in} m, "
                         f"r_out = {r_out} m")
    n_loads = sum(f is not None for f in (face_pressure, face_traction, face_stress))
    if face_measure is None and n_loads:
        raise ValueError(f"{where}: a face load needs the face_measure it acts on")
    if face_measure is not None and n_loads != 1:
        raise ValueError(f"{where}: the faces of face_measure need exactly one of "
                         f"face_pressure, face_traction, face_stress (got {n_loads}); "
                         "traction-free faces along the crack line need no face_measure, "
                         "a traction-free notch root face_pressure=0.0")
    tags = tuple(int(t) for t in tags)
    tip_xy = np.asarray(tip, dtype=float).ravel()[:2]
    e1_xy = np.asarray(direction, dtype=float).ravel()[:2]
    if np.linalg.norm(e1_xy) == 0.0:
        raise ValueError(f"{where}: the crack direction must be a nonzero vector")
    e1_xy = e1_xy / np.linalg.norm(e1_xy)
    k = u.function_space.element.basix_element.degree
    qdeg = quadrature_degree or 2 * k + 4

    # the support of q among the selected cells (owned): homogeneous material
    n_owned = msh.topology.index_map(tdim).size_local
    sel = np.isin(cell_tags.values, tags)
    cells = cell_tags.indices[sel]
    cells = cells[cells < n_owned]
    gx = msh.geometry.x[:, :2]
    dist = np.linalg.norm(gx[msh.geometry.dofmap[cells]] - tip_xy, axis=2).min(axis=1)
    support = cells[dist < r_out]
    if comm.allreduce(support.size, op=MPI.SUM) == 0:
        raise ValueError(f"{where}: no cell of tags {tags} lies within r_out = {r_out} m of "
                         "the tip")
    E_tip = _tip_modulus("E", E, support, comm, where)
    nu_tip = _tip_modulus("nu", nu, support, comm, where)
    E_prime = plane_strain_modulus(E_tip, nu_tip)

    # weight q (P1) and the indicator of the selected cells (DG0, ghosts updated)
    q = fem.Function(fem.functionspace(msh, ("Lagrange", 1)))
    q.interpolate(lambda x: np.clip(
        (r_out - np.hypot(x[0] - tip_xy[0], x[1] - tip_xy[1])) / (r_out - r_in), 0.0, 1.0))
    chi = fem.Function(fem.functionspace(msh, ("DG", 0)))
    chi.x.array[chi.function_space.dofmap.list[cells, 0]] = 1.0
    chi.x.scatter_forward()

    # tip frame; Constants keep the generated code the same for every tip and radius
    tip_c = fem.Constant(msh, tip_xy)
    e1 = fem.Constant(msh, e1_xy)
    e2 = ufl.as_vector([-e1[1], e1[0]])
    E_c, nu_c = fem.Constant(msh, E_tip), fem.Constant(msh, nu_tip)
    k_aux = fem.Constant(msh, np.array([1.0, 0.0]))
    x = ufl.SpatialCoordinate(msh)
    x1, x2 = ufl.dot(x - tip_c, e1), ufl.dot(x - tip_c, e2)
    r = ufl.sqrt(x1**2 + x2**2)
    R = ufl.as_matrix([[e1[0], e2[0]], [e1[1], e2[1]]])  # tip frame -> global

    def aux_gradient(theta):
        G = williams_displacement_gradient(r, theta, k_aux[0], k_aux[1], E_c, nu_c)
        return R * G * R.T

    # actual state, less the uniform reference state of in-plane pressure p_ref (set below from
    # the face load; 0 without one): sigma* = -p_ref (e_x e_x + e_y e_y + 2 nu e_z e_z)
    p_ref = fem.Constant(msh, 0.0)
    eps_ref = (-p_ref * (1.0 + nu_c) * (1.0 - 2.0 * nu_c) / E_c
               * ufl.as_tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    sig = mech.stress3(u, E, nu, _KIN, eps_inelastic) - mech.hooke(eps_ref, E_c, nu_c)
    eps = mech.strain3(u, _KIN) - eps_ref
    eps_el = eps if eps_inelastic is None else eps - eps_inelastic
    W = 0.5 * ufl.inner(sig, eps_el)
    S = _in_plane(sig)
    du1 = ufl.dot(ufl.grad(u) - _in_plane(eps_ref), e1)
    # auxiliary state
    G2 = aux_gradient(ufl.atan2(x2, x1))
    eps2 = _in_plane_strain3(G2)
    sig2 = mech.hooke(eps2, E_c, nu_c)
    du2 = ufl.dot(G2, e1)

    gq = ufl.grad(q)
    J_area = ufl.dot(ufl.dot(S, gq), du1) - W * ufl.dot(e1, gq)
    I_area = (ufl.dot(ufl.dot(S, gq), du2) + ufl.dot(ufl.dot(_in_plane(sig2), gq), du1)
              - ufl.inner(sig, eps2) * ufl.dot(e1, gq))
    if eps_inelastic is not None:
        deps_1 = ufl.dot(ufl.grad(eps_inelastic), e1)
        J_area += q * ufl.inner(sig, deps_1)
        I_area += q * ufl.inner(sig2, deps_1)
    dx = ufl.Measure("dx", domain=msh, subdomain_data=cell_tags,
                     metadata={"quadrature_degree": qdeg})(tags)
    J_form = J_area * dx
    I_form = I_area * dx

    n = ufl.FacetNormal(msh)
    if face_measure is not None:
        interior = face_measure.integral_type() == "interior_facet"
        if face_measure.integral_type() not in ("exterior_facet", "interior_facet"):
            raise ValueError(f"{where}: face_measure must be a ds or dS measure, got "
                             f"{face_measure.integral_type()}")
        dface = face_measure.reconstruct(metadata={**_FACE_RULE, **face_measure.metadata()})

        ghosts = msh.topology.index_map(tdim).num_ghosts
        if interior and comm.allreduce(int(comm.size > 1 and ghosts == 0 and n_owned > 0),
                                       op=MPI.MAX):
            raise ValueError(f"{where}: a dS face_measure in parallel needs a mesh with "
                             "shared-facet ghosts (partitioner of model_to_mesh / create_mesh "
                             "made with dolfinx.mesh.GhostMode.shared_facet)")
        if face_stress is not None and not interior:
            raise ValueError(f"{where}: face_stress is the stress across a dS face; on ds faces "
                             "give face_pressure or face_traction")

        def on_selected_side(expr_of):
            """expr_of(restrict to the selected side, restrict to the other side) on the
            selected cells' side of each face facet."""
            if not interior:
                return expr_of(lambda e: e, None)
            return (chi("+") * expr_of(lambda e: e("+"), lambda e: e("-"))
                    + chi("-") * expr_of(lambda e: e("-"), lambda e: e("+")))

        def load(rs, other):
            """The traction [Pa] acting on the selected material at the faces."""
            if face_pressure is not None:
                return -rs(face_pressure * n)
            if face_traction is not None:
                return rs(face_traction)
            return mech.traction(other(face_stress), rs(n))

        # the reference pressure: the mean normal face pressure, weight q
        weight = _assemble(on_selected_side(lambda rs, other: rs(q)) * dface, comm)
        if weight > 0.0:
            p_ref.value = _assemble(on_selected_side(
                lambda rs, other: -ufl.dot(load(rs, other), rs(n)) * rs(q)) * dface, comm) / weight

        def face_terms(rs, other):
            m = rs(n)
            t = load(rs, other) + p_ref * m  # less the reference state's traction -p_ref m
            # theta = +-pi on the faces, the side from the normal (upper face: m.e2 < 0)
            side = ufl.conditional(ufl.lt(ufl.dot(m, e2), 0.0), 1.0, -1.0)
            cos_t = ufl.max_value(-1.0, ufl.min_value(1.0, x1 / r))
            du2_face = ufl.dot(aux_gradient(side * ufl.acos(cos_t)), e1)
            # no W m_1 term on a notch root: it is inside r_in (module docstring)
            return ufl.as_vector([-ufl.dot(t, rs(du1)) * rs(q), -ufl.dot(t, du2_face) * rs(q)])

        terms = on_selected_side(face_terms)
        J_form += terms[0] * dface
        I_form += terms[1] * dface
        beyond = fem.Function(q.function_space)  # 1 where r > r_in (P1, so a smooth switch)
        beyond.interpolate(lambda x: (np.hypot(x[0] - tip_xy[0], x[1] - tip_xy[1])
                                      > r_in).astype(float))
        _check_faces(msh, q, chi, n, e1, dface, interior, r_out, where, beyond)
    _check_support(msh, q, chi, cells, n, e1, face_measure, r_out, where)

    scale = 2.0 if half_model else 1.0
    J = scale * _assemble(J_form, comm)
    I_compiled = _form(I_form)
    K = []
    for weights in ((1.0, 0.0), (0.0, 1.0)):
        k_aux.value[:] = weights
        K.append(0.5 * E_prime * scale
                 * comm.allreduce(fem.assemble_scalar(I_compiled), op=MPI.SUM))
    K_II = 0.0 if half_model else K[1]
    return CrackTipResult(J=J, K_I=K[0], K_II=K_II, r_in=float(r_in), r_out=float(r_out),
                          E_prime=E_prime)


def _check_faces(msh, q, chi, n, e1, dface, interior: bool, r_out: float, where: str,
                 beyond_r_in: Any) -> None:
    """The face facets inside r_out have exactly one selected side (dS) or a selected cell
    (ds)."""
    comm = msh.comm
    if interior:
        one_side = (chi("+") + chi("-") - 1.0) ** 2 * q("+")
        tilt = ufl.dot(n("+"), e1) ** 2 * q("+") * beyond_r_in("+")
    else:
        one_side = (1.0 - chi) ** 2 * q
        tilt = ufl.dot(n, e1) ** 2 * q * beyond_r_in
    bad_side, bad_tilt = (_assemble(f * dface, comm) for f in (one_side, tilt))
    if bad_side > 0.0:
        raise ValueError(f"{where}: face_measure has facets ({bad_side:.3g} m) that are not "
                         "between a selected and an unselected cell (dS) or not on a selected "
                         "cell (ds)")
    if bad_tilt > 1e-10 * r_out:
        raise ValueError(f"{where}: face_measure has facets between r_in and r_out whose normal "
                         "is not perpendicular to the crack direction: the faces must lie on "
                         "the crack line behind the tip (only a notch root inside r_in may turn)")


def _check_support(msh, q, chi, cells, n, e1, face_measure, r_out: float, where: str) -> None:
    """q must vanish on the boundary of the selected region except on the given faces, and on
    the mesh boundary except where it runs along the crack line (traction-free crack faces,
    symmetry planes). The region boundary is checked by vertices (those of selected and of
    unselected cells, with q > 0 and not on a face facet), so that no interior-facet integral
    is needed: meshes without shared-facet ghosts can be checked too."""
    comm = msh.comm
    tdim = msh.topology.dim
    V1 = q.function_space
    n_owned = msh.topology.index_map(tdim).size_local
    dofs = V1.dofmap.list[:n_owned]
    selected = np.zeros(n_owned, dtype=bool)
    selected[cells] = True

    def vertex_mark(dof_lists) -> np.ndarray:
        f = fem.Function(V1)
        np.add.at(f.x.array, np.asarray(dof_lists, dtype=np.int32).ravel(), 1.0)
        f.x.scatter_reverse(la.InsertMode.add)
        f.x.scatter_forward()
        return f.x.array > 0.0

    leaks = vertex_mark(dofs[selected]) & vertex_mark(dofs[~selected]) & (q.x.array > 0.0)
    if face_measure is not None:
        tags, ids = face_measure.subdomain_data(), face_measure.subdomain_id()
        if not isinstance(tags, dmesh.MeshTags) or ids == "everywhere":
            raise ValueError(f"{where}: face_measure must select tagged facets, e.g. "
                             "ufl.Measure('dS', msh, subdomain_data=facet_tags)(tag)")
        ids = (ids,) if isinstance(ids, int | np.integer) else tuple(ids)
        facets = tags.indices[np.isin(tags.values, ids)]
        leaks &= ~vertex_mark(fem.locate_dofs_topological(V1, tdim - 1, facets))
    n_dofs = V1.dofmap.index_map.size_local
    n_leaks = comm.allreduce(int(np.count_nonzero(leaks[:n_dofs])), op=MPI.SUM)
    if n_leaks:
        raise ValueError(f"{where}: the weight q (r_out = {r_out} m) reaches the boundary of the "
                         f"selected cells at {n_leaks} vertices; reduce r_out, or give the loaded "
                         "faces there as a dS face_measure")
    leak_ext = _assemble(chi * q * ufl.dot(n, e1) ** 2 * ufl.ds(domain=msh), comm)
    if face_measure is not None and face_measure.integral_type() == "exterior_facet":
        leak_ext -= _assemble(chi * q * ufl.dot(n, e1) ** 2 * face_measure, comm)
    if leak_ext > 1e-10 * r_out:
        raise ValueError(f"{where}: the weight q (r_out = {r_out} m) reaches a mesh boundary "
                         "that does not run along the crack line; reduce r_out")
