"""Li protrusion in 2D: the planar Li | electrolyte stack with a Li boss growing into the
electrolyte, a quarter ellipse centred on the symmetry line x = 0 (so the cell holds half of a
semi-elliptic boss of base half width b = protrusion_half_width and height h = protrusion_height;
the pattern repeats with period 2 width). The boss is part of the Li region and cut from the
electrolyte. Tags: the whole Li | electrolyte contact, the flat part y = 0, b < x < width and the
protrusion surface, is `interface`. Elements shrink to ``interface_mesh_size`` along the
interface and to ``tip_mesh_size`` at the tip (0, h).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmsh

from ecm_fem.geometry._gmsh import add_ellipse_disk, add_physical_groups, refine_near, sort_curves

if TYPE_CHECKING:
    from ecm_fem.config import LiProtrusionGeometry


def build(g: LiProtrusionGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    b, h_p = g.protrusion_half_width / unit, g.protrusion_height / unit
    h, h_if, h_tip = g.mesh_size / unit, g.interface_mesh_size / unit, g.tip_size / unit

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    quadrant = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    boss, _ = occ.intersect([(2, add_ellipse_disk(b, h_p))], [(2, quadrant)])
    el_cut, _ = occ.cut([(2, el)], boss, removeTool=False)
    li_fused, _ = occ.fuse([(2, li)], boss)
    _, pieces = occ.fragment(li_fused, el_cut)
    occ.synchronize()

    surfaces = {"li": [s for _, s in pieces[0]], "electrolyte": [s for _, s in pieces[1]]}
    curves = sort_curves(surfaces, W, -L_li, L_e)
    if curves.pop("free"):
        raise RuntimeError("li_protrusion: a boundary curve is neither the interface nor on "
                           "the cell's outer box")
    add_physical_groups(surfaces, curves)

    tol = 1e-9 * max(W, L_li, L_e)

    def at_tip(point: int) -> bool:
        x, y, _ = gmsh.model.getValue(0, point, [])
        return abs(x) < tol and abs(y - h_p) < tol

    tip = [p for _, p in gmsh.model.getEntities(0) if at_tip(p)]
    if len(tip) != 1:
        raise RuntimeError(f"li_protrusion: expected one model point at the tip, found {len(tip)}")
    refine_near(curves["interface"], [(tip, h_tip)], h_if, h)
    gmsh.model.mesh.generate(2)
