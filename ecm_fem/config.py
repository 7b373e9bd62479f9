"""The YAML schema of an ecm_fem run: typed, validated, SI units in every field's description.

Unknown keys are rejected, cross-field checks run before any mesh is made, and every error names
the key path and the line of the YAML file (``ConfigError``). Config objects are plain data: no
communicators, meshes or Functions inside.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ecm_fem.geometry import GEOMETRY_MODELS
from ecm_fem.geometry.params import Length, PlanarGeometry, Positive, StrictModel
from ecm_fem.materials import LIBRARY, PROPERTIES, Material, get_material
from ecm_fem.physics.transport import ConcentrationFunction, check_property


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key path, line and reason."""


# ----------------------------------------------------------------------------- unit mistakes
def _kelvin(value: float) -> float:
    """A temperature [K] between 150 and 600 K; a value in degrees Celsius is named as such."""
    if not 150 < value < 600:
        hint = (f": is it given in degrees Celsius? ({value:g} C = {value + 273.15:g} K)"
                if -273.15 < value <= 150 else "")
        raise ValueError(f"{value:g} K is outside 150-600 K{hint}")
    return value


Temperature = Annotated[float, AfterValidator(_kelvin), Field(
    json_schema_extra={"exclusiveMinimum": 150, "exclusiveMaximum": 600})]


def _battery_current(value: float) -> float:
    """An applied current density [A/m^2] of at most 1e5 A/m^2 (10 A/cm^2) in magnitude."""
    if abs(value) > 1e5:
        raise ValueError(f"|{value:g}| A/m^2 is beyond any battery current (is it mA/cm^2?)")
    return value


# ----------------------------------------------------------------------------- geometry
def _geometry_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "planar")
    return getattr(value, "kind", "planar")


GEOMETRY_KINDS = tuple(GEOMETRY_MODELS)
Geometry = Annotated[
    Union[tuple(Annotated[model, Tag(kind)] for kind, model in GEOMETRY_MODELS.items())],  # noqa: UP007
    Discriminator(_geometry_kind),
]


# ----------------------------------------------------------------------------- materials
class MaterialSpec(StrictModel):
    """A library material, optionally with single properties overridden (SI units)."""

    base: str = Field(description="library name (ecm-fem info lists them)")
    conductivity: Positive | str | None = Field(
        None, description="ionic conductivity [S/m]; in a binary electrolyte also a formula in "
        "the salt concentration c [mol/m^3], e.g. '1e-2 * c / 1000'")
    youngs_modulus: Positive | None = Field(None, description="Young's modulus [Pa]")
    poisson_ratio: Annotated[float, Field(gt=-1, lt=0.5)] | None = Field(
        None, description="Poisson ratio [-]"
    )
    molar_volume: Positive | None = Field(None, description="(partial) molar volume [m^3/mol]")
    fracture_toughness: Annotated[float, Field(gt=0, le=1e8)] | None = Field(
        None, description="mode I fracture toughness K_Ic [Pa m^0.5]")
    diffusivity: Positive | str | None = Field(
        None, description="salt diffusion coefficient D [m^2/s] (binary electrolyte; number or "
        "formula in c)")
    transference_number: Annotated[float, Field(gt=-10, le=1)] | str | None = Field(
        None, description="cation transference number t+ [-] (binary electrolyte; number or "
        "formula in c)")
    thermodynamic_factor: Positive | str | None = Field(
        None, description="1 + dln f/dln c [-] (binary electrolyte; number or formula in c)")

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

    @field_validator("conductivity", "diffusivity", "transference_number",
                     "thermodynamic_factor")
    @classmethod
    def _formula(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str):
            ConcentrationFunction(value)  # raises with the reason
        return value

    @field_validator("conductivity")
    @classmethod
    def _conductivity_range(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and value > 1e3:
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


class Materials(StrictModel):
    """Which material fills each region (cell tag names of the mesh)."""

    li: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="lithium"))
    electrolyte: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="llzo"))
    sei: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="sei"),
                              description="the resolved SEI layer, where the geometry has one")
    gb: MaterialSpec = Field(default_factory=lambda: MaterialSpec(base="llzo"),
                             description="grain-boundary phase, where the geometry has one")
    patches: dict[str, MaterialSpec] = Field(
        default_factory=dict, description="materials of named sub-regions (SEI patches); a "
        "sub-region not listed takes its parent region's material")

    @staticmethod
    def key(region: str, parent: str | None = None) -> str:
        """The config key of a region's material (``materials.<region>``, or
        ``materials.patches.<name>`` for a sub-region), for error messages."""
        return f"materials.{'patches.' if parent else ''}{region}"

    def for_region(self, region: str, parent: str | None = None) -> Material:
        """The material of a region, or of a named sub-region of ``parent``."""
        if parent is not None:
            return (self.patches.get(region) or getattr(self, parent)).resolve()
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


