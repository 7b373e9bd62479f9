"""plots/fields.png reads dolfinx's VTX files back (ecm_fem/snapshot.py): the blocks of all
writing ranks merge into the whole mesh, point and cell (DG0) arrays keep their values, and a 3D
mesh is cut to its face z = min z."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from dolfinx import fem, mesh
from dolfinx.io import VTXWriter

from ecm_fem.snapshot import SnapshotError, field_figure, plane_section, read_vtx


def _write(path, msh, degree_family, expression, time=2.5):
    V = fem.functionspace(msh, degree_family)
    f = fem.Function(V, name="f")
    f.interpolate(expression)
    with VTXWriter(msh.comm, path, [f]) as vtx:
        vtx.write(0.0)
        f.x.array[:] *= 2.0
        vtx.write(time)
    return f


@pytest.mark.mpi
@pytest.mark.parametrize("family", [("Lagrange", 1), ("Lagrange", 2), ("DG", 0)],
                         ids=["P1", "P2", "DG0"])
def test_2d_blocks_merge_with_their_values(shared_tmp, family):
    """f = 2 (x + 2 y) at the last time on a 6 x 4 rectangle of triangles written by every rank:
    read on one rank, every node (or every cell centroid for DG0) carries its value to
    round-off, the merged triangles cover the rectangle (area 2 once the ghost copies are
    removed) and the first output time is the doubled field's half."""
    comm = MPI.COMM_WORLD
    msh = mesh.create_rectangle(comm, [[0, 0], [2, 1]], [6, 4], mesh.CellType.triangle)
    path = shared_tmp / "f.bp"
    _write(path, msh, family, lambda x: x[0] + 2 * x[1])
    comm.barrier()
    if comm.rank == 0:
        last, first = read_vtx(path, "f"), read_vtx(path, "f", step=0)
        assert last.time == 2.5 and first.time == 0.0
        assert last.on_cells == (family[0] == "DG")
        pts = last.points
        where = pts[last.cells].mean(axis=1) if last.on_cells else pts
        assert last.values == pytest.approx(2 * (where[:, 0] + 2 * where[:, 1]), abs=1e-12)
        assert first.values == pytest.approx(0.5 * last.values, abs=1e-12)
        u, v, tri, values = plane_section(last)
        corners = np.stack([u[tri], v[tri]], axis=-1)
        centroids = np.round(corners.mean(axis=1), 12)
        unique = np.unique(centroids, axis=0, return_index=True)[1]
        e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        assert len(unique) == 48 and area[unique].sum() == pytest.approx(2.0, rel=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("family", [("Lagrange", 1), ("DG", 0)], ids=["P1", "DG0"])
def test_3d_face_section(shared_tmp, family):
    """A 3 x 2 x 2 box of tetrahedra: the face z = 0 has 3 x 2 squares of two triangles, each
    carrying 2 (x + 2 y) at its nodes (P1) or the value of the tetrahedron it bounds (DG0)."""
    comm = MPI.COMM_WORLD
    msh = mesh.create_box(comm, [[0, 0, 0], [3, 2, 2]], [3, 2, 2], mesh.CellType.tetrahedron)
    path = shared_tmp / "f3.bp"
    _write(path, msh, family, lambda x: x[0] + 2 * x[1] + 3 * x[2])
    comm.barrier()
    if comm.rank == 0:
        data = read_vtx(path, "f")
        u, v, tri, values = plane_section(data)
        centroids = np.round(np.stack([u[tri], v[tri]], axis=-1).mean(axis=1), 12)
        unique = np.unique(centroids, axis=0, return_index=True)[1]
        assert len(unique) == 12
        if data.on_cells:
            tets = data.points[data.cells].mean(axis=1)
            assert set(np.round(values, 9)) <= set(np.round(
                2 * (tets[:, 0] + 2 * tets[:, 1] + 3 * tets[:, 2]), 9))
            assert np.all(values > 0)
        else:
            nodes = np.unique(tri)
            assert values[nodes] == pytest.approx(2 * (u[nodes] + 2 * v[nodes]), abs=1e-12)
            assert np.abs(data.points[nodes, 2]).max() < 1e-12


def test_missing_files_and_arrays(tmp_path):
    with pytest.raises(SnapshotError, match="no such VTX file"):
        read_vtx(tmp_path / "none.bp", "f")
    (tmp_path / "fields").mkdir()
    with pytest.raises(SnapshotError, match="none of"):
        field_figure(tmp_path)
    msh = mesh.create_unit_square(MPI.COMM_SELF, 2, 2)
    _write(tmp_path / "g.bp", msh, ("Lagrange", 1), lambda x: x[0])
    with pytest.raises(SnapshotError, match="no array 'phi'"):
        read_vtx(tmp_path / "g.bp", "phi")


@pytest.mark.serial_only
def test_reading_a_vtx_file_first_keeps_checkpoints_working():
    """adios2 keeps the bindings of its first import for the process: a figure made before a
    checkpoint (two runs in one process) must not select the serial ones, with which
    adios4dolfinx refuses to import. A fresh interpreter, as the import state is per process."""
    code = ("from pathlib import Path\n"
            "from ecm_fem import snapshot\n"
            "try:\n"
            "    snapshot.read_vtx(Path('/no/such/file.bp'), 'phi')\n"
            "except snapshot.SnapshotError:\n"
            "    pass\n"
            "import adios4dolfinx\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for key in [k for k in env if k.startswith(("OMPI_", "PMIX_", "PRTE_"))]:
        del env[key]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
