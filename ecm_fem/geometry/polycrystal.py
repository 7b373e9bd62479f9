"""Polycrystalline electrolyte in 2D: the planar Li | electrolyte stack whose electrolyte next to
the interface (0 < y < grain_layer_thickness) is a layer of grains separated by a resolved
grain-boundary phase of width gb_width, the region ``gb``; above the layer the electrolyte is
homogeneous.

Grains are the cells of a Voronoi tessellation of the layer, made reproducible by ``seed``: seeds
drawn uniformly, then moved by Lloyd iterations to their cells' centroids (regular grains without
slivers). Each grain is its Voronoi cell shrunk by gb_width / 2 along every edge it shares with
another grain; edges on the layer's outer boundary are not shrunk, so grains touch the Li, the
sides and the homogeneous electrolyte, and the grain-boundary strips meet the interface at their
full width. The grains are ``electrolyte`` (or, with tag_grains, sub-regions ``grain_0``,
``grain_1``, ... of it with cell tags 101, 102, ...); Li | grain and Li | gb contacts are
``interface``; gb | grain boundaries are ``gb_boundary``. Elements shrink to
``interface_mesh_size`` at the interface and to gb_mesh_size along the grain boundaries.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import gmsh
import numpy as np
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry
from ecm_fem.geometry.tags import CELL_TAGS, SUBREGION_TAG_START

MAX_GRAINS = 400  # beyond this the mesh of the grain boundaries alone is too large for 2D runs


class PolycrystalGeometry(PlanarGeometry):
    """The planar stack with a polycrystalline electrolyte layer at the interface: Voronoi grains
    (reproducible from ``seed``) separated by a grain-boundary phase of width gb_width (region
    ``gb``, materials.gb, kinetics.regions.gb where it touches the Li)."""

    SUPPORTS_3D: ClassVar[bool] = False
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = False

    kind: Literal["polycrystal"] = "polycrystal"  # type: ignore[assignment]
    grain_size: Length = Field(
        5e-6, description="mean grain size d [m]: the layer holds round(layer area / d^2) grains")
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
        return max(2, round(self.width * self.layer_thickness / self.grain_size**2))

    @model_validator(mode="after")
    def _grains_fit(self) -> PolycrystalGeometry:
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with a polycrystal yet")
        if self.layer_thickness > self.electrolyte_thickness:
            raise ValueError(
                f"grain_layer_thickness = {self.layer_thickness:g} m must not exceed "
                f"electrolyte_thickness = {self.electrolyte_thickness:g} m")
        if self.grain_size > min(self.width, self.layer_thickness):
            raise ValueError(
                f"grain_size = {self.grain_size:g} m must not exceed the layer's width "
                f"({self.width:g} m) and thickness ({self.layer_thickness:g} m)")
        if self.gb_width > self.grain_size / 5:
            raise ValueError(
                f"gb_width = {self.gb_width:g} m must be at most grain_size / 5 = "
                f"{self.grain_size / 5:g} m (the grains would be mostly boundary)")
        if self.gb_size > self.gb_width:
            raise ValueError(
                f"gb_mesh_size = {self.gb_size:g} m must not exceed gb_width = "
                f"{self.gb_width:g} m (at least one element across the boundary)")
        if self.n_grains > MAX_GRAINS:
            raise ValueError(
                f"grain_size = {self.grain_size:g} m gives {self.n_grains} grains, more than "
                f"{MAX_GRAINS}; use larger grains or a thinner grain_layer_thickness")
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


def grain_seeds(g: PolycrystalGeometry, unit: float) -> np.ndarray:
    """The seeds of the tessellation after the Lloyd iterations, in model units (``unit``
    metres each)."""
    W, H = g.width / unit, g.layer_thickness / unit
    rng = np.random.default_rng(g.seed)
    seeds = rng.uniform((0.0, 0.0), (W, H), size=(g.n_grains, 2))
    for _ in range(g.lloyd_iterations):
        seeds = np.array([_area_centroid(c)[1] for c in voronoi_cells(seeds, (0, 0, W, H))])
    return seeds


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


def build(g: PolycrystalGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (see ``planar.build``)."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    H = g.layer_thickness / unit
    h, h_if, h_gb = g.mesh_size / unit, g.interface_mesh_size / unit, g.gb_size / unit
    grains = grain_polygons(g, unit)
    if len(grains) < 2:
        raise RuntimeError("polycrystal: fewer than two grains survive the boundary phase")

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    layer = occ.addRectangle(0.0, 0.0, 0.0, W, H)
    objects = [(2, li), (2, layer)]
    if H < L_e * (1 - 1e-12):
        objects.append((2, occ.addRectangle(0.0, H, 0.0, W, L_e - H)))
    grain_surfaces = [_add_polygon(p) for p in grains.values()]
    _, children = occ.fragment(objects, [(2, s) for s in grain_surfaces])
    occ.synchronize()

    grain_of = {s: k for k, kids in zip(grains, children[len(objects):], strict=True)
                for _, s in kids}
    layer_pieces = {s for _, s in children[1]}
    surfaces: dict[str, list[int]] = {"li": [s for _, s in children[0]], "electrolyte": [],
                                      "gb": sorted(layer_pieces - set(grain_of))}
    surfaces["electrolyte"] = sorted(set(grain_of)) + sorted(
        {s for kids in children[2:len(objects)] for _, s in kids})
    curves = sort_curves(surfaces, W, -L_li, L_e)
    if curves.pop("free"):
        raise RuntimeError("polycrystal: a boundary curve is on no known boundary")
    if g.tag_grains:
        grain_tags = {name: tag for name, (_, tag) in g.subregions().items()}
        by_grain: dict[int, list[int]] = {}
        for s, k in grain_of.items():
            by_grain.setdefault(k, []).append(s)
        for k, ents in sorted(by_grain.items()):
            name = f"grain_{k}"
            gmsh.model.addPhysicalGroup(2, ents, grain_tags[name], name=name)
        rest = [s for s in surfaces["electrolyte"] if s not in grain_of]
        if rest:
            gmsh.model.addPhysicalGroup(2, rest, CELL_TAGS["electrolyte"], name="electrolyte")
        add_physical_groups({"li": surfaces["li"], "gb": surfaces["gb"]}, curves)
    else:
        add_physical_groups(surfaces, curves)

    refine_near(curves["interface"], [], h_if, h,
                curve_groups=[(curves["gb_boundary"], h_gb)])
    gmsh.model.mesh.generate(2)
