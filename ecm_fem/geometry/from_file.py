"""A mesh made elsewhere, read with meshio (any format it reads: .msh, .vtu, .xdmf, .inp, ...):
linear triangles (2D, also stored with z = 0) or tetrahedra (3D); ``dim`` comes from the file.

The file's cells carry integer tags (a cell-data array); ``regions`` maps our regions (li, sei,
electrolyte, gb) to those tag values, and every cell must be mapped. Facets are tagged from the
cells on their two sides: ``interface`` between Li and an ion-conducting region,
``sei_electrolyte``, ``gb_boundary`` (gb | electrolyte); boundary facets by the bounding box,
along the stacking axis (``stacking_axis``, default y as in the builders, in 2D and 3D) pointing
from the Li into the electrolyte: ``li_cc`` on its smallest plane, ``counter`` on its largest,
``side`` on the lateral planes, any other boundary facet ``void_surface``. ``boundaries`` takes
facet tags from the file's facet elements instead: a name listed there comes from the file alone
(boundary facets the automatic rule would have given that name become ``void_surface``, interior
ones untagged). Facet elements with tag values not listed are ignored.

The file is read and checked when the config is validated (on every rank, so every rank raises
the same ``ConfigError``) and cached; ``build`` turns the result into a gmsh discrete model with
the physical groups of ``tags``, in model units. There is no CAD behind the mesh: with
``discretisation.geometry_order: 2`` the cells stay straight-sided, and the lateral sides cannot
be re-meshed to match (``mechanics.sides: periodic`` fails in mesh generation).

With ``axisymmetric`` a triangle mesh stacked along y is the (r, z) = (x, y) half-section of a
body of revolution about the axis x = 0 (ecm_fem/axisymmetry.py): no node may lie at x < 0
(beyond ``BOX_TOL`` of the largest extent; nodes within it count as on the axis). A section
that starts at x_min > 0 is a hollow cylinder (an annulus x_min < r < x_max): its inner mantle
x = x_min is a lateral ``side`` like the outer one (no flux; with mechanics the roller u_r = 0
of ``sides: symmetric``, a rigid core), and the projected area is the annulus
pi (x_max^2 - x_min^2).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import gmsh
import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from ecm_fem.geometry.params import CrackTip, StrictModel
from ecm_fem.geometry.tags import CELL_NAMES, CELL_TAGS, FACET_TAGS, ION_CONDUCTING

RegionName = Literal["li", "sei", "electrolyte", "gb"]
FacetName = Literal["interface", "li_cc", "counter", "side", "void_surface", "crack_surface",
                    "sei_electrolyte", "gb_boundary"]

# cell-data names that hold region tags, in the order they are looked for
KNOWN_CELL_DATA = ("gmsh:physical", "medit:ref", "cell_tags", "CellEntityIds", "tags", "tag",
                   "region", "regions", "subdomains", "material", "MaterialIds")
LARGEST, SMALLEST = 1e-2, 1e-9  # [m] plausible mesh sizes; outside: a unit mistake
BOX_TOL = 1e-6  # a facet is on a bounding-box plane within this fraction of the largest extent
DEGENERATE = 1e-10  # a cell with |measure| below this times (longest edge)^dim is degenerate


def _owners(mapping: dict[str, list[int]], what: str) -> dict[int, str]:
    """Tag value -> the name it is mapped to; a value mapped to two names is an error."""
    owner: dict[int, str] = {}
    for name, tags in mapping.items():
        for t in tags:
            if t in owner and owner[t] != name:
                raise ValueError(f"tag value {t} is mapped to two {what} ({owner[t]}, {name})")
            owner[t] = name
    return owner


@dataclass(frozen=True, eq=False)
class RawMesh:
    """The linear cells of a file and their integer cell-data arrays, in file units."""

    dim: int
    points: np.ndarray  # (n, dim), only the nodes of the cells
    cells: np.ndarray  # (n_cells, dim + 1) node indices
    cell_data: dict[str, np.ndarray]  # name -> (n_cells,) int
    facets: np.ndarray  # (n_facets, dim) facet elements stored in the file (-1: not a cell node)
    facet_data: dict[str, np.ndarray]  # name -> (n_facets,) int

    @property
    def extent(self) -> np.ndarray:
        return self.points.max(axis=0) - self.points.min(axis=0)


@dataclass(frozen=True, eq=False)
class FileMesh:
    """The mesh in metres with our region id per cell and the tagged facets."""

    dim: int
    points: np.ndarray  # (n, dim) [m]
    cells: np.ndarray  # (n_cells, dim + 1)
    cell_region: np.ndarray  # (n_cells,) CELL_TAGS value
    facets: dict[str, np.ndarray]  # FACET_TAGS name -> (n, dim) node indices
    lower: np.ndarray  # bounding box [m]
    upper: np.ndarray
    interface_size: float  # mean interface facet (edge) length [m]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _integer_arrays(names_blocks: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """The integer-valued arrays (integral floats too) of ``name -> per-block arrays``."""
    out = {}
    for name, blocks in names_blocks.items():
        a = np.concatenate([np.asarray(b).reshape(len(b), -1)[:, 0] if np.ndim(b) > 1
                            else np.asarray(b) for b in blocks]) if blocks else np.zeros(0)
        if a.dtype.kind in "iu" or (a.dtype.kind == "f" and np.all(np.isfinite(a))
                                    and np.all(a == np.round(a))):
            out[name] = _frozen(a.astype(np.int64))
    return out


@functools.lru_cache(maxsize=4)
def read_raw(path: str, stamp: tuple[int, int]) -> RawMesh:
    """Read and check ``path`` (``stamp``: modification time and size, so that a changed file
    is read again); raise ValueError with the reason."""
    import meshio

    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            mesh = meshio.read(path)
    except (Exception, SystemExit) as exc:  # meshio exits on a file it cannot parse
        reason = " ".join(said.getvalue().split()) or f"{type(exc).__name__}: {exc}"
        raise ValueError(f"cannot read '{path}' with meshio ({reason})") from None
    types = [b.type for b in mesh.cells]
    if "tetra" in types:
        dim, cell_type, facet_type = 3, "tetra", "triangle"
    elif "triangle" in types:
        dim, cell_type, facet_type = 2, "triangle", "line"
    else:
        higher = sorted({t for t in types if t.startswith(("triangle", "tetra"))})
        hint = f"; only linear cells are read, not {', '.join(higher)}" if higher else ""
        raise ValueError(f"'{path}' has no triangle (2D) or tetra (3D) cells (found: "
                         f"{', '.join(sorted(set(types))) or 'none'}){hint}")
    points = np.asarray(mesh.points, dtype=float)
    cell_blocks = [k for k, t in enumerate(types) if t == cell_type]
    facet_blocks = [k for k, t in enumerate(types) if t == facet_type]
    cells = np.concatenate([mesh.cells[k].data for k in cell_blocks]).astype(np.int64)
    used, cells = np.unique(cells, return_inverse=True)
    cells = cells.reshape(-1, dim + 1)
    points = points[used]
    if dim == 2 and points.shape[1] > 2:
        plane = np.ptp(points[:, :2], axis=0).max()
        if np.ptp(points[:, 2:], axis=0).max() > 1e-9 * plane:
            raise ValueError(f"'{path}': the triangles do not lie in a plane z = const "
                             "(surface meshes in 3D are not supported)")
        points = points[:, :2]
    renumber = np.full(len(mesh.points), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    facets = (np.concatenate([renumber[mesh.cells[k].data] for k in facet_blocks])
              if facet_blocks else np.zeros((0, dim), dtype=np.int64))

    def arrays(blocks: list[int]) -> dict[str, np.ndarray]:
        return _integer_arrays({name: [data[k] for k in blocks]
                                for name, data in mesh.cell_data.items()})

    raw = RawMesh(dim, _frozen(points), _frozen(cells), arrays(cell_blocks), _frozen(facets),
                  arrays(facet_blocks) if facet_blocks else {})
    check_cells(raw)
    return raw


def signed_measures(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signed area or volume, longest edge) of each simplex."""
    x = points[cells]
    edges = x[:, 1:] - x[:, :1]
    measure = np.linalg.det(edges) / (2.0 if points.shape[1] == 2 else 6.0)
    pairs = [(a, b) for a in range(cells.shape[1]) for b in range(a + 1, cells.shape[1])]
    longest = np.max([np.linalg.norm(x[:, a] - x[:, b], axis=1) for a, b in pairs], axis=0)
    return measure, longest


