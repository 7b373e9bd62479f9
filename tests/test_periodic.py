"""Periodic lateral sides of the mechanics (``mechanics.sides: periodic``): the dolfinx_mpc
path of the Newton solver, the matched side meshes and the run-level constraint.

- Manufactured solution: plane-strain elasticity on the unit square with u periodic in x,
  Dirichlet top and bottom, solved through ``BlockedNewtonSolver(constraint=...)``; the L2 error
  converges at the optimal rates h^2 (P1) and h^3 (P2) only if the constraint is right (a
  missing or wrong constraint leaves an O(1) error at the sides).
- A laterally uniform stack: periodic sides give the confined-layer state of the symmetric
  sides (closed form in test_solid.py) to 1e-9.
- An inclined Li-filled flaw (no mirror symmetry, so symmetric sides would be wrong): the
  displacement on x = width equals that on x = 0 node for node and the run converges.
"""

from __future__ import annotations

from mpi4py import MPI

import dolfinx_mpc
import numpy as np
import pytest
import ufl
from conftest import solid_setup
from dolfinx import fem, mesh
from test_solid import LI, LLZO, P_STACK, cell_stresses, planar

from ecm_fem.config import RunConfig
from ecm_fem.solver import BlockedNewtonSolver

E_MMS, NU_MMS = 1.0, 0.3


def side_values(u: fem.Function, x_left: float, x_right: float) -> tuple[np.ndarray, ...]:
    """(y, u) rows of the owned dofs of ``u`` on x = x_left and on x = x_right, gathered from
    all ranks and sorted by y (ghost entries of a constrained space are left out)."""
    comm = u.function_space.mesh.comm
    n_owned = u.function_space.dofmap.index_map.size_local
    coords = u.function_space.tabulate_dof_coordinates()[:n_owned]
    values = u.x.array.reshape(-1, 2)[:n_owned]
    tol = 1e-9 * (x_right - x_left)
    out = []
    for x_side in (x_left, x_right):
        on = np.abs(coords[:, 0] - x_side) < tol
        rows = np.vstack(comm.allgather(np.column_stack([coords[on, 1], values[on]])))
        out.append(rows[np.argsort(rows[:, 0])])
    return tuple(out)


def _periodic_mms_error(n: int, degree: int) -> tuple[float, float]:
    """(L2 error, largest |u(1, y) - u(0, y)| at side dofs) of the periodic MMS on n x n."""
    comm = MPI.COMM_WORLD
    msh = mesh.create_unit_square(comm, n, n)
    V = fem.functionspace(msh, ("Lagrange", degree, (2,)))
    x = ufl.SpatialCoordinate(msh)
    k = 2 * np.pi
    u_ex = ufl.as_vector([ufl.sin(k * x[0]) * x[1] ** 2 + x[1],
                          ufl.cos(k * x[0]) * x[1] * (1 - x[1]) + 0.5 * x[1]])
    mu = E_MMS / (2 * (1 + NU_MMS))
    lmbda = E_MMS * NU_MMS / ((1 + NU_MMS) * (1 - 2 * NU_MMS))

    def sigma(w):
        eps = ufl.sym(ufl.grad(w))
        return 2 * mu * eps + lmbda * ufl.tr(eps) * ufl.Identity(2)

    fdim = msh.topology.dim - 1
    top_bottom = mesh.locate_entities_boundary(
        msh, fdim, lambda p: np.isclose(p[1], 0.0) | np.isclose(p[1], 1.0))
    g = fem.Function(V)
    g.interpolate(fem.Expression(u_ex, V.element.interpolation_points()))
    bcs = [fem.dirichletbc(g, fem.locate_dofs_topological(V, fdim, top_bottom))]
    right = mesh.locate_entities_boundary(msh, fdim, lambda p: np.isclose(p[0], 1.0))
    tags = mesh.meshtags(msh, fdim, right, np.ones(len(right), dtype=np.int32))

    def to_left(p):
        out = p.copy()
        out[0] -= 1.0
        return out

    mpc = dolfinx_mpc.MultiPointConstraint(V)
    mpc.create_periodic_constraint_topological(V, tags, 1, to_left, bcs)
    mpc.finalize()
    u = fem.Function(mpc.function_space)
    v = ufl.TestFunction(V)
    F = (ufl.inner(sigma(u), ufl.sym(ufl.grad(v))) + ufl.inner(ufl.div(sigma(u_ex)), v)) * ufl.dx
    solver = BlockedNewtonSolver([F], [u], ["u"], bcs, linear_solver="direct", constraint=mpc,
                                 prefix="test_mms_mpc_")
    solver.solve()
    solver.destroy()
    err = comm.allreduce(fem.assemble_scalar(fem.form(ufl.inner(u - u_ex, u - u_ex) * ufl.dx)),
                         op=MPI.SUM)
    # the constraint itself: the value at each dof on x = 1 equals that at (0, y)
    left, right_side = side_values(u, 0.0, 1.0)
    np.testing.assert_allclose(left[:, 0], right_side[:, 0], atol=1e-12)
    gap = float(np.abs(left[:, 1:] - right_side[:, 1:]).max())
    return float(np.sqrt(err)), gap


