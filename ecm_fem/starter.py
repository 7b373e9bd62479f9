"""``ecm-fem init SCENARIO``: a commented starter config for each geometry family.

The text is generated from the config schema (``ecm_fem.config``), so it lists exactly the keys
the schema has: every key with its value (the schema default, or the scenario's value) and its
description as a comment; nested sections as nested maps; optional sections the scenario does
not use commented out with their keys, ready to be switched on. A scenario is the handful of
values that differ from the defaults, taken from the matching example in ``configs/``.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import enum
import math
import os
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ecm_fem import __version__
from ecm_fem.cli import EXIT_CONFIG, EXIT_OK
from ecm_fem.config import GEOMETRY_KINDS, ConfigError, RunConfig
from ecm_fem.geometry import GEOMETRY_MODELS

if TYPE_CHECKING:
    from mpi4py import MPI

HELP = "write a commented starter config for a scenario (one per geometry family)"

INDENT = "  "
COMMENT_COLUMN = 40
TEXT_WIDTH = 98  # 100 columns less the "# " that comments out an optional block

# ----------------------------------------------------------------------------- scenarios
_ADAPTIVE_20S = {"t_end": 20.0, "dt": 5.0, "adaptive": True, "dt_max": 20.0}


@dataclass(frozen=True)
class Scenario:
    """A starter: its geometry family, what it is for, and its values that differ from the
    schema defaults (as in the YAML file; name, geometry.kind and output.dir follow from
    ``kind``)."""

    kind: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    example_mesh: str | None = None  # a file of the repository's meshes/ for geometry.path

    @property
    def data(self) -> dict[str, Any]:
        """The values with name, geometry.kind and output.dir filled in (a fresh copy)."""
        data = copy.deepcopy(self.values)
        data["name"] = self.kind
        data.setdefault("geometry", {})["kind"] = self.kind
        data.setdefault("output", {})["dir"] = f"results/{self.kind}"
        return data

    @property
    def sections(self) -> tuple[str, ...]:
        """The optional sections and lists the scenario fills (absent or empty by default)."""
        return tuple(_filled_optional(RunConfig, self.data, ()))


SCENARIOS: dict[str, Scenario] = {s.kind: s for s in (
    Scenario(
        "planar",
        "flat Li | LLZO cell plated then stripped at 10 A/m^2: the current distribution only",
        {"control": {"steps": [{"until": 30.0, "current_density": -10.0},
                               {"until": 60.0, "current_density": 10.0}]},
         "time": {"t_end": 60.0, "dt": 10.0}}),
    Scenario(
        "interfacial_void",
        "half of a void in the Li at Li | LLZO under plating: current focusing at its rim and "
        "the stresses around it",
        {"geometry": {"width": 20e-6, "li_thickness": 10e-6, "electrolyte_thickness": 50e-6,
                      "void_half_width": 5e-6, "void_depth": 5e-6, "mesh_size": 5e-6,
                      "interface_mesh_size": 0.5e-6},
         "kinetics": {"stress_coupling": "normal_traction"},
         "mechanics": {"growth_band": 1e-6},
         "time": _ADAPTIVE_20S}),
    Scenario(
        "electrolyte_flaw",
        "Li-filled surface flaw in LLZO, 20 s plating then 40 s rest: K_I of the flaw (the Porz "
        "mechanism)",
        {"geometry": {"width": 10e-6, "li_thickness": 5e-6, "electrolyte_thickness": 20e-6,
                      "flaw_depth": 3e-6, "flaw_opening": 0.2e-6, "filled": True,
                      "mesh_size": 2e-6, "interface_mesh_size": 0.25e-6},
         "control": {"steps": [{"until": 20.0, "current_density": -10.0},
                               {"until": 60.0, "current_density": 0.0}]},
         "mechanics": {"growth_band": 0.2e-6},
         "time": {"t_end": 60.0, "dt": 5.0, "adaptive": True, "dt_max": 20.0},
         "output": {"fields_every": 2}}),
    Scenario(
        "li_protrusion",
        "half of a Li protrusion into LLZO under plating: tip current and Monroe-Newman "
        "stress-coupled kinetics",
        {"geometry": {"width": 20e-6, "li_thickness": 10e-6, "electrolyte_thickness": 50e-6,
                      "protrusion_half_width": 2e-6, "protrusion_height": 4e-6,
                      "mesh_size": 5e-6, "interface_mesh_size": 0.5e-6, "tip_mesh_size": 0.1e-6},
         "kinetics": {"stress_coupling": "monroe_newman"},
         "mechanics": {"growth_band": 0.3e-6},
         "time": _ADAPTIVE_20S}),
    Scenario(
        "sei_heterogeneous",
        "50 nm SEI on Li | Li6PS5Cl with a resistive patch and a crack: current focusing in the "
        "crack (no mechanics)",
        {"geometry": {"width": 20e-6, "li_thickness": 5e-6, "electrolyte_thickness": 30e-6,
                      "sei_thickness": 50e-9, "mesh_size": 3e-6, "interface_mesh_size": 0.5e-6,
                      "patches": [{"name": "thick_patch", "x_min": 4e-6, "x_max": 9e-6,
                                   "thickness": 100e-9},
                                  {"name": "crack", "x_min": 14e-6, "x_max": 14.5e-6,
                                   "thickness": 0.0}]},
         "materials": {"electrolyte": "lpscl", "sei": {"base": "sei", "conductivity": 1e-5},
                       "patches": {"thick_patch": {"base": "sei", "conductivity": 3e-6}}},
         "kinetics": {"i0": 10.0, "regions": {"electrolyte": {"i0": 51.0},
                                              "thick_patch": {"i0": 5.0}}},
         "time": _ADAPTIVE_20S}),
    Scenario(
        "polycrystal",
        "polycrystalline LLZO with resistive grain boundaries under plating: current crowding "
        "next to them (no mechanics)",
        {"geometry": {"width": 20e-6, "li_thickness": 5e-6, "electrolyte_thickness": 20e-6,
                      "grain_layer_thickness": 10e-6, "grain_size": 5e-6, "gb_width": 0.25e-6,
                      "seed": 1, "mesh_size": 3e-6, "interface_mesh_size": 0.5e-6},
         "materials": {"gb": {"base": "llzo", "conductivity": 0.004}},
         "time": _ADAPTIVE_20S}),
    Scenario(
        "rough_interface",
        "sinusoidal Li | LLZO interface under plating: current focusing on the peaks (no "
        "mechanics)",
        {"geometry": {"profile": "sinusoidal", "width": 20e-6, "li_thickness": 10e-6,
                      "electrolyte_thickness": 50e-6, "amplitude": 1e-6, "wavelength": 10e-6,
                      "mesh_size": 5e-6, "interface_mesh_size": 0.5e-6},
         "time": _ADAPTIVE_20S}),
    Scenario(
        "from_file",
        "a mesh made elsewhere: the repository's example void mesh (micrometres, tags 10 = Li, "
        "20 = LLZO); for your own file set geometry path, scale, cell_data and regions",
        {"geometry": {"scale": 1e-6, "cell_data": "region",
                      "regions": {"li": [10], "electrolyte": [20]}},
         "kinetics": {"stress_coupling": "normal_traction"},
         "mechanics": {"growth_band": 1e-6},
         "time": _ADAPTIVE_20S},
        example_mesh="li_llzo_void_um.vtu"),
)}
assert set(SCENARIOS) == set(GEOMETRY_KINDS), "one scenario per geometry family"

# Values for the required keys of optional sections that are shown commented out, so that a
# block is valid once uncommented (keyed by the section's key path).
_TEMPLATES: dict[tuple[str, ...], Any] = {
    ("kinetics", "sei_film"): {"thickness": 50e-9},
    ("control", "steps"): [{"until": 30.0, "current_density": -10.0},
                           {"until": 60.0, "current_density": 10.0}],
    ("control", "cycling"): {"current_density": 10.0, "half_period": 30.0},
    # the illustrative values of configs/li_llzo_stripping_vacancies.yaml (sources there)
    ("vacancies",): {"diffusivity": 7.7e-10, "equilibrium_concentration": 0.77},
}


def _mesh_folders() -> tuple[Path, ...]:
    """Where the example meshes may be: the repository around the package (a checkout on
    PYTHONPATH), else the repository the working directory is in (the container runs there)."""
    here = Path.cwd()
    return (Path(__file__).resolve().parents[1] / "meshes",
            *(folder / "meshes" for folder in (here, *here.parents)))


def _example_mesh(name: str) -> Path:
    for folder in _mesh_folders():
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(
        f"the from_file starter uses the example mesh meshes/{name} of the ecm_fem repository, "
        "which is neither next to the package nor in the working directory or above it: run "
        "`ecm-fem init from_file` in the repository, or start from another scenario and set "
        "geometry.kind: from_file with your mesh's path, scale, cell_data and regions")


def _unknown_scenario(name: str) -> str:
    close = difflib.get_close_matches(name, SCENARIOS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown scenario '{name}'{hint}; choose one of: {', '.join(SCENARIOS)}"


def _get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ConfigError(_unknown_scenario(name))
    return SCENARIOS[name]


def _file_of(scenario: str, path: str | Path | None) -> Path:
    return Path(path) if path is not None else Path(f"{scenario}.yaml")


def scenario_values(scenario: str, path: str | Path | None = None) -> dict[str, Any]:
    """The scenario's config data (YAML-like), for a file written to ``path`` (default
    ``<scenario>.yaml`` in the working directory): a mesh path is relative to its folder."""
    spec = _get_scenario(scenario)
    values = spec.data
    if spec.example_mesh is not None:
        folder = _file_of(scenario, path).resolve().parent
        values["geometry"]["path"] = os.path.relpath(_example_mesh(spec.example_mesh), folder)
    return values


def _validated(values: dict[str, Any], file: Path) -> RunConfig:
    return RunConfig.model_validate(values, context={"config_dir": file.resolve().parent})


def intended_config(scenario: str, path: str | Path | None = None) -> RunConfig:
    """The config the starter of ``scenario`` written to ``path`` describes: schema defaults
    plus the scenario's values."""
    return _validated(scenario_values(scenario, path), _file_of(scenario, path))


