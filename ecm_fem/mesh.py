"""gmsh model -> distributed DOLFINx mesh with cell/facet tags, and the submeshes on which the
fields live (phi on the ion-conducting regions).

gmsh runs on rank 0 only and the mesh is distributed from there, so a config gives the same
global mesh on any number of ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

import basix
import gmsh
import numpy as np
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from scipy.spatial import cKDTree

from ecm_fem import _compat
from ecm_fem.config import RunConfig
from ecm_fem.geometry import get_builder
from ecm_fem.geometry._gmsh import MODEL_UNIT, match_side_meshes
from ecm_fem.geometry.tags import CELL_TAGS, ION_CONDUCTING


class GeometryError(RuntimeError):
    """A validated geometry that gmsh cannot build; the message names the family."""


@dataclass
class Region:
    """A codim-0 submesh with its tags mapped from the parent mesh."""

    mesh: dmesh.Mesh
    cell_tags: dmesh.MeshTags
    facet_tags: dmesh.MeshTags
    cell_map: np.ndarray  # sub cell -> parent cell
    vertex_map: np.ndarray  # sub vertex -> parent vertex


@dataclass
class MeshData:
    mesh: dmesh.Mesh
    cell_tags: dmesh.MeshTags
    facet_tags: dmesh.MeshTags
    ion: Region  # the ion-conducting regions (electrolyte, sei, gb) with their sub-regions
    subregions: dict[str, tuple[str, int]]  # name -> (parent region, cell tag)

    def region_tags(self, region: str) -> list[int]:
        """Cell tags of ``region`` including all its named sub-regions."""
        return [CELL_TAGS[region]] + [t for p, t in self.subregions.values() if p == region]


def generate(config: RunConfig, comm: MPI.Comm = MPI.COMM_WORLD,
             match_sides: bool | None = None, msh_path: str | Path | None = None) -> MeshData:
    """Build the config's geometry with gmsh on rank 0 and distribute it. ``match_sides``
    meshes the lateral sides node for node alike (default: when the mechanics has periodic
    sides, which need it). ``msh_path``: also write the gmsh model there (.msh, in the
    builders' micrometre model units)."""
    g = config.geometry
    if match_sides is None:
        match_sides = config.mechanics is not None and config.mechanics.sides == "periodic"
    builder = get_builder(g.kind)
    initialised_here = not gmsh.isInitialized()
    if initialised_here:
        gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    error = None
    if comm.rank == 0:
        gmsh.model.add(config.name)
        try:
            builder(g, MODEL_UNIT)
            if match_sides and not match_side_meshes(g.width / MODEL_UNIT):
                raise RuntimeError("periodic sides: the curves of the sides x = 0 and "
                                   "x = width do not pair up (different layers at the sides)")
            if config.discretisation.mesh_order > 1:
                gmsh.model.mesh.setOrder(config.discretisation.mesh_order)
            if msh_path is not None:
                gmsh.write(str(msh_path))
        except Exception as exc:  # report on every rank below instead of hanging the others
            error = f"geometry ({g.kind}): gmsh failed: {exc}"
    error = comm.bcast(error, root=0)
    if error:
        if comm.rank == 0:
            gmsh.model.remove()
        if initialised_here:
            gmsh.finalize()
        raise GeometryError(error)
    try:
        msh, cell_tags, facet_tags = _compat.model_to_mesh(gmsh.model, comm, 0, gdim=g.dim)
    finally:
        if comm.rank == 0:
            gmsh.model.remove()
        if initialised_here:
            gmsh.finalize()
    msh.geometry.x[:] *= MODEL_UNIT
    msh.name = config.name
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    subregions = g.subregions()
    ion_ids = [CELL_TAGS[n] for n in ION_CONDUCTING]
    ion_ids += [tag for parent, tag in subregions.values() if parent in ION_CONDUCTING]
    ion = extract_region(msh, cell_tags, facet_tags, ion_ids)
    return MeshData(msh, cell_tags, facet_tags, ion, subregions)


def extract_region(
    msh: dmesh.Mesh, cell_tags: dmesh.MeshTags, facet_tags: dmesh.MeshTags, tag_ids: list[int]
) -> Region:
    """Submesh of the cells tagged ``tag_ids`` with the parent's cell and facet tags carried
    over (a parent facet keeps its tag on the submesh when all its vertices are in it)."""
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    cells = np.sort(np.concatenate([cell_tags.find(t) for t in tag_ids])).astype(np.int32)
    sub, cell_map, vertex_map = _compat.create_submesh(msh, tdim, cells)

    # cell tags: look up the parent tag of every submesh cell (owned and ghost)
    parent_value = np.zeros(msh.topology.index_map(tdim).size_local
                            + msh.topology.index_map(tdim).num_ghosts, dtype=np.int32)
    parent_value[cell_tags.indices] = cell_tags.values
    n_sub_cells = len(cell_map)
    sub_cell_tags = dmesh.meshtags(
        sub, tdim, np.arange(n_sub_cells, dtype=np.int32), parent_value[cell_map]
    )

    # facet tags: match facets by their (parent) vertex sets
    sub.topology.create_connectivity(fdim, 0)
    msh.topology.create_connectivity(fdim, 0)
    sub_f2v = sub.topology.connectivity(fdim, 0)
    n_sub_facets = (sub.topology.index_map(fdim).size_local
                    + sub.topology.index_map(fdim).num_ghosts)
    key_to_sub_facet = {
        tuple(sorted(vertex_map[sub_f2v.links(f)])): f for f in range(n_sub_facets)
    }
    par_f2v = msh.topology.connectivity(fdim, 0)
    indices, values = [], []
    for facet, value in zip(facet_tags.indices, facet_tags.values, strict=True):
        f_sub = key_to_sub_facet.get(tuple(sorted(par_f2v.links(facet))))
        if f_sub is not None:
            indices.append(f_sub)
            values.append(value)
    order = np.argsort(indices)
    sub_facet_tags = dmesh.meshtags(
        sub, fdim, np.asarray(indices, dtype=np.int32)[order],
        np.asarray(values, dtype=np.int32)[order],
    )
    sub.topology.create_connectivity(fdim, tdim)
    return Region(sub, sub_cell_tags, sub_facet_tags, np.asarray(cell_map), np.asarray(vertex_map))


def x_extent(msh: dmesh.Mesh, axis: int = 0) -> tuple[float, float]:
    """(smallest, largest) x of the whole mesh [m] (collective): the cell's lateral sides
    (``axis`` = 2: z, the other pair of sides in 3D)."""
    x = msh.geometry.x[:, axis]
    return (msh.comm.allreduce(float(x.min()) if len(x) else np.inf, op=MPI.MIN),
            msh.comm.allreduce(float(x.max()) if len(x) else -np.inf, op=MPI.MAX))


def facet_vertices(msh: dmesh.Mesh, facets: np.ndarray) -> np.ndarray:
    """(n, tdim, gdim) vertices of the local simplex ``facets`` [m]: the two end points of a
    2D mesh's facets (the chords of curved facets), the three corners of a 3D mesh's
    triangles."""
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    if len(facets) == 0:  # entities_to_geometry divides by the entity count (0.9)
        return np.zeros((0, tdim, gdim))
    nodes = dmesh.entities_to_geometry(msh, tdim - 1, np.asarray(facets, dtype=np.int32), False)
    return msh.geometry.x[nodes[:, :tdim], :gdim]


def simplex_measures(vertices: np.ndarray) -> np.ndarray:
    """(n,) lengths of segments (n, 2, gdim) or areas of triangles (n, 3, 3) [m or m^2]."""
    if vertices.shape[1] == 2:
        return np.linalg.norm(vertices[:, 1] - vertices[:, 0], axis=1)
    return 0.5 * np.linalg.norm(np.cross(vertices[:, 1] - vertices[:, 0],
                                         vertices[:, 2] - vertices[:, 0]), axis=1)


def simplex_diameters(vertices: np.ndarray) -> np.ndarray:
    """(n,) longest edge of each simplex (n, k, gdim) [m]."""
    k = vertices.shape[1]
    edges = [np.linalg.norm(vertices[:, b] - vertices[:, a], axis=1)
             for a in range(k) for b in range(a + 1, k)]
    return np.max(edges, axis=0) if edges else np.zeros(len(vertices))


def cell_centroids(msh: dmesh.Mesh, cells: np.ndarray) -> np.ndarray:
    """(n, gdim) vertex means of the local simplex ``cells`` [m]."""
    tdim = msh.topology.dim
    if len(cells) == 0:
        return np.zeros((0, msh.geometry.dim))
    nodes = dmesh.entities_to_geometry(msh, tdim, np.asarray(cells, dtype=np.int32), False)
    return msh.geometry.x[nodes[:, : tdim + 1], : msh.geometry.dim].mean(axis=1)


def facet_normals(msh: dmesh.Mesh, facets: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(n, gdim) unit normals of the local ``facets`` (of their flat simplices), each pointing
    away from the centroid of the matching cell of ``cells`` (e.g. from Li into the
    electrolyte)."""
    corners = facet_vertices(msh, facets)
    if msh.geometry.dim == 2:
        tangent = corners[:, 1] - corners[:, 0]
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    else:
        normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1), 1e-300)[:, None]
    outward = corners.mean(axis=1) - cell_centroids(msh, cells)
    normal[np.einsum("ij,ij->i", normal, outward) < 0] *= -1.0
    return normal


def owned_facets(msh: dmesh.Mesh, facet_tags: dmesh.MeshTags, tag: int) -> np.ndarray:
    """The facets tagged ``tag`` that this rank owns, so that each is on exactly one rank (and
    the facet-to-cell connectivity, which the callers need)."""
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, tdim)
    facets = facet_tags.find(tag)
    return facets[facets < msh.topology.index_map(fdim).size_local]


def owned_facet_cells(msh: dmesh.Mesh, facet_tags: dmesh.MeshTags, tag: int,
                      among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For the facets tagged ``tag``: the cell of each facet that this rank owns and the
    facet's local index in it. Each cell has one owner, so every facet appears on exactly
    one rank, for facets on the mesh boundary (one cell) and, with ``among`` (a mask over the
    local cells that holds one of the two cells of each facet, e.g. the Li side of the
    interface), for facets inside the mesh."""
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, tdim)
    msh.topology.create_connectivity(tdim, fdim)
    f_to_c, c_to_f = msh.topology.connectivity(fdim, tdim), msh.topology.connectivity(tdim, fdim)
    n_owned = msh.topology.index_map(tdim).size_local
    cells, local = [], []
    for facet in facet_tags.find(tag):
        links = f_to_c.links(facet)
        if among is not None:
            links = links[among[links]]
        cell = links[0] if len(links) else n_owned
        if cell < n_owned:
            cells.append(cell)
            local.append(int(np.flatnonzero(c_to_f.links(cell) == facet)[0]))
    return np.asarray(cells, dtype=np.int32), np.asarray(local, dtype=np.int32)


def gathered_boundary_facets(msh: dmesh.Mesh, facet_tags: dmesh.MeshTags, tag: int,
                             li_inside: bool) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (n, tdim, gdim), unit normals (n, gdim)) of all facets tagged ``tag`` on the
    boundary of ``msh``, the same arrays on every rank, sorted by their vertices (collective).
    ``li_inside``: the mesh is the Li side (normals point out of its cells), else the
    electrolyte side (normals point into the mesh)."""
    facets = owned_facets(msh, facet_tags, tag)
    f_to_c = msh.topology.connectivity(msh.topology.dim - 1, msh.topology.dim)
    cells = np.array([f_to_c.links(f)[0] for f in facets], dtype=np.int32)
    normals = facet_normals(msh, facets, cells) * (1.0 if li_inside else -1.0)
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    corners = np.vstack(msh.comm.allgather(facet_vertices(msh, facets).reshape(-1, tdim * gdim)))
    normals = np.vstack(msh.comm.allgather(normals.reshape(-1, gdim)))
    order = np.lexsort(corners.T[::-1])
    return corners[order].reshape(-1, tdim, gdim), normals[order]


class InterfaceCurve:
    """A 2D interface as a polyline of mesh facets, the same arrays on every rank, with its
    curvature kappa_c = div_s(n) [1/m] (n the unit normal from Li into the electrolyte): the
    sum of the principal curvatures, 1/R on a circular arc, positive where the Li bulges into
    the electrolyte, so that gamma * kappa_c is the Laplace pressure (PHYSICS.md 3.1).

    At a vertex joining two facets a -> b, kappa = dtheta / ((L_a + L_b) / 2), dtheta the signed
    turning angle from n_a to n_b along the curve: second-order accurate on a smooth curve with
    uniform facets (vertices on a circle of radius R give (1/R)(1 + dtheta^2 / 24)). An end of
    the interface on a lateral side of the cell (x on ``mirror_x``) is a symmetry point: its
    facet meets its own mirror image there. Any other vertex with one facet (an end at a void
    edge) or with more than two (a junction) takes the value of the facet's other vertex. A
    facet takes the mean of its two vertices. A corner of the interface (a slot's edge) is a
    concentrated curvature: kappa ~ angle / h there, growing as the mesh is refined.

    On an axisymmetric (r, z) section the surface of revolution has the second principal
    curvature n_r / r (the hoop direction; n at a vertex the normalised mean of its facets'
    normals), added at every vertex; on the axis it takes its limit, the in-plane curvature
    (of a smooth surface: the two are equal there). A sphere of radius R gives 2 / R.

    Args:
        ends: (n, 2, 2) end points of all interface facets [m].
        normals: (n, 2) their unit normals from Li into the electrolyte.
        mirror_x: x [m] of the symmetry lines (the lateral sides of the cell).
        axisymmetric: add the hoop curvature (x = r, the axis at x = 0).
    """

    gdim = 2

    def __init__(self, ends: np.ndarray, normals: np.ndarray, mirror_x: tuple[float, ...] = (),
                 axisymmetric: bool = False):
        self.ends = np.asarray(ends, dtype=float).reshape(-1, 2, 2)
        self.normals = np.asarray(normals, dtype=float).reshape(-1, 2)
        n = len(self.ends)
        lengths = np.linalg.norm(self.ends[:, 1] - self.ends[:, 0], axis=1)
        scale = float(lengths.min()) if n else 1.0
        points = self.ends.reshape(-1, 2)
        # vertices shared by neighbouring facets: merge end points closer than 1e-6 h
        key = np.round(points / (1e-6 * scale)).astype(np.int64) if n else np.zeros((0, 2))
        _, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        count = np.bincount(inverse).astype(float) if n else np.zeros(0)
        self.vertices = np.zeros((len(count), 2))
        np.add.at(self.vertices, inverse, points)
        self.vertices /= np.maximum(count, 1.0)[:, None]
        facet_vertices = inverse.reshape(n, 2)
        midpoints = self.ends.mean(axis=1)
        kappa = np.full(len(self.vertices), np.nan)

        def turning(a: int, nb: np.ndarray, mb: np.ndarray, lb: float) -> float:
            na = self.normals[a]
            turn = np.arctan2(na[0] * nb[1] - na[1] * nb[0], na @ nb)
            t, n_mid = mb - midpoints[a], na + nb  # travel from a to b
            return turn * np.sign(-n_mid[1] * t[0] + n_mid[0] * t[1]) / (0.5 * (lengths[a] + lb))

        for v in range(len(self.vertices)):
            rows = np.flatnonzero(np.any(facet_vertices == v, axis=1))
            if len(rows) == 2:
                a, b = rows
                kappa[v] = turning(a, self.normals[b], midpoints[b], lengths[b])
            elif len(rows) == 1 and any(abs(self.vertices[v, 0] - x0) <= 1e-6 * scale
                                        for x0 in mirror_x):
                a = rows[0]
                x0 = self.vertices[v, 0]
                mirrored_n = self.normals[a] * np.array([-1.0, 1.0])
                mirrored_m = np.array([2 * x0 - midpoints[a, 0], midpoints[a, 1]])
                kappa[v] = turning(a, mirrored_n, mirrored_m, lengths[a])
        for _ in range(2):  # other ends and junctions: the value of the facet's other vertex
            for v in np.flatnonzero(np.isnan(kappa)):
                rows = np.flatnonzero(np.any(facet_vertices == v, axis=1))
                known = [kappa[w] for r in rows for w in facet_vertices[r]
                         if w != v and np.isfinite(kappa[w])]
                if known:
                    kappa[v] = float(np.mean(known))
        kappa = np.nan_to_num(kappa, nan=0.0)
        if axisymmetric and n:
            vertex_normal = np.zeros((len(self.vertices), 2))
            np.add.at(vertex_normal, facet_vertices.ravel(), np.repeat(self.normals, 2, axis=0))
            vertex_normal /= np.linalg.norm(vertex_normal, axis=1)[:, None]
            r = self.vertices[:, 0]
            on_axis = r <= 1e-6 * scale
            kappa = kappa + np.where(on_axis, kappa,
                                     vertex_normal[:, 0] / np.where(on_axis, 1.0, r))
        self.vertex_curvature = kappa
        self.facet_curvature = self.vertex_curvature[facet_vertices].mean(axis=1) if n \
            else np.zeros(0)
        self.midpoints = midpoints
        self.lengths = lengths
        self.facet_arc_length = self._walk(facet_vertices)

    def _walk(self, facet_vertices: np.ndarray) -> np.ndarray:
        """(n, 2) arc length s [m] at the two ends of every facet: walking the curve's pieces
        from the end with the smallest (x, y), each piece started from its end of smallest
        (x, y) among the ones not yet reached, with the straight distance from the previous
        piece's last vertex added (so s = x - min x on a flat interface with gaps, and the
        walls of a flaw or a void add their length). At a junction the walk takes the first
        facet not yet walked; the others start new pieces."""
        n = len(facet_vertices)
        s_ends = np.zeros((n, 2))
        if not n:
            return s_ends
        incident: dict[int, list[int]] = {}
        for f, (a, b) in enumerate(facet_vertices):
            incident.setdefault(int(a), []).append(f)
            incident.setdefault(int(b), []).append(f)
        degree = {v: len(fs) for v, fs in incident.items()}
        walked = np.zeros(n, dtype=bool)
        by_position = sorted(incident, key=lambda v: (degree[v] != 1, *self.vertices[v]))
        s, last = 0.0, None
        while not walked.all():
            v = next(v for v in by_position if not all(walked[incident[v]]))
            if last is not None:
                s += float(np.linalg.norm(self.vertices[v] - self.vertices[last]))
            while True:
                f = next((f for f in incident[v] if not walked[f]), None)
                if f is None:
                    break
                walked[f] = True
                first = 0 if facet_vertices[f, 0] == v else 1
                s_ends[f, first], s_ends[f, 1 - first] = s, s + self.lengths[f]
                s += self.lengths[f]
                v = int(facet_vertices[f, 1 - first])
            last = v
        return s_ends

    @classmethod
    def of_boundary(cls, msh: dmesh.Mesh, facet_tags: dmesh.MeshTags, tag: int,
                    li_inside: bool, axisymmetric: bool = False) -> InterfaceCurve:
        """The facets tagged ``tag`` on the boundary of ``msh`` (collective). ``li_inside``:
        the mesh is the Li side (normals point out of its cells), else the electrolyte side.
        The lateral sides of the cell (smallest and largest x) are symmetry lines.
        ``axisymmetric``: the mesh is an (r, z) section (hoop curvature added)."""
        if msh.geometry.dim != 2:
            raise NotImplementedError("interface curvature: 2D meshes only")
        ends, normals = gathered_boundary_facets(msh, facet_tags, tag, li_inside)
        return cls(ends, normals, mirror_x=x_extent(msh), axisymmetric=axisymmetric)

    def nearest_facets(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``points`` (n, 2): the facet at the smallest distance and the point's
        position t in [0, 1] along it, from its first end (a few hundred facets)."""
        a, d = self.ends[:, 0], self.ends[:, 1] - self.ends[:, 0]
        dd = np.einsum("ij,ij->i", d, d)
        facet, t = np.empty(len(points), dtype=int), np.empty(len(points))
        for k, x in enumerate(points):
            tk = np.clip(np.einsum("ij,ij->i", x - a, d) / dd, 0.0, 1.0)
            facet[k] = int(np.argmin(np.linalg.norm(a + tk[:, None] * d - x, axis=1)))
            t[k] = tk[facet[k]]
        return facet, t

    def arc_length(self, points: np.ndarray) -> np.ndarray:
        """Arc length s [m] (see ``_walk``) at ``points`` (n, 2) on the interface, linear
        along the facet nearest to each point."""
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        if not len(self.lengths):
            return np.full(len(points), np.nan)
        facet, t = self.nearest_facets(points)
        s0, s1 = self.facet_arc_length[facet, 0], self.facet_arc_length[facet, 1]
        return s0 + t * (s1 - s0)

    def at(self, points: np.ndarray) -> np.ndarray:
        """Curvature [1/m] at ``points`` (n, 2) on the interface: the vertex value at a vertex,
        else the value of the facet the point lies on."""
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        out = np.empty(len(points))
        if not len(self.lengths):
            out[:] = np.nan
            return out
        tol = 1e-6 * float(self.lengths.min())
        dist, idx = cKDTree(self.vertices).query(points)
        on_vertex = dist <= tol
        out[on_vertex] = self.vertex_curvature[idx[on_vertex]]
        rest = np.flatnonzero(~on_vertex)
        if len(rest):
            out[rest] = self.facet_curvature[self.nearest_facets(points[rest])[0]]
        return out


