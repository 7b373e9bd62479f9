"""Manufactured solution for the potential problem with the nonlinear Butler-Volmer interface
term and a conductivity jump: observed L2 and H1 convergence rates of P1 and P2 (expected k+1
and k).

Conductivity: kappa_1 for y < L/2 (an SEI-like layer at the interface), kappa_2 above; the mesh
is aligned with the jump. The exact potential is piecewise,
    phi_ex = A cos(pi x / L) (1 + k_min sin(3 (y - L/2) / L) / kappa(y))
             + B k_min / kappa(y) (y - L/2) / L,
built so that phi and the normal current kappa d(phi)/dy are continuous across y = L/2.

Domain: the electrolyte (0, L) x (0, L), Li interface at y = 0 (n_out = -e_y), counter at
y = L (Dirichlet), sides with the exact flux. The exact potential (tens of mV, so the BV law is
well in its nonlinear range at i0 = 10 A/m^2) enters through a bulk source f = -div(kappa grad
phi_ex) and an interface source g = kappa grad(phi_ex).n_out - i_n(V_we - phi_ex), so that the
residual is exactly the solver's: int kappa grad phi.grad v - int i_n(V_we - phi) v ds - ... .
V_we is a real-space unknown pinned potentiostatically, as in the production problem.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest
import scifem
import ufl
from dolfinx import fem, mesh

from ecm_fem.constants import FARADAY, GAS_CONSTANT
from ecm_fem.physics import electrochemistry as ec
from ecm_fem.physics.kinetics import RateLaw
from ecm_fem.solver import BlockedNewtonSolver

L = 100e-6
KAPPA = 0.1
V_APP = 0.05


Y0 = L / 2


def kappa_of(x, k1: float, k2: float):
    return ufl.conditional(ufl.lt(x[1], Y0), k1, k2)


def phi_exact(x, k1: float = KAPPA, k2: float = KAPPA):
    """Smooth in each layer; phi and kappa d(phi)/dy continuous at y = Y0."""
    kap = kappa_of(x, k1, k2)
    k_min = min(k1, k2)  # keeps phi within tens of mV in the less conductive layer
    layered = 1 + k_min * ufl.sin(3 * (x[1] - Y0) / L) / kap
    return 0.03 * ufl.cos(np.pi * x[0] / L) * layered + 0.02 * k_min / kap * (x[1] - Y0) / L


def solve(n: int, degree: int, model: str, k1: float = KAPPA, k2: float = KAPPA
          ) -> tuple[float, float, float]:
    msh = mesh.create_rectangle(MPI.COMM_WORLD, [[0, 0], [L, L]], [n, n],
                                mesh.CellType.triangle)
    fdim = msh.topology.dim - 1
    bottom = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[1], 0))
    top = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[1], L))
    sides = mesh.locate_entities_boundary(
        msh, fdim, lambda x: np.isclose(x[0], 0) | np.isclose(x[0], L))
    idx = np.concatenate([bottom, sides])
    val = np.concatenate([np.full_like(bottom, 11), np.full_like(sides, 14)])
    order = np.argsort(idx)
    tags = mesh.meshtags(msh, fdim, idx[order], val[order])
    ds = ufl.Measure("ds", msh, subdomain_data=tags)
    dx = ufl.Measure("dx", msh)

    f_ = FARADAY / (GAS_CONSTANT * 298.15)
    law = RateLaw(model, 10.0, 0.5, 0.5, f_)
    V = fem.functionspace(msh, ("Lagrange", degree))
    R = scifem.create_real_functionspace(msh)
    phi, V_we = fem.Function(V), fem.Function(R)
    v, q = ufl.TestFunction(V), ufl.TestFunction(R)
    x = ufl.SpatialCoordinate(msh)
    pe = phi_exact(x, k1, k2)
    Q = fem.functionspace(msh, ("DG", 0))
    kappa = fem.Function(Q)
    mid = fem.Function(Q)
    mid.interpolate(fem.Expression(x[1], Q.element.interpolation_points()))
    kappa.x.array[:] = np.where(mid.x.array < Y0, k1, k2)
    n_out = ufl.FacetNormal(msh)
    source = -ufl.div(kappa_of(x, k1, k2) * ufl.grad(pe))
    flux_ex = kappa_of(x, k1, k2) * ufl.dot(ufl.grad(pe), n_out)
    i_n = law.current(V_we - phi)
    g = flux_ex - law.current(V_APP - pe)

    F_phi = ec.ohmic_residual(phi, v, kappa, dx) - source * v * dx
    F_phi += ec.electrode_flux_residual(i_n + g, v, ds(11)) - flux_ex * v * ds(14)
    F_V = 10.0 * f_ * (V_we - V_APP) * q * ds(11)

    bc_dofs = fem.locate_dofs_topological(V, fdim, top)
    u_bc = fem.Function(V)
    u_bc.interpolate(fem.Expression(pe, V.element.interpolation_points()))
    bc = fem.dirichletbc(u_bc, bc_dofs)
    solver = BlockedNewtonSolver([F_phi, F_V], [phi, V_we], ["phi", "V_we"], [bc],
                                 jacobi_fields={"V_we"})
    report = solver.solve()
    solver.destroy()
    err = phi - pe
    l2 = np.sqrt(msh.comm.allreduce(fem.assemble_scalar(fem.form(err**2 * dx)), op=MPI.SUM))
    h1 = np.sqrt(msh.comm.allreduce(
        fem.assemble_scalar(fem.form(ufl.inner(ufl.grad(err), ufl.grad(err)) * dx)),
        op=MPI.SUM))
    assert report.newton_its <= 8
    return L / n, l2, h1


def rates(degree: int, model: str, sizes=(8, 16, 32), k1: float = KAPPA, k2: float = KAPPA
          ) -> tuple[np.ndarray, np.ndarray]:
    res = [solve(n, degree, model, k1, k2) for n in sizes]
    h = np.array([r[0] for r in res])
    l2 = np.array([r[1] for r in res])
    h1 = np.array([r[2] for r in res])
    return np.log(l2[1:] / l2[:-1]) / np.log(h[1:] / h[:-1]), \
        np.log(h1[1:] / h1[:-1]) / np.log(h[1:] / h[:-1])


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("k1", [KAPPA, KAPPA / 50])
def test_mms_rates_butler_volmer(degree, k1):
    r_l2, r_h1 = rates(degree, "butler_volmer", k1=k1)
    assert r_l2[-1] == pytest.approx(degree + 1, abs=0.15), r_l2
    assert r_h1[-1] == pytest.approx(degree, abs=0.15), r_h1


def test_mms_rates_linear_and_tafel():
    for model in ("linear", "tafel"):
        r_l2, _ = rates(1, model)
        assert r_l2[-1] == pytest.approx(2, abs=0.15), (model, r_l2)
