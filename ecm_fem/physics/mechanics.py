"""Small-strain, quasi-static, isotropic linear elasticity (PHYSICS.md section 4): kinematics,
Hooke's law, the weak residual of div sigma = 0, stress measures, and the rigid-body near-null
space that algebraic multigrid needs on the displacement block. SI units: u [m], stresses and
moduli [Pa]; residuals are forces [N] (3D and axisymmetric, where the 2 pi r weight makes
them total forces) or forces per unit depth [N/m] (plane strain).

Three kinematics, all with strain and stress as 3x3 tensors, so that inelastic strains (Li
creep, whose out-of-plane component is nonzero under plane strain; growth eigenstrain) are
subtracted in full 3D form, sigma = C : (eps(u) - eps_inelastic):

- ``plane_strain``: 2D mesh in (x, y), u = (u_x, u_y), eps_zz = eps_xz = eps_yz = 0; component
  index 2 is z, out of plane.
- ``axisymmetric``: 2D mesh in (r, z) = (x, y) with r >= 0, u = (u_r, u_z), no torsion; index
  2 is the hoop direction theta, eps_tt = u_r / r; the volume element is 2 pi r dx, so every
  bulk and boundary integral carries the weight 2 pi r (``measure_weight``). On the axis r = 0
  impose u_r = 0; u_z is free there (the weight makes the axis term vanish).
- ``3d``: u = (u_x, u_y, u_z), eps = sym(grad u).

In 2D the in-plane components are indices 0 and 1 in both kinematics, so the same code reads
in-plane stresses either way. The sign convention is tension positive; the hydrostatic stress
is sigma_h = tr(sigma) / 3, the pressure p = -sigma_h.

The residual of the weak form, with test function v and outward unit normal n,
    F(u; v) = int sigma(u) : eps(v) w dx - int f.v w dx - int t.v w ds,
w = 2 pi r (axisymmetric) or 1, is assembled from ``elastic_residual``,
``body_force_residual`` and ``traction_residual`` (``pressure_residual`` for t = -p n).
"""

from __future__ import annotations

import enum
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import ufl
from dolfinx import fem, la
from ufl.domain import extract_unique_domain

from ecm_fem.axisymmetry import radial_weight


class Kinematics(enum.StrEnum):
    """How a mesh of dimension gdim represents the solid (module docstring)."""

    PLANE_STRAIN = "plane_strain"
    AXISYMMETRIC = "axisymmetric"
    THREE_D = "3d"


def _kinematics(kind: Kinematics | str) -> Kinematics:
    try:
        return Kinematics(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in Kinematics)
        raise ValueError(f"mechanics kinematics: '{kind}' is not one of {allowed}") from None


def _check_dim(gdim: int, kind: Kinematics) -> None:
    expected = 3 if kind is Kinematics.THREE_D else 2
    if gdim != expected:
        raise ValueError(f"mechanics kinematics '{kind.value}' needs a {expected}D displacement "
                         f"(mesh geometric dimension {expected}), got {gdim}D")


# -- kinematics ---------------------------------------------------------------------------


def strain3(u: Any, kind: Kinematics | str) -> ufl.core.expr.Expr:
    """Small strain eps(u) as a 3x3 tensor [-] (index order in the module docstring).

    In the axisymmetric case the hoop strain u_r / r is replaced on the axis (r <= 0, only met
    when a stress is evaluated at nodes there, never at quadrature points) by its limit
    du_r/dr, so nodal interpolation of stresses stays finite.
    """
    kind = _kinematics(kind)
    gdim = ufl.shape(u)[0]
    _check_dim(gdim, kind)
    g = ufl.grad(u)
    if kind is Kinematics.THREE_D:
        return ufl.sym(g)
    exy = 0.5 * (g[0, 1] + g[1, 0])
    ezz: Any = 0.0
    if kind is Kinematics.AXISYMMETRIC:
        r = ufl.SpatialCoordinate(extract_unique_domain(u))[0]
        ezz = ufl.conditional(ufl.gt(r, 0.0), u[0] / r, g[0, 0])
    return ufl.as_tensor([[g[0, 0], exy, 0.0],
                          [exy, g[1, 1], 0.0],
                          [0.0, 0.0, ezz]])


