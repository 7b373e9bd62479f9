"""MPI-safe pytest fixtures: every rank gets the same temporary folder, and every test ends with
garbage collection and a barrier (the DOLFINx test-suite pattern), so collective destructors
and files written by rank 0 are in step. Tests marked ``serial_only`` (they launch mpirun
themselves) are skipped when the suite itself runs under mpirun.

A watchdog ends any test that runs longer than ECM_FEM_TEST_TIMEOUT seconds (default 600; the
slowest test takes about 40 s): it prints every thread's Python stack to stderr and exits the
process with status 1, so mpirun stops the other ranks. A rank that waits in a collective call
another rank never makes (after a failure on that rank alone) then fails the stage with the
place it waited, instead of holding the suite until CI's own time limit."""

from __future__ import annotations

import faulthandler
import gc
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mpi4py import MPI

import pytest

REPO = Path(__file__).resolve().parents[1]
# adios2 keeps the bindings of its first import for the whole process, and picks the serial ones
# outside mpirun; adios4dolfinx (checkpoints) then fails to import ("ADIOS2 must be built with
# MPI support") in any test that runs after one that read a VTX file with adios2.
os.environ.setdefault("ADIOS2_ALWAYS_USE_MPI", "1")
TEST_TIMEOUT = float(os.environ.get("ECM_FEM_TEST_TIMEOUT", "600"))


def pytest_collection_modifyitems(config, items):
    if MPI.COMM_WORLD.size > 1:
        skip = pytest.mark.skip(reason="launches mpirun itself: run in the serial pass")
        for item in items:
            if "serial_only" in item.keywords:
                item.add_marker(skip)


_watchdog_fd: int | None = None


def pytest_configure(config):
    """The watchdog's output: the descriptor docker/pytest_rank.sh keeps for a rank whose own
    stderr goes to a log, else a copy of stderr taken while pytest's capture is off."""
    global _watchdog_fd
    inherited = os.environ.get("ECM_FEM_WATCHDOG_FD")
    _watchdog_fd = int(inherited) if inherited else os.dup(2)


@pytest.fixture(autouse=True)
def _collective_teardown():
    faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True, file=_watchdog_fd)
    yield
    gc.collect()
    MPI.COMM_WORLD.barrier()
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def shared_tmp(request) -> Path:
    """A temporary folder, the same path on every rank, removed after the test."""
    comm = MPI.COMM_WORLD
    path = tempfile.mkdtemp(prefix="ecm_fem_test_") if comm.rank == 0 else None
    path = Path(comm.bcast(path, root=0))
    yield path
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    """The environment for a child mpirun: without the singleton MPI state of this process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_COMM", "OMPI_MCA_ess", "PMIX_", "PRTE_", "OMPI_FILE"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: list[str], nprocs: int = 1, timeout: float = 300, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``ecm-fem ARGS`` as a subprocess, under ``mpirun -n nprocs`` when nprocs > 1."""
    cmd = [sys.executable, "-m", "ecm_fem.cli", *args]
    if nprocs > 1:
        cmd = ["mpirun", "-n", str(nprocs), "--oversubscribe", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=_clean_env(), cwd=cwd or REPO)


def run_and_wait(config, folder, **kwargs) -> dict:
    """``simulation.run`` of ``config`` into ``folder`` on all ranks; returns when rank 0 has
    written its files."""
    from ecm_fem.simulation import run

    summary = run(config, folder, MPI.COMM_WORLD, **kwargs)
    MPI.COMM_WORLD.barrier()
    return summary


def history(folder):
    """history.csv of the run in ``folder`` as a NumPy record array."""
    import numpy as np

    return np.genfromtxt(folder / "history.csv", delimiter=",", names=True)


def tagged_measure(msh, tags, kind: str, tag: int, axisymmetric: bool = False) -> float:
    """Global measure (length, area or volume) of the entities tagged ``tag`` for the UFL
    integral type ``kind`` (dx, ds, dS) of ``msh``; ``axisymmetric``: of the body of
    revolution about x = 0 (weighted by 2 pi r)."""
    import ufl
    from dolfinx import fem

    from ecm_fem.axisymmetry import weigh

    m = ufl.Measure(kind, domain=msh, subdomain_data=tags)
    form = weigh(1.0 * m(tag), axisymmetric)
    return msh.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def penny_measures(radius: float, half_thickness: float) -> tuple[float, float]:
    """Volume and surface of a penny of radius R with a rounded rim of radius r (Pappus: the
    half-stadium section revolved about its axis): pi (R - r)^2 2 r + (pi r^2 / 2) 2 pi
    (R - r + 4 r / (3 pi)) and 2 pi (R - r)^2 + pi r 2 pi (R - r + 2 r / pi)."""
    import math

    R, r = radius, half_thickness
    volume = (math.pi * (R - r) ** 2 * 2 * r
              + math.pi * r ** 2 / 2 * 2 * math.pi * (R - r + 4 * r / (3 * math.pi)))
    area = 2 * math.pi * (R - r) ** 2 + math.pi * r * 2 * math.pi * (R - r + 2 * r / math.pi)
    return volume, area


def config_with(data: dict, **changes):
    """``RunConfig`` of the config dict ``data`` with dotted-key ``changes`` applied
    (``{"geometry.width": 1e-5}``; a missing section is created)."""
    from ecm_fem.config import RunConfig

    for key, value in changes.items():
        node = data
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return RunConfig.model_validate(data)


def solid_setup(config):
    """(mesh data, current distribution solved at t = 0, StepSolid) of ``config``, for tests
    that step the mechanics themselves."""
    from ecm_fem.mesh import generate
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.simulation import build_solver
    from ecm_fem.solid import StepSolid

    md = generate(config)
    ec = CurrentDistribution(config, md)
    ec.set_time(0.0)
    ec.initial_guess()
    build_solver(ec, config).solve()
    return md, ec, StepSolid(config, md)


def resistive_boundaries(geometry: dict, thickness: float, folder: Path,
                         kappa_gb: float) -> tuple[object, float, float]:
    """Plating at 10 A/m^2 through a polycrystalline electrolyte (grains: LLZO's 0.04 S/m) of
    ``thickness`` [m] whose boundaries conduct ``kappa_gb``, with kinetics fast enough (i0 =
    1e5 A/m^2) that V_we is ohmic up to ~1e-7 V: (config, effective conductivity [S/m], grain
    conductivity [S/m])."""
    from ecm_fem import simulation
    from ecm_fem.config import RunConfig
    from ecm_fem.constants import thermal_voltage

    i, i0, kappa = -10.0, 1e5, 0.04
    cfg = RunConfig.model_validate({
        "geometry": geometry, "control": {"current_density": i},
        "kinetics": {"i0": i0, "regions": {"gb": {"i0": i0}}},
        "materials": {"gb": {"base": "llzo", "conductivity": kappa_gb}}})
    s = simulation.run(cfg, folder)
    eta = 2 * thermal_voltage(298.15) * math.asinh(i / (2 * i0))
    return cfg, i * thickness / (s["V_we"] - eta), kappa


def wiener_bounds(fraction: float, kappa: float, kappa_minor: float) -> tuple[float, float]:
    """(harmonic, arithmetic) means of two conductivities, the minor phase taking
    ``fraction`` of the volume: the bounds of any microstructure's effective conductivity."""
    return (1 / ((1 - fraction) / kappa + fraction / kappa_minor),
            (1 - fraction) * kappa + fraction * kappa_minor)
