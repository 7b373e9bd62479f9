"""Materials library: named materials with their properties and the source of every number.

Values and provenance flags follow PHYSICS.md section 8: [P] published value read in the paper,
[S] from a secondary source quoting it, [C] derived here from published formulas, [?] plausible
default still waiting for a primary source. A config picks a material by name and may override
single properties (config.MaterialSpec).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class Material:
    """Properties of one material, SI units. ``None`` means "not defined for this material".

    Attributes:
        name: library name.
        conductivity: ionic conductivity kappa [S/m] (ion-conducting phases only).
        youngs_modulus: E [Pa].
        poisson_ratio: nu [-].
        molar_volume: Omega_Li [m^3/mol] (lithium) or partial molar volume of Li+ [m^3/mol]
            (electrolytes).
        fracture_toughness: mode I fracture toughness K_Ic [Pa m^0.5] (brittle electrolytes).
        diffusivity: salt diffusion coefficient D [m^2/s] (binary electrolytes; config.Transport).
        transference_number: cation transference number t+ [-] (binary electrolytes).
        thermodynamic_factor: 1 + dln f/dln c [-] (binary electrolytes; 1: ideal solution).
        The four transport properties (conductivity too) may be formulas in the salt
        concentration c [mol/m^3] where a binary electrolyte uses them (physics.transport).
        sources: property name -> citation with provenance flag.
    """

    name: str
    conductivity: float | str | None = None
    youngs_modulus: float | None = None
    poisson_ratio: float | None = None
    molar_volume: float | None = None
    fracture_toughness: float | None = None
    diffusivity: float | str | None = None
    transference_number: float | str | None = None
    thermodynamic_factor: float | str | None = 1.0
    sources: dict[str, str] = field(default_factory=dict)

    def with_overrides(self, **overrides: float | str | None) -> Material:
        """A copy with some properties replaced; overridden sources say 'config override'."""
        given = {k: v for k, v in overrides.items() if v is not None}
        sources = dict(self.sources)
        sources.update({k: "config override" for k in given})
        return replace(self, sources=sources, **given)

    def require(self, prop: str, where: str) -> float:
        """The value of ``prop``, or a clear error naming the config key ``where``."""
        value = getattr(self, prop)
        if value is None:
            raise ValueError(
                f"{where}: material '{self.name}' has no {prop}; set it in the config "
                f"({where}.{prop})"
            )
        if isinstance(value, str):
            raise ValueError(f"{where}.{prop}: a formula in c ('{value}') needs a binary "
                             "electrolyte (transport.regions); give a number here")
        return float(value)


PROPERTIES = tuple(f.name for f in fields(Material) if f.name not in ("name", "sources"))

LIBRARY: dict[str, Material] = {
    "lithium": Material(
        name="lithium",
        youngs_modulus=7.82e9,
        poisson_ratio=0.381,
        molar_volume=1.30e-5,
        sources={
            "youngs_modulus": "[S] Masias et al., J. Mater. Sci. 54 (2019) 2585, polycrystal",
            "poisson_ratio": "[S] Masias et al., J. Mater. Sci. 54 (2019) 2585",
            "molar_volume": "[C] 6.941 g/mol / 0.534 g/cm^3",
        },
    ),
    "llzo": Material(
        name="llzo",
        conductivity=0.04,
        youngs_modulus=150e9,
        poisson_ratio=0.257,
        molar_volume=1.3e-6,
        fracture_toughness=1.0e6,
        sources={
            "conductivity": "[P] 0.4 mS/cm, PHYSICS.md section 8",
            "fracture_toughness": "[S] about 1 MPa m^0.5 (0.44-1.51 with density), PHYSICS.md "
            "section 8",
            "molar_volume": "[?] Omega_Li+ = v Omega_Li with v = 0.1, inside the 0.04-0.2 range "
            "for inorganic SSEs quoted in PHYSICS.md section 8 [S]",
            "youngs_modulus": "[P]/[?] PHYSICS.md section 8",
            "poisson_ratio": "[P]/[?] PHYSICS.md section 8",
        },
    ),
    "lpscl": Material(
        name="lpscl",
        conductivity=0.2,
        youngs_modulus=20e9,
        poisson_ratio=0.30,
        fracture_toughness=0.23e6,
        sources={
            "conductivity": "[?] about 2 mS/cm for Li6PS5Cl",
            "fracture_toughness": "[?] 0.23 MPa m^0.5 measured on Li2S-P2S5 glass (McGrogan et "
            "al., Adv. Energy Mater. 7 (2017) 1602011); a sulfide stand-in, not Li6PS5Cl itself",
            "youngs_modulus": "[S] 8-20 GPa for sulfides (seed review 001); upper value",
            "poisson_ratio": "[?]",
        },
    ),
    "peo": Material(
        name="peo",
        conductivity=1e-2,
        youngs_modulus=2.6e7,
        poisson_ratio=0.30,
        molar_volume=5.0e-5,
        diffusivity=1e-12,
        transference_number=0.3,
        sources={
            "conductivity": "[?] 0.1 mS/cm, PEO-LiTFSI near 60 C",
            "diffusivity": "[?] 1e-12 m^2/s, order of magnitude of the salt diffusion "
            "coefficient of PEO-LiTFSI near 60-90 C",
            "transference_number": "[S] t+ close to 0.3 by PFG-NMR, Vallee, Besner, Prud'homme, "
            "Electrochim. Acta 37 (1992) 1579 (abstract)",
            "thermodynamic_factor": "[?] 1 (ideal solution)",
            "youngs_modulus": "[S] shear modulus below 10 MPa: E = 2 G (1 + nu) with G = 10 MPa",
            "poisson_ratio": "[?]",
            "molar_volume": "[S] Omega_Li+ = 3.85 Omega_Li, Ahmad & Viswanathan PRL 119 (2017)",
        },
    ),
    "sei": Material(
        name="sei",
        conductivity=1e-5,
        youngs_modulus=1e9,
        poisson_ratio=0.3,
        sources={
            "conductivity": "[?] 1e-6-1e-4 S/m, PHYSICS.md section 8",
            "youngs_modulus": "[S] 0.1-4 GPa (seed review 000)",
            "poisson_ratio": "[?]",
        },
    ),
}


def get_material(name: str) -> Material:
    """The library material ``name``; a KeyError lists the known names."""
    try:
        return LIBRARY[name]
    except KeyError:
        known = ", ".join(sorted(LIBRARY))
        raise KeyError(f"unknown material '{name}' (known: {known})") from None