def measure_weight(msh: Any, kind: Kinematics | str) -> Any:
    """Factor of dx and ds that turns a 2D integral into the solid's: 2 pi r (axisymmetric,
    r = x[0]) or 1 (plane strain: per unit depth; 3D)."""
    if _kinematics(kind) is Kinematics.AXISYMMETRIC:
        return radial_weight(msh)
    return 1.0


# -- constitutive law ---------------------------------------------------------------------


def lame_parameters(E: Any, nu: Any) -> tuple[Any, Any]:
    """(lambda, mu) [Pa] from Young's modulus E [Pa] and Poisson's ratio nu [-]."""
    lmbda = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
    mu = E / (2.0 * (1.0 + nu))
    return lmbda, mu


def hooke(eps3: Any, E: Any, nu: Any) -> ufl.core.expr.Expr:
    """Isotropic Hooke's law sigma = lambda tr(eps) I + 2 mu eps [Pa] on a 3x3 elastic strain.

    E [Pa] and nu [-] may be floats, Constants or (DG0) Functions, for per-region moduli.
    Prefer DG0 Functions (set from cell tags) to ufl.conditional on coordinates: Basix's
    default tetrahedron rules of degree 4, 5 and 7 have points on cell faces, where a
    coordinate test at an interface picks a side by round-off.
    """
    lmbda, mu = lame_parameters(E, nu)
    return lmbda * ufl.tr(eps3) * ufl.Identity(3) + 2.0 * mu * eps3


def stress3(u: Any, E: Any, nu: Any, kind: Kinematics | str,
            eps_inelastic: Any = None) -> ufl.core.expr.Expr:
    """Cauchy stress sigma = C : (eps(u) - eps_inelastic) as a 3x3 tensor [Pa].

    ``eps_inelastic`` is a 3x3 tensor (creep plus growth eigenstrain) or None.
    """
    eps = strain3(u, kind)
    if eps_inelastic is not None:
        if ufl.shape(eps_inelastic) != (3, 3):
            raise ValueError("eps_inelastic must be a 3x3 tensor (the out-of-plane components "
                             f"matter in 2D), got shape {ufl.shape(eps_inelastic)}")
        eps = eps - eps_inelastic
    return hooke(eps, E, nu)


# -- residual pieces ----------------------------------------------------------------------


def elastic_residual(u: Any, v: Any, E: Any, nu: Any, kind: Kinematics | str,
                     dx: ufl.Measure, eps_inelastic: Any = None) -> ufl.Form:
    """Internal virtual work int sigma(u) : eps(v) w dx [N, or N/m in plane strain]."""
    w = measure_weight(extract_unique_domain(u), kind)
    sigma = stress3(u, E, nu, kind, eps_inelastic)
    return ufl.inner(sigma, strain3(v, kind)) * w * dx


def body_force_residual(f: Any, v: Any, kind: Kinematics | str, dx: ufl.Measure) -> ufl.Form:
    """-int f.v w dx for a body force density f [N/m^3] (gdim components)."""
    return -ufl.dot(f, v) * measure_weight(extract_unique_domain(v), kind) * dx


def traction_residual(t: Any, v: Any, kind: Kinematics | str, ds: ufl.Measure) -> ufl.Form:
    """-int t.v w ds for a prescribed traction t [Pa] (gdim components)."""
    return -ufl.dot(t, v) * measure_weight(extract_unique_domain(v), kind) * ds


def pressure_residual(p: Any, v: Any, kind: Kinematics | str, ds: ufl.Measure) -> ufl.Form:
    """Residual of a pressure p [Pa] acting on a boundary (t = -p n, n the outward normal of
    the solid), e.g. the stack pressure on ``li_cc`` or a pressurised hole."""
    n = ufl.FacetNormal(extract_unique_domain(v))
    return traction_residual(-p * n, v, kind, ds)


# -- stress measures ----------------------------------------------------------------------


def hydrostatic(sigma3: Any) -> Any:
    """sigma_h = tr(sigma) / 3 [Pa] (tension positive; the pressure is -sigma_h)."""
    return ufl.tr(sigma3) / 3.0


