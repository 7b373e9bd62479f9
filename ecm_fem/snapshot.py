"""``plots/fields.png``: the fields at the last output time, read back from the VTX files in
``fields/`` (so ``ecm-fem plot DIR`` remakes it from the folder alone, whatever the number of
ranks that wrote it): the electrolyte potential phi, the current density magnitude |i| and, with
mechanics, the von Mises stress. 2D meshes are drawn whole; a 3D mesh is drawn on its face
z = min z (the symmetry plane through the defect of the 3D builders, see
``geometry/interfacial_void.py``), with the field's values on that face.

A dolfinx VTX file holds one block per writing rank and output time, each with its own
``geometry`` (N, 3), ``connectivity`` (M, 1 + nodes: the node count, then the VTK Lagrange
nodes, vertices first) and arrays with one value per node (point data) or per cell (cell data,
DG0). Blocks overlap by the ghost cells, which are drawn twice with equal values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERTICES = {69: 3, 71: 4, 5: 3, 10: 4}  # VTK Lagrange triangle / tetrahedron, linear ones


@dataclass
class VTXStep:
    """One output time of a VTX file, all blocks merged."""

    time: float
    points: np.ndarray  # (N, 3) [m]
    cells: np.ndarray  # (M, 3 or 4) vertex node indices
    values: np.ndarray  # (N,) or (M,) magnitude of the array
    on_cells: bool


class SnapshotError(ValueError):
    """A VTX file is missing, unreadable or of a kind this figure does not draw."""


def read_vtx(path: Path, name: str, step: int = -1) -> VTXStep:
    """Array ``name`` (its magnitude if it is a vector or tensor) at output ``step`` of the VTX
    file ``path``, with the mesh it lives on."""
    import os

    from mpi4py import MPI  # noqa: F401  (the MPI bindings need MPI initialised)

    # The bindings chosen at the first import of adios2 stay for the process. Without this,
    # adios2 picks its serial bindings outside mpirun, and adios4dolfinx (checkpoints), which
    # asks for the MPI ones the same way, then fails to import in this process.
    os.environ.setdefault("ADIOS2_ALWAYS_USE_MPI", "1")
    import adios2

    if not path.is_dir():
        raise SnapshotError(f"{path}: no such VTX file")
    with adios2.FileReader(str(path)) as reader:
        n_steps = reader.num_steps()
        if n_steps == 0:
            raise SnapshotError(f"{path}: no output times")
        if name not in reader.available_variables():
            raise SnapshotError(f"{path}: no array {name!r}")
        step = step % n_steps
        sel = [step, 1]
        blocks = len(reader.all_blocks_info("geometry")[step])
        cell_type = int(np.ravel(reader.read("types", step_selection=sel))[0])
        if cell_type not in VERTICES:
            raise SnapshotError(f"{path}: VTK cell type {cell_type} is not drawn")
        points, cells, values = [], [], []
        offset = 0
        for b in range(blocks):
            x = reader.read("geometry", block_id=b, step_selection=sel).reshape(-1, 3)
            conn = reader.read("connectivity", block_id=b, step_selection=sel)
            conn = conn.reshape(len(conn), -1)[:, 1:1 + VERTICES[cell_type]]
            v = reader.read(name, block_id=b, step_selection=sel)
            v = v.reshape(len(v), -1)
            points.append(x)
            cells.append(conn + offset)
            values.append(np.linalg.norm(v, axis=1) if v.shape[1] > 1 else v[:, 0])
            offset += len(x)
        time = float(np.ravel(reader.read("step", step_selection=sel))[0])
    points, cells, values = np.vstack(points), np.vstack(cells), np.concatenate(values)
    on_cells = len(values) == len(cells) and len(values) != len(points)
    if not on_cells and len(values) != len(points):
        raise SnapshotError(f"{path}: {name!r} has {len(values)} values for {len(points)} nodes"
                            f" and {len(cells)} cells")
    return VTXStep(time, points, cells, values, on_cells)


def plane_section(data: VTXStep) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, triangles, values) to draw: (x, y) of a 2D mesh, or (x, y) on the face
    z = min z of a 3D mesh (triangles of tetrahedra with three vertices on it)."""
    pts, cells = data.points, data.cells
    if cells.shape[1] == 3:
        return pts[:, 0], pts[:, 1], cells, data.values
    z0 = pts[:, 2].min()
    tol = 1e-9 * max(np.ptp(pts, axis=0).max(), 1e-300)
    on_face = np.abs(pts[:, 2] - z0) <= tol
    triangles, owner = [], []
    for drop in range(4):
        face = np.delete(cells, drop, axis=1)
        hit = np.all(on_face[face], axis=1)
        triangles.append(face[hit])
        owner.append(np.flatnonzero(hit))
    triangles, owner = np.vstack(triangles), np.concatenate(owner)
    if len(triangles) == 0:
        raise SnapshotError("the 3D mesh has no flat face at z = min z to draw")
    values = data.values[owner] if data.on_cells else data.values
    return pts[:, 0], pts[:, 1], triangles, values