class InterfaceSurface:
    """A 3D interface as a triangulated surface (the interface facets, the same arrays on every
    rank) with its curvature kappa_c = div_s(n) [1/m] at the vertices (n the unit normal from Li
    into the electrolyte): the sum of the principal curvatures, 2 / R on a sphere, positive
    where the Li bulges into the electrolyte, as ``InterfaceCurve`` in 2D.

    At each vertex a quadric w = a u^2 + b u v + c v^2 + d u + e v is fitted by least squares
    to the vertices within two edges of it, in the frame of its normal (w along n, the
    area-weighted mean of its triangles' normals); kappa_c = -2 (a + c). The fit needs no
    special rule at the interface's own edges (a void's rim: one-sided data), and it converged
    at second order on gmsh's unstructured sphere meshes (tests/test_curvature.py), where the
    cotangent formula of the mean curvature need not converge pointwise (Xu, Comput. Aided
    Geom. Des. 21 (2004) 767). The lateral faces of the cell (``mirror``: the
    smallest and largest x and z) are symmetry planes: the triangles are mirrored across them
    (and across both at the cell's vertical edges) before the fit, so a vertex on a symmetry
    plane sees both sides. ``gdim`` = 3: points are (x, y, z).

    Args:
        triangles: (n, 3, 3) corners of all interface facets [m].
        normals: (n, 3) their unit normals from Li into the electrolyte.
        mirror: ((x_min, x_max), (z_min, z_max)) of the cell's lateral faces [m].
    """

    gdim = 3

    def __init__(self, triangles: np.ndarray, normals: np.ndarray,
                 mirror: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())):
        triangles = np.asarray(triangles, dtype=float).reshape(-1, 3, 3)
        normals = np.asarray(normals, dtype=float).reshape(-1, 3)
        n = len(triangles)
        edges = np.linalg.norm(triangles - np.roll(triangles, 1, axis=1), axis=2)
        scale = float(edges.min()) if n else 1.0
        copies_t, copies_n = [triangles], [normals]
        xs, zs = mirror
        planes = [(0, x0) for x0 in xs] + [(2, z0) for z0 in zs]
        pairs = [(a, b) for a in planes if a[0] == 0 for b in planes if b[0] == 2]
        reach = 3.0 * float(edges.max()) if n else 0.0  # beyond two rings of the plane
        for group in [[p] for p in planes] + pairs:
            near = np.all([np.abs(triangles[:, :, axis] - value).min(axis=1) < reach
                           for axis, value in group], axis=0)
            t, m = triangles[near].copy(), normals[near].copy()
            for axis, value in group:
                t[:, :, axis] = 2 * value - t[:, :, axis]
                m[:, axis] = -m[:, axis]
            copies_t.append(t)
            copies_n.append(m)
        all_t, all_n = np.concatenate(copies_t), np.concatenate(copies_n)
        points = all_t.reshape(-1, 3)
        key = np.round(points / (1e-6 * scale)).astype(np.int64) if n else np.zeros((0, 3))
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        vertices = points[first]
        corners = inverse.reshape(-1, 3)
        # the original vertices are those of the first n triangles
        original = np.unique(corners[:n]) if n else np.zeros(0, dtype=int)
        area = simplex_measures(all_t)
        vertex_normal = np.zeros((len(vertices), 3))
        np.add.at(vertex_normal, corners.ravel(), np.repeat(all_n * area[:, None], 3, axis=0))
        vertex_normal /= np.maximum(np.linalg.norm(vertex_normal, axis=1), 1e-300)[:, None]
        rows = np.concatenate([corners[:, [0, 1, 2]].ravel(), corners[:, [1, 2, 0]].ravel()])
        cols = np.concatenate([corners[:, [1, 2, 0]].ravel(), corners[:, [0, 1, 2]].ravel()])
        neighbours: list[set[int]] = [set() for _ in range(len(vertices))]
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            neighbours[a].add(b)
        kappa = np.zeros(len(vertices))
        for v in original.tolist():
            ring = set(neighbours[v])
            for w in list(ring):
                ring |= neighbours[w]
            ring.discard(v)
            kappa[v] = self._fit(vertices[v], vertex_normal[v], vertices[sorted(ring)])
        self.vertices = vertices[original]
        self.vertex_normals = vertex_normal[original]
        self.vertex_curvature = kappa[original]
        self._tree = cKDTree(self.vertices) if len(self.vertices) else None
        self._scale = scale

    @staticmethod
    def _fit(x: np.ndarray, normal: np.ndarray, ring: np.ndarray) -> float:
        """kappa_c at ``x`` from the quadric through ``ring`` (class docstring); 0 with fewer
        than five neighbours."""
        if len(ring) < 5:
            return 0.0
        helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0, 1.0, 0])
        t1 = np.cross(normal, helper)
        t1 /= np.linalg.norm(t1)
        t2 = np.cross(normal, t1)
        d = ring - x
        u, v, w = d @ t1, d @ t2, d @ normal
        design = np.column_stack([u * u, u * v, v * v, u, v])
        coef = np.linalg.lstsq(design, w, rcond=None)[0]
        return float(-2.0 * (coef[0] + coef[2]))

    @classmethod
    def of_boundary(cls, msh: dmesh.Mesh, facet_tags: dmesh.MeshTags, tag: int,
                    li_inside: bool) -> InterfaceSurface:
        """The facets tagged ``tag`` on the boundary of the 3D ``msh`` (collective), as
        ``InterfaceCurve.of_boundary``; the cell's faces of smallest and largest x and z are
        symmetry planes."""
        corners, normals = gathered_boundary_facets(msh, facet_tags, tag, li_inside)
        return cls(corners, normals, mirror=(x_extent(msh), x_extent(msh, axis=2)))

    def at(self, points: np.ndarray) -> np.ndarray:
        """Curvature [1/m] at ``points`` (n, 3) on the interface: the vertex value at a vertex,
        the mean of the two nearest vertices at any other point (the edge midpoints of P2
        dofs)."""
        points = np.asarray(points, dtype=float).reshape(-1, 3)
        if self._tree is None:
            return np.full(len(points), np.nan)
        k = min(2, len(self.vertices))
        dist, idx = self._tree.query(points, k=k)
        dist, idx = dist.reshape(len(points), k), idx.reshape(len(points), k)
        on_vertex = dist[:, 0] <= 1e-6 * self._scale
        return np.where(on_vertex, self.vertex_curvature[idx[:, 0]],
                        self.vertex_curvature[idx].mean(axis=1))

    def arc_length(self, points: np.ndarray) -> np.ndarray:
        """No arc length on a surface: nan (interface.csv's column s is 2D only)."""
        return np.full(len(np.asarray(points).reshape(-1, 3)), np.nan)


