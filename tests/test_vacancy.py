"""Vacancy transport in Li (ecm_fem.physics.vacancy): the constant-flux semi-infinite solution
with its time order, manufactured solutions with observed spatial rates (diffusion, stress
drift, the interface law with a plating region where the positivity law acts), mass balance,
positivity under strong plating, the transfer of an ion-submesh field onto the Li submesh, and
the same global results on any number of ranks.

Geometry of every case: Li below the interface y = 0 (n = +e_y from Li into the electrolyte),
the current collector at the bottom, lateral sides at x = 0 and x = W.
"""

from __future__ import annotations

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import pytest
import ufl
from conftest import tagged_measure
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc

from ecm_fem.config import RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT, T_REFERENCE
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import extract_region, generate
from ecm_fem.physics.vacancy import (
    VacancyDiffusion,
    VacancySolverError,
    annihilation_factor,
    transfer_shared_vertices,
)

RT = GAS_CONSTANT * T_REFERENCE


def tag_boundaries(msh: dmesh.Mesh, width: float, bottom: float, top: float = 0.0,
                   interface_y: float = 0.0) -> dmesh.MeshTags:
    """Facet tags of a rectangle [0, width] x [bottom, top]: interface on y = interface_y (on
    the boundary or inside), li_cc at y = bottom, counter at y = top (when above the
    interface), side at x = 0 and x = width."""
    fdim = msh.topology.dim - 1
    tol = 1e-9 * (top - bottom)
    found = {
        "interface": dmesh.locate_entities(msh, fdim, lambda x: np.abs(x[1] - interface_y) < tol),
        "li_cc": dmesh.locate_entities_boundary(msh, fdim, lambda x: np.abs(x[1] - bottom) < tol),
        "side": dmesh.locate_entities_boundary(
            msh, fdim, lambda x: (np.abs(x[0]) < tol) | (np.abs(x[0] - width) < tol)),
    }
    if top > interface_y:
        found["counter"] = dmesh.locate_entities_boundary(
            msh, fdim, lambda x: np.abs(x[1] - top) < tol)
    indices = np.concatenate(list(found.values())).astype(np.int32)
    values = np.concatenate([np.full(len(f), FACET_TAGS[k], dtype=np.int32)
                             for k, f in found.items()])
    order = np.argsort(indices)
    return dmesh.meshtags(msh, fdim, indices[order], values[order])


def li_rectangle(comm: MPI.Comm, width: float, height: float, nx: int, ny: int
                 ) -> tuple[dmesh.Mesh, dmesh.MeshTags]:
    msh = dmesh.create_rectangle(comm, [[0.0, -height], [width, 0.0]], [nx, ny],
                                 ghost_mode=dmesh.GhostMode.shared_facet)
    return msh, tag_boundaries(msh, width, -height)


def global_min(comm: MPI.Comm, values: np.ndarray) -> float:
    return comm.allreduce(float(values.min(initial=np.inf)), op=MPI.MIN)


def assert_on_every_rank(comm: MPI.Comm, ok: bool, what: str) -> None:
    """Assert a rank-local condition on all ranks together, so that a failure on some ranks
    fails the test everywhere instead of leaving the others waiting in the next collective."""
    failed = [rank for rank, good in enumerate(comm.allgather(bool(ok))) if not good]
    assert not failed, f"{what}: fails on rank(s) {failed}"


# ------------------------------------------------------------- 1. constant flux, semi-infinite
D_STRIP, C0_STRIP, I_STRIP = 1e-12, 10.0, 1.0  # m^2/s, mol/m^3, A/m^2
T_END = 100.0  # s; diffusion length sqrt(D T) = 10 um
L_STRIP = 100e-6  # 10 diffusion lengths: the far end changes c(0, T) by ~exp(-25)


