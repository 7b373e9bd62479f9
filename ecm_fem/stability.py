"""``ecm-fem stability``: the Monroe-Newman linear-stability question answered with finite
elements (PHYSICS.md 3.1): does a sinusoidal Li | electrolyte interface perturbation deposit
faster at its peaks than in its valleys, and at which electrolyte shear modulus G_E/G_Li does
that change (the neutral modulus ratio)?

The problem is Monroe and Newman's (J. Electrochem. Soc. 152 (2005) A396): two isotropic
elastic solids in plane strain, Li below (y < 0), electrolyte above, bonded at y = 0, the
interface displaced normally by delta cos(kx), k = 2 pi / lambda, in both solids. The normal
displacement is prescribed on the interface; the tangential displacement is continuous and
free, so the weak form balances the shear tractions there; the normal tractions of the two
sides may differ (their jump is the reaction of the prescribed displacement). This is the
boundary-value problem whose stresses reproduce the published stability parameter of Ahmad and
Viswanathan (Phys. Rev. Lett. 119 (2017) 056003; GitHub ahzeeshan/screening-ml,
data-gen/calcMu.m), the generalisation of Monroe and Newman's to any Omega_Li+/Omega_Li
(``ecm_fem.physics.stress_coupling.monroe_newman_dmu`` says how).

Finite elements: one half wavelength 0 <= x <= lambda/2 with symmetry sides (u_x = 0; a
cosine mode is symmetric about x = 0 and x = lambda/2), depth ``depth`` wavelengths on each
side (u = 0 there; the solution decays like exp(-k|y|)), a structured triangle mesh graded
geometrically towards the interface (cells square at the interface), P2 displacement. The
one-sided interface stresses are the stress of the Li cell and of the electrolyte cell of each
interface facet; their cos(kx) Fourier amplitudes (Gauss quadrature on the facets) give, through
``interface_stress_from_tensors`` and ``monroe_newman_dmu``, the amplitude of dmu_e. The
stability parameter is chi = amplitude(dmu_e) / delta [J/(mol m)] (the chi of Ahmad and
Viswanathan): chi > 0 means dmu_e, hence the exchange current, is larger at the peaks, which
then grow (unstable); chi < 0 stable. Its dimensionless form is S = chi / (Omega_Li G_Li k).

Closed form (``closed_form_interface_stresses``): the half-space solutions
u = (A + B k|y|) exp(-k|y|) (sin kx, cos kx) per side, with the shared interface displacement
(a sin kx, delta cos kx) and a from the shear balance, give at a peak, with g = G_E/G_Li,
A_L = 3 - 4 nu_Li, A_E = 3 - 4 nu_E, D = g A_L (1 - nu_E) + A_E (1 - nu_Li) and
s0 = G_Li k delta,

    Li:  sigma_xx = s0 (A_E - b g) / D,             sigma_yy = s0 (A_E + c g) / D,
         sigma_zz = 2 nu_Li s0 (A_E + g) / D,
    E:   sigma_xx = s0 g (b - A_L g) / D,           sigma_yy = -s0 g (c + A_L g) / D,
         sigma_zz = -2 nu_E s0 g (1 + A_L g) / D,   sigma_xy = 0 at peaks and valleys,

b = (A_L A_E - 3) / 2, c = (A_L A_E + 1) / 2 (derived with SymPy for this module). With them
chi = k G_Li Omega_Li [(1 - v)(A_L g^2 - A_E) / 2 + (1 + v)(A_L A_E - 1) g / 2] / D
- (1 + v) Omega_Li gamma k^2 / 2, v = Omega_Li+/Omega_Li: Ahmad and Viswanathan's expression,
and with gamma = 0 the neutral ratio is the positive root of
(1 - v) A_L g^2 + (1 + v)(A_L A_E - 1) g - (1 - v) A_E = 0 (``published_neutral_ratio``):
2.159 for G_Li = 3.4 GPa, nu_Li = 0.42, nu_E = 0.33, v = 3.85, Monroe and Newman's "about
twice". The literal reading of PHYSICS.md 3.1 (``literal_reading_dmu``) gives 0.482 on the same
stresses.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mpi4py import MPI

from ecm_fem.physics.stress_coupling import (
    CouplingParameters,
    InterfaceStress,
    interface_stress_from_tensors,
    monroe_newman_dmu,
)

# Monroe and Newman's Li and PEO-like electrolyte, as used by Ahmad and Viswanathan (PHYSICS.md
# section 8: G and nu of Li [P]); Omega_Li [C] from 6.941 g/mol / 0.534 g/cm^3.
G_LI = 3.4e9  # Pa
NU_LI = 0.42
NU_E = 0.33
V_RATIO = 3.85  # Omega_Li+ / Omega_Li
OMEGA_LI = 1.30e-5  # m^3/mol
PUBLISHED_NEUTRAL_RATIO = 2.16  # G_E/G_Li, Ahmad & Viswanathan (2017) at the values above
PREFIX = "ecm_stability_"
NORMAL = np.array([0.0, 1.0, 0.0])  # from Li (y < 0) into the electrolyte


@dataclass(frozen=True)
class Materials:
    """The two solids and the volumes of the reaction.

    Attributes:
        g_li: shear modulus of Li [Pa].
        nu_li, nu_e: Poisson's ratios of Li and of the electrolyte [-].
        v: Omega_Li+ / Omega_Li, the ratio of the partial molar volume of Li+ in the
            electrolyte to the molar volume of Li [-].
        omega_li: molar volume of Li [m^3/mol].
        gamma: Li surface energy [J/m^2] (0: surface tension neglected, as in the published
            neutral ratio).
    """

    g_li: float = G_LI
    nu_li: float = NU_LI
    nu_e: float = NU_E
    v: float = V_RATIO
    omega_li: float = OMEGA_LI
    gamma: float = 0.0

    def coupling(self) -> CouplingParameters:
        """The kinetics' parameters (alpha_a and T do not enter dmu_e)."""
        return CouplingParameters(omega_li=self.omega_li, omega_li_ion=self.v * self.omega_li,
                                  gamma=self.gamma, alpha_a=0.5, temperature=298.15)


