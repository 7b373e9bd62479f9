"""``ecm-fem init``: every scenario's starter parses to the config it is meant to be (the schema
defaults plus the scenario's values) and to its example in configs/ (up to stated differences);
every key line carries a comment; no key of the schema is missing; the commented-out optional
sections are valid once uncommented (the mechanics always); the command writes on rank 0,
refuses to overwrite without --force, names the scenarios for an unknown one and says so when
the example mesh of from_file cannot be found; the planar starter runs a short solve. Serially
and under mpirun -n 2 (files in a folder shared by the ranks)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path
from typing import Any

from mpi4py import MPI

import pytest
import yaml

from ecm_fem import cli, starter
from ecm_fem.config import ConfigError, Mechanics, config_from_text, load_config

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = list(starter.SCENARIOS)

# Starters of current-distribution studies leave the mechanics of their example config off
# (those configs note that the stresses change i0 by about 1 %); the block stays commented out.
CURRENT_ONLY = [("mechanics", None), ("kinetics.stress_coupling", "none")]
EXAMPLE_CONFIGS = {
    "planar": ("planar_li_llzo.yaml", []),
    "interfacial_void": ("interfacial_void_li_llzo.yaml", []),
    "electrolyte_flaw": ("electrolyte_flaw_li_llzo.yaml", []),
    "li_protrusion": ("li_protrusion_li_llzo.yaml", []),
    "sei_heterogeneous": ("sei_heterogeneous_li_lpscl.yaml", CURRENT_ONLY),
    "polycrystal": ("polycrystal_li_llzo.yaml", CURRENT_ONLY),
    "rough_interface": ("rough_interface_li_llzo.yaml", CURRENT_ONLY),
    "from_file": ("from_file_li_llzo.yaml", []),
}
STRESS_STUDIES = ("interfacial_void", "electrolyte_flaw", "li_protrusion")

# Optional sections that contradict a scenario's other settings when switched on; the schema
# rejects them with these messages (their descriptions say so too).
KNOWN_CONFLICTS = ("give either steps or cycling",
                   "with a mechanics section the interface stresses come from the mechanics",
                   "the geometry already resolves the SEI",
                   # a solid electrolyte (llzo) has no salt diffusivity: transport needs another
                   "which the binary electrolyte needs")


def write(path: Path, text: str) -> Path:
    """Write on rank 0, visible to every rank on return."""
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(text)
    MPI.COMM_WORLD.barrier()
    return path


def written_starter(scenario: str, folder: Path) -> tuple[Path, str]:
    path = folder / f"{scenario}.yaml"
    text = starter.starter_text(scenario, path)
    return write(path, text), text


def commented_blocks(text: str) -> dict[str, tuple[int, int]]:
    """Key path -> (first, end) line numbers of each commented-out block after the header."""
    lines = text.splitlines()
    body = next(k for k, line in enumerate(lines) if line and not line.startswith("#"))
    blocks, parents = {}, {}
    for k in range(body, len(lines)):
        if line_key := re.match(r"^( *)([a-z_]+):", lines[k]):
            parents[len(line_key[1])] = line_key[2]
        block = re.match(r"^( *)# ([a-z_]+):", lines[k])
        if block and len(block[1]) < starter.COMMENT_COLUMN:  # not a wrapped comment's line
            indent = block[1]
            end = k + 1
            while end < len(lines) and lines[end].startswith(indent + "#   "):
                end += 1
            path = [parents[d] for d in sorted(parents) if d < len(indent)]
            blocks[".".join([*path, block[2]])] = (k, end)
    return blocks


def uncomment(text: str, *blocks: tuple[int, int]) -> str:
    lines = text.splitlines()
    for first, end in blocks:
        cut = len(lines[first]) - len(lines[first].lstrip())
        for k in range(first, end):
            assert lines[k][cut:cut + 2] == "# "
            lines[k] = lines[k][:cut] + lines[k][cut + 2:]
    return "\n".join(lines) + "\n"


def init(*argv: str) -> int:
    """``ecm-fem init ARGV`` through the command's own parser."""
    parser = argparse.ArgumentParser(prog="ecm-fem init")
    starter.add_arguments(parser)
    return starter.main(parser.parse_args(list(argv)))


# ----------------------------------------------------------------------------- content
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_starter_is_the_intended_config(shared_tmp, scenario):
    path, _ = written_starter(scenario, shared_tmp)
    config = load_config(path)
    assert config == starter.intended_config(scenario, path)
    assert config.name == scenario and config.geometry.kind == scenario
    assert config.output.dir == f"results/{scenario}"
    assert (config.mechanics is not None) == ("mechanics" in starter.SCENARIOS[scenario].sections)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_starter_matches_its_example_config(shared_tmp, scenario):
    path, _ = written_starter(scenario, shared_tmp)
    example, differences = EXAMPLE_CONFIGS[scenario]
    expected = load_config(REPO / "configs" / example, [
        ("name", scenario), ("output.dir", f"results/{scenario}"), *differences])
    assert load_config(path) == expected
    if scenario in STRESS_STUDIES:
        assert expected.mechanics is not None


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_key_line_has_a_comment(shared_tmp, scenario):
    path, text = written_starter(scenario, shared_tmp)
    blocks = commented_blocks(text)
    assert blocks, "optional sections are shown commented out"
    header_end = text.index("\nname:")  # the header names the file: any length
    for shown in (text, uncomment(text, *blocks.values())):
        for line in shown[header_end:].splitlines():
            assert len(line) <= 100, line
            if line.strip() and not line.lstrip().startswith("#"):
                assert re.search(r"\S {2,}# \S", line), f"no comment: {line!r}"
    header = text[:header_end]
    assert f"ecm-fem validate {path}" in header and f"mpirun -n 2 ecm-fem run {path}" in header
    assert "SI" in header