class PrescribedStress(StrictModel):
    """Uniform interface stresses [Pa] (tension positive) used by the stress coupling until the
    mechanics supplies them, and for verification."""

    sigma_nn_li: Stress = Field(0.0, description="normal stress n.sigma.n on the Li side [Pa]")
    sigma_h_li: Stress = Field(0.0, description="hydrostatic stress in Li [Pa]")
    sigma_h_electrolyte: Stress = Field(0.0, description="hydrostatic stress, electrolyte [Pa]")
    tau_nn_li: Stress = Field(0.0, description="deviatoric normal stress, Li side [Pa]")
    tau_nn_electrolyte: Stress = Field(
        0.0, description="deviatoric normal stress, electrolyte side [Pa]")
    sigma_nn_electrolyte: Stress = Field(
        0.0, description="normal stress n.sigma.n on the electrolyte side [Pa]")
    sigma_tt_li: Stress = Field(
        0.0, description="in-plane tangential stress t.sigma.t on the Li side [Pa]")
    sigma_tt_electrolyte: Stress = Field(
        0.0, description="in-plane tangential stress t.sigma.t on the electrolyte side [Pa]")
    curvature: float = Field(0.0, description="interface mean curvature [1/m]")


Alpha = Annotated[float, Field(gt=0, le=1)]


class RegionKinetics(StrictModel):
    """Kinetics of the Li contact with one region or sub-region; unset values are those of
    the kinetics section."""

    i0: Positive | None = Field(None, description="exchange current density [A/m^2]")
    alpha_a: Alpha | None = Field(None, description="anodic transfer coefficient [-]")
    alpha_c: Alpha | None = Field(None, description="cathodic transfer coefficient [-]")


class SeiFilm(StrictModel):
    """The SEI as a film resistance R = thickness / conductivity [Ohm m^2] in series with the
    charge transfer on the whole interface (instead of a resolved layer)."""

    thickness: Annotated[float, Field(gt=0, le=1e-5)] = Field(description="film thickness [m]")
    conductivity: Positive | None = Field(
        None, description="film ionic conductivity [S/m] (default: materials.sei)")


class Kinetics(StrictModel):
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
        None, description="uniform interface stresses for the coupling [Pa], for runs without "
        "a mechanics section (with one, the stresses come from the mechanics)"
    )
    surface_energy: Positive = Field(
        0.556, description="Li surface energy gamma [J/m^2] (monroe_newman)"
    )
    regions: dict[str, RegionKinetics] = Field(
        default_factory=dict, description="per-contact overrides: the Li interface takes the "
        "kinetics of the region it touches (electrolyte, sei, gb or an SEI patch name)")
    sei_film: SeiFilm | None = Field(
        None, description="SEI as a film resistance on the interface (no resolved SEI layer)")

    def for_contact(self, region: str, parent: str | None = None) -> tuple[float, float, float]:
        """(i0, alpha_a, alpha_c) where Li touches ``region`` (a sub-region of ``parent``):
        the sub-region's override, else the parent's, else this section's values."""
        values = [self.i0, self.alpha_a, self.alpha_c]
        for name in (parent, region):
            override = self.regions.get(name) if name else None
            if override is not None:
                for k, key in enumerate(("i0", "alpha_a", "alpha_c")):
                    if getattr(override, key) is not None:
                        values[k] = getattr(override, key)
        return values[0], values[1], values[2]



class CounterKind(enum.StrEnum):
    reference = "reference"
    butler_volmer = "butler_volmer"


class Counter(StrictModel):
    """The counter boundary: an ideal reference (phi = 0) or a second Butler-Volmer electrode."""

    kind: CounterKind = Field(CounterKind.reference, description="reference | butler_volmer")
    i0: Positive = Field(51.0, description="exchange current density [A/m^2] (butler_volmer)")
    alpha_a: Annotated[float, Field(gt=0, le=1)] = 0.5
    alpha_c: Annotated[float, Field(gt=0, le=1)] = 0.5


