"""Geometry families, registered by their config name (``geometry.kind``).

A family is one module here with two things: ``MODEL``, the pydantic model of its config section
(a ``kind`` literal and its parameters with SI units), and ``build(g, unit)``, which makes the
gmsh model (on the calling rank, which is rank 0) with the physical groups of ``tags``. A new
family is that module plus one entry in ``_FAMILIES``; the config schema and the CLI pick it up
from ``GEOMETRY_MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecm_fem.geometry import (
    electrolyte_flaw,
    from_file,
    interfacial_void,
    li_protrusion,
    planar,
    polycrystal,
    rough_interface,
    sei_heterogeneous,
)

Builder = Callable[[Any, float], None]  # (config section, model unit [m])

_FAMILIES = (planar, interfacial_void, sei_heterogeneous, li_protrusion, electrolyte_flaw,
             polycrystal, rough_interface, from_file)

GEOMETRY_MODELS: dict[str, type] = {m.MODEL.model_fields["kind"].default: m.MODEL
                                    for m in _FAMILIES}
BUILDERS: dict[str, Builder] = {m.MODEL.model_fields["kind"].default: m.build
                                for m in _FAMILIES}


def get_builder(kind: str) -> Builder:
    try:
        return BUILDERS[kind]
    except KeyError:
        raise KeyError(f"geometry.kind: unknown '{kind}' (known: {', '.join(BUILDERS)})") from None
