"""Checkpoint and restart of a run (adios4dolfinx), on any number of ranks.

``<run>/checkpoint/`` holds, written with ``adios4dolfinx.write_function_on_input_mesh`` (the
mesh's input ordering, so any number of ranks can read them back):

- ``state.a.bp`` / ``state.b.bp``: the whole state after a step, every ``output.checkpoint_every``
  steps, written in turn into the file that does not hold the last complete one;
- ``fields.bp``: a copy of every field output (the functions of ``fields/*.bp``), from which a
  restart rewrites the ParaView time series up to the restart time, so that the series
  continues in one file whatever the rank counts of the two runs;
- ``index.json``: written atomically after each of those, it names the complete state file,
  the checkpoints with the time loop's scalars, the field-output times and the history rows. A
  run killed while writing restarts from the previous checkpoint.

The state of a step is everything the next step starts from: phi, V_we (and eta_ct with an SEI
film, the salt concentration c of a binary electrolyte, the Li-vacancy concentration c_v and
the time the vacancy criterion was met), the interface coupling fields U_mech and dmu_e, and
with mechanics the displacement, the
committed creep strain and equivalent creep strain, the stress at the quadrature points, the
growth eigenstrain and (monolithic scheme) the growth currents. The mesh is rebuilt from the
run's resolved config.yaml (gmsh is deterministic) and checked against the checkpoint's global
cell count and vertex-coordinate sum.

Functions on the ion and Li submeshes have no input ordering of their own (DOLFINx 0.9 keeps
none for submeshes); they are written through a function of the same element on the parent
mesh.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpi4py import MPI

import numpy as np
from dolfinx import fem

from ecm_fem.io import write_atomic
from ecm_fem.postprocess import real_value

if TYPE_CHECKING:
    from ecm_fem.coupling import CoupledStep
    from ecm_fem.mesh import MeshData
    from ecm_fem.monolithic import MonolithicStep
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.solid import StepSolid
    from ecm_fem.vacancies import LiVacancies

FOLDER = "checkpoint"
STATE_FILES = ("state.a.bp", "state.b.bp")
FIELDS = "fields.bp"
INDEX = "index.json"
FORMAT = 1


class RestartError(RuntimeError):
    """A run folder that cannot be restarted; the message says why."""


@dataclass
class LoopState:
    """The time loop's scalars after an accepted step."""

    step: int
    time: float
    next_dt: float
    successes: int


def read_index(run_dir: Path, comm: MPI.Comm) -> dict[str, Any]:
    """The checkpoint index of ``run_dir`` (read on rank 0, the same on every rank)."""
    error, index = None, None
    if comm.rank == 0:
        path = Path(run_dir) / FOLDER / INDEX
        try:
            index = json.loads(path.read_text())
            if index.get("format") != FORMAT:
                error = f"{path}: not an ecm_fem checkpoint index of format {FORMAT}"
            elif not index.get("checkpoints"):
                error = (f"{run_dir} stopped before its first checkpoint (every "
                         "output.checkpoint_every steps): run it again from the start")
        except FileNotFoundError:
            error = (f"{run_dir} has no checkpoint ({FOLDER}/{INDEX} missing): it is not a "
                     "run folder of ecm-fem run, or output.checkpoint_every was 0")
        except (OSError, ValueError) as exc:
            error = f"{path}: cannot read the checkpoint index: {exc}"
    error, index = comm.bcast((error, index), root=0)
    if error:
        raise RestartError(error)
    return index


def mesh_fingerprint(mesh_data: MeshData) -> list[float]:
    """Global cell count and sum of the vertex coordinates: the same on any number of ranks
    for the same mesh."""
    msh = mesh_data.mesh
    n_local = msh.geometry.index_map().size_local
    total = msh.comm.allreduce(float(np.sum(msh.geometry.x[:n_local, :msh.geometry.dim])),
                               op=MPI.SUM)
    return [float(msh.topology.index_map(msh.topology.dim).size_global), total]


