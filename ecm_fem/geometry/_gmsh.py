"""Small gmsh helpers shared by the builders. Builders model in micrometres (``MODEL_UNIT``):
OCC's tolerances (about 1e-7 model units) would swallow nanometre SEI layers if models were
drawn in metres."""

from __future__ import annotations

import gmsh

from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS

MODEL_UNIT = 1e-6  # m per gmsh model unit


def refine_near(curves: list[int], points: list[tuple[list[int], float]], h_interface: float,
                h_max: float, curve_groups: list[tuple[list[int], float]] | None = None,
                dim: int = 2) -> None:
    """Background size field: ``h_interface`` on ``curves`` (in 3D, ``dim`` = 3: surfaces),
    ``h`` at each group of ``points`` (for void edges and crack tips) and of ``curve_groups``
    (flaw walls and tips; void rims in 3D), growing to ``h_max`` over 8 h_max; generates
    nothing."""
    first = "CurvesList" if dim == 2 else "SurfacesList"
    size_field([(curves, h_interface, first, 200),
                *[(c, h, "CurvesList", 200) for c, h in curve_groups or []],
                *[(p, h, "PointsList", None) for p, h in points]], h_max)


def size_field(groups: list[tuple[list[int], float, str, int | None]], h_max: float) -> None:
    """The background size field of ``groups`` (entity ids, size at distance 0, gmsh Distance
    list key such as "CurvesList", sampling points per direction or None): each group's size
    growing linearly to ``h_max`` over 8 h_max, the smallest of them; generates nothing."""
    field = gmsh.model.mesh.field
    fields = []
    for ids, size, key, sampling in groups:
        if not ids:
            continue
        dist = field.add("Distance")
        field.setNumbers(dist, key, ids)
        if sampling is not None:
            field.setNumber(dist, "Sampling", sampling)
        thr = field.add("Threshold")
        field.setNumber(thr, "InField", dist)
        field.setNumber(thr, "SizeMin", size)
        field.setNumber(thr, "SizeMax", h_max)
        field.setNumber(thr, "DistMin", 0.0)
        field.setNumber(thr, "DistMax", 8 * h_max)
        fields.append(thr)
    smallest = field.add("Min")
    field.setNumbers(smallest, "FieldsList", fields)
    field.setAsBackgroundMesh(smallest)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)


def add_ellipse_disk(rx: float, ry: float) -> int:
    """OCC disk centred at the origin with semi-axes ``rx`` along x and ``ry`` along y. OCC
    wants the major radius first, so a tall ellipse is drawn with its major axis turned to y
    (OCC ignores ``xAxis`` unless ``zAxis`` is given too)."""
    occ = gmsh.model.occ
    if rx >= ry:
        return occ.addDisk(0.0, 0.0, 0.0, rx, ry)
    return occ.addDisk(0.0, 0.0, 0.0, ry, rx, zAxis=[0.0, 0.0, 1.0], xAxis=[0.0, 1.0, 0.0])


def sort_curves(surfaces: dict[str, list[int]], width: float, bottom: float,
                top: float, depth: float | None = None) -> dict[str, list[int]]:
    """The curves of the synchronised model by what they separate, for a cell 0 < x < width,
    bottom < y < top with Li at the bottom: 'interface' between a ``li`` surface and an
    ion-conducting one (electrolyte, sei, gb), 'sei_electrolyte' between ``sei`` and
    ``electrolyte``, 'gb_boundary' between ``gb`` and ``electrolyte``; on the outer box 'side'
    (x = 0, width), 'li_cc' (y = bottom), 'counter' (y = top); any other boundary curve is
    'free' (void walls, crack faces). Curves between two surfaces of one region are internal
    and left out. In 3D (``depth`` given: the cell is 0 < z < depth too) the same for the
    surfaces between volumes, the sides being x = 0, width and z = 0, depth."""
    occ = gmsh.model.occ
    region = {s: name for name, ents in surfaces.items() for s in ents}
    tol = 1e-9 * max(width, top - bottom)
    out: dict[str, list[int]] = {n: [] for n in ("interface", "sei_electrolyte", "gb_boundary",
                                                 "li_cc", "counter", "side", "free")}
    bdim = 1 if depth is None else 2
    for _, c in gmsh.model.getEntities(bdim):
        up = gmsh.model.getAdjacencies(bdim, c)[0]
        xm, ym, zm = occ.getCenterOfMass(bdim, c)
        if len(up) == 2:
            sides = {region[s] for s in up}
            if "li" in sides and len(sides) == 2:
                out["interface"].append(c)
            elif sides == {"sei", "electrolyte"}:
                out["sei_electrolyte"].append(c)
            elif sides == {"gb", "electrolyte"}:
                out["gb_boundary"].append(c)
        elif abs(xm) < tol or abs(xm - width) < tol or (
                depth is not None and (abs(zm) < tol or abs(zm - depth) < tol)):
            out["side"].append(c)
        elif abs(ym - bottom) < tol:
            out["li_cc"].append(c)
        elif abs(ym - top) < tol:
            out["counter"].append(c)
        else:
            out["free"].append(c)
    return out


def add_physical_groups(surfaces: dict[str, list[int]], curves: dict[str, list[int]],
                        dim: int = 2) -> None:
    """Physical groups with the fixed names and ids of ``tags`` (empty lists are skipped):
    regions of dimension ``dim``, boundaries of dimension dim - 1."""
    for name, ents in surfaces.items():
        if ents:
            gmsh.model.addPhysicalGroup(dim, ents, CELL_TAGS[name], name=name)
    for name, ents in curves.items():
        if ents:
            gmsh.model.addPhysicalGroup(dim - 1, ents, FACET_TAGS[name], name=name)


def match_side_meshes(width: float) -> bool:
    """Re-mesh the synchronised, meshed 2D model with the curves of the side x = width
    meshed as translated copies of the matching curves of x = 0 (gmsh periodic meshes), so
    that the nodes of the two sides pair up. Returns False (the mesh left alone) when the
    sides' curves do not pair up (different layer heights at the two sides)."""
    curves = gmsh.model.getEntitiesForPhysicalGroup(1, FACET_TAGS["side"])
    tol = 1e-6 * width
    left, right = {}, {}
    for c in curves:
        ends = [gmsh.model.getValue(0, abs(p), []) for _, p in
                gmsh.model.getBoundary([(1, int(c))], oriented=False)]
        key = tuple(sorted(round(p[1] / tol) for p in ends))
        (left if all(abs(p[0]) < tol for p in ends) else right)[key] = int(c)
    if set(left) != set(right):
        return False
    keys = sorted(left)
    translation = [1, 0, 0, width, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    gmsh.model.mesh.setPeriodic(1, [right[k] for k in keys], [left[k] for k in keys],
                                translation)
    gmsh.model.mesh.clear()
    gmsh.model.mesh.generate(2)
    return True
