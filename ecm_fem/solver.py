"""Nonlinear solution: a blocked Newton solver (PETSc SNES, option prefix ``ecm_``) over any
list of unknowns and residual forms, with field-split preconditioning, per-field residual norms
and a convergence check after every solve.

The default linear solver is GMRES preconditioned by a multiplicative field split with
BoomerAMG on each field block (scalable); ``linear_solver: direct`` uses MUMPS LU for small
problems and debugging. Any PETSc option can be overridden from the YAML (solver.petsc_options)
under the same prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx.fem import petsc as fem_petsc

log = logging.getLogger("ecm_fem")

PREFIX = "ecm_"


class SolverError(RuntimeError):
    """Newton did not converge; the message gives the PETSc reason and the residual history."""


@dataclass
class SolveReport:
    converged: bool
    reason: str
    newton_its: int
    krylov_its: int
    residuals: list[float] = field(default_factory=list)
    field_residuals: list[dict[str, float]] = field(default_factory=list)


_SNES_REASONS = {v: k for k, v in vars(PETSc.SNES.ConvergedReason).items() if k.isupper()}


def default_options(field_names: Sequence[str], linear_solver: str, jacobi_fields: set[str]
                    ) -> dict[str, Any]:
    """PETSc options of the standard solve (without prefix)."""
    opts: dict[str, Any] = {
        "snes_type": "newtonls",
        "snes_linesearch_type": "bt",
        "snes_max_it": 30,
        "snes_rtol": 1e-10,
        "snes_atol": 1e-14,
        "snes_stol": 0.0,
    }
    if linear_solver == "direct":
        opts.update({"ksp_type": "preonly", "pc_type": "lu",
                     "pc_factor_mat_solver_type": "mumps"})
        return opts
    opts.update({
        "ksp_type": "gmres",
        "ksp_gmres_restart": 200,
        "ksp_rtol": 1e-12,
        "ksp_atol": 1e-30,
        "ksp_max_it": 1000,
        "pc_type": "fieldsplit",
        "pc_fieldsplit_type": "multiplicative",
    })
    for name in field_names:
        p = f"fieldsplit_{name}_"
        opts[p + "ksp_type"] = "preonly"
        if name in jacobi_fields:
            opts[p + "pc_type"] = "jacobi"
        else:
            opts[p + "pc_type"] = "hypre"
            opts[p + "pc_hypre_type"] = "boomeramg"
    return opts


def set_options(prefix: str, options: dict[str, Any]) -> None:
    """Put ``options`` into the PETSc options database under ``prefix`` (None: a flag)."""
    database = PETSc.Options()
    for k, v in options.items():
        database[prefix + k] = "" if v is None else v


class BlockedNewtonSolver:
    """Newton for residuals F_i(u_0, ..., u_n) = 0 in a blocked (monolithic) PETSc vector.

    Args:
        residuals: one residual form per unknown, tested with that unknown's test function.
        unknowns: the Functions solved for (updated in place by ``solve``).
        names: field names, used for the field split and the log.
        bcs: Dirichlet conditions on any of the unknowns' spaces.
        options: PETSc options (without the prefix) on top of ``default_options``.
        jacobi_fields: fields preconditioned by point Jacobi instead of AMG: one-dof real
            spaces and interface unknowns (whose blocks are mass-like, not elliptic).
        pre_residual: called after each iterate is written into the unknowns and before the
            residual is assembled (quadrature-point return mapping of Li creep). The Jacobian
            needs no hook: SNES evaluates it at the iterate of the last residual.
        near_nullspaces: field name -> near-null space of that field's block (rigid-body modes
            of a displacement) for algebraic multigrid: composed on the field's index set
            under a field split, set on the matrix when there is one field only.
        prefix: PETSc option prefix (each solver of a run has its own).
        constraint: a finalised ``dolfinx_mpc.MultiPointConstraint`` (periodic sides) of a
            single unknown, which must live in the constraint's function space. Newton then
            solves the reduced system K^T J K du = -K^T F (dolfinx_mpc's assembly; slave rows
            hold the identity) and the slave values are set by back-substitution before every
            residual.
    """

    def __init__(
        self,
        residuals: Sequence[ufl.Form],
        unknowns: Sequence[fem.Function],
        names: Sequence[str],
        bcs: Sequence[fem.DirichletBC] = (),
        options: dict[str, Any] | None = None,
        linear_solver: str = "iterative",
        jacobi_fields: set[str] | None = None,
        jit_options: dict | None = None,
        pre_residual: Callable[[], None] | None = None,
        near_nullspaces: dict[str, PETSc.NullSpace] | None = None,
        prefix: str = PREFIX,
        constraint: Any = None,
    ):
        self.pre_residual = pre_residual
        self.constraint = constraint
        self.u = list(unknowns)
        self.names = list(names)
        self.bcs = list(bcs)
        comm = self.u[0].function_space.mesh.comm
        self.comm = comm
        self.F = fem.form(list(residuals), jit_options=jit_options)
        J = []
        for Fi in residuals:
            row = []
            for uj in self.u:
                # with a constraint u lives in its space (more ghosts); the trial space of the
                # constrained assembly is the original one, that of the test function
                space = (Fi.arguments()[0].ufl_function_space() if constraint is not None
                         else uj.function_space)
                dF = ufl.algorithms.expand_derivatives(
                    ufl.derivative(Fi, uj, ufl.TrialFunction(space)))
                row.append(None if dF.empty() else dF)
            J.append(row)
        self.J = fem.form(J, jit_options=jit_options)
        if constraint is None:
            self.A = fem_petsc.create_matrix_block(self.J)
            self.b = fem_petsc.create_vector_block(self.F)
            self.x = fem_petsc.create_vector_block(self.F)
        else:
            import dolfinx_mpc

            if len(self.u) != 1:
                raise ValueError("a multi-point constraint needs a single unknown")
            c = constraint._cpp_object
            self.A = dolfinx_mpc.cpp.mpc.create_matrix(self.J[0][0]._cpp_object, c, c)
            imap = constraint.function_space.dofmap.index_map
            bs = constraint.function_space.dofmap.index_map_bs
            self.b = la.create_petsc_vector(imap, bs)
            self.x = la.create_petsc_vector(imap, bs)
            self._x_work = la.create_petsc_vector(imap, bs)

        # owned values of each unknown, in the order of the blocked vectors
        self.sizes = [u.function_space.dofmap.index_map.size_local
                      * u.function_space.dofmap.index_map_bs for u in self.u]
        start = self.x.getOwnershipRange()[0]
        self._is: list[PETSc.IS] = []
        offset = start
        for n in self.sizes:
            self._is.append(PETSc.IS().createStride(n, first=offset, step=1, comm=comm))
            offset += n

        self.snes = PETSc.SNES().create(comm)
        self.snes.setOptionsPrefix(prefix)
        opts = default_options(self.names, linear_solver, jacobi_fields or set())
        opts.update(options or {})
        for name in self.names:  # a split given another preconditioner has no hypre type
            if opts.get(f"fieldsplit_{name}_pc_type", "hypre") != "hypre":
                opts.pop(f"fieldsplit_{name}_pc_hypre_type", None)
        if opts.get("pc_type") != "fieldsplit":  # PETSc warns about options nobody reads
            opts = {k: v for k, v in opts.items()
                    if not k.startswith(("fieldsplit_", "pc_fieldsplit_", "ksp_gmres_"))}
        set_options(prefix, opts)
        self.snes.setFunction(self._residual, self.b)
        self.snes.setJacobian(self._jacobian, self.A)
        ksp = self.snes.getKSP()
        ksp.setOptionsPrefix(prefix)
        pc = ksp.getPC()
        pc.setOptionsPrefix(prefix)
        nullspaces = near_nullspaces or {}
        unknown = set(nullspaces) - set(self.names)
        if unknown:
            raise ValueError(f"near_nullspaces: no field(s) {sorted(unknown)} in {self.names}")
        if opts.get("pc_type") == "fieldsplit":
            pc.setType("fieldsplit")
            pc.setFieldSplitIS(*zip(self.names, self._is, strict=True))
            for name, iset in zip(self.names, self._is, strict=True):
                if name in nullspaces:
                    iset.compose("nearnullspace", nullspaces[name])
        elif nullspaces:
            if len(self.names) != 1:
                raise ValueError("near_nullspaces without a field split needs a single field")
            self.A.setNearNullSpace(nullspaces[self.names[0]])
        self.snes.setFromOptions()
        self.snes.setMonitor(self._monitor)
        self._report: SolveReport | None = None

    # -- PETSc callbacks
    def _to_functions(self, x: PETSc.Vec) -> None:
        arr = x.getArray(readonly=True)
        offset = 0
        for u, n in zip(self.u, self.sizes, strict=True):
            u.x.array[:n] = arr[offset: offset + n]
            u.x.scatter_forward()
            offset += n
        if self.constraint is not None:
            self.constraint.backsubstitution(self.u[0])

    def _from_functions(self, x: PETSc.Vec) -> None:
        arr = x.getArray()
        offset = 0
        for u, n in zip(self.u, self.sizes, strict=True):
            arr[offset: offset + n] = u.x.array[:n]
            offset += n

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        self._to_functions(x)
        if self.pre_residual is not None:
            self.pre_residual()
        with b.localForm() as b_local:
            b_local.set(0.0)
        if self.constraint is None:
            fem_petsc.assemble_vector_block(b, self.F, self.J, bcs=self.bcs, x0=x, alpha=-1.0)
        else:
            import dolfinx_mpc

            x0 = self._x_work  # a copy of x with its slave values filled in, for the lifting
            x.copy(x0)
            x0.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            self.constraint.backsubstitution(x0)
            dolfinx_mpc.assemble_vector(self.F[0], self.constraint, b)
            dolfinx_mpc.apply_lifting(b, [self.J[0][0]], [self.bcs], self.constraint, x0=[x0],
                                      scale=-1.0)
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            fem_petsc.set_bc(b, self.bcs, x0, -1.0)
        b.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, A: PETSc.Mat, P: PETSc.Mat) -> None:
        A.zeroEntries()
        if self.constraint is None:
            fem_petsc.assemble_matrix_block(A, self.J, bcs=self.bcs, diagonal=1.0)
            A.assemble()
        else:
            import dolfinx_mpc

            dolfinx_mpc.assemble_matrix(self.J[0][0], self.constraint, self.bcs, 1.0, A)

    def _monitor(self, snes: PETSc.SNES, it: int, norm: float) -> None:
        per_field = {}
        for name, iset in zip(self.names, self._is, strict=True):
            sub = self.b.getSubVector(iset)
            per_field[name] = sub.norm()
            self.b.restoreSubVector(iset, sub)
        assert self._report is not None
        self._report.residuals.append(norm)
        self._report.field_residuals.append(per_field)
        fields = ", ".join(f"{k} {v:.3e}" for k, v in per_field.items())
        log.debug("  newton %2d: |F| = %.3e (%s)", it, norm, fields)

    # -- public
    def read(self, x: PETSc.Vec) -> None:
        """Write the values of a vector with this solver's layout (owned entries; a plain or
        ghosted vector) into the unknowns, ghosts and constrained values included."""
        self._to_functions(x)

    def write(self, x: PETSc.Vec) -> None:
        """The unknowns' owned values into ``x`` (this solver's layout)."""
        self._from_functions(x)

    def residual(self, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """The residual at ``x`` (this solver's layout) into ``b``, with the pre-residual hook;
        the unknowns hold ``x`` afterwards."""
        self._residual(self.snes, x, b)

    def assemble_jacobian(self) -> PETSc.Mat:
        """The Jacobian at the unknowns' current values (and the state of the last
        pre-residual hook) into this solver's matrix, which is returned."""
        self._jacobian(self.snes, self.x, self.A, self.A)
        return self.A

    def assemble_increment(self, forms: Sequence[ufl.Form | None], b: PETSc.Vec) -> None:
        """Linear forms (one per unknown, tested like the residuals, None for none) into ``b``
        with this solver's layout: rows of Dirichlet dofs are 0 (the conditions do not move
        with the coupling), and with a multi-point constraint the forms are condensed like the
        residual. For the coupling terms of a monolithic Jacobian (monolithic.py)."""
        arr = b.getArray()
        arr[:] = 0.0
        offset = 0
        # the test spaces (with a constraint u lives in the constraint's space)
        spaces = [F.function_spaces[0] for F in self.F]
        for form, space, n in zip(forms, spaces, self.sizes, strict=True):
            # fem.bcs_by_block of dolfinx 0.9 fails on a DirichletBC's C++ space
            bcs = [bc for bc in self.bcs if space.contains(bc.function_space)]
            if form is not None:
                if self.constraint is not None:
                    import dolfinx_mpc

                    vec = dolfinx_mpc.assemble_vector(form, self.constraint)
                else:
                    vec = fem_petsc.assemble_vector(form)
                vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
                fem_petsc.set_bc(vec, bcs, alpha=0.0)
                arr[offset: offset + n] = vec.getArray(readonly=True)[:n]
                vec.destroy()
            offset += n

    def solve(self) -> SolveReport:
        """Solve from the current values of the unknowns; raise ``SolverError`` if Newton fails
        (the unknowns are then restored to their values before the call)."""
        backup = [u.x.array.copy() for u in self.u]
        self._report = SolveReport(False, "", 0, 0)
        self._from_functions(self.x)
        self.snes.solve(None, self.x)
        reason = self.snes.getConvergedReason()
        rep = self._report
        rep.reason = _SNES_REASONS.get(reason, str(reason))
        rep.newton_its = self.snes.getIterationNumber()
        rep.krylov_its = self.snes.getLinearSolveIterations()
        rep.converged = reason > 0
        if not rep.converged:
            for u, old in zip(self.u, backup, strict=True):
                u.x.array[:] = old
            hist = ", ".join(f"{r:.2e}" for r in rep.residuals)
            raise SolverError(
                f"Newton did not converge ({rep.reason}) after {rep.newton_its} iterations; "
                f"residual history: [{hist}]"
            )
        self.x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        self._to_functions(self.x)
        return rep

    def destroy(self) -> None:
        for obj in (self.snes, self.A, self.b, self.x, *self._is):
            obj.destroy()