# ----------------------------------------------------------------------------- schema walking
def _unwrap(annotation: Any) -> Any:
    """The annotation without Annotated metadata and without an Optional's None."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) > 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field of this annotation holds (several: a tagged union)."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _contained_models(annotation: Any) -> list[type[BaseModel]]:
    """The models held as items of a list field or as values of a dict field."""
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (list, dict):
        return _models_in(get_args(annotation)[-1])
    return []


def _model_for(models: list[type[BaseModel]], data: dict[str, Any]) -> type[BaseModel]:
    """The member of a union tagged by ``kind`` that ``data`` is."""
    if len(models) == 1:
        return models[0]
    return next(m for m in models if m.model_fields["kind"].default == data["kind"])


def _filled_optional(model: type[BaseModel], values: dict[str, Any],
                     path: tuple[str, ...]) -> Iterator[str]:
    """Key paths of the sections and lists in ``values`` that are absent or empty by default."""
    for name, value in values.items():
        info = model.model_fields[name]
        default = info.get_default(call_default_factory=True)
        if isinstance(value, dict | list) and (default is None or default in ({}, [])):
            yield ".".join((*path, name))
        elif isinstance(value, dict) and (models := _models_in(info.annotation)):
            yield from _filled_optional(_model_for(models, value), value, (*path, name))


# ----------------------------------------------------------------------------- comments
def _plain(text: str) -> str:
    """Docstring text on one line, ``literals`` in plain quotes."""
    return " ".join(re.sub(r"``(.*?)``", r"'\1'", text).split())


def _first_sentence(doc: str | None) -> str:
    return re.split(r"(?<=\.)\s+(?=[A-Z])", _plain(doc or ""))[0]


def _choices(annotation: Any) -> list[str]:
    """The string values an enum or Literal field takes."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [m.value for m in annotation]
    if get_origin(annotation) is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    return []


