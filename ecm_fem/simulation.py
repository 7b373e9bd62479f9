"""One run from a validated config to its output folder: mesh, problems, the time loop,
post-processing and output.

Per time step the current distribution is solved first (its kinetics are quasi-static; time
enters through the control sequence), then, with a ``mechanics`` section, the solid: the growth
eigenstrain advances with the step's interface current (backward Euler) and Li creeps over the
step. The electrochemistry does not yet feel the stresses (the coupled problem is a later
issue). A step that does not converge is never accepted: it is retried with half the step
(down to time.dt_min); after that the run stops with the last good state written and
``converged: false`` in summary.json. Steps grow back after successes (to time.dt, or up to
time.dt_max with time.adaptive).
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem

from ecm_fem import __version__, plots, postprocess
from ecm_fem.config import RunConfig, dump_config
from ecm_fem.io import MECHANICS_COLUMNS, RunWriter, prepare_run_dir
from ecm_fem.mesh import generate
from ecm_fem.problem import CurrentDistribution
from ecm_fem.solid import SolidMechanics, StressFields, facet_currents
from ecm_fem.solver import BlockedNewtonSolver, SolveReport, SolverError

log = logging.getLogger("ecm_fem")


def versions() -> dict[str, str]:
    from petsc4py import PETSc

    import basix
    import dolfinx
    import ffcx
    import gmsh
    import ufl

    return {
        "ecm_fem": __version__,
        "dolfinx": dolfinx.__version__,
        "basix": basix.__version__,
        "ffcx": ffcx.__version__,
        "ufl": ufl.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "gmsh": gmsh.__version__,
        "python": platform.python_version(),
    }


def breakpoints(config: RunConfig) -> list[float]:
    """Times a step must end on [s]: the ends of the control's current steps and t_end."""
    t_end = config.time.t_end
    ends = [st.until for st in config.control.steps or [] if st.until < t_end]
    return sorted({*ends, t_end})


def build_solver(p: CurrentDistribution, config: RunConfig) -> BlockedNewtonSolver:
    s = config.solver
    options: dict[str, Any] = {"snes_rtol": s.rtol, "snes_atol": s.atol,
                               "snes_max_it": s.max_iterations}
    options.update(s.petsc_options)
    return BlockedNewtonSolver(p.residuals, p.unknowns, p.names, p.bcs, options=options,
                               linear_solver=s.linear_solver, jacobi_fields=p.jacobi_fields)


