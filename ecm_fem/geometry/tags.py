"""Fixed names and integer ids of the mesh's physical groups, shared by every builder
(ARCHITECTURE.md, "Mesh conventions"). Sub-regions with their own properties get ids >= 101."""

CELL_TAGS: dict[str, int] = {"li": 1, "sei": 2, "electrolyte": 3, "gb": 4}
FACET_TAGS: dict[str, int] = {
    "interface": 11,
    "li_cc": 12,
    "counter": 13,
    "side": 14,
    "void_surface": 15,
    "crack_surface": 16,
    "sei_electrolyte": 17,
    "gb_boundary": 18,
}
CELL_NAMES: dict[int, str] = {v: k for k, v in CELL_TAGS.items()}
FACET_NAMES: dict[int, str] = {v: k for k, v in FACET_TAGS.items()}
ION_CONDUCTING = ("sei", "electrolyte", "gb")
SUBREGION_TAG_START = 101  # first cell tag of named sub-regions (SEI patches, grains)
