"""The monolithic Newton method of a coupled time step: phi, V_we (and eta_ct with an SEI
film), the displacement u and the growth currents solved together by one PETSc SNES (option
prefix ``ecm_coupled_``, overridable under mechanics.coupling.petsc_options).

Unknowns and residuals (backward Euler over the step dt):
* x_e = (phi, V_we[, eta_ct]) with the residuals of ``problem.CurrentDistribution``, whose
  kinetics read U_mech and dmu_e of the interface stresses (coupling.InterfaceStressMap) of
* u with the residual of ``solid.SolidMechanics``: elasticity, Li creep by the return mapping
  at quadrature points, and the growth eigenstrain eps_g = eps_g_n + dt * rate(j);
* j, the mean current density of every interface facet that drives the growth [A/m^2], with
  the residual R_j = j - i_facets(x_e, U_mech), the facet currents of the kinetics. Without j
  as an unknown the residual would not be a function of (x_e, u): the stresses depend on the
  growth, the growth on the currents, the currents on the stresses. The facets are owned in
  contiguous ranges of the global facet table;
* with a ``vacancies`` section, c_v on the Li with the residual of physics.vacancy, which reads
  the interface current i_n(x_e, U_mech, dmu_e) and the Li's hydrostatic stress.

Jacobian. Its action is exact (to round-off), so GMRES can converge to any tolerance and
Newton converges quadratically:
* the diagonal blocks are the assembled Jacobians of the two problems (the consistent tangent
  of the return mapping for Li);
* dR_u/dj a_j is the UFL derivative of the mechanics residual with respect to eps_g in the
  direction d eps_g = dt * rate(a_j) (the growth is linear in j);
* dF_e/du and dF_e/dj go through the stresses: the cell-average stress increment of
  (du, d eps_g) linearised at the last return mapping (StressFields.increment), then the stress
  map, which is affine in the cell stresses (applied at base + s * dsigma and differenced, exact
  for any s), then the UFL derivative of the kinetics residual with respect to U_mech, dmu_e;
* dR_j/dx_e, dR_j/du: the facet means of the UFL derivative of i_n along (de, dU_mech, ddmu_e)
  and the derivative of the uniform shift of the facet currents
  (solid.charge_balanced_currents);
* dR_v/d(x_e, u, j): the derivative of the vacancy residual along the interface-current change
  of the same di_n (evaluated at the interface vertices) and, with the drift, along the
  pressure increment of the Li cells from the same stress increment
  (vacancies.LiVacancies.coupling_load). c_v acts on nothing else: its column is empty but
  for dR_v/dc_v.
Only the diagonal blocks are assembled. The Krylov method is GMRES, preconditioned by block
elimination (``precondition``): u depends on j only, x_e on u and j, so for given j the
mechanics and then the current distribution are solved with their own Krylov solvers and
preconditioners (options ecm_mech_ and ecm_, AMG or LU), and j comes from the dense Schur
complement S = I - G on the growth currents, G[:, k] the facet-current response to a unit
growth current on facet k (one mechanics and one potential solve per facet).
c_v comes last, from its own block (BoomerAMG or LU) with the right-hand side less the coupling
along the other fields' corrections. With exact inner solves this is J^-1 and GMRES takes 1-2
iterations. G costs one solve pair per
interface facet, so S starts as I (exact without stress coupling, where G = 0; with weak
coupling GMRES then takes a few iterations, each one solve pair), and G is built only when a
linear solve took more than SCHUR_LAG_KSP_ITS iterations, then lagged: only the
preconditioner uses it, so a G from an earlier Jacobian (rescaled with dt, to which it is
proportional) costs GMRES iterations, not Newton accuracy. On strongly coupled cells with
large interfaces (3D) the build is the cost to watch. ``pc_type: fieldsplit`` in
mechanics.coupling.petsc_options replaces it by a multiplicative field split over (phi, V_we
[, eta_ct], u, i_growth) of the diagonal blocks (BoomerAMG on phi, LU or GAMG on u, Jacobi on
the rest), cheap per iteration but slow for strong coupling.

Nonlinear elimination of the mechanics (mechanics.coupling.nonlinear_elimination, default on).
With creeping Li (Norton, m = 5) the Li stress goes as the strain rate^(1/m) over a step of
seconds: the return mapping's stress-strain curve turns from the elastic slope to nearly flat
within about 0.2 MPa at 5 s steps. The full Newton step of the coupled system overshoots: on
the Li-filled flaw with normal_traction coupling, undamped Newton diverged (the residual grew
1.3x per iteration), backtracking took lambda ~ 0.36 per iteration and did not converge in 30
iterations at 5 s or 2.5 s steps; it needed 28 at 1.25 s and 11 at 0.625 s. So a right
nonlinear preconditioner (a Python SNES set with SNESSetNPC) solves, before every Newton step,
u for the iterate's growth currents with the mechanics' own Newton method (prefix ecm_mech_,
backtracking) and puts the coupled residual there. The outer Newton method (full steps: before
the elimination the u part of its residual is a linear prediction of the creep flow, no
measure of the step) then works on the smooth remainder, the currents and the growth: on that
flaw it converges in 5 iterations at 5 s steps, quadratically at the end.
This is nonlinear elimination (Lanzkron, Rose and Wilkes, SIAM J. Sci. Comput. 17 (1996)
1163) composed with Newton as in Brune, Knepley, Smith and Tu, SIAM Rev. 57 (2015) 535. The
answer is the same: the outer convergence test reads every field, u included, at the iterate.
With vacancies the same preconditioner then eliminates c_v with the bounded Newton method of
physics.vacancy (c_v >= 0, which plain Newton steps do not keep; vacancy_newton.py), with or
without the mechanics' elimination.

The residual rows are scaled (1 / (i0 A) for the current distribution, 1 / (p A) for the
mechanics, 1 / i0 for j; A the projected area, the width in plane strain) so that the line
search weighs the fields alike; the convergence test is per field and unscaled: each field's
residual below its own solver's tolerances (solver.rtol/atol, mechanics.rtol and an absolute
force tolerance), c_v's below physics.vacancy's, and every facet current within
mechanics.coupling.rtol of the kinetics' current, as in the staggered scheme.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import scipy.linalg
import ufl
from dolfinx import fem

from ecm_fem.coupling import InterfaceStressMap, SavedValues, StepResult
from ecm_fem.physics.vacancy import NEWTON_RTOL
from ecm_fem.solid import charge_balanced_currents
from ecm_fem.solver import (
    _SNES_REASONS,
    BlockedNewtonSolver,
    PythonCallbacks,
    SolveReport,
    SolverError,
    block_norms,
    default_options,
    owned_values,
    set_options,
    solve_with_own_ksp,
)
from ecm_fem.vacancy_newton import current_derivative

if TYPE_CHECKING:
    from ecm_fem.config import RunConfig
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.solid import StepSolid
    from ecm_fem.vacancies import LiVacancies

log = logging.getLogger("ecm_fem")

PREFIX = "ecm_coupled_"
# a linear solve that took more GMRES iterations than this rebuilds the lagged Schur complement
SCHUR_LAG_KSP_ITS = 5


@dataclass
class EliminationEffort:
    """The mechanics' Newton and Krylov iterations summed over a step's nonlinear
    eliminations, and the most Newton iterations of one (which the step control reads like a
    staggered scheme's hardest solve)."""

    newton: int = 0
    krylov: int = 0
    hardest: int = 0

    def add(self, report: SolveReport) -> None:
        self.newton += report.newton_its
        self.krylov += report.krylov_its
        self.hardest = max(self.hardest, report.newton_its)


class MonolithicStep:
    """One time step of ``ec`` (with its Newton solver ``ec_solver``) and the mechanics
    ``solid``, solved by the monolithic Newton method of the module docstring. Same interface
    as ``coupling.CoupledStep``: ``initial_state()`` then ``attempt(t, dt)`` per step. With
    ``vacancies`` c_v is one more block of the Newton method (module docstring)."""

    def __init__(self, config: RunConfig, ec: CurrentDistribution,
                 ec_solver: BlockedNewtonSolver, solid: StepSolid,
                 vacancies: LiVacancies | None = None):
        m = config.mechanics
        assert m is not None
        self.config = config
        self.ec, self.ec_solver, self.solid = ec, ec_solver, solid
        self.vac = vacancies
        self.mech = solid.problem
        self.mech_solver = solid.solver
        self.growth = self.mech.growth
        self.stress_map = InterfaceStressMap(ec, self.mech.mesh, self.mech.cell_tag, self.mech.nu)
        self.rtol_current = m.coupling.rtol
        self.eliminates_mechanics = m.coupling.nonlinear_elimination
        self.i0 = config.kinetics.i0
        self.dt = 0.0
        comm = ec.mesh.comm
        self.comm = comm

        n_e = ec_solver.x.getLocalSize()
        n_u = self.mech_solver.x.getLocalSize()
        n_f = len(self.growth.facets) if self.growth is not None else 0
        counts = [n_f // comm.size + (r < n_f % comm.size) for r in range(comm.size)]
        self._j_range = (sum(counts[: comm.rank]), sum(counts[: comm.rank + 1]))
        n_j = counts[comm.rank]
        n_v = vacancies.n_owned if vacancies is not None else 0
        self.n = (n_e, n_u, n_j, n_v)
        self.x = PETSc.Vec().createMPI((n_e + n_u + n_j + n_v, PETSc.DECIDE), comm=comm)
        self.b = self.x.duplicate()
        self.j = np.zeros(n_f)  # the growth currents, the same on every rank

        # residual row scaling (module docstring)
        area = config.geometry.projected_area  # per unit depth in plane strain
        p_ref = max(m.stack_pressure, 1e6)
        self.row_scale = self.x.duplicate()
        scale = self.row_scale.array
        scale[:n_e] = 1.0 / (self.i0 * area)
        scale[n_e: n_e + n_u] = 1.0 / (p_ref * area)
        scale[n_e + n_u: n_e + n_u + n_j] = 1.0 / self.i0  # c_v's rows: per step (attempt)
        self.tolerances = {"ec": (config.solver.rtol, config.solver.atol * config.tolerance_scale),
                           "u": (m.rtol, 1e-10 * p_ref * area)}

        # work vectors in the two solvers' layouts (ghosted)
        self._xe, self._be, self._ye = (ec_solver.x.duplicate() for _ in range(3))
        self._xu, self._bu, self._yu = (self.mech_solver.x.duplicate() for _ in range(3))
        self._base: dict[str, Any] = {}
        self._last_x: np.ndarray | None = None
        self._coupling_forms()
        self._fields = self._field_sets(n_e, n_u, n_j, n_v)
        self._build_snes(config)
        self._report: SolveReport | None = None
        self._reference: dict[str, float] = {}
        self._failure = ""
        self._schur: tuple[np.ndarray, np.ndarray] | None = None
        self._response: tuple[np.ndarray, float] | None = None  # (G, dt of G)
        self._stress_coupled = any(f is not None for f in self._dFe_dU)
        self.elimination = EliminationEffort()

    # -- set-up
    def _coupling_forms(self) -> None:
        """The directions of the Jacobian action and the UFL derivatives of the coupling
        terms (module docstring)."""
        ec, p = self.ec, self.mech
        self.de = [fem.Function(u.function_space) for u in ec.unknowns]
        self.du = fem.Function(p.u.function_space, name="du")
        self.dU = fem.Function(ec.V, name="dU_mech")
        self.ddmu = fem.Function(ec.V, name="ddmu_e")
        forms: list[Any] = []
        for F in ec.residuals:
            d = ufl.derivative(F, ec.U_mech, self.dU) + ufl.derivative(F, ec.dmu_e, self.ddmu)
            d = ufl.algorithms.expand_derivatives(d)
            forms.append(None if d.empty() else fem.form(d))
        self._dFe_dU = forms
        self.deps = None
        self._dFu_deps = None
        di_n = current_derivative(ec, self.de, ufl.derivative(ec.i_n, ec.U_mech, self.dU)
                                  + ufl.derivative(ec.i_n, ec.dmu_e, self.ddmu))
        if self.growth is not None:
            self.deps = fem.Function(self.growth.eps_g.function_space, name="d_growth_strain")
            d = ufl.algorithms.expand_derivatives(
                ufl.derivative(p.residual, self.growth.eps_g, self.deps))
            self._dFu_deps = fem.form(d)
            self._di_n = di_n
        if self.vac is not None:
            self.vac.linearise(di_n)
        self._dsigma_form = self.solid.stress.increment_form(self.du, self.deps)

    def _field_sets(self, n_e: int, n_u: int, n_j: int, n_v: int
                    ) -> list[tuple[str, PETSc.IS]]:
        start = self.x.getOwnershipRange()[0]
        names = [*self.ec_solver.names, "u"] + (["i_growth"] if self.growth is not None
                                                else []) + (["c_v"] if self.vac else [])
        sizes = [*self.ec_solver.sizes, n_u] + ([n_j] if self.growth is not None else []) \
            + ([n_v] if self.vac else [])
        out, offset = [], start
        for name, size in zip(names, sizes, strict=True):
            out.append((name, PETSc.IS().createStride(size, first=offset, step=1,
                                                      comm=self.comm)))
            offset += size
        return out

    def _build_snes(self, config: RunConfig) -> None:
        m = config.mechanics
        assert m is not None
        user = dict(m.coupling.petsc_options)
        opts: dict[str, Any] = {
            "snes_type": "newtonls", "snes_linesearch_type": "bt",
            "snes_max_it": m.coupling.max_iterations,
            # no step-length test: the unknowns mix volts, metres and A/m^2, so |dx| < stol |x|
            # stopped the line search on displacement steps of 1e-7 m next to currents of 10
            "snes_stol": 0.0,
            "ksp_type": "gmres", "ksp_rtol": 1e-10, "ksp_atol": 1e-30,
            "ksp_gmres_restart": 200, "ksp_max_it": 200}
        if user.get("pc_type") == "fieldsplit":  # the block-diagonal alternative
            names = [name for name, _ in self._fields]
            jacobi = set(self.ec.jacobi_fields) | {"i_growth"}
            split = default_options(names, "iterative", jacobi)
            opts.update({k: v for k, v in split.items() if "fieldsplit" in k})
            u_pc = "lu" if m.linear_solver == "direct" else "gamg"
            opts.pop("fieldsplit_u_pc_hypre_type", None)
            opts["fieldsplit_u_pc_type"] = u_pc
            if u_pc == "lu":
                opts["fieldsplit_u_pc_factor_mat_solver_type"] = "mumps"
        if m.coupling.nonlinear_elimination:
            opts["snes_linesearch_type"] = "basic"  # module docstring
        if self.vac is not None:  # as in vacancy_newton.py
            opts["snes_max_fail"] = m.coupling.max_iterations
        opts.update(user)
        set_options(PREFIX, opts)

        comm = self.comm
        A_e = self.ec_solver.A
        A_u = self.mech_solver.A
        diagonal: list[PETSc.Mat] = [A_e, A_u]
        if self.growth is not None:
            n_j = self.n[2]
            eye = PETSc.Mat().createAIJ(((n_j, PETSc.DECIDE), (n_j, PETSc.DECIDE)), nnz=1,
                                        comm=comm)
            eye.setUp()
            ones = eye.createVecLeft()
            ones.set(1.0)
            eye.setDiagonal(ones)
            eye.assemble()
            self._eye = eye
            diagonal.append(eye)
        self.ec_solver.assemble_jacobian()  # the sparsity of P
        self.mech.pre_residual()
        self.mech_solver.assemble_jacobian()
        if self.vac is not None:
            self.vac.assemble_jacobian()
            diagonal.append(self.vac.model.jacobian)
        blocks = [[A if i == k else None for k in range(len(diagonal))]
                  for i, A in enumerate(diagonal)]
        self._nest = PETSc.Mat().createNest(blocks, comm=comm)
        self.P = self._nest.convert("aij")
        size = (self.x.getLocalSize(), self.x.getSize())
        self.J = PETSc.Mat().createPython((size, size), context=PythonCallbacks(self),
                                          comm=comm)
        self.J.setUp()

        snes = PETSc.SNES().create(comm)
        snes.setOptionsPrefix(PREFIX)
        snes.setFunction(self._residual, self.b)
        snes.setJacobian(self._jacobian, self.J, self.P)
        ksp = snes.getKSP()
        ksp.setOptionsPrefix(PREFIX)
        pc = ksp.getPC()
        pc.setOptionsPrefix(PREFIX)
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(PythonCallbacks(self))
        snes.setFromOptions()
        if pc.getType() == PETSc.PC.Type.FIELDSPLIT:
            pc.setFieldSplitIS(*self._fields)
            for name, iset in self._fields:
                if name == "u":
                    iset.compose("nearnullspace", self.mech.near_nullspace)
        snes.setConvergenceTest(self._converged)
        self._npc: PETSc.SNES | None = None
        if m.coupling.nonlinear_elimination or self.vac is not None:
            npc = PETSc.SNES().create(comm)
            npc.setOptionsPrefix(PREFIX + "npc_")
            npc.setType(PETSc.SNES.Type.PYTHON)
            npc.setPythonContext(PythonCallbacks(self))
            npc.setFunction(self._residual, self.b.duplicate())
            snes.setNPC(npc)
            snes.setNPCSide(PETSc.PC.Side.RIGHT)
            self._npc = npc
        self.snes = snes

    # -- the coupled residual
    def _split(self, arr: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_e, x_u, x_j, c_v) of a vector's owned values."""
        n_e, n_u, n_j, _ = self.n
        ends = np.cumsum([n_e, n_u, n_j])
        return arr[: ends[0]], arr[ends[0]: ends[1]], arr[ends[1]: ends[2]], arr[ends[2]:]

    def _gather_j(self, local: np.ndarray) -> np.ndarray:
        return np.concatenate(self.comm.allgather(np.asarray(local)))

    def _set_stress_coupling(self) -> None:
        self.solid.stress.update()
        self.stress_map.update(self.solid.stress)

    def _evaluate(self, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """The unscaled residual at ``x`` into ``b``; every state (eps_g, return mapping,
        stresses, U_mech, dmu_e) is then that of ``x``."""
        arr = owned_values(x)
        x_e, x_u, x_j, x_v = self._split(arr)
        self._xe.setArray(x_e)
        self._xu.setArray(x_u)
        if self.growth is not None:
            self.j = self._gather_j(x_j)
            self.growth.advance(self.j, self.dt)
        self.mech_solver.residual(self._xu, self._bu)
        self._set_stress_coupling()
        self.ec_solver.residual(self._xe, self._be)
        out = np.zeros(len(arr))
        r_e, r_u, r_j, r_v = self._split(out)
        r_e[:] = owned_values(self._be)
        r_u[:] = owned_values(self._bu)
        if self.vac is not None:
            r_v[:] = self.vac.residual(x_v)
        currents = None
        if self.growth is not None:
            currents = charge_balanced_currents(
                *self.solid.interface_current_parts(self.ec), self.growth.facets)
            lo, hi = self._j_range
            r_j[:] = (self.j - currents)[lo:hi]
        b.setArray(out)
        self._base = {"currents": currents, "U": self.ec.U_mech.x.array.copy(),
                      "dmu": self.ec.dmu_e.x.array.copy()}
        self._last_x = arr.copy()

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        try:
            self._evaluate(x, b)
        except (RuntimeError, ValueError, FloatingPointError, PETSc.Error) as exc:
            self._callback_failed(b, "residual", exc)
        b.pointwiseMult(b, self.row_scale)

    def _callback_failed(self, out: PETSc.Vec, what: str, exc: Exception) -> None:
        """An exception must not cross PETSc (it would leave vectors locked): the output
        becomes NaN, so that SNES or the Krylov method stops, and the reason is kept."""
        log.debug("coupled %s failed", what, exc_info=True)
        self._failure = f"{what}: {exc}"
        out.set(np.nan)

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        if self._last_x is None or not np.array_equal(owned_values(x), self._last_x):
            self._evaluate(x, self.b.duplicate())
        self.ec_solver.assemble_jacobian()
        self.mech_solver.assemble_jacobian()
        if self.vac is not None:
            self.vac.assemble_jacobian()
        self._nest.assemble()
        self._nest.convert("aij", out=P)
        P.diagonalScale(L=self.row_scale)
        J.assemble()
        if self.snes.getKSP().getPC().getType() == PETSc.PC.Type.PYTHON:
            self._update_schur()

    # -- the coupling terms of the Jacobian (module docstring)
    def _set_e(self, a_e: np.ndarray) -> None:
        """The direction of the current-distribution unknowns (owned values) into de."""
        offset = 0
        for f, n in zip(self.de, self.ec_solver.sizes, strict=True):
            f.x.array[:n] = a_e[offset: offset + n]
            f.x.scatter_forward()
            offset += n

    def _set_u(self, a_u: np.ndarray) -> None:
        """The displacement direction (owned values) into du."""
        self.du.x.array[: len(a_u)] = a_u
        self.du.x.scatter_forward()
        if self.mech_solver.constraint is not None:
            self.mech_solver.constraint.backsubstitution(self.du)

    def _set_j(self, a_j: np.ndarray) -> None:
        """The growth strain direction deps = dt rate(a_j) for owned growth currents a_j."""
        if self.deps is not None:
            assert self.growth is not None
            self.deps.x.array[:] = (self.dt * self.growth.rate(self._gather_j(a_j)).ravel()
                                    if self.dt > 0 else 0.0)
            self.deps.x.scatter_forward()

    def _coupling_increment(self) -> bool:
        """dU_mech and ddmu_e (into self.dU, self.ddmu) for the directions du, deps: the
        stress increment linearised at the last return mapping, through the stress map. The
        map is affine in the cell stresses, so it is applied to base + s * dsigma with s
        chosen for full precision, and the difference divided by s is exact. Returns whether
        the increment is nonzero."""
        stress = self.solid.stress
        dsig = stress.increment(self._dsigma_form)
        base = stress.sigma.x.array.copy()
        size = self.comm.allreduce(float(np.abs(dsig).max()) if dsig.size else 0.0, op=MPI.MAX)
        if size == 0.0:
            self.dU.x.array[:] = 0.0
            self.ddmu.x.array[:] = 0.0
            return False
        ref = self.comm.allreduce(float(np.abs(base).max()) if base.size else 0.0, op=MPI.MAX)
        s = max(ref, 1.0) / size
        ec = self.ec
        saved = SavedValues([stress.sigma, ec.U_mech, ec.dmu_e, *ec.stress_outputs.values()])
        try:
            stress.sigma.x.array[:] = base + s * dsig.ravel()
            self.stress_map.update(stress)
            self.dU.x.array[:] = (ec.U_mech.x.array - self._base["U"]) / s
            self.ddmu.x.array[:] = (ec.dmu_e.x.array - self._base["dmu"]) / s
        finally:
            saved.restore()
        return True

    def _current_increment(self) -> np.ndarray:
        """Derivative of the (shifted) growth-driving facet currents along (de, dU, ddmu):
        c_s = c + (T - sum(c L)) / sum(L) (L the facet measures), so
        dc_s = dc + (dT - sum(dc L)) / sum(L)."""
        dc, dtotal = self.solid.interface_current_parts(self.ec, self._di_n)
        measures = self.growth.facets.measures
        return dc + (dtotal - float(np.dot(dc, measures))) / float(measures.sum())

    def _growth_load(self) -> np.ndarray:
        """dR_u/deps [deps] (owned mechanics rows) for the current deps."""
        if self._dFu_deps is None or self.dt <= 0:
            return np.zeros(self.n[1])
        self.mech_solver.assemble_increment([self._dFu_deps], self._yu)
        return owned_values(self._yu)

    def _kinetics_load(self) -> np.ndarray:
        """dF_e/d(U_mech, dmu_e) [dU, ddmu] (owned current-distribution rows), with dU and
        ddmu computed for the current du, deps."""
        if self.ec.coupling_model == "none" or not self._coupling_increment():
            self.dU.x.array[:] = 0.0
            self.ddmu.x.array[:] = 0.0
            return np.zeros(self.n[0])
        self.ec_solver.assemble_increment(self._dFe_dU, self._ye)
        return owned_values(self._ye)

    def _vacancy_load(self) -> np.ndarray:
        """dF_v/d(x_e, u, j) along the current directions (de, du, deps, and dU, ddmu of
        ``_kinetics_load``): through the interface current and, with the drift, the pressure
        increment of the Li cells."""
        assert self.vac is not None
        dp = None
        if self.vac.sigma_h is not None:
            dsig = self.solid.stress.increment(self._dsigma_form).reshape(-1, 3, 3)
            dp = -np.trace(dsig, axis1=1, axis2=2) / 3.0
        return self.vac.coupling_load(dp)

    def apply(self, a: PETSc.Vec, y: PETSc.Vec) -> None:
        """y = J a, the coupled Jacobian (scaled rows) at the last evaluated state."""
        a_e, a_u, a_j, a_v = self._split(owned_values(a))
        self._set_e(a_e)
        self._set_u(a_u)
        self._set_j(a_j)
        self._xu.setArray(a_u)
        self.mech_solver.A.mult(self._xu, self._yu)
        y_u = owned_values(self._yu) + self._growth_load()
        self._xe.setArray(a_e)
        self.ec_solver.A.mult(self._xe, self._ye)
        y_e = owned_values(self._ye) + self._kinetics_load()
        y_j = np.zeros(0)
        if self.growth is not None:
            lo, hi = self._j_range
            y_j = a_j - self._current_increment()[lo:hi]
        y_v = self.vac.apply(a_v, self._vacancy_load()) if self.vac is not None \
            else np.zeros(0)
        y.setArray(np.concatenate([y_e, y_u, y_j, y_v]))
        y.pointwiseMult(y, self.row_scale)

    # -- the interface Schur-complement preconditioner (module docstring)
    def _respond(self, r_e: np.ndarray, r_u: np.ndarray, a_j: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve the mechanics and current-distribution rows of J a = r for given growth
        currents a_j: returns (a_e, a_u, the change of the facet currents) (the last the same
        on every rank)."""
        self._set_j(a_j)
        a_u = solve_with_own_ksp(self.mech_solver, r_u - self._growth_load(), self._bu, self._xu)
        self._set_u(a_u)
        a_e = solve_with_own_ksp(self.ec_solver, r_e - self._kinetics_load(), self._be, self._xe)
        self._set_e(a_e)
        dc = self._current_increment() if self.growth is not None else np.zeros(0)
        return a_e, a_u, dc

    def _update_schur(self) -> None:
        """The Schur complement S = I - G of the preconditioner (module docstring). Without
        stress coupling G = 0 (the currents do not see the stresses) and S = I is exact.
        Otherwise S starts as I and G is built, then lagged, when a linear solve takes more
        than SCHUR_LAG_KSP_ITS GMRES iterations: only the preconditioner uses it, the Jacobian
        action stays exact, so a G from an earlier Jacobian (rescaled with dt, to which the
        growth is proportional) costs GMRES iterations, not Newton accuracy."""
        if self.growth is None or self.dt <= 0 or not self._stress_coupled:
            self._schur = None
            return
        if self.snes.getKSP().getIterationNumber() > SCHUR_LAG_KSP_ITS:
            self._response = (self._growth_response(), self.dt)
            log.debug("  Schur complement of the growth currents rebuilt (%d facets)",
                      len(self.j))
        if self._response is None:
            self._schur = None
            return
        G, dt_G = self._response
        self._schur = scipy.linalg.lu_factor(np.eye(len(self.j)) - (self.dt / dt_G) * G)

    def _growth_response(self) -> np.ndarray:
        """G[:, k], the change of the facet currents for a unit growth current on facet k with
        the other rows solved (n_f block-solve pairs; dense, on every rank)."""
        n_f = len(self.j)
        lo, hi = self._j_range
        G = np.empty((n_f, n_f))
        zeros_e, zeros_u = np.zeros(self.n[0]), np.zeros(self.n[1])
        for k in range(n_f):
            a_j = np.zeros(hi - lo)
            if lo <= k < hi:
                a_j[k - lo] = 1.0
            G[:, k] = self._respond(zeros_e, zeros_u, a_j)[2]
        return G

    def precondition(self, r: PETSc.Vec, y: PETSc.Vec) -> None:
        """y = J^-1 r by block elimination: the growth currents from the Schur complement S,
        then the mechanics and the current distribution, then c_v (exact up to the inner
        solves)."""
        r_e, r_u, r_j, r_v = self._split(owned_values(r) / owned_values(self.row_scale))
        lo, hi = self._j_range
        a_j = np.zeros(0)
        if self.growth is not None:
            _, _, c0 = self._respond(r_e, r_u, np.zeros(hi - lo))
            rhs = self._gather_j(r_j) + c0
            a_j = scipy.linalg.lu_solve(self._schur, rhs) if self._schur is not None else rhs
            a_j = a_j[lo:hi]
        a_e, a_u, _ = self._respond(r_e, r_u, a_j)
        a_v = self.vac.solve(r_v, self._vacancy_load()) if self.vac is not None \
            else np.zeros(0)
        y.setArray(np.concatenate([a_e, a_u, a_j, a_v]))

    # -- convergence
    def _field_norms(self, b: PETSc.Vec) -> dict[str, float]:
        """Unscaled residual norms of ``b`` (scaled rows): 2-norms of the fields, the largest
        facet-current mismatch for i_growth."""
        arr = owned_values(b) / owned_values(self.row_scale)
        r_e, r_u, r_j, r_v = self._split(arr)
        blocks = [*zip(self.ec_solver.names, self.ec_solver.sizes, strict=True),
                  ("u", len(r_u))] + ([("c_v", len(r_v))] if self.vac is not None else [])
        out = block_norms(self.comm, np.concatenate([r_e, r_u, r_v]), blocks)
        if self.growth is not None:
            out["i_growth"] = self.comm.allreduce(
                float(np.abs(r_j).max()) if len(r_j) else 0.0, op=MPI.MAX)
        return out

    def _converged(self, snes: PETSc.SNES, it: int, norms: tuple[float, float, float]
                   ) -> int:
        fields = self._field_norms(snes.getFunction()[0])
        ec_norm = float(np.sqrt(sum(fields[n] ** 2 for n in self.ec_solver.names)))
        report = self._report
        assert report is not None
        report.residuals.append(norms[2])
        report.field_residuals.append(fields)
        log.debug("  coupled newton %2d: %s", it,
                  ", ".join(f"{k} {v:.3e}" for k, v in fields.items()))
        if not np.isfinite(norms[2]):
            return PETSc.SNES.ConvergedReason.DIVERGED_FNORM_NAN
        if it == 0:
            self._reference = {"ec": ec_norm, "u": fields["u"], "c_v": fields.get("c_v", 0.0)}
        ok = True
        for key, value in (("ec", ec_norm), ("u", fields["u"])):
            rtol, atol = self.tolerances[key]
            ok &= value <= max(atol, rtol * self._reference[key])
        if self.vac is not None:
            ok &= fields["c_v"] <= max(self.vac.absolute_tolerance(),
                                       NEWTON_RTOL * self._reference["c_v"])
        if self.growth is not None:
            currents = self._base["currents"]
            scale = max(abs(float(self.ec.i_app.value)), float(np.abs(currents).max()),
                        1e-3 * self.i0)
            ok &= fields["i_growth"] <= self.rtol_current * scale
        if ok:
            return PETSc.SNES.ConvergedReason.CONVERGED_FNORM_ABS
        if it >= snes.getTolerances()[3]:
            return PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT
        return PETSc.SNES.ConvergedReason.ITERATING

    # -- the time step
    def initial_state(self) -> None:
        """The interface stresses before the first step (the committed state at t = 0)."""
        self._set_stress_coupling()
        if self.growth is not None:
            self.j = self.solid.interface_currents(self.ec)

    def start(self, t: float, dt: float) -> None:
        """Set up the step ending at ``t``: the time, dt, ``x`` from the unknowns' current
        values, c_v's row scaling."""
        self.ec.set_time(t, dt)
        self.dt = dt
        self.mech.dt = dt
        self.ec_solver.write(self._xe)
        self.mech_solver.write(self._xu)
        lo, hi = self._j_range
        c_v = np.zeros(0)
        if self.vac is not None:
            self.vac.start_step(dt)
            c_v = self.vac.values()
            n_v = self.n[3]
            self.row_scale.array[len(self.row_scale.array) - n_v:] = \
                1.0 / self.vac.residual_scale()
        self.x.setArray(np.concatenate([owned_values(self._xe), owned_values(self._xu),
                                        self.j[lo:hi], c_v]))
        self._last_x = None

    def attempt(self, t: float, dt: float) -> StepResult:
        """Solve the step ending at ``t``; on failure every state is back where it was."""
        ec, solid = self.ec, self.solid
        saved = SavedValues([*ec.unknowns, ec.U_mech, ec.dmu_e, *ec.stress_outputs.values()])
        u_backup = self.mech.u.x.array.copy()
        j_backup = self.j.copy()
        self.start(t, dt)
        self._report = SolveReport(False, "", 0, 0)
        self._failure = ""
        self.elimination = EliminationEffort()
        failure = ""
        try:
            self.snes.solve(None, self.x)
            reason = self.snes.getConvergedReason()
            if reason <= 0:
                hist = ", ".join(f"{r:.2e}" for r in self._report.residuals)
                last = self._report.field_residuals[-1] if self._report.field_residuals else {}
                failure = (f"coupled Newton did not converge ({_SNES_REASONS.get(reason, reason)}"
                           + (f"; {self._failure}" if self._failure else "") + ")"
                           f" after {self.snes.getIterationNumber()} iterations; scaled "
                           f"residuals [{hist}]; last field residuals "
                           + ", ".join(f"{k} {v:.2e}" for k, v in last.items()))
            else:
                self._evaluate(self.x, self.b.duplicate())  # every state at the solution
        except (PETSc.Error, RuntimeError, ValueError, FloatingPointError) as exc:
            failure = f"coupled Newton failed: {exc}"
        if failure:
            saved.restore()
            self.j = j_backup
            solid.restore(u_backup)
            self._set_stress_coupling()
            if self.vac is not None:
                self.vac.rollback()
            return StepResult(False, failure)
        ec.commit()
        solid.commit()
        if self.vac is not None:
            self.vac.commit()
        rep = self._report
        rep.converged = True
        rep.reason = _SNES_REASONS.get(self.snes.getConvergedReason(), "")
        rep.newton_its = self.snes.getIterationNumber()
        rep.krylov_its = self.snes.getLinearSolveIterations()
        mech = rep
        if self.eliminates_mechanics:  # the mechanics' own Newton effort in the elimination
            mech = SolveReport(True, rep.reason, self.elimination.newton,
                               self.elimination.krylov)
        return StepResult(True, "", [rep, mech], 1,
                          max(rep.newton_its, self.elimination.hardest))

    def eliminate(self, snes: PETSc.SNES, x: PETSc.Vec) -> None:
        """The nonlinear eliminations (module docstring), the work of the preconditioner
        ``snes``: u of ``x`` solved for the growth currents of ``x`` (with
        mechanics.coupling.nonlinear_elimination), then c_v for the current and stress there
        (with vacancies), and the coupled residual at the result into ``snes``'s function
        vector (where newtonls reads it, SNESGetNPCFunction)."""
        arr = owned_values(x)
        _, x_u, x_j, x_v = self._split(arr)
        if self.eliminates_mechanics:
            if self.growth is not None:
                self.j = self._gather_j(x_j)
                self.growth.advance(self.j, self.dt)
            self._xu.setArray(x_u)
            self.mech_solver.read(self._xu)
            try:
                rep = self.mech_solver.solve()
            except (SolverError, PETSc.Error, RuntimeError, ValueError,
                    FloatingPointError) as exc:
                self._failure = f"nonlinear elimination of the mechanics: {exc}"
                snes.setConvergedReason(PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN)
                return
            self.elimination.add(rep)
            log.debug("  nonlinear elimination: mechanics newton %d", rep.newton_its)
            self.mech_solver.write(self._xu)
            x_u[:] = owned_values(self._xu)
            x.setArray(arr)
        b = snes.getFunction()[0]
        if self.vac is None:
            self._last_x = None
            self._residual(snes, x, b)
        else:
            try:
                self._evaluate(x, b)  # every row, and the current and stress, at x
                x_v[:] = self.vac.eliminate(x_v, refresh=False)
                # c_v does not act back: of the residual only its own rows change
                rows = owned_values(b)
                self._split(rows)[3][:] = self.vac.residual(x_v, refresh=False)
            except (SolverError, PETSc.Error, RuntimeError, ValueError,
                    FloatingPointError) as exc:
                self._failure = f"elimination of c_v: {exc}"
                snes.setConvergedReason(PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN)
                return
            x.setArray(arr)
            b.setArray(rows)
            b.pointwiseMult(b, self.row_scale)
            self._last_x = arr.copy()
        snes.setConvergedReason(PETSc.SNES.ConvergedReason.CONVERGED_ITS)

    def destroy(self) -> None:
        if self._npc is not None:
            self._npc.destroy()
        for obj in (self.snes, self.J, self.P, self._nest, self.x, self.b, self.row_scale,
                    *(iset for _, iset in self._fields)):
            obj.destroy()
