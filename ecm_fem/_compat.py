"""The only place that knows DOLFINx version differences (feature detection, not version checks
spread over modules). Written for DOLFINx 0.9; later versions plug in here."""

from __future__ import annotations

from typing import Any

import dolfinx
import dolfinx.io.gmshio
import numpy as np


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


def real_functionspace(mesh: Any) -> Any:
    """A one-dof real space on ``mesh`` (owned by rank 0 of the mesh's communicator, a ghost
    everywhere else), for a global unknown such as V_we. scifem 0.6's
    ``create_real_functionspace`` builds the same space on MPI_COMM_WORLD whatever the mesh's
    communicator, so a run on a sub-communicator (a sweep's group of ranks) aborted with
    MPI_ERR_ARG when its matrix was made; this builds it on ``mesh.comm``."""
    import basix.ufl
    from dolfinx import cpp, fem
    from dolfinx.fem.function import _create_dolfinx_element

    comm, dtype = mesh.comm, mesh.geometry.x.dtype
    element = basix.ufl.element("P", mesh.basix_cell(), 0, dtype=dtype, discontinuous=True)
    cpp_element = _create_dolfinx_element(comm, mesh.topology.cell_type, element, dtype)
    ghosts = np.zeros(0 if comm.rank == 0 else 1, dtype=np.int64)
    index_map = cpp.common.IndexMap(comm, 1 if comm.rank == 0 else 0, ghosts,
                                    np.zeros(len(ghosts), dtype=np.int32))
    bx = element.basix_element._e
    layout = cpp.fem.ElementDofLayout(1, bx.entity_dofs, bx.entity_closure_dofs, [], [])
    tdim = mesh.topology.dim
    n_cells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cell_dofs = cpp.graph.AdjacencyList_int32(np.zeros(n_cells, dtype=np.int32),
                                              np.arange(n_cells + 1, dtype=np.int32))
    dofmap = cpp.fem.DofMap(layout, index_map, 1, cell_dofs, 1)
    space = cpp.fem.FunctionSpace_float64(mesh._cpp_object, cpp_element, dofmap, [])
    return fem.FunctionSpace(mesh, element, space)