def cell_tag_array(msh: dmesh.Mesh, cell_tags: dmesh.MeshTags) -> np.ndarray:
    """The cell tag of every local cell (owned and ghost; 0 where untagged)."""
    imap = msh.topology.index_map(msh.topology.dim)
    tag = np.zeros(imap.size_local + imap.num_ghosts, dtype=np.int32)
    tag[cell_tags.indices] = cell_tags.values
    return tag


def region_field(msh: dmesh.Mesh, cell_tags: dmesh.MeshTags,
                 regions: dict[int, tuple[str, str | None]],
                 value: Callable[[str, str | None], float], name: str) -> fem.Function:
    """A DG0 field with ``value(region, parent)`` on the cells of each tag of ``regions``
    (tag -> (region or sub-region name, parent region or None)); 0 on other cells."""
    field = fem.Function(fem.functionspace(msh, ("DG", 0)), name=name)
    for tag, (region, parent) in regions.items():
        cells = cell_tags.find(tag)
        if len(cells):
            field.x.array[cells] = value(region, parent)
    field.x.scatter_forward()
    return field


class FacetDofMean:
    """Means at the dofs of a Lagrange ``space`` of values given on some facets: each dof on
    one of the facets (given as owned cell and local facet index, ``owned_facet_cells``) gets
    the mean of the values of all the facets through it, on every rank (sums are added across
    ranks with a reverse scatter, so the mean does not depend on the partition).

    Attributes:
        element: the basix element of ``space`` (its ``points`` are the reference dof points).
        facet_rows: (k, n) the positions, among its cell's dofs, of each facet's dofs (the
            element's facet closure).
        facet_dofs: (k, n) the dofs of each facet, in that order.
        dofs: the local dofs (owned and ghost) that lie on at least one of the facets.
    """

    def __init__(self, space: fem.FunctionSpace, cells: np.ndarray, local_facets: np.ndarray,
                 width: int):
        msh = space.mesh
        self.element = basix.create_element(
            basix.ElementFamily.P, getattr(basix.CellType, msh.topology.cell_name()),
            space.ufl_element().basix_element.degree, basix.LagrangeVariant.gll_warped)
        closure = self.element.entity_closure_dofs[msh.topology.dim - 1]
        self.facet_rows = np.array([closure[lf] for lf in local_facets],
                                   dtype=np.int32).reshape(len(local_facets), len(closure[0]))
        dofmap = space.dofmap
        self.facet_dofs = np.array(
            [dofmap.cell_dofs(c)[rows] for c, rows in zip(cells, self.facet_rows, strict=True)],
            dtype=np.int32).reshape(self.facet_rows.shape)
        self.width = width
        self._sums = la.vector(dofmap.index_map, bs=width + 1)
        counts = self._accumulate(np.zeros((len(cells), width)))[:, -1]
        self.dofs = np.flatnonzero(counts > 0).astype(np.int32)

    def _accumulate(self, values: np.ndarray) -> np.ndarray:
        """Per local dof: the sums of ``values`` over the facets through it, and their number in
        the last column."""
        bs = self.width + 1
        sums = self._sums
        sums.array[:] = 0.0
        acc = sums.array.reshape(-1, bs)
        k, n = self.facet_dofs.shape
        values = np.asarray(values, dtype=float)
        if values.ndim == 2:  # one row per facet, for all its dofs
            values = values[:, None, :]
        values = np.broadcast_to(values, (k, n, self.width))
        for j in range(n):
            np.add.at(acc, self.facet_dofs[:, j],
                      np.column_stack([values[:, j, :], np.ones(k)]))
        sums.scatter_reverse(la.InsertMode.add)
        sums.scatter_forward()
        return acc

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """(len(dofs), width) means at ``dofs`` of ``values``: (k, width), one row per facet
        for all its dofs, or (k, n, width), one row per facet dof. Collective."""
        acc = self._accumulate(values)
        return acc[self.dofs, :-1] / acc[self.dofs, -1:]