def deviatoric(sigma3: Any) -> Any:
    """s = sigma - sigma_h I [Pa]."""
    return sigma3 - hydrostatic(sigma3) * ufl.Identity(3)


def von_mises(sigma3: Any) -> Any:
    """Equivalent stress sqrt(3/2 s:s) [Pa]. For output: its derivative is singular at zero
    deviatoric stress, so don't differentiate it in a residual."""
    s = deviatoric(sigma3)
    return ufl.sqrt(1.5 * ufl.inner(s, s))


def traction(sigma3: Any, n: Any) -> Any:
    """Traction sigma.n [Pa] with the gdim components of the unit normal n (out-of-plane
    components are zero in 2D)."""
    d = ufl.shape(n)[0]
    return ufl.as_vector([sum(sigma3[i, j] * n[j] for j in range(d)) for i in range(d)])


def normal_stress(sigma3: Any, n: Any) -> Any:
    """n.sigma.n [Pa], tension positive."""
    return ufl.dot(traction(sigma3, n), n)


# -- near-null space for algebraic multigrid ----------------------------------------------


def rigid_body_modes(V: fem.FunctionSpace, kind: Kinematics | str) -> PETSc.NullSpace:
    """Orthonormal rigid-body modes on the displacement space V, the near-null space that
    smoothed-aggregation AMG needs (``Mat.setNearNullSpace``; PETSc GAMG). Collective.

    Plane strain: the two translations and the in-plane rotation; 3D: three translations and
    three rotations; all are zero-energy modes of the unconstrained operator. Axisymmetric:
    the same three (r- and z-translation, rotation in the (r, z) plane), although only the
    z-translation has zero energy: a radial translation or a rotation strains the hoop
    direction, but only through the zero-order term u_r / r, so their energy stays bounded
    under refinement while that of oscillatory modes grows like h^-2. To AMG they are near-null
    modes all the same: measured with CG + GAMG, the z-translation alone doubles the iteration
    count with every refinement (39, 74, 147 on 578, 2178, 8450 dofs), all three keep it at
    18, 20, 22 (tests/test_elasticity.py).

    The vectors follow V's dof layout (blocked, owned dofs first), so they fit the matrix of
    a single-field problem as they are; for the displacement block of a field split, compose
    the same object on that split's IS under the name "nearnullspace"
    (``iset.compose("nearnullspace", modes)``), which PCFIELDSPLIT passes on to the block.
    """
    kind = _kinematics(kind)
    bs = V.dofmap.index_map_bs
    _check_dim(bs, kind)
    imap = V.dofmap.index_map
    n_owned = imap.size_local
    x = V.tabulate_dof_coordinates()[:n_owned, :bs]
    comm = V.mesh.comm
    # rotations about the centre of the bounding box, scaled by its size: the modes stay well
    # conditioned whatever the units of the coordinates
    lo = x.min(axis=0) if n_owned else np.full(bs, np.inf)
    hi = x.max(axis=0) if n_owned else np.full(bs, -np.inf)
    comm.Allreduce(MPI.IN_PLACE, lo, op=MPI.MIN)
    comm.Allreduce(MPI.IN_PLACE, hi, op=MPI.MAX)
    scale = max(float(np.max(hi - lo)), np.finfo(float).tiny)
    xc = (x - 0.5 * (lo + hi)) / scale

    modes: list[np.ndarray] = []
    for i in range(bs):
        m = np.zeros((n_owned, bs))
        m[:, i] = 1.0
        modes.append(m)
    for i, j in ((0, 1), (1, 2), (2, 0))[: 1 if bs == 2 else 3]:
        m = np.zeros((n_owned, bs))  # rotation in the (i, j) plane: u_i = -x_j, u_j = x_i
        m[:, i] = -xc[:, j]
        m[:, j] = xc[:, i]
        modes.append(m)

    basis = []
    for m in modes:
        vec = la.create_petsc_vector(imap, bs)
        vec.getArray()[:] = m.ravel()
        basis.append(vec)
    for i, b in enumerate(basis):  # modified Gram-Schmidt, collective dot products
        for c in basis[:i]:
            b.axpy(-b.dot(c), c)
        b.normalize()
    return PETSc.NullSpace().create(vectors=basis, comm=comm)
