"""Polycrystalline electrolyte in 2D and 3D: the planar Li | electrolyte stack whose electrolyte
next to the interface (0 < y < grain_layer_thickness) is a layer of grains separated by a
resolved grain-boundary phase of width gb_width, the region ``gb``; above the layer the
electrolyte is homogeneous.

Grains are the cells of a Voronoi tessellation of the layer, made reproducible by ``seed``: seeds
drawn uniformly, then moved by Lloyd iterations to their cells' centroids (regular grains without
slivers). Each grain is its Voronoi cell shrunk by gb_width / 2 along every edge it shares with
another grain; edges on the layer's outer boundary are not shrunk, so grains touch the Li, the
sides and the homogeneous electrolyte, and the grain-boundary strips meet the interface at their
full width. The grains are ``electrolyte`` (or, with tag_grains, sub-regions ``grain_0``,
``grain_1``, ... of it with cell tags 101, 102, ...); Li | grain and Li | gb contacts are
``interface``; gb | grain boundaries are ``gb_boundary``. Elements shrink to
``interface_mesh_size`` at the interface and to gb_mesh_size along the grain boundaries.

In 3D (``dim: 3``) the layer is the box 0 < x < width, 0 < y < grain_layer_thickness,
0 < z < depth and the grains are convex polyhedra: the Voronoi cells, clipped from the box by the
bisector planes of the seeds (each moved by gb_width / 2 towards its own seed), built from their
planar faces. The boundary phase is the layer minus the grains (it meets the Li in a network of
strips gb_width wide). Its faces carry gb_mesh_size, so a 3D polycrystal costs about
(boundary area) / gb_mesh_size^2 triangles; the estimate is checked against
MAX_BOUNDARY_TRIANGLES when the config is read.

With ``void_half_width`` and ``void_depth`` the void of ``interfacial_void`` (a quarter ellipse
at x = 0 in 2D, a quarter of an oblate spheroid at x = z = 0 in 3D) is cut from the Li under the
grains: its wall and the faces of grains and boundary phase above it are ``void_surface``.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import gmsh
import numpy as np
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, size_field, sort_curves
from ecm_fem.geometry.interfacial_void import check_void_fits, cut_void, void_edge
from ecm_fem.geometry.params import Length, PlanarGeometry
from ecm_fem.geometry.tags import CELL_TAGS, SUBREGION_TAG_START

MAX_GRAINS = 400  # beyond this the mesh of the grain boundaries alone is too large for 2D runs
MAX_GRAINS_3D = 60  # the tessellation in Python and the faces' mesh grow with it
MAX_BOUNDARY_TRIANGLES = 200_000  # 3D: estimated triangles on the grains' faces


class PolycrystalGeometry(PlanarGeometry):
    """The planar stack with a polycrystalline electrolyte layer at the interface: Voronoi grains
    (reproducible from ``seed``) separated by a grain-boundary phase of width gb_width (region
    ``gb``, materials.gb, kinetics.regions.gb where it touches the Li)."""

    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = False  # Voronoi grains are no body of revolution

    kind: Literal["polycrystal"] = "polycrystal"  # type: ignore[assignment]
    grain_size: Length = Field(
        5e-6, description="mean grain size d [m]: the layer holds round(layer area / d^2) grains "
        "(3D: round(layer volume / d^3))")
    gb_width: Length = Field(
        0.2e-6, description="width of the grain-boundary phase [m] (a resolved, coarse-grained "
        "stand-in for the nm-wide boundary: its conductance per length is conductivity * width)")
    grain_layer_thickness: Length | None = Field(
        None, description="thickness of the polycrystalline layer above the interface [m]; "
        "default: the whole electrolyte")
    seed: int = Field(0, ge=0, description="seed of the grain tessellation (same seed, same "
                      "grains)")
    lloyd_iterations: int = Field(
        5, ge=0, le=50, description="Lloyd iterations moving the seeds to their grains' "
        "centroids (0: a raw Voronoi tessellation, with slivers)")
    gb_mesh_size: Length | None = Field(
        None, description="element size along the grain boundaries [m] (default gb_width / 2, "
        "two elements across the boundary)")
    tag_grains: bool = Field(
        False, description="give every grain its own cell tag (sub-regions grain_0, grain_1, "
        "... of electrolyte, for per-grain materials.patches and kinetics.regions)")
    void_half_width: Length | None = Field(
        None, description="an interfacial void under the grains, as in kind interfacial_void: "
        "its half width a along x (and z in 3D) [m], centred on x = 0 (3D: x = z = 0); "
        "default: no void")
    void_depth: Length | None = Field(
        None, description="depth b of the void into the Li [m] (with void_half_width)")
    void_mesh_size: Length | None = Field(
        None, description="element size at the void edge [m] (default interface_mesh_size / 4)")

    @property
    def layer_thickness(self) -> float:
        """Thickness of the polycrystalline layer [m], the default filled in."""
        return self.grain_layer_thickness or self.electrolyte_thickness

    @property
    def gb_size(self) -> float:
        """Element size along the grain boundaries [m], the default filled in."""
        return self.gb_mesh_size or self.gb_width / 2

    @property
    def n_grains(self) -> int:
        if self.dim == 3:
            return max(2, round(self.width * self.layer_thickness * self.cell_depth
                                / self.grain_size**3))
        return max(2, round(self.width * self.layer_thickness / self.grain_size**2))

    @property
    def has_void(self) -> bool:
        return self.void_half_width is not None

    @model_validator(mode="after")
    def _grains_fit(self) -> PolycrystalGeometry:
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with a polycrystal yet")
        if (self.void_half_width is None) != (self.void_depth is None):
            raise ValueError("void_half_width and void_depth: give both (a void under the "
                             "grains) or neither")
        if self.void_mesh_size is not None and not self.has_void:
            raise ValueError("void_mesh_size: only with void_half_width and void_depth")
        if self.has_void:
            check_void_fits(self)
        if self.layer_thickness > self.electrolyte_thickness:
            raise ValueError(
                f"grain_layer_thickness = {self.layer_thickness:g} m must not exceed "
                f"electrolyte_thickness = {self.electrolyte_thickness:g} m")
        if self.grain_size > min(self.width, self.layer_thickness,
                                 self.cell_depth if self.dim == 3 else self.width):
            raise ValueError(
                f"grain_size = {self.grain_size:g} m must not exceed the layer's width "
                f"({self.width:g} m), thickness ({self.layer_thickness:g} m) and, in 3D, depth "
                f"({self.cell_depth:g} m)")
        if self.gb_width > self.grain_size / 5:
            raise ValueError(
                f"gb_width = {self.gb_width:g} m must be at most grain_size / 5 = "
                f"{self.grain_size / 5:g} m (the grains would be mostly boundary)")
        if self.gb_size > self.gb_width:
            raise ValueError(
                f"gb_mesh_size = {self.gb_size:g} m must not exceed gb_width = "
                f"{self.gb_width:g} m (at least one element across the boundary)")
        most = MAX_GRAINS_3D if self.dim == 3 else MAX_GRAINS
        if self.n_grains > most:
            raise ValueError(
                f"grain_size = {self.grain_size:g} m gives {self.n_grains} grains, more than "
                f"{most}; use larger grains or a thinner grain_layer_thickness")
        if self.dim == 3:
            triangles = boundary_triangles(self)
            if triangles > MAX_BOUNDARY_TRIANGLES:
                raise ValueError(
                    f"gb_mesh_size = {self.gb_size:g} m puts about {triangles:.3g} triangles on "
                    f"the grains' faces in 3D, more than {MAX_BOUNDARY_TRIANGLES:g}; use a "
                    "larger gb_mesh_size (at most gb_width), larger grains or a smaller cell")
        return self

    def subregions(self) -> dict[str, tuple[str, int]]:
        if not self.tag_grains:
            return {}
        return {f"grain_{k}": ("electrolyte", SUBREGION_TAG_START + k)
                for k in range(self.n_grains)}


MODEL = PolycrystalGeometry


# ----------------------------------------------------------------------------- tessellation
def _clip(polygon: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """The part of the convex ``polygon`` (k x 2, counter-clockwise) where x . normal <= offset
    (Sutherland-Hodgman against one half-plane)."""
    if len(polygon) == 0:
        return polygon
    side = polygon @ normal - offset
    out = []
    for k in range(len(polygon)):
        p, q, sp, sq = polygon[k], polygon[(k + 1) % len(polygon)], side[k], side[(k + 1) % len(
            polygon)]
        if sp <= 0:
            out.append(p)
        if (sp < 0 < sq) or (sq < 0 < sp):
            out.append(p + (q - p) * (sp / (sp - sq)))
    return np.array(out).reshape(-1, 2)


def _area_centroid(polygon: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = polygon[:, 0], polygon[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    centroid = np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * area)
    return area, centroid


def voronoi_cells(seeds: np.ndarray, box: tuple[float, float, float, float],
                  shrink: float = 0.0) -> list[np.ndarray]:
    """The Voronoi cell of every seed inside ``box`` = (x0, y0, x1, y1), each edge shared with
    another cell moved inwards by ``shrink`` (edges on the box stay). A cell shrunk away is an
    empty array."""
    x0, y0, x1, y1 = box
    square = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    cells = []
    for i, s in enumerate(seeds):
        cell = square
        for j, t in enumerate(seeds):
            if j == i:
                continue
            d = t - s
            dist = math.hypot(*d)
            normal = d / dist
            cell = _clip(cell, normal, normal @ (s + t) / 2 - shrink)
        cells.append(cell)
    return cells


Polyhedron = list[np.ndarray]  # its planar faces, each (k x 3) counter-clockwise from outside


def _box_polyhedron(upper: np.ndarray) -> Polyhedron:
    """The box 0 < x < upper as six outward-oriented faces."""
    corner = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)]) * upper
    faces = [(0, 4, 6, 2), (1, 3, 7, 5), (0, 1, 5, 4), (2, 6, 7, 3), (0, 2, 3, 1), (4, 5, 7, 6)]
    return [corner[list(f)] for f in faces]


def _clip_polyhedron(faces: Polyhedron, normal: np.ndarray, offset: float,
                     tol: float) -> Polyhedron:
    """The part of the convex polyhedron ``faces`` where x . normal <= offset: every face
    clipped (Sutherland-Hodgman), and the cap on the plane closing the cut. Empty if nothing
    is left."""
    if not faces:
        return faces
    side_all = np.concatenate([f @ normal for f in faces]) - offset
    if side_all.max() <= tol:
        return faces
    if side_all.min() >= -tol:
        return []
    clipped, on_plane = [], []
    for f in faces:
        side = f @ normal - offset
        out = []
        for k in range(len(f)):
            p, q, sp, sq = f[k], f[(k + 1) % len(f)], side[k], side[(k + 1) % len(f)]
            if sp <= tol:
                out.append(p)
                if sp >= -tol:
                    on_plane.append(p)
            if (sp < -tol and sq > tol) or (sq < -tol and sp > tol):
                x = p + (q - p) * (sp / (sp - sq))
                out.append(x)
                on_plane.append(x)
        if len(out) >= 3:
            clipped.append(np.array(out))
    cap = _unique_points(np.array(on_plane), tol)
    if len(cap) >= 3:
        centre = cap.mean(axis=0)
        e1 = cap[0] - centre
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(normal, e1)
        angle = np.arctan2((cap - centre) @ e2, (cap - centre) @ e1)
        clipped.append(cap[np.argsort(angle)])
    return clipped


def _unique_points(points: np.ndarray, tol: float) -> np.ndarray:
    """``points`` without repeats closer than ``tol`` (first occurrence kept, in order)."""
    kept: list[np.ndarray] = []
    for p in points:
        if all(np.linalg.norm(p - q) > tol for q in kept):
            kept.append(p)
    return np.array(kept)


def volume_centroid(faces: Polyhedron) -> tuple[float, np.ndarray]:
    """Volume and centroid of a closed polyhedron with outward-oriented faces (tetrahedra fanned
    from a vertex mean)."""
    ref = np.concatenate(faces).mean(axis=0)
    total, moment = 0.0, np.zeros(3)
    for f in faces:
        a = f[0] - ref
        for k in range(1, len(f) - 1):
            b, c = f[k] - ref, f[k + 1] - ref
            v = float(a @ np.cross(b, c)) / 6
            total += v
            moment += v * (ref + f[0] + f[k] + f[k + 1]) / 4
    return total, moment / total


def face_area(face: np.ndarray) -> float:
    """Area of a planar polygon in 3D."""
    cross = np.cross(face - face[0], np.roll(face, -1, axis=0) - face[0]).sum(axis=0)
    return float(np.linalg.norm(cross)) / 2


def voronoi_cells_3d(seeds: np.ndarray, upper: np.ndarray,
                     shrink: float = 0.0) -> list[Polyhedron]:
    """The Voronoi cell of every seed inside the box 0 < x < ``upper``, each face shared with
    another cell moved inwards by ``shrink`` (faces on the box stay). A seed's planes are
    taken nearest seed first, and stop once the next bisector lies beyond the cell's farthest
    vertex (it cannot cut). A cell shrunk away is an empty list."""
    tol = 1e-9 * float(upper.max())
    cells = []
    for s in seeds:
        cell = _box_polyhedron(upper)
        distance = np.linalg.norm(seeds - s, axis=1)
        for j in np.argsort(distance)[1:]:
            if not cell or distance[j] / 2 - shrink > max(
                    np.linalg.norm(f - s, axis=1).max() for f in cell):
                break
            normal = (seeds[j] - s) / distance[j]
            cell = _clip_polyhedron(cell, normal, normal @ (s + seeds[j]) / 2 - shrink, tol)
        cells.append(cell)
    return cells


def grain_seeds(g: PolycrystalGeometry, unit: float) -> np.ndarray:
    """The seeds of the tessellation after the Lloyd iterations, in model units (``unit``
    metres each)."""
    upper = _layer(g, unit)
    rng = np.random.default_rng(g.seed)
    seeds = rng.uniform(np.zeros(len(upper)), upper, size=(g.n_grains, len(upper)))
    for _ in range(g.lloyd_iterations):
        if g.dim == 3:
            seeds = np.array([volume_centroid(c)[1] for c in voronoi_cells_3d(seeds, upper)])
        else:
            seeds = np.array([_area_centroid(c)[1]
                              for c in voronoi_cells(seeds, (0, 0, *upper))])
    return seeds


def _layer(g: PolycrystalGeometry, unit: float) -> np.ndarray:
    """The far corner of the grain layer in model units: (width, thickness[, depth])."""
    upper = [g.width, g.layer_thickness] + ([g.cell_depth] if g.dim == 3 else [])
    return np.array(upper) / unit


def grain_polyhedra(g: PolycrystalGeometry, unit: float) -> dict[int, Polyhedron]:
    """The grains of a 3D ``g`` as drawn, by seed number, in model units: Voronoi cells
    shrunk by gb_width / 2, without those too small to hold two elements across."""
    cells = voronoi_cells_3d(grain_seeds(g, unit), _layer(g, unit), shrink=g.gb_width / unit / 2)
    min_volume = (2 * g.gb_size / unit) ** 3
    return {k: c for k, c in enumerate(cells) if c and volume_centroid(c)[0] > min_volume}


def boundary_triangles(g: PolycrystalGeometry) -> float:
    """Estimated number of triangles of size gb_mesh_size on the faces of the 3D grains that
    face the boundary phase."""
    upper = _layer(g, 1e-6)
    area_um2 = 0.0
    for cell in grain_polyhedra(g, 1e-6).values():
        for f in cell:
            on_box = any(np.allclose(f[:, k], v, atol=1e-9 * upper.max())
                         for k in range(3) for v in (0.0, upper[k]))
            area_um2 += 0.0 if on_box else face_area(f)
    return area_um2 / ((g.gb_size / 1e-6) ** 2 * math.sqrt(3) / 4)


def grain_polygons(g: PolycrystalGeometry, unit: float) -> dict[int, np.ndarray]:
    """The grains of ``g`` as drawn, by seed number, in model units (``unit`` metres each):
    Voronoi cells shrunk by gb_width / 2, without those too small to hold two elements across
    (they become boundary phase)."""
    box = (0.0, 0.0, g.width / unit, g.layer_thickness / unit)
    cells = voronoi_cells(grain_seeds(g, unit), box, shrink=g.gb_width / unit / 2)
    min_area = (2 * g.gb_size / unit) ** 2
    return {k: p for k, p in enumerate(cells) if len(p) >= 3 and area(p) > min_area}


def area(polygon: np.ndarray) -> float:
    """Area of a counter-clockwise polygon (k x 2)."""
    return _area_centroid(polygon)[0]


# ----------------------------------------------------------------------------- gmsh model
def _add_polygon(polygon: np.ndarray) -> int:
    occ = gmsh.model.occ
    points = [occ.addPoint(x, y, 0.0) for x, y in polygon]
    lines = [occ.addLine(points[k], points[(k + 1) % len(points)]) for k in range(len(points))]
    return occ.addPlaneSurface([occ.addCurveLoop(lines)])


def _add_polyhedron(faces: Polyhedron, tol: float) -> int:
    """OCC volume bounded by the planar ``faces`` (points and edges shared between faces)."""
    occ = gmsh.model.occ
    coordinates: list[np.ndarray] = []
    point_tags: list[int] = []
    lines: dict[tuple[int, int], int] = {}

    def point(x: np.ndarray) -> int:
        """The point at x: a vertex of several faces, computed once per face, differs by
        round-off between them (matched within ``tol``, not by rounding to a grid, whose cell
        boundaries could split one vertex in two)."""
        for y, tag in zip(coordinates, point_tags, strict=True):
            if np.linalg.norm(x - y) <= tol:
                return tag
        coordinates.append(x)
        point_tags.append(occ.addPoint(*x))
        return point_tags[-1]

    surfaces = []
    for f in faces:
        ids = [point(x) for x in f]
        loop = []
        for a, b in zip(ids, ids[1:] + ids[:1], strict=True):
            if (a, b) in lines:
                loop.append(lines[a, b])
            elif (b, a) in lines:
                loop.append(-lines[b, a])
            else:
                lines[a, b] = occ.addLine(a, b)
                loop.append(lines[a, b])
        surfaces.append(occ.addPlaneSurface([occ.addCurveLoop(loop)]))
    return occ.addVolume([occ.addSurfaceLoop(surfaces)])


def build(g: PolycrystalGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (see ``planar.build``)."""
    occ = gmsh.model.occ
    dim = g.dim
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    H, D = g.layer_thickness / unit, g.cell_depth / unit
    h, h_if, h_gb = g.mesh_size / unit, g.interface_mesh_size / unit, g.gb_size / unit
    a, b = (g.void_half_width or 0.0) / unit, (g.void_depth or 0.0) / unit
    h_edge = (g.void_mesh_size / unit) if g.void_mesh_size else h_if / 4
    if dim == 3:
        tol = 1e-9 * max(W, H, D)
        grains = grain_polyhedra(g, unit)
        grain_entities = [_add_polyhedron(c, tol) for c in grains.values()]
    else:
        grains = grain_polygons(g, unit)
        grain_entities = [_add_polygon(p) for p in grains.values()]
    if len(grains) < 2:
        raise RuntimeError("polycrystal: fewer than two grains survive the boundary phase")

    def layer(y0: float, height: float) -> int:
        if dim == 2:
            return occ.addRectangle(0.0, y0, 0.0, W, height)
        return occ.addBox(0.0, y0, 0.0, W, height, D)

    li = layer(-L_li, L_li)
    li_pieces = cut_void(li, a, b, dim) if g.has_void else [(dim, li)]
    objects = [*li_pieces, (dim, layer(0.0, H))]
    if H < L_e * (1 - 1e-12):
        objects.append((dim, layer(H, L_e - H)))
    _, children = occ.fragment(objects, [(dim, e) for e in grain_entities])
    occ.synchronize()

    n_li = len(li_pieces)
    grain_of = {e: k for k, kids in zip(grains, children[len(objects):], strict=True)
                for _, e in kids}
    layer_pieces = {e for _, e in children[n_li]}
    regions: dict[str, list[int]] = {
        "li": [e for kids in children[:n_li] for _, e in kids], "electrolyte": [],
        "gb": sorted(layer_pieces - set(grain_of))}
    regions["electrolyte"] = sorted(set(grain_of)) + sorted(
        {e for kids in children[n_li + 1:len(objects)] for _, e in kids})
    boundaries = sort_curves(regions, W, -L_li, L_e, depth=D if dim == 3 else None)
    # the void's Li wall and the grains' and boundaries' faces above it
    boundaries["void_surface"] = boundaries.pop("free")
    if boundaries["void_surface"] and not g.has_void:
        raise RuntimeError("polycrystal: a boundary is on no known boundary")
    if g.tag_grains:
        grain_tags = {name: tag for name, (_, tag) in g.subregions().items()}
        by_grain: dict[int, list[int]] = {}
        for e, k in grain_of.items():
            by_grain.setdefault(k, []).append(e)
        for k, ents in sorted(by_grain.items()):
            name = f"grain_{k}"
            gmsh.model.addPhysicalGroup(dim, ents, grain_tags[name], name=name)
        rest = [e for e in regions["electrolyte"] if e not in grain_of]
        if rest:
            gmsh.model.addPhysicalGroup(dim, rest, CELL_TAGS["electrolyte"], name="electrolyte")
        add_physical_groups({"li": regions["li"], "gb": regions["gb"]}, boundaries, dim)
    else:
        add_physical_groups(regions, boundaries, dim)

    contact = boundaries["interface"] + boundaries["void_surface"]
    edge_points, rim = void_edge(a, dim, 1e-9 * max(W, L_li, L_e)) if g.has_void else ([], [])
    if dim == 2:
        refine_near(contact, [(edge_points, h_edge)], h_if, h,
                    curve_groups=[(boundaries["gb_boundary"], h_gb)])
    else:  # planar faces: a coarse sampling of the distance finds them
        size_field([(contact, h_if, "SurfacesList", 50),
                    (boundaries["gb_boundary"], h_gb, "SurfacesList", 30),
                    (rim, h_edge, "CurvesList", 200)], h)
    gmsh.model.mesh.generate(dim)
