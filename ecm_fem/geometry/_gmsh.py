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
