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
from typing import Annotated, ClassVar, Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry


class ElectrolyteFlawGeometry(PlanarGeometry):
    """The planar stack with a surface flaw (notch, crack) in the electrolyte, the geometry of
    the Porz mechanism: a slot of constant width w = flaw_opening opening at the interface
    y = 0 and ending in a semicircular tip of radius w / 2, its axis tilted by ``inclination``
    from the interface normal +y (positive towards +x). ``flaw_depth`` is measured along the
    axis, from the mouth's centre (flaw_position, 0) to the apex of the tip. Filled, the flaw
    holds Li that is part of the ``li`` region (continuous with the electrode) and its walls are
    ``interface``; empty, its walls are ``crack_surface``. flaw_position = 0 puts the axis on the
    symmetry line x = 0: the cell holds half of a flaw, repeated with period 2 width."""

    SUPPORTS_3D: ClassVar[bool] = False
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = False

    kind: Literal["electrolyte_flaw"] = "electrolyte_flaw"  # type: ignore[assignment]
    flaw_depth: Length = Field(
        3e-6, description="length L of the flaw along its axis, from the mouth's centre at "
        "y = 0 to the apex of the tip [m]")
    flaw_opening: Length = Field(
        0.2e-6, description="width w of the flaw across its axis [m]; the tip is a semicircle "
        "of radius w / 2 and the mouth on y = 0 is w / cos(inclination) wide")
    flaw_position: Annotated[float, Field(ge=0, le=1.0)] = Field(
        0.0, description="x of the flaw's axis at the mouth [m]; 0: on the symmetry line x = 0 "
        "(the cell holds half of the flaw); > 0: a whole flaw")
    inclination: Annotated[float, Field(ge=-60, le=60)] = Field(
        0.0, description="angle of the flaw's axis from the interface normal, positive towards "
        "+x [deg]; must be 0 when flaw_position is 0")
    filled: bool = Field(
        True, description="true: Li fills the flaw (part of the li region); false: an empty "
        "flaw with traction-free, insulating walls")
    tip_mesh_size: Length | None = Field(
        None, description="element size on the semicircular tip [m] "
        "(default min(interface_mesh_size / 10, flaw_opening / 8))")

    @property
    def tip_size(self) -> float:
        """Element size on the tip [m], the default filled in."""
        return self.tip_mesh_size or min(self.interface_mesh_size / 10, self.flaw_opening / 8)

    @property
    def wall_size(self) -> float:
        """Element size along the flaw's walls [m]: interface_mesh_size, but at most
        flaw_opening / 2 so that the flaw is at least two elements wide."""
        return min(self.interface_mesh_size, self.flaw_opening / 2)

    def flaw_axis(self) -> tuple[float, float]:
        """Unit vector along the flaw's axis, from the mouth towards the tip."""
        import math

        theta = math.radians(self.inclination)
        return math.sin(theta), math.cos(theta)

    def flaw_span(self) -> tuple[float, float]:
        """Lateral extent (x_min, x_max) [m] of the whole flaw (mouth corners and tip circle);
        the cell holds the part x > 0 of it."""
        (dx, dy), r, x0 = self.flaw_axis(), self.flaw_opening / 2, self.flaw_position
        x_tip_centre = x0 + (self.flaw_depth - r) * dx
        return (min(x0 - r / dy, x_tip_centre - r), max(x0 + r / dy, x_tip_centre + r))

    def crack_tips(self) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
        (dx, dy), x0, depth = self.flaw_axis(), self.flaw_position, self.flaw_depth
        return [("flaw", (x0 + depth * dx, depth * dy), (dx, dy))]

    @model_validator(mode="after")
    def _flaw_fits(self) -> ElectrolyteFlawGeometry:
        depth, w, x0 = self.flaw_depth, self.flaw_opening, self.flaw_position
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with an electrolyte flaw yet")
        if depth > 0.8 * self.electrolyte_thickness:
            raise ValueError(
                f"flaw_depth = {depth:g} m must be at most 0.8 electrolyte_thickness = "
                f"{0.8 * self.electrolyte_thickness:g} m (leave a ligament to the counter)")
        if w > depth / 2:
            raise ValueError(
                f"flaw_opening = {w:g} m must be at most half of flaw_depth = {depth:g} m "
                "(a flaw is narrow; a wide Li-filled pit is kind li_protrusion)")
        if x0 == 0 and self.inclination != 0:
            raise ValueError(
                f"inclination = {self.inclination:g} deg needs flaw_position > 0: a flaw on "
                "the symmetry line x = 0 (flaw_position = 0) must be normal to the interface")
        x_min, x_max = self.flaw_span()
        if (x0 > 0 and x_min < w) or x_max > self.width - w:
            raise ValueError(
                f"flaw_position = {x0:g} m: the flaw spans x = {max(x_min, 0.0):g} .. "
                f"{x_max:g} m (with flaw_depth and inclination) and must stay flaw_opening = "
                f"{w:g} m inside the cell 0 < x < width = {self.width:g} m")
        if self.tip_mesh_size is not None and self.tip_mesh_size > self.interface_mesh_size:
            raise ValueError(f"tip_mesh_size = {self.tip_mesh_size:g} m must not exceed "
                             f"interface_mesh_size = {self.interface_mesh_size:g} m")
        if self.tip_size > w / 4:
            raise ValueError(
                f"tip_mesh_size: the tip elements ({self.tip_size:g} m) must be at most "
                f"flaw_opening / 4 = {w / 4:g} m to resolve the semicircular tip")
        return self



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


MODEL = ElectrolyteFlawGeometry


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
