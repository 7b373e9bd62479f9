"""Planar Li | electrolyte stack in 2D: Li occupies -li_thickness < y < 0, the electrolyte
0 < y < electrolyte_thickness, both 0 < x < width. Interface at y = 0 (normal +y, from Li into
the electrolyte), Li current collector at the bottom, counter boundary at the top, sides at
x = 0 and x = width. Elements shrink to ``interface_mesh_size`` at the interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmsh

from ecm_fem.geometry._gmsh import curve_end_points
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS

if TYPE_CHECKING:
    from ecm_fem.config import PlanarGeometry


def build(g: PlanarGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = occ.addRectangle(0.0, 0.0, 0.0, W, L_e)
    occ.fragment([(2, li)], [(2, el)])
    occ.synchronize()

    tol = 1e-6 * min(W, L_li, L_e)
    surfaces: dict[str, list[int]] = {"li": [], "electrolyte": []}
    for _, s in gmsh.model.getEntities(2):
        _, y, _ = occ.getCenterOfMass(2, s)
        surfaces["li" if y < 0 else "electrolyte"].append(s)

    curves: dict[str, list[int]] = {"interface": [], "li_cc": [], "counter": [], "side": []}
    for _, c in gmsh.model.getEntities(1):
        (x0, y0), (x1, y1) = curve_end_points(c)
        if abs(y1 - y0) < tol:  # horizontal
            if abs(y0) < tol:
                curves["interface"].append(c)
            elif abs(y0 + L_li) < tol:
                curves["li_cc"].append(c)
            else:
                curves["counter"].append(c)
        else:
            curves["side"].append(c)

    for name, ents in surfaces.items():
        gmsh.model.addPhysicalGroup(2, ents, CELL_TAGS[name], name=name)
    for name, ents in curves.items():
        gmsh.model.addPhysicalGroup(1, ents, FACET_TAGS[name], name=name)

    dist = gmsh.model.mesh.field.add("Distance")
    gmsh.model.mesh.field.setNumbers(dist, "CurvesList", curves["interface"])
    gmsh.model.mesh.field.setNumber(dist, "Sampling", 200)
    thr = gmsh.model.mesh.field.add("Threshold")
    gmsh.model.mesh.field.setNumber(thr, "InField", dist)
    gmsh.model.mesh.field.setNumber(thr, "SizeMin", h_if)
    gmsh.model.mesh.field.setNumber(thr, "SizeMax", h)
    gmsh.model.mesh.field.setNumber(thr, "DistMin", 0.0)
    gmsh.model.mesh.field.setNumber(thr, "DistMax", 8 * h)
    gmsh.model.mesh.field.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.model.mesh.generate(2)
