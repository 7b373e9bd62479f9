"""The only place that knows DOLFINx version differences (feature detection, not version checks
spread over modules). Written for DOLFINx 0.9; later versions plug in here."""

from __future__ import annotations

from typing import Any

import dolfinx
import dolfinx.io.gmshio


def model_to_mesh(model: Any, comm: Any, rank: int, gdim: int) -> tuple[Any, Any, Any]:
    """gmsh model -> (mesh, cell_tags, facet_tags); 0.10 returns a MeshData object instead.

    Cells across rank boundaries are ghosted (shared-facet ghost mode), so both cells of every
    local facet are present: interface quantities read the Li and the electrolyte cell of a
    facet, and interior-facet (dS) integrals over rank boundaries need it."""
    partitioner = dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.shared_facet)
    out = dolfinx.io.gmshio.model_to_mesh(model, comm, rank, gdim=gdim, partitioner=partitioner)
    if isinstance(out, tuple):
        return out[0], out[1], out[2]
    return out.mesh, out.cell_tags, out.facet_tags


def create_submesh(msh: Any, tdim: int, cells: Any) -> tuple[Any, Any, Any]:
    """(submesh, sub cell -> parent cell array, sub vertex -> parent vertex array)."""
    sub, cell_map, vertex_map, _ = dolfinx.mesh.create_submesh(msh, tdim, cells)
    if hasattr(cell_map, "sub_topology_to_topology"):  # 0.10 EntityMap
        cell_map = cell_map.sub_topology_to_topology(list(range(len(cells))), inverse=False)
    return sub, cell_map, vertex_map
