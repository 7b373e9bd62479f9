"""Heterogeneous SEI in 2D: the planar Li | SEI | electrolyte stack, where the SEI is a row of
pieces of different thickness (patches, and the base layer between them) on 0 < x < width.

A patch with thickness > 0 is its own sub-region (cell tag 101, 102, ... in the config's order,
parent ``sei``); the base layer is ``sei``; a piece of thickness 0 is a gap through the SEI
(cracked SEI) where the Li touches the electrolyte. Every Li contact at y = 0 is ``interface``;
SEI | electrolyte boundaries (the SEI's top and the walls of its steps) are ``sei_electrolyte``.
Curves are classified by the regions on their two sides, so steps and gaps need no special case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gmsh

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.tags import CELL_TAGS

if TYPE_CHECKING:
    from ecm_fem.config import SeiHeterogeneousGeometry


def build(g: SeiHeterogeneousGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (see ``planar.build``)."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
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
            h_if = min(h_if, t / 2)
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

    def region(tag: int) -> str:  # patches belong to sei
        return next((n for n, t in CELL_TAGS.items() if t == tag), "sei")

    by_region: dict[str, list[int]] = {}
    for s, tag in region_of.items():
        by_region.setdefault(region(tag), []).append(s)
    curves = sort_curves(by_region, W, -L_li, L_e)
    if curves.pop("free"):
        raise RuntimeError("sei_heterogeneous: a boundary curve is on no known boundary")

    by_tag: dict[int, list[int]] = {}
    for s, tag in region_of.items():
        by_tag.setdefault(tag, []).append(s)
    names = {v: k for k, v in CELL_TAGS.items()} | {v: k for k, v in sub_tags.items()}
    for tag, ents in sorted(by_tag.items()):
        gmsh.model.addPhysicalGroup(2, ents, tag, name=names[tag])
    add_physical_groups({}, curves)

    refine_near(curves["interface"] + curves["sei_electrolyte"], [], h_if, h)
    gmsh.model.mesh.generate(2)
