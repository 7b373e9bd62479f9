"""Interfacial void in 2D: the planar Li | electrolyte stack with an elliptical void cut from
the Li at the interface, centred on the symmetry line x = 0 (so the cell holds half a void of
half width a = void_half_width and depth b = void_depth; the pattern repeats with period
2 width). Tags: the Li | electrolyte contact outside the void is `interface`; the electrolyte face
above the void and the Li's void wall are `void_surface` (no current, no traction). With
``axisymmetric`` the same drawing is the (r, z) section of a spheroidal cap (radius a, depth b)
on the axis of a cylindrical cell of radius width.

In 3D the void is half of an ellipsoid with semi-axes a (along x and z) and b (into the Li along
-y), centred at the corner x = z = 0 of the box 0 < x < width, 0 < z < depth, whose sides
x = 0 and z = 0 are symmetry planes: the cell holds a quarter of the void. Elements shrink to
void_mesh_size along the void's rim on y = 0.
"""

from __future__ import annotations

from typing import Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_ellipse_disk, add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry


class InterfacialVoidGeometry(PlanarGeometry):
    """The planar stack with a void in the Li at the interface: a quarter ellipse at x = 0
    (the side x = 0 is a symmetry line, so the cell holds half of a void of full width
    2 void_half_width, repeated with period 2 width). The electrolyte face above the void
    carries no current and no traction."""

    kind: Literal["interfacial_void"] = "interfacial_void"  # type: ignore[assignment]
    void_half_width: Length = Field(5e-6, description="half width a of the void along x [m]")
    void_depth: Length = Field(2e-6, description="depth b of the void into the Li [m]")
    void_mesh_size: Length | None = Field(
        None, description="element size at the void edge [m] (default interface_mesh_size / 4)")

    @model_validator(mode="after")
    def _void_fits(self) -> InterfacialVoidGeometry:
        check_void_fits(self)
        if self.sei_thickness > 0:
            raise ValueError("sei_thickness: a resolved SEI is not supported with a void yet")
        return self


def check_void_fits(g: PlanarGeometry) -> None:
    """ValueError naming the key when the void of ``g`` (fields void_half_width, void_depth)
    does not fit the cell."""
    if g.void_half_width >= min(g.width, g.cell_depth):
        raise ValueError(
            f"void_half_width = {g.void_half_width:g} m must be smaller than width = "
            f"{g.width:g} m (and depth in 3D; the void would cover the whole interface)")
    if g.void_depth >= g.li_thickness:
        raise ValueError(f"void_depth = {g.void_depth:g} m must be smaller than "
                         f"li_thickness = {g.li_thickness:g} m")


def cut_void(li: int, a: float, b: float, dim: int) -> list[tuple[int, int]]:
    """The Li entity ``li`` (model units) less the void at the origin: the ellipse of semi-axes
    a (x) and b (y) in 2D, the ellipsoid (a, b, a) in 3D."""
    occ = gmsh.model.occ
    if dim == 2:
        void = add_ellipse_disk(a, b)
    else:
        void = occ.addSphere(0.0, 0.0, 0.0, 1.0)
        occ.dilate([(3, void)], 0.0, 0.0, 0.0, a, b, a)
    li_cut, _ = occ.cut([(dim, li)], [(dim, void)])
    return li_cut


def void_edge(a: float, dim: int, tol: float) -> tuple[list[int], list[int]]:
    """(points, curves) of the synchronised model where the void's edge meets the interface
    plane y = 0: the point (a, 0) in 2D, the quarter circle x^2 + z^2 = a^2 in 3D."""
    if dim == 2:
        def at_void_edge(point: int) -> bool:
            x, y, _ = gmsh.model.getValue(0, point, [])
            return abs(x - a) < tol and abs(y) < tol

        return [p for _, p in gmsh.model.getEntities(0) if at_void_edge(p)], []

    def on_rim(curve: int) -> bool:
        x0, y0, z0, x1, y1, z1 = gmsh.model.getBoundingBox(1, curve)
        return max(abs(y0), abs(y1)) < tol and abs(x1 - a) < 1e-6 * a and \
            abs(z1 - a) < 1e-6 * a

    return [], [c for _, c in gmsh.model.getEntities(1) if on_rim(c)]


MODEL = InterfacialVoidGeometry


def build(g: InterfacialVoidGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (see ``planar.build``)."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    a, b = g.void_half_width / unit, g.void_depth / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    h_edge = (g.void_mesh_size / unit) if g.void_mesh_size else h_if / 4
    dim, D = g.dim, g.cell_depth / unit

    if dim == 2:
        li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
        el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    else:
        li = occ.addBox(0.0, -L_li, 0.0, W, L_li, D)
        el = occ.addBox(0.0, 0.0, 0.0, W, L_e, D)
    occ.fragment(cut_void(li, a, b, dim), [(dim, el)])
    occ.synchronize()

    tol = 1e-9 * max(W, L_li, L_e)
    regions: dict[str, list[int]] = {"li": [], "electrolyte": []}
    for _, s in gmsh.model.getEntities(dim):
        _, y, _ = occ.getCenterOfMass(dim, s)
        regions["li" if y < 0 else "electrolyte"].append(s)
    boundaries = sort_curves(regions, W, -L_li, L_e, depth=D if dim == 3 else None)
    # the electrolyte face above the void and the Li's void wall
    boundaries["void_surface"] = boundaries.pop("free")
    add_physical_groups(regions, boundaries, dim)

    edge_points, rim = void_edge(a, dim, tol)
    refine_near(boundaries["interface"] + boundaries["void_surface"], [(edge_points, h_edge)],
                h_if, h, curve_groups=[(rim, h_edge)] if rim else [], dim=dim)
    gmsh.model.mesh.generate(dim)
