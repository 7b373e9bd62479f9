"""Electrolyte flaw in 2D and 3D: the planar Li | electrolyte stack (Li below y = 0) with a surface
flaw in the electrolyte, the geometry of the Porz mechanism. The flaw is a slot of constant width
w = flaw_opening opening at the interface y = 0, ending in a semicircular tip of radius r = w / 2;
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

3D (``dim: 3``): the cell is the box 0 < x < width, 0 < z < depth, Li below y = 0, with the
symmetry planes x = 0 and z = 0. The flaw is the 2D section above swept along z from the plane
z = 0: through the whole depth by default (a prism; the tip's apex becomes the tip line), or,
with ``flaw_length`` = l, a slot ending inside the cell whose end is rounded like its tip. The
slot is every point within r of the rectangle spanned by its axis (from below the mouth to
flaw_depth - r) and z (0 to l - r): in the flaw's own plane its outline is the rectangle
flaw_depth x l with the corner at the tip rounded to radius r; seen on y = 0 its mouth is w wide
with a half-disk end (a half ellipse r / cos(inclination) by r when inclined). It is drawn as the
prism of the section up to z = l - r plus the two halves of the section revolved by 90 degrees
each about the flaw's axis (a half cylinder along the axis ending in a quarter sphere at the
tip). The plane z = 0 is the slot's mid-plane: the cell holds half of a slot 2 l long (a quarter
of it at flaw_position = 0), repeated with period 2 width along x and 2 depth along z. Tags as
in 2D, surfaces for curves: filled, the flaw's walls, tip and end are ``interface`` and the Li in
the flaw on x = 0 and z = 0 is ``side``; empty, they are ``crack_surface`` with the Li face under
the mouth, and the flaw's sections on the symmetry planes lie outside the mesh. Elements shrink
to interface_mesh_size on the flat interface, to wall_size on the flaw's surfaces and to
tip_mesh_size along the flaw's rim, the crest of its rounded edge of radius r: the tip line
and, for a slot, the quarter circle round the corner and the end's crest down to the mouth
(each a model curve). ``crack_tips()`` is empty in 3D: the K_I integral is plane strain.

Axisymmetric (``axisymmetric``, 2D): the drawing is the (r, z) section of a body of revolution
about x = 0: a flaw on the axis is a cylindrical pore with a hemispherical end (filled: a Li
filament), off the axis a ring groove; an internal crack on the axis (angle 0) a penny, off it
a ring crack. ``crack_tips()`` is empty: a K_I of rings and pennies needs the hoop terms of an
axisymmetric domain integral.

Internal crack (``internal_crack``): a buried crack cut from the electrolyte, in 2D the stadium of
width w_c = opening between two semicircular tips whose apexes are ``length`` apart, centred at
(x, height), its axis at ``angle`` from the interface plane; each apex is a model point between
two quarter arcs. Its faces are ``crack_surface``. It is cut from the electrolyte before the
surface flaw is fragmented in (or cut out), so the two defects share no curve; they must stay
the larger opening apart, and the crack an opening away from the interface, the counter and the
sides (or centred on x = 0, angle 0 or 90: half of it in the cell). ``surface_flaw: false``
leaves the crack alone. Elements shrink to ``crack_tip_size`` on its tips and to
``crack_wall_size`` along its faces. In 3D it is a penny, the stadium's half revolved about the
normal of its mid-plane (drawn as a cylinder of radius length / 2 - opening / 2 fused with the
torus round its edge), centred at (x, height, z); its mid-plane holds the 2D axis and z, so its
section through the centre is the 2D stadium. Its flat faces take crack_wall_size, its torus
crack_tip_size; the check against the surface flaw compares the x-y sections (the penny's is
the stadium, the flaw's its 2D section), which is conservative for a slot ending before it.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, size_field, sort_curves
from ecm_fem.geometry.params import (
    LARGEST_LENGTH,
    CrackTip,
    Length,
    PlanarGeometry,
    StrictModel,
)

FLAW_KEYS = ("flaw_depth", "flaw_opening", "flaw_position", "inclination", "filled",
             "flaw_length")


class InternalCrack(StrictModel):
    """A buried crack in the electrolyte. 2D: a slot of constant width ``opening`` between
    two semicircular tips of radius opening / 2 whose apexes are ``length`` apart, centred at
    (x, height) with its axis at ``angle`` from the interface plane; K_I is reported at each
    tip in the cell. 3D: a penny of diameter ``length`` and thickness ``opening`` with a
    rounded rim (radius opening / 2) centred at (x, height, z), its mid-plane spanned by the
    same axis and z, so that its section through the centre is the 2D slot. Its faces are
    ``crack_surface`` (no current, traction free)."""

    length: Length = Field(2e-6, description="distance 2a between the apexes of the two tips "
                           "[m]")
    opening: Length = Field(0.1e-6, description="width of the crack across its axis [m]; the "
                            "tips are semicircles of radius opening / 2")
    x: Annotated[float, Field(ge=0, le=LARGEST_LENGTH)] = Field(
        0.0, description="x of the crack's centre [m]; 0: on the symmetry line x = 0 (the "
        "cell holds half of the crack; angle 0 or +-90 only)")
    height: Length = Field(6e-6, description="y of the crack's centre, its distance above the "
                           "interface y = 0 [m]")
    angle: Annotated[float, Field(ge=-90, le=90)] = Field(
        0.0, description="angle of the crack's axis from the interface plane (the x axis), "
        "counterclockwise [deg]: 0 parallel to the interface, 90 normal to it")
    z: Annotated[float, Field(ge=0, le=LARGEST_LENGTH)] = Field(
        0.0, description="3D only: z of the crack's centre [m]; 0: on the symmetry plane z = 0 "
        "(the cell holds half of the penny)")

    def axis(self) -> tuple[float, float]:
        """Unit vector along the crack's axis (towards the tip named crack_plus)."""
        theta = math.radians(self.angle)
        return math.cos(theta), math.sin(theta)

    def centre_line(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """End points [m] of the segment joining the centres of the two tip circles (the
        crack is every point within opening / 2 of it)."""
        (ex, ey), half = self.axis(), self.length / 2 - self.opening / 2
        return ((self.x - half * ex, self.height - half * ey),
                (self.x + half * ex, self.height + half * ey))

    def apexes(self) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
        """(name, apex [m], unit vector ahead of the tip) of both tips, in the cell or not."""
        (ex, ey), a = self.axis(), self.length / 2
        return [("crack_plus", (self.x + a * ex, self.height + a * ey), (ex, ey)),
                ("crack_minus", (self.x - a * ex, self.height - a * ey), (-ex, -ey))]


def _point_segment_distance(p: tuple[float, float], a: tuple[float, float],
                            b: tuple[float, float]) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-300)
    t = min(max(t, 0.0), 1.0)
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def _segment_distance(s1: tuple[tuple[float, float], tuple[float, float]],
                      s2: tuple[tuple[float, float], tuple[float, float]]) -> float:
    """Distance between two segments in the plane (0 when they cross)."""
    (a, b), (c, d) = s1, s2

    def orient(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    if (orient(a, b, c) * orient(a, b, d) < 0) and (orient(c, d, a) * orient(c, d, b) < 0):
        return 0.0
    return min(_point_segment_distance(a, c, d), _point_segment_distance(b, c, d),
               _point_segment_distance(c, a, b), _point_segment_distance(d, a, b))


class ElectrolyteFlawGeometry(PlanarGeometry):
    """The planar stack with a surface flaw (notch, crack) in the electrolyte, the geometry of
    the Porz mechanism: a slot of constant width w = flaw_opening opening at the interface
    y = 0 and ending in a semicircular tip of radius w / 2, its axis tilted by ``inclination``
    from the interface normal +y (positive towards +x). ``flaw_depth`` is measured along the
    axis, from the mouth's centre (flaw_position, 0) to the apex of the tip. Filled, the flaw
    holds Li that is part of the ``li`` region (continuous with the electrode) and its walls are
    ``interface``; empty, its walls are ``crack_surface``. flaw_position = 0 puts the axis on the
    symmetry line x = 0: the cell holds half of a flaw, repeated with period 2 width. In 3D the
    section is swept along z from the symmetry plane z = 0, through the whole depth or, with
    ``flaw_length``, to a rounded end inside the cell (module docstring)."""

    SUPPORTS_3D: ClassVar[bool] = True
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = True

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
    flaw_length: Length | None = Field(
        None, description="3D only: extent l of the flaw along z from the symmetry plane z = 0 "
        "to the apex of its rounded end [m] (the slot is 2 l long, half of it in the cell); "
        "default: through the whole depth")
    tip_mesh_size: Length | None = Field(
        None, description="element size on the semicircular tip [m] (default 2D: "
        "min(interface_mesh_size / 10, flaw_opening / 8); 3D: along the flaw's rim, "
        "min(interface_mesh_size / 4, flaw_opening / 4), as the cost grows with its length); "
        "also on the tips of the internal crack (default there with its opening)")
    surface_flaw: bool = Field(
        True, description="false: no surface flaw (its keys flaw_* and inclination, filled "
        "are then refused), for a cell with an internal crack only")
    internal_crack: InternalCrack | None = Field(
        None, description="a buried crack in the electrolyte (2D: a slot with semicircular "
        "tips; 3D: a penny with a rounded rim), in addition to the surface flaw or "
        "(surface_flaw: false) alone; default none")

    @property
    def tip_size(self) -> float:
        """Element size on the tip [m], the default filled in."""
        if self.tip_mesh_size:
            return self.tip_mesh_size
        if self.dim == 3:
            return min(self.interface_mesh_size / 4, self.flaw_opening / 4)
        return min(self.interface_mesh_size / 10, self.flaw_opening / 8)

    @property
    def crack_tip_size(self) -> float:
        """Element size on the internal crack's tips [m], the default filled in."""
        if self.tip_mesh_size:
            return self.tip_mesh_size
        if self.dim == 3:
            return min(self.interface_mesh_size / 4, self.internal_crack.opening / 4)
        return min(self.interface_mesh_size / 10, self.internal_crack.opening / 8)

    @property
    def crack_wall_size(self) -> float:
        """Element size along the internal crack's faces [m]."""
        return min(self.interface_mesh_size, self.internal_crack.opening / 2)

    @property
    def wall_size(self) -> float:
        """Element size along the flaw's walls [m]: interface_mesh_size, but at most
        flaw_opening / 2 so that the flaw is at least two elements wide."""
        return min(self.interface_mesh_size, self.flaw_opening / 2)

    def flaw_axis(self) -> tuple[float, float]:
        """Unit vector along the flaw's axis, from the mouth towards the tip."""
        theta = math.radians(self.inclination)
        return math.sin(theta), math.cos(theta)

    def apex(self) -> tuple[float, float]:
        """(x, y) [m] of the tip's apex (in 3D, of the tip line along z)."""
        (dx, dy), x0, depth = self.flaw_axis(), self.flaw_position, self.flaw_depth
        return x0 + depth * dx, depth * dy

    def flaw_span(self) -> tuple[float, float]:
        """Lateral extent (x_min, x_max) [m] of the whole flaw (mouth corners and tip circle);
        the cell holds the part x > 0 of it."""
        (dx, dy), r, x0 = self.flaw_axis(), self.flaw_opening / 2, self.flaw_position
        x_tip_centre = x0 + (self.flaw_depth - r) * dx
        return (min(x0 - r / dy, x_tip_centre - r), max(x0 + r / dy, x_tip_centre + r))

    def flaw_centre_line(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """End points [m] of the surface flaw's axis from the mouth's centre to the centre of
        its tip circle (the flaw is every point of the electrolyte within flaw_opening / 2 of
        it)."""
        (dx, dy), x0, r = self.flaw_axis(), self.flaw_position, self.flaw_opening / 2
        return (x0, 0.0), (x0 + (self.flaw_depth - r) * dx, (self.flaw_depth - r) * dy)

    def _clearance(self, point: tuple[float, float], own: str) -> float:
        """Distance [m] from ``point`` to the nearest boundary of the electrolyte other than
        the faces of the defect ``own`` ("flaw" or "crack"): the interface y = 0, the counter,
        the sides (x = 0 only for a point off it: a tip on x = 0 is a half model whose crack
        runs along that symmetry line) and the other defect."""
        x, y = point
        out = min(y, self.electrolyte_thickness - y, self.width - x)
        if x > 1e-9 * self.width:
            out = min(out, x)
        if own != "flaw" and self.surface_flaw:
            out = min(out, _point_segment_distance(point, *self.flaw_centre_line())
                      - self.flaw_opening / 2)
        if own != "crack" and self.internal_crack is not None:
            out = min(out, _point_segment_distance(point, *self.internal_crack.centre_line())
                      - self.internal_crack.opening / 2)
        return out

    def crack_apexes_in_cell(self) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
        """The internal crack's ``apexes()`` that lie in the cell (x >= 0), in 2D."""
        return [tip for tip in self.internal_crack.apexes() if tip[1][0] >= -1e-9 * self.width]

    def crack_tips(self) -> list[CrackTip]:
        """The apex of the surface flaw (faces loaded by its Li when filled) and the tips of
        the internal crack that lie in the cell, in 2D (see ``PlanarGeometry.crack_tips``).
        The K_I ring: r_out a quarter of the flaw's depth, of its ligament or of the crack's
        length, and at most half the distance to any other boundary (the interface, the
        counter, the far side, the other defect); r_in = max(r_out / 4, opening), so that the
        blunt root (diameter = opening) lies inside it. None in 3D: the K_I interaction
        integral (physics/fracture.py) is plane strain. None in axisymmetric runs either: their
        tips are rings, or points on the axis, whose K_I needs the hoop terms of an
        axisymmetric domain integral."""
        if self.dim == 3 or self.axisymmetric:
            return []
        tips = []
        if self.surface_flaw:
            apex, depth = self.apex(), self.flaw_depth
            r_out = min(0.25 * min(depth, self.electrolyte_thickness - depth),
                        0.5 * self._clearance(apex, "flaw"))
            tips.append(CrackTip("flaw", apex, self.flaw_axis(), self.filled,
                                 max(0.25 * r_out, self.flaw_opening), r_out,
                                 "geometry.flaw_opening"))
        crack = self.internal_crack
        if crack is not None:
            for name, apex, ahead in self.crack_apexes_in_cell():
                r_out = min(0.25 * crack.length, 0.5 * self._clearance(apex, "crack"))
                tips.append(CrackTip(name, apex, ahead, False, max(0.25 * r_out, crack.opening),
                                     r_out, "geometry.internal_crack.opening"))
        return tips

    @model_validator(mode="after")
    def _flaw_fits(self) -> ElectrolyteFlawGeometry:
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with an electrolyte flaw yet")
        if self.tip_mesh_size is not None and self.tip_mesh_size > self.interface_mesh_size:
            raise ValueError(f"tip_mesh_size = {self.tip_mesh_size:g} m must not exceed "
                             f"interface_mesh_size = {self.interface_mesh_size:g} m")
        if self.internal_crack is not None:
            self._crack_fits()
        if not self.surface_flaw:
            given = [k for k in FLAW_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(f"{given[0]}: a key of the surface flaw, but surface_flaw is "
                                 "false")
            if self.internal_crack is None:
                raise ValueError("surface_flaw: false needs an internal_crack (or use kind "
                                 "planar)")
            return self
        depth, w, x0 = self.flaw_depth, self.flaw_opening, self.flaw_position
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
        length = self.flaw_length
        if length is not None and self.dim != 3:
            raise ValueError("flaw_length: only for dim: 3 (the extent of the flaw along z)")
        if length is not None and length < w:
            raise ValueError(f"flaw_length = {length:g} m must be at least flaw_opening = "
                             f"{w:g} m (the slot's end is rounded with radius flaw_opening / 2)")
        if length is not None and length > self.cell_depth - w:
            raise ValueError(
                f"flaw_length = {length:g} m must be at most depth - flaw_opening = "
                f"{self.cell_depth - w:g} m (depth = {self.cell_depth:g} m; leave electrolyte "
                "between the slot's end and the side z = depth, or omit flaw_length for a "
                "flaw through the whole depth)")
        if self.tip_size > w / 4:
            raise ValueError(
                f"tip_mesh_size: the tip elements ({self.tip_size:g} m) must be at most "
                f"flaw_opening / 4 = {w / 4:g} m to resolve the semicircular tip")
        crack = self.internal_crack
        if crack is not None:
            gap = (_segment_distance(self.flaw_centre_line(), crack.centre_line())
                   - (w + crack.opening) / 2)
            if gap < max(w, crack.opening):
                raise ValueError(
                    f"internal_crack: the crack comes within {max(gap, 0.0):g} m of the surface "
                    f"flaw; keep them at least {max(w, crack.opening):g} m (the larger "
                    "opening) apart")
        return self

    def _crack_fits(self) -> None:
        """Errors, naming the key, for an internal crack that does not fit in the
        electrolyte (kept an opening away from its boundaries) or cannot be meshed."""
        crack, key = self.internal_crack, "internal_crack"
        w = crack.opening
        if self.dim == 2 and crack.z != 0:
            raise ValueError(f"{key}.z: only for dim: 3 (the centre's z)")
        if self.dim == 3:
            radius, z, depth = crack.length / 2, crack.z, self.cell_depth
            if (z > 0 and z - radius < w) or z + radius > depth - w:
                raise ValueError(
                    f"{key}.z = {z:g} m: the penny spans z = {max(z - radius, 0.0):g} .. "
                    f"{z + radius:g} m and must stay {key}.opening = {w:g} m inside the cell "
                    f"0 < z < depth = {depth:g} m (or be centred on z = 0)")
        if w > crack.length / 2:
            raise ValueError(f"{key}.opening = {w:g} m must be at most half of "
                             f"{key}.length = {crack.length:g} m (a crack is narrow)")
        if crack.x == 0 and crack.angle not in (0.0, 90.0, -90.0):
            raise ValueError(
                f"{key}.angle = {crack.angle:g} deg: a crack centred on the symmetry line "
                "x = 0 (x: 0) must be symmetric about it: angle 0 or +-90")
        ends = crack.centre_line()
        r = w / 2
        x_min, x_max = min(p[0] for p in ends) - r, max(p[0] for p in ends) + r
        y_min, y_max = min(p[1] for p in ends) - r, max(p[1] for p in ends) + r
        if y_min < w or y_max > self.electrolyte_thickness - w:
            raise ValueError(
                f"{key}.height = {crack.height:g} m: the crack spans y = {y_min:g} .. "
                f"{y_max:g} m (with length and angle) and must stay {key}.opening = {w:g} m "
                f"inside the electrolyte 0 < y < electrolyte_thickness = "
                f"{self.electrolyte_thickness:g} m")
        if (crack.x > 0 and x_min < w) or x_max > self.width - w:
            raise ValueError(
                f"{key}.x = {crack.x:g} m: the crack spans x = {x_min:g} .. {x_max:g} m (with "
                f"length and angle) and must stay {key}.opening = {w:g} m inside the cell "
                f"0 < x < width = {self.width:g} m (or be centred on x = 0)")
        if self.crack_tip_size > w / 4:
            raise ValueError(
                f"tip_mesh_size: the tip elements ({self.crack_tip_size:g} m) must be at most "
                f"{key}.opening / 4 = {w / 4:g} m to resolve the crack's semicircular tips")


def _add_flaw(depth: float, r: float, inclination: float, x0: float) -> int:
    """OCC surface of the whole surface flaw (half width r, apex at distance ``depth`` from the
    mouth's centre (x0, 0) along the axis tilted by ``inclination`` [rad]), reaching below
    y = 0 so that clipping at the interface cuts both walls. The tip is two quarter arcs, so the
    apex is a model point."""
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


def _half_section(depth: float, r: float, below: float, z: float, side: int) -> int:
    """OCC surface, in the plane z, of the half (``side`` +1: x >= 0, -1: x <= 0) of the
    upright flaw section with its axis on x = 0 (the 2D flaw before tilting and shifting)."""
    occ = gmsh.model.occ
    corners = [(0.0, -below), (side * r, -below), (side * r, depth - r), (0.0, depth)]
    p = [occ.addPoint(x, y, z) for x, y in corners]
    centre = occ.addPoint(0.0, depth - r, z)
    edges = [occ.addLine(p[0], p[1]), occ.addLine(p[1], p[2]),
             occ.addCircleArc(p[2], centre, p[3]), occ.addLine(p[3], p[0])]
    occ.remove([(0, centre)])
    return occ.addPlaneSurface([occ.addCurveLoop(edges)])


def _add_flaw_3d(depth: float, r: float, inclination: float, x0: float,
                 z_straight: float | None, z_far: float) -> list[tuple[int, int]]:
    """OCC volumes making up the flaw: the two halves of the section of ``_add_flaw`` swept
    along z from below z = 0 to ``z_straight`` (None: to beyond ``z_far``, the whole depth),
    there ended by the same halves revolved by 90 degrees each about the axis (together a half
    cylinder along the axis and a quarter sphere at the tip); tilted by ``inclination`` [rad]
    and shifted to x0 like the 2D flaw. The pieces touch on faces and are left unfused (OCC
    cannot fuse the two revolved quarters, which meet on a face with a degenerate pole); the
    callers' fragment or cut joins them (in a filled flaw the faces between the pieces stay
    inside the Li, untagged). Margins beyond the cell's faces are left for the clipping."""
    occ = gmsh.model.occ
    below = r * (1 + abs(math.tan(inclination)))
    z0 = -r
    z1 = z_far + r if z_straight is None else z_straight
    halves = [_half_section(depth, r, below, z0, side) for side in (1, -1)]
    swept = occ.extrude([(2, s) for s in halves], 0.0, 0.0, z1 - z0)
    pieces = [(d, t) for d, t in swept if d == 3]
    if z_straight is not None:
        for side in (1, -1):  # +x sweeps to +z with a negative turn about +y, -x positive
            end = _half_section(depth, r, below, z_straight, side)
            turned = occ.revolve([(2, end)], 0.0, 0.0, z_straight, 0.0, 1.0, 0.0,
                                 -side * math.pi / 2)
            pieces += [(d, t) for d, t in turned if d == 3]
    occ.rotate(pieces, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, -inclination)  # +y -> (sin, cos)
    occ.translate(pieces, x0, 0.0, 0.0)
    return pieces


MODEL = ElectrolyteFlawGeometry


def _add_crack(length: float, r: float, angle: float, x: float, y: float) -> int:
    """OCC surface of a buried crack: the stadium of half width r whose tip apexes are
    ``length`` apart, centred at (x, y) with its axis at ``angle`` [rad] from +x. Each tip is
    two quarter arcs, so the apexes are model points."""
    occ = gmsh.model.occ
    a = length / 2
    corners = [(a - r, -r), (a, 0.0), (a - r, r), (r - a, r), (-a, 0.0), (r - a, -r)]
    p = [occ.addPoint(px, py, 0.0) for px, py in corners]
    c_plus, c_minus = occ.addPoint(a - r, 0.0, 0.0), occ.addPoint(r - a, 0.0, 0.0)
    edges = [occ.addCircleArc(p[0], c_plus, p[1]), occ.addCircleArc(p[1], c_plus, p[2]),
             occ.addLine(p[2], p[3]),
             occ.addCircleArc(p[3], c_minus, p[4]), occ.addCircleArc(p[4], c_minus, p[5]),
             occ.addLine(p[5], p[0])]
    occ.remove([(0, c_plus), (0, c_minus)])
    crack = occ.addPlaneSurface([occ.addCurveLoop(edges)])
    occ.rotate([(2, crack)], 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, angle)
    occ.translate([(2, crack)], x, y, 0.0)
    return crack


def _on_crack(curve: int, crack: InternalCrack, unit: float, tol: float) -> bool:
    """Whether the model curve lies on the internal crack's outline (checked at 5 points)."""
    lo, hi = gmsh.model.getParametrizationBounds(1, curve)
    ts = [lo[0] + (hi[0] - lo[0]) * k / 4 for k in range(5)]
    xyz = gmsh.model.getValue(1, curve, ts)
    (a, b), r = crack.centre_line(), crack.opening / 2 / unit
    a, b = (a[0] / unit, a[1] / unit), (b[0] / unit, b[1] / unit)
    return all(abs(_point_segment_distance((xyz[3 * k], xyz[3 * k + 1]), a, b) - r) < tol
               for k in range(len(ts)))


def _model_points_at(points: list[tuple[float, float]], unit: float, tol: float) -> list[int]:
    """The model points at ``points`` [m], one per point found."""
    found = []
    for _, p in gmsh.model.getEntities(0):
        x, y, _ = gmsh.model.getValue(0, p, [])
        if any(abs(x - px / unit) < tol and abs(y - py / unit) < tol for px, py in points):
            found.append(p)
    return found


def _arcs_and_walls(curves: list[int]) -> tuple[list[int], list[int]]:
    arcs = [c for c in curves if gmsh.model.getType(1, c) == "Circle"]
    return arcs, [c for c in curves if c not in arcs]


def _regions(li: tuple[int, int], electrolyte: list[tuple[int, int]],
             flaw: list[tuple[int, int]], filled: bool) -> dict[str, list[int]]:
    """OCC entities of the regions (2D surfaces or 3D volumes, tags by region name): a filled
    flaw is fragmented into the electrolyte and joins the Li (fragment, not fuse: a union would
    merge the 2D tip's two arcs), an empty one is cut from the electrolyte; the Li and the
    electrolyte pieces are then fragmented together so that they share their interface."""
    occ = gmsh.model.occ
    if filled and flaw:
        _, children = occ.fragment([li], [*electrolyte, *flaw])
        in_flaw = {t for c in children[1 + len(electrolyte):] for _, t in c}
        return {"li": [t for _, t in children[0]] + sorted(in_flaw),
                "electrolyte": [t for c in children[1:1 + len(electrolyte)] for _, t in c
                                if t not in in_flaw]}
    if flaw:
        electrolyte, _ = occ.cut(electrolyte, flaw)
    _, children = occ.fragment([li], electrolyte)
    return {"li": [t for _, t in children[0]],
            "electrolyte": [t for c in children[1:] for _, t in c]}


def build(g: ElectrolyteFlawGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    if g.dim == 3:
        _build_3d(g, unit)
        return
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    depth, r, x0 = g.flaw_depth / unit, g.flaw_opening / unit / 2, g.flaw_position / unit
    crack = g.internal_crack

    li = occ.addRectangle(0.0, -L_li, 0.0, W, L_li)
    el = [(2, occ.addRectangle(0.0, 0.0, 0.0, W, L_e))]
    if crack is not None:  # cut before the flaw: the flaw's fragments must not see it
        hole = _add_crack(crack.length / unit, crack.opening / unit / 2,
                          math.radians(crack.angle), crack.x / unit, crack.height / unit)
        el, _ = occ.cut(el, [(2, hole)])
    # the flaw clipped to the electrolyte's box (and to x > 0 for a half flaw)
    flaw = []
    if g.surface_flaw:
        flaw, _ = occ.intersect([(2, _add_flaw(depth, r, math.radians(g.inclination), x0))],
                                [(2, occ.addRectangle(0.0, 0.0, 0.0, W, L_e))])
    surfaces = _regions((2, li), el, flaw, g.filled)
    occ.synchronize()

    curves = sort_curves(surfaces, W, -L_li, L_e)
    free = curves.pop("free")
    tol = 1e-9 * max(W, L_li, L_e)
    crack_curves = [] if crack is None else [
        c for c in free if _on_crack(c, crack, unit, 1e-3 * crack.opening / unit)]
    if g.filled and len(crack_curves) != len(free):
        raise RuntimeError("electrolyte_flaw: a boundary curve of the filled flaw is neither "
                           "the interface nor on the cell's outer box")
    if free:
        curves["crack_surface"] = free
    add_physical_groups(surfaces, curves)

    point_groups, curve_groups = [], []
    if flaw:
        flaw_curves = [c for c in curves["interface"] + curves.get("crack_surface", [])
                       if occ.getCenterOfMass(1, c)[1] > tol and c not in crack_curves]
        arcs, walls = _arcs_and_walls(flaw_curves)
        tip = _model_points_at([g.apex()], unit, tol)
        expected = 2 if x0 > 0 else 1  # a half flaw has one wall and one quarter arc
        if len(tip) != 1 or len(walls) != expected or len(arcs) != expected:
            raise RuntimeError(f"electrolyte_flaw: expected the apex as one model point and "
                               f"{expected} wall(s) and arc(s), found {len(tip)} point(s), "
                               f"{len(walls)} wall(s), {len(arcs)} arc(s)")
        point_groups.append((tip, g.tip_size / unit))
        curve_groups += [(walls, g.wall_size / unit), (arcs, g.tip_size / unit)]
    if crack is not None:
        apexes = [p for _, p, _ in g.crack_apexes_in_cell()]
        tips = _model_points_at(apexes, unit, tol)
        arcs, walls = _arcs_and_walls(crack_curves)
        # a tip on x = 0 (a crack along the symmetry line) keeps one of its quarter arcs
        n_arcs = sum(1 if abs(x) < 1e-9 * g.width else 2 for x, _ in apexes)
        if len(tips) != len(apexes) or len(arcs) != n_arcs or not walls:
            raise RuntimeError(f"electrolyte_flaw: expected the internal crack's {len(apexes)} "
                               f"apex(es) as model points and {n_arcs} quarter arc(s), found "
                               f"{len(tips)} point(s), {len(arcs)} arc(s), {len(walls)} face(s)")
        point_groups.append((tips, g.crack_tip_size / unit))
        curve_groups += [(walls, g.crack_wall_size / unit), (arcs, g.crack_tip_size / unit)]
    refine_near(curves["interface"], point_groups, h_if, h, curve_groups=curve_groups)
    gmsh.model.mesh.generate(2)


def _add_penny(crack: InternalCrack, unit: float) -> list[tuple[int, int]]:
    """OCC volume of the 3D internal crack: a cylinder of radius R - r and height 2 r fused
    with the torus of radii R - r and r round its edge (R = length / 2, r = opening / 2), its
    axis (the mid-plane's normal) along (-sin, cos, 0) of ``angle``, centred at (x, height,
    z)."""
    occ = gmsh.model.occ
    R, r = crack.length / 2 / unit, crack.opening / 2 / unit
    core = occ.addCylinder(0.0, -r, 0.0, 0.0, 2 * r, 0.0, R - r)
    rim = occ.addTorus(0.0, 0.0, 0.0, R - r, r, zAxis=[0.0, 1.0, 0.0])
    penny, _ = occ.fuse([(3, core)], [(3, rim)])
    occ.rotate(penny, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, math.radians(crack.angle))
    occ.translate(penny, crack.x / unit, crack.height / unit, crack.z / unit)
    return penny


def _on_penny(face: int, crack: InternalCrack, unit: float, tol: float) -> bool:
    """Whether the model surface lies on the 3D internal crack: the point of its underlying
    (untrimmed) surface nearest its centre of mass is on one of the crack's planes off_plane =
    +-r within the core disc of radius R - r, or on its torus (at distance r from the core
    disc's rim circle)."""
    com = gmsh.model.occ.getCenterOfMass(2, face)
    point, _ = gmsh.model.getClosestPoint(2, face, com)
    (ex, ey), R, r = crack.axis(), crack.length / 2 / unit, crack.opening / 2 / unit
    d = [point[0] - crack.x / unit, point[1] - crack.height / unit, point[2] - crack.z / unit]
    off_plane = -ey * d[0] + ex * d[1]  # along the mid-plane's normal (-sin, cos, 0)
    radial = math.sqrt(max(d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - off_plane ** 2, 0.0))
    on_plane = abs(abs(off_plane) - r) < tol and radial <= R - r + tol
    return on_plane or abs(math.hypot(off_plane, radial - (R - r)) - r) < tol


def _build_3d(g: ElectrolyteFlawGeometry, unit: float) -> None:
    """``build`` for dim 3 (module docstring)."""
    occ = gmsh.model.occ
    W, D = g.width / unit, g.cell_depth / unit
    L_li, L_e = g.li_thickness / unit, g.electrolyte_thickness / unit
    depth, r, x0 = g.flaw_depth / unit, g.flaw_opening / unit / 2, g.flaw_position / unit
    length = None if g.flaw_length is None else g.flaw_length / unit
    theta = math.radians(g.inclination)
    crack = g.internal_crack

    li = occ.addBox(0.0, -L_li, 0.0, W, L_li, D)
    el = [(3, occ.addBox(0.0, 0.0, 0.0, W, L_e, D))]
    if crack is not None:  # cut before the flaw, as in 2D
        el, _ = occ.cut(el, _add_penny(crack, unit))
    flaw = []
    if g.surface_flaw:
        whole = _add_flaw_3d(depth, r, theta, x0, None if length is None else length - r, D)
        flaw, _ = occ.intersect(whole, [(3, occ.addBox(0.0, 0.0, 0.0, W, L_e, D))])
    volumes = _regions((3, li), el, flaw, g.filled)
    occ.synchronize()

    faces = sort_curves(volumes, W, -L_li, L_e, depth=D)
    free = faces.pop("free")
    penny = [] if crack is None else [
        s for s in free if _on_penny(s, crack, unit, 1e-3 * crack.opening / unit)]
    if (g.filled or not flaw) and len(penny) != len(free):
        raise RuntimeError("electrolyte_flaw: a boundary surface is neither the interface, nor "
                           "on the cell's outer box, nor on the internal crack")
    if free:
        faces["crack_surface"] = free
    add_physical_groups(volumes, faces, dim=3)

    surface_groups, curve_groups = [], []
    tol = 1e-9 * max(W, D, L_li, L_e)
    flaw_faces = [s for s in faces["interface"] + faces.get("crack_surface", [])
                  if s not in penny]
    on_flaw = [s for s in flaw_faces if occ.getCenterOfMass(2, s)[1] > tol]  # not y = 0
    surface_groups.append(([s for s in flaw_faces if s not in on_flaw],
                           g.interface_mesh_size / unit))
    if flaw:
        rim = [c for _, c in gmsh.model.getEntities(1)
               if _on_rim(c, depth, r, theta, x0, length, 1e-3 * r)]
        rim_length = sum(occ.getMass(1, c) for c in rim)
        expected = D if length is None else (length - r) + math.pi * r / 2 + (depth - r)
        if not rim or abs(rim_length - expected) > 1e-4 * expected:
            raise RuntimeError(f"electrolyte_flaw: the flaw's rim (tip line, corner and end) "
                               f"should be model curves {expected:g} um long, found "
                               f"{len(rim)} curve(s) {rim_length:g} um long")
        surface_groups.append((on_flaw, g.wall_size / unit))
        curve_groups.append((rim, g.tip_size / unit))
    if crack is not None:
        flat = [s for s in penny if gmsh.model.getType(2, s) == "Plane"]
        if not flat or len(flat) == len(penny):
            raise RuntimeError(f"electrolyte_flaw: expected the internal crack's flat faces and "
                               f"rounded rim, found {len(flat)} flat of {len(penny)} face(s)")
        surface_groups += [(flat, g.crack_wall_size / unit),
                           ([s for s in penny if s not in flat], g.crack_tip_size / unit)]
    _refine_3d(surface_groups, curve_groups, g.mesh_size / unit)
    gmsh.model.mesh.generate(3)


def _on_rim(curve: int, depth: float, r: float, theta: float, x0: float,
            length: float | None, tol: float) -> bool:
    """Whether the model curve lies on the flaw's rim: in the flaw's mid-plane and at distance
    r from the rectangle (axis coordinate a <= depth - r) x (z <= length - r), the outline of
    the flaw in that plane (checked at 9 points along the curve)."""
    lo, hi = gmsh.model.getParametrizationBounds(1, curve)
    ts = [lo[0] + (hi[0] - lo[0]) * k / 8 for k in range(9)]
    xyz = gmsh.model.getValue(1, curve, ts)
    for k in range(len(ts)):
        x, y, z = xyz[3 * k: 3 * k + 3]
        along = (x - x0) * math.sin(theta) + y * math.cos(theta)
        across = (x - x0) * math.cos(theta) - y * math.sin(theta)
        beyond_end = 0.0 if length is None else max(z - (length - r), 0.0)
        if abs(across) > tol or abs(math.hypot(max(along - (depth - r), 0.0), beyond_end)
                                    - r) > tol:
            return False
    return True


def _refine_3d(surface_groups: list[tuple[list[int], float]],
               curve_groups: list[tuple[list[int], float]], h_max: float) -> None:
    """Background size field as in ``refine_near``, with a size per group of surfaces: each
    group's size at distance 0, growing linearly to h_max over 8 h_max; generates nothing.
    The distances are to points sampled on the entities at about half the group's size (the
    sampling, not the tetrahedra, would dominate the meshing time at refine_near's 200 per
    direction on every surface), which leaves the size within 1/16 of it off."""
    groups = []
    for entities, dim, key in ((surface_groups, 2, "SurfacesList"),
                               (curve_groups, 1, "CurvesList")):
        for ids, size in entities:
            if not ids:
                continue
            extent = max(math.dist(box[:3], box[3:])
                         for box in (gmsh.model.getBoundingBox(dim, e) for e in ids))
            groups.append((ids, size, key, max(20, math.ceil(2 * extent / size))))
    size_field(groups, h_max)
