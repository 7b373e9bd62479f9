"""Everything a run writes, in the layout of ARCHITECTURE.md:

    <dir>/config.yaml  resolved config        <dir>/history.csv   scalars per step
    <dir>/interface.csv  interface profiles   <dir>/summary.json  final scalars, versions, ...
    <dir>/fields/*.bp    ParaView (VTX)       <dir>/run.log       the log
    <dir>/open_in_paraview.py  opens the fields in ParaView (pvpython or the GUI's Python shell)

Small files are written atomically (temporary name, then rename) by rank 0, so a killed run never
leaves a half-written file. An existing run folder is moved aside to ``<dir>.<timestamp>``
instead of being overwritten, unless the caller asks for overwrite.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpi4py import MPI

import numpy as np
from dolfinx import fem
from dolfinx.io import VTXWriter

if TYPE_CHECKING:
    from ecm_fem.config import RunConfig

HISTORY_COLUMNS = ["step", "time", "dt", "V_we", "V_cell", "i_app", "i_mean", "i_max",
                   "focusing_factor", "asr", "contact_fraction", "newton_its", "krylov_its"]
TRANSPORT_COLUMNS = ["c_min_interface", "c_max_interface", "salt_amount"]
VACANCY_COLUMNS = ["c_v_interface_max", "vacancy_amount", "vacancies_absorbed_void",
                   "vacancies_absorbed_collector", "vacancies_injected", "newton_its_vacancy"]
MECHANICS_COLUMNS = ["max_vm_electrolyte", "max_p_li", "max_creep_strain_li",
                     "newton_its_mech", "krylov_its_mech", "coupling_its"]
INTERFACE_COLUMNS = ["time", "x", "y", "z", "i_n", "eta", "U_mech", "dmu_e", "eta_ct",
                     "sigma_nn_li", "p_li", "tau_nn_li", "sigma_nn_electrolyte", "p_electrolyte",
                     "tau_nn_electrolyte", "curvature", "s", "c", "c_v", "region"]


def history_columns(config: RunConfig) -> list[str]:
    """The columns of history.csv for ``config``: HISTORY_COLUMNS, TRANSPORT_COLUMNS with a
    binary electrolyte, VACANCY_COLUMNS with vacancies and, with mechanics,
    MECHANICS_COLUMNS and K_I [Pa m^0.5] and K_I / K_Ic of every crack tip of the geometry."""
    columns = list(HISTORY_COLUMNS)
    if config.transport is not None:
        columns += TRANSPORT_COLUMNS
    if config.vacancies is not None:
        columns += VACANCY_COLUMNS
    if config.mechanics is not None:
        columns += MECHANICS_COLUMNS
        for tip in config.geometry.crack_tips():
            columns += [f"KI_{tip.name}", f"KI_over_KIc_{tip.name}"]
    return columns


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (call on one rank)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


PARAVIEW_SCRIPT = Path(__file__).with_name("open_in_paraview.py")


def install_paraview_script(run_dir: Path) -> None:
    """Copy the standalone ParaView script into the run folder (call on one rank)."""
    write_atomic(Path(run_dir) / PARAVIEW_SCRIPT.name, PARAVIEW_SCRIPT.read_text())


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def prepare_run_dir(path: Path, comm: MPI.Comm, overwrite: bool = False,
                    subfolders: tuple[str, ...] = ("fields",), key: str = "output.dir"
                    ) -> Path | None:
    """Create the run folder (with ``subfolders``). An existing non-empty folder is renamed to
    ``<path>.<stamp>`` (returned) unless ``overwrite``; never deletes results without being
    asked. ``key`` names the setting in the error message."""
    path = Path(path)
    moved: str | None = None
    error: str | None = None
    if comm.rank == 0:
        try:
            if path.exists() and any(path.iterdir()):
                if overwrite:
                    shutil.rmtree(path)
                else:
                    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
                    target = path.with_name(f"{path.name}.{stamp}")
                    k = 1
                    while target.exists():
                        target = path.with_name(f"{path.name}.{stamp}-{k}")
                        k += 1
                    path.rename(target)
                    moved = str(target)
            path.mkdir(parents=True, exist_ok=True)
            for name in subfolders:
                (path / name).mkdir(exist_ok=True)
        except Exception as exc:  # every rank must learn of it, or the others wait in bcast
            error = f"{key}: cannot prepare {path}: {exc}"
    error, moved = comm.bcast((error, moved), root=0)
    if error:
        raise OSError(error)
    return Path(moved) if moved else None


def _cell(column: str, value: float) -> str:
    return str(int(value)) if column == "region" else repr(float(value))


class RunWriter:
    """Collects history and interface rows and writes the run's files (collective calls)."""

    def __init__(self, run_dir: Path, comm: MPI.Comm, extra_history: list[str] | None = None):
        self.dir = run_dir
        self.comm = comm
        self.history_columns = HISTORY_COLUMNS + list(extra_history or [])
        self.history: list[dict[str, Any]] = []
        self._interface = _io.StringIO()
        csv.writer(self._interface).writerow(INTERFACE_COLUMNS)
        self._vtx: list[VTXWriter] = []
        self.fields: dict[str, list[fem.Function]] = {}

    # -- ParaView
    def add_fields(self, name: str, functions: list[fem.Function]) -> None:
        """One VTX file per group of fields that share a function space."""
        path = self.dir / "fields" / f"{name}.bp"
        self._vtx.append(VTXWriter(self.comm, path, functions))
        self.fields[name] = functions

    def write_fields(self, t: float) -> None:
        for w in self._vtx:
            w.write(t)

    # -- tables
    def add_step(self, row: dict[str, Any], profile: dict[str, np.ndarray]) -> None:
        self.history.append(row)
        w = csv.writer(self._interface)
        n = len(profile["x"])
        for k in range(n):
            w.writerow([repr(float(row["time"]))]
                       + [_cell(c, profile[c][k]) for c in INTERFACE_COLUMNS[1:]])
        if self.comm.rank == 0:
            self._flush_tables()

    def resume(self, history: list[dict[str, Any]], t: float) -> None:
        """Continue a restarted run's tables: ``history`` (the rows up to time ``t``) and the
        rows of the folder's interface.csv up to ``t``; later rows (written after the
        checkpoint by the killed run) are dropped."""
        self.history = [dict(row) for row in history if row["time"] <= t]
        if self.comm.rank == 0:
            path = self.dir / "interface.csv"
            lines = path.read_text().splitlines(keepends=True) if path.exists() else []
            self._interface = _io.StringIO()
            csv.writer(self._interface).writerow(INTERFACE_COLUMNS)
            for line in lines[1:]:
                if float(line.split(",", 1)[0]) <= t:
                    self._interface.write(line)
            self._flush_tables()

    def _flush_tables(self) -> None:
        out = _io.StringIO()
        w = csv.DictWriter(out, fieldnames=self.history_columns, extrasaction="ignore")
        w.writeheader()
        for row in self.history:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        write_atomic(self.dir / "history.csv", out.getvalue())
        write_atomic(self.dir / "interface.csv", self._interface.getvalue())

    def write_text(self, name: str, text: str) -> None:
        if self.comm.rank == 0:
            write_atomic(self.dir / name, text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.comm.rank == 0:
            write_atomic(self.dir / "summary.json",
                         json.dumps(json_safe(summary), indent=2, sort_keys=False) + "\n")

    def close(self) -> None:
        for w in self._vtx:
            w.close()
        self._vtx = []
