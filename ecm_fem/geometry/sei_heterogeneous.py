"""Heterogeneous SEI in 2D: the planar Li | SEI | electrolyte stack, where the SEI is a row of
pieces of different thickness (patches, and the base layer between them) on 0 < x < width.

A patch with thickness > 0 is its own sub-region (cell tag 101, 102, ... in the config's order,
parent ``sei``); the base layer is ``sei``; a piece of thickness 0 is a gap through the SEI
(cracked SEI) where the Li touches the electrolyte. Every Li contact at y = 0 is ``interface``;
SEI | electrolyte boundaries (the SEI's top and the walls of its steps) are ``sei_electrolyte``.
Curves are classified by the regions on their two sides, so steps and gaps need no special case.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import gmsh
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Identifier, Length, PlanarGeometry, StrictModel
from ecm_fem.geometry.tags import CELL_NAMES, CELL_TAGS, SUBREGION_TAG_START


class SeiPatch(StrictModel):
    """A stretch x_min < x < x_max of the SEI with its own thickness (and, through
    ``materials.patches`` and ``kinetics.regions``, its own conductivity and kinetics)."""

    name: Identifier = Field(description="patch name, the key in materials.patches and "
                             "kinetics.regions")
    x_min: Annotated[float, Field(ge=0, le=1.0)] = Field(description="left end of the patch [m]")
    x_max: Length = Field(description="right end of the patch [m]")
    thickness: Annotated[float, Field(ge=0, le=1e-5)] = Field(
        description="SEI thickness over the patch [m]; 0: a gap (cracked SEI), where Li touches "
        "the electrolyte")


class SeiHeterogeneousGeometry(PlanarGeometry):
    """The planar stack with a resolved SEI of thickness ``sei_thickness`` (0 allowed: SEI only
    on the patches) interrupted by patches of other thickness and properties. Each patch with
    thickness > 0 is a sub-region of ``sei`` with its own cell tag (101, 102, ... in the order
    listed); where the SEI is absent the Li touches the electrolyte. The Li | SEI and
    Li | electrolyte contacts are all ``interface``; the SEI's top is ``sei_electrolyte``."""

    SUPPORTS_3D: ClassVar[bool] = False
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = False

    kind: Literal["sei_heterogeneous"] = "sei_heterogeneous"  # type: ignore[assignment]
    patches: list[SeiPatch] = Field(min_length=1, description="the SEI patches, left to right")

    @model_validator(mode="after")
    def _patches_fit(self) -> SeiHeterogeneousGeometry:
        names = [p.name for p in self.patches]
        if len(set(names)) < len(names):
            raise ValueError(f"patches: names must be unique (got {names})")
        for k, p in enumerate(self.patches):
            if p.x_max <= p.x_min:
                raise ValueError(f"patches[{k}] ({p.name}): x_max must exceed x_min")
            if p.x_max > self.width * (1 + 1e-12):
                raise ValueError(f"patches[{k}] ({p.name}): x_max = {p.x_max:g} m is beyond "
                                 f"width = {self.width:g} m")
            if p.thickness >= self.electrolyte_thickness:
                raise ValueError(f"patches[{k}] ({p.name}): thickness must be smaller than "
                                 "electrolyte_thickness")
            if k and p.x_min < self.patches[k - 1].x_max * (1 - 1e-12):
                raise ValueError(f"patches[{k}] ({p.name}): patches must be listed left to "
                                 "right without overlap")
        return self

    def subregions(self) -> dict[str, tuple[str, int]]:
        return {p.name: ("sei", SUBREGION_TAG_START + k)
                for k, p in enumerate(self.patches) if p.thickness > 0}

    @property
    def has_resolved_sei(self) -> bool:
        return self.sei_thickness > 0 or any(p.thickness > 0 for p in self.patches)

    def sei_pieces(self) -> list[tuple[float, float, float, str]]:
        """The SEI as (x_min, x_max, thickness [m], sub-region name or 'sei') pieces covering
        0 < x < width, gaps included with thickness 0."""
        pieces, x = [], 0.0
        for p in self.patches:
            if p.x_min > x:
                pieces.append((x, p.x_min, self.sei_thickness, "sei"))
            pieces.append((p.x_min, p.x_max, p.thickness, p.name))
            x = p.x_max
        if x < self.width:
            pieces.append((x, self.width, self.sei_thickness, "sei"))
        return pieces


MODEL = SeiHeterogeneousGeometry


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
        return CELL_NAMES.get(tag, "sei")

    by_region: dict[str, list[int]] = {}
    for s, tag in region_of.items():
        by_region.setdefault(region(tag), []).append(s)
    curves = sort_curves(by_region, W, -L_li, L_e)
    if curves.pop("free"):
        raise RuntimeError("sei_heterogeneous: a boundary curve is on no known boundary")

    by_tag: dict[int, list[int]] = {}
    for s, tag in region_of.items():
        by_tag.setdefault(tag, []).append(s)
    names = CELL_NAMES | {v: k for k, v in sub_tags.items()}
    for tag, ents in sorted(by_tag.items()):
        gmsh.model.addPhysicalGroup(2, ents, tag, name=names[tag])
    add_physical_groups({}, curves)

    refine_near(curves["interface"] + curves["sei_electrolyte"], [], h_if, h)
    gmsh.model.mesh.generate(2)