# ----------------------------------------------------------------------------- transport
class Transport(StrictModel):
    """Binary-salt transport (concentrated-solution theory, physics.transport) in the listed
    ion-conducting regions instead of the single-ion Ohm's law: the salt concentration c is an
    unknown there, with D, t+ and the thermodynamic factor of each region's material."""

    regions: list[str] = Field(
        default_factory=lambda: ["electrolyte"], min_length=1,
        description="ion-conducting regions (electrolyte, sei, gb, SEI patch names) with a "
        "binary electrolyte; the others stay single-ion conductors")
    initial_concentration: Annotated[float, Field(gt=0, le=1e5)] = Field(
        1000.0, description="uniform salt concentration c0 at t = 0 [mol/m^3]")
    reference_concentration: Annotated[float, Field(gt=0, le=1e5)] | None = Field(
        None, description="c_ref of the exchange current i0 = i0_ref (c / c_ref)^exponent "
        "[mol/m^3] (default: initial_concentration)")
    exchange_current_exponent: Annotated[float, Field(ge=0, le=2)] | None = Field(
        None, description="exponent of c / c_ref in i0 [-] (default: kinetics.alpha_a)")
    depletion_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.01, description="the run stops with the salt depleted (Sand's time reported) when the "
        "smallest interface concentration falls below this fraction of c0")

    @field_validator("regions")
    @classmethod
    def _distinct(cls, regions: list[str]) -> list[str]:
        if len(set(regions)) != len(regions):
            raise ValueError(f"a region is listed twice: {regions}")
        return regions


# ----------------------------------------------------------------------------- vacancies
class Vacancies(StrictModel):
    """Li-vacancy diffusion in the Li metal (physics.vacancy, PHYSICS.md section 6): vacancies
    injected at i_n/F where Li is stripped, annihilated where it is plated, diffusing (and, with
    a formation volume and mechanics, drifting towards tension) through the Li. There are no
    library defaults: D_v and c_v,eq of Li follow from the vacancy formation and migration
    energies, which the literature gives with wide scatter; give the values you mean and their
    source."""

    diffusivity: Annotated[float, Field(gt=0, le=1e-6)] = Field(
        description="vacancy diffusion coefficient D_v in Li [m^2/s]")
    equilibrium_concentration: Annotated[float, Field(gt=0, le=1e5)] = Field(
        description="equilibrium vacancy concentration c_v,eq [mol/m^3] (Li holds 7.7e4 mol/m^3 "
        "of lattice sites): the collector value and the default initial state")
    critical_concentration: Annotated[float, Field(gt=0, le=1e5)] | None = Field(
        None, description="interface vacancy concentration at which voids nucleate [mol/m^3]: "
        "the run reports the first time and place the interface reaches it (absent: none)")
    initial_concentration: Annotated[float, Field(ge=0, le=1e5)] | None = Field(
        None, description="uniform c_v at t = 0 [mol/m^3] (default: equilibrium_concentration)")
    collector: Literal["equilibrium", "no_flux"] = Field(
        "equilibrium", description="at li_cc: c_v = c_v,eq (an ideal vacancy source and sink) "
        "or no vacancy flux")
    void_surface: Literal["equilibrium", "no_flux"] = Field(
        "equilibrium", description="at the Li's free surfaces (void walls, void_surface): "
        "c_v = c_v,eq (a free surface makes and absorbs vacancies: voids grow by the vacancies "
        "they take in) or no vacancy flux")
    formation_volume: Annotated[float, Field(ge=0, le=1e-4)] = Field(
        0.0, description="vacancy formation volume Omega_v [m^3/mol] of the drift towards "
        "tension, -div(D_v c_v Omega_v / (R T) grad sigma_h); 0: no drift; > 0 needs mechanics")
    annihilation_scale: Annotated[float, Field(gt=0)] | None = Field(
        None, description="c_eps of the smooth plating sink c/sqrt(c^2 + c_eps^2) [mol/m^3], a "
        "regularisation (default 1e-3 equilibrium_concentration)")
    stop_at_critical: bool = Field(
        False, description="stop the run (exit 0, complete: false) when the interface reaches "
        "critical_concentration")


# ----------------------------------------------------------------------------- control, time
class ControlMode(enum.StrEnum):
    galvanostatic = "galvanostatic"
    potentiostatic = "potentiostatic"


class CurrentStep(StrictModel):
    """Hold ``current_density`` until time ``until``."""

    until: Annotated[float, Field(gt=0)] = Field(description="end of this step [s]")
    current_density: Annotated[float, AfterValidator(_battery_current)] = Field(
        description="applied current density [A/m^2]")


class Cycling(StrictModel):
    """Galvanostatic cycling: ``cycles`` times a plating half cycle at -|current_density| and a
    stripping half cycle at +|current_density| (or stripping first), each ``half_period`` long,
    with an optional rest between half cycles."""

    current_density: Annotated[float, Field(gt=0, le=1e5)] = Field(
        description="magnitude of the cycling current density [A/m^2]")
    half_period: Positive = Field(description="duration of each half cycle [s]")
    cycles: Annotated[int, Field(ge=1, le=10000)] = Field(1, description="number of cycles")
    rest: Annotated[float, Field(ge=0)] = Field(
        0.0, description="rest at zero current after each half cycle [s]")
    first: Literal["plating", "stripping"] = Field("plating", description="first half cycle")

    def steps(self) -> list[CurrentStep]:
        sign = -1.0 if self.first == "plating" else 1.0
        out: list[CurrentStep] = []
        t = 0.0
        for _ in range(2 * self.cycles):
            t += self.half_period
            out.append(CurrentStep(until=t, current_density=sign * self.current_density))
            if self.rest > 0:
                t += self.rest
                out.append(CurrentStep(until=t, current_density=0.0))
            sign = -sign
        return out


