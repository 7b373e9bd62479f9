"""One Newton method for the current distribution and the Li vacancies (PETSc SNES, option
prefix ``ecm_vacancy_coupled_``): the solve of a time step without mechanics, and of each
current-distribution solve of the staggered scheme (coupling.CoupledStep). The monolithic
scheme carries c_v as a block of its own Newton method (monolithic.MonolithicStep) the same way.

Unknowns x = (x_e, c_v): x_e = (phi, V_we[, c][, eta_ct]) of problem.CurrentDistribution with
its residuals, and c_v of vacancies.LiVacancies, whose residual F_v(c_v, i_n(x_e)) reads the
interface current of the kinetics (and the mechanics' stress, data here). Until contact is lost
(a later issue) the current does not depend on c_v, so the Jacobian is block lower-triangular:

    J = [ A_e   0   ]     A_e = dF_e/dx_e (the current distribution's assembled Jacobian),
        [ C_ve  A_v ]     A_v = dF_v/dc_v, C_ve a_e = dF_v/di_n [di_n/dx_e a_e].

C_ve is applied, not assembled: the UFL derivative of i_n along a_e, evaluated at the interface
vertices like i_n itself, then the derivative of the vacancy residual along that current change
(vacancies.LiVacancies.coupling_load). GMRES on J is preconditioned by block forward
substitution: a_e from A_e with the current distribution's own Krylov solver and preconditioner
(options ``ecm_``: its field split with AMG, or LU), then a_v from A_v (BoomerAMG or LU) with
the right-hand side less C_ve a_e. With exact inner solves that is J^-1 (1 GMRES iteration).

Positivity. Before each Newton step c_v is eliminated nonlinearly (a right nonlinear
preconditioner, SNESSetNPC, as the mechanics in the monolithic scheme): the bounded Newton
method of physics.vacancy (c_v >= 0) solves F_v = 0 for the iterate's current. A plain Newton
step from a saturated plating sink overshoots below zero, where the sink turns into a source
(physics/vacancy.py); the elimination keeps c_v >= 0 at every iterate, and the outer step, with
its exact Jacobian, carries the c_v change that goes with the current's change.

Convergence: per field and unscaled (a line search that finds no decrease, as near a converged
iterate whose c_v the elimination has put at round-off, does not stop the method:
snes_max_fail), the current distribution's residual below its solver's
tolerances (solver.rtol, solver.atol) and c_v's below physics.vacancy's (relative 1e-10,
absolute 1e-11 of its natural scale). Rows are scaled (1 / (i0 A) and 1 / c_v's scale) so that
the line search weighs both alike.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from petsc4py import PETSc

import numpy as np
import ufl
from dolfinx import fem

from ecm_fem.physics.vacancy import NEWTON_RTOL
from ecm_fem.solver import (
    _SNES_REASONS,
    BlockedNewtonSolver,
    PythonCallbacks,
    SolveReport,
    SolverError,
    block_norms,
    owned_values,
    set_options,
    solve_with_own_ksp,
)

if TYPE_CHECKING:
    from ecm_fem.config import RunConfig
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.vacancies import LiVacancies

log = logging.getLogger("ecm_fem")

PREFIX = "ecm_vacancy_coupled_"


def current_derivative(ec: CurrentDistribution, directions: list[fem.Function],
                       extra: Any = None) -> Any:
    """The UFL derivative of the kinetics' i_n along ``directions`` (one per unknown of ``ec``)
    plus ``extra`` (other terms, e.g. along the stresses)."""
    di = extra if extra is not None else 0
    for u, du in zip(ec.unknowns, directions, strict=True):
        di = di + ufl.derivative(ec.i_n, u, du)
    return ufl.algorithms.expand_derivatives(di)


class CurrentVacancyNewton:
    """The Newton method of the module docstring. ``solve()`` has the contract of
    ``BlockedNewtonSolver.solve``: the unknowns of ``ec`` and c_v start from their current
    values and hold the solution afterwards, or are restored and ``SolverError`` is raised.
    ``vacancies.start_step(dt)`` must have been called for the step."""

    def __init__(self, config: RunConfig, ec: CurrentDistribution,
                 ec_solver: BlockedNewtonSolver, vacancies: LiVacancies):
        self.ec, self.ec_solver, self.vac = ec, ec_solver, vacancies
        comm = ec.mesh.comm
        self.comm = comm
        self.names = [*ec_solver.names, "c_v"]
        n_e = ec_solver.x.getLocalSize()
        self.n = (n_e, vacancies.n_owned)
        self.x = PETSc.Vec().createMPI((sum(self.n), PETSc.DECIDE), comm=comm)
        self.b = self.x.duplicate()
        self.row_scale = self.x.duplicate()
        self._e_scale = 1.0 / (config.kinetics.i0 * config.geometry.projected_area)
        self._xe, self._be, self._ye = (ec_solver.x.duplicate() for _ in range(3))
        self.de = [fem.Function(u.function_space) for u in ec.unknowns]
        vacancies.linearise(current_derivative(ec, self.de))
        rtol, atol, _, max_it = ec_solver.snes.getTolerances()
        self.tolerances = {"ec": (rtol, atol)}
        self._last_x: np.ndarray | None = None
        self._reference: dict[str, float] = {}
        self._report: SolveReport | None = None
        self._failure = ""

        line_search = PETSc.Options().getString(
            f"{ec_solver.snes.getOptionsPrefix()}snes_linesearch_type", "bt")
        set_options(PREFIX, {"snes_type": "newtonls", "snes_linesearch_type": line_search,
                             "snes_max_it": max_it, "snes_stol": 0.0,
                             # a step from the eliminated c_v at round-off may not lower the
                             # norm: not a failure, the convergence test decides
                             "snes_max_fail": max_it,
                             "ksp_type": "gmres", "ksp_rtol": 1e-10, "ksp_atol": 1e-30,
                             "ksp_max_it": 100})
        size = (self.x.getLocalSize(), self.x.getSize())
        context = PythonCallbacks(self)
        self.J = PETSc.Mat().createPython((size, size), context=context, comm=comm)
        self.J.setUp()
        snes = PETSc.SNES().create(comm)
        snes.setOptionsPrefix(PREFIX)
        snes.setFunction(self._residual, self.b)
        snes.setJacobian(self._jacobian, self.J, self.J)
        ksp = snes.getKSP()
        ksp.setOptionsPrefix(PREFIX)
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(context)
        snes.setFromOptions()
        snes.setConvergenceTest(self._converged)
        npc = PETSc.SNES().create(comm)
        npc.setOptionsPrefix(PREFIX + "npc_")
        npc.setType(PETSc.SNES.Type.PYTHON)
        npc.setPythonContext(context)
        npc.setFunction(self._residual, self.b.duplicate())
        snes.setNPC(npc)
        snes.setNPCSide(PETSc.PC.Side.RIGHT)
        self.snes, self._npc = snes, npc

    # -- residual and Jacobian
    def _split(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return arr[: self.n[0]], arr[self.n[0]:]

    def _evaluate(self, x: PETSc.Vec, b: PETSc.Vec, refresh: bool = True) -> None:
        """The unscaled residual at ``x`` into ``b``. ``refresh=False``: the interface current
        the vacancies read last is that of ``x`` (LiVacancies.residual)."""
        arr = owned_values(x)
        x_e, x_v = self._split(arr)
        self._xe.setArray(x_e)
        self.ec_solver.residual(self._xe, self._be)
        r_v = self.vac.residual(x_v, refresh=refresh)
        b.setArray(np.concatenate([owned_values(self._be), r_v]))
        self._last_x = arr

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        try:
            self._evaluate(x, b)
        except (RuntimeError, ValueError, FloatingPointError, PETSc.Error) as exc:
            self._callback_failed(b, "residual", exc)
        b.pointwiseMult(b, self.row_scale)

    def _callback_failed(self, out: PETSc.Vec, what: str, exc: Exception) -> None:
        """No exception may cross PETSc: the output becomes NaN and the reason is kept."""
        log.debug("current/vacancy %s failed", what, exc_info=True)
        self._failure = f"{what}: {exc}"
        out.set(np.nan)

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        if self._last_x is None or not np.array_equal(owned_values(x), self._last_x):
            self._evaluate(x, self.b.duplicate())
        self.ec_solver.assemble_jacobian()
        self.vac.assemble_jacobian()
        J.assemble()

    def _set_direction(self, a_e: np.ndarray) -> None:
        offset = 0
        for f, n in zip(self.de, self.ec_solver.sizes, strict=True):
            f.x.array[:n] = a_e[offset: offset + n]
            f.x.scatter_forward()
            offset += n

    def apply(self, a: PETSc.Vec, y: PETSc.Vec) -> None:
        """y = J a (scaled rows)."""
        a_e, a_v = self._split(owned_values(a))
        self._xe.setArray(a_e)
        self.ec_solver.A.mult(self._xe, self._ye)
        self._set_direction(a_e)
        y_v = self.vac.apply(a_v, self.vac.coupling_load())
        y.setArray(np.concatenate([owned_values(self._ye), y_v]))
        y.pointwiseMult(y, self.row_scale)

    def precondition(self, r: PETSc.Vec, y: PETSc.Vec) -> None:
        """y = J^-1 r by block forward substitution (module docstring)."""
        r_e, r_v = self._split(owned_values(r) / owned_values(self.row_scale))
        a_e = solve_with_own_ksp(self.ec_solver, r_e, self._be, self._xe)
        self._set_direction(a_e)
        a_v = self.vac.solve(r_v, self.vac.coupling_load())
        y.setArray(np.concatenate([a_e, a_v]))

    def eliminate(self, snes: PETSc.SNES, x: PETSc.Vec) -> None:
        """The nonlinear elimination of c_v (module docstring), the work of the right
        nonlinear preconditioner ``snes``: c_v of ``x`` solved for the current of ``x``, and
        the residual there into ``snes``'s function vector."""
        arr = owned_values(x)
        x_e, x_v = self._split(arr)
        self._xe.setArray(x_e)
        self.ec_solver.read(self._xe)
        try:
            arr[self.n[0]:] = self.vac.eliminate(x_v)
        except (SolverError, RuntimeError, ValueError, PETSc.Error) as exc:
            self._failure = f"elimination of c_v: {exc}"
            snes.setConvergedReason(PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN)
            return
        x.setArray(arr)
        b = snes.getFunction()[0]
        try:
            self._evaluate(x, b, refresh=False)  # the elimination read the current of x
        except (RuntimeError, ValueError, FloatingPointError, PETSc.Error) as exc:
            self._callback_failed(b, "residual", exc)
        b.pointwiseMult(b, self.row_scale)
        snes.setConvergedReason(PETSc.SNES.ConvergedReason.CONVERGED_ITS)

    # -- convergence
    def _field_norms(self, b: PETSc.Vec) -> dict[str, float]:
        """Unscaled residual 2-norms of ``b`` (scaled rows), per field."""
        return block_norms(self.comm, owned_values(b) / owned_values(self.row_scale),
                           list(zip(self.names, [*self.ec_solver.sizes, self.n[1]],
                                    strict=True)))

    def _converged(self, snes: PETSc.SNES, it: int, norms: tuple[float, float, float]) -> int:
        fields = self._field_norms(snes.getFunction()[0])
        e_norm = float(np.sqrt(sum(fields[n] ** 2 for n in self.ec_solver.names)))
        report = self._report
        assert report is not None
        report.residuals.append(norms[2])
        report.field_residuals.append(fields)
        log.debug("  newton %2d: %s", it, ", ".join(f"{k} {v:.3e}" for k, v in fields.items()))
        if not np.isfinite(norms[2]):
            return PETSc.SNES.ConvergedReason.DIVERGED_FNORM_NAN
        if it == 0:
            self._reference = {"ec": e_norm, "c_v": fields["c_v"]}
        rtol, atol = self.tolerances["ec"]
        ok = e_norm <= max(atol, rtol * self._reference["ec"])
        ok &= fields["c_v"] <= max(self.vac.absolute_tolerance(),
                                   NEWTON_RTOL * self._reference["c_v"])
        if ok:
            return PETSc.SNES.ConvergedReason.CONVERGED_FNORM_ABS
        if it >= snes.getTolerances()[3]:
            return PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT
        return PETSc.SNES.ConvergedReason.ITERATING

    # -- public
    def start(self) -> None:
        """``x`` from the unknowns' current values, and the row scaling of the step."""
        scale = self.row_scale.getArray()
        scale[: self.n[0]] = self._e_scale
        scale[self.n[0]:] = 1.0 / self.vac.residual_scale()
        del scale
        self.ec_solver.write(self._xe)
        self.x.setArray(np.concatenate([owned_values(self._xe), self.vac.values()]))
        self._last_x = None

    def solve(self) -> SolveReport:
        """Solve from the unknowns' current values (class docstring)."""
        backup = [u.x.array.copy() for u in self.ec.unknowns]
        c_v_backup = self.vac.c_v.x.array.copy()
        self.start()
        self._failure = ""
        self._report = rep = SolveReport(False, "", 0, 0)
        reason = PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN
        try:
            self.snes.solve(None, self.x)
            reason = self.snes.getConvergedReason()
            if reason > 0:
                self._evaluate(self.x, self.b.duplicate())  # every unknown at the solution
        except (PETSc.Error, RuntimeError, ValueError, FloatingPointError) as exc:
            self._failure = self._failure or str(exc)
        rep.reason = _SNES_REASONS.get(reason, str(reason))
        rep.newton_its = self.snes.getIterationNumber()
        rep.krylov_its = self.snes.getLinearSolveIterations()
        rep.converged = reason > 0
        if not rep.converged:
            for u, old in zip(self.ec.unknowns, backup, strict=True):
                u.x.array[:] = old
            self.vac.c_v.x.array[:] = c_v_backup
            hist = ", ".join(f"{r:.2e}" for r in rep.residuals)
            last = rep.field_residuals[-1] if rep.field_residuals else {}
            raise SolverError(
                f"Newton of the current and the vacancies did not converge ({rep.reason}"
                + (f"; {self._failure}" if self._failure else "") + f") after "
                f"{rep.newton_its} iterations; scaled residuals [{hist}]; last field "
                "residuals " + ", ".join(f"{k} {v:.2e}" for k, v in last.items()))
        return rep

    def destroy(self) -> None:
        for obj in (self._npc, self.snes, self.J, self.x, self.b, self.row_scale, self._xe,
                    self._be, self._ye):
            obj.destroy()
