"""Inelastic lithium at quadrature points (PHYSICS.md section 4): Norton creep with J2 flow
(default), rate-independent von Mises plasticity with linear isotropic hardening, or purely
elastic Li, behind one interface (``QuadratureInelasticity``).

Convention shared with the elasticity module: strains and stresses are 3x3 tensors. The caller
hands over the strain that the elastic and inelastic parts share, as a UFL 3x3 expression of the
displacement: ``eps(u)`` minus any eigenstrain (growth, thermal). Plane strain has eps_zz = 0 in
that strain but a nonzero creep eps_zz; axisymmetric strain carries the hoop component. How the
strain is formed is not this module's business.

Time integration is backward Euler with a radial return per quadrature point. For isotropic
elasticity (bulk modulus K, shear modulus mu) and the trial state
    s_tr = 2 mu dev(eps - eps_cr_n),  q_tr = sqrt(3/2 s_tr:s_tr),
the update is, with z = 3 mu dp / q_tr the fraction of the trial deviator relaxed in the step:
    sigma = K tr(eps) I + (1 - z) s_tr,  eps_cr = eps_cr_n + z s_tr / (2 mu),
    p = p_n + dp  (accumulated equivalent inelastic strain).
Norton: dp = dt edot0(T) (q / sigma0)^m with q = (1 - z) q_tr; with y = 1 - z = q / q_tr this is
the dimensionless scalar equation
    1 - y = a y^m,  a = 3 mu dt edot0(T) q_tr^(m - 1) / sigma0^m,
whose root is unique in (0, 1]. Newton on it from y0 = min(1, a^(-1/m)) converges monotonically
(the function is concave and y0 lies at or right of the root), for any a in [0, inf): no
bracketing fallback is needed, and very large dt (a -> inf, y ~ a^(-1/m)) or zero stress (a = 0,
y = 1) are regular cases. z is then recovered as a y^m, which keeps full relative precision when
creep in the step is small (y -> 1).
Plasticity: dp = <q_tr - sigma_y - H p_n> / (3 mu + H).

Algorithmic (consistent) tangent, with N = s_tr / |s_tr| and beta = d(dp)/d(q_tr):
    C_alg : de = C : de - c_dev dev(de) - c_nn (N : de) N,
    c_dev = 2 mu z,  c_nn = 6 mu^2 beta - 2 mu z,
so Norton gives c_nn = 2 mu z y (m - 1) / (y + m z) and plasticity c_nn = 6 mu^2 / (3 mu + H)
- 2 mu z on yielding points. Where q_tr = 0 (zero deviatoric stress), z = 0 and C_alg = C.

Use in a Newton solver: the stress entering the residual is the linearisation about the state
of the last return mapping,
    sigma_lin(u) = sigma_q + C_alg : (eps(u) - eps_q),
which equals the return-mapped stress sigma_q wherever ``update`` ran at the current u, and whose
UFL derivative with respect to u is the consistent tangent. The residual form
inner(sigma_lin, eps(v)) dx is therefore differentiated automatically (ufl.derivative) to the
consistent Jacobian; the solver only has to call ``update(dt)`` after writing the current iterate
into u and before assembling the residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import basix.ufl
import numpy as np
import ufl
from dolfinx import fem

from ecm_fem.constants import GAS_CONSTANT, T_REFERENCE
from ecm_fem.physics.mechanics import deviatoric, hooke, lame_parameters

LAWS = ("elastic", "norton", "plasticity")
# A point yields when q_tr - sigma_y exceeds this fraction of sigma_y. Points that yielded in the
# last step start the next one on the yield surface, where f = 0 up to the Newton tolerance (f /
# sigma_y ~ 1e-9 at |r| ~ 1e-13 |f_ext| for Li); with a strict f > 0, round-off decided their
# tangent (elastic or plastic) in the step's first Newton iteration, and runs with the same input
# followed different Newton paths. A stress this far outside the surface is within the tolerance.
YIELD_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Elastic:
    """Purely elastic Li: no internal variable evolves."""

    name = "elastic"


@dataclass(frozen=True)
class NortonCreep:
    """Norton power-law creep with J2 flow,
    d(eps_cr)/dt = 3/2 edot0(T) (sigma_e / sigma0)^m s / sigma_e.

    Attributes:
        sigma0: reference stress [Pa].
        edot0: reference strain rate at ``reference_temperature`` [1/s].
        m: stress exponent [-] (>= 1).
        activation_energy: Q [J/mol] of edot0(T) = edot0 exp(-Q/R (1/T - 1/T_ref)); 0 turns
            the Arrhenius factor off.
        reference_temperature: T_ref [K].
    """

    sigma0: float
    edot0: float
    m: float
    activation_energy: float = 0.0
    reference_temperature: float = T_REFERENCE

    name = "norton"

    def __post_init__(self) -> None:
        _require_positive("sigma0", self.sigma0, "Pa")
        _require_positive("edot0", self.edot0, "1/s")
        _require_positive("reference_temperature", self.reference_temperature, "K")
        if not self.m >= 1.0:
            raise ValueError(f"creep.m: stress exponent must be >= 1, got {self.m}")
        if not self.activation_energy >= 0.0:
            raise ValueError(
                f"creep.activation_energy: must be >= 0 J/mol, got {self.activation_energy}")

    def rate(self, temperature: float) -> float:
        """edot0(T) [1/s] at ``temperature`` [K]."""
        if self.activation_energy == 0.0:
            return self.edot0
        _require_positive("temperature", temperature, "K")
        return self.edot0 * np.exp(-self.activation_energy / GAS_CONSTANT
                                   * (1.0 / temperature - 1.0 / self.reference_temperature))


@dataclass(frozen=True)
class VonMisesPlasticity:
    """Rate-independent J2 plasticity with linear isotropic hardening,
    sigma_e <= yield_stress + hardening * p.

    Attributes:
        yield_stress: initial yield stress in uniaxial tension [Pa].
        hardening: H = d(sigma_y)/dp [Pa] (0: perfectly plastic).
    """

    yield_stress: float
    hardening: float = 0.0

    name = "plasticity"

    def __post_init__(self) -> None:
        _require_positive("yield_stress", self.yield_stress, "Pa")
        if not self.hardening >= 0.0:
            raise ValueError(f"plasticity.hardening: must be >= 0 Pa, got {self.hardening}")


Law = Elastic | NortonCreep | VonMisesPlasticity


def _require_positive(key: str, value: float, unit: str) -> None:
    if not value > 0.0:
        raise ValueError(f"creep.{key}: must be > 0 {unit}, got {value}")


def lame(youngs_modulus: float, poisson_ratio: float) -> tuple[float, float]:
    """(lambda, mu) [Pa] from E [Pa] and nu [-], as numbers, after checking their range."""
    E, nu = youngs_modulus, poisson_ratio
    if not (E > 0.0 and -1.0 < nu < 0.5):
        raise ValueError(f"elasticity: need E > 0 and -1 < nu < 0.5, got E = {E}, nu = {nu}")
    return lame_parameters(E, nu)


# ---------------------------------------------------------------------------------------------
# Point kernel (NumPy, vectorised over quadrature points)


@dataclass
class PointUpdate:
    """Result of the return mapping at n points (arrays over the points).

    Attributes:
        stress: (n, 3, 3) Cauchy stress [Pa].
        creep_strain: (n, 3, 3) inelastic strain at the end of the step [-].
        p: (n,) accumulated equivalent inelastic strain [-].
        direction: (n, 3, 3) unit trial deviator N (zero where the trial deviator vanishes).
        c_dev, c_nn: (n,) tangent coefficients [Pa] (module docstring).
        iterations: Newton iterations of the scalar return (max over points).
    """

    stress: np.ndarray
    creep_strain: np.ndarray
    p: np.ndarray
    direction: np.ndarray
    c_dev: np.ndarray
    c_nn: np.ndarray
    iterations: int = 0


def norton_ratio(a: np.ndarray, m: float, rtol: float = 1e-13, max_it: int = 100
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Root y in (0, 1] of 1 - y = a y^m for every a >= 0, and z = 1 - y = a y^m.

    Newton from y0 = min(1, a^(-1/m)), where 1 - y - a y^m <= 0: the function is concave and
    decreasing, so the iterates decrease monotonically to the root. Returns (y, z, iterations).
    """
    a = np.minimum(np.asarray(a, dtype=float), 1e300)
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError("norton_ratio: a must be finite and >= 0")
    y = np.ones_like(a)
    pos = a > 0
    y[pos] = np.minimum(1.0, a[pos] ** (-1.0 / m))
    active = np.flatnonzero(pos)
    it = 0
    while active.size:
        if it == max_it:
            raise RuntimeError(
                f"creep return mapping: scalar Newton not converged after {max_it} iterations "
                f"at {active.size} points (a in [{a[active].min():.3e}, {a[active].max():.3e}])")
        it += 1
        ya, aa = y[active], a[active]
        ym1 = ya ** (m - 1.0)
        phi = 1.0 - ya - aa * ym1 * ya
        dy = phi / (-1.0 - m * aa * ym1)
        y[active] = ya - dy
        active = active[np.abs(dy) > rtol * ya]
    z = np.minimum(a * y**m, 1.0)  # round-off may leave a y^m = 1 + 2e-16
    return y, z, it