class Checkpointer:
    """Writes and reads the state and the field outputs of a run (collective calls).
    ``output_fields`` are the functions of the run's ParaView files by file name."""

    def __init__(self, run_dir: Path, mesh_data: MeshData, ec: CurrentDistribution,
                 solid: StepSolid | None, stepper: CoupledStep | MonolithicStep,
                 output_fields: dict[str, list[fem.Function]],
                 vacancies: LiVacancies | None = None):
        self.dir = Path(run_dir) / FOLDER
        self.comm = mesh_data.mesh.comm
        self.mesh = mesh_data.mesh
        self.ec, self.solid, self.stepper = ec, solid, stepper
        self.vacancies = vacancies
        self.output_fields = {f"{group}.{f.name}": f
                              for group, functions in output_fields.items() for f in functions}
        self.fingerprint = mesh_fingerprint(mesh_data)
        self.index: dict[str, Any] = {"format": FORMAT, "mesh": self.fingerprint, "state": None,
                                      "fields": FIELDS, "restarts": 0, "checkpoints": [],
                                      "field_times": [], "history": []}
        # submesh -> (its cells, their parent cells), owned and ghost
        self._submeshes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for region in [mesh_data.ion] + ([vacancies.li] if vacancies is not None else []):
            cells = region.mesh.topology.index_map(region.mesh.topology.dim)
            n_sub = cells.size_local + cells.num_ghosts
            self._submeshes[id(region.mesh)] = (
                np.arange(n_sub, dtype=np.int32),
                np.asarray(region.cell_map[:n_sub], dtype=np.int32))
        self._carriers: dict[Any, fem.Function] = {}
        if self.comm.rank == 0:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.comm.barrier()

    @property
    def restarts(self) -> int:
        return int(self.index["restarts"])

    # -- what the state is
    def _state_functions(self) -> dict[str, fem.Function]:
        ec = self.ec
        functions = {"phi": ec.phi, "U_mech": ec.U_mech, "dmu_e": ec.dmu_e}
        if ec.eta_ct_function is not None:
            functions["eta_ct"] = ec.eta_ct_function
        if ec.salt is not None:
            functions["c"] = ec.salt.c
        if self.vacancies is not None:
            functions["c_v"] = self.vacancies.c_v
        if self.solid is not None:
            p = self.solid.problem
            functions.update({"u": p.u, "creep_strain": p.inelastic.creep_strain_n,
                              "equivalent_creep_strain": p.inelastic.p_n,
                              "stress": p.inelastic.stress})
            if p.growth is not None:
                functions["growth_strain"] = p.growth.eps_g
        return functions

    def _scalars(self) -> dict[str, Any]:
        scalars: dict[str, Any] = {"V_we": real_value(self.ec.V_we)}
        growth_currents = getattr(self.stepper, "j", None)
        if growth_currents is not None:
            scalars["growth_currents"] = [float(v) for v in growth_currents]
        if self.vacancies is not None:
            scalars.update(self.vacancies.checkpoint_scalars())
        return scalars

    # -- writing
    def save_state(self, loop: LoopState, history: list[dict[str, Any]]) -> None:
        """Write the whole state after the step ``loop`` into the state file that does not hold
        the last complete one, then name it in the index."""
        name = STATE_FILES[1] if self.index["state"] == STATE_FILES[0] else STATE_FILES[0]
        if self.comm.rank == 0:
            shutil.rmtree(self.dir / name, ignore_errors=True)
        self.comm.barrier()
        self._write(self.dir / name, self._state_functions(), loop.time)
        self.index["state"] = name
        self.index["checkpoints"] = [{"time": loop.time, "step": loop.step,
                                      "next_dt": loop.next_dt, "successes": loop.successes,
                                      **self._scalars()}]
        self._write_index(history)

    def save_fields(self, t: float, history: list[dict[str, Any]]) -> None:
        """Append the field output at time ``t`` to the fields file."""
        self._write(self.dir / self.index["fields"], self.output_fields, t)
        self.index["field_times"].append(t)
        self._write_index(history)

    def _write(self, path: Path, functions: dict[str, fem.Function], t: float) -> None:
        import adios4dolfinx

        for name, f in functions.items():
            adios4dolfinx.write_function_on_input_mesh(path, self._on_parent(f), time=t,
                                                       name=name)

    def _write_index(self, history: list[dict[str, Any]]) -> None:
        self.index["history"] = history
        self.comm.barrier()  # every rank's data is in the files before the index names them
        if self.comm.rank == 0:
            # NaN stays NaN (Python's JSON extension): the restored history equals the original
            write_atomic(self.dir / INDEX, json.dumps(self.index, default=_plain) + "\n")

    def _carrier(self, f: fem.Function) -> fem.Function:
        """The function on the parent mesh with the element of ``f`` (of a submesh)."""
        element = f.function_space.ufl_element()
        if element not in self._carriers:
            self._carriers[element] = fem.Function(fem.functionspace(self.mesh, element))
        return self._carriers[element]

    def _on_parent(self, f: fem.Function) -> fem.Function:
        cells = self._submeshes.get(id(f.function_space.mesh))
        if cells is None:
            return f
        carrier = self._carrier(f)
        carrier.x.array[:] = 0.0
        carrier.interpolate(f, cells0=cells[0], cells1=cells[1])
        return carrier

    # -- reading
    def _read(self, path: Path, functions: dict[str, fem.Function], t: float) -> None:
        import adios4dolfinx

        for name, f in functions.items():
            cells = self._submeshes.get(id(f.function_space.mesh))
            if cells is not None:
                carrier = self._carrier(f)
                adios4dolfinx.read_function(path, carrier, time=t, name=name)
                f.interpolate(carrier, cells0=cells[1], cells1=cells[0])
            else:
                adios4dolfinx.read_function(path, f, time=t, name=name)
            f.x.scatter_forward()

    def restart_from(self, index: dict[str, Any],
                     write_fields: Callable[[float], None]) -> dict[str, Any]:
        """Set the state to the index's checkpoint and return its entry.

        The field outputs up to the checkpoint are read back and written again through
        ``write_fields(t)`` (the ParaView files) and into a new fields file; the index names
        the new file only when it is complete, then the old one is removed, so a restart
        killed on the way can be restarted again."""
        self.check_mesh(index)
        entry = index["checkpoints"][-1]
        t_restart = entry["time"]
        old_fields = self.dir / index["fields"]
        restarts = int(index["restarts"]) + 1
        self.index.update({"state": index["state"], "restarts": restarts,
                           "checkpoints": index["checkpoints"],
                           "fields": f"fields.r{restarts}.bp", "field_times": []})
        if self.comm.rank == 0:
            shutil.rmtree(self.dir / self.index["fields"], ignore_errors=True)
        self.comm.barrier()
        for t in index["field_times"]:
            if t <= t_restart:
                self._read(old_fields, self.output_fields, t)
                write_fields(t)
                self._write(self.dir / self.index["fields"], self.output_fields, t)
                self.index["field_times"].append(t)
        self._read(self.dir / index["state"], self._state_functions(), t_restart)
        self._restore_scalars(entry)
        self._write_index(index["history"])
        if self.comm.rank == 0:
            shutil.rmtree(old_fields, ignore_errors=True)
        return entry

    def _restore_scalars(self, entry: dict[str, Any]) -> None:
        """The state derived from the read functions, and the scalars of ``entry``."""
        self.ec.V_we.x.array[:] = entry["V_we"]
        self.ec.commit()
        if self.solid is not None:
            p = self.solid.problem
            inelastic = p.inelastic
            inelastic.creep_strain.x.array[:] = inelastic.creep_strain_n.x.array
            inelastic.p.x.array[:] = inelastic.p_n.x.array
            if p.growth is not None:
                p.growth.commit()
            p.dt = 0.0
            self.solid.stress.update()
        if "growth_currents" in entry:
            self.stepper.j = np.asarray(entry["growth_currents"], dtype=float)
        if self.vacancies is not None:
            self.vacancies.restore_scalars(entry)

    def check_mesh(self, index: dict[str, Any]) -> None:
        cells, total = index["mesh"]
        now_cells, now_total = self.fingerprint
        if cells != now_cells or not math.isclose(total, now_total, rel_tol=1e-12):
            raise RestartError(
                f"the mesh built from the run's config.yaml ({int(now_cells)} cells) is not the "
                f"mesh of the checkpoint ({int(cells)} cells, or other vertices): was the "
                "run folder's config.yaml edited, or is this another gmsh version?")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
