"""What ``ecm-fem mesh`` reports about a built mesh, and the files it writes: the report (cells,
vertices, cells and measure per region, facets and measure per boundary tag, element sizes and
shape quality), a PNG preview (pyvista, off-screen) and an export in any format meshio writes.

Everything is computed on the distributed DOLFINx mesh, so it describes exactly what a run would
use, on any number of ranks; the preview and the export gather the mesh on rank 0 (fine for the
2D meshes and moderate 3D meshes this is meant for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

import dolfinx
import numpy as np
import ufl

from ecm_fem.axisymmetry import weigh
from ecm_fem.geometry.tags import CELL_NAMES, FACET_NAMES
from ecm_fem.mesh import MeshData

POOR_QUALITY = 0.2  # mean-ratio quality below which a cell counts as poorly shaped


@dataclass
class MeshReport:
    """Global figures of a mesh (the same on every rank). Lengths in m, areas in m^2 (2D:
    per unit depth) and volumes in m^3; ``axisymmetric``: the regions' and boundaries'
    measures are the volumes [m^3] and areas [m^2] of the bodies of revolution of the (r, z)
    section (2 pi r weighted); quality is the mean ratio, 1 for equilateral cells."""

    dim: int
    cells: int
    vertices: int
    regions: dict[str, tuple[int, float]] = field(default_factory=dict)  # name: (cells, measure)
    boundaries: dict[str, tuple[int, float]] = field(default_factory=dict)  # name: (facets, m.)
    h_min: float = 0.0  # shortest cell edge
    h_max: float = 0.0  # longest cell edge
    quality_min: float = 0.0
    quality_mean: float = 0.0
    poor_cells: int = 0  # cells with quality < POOR_QUALITY
    axisymmetric: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "axisymmetric": self.axisymmetric, "cells": self.cells,
                "vertices": self.vertices,
                "regions": {k: {"cells": n, "measure": m} for k, (n, m) in self.regions.items()},
                "boundaries": {k: {"facets": n, "measure": m}
                               for k, (n, m) in self.boundaries.items()},
                "h_min": self.h_min, "h_max": self.h_max, "quality_min": self.quality_min,
                "quality_mean": self.quality_mean, "poor_cells": self.poor_cells}

    def format(self) -> str:
        unit = {2: ("m^2", "m"), 3: ("m^3", "m^2")}[3 if self.axisymmetric else self.dim]
        kind = ("2D axisymmetric mesh (measures of the body of revolution)"
                if self.axisymmetric else f"{self.dim}D mesh")
        lines = [f"{kind}: {self.cells} cells, {self.vertices} vertices",
                 f"  element edges {self.h_min:.3g} .. {self.h_max:.3g} m; shape quality (mean "
                 f"ratio) min {self.quality_min:.3f}, mean {self.quality_mean:.3f}, "
                 f"{self.poor_cells} cells below {POOR_QUALITY}",
                 "  regions:"]
        lines += [f"    {k:16s} {n:8d} cells  {m:.6g} {unit[0]}"
                  for k, (n, m) in self.regions.items()]
        lines.append("  boundaries:")
        lines += [f"    {k:16s} {n:8d} facets {m:.6g} {unit[1]}"
                  for k, (n, m) in self.boundaries.items()]
        return "\n".join(lines)


def _cell_names(md: MeshData) -> dict[int, str]:
    return CELL_NAMES | {t: k for k, (_, t) in md.subregions.items()}


def _shape(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest edge, longest edge and mean-ratio quality of simplices given by their
    (n, d + 1, d) corners: 4 sqrt(3) A / sum l^2 for triangles, 12 (3 V)^(2/3) / sum l^2 for
    tetrahedra."""
    k = corners.shape[1]
    edges = np.stack([np.linalg.norm(corners[:, i] - corners[:, j], axis=1)
                      for i in range(k) for j in range(i + 1, k)], axis=1)
    sq = (edges**2).sum(axis=1)
    measure = np.abs(np.linalg.det(corners[:, 1:] - corners[:, :1])) / math.factorial(k - 1)
    if k == 3:
        quality = 4 * math.sqrt(3) * measure / sq
    else:
        quality = 12 * (3 * measure) ** (2 / 3) / sq
    return edges.min(axis=1), edges.max(axis=1), quality