def return_mapping(law: Law, strain: np.ndarray, creep_strain_n: np.ndarray, p_n: np.ndarray,
                   dt: float, lmbda: float, mu: float, temperature: float = T_REFERENCE
                   ) -> PointUpdate:
    """Backward-Euler radial return at n points.

    Args:
        law: the constitutive option.
        strain: (n, 3, 3) total strain (minus eigenstrains) at the end of the step.
        creep_strain_n, p_n: committed internal variables (start of the step).
        dt: time step [s] (used by creep only; dt = 0 gives the elastic response).
        lmbda, mu: Lame constants [Pa].
        temperature: [K], for the Arrhenius factor of Norton creep.
    """
    if dt < 0:
        raise ValueError(f"creep: time step must be >= 0 s, got {dt}")
    n = strain.shape[0]
    eye = np.eye(3)
    K = lmbda + 2.0 * mu / 3.0
    ee = strain - creep_strain_n
    tr = np.trace(strain, axis1=1, axis2=2)
    tr_e = np.trace(ee, axis1=1, axis2=2)
    s_tr = 2.0 * mu * (ee - tr_e[:, None, None] / 3.0 * eye)
    norm_s = np.sqrt(np.einsum("nij,nij->n", s_tr, s_tr))
    q_tr = np.sqrt(1.5) * norm_s
    direction = np.zeros_like(s_tr)
    nz = norm_s > 0
    direction[nz] = s_tr[nz] / norm_s[nz, None, None]

    y, z = np.ones(n), np.zeros(n)
    c_nn = np.zeros(n)
    iterations = 0
    if isinstance(law, NortonCreep) and dt > 0:
        m = law.m
        with np.errstate(over="ignore"):
            a = 3.0 * mu * dt * law.rate(temperature) / law.sigma0 * (q_tr / law.sigma0) ** (m - 1)
        y, z, iterations = norton_ratio(a, m)
        c_nn = 2.0 * mu * z * y * (m - 1.0) / (y + m * z)
    elif isinstance(law, VonMisesPlasticity):
        H = law.hardening
        f = q_tr - (law.yield_stress + H * p_n)
        yielding = f > YIELD_TOLERANCE * law.yield_stress
        dp = np.where(yielding, f, 0.0) / (3.0 * mu + H)
        z[yielding] = 3.0 * mu * dp[yielding] / q_tr[yielding]
        y = 1.0 - z
        c_nn[yielding] = 6.0 * mu**2 / (3.0 * mu + H) - 2.0 * mu * z[yielding]
    elif not isinstance(law, (Elastic, NortonCreep)):
        raise TypeError(f"creep: unknown constitutive law {law!r} (known: {LAWS})")

    stress = K * tr[:, None, None] * eye + y[:, None, None] * s_tr
    creep_strain = creep_strain_n + (z / (2.0 * mu))[:, None, None] * s_tr
    p = p_n + z * q_tr / (3.0 * mu)
    return PointUpdate(stress, creep_strain, p, direction, 2.0 * mu * z, c_nn, iterations)


