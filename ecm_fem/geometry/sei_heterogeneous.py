"""Heterogeneous SEI in 2D and 3D: the planar Li | SEI | electrolyte stack (Li below y = 0),
where the SEI is made of pieces of different thickness: patches, and the base layer of
``sei_thickness`` (0 allowed: SEI only on the patches) around them. With ``axisymmetric`` the
2D drawing is the (r, z) section of a cylindrical cell: the patches and gaps are rings (discs
when x_min = 0) about the axis x = 0.

A patch with thickness > 0 is its own sub-region (cell tag 101 + its index in ``patches``,
parent ``sei``), with its own conductivity and kinetics through ``materials.patches`` and
``kinetics.regions``; the base layer is ``sei``; a patch of thickness 0 is a gap through the SEI
(cracked SEI) where the Li touches the electrolyte. Every Li contact at y = 0 is ``interface``;
SEI | electrolyte boundaries (the SEI's tops and the walls of its steps) are
``sei_electrolyte``; a wall between two SEI pieces is inside the SEI and untagged. Then
``side``, ``li_cc`` (y = -li_thickness) and ``counter`` (y = electrolyte_thickness) as for the
planar stack. Boundaries are classified by the regions on their two sides, so steps and gaps
need no special case.

2D (0 < x < width): a patch is the stretch x_min < x < x_max; patches are listed left to right.

3D (``dim: 3``, the box 0 < x < width, 0 < z < depth, y the stacking direction as in 2D): a
patch is the rectangle x_min < x < x_max, z_min < z < z_max of the interface, covered by a box
of SEI of the patch's thickness; ``z_min`` and ``z_max`` default to 0 and depth, so the patches
of a 2D config are stripes across the depth. Patches may lie anywhere on the interface, in any
order, but must not overlap.

Mesh: elements of ``sei_element_size`` on the interface and the SEI | electrolyte surfaces,
growing to ``mesh_size`` over 8 mesh_size; that size is ``interface_mesh_size``, capped with
``sei_mesh: resolved`` (the default, and what 2D always did) at half the thinnest SEI piece, so
that at least two elements span the SEI. In 3D the SEI is meshed structured: the x and z ends
of the patches cut the interface into a grid of rectangles and every distinct SEI thickness is a
level cutting all columns, so the SEI is a set of boxes, each a grid of hexahedra of about that
size (at least one per edge) split into tetrahedra by gmsh. ``sei_mesh: flat`` (3D only) keeps
interface_mesh_size whatever the SEI's thickness: a thinner SEI is then one element thick per
level, the elements flat (aspect ratio interface_mesh_size / thickness; gmsh's split gives them
dihedral angles up to 150 degrees at aspect ratio 2.5, 172 at 10). Linear elements carry the
potential of a uniform column exactly on either mesh, so columns away from the steps get their
1D current.
Flat elements cannot resolve the lateral boundary layer at a step (about one SEI thickness
wide): they smear it over the first element and the interface current overshoots and relaxes to
the column's value over about five elements (measured in tests/test_sei_3d.py: within 2 % at
four elements, 0.5 % at five), and the current drawn at the steps is overestimated by a part of
order element size / patch size. (An unstructured mesh of the thin layer did worse: nodal
currents scattered by tens of percent across whole patches.) In 3D a resolved thin SEI costs
about 2 width depth / (thickness / 2)^2 triangles on the interface alone: a resolved 3D mesh
whose SEI needs more than ``MAX_RESOLVED_3D_TRIANGLES`` there is refused before gmsh runs (use
``sei_mesh: flat``, a thicker SEI or a smaller cell).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, ClassVar, Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Identifier, Length, PlanarGeometry, StrictModel
from ecm_fem.geometry.tags import CELL_NAMES, CELL_TAGS, SUBREGION_TAG_START

MAX_RESOLVED_3D_TRIANGLES = 2e5  # estimated interface triangles of a resolved 3D SEI mesh


class SeiPatch(StrictModel):
    """A stretch x_min < x < x_max of the SEI (in 3D the rectangle x_min < x < x_max,
    z_min < z < z_max of the interface) with its own thickness (and, through
    ``materials.patches`` and ``kinetics.regions``, its own conductivity and kinetics)."""

    name: Identifier = Field(description="patch name, the key in materials.patches and "
                             "kinetics.regions")
    x_min: Annotated[float, Field(ge=0, le=1.0)] = Field(description="left end of the patch [m]")
    x_max: Length = Field(description="right end of the patch [m]")
    z_min: Annotated[float, Field(ge=0, le=1.0)] | None = Field(
        None, description="front end of the patch along z [m], dim: 3 only (default 0: from "
        "the side z = 0)")
    z_max: Length | None = Field(
        None, description="back end of the patch along z [m], dim: 3 only (default depth: to "
        "the side z = depth)")
    thickness: Annotated[float, Field(ge=0, le=1e-5)] = Field(
        description="SEI thickness over the patch [m]; 0: a gap (cracked SEI), where Li touches "
        "the electrolyte")


class SeiHeterogeneousGeometry(PlanarGeometry):
    """The planar stack with a resolved SEI of thickness ``sei_thickness`` (0 allowed: SEI only
    on the patches) interrupted by patches of other thickness and properties: stretches of x in
    2D, rectangles of the x-z plane in 3D. Each patch with thickness > 0 is a sub-region of
    ``sei`` with its own cell tag (101, 102, ... in the order listed); where the SEI is absent
    the Li touches the electrolyte. The Li | SEI and Li | electrolyte contacts are all
    ``interface``; the SEI's tops and step walls are ``sei_electrolyte``."""

    SUPPORTS_3D: ClassVar[bool] = True
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = True  # patches and gaps become rings

    kind: Literal["sei_heterogeneous"] = "sei_heterogeneous"  # type: ignore[assignment]
    patches: list[SeiPatch] = Field(min_length=1, description="the SEI patches (in 2D left to "
                                    "right; in 3D in any order, not overlapping)")
    sei_mesh: Literal["resolved", "flat"] = Field(
        "resolved", description="element size at the SEI: 'resolved' caps interface_mesh_size "
        "at half the thinnest SEI piece (two or more elements across the SEI); 'flat' keeps "
        "interface_mesh_size, so a thinner SEI is one element thick with flat elements (dim: 3 "
        "only; the affordable choice for a thin SEI in 3D)")

    @model_validator(mode="after")
    def _patches_fit(self) -> SeiHeterogeneousGeometry:
        names = [p.name for p in self.patches]
        if len(set(names)) < len(names):
            raise ValueError(f"patches: names must be unique (got {names})")
        for k, p in enumerate(self.patches):
            key = f"patches[{k}] ({p.name})"
            if p.x_max <= p.x_min:
                raise ValueError(f"{key}: x_max must exceed x_min")
            if p.x_max > self.width * (1 + 1e-12):
                raise ValueError(f"{key}: x_max = {p.x_max:g} m is beyond "
                                 f"width = {self.width:g} m")
            if p.thickness >= self.electrolyte_thickness:
                raise ValueError(f"{key}: thickness must be smaller than electrolyte_thickness")
            if self.dim == 2:
                for z_key in ("z_min", "z_max"):
                    if getattr(p, z_key) is not None:
                        raise ValueError(f"{key}: {z_key}: only for dim: 3")
                if k and p.x_min < self.patches[k - 1].x_max * (1 - 1e-12):
                    raise ValueError(f"{key}: patches must be listed left to right without "
                                     "overlap")
            else:
                self._check_3d_patch(k, key)
        if self.dim == 2 and self.sei_mesh == "flat":
            raise ValueError("sei_mesh: flat is for dim: 3 (2D meshes resolve the SEI)")
        size = self.sei_element_size
        if self.dim == 3 and size < self.interface_mesh_size:  # refined for the SEI
            triangles = 2 * self.width * self.cell_depth / size**2
            if triangles > MAX_RESOLVED_3D_TRIANGLES:
                raise ValueError(
                    f"sei_mesh: resolved puts elements of {size:g} m (half the thinnest SEI "
                    f"piece) on the {self.width:g} m x {self.cell_depth:g} m interface, about "
                    f"{triangles:.2g} triangles there alone (at most "
                    f"{MAX_RESOLVED_3D_TRIANGLES:.0e} in 3D); use sei_mesh: flat (elements of "
                    "interface_mesh_size, flat across the SEI), a thicker SEI or a smaller cell")
        return self

    def _check_3d_patch(self, k: int, key: str) -> None:
        """The z extent of patch ``k`` inside the cell and its footprint overlapping no earlier
        patch's; ``key`` names the patch in messages."""
        depth = self.cell_depth
        p = self.patches[k]
        z0, z1 = self.z_range(p)
        if p.z_min is not None and p.z_min >= depth * (1 - 1e-12):
            raise ValueError(f"{key}: z_min = {p.z_min:g} m is not inside depth = {depth:g} m")
        if z1 <= z0:
            raise ValueError(f"{key}: z_max must exceed z_min")
        if z1 > depth * (1 + 1e-12):
            raise ValueError(f"{key}: z_max = {z1:g} m is beyond depth = {depth:g} m")
        tol = 1e-12 * max(self.width, depth)
        for j, q in enumerate(self.patches[:k]):
            q0, q1 = self.z_range(q)
            if (min(p.x_max, q.x_max) - max(p.x_min, q.x_min) > tol
                    and min(z1, q1) - max(z0, q0) > tol):
                raise ValueError(f"{key}: overlaps patches[{j}] ({q.name}) in the x-z plane "
                                 f"(x {p.x_min:g} to {p.x_max:g} m, z {z0:g} to {z1:g} m against "
                                 f"x {q.x_min:g} to {q.x_max:g} m, z {q0:g} to {q1:g} m)")

    def z_range(self, p: SeiPatch) -> tuple[float, float]:
        """(z_min, z_max) [m] of patch ``p`` in 3D, the defaults (the whole depth) filled in."""
        return (p.z_min or 0.0, p.z_max if p.z_max is not None else self.cell_depth)

    def subregions(self) -> dict[str, tuple[str, int]]:
        return {p.name: ("sei", SUBREGION_TAG_START + k)
                for k, p in enumerate(self.patches) if p.thickness > 0}

    @property
    def has_resolved_sei(self) -> bool:
        return self.sei_thickness > 0 or any(p.thickness > 0 for p in self.patches)

    @property
    def sei_element_size(self) -> float:
        """Element size [m] on the interface and the SEI | electrolyte surfaces."""
        if self.sei_mesh == "flat":
            return self.interface_mesh_size
        return min([self.interface_mesh_size, *(t / 2 for t in self._piece_thicknesses())])

    def _piece_thicknesses(self) -> list[float]:
        """Thicknesses [m] of the SEI pieces present: the patches' and, unless the patches
        cover the whole interface, the base layer's; gaps left out."""
        if self.dim == 2:
            return [t for _, _, t, _ in self.sei_pieces() if t > 0]
        covered = sum((p.x_max - p.x_min) * (z1 - z0)
                      for p in self.patches for z0, z1 in [self.z_range(p)])
        base = [self.sei_thickness] if covered < self.width * self.cell_depth * (1 - 1e-9) \
            else []
        return [t for t in (*base, *(p.thickness for p in self.patches)) if t > 0]

    def sei_pieces(self) -> list[tuple[float, float, float, str]]:
        """The 2D SEI as (x_min, x_max, thickness [m], sub-region name or 'sei') pieces covering
        0 < x < width, gaps included with thickness 0."""
        pieces, x = [], 0.0
        for p in self.patches:
            if p.x_min > x:
                pieces.append((x, p.x_min, self.sei_thickness, "sei"))
            pieces.append((p.x_min, p.x_max, p.thickness, p.name))
            x = p.x_max
        if x < self.width:
            pieces.append((x, self.width, self.sei_thickness, "sei"))
        return pieces


