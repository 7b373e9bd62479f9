"""Malformed configs end to end: ``ecm-fem run`` (``cli.main`` in-process, serially and under
mpirun with pytest on every rank) must refuse each one with exit code 2 on every rank, name the
key path (with its line where the config gives one) on rank 0's stderr, and leave an existing
output folder exactly as it was: every file byte for byte, nothing moved aside to
``<dir>.<timestamp>``, nothing created next to it.

The cases: wrong types, unknown keys (top level and nested), negative and zero sizes, geometries
that cannot fit (cross-field checks), missing parts, YAML syntax errors (duplicate keys too) and
unit mistakes (GPa, degrees Celsius, MPa, kPa, micrometres, millimetres, mA/cm^2, mV). All stop at
validation, before any mesh or folder is made.

One config validates but fails in gmsh (periodic sides whose SEI layering differs): that run
has already moved the earlier results aside when it fails, and they must all be in the moved
folder.
"""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI

import pytest

from ecm_fem import cli
from ecm_fem.config import load_config

pytestmark = pytest.mark.mpi

REPO = Path(__file__).resolve().parents[1]
MESH = REPO / "meshes" / "li_llzo_void_um.vtu"  # a valid mesh file (micrometres)
NOT_A_MESH = "not_a_mesh.vtu"  # written into the test folder when a case names it

# the results of an earlier run in the output folder, which a refused config must not touch
EARLIER_RESULTS = {
    "summary.json": b'{"V_we": -0.0512, "converged": true, "steps": 2}\n',
    "history.csv": b"step,time,V_we\n0,0.0,-0.0512\n1,10.0,-0.0513\n2,20.0,-0.0514\n",
    "fields/phi.bp/data.0": bytes(range(256)) * 16,
    "fields/phi.bp/md.idx": b"\x00\x01\x02\x03md.idx of an earlier run",
}


def case(case_id: str, text: str, *expected: str):
    """A malformed config (``@TMP@`` and ``@MESH@`` are filled in) and the pieces its error
    message must contain: the key path with its line, then the reason."""
    return pytest.param(text, expected, id=case_id)