def strip_surface_history(n_steps: int, times: list[float]) -> dict[float, float]:
    """c_v(0, t) on a thin strip [0, w] x [-L, 0], graded as y = -L s^2 (first cell 25 nm),
    uniform backward-Euler steps of T_END / n_steps, constant stripping current."""
    w, n = 1e-6, 160
    msh = dmesh.create_rectangle(MPI.COMM_WORLD, [[0.0, -1.0], [w, 0.0]], [1, n],
                                 ghost_mode=dmesh.GhostMode.shared_facet)
    x = msh.geometry.x
    x[:, 1] = -L_STRIP * (-x[:, 1]) ** 2
    tags = tag_boundaries(msh, w, -L_STRIP)
    vac = VacancyDiffusion(msh, tags, diffusivity=D_STRIP, equilibrium_concentration=C0_STRIP,
                           collector="no_flux")
    vac.interface_current.x.array[:] = I_STRIP
    dt = T_END / n_steps
    out = {}
    for k in range(1, n_steps + 1):
        vac.step(dt)
        vac.commit()
        t = k * dt
        if any(np.isclose(t, s) for s in times):
            out[round(t, 9)] = vac.interface_maximum()[0]
    vac.destroy()
    return out


@pytest.mark.mpi
def test_constant_flux_semi_infinite():
    """c(0, t) = c0 + 2 J sqrt(t / (pi D)), J = i/F (Crank, The Mathematics of Diffusion, 2nd
    ed. 1975, constant surface flux into a semi-infinite medium: c - c0 = (2 J sqrt(D t) / D)
    ierfc(x / (2 sqrt(D t))), ierfc(0) = 1/sqrt(pi)). Backward Euler is first order; the flux
    switched on at t = 0 makes dc/dt ~ t^(-1/2) unbounded at the start, which does not lower
    the order at a fixed t > 0 (parabolic smoothing). The spatial error of the graded mesh is
    below 1e-4 relative (measured with 4x smaller steps), so halving dt must halve the error."""
    times = [25.0, 50.0, 100.0]
    exact = {t: C0_STRIP + 2 * I_STRIP / FARADAY * np.sqrt(t / (np.pi * D_STRIP))
             for t in times}
    coarse, fine = strip_surface_history(40, times), strip_surface_history(80, times)
    for t in times:
        rise = exact[t] - C0_STRIP
        e_coarse, e_fine = abs(coarse[t] - exact[t]) / rise, abs(fine[t] - exact[t]) / rise
        # first order: the relative error of the rise is 0.13 dt / t (measured, 25 <= t <= 100 s)
        assert e_fine < 0.2 * (T_END / 80) / t, (t, e_fine)
        order = np.log2(e_coarse / e_fine)
        assert 0.85 < order < 1.15, (t, e_coarse, e_fine, order)


# ------------------------------------------------------------- 2. manufactured solutions
W_MMS, H_MMS = 10e-6, 10e-6
D_MMS, C_EQ_MMS, TAU = 1e-12, 100.0, 50.0  # m^2/s, mol/m^3, s
OMEGA_V = 1.3e-5  # m^3/mol
# (a0, a1, beta): c_ex profile a0 + a1 cos(pi x / W) and drift strength Omega_v S0 / (R T).
# MIXED strips and plates along the interface; PLATING plates everywhere, so that the interface
# data are smooth (P2 would see the kink of <i_n>+- where i_n changes sign as an O(h^2) error).
MIXED, PLATING = (0.2, 0.6, 0.5), (0.8, 0.1, 0.1)


def mms_profile(a0: float, a1: float, x0, y, cos, sin):
    """(a(x), s(y)) of c_ex = c_eq (1 + theta(t) a(x) s(y)) with UFL or numpy functions."""
    return a0 + a1 * cos(np.pi * x0 / W_MMS), sin(2 * (y + H_MMS) / H_MMS)


def mms_fields(x, t, case):
    """(c_ex, dc_ex/dt, sigma_h) as UFL expressions of x and t (a Constant). c_ex is linear in
    t, so backward Euler is exact in time and only the spatial error remains; c_ex = c_eq on
    the collector y = -H; c_ex and sigma_h have zero x-derivative at the sides (no flux)."""
    a0, a1, beta = case
    a, s = mms_profile(a0, a1, x[0], x[1], ufl.cos, ufl.sin)
    theta = 0.5 * (1 + t / TAU)
    c_ex = C_EQ_MMS * (1 + theta * a * s)
    dc_dt = C_EQ_MMS * 0.5 / TAU * a * s
    sigma = beta * RT / OMEGA_V * ufl.cos(np.pi * x[0] / W_MMS) * ufl.exp(x[1] / H_MMS)
    return c_ex, dc_dt, sigma