# ---------------------------------------------------------------------------------------------
# Quadrature-point state on a mesh


class QuadratureInelasticity:
    """Stress, consistent tangent and internal variables of one region at quadrature points.

    Args:
        msh: the mesh of the displacement (and of ``strain``).
        strain: UFL 3x3 expression of the shared total strain (eps(u) minus eigenstrains).
        law: ``Elastic()``, ``NortonCreep(...)`` or ``VonMisesPlasticity(...)``.
        youngs_modulus: E [Pa]; poisson_ratio: nu [-].
        quadrature_degree: degree of the quadrature rule; every form that uses ``sigma`` must
            integrate with ``metadata`` (``dx`` does).
        cells: local cells (owned and ghost) where the law applies; default all. Elsewhere the
            stress functions stay zero, so integrate ``sigma`` over these cells only.
        temperature: [K] for the Arrhenius factor (mutable attribute).

    Attributes (quadrature Functions):
        stress: return-mapped stress at the last ``update`` [Pa].
        creep_strain, p: internal variables after the last ``update`` (trial values of the step).
        creep_strain_n, p_n: committed internal variables (start of the step).
        direction, c_dev, c_nn: tangent data of the last ``update`` (module docstring).
    """

    def __init__(self, msh: Any, strain: ufl.core.expr.Expr, law: Law,
                 youngs_modulus: float, poisson_ratio: float, quadrature_degree: int = 2,
                 cells: np.ndarray | None = None, temperature: float = T_REFERENCE):
        if ufl.shape(strain) != (3, 3):
            raise ValueError(f"creep: the strain must be a 3x3 tensor, got shape "
                             f"{ufl.shape(strain)}")
        self.msh = msh
        self.law = law
        self.temperature = temperature
        self.lmbda, self.mu = lame(youngs_modulus, poisson_ratio)
        self.youngs_modulus, self.poisson_ratio = youngs_modulus, poisson_ratio
        self.metadata = {"quadrature_degree": quadrature_degree, "quadrature_scheme": "default"}
        self.dx = ufl.Measure("dx", domain=msh, metadata=self.metadata)
        self._strain = strain

        cell = msh.basix_cell()
        Wt = fem.functionspace(msh, basix.ufl.quadrature_element(
            cell, value_shape=(3, 3), scheme="default", degree=quadrature_degree))
        Ws = fem.functionspace(msh, basix.ufl.quadrature_element(
            cell, value_shape=(), scheme="default", degree=quadrature_degree))
        self.stress = fem.Function(Wt, name="stress")
        self.creep_strain = fem.Function(Wt, name="creep_strain")
        self.creep_strain_n = fem.Function(Wt, name="creep_strain_committed")
        self.p = fem.Function(Ws, name="equivalent_creep_strain")
        self.p_n = fem.Function(Ws, name="equivalent_creep_strain_committed")
        self._strain_q = fem.Function(Wt, name="strain_at_update")
        self.direction = fem.Function(Wt, name="flow_direction")
        self.c_dev = fem.Function(Ws, name="tangent_c_dev")
        self.c_nn = fem.Function(Ws, name="tangent_c_nn")

        tdim = msh.topology.dim
        if cells is None:
            imap = msh.topology.index_map(tdim)
            cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
        self.cells = np.asarray(cells, dtype=np.int32)
        points, _ = basix.make_quadrature(cell, quadrature_degree)
        self._expr = fem.Expression(strain, points)
        # point (cell, qp) -> dof, per space (robust to any dof numbering)
        self._it = Wt.dofmap.list[self.cells].reshape(-1)
        self._is = Ws.dofmap.list[self.cells].reshape(-1)
        self.num_points = self._it.size
        self.last_iterations = 0

    # -- UFL
    def tangent(self, de: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        """C_alg : de, the consistent tangent of the last ``update`` applied to a 3x3 ``de``."""
        N = self.direction
        return (hooke(de, self.youngs_modulus, self.poisson_ratio) - self.c_dev * deviatoric(de)
                - self.c_nn * ufl.inner(N, de) * N)

    @property
    def sigma(self) -> ufl.core.expr.Expr:
        """Stress for residual forms: sigma_q + C_alg : (eps - eps_q) (module docstring)."""
        return self.stress + self.tangent(self._strain - self._strain_q)

    # -- point data
    def point_values(self, f: fem.Function) -> np.ndarray:
        """Values of one of this object's quadrature Functions at the region's local points,
        shape (num_points, 3, 3) or (num_points,), points ordered cell by cell."""
        if f.function_space.dofmap.bs == 9:
            return self._get(f, self._it, (3, 3))
        return self._get(f, self._is, ())

    def _get(self, f: fem.Function, idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        bs = int(np.prod(shape))
        return f.x.array.reshape(-1, bs)[idx].reshape(-1, *shape)

    def _set(self, f: fem.Function, idx: np.ndarray, values: np.ndarray) -> None:
        bs = f.function_space.dofmap.bs
        f.x.array.reshape(-1, bs)[idx] = values.reshape(idx.size, bs)

    def update(self, dt: float) -> None:
        """Return mapping at the current strain from the committed state over a step ``dt`` [s];
        fills the stress, the tangent data and the trial internal variables."""
        strain = self._expr.eval(self.msh, self.cells).reshape(-1, 3, 3)
        res = return_mapping(
            self.law, strain, self._get(self.creep_strain_n, self._it, (3, 3)),
            self._get(self.p_n, self._is, ()), dt, self.lmbda, self.mu, self.temperature)
        self._set(self._strain_q, self._it, strain)
        self._set(self.stress, self._it, res.stress)
        self._set(self.creep_strain, self._it, res.creep_strain)
        self._set(self.p, self._is, res.p)
        self._set(self.direction, self._it, res.direction)
        self._set(self.c_dev, self._is, res.c_dev)
        self._set(self.c_nn, self._is, res.c_nn)
        self.last_iterations = res.iterations

    def state_functions(self) -> list[fem.Function]:
        """The Functions that ``update`` writes (to save and restore them around a trial)."""
        return [self.stress, self.creep_strain, self.p, self._strain_q, self.direction,
                self.c_dev, self.c_nn]

    def commit(self) -> None:
        """Accept the step: the trial internal variables become the committed state."""
        self.creep_strain_n.x.array[:] = self.creep_strain.x.array
        self.p_n.x.array[:] = self.p.x.array

    def rollback(self) -> None:
        """Reject the step: trial internal variables back to the committed state (call
        ``update`` again before assembling with the restored displacement)."""
        self.creep_strain.x.array[:] = self.creep_strain_n.x.array
        self.p.x.array[:] = self.p_n.x.array


def make_law(name: str, **parameters: float) -> Law:
    """Constitutive option from its config name ('elastic', 'norton', 'plasticity')."""
    if name == "elastic":
        if parameters:
            raise ValueError(f"mechanics.li_law: 'elastic' takes no parameters, got "
                             f"{sorted(parameters)}")
        return Elastic()
    if name == "norton":
        return NortonCreep(**parameters)
    if name == "plasticity":
        return VonMisesPlasticity(**parameters)
    raise ValueError(f"mechanics.li_law: unknown constitutive law '{name}' (known: {LAWS})")
