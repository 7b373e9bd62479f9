"""Small gmsh helpers shared by the builders. Builders model in micrometres (``MODEL_UNIT``):
OCC's tolerances (about 1e-7 model units) would swallow nanometre SEI layers if models were
drawn in metres."""

from __future__ import annotations

import gmsh

MODEL_UNIT = 1e-6  # m per gmsh model unit


def curve_end_points(curve: int) -> list[tuple[float, float]]:
    """(x, y) of the two end points of a gmsh curve."""
    pts = gmsh.model.getBoundary([(1, curve)], oriented=False)
    out = []
    for _, p in pts:
        x, y, _ = gmsh.model.getValue(0, p, [])
        out.append((x, y))
    return out


def refine_near(curves: list[int], points: list[tuple[list[int], float]], h_interface: float,
                h_max: float) -> None:
    """Background size field: ``h_interface`` on ``curves``, ``h`` at each group of ``points``
    (for void edges and crack tips), growing to ``h_max`` over 8 h_max; generates nothing."""
    field = gmsh.model.mesh.field
    fields = []
    for ids, size, kind, key in [(curves, h_interface, "Distance", "CurvesList"),
                                 *[(p, h, "Distance", "PointsList") for p, h in points]]:
        if not ids:
            continue
        dist = field.add(kind)
        field.setNumbers(dist, key, ids)
        if key == "CurvesList":
            field.setNumber(dist, "Sampling", 200)
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