def run(config: RunConfig, run_dir: Path, comm: MPI.Comm = MPI.COMM_WORLD,
        overwrite: bool = False, config_path: str | None = None) -> dict[str, Any]:
    """Run ``config`` into ``run_dir`` and return the summary (also written to summary.json).

    Raises ``SolverError`` (after writing the last good state) when a step fails.
    """
    t0 = time.perf_counter()
    moved = prepare_run_dir(run_dir, comm, overwrite)
    file_log = _attach_log_file(run_dir / "run.log") if comm.rank == 0 else None
    try:
        return _run(config, run_dir, comm, moved, config_path, t0)
    finally:
        if file_log is not None:
            log.removeHandler(file_log)
            file_log.close()


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def _run(config: RunConfig, run_dir: Path, comm: MPI.Comm, moved: Path | None,
         config_path: str | None, t0: float) -> dict[str, Any]:
    timings: dict[str, float] = {}
    if moved:
        log.info("earlier results in %s were moved to %s", run_dir, moved)
    vers = versions()
    log.info("ecm_fem %s | dolfinx %s | petsc %s | gmsh %s | %d rank(s)",
             vers["ecm_fem"], vers["dolfinx"], vers["petsc"], vers["gmsh"], comm.size)

    t = time.perf_counter()
    mesh_data = generate(config, comm)
    timings["mesh"] = time.perf_counter() - t
    n_cells = mesh_data.mesh.topology.index_map(mesh_data.mesh.topology.dim).size_global
    log.info("mesh: %d cells (%s, %.2f s)", n_cells, config.geometry.kind, timings["mesh"])

    t = time.perf_counter()
    problem = CurrentDistribution(config, mesh_data)
    solver = build_solver(problem, config)
    solid = StepSolid(config, mesh_data) if config.mechanics is not None else None
    timings["setup"] = time.perf_counter() - t
    unknowns = list(zip(problem.names, problem.unknowns, strict=True))
    if solid is not None:
        unknowns.append(("u", solid.problem.u))
    dofs = {name: u.function_space.dofmap.index_map.size_global
            * u.function_space.dofmap.index_map_bs for name, u in unknowns}
    log.info("dofs: %s (setup incl. JIT %.2f s)", ", ".join(f"{k} {v}" for k, v in dofs.items()),
             timings["setup"])

    writer = RunWriter(run_dir, comm,
                       MECHANICS_COLUMNS + solid.tips.columns() if solid is not None else None)
    writer.write_text("config.yaml", dump_config(config))
    j_field = postprocess.CurrentDensityField(problem)
    writer.add_fields("phi", [problem.phi])
    writer.add_fields("current_density", [j_field.function])
    if solid is not None:
        solid.add_fields(writer)

    every = config.output.fields_every
    converged = True
    failure = ""
    t_solve = 0.0
    t_now, step, successes = 0.0, 0, 0
    t_end = config.time.t_end
    dt = config.time.dt
    targets = breakpoints(config)
    last_written = None
    problem.set_time(min(dt, t_end))
    problem.initial_guess()
    while True:
        if t_end == 0:
            t_try, dt_try = 0.0, 0.0
        else:
            target = next(b for b in targets if b > t_now * (1 + 1e-12) + 1e-300)
            dt_try = min(dt, target - t_now)
            if target - (t_now + dt_try) < 1e-3 * dt_try:  # no sliver steps before a target
                dt_try = target - t_now
            t_try = target if dt_try == target - t_now else t_now + dt_try
        ts = time.perf_counter()
        ok, reports, reason = _attempt(problem, solver, solid, t_try, dt_try)
        t_solve += time.perf_counter() - ts
        if not ok:
            successes = 0
            if dt_try > 0 and dt_try / 2 >= config.time.smallest_step:
                dt = dt_try / 2
                log.warning("step at t = %g s (dt = %g s) failed (%s); retrying with dt = %g s",
                            t_try, dt_try, reason, dt)
                continue
            converged = False
            failure = f"step {step + 1} (t = {t_try:g} s, dt = {dt_try:g} s): {reason}"
            log.error("%s", failure)
            break
        step += 1
        successes += 1
        t_now = t_try
        ec_rep = reports[0]
        profile = postprocess.interface_profile(
            problem, solid.stress if solid is not None else None)
        scalars = postprocess.step_scalars(problem, profile)
        row = {"step": step, "time": t_now, "dt": dt_try, **scalars,
               "newton_its": ec_rep.newton_its, "krylov_its": ec_rep.krylov_its}
        mech_text = ""
        if solid is not None:
            row.update(solid.scalars(reports[1]))
            mech_text = (f"  mech newton {reports[1].newton_its:2d} krylov "
                         f"{reports[1].krylov_its:4d}  max p_Li = {row['max_p_li']:.4g} Pa")
        writer.add_step(row, profile)
        done = t_end == 0 or t_now >= t_end * (1 - 1e-12)
        if (every and step % every == 0) or done:
            j_field.update()
            writer.write_fields(t_now)
            last_written = t_now
        log.info("step %4d  t = %-10.4g dt = %-9.3g newton %2d  krylov %4d  V_we = %+.6e V  "
                 "focusing = %.4f%s", step, t_now, dt_try, ec_rep.newton_its, ec_rep.krylov_its,
                 scalars["V_we"], scalars["focusing_factor"], mech_text)
        if done:
            break
        dt = _next_step(config, dt_try, dt, reports, successes)
    if not converged and step and last_written != t_now:
        j_field.update()  # the unknowns hold the last accepted state
        writer.write_fields(t_now)
    writer.close()
    solver.destroy()
    if solid is not None:
        solid.destroy()
    timings["solve"] = t_solve
    timings["total"] = time.perf_counter() - t0

    summary: dict[str, Any] = dict(writer.history[-1]) if writer.history else {}
    summary.update({
        "converged": converged,
        "failure": failure or None,
        "steps": step,
        "versions": vers,
        "ranks": comm.size,
        "dofs": dofs,
        "cells": n_cells,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "config": str(Path(run_dir) / "config.yaml"),
        "source_config": config_path,
    })
    writer.write_summary(summary)
    if comm.rank == 0:
        try:
            plots.make_plots(run_dir)
        except Exception as exc:  # a figure is never worth a failed run
            log.warning("plots not made: %s", exc)
    if not converged:
        raise SolverError(failure)
    return summary