# (file, array, title, unit scale, unit, log colour scale) of each panel, when the file exists
PANELS = [
    ("phi.bp", "phi", "electrolyte potential phi", 1e3, "mV", False),
    ("current_density.bp", "current_density", "current density |i|", 1.0, "A/m$^2$", True),
    ("concentration.bp", "c", "salt concentration c", 1.0, "mol/m$^3$", False),
    ("vacancies.bp", "c_v", "Li-vacancy concentration c_v", 1.0, "mol/m$^3$", False),
    ("stress_measures.bp", "von_mises", "von Mises stress", 1e-6, "MPa", True),
]


def field_figure(run_dir: Path):
    """A matplotlib figure with one panel per field of PANELS found in ``run_dir/fields``."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.tri import Triangulation

    found = [(p, read_vtx(run_dir / "fields" / p[0], p[1])) for p in PANELS
             if (run_dir / "fields" / p[0]).is_dir()]
    if not found:
        raise SnapshotError(f"{run_dir / 'fields'}: none of {[p[0] for p in PANELS]}")
    sections = [plane_section(data) for _, data in found]
    u_all = np.concatenate([s[0] for s in sections])
    v_all = np.concatenate([s[1] for s in sections])
    width, height = np.ptp(u_all), np.ptp(v_all)
    wide = width > 1.6 * height
    n = len(found)
    panel_w = 6.0 if wide else 4.5
    panel_h = max(2.0, min(6.0, panel_w * height / max(width, 1e-300))) + 0.8
    fig, axes = plt.subplots(n if wide else 1, 1 if wide else n, layout="constrained",
                             figsize=(panel_w, n * panel_h) if wide else (n * panel_w, panel_h),
                             squeeze=False, sharex=True, sharey=True)
    is_3d = found[0][1].cells.shape[1] == 4
    for ax, ((_, _, title, scale, unit, log), data), (u, v, tri, values) in zip(
            axes.ravel(), found, sections, strict=True):
        triang = Triangulation(1e6 * u, 1e6 * v, tri)
        shown = scale * values
        norm = None
        positive = shown[shown > 0]
        if log and len(positive) and positive.max() > 100 * positive.min():
            norm = LogNorm(vmin=max(positive.min(), 1e-4 * positive.max()), vmax=positive.max())
            shown = np.maximum(shown, norm.vmin)
        if data.on_cells:
            art = ax.tripcolor(triang, facecolors=shown, norm=norm, cmap="viridis")
        else:
            art = ax.tripcolor(triang, shown, shading="gouraud", norm=norm, cmap="viridis")
        fig.colorbar(art, ax=ax, label=f"[{unit}]", shrink=0.9)
        ax.set_title(f"{title}, t = {data.time:g} s", fontsize="medium")
        ax.set_aspect("equal")
        ax.set_facecolor("0.85")  # where the field is not defined (phi and i: not in the Li)
        ax.set_xlabel("x [um]")
        ax.set_ylabel("y [um]")
    fig.suptitle(f"{run_dir.name}: fields" + (" on the face z = min z" if is_3d else "")
                 + " (grey: field not defined there)", fontsize="medium")
    return fig
