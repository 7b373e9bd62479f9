"""Interfacial void in 2D: the planar Li | electrolyte stack with an elliptical void cut from
the Li at the interface, centred on the symmetry line x = 0 (so the cell holds half a void of
half width a = void_half_width and depth b = void_depth; the pattern repeats with period
2 width). Tags: the Li | electrolyte contact outside the void is `interface`; the electrolyte face
above the void and the Li's void wall are `void_surface` (no current, no traction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmsh

from ecm_fem.geometry._gmsh import curve_end_points, refine_near
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS

if TYPE_CHECKING:
    from ecm_fem.config import InterfacialVoidGeometry


def build(g: InterfacialVoidGeometry, unit: float) -> None:
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    a, b = g.void_half_width / unit, g.void_depth / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    h_edge = (g.void_mesh_size / unit) if g.void_mesh_size else h_if / 4

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    if a >= b:
        void = occ.addDisk(0.0, 0.0, 0.0, a, b)
    else:  # OCC wants the major radius first: turn the ellipse's x axis to y
        void = occ.addDisk(0.0, 0.0, 0.0, b, a, xAxis=[0.0, 1.0, 0.0])
    li_cut, _ = occ.cut([(2, li)], [(2, void)])
    occ.fragment(li_cut, [(2, el)])
    occ.synchronize()

    tol = 1e-9 * max(W, L_li, L_e)
    surfaces: dict[str, list[int]] = {"li": [], "electrolyte": []}
    for _, s in gmsh.model.getEntities(2):
        _, y, _ = occ.getCenterOfMass(2, s)
        surfaces["li" if y < 0 else "electrolyte"].append(s)

    curves: dict[str, list[int]] = {n: [] for n in
                                    ("interface", "li_cc", "counter", "side", "void_surface")}
    for _, c in gmsh.model.getEntities(1):
        (x0, y0), (x1, y1) = curve_end_points(c)
        xm, ym, _ = occ.getCenterOfMass(1, c)
        if abs(x0 - x1) < tol and (abs(x0) < tol or abs(x0 - W) < tol):
            curves["side"].append(c)
        elif abs(y0 - y1) < tol and abs(y0 + L_li) < tol:
            curves["li_cc"].append(c)
        elif abs(y0 - y1) < tol and abs(y0 - L_e) < tol:
            curves["counter"].append(c)
        elif abs(y0 - y1) < tol and abs(y0) < tol and xm > a:
            curves["interface"].append(c)
        else:  # the electrolyte face above the void and the Li's void wall
            curves["void_surface"].append(c)

    for name, ents in surfaces.items():
        gmsh.model.addPhysicalGroup(2, ents, CELL_TAGS[name], name=name)
    for name, ents in curves.items():
        gmsh.model.addPhysicalGroup(1, ents, FACET_TAGS[name], name=name)

    def at_void_edge(point: int) -> bool:
        x, y, _ = gmsh.model.getValue(0, point, [])
        return abs(x - a) < tol and abs(y) < tol

    edge_points = [p for _, p in gmsh.model.getEntities(0) if at_void_edge(p)]
    refine_near(curves["interface"] + curves["void_surface"], [(edge_points, h_edge)], h_if, h)
    gmsh.model.mesh.generate(2)