def owned_values(v: PETSc.Vec) -> np.ndarray:
    """A copy of a vector's owned values (no array view outlives the call: a view kept by an
    exception's traceback would leave the vector locked)."""
    return v.getArray(readonly=True).copy()


def block_norms(comm: MPI.Comm, values: np.ndarray, blocks: Sequence[tuple[str, int]]
                ) -> dict[str, float]:
    """2-norms, over all ranks, of the consecutive blocks (name, owned size) of a coupled
    method's owned ``values``."""
    squares, offset = [], 0
    for _, n in blocks:
        part = values[offset: offset + n]
        squares.append(float(np.dot(part, part)))
        offset += n
    total = comm.allreduce(np.array(squares), op=MPI.SUM)
    return {name: float(np.sqrt(v)) for (name, _), v in zip(blocks, total, strict=True)}


def global_max(comm: MPI.Comm, values: np.ndarray, default: float = -np.inf) -> float:
    local = float(np.max(values)) if len(values) else default
    return comm.allreduce(local, op=MPI.MAX)


def solve_with_own_ksp(solver: BlockedNewtonSolver, rhs: np.ndarray, b: PETSc.Vec,
                       x: PETSc.Vec) -> np.ndarray:
    """Solve ``solver``'s assembled Jacobian for ``rhs`` (owned values) with that solver's own
    Krylov method and preconditioner (the options of its prefix): a diagonal block of a coupled
    method's preconditioner. Returns the owned values of the solution."""
    ksp = solver.snes.getKSP()
    ksp.setOperators(solver.A)
    b.setArray(rhs)
    ksp.solve(b, x)
    if ksp.getConvergedReason() <= 0:
        raise RuntimeError(f"inner solve of {'/'.join(solver.names)} failed "
                           f"(KSP reason {ksp.getConvergedReason()})")
    return owned_values(x)


class PythonCallbacks:
    """petsc4py Python context for a coupled Newton method implemented by ``owner``: the
    operator (a Python Mat, ``mult`` -> ``owner.apply``), the preconditioner (a Python PC,
    ``apply`` -> ``owner.precondition``) and a right nonlinear preconditioner (a Python SNES,
    ``solve`` -> ``owner.eliminate``). No exception may cross PETSc (it would leave vectors
    locked): a failing call sets its output to NaN through ``owner._callback_failed``."""

    def __init__(self, owner: Any):
        self.owner = owner

    def mult(self, mat: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self._call(self.owner.apply, x, y, "Jacobian action")

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self._call(self.owner.precondition, x, y, "preconditioner")

    def _call(self, function: Any, x: PETSc.Vec, y: PETSc.Vec, what: str) -> None:
        try:
            function(x, y)
        except (RuntimeError, ValueError, FloatingPointError, PETSc.Error) as exc:
            self.owner._callback_failed(y, what, exc)

    def solve(self, snes: PETSc.SNES, b: PETSc.Vec, x: PETSc.Vec) -> None:
        self.owner.eliminate(snes, x)