def mms_interface_current(x: np.ndarray, t: float, c_eps: float, case) -> np.ndarray:
    """i_n [A/m^2] at points x (3, n) of the interface y = 0 that makes the solver's interface
    law reproduce the exact flux q_ex = -J(c_ex).n = D dc/dy - D c Omega_v/(R T) dsigma/dy:
    i_n = F q_ex where q_ex >= 0 (stripping), F q_ex / g(c_ex) where q_ex < 0 (plating, the
    positivity law acting)."""
    a0, a1, beta = case
    a, _ = mms_profile(a0, a1, x[0], x[1], np.cos, np.sin)
    theta = 0.5 * (1 + t / TAU)
    c = C_EQ_MMS * (1 + theta * a * np.sin(2.0))
    dc_dy = C_EQ_MMS * theta * a * 2 / H_MMS * np.cos(2.0)
    dsigma_dy = beta * RT / OMEGA_V * np.cos(np.pi * x[0] / W_MMS) / H_MMS
    q = D_MMS * dc_dy - D_MMS * c * OMEGA_V / RT * dsigma_dy
    g = annihilation_factor(c, c_eps)
    return FARADAY * np.where(q >= 0, q, q / g)


def mms_errors(n: int, degree: int, case) -> tuple[float, float, float]:
    """(L2 error, H1 seminorm error, fraction of the interface nodes that plate) at t = 2 TAU
    after two steps of TAU on an n x n mesh."""
    msh, tags = li_rectangle(MPI.COMM_WORLD, W_MMS, H_MMS, n, n)
    x = ufl.SpatialCoordinate(msh)
    t = fem.Constant(msh, 0.0)
    c_ex, dc_dt, sigma = mms_fields(x, t, case)
    flux = -D_MMS * ufl.grad(c_ex) + D_MMS * c_ex * OMEGA_V / RT * ufl.grad(sigma)
    c_eps = 0.5 * C_EQ_MMS  # far from saturation: g(c_ex) = 0.75..0.97 on the interface
    a0, a1, _ = case

    def c_initial(p: np.ndarray) -> np.ndarray:
        a, s = mms_profile(a0, a1, p[0], p[1], np.cos, np.sin)
        return C_EQ_MMS * (1 + 0.5 * a * s)

    vac = VacancyDiffusion(msh, tags, diffusivity=D_MMS, equilibrium_concentration=C_EQ_MMS,
                           molar_volume=OMEGA_V, sigma_h=sigma, degree=degree,
                           annihilation_scale=c_eps, source=dc_dt + ufl.div(flux),
                           initial_concentration=c_initial)
    for k in (1, 2):
        t.value = k * TAU
        vac.interface_current.interpolate(
            lambda p, tk=k * TAU: mms_interface_current(p, tk, c_eps, case))
        vac.step(TAU)
        vac.commit()
    comm = msh.comm
    dx = ufl.dx(metadata={"quadrature_degree": 2 * degree + 4})
    err = vac.c_v - c_ex
    l2 = np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(err * err * dx)), op=MPI.SUM))
    h1 = np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(
        ufl.inner(ufl.grad(err), ufl.grad(err)) * dx)), op=MPI.SUM))
    points, _ = vac.interface_values()
    i_n = mms_interface_current(np.vstack([points.T, np.zeros(len(points))]), 2 * TAU, c_eps,
                                case)
    plating = comm.allreduce(int(np.sum(i_n < 0)), op=MPI.SUM) / comm.allreduce(
        len(i_n), op=MPI.SUM)
    vac.destroy()
    return l2, h1, plating