class Control(StrictModel):
    """Electrical control of the working electrode. Anodic (stripping) current is positive.
    The applied current is constant (``current_density``), a piecewise-constant sequence
    (``steps``) or galvanostatic cycling (``cycling``, expanded into steps)."""

    mode: ControlMode = ControlMode.galvanostatic
    current_density: float = Field(
        -10.0, description="applied current per projected area [A/m^2]; negative = plating"
    )
    steps: list[CurrentStep] | None = Field(
        None, description="piecewise-constant current sequence (overrides current_density)"
    )
    cycling: Cycling | None = Field(
        None, description="galvanostatic cycling (expanded into steps; not with steps)")
    voltage: float = Field(0.0, description="V_we under potentiostatic control [V]")

    @model_validator(mode="after")
    def _expand_cycling(self) -> Control:
        if self.cycling is not None:
            expanded = self.cycling.steps()
            if self.steps and self.steps != expanded:  # a resolved config carries both
                raise ValueError("control.cycling: give either steps or cycling, not both")
            self.steps = expanded
        return self

    @field_validator("current_density")
    @classmethod
    def _current_range(cls, value: float) -> float:
        return _battery_current(value)

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


class Time(StrictModel):
    """Time stepping [s]. ``t_end = 0`` gives a single quasi-static solve."""

    t_end: Annotated[float, Field(ge=0)] = Field(0.0, description="end time [s]")
    dt: Positive = Field(1.0, description="time step [s] (the first one; the largest one "
                         "unless adaptive)")
    adaptive: bool = Field(False, description="grow the step after easy Newton solves (up to "
                           "dt_max); steps are cut after failures either way")
    dt_min: Positive | None = Field(None, description="smallest step before the run stops "
                                    "[s] (default dt / 1000)")
    dt_max: Positive | None = Field(None, description="largest step when adaptive [s] "
                                    "(default 10 dt)")

    @model_validator(mode="after")
    def _step_fits(self) -> Time:
        if self.t_end > 0 and self.dt > self.t_end:
            raise ValueError(f"dt = {self.dt:g} s is larger than t_end = {self.t_end:g} s")
        if self.t_end > 0 and self.t_end / self.dt > 1e6:
            raise ValueError("more than 1e6 time steps: increase dt")
        if self.dt_min is not None and self.dt_min > self.dt:
            raise ValueError(f"dt_min = {self.dt_min:g} s is larger than dt = {self.dt:g} s")
        if self.dt_max is not None and self.dt_max < self.dt:
            raise ValueError(f"dt_max = {self.dt_max:g} s is smaller than dt = {self.dt:g} s")
        return self

    @property
    def smallest_step(self) -> float:
        return self.dt_min if self.dt_min is not None else self.dt / 1000.0

    @property
    def largest_step(self) -> float:
        if not self.adaptive:
            return self.dt
        return self.dt_max if self.dt_max is not None else 10.0 * self.dt


# ----------------------------------------------------------------------------- mechanics
class LiLaw(enum.StrEnum):
    norton = "norton"
    plasticity = "plasticity"
    elastic = "elastic"


class NortonParameters(StrictModel):
    """Norton creep of Li, d(eps_cr)/dt = 3/2 edot0(T) (sigma_e/sigma0)^m s/sigma_e. Defaults:
    Roy, Fleck & Deshpande, Extreme Mech. Lett. 46 (2021) 101307 [P] (PHYSICS.md section 8)."""

    sigma0: Annotated[float, Field(gt=0, le=1e9)] = Field(1e6, description="reference stress [Pa]")
    edot0: Annotated[float, Field(gt=0, le=1e6)] = Field(
        0.01, description="reference strain rate at reference_temperature [1/s]")
    m: Annotated[float, Field(ge=1, le=20)] = Field(5.0, description="stress exponent [-]")
    activation_energy: Annotated[float, Field(ge=0, le=1e6)] = Field(
        0.0, description="Q of the Arrhenius factor [J/mol] (0: none; about 37e3 for Li, LePage "
        "et al. 2019 [?])")
    reference_temperature: Temperature = Field(298.15, description="temperature of edot0 [K]")