def assert_keys_present(dumped: Any, shown: Any, path: str = "") -> None:
    """Every key of a config dump is in the starter's data (None sections shown as blocks)."""
    if isinstance(dumped, dict):
        assert isinstance(shown, dict), path
        for key, value in dumped.items():
            assert key in shown, f"{path}{key} missing from the starter"
            if value is not None:
                assert_keys_present(value, shown[key], f"{path}{key}.")
    elif isinstance(dumped, list) and dumped and isinstance(dumped[0], dict):
        for k, (item, shown_item) in enumerate(zip(dumped, shown, strict=True)):
            assert_keys_present(item, shown_item, f"{path}{k}.")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_key_of_the_schema_is_missing(shared_tmp, scenario):
    path, text = written_starter(scenario, shared_tmp)
    blocks = commented_blocks(text)
    shown = yaml.safe_load(uncomment(text, *blocks.values()))
    config = starter.intended_config(scenario, path)
    assert_keys_present(config.model_dump(mode="json"), shown)
    for block in blocks:  # exactly the schema's optional sections the config leaves out
        section = config
        for key in block.split("."):
            section = getattr(section, key)
        assert section is None, block


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_commented_sections_are_valid_once_uncommented(shared_tmp, scenario):
    path, text = written_starter(scenario, shared_tmp)
    blocks = commented_blocks(text)
    assert ("mechanics" in blocks) == (starter.intended_config(scenario, path).mechanics is None)
    for name, block in blocks.items():
        try:
            config = config_from_text(uncomment(text, block), str(path))
        except ConfigError as exc:
            assert name != "mechanics", str(exc)
            assert any(reason in str(exc) for reason in KNOWN_CONFLICTS), str(exc)
            continue
        if name == "mechanics":
            assert config.mechanics == Mechanics()


def test_floats_are_written_exactly():
    for value in (20e-6, 0.25e-6, 50e-9, 1e6, 8e5, -1.5e-7, 1e-14, 123.456e-9, 0.004, 298.15,
                  3.0e12, 0.0):
        text = starter._float_text(value)
        assert yaml.safe_load(text) == value and isinstance(yaml.safe_load(text), float), text
    assert starter._float_text(0.25e-6) == "250.0e-9"


# ----------------------------------------------------------------------------- command line
def test_writes_and_refuses_to_overwrite(shared_tmp, capsys):
    path = shared_tmp / "new" / "start.yaml"
    assert init("planar", "-o", str(path)) == 0
    assert path.read_text() == starter.starter_text("planar", path)
    out = capsys.readouterr()
    if MPI.COMM_WORLD.rank == 0:
        assert f"wrote {path}" in out.out
    assert init("electrolyte_flaw", "-o", str(path)) == 2
    assert path.read_text() == starter.starter_text("planar", path)
    err = capsys.readouterr().err
    if MPI.COMM_WORLD.rank == 0:
        assert f"{path} exists" in err and "--force" in err
    assert init("electrolyte_flaw", "-o", str(path), "--force") == 0
    assert path.read_text() == starter.starter_text("electrolyte_flaw", path)


def test_default_file_and_stdout(shared_tmp, capsys, monkeypatch):
    monkeypatch.chdir(shared_tmp)
    assert init("polycrystal") == 0
    assert Path("polycrystal.yaml").read_text() == starter.starter_text("polycrystal")
    capsys.readouterr()
    assert init("polycrystal", "-o", "-") == 0
    out = capsys.readouterr().out
    assert out == (starter.starter_text("polycrystal") if MPI.COMM_WORLD.rank == 0 else "")


def test_unknown_scenario_names_the_choices(capsys):
    assert init("planr") == 2
    err = capsys.readouterr().err
    if MPI.COMM_WORLD.rank == 0:
        assert "unknown scenario 'planr'" in err and "did you mean planar" in err
        assert all(name in err for name in SCENARIOS)
    with pytest.raises(ConfigError, match="choose one of: planar, "):
        starter.starter_text("nope")
    assert init() == 0
    out = capsys.readouterr().out
    if MPI.COMM_WORLD.rank == 0:
        assert all(f"  {name} " in out for name in SCENARIOS)


def test_from_file_without_the_example_mesh(shared_tmp, capsys, monkeypatch):
    monkeypatch.setattr(starter, "_mesh_folders", lambda: ())
    path = shared_tmp / "from_file.yaml"
    assert init("from_file", "-o", str(path)) == 2
    assert not path.exists()
    if MPI.COMM_WORLD.rank == 0:
        assert "meshes/li_llzo_void_um.vtu" in capsys.readouterr().err


def _cli_has_init() -> bool:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        return cli._parser().parse_args(["init", "planar"]).command == "init"
    return False


@pytest.mark.skipif(not _cli_has_init(), reason="ecm-fem init is not wired into cli.py yet")
def test_through_the_command_line(shared_tmp):
    path = shared_tmp / "planar.yaml"
    assert cli.main(["init", "planar", "-o", str(path)]) == 0
    assert cli.main(["init", "planar", "-o", str(path)]) == 2
    assert cli.main(["validate", str(path)]) == 0


def test_planar_starter_runs(shared_tmp):
    path = shared_tmp / "planar.yaml"
    assert init("planar", "-o", str(path)) == 0
    run_dir = shared_tmp / "run"
    assert cli.main(["run", str(path), "--set", "time.t_end=10", "-o", str(run_dir)]) == 0
    assert (run_dir / "history.csv").is_file()