def report(md: MeshData, axisymmetric: bool = False) -> MeshReport:
    """The mesh's figures, computed in parallel (collective); ``axisymmetric``: the measures of
    the body of revolution of the (r, z) section."""
    msh, comm = md.mesh, md.mesh.comm
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    n_owned = msh.topology.index_map(tdim).size_local
    out = MeshReport(dim=tdim, cells=msh.topology.index_map(tdim).size_global,
                     vertices=msh.topology.index_map(0).size_global, axisymmetric=axisymmetric)
    cell_names = _cell_names(md)

    def measure(form) -> float:
        return comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(
            weigh(form, axisymmetric))), op=MPI.SUM)

    one = dolfinx.fem.Constant(msh, 1.0)
    dx = ufl.Measure("dx", msh, subdomain_data=md.cell_tags)
    owned = md.cell_tags.indices < n_owned
    cell_values = set().union(*comm.allgather(np.unique(md.cell_tags.values).tolist()))
    for tag in sorted(cell_values):
        count = comm.allreduce(int(np.count_nonzero(md.cell_tags.values[owned] == tag)))
        out.regions[cell_names.get(tag, f"tag_{tag}")] = (count, measure(one * dx(int(tag))))

    n_facets_owned = msh.topology.index_map(fdim).size_local
    ds = ufl.Measure("ds", msh, subdomain_data=md.facet_tags)
    dS = ufl.Measure("dS", msh, subdomain_data=md.facet_tags)
    f_owned = md.facet_tags.indices < n_facets_owned
    facet_values = set().union(*comm.allgather(np.unique(md.facet_tags.values).tolist()))
    for tag in sorted(facet_values):
        count = comm.allreduce(int(np.count_nonzero(md.facet_tags.values[f_owned] == tag)))
        length = measure(one * ds(int(tag)) + one("+") * dS(int(tag)))
        out.boundaries[FACET_NAMES.get(tag, f"tag_{tag}")] = (count, length)

    nodes = dolfinx.mesh.entities_to_geometry(msh, tdim, np.arange(n_owned, dtype=np.int32),
                                              False)
    corners = msh.geometry.x[nodes[:, : tdim + 1], : msh.geometry.dim]
    h_lo, h_hi, q = _shape(corners)
    big = np.inf
    out.h_min = comm.allreduce(float(h_lo.min()) if n_owned else big, op=MPI.MIN)
    out.h_max = comm.allreduce(float(h_hi.max()) if n_owned else 0.0, op=MPI.MAX)
    out.quality_min = comm.allreduce(float(q.min()) if n_owned else big, op=MPI.MIN)
    out.quality_mean = comm.allreduce(float(q.sum()), op=MPI.SUM) / out.cells
    out.poor_cells = comm.allreduce(int(np.count_nonzero(q < POOR_QUALITY)), op=MPI.SUM)
    return out


# ----------------------------------------------------------------------------- gathered mesh
# (topological dimension, nodes per entity) -> meshio cell type
_MESHIO_TYPES = {(1, 2): "line", (1, 3): "line3", (2, 3): "triangle", (2, 6): "triangle6",
                 (3, 4): "tetra"}
# DOLFINx -> VTK/meshio node order of the quadratic cells (vertices first, then edges)
_PERMUTATION = {"triangle6": [0, 1, 2, 5, 3, 4], "line3": [0, 1, 2]}


@dataclass
class GatheredMesh:
    """The whole mesh on rank 0 with shared nodes: cells and tagged facets (meshio types and
    node indices into ``points``) with their tag values."""

    points: np.ndarray
    cells: list[tuple[str, np.ndarray]]
    cell_tags: list[np.ndarray]


def _entity_type(tdim: int, n_nodes: int) -> str:
    if (tdim, n_nodes) not in _MESHIO_TYPES:
        raise ValueError(f"export: {tdim}D cells with {n_nodes} nodes are not supported "
                         "(discretisation.mesh_order 1, or 2 in 2D)")
    return _MESHIO_TYPES[tdim, n_nodes]