@pytest.mark.parametrize("degree, case, sizes, plating_fraction", [
    (1, MIXED, [8, 16, 32, 64], (0.2, 0.8)),
    (2, PLATING, [4, 8, 16, 32], (1.0, 1.0)),
])
def test_manufactured_rates(degree, case, sizes, plating_fraction):
    """Observed L2 and H1 rates of the transport problem with drift, the interface law (with
    plating where g acts) and an equilibrium collector: k + 1 and k."""
    results = [mms_errors(n, degree, case) for n in sizes]
    l2 = np.array([r[0] for r in results])
    h1 = np.array([r[1] for r in results])
    assert plating_fraction[0] <= results[-1][2] <= plating_fraction[1]
    rates_l2, rates_h1 = np.log2(l2[:-1] / l2[1:]), np.log2(h1[:-1] / h1[1:])
    assert rates_l2[-1] > degree + 1 - 0.15, rates_l2
    assert rates_h1[-1] > degree - 0.1, rates_h1
    assert l2[-1] < 1e-2 * C_EQ_MMS * np.sqrt(W_MMS * H_MMS)  # and the error is small


# ------------------------------------------------------------- 3. mass balance
@pytest.mark.mpi
@pytest.mark.parametrize("linear_solver", ["direct", "iterative"])
def test_mass_balance_stripping_and_plating(linear_solver):
    """No-flux collector, stripping on one part of the interface and plating on the other, stress
    drift on: the change of amount() equals the time-integrated interface flux, and, since
    c_v >> c_eps, the integral of i_n/F (trapezoidal rule over the interface nodes, computed
    here independently) to the positivity law's (c_eps/c)^2/2 ~ 1e-6. The first balance is the
    sum of the residual's rows, so it holds to the solver's tolerance: the final residual of
    each step. The problem is linear but for g(c) ~ 1, so Newton converges in one iteration (a
    wrong Jacobian takes more), to |F| < 1e-10 |F_0| (the linear solve's accuracy: about 1e-13
    |F_0| with LU or GMRES at ksp_rtol 1e-12); measured imbalance: 1.3e-10 of the change with
    either solver."""
    W, H = 10e-6, 10e-6
    msh, tags = li_rectangle(MPI.COMM_WORLD, W, H, 12, 12)
    V1 = fem.functionspace(msh, ("Lagrange", 1))
    sigma = fem.Function(V1)
    sigma.interpolate(lambda x: 2e7 * np.sin(np.pi * x[0] / W) * (1 + x[1] / H))
    c_eq = 1000.0
    vac = VacancyDiffusion(msh, tags, diffusivity=1e-11, equilibrium_concentration=c_eq,
                           molar_volume=1.3e-5, sigma_h=sigma, collector="no_flux",
                           linear_solver=linear_solver)
    i0 = 5.0
    vac.interface_current.interpolate(lambda x: i0 * (np.cos(np.pi * x[0] / W) + 0.3))
    points, _ = vac.interface_values()
    i_nodes = i0 * (np.cos(np.pi * points[:, 0] / W) + 0.3)
    assert msh.comm.allreduce(int(np.any(i_nodes > 0)) + 2 * int(np.any(i_nodes < 0)),
                              op=MPI.BOR) == 3
    all_x = np.sort(np.concatenate(msh.comm.allgather(points[:, 0])))
    i_all = i0 * (np.cos(np.pi * all_x / W) + 0.3)
    trapezoid = float(np.sum(0.5 * (i_all[1:] + i_all[:-1]) * np.diff(all_x))) / FARADAY

    amount0 = vac.amount()
    flux_integral, dt = 0.0, 5.0
    for _ in range(10):
        assert vac.step(dt) == 1
        vac.commit()
        flux_integral += dt * vac.interface_flux()
    change = vac.amount() - amount0
    assert abs(change - flux_integral) < 1e-9 * abs(change), (change, flux_integral)
    assert change == pytest.approx(10 * dt * trapezoid, rel=1e-5)
    assert global_min(msh.comm, vac.c_v.x.array) > 0.5 * c_eq  # the premise c >> c_eps

    # a step the caller rejects: rollback restores the committed state, and redoing the step
    # gives the same state again
    comm = msh.comm
    committed = vac.c_v.x.array.copy()
    vac.step(dt)
    stepped = vac.c_v.x.array.copy()
    assert comm.allreduce(bool(np.any(stepped != committed)), op=MPI.LOR)
    vac.rollback()
    assert_on_every_rank(comm, np.array_equal(vac.c_v.x.array, committed), "rollback")
    vac.step(dt)
    assert_on_every_rank(comm, np.allclose(vac.c_v.x.array, stepped, rtol=1e-12, atol=0),
                         "the redone step")
    vac.destroy()


