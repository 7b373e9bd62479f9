"""ecm_fem: finite-element electro-chemo-mechanics of lithium-metal anodes on DOLFINx 0.9.

The flow of a run is config -> geometry -> mesh -> problem -> solver -> output; each stage is a
module of this package named after it (see the README and ARCHITECTURE.md).
"""

__version__ = "0.1.0"