CASES = [
    # --- wrong types
    case("type-string-for-number", "name: t\nkinetics:\n  model: butler_volmer\n  i0: fast\n",
         "kinetics.i0 (line 4)", "valid number"),
    case("type-number-with-unit-text", "time:\n  t_end: 100\n  dt: 10 s\n",
         "time.dt (line 3)", "valid number"),
    case("type-list-for-map", "materials:\n  - lithium\n  - llzo\n",
         "materials (line 1)", "valid dictionary"),
    case("type-bool-for-geometry-kind", "geometry:\n  kind: true\n  width: 2.0e-5\n",
         "geometry.kind (line 2)", "unknown geometry kind (known: planar,", "not 'True'"),
    case("type-bool-for-counter-kind", "counter:\n  kind: yes\n",
         "counter.kind (line 2)", "'reference' or 'butler_volmer'"),
    case("type-string-for-bool", "mechanics:\n  growth: sometimes\n",
         "mechanics.growth (line 2)", "valid boolean"),
    case("type-float-for-count", "output:\n  fields_every: 2.5\n",
         "output.fields_every (line 2)", "valid integer"),
    # --- unknown keys
    case("unknown-top-level-section", "name: t\nmechanic:\n  stack_pressure: 1.0e6\n",
         "mechanic (line 2)", "unknown key"),
    case("unknown-geometry-key", "geometry:\n  kind: interfacial_void\n  void_radius: 5.0e-6\n",
         "geometry.void_radius (line 3)", "unknown key"),
    case("unknown-material-property", "materials:\n  li: {base: lithium, density: 534}\n",
         "materials.li.density (line 2)", "unknown key"),
    case("unknown-mechanics-creep-key", "mechanics:\n  li_law: norton\n  creep:\n"
         "    exponent: 5\n", "mechanics.creep.exponent (line 4)", "unknown key"),
    case("unknown-control-key", "control:\n  current: -10\n",
         "control.current (line 2)", "unknown key"),
    # --- negative and zero sizes
    case("negative-li-thickness", "geometry:\n  li_thickness: -10.0e-6\n",
         "geometry.li_thickness (line 2)", "greater than 0"),
    case("zero-mesh-size", "geometry:\n  mesh_size: 0\n",
         "geometry.mesh_size (line 2)", "greater than 0"),
    case("negative-void-depth", "geometry:\n  kind: interfacial_void\n  void_depth: -2.0e-6\n",
         "geometry.void_depth (line 3)", "greater than 0"),
    case("zero-time-step", "time:\n  t_end: 10\n  dt: 0\n",
         "time.dt (line 3)", "greater than 0"),
    case("negative-sei-patch-thickness", "geometry:\n  kind: sei_heterogeneous\n  patches:\n"
         "    - {name: p, x_min: 1.0e-6, x_max: 2.0e-6, thickness: -1.0e-8}\n",
         "geometry.patches.0.thickness (line 4)", "greater than or equal to 0"),
    # --- geometries that cannot be drawn (cross-field checks name the field in the message)
    case("void-wider-than-cell", "geometry:\n  kind: interfacial_void\n  width: 1.5e-5\n"
         "  void_half_width: 2.5e-5\n",
         "geometry (line 1)", "void_half_width = 2.5e-05 m must be smaller than width"),
    case("void-deeper-than-li", "geometry:\n  kind: interfacial_void\n  li_thickness: 1.0e-5\n"
         "  void_depth: 1.2e-5\n", "geometry (line 1)", "void_depth = 1.2e-05 m"),
    case("crack-deeper-than-electrolyte", "geometry:\n  kind: electrolyte_flaw\n"
         "  electrolyte_thickness: 5.0e-5\n  flaw_depth: 6.0e-5\n",
         "geometry (line 1)", "flaw_depth = 6e-05 m must be at most"),
    case("interface-mesh-coarser-than-mesh", "geometry:\n  mesh_size: 2.0e-6\n"
         "  interface_mesh_size: 4.0e-6\n",
         "geometry (line 1)", "interface_mesh_size must not exceed mesh_size"),
    case("periodic-sides-on-a-file-mesh", "geometry:\n  kind: from_file\n  path: @MESH@\n"
         "  scale: 1.0e-6\n  cell_data: region\n  regions: {li: [10], electrolyte: [20]}\n"
         "mechanics: {sides: periodic}\n",
         "mechanics.sides: periodic", "a from_file mesh cannot be re-meshed"),
    # --- missing parts
    case("from-file-without-path", "geometry:\n  kind: from_file\n"
         "  regions: {li: [10], electrolyte: [20]}\n", "geometry.path (line 1)", "Field required"),
    case("from-file-not-a-mesh", f"geometry:\n  kind: from_file\n  path: @TMP@/{NOT_A_MESH}\n"
         "  regions: {li: [10], electrolyte: [20]}\n", "geometry.path (line 3)", "cannot read"),
    case("step-without-until", "control:\n  steps:\n    - {until: 10, current_density: -1}\n"
         "    - {current_density: 1}\n", "control.steps.1.until (line 4)", "Field required"),
    case("material-without-base", "materials:\n  electrolyte: {conductivity: 0.05}\n",
         "materials.electrolyte.base (line 2)", "Field required"),
    case("empty-file", "", "the config is empty"),
    case("comments-only", "# a config to be written\n# tomorrow\n", "the config is empty"),
    case("list-instead-of-map", "- name: t\n- geometry: {width: 2.0e-5}\n",
         "the top level must be a mapping of sections"),
    # --- YAML syntax
    case("yaml-tab-indentation", "geometry:\n\twidth: 2.0e-5\n",
         "YAML syntax error at line 2", "'\\t'"),
    case("yaml-unclosed-brace", "name: t\ngeometry: {width: 2.0e-5, li_thickness: 1.0e-5\n"
         "kinetics: {i0: 51}\n", "YAML syntax error at line 3", "expected ',' or '}'",
         "while parsing a flow mapping that starts at line 2"),
    case("yaml-unclosed-quote", "name: 'my run\ngeometry: {}\n", "YAML syntax error at line 3",
         "while scanning a quoted scalar that starts at line 1"),
    case("yaml-bad-indentation", "geometry:\n  width: 2.0e-5\n    li_thickness: 1.0e-5\n",
         "YAML syntax error at line 3", "mapping values are not allowed here"),
    case("yaml-duplicate-key", "name: t\ngeometry:\n  width: 2.0e-5\n  width: 3.0e-5\n",
         "geometry.width (line 4)", "duplicate key (first at line 3)"),
    case("yaml-duplicate-section", "geometry: {width: 2.0e-5}\nkinetics: {i0: 51}\n"
         "geometry: {width: 3.0e-5}\n", "geometry (line 3)", "duplicate key (first at line 1)"),
    # --- unit mistakes and values out of physical range
    case("modulus-in-GPa", "materials:\n  li: {base: lithium, youngs_modulus: 4.9}\n",
         "materials.li.youngs_modulus (line 2)", "is it given in GPa or MPa?"),
    case("temperature-in-Celsius", "temperature: 60\n",
         "temperature (line 1)", "is it given in degrees Celsius? (60 C = 333.15 K)"),
    case("creep-temperature-in-Celsius", "mechanics:\n  creep:\n    reference_temperature: 25\n",
         "mechanics.creep.reference_temperature (line 3)", "degrees Celsius"),
    case("stack-pressure-in-MPa", "mechanics:\n  stack_pressure: 5\n",
         "mechanics.stack_pressure (line 2)", "is it given in MPa?"),
    case("stack-pressure-in-kPa", "mechanics:\n  stack_pressure: 500\n",
         "mechanics.stack_pressure (line 2)", "kPa: 1e3"),
    case("step-current-in-wrong-unit", "control:\n  steps:\n"
         "    - {until: 10, current_density: -2.0e5}\n",
         "control.steps.0.current_density (line 3)", "is it mA/cm^2?"),
    case("width-in-micrometres", "geometry:\n  width: 20\n",
         "geometry.width (line 2)", "is it given in micrometres", "20 um = 2e-05 m"),
    case("thickness-in-micrometres", "geometry:\n  li_thickness: 0.5\n",
         "geometry.li_thickness (line 2)", "0.5 um = 5e-07 m"),
    case("thickness-in-millimetres", "geometry:\n  electrolyte_thickness: 0.1\n",
         "geometry.electrolyte_thickness (line 2)", "0.1 mm = 0.0001 m"),
    case("voltage-in-mV", "control:\n  mode: potentiostatic\n  voltage: 150\n",
         "control.voltage (line 3)", "is it given in mV?"),
    case("zero-exchange-current", "counter:\n  kind: butler_volmer\n  i0: 0\n",
         "counter.i0 (line 3)", "greater than 0"),
    case("negative-exchange-current-of-a-region", "kinetics:\n  regions:\n"
         "    electrolyte: {i0: -51.0}\n",
         "kinetics.regions.electrolyte.i0 (line 3)", "greater than 0"),
]