@pytest.mark.mpi
def test_mass_balance_and_positivity_3d():
    """The same balance on tetrahedra (vertex quadrature on triangular facets), with plating
    strong enough to empty part of the interface: amount() [mol] changes by the integrated
    interface flux, and c_v stays > 0."""
    W, H = 4e-6, 4e-6
    msh = dmesh.create_box(MPI.COMM_WORLD, [[0.0, -H, 0.0], [W, 0.0, W]], [5, 5, 5],
                           ghost_mode=dmesh.GhostMode.shared_facet)
    tags = tag_boundaries(msh, W, -H)
    vac = VacancyDiffusion(msh, tags, diffusivity=1e-12, equilibrium_concentration=1.0,
                           collector="no_flux")
    vac.interface_current.interpolate(
        lambda x: 10.0 * np.cos(np.pi * x[0] / W) * (1 + x[2] / W))
    amount0, flux_integral = vac.amount(), 0.0
    assert amount0 == pytest.approx(W * H * W, rel=1e-12)
    for _ in range(4):
        vac.step(0.5)
        vac.commit()
        flux_integral += 0.5 * vac.interface_flux()
        assert global_min(msh.comm, vac.c_v.x.array) > 0.0
    assert vac.amount() > 10 * amount0  # stripping injected far more than was there
    assert abs(vac.amount() - amount0 - flux_integral) < 1e-11 * vac.amount()
    assert vac.clipped_nodes == 0
    _, c_if = vac.interface_values()
    assert global_min(msh.comm, c_if) < 1e-3  # the plating part is emptied
    vac.destroy()


# ------------------------------------------------------------- Newton's Jacobian
@pytest.mark.mpi
def test_jacobian_matches_finite_differences():
    """The Jacobian of the residual (UFL derivative, compiled as the solver compiles it) against
    central differences of the residual, at a c_v of the order of c_eps (where g' matters), with
    drift from a P1 sigma_h, stripping and plating: agreement to the O(eps^2) truncation. (The
    residual with the stiffness and drift on the default quadrature rule and the mass on the
    vertex rule, miscompiled by FFCx 0.9, failed this by 9e-2.)"""
    W, H = 10e-6, 10e-6
    msh, tags = li_rectangle(MPI.COMM_WORLD, W, H, 6, 6)
    sigma = fem.Function(fem.functionspace(msh, ("Lagrange", 1)))
    sigma.interpolate(lambda p: 3e7 * np.sin(p[0] / W) * (1 + p[1] / H))
    c_eps = 1.0
    vac = VacancyDiffusion(msh, tags, diffusivity=1e-12, equilibrium_concentration=10.0,
                           molar_volume=1.3e-5, sigma_h=sigma,
                           annihilation_scale=c_eps, collector="no_flux",
                           initial_concentration=lambda p: c_eps * (0.3 + 2 * p[0] / W
                                                                    + np.sin(5e5 * p[1]) ** 2))
    vac.interface_current.interpolate(lambda p: 20.0 * np.cos(np.pi * p[0] / W))
    vac.dt.value = 0.5
    residual = fem.form(vac.residual)
    jacobian = fem.form(ufl.derivative(vac.residual, vac.c_v, ufl.TrialFunction(vac.V)))
    A = fem_petsc.assemble_matrix(jacobian)
    A.assemble()

    def assembled(form):
        b = fem_petsc.assemble_vector(form)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return b

    direction = fem.Function(vac.V)
    direction.interpolate(lambda p: c_eps * np.cos(3e5 * p[0] + 2e5 * p[1]))
    J_d = A.createVecLeft()
    A.mult(direction.x.petsc_vec, J_d)
    eps = 1e-4
    c0 = vac.c_v.x.array.copy()
    vac.c_v.x.array[:] = c0 + eps * direction.x.array
    plus = assembled(residual)
    vac.c_v.x.array[:] = c0 - eps * direction.x.array
    minus = assembled(residual)
    vac.c_v.x.array[:] = c0
    central = (plus - minus) / (2 * eps)
    assert (central - J_d).norm() < 1e-7 * J_d.norm()
    for obj in (A, J_d, plus, minus, central):
        obj.destroy()
    vac.destroy()