def check_cells(raw: RawMesh) -> None:
    """Degenerate and inverted (against the majority orientation) cells; ValueError."""
    measure, longest = signed_measures(raw.points, raw.cells)
    flat = np.flatnonzero(np.abs(measure) <= DEGENERATE * longest ** raw.dim)
    if len(flat):
        what = "area" if raw.dim == 2 else "volume"
        raise ValueError(f"{len(flat)} degenerate cell(s) (zero {what}, collapsed nodes), e.g. "
                         f"cell(s) {_few(flat)} of the file")
    negative = measure < 0
    minority = np.flatnonzero(negative if negative.sum() * 2 < len(measure) else ~negative)
    if len(minority):
        raise ValueError(f"{len(minority)} inverted cell(s) (node order against the other "
                         f"{len(measure) - len(minority)}), e.g. cell(s) {_few(minority)} "
                         "of the file")


def _raw_of(path: str | None) -> RawMesh | None:
    """The checked cells of the file ``path`` (read once per version of the file); None for
    no path (its validation failed)."""
    if path is None:
        return None
    stat = Path(path).stat()
    return read_raw(path, (stat.st_mtime_ns, stat.st_size))


def _few(values: Any, n: int = 8) -> str:
    values = [int(v) for v in values]
    return ", ".join(map(str, values[:n])) + (", ..." if len(values) > n else "")