def _next_step(config: RunConfig, dt_done: float, dt: float, reports: list[SolveReport],
               successes: int) -> float:
    """The next step: after a cut it grows back (x2, after 4 successful steps at the cut size)
    towards time.dt; with time.adaptive it grows by 1.5 after easy Newton solves (<= 10
    iterations each; backtracking Newton on creeping Li takes 7-15) up to time.dt_max and
    shrinks by 0.7 after hard ones (>= 25)."""
    newton = max(r.newton_its for r in reports)
    dt = max(dt, dt_done)
    if successes < 4 and dt_done < config.time.dt:
        return dt
    if config.time.adaptive:
        if newton <= 10:
            dt *= 1.5
        elif newton >= 25:
            dt *= 0.7
        return float(np.clip(dt, config.time.smallest_step, config.time.largest_step))
    return min(2.0 * dt, config.time.dt)


def _attempt(problem: CurrentDistribution, solver: BlockedNewtonSolver, solid: StepSolid | None,
             t: float, dt: float) -> tuple[bool, list[SolveReport], str]:
    """Solve one step ending at ``t``; on failure every state is back where it was."""
    backup = [u.x.array.copy() for u in problem.unknowns]
    problem.set_time(t)
    try:
        reports = [solver.solve()]
    except SolverError as exc:
        return False, [], f"current distribution: {exc}"
    if solid is not None:
        try:
            reports.append(solid.solve(problem, dt))
        except (SolverError, RuntimeError) as exc:
            for u, old in zip(problem.unknowns, backup, strict=True):
                u.x.array[:] = old
            return False, [], f"mechanics: {exc}"
    return True, reports, ""


class StepSolid:
    """The mechanics of a run: problem, solver, stress fields, one step at a time."""

    def __init__(self, config: RunConfig, mesh_data: Any):
        self.problem = SolidMechanics(config, mesh_data)
        self.solver = self.problem.build_solver()
        self.stress = StressFields(self.problem)
        self.tips = CrackTips(config, self.problem, self.stress)

    def solve(self, ec: CurrentDistribution, dt: float) -> SolveReport:
        """Growth from ``ec``'s interface current over ``dt``, creep over ``dt``, solve; commit
        on success, roll back and raise on failure."""
        p = self.problem
        currents = None
        if p.growth is not None and dt > 0:
            currents = facet_currents(ec, p.growth.facets)
            total = ec.mesh.comm.allreduce(
                fem.assemble_scalar(fem.form(ec.i_n * ec.interface_measure)), op=MPI.SUM)
            discrete = float(np.dot(currents, p.growth.facets.lengths))
            if discrete != 0.0:
                currents *= total / discrete  # exact plated volume (solid.py docstring)
        p.advance(dt, currents)
        try:
            report = self.solver.solve()
        except SolverError:
            p.rollback()
            p.dt = 0.0
            p.pre_residual()  # the committed stress state at the restored displacement
            raise
        p.commit()
        self.stress.update()
        return report

    def scalars(self, report: SolveReport) -> dict[str, float]:
        s = self.stress
        return {
            "max_vm_electrolyte": s.region_max(s.von_mises, "electrolyte"),
            "max_p_li": s.region_max(s.pressure, "li"),
            "max_creep_strain_li": s.region_max(s.creep_strain, "li"),
            "newton_its_mech": report.newton_its,
            "krylov_its_mech": report.krylov_its,
            **self.tips.scalars(),
        }

    def add_fields(self, writer: RunWriter) -> None:
        s = self.stress
        writer.add_fields("displacement", [self.problem.u])
        writer.add_fields("stress", [s.sigma])
        writer.add_fields("stress_measures", [s.von_mises, s.pressure, s.creep_strain])

    def destroy(self) -> None:
        self.solver.destroy()


