"""Command line: ``ecm-fem run|validate|mesh|sweep|stability|init|plot|schema|info|warm-cache``.
``main(argv) -> int`` is testable in-process.

Exit codes: 0 success, 1 unexpected error, 2 config error (bad YAML, unknown key, impossible
value), 3 solver failure (the last good state is written); ``sweep`` exits 0 when it completed,
also when some of its runs failed (its table and last line say which). Under MPI every rank
returns the same code; an unexpected error on some ranks only aborts the whole job instead of
hanging it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path

from ecm_fem import __version__

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOLVER = 0, 1, 2, 3

log = logging.getLogger("ecm_fem")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecm-fem",
        description="Finite-element electro-chemo-mechanics of lithium-metal anodes. "
        "Run in parallel with: mpirun -n N ecm-fem run CONFIG.yaml",
    )
    p.add_argument("--version", action="version", version=f"ecm_fem {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log Newton iterations too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run a config; results go to output.dir")
    r.add_argument("config", nargs="?", help="YAML config file (not with --restart)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set control.current_density=-5")
    r.add_argument("-o", "--output", help="output folder (overrides output.dir)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing output folder instead of moving it aside")
    r.add_argument("--restart", metavar="DIR",
                   help="continue the run in output folder DIR from its last checkpoint (on "
                   "any number of ranks, with the config it was started with)")
    r.add_argument("--stop-after", type=int, metavar="N",
                   help="stop after N time steps with a checkpoint (exit code 0), to be "
                   "continued with --restart: for jobs of limited wall time")

    v = sub.add_parser("validate", help="check a config without running it")
    v.add_argument("config")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    m = sub.add_parser("mesh", help="build a config's mesh and report it (cells, tags with their "
                       "measures, element sizes, shape quality); optional preview and export")
    m.add_argument("config")
    m.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    m.add_argument("--png", metavar="FILE", help="write a preview picture (regions and edges)")
    m.add_argument("--window", metavar="X0,X1,Y0,Y1",
                   help="zoom the preview to this box [m], e.g. 0,5e-6,-1e-6,2e-6")
    m.add_argument("--export", metavar="FILE", help="write the mesh with its tags in the "
                   "meshio format of the extension (.vtu, .xdmf, .msh, .inp, ...) [m]")
    m.add_argument("--msh", metavar="FILE",
                   help="write gmsh's own .msh of the model (micrometre model units)")
    m.add_argument("--json", metavar="FILE", help="write the report as JSON")

    from ecm_fem import sweep

    sw = sub.add_parser("sweep", help="run a config over a grid of parameters, or find a "
                        "critical value by bisection; one table and a plot",
                        description="Grid: --param KEY=V1,V2 (repeat for a Cartesian grid). "
                        "Critical: --critical KEY --criterion 'COLUMN>=X' --bracket A B. "
                        "Under mpirun -n N the runs go in parallel, --ranks-per-run ranks each.")
    sweep.add_arguments(sw)

    from ecm_fem import stability

    st = sub.add_parser("stability", help="Monroe-Newman linear stability of a Li | electrolyte "
                        "interface by finite elements: the neutral G_E/G_Li")
    stability.add_arguments(st)

    from ecm_fem import starter

    starter.add_arguments(sub.add_parser("init", help=starter.HELP))

    pl = sub.add_parser("plot", help="(re)make the PNG plots of a run folder")
    pl.add_argument("run_dir", help="output folder of a run")

    s = sub.add_parser("schema", help="print the JSON schema of the config (for editors)")
    s.add_argument("-o", "--output", help="write to this file instead of stdout")

    sub.add_parser("info", help="versions and the materials library with sources")
    sub.add_parser("warm-cache", help="compile the package's standard forms into the JIT cache")
    return p


def _setup_logging(rank: int, verbose: bool) -> None:
    logger = logging.getLogger("ecm_fem")
    logger.handlers.clear()
    logger.propagate = False
    level = logging.DEBUG if verbose or os.environ.get("ECM_FEM_LOG_LEVEL") == "debug" \
        else logging.INFO
    logger.setLevel(level if rank == 0 else logging.ERROR)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)


def _say(comm, message: str, stream=None) -> None:
    if comm.rank == 0:
        print(message, file=stream or sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_OK
    if args.command == "schema":
        return _schema(args)
    if args.command == "plot":
        return _plot(args)

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    _setup_logging(comm.rank, getattr(args, "verbose", False))
    from ecm_fem.config import ConfigError
    from ecm_fem.solver import SolverError

    try:
        if args.command == "run":
            return _run(args, comm)
        if args.command == "validate":
            return _validate(args, comm)
        if args.command == "mesh":
            return _mesh(args, comm)
        if args.command == "sweep":
            from ecm_fem import sweep

            return sweep.main(args, comm)
        if args.command == "stability":
            from ecm_fem import stability

            return stability.main(args, comm)
        if args.command == "init":
            from ecm_fem import starter

            return starter.main(args, comm)
        if args.command == "info":
            return _info(comm)
        if args.command == "warm-cache":
            return _warm_cache(comm)
    except ConfigError as exc:
        _say(comm, f"config error: {exc}")
        return EXIT_CONFIG
    except SolverError as exc:
        _say(comm, f"solver failure: {exc}")
        return EXIT_SOLVER
    except Exception:
        print(f"[rank {comm.rank}] unexpected error:\n{traceback.format_exc()}",
              file=sys.stderr, flush=True)
        if comm.size > 1:
            comm.Abort(EXIT_ERROR)  # the other ranks may be waiting in a collective call
        return EXIT_ERROR
    return EXIT_ERROR


def _load(args):
    from ecm_fem.config import load_config, parse_overrides

    return load_config(args.config, parse_overrides(args.overrides))


def _run(args, comm) -> int:
    from ecm_fem import simulation
    from ecm_fem.config import ConfigError
    from ecm_fem.mesh import GeometryError

    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after: needs a number of steps >= 1, got {args.stop_after}")
    if args.restart:
        if args.config or args.overrides or args.output or args.overwrite:
            raise ConfigError("--restart DIR continues a run with the config in DIR: give "
                              "no config file, --set, -o or --overwrite with it")
        try:
            simulation.restart(Path(args.restart), comm, stop_after=args.stop_after)
        except simulation.RestartError as exc:
            raise ConfigError(f"--restart {args.restart}: {exc}") from None
        log.info("results: %s", args.restart)
        return EXIT_OK
    if not args.config:
        raise ConfigError("ecm-fem run: give a config file (or --restart DIR)")
    config = _load(args)
    run_dir = Path(args.output or config.output.dir)
    try:
        simulation.run(config, run_dir, comm, overwrite=args.overwrite,
                       config_path=str(args.config), stop_after=args.stop_after)
    except simulation.RestartError as exc:
        raise ConfigError(f"--stop-after: {exc}") from None
    except (ValueError, KeyError, GeometryError) as exc:  # validates but cannot be built
        raise ConfigError(str(exc).strip("'\"")) from None
    log.info("results: %s", run_dir)
    return EXIT_OK


def _validate(args, comm) -> int:
    config = _load(args)
    _say(comm, f"{args.config}: valid ({config.geometry.kind} geometry, "
               f"{config.control.mode.value} control)", sys.stdout)
    return EXIT_OK


def _mesh(args, comm) -> int:
    from ecm_fem import meshinfo
    from ecm_fem.config import ConfigError
    from ecm_fem.mesh import GeometryError, generate

    config = _load(args)
    window = None
    if args.window:
        try:
            window = tuple(float(v) for v in args.window.split(","))
        except ValueError:
            window = ()
        if len(window) != 4:
            raise ConfigError(f"--window {args.window}: expected X0,X1,Y0,Y1 in metres")
    try:
        md = generate(config, comm, msh_path=args.msh)
    except GeometryError as exc:
        raise ConfigError(str(exc)) from None
    rep = meshinfo.report(md, config.axisymmetric)
    _say(comm, f"{args.config}: {config.geometry.kind} geometry\n{rep.format()}", sys.stdout)
    if args.json and comm.rank == 0:
        Path(args.json).write_text(json.dumps(rep.as_dict(), indent=2) + "\n")
    if args.export:
        meshinfo.export(md, args.export)
        _say(comm, f"wrote {args.export}", sys.stdout)
    if args.png:
        meshinfo.preview(md, args.png, window)
        _say(comm, f"wrote {args.png}", sys.stdout)
    return EXIT_OK


def _plot(args) -> int:
    from ecm_fem.plots import PlotError, make_plots

    try:
        for path in make_plots(args.run_dir):
            print(path)
    except PlotError as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _schema(args) -> int:
    from ecm_fem.config import RunConfig

    text = json.dumps(RunConfig.model_json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _info(comm) -> int:
    from ecm_fem.materials import LIBRARY, PROPERTIES
    from ecm_fem.simulation import versions

    if comm.rank == 0:
        for k, v in versions().items():
            print(f"{k:10s} {v}")
        print(f"{'ranks':10s} {comm.size}\n\nmaterials library (SI units):")
        for m in LIBRARY.values():
            print(f"  {m.name}")
            for p in PROPERTIES:
                value = getattr(m, p)
                if value is not None:
                    print(f"    {p:16s} {value:<12g} {m.sources.get(p, '')}")
    return EXIT_OK


def _warm_cache(comm) -> int:
    from ecm_fem import simulation
    from ecm_fem.config import RunConfig

    coarse = {"width": 1e-5, "li_thickness": 1e-5, "electrolyte_thickness": 1e-5,
              "mesh_size": 5e-6, "interface_mesh_size": 5e-6}
    with tempfile.TemporaryDirectory() as tmp:
        for degree in (1, 2):
            for counter in ("reference", "butler_volmer"):
                cfg = RunConfig.model_validate({
                    "name": "warm", "geometry": coarse,
                    "discretisation": {"phi_degree": degree}, "counter": {"kind": counter}})
                simulation.run(cfg, Path(tmp) / f"p{degree}{counter}", comm)
    log.info("JIT cache warm (%s)", os.environ.get("XDG_CACHE_HOME", "~/.cache"))
    return EXIT_OK


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
