"""Config models shared by the geometry families: the strict pydantic base of every config
section, the length type, and the planar stack whose parameters every 2D family extends. A
family's own model lives in its builder module (see ``ecm_fem.geometry``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class CrackTip(NamedTuple):
    """A crack tip of a 2D geometry, for the K_I interaction integral (ecm_fem/solid.py,
    CrackTips): ``position`` [m], the unit vector ``direction`` pointing ahead of the tip, and
    the ring r_in < r < r_out [m] of the integration domain, which holds only electrolyte and
    the crack's own faces (the blunt root lies inside r_in). ``filled``: the faces are Li
    interface loaded by the Li's stress (a Li-filled flaw); otherwise traction free.
    ``opening_key`` names the config key of the crack's opening in messages."""

    name: str
    position: tuple[float, float]
    direction: tuple[float, float]
    filled: bool
    r_in: float
    r_out: float
    opening_key: str


class StrictModel(BaseModel):
    """A config section: unknown keys rejected, defaults validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True, use_enum_values=False)


Positive = Annotated[float, Field(gt=0)]
LARGEST_LENGTH = 1e-2  # [m] the largest length of a cell here (microstructures: um to mm)


def _metres(value: float) -> float:
    """A length [m] of at most 1 cm: beyond, it is a length given in micrometres (or mm), which
    would otherwise ask gmsh for a mesh of a cell metres across at micrometre resolution."""
    if value > LARGEST_LENGTH:
        raise ValueError(f"{value:g} m is larger than any cell modelled here ({LARGEST_LENGTH:g} "
                         "m at most): is it given in micrometres or millimetres? (SI: "
                         f"{value:g} um = {value * 1e-6:g} m, {value:g} mm = {value * 1e-3:g} m)")
    return value


Length = Annotated[float, Field(gt=0, json_schema_extra={"maximum": LARGEST_LENGTH}),
                   AfterValidator(_metres)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class PlanarGeometry(StrictModel):
    """A flat Li | electrolyte stack: Li below y = 0, electrolyte above, 0 < x < width (and
    0 < z < depth in 3D: y is the stacking direction in 2D and 3D alike). With
    ``axisymmetric`` the 2D drawing is the (r, z) half-section of a cylindrical cell of radius
    width about the axis x = 0 (ecm_fem/axisymmetry.py)."""

    SUPPORTS_3D: ClassVar[bool] = True  # families drawn in 2D only set False
    # families whose defects are no body of revolution about x = 0 set False
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = True

    kind: Literal["planar"] = "planar"
    dim: Literal[2, 3] = Field(2, description="spatial dimension (2: plane strain; 3: a box "
                               "of depth ``depth`` along z)")
    width: Length = Field(20e-6, description="lateral size of the cell along x [m]")
    depth: Length | None = Field(None, description="lateral size of the cell along z in 3D [m] "
                                 "(default: width)")
    li_thickness: Length = Field(10e-6, description="thickness of the Li electrode [m]")
    electrolyte_thickness: Length = Field(
        100e-6, description="electrolyte thickness, interface to counter boundary [m]"
    )
    mesh_size: Length = Field(5e-6, description="element size away from the interface [m]")
    interface_mesh_size: Length = Field(1e-6, description="element size at the interface [m]")
    sei_thickness: Annotated[float, Field(ge=0, le=1e-5)] = Field(
        0.0, description="resolved SEI layer between Li and electrolyte [m]; 0: none"
    )
    axisymmetric: bool = Field(
        False, description="dim 2 only: the drawing in (r, z) = (x, y) is the half-section of a "
        "cylindrical cell of radius width about the axis x = 0; a defect centred on x = 0 is a "
        "body of revolution (a void an oblate spheroidal cap, a protrusion a half-spheroid); "
        "currents, amounts and areas are then those of the whole cylinder")

    @model_validator(mode="after")
    def _sizes(self) -> PlanarGeometry:
        if self.dim == 3 and not self.SUPPORTS_3D:
            from ecm_fem.geometry import GEOMETRY_MODELS  # the registry imports this module

            in_3d = ", ".join(k for k, m in GEOMETRY_MODELS.items()
                             if getattr(m, "SUPPORTS_3D", False))
            raise ValueError(f"dim: kind {self.kind} is built in 2D only (3D: {in_3d})")
        if self.dim == 2 and self.depth is not None:
            raise ValueError("depth: only for dim: 3")
        if self.axisymmetric and self.dim != 2:
            raise ValueError("axisymmetric: only for dim: 2 (the (r, z) half-section)")
        if self.axisymmetric and not self.SUPPORTS_AXISYMMETRIC:
            from ecm_fem.geometry import GEOMETRY_MODELS  # the registry imports this module

            kinds = ", ".join(k for k, m in GEOMETRY_MODELS.items()
                              if getattr(m, "SUPPORTS_AXISYMMETRIC", False))
            raise ValueError(f"axisymmetric: kind {self.kind} has no axisymmetric form "
                             f"(axisymmetric: {kinds})")
        if self.sei_thickness >= self.electrolyte_thickness:
            raise ValueError("sei_thickness must be smaller than electrolyte_thickness")
        smallest = min(self.width, self.li_thickness, self.electrolyte_thickness)
        if self.interface_mesh_size > smallest:
            raise ValueError(
                f"interface_mesh_size = {self.interface_mesh_size:g} m is larger than the "
                f"smallest domain size {smallest:g} m"
            )
        if self.interface_mesh_size > self.mesh_size:
            raise ValueError("interface_mesh_size must not exceed mesh_size")
        return self

    @property
    def cell_depth(self) -> float:
        """Extent along z [m] in 3D, the default filled in."""
        return self.depth or self.width

    @property
    def projected_area(self) -> float:
        """Nominal electrode area: per unit depth [m] in 2D, [m^2] in 3D and of the whole
        disc, pi width^2 [m^2], when axisymmetric."""
        if self.axisymmetric:
            return float(np.pi * self.width ** 2)
        return self.width if self.dim == 2 else self.width * self.cell_depth

    def subregions(self) -> dict[str, tuple[str, int]]:
        """Named sub-regions with their own properties: name -> (parent region, cell tag)."""
        return {}

    @property
    def has_resolved_sei(self) -> bool:
        return self.sei_thickness > 0

    def crack_tips(self) -> list[CrackTip]:
        """Crack tips of the geometry (K_I is reported at each); none here."""
        return []
