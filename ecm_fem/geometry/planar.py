"""Planar Li | (SEI) | electrolyte stack in 2D or 3D: Li occupies -li_thickness < y < 0, the
ion-conducting layers 0 < y < electrolyte_thickness (a resolved SEI first, 0 < y < sei_thickness,
when sei_thickness > 0), all 0 < x < width. Interface at y = 0 (normal +y, from Li into the
electrolyte), SEI | electrolyte boundary at y = sei_thickness, Li current collector at the
bottom, counter boundary at the top, sides at x = 0 and x = width (and z = 0, z = depth in 3D,
where the layers are boxes 0 < z < depth). Elements shrink to
``interface_mesh_size`` (and to sei_thickness / 2 inside a resolved SEI) at the interface.
"""

from __future__ import annotations

import gmsh

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import PlanarGeometry

MODEL = PlanarGeometry


def build(g: PlanarGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    t_sei = g.sei_thickness / unit
    dim, D = g.dim, g.cell_depth / unit

    def layer(y0: float, height: float) -> int:
        if dim == 2:
            return occ.addRectangle(0.0, y0, 0.0, W, height)
        return occ.addBox(0.0, y0, 0.0, W, height, D)

    layers = [layer(-L_li, L_li)]
    if t_sei > 0:
        layers.append(layer(0.0, t_sei))
    layers.append(layer(t_sei, L_e - t_sei))
    occ.fragment([(dim, layers[0])], [(dim, t) for t in layers[1:]])
    occ.synchronize()

    regions: dict[str, list[int]] = {"li": [], "sei": [], "electrolyte": []}
    for _, s in gmsh.model.getEntities(dim):
        _, y, _ = occ.getCenterOfMass(dim, s)
        regions["li" if y < 0 else ("sei" if y < t_sei else "electrolyte")].append(s)
    boundaries = sort_curves(regions, W, -L_li, L_e, depth=D if dim == 3 else None)
    if boundaries.pop("free"):
        raise RuntimeError("planar: a boundary is on no known boundary")
    add_physical_groups(regions, boundaries, dim)
    if t_sei > 0:
        h_if = min(h_if, t_sei / 2)

    refine_near(boundaries["interface"] + boundaries["sei_electrolyte"], [], h_if, h, dim=dim)
    gmsh.model.mesh.generate(dim)