class CrackTips:
    """K_I at the geometry's crack tips (``geometry.crack_tips()``) by the interaction integral
    over the electrolyte (physics/fracture.py), and K_I / K_Ic with the electrolyte's fracture
    toughness. The domain is a ring of radii r_in = max(r_out / 4, flaw_opening) (the blunt
    root lies inside r_in) and r_out = flaw_depth / 4 (at most a quarter of the ligament),
    inside the electrolyte. Li-filled flaws load the faces with the
    Li cells' stresses; empty flaws are traction free. A tip on the symmetry line x = 0 is a
    half model."""

    def __init__(self, config: RunConfig, solid: SolidMechanics, stress: StressFields):
        g = config.geometry
        self.tips = g.crack_tips()
        self.solid, self.stress = solid, stress
        self.k_ic = config.materials.electrolyte.resolve().fracture_toughness
        depth = getattr(g, "flaw_depth", None)
        if self.tips and depth is not None:
            self.r_out = 0.25 * min(depth, g.electrolyte_thickness - depth)
            # the notch root (radius opening / 2) must lie inside r_in
            self.r_in = max(0.25 * self.r_out, float(g.flaw_opening))
            if self.r_in >= 0.8 * self.r_out:
                raise ValueError("geometry.flaw_opening: the flaw is too blunt for K_I "
                                 f"(root {g.flaw_opening:g} m against a domain radius "
                                 f"{self.r_out:g} m); make it narrower or deeper")
        else:
            self.r_out, self.r_in = 0.25 * g.interface_mesh_size, 0.0625 * g.interface_mesh_size
        self.filled = bool(getattr(g, "filled", False))
        self.width = g.width

    def columns(self) -> list[str]:
        return [c for name, _, _ in self.tips for c in (f"KI_{name}", f"KI_over_KIc_{name}")]

    def scalars(self) -> dict[str, float]:
        from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
        from ecm_fem.physics import fracture

        s = self.solid
        out: dict[str, float] = {}
        for name, tip, direction in self.tips:
            tags = s.mesh_data.facet_tags
            kwargs: dict[str, Any]
            if self.filled:  # faces loaded by the Li cells' (cell-average) stress
                dS = ufl.Measure("dS", domain=s.mesh, subdomain_data=tags)
                kwargs = {"face_measure": dS(FACET_TAGS["interface"]),
                          "face_stress": self.stress.sigma}
            else:  # traction free; the blunt root is a face inside r_in (fracture.py)
                ds = ufl.Measure("ds", domain=s.mesh, subdomain_data=tags)
                kwargs = {"face_measure": ds(FACET_TAGS["crack_surface"]), "face_pressure": 0.0}
            try:
                res = fracture.crack_tip_integrals(
                    s.u, s.E, s.nu, s.mesh_data.cell_tags, [CELL_TAGS["electrolyte"]], tip,
                    direction, self.r_in, self.r_out,
                    half_model=abs(tip[0]) < 1e-9 * self.width, **kwargs)
            except ValueError as exc:  # a set-up problem of the run, not of the config
                raise RuntimeError(f"K_I at crack tip '{name}': {exc}") from exc
            out[f"KI_{name}"] = res.K_I
            out[f"KI_over_KIc_{name}"] = (fracture.k_ratio(res, self.k_ic) if self.k_ic
                                          else float("nan"))
        return out