# ------------------------------------------------------------- 4. positivity
@pytest.mark.mpi
def test_positivity_under_strong_plating():
    """Plating at 10-100 A/m^2 into Li with c_v = 1e-3 c_eq: one step's sink |i|/F dt W is 1e3
    times the vacancies present, so without the positivity law c_v would go far below zero
    (Newton's bound c_v >= 0 would then hold it at exactly 0 at the interface, which the strict
    inequality and clipped_nodes catch); with it, c_v stays > 0 everywhere (the discrete
    maximum principle) while the interface is emptied of vacancies."""
    W, H = 10e-6, 10e-6
    msh, tags = li_rectangle(MPI.COMM_WORLD, W, H, 16, 16)
    c_eq, c0 = 10.0, 0.01
    vac = VacancyDiffusion(msh, tags, diffusivity=1e-12, equilibrium_concentration=c_eq,
                           collector="no_flux", initial_concentration=c0)
    vac.interface_current.interpolate(lambda x: -10.0 - 90.0 * (x[0] / W) ** 2)
    amount0 = vac.amount()
    dt = 1.0
    assert 10.0 / FARADAY * dt * W > 1e3 * amount0  # the plating sink dwarfs the content
    for _ in range(5):
        vac.step(dt)
        vac.commit()
        assert global_min(msh.comm, vac.c_v.x.array) > 0.0
        assert vac.clipped_nodes == 0
    _, c_if = vac.interface_values()
    assert msh.comm.allreduce(float(c_if.max(initial=0.0)), op=MPI.MAX) < 1e-3 * c0
    assert vac.amount() < 0.9 * amount0
    vac.destroy()


@pytest.mark.mpi
def test_failed_step_leaves_state():
    """One Newton iteration is not enough for the strongly nonlinear plating step: a
    VacancySolverError (a RuntimeError), and c_v as before the step."""
    msh, tags = li_rectangle(MPI.COMM_WORLD, 10e-6, 10e-6, 8, 8)
    vac = VacancyDiffusion(msh, tags, diffusivity=1e-12, equilibrium_concentration=10.0,
                           initial_concentration=0.01, petsc_options={"snes_max_it": 1},
                           prefix="ecm_vacancy_test_fail_")
    vac.interface_current.x.array[:] = -50.0
    before = vac.c_v.x.array.copy()
    with pytest.raises(VacancySolverError, match="did not converge"):
        vac.step(1.0)
    assert issubclass(VacancySolverError, RuntimeError)
    assert_on_every_rank(msh.comm, np.array_equal(vac.c_v.x.array, before), "state kept")
    vac.destroy()


@pytest.mark.mpi
def test_steady_state_is_accepted():
    """Start from the exact steady state (stripping flux J = i/F through the Li to the
    equilibrium collector: c_v linear in y, which P1 holds exactly) and take a long step: the
    residual starts at round-off, which the absolute tolerance accepts (rtol alone cannot be
    met from there), and c_v stays put."""
    W, H, D, c_eq = 10e-6, 10e-6, 1e-11, 7.0
    J = D * c_eq / H  # c_v doubles from the collector to the interface
    msh, tags = li_rectangle(MPI.COMM_WORLD, W, H, 8, 8)
    vac = VacancyDiffusion(msh, tags, diffusivity=D, equilibrium_concentration=c_eq,
                           initial_concentration=lambda p: c_eq + J / D * (p[1] + H))
    vac.interface_current.x.array[:] = FARADAY * J
    steady = vac.c_v.x.array.copy()
    assert vac.step(1e6) <= 1
    assert_on_every_rank(msh.comm, np.allclose(vac.c_v.x.array, steady, rtol=1e-12, atol=0),
                         "the steady state kept")
    vac.destroy()


