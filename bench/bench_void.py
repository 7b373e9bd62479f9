"""Benchmark (not a test): the coupled electro-chemo-mechanics of the interfacial void config at
three mesh refinements, timed.

Loads ``configs/interfacial_void_li_llzo.yaml``, adds the default ``mechanics`` section with
``kinetics.stress_coupling: normal_traction`` (so the two-way coupled step is what is timed) and
a fixed number of time steps, then runs it with ``geometry.mesh_size`` and
``geometry.interface_mesh_size`` (and with them the void-edge size, interface_mesh_size / 4)
scaled by each factor. Per refinement it reports cells, dofs per field and in total, accepted
steps, mean Newton iterations per step (current distribution and mechanics, summed over the
coupling iterations of the step, as in history.csv), mean Krylov iterations per step, mean
coupling iterations per step, mesh and setup time (setup includes any form compilation) and the
solve time per step, also per 1000 dofs, and, as a check that every level ran the same
problem, the focusing factor and the largest Li pressure of the last step. Times are wall-clock
seconds on rank 0 (the run's own timers: the solve time counts the coupled step attempts only,
not output).

Run it from the repository root, with any number of ranks:

    make exec CMD="mpirun -n 2 python3 bench/bench_void.py -o .cache/bench"

(with ``ECM_FEM_IMAGE=ecm_fem:latest`` and ``PYTHONPATH=$PWD`` in CMD to time the working
tree). Rank 0 writes ``<out>/bench_void.csv``, ``<out>/bench_void.md`` (the Markdown table it
also prints) and one run folder per refinement, ``<out>/level_<k>``; file names do not depend
on the number of ranks (the rank count is a column). Before the timed runs, a one-step run of
the coarsest mesh (``<out>/warmup``) fills the JIT cache so that the first refinement's setup
time is not compile time (``--no-warmup`` skips it). ``--set KEY=VALUE`` changes the config as for
``ecm-fem run`` (e.g. ``--set kinetics.stress_coupling=none`` for the one-way coupled problem).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

from ecm_fem.config import RunConfig, load_config, parse_overrides
from ecm_fem.simulation import run
from ecm_fem.solver import SolverError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "interfacial_void_li_llzo.yaml"
log = logging.getLogger("ecm_fem")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default=".cache/bench", help="output folder")
    p.add_argument("--config", default=str(CONFIG), help="config to time (default: the void)")
    p.add_argument("--factors", default="1,0.5,0.25",
                   help="mesh-size factors, comma separated (default 1,0.5,0.25)")
    p.add_argument("--steps", type=int, default=3, help="time steps per run (default 3)")
    p.add_argument("--dt", type=float, default=1.0, help="time step [s] (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="further config overrides, as for ecm-fem run")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed one-step run that fills the JIT cache")
    p.add_argument("-v", "--verbose", action="store_true", help="log every step of every run")
    return p.parse_args(argv)


def bench_config(path: str, factor: float, steps: int, dt: float,
                 extra: list[str]) -> RunConfig:
    """The config at mesh-size ``factor``: coupled mechanics, ``steps`` steps of ``dt``."""
    user = parse_overrides(extra)
    base = load_config(path, user)
    coupled: list[tuple[str, Any]] = []
    if base.mechanics is None:
        coupled.append(("mechanics", {}))
    if base.kinetics.stress_coupling.value == "none" \
            and "kinetics.stress_coupling" not in dict(user):
        coupled.append(("kinetics.stress_coupling", "normal_traction"))
    geo = base.geometry
    sizing: list[tuple[str, Any]] = [
        ("geometry.mesh_size", geo.mesh_size * factor),
        ("geometry.interface_mesh_size", geo.interface_mesh_size * factor),
        ("time.t_end", steps * dt), ("time.dt", dt), ("time.adaptive", False),
        ("output.fields_every", 0),
    ]
    void_size = getattr(geo, "void_mesh_size", None)
    if void_size is not None:
        sizing.append(("geometry.void_mesh_size", void_size * factor))
    return load_config(path, coupled + user + sizing)


def read_history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def mean(rows: list[dict[str, str]], key: str) -> float:
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "", "nan")]
    return sum(values) / len(values) if values else float("nan")


def measure(config: RunConfig, run_dir: Path, comm: MPI.Comm, factor: float) -> dict[str, Any]:
    """Run ``config`` into ``run_dir``; one table row (complete on rank 0)."""
    t = time.perf_counter()
    failure = ""
    try:
        summary = run(config, run_dir, comm, overwrite=True)
    except SolverError as exc:
        failure = str(exc)
        summary = {}
    wall = time.perf_counter() - t
    if comm.rank != 0:
        return {}
    if not summary:  # the run stopped: its summary.json holds what it had
        summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_history(run_dir)
    dofs: dict[str, int] = summary["dofs"]
    total = sum(dofs.values())
    steps = int(summary["steps"])
    timings = summary["timings"]
    per_step = timings["solve"] / steps if steps else float("nan")
    row: dict[str, Any] = {
        "factor": factor,
        "h_interface_um": config.geometry.interface_mesh_size * 1e6,
        "ranks": comm.size,
        "cells": summary["cells"],
        **{f"dofs_{name}": n for name, n in dofs.items()},
        "dofs_total": total,
        "steps": steps,
        "newton_ec": mean(rows, "newton_its"),
        "newton_mech": mean(rows, "newton_its_mech"),
        "krylov_ec": mean(rows, "krylov_its"),
        "krylov_mech": mean(rows, "krylov_its_mech"),
        "coupling": mean(rows, "coupling_its"),
        "mesh_s": timings["mesh"],
        "setup_s": timings["setup"],
        "solve_s_per_step": per_step,
        "solve_s_per_step_per_kdof": per_step / (total / 1000.0),
        "wall_s": wall,
        "focusing": summary.get("focusing_factor", float("nan")),
        "max_p_li_MPa": summary.get("max_p_li", float("nan")) / 1e6,
        "converged": bool(summary.get("converged", not failure)),
    }
    return row


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def tables(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(CSV, Markdown) of the rows; columns are the union in first-seen order."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    md = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(_fmt(r.get(k, "")) for k in columns) + " |" for r in rows]
    return out.getvalue(), "\n".join(md) + "\n"


def _setup_logging(rank: int, verbose: bool) -> None:
    log.handlers.clear()
    log.propagate = False
    log.setLevel((logging.INFO if verbose else logging.WARNING) if rank == 0 else logging.ERROR)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)


def _say(comm: MPI.Comm, message: str) -> None:
    if comm.rank == 0:
        print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    comm = MPI.COMM_WORLD
    _setup_logging(comm.rank, args.verbose)
    out = Path(args.output)
    factors = [float(f) for f in args.factors.split(",")]
    configs = [bench_config(args.config, f, args.steps, args.dt, args.overrides)
               for f in factors]
    _say(comm, f"bench_void: {Path(args.config).name}, factors {factors}, {args.steps} steps of "
         f"{args.dt:g} s, {comm.size} rank(s), output {out}")
    if args.warmup:
        t = time.perf_counter()
        warm = bench_config(args.config, max(factors), 1, args.dt, args.overrides)
        try:
            run(warm, out / "warmup", comm, overwrite=True)
        except SolverError as exc:
            _say(comm, f"warm-up run failed (continuing): {exc}")
        _say(comm, f"warm-up (JIT cache): {time.perf_counter() - t:.1f} s")
    rows = []
    for k, (factor, config) in enumerate(zip(factors, configs, strict=True)):
        row = measure(config, out / f"level_{k}", comm, factor)
        if comm.rank == 0:
            rows.append(row)
            _say(comm, f"level {k} (factor {factor:g}): {row['cells']} cells, "
                 f"{row['dofs_total']} dofs, {row['steps']} steps, "
                 f"{row['solve_s_per_step']:.2f} s/step, wall {row['wall_s']:.1f} s"
                 + ("" if row["converged"] else "  NOT CONVERGED"))
    if comm.rank == 0:
        text_csv, text_md = tables(rows)
        (out / "bench_void.csv").write_text(text_csv)
        (out / "bench_void.md").write_text(text_md)
        print("\n" + text_md, flush=True)
    ok = comm.bcast(all(r["converged"] for r in rows) if comm.rank == 0 else None, root=0)
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
