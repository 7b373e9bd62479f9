"""Electrolyte flaw in 2D: the planar Li | electrolyte stack (Li below y = 0) with a surface flaw
in the electrolyte, the geometry of the Porz mechanism. The flaw is a slot of constant width
w = flaw_opening opening at the interface y = 0, ending in a semicircular tip of radius w / 2;
its axis leaves the mouth's centre (flaw_position, 0) at ``inclination`` from +y (positive
towards +x) and reaches the tip's apex after flaw_depth. flaw_position = 0 puts the axis on the
symmetry line x = 0, so the cell holds half of the flaw (period 2 width).

Filled (Li-filled flaw): the Li in the flaw is part of ``li``, continuous with the electrode; the
flat contact and the flaw's walls and tip are all ``interface``; on a half flaw the symmetry
line through that Li is ``side``. Empty: the flat contact is ``interface``; the walls and tip
and the Li face under the mouth (the Li looking into the empty flaw) are ``crack_surface`` (no
current, traction free); on a half flaw the symmetry line inside the flaw lies outside the mesh.
Both: ``li_cc`` at the bottom, ``counter`` at the top, ``side`` at x = 0 and x = width.

Elements shrink to ``interface_mesh_size`` along the flat interface, to ``wall_size``
(interface_mesh_size, at most w / 2) along the walls and to ``tip_mesh_size`` on the tip arc,
whose apex is a mesh vertex.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import gmsh

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves

if TYPE_CHECKING:
    from ecm_fem.config import ElectrolyteFlawGeometry


def _add_flaw(depth: float, r: float, inclination: float, x0: float) -> int:
    """OCC surface of the whole flaw (half width r, apex at distance ``depth`` from the mouth's
    centre (x0, 0) along the axis tilted by ``inclination`` [rad]), reaching below y = 0 so
    that clipping at the interface cuts both walls. The tip is two quarter arcs, so the apex is
    a model point."""
    occ = gmsh.model.occ
    below = r * (1 + abs(math.tan(inclination)))
    corners = [(-r, -below), (r, -below), (r, depth - r), (0.0, depth), (-r, depth - r)]
    p = [occ.addPoint(x, y, 0.0) for x, y in corners]
    centre = occ.addPoint(0.0, depth - r, 0.0)
    edges = [occ.addLine(p[0], p[1]), occ.addLine(p[1], p[2]),
             occ.addCircleArc(p[2], centre, p[3]), occ.addCircleArc(p[3], centre, p[4]),
             occ.addLine(p[4], p[0])]
    occ.remove([(0, centre)])
    flaw = occ.addPlaneSurface([occ.addCurveLoop(edges)])
    occ.rotate([(2, flaw)], 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, -inclination)  # +y -> (sin, cos)
    occ.translate([(2, flaw)], x0, 0.0, 0.0)
    return flaw


def build(g: ElectrolyteFlawGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    h_wall, h_tip = g.wall_size / unit, g.tip_size / unit
    depth, r, x0 = g.flaw_depth / unit, g.flaw_opening / unit / 2, g.flaw_position / unit

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    # the flaw clipped to the electrolyte's box (and to x > 0 for a half flaw)
    flaw, _ = occ.intersect([(2, _add_flaw(depth, r, math.radians(g.inclination), x0))],
                            [(2, occ.addRectangle(0.0, 0.0, 0.0, W, L_e))])
    if g.filled:  # fragment, not fuse: a union would merge the tip's two arcs
        _, children = occ.fragment([(2, li)], [(2, el), *flaw])
        in_flaw = {s for _, s in children[2]}
        surfaces = {"li": [s for _, s in children[0]] + sorted(in_flaw),
                    "electrolyte": [s for _, s in children[1] if s not in in_flaw]}
    else:
        el_cut, _ = occ.cut([(2, el)], flaw)
        _, children = occ.fragment([(2, li)], el_cut)
        surfaces = {"li": [s for _, s in children[0]],
                    "electrolyte": [s for c in children[1:] for _, s in c]}
    occ.synchronize()

    curves = sort_curves(surfaces, W, -L_li, L_e)
    free = curves.pop("free")
    if g.filled and free:
        raise RuntimeError("electrolyte_flaw: a boundary curve of the filled flaw is neither "
                           "the interface nor on the cell's outer box")
    if not g.filled:
        curves["crack_surface"] = free
    add_physical_groups(surfaces, curves)

    tol = 1e-9 * max(W, L_li, L_e)
    flaw_curves = [c for c in curves["interface"] + curves.get("crack_surface", [])
                   if occ.getCenterOfMass(1, c)[1] > tol]  # all but the pieces on y = 0
    arcs = [c for c in flaw_curves if gmsh.model.getType(1, c) == "Circle"]
    walls = [c for c in flaw_curves if c not in arcs]
    (_, (x_tip, y_tip), _), = g.crack_tips()

    def at_tip(point: int) -> bool:
        x, y, _ = gmsh.model.getValue(0, point, [])
        return abs(x - x_tip / unit) < tol and abs(y - y_tip / unit) < tol

    tip = [p for _, p in gmsh.model.getEntities(0) if at_tip(p)]
    expected = 2 if x0 > 0 else 1  # a half flaw has one wall and one quarter arc
    if len(tip) != 1 or len(walls) != expected or len(arcs) != expected:
        raise RuntimeError(f"electrolyte_flaw: expected the apex as one model point and "
                           f"{expected} wall(s) and arc(s), found {len(tip)} point(s), "
                           f"{len(walls)} wall(s), {len(arcs)} arc(s)")
    refine_near(curves["interface"], [(tip, h_tip)], h_if, h,
                curve_groups=[(walls, h_wall), (arcs, h_tip)])
    gmsh.model.mesh.generate(2)
