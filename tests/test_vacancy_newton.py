"""c_v inside the Newton method of a step (vacancy_newton.CurrentVacancyNewton without
mechanics and in the staggered scheme, monolithic.MonolithicStep with mechanics): the
Jacobian action of the coupled system, whose c_v rows carry the derivative of the vacancy
injection along the interface current (and, with the drift, along the stress), equals central
differences of the residual in a random direction; the block-triangular preconditioner is the
inverse of that Jacobian (GMRES converges in one iteration). Serial and under mpirun."""

from __future__ import annotations

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import pytest
from conftest import config_with

from ecm_fem.mesh import generate
from ecm_fem.monolithic import MonolithicStep
from ecm_fem.problem import CurrentDistribution
from ecm_fem.simulation import build_solver
from ecm_fem.solid import StepSolid
from ecm_fem.vacancies import LiVacancies
from ecm_fem.vacancy_newton import CurrentVacancyNewton

C_EQ = 10.0  # mol/m^3


def _config(mechanics: bool, **changes):
    data = {
        "geometry": {"kind": "li_protrusion", "width": 10e-6, "li_thickness": 5e-6,
                     "electrolyte_thickness": 20e-6, "protrusion_half_width": 2e-6,
                     "protrusion_height": 3e-6, "mesh_size": 4e-6,
                     "interface_mesh_size": 1e-6, "tip_mesh_size": 0.5e-6},
        "materials": {"electrolyte": "peo"},
        "kinetics": {"i0": 5.0},
        "control": {"mode": "galvanostatic", "current_density": 4.0},
        "vacancies": {"diffusivity": 1e-12, "equilibrium_concentration": C_EQ,
                      "collector": "no_flux"},
        "time": {"t_end": 10.0, "dt": 5.0},
        "output": {"fields_every": 0, "checkpoint_every": 0},
    }
    if mechanics:
        data["mechanics"] = {"stack_pressure": 1e6, "growth_band": 0.5e-6,
                             "li_law": "elastic", "coupling": {"scheme": "monolithic"}}
        data["kinetics"]["stress_coupling"] = "monroe_newman"
        data["vacancies"]["formation_volume"] = 1.3e-5
    return config_with(data, **changes)


def _random(vec: PETSc.Vec, seed: int) -> np.ndarray:
    """Values in [-1, 1] that do not depend on the rank count (drawn per global index)."""
    lo, hi = vec.getOwnershipRange()
    return np.random.default_rng(seed).uniform(-1.0, 1.0, vec.getSize())[lo:hi]


def _check_c_v_rows(evaluate, jacobian, apply, x: PETSc.Vec, a: PETSc.Vec, c_v_rows: slice,
                    h: float) -> float:
    """Relative 2-norm error of the c_v rows of J a against central differences of the
    residual with step h."""
    jacobian(x)
    y = x.duplicate()
    apply(a, y)
    plus, minus, b_plus, b_minus = x.duplicate(), x.duplicate(), x.duplicate(), x.duplicate()
    plus.waxpy(h, a, x)
    minus.waxpy(-h, a, x)
    evaluate(plus, b_plus)
    evaluate(minus, b_minus)
    fd = (b_plus.getArray()[c_v_rows] - b_minus.getArray()[c_v_rows]) / (2 * h)
    exact = y.getArray()[c_v_rows]
    comm = MPI.COMM_WORLD
    err = comm.allreduce(float(np.sum((exact - fd) ** 2)), op=MPI.SUM)
    ref = comm.allreduce(float(np.sum(fd ** 2)), op=MPI.SUM)
    return float(np.sqrt(err / ref))


def _perturb(x: PETSc.Vec, n_e: int, c_v_rows: slice, seed: int) -> None:
    """A state away from the solution: phi and V_we moved by up to 2 mV, c_v by up to 50 %."""
    arr = x.getArray()
    r = _random(x, seed)
    arr[:n_e] += 2e-3 * r[:n_e]
    arr[c_v_rows] *= 1.0 + 0.5 * r[c_v_rows]