class PlasticityParameters(StrictModel):
    """Rate-independent von Mises plasticity of Li with linear hardening."""

    yield_stress: Annotated[float, Field(gt=0, le=1e9)] = Field(
        0.8e6, description="yield stress [Pa] (bulk Li 0.73-0.81 MPa [S], PHYSICS.md section 8)")
    hardening: Annotated[float, Field(ge=0, le=1e11)] = Field(
        0.0, description="linear hardening modulus d(sigma_y)/dp [Pa]")


class CouplingIteration(StrictModel):
    """How a time step couples the current distribution and the mechanics (growth from the
    interface current, kinetics from the interface stresses)."""

    scheme: Literal["monolithic", "staggered"] = Field(
        "monolithic", description="monolithic: one Newton method for phi, V_we, u and the "
        "growth currents together (PETSc SNES, option prefix ecm_coupled_, block "
        "preconditioner); staggered: the two problems solved in turn, accelerated by "
        "interface quasi-Newton (an option that converges to the same answer)")
    rtol: Annotated[float, Field(gt=0, le=0.1)] = Field(
        1e-6, description="converged when the interface current that drives the growth "
        "differs from the current of the kinetics by less than rtol times the applied (or "
        "largest) current density [-]")
    max_iterations: Annotated[int, Field(ge=1, le=200)] = Field(
        30, description="Newton (monolithic) or coupling (staggered) iterations before the "
        "step counts as failed (it is then cut)")
    nonlinear_elimination: bool = Field(
        True, description="monolithic: before every Newton step, solve the mechanics for the "
        "iterate's growth currents with its own Newton method (a right nonlinear "
        "preconditioner). Without it, creeping Li (Norton) at steps of seconds makes the "
        "coupled Newton method crawl (line search lambda ~0.4) or fail")
    petsc_options: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="extra PETSc options of the monolithic solve "
        "(prefix ecm_coupled_; fields phi, V_we, eta_ct, u, i_growth)")


class Mechanics(StrictModel):
    """Quasi-static small-strain mechanics of all solids (PHYSICS.md section 4). 2D geometries
    are solved in plane strain. Voids and empty flaws are traction free."""

    li_law: LiLaw = Field(LiLaw.norton, description="constitutive law of Li: norton | "
                          "plasticity | elastic")
    creep: NortonParameters = Field(default_factory=NortonParameters)
    plasticity: PlasticityParameters = Field(default_factory=PlasticityParameters)
    stack_pressure: Annotated[float, Field(ge=0, le=1e9)] = Field(
        1e6, description="stack pressure, a compressive normal traction on pressure_face [Pa]; "
        "0 or 1e3-1e9 Pa: solid-state cells are tested at 0.1-100 MPa (e.g. Kasemchainan et al., "
        "Nat. Mater. 18 (2019) 1105; Doux et al., Adv. Energy Mater. 10 (2020) 1903253), so a "
        "nonzero value below 1 kPa is a pressure given in MPa or kPa")
    pressure_face: Literal["li_cc", "counter"] = Field(
        "li_cc", description="face carrying the stack pressure; the opposite face is held")
    held_face: Literal["roller", "fixed"] = Field(
        "roller", description="support of the face opposite pressure_face: roller (normal "
        "displacement 0) or fixed (u = 0)")
    sides: Literal["symmetric", "free", "periodic"] = Field(
        "symmetric", description="lateral faces x = 0 and x = width: symmetric (normal "
        "displacement 0), free, or periodic (u equal on both, node for node: the cell repeats "
        "laterally with zero mean lateral strain; the meshes of the two sides are matched). "
        "Periodic acts on the displacement only: the potential keeps zero-flux sides")
    growth: bool = Field(True, description="plating/stripping growth eigenstrain in a Li band "
                         "at the interface, driven by the interface current")
    growth_band: Length | None = Field(
        None, description="thickness h_g of the growth band in the Li [m] (default: 3 times "
        "the geometry's interface_mesh_size)")
    growth_distribution: Literal["nearest", "balanced"] | None = Field(
        None, description="how each interface facet's plated volume is spread over the band: "
        "nearest (cell-wise, to the Li cells whose nearest facet it is) or balanced (linear in "
        "each cell, a smooth kernel balanced so that a uniform current gives a strain that "
        "depends on the depth only); default: nearest in 2D, balanced in 3D (solid.py)")
    degree: Literal[1, 2] = Field(2, description="Lagrange degree of the displacement (1 only "
                                  "with elastic Li: P1 triangles lock under creep flow)")
    rtol: Positive = Field(1e-9, description="Newton relative residual tolerance")
    linear_solver: Literal["direct", "iterative"] = Field(
        "direct", description="direct: MUMPS LU; iterative: CG + GAMG with the rigid-body "
        "modes (scalable for elastic solids; slow once Li creeps: nearly incompressible flow)")
    petsc_options: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="extra PETSc options of the mechanics solve (prefix "
        "ecm_mech_)")
    coupling: CouplingIteration = Field(default_factory=CouplingIteration)

    def distribution(self, dim: int) -> str:
        """The growth distribution of a mesh of dimension ``dim`` (the default filled in)."""
        return self.growth_distribution or ("balanced" if dim == 3 else "nearest")

    @field_validator("stack_pressure")
    @classmethod
    def _pressure_unit(cls, value: float) -> float:
        if 0 < value < 1e3:
            raise ValueError(f"{value:g} Pa is a tiny stack pressure (cells are tested at "
                             "0.1-100 MPa): is it given in MPa? (SI: 1 MPa = 1e6; kPa: 1e3; "
                             "0 for none)")
        return value

    @model_validator(mode="after")
    def _supported(self) -> Mechanics:
        if self.degree == 1 and self.li_law != LiLaw.elastic:
            raise ValueError("degree: 1 locks under the volume-preserving flow of creeping or "
                             "plastic Li (spurious pressures); use degree: 2 or li_law: elastic")
        if self.held_face == "roller" and self.sides == "free":
            raise ValueError("held_face: roller with free sides leaves a rigid lateral motion; "
                             "use held_face: fixed or sides: symmetric")
        return self