def gather(md: MeshData) -> GatheredMesh | None:
    """The mesh with its cell and facet tags on rank 0 (None on the other ranks); collective."""
    msh, comm = md.mesh, md.mesh.comm
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    global_node = msh.geometry.input_global_indices
    n_owned = msh.topology.index_map(tdim).size_local

    def entity_rows(dim: int, entities: np.ndarray) -> np.ndarray:
        return dolfinx.mesh.entities_to_geometry(msh, dim, entities, False)

    cell_nodes = entity_rows(tdim, np.arange(n_owned, dtype=np.int32))
    cell_value = np.zeros(n_owned, dtype=np.int32)
    owned = md.cell_tags.indices < n_owned
    cell_value[md.cell_tags.indices[owned]] = md.cell_tags.values[owned]
    f_owned = md.facet_tags.indices < msh.topology.index_map(fdim).size_local
    facets = md.facet_tags.indices[f_owned]
    nodes_per_facet = math.comb(fdim + msh.geometry.cmap.degree, fdim)
    facet_nodes = entity_rows(fdim, facets) if len(facets) else np.zeros(
        (0, nodes_per_facet), np.int32)
    used = np.unique(np.concatenate([cell_nodes.ravel(), facet_nodes.ravel()]))
    local = (global_node[used], msh.geometry.x[used, : msh.geometry.dim],
             global_node[cell_nodes], cell_value, global_node[facet_nodes],
             md.facet_tags.values[f_owned])
    parts = comm.gather(local, root=0)
    if comm.rank != 0:
        return None
    ids = np.concatenate([p[0] for p in parts])
    xyz = np.concatenate([p[1] for p in parts])
    unique, first = np.unique(ids, return_index=True)
    points = xyz[first]
    cells_g = np.concatenate([p[2] for p in parts])
    facets_g = np.concatenate([p[4].reshape(-1, nodes_per_facet) for p in parts])
    cell_type = _entity_type(tdim, cells_g.shape[1])
    facet_type = _entity_type(fdim, facets_g.shape[1]) if fdim > 0 else "vertex"
    perm_c = _PERMUTATION.get(cell_type, slice(None))
    perm_f = _PERMUTATION.get(facet_type, slice(None))
    blocks = [(cell_type, np.searchsorted(unique, cells_g)[:, perm_c])]
    tags = [np.concatenate([p[3] for p in parts])]
    if len(facets_g):
        blocks.append((facet_type, np.searchsorted(unique, facets_g)[:, perm_f]))
        tags.append(np.concatenate([p[5] for p in parts]))
    return GatheredMesh(points, blocks, tags)


def export(md: MeshData, path: str | Path) -> None:
    """Write the mesh with its tags (cell data ``tags``; gmsh formats: physical groups) in the
    meshio format of ``path``'s extension (collective; rank 0 writes)."""
    import meshio

    whole = gather(md)
    if whole is None:
        return
    mesh = meshio.Mesh(whole.points, whole.cells, cell_data={"tags": whole.cell_tags})
    if str(path).endswith(".msh"):  # gmsh 2.2 format; meshio would pick ANSYS .msh, without facets
        mesh.cell_data = {"gmsh:physical": whole.cell_tags, "gmsh:geometrical": whole.cell_tags}
        meshio.write(path, mesh, file_format="gmsh22")
    else:
        meshio.write(path, mesh)


def preview(md: MeshData, path: str | Path, window: tuple[float, ...] | None = None,
            size: tuple[int, int] = (1600, 1000)) -> None:
    """PNG of the mesh, cells coloured by region, edges drawn; ``window`` = (x_min, x_max,
    y_min, y_max) [m] zooms in (2D). Off-screen with pyvista (Xvfb started when there is no
    display); collective, rank 0 renders."""
    whole = gather(md)
    if whole is None:
        return
    import os
    import warnings

    import pyvista as pv

    pv.OFF_SCREEN = True
    if not os.environ.get("DISPLAY"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pv.start_xvfb()
    cell_type, cells = whole.cells[0]
    vtk_type = {"triangle": pv.CellType.TRIANGLE, "triangle6": pv.CellType.QUADRATIC_TRIANGLE,
                "tetra": pv.CellType.TETRA}[cell_type]
    points = np.zeros((len(whole.points), 3))
    points[:, : whole.points.shape[1]] = whole.points * 1e6  # draw in micrometres
    grid = pv.UnstructuredGrid({vtk_type: cells}, points)
    cell_names = _cell_names(md)
    values = whole.cell_tags[0]
    present = sorted(set(values.tolist()))
    grid.cell_data["region"] = np.searchsorted(present, values)
    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    plotter.add_mesh(grid, scalars="region", show_edges=True, edge_color="black",
                     line_width=0.5, cmap="Set2", categories=True,
                     annotations={k: cell_names.get(t, str(t)) for k, t in enumerate(present)},
                     scalar_bar_args={"title": "region", "n_labels": 0, "vertical": True,
                                      "position_x": 0.88, "position_y": 0.25})
    if md.mesh.topology.dim == 2:
        plotter.view_xy()
        if window is not None:
            x0, x1, y0, y1 = (1e6 * v for v in window)
            plotter.camera.focal_point = ((x0 + x1) / 2, (y0 + y1) / 2, 0.0)
            plotter.camera.position = ((x0 + x1) / 2, (y0 + y1) / 2, 1.0)
            plotter.camera.parallel_projection = True
            plotter.camera.parallel_scale = max((y1 - y0) / 2, (x1 - x0) / 2 * size[1] / size[0])
    else:  # look at the symmetry planes x = 0 and z = 0, where the defects sit; y up
        plotter.view_vector((-1.0, 0.6, -1.2), viewup=(0.0, 1.0, 0.0))
    plotter.add_text("coordinates in micrometres", font_size=10)
    plotter.screenshot(str(path))
    plotter.close()