_BOUNDS = (("gt", "<"), ("ge", "<="), ("lt", "<"), ("le", "<="))


def _range(name: str, info: FieldInfo) -> str:
    """``0 < name <= 1`` from the field's numeric constraints ('' without any)."""
    bounds = {key: getattr(m, key) for m in info.metadata for key, _ in _BOUNDS
              if getattr(m, key, None) is not None}
    low = next((f"{bounds[k]:g} {op} " for k, op in _BOUNDS[:2] if k in bounds), "")
    high = next((f" {op} {bounds[k]:g}" for k, op in _BOUNDS[2:] if k in bounds), "")
    return f"{low}{name}{high}" if low or high else ""


def _comment(name: str, info: FieldInfo, parent: type[BaseModel],
             section: type[BaseModel] | None = None) -> str:
    """The field's description; failing that the docstring of the section it holds, its range
    or its name; enum choices appended when the description does not name them all."""
    if name == "kind" and parent in GEOMETRY_MODELS.values():
        return (f"geometry family: {' | '.join(GEOMETRY_KINDS)}; each has its own keys "
                "(`ecm-fem init KIND` writes a starter for it)")
    section = section or next(iter(_models_in(info.annotation) or
                                   _contained_models(info.annotation)), None)
    text = _plain(info.description or "") or (section and _first_sentence(section.__doc__)) \
        or _range(name, info)
    choices = _choices(info.annotation)
    if len(choices) > 1 and not all(c in text for c in choices):
        one_of = f"one of: {' | '.join(choices)}"
        text = f"{text} ({one_of})" if text else one_of
    return text or name.replace("_", " ") + (" settings" if section else "")


