"""Li protrusion in 2D and 3D: the planar Li | electrolyte stack with a Li boss growing into the
electrolyte. The boss is part of the Li region and cut from the electrolyte. Tags: the whole
Li | electrolyte contact, the flat part of y = 0 outside the boss's base and the protrusion
surface, is `interface`.

In 2D the boss is a quarter ellipse centred on the symmetry line x = 0 (so the cell holds half
of a semi-elliptic boss of base half width b = protrusion_half_width and height
h = protrusion_height; the pattern repeats with period 2 width). The flat part of the interface
is y = 0, b < x < width. Elements shrink to ``interface_mesh_size`` along the interface and to
``tip_mesh_size`` at the tip (0, h). With ``axisymmetric`` the same drawing is the (r, z)
section of a half-spheroidal boss on the axis of a cylindrical cell of radius width.

In 3D the boss is half of a spheroid with semi-axes b (along x and z) and h (along +y, into the
electrolyte), centred at the corner x = z = 0 of the box 0 < x < width, 0 < z < depth, whose
sides x = 0 and z = 0 are symmetry planes: the cell holds a quarter of the half-spheroid (a
dome, prolate for h > b, oblate for h < b), and the pattern repeats with period 2 width along x
and 2 depth along z. Its base is the quarter disk x^2 + z^2 < b^2 of y = 0; the flat part of the
interface is the rest of y = 0. The dome is drawn as the quarter ellipse of the 2D builder
(in the plane z = 0) revolved by 90 degrees about the y axis, so its tip (0, h, 0) is a model
point on the edge where the two symmetry planes meet. Elements shrink to
``interface_mesh_size`` on the interface surfaces and to ``tip_mesh_size`` at the tip.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_ellipse_disk, add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry


class LiProtrusionGeometry(PlanarGeometry):
    """The planar stack with a Li protrusion into the electrolyte. 2D: a quarter ellipse at
    x = 0 (the side x = 0 is a symmetry line, so the cell holds half of a semi-elliptic boss of
    full width 2 protrusion_half_width, repeated with period 2 width). 3D: a quarter of a
    half-spheroid at the corner x = z = 0 (the sides x = 0 and z = 0 are symmetry planes; base
    radius protrusion_half_width, height protrusion_height along y). The whole Li | electrolyte
    contact, flat part and protrusion surface, is the interface."""

    SUPPORTS_3D: ClassVar[bool] = True

    kind: Literal["li_protrusion"] = "li_protrusion"  # type: ignore[assignment]
    protrusion_height: Length = Field(
        2e-6, description="height h of the protrusion above the flat interface, along y [m]")
    protrusion_half_width: Length = Field(
        2e-6, description="half width b of the protrusion's base, along x (in 3D the radius "
        "of its circular base in the plane y = 0, along x and z) [m]")
    tip_mesh_size: Length | None = Field(
        None, description="element size at the protrusion tip [m] "
        "(default interface_mesh_size / 4)")

    @property
    def tip_size(self) -> float:
        """Element size at the tip [m], the default filled in."""
        return self.tip_mesh_size or self.interface_mesh_size / 4

    @model_validator(mode="after")
    def _protrusion_fits(self) -> LiProtrusionGeometry:
        b, h = self.protrusion_half_width, self.protrusion_height
        if b >= self.width:
            raise ValueError(
                f"protrusion_half_width = {b:g} m must be smaller than width = "
                f"{self.width:g} m (the protrusion would cover the whole interface)")
        if self.dim == 3 and b >= self.cell_depth:
            raise ValueError(
                f"protrusion_half_width = {b:g} m must be smaller than depth = "
                f"{self.cell_depth:g} m in 3D (the protrusion's base would reach the side "
                "z = depth)")
        if h >= self.electrolyte_thickness:
            raise ValueError(f"protrusion_height = {h:g} m must be smaller than "
                             f"electrolyte_thickness = {self.electrolyte_thickness:g} m "
                             "(the protrusion would reach the counter boundary)")
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with a protrusion yet")
        if self.tip_mesh_size is not None and self.tip_mesh_size > self.interface_mesh_size:
            raise ValueError(f"tip_mesh_size = {self.tip_mesh_size:g} m must not exceed "
                             f"interface_mesh_size = {self.interface_mesh_size:g} m")
        if self.tip_size > min(b, h) / 2:
            raise ValueError(
                f"tip_mesh_size: the tip elements ({self.tip_size:g} m) must be at most half "
                f"of min(protrusion_half_width, protrusion_height) = {min(b, h):g} m to "
                "resolve the protrusion (set tip_mesh_size or interface_mesh_size smaller)")
        return self


MODEL = LiProtrusionGeometry


def build(g: LiProtrusionGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    b, h_p = g.protrusion_half_width / unit, g.protrusion_height / unit
    h, h_if, h_tip = g.mesh_size / unit, g.interface_mesh_size / unit, g.tip_size / unit
    dim, D = g.dim, g.cell_depth / unit

    if dim == 2:
        li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
        el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    else:
        li = occ.addBox(0.0, -L_li, 0.0, W, L_li, D)
        el = occ.addBox(0.0, 0.0, 0.0, W, L_e, D)
    quadrant = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    boss, _ = occ.intersect([(2, add_ellipse_disk(b, h_p))], [(2, quadrant)])
    if dim == 3:  # the quarter ellipse of the plane z = 0 swept about the y axis into z > 0
        swept = occ.revolve(boss, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -math.pi / 2)
        boss = [(d, t) for d, t in swept if d == 3]
    el_cut, _ = occ.cut([(dim, el)], boss, removeTool=False)
    li_fused, _ = occ.fuse([(dim, li)], boss)
    _, pieces = occ.fragment(li_fused, el_cut)
    occ.synchronize()

    surfaces = {"li": [s for _, s in pieces[0]], "electrolyte": [s for _, s in pieces[1]]}
    curves = sort_curves(surfaces, W, -L_li, L_e, depth=D if dim == 3 else None)
    if curves.pop("free"):
        raise RuntimeError("li_protrusion: a boundary curve is neither the interface nor on "
                           "the cell's outer box")
    add_physical_groups(surfaces, curves, dim)

    tol = 1e-9 * max(W, L_li, L_e)

    def at_tip(point: int) -> bool:
        x, y, z = gmsh.model.getValue(0, point, [])
        return abs(x) < tol and abs(y - h_p) < tol and abs(z) < tol

    tip = [p for _, p in gmsh.model.getEntities(0) if at_tip(p)]
    if len(tip) != 1:
        raise RuntimeError(f"li_protrusion: expected one model point at the tip, found {len(tip)}")
    refine_near(curves["interface"], [(tip, h_tip)], h_if, h, dim=dim)
    gmsh.model.mesh.generate(dim)