class FromFileGeometry(StrictModel):
    """A mesh from a file (meshio), its cells tagged by an integer cell-data array. Relative
    paths are relative to the folder of the YAML file (the working directory for a config not
    read from a file). Facets not given in ``boundaries`` are tagged automatically (module
    docstring): Li at the smallest coordinate along ``stacking_axis``, the counter boundary
    at the largest. With ``axisymmetric`` the 2D section in (r, z) = (x, y) is a body of
    revolution about x = 0: a disc of radius x_max, or an annulus when the section starts at
    x_min > 0 (module docstring); every integral then carries 2 pi r."""

    kind: Literal["from_file"] = "from_file"
    path: str = Field(description="mesh file (any format meshio reads); relative to the "
                      "YAML file's folder")
    scale: Annotated[float, Field(gt=0)] = Field(
        1.0, description="length of one file unit [m] (1.0: metres; 1e-6: micrometres)")
    cell_data: str | None = Field(
        None, description="name of the integer cell-data array holding the cell (and facet) "
        f"tags; default: the first of {', '.join(KNOWN_CELL_DATA)} in the file, or its only "
        "integer array")
    regions: dict[RegionName, list[int]] = Field(
        description="region (li, sei, electrolyte, gb) -> the file's tag values of its cells; "
        "li and at least one ion-conducting region, every cell of the file mapped")
    boundaries: dict[FacetName, list[int]] = Field(
        default_factory=dict, description="facet name -> the file's tag values of its facet "
        "elements (lines in 2D, triangles in 3D, tagged in the same cell-data array); names "
        "not given are derived from the cells and the bounding box")
    stacking_axis: Literal["x", "y", "z"] = Field(
        "y", description="coordinate axis pointing from the Li into the electrolyte (li_cc on "
        "the bounding box's smallest plane across it, counter on the largest; default y, the "
        "builders' convention in 2D and 3D)")
    axisymmetric: bool = Field(
        False, description="2D (triangle) meshes stacked along y only: the mesh in (r, z) = "
        "(x, y) [m] is the half-section of a body of revolution about the axis x = 0 (no node "
        "at x < 0): a cylinder of radius x_max, or a hollow one (inner radius x_min) when the "
        "section starts at x_min > 0; currents, amounts and areas are those of the whole body")
    _mesh: FileMesh | None = PrivateAttr(None)

    @field_validator("path")
    @classmethod
    def _read(cls, value: str, info: ValidationInfo) -> str:
        path = Path(value).expanduser()
        if not path.is_absolute():
            folder = (info.context or {}).get("config_dir")
            path = Path(folder or os.getcwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise ValueError(f"mesh file '{path}' not found")
        _raw_of(str(path))
        return str(path)

    @field_validator("scale")
    @classmethod
    def _plausible_size(cls, value: float, info: ValidationInfo) -> float:
        raw = _raw_of(info.data.get("path"))
        if raw is None:
            return value
        across = float(raw.extent.max()) * value
        if across > LARGEST:
            raise ValueError(f"the mesh is {across:.3g} m across (scale = {value:g} m per file "
                             "unit); is the file in micrometres? set geometry.scale: 1e-6")
        if across < SMALLEST:
            raise ValueError(f"the mesh is {across:.3g} m across (scale = {value:g} m per file "
                             "unit); a file in micrometres needs geometry.scale: 1e-6, one in "
                             "metres 1.0")
        return value

    @field_validator("cell_data")
    @classmethod
    def _find_tags(cls, value: str | None, info: ValidationInfo) -> str | None:
        raw = _raw_of(info.data.get("path"))
        if raw is None:
            return value
        found = ", ".join(raw.cell_data) or "none"
        kind = "triangle" if raw.dim == 2 else "tetra"
        if value is not None:
            if value not in raw.cell_data:
                raise ValueError(f"the {kind} cells have no integer cell-data array '{value}' "
                                 f"(found: {found})")
            return value
        known = [n for n in KNOWN_CELL_DATA if n in raw.cell_data]
        if known:
            return known[0]
        if len(raw.cell_data) == 1:
            return next(iter(raw.cell_data))
        raise ValueError(f"cannot tell which cell-data array holds the region tags of the {kind} "
                         f"cells (integer arrays found: {found}); set geometry.cell_data")

    @field_validator("regions")
    @classmethod
    def _map_regions(cls, value: dict[str, list[int]], info: ValidationInfo
                     ) -> dict[str, list[int]]:
        if "li" not in value or not any(r in value for r in ION_CONDUCTING):
            raise ValueError("needs li and at least one ion-conducting region (sei, "
                             "electrolyte, gb), e.g. {li: [1], electrolyte: [2]}")
        for region, tags in value.items():
            if not tags:
                raise ValueError(f"{region}: no tag values")
        owner = _owners(value, "regions")
        raw = _raw_of(info.data.get("path"))
        if raw is None or info.data.get("cell_data") is None:
            return value
        name = info.data["cell_data"]
        present, counts = np.unique(raw.cell_data[name], return_counts=True)
        found = ", ".join(f"{v} ({c} cells)" for v, c in zip(present, counts, strict=True))
        for region, tags in value.items():
            missing = [t for t in tags if t not in present]
            if missing:
                raise ValueError(f"{region}: tag value(s) {_few(missing)} not in the file's "
                                 f"'{name}' cell data (found: {found})")
        unmapped = [int(v) for v in present if int(v) not in owner]
        if unmapped:
            raise ValueError(f"cells with tag value(s) {_few(unmapped)} are in no region; map "
                             f"every value (found: {found})")
        return value

    @field_validator("boundaries")
    @classmethod
    def _map_boundaries(cls, value: dict[str, list[int]], info: ValidationInfo
                        ) -> dict[str, list[int]]:
        _owners(value, "facet names")
        raw = _raw_of(info.data.get("path"))
        name = info.data.get("cell_data")
        if raw is None or name is None or not value:
            return value
        if name not in raw.facet_data:
            kind = "line" if raw.dim == 2 else "triangle"
            raise ValueError(f"the file has no {kind} elements tagged in '{name}'")
        present = np.unique(raw.facet_data[name])
        for facet, tags in value.items():
            missing = [t for t in tags if t not in present]
            if missing:
                raise ValueError(f"{facet}: tag value(s) {_few(missing)} not on the file's facet "
                                 f"elements (found: {_few(present, 30)})")
        return value

    @field_validator("axisymmetric")
    @classmethod
    def _section_of_a_body_of_revolution(cls, value: bool, info: ValidationInfo) -> bool:
        raw = _raw_of(info.data.get("path"))
        if not value or raw is None:
            return value
        if raw.dim != 2:
            raise ValueError("only for a 2D (triangle) mesh, the (r, z) half-section of the "
                             "body of revolution; this file holds tetrahedra (3D)")
        axis = info.data.get("stacking_axis")
        if axis is not None and axis != "y":
            raise ValueError(f"needs stacking_axis: y, not {axis}: the section is drawn in "
                             "(r, z) = (x, y), the axis of revolution x = 0 runs along y")
        x = raw.points[:, 0]
        beyond = x < -BOX_TOL * float(raw.extent.max())
        if np.any(beyond):
            scale = info.data.get("scale")
            smallest = (f"{x.min() * scale:.4g} m" if scale is not None
                        else f"{x.min():.4g} file units")
            raise ValueError(f"the axis of revolution is x = 0, but {int(beyond.sum())} node(s) "
                             f"of the mesh lie at x < 0 (smallest x: {smallest}); move the "
                             "section to x >= 0, its axis onto x = 0")
        return value

    @model_validator(mode="after")
    def _assemble(self) -> FromFileGeometry:
        raw = _raw_of(self.path)
        assert raw is not None
        axis = "xyz".index(self.stacking_axis)
        if axis >= raw.dim:
            raise ValueError(f"stacking_axis: {self.stacking_axis} in a {raw.dim}D mesh")
        self._mesh = assemble(raw, self.scale, self.cell_data or "",
                              tuple((k, tuple(v)) for k, v in self.regions.items()),
                              tuple((k, tuple(v)) for k, v in self.boundaries.items()), axis)
        return self

    @property
    def mesh(self) -> FileMesh:
        assert self._mesh is not None, "validated by the model"
        return self._mesh

    @property
    def dim(self) -> int:
        """Spatial dimension, from the file: 2 (triangles) or 3 (tetrahedra)."""
        return self.mesh.dim

    def _lateral_extents(self) -> np.ndarray:
        extent = self.mesh.upper - self.mesh.lower
        return np.delete(extent, "xyz".index(self.stacking_axis))

    @property
    def width(self) -> float:
        """Lateral size [m] of the bounding box along x (along y if x is the stacking axis);
        axisymmetric: x_max - x_min, the radius of a section on the axis."""
        return float(self._lateral_extents()[0])

    @property
    def projected_area(self) -> float:
        """Nominal electrode area [m^2] (per unit depth [m] in 2D): the bounding box across
        the stacking axis; axisymmetric: the disc pi x_max^2 or the annulus
        pi (x_max^2 - x_min^2)."""
        if self.axisymmetric:
            inner = max(float(self.mesh.lower[0]), 0.0)  # nodes within BOX_TOL of the axis
            return float(np.pi * (self.mesh.upper[0] ** 2 - inner ** 2))
        return float(np.prod(self._lateral_extents()))

    @property
    def interface_mesh_size(self) -> float:
        """Mean edge length of the interface facets [m]."""
        return self.mesh.interface_size

    def subregions(self) -> dict[str, tuple[str, int]]:
        return {}

    @property
    def has_resolved_sei(self) -> bool:
        return "sei" in self.regions

    def crack_tips(self) -> list[CrackTip]:
        return []


MODEL = FromFileGeometry


def _facet_table(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique facets as sorted node rows, (n_facets, 2) adjacent cells, -1 for none)."""
    n_cells, k = cells.shape
    local = [np.delete(np.arange(k), j) for j in range(k)]
    all_facets = np.sort(np.concatenate([cells[:, f] for f in local]), axis=1)
    owner = np.tile(np.arange(n_cells), k)
    facets, inverse, counts = np.unique(all_facets, axis=0, return_inverse=True,
                                        return_counts=True)
    inverse = inverse.reshape(-1)
    if counts.max() > 2:
        raise ValueError(f"geometry.path: {int((counts > 2).sum())} facet(s) are shared by more "
                         "than two cells (duplicated or overlapping cells)")
    order = np.argsort(inverse, kind="stable")
    first = np.searchsorted(inverse[order], np.arange(len(facets)))
    adjacent = np.full((len(facets), 2), -1, dtype=np.int64)
    adjacent[:, 0] = owner[order[first]]
    two = counts == 2
    adjacent[two, 1] = owner[order[first[two] + 1]]
    return facets, adjacent


def _match(facets: np.ndarray, elements: np.ndarray) -> np.ndarray:
    """Row of ``facets`` (sorted, unique) of each element; -1 where it is none."""
    keys = np.sort(elements, axis=1)
    both = np.vstack([facets, keys])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    row = np.full(inverse.max() + 1, -1, dtype=np.int64)
    row[inverse[: len(facets)]] = np.arange(len(facets))
    found = row[inverse[len(facets):]]
    found[np.any(elements < 0, axis=1)] = -1
    return found


@functools.lru_cache(maxsize=4)
def assemble(raw: RawMesh, scale: float, cell_data: str,
             regions: tuple[tuple[str, tuple[int, ...]], ...],
             boundaries: tuple[tuple[str, tuple[int, ...]], ...], stacking: int) -> FileMesh:
    """Region ids per cell and the facets by name (module docstring) of a checked file;
    ``stacking``: the index of the stacking axis."""
    region_of_value = {t: CELL_TAGS[r] for r, tags in regions for t in tags}
    values = raw.cell_data[cell_data]
    lookup = np.vectorize(region_of_value.__getitem__, otypes=[np.int64])
    cell_region = lookup(values) if len(values) else values
    points = raw.points * scale
    lower, upper = points.min(axis=0), points.max(axis=0)
    facets, adjacent = _facet_table(raw.cells)

    ion_ids = {CELL_TAGS[r] for r in ION_CONDUCTING}
    a = cell_region[adjacent[:, 0]]
    b = np.where(adjacent[:, 1] >= 0, cell_region[np.maximum(adjacent[:, 1], 0)], -1)
    interior = adjacent[:, 1] >= 0
    li, sei, el, gb = (CELL_TAGS[n] for n in ("li", "sei", "electrolyte", "gb"))
    names = np.full(len(facets), "", dtype=object)

    def between(x: int | set[int], y: int | set[int]) -> np.ndarray:
        xs, ys = ({x} if isinstance(x, int) else x), ({y} if isinstance(y, int) else y)
        return interior & ((np.isin(a, list(xs)) & np.isin(b, list(ys)))
                           | (np.isin(a, list(ys)) & np.isin(b, list(xs))))

    names[between(li, ion_ids)] = "interface"
    names[between(sei, el)] = "sei_electrolyte"
    names[between(gb, el)] = "gb_boundary"

    tol = BOX_TOL * float((upper - lower).max())
    x = points[facets]  # (n, dim, dim): the facet's nodes
    on_boundary = ~interior
    for axis in range(raw.dim):
        for plane, label in ((lower[axis], "li_cc" if axis == stacking else "side"),
                             (upper[axis], "counter" if axis == stacking else "side")):
            flat = on_boundary & np.all(np.abs(x[:, :, axis] - plane) <= tol, axis=1)
            names[flat & (names == "")] = label
    names[on_boundary & (names == "")] = "void_surface"

    if boundaries:
        given = {n for n, _ in boundaries}
        automatic = np.isin(names, list(given))
        names[automatic & on_boundary] = "void_surface"
        names[automatic & interior] = ""
        elements = raw.facets
        tags = raw.facet_data[cell_data]
        for facet_name, tag_values in boundaries:
            mine = np.isin(tags, tag_values)
            rows = _match(facets, elements[mine])
            if np.any(rows < 0):
                raise ValueError(f"geometry.boundaries.{facet_name}: {int((rows < 0).sum())} "
                                 "tagged facet element(s) are not faces of the mesh's cells")
            names[rows] = facet_name

    axis_name = "xyz"[stacking]
    for label, wanted, plane in (("li_cc", {li}, "smallest"), ("counter", ion_ids, "largest")):
        mine = names == label
        if label in dict(boundaries) or not np.any(mine):
            continue
        wrong = int(np.sum(~np.isin(a[mine], list(wanted))))
        if wrong:
            raise ValueError(
                f"the stacking axis {axis_name} must point from the Li into the electrolyte, but "
                f"{wrong} of the {int(mine.sum())} boundary facets on the {plane} {axis_name} "
                f"({label}) are on {'non-Li' if label == 'li_cc' else 'Li'} cells: set "
                "geometry.stacking_axis, turn the mesh over, or give "
                f"geometry.boundaries.{label}")

    tagged = {n: _frozen(facets[names == n]) for n in FACET_TAGS if np.any(names == n)}
    if "interface" not in tagged:
        have = ", ".join(sorted({CELL_NAMES[int(r)] for r in np.unique(cell_region)}))
        raise ValueError(
            "no Li | electrolyte interface: no facet lies between a cell of geometry.regions.li "
            f"and an ion-conducting one (regions with cells: {have}); the Li and the "
            "electrolyte must share their nodes there (a conforming mesh)")
    ends = points[tagged["interface"]]
    pairs = [(i, j) for i in range(raw.dim) for j in range(i + 1, raw.dim)]
    size = float(np.mean([np.linalg.norm(ends[:, i] - ends[:, j], axis=1) for i, j in pairs]))
    return FileMesh(raw.dim, _frozen(points), raw.cells, _frozen(cell_region), tagged,
                    _frozen(lower), _frozen(upper), size)


def build(g: FromFileGeometry, unit: float) -> None:
    """The file's mesh as a gmsh discrete model in model units of ``unit`` metres (gmsh
    initialised, a model added): one discrete entity and physical group per region and per
    facet name. Nodes are numbered 1..n in one entity, as gmshio expects."""
    m = g.mesh
    tdim = m.dim
    cell_type, facet_type = (2, 1) if tdim == 2 else (4, 2)  # gmsh element types
    coords = np.zeros((len(m.points), 3))
    coords[:, :tdim] = m.points / unit
    next_element = 1
    nodes_added = False

    def add(dim: int, element_type: int, conn: np.ndarray, tag: int, name: str) -> None:
        nonlocal next_element, nodes_added
        entity = gmsh.model.addDiscreteEntity(dim)
        if not nodes_added:
            gmsh.model.mesh.addNodes(dim, entity, np.arange(1, len(coords) + 1),
                                     coords.ravel())
            nodes_added = True
        elements = np.arange(next_element, next_element + len(conn))
        next_element += len(conn)
        gmsh.model.mesh.addElementsByType(entity, element_type, elements, (conn + 1).ravel())
        gmsh.model.addPhysicalGroup(dim, [entity], tag, name=name)

    for name, tag in CELL_TAGS.items():
        conn = m.cells[m.cell_region == tag]
        if len(conn):
            add(tdim, cell_type, conn, tag, name)
    for name, conn in m.facets.items():
        add(tdim - 1, facet_type, conn, FACET_TAGS[name], name)