@pytest.mark.mpi
@pytest.mark.parametrize("free_surface", ["equilibrium", "no_flux"])
def test_free_surface_is_a_vacancy_sink(free_surface):
    """Stripping into a Li slab whose far face is a free surface (void_surface) and which has
    no collector: held at c_eq (the default), the surface drains the slab to the steady
    linear profile c_eq + J (y + H) / D (P1 holds it exactly: to the solver tolerance); with
    free_surface no_flux nothing leaves, and the amount grows by J W dt."""
    W, H, D, c_eq = 10e-6, 10e-6, 1e-11, 7.0
    J = D * c_eq / H
    msh, tags = li_rectangle(MPI.COMM_WORLD, W, H, 8, 8)
    values = np.where(tags.values == FACET_TAGS["li_cc"], FACET_TAGS["void_surface"],
                      tags.values).astype(np.int32)
    tags = dmesh.meshtags(msh, msh.topology.dim - 1, tags.indices, values)
    vac = VacancyDiffusion(msh, tags, diffusivity=D, equilibrium_concentration=c_eq,
                           collector="no_flux", free_surface=free_surface)
    vac.interface_current.x.array[:] = FARADAY * J
    # held: one backward Euler step this long is the steady solve; no flux: a diffusion time
    dt = (1e10 if free_surface == "equilibrium" else 1.0) * H**2 / D
    before = vac.amount()
    vac.step(dt)
    y = vac.V.tabulate_dof_coordinates()[:, 1]
    if free_surface == "equilibrium":
        exact = c_eq + J / D * (y + H)
        assert_on_every_rank(msh.comm, np.allclose(vac.c_v.x.array, exact, rtol=1e-9, atol=0),
                             "the steady linear profile")
    else:
        assert vac.amount() - before == pytest.approx(J * W * dt, rel=1e-9)
    vac.destroy()


def test_rejects_bad_parameters():
    msh, tags = li_rectangle(MPI.COMM_WORLD, 1e-6, 1e-6, 2, 2)
    base = {"diffusivity": 1e-12, "equilibrium_concentration": 1.0}
    with pytest.raises(ValueError, match="collector"):
        VacancyDiffusion(msh, tags, **base, collector="sink")
    with pytest.raises(ValueError, match="diffusivity"):
        VacancyDiffusion(msh, tags, **{**base, "diffusivity": 0.0})
    with pytest.raises(ValueError, match="molar_volume is 0"):
        VacancyDiffusion(msh, tags, **base, sigma_h=fem.Constant(msh, 1.0))
    with pytest.raises(ValueError, match="discontinuous"):
        VacancyDiffusion(msh, tags, **base, molar_volume=1e-5,
                         sigma_h=fem.Function(fem.functionspace(msh, ("DG", 0))))
    with pytest.raises(ValueError, match="initial_concentration"):
        VacancyDiffusion(msh, tags, **base, initial_concentration=-1.0)
    no_interface = dmesh.meshtags(msh, 1, np.zeros(0, np.int32), np.zeros(0, np.int32))
    with pytest.raises(ValueError, match="interface"):
        VacancyDiffusion(msh, no_interface, **base)


# ------------------------------------------------------------- 5. transfer to the Li submesh
def source_field(x: np.ndarray) -> np.ndarray:
    return 1.0 + 3.0 * x[0] / 1e-5 + 2.0 * x[1] / 1e-5 + np.sin(7 * x[0] / 1e-5)


