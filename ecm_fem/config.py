"""The YAML schema of an ecm_fem run: typed, validated, SI units in every field's description.

Unknown keys are rejected, cross-field checks run before any mesh is made, and every error names
the key path and the line of the YAML file (``ConfigError``). Config objects are plain data: no
communicators, meshes or Functions inside.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ecm_fem.materials import LIBRARY, PROPERTIES, Material, get_material


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key path, line and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, use_enum_values=False)


Positive = Annotated[float, Field(gt=0)]
Length = Annotated[float, Field(gt=0, le=1.0)]  # anything above 1 m is a unit mistake here


# ----------------------------------------------------------------------------- geometry
class PlanarGeometry(_Model):
    """A flat Li | electrolyte stack in 2D plane strain: Li below y = 0, electrolyte above."""

    kind: Literal["planar"] = "planar"
    dim: Literal[2] = Field(2, description="spatial dimension (2: plane strain)")
    width: Length = Field(20e-6, description="lateral size of the cell [m]")
    li_thickness: Length = Field(10e-6, description="thickness of the Li electrode [m]")
    electrolyte_thickness: Length = Field(
        100e-6, description="electrolyte thickness, interface to counter boundary [m]"
    )
    mesh_size: Length = Field(5e-6, description="element size away from the interface [m]")
    interface_mesh_size: Length = Field(1e-6, description="element size at the interface [m]")
    sei_thickness: Annotated[float, Field(ge=0, le=1e-5)] = Field(
        0.0, description="resolved SEI layer between Li and electrolyte [m]; 0: none"
    )

    @model_validator(mode="after")
    def _sizes(self) -> PlanarGeometry:
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
    def projected_area(self) -> float:
        """Nominal electrode area per unit depth [m] (2D)."""
        return self.width


class InterfacialVoidGeometry(PlanarGeometry):
    """The planar stack with a void in the Li at the interface: a quarter ellipse at x = 0
    (the side x = 0 is a symmetry line, so the cell holds half of a void of full width
    2 void_half_width, repeated with period 2 width). The electrolyte face above the void
    carries no current and no traction."""

    kind: Literal["interfacial_void"] = "interfacial_void"  # type: ignore[assignment]
    void_half_width: Length = Field(5e-6, description="half width a of the void along x [m]")
    void_depth: Length = Field(2e-6, description="depth b of the void into the Li [m]")
    void_mesh_size: Length | None = Field(
        None, description="element size at the void edge [m] (default interface_mesh_size / 4)")

    @model_validator(mode="after")
    def _void_fits(self) -> InterfacialVoidGeometry:
        if self.void_half_width >= self.width:
            raise ValueError(
                f"void_half_width = {self.void_half_width:g} m must be smaller than width = "
                f"{self.width:g} m (the void would cover the whole interface)")
        if self.void_depth >= self.li_thickness:
            raise ValueError(f"void_depth = {self.void_depth:g} m must be smaller than "
                             f"li_thickness = {self.li_thickness:g} m")
        if self.sei_thickness > 0:
            raise ValueError("sei_thickness: a resolved SEI is not supported with a void yet")
        return self


def _geometry_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "planar")
    return getattr(value, "kind", "planar")


GEOMETRY_KINDS = ("planar", "interfacial_void")
Geometry = Annotated[
    Annotated[PlanarGeometry, Tag("planar")]
    | Annotated[InterfacialVoidGeometry, Tag("interfacial_void")],
    Discriminator(_geometry_kind),
]


# ----------------------------------------------------------------------------- materials
class MaterialSpec(_Model):
    """A library material, optionally with single properties overridden (SI units)."""

    base: str = Field(description="library name (ecm-fem info lists them)")
    conductivity: Positive | None = Field(None, description="ionic conductivity [S/m]")
    youngs_modulus: Positive | None = Field(None, description="Young's modulus [Pa]")
    poisson_ratio: Annotated[float, Field(gt=-1, lt=0.5)] | None = Field(
        None, description="Poisson ratio [-]"
    )
    molar_volume: Positive | None = Field(None, description="(partial) molar volume [m^3/mol]")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"base": data} if isinstance(data, str) else data

    @field_validator("base")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in LIBRARY:
            raise ValueError(f"unknown material '{name}' (known: {', '.join(sorted(LIBRARY))})")
        return name

    @field_validator("conductivity")
    @classmethod
    def _conductivity_range(cls, value: float | None) -> float | None:
        if value is not None and value > 1e3:
            raise ValueError(f"{value:g} S/m is not an ionic conductivity (expected < 1e3 S/m)")
        return value

    @field_validator("youngs_modulus")
    @classmethod
    def _modulus_range(cls, value: float | None) -> float | None:
        if value is not None and not 1e3 <= value <= 1e13:
            raise ValueError(f"{value:g} Pa is outside 1e3-1e13 Pa: is it given in GPa or MPa?")
        return value

    def resolve(self) -> Material:
        overrides = {p: getattr(self, p) for p in PROPERTIES}
        return get_material(self.base).with_overrides(**overrides)


class Materials(_Model):
    """Which material fills each region (cell tag names of the mesh)."""

    li: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="lithium"))
    electrolyte: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="llzo"))
    sei: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="sei"),
                              description="the resolved SEI layer, where the geometry has one")
    gb: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="llzo"),
                             description="grain-boundary phase, where the geometry has one")

    def for_region(self, region: str) -> Material:
        return getattr(self, region).resolve()


# ----------------------------------------------------------------------------- kinetics
class KineticsModel(enum.StrEnum):
    butler_volmer = "butler_volmer"
    linear = "linear"
    tafel = "tafel"


class StressCoupling(enum.StrEnum):
    none = "none"
    normal_traction = "normal_traction"
    hydrostatic = "hydrostatic"
    monroe_newman = "monroe_newman"


Stress = Annotated[float, Field(ge=-1e10, le=1e10)]


class PrescribedStress(_Model):
    """Uniform interface stresses [Pa] (tension positive) used by the stress coupling until the
    mechanics supplies them, and for verification."""

    sigma_nn_li: Stress = Field(0.0, description="normal stress n.sigma.n on the Li side [Pa]")
    sigma_h_li: Stress = Field(0.0, description="hydrostatic stress in Li [Pa]")
    sigma_h_electrolyte: Stress = Field(0.0, description="hydrostatic stress, electrolyte [Pa]")
    tau_nn_li: Stress = Field(0.0, description="deviatoric normal stress, Li side [Pa]")
    tau_nn_electrolyte: Stress = Field(
        0.0, description="deviatoric normal stress, electrolyte side [Pa]")
    curvature: float = Field(0.0, description="interface mean curvature [1/m]")


class Kinetics(_Model):
    """Interface kinetics at the Li working electrode (PHYSICS.md section 3)."""

    model: KineticsModel = Field(KineticsModel.butler_volmer, description="rate law")
    i0: Positive = Field(
        51.0, description="exchange current density [A/m^2] (Li|LLZO: 5 Ohm cm^2 -> 51 A/m^2)"
    )
    alpha_a: Annotated[float, Field(gt=0, le=1)] = Field(0.5, description="anodic coefficient")
    alpha_c: Annotated[float, Field(gt=0, le=1)] = Field(0.5, description="cathodic coefficient")
    stress_coupling: StressCoupling = Field(
        StressCoupling.none,
        description="mechanics in the kinetics: none | normal_traction | hydrostatic | "
        "monroe_newman (PHYSICS.md 3.1)",
    )
    prescribed_stress: PrescribedStress | None = Field(
        None, description="uniform interface stresses for the coupling [Pa] (no mechanics yet)"
    )
    surface_energy: Positive = Field(
        0.556, description="Li surface energy gamma [J/m^2] (monroe_newman)"
    )

    @model_validator(mode="after")
    def _stress_source(self) -> Kinetics:
        if self.stress_coupling != StressCoupling.none and self.prescribed_stress is None:
            raise ValueError(
                f"stress_coupling '{self.stress_coupling.value}' needs interface stresses: "
                "the mechanics is not built yet, so set kinetics.prescribed_stress"
            )
        return self


class CounterKind(enum.StrEnum):
    reference = "reference"
    butler_volmer = "butler_volmer"


class Counter(_Model):
    """The counter boundary: an ideal reference (phi = 0) or a second Butler-Volmer electrode."""

    kind: CounterKind = Field(CounterKind.reference, description="reference | butler_volmer")
    i0: Positive = Field(51.0, description="exchange current density [A/m^2] (butler_volmer)")
    alpha_a: Annotated[float, Field(gt=0, le=1)] = 0.5
    alpha_c: Annotated[float, Field(gt=0, le=1)] = 0.5


# ----------------------------------------------------------------------------- control, time
class ControlMode(enum.StrEnum):
    galvanostatic = "galvanostatic"
    potentiostatic = "potentiostatic"


class CurrentStep(_Model):
    """Hold ``current_density`` until time ``until``."""

    until: Annotated[float, Field(gt=0)] = Field(description="end of this step [s]")
    current_density: float = Field(description="applied current density [A/m^2]")


class Control(_Model):
    """Electrical control of the working electrode. Anodic (stripping) current is positive."""

    mode: ControlMode = ControlMode.galvanostatic
    current_density: float = Field(
        -10.0, description="applied current per projected area [A/m^2]; negative = plating"
    )
    steps: list[CurrentStep] | None = Field(
        None, description="piecewise-constant current sequence (overrides current_density)"
    )
    voltage: float = Field(0.0, description="V_we under potentiostatic control [V]")

    @field_validator("current_density")
    @classmethod
    def _current_range(cls, value: float) -> float:
        if abs(value) > 1e5:
            raise ValueError(f"|{value:g}| A/m^2 is beyond any battery current (is it mA/cm^2?)")
        return value

    @field_validator("voltage")
    @classmethod
    def _voltage_range(cls, value: float) -> float:
        if abs(value) > 10:
            raise ValueError(f"{value:g} V is outside +-10 V (is it given in mV?)")
        return value

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[CurrentStep] | None) -> list[CurrentStep] | None:
        if steps:
            ends = [s.until for s in steps]
            if any(b <= a for a, b in zip(ends, ends[1:], strict=False)):
                raise ValueError("step end times 'until' must increase")
        return steps

    def current_at(self, t: float) -> float:
        """Applied current density [A/m^2] at time ``t`` [s] (steps hold their end value)."""
        if not self.steps:
            return self.current_density
        for step in self.steps:
            if t <= step.until * (1 + 1e-12):
                return step.current_density
        return self.steps[-1].current_density


class Time(_Model):
    """Time stepping [s]. ``t_end = 0`` gives a single quasi-static solve."""

    t_end: Annotated[float, Field(ge=0)] = Field(0.0, description="end time [s]")
    dt: Positive = Field(1.0, description="time step [s]")

    @model_validator(mode="after")
    def _step_fits(self) -> Time:
        if self.t_end > 0 and self.dt > self.t_end:
            raise ValueError(f"dt = {self.dt:g} s is larger than t_end = {self.t_end:g} s")
        if self.t_end > 0 and self.t_end / self.dt > 1e6:
            raise ValueError("more than 1e6 time steps: increase dt")
        return self


# ----------------------------------------------------------------------------- numerics, output
class Discretisation(_Model):
    phi_degree: Literal[1, 2] = Field(1, description="Lagrange degree of the potential")


class Solver(_Model):
    """Newton (PETSc SNES, option prefix ``ecm_``) and its linear solver."""

    rtol: Positive = Field(1e-10, description="Newton relative residual tolerance")
    atol: Positive = Field(1e-14, description="Newton absolute residual tolerance [A/m]")
    max_iterations: Annotated[int, Field(ge=1, le=200)] = 30
    linear_solver: Literal["iterative", "direct"] = Field(
        "iterative", description="iterative: GMRES + fieldsplit(BoomerAMG); direct: MUMPS LU"
    )
    petsc_options: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="extra PETSc options under the ecm_ prefix"
    )


class Output(_Model):
    dir: str = Field("results/run", description="output folder (relative to the working dir)")
    fields_every: Annotated[int, Field(ge=0)] = Field(
        1, description="write ParaView fields every N steps (0: only the last)"
    )


class RunConfig(_Model):
    """A whole ecm_fem run."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$", description="run name")
    temperature: Annotated[float, Field(gt=150, lt=600)] = Field(
        298.15, description="temperature [K] (a value in Celsius is rejected by the range)"
    )
    geometry: Geometry = Field(default_factory=PlanarGeometry)
    materials: Materials = Field(default_factory=Materials)
    kinetics: Kinetics = Field(default_factory=Kinetics)
    counter: Counter = Field(default_factory=Counter)
    control: Control = Field(default_factory=Control)
    time: Time = Field(default_factory=Time)
    discretisation: Discretisation = Field(default_factory=Discretisation)
    solver: Solver = Field(default_factory=Solver)
    output: Output = Field(default_factory=Output)

    @model_validator(mode="after")
    def _electrolyte_conducts(self) -> RunConfig:
        for region in ("electrolyte", "sei", "gb"):
            if self.materials.for_region(region).conductivity is None:
                raise ValueError(
                    f"materials.{region}: the material has no ionic conductivity; set "
                    f"materials.{region}.conductivity"
                )
        return self


