"""Geometry builders: one module per family, registered by its config name.

A builder takes its validated config section and makes a gmsh model (on the calling rank, which
is rank 0) with the physical groups of ``tags``. A new family is one file plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecm_fem.geometry import (
    electrolyte_flaw,
    interfacial_void,
    li_protrusion,
    planar,
    sei_heterogeneous,
)

Builder = Callable[[Any, float], None]  # (config section, model unit [m])

BUILDERS: dict[str, Builder] = {
    "planar": planar.build,
    "interfacial_void": interfacial_void.build,
    "sei_heterogeneous": sei_heterogeneous.build,
    "li_protrusion": li_protrusion.build,
    "electrolyte_flaw": electrolyte_flaw.build,
}


def get_builder(kind: str) -> Builder:
    try:
        return BUILDERS[kind]
    except KeyError:
        raise KeyError(f"geometry.kind: unknown '{kind}' (known: {', '.join(BUILDERS)})") from None