# valid, but gmsh cannot mesh it: the bare-Li gap at x = 0 has no counterpart at x = width,
# so the two lateral sides cannot be meshed node for node alike for periodic mechanics
FAILS_IN_GMSH = """\
name: periodic_mismatch
geometry:
  kind: sei_heterogeneous
  width: 10.0e-6
  li_thickness: 5.0e-6
  electrolyte_thickness: 10.0e-6
  sei_thickness: 0.1e-6
  mesh_size: 5.0e-6
  interface_mesh_size: 1.0e-6
  patches:
    - {name: gap, x_min: 0.0, x_max: 2.0e-6, thickness: 0.0}
mechanics: {sides: periodic}
"""


def _tree(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file (bytes, modification time) and folder (None) under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file()
            else None for p in sorted(folder.rglob("*"))}


def _prepare(folder: Path, text: str) -> tuple[Path, Path]:
    """Rank 0 writes the earlier results into ``folder/out`` and the config (with the files it
    names) into ``folder``; every rank returns (config, out) once they are there."""
    config, out = folder / "config.yaml", folder / "out"
    if MPI.COMM_WORLD.rank == 0:
        for name, data in EARLIER_RESULTS.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
        if NOT_A_MESH in text:
            (folder / NOT_A_MESH).write_text("this is a text file, not a mesh\n")
        config.write_text(text.replace("@TMP@", str(folder)).replace("@MESH@", str(MESH)))
    MPI.COMM_WORLD.barrier()
    return config, out


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_malformed_config_is_refused_and_the_output_folder_is_untouched(
        text, expected, shared_tmp, monkeypatch, capsys):
    comm = MPI.COMM_WORLD
    config, out = _prepare(shared_tmp, text)
    before = _tree(shared_tmp)
    monkeypatch.chdir(shared_tmp)  # a relative default output.dir would land here

    code = cli.main(["run", str(config), "-o", str(out)])
    err = capsys.readouterr().err

    assert comm.allgather(code) == [cli.EXIT_CONFIG] * comm.size
    moved_aside = [p.name for p in shared_tmp.iterdir() if p.name.startswith("out.")]
    assert moved_aside == []
    assert _tree(shared_tmp) == before  # byte for byte, nothing new, nothing removed
    if comm.rank == 0:
        assert err.startswith("config error: "), err
        for piece in expected:
            assert piece in err, err
    else:
        assert "config error" not in err, err  # the message comes from rank 0 only


def test_config_failing_in_gmsh_leaves_the_earlier_results_in_place(shared_tmp, monkeypatch,
                                                                     capsys):
    """The mesh is made before the run folder is prepared, so a geometry that validates but
    that gmsh cannot build is a config error (exit code 2 on every rank) that leaves the earlier
    results where they were, byte for byte, and moves nothing aside."""
    comm = MPI.COMM_WORLD
    config, out = _prepare(shared_tmp, FAILS_IN_GMSH)
    assert load_config(config).mechanics.sides == "periodic"  # it validates
    before = _tree(shared_tmp)
    monkeypatch.chdir(shared_tmp)

    code = cli.main(["run", str(config), "-o", str(out)])
    err = capsys.readouterr().err

    assert comm.allgather(code) == [cli.EXIT_CONFIG] * comm.size
    assert _tree(shared_tmp) == before
    if comm.rank == 0:
        assert "gmsh failed: periodic sides" in err, err