# ----------------------------------------------------------------------------- numerics, output
class Discretisation(StrictModel):
    phi_degree: Literal[1, 2] = Field(1, description="Lagrange degree of the potential")
    geometry_order: Literal[1, 2] | None = Field(
        None, description="order of the mesh geometry: 2 bends element edges onto curved "
        "boundaries (voids, protrusions); default: phi_degree (isoparametric)")

    @property
    def mesh_order(self) -> int:
        return self.geometry_order or self.phi_degree


class Solver(StrictModel):
    """Newton (PETSc SNES, option prefix ``ecm_``) and its linear solver."""

    rtol: Positive = Field(1e-10, description="Newton relative residual tolerance")
    atol: Positive = Field(1e-14, description="Newton absolute residual tolerance [A/m] (per "
                           "metre of depth; axisymmetric runs scale it by pi width / 1 m)")
    max_iterations: Annotated[int, Field(ge=1, le=200)] = 30
    linear_solver: Literal["iterative", "direct"] = Field(
        "iterative", description="iterative: GMRES + fieldsplit(BoomerAMG); direct: MUMPS LU"
    )
    petsc_options: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="extra PETSc options under the ecm_ prefix"
    )


class Output(StrictModel):
    dir: str = Field("results/run", description="output folder (relative to the working dir)")
    fields_every: Annotated[int, Field(ge=0)] = Field(
        1, description="write ParaView fields every N steps (0: only the last)"
    )
    checkpoint_every: Annotated[int, Field(ge=0)] = Field(
        5, description="write a restart checkpoint (ecm-fem run --restart) every N steps and at "
        "the end; with it, a copy of each field output for the restart to rewrite fields/ "
        "(0: no checkpoints)"
    )