@pytest.mark.mpi
def test_transfer_shared_vertices_two_regions():
    """A rectangle split at y = 0 into Li (below) and electrolyte (above), the regions made with
    extract_region: a P1 field of the ion-conducting submesh arrives at every interface node of
    the Li submesh (owned and ghost) and nowhere else (a field varying in x and y: a vertex
    paired wrongly would show)."""
    W, H, nx = 10e-6, 5e-6, 13
    msh = dmesh.create_rectangle(MPI.COMM_WORLD, [[0.0, -H], [W, H]], [nx, 6],
                                 ghost_mode=dmesh.GhostMode.shared_facet)
    tdim = msh.topology.dim
    n_cells = msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
    centroid_y = dmesh.compute_midpoints(msh, tdim, np.arange(n_cells, dtype=np.int32))[:, 1]
    cell_tags = dmesh.meshtags(msh, tdim, np.arange(n_cells, dtype=np.int32),
                               np.where(centroid_y < 0, CELL_TAGS["li"],
                                        CELL_TAGS["electrolyte"]).astype(np.int32))
    facet_tags = tag_boundaries(msh, W, -H, top=H, interface_y=0.0)
    li = extract_region(msh, cell_tags, facet_tags, [CELL_TAGS["li"]])
    ion = extract_region(msh, cell_tags, facet_tags, [CELL_TAGS["electrolyte"]])
    # the interface tag reaches both regions, whole, on every rank count
    for region in (li, ion):
        assert tagged_measure(region.mesh, region.facet_tags, "ds",
                              FACET_TAGS["interface"]) == pytest.approx(W, rel=1e-12)

    source = fem.Function(fem.functionspace(ion.mesh, ("Lagrange", 1)))
    source.interpolate(source_field)
    target = fem.Function(fem.functionspace(li.mesh, ("Lagrange", 1)))
    target.x.array[:] = -1e9
    transfer_shared_vertices(source, ion, li, target)

    V = target.function_space
    points = V.tabulate_dof_coordinates()
    on_interface = np.abs(points[:, 1]) < 1e-12
    comm = msh.comm
    assert_on_every_rank(comm, np.allclose(target.x.array[on_interface],
                                           source_field(points[on_interface].T),
                                           rtol=1e-14, atol=0), "values at the interface")
    assert_on_every_rank(comm, np.all(target.x.array[~on_interface] == -1e9),
                         "values elsewhere untouched")
    n_owned = V.dofmap.index_map.size_local
    assert msh.comm.allreduce(int(np.sum(on_interface[:n_owned])), op=MPI.SUM) == nx + 1


# ------------------------------------------------------------- 6. rank-count agreement
def planar_run(comm: MPI.Comm, linear_solver: str) -> tuple[float, float, np.ndarray, float]:
    """The project's gmsh planar cell (Li 10 um under 20 um of electrolyte): a current field
    on the ion-conducting submesh handed to the Li submesh with transfer_shared_vertices, four
    steps with an equilibrium collector and stress drift. Returns (amount, interface max, where,
    flux)."""
    W = 20e-6
    cfg = RunConfig.model_validate({"geometry": {
        "width": W, "li_thickness": 10e-6, "electrolyte_thickness": 20e-6,
        "mesh_size": 4e-6, "interface_mesh_size": 1e-6}})
    md = generate(cfg, comm)
    li = extract_region(md.mesh, md.cell_tags, md.facet_tags, [CELL_TAGS["li"]])
    i_ion = fem.Function(fem.functionspace(md.ion.mesh, ("Lagrange", 1)))
    i_ion.interpolate(lambda x: 20.0 * np.cos(2 * np.pi * x[0] / W) + 4.0 * x[0] / W)
    x = ufl.SpatialCoordinate(li.mesh)
    vac = VacancyDiffusion(li.mesh, li.facet_tags, diffusivity=5e-13,
                           equilibrium_concentration=50.0, molar_volume=1.3e-5,
                           sigma_h=1e12 * x[0] * (1 + x[1] / 10e-6),
                           linear_solver=linear_solver)
    transfer_shared_vertices(i_ion, md.ion, li, vac.interface_current)
    for _ in range(4):
        vac.step(2.0)
        vac.commit()
    value, where = vac.interface_maximum()
    result = vac.amount(), value, where, vac.interface_flux()
    vac.destroy()
    return result


@pytest.mark.mpi
def test_same_results_on_any_rank_count():
    """The distributed run (iterative solver) against the same run on this rank alone (direct
    solver): amount, interface flux, the interface maximum and its position agree."""
    world = planar_run(MPI.COMM_WORLD, "iterative")
    alone = planar_run(MPI.COMM_SELF, "direct")
    assert world[0] == pytest.approx(alone[0], rel=1e-11)  # measured: 4e-16 on 3 ranks
    assert world[1] == pytest.approx(alone[1], rel=1e-11)
    np.testing.assert_array_equal(world[2], alone[2])  # the same node, its exact coordinates
    assert world[3] == pytest.approx(alone[3], rel=1e-11)
    assert world[1] > 50.0  # stripping raised c_v at the interface above c_eq