@pytest.mark.mpi
@pytest.mark.parametrize(("degree", "rate"), [(1, 2.0), (2, 3.0)])
def test_periodic_manufactured_solution_converges_at_optimal_rate(degree, rate):
    """Observed L2 rates 1.88, 1.97 (P1) and 3.05, 3.02 (P2) on n = 8, 16, 32 (bound: within
    0.2 of the optimal rate)."""
    results = [_periodic_mms_error(n, degree) for n in (8, 16, 32)]
    errors = np.array([e for e, _ in results])
    rates = np.log2(errors[:-1] / errors[1:])
    print(f"P{degree}: errors {errors}, rates {rates}")
    assert np.all(np.abs(rates - rate) < 0.2), rates
    assert max(gap for _, gap in results) < 1e-12


@pytest.mark.mpi
def test_periodic_sides_on_a_uniform_stack_give_the_confined_state():
    """Laterally uniform layers: periodic sides (with the rigid lateral translation pinned)
    reproduce the confined closed form of the symmetric sides."""
    md, ec, solid = solid_setup(planar("elastic", sides="periodic"))
    assert solid.problem.constraint is not None
    solid.solve(ec, 0.0)
    for region, mat in (("li", LI), ("electrolyte", LLZO)):
        sig = cell_stresses(solid, region)
        lateral = -P_STACK * mat["nu"] / (1 - mat["nu"])
        np.testing.assert_allclose(sig[:, 1, 1], -P_STACK, rtol=1e-9)
        np.testing.assert_allclose(sig[:, 0, 0], lateral, rtol=1e-9)
        np.testing.assert_allclose(sig[:, 0, 1], 0.0, atol=1e-9 * P_STACK)


def inclined_flaw(sides: str) -> RunConfig:
    return RunConfig.model_validate({
        "geometry": {"kind": "electrolyte_flaw", "width": 8e-6, "li_thickness": 4e-6,
                     "electrolyte_thickness": 12e-6, "flaw_depth": 3e-6, "flaw_opening": 0.4e-6,
                     "flaw_position": 4e-6, "inclination": 30.0, "mesh_size": 2e-6,
                     "interface_mesh_size": 0.4e-6},
        "control": {"current_density": -10.0},
        "mechanics": {"li_law": "norton", "stack_pressure": P_STACK, "sides": sides},
    })


@pytest.mark.mpi
def test_inclined_flaw_with_periodic_sides():
    """Plating into an inclined Li-filled flaw for 1 s: u(width, y) = u(0, y) at every side
    node (to 1e-12 of max |u|), and the result differs from symmetric sides (which would mirror
    the flaw into a chevron) by more than 1 % in the largest Li pressure."""
    md, ec, solid = solid_setup(inclined_flaw("periodic"))
    rep = solid.solve(ec, 1.0)
    assert rep.converged
    s = solid.problem
    comm = s.mesh.comm
    W = 8e-6
    left, right = side_values(s.u, 0.0, W)
    assert len(left) == len(right) > 10
    np.testing.assert_allclose(left[:, 0], right[:, 0], atol=1e-9 * W)
    scale = comm.allreduce(float(np.abs(s.u.x.array).max()), op=MPI.MAX)
    np.testing.assert_allclose(left[:, 1:], right[:, 1:], atol=1e-12 * scale)
    p_periodic = solid.stress.region_max(solid.stress.pressure, "li")
    md2, ec2, sym = solid_setup(inclined_flaw("symmetric"))
    sym.solve(ec2, 1.0)
    p_symmetric = sym.stress.region_max(sym.stress.pressure, "li")
    print(f"max p_Li: periodic {p_periodic:.4e}, symmetric {p_symmetric:.4e} Pa")
    assert abs(p_periodic / p_symmetric - 1) > 1e-2
