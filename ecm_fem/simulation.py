"""One run from a validated config to its output folder: mesh, problem, Newton solve per time
step (the kinetics are quasi-static; time enters through the control sequence), post-processing
and output. A step that does not converge is never accepted: the run stops with the last good
state written and ``converged: false`` in summary.json.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from ecm_fem import __version__, plots, postprocess
from ecm_fem.config import RunConfig, dump_config
from ecm_fem.io import RunWriter, prepare_run_dir
from ecm_fem.mesh import generate
from ecm_fem.problem import CurrentDistribution
from ecm_fem.solver import BlockedNewtonSolver, SolverError

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


def time_points(config: RunConfig) -> list[float]:
    """Solve times [s]: 0 for a single quasi-static solve, else dt, 2 dt, ..., t_end."""
    t_end, dt = config.time.t_end, config.time.dt
    if t_end == 0:
        return [0.0]
    n = int(np.ceil(t_end / dt - 1e-9))
    return [min((k + 1) * dt, t_end) for k in range(n)]


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
    writer = RunWriter(run_dir, comm)
    writer.write_text("config.yaml", dump_config(config))
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
    timings["setup"] = time.perf_counter() - t
    dofs = {name: u.function_space.dofmap.index_map.size_global
            * u.function_space.dofmap.index_map_bs
            for name, u in zip(problem.names, problem.unknowns, strict=True)}
    log.info("dofs: %s (setup incl. JIT %.2f s)", ", ".join(f"{k} {v}" for k, v in dofs.items()),
             timings["setup"])

    j_field = postprocess.CurrentDensityField(problem)
    writer.add_fields("phi", [problem.phi])
    writer.add_fields("current_density", [j_field.function])

    times = time_points(config)
    every = config.output.fields_every
    converged = True
    failure = ""
    t_solve = 0.0
    prev_t = 0.0
    for step, t_now in enumerate(times, start=1):
        problem.set_time(t_now)
        if step == 1:
            problem.initial_guess()
        ts = time.perf_counter()
        try:
            report = solver.solve()
        except SolverError as exc:
            converged = False
            failure = f"step {step} (t = {t_now:g} s): {exc}"
            log.error("%s", failure)
            break
        t_solve += time.perf_counter() - ts
        profile = postprocess.interface_profile(problem)
        scalars = postprocess.step_scalars(problem, profile)
        row = {"step": step, "time": t_now, "dt": t_now - prev_t, **scalars,
               "newton_its": report.newton_its, "krylov_its": report.krylov_its}
        writer.add_step(row, profile)
        if (every and step % every == 0) or step == len(times):
            j_field.update()
            writer.write_fields(t_now)
        log.info("step %4d  t = %-10.4g dt = %-9.3g newton %2d  krylov %4d  V_we = %+.6e V  "
                 "focusing = %.4f", step, t_now, t_now - prev_t, report.newton_its,
                 report.krylov_its, scalars["V_we"], scalars["focusing_factor"])
        prev_t = t_now
    writer.close()
    solver.destroy()
    timings["solve"] = t_solve
    timings["total"] = time.perf_counter() - t0

    summary: dict[str, Any] = dict(writer.history[-1]) if writer.history else {}
    summary.update({
        "converged": converged,
        "failure": failure or None,
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

