"""One run from a validated config to its output folder: mesh, problems, the time loop,
post-processing and output.

Per time step the current distribution (quasi-static kinetics; time enters through the control
sequence) and, with a ``mechanics`` section, the solid are solved together (coupling.CoupledStep,
monolithic.MonolithicStep): the growth eigenstrain advances with the step's interface current
(backward Euler), Li creeps over the step, and the kinetics feel the interface stresses through
kinetics.stress_coupling; with a ``vacancies`` section the Li vacancies (vacancies.LiVacancies),
driven by the interface current, are unknowns of the same Newton method (vacancy_newton.py,
monolithic.py). A step that does not converge is never accepted: it is retried with half the
step (down to time.dt_min); after that the run stops with the last good state written and
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

from ecm_fem import __version__, plots, postprocess
from ecm_fem.checkpoint import Checkpointer, LoopState, RestartError, read_index
from ecm_fem.config import RunConfig, dump_config
from ecm_fem.coupling import CoupledStep, StepResult
from ecm_fem.io import (
    HISTORY_COLUMNS,
    RunWriter,
    history_columns,
    install_paraview_script,
    prepare_run_dir,
)
from ecm_fem.mesh import MeshData, generate
from ecm_fem.monolithic import MonolithicStep
from ecm_fem.physics.transport import depletion_time
from ecm_fem.problem import CurrentDistribution, SaltTransport
from ecm_fem.solid import StepSolid
from ecm_fem.solver import BlockedNewtonSolver, SolverError
from ecm_fem.vacancies import LiVacancies

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
    options: dict[str, Any] = {"snes_rtol": s.rtol, "snes_atol": s.atol * config.tolerance_scale,
                               "snes_max_it": s.max_iterations}
    if p.salt is not None and s.linear_solver == "iterative":
        options.update(SaltTransport.SPLIT_OPTIONS)
    options.update(s.petsc_options)
    return BlockedNewtonSolver(p.residuals, p.unknowns, p.names, p.bcs, options=options,
                               linear_solver=s.linear_solver, jacobi_fields=p.jacobi_fields)


def run(config: RunConfig, run_dir: Path, comm: MPI.Comm = MPI.COMM_WORLD,
        overwrite: bool = False, config_path: str | None = None,
        restart_index: dict[str, Any] | None = None, stop_after: int | None = None
        ) -> dict[str, Any]:
    """Run ``config`` into ``run_dir`` and return the summary (also written to summary.json).
    With ``restart_index`` (the folder's checkpoint index) continue the run in ``run_dir`` from
    its last checkpoint instead (see ``restart``). With ``stop_after`` stop after that many
    steps, with a state checkpoint, so that ``restart`` continues the run (a job of limited wall
    time on a cluster; the summary then says ``"complete": false``).

    Raises ``SolverError`` (after writing the last good state) when a step fails.
    """
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    mesh_data = generate(config, comm)  # a geometry gmsh cannot build fails here, before the
    mesh_time = time.perf_counter() - t0  # run folder (and the results in it) is touched
    restarting = restart_index is not None
    if stop_after is not None and not config.output.checkpoint_every:
        raise RestartError("stopping after a number of steps needs checkpoints: "
                           "output.checkpoint_every is 0")
    moved = None if restarting else prepare_run_dir(run_dir, comm, overwrite)
    file_log = _attach_log_file(run_dir / "run.log", append=restarting) if comm.rank == 0 else None
    try:
        return _run(config, mesh_data, mesh_time, run_dir, comm, moved, config_path, t0,
                    restart_index, stop_after)
    finally:
        if file_log is not None:
            log.removeHandler(file_log)
            file_log.close()


def restart(run_dir: Path, comm: MPI.Comm = MPI.COMM_WORLD, stop_after: int | None = None
            ) -> dict[str, Any]:
    """Continue the run in ``run_dir`` (killed, or stopped by a failure) from its last
    checkpoint, on any number of ranks, with the config it was started with (its
    config.yaml), stopping again after ``stop_after`` steps if given. Raises ``RestartError``
    when the folder cannot be continued."""
    from ecm_fem.config import load_config

    run_dir = Path(run_dir)
    index = read_index(run_dir, comm)
    config = load_config(run_dir / "config.yaml")
    last = index["checkpoints"][-1]["time"]
    if last >= config.time.t_end * (1 - 1e-12):
        raise RestartError(f"{run_dir} is complete: its last checkpoint is at t_end = "
                           f"{config.time.t_end:g} s")
    return run(config, run_dir, comm, config_path=str(run_dir / "config.yaml"),
               restart_index=index, stop_after=stop_after)


def _attach_log_file(path: Path, append: bool = False) -> logging.Handler:
    handler = logging.FileHandler(path, mode="a" if append else "w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def _run(config: RunConfig, mesh_data: MeshData, mesh_time: float, run_dir: Path,
         comm: MPI.Comm, moved: Path | None, config_path: str | None, t0: float,
         restart_index: dict[str, Any] | None, stop_after: int | None) -> dict[str, Any]:
    timings: dict[str, float] = {"mesh": mesh_time}
    if moved:
        log.info("earlier results in %s were moved to %s", run_dir, moved)
    vers = versions()
    log.info("ecm_fem %s | dolfinx %s | petsc %s | gmsh %s | %d rank(s)",
             vers["ecm_fem"], vers["dolfinx"], vers["petsc"], vers["gmsh"], comm.size)

    n_cells = mesh_data.mesh.topology.index_map(mesh_data.mesh.topology.dim).size_global
    log.info("mesh: %d cells (%s, %.2f s)", n_cells, config.geometry.kind, timings["mesh"])

    t = time.perf_counter()
    problem = CurrentDistribution(config, mesh_data)
    solver = build_solver(problem, config)
    solid = StepSolid(config, mesh_data) if config.mechanics is not None else None
    vacancies = LiVacancies(config, mesh_data, problem, solid) \
        if config.vacancies is not None else None
    stepper: CoupledStep | MonolithicStep
    if solid is not None and config.mechanics.coupling.scheme == "monolithic":
        stepper = MonolithicStep(config, problem, solver, solid, vacancies)
    else:
        stepper = CoupledStep(config, problem, solver, solid, vacancies)
    timings["setup"] = time.perf_counter() - t
    unknowns = list(zip(problem.names, problem.unknowns, strict=True))
    if solid is not None:
        unknowns.append(("u", solid.problem.u))
    if vacancies is not None:
        unknowns.append(("c_v", vacancies.c_v))
    dofs = {name: u.function_space.dofmap.index_map.size_global
            * u.function_space.dofmap.index_map_bs for name, u in unknowns}
    log.info("dofs: %s (setup incl. JIT %.2f s)", ", ".join(f"{k} {v}" for k, v in dofs.items()),
             timings["setup"])

    writer = RunWriter(run_dir, comm, history_columns(config)[len(HISTORY_COLUMNS):])
    if restart_index is None:
        writer.write_text("config.yaml", dump_config(config))
    if comm.rank == 0:
        install_paraview_script(run_dir)
    j_field = postprocess.CurrentDensityField(problem)
    writer.add_fields("phi", [problem.phi])
    writer.add_fields("current_density", [j_field.function])
    if problem.salt is not None:
        writer.add_fields("concentration", [problem.salt.c])
    if vacancies is not None:
        writer.add_fields("vacancies", [vacancies.c_v])
    if solid is not None:
        solid.add_fields(writer)

    def write_fields(t_out: float) -> None:
        j_field.update()
        writer.write_fields(t_out)

    every = config.output.fields_every
    checkpoint_every = config.output.checkpoint_every
    checkpoints = Checkpointer(run_dir, mesh_data, problem, solid, stepper, writer.fields,
                               vacancies) if checkpoint_every else None
    converged, stopped = True, False
    depletion: float | None = None
    critical_stop = False
    failure = ""
    t_solve = 0.0
    t_now, step, successes = 0.0, 0, 0
    t_end = config.time.t_end
    dt = config.time.dt
    targets = breakpoints(config)
    last_written = None
    problem.set_time(min(dt, t_end))
    problem.initial_guess()
    stepper.initial_state()
    if restart_index is not None:
        if checkpoints is None:
            raise RestartError("output.checkpoint_every is 0 in the run's config.yaml: the run "
                               "wrote no checkpoints")
        t = time.perf_counter()
        index = restart_index
        entry = checkpoints.restart_from(index, writer.write_fields)
        t_now, step, successes, dt = (entry["time"], entry["step"], entry["successes"],
                                      entry["next_dt"])
        if index["field_times"] and index["field_times"][-1] == t_now:
            last_written = t_now
        writer.resume(index["history"], t_now)
        timings["restart"] = time.perf_counter() - t
        log.info("restart %d: continuing from the checkpoint of step %d (t = %g s), restored "
                 "and fields rewritten in %.2f s", checkpoints.restarts, step, t_now,
                 timings["restart"])
    first_step = step
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
        result = stepper.attempt(t_try, dt_try)
        t_solve += time.perf_counter() - ts
        if not result.ok:
            successes = 0
            if dt_try > 0 and dt_try / 2 >= config.time.smallest_step:
                dt = dt_try / 2
                log.warning("step at t = %g s (dt = %g s) failed (%s); retrying with dt = %g s",
                            t_try, dt_try, result.reason, dt)
                continue
            converged = False
            failure = f"step {step + 1} (t = {t_try:g} s, dt = {dt_try:g} s): {result.reason}"
            log.error("%s", failure)
            break
        step += 1
        successes += 1
        t_now = t_try
        reports = result.reports
        ec_rep = reports[0]
        profile = postprocess.interface_profile(
            problem, vacancies.profile_field() if vacancies is not None else None)
        scalars = postprocess.step_scalars(problem, profile)
        row = {"step": step, "time": t_now, "dt": dt_try, **scalars,
               "newton_its": ec_rep.newton_its, "krylov_its": ec_rep.krylov_its}
        step_text = ""
        if solid is not None:
            row.update(solid.scalars(reports[1]))
            row["coupling_its"] = result.coupling_its
            step_text = (f"  mech newton {reports[1].newton_its:2d} krylov "
                         f"{reports[1].krylov_its:4d}  coupling {result.coupling_its:2d}  "
                         f"max p_Li = {row['max_p_li']:.4g} Pa")
        if vacancies is not None:
            row.update(vacancies.scalars())
            step_text += (f"  vacancy newton {vacancies.newton_its:2d}  max c_v = "
                          f"{row['c_v_interface_max']:.4g} mol/m^3")
        writer.add_step(row, profile)
        done = t_end == 0 or t_now >= t_end * (1 - 1e-12)
        if problem.salt is not None and not done:
            depletion = _salt_depletion(problem.salt, writer.history)
        if vacancies is not None and vacancies.check_critical(writer.history):
            critical_stop = vacancies.stop_at_critical and not done
        stopped = depletion is not None or critical_stop
        if (every and step % every == 0) or done or stopped:
            write_fields(t_now)
            last_written = t_now
            if checkpoints is not None:
                checkpoints.save_fields(t_now, writer.history)
        log.info("step %4d  t = %-10.4g dt = %-9.3g newton %2d  krylov %4d  V_we = %+.6e V  "
                 "focusing = %.4f%s", step, t_now, dt_try, ec_rep.newton_its, ec_rep.krylov_its,
                 scalars["V_we"], scalars["focusing_factor"], step_text)
        if not done:
            dt = _next_step(config, dt_try, dt, result, successes)
        stopped = stopped or (not done and stop_after is not None
                              and step - first_step >= stop_after)
        if checkpoints is not None and (step % checkpoint_every == 0 or done or stopped):
            checkpoints.save_state(LoopState(step, t_now, dt, successes), writer.history)
        if done:
            break
        if depletion is not None:
            log.warning("the salt is depleted at the interface (smallest concentration %.3g "
                        "mol/m^3 < transport.depletion_fraction * c0): the electrolyte cannot "
                        "carry this current any longer. Sand's time (surface concentration 0, "
                        "extrapolated linearly in sqrt(t)) = %.6g s; the run stops here",
                        row["c_min_interface"], depletion)
            break
        if critical_stop:
            log.warning("the run stops here, at the vacancy criterion "
                        "(vacancies.stop_at_critical)")
            break
        if stopped:
            log.info("stopped after %d steps as asked, at t = %g s of %g s; continue with: "
                     "ecm-fem run --restart %s", stop_after, t_now, t_end, run_dir)
            break
    if not converged and step and last_written != t_now:
        write_fields(t_now)  # the unknowns hold the last accepted state
    writer.close()
    stepper.destroy()
    solver.destroy()
    if vacancies is not None:
        vacancies.destroy()
    if solid is not None:
        solid.destroy()
    timings["solve"] = t_solve
    timings["total"] = time.perf_counter() - t0

    summary: dict[str, Any] = dict(writer.history[-1]) if writer.history else {}
    summary.update({
        "converged": converged,
        "complete": converged and not stopped,
        "failure": failure or None,
        **({"salt_depletion_time": depletion} if problem.salt is not None else {}),
        **(vacancies.summary(writer.history) if vacancies is not None else {}),
        "steps": step,
        "restarts": checkpoints.restarts if checkpoints is not None else 0,
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


def _salt_depletion(salt: SaltTransport, history: list[dict[str, Any]]) -> float | None:
    """Sand's time [s] once the smallest interface concentration of the last step is below
    transport.depletion_fraction * c0, else None (physics.transport.depletion_time)."""
    c_stop = salt.depletion_fraction * salt.c0
    if history[-1]["c_min_interface"] > c_stop:
        return None
    times = [0.0] + [row["time"] for row in history]
    c_min = [salt.c0] + [row["c_min_interface"] for row in history]
    return depletion_time(np.array(times), np.array(c_min), c_stop)


def _next_step(config: RunConfig, dt_done: float, dt: float, result: StepResult,
               successes: int) -> float:
    """The next step: after a cut it grows back (x2, after 4 successful steps at the cut size)
    towards time.dt; with time.adaptive it grows by 1.5 after easy steps (each Newton solve
    <= 10 iterations, backtracking Newton on creeping Li takes 7-15, and <= 5 coupling
    iterations) up to time.dt_max and shrinks by 0.7 after hard ones (a solve >= 25 iterations
    or >= 15 coupling iterations)."""
    dt = max(dt, dt_done)
    if successes < 4 and dt_done < config.time.dt:
        return dt
    if config.time.adaptive:
        if result.hardest <= 10 and result.coupling_its <= 5:
            dt *= 1.5
        elif result.hardest >= 25 or result.coupling_its >= 15:
            dt *= 0.7
        return float(np.clip(dt, config.time.smallest_step, config.time.largest_step))
    return min(2.0 * dt, config.time.dt)