MODEL = SeiHeterogeneousGeometry


def build(g: SeiHeterogeneousGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (see ``planar.build``)."""
    region_of = _draw_3d(g, unit) if g.dim == 3 else _draw_2d(g, unit)
    dim = g.dim
    sub_tags = {name: tag for name, (_, tag) in g.subregions().items()}

    def region(tag: int) -> str:  # patches belong to sei
        return CELL_NAMES.get(tag, "sei")

    by_region: dict[str, list[int]] = {}
    by_tag: dict[int, list[int]] = {}
    for entity, tag in region_of.items():
        by_region.setdefault(region(tag), []).append(entity)
        by_tag.setdefault(tag, []).append(entity)
    depth = g.cell_depth / unit if dim == 3 else None
    boundaries = sort_curves(by_region, g.width / unit, -g.li_thickness / unit,
                             g.electrolyte_thickness / unit, depth=depth)
    if boundaries.pop("free"):
        raise RuntimeError("sei_heterogeneous: a boundary is on no known boundary")

    names = CELL_NAMES | {v: k for k, v in sub_tags.items()}
    for tag, ents in sorted(by_tag.items()):
        gmsh.model.addPhysicalGroup(dim, ents, tag, name=names[tag])
    add_physical_groups({}, boundaries, dim)

    refine_near(boundaries["interface"] + boundaries["sei_electrolyte"], [],
                g.sei_element_size / unit, g.mesh_size / unit, dim=dim)
    gmsh.model.mesh.generate(dim)


def _draw_2d(g: SeiHeterogeneousGeometry, unit: float) -> dict[int, int]:
    """The synchronised 2D model; returns surface -> cell tag."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    sub_tags = {name: tag for name, (_, tag) in g.subregions().items()}

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    pieces = []  # (rectangle bounds in model units, cell tag)
    rectangles = [(2, el)]
    for x0, x1, t, name in g.sei_pieces():
        if t > 0:
            x0, x1, t = x0 / unit, x1 / unit, t / unit
            rectangles.append((2, occ.addRectangle(x0, 0.0, 0.0, x1 - x0, t)))
            pieces.append(((x0, x1, t), sub_tags.get(name, CELL_TAGS["sei"])))
    occ.fragment([(2, li)], rectangles)
    occ.synchronize()

    region_of: dict[int, int] = {}
    for _, s in gmsh.model.getEntities(2):
        x, y, _ = occ.getCenterOfMass(2, s)
        tag = CELL_TAGS["li"] if y < 0 else CELL_TAGS["electrolyte"]
        for (x0, x1, t), piece_tag in pieces:
            if x0 < x < x1 and 0 < y < t:
                tag = piece_tag
        region_of[s] = tag
    return region_of


def _draw_3d(g: SeiHeterogeneousGeometry, unit: float) -> dict[int, int]:
    """The synchronised 3D model with a structured SEI; returns volume -> cell tag.

    The SEI is a grid of boxes: the x and z ends of the patches (and of the cell) cut the
    interface into rectangles, each taking the thickness of the patch over it or the base
    layer's, and every distinct thickness is a level at which all columns are cut. So each box
    shares whole faces with its neighbours or the electrolyte and can be a transfinite volume:
    elements of the SEI's size along the interface, as many across as fit (one when the SEI is
    thinner than them). The inputs of the final fragment do not overlap, so each output volume
    comes from one input (a base layer with holes would have its centre of mass in a hole)."""
    occ = gmsh.model.occ
    W, D = g.width / unit, g.cell_depth / unit
    L_li, L_e = g.li_thickness / unit, g.electrolyte_thickness / unit
    h = g.sei_element_size / unit
    tol = 1e-9 * max(W, D)
    sub_tags = {name: tag for name, (_, tag) in g.subregions().items()}

    footprints = []  # (x0, x1, z0, z1, thickness, cell tag or None for a gap) in model units
    for p in g.patches:
        z0, z1 = g.z_range(p)
        footprints.append((p.x_min / unit, min(p.x_max / unit, W), z0 / unit,
                           min(z1 / unit, D), p.thickness / unit, sub_tags.get(p.name)))
    xs = _distinct([0.0, W, *(f[0] for f in footprints), *(f[1] for f in footprints)], tol)
    zs = _distinct([0.0, D, *(f[2] for f in footprints), *(f[3] for f in footprints)], tol)
    columns = []  # (x0, x1, z0, z1, thickness, cell tag) with thickness > 0
    for x0, x1 in pairwise(xs):
        for z0, z1 in pairwise(zs):
            xc, zc = (x0 + x1) / 2, (z0 + z1) / 2
            t, tag = g.sei_thickness / unit, CELL_TAGS["sei"]
            for fx0, fx1, fz0, fz1, ft, ftag in footprints:
                if fx0 < xc < fx1 and fz0 < zc < fz1:
                    t, tag = ft, ftag
            if t > 0:
                columns.append((x0, x1, z0, z1, t, tag))
    levels = _distinct([c[4] for c in columns], tol)

    li = (3, occ.addBox(0.0, -L_li, 0.0, W, L_li, D))
    sei: list[tuple[tuple[int, int], int]] = []  # (box, cell tag)
    for x0, x1, z0, z1, t, tag in columns:
        bottom = 0.0
        for top in (y for y in levels if y < t + tol):
            sei.append(((3, occ.addBox(x0, bottom, z0, x1 - x0, top - bottom, z1 - z0)), tag))
            bottom = top
    electrolyte = [(3, occ.addBox(0.0, 0.0, 0.0, W, L_e, D))]
    if sei:
        electrolyte, _ = occ.cut(electrolyte, [v for v, _ in sei], removeTool=False)
    inputs = [(li, CELL_TAGS["li"]), *((v, CELL_TAGS["electrolyte"]) for v in electrolyte), *sei]
    _, pieces = occ.fragment([li], [v for v, _ in inputs[1:]])
    occ.synchronize()

    for out in pieces[len(inputs) - len(sei):]:
        if len(out) != 1:
            raise RuntimeError("sei_heterogeneous: an SEI box was split by the fragment")
        _make_transfinite_box(out[0][1], h)
    return {v: tag for (_, tag), out in zip(inputs, pieces, strict=True) for _, v in out}


def _distinct(values: list[float], tol: float) -> list[float]:
    """The sorted ``values`` with those closer than ``tol`` to a smaller one left out."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > tol:
            out.append(v)
    return out


def _make_transfinite_box(volume: int, h: float) -> None:
    """Mesh the box ``volume`` as a structured grid of edge about ``h`` (at least one element
    along each edge): transfinite edges, faces and volume."""
    faces = [f for _, f in gmsh.model.getBoundary([(3, volume)], oriented=False)]
    edges = {abs(c) for f in faces
             for _, c in gmsh.model.getBoundary([(2, f)], oriented=False)}
    if len(faces) != 6 or len(edges) != 12:
        raise RuntimeError(f"sei_heterogeneous: SEI box {volume} has {len(faces)} faces and "
                           f"{len(edges)} edges, not 6 and 12")
    for c in edges:
        length = gmsh.model.occ.getMass(1, c)
        gmsh.model.mesh.setTransfiniteCurve(c, max(1, math.ceil(length / h - 1e-6)) + 1)
    for f in faces:
        gmsh.model.mesh.setTransfiniteSurface(f)
    gmsh.model.mesh.setTransfiniteVolume(volume)
