"""Config validation: errors name the key path and the YAML line; good configs resolve."""

from __future__ import annotations

import pytest

from ecm_fem.config import ConfigError, RunConfig, config_from_text, dump_config


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "test.yaml")
    return str(info.value)


def test_defaults_resolve_and_round_trip():
    cfg = config_from_text("name: a\n")
    again = config_from_text(dump_config(cfg))
    assert again == cfg
    assert cfg.control.current_density == -10.0


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("geometry:\n  widht: 1.0e-5\n", "geometry.widht", 2),
        ("geometry:\n  width: -1.0e-5\n", "geometry.width", 2),
        ("geometry:\n  width: abc\n", "geometry.width", 2),
        ("kinetics:\n  i0: 51\n  alpha_a: 2\n", "kinetics.alpha_a", 3),
        ("control:\n  mode: galvanostatic\n  current_density: 1.0e6\n",
         "control.current_density", 3),
        ("temperature: 25\n", "temperature", 1),
        ("materials:\n  electrolyte: unobtainium\n", "materials.electrolyte.base", 2),
        ("materials:\n  electrolyte: {base: llzo, youngs_modulus: 150}\n",
         "materials.electrolyte.youngs_modulus", 2),
        ("time:\n  t_end: 10\n  dt: 100\n", "time", 1),
        ("solver:\n  linear_solver: magic\n", "solver.linear_solver", 2),
        ("bogus_section: {}\n", "bogus_section", 1),
    ],
)
def test_errors_name_key_and_line(text, key, line):
    msg = _error(text)
    assert f"{key} (line {line})" in msg, msg


def test_yaml_syntax_error_gives_line():
    msg = _error("geometry:\n  width: [1\nkinetics: {}\n")
    assert "YAML syntax error" in msg and "line" in msg


def test_interface_mesh_larger_than_domain_rejected():
    msg = _error("geometry:\n  width: 1.0e-6\n  interface_mesh_size: 2.0e-6\n"
                 "  mesh_size: 2.0e-6\n")
    assert "geometry" in msg and "interface_mesh_size" in msg


def test_current_steps():
    cfg = RunConfig.model_validate(
        {"control": {"steps": [{"until": 10, "current_density": -1},
                               {"until": 20, "current_density": 2}]}})
    assert cfg.control.current_at(5) == -1
    assert cfg.control.current_at(10) == -1
    assert cfg.control.current_at(15) == 2
    assert cfg.control.current_at(25) == 2


def test_cycling_expands_into_steps():
    """2 cycles of plating then stripping at 3 A/m^2, 10 s each, 5 s rest after each half
    cycle; the resolved config (which carries both) loads again."""
    cfg = RunConfig.model_validate({"control": {"cycling": {
        "current_density": 3.0, "half_period": 10.0, "cycles": 2, "rest": 5.0}}})
    ends = [s.until for s in cfg.control.steps]
    assert ends == [10, 15, 25, 30, 40, 45, 55, 60]
    assert [cfg.control.current_at(t) for t in (5, 12, 20, 28, 35, 50, 58)] == \
        [-3, 0, 3, 0, -3, 3, 0]
    again = config_from_text(dump_config(cfg))
    assert again.control.steps == cfg.control.steps
    with pytest.raises(ConfigError, match="cycling"):
        config_from_text("control:\n  cycling: {current_density: 1, half_period: 1}\n"
                         "  steps: [{until: 1, current_density: 2}]\n")
    with pytest.raises(ConfigError, match="half_period"):
        config_from_text("control:\n  cycling: {current_density: 1, half_period: -1}\n")


@pytest.mark.parametrize("path", sorted(
    (__import__("pathlib").Path(__file__).parents[1] / "configs").glob("*.yaml")),
    ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    from ecm_fem.config import load_config

    load_config(path)