@pytest.mark.mpi
def test_current_and_vacancy_jacobian_is_the_derivative_of_the_residual():
    config = _config(mechanics=False)
    md = generate(config)
    ec = CurrentDistribution(config, md)
    solver = build_solver(ec, config)
    vac = LiVacancies(config, md, ec, None)
    newton = CurrentVacancyNewton(config, ec, solver, vac)
    ec.set_time(5.0, 5.0)
    ec.initial_guess()
    vac.start_step(5.0)
    newton.start()
    n_e = newton.n[0]
    rows = slice(n_e, None)
    x = newton.x.copy()
    _perturb(x, n_e, rows, 1)
    a = x.duplicate()
    a.setArray(_random(a, 2))
    error = _check_c_v_rows(lambda v, b: newton._residual(None, v, b),
                            lambda v: newton._jacobian(None, v, newton.J, newton.J),
                            newton.apply, x, a, rows, h=1e-6)
    print(f"c_v rows of J a against central differences: {error:.2e}")
    assert error < 1e-6

    # the preconditioner inverts J: J P r = r
    r = x.duplicate()
    r.setArray(_random(r, 3))
    y, z = x.duplicate(), x.duplicate()
    newton.precondition(r, y)
    newton.apply(y, z)
    z.axpy(-1.0, r)
    assert z.norm() < 1e-8 * r.norm()

    # and the step's solve converges; c_v >= 0
    report = newton.solve()
    assert report.converged
    assert vac.c_v.x.array.min(initial=0.0) >= 0.0
    newton.destroy()
    vac.destroy()
    solver.destroy()


@pytest.mark.mpi
def test_monolithic_jacobian_of_the_vacancies_includes_the_stress():
    """With Monroe-Newman kinetics, growth and the stress drift, the c_v rows depend on the
    current distribution, the displacement and the growth currents: all in J a."""
    config = _config(mechanics=True)
    md = generate(config)
    ec = CurrentDistribution(config, md)
    solver = build_solver(ec, config)
    solid = StepSolid(config, md)
    vac = LiVacancies(config, md, ec, solid)
    step = MonolithicStep(config, ec, solver, solid, vac)
    ec.set_time(5.0, 5.0)
    ec.initial_guess()
    step.initial_state()
    result = step.attempt(5.0, 5.0)  # a solved first step: stresses and currents non-trivial
    assert result.ok, result.reason
    step.start(10.0, 5.0)
    n_e, n_u, n_j, n_v = step.n
    rows = slice(n_e + n_u + n_j, None)
    x = step.x.copy()
    _perturb(x, n_e, rows, 4)
    a = x.duplicate()
    direction = _random(a, 5)
    direction[n_e: n_e + n_u] *= 1e-8  # displacements of 10 nm
    a.setArray(direction)
    error = _check_c_v_rows(lambda v, b: step._residual(None, v, b),
                            lambda v: step._jacobian(None, v, step.J, step.P),
                            step.apply, x, a, rows, h=1e-5)
    print(f"c_v rows of J a against central differences: {error:.2e}")
    # measured 7.5e-5, 7.5e-7, 7.5e-9 at h = 1e-3, 1e-4, 1e-5 (second order: the differences'
    # error); 0.092 without the drift's derivative along the stress
    assert error < 1e-7

    # every block contributes: the c_v rows change with u and with j alone
    for block in (slice(n_e, n_e + n_u), slice(n_e + n_u, n_e + n_u + n_j)):
        only = np.zeros_like(direction)
        only[block] = direction[block]
        a.setArray(only)
        y = x.duplicate()
        step.apply(a, y)
        size = MPI.COMM_WORLD.allreduce(float(np.abs(y.getArray()[rows]).max(initial=0.0)),
                                        op=MPI.MAX)
        assert size > 0.0
    step.destroy()
    vac.destroy()
    solver.destroy()
    solid.destroy()