# -- closed form ----------------------------------------------------------------------------


def closed_form_interface_stresses(g_ratio: float, m: Materials = Materials(), k: float = 1.0,
                                   delta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(sigma_Li, sigma_E): the 3x3 interface stresses [Pa] at a peak (x = 0) of two bonded
    elastic half-spaces in plane strain whose interface is displaced by delta cos(kx) (module
    docstring); k [1/m], delta [m]. Every component varies as cos(kx) along the interface,
    except sigma_xy, which vanishes there."""
    g = g_ratio
    a_l, a_e = 3.0 - 4.0 * m.nu_li, 3.0 - 4.0 * m.nu_e
    b, c = 0.5 * (a_l * a_e - 3.0), 0.5 * (a_l * a_e + 1.0)
    s0 = m.g_li * k * delta / (g * a_l * (1.0 - m.nu_e) + a_e * (1.0 - m.nu_li))
    li = s0 * np.diag([a_e - b * g, a_e + c * g, 2.0 * m.nu_li * (a_e + g)])
    el = s0 * g * np.diag([b - a_l * g, -(c + a_l * g), -2.0 * m.nu_e * (1.0 + a_l * g)])
    return li, el


def interface_measures(sigma_li: np.ndarray, sigma_e: np.ndarray, k: float, delta: float
                       ) -> InterfaceStress:
    """The interface measures at a peak of the mode delta cos(kx) (curvature k^2 delta)."""
    return interface_stress_from_tensors(sigma_li, sigma_e, NORMAL, k * k * delta)


def chi_from_stresses(sigma_li: np.ndarray, sigma_e: np.ndarray, m: Materials, k: float,
                      delta: float,
                      dmu: Callable[[InterfaceStress, CouplingParameters], Any] = monroe_newman_dmu
                      ) -> float:
    """Stability parameter chi = dmu_e(peak) / delta [J/(mol m)] of the cos(kx) amplitudes of
    the interface stresses (dmu_e is linear in them); > 0: the peaks grow."""
    return float(dmu(interface_measures(sigma_li, sigma_e, k, delta), m.coupling()) / delta)


def closed_form_chi(g_ratio: float, m: Materials = Materials(), k: float = 1.0) -> float:
    """chi [J/(mol m)] of the closed-form stresses at the modulus ratio G_E/G_Li."""
    li, el = closed_form_interface_stresses(g_ratio, m, k, 1.0)
    return chi_from_stresses(li, el, m, k, 1.0)


def published_chi(g_ratio: float, m: Materials = Materials(), k: float = 1.0) -> float:
    """chi [J/(mol m)] as published by Ahmad and Viswanathan (PRL 119 (2017) 056003; calcMu.m:
    chipres + chitau + chisurf with z = 1, electrode = Li, separator = electrolyte), written
    independently of the stresses, for the comparison."""
    g_e, g_s = m.g_li, g_ratio * m.g_li
    om, om_ion = m.omega_li, m.v * m.omega_li
    d = g_s * (3 - 4 * m.nu_li) * (1 - m.nu_e) + g_e * (1 - m.nu_li) * (3 - 4 * m.nu_e)
    pres = (om - om_ion) * (g_s**2 * (3 - 4 * m.nu_li) - g_e**2 * (3 - 4 * m.nu_e)) * k / (2 * d)
    tau = (2 * g_e * g_s * (om + om_ion)
           * (2 - 3 * m.nu_e - 3 * m.nu_li + 4 * m.nu_li * m.nu_e) * k / d)
    surf = -(om + om_ion) * m.gamma * k**2 / 2
    return pres + tau + surf


def published_neutral_ratio(v: float, nu_li: float = NU_LI, nu_e: float = NU_E) -> float:
    """Neutral G_E/G_Li of the published criterion without surface tension: the positive root
    of (1 - v) A_L g^2 + (1 + v)(A_L A_E - 1) g - (1 - v) A_E = 0, A = 3 - 4 nu (module
    docstring; one root is positive, the other negative). For v > 1 the interface is stable
    above it, for v < 1 below it. nan at v = 1 (no pressure term: the sign of chi is that of
    A_L A_E - 1 for every ratio)."""
    a_l, a_e = 3.0 - 4.0 * nu_li, 3.0 - 4.0 * nu_e
    b = (1.0 + v) * (a_l * a_e - 1.0)
    disc = math.sqrt(b * b + 4.0 * (1.0 - v) ** 2 * a_l * a_e)
    if v < 1.0:
        return 2.0 * (1.0 - v) * a_e / (b + disc)
    if v > 1.0:
        return (b + disc) / (2.0 * (v - 1.0) * a_l)
    return math.nan


def literal_reading_dmu(s: InterfaceStress, c: CouplingParameters) -> Any:
    """dmu_e [J/mol] of PHYSICS.md 3.1 read literally (3D p = -tr(sigma)/3 and deviator, the
    signs as written): the formula this package used before the stability tool; kept only to
    show the difference (it puts the neutral ratio at 0.48)."""
    o_sum = c.omega_li + c.omega_li_ion
    o_diff = c.omega_li - c.omega_li_ion
    return (-0.5 * o_sum * (-c.gamma * s.curvature + (s.tau_nn_li - s.tau_nn_e))
            + 0.5 * o_diff * (-s.sigma_h_li - s.sigma_h_e))


def find_root(f: Callable[[float], float], lo: float, hi: float, rtol: float = 1e-8,
              max_evaluations: int = 60) -> float:
    """Root of ``f`` between lo > 0 and hi (sign change) in log scale by the Illinois variant of
    regula falsi (Dowell & Jarratt, BIT 11 (1971) 168); relative tolerance ``rtol``."""
    a, b = math.log(lo), math.log(hi)
    fa, fb = f(lo), f(hi)
    if fa == 0.0:
        return lo
    if fb == 0.0:
        return hi
    if fa * fb > 0:
        raise ValueError(f"find_root: no sign change between {lo:g} and {hi:g}")
    side = 0
    for _ in range(max_evaluations):
        x = (a * fb - b * fa) / (fb - fa)
        fx = f(math.exp(x))
        if fx == 0.0 or abs(b - a) < rtol:
            return math.exp(x)
        if fx * fb < 0:
            a, fa = b, fb
            b, fb = x, fx
            side = 0
        else:
            b, fb = x, fx
            if side == 1:
                fa *= 0.5
            side = 1
        if abs(b - a) < rtol:
            return math.exp(b)
    return math.exp(b)


def bracket_root(f: Callable[[float], float], guess: float, factor: float = 1.5,
                 max_steps: int = 12) -> tuple[float, float]:
    """(lo, hi) around ``guess`` > 0 with a sign change of ``f``, widened geometrically."""
    lo, hi = guess / factor, guess * factor
    f_lo, f_hi = f(lo), f(hi)
    for _ in range(max_steps):
        if f_lo * f_hi <= 0:
            return lo, hi
        lo, hi = lo / factor, hi * factor
        f_lo, f_hi = f(lo), f(hi)
    raise ValueError(f"no sign change of the stability parameter between {lo:g} and {hi:g}")


def closed_form_neutral_ratio(m: Materials = Materials(), k: float = 1.0,
                              rtol: float = 1e-12) -> float:
    """Neutral G_E/G_Li of the closed-form stresses with ``monroe_newman_dmu`` (root of chi);
    with gamma > 0 it depends on k [1/m]."""
    guess = published_neutral_ratio(m.v, m.nu_li, m.nu_e)
    f = lambda g: closed_form_chi(g, m, k)  # noqa: E731
    lo, hi = bracket_root(f, guess if math.isfinite(guess) and guess > 0 else 1.0)
    return find_root(f, lo, hi, rtol)


# -- finite elements ------------------------------------------------------------------------


def _grading(ratio: float) -> float:
    """beta > 0 with beta / (exp(beta) - 1) = ratio (< 1): the geometric grading that makes the
    first cell of a graded column ``ratio`` times the uniform one; 0 for ratio >= 1."""
    if ratio >= 1.0:
        return 0.0
    lo, hi = 1e-12, 1.0
    while hi / math.expm1(hi) > ratio:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid / math.expm1(mid) > ratio else (lo, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class InterfaceResult:
    """One finite-element solve at a modulus ratio.

    Attributes:
        g_ratio: G_E / G_Li.
        sigma_li, sigma_e: cos(kx) Fourier amplitudes of the 3x3 interface stresses [Pa]
            (2/L integral over the half wavelength L of sigma cos(kx)) on the Li and the
            electrolyte side.
        x: interface vertex positions [m], increasing from the peak (x = 0) to the valley.
        profile_li, profile_e: (len(x), 3, 3) one-sided stresses at those vertices [Pa] (mean
            over the side's interface cells at the vertex).
    """

    g_ratio: float
    sigma_li: np.ndarray
    sigma_e: np.ndarray
    x: np.ndarray
    profile_li: np.ndarray
    profile_e: np.ndarray


class InterfaceProblem:
    """The finite-element model of the module docstring on ``comm``.

    Args:
        comm: MPI communicator.
        materials: the two solids (only g_li, nu_li and nu_e enter the elasticity).
        wavelength: lambda [m].
        depth: height of each solid in wavelengths [-].
        cells: cells across the half wavelength (and in each solid's graded column) [-].
        degree: Lagrange degree of the displacement (2 by default).
        delta: amplitude of the interface displacement [m] (default 1e-3 lambda; linear).
    """

    def __init__(self, comm: MPI.Comm, materials: Materials = Materials(),
                 wavelength: float = 1e-6, depth: float = 2.0, cells: int = 32,
                 degree: int = 2, delta: float | None = None):
        from petsc4py import PETSc

        import ufl
        from dolfinx import fem, mesh
        from dolfinx.fem import petsc as fem_petsc

        from ecm_fem.physics import mechanics

        if cells < 1 or degree < 1 or depth <= 0 or wavelength <= 0:
            raise ValueError(f"stability: cells {cells}, degree {degree}, depth {depth}, "
                             f"wavelength {wavelength}: all must be positive")
        self.comm, self.materials = comm, materials
        self.wavelength, self.k = wavelength, 2.0 * math.pi / wavelength
        self.delta = 1e-3 * wavelength if delta is None else delta
        half, height = 0.5 * wavelength, depth * wavelength
        self.half = half
        msh = mesh.create_rectangle(comm, [np.array([0.0, -height]), np.array([half, height])],
                                    [cells, 2 * cells], mesh.CellType.triangle,
                                    ghost_mode=mesh.GhostMode.shared_facet)
        # grade each solid's column geometrically so that the cells at y = 0 are square
        beta = _grading(half / height)
        if beta > 0:
            y = msh.geometry.x[:, 1]
            s = np.abs(y) / height
            msh.geometry.x[:, 1] = np.sign(y) * height * np.expm1(beta * s) / math.expm1(beta)
        self.mesh = msh
        tdim, fdim = msh.topology.dim, msh.topology.dim - 1
        msh.topology.create_connectivity(fdim, tdim)
        msh.topology.create_connectivity(tdim, fdim)

        # materials as DG0 fields: Li where the cell midpoint lies below y = 0
        Q = fem.functionspace(msh, ("DG", 0))
        n_cells = msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
        mid = mesh.compute_midpoints(msh, tdim, np.arange(n_cells, dtype=np.int32))
        self._li_cells = mid[:, 1] < 0.0
        self._dg0 = Q.dofmap.list[:, 0]  # cell -> its DG0 dof
        self.E, self.nu = fem.Function(Q, name="E"), fem.Function(Q, name="nu")
        self.nu.x.array[self._dg0] = np.where(self._li_cells, materials.nu_li, materials.nu_e)

        V = fem.functionspace(msh, ("Lagrange", degree, (2,)))
        self.V = V
        self.u = fem.Function(V, name="u")
        u, w = ufl.TrialFunction(V), ufl.TestFunction(V)
        dx = ufl.Measure("dx", domain=msh)
        self.a = fem.form(mechanics.elastic_residual(u, w, self.E, self.nu, "plane_strain", dx))

        # supports: symmetry sides (u_x = 0), far faces held (u = 0); interface u_y = delta cos
        tol = 1e-9 * wavelength  # absolute: any wavelength (nm to mm) in SI units
        x_facets = mesh.locate_entities_boundary(
            msh, fdim, lambda x: (np.abs(x[0]) < tol) | (np.abs(x[0] - half) < tol))
        y_facets = mesh.locate_entities_boundary(
            msh, fdim, lambda x: np.abs(np.abs(x[1]) - height) < tol)
        self._if_facets = mesh.locate_entities(msh, fdim, lambda x: np.abs(x[1]) < tol)
        Vx, _ = V.sub(0).collapse()
        Vy, _ = V.sub(1).collapse()
        zero_x, shape_y = fem.Function(Vx), fem.Function(Vy)
        k, d = self.k, self.delta
        shape_y.interpolate(lambda x: d * np.cos(k * x[0]))
        bcs = []
        for facets, (sub, space, value) in (
                (x_facets, (V.sub(0), Vx, zero_x)), (y_facets, (V.sub(0), Vx, zero_x)),
                (y_facets, (V.sub(1), Vy, fem.Function(Vy))),
                (self._if_facets, (V.sub(1), Vy, shape_y))):
            dofs = fem.locate_dofs_topological((sub, space), fdim, facets)
            bcs.append(fem.dirichletbc(value, dofs, sub))
        self.bcs = bcs

        self.A = fem_petsc.create_matrix(self.a)
        self.b = fem_petsc.create_vector(fem.form(ufl.inner(fem.Constant(
            msh, np.zeros(2, dtype=PETSc.ScalarType)), w) * dx))
        self.ksp = PETSc.KSP().create(comm)
        self.ksp.setOptionsPrefix(PREFIX)
        opts = PETSc.Options()
        for key, value in {"ksp_type": "preonly", "pc_type": "lu",
                           "pc_factor_mat_solver_type": "mumps"}.items():
            if not opts.hasName(PREFIX + key):
                opts[PREFIX + key] = value
        self.ksp.setOperators(self.A)
        self.ksp.setFromOptions()

        # one-sided interface stresses: a discontinuous space that holds sigma(u) exactly
        W = fem.functionspace(msh, ("DG", max(degree - 1, 0), (3, 3)))
        self.sigma = fem.Function(W, name="sigma")
        self._sigma_expr = fem.Expression(
            mechanics.stress3(self.u, self.E, self.nu, "plane_strain"),
            W.element.interpolation_points())
        self._setup_interface(msh)
        self._cache: dict[float, InterfaceResult] = {}

    def _setup_interface(self, msh: Any) -> None:
        """Per owned cell with a facet on the interface: the facet's end points and side, and
        the Gauss points of the Fourier integral."""
        from ecm_fem.mesh import facet_vertices

        tdim, fdim = msh.topology.dim, msh.topology.dim - 1
        f2c = msh.topology.connectivity(fdim, tdim)
        n_owned = msh.topology.index_map(tdim).size_local
        facets, cells = [], []
        for f in self._if_facets:
            for c in f2c.links(f):
                if c < n_owned:
                    facets.append(f)
                    cells.append(c)
        ends = facet_vertices(msh, np.asarray(facets, dtype=np.int32))[:, :, 0]
        ends.sort(axis=1)
        self._cells = np.asarray(cells, dtype=np.int32)
        self._ends = ends
        self._side_li = self._li_cells[self._cells] if len(cells) else np.zeros(0, dtype=bool)
        gp, gw = np.polynomial.legendre.leggauss(4)
        self._gx = (0.5 * (ends[:, :1] + ends[:, 1:]) + 0.5 * (ends[:, 1:] - ends[:, :1]) * gp)
        self._gw = 0.5 * (ends[:, 1:] - ends[:, :1]) * gw

    def _eval(self, xs: np.ndarray) -> np.ndarray:
        """sigma (k, q, 3, 3) of the interface cells at their interface points xs (k, q)."""
        n, q = xs.shape
        if n == 0:
            return np.zeros((0, q, 3, 3))
        pts = np.zeros((n * q, 3))
        pts[:, 0] = xs.ravel()
        vals = self.sigma.eval(pts, np.repeat(self._cells, q))
        return vals.reshape(n, q, 3, 3)

    def solve(self, g_ratio: float) -> InterfaceResult:
        """Solve at G_E / G_Li = ``g_ratio`` (collective); results are cached per ratio."""
        from petsc4py import PETSc

        from dolfinx.fem import petsc as fem_petsc

        if g_ratio in self._cache:
            return self._cache[g_ratio]
        m = self.materials
        g_e = g_ratio * m.g_li
        self.E.x.array[self._dg0] = np.where(self._li_cells, 2.0 * m.g_li * (1.0 + m.nu_li),
                                     2.0 * g_e * (1.0 + m.nu_e))
        self.A.zeroEntries()
        fem_petsc.assemble_matrix(self.A, self.a, bcs=self.bcs)
        self.A.assemble()
        with self.b.localForm() as b_local:
            b_local.set(0.0)
        fem_petsc.apply_lifting(self.b, [self.a], bcs=[self.bcs])
        self.b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        fem_petsc.set_bc(self.b, self.bcs)
        self.ksp.setOperators(self.A)
        self.ksp.solve(self.b, self.u.x.petsc_vec)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise RuntimeError(f"stability: linear solve failed at G_E/G_Li = {g_ratio:g} "
                               f"(KSP reason {reason})")
        self.u.x.scatter_forward()
        self.sigma.interpolate(self._sigma_expr)

        # Fourier amplitudes: 2/L int_0^L sigma cos(kx) dx per side
        vals = self._eval(self._gx)
        weights = (self._gw * np.cos(self.k * self._gx))[:, :, None, None]
        per_cell = np.sum(vals * weights, axis=1)
        amp = np.zeros((2, 3, 3))
        if len(per_cell):
            amp[0] = per_cell[self._side_li].sum(axis=0)
            amp[1] = per_cell[~self._side_li].sum(axis=0)
        amp = self.comm.allreduce(amp) * (2.0 / self.half)

        # vertex profile: one-sided values at the facet ends, averaged per vertex and side
        ends = self._eval(self._ends)
        rows = (self._ends.ravel(), np.repeat(self._side_li, 2), ends.reshape(-1, 9))
        gathered = self.comm.allgather(rows)
        x = np.concatenate([r[0] for r in gathered])
        li = np.concatenate([r[1] for r in gathered])
        s = np.concatenate([r[2] for r in gathered])
        key = np.round(x / self.wavelength, 9)
        xs = np.unique(key)
        prof = np.zeros((2, len(xs), 9))
        for j, mask in enumerate((li, ~li)):
            idx = np.searchsorted(xs, key[mask])
            count = np.bincount(idx, minlength=len(xs))[:, None]
            np.add.at(prof[j], idx, s[mask])
            prof[j] /= np.maximum(count, 1)
        result = InterfaceResult(g_ratio, amp[0], amp[1], xs * self.wavelength,
                                 prof[0].reshape(-1, 3, 3), prof[1].reshape(-1, 3, 3))
        self._cache[g_ratio] = result
        return result

    def chi(self, g_ratio: float, materials: Materials | None = None,
            dmu: Callable[[InterfaceStress, CouplingParameters], Any] = monroe_newman_dmu
            ) -> float:
        """Stability parameter chi [J/(mol m)] from the finite-element interface stresses;
        ``materials`` may change v, omega_li and gamma (not the elastic constants)."""
        m = self._check(materials)
        r = self.solve(g_ratio)
        return chi_from_stresses(r.sigma_li, r.sigma_e, m, self.k, self.delta, dmu)

    def dmu_profile(self, g_ratio: float, materials: Materials | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(x [m], dmu_e [J/mol]) along the interface from the one-sided vertex stresses, for
        the interface delta cos(kx)."""
        m = self._check(materials)
        r = self.solve(g_ratio)
        kappa = self.k**2 * self.delta * np.cos(self.k * r.x)
        s = interface_stress_from_tensors(r.profile_li, r.profile_e, NORMAL, kappa)
        return r.x, np.asarray(monroe_newman_dmu(s, m.coupling()))

    def _check(self, materials: Materials | None) -> Materials:
        m = materials or self.materials
        mine = self.materials
        if (m.g_li, m.nu_li, m.nu_e) != (mine.g_li, mine.nu_li, mine.nu_e):
            raise ValueError("stability: the elastic constants are those of the problem; build "
                             "another InterfaceProblem for others")
        return m

    def neutral_ratio(self, materials: Materials | None = None, rtol: float = 1e-6,
                      guess: float | None = None) -> float:
        """Neutral G_E/G_Li (chi = 0) of the finite-element stresses (collective)."""
        m = self._check(materials)
        if guess is None:
            guess = closed_form_neutral_ratio(m, self.k)
        f = lambda g: self.chi(g, m)  # noqa: E731
        lo, hi = bracket_root(f, guess, factor=1.2)
        return find_root(f, lo, hi, rtol)


def stability_amplitude(g_ratio: float, materials: Materials = Materials(),
                        comm: MPI.Comm | None = None, **problem: Any) -> float:
    """Finite-element stability parameter chi [J/(mol m)] at G_E/G_Li = ``g_ratio`` (> 0: the
    peaks grow); ``problem`` are the keyword arguments of ``InterfaceProblem``; ``comm``
    defaults to MPI.COMM_WORLD."""
    return InterfaceProblem(_world(comm), materials, **problem).chi(g_ratio)


def neutral_modulus_ratio(v: float = V_RATIO, nu_li: float = NU_LI, nu_e: float = NU_E,
                          comm: MPI.Comm | None = None, rtol: float = 1e-6,
                          **problem: Any) -> float:
    """Finite-element neutral G_E/G_Li without surface tension at Omega_Li+/Omega_Li = v;
    ``problem`` are the keyword arguments of ``InterfaceProblem`` (wavelength, cells...);
    ``comm`` defaults to MPI.COMM_WORLD."""
    m = Materials(nu_li=nu_li, nu_e=nu_e, v=v)
    return InterfaceProblem(_world(comm), m, **problem).neutral_ratio(rtol=rtol)


# -- command line ---------------------------------------------------------------------------

DEFAULT_RATIOS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 8.0)
COLUMNS = ("G_ratio", "chi_fe", "chi_closed_form", "chi_published", "S_fe", "S_closed_form",
           "dmu_peak", "dmu_valley", "peaks_grow", "chi_literal_fe")


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}': expected a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}': must be positive")
        return value

    return parse


def _poisson(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected a number") from None
    if not -1.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"'{text}': a Poisson's ratio lies in (-1, 0.5)")
    return value


def _floats(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected comma-separated numbers") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': give positive numbers")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ecm-fem stability``."""
    parser.add_argument("--volume-ratio", type=_positive(float), default=V_RATIO,
                        help=f"v = Omega_Li+ / Omega_Li (default {V_RATIO}, Monroe-Newman's PEO)")
    parser.add_argument("--nu-li", type=_poisson, default=NU_LI, help=f"Poisson's ratio of Li "
                        f"(default {NU_LI})")
    parser.add_argument("--nu-e", type=_poisson, default=NU_E, help="Poisson's ratio of the "
                        f"electrolyte (default {NU_E})")
    parser.add_argument("--g-li", type=_positive(float), default=G_LI,
                        help=f"shear modulus of Li [Pa] (default {G_LI:g})")
    parser.add_argument("--omega-li", type=_positive(float), default=OMEGA_LI,
                        help=f"molar volume of Li [m^3/mol] (default {OMEGA_LI:g})")
    parser.add_argument("--gamma", type=float, default=0.0, help="Li surface energy [J/m^2] "
                        "(default 0: neglected, as in the published neutral ratio)")
    parser.add_argument("--wavelength", type=_positive(float), default=1e-6,
                        help="perturbation wavelength [m] (matters only with --gamma)")
    parser.add_argument("--depth", type=_positive(float), default=2.0,
                        help="height of each solid in wavelengths (default 2)")
    parser.add_argument("--cells", type=_positive(int), default=32,
                        help="cells across the half wavelength (default 32)")
    parser.add_argument("--degree", type=_positive(int), default=2,
                        help="displacement degree (default 2)")
    parser.add_argument("--ratios", type=_floats, default=list(DEFAULT_RATIOS),
                        metavar="G1,G2,...", help="G_E/G_Li values of the table")
    parser.add_argument("--curve", type=_floats, metavar="V1,V2,...",
                        help="also the neutral ratio at these Omega_Li+/Omega_Li values")
    parser.add_argument("--rtol", type=_positive(float), default=1e-6,
                        help="relative tolerance of the neutral ratio (default 1e-6)")
    parser.add_argument("-o", "--output", help="folder for stability.csv, neutral_curve.csv "
                        "and stability.png")


def _world(comm: MPI.Comm | None) -> MPI.Comm:
    from mpi4py import MPI

    return MPI.COMM_WORLD if comm is None else comm


def _say(comm: MPI.Comm, text: str) -> None:
    if comm.rank == 0:
        print(text, flush=True)


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """``ecm-fem stability``: the table G_E/G_Li vs the stability parameter, the neutral
    ratios (finite elements, closed form, published) and optionally CSV and PNG files."""
    comm = _world(comm)
    m = Materials(g_li=args.g_li, nu_li=args.nu_li, nu_e=args.nu_e, v=args.volume_ratio,
                  omega_li=args.omega_li, gamma=args.gamma)
    problem = InterfaceProblem(comm, m, wavelength=args.wavelength, depth=args.depth,
                               cells=args.cells, degree=args.degree)
    k = problem.k
    scale = m.omega_li * m.g_li * k
    _say(comm, f"Monroe-Newman linear stability (plane strain, P{args.degree}, "
               f"{args.cells} cells per half wavelength, {comm.size} rank(s))\n"
               f"G_Li = {m.g_li:g} Pa, nu_Li = {m.nu_li}, nu_E = {m.nu_e}, "
               f"Omega_Li+/Omega_Li = {m.v}, Omega_Li = {m.omega_li:g} m^3/mol, "
               f"gamma = {m.gamma:g} J/m^2, lambda = {args.wavelength:g} m\n"
               "chi = amplitude of dmu_e / delta [J/(mol m)], S = chi / (Omega_Li G_Li k); "
               "chi > 0: deposition faster at the peaks (unstable)")
    header = (f"{'G_E/G_Li':>9} {'S (FE)':>11} {'S (closed)':>11} {'chi (FE)':>12} "
              f"{'dmu peak':>10} {'dmu valley':>10}  peaks")
    _say(comm, header)
    rows = []
    for g in sorted(args.ratios):
        chi = problem.chi(g, m)
        x, dmu = problem.dmu_profile(g, m)
        row = {"G_ratio": g, "chi_fe": chi, "chi_closed_form": closed_form_chi(g, m, k),
               "chi_published": published_chi(g, m, k), "S_fe": chi / scale,
               "S_closed_form": closed_form_chi(g, m, k) / scale,
               "dmu_peak": float(dmu[0]), "dmu_valley": float(dmu[-1]),
               "peaks_grow": bool(dmu[0] > dmu[-1]),
               "chi_literal_fe": problem.chi(g, m, dmu=literal_reading_dmu)}
        rows.append(row)
        _say(comm, f"{g:9.4g} {row['S_fe']:11.5f} {row['S_closed_form']:11.5f} {chi:12.5g} "
                   f"{row['dmu_peak']:10.4g} {row['dmu_valley']:10.4g}  "
                   f"{'grow' if row['peaks_grow'] else 'decay'}")
    try:
        g_fe = problem.neutral_ratio(m, rtol=args.rtol)
    except ValueError as exc:
        g_fe = math.nan
        _say(comm, f"finite-element neutral ratio: none found ({exc})")
    try:
        g_cf = closed_form_neutral_ratio(m, k)
    except ValueError:
        g_cf = math.nan
    g_pub = published_neutral_ratio(m.v, m.nu_li, m.nu_e)
    try:
        lit = lambda g: problem.chi(g, m, dmu=literal_reading_dmu)  # noqa: E731
        g_lit = find_root(lit, *bracket_root(lit, 0.5), rtol=1e-4)
    except ValueError:
        g_lit = math.nan
    _say(comm, f"neutral G_E/G_Li: finite elements {g_fe:.6g}, closed form {g_cf:.6g} "
               f"(relative difference {abs(g_fe / g_cf - 1):.2e}), published criterion "
               f"(Ahmad-Viswanathan, gamma = 0) {g_pub:.6g}; literal 3D reading of "
               f"PHYSICS.md 3.1 {g_lit:.4g}")
    curve = []
    for v in args.curve or []:
        mv = Materials(m.g_li, m.nu_li, m.nu_e, v, m.omega_li, m.gamma)
        try:
            g_v = problem.neutral_ratio(mv, rtol=args.rtol)
        except ValueError:
            g_v = math.nan
        curve.append({"v": v, "neutral_fe": g_v,
                      "neutral_published": published_neutral_ratio(v, m.nu_li, m.nu_e)})
        _say(comm, f"  v = {v:g}: neutral G_E/G_Li finite elements {g_v:.6g}, published "
                   f"{curve[-1]['neutral_published']:.6g}")
    if args.output and comm.rank == 0:
        _write(Path(args.output), rows, curve, g_fe, problem, m)
        print(f"results: {args.output}", flush=True)
    comm.barrier()
    sys.stdout.flush()
    return 0


def _write(out: Path, rows: Sequence[dict[str, Any]], curve: Sequence[dict[str, Any]],
           g_fe: float, problem: InterfaceProblem, m: Materials) -> None:
    """stability.csv, neutral_curve.csv (with --curve) and stability.png (rank 0)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stability.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    if curve:
        with open(out / "neutral_curve.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=("v", "neutral_fe", "neutral_published"))
            w.writeheader()
            w.writerows(curve)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if curve else 1, figsize=(11 if curve else 6, 4.2),
                             squeeze=False)
    ax = axes[0, 0]
    scale = m.omega_li * m.g_li * problem.k
    g = np.geomspace(min(r["G_ratio"] for r in rows), max(r["G_ratio"] for r in rows), 200)
    ax.plot(g, [closed_form_chi(x, m, problem.k) / scale for x in g], "k-",
            label="closed form (= Ahmad-Viswanathan)")
    ax.plot([r["G_ratio"] for r in rows], [r["S_fe"] for r in rows], "o", label="finite elements")
    ax.axhline(0.0, color="0.6", lw=0.8)
    if math.isfinite(g_fe):
        ax.axvline(g_fe, color="C3", ls="--", lw=1, label=f"neutral {g_fe:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("G_E / G_Li")
    ax.set_ylabel("S = chi / (Omega_Li G_Li k)   (> 0: peaks grow)")
    ax.set_title(f"Omega_Li+/Omega_Li = {m.v:g}, nu_Li = {m.nu_li}, nu_E = {m.nu_e}")
    ax.legend(fontsize=8)
    if curve:
        ax = axes[0, 1]
        v = np.linspace(min(c["v"] for c in curve), max(c["v"] for c in curve), 400)
        for branch, label in ((v[v < 0.999], "Ahmad-Viswanathan (2017)"), (v[v > 1.001], None)):
            ax.plot(branch, [published_neutral_ratio(x, m.nu_li, m.nu_e) for x in branch],
                    "k-", label=label)
        ax.plot([c["v"] for c in curve], [c["neutral_fe"] for c in curve], "o",
                label="finite elements")
        ax.set_yscale("log")
        ax.set_xlabel("Omega_Li+ / Omega_Li")
        ax.set_ylabel("neutral G_E / G_Li")
        ax.set_title("stable below the curve for v < 1, above it for v > 1", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "stability.png", dpi=120)
    plt.close(fig)