# ----------------------------------------------------------------------------- YAML text
def _float_text(value: float) -> str:
    """The shortest exact decimal; outside 1e-3..1e4 in engineering notation (exponent a
    multiple of 3, as SI prefixes: 250.0e-9), written so that YAML 1.1 reads a float (a dot
    in the mantissa, a sign in the exponent)."""
    if value == 0 or 1e-3 <= abs(value) < 1e4 or not math.isfinite(value):
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    decade = exponent + len(digits) - 1
    shift = decade - 3 * (decade // 3)  # 0, 1 or 2 digits more before the dot
    mantissa = "".join(map(str, digits)).ljust(shift + 1, "0")
    return (f"{'-' if sign else ''}{mantissa[:shift + 1]}.{mantissa[shift + 1:] or '0'}"
            f"e{decade - shift:+d}")


def _flow(value: Any) -> str:
    """A value in YAML flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    text = str(value)
    try:
        plain = bool(text) and yaml.safe_load(text) == text
    except yaml.YAMLError:
        plain = False
    return text if plain else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _keyed(indent: int, text: str, comment: str) -> list[str]:
    """``text`` at ``indent`` with ``comment`` wrapped in a column to its right."""
    head = INDENT * indent + text
    column = max(COMMENT_COLUMN, len(head) + 2)
    chunks = textwrap.wrap(comment, max(TEXT_WIDTH - column - 2, 30)) or [""]
    return [f"{head.ljust(column)}# {chunks[0]}", *(f"{' ' * column}# {c}" for c in chunks[1:])]


def _commented(lines: list[str], indent: int) -> list[str]:
    """``lines`` commented out at ``indent``, their comments kept in the column of the rest."""
    cut = len(INDENT) * indent
    return [f"{line[:cut]}# " + re.sub(r" {3,}(?=# )", lambda gap: gap[0][2:], line[cut:],
                                       count=1) for line in lines]


def _template(path: tuple[str, ...], info: FieldInfo) -> Any:
    """Data of an optional section the config leaves out: defaults plus _TEMPLATES."""
    example = _TEMPLATES.get(path, {})
    if models := _models_in(info.annotation):
        return models[0].model_validate(example).model_dump(mode="json")
    item = _contained_models(info.annotation)[0]
    return [item.model_validate(e).model_dump(mode="json") for e in example]


def _model_lines(model: type[BaseModel], data: dict[str, Any], indent: int,
                 path: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for name, info in model.model_fields.items():
        field_lines = _field_lines(model, name, info, data[name], indent, (*path, name))
        if indent == 0 and len(field_lines) > 1:
            lines.append("")  # a blank line before each top-level section
        lines += field_lines
    return lines


def _field_lines(parent: type[BaseModel], name: str, info: FieldInfo, value: Any, indent: int,
                 path: tuple[str, ...]) -> list[str]:
    sections, contained = _models_in(info.annotation), _contained_models(info.annotation)
    if value is None and (sections or contained):  # an optional section, shown commented out
        template = _template(path, info)
        return _commented(_field_lines(parent, name, info, template, indent, path), indent)
    if sections:
        model = _model_for(sections, value)
        return [*_keyed(indent, f"{name}:", _comment(name, info, parent, model)),
                *_model_lines(model, value, indent + 1, path)]
    comment = _comment(name, info, parent)
    if contained and value:
        lines = _keyed(indent, f"{name}:", comment)
        item_comment = _first_sentence(contained[0].__doc__)
        for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
            if isinstance(value, dict):
                lines += _keyed(indent + 1, f"{_flow(key)}:", item_comment)
                lines += _model_lines(contained[0], item, indent + 2, path)
            else:
                item_lines = _model_lines(contained[0], item, indent + 2, path)
                dash = len(INDENT) * (indent + 1)
                item_lines[0] = f"{item_lines[0][:dash]}- {item_lines[0][dash + 2:]}"
                lines += item_lines
        return lines
    return _keyed(indent, f"{name}: {_flow(value)}", comment)


def _header(scenario: str, spec: Scenario, file: Path) -> list[str]:
    sections = ", ".join(spec.sections) or "none"
    intro = (f"ecm_fem starter config '{scenario}': {spec.description}. "
             f"Optional sections switched on: {sections}.")
    return [
        f"# Written by `ecm-fem init {scenario}` (ecm_fem {__version__}) from the config schema.",
        *(f"# {line}" for line in textwrap.wrap(intro, TEXT_WIDTH - 2)),
        "# Every key is listed with its value (the default, or this scenario's) and what it means;",
        "# change what you need, delete what you don't (a key left out takes its default).",
        "# null: not set (the comment says what applies then). Commented-out blocks (# mechanics:",
        "# ...) are optional sections: remove the '# ' in front of a block's lines to use one.",
        f"#   check it:  ecm-fem validate {file}",
        f"#   run it:    mpirun -n 2 ecm-fem run {file}",
        "#              (results go to output.dir; add -o FOLDER to put them elsewhere)",
        "# Units: SI throughout (m, s, A/m^2, V, Pa, S/m, K); a key's unit is in [brackets].",
    ]


def starter_text(scenario: str, path: str | Path | None = None) -> str:
    """The commented starter config of ``scenario`` for a file written to ``path`` (default
    ``<scenario>.yaml`` in the working directory; it matters for the mesh path of from_file).
    Raises ConfigError for an unknown scenario."""
    spec = _get_scenario(scenario)
    file = _file_of(scenario, path)
    values = scenario_values(scenario, path)
    data = _validated(values, file).model_dump(mode="json")
    if spec.example_mesh is not None:  # validation made the path absolute; keep it relative
        data["geometry"]["path"] = values["geometry"]["path"]
    lines = [*_header(scenario, spec, file), *_model_lines(RunConfig, data, 0, ())]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command line
def _scenario_list(width: int = 78) -> str:
    """The scenarios with their descriptions, wrapped to ``width`` columns."""
    column = max(map(len, SCENARIOS)) + 4
    return "\n".join(textwrap.fill(spec.description, width, subsequent_indent=" " * column,
                                   initial_indent=f"  {name:{column - 2}}")
                     for name, spec in SCENARIOS.items())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ecm-fem init`` (and its description with the list of scenarios)."""
    parser.description = textwrap.fill(
        "Write a starter config: every key of the schema with its value (the default, or the "
        "scenario's) and a comment (meaning, SI unit); optional sections commented out.", 78)
    parser.epilog = f"scenarios:\n{_scenario_list()}"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("scenario", nargs="?", metavar="SCENARIO",
                        help=f"one of: {', '.join(SCENARIOS)} (without it: list them)")
    parser.add_argument("-o", "--output", metavar="FILE", help="file to write (default: "
                        "SCENARIO.yaml in the working directory; '-': standard output)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _write(args: argparse.Namespace) -> tuple[int, str]:
    """Write the starter (rank 0): (exit code, message)."""
    file = None if args.output == "-" else _file_of(args.scenario, args.output)
    if file is not None and file.exists() and not args.force:
        return EXIT_CONFIG, f"init: {file} exists; give --force to overwrite it, or -o FILE"
    if file is not None and file.is_dir():
        return EXIT_CONFIG, f"init: {file} is a folder; give a file name with -o"
    try:
        text = starter_text(args.scenario, file)
        if file is None:
            sys.stdout.write(text)
            return EXIT_OK, ""
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    except ConfigError as exc:
        return EXIT_CONFIG, f"init: {exc}"
    except OSError as exc:
        return EXIT_CONFIG, f"init: cannot write {file} ({exc.strerror})"
    return EXIT_OK, (f"wrote {file} ({args.scenario}); check it with `ecm-fem validate {file}`, "
                     f"run it with `mpirun -n 2 ecm-fem run {file}`")


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """``ecm-fem init``: 0 when written (or listed), 2 for an unknown scenario, a file that
    exists without --force or one that cannot be written. Rank 0 writes; every rank returns
    the same code."""
    from mpi4py import MPI

    comm = comm if comm is not None else MPI.COMM_WORLD
    if args.scenario is None:
        code, message = EXIT_OK, f"scenarios (ecm-fem init SCENARIO):\n{_scenario_list()}"
    elif args.scenario not in SCENARIOS:
        code, message = EXIT_CONFIG, f"init: {_unknown_scenario(args.scenario)}"
    else:
        code, message = _write(args) if comm.rank == 0 else (EXIT_OK, "")
        code, message = comm.bcast((code, message), root=0)
    if comm.rank == 0 and message:
        print(message, file=sys.stdout if code == EXIT_OK else sys.stderr, flush=True)
    return code