# ----------------------------------------------------------------------------- loading
def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path of a YAML document to its 1-based line number."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _format_errors(err: ValidationError, lines: dict, source: str) -> str:
    out = [f"{source}: invalid config ({err.error_count()} problem(s))"]
    for e in err.errors():
        # drop the union tag pydantic inserts after 'geometry'
        path = tuple(p for k, p in enumerate(e["loc"])
                     if not (k == 1 and e["loc"][0] == "geometry" and p in GEOMETRY_KINDS))
        key = ".".join(str(p) for p in path) or "<top level>"
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
        where = f" (line {line})" if line else ""
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            msg = f"unknown geometry kind (known: {', '.join(GEOMETRY_KINDS)})"
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `ecm-fem schema` lists the keys)"
        out.append(f"  {key}{where}: {msg}")
    return "\n".join(out)


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{k}' is not a section")
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=1", ...]`` -> ``[("a.b", 1), ...]`` with YAML typing of the values."""
    parsed = []
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key.path=value")
        key, raw = pair.split("=", 1)
        parsed.append((key.strip(), yaml.safe_load(raw)))
    return parsed


def load_config(path: str | Path, overrides: list[tuple[str, Any]] | None = None) -> RunConfig:
    """Read and validate a YAML config; raise ``ConfigError`` with key paths and lines."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    return config_from_text(text, str(path), overrides)


def config_from_text(
    text: str, source: str = "<config>", overrides: list[tuple[str, Any]] | None = None
) -> RunConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: YAML syntax error{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    for key, value in overrides or []:
        _set_path(data, key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, _key_lines(text), source)) from None


def dump_config(config: RunConfig) -> str:
    """The resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