class RunConfig(StrictModel):
    """A whole ecm_fem run."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$", description="run name")
    temperature: Temperature = Field(
        298.15, description="temperature [K] (a value in Celsius is rejected by the range)"
    )
    geometry: Geometry = Field(default_factory=PlanarGeometry)
    materials: Materials = Field(default_factory=Materials)
    kinetics: Kinetics = Field(default_factory=Kinetics)
    counter: Counter = Field(default_factory=Counter)
    mechanics: Mechanics | None = Field(
        None, description="solid mechanics (stress, Li creep, growth, K_I); absent: none")
    transport: Transport | None = Field(
        None, description="binary-salt transport in polymer/liquid electrolytes; absent: "
        "single-ion conductors everywhere")
    vacancies: Vacancies | None = Field(
        None, description="Li-vacancy diffusion in the Li metal; absent: not solved")
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
        for name, (parent, _) in self.geometry.subregions().items():
            if self.materials.for_region(name, parent).conductivity is None:
                raise ValueError(f"materials.patches.{name}: the material has no ionic "
                                 "conductivity")
        return self

    @model_validator(mode="after")
    def _names_exist(self) -> RunConfig:
        subregions = self.geometry.subregions()
        for name in self.materials.patches:
            if name not in subregions:
                raise ValueError(
                    f"materials.patches.{name}: the geometry has no sub-region '{name}' "
                    f"(it has: {', '.join(subregions) or 'none'})")
        contacts = ("electrolyte", "sei", "gb", *subregions)
        for name in self.kinetics.regions:
            if name not in contacts:
                raise ValueError(f"kinetics.regions.{name}: no such region or sub-region "
                                 f"(known: {', '.join(contacts)})")
        film = self.kinetics.sei_film
        if film is not None:
            if self.geometry.has_resolved_sei:
                raise ValueError("kinetics.sei_film: the geometry already resolves the SEI as a "
                                 "layer; use one or the other")
            if film.conductivity is None and self.materials.sei.resolve().conductivity is None:
                raise ValueError("kinetics.sei_film.conductivity: needed (materials.sei has none)")
        return self

    @model_validator(mode="after")
    def _transport(self) -> RunConfig:
        subregions = self.geometry.subregions()
        binary = set(self.transport.regions) if self.transport is not None else set()
        has_gb = self.geometry.kind == "polycrystal" or (
            self.geometry.kind == "from_file" and "gb" in getattr(self.geometry, "regions", {}))
        known = ["electrolyte", *(["sei"] if self.geometry.has_resolved_sei else []),
                 *(["gb"] if has_gb else []), *subregions]
        for name in binary:
            if name not in known:
                raise ValueError(f"transport.regions: the geometry has no ion-conducting region "
                                 f"'{name}' (it has: {', '.join(known)})")
        ranges = {"conductivity": (1e-12, 1e3), "diffusivity": (1e-20, 1e-6),
                  "transference_number": (-10.0, 1.0), "thermodynamic_factor": (1e-3, 1e3)}
        for name in ("electrolyte", "sei", "gb", *subregions):
            parent = subregions[name][0] if name in subregions else None
            key = Materials.key(name, parent)
            material = self.materials.for_region(name, parent)
            if name not in binary and (parent is None or parent not in binary):
                if isinstance(material.conductivity, str):
                    raise ValueError(f"{key}.conductivity: a formula in c needs a binary "
                                     "electrolyte there (add the region to transport.regions)")
                continue
            assert self.transport is not None
            c0 = self.transport.initial_concentration
            for prop, limits in ranges.items():
                value = getattr(material, prop)
                if value is None:
                    raise ValueError(f"{key}: material '{material.name}' has no {prop}, which "
                                     f"the binary electrolyte needs; set {key}.{prop}")
                try:
                    check_property(value, prop, (1e-3 * c0, 2.0 * c0), *limits)
                except ValueError as exc:
                    raise ValueError(f"{key}.{prop}: {exc} (checked for c from 0.001 c0 to "
                                     "2 c0)") from None
        if self.transport is not None and self.time.t_end == 0:
            raise ValueError("transport: the salt concentration evolves in time; set "
                             "time.t_end > 0")
        return self

    @model_validator(mode="after")
    def _vacancies(self) -> RunConfig:
        v = self.vacancies
        if v is None:
            return self
        if self.time.t_end == 0:
            raise ValueError("vacancies: the vacancy concentration evolves in time; set "
                             "time.t_end > 0")
        if v.formation_volume > 0 and self.mechanics is None:
            raise ValueError("vacancies.formation_volume: the stress drift needs the hydrostatic "
                             "stress of a mechanics section; add one or set it to 0")
        start = v.initial_concentration if v.initial_concentration is not None \
            else v.equilibrium_concentration
        if v.critical_concentration is not None and v.critical_concentration <= start:
            raise ValueError(f"vacancies.critical_concentration: {v.critical_concentration:g} "
                             f"mol/m^3 is not above the initial concentration {start:g} mol/m^3, "
                             "so it would be reached at t = 0")
        if v.stop_at_critical and v.critical_concentration is None:
            raise ValueError("vacancies.stop_at_critical: needs vacancies.critical_concentration")
        return self

    @model_validator(mode="after")
    def _three_dimensional(self) -> RunConfig:
        if self.geometry.dim != 3:
            return self
        if self.mechanics is not None and self.mechanics.sides == "periodic":
            raise ValueError("mechanics.sides: periodic is built for 2D cells (x periodic); in "
                             "3D use sides: symmetric or free")
        return self

    @model_validator(mode="after")
    def _axisymmetric_supports(self) -> RunConfig:
        m = self.mechanics
        if self.axisymmetric and m is not None and m.sides != "symmetric":
            raise ValueError(f"mechanics.sides: {m.sides} is not possible in an axisymmetric "
                             "cell: the side x = 0 is the axis (u_r = 0) and the mantle "
                             "x = width a roller; use sides: symmetric")
        return self

    @property
    def axisymmetric(self) -> bool:
        """Whether the 2D mesh is the (r, z) half-section of a body of revolution
        (ecm_fem/axisymmetry.py)."""
        return bool(getattr(self.geometry, "axisymmetric", False))

    @property
    def tolerance_scale(self) -> float:
        """Factor [-] of the absolute Newton tolerances, which are written for the residuals of
        a plane cell per metre of depth: the projected area over the width, per metre. 1 in
        plane strain; pi width / (1 m) in an axisymmetric run, whose residuals are
        whole-cylinder values (disc area pi width^2); depth / (1 m) in 3D, whose residuals are
        whole-cell values (a 10 um cell's current is 1e-5 of the plane cell's per metre, and an
        unscaled atol stopped its Newton solve at 1e-4 relative)."""
        g = self.geometry
        return float(g.projected_area / g.width)

    @model_validator(mode="after")
    def _periodic_sides_of_a_file(self) -> RunConfig:
        # checked here, before any output folder is touched; gmsh would fail on it
        if (self.mechanics is not None and self.mechanics.sides == "periodic"
                and self.geometry.kind == "from_file"):
            raise ValueError("mechanics.sides: periodic needs the two lateral sides meshed node "
                             "for node alike, and a from_file mesh cannot be re-meshed to match; "
                             "use sides: symmetric")
        return self

    @model_validator(mode="after")
    def _stress_source(self) -> RunConfig:
        k = self.kinetics
        if k.stress_coupling == StressCoupling.none:
            return self
        if self.mechanics is None and k.prescribed_stress is None:
            raise ValueError(
                f"kinetics.stress_coupling: '{k.stress_coupling.value}' needs interface "
                "stresses: add a mechanics section, or set kinetics.prescribed_stress")
        if self.mechanics is not None and k.prescribed_stress is not None:
            raise ValueError("kinetics.prescribed_stress: with a mechanics section the "
                             "interface stresses come from the mechanics; remove one of them")
        return self

    def film_resistance(self) -> float:
        """Area-specific resistance of the SEI film [Ohm m^2] (0 without a film)."""
        film = self.kinetics.sei_film
        if film is None:
            return 0.0
        kappa = film.conductivity or self.materials.sei.resolve().conductivity
        assert kappa is not None
        return film.thickness / kappa


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


def _duplicate_key(text: str) -> str | None:
    """'key.path (line N): ...' for the first key given twice in one mapping (PyYAML would keep
    the last value without a word), else None. ``text`` is valid YAML."""
    visited: set[int] = set()

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> str | None:
        if id(node) in visited:  # an alias
            return None
        visited.add(id(node))
        children: list[tuple[tuple[str | int, ...], yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    continue
                name, line = str(key.value), key.start_mark.line + 1
                if name in first:
                    dotted = ".".join(str(p) for p in (*path, name))
                    return (f"{dotted} (line {line}): duplicate key (first at line "
                            f"{first[name]}); YAML would silently keep only the last value")
                first[name] = line
                children.append(((*path, name), value))
        elif isinstance(node, yaml.SequenceNode):
            children = [((*path, i), item) for i, item in enumerate(node.value)]
        for sub, child in children:
            found = walk(child, sub)
            if found:
                return found
        return None

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return walk(root, ()) if root is not None else None


def _format_errors(err: ValidationError, lines: dict, source: str) -> str:
    out = [f"{source}: invalid config ({err.error_count()} problem(s))"]
    for e in err.errors():
        # drop the union tag pydantic inserts after 'geometry'
        path = tuple(p for k, p in enumerate(e["loc"])
                     if not (k == 1 and e["loc"][0] == "geometry" and p in GEOMETRY_KINDS))
        if e["type"] == "union_tag_invalid":  # the geometry's kind selects its model
            path = (*path, "kind")
        key = ".".join(str(p) for p in path) or "<top level>"
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
        where = f" (line {line})" if line else ""
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            msg = (f"unknown geometry kind (known: {', '.join(GEOMETRY_KINDS)}), not "
                   f"'{e['ctx']['tag']}'")
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
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:  # where the unfinished construct began: the likely mistake
            problem += f" ({context} that starts at line {start.line + 1})"
        raise ConfigError(f"{source}: YAML syntax error{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{source}: the config is empty: expected a mapping of sections, e.g. "
                          "'name: my_run' (an explicit {} runs the defaults)")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    duplicate = _duplicate_key(text)
    if duplicate:
        raise ConfigError(f"{source}: invalid config (1 problem(s))\n  {duplicate}")
    for key, value in overrides or []:
        _set_path(data, key, value)
    # files the config names (geometry.path) are relative to the folder of a config file
    folder = Path(source).parent if Path(source).is_file() else None
    try:
        return RunConfig.model_validate(data, context={"config_dir": folder})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, _key_lines(text), source)) from None


def dump_config(config: RunConfig) -> str:
    """The resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
