"""``ecm-fem sweep``: one config over a grid of parameters, and critical values by bisection.

Grid mode runs the full Cartesian product of the parameters (dotted config keys, each with a
list of values) and writes one row per run to ``sweep.csv``: the parameter values, whether the
run converged (and why not), and for each result column of history.csv its final value and its
maximum and minimum over time (``<column>_final``, ``_max``, ``_min``). Critical mode finds, for
every point of the remaining grid, the value of one parameter (typically
``control.current_density``) at which a criterion on a history column is first met, by
bisection; ``sweep.csv`` then holds one row per point and ``runs.csv`` every run.

A criterion is ``COLUMN>=THRESHOLD`` or ``COLUMN<=THRESHOLD`` on a history.csv column, in the
column's SI unit (KI_over_KIc_flaw is dimensionless, max_p_li in Pa, V_we in V). It is met by a
run when any accepted time step satisfies it: the maximum over time is >= the threshold, or the
minimum over time is <= it. The bracket ``[a, b]`` is two values of the parameter of the same
sign (one may be 0); the *weak end* is the one of smaller magnitude, where the criterion must not
be met, the *strong end* the one of larger magnitude, where it must be. So a plating current
(negative, A/m^2) is bracketed as ``[-1, -100]`` and a stripping current as ``[1, 100]``; the
criterion is assumed monotone in the magnitude. The strong end runs first, then the weak end,
then midpoints: geometric (sign * sqrt(|a b|)) when neither end is 0, arithmetic otherwise,
until |strong - weak| <= rtol |strong| or max_runs runs. The reported critical value is the
midpoint of the final bracket. If the criterion is not met at the strong end, or already met at
the weak end, the row says so and gives no value. A run that fails (solver failure) before the
criterion is met, or whose column has no finite value, leaves the answer undetermined: the
bisection of that point stops and says so. The row's ``status`` is one of found, max_runs (a
bracket, wider than rtol), not_met, met_at_weak_end, run_failed, undetermined.

Runs are distributed over groups of ``ranks_per_run`` ranks (MPI.COMM_WORLD split by colour;
ranks beyond a multiple of ranks_per_run join the last group); grid points go round-robin to the
groups, the bisection of one point is sequential inside its group. After every round of points
rank 0 prints progress and rewrites the tables, so an interrupted sweep keeps what it finished;
ranks waiting for the round's slowest group sleep instead of spinning in MPI. Each run goes into
``<output>/<NNN>_<key>=<value>_.../`` (critical mode: one folder per point, one sub-folder per
run), names that do not depend on the number of ranks.

A sweep file is YAML with the keys ``config`` (the base run config, relative to the sweep file),
``set`` (dotted key -> value for every run), ``parameters`` (dotted key -> list of values),
``critical`` (``parameter``, ``criterion``, ``bracket``, ``rtol``, ``max_runs``), ``results``
(history columns to tabulate), ``plot`` (a sweep.csv column), ``output`` (relative to the working
directory) and ``ranks_per_run``; command-line options override it (``--param`` replaces one
parameter's values, ``--set`` applies after the file's ``set``).

Every point is validated (the same override mechanism as ``ecm-fem run --set``) before anything
runs: a bad key or value is a ``ConfigError`` naming the key. A run that fails (solver failure,
or a config that validates but cannot be built) is a row with ``converged`` false and its reason;
it does not stop the sweep. Other errors stop it, except in groups of one rank, where they cannot
leave a partner rank waiting and are recorded like failures (with the traceback in the run
folder's ``error.txt``).
"""

from __future__ import annotations

import argparse
import csv
import gc
import io as _io
import itertools
import json
import logging
import math
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecm_fem.config import ConfigError, RunConfig, config_from_text, parse_overrides

if TYPE_CHECKING:
    from mpi4py import MPI

log = logging.getLogger("ecm_fem")

DEFAULT_RTOL = 0.02
DEFAULT_MAX_RUNS = 16
STATS = ("final", "max", "min")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CRITERION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=)\s*(\S+)\s*$")


# ----------------------------------------------------------------------------- specification
@dataclass(frozen=True)
class Criterion:
    """``column op threshold`` on a history.csv column; met when any step satisfies it."""

    column: str
    op: str  # ">=" or "<="
    threshold: float

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.threshold:g}"

    def extreme(self, values: list[float]) -> float:
        """The value over time that decides: the max for >=, the min for <= (nan if none)."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if self.op == ">=" else min(finite)

    def met(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


def parse_criterion(text: str) -> Criterion:
    """``"KI_over_KIc_flaw>=1"`` -> Criterion; raises ConfigError."""
    m = _CRITERION.match(text or "")
    if not m or not _NUMBER.match(m.group(3)):
        raise ConfigError(f"criterion {text!r}: expected COLUMN>=NUMBER or COLUMN<=NUMBER, e.g. "
                          "'KI_over_KIc_flaw>=1' (a history.csv column, in its SI unit)")
    return Criterion(m.group(1), m.group(2), float(m.group(3)))


@dataclass
class CriticalSpec:
    """The parameter to bisect, the criterion and the bracket (see the module docstring)."""

    key: str
    criterion: Criterion
    bracket: tuple[float, float]
    rtol: float = DEFAULT_RTOL
    max_runs: int = DEFAULT_MAX_RUNS

    @property
    def weak(self) -> float:
        return min(self.bracket, key=abs)

    @property
    def strong(self) -> float:
        return max(self.bracket, key=abs)


@dataclass
class SweepSpec:
    """Everything a sweep needs, from a sweep file and/or the command line."""

    config: Path
    overrides: list[tuple[str, Any]] = field(default_factory=list)
    parameters: dict[str, list[Any]] = field(default_factory=dict)
    critical: CriticalSpec | None = None
    results: list[str] | None = None
    plot: str | None = None
    output: Path | None = None
    ranks_per_run: int = 1


class _CriticalFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parameter: str = Field(description="dotted config key to bisect, e.g. control.current_density")
    criterion: str = Field(description="COLUMN>=NUMBER or COLUMN<=NUMBER on a history column")
    bracket: tuple[float, float] = Field(description="two values of the parameter, same sign")
    rtol: float = Field(DEFAULT_RTOL, gt=0, lt=1, description="relative tolerance of the "
                        "critical value's magnitude")
    max_runs: int = Field(DEFAULT_MAX_RUNS, ge=2, le=200, description="runs per point at most")


class _SweepFile(BaseModel):
    """The YAML sweep file (paths relative to the file's folder, except ``output``, which is
    relative to the working directory like a config's output.dir)."""

    model_config = ConfigDict(extra="forbid")
    config: str = Field(description="the base run config")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted key -> value, "
                                "applied to every run (like ecm-fem run --set)")
    parameters: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> "
                                             "list of values: the grid")
    critical: _CriticalFile | None = None
    results: list[str] | None = None
    plot: str | None = None
    output: str | None = None
    ranks_per_run: int = Field(1, ge=1)


def _typed(value: Any) -> Any:
    """YAML leaves '1e5' a string (YAML 1.1 wants '1.0e+5'): make numeric strings floats."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"control.current_density=-1,-2,-5"`` (or ``key=[...]`` in YAML) -> (key, values)."""
    if "=" not in text:
        raise ConfigError(f"--param {text!r}: expected key.path=value1,value2,...")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        values = yaml.safe_load(raw if raw.startswith("[") else f"[{raw}]")
    except yaml.YAMLError as exc:
        raise ConfigError(f"--param {key}: cannot read the values {raw!r} ({exc})") from None
    if not isinstance(values, list) or not values:
        raise ConfigError(f"--param {key}: give one or more comma-separated values")
    return key, [_typed(v) for v in values]


def read_sweep_file(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the parsed sweep file, the text) or (None, text) when ``path`` is a run config (a run
    config never has a top-level ``config`` key, a sweep file always has)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None
    if isinstance(data, dict) and "config" in data:
        return data, text
    return None, text


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """Merge a sweep file (if ``args.spec`` is one) with the command-line options; the command
    line wins (--param replaces a parameter's values, --set is applied after the file's set)."""
    path = Path(args.spec)
    data, _ = read_sweep_file(path)
    if data is not None:
        try:
            f = _SweepFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<top level>'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                + (" (unknown key)" if e["type"] == "extra_forbidden" else "")
                for e in exc.errors())
            raise ConfigError(f"{path}: invalid sweep file: {problems}") from None
        spec = SweepSpec(config=(path.parent / f.config), overrides=list(f.set.items()),
                         parameters={k: [_typed(v) for v in vs] for k, vs in f.parameters.items()},
                         results=f.results, plot=f.plot,
                         output=Path(f.output) if f.output else None,
                         ranks_per_run=f.ranks_per_run)
        for key, values in spec.parameters.items():
            if not values:
                raise ConfigError(f"{path}: parameters.{key}: give at least one value")
        if f.critical is not None:
            fc = f.critical
            spec.critical = CriticalSpec(fc.parameter, parse_criterion(fc.criterion),
                                         fc.bracket, fc.rtol, fc.max_runs)
        default_out = Path("results") / path.stem
    else:
        spec = SweepSpec(config=path)
        default_out = None
    spec.overrides += parse_overrides(args.overrides)
    for text in args.params:
        key, values = parse_param(text)
        spec.parameters[key] = values
    if args.critical or args.criterion or args.bracket:
        c = spec.critical
        key = args.critical or (c.key if c else None)
        crit_text = args.criterion
        if not key or not (crit_text or c):
            raise ConfigError("critical mode needs --critical KEY and --criterion "
                              "'COLUMN>=NUMBER' (and --bracket A B)")
        criterion = parse_criterion(crit_text) if crit_text else c.criterion  # type: ignore[union-attr]
        same = c is not None and c.key == key
        bracket = tuple(args.bracket) if args.bracket else (c.bracket if same else None)
        if bracket is None:
            raise ConfigError(f"--critical {key}: give the bracket with --bracket A B (two "
                              "values of the parameter: not met at the smaller magnitude, met "
                              "at the larger)")
        spec.critical = CriticalSpec(key, criterion, bracket,  # type: ignore[arg-type]
                                     c.rtol if c else DEFAULT_RTOL,
                                     c.max_runs if c else DEFAULT_MAX_RUNS)
    if spec.critical is not None:
        if args.rtol is not None:
            spec.critical.rtol = args.rtol
        if args.max_runs is not None:
            spec.critical.max_runs = args.max_runs
    if args.results:
        spec.results = [c.strip() for c in args.results.split(",") if c.strip()]
    spec.plot = args.plot or spec.plot
    if args.ranks_per_run is not None:
        spec.ranks_per_run = args.ranks_per_run
    if args.output:
        spec.output = Path(args.output)
    elif spec.output is None:
        spec.output = default_out
    return spec


# ----------------------------------------------------------------------------- validation
def _default_results(columns: list[str], criterion: Criterion | None) -> list[str]:
    preferred = [c for c in columns if c.startswith("KI_over_KIc_")]
    preferred += ["focusing_factor", "max_p_li", "max_vm_electrolyte", "V_we", "i_max"]
    out = [criterion.column] if criterion else []
    out += [c for c in preferred if c in columns and c not in out]
    return out


@dataclass
class Point:
    """One point of the grid: its index, parameter values and validated config (with the
    critical parameter at the weak end, in critical mode)."""

    index: int
    values: dict[str, Any]
    config: RunConfig
    name: str


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last component of each key, or the whole key where two share a last component."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def format_value(value: Any) -> str:
    """A parameter value as it appears in folder names and progress lines."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:.6g}"
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")
    return text[:40] or "x"


def _label(values: dict[str, Any], short: dict[str, str], sep: str = "_") -> str:
    return sep.join(f"{short[k]}={format_value(v)}" for k, v in values.items())


def _validate(base_text: str, source: str, overrides: list[tuple[str, Any]], what: str
              ) -> RunConfig:
    try:
        return config_from_text(base_text, source, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _check_section(base: RunConfig, key: str, option: str) -> None:
    """A parameter under a section the base config leaves out (mechanics: none) would switch
    that section on with defaults: say so instead."""
    node: Any = base.model_dump(mode="json")
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            return  # an unknown key: the validation names it
        node = node[part]
        if node is None:
            section = ".".join(parts[:depth + 1])
            raise ConfigError(f"{option} {key}: the base config has no '{section}' section; "
                              f"add one (e.g. --set {section}={{}}) to sweep its keys")


def plan(spec: SweepSpec) -> tuple[list[Point], list[str], list[str]]:
    """Validate every point before anything runs. Returns the points, the result columns and
    the union of the points' history columns; raises ConfigError naming the key."""
    try:
        base_text = spec.config.read_text()
    except OSError as exc:
        raise ConfigError(f"{spec.config}: cannot read the config ({exc.strerror})") from None
    source = str(spec.config)
    base = _validate(base_text, source, spec.overrides, "base config")
    crit = spec.critical
    keys = list(spec.parameters)
    if crit is None and not keys:
        raise ConfigError("nothing to sweep: give parameters (--param KEY=V1,V2,... or a "
                          "sweep file's parameters:) or a critical parameter (--critical)")
    for key in keys:
        _check_section(base, key, "--param")
    if crit is not None:
        _check_section(base, crit.key, "--critical")
        if crit.key in spec.parameters:
            raise ConfigError(f"--critical {crit.key}: it is also a grid parameter (--param); "
                              "the bisection sets it")
        a, b = crit.bracket
        if a * b < 0 or abs(a) == abs(b):
            raise ConfigError(f"--bracket {a:g} {b:g}: the ends must have the same sign (one may "
                              "be 0) and different magnitudes (plating currents are negative: "
                              "--bracket -1 -100)")
    short = _short_names(keys)
    points: list[Point] = []
    columns: list[str] = []
    for index, combo in enumerate(itertools.product(*spec.parameters.values())):
        values = dict(zip(keys, combo, strict=True))
        label = _label(values, short)
        overrides = spec.overrides + list(values.items())
        where = f"sweep point {index} ({label or 'base'})"
        if crit is None:
            config = _validate(base_text, source, overrides, where)
        else:
            for end in (crit.strong, crit.weak):
                config = _validate(base_text, source, overrides + [(crit.key, end)],
                                   f"{where}, {crit.key}={end:g}")
        _check_control(config, [*keys, *([crit.key] if crit else [])])
        from ecm_fem.io import history_columns

        columns += [c for c in history_columns(config) if c not in columns]
        name = f"{index:03d}" + (f"_{label}" if label else "")
        points.append(Point(index, values, config, name))
    if crit is not None and crit.criterion.column not in columns:
        raise ConfigError(f"criterion {crit.criterion}: '{crit.criterion.column}' is not a "
                          f"history column of this config (columns: {', '.join(columns)})")
    results = spec.results or _default_results(columns, crit.criterion if crit else None)
    unknown = [c for c in results if c not in columns]
    if unknown:
        raise ConfigError(f"results: {', '.join(unknown)} not among the history columns of this "
                          f"config ({', '.join(columns)})")
    return points, results, columns


def _check_control(config: RunConfig, keys: list[str]) -> None:
    """Sweeping control.current_density does nothing under steps or potentiostatic control."""
    if "control.current_density" not in keys:
        return
    if config.control.steps:
        source = "cycling" if config.control.cycling is not None else "steps"
        raise ConfigError(f"control.current_density: the config's control.{source} override "
                          f"it; drop them to sweep the current (--set control.{source}=null)")
    if config.control.mode.value != "galvanostatic":
        raise ConfigError("control.current_density: only galvanostatic control applies it "
                          "(control.mode is potentiostatic)")


# ----------------------------------------------------------------------------- running
def split_groups(comm: MPI.Comm, ranks_per_run: int) -> tuple[MPI.Comm, int, int]:
    """(group communicator, group index, number of groups): consecutive ranks in groups of
    ``ranks_per_run``; leftover ranks join the last group."""
    n_groups = max(1, comm.size // max(1, ranks_per_run))
    color = min(comm.rank // max(1, ranks_per_run), n_groups - 1)
    return comm.Split(color, comm.rank), color, n_groups


def _read_history(run_dir: Path) -> dict[str, list[float]]:
    path = run_dir / "history.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            try:
                out.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                out.setdefault(k, []).append(math.nan)
    return out


def _stats(history: dict[str, list[float]], results: list[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for column in results:
        values = [v for v in history.get(column, []) if math.isfinite(v)]
        final = history.get(column, [])
        out[f"{column}_final"] = final[-1] if final and math.isfinite(final[-1]) else None
        out[f"{column}_max"] = max(values) if values else None
        out[f"{column}_min"] = min(values) if values else None
    return out


class _QuietRuns:
    """Keeps the runs' step logs out of the terminal (they stay in each run.log) and restores
    the logger afterwards (simulation.run raises its level on every run's rank 0)."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def __enter__(self) -> None:
        self.level = log.level
        self.handlers = [(h, h.level) for h in log.handlers
                         if isinstance(h, logging.StreamHandler)
                         and not isinstance(h, logging.FileHandler)]
        if not self.verbose:
            for h, _ in self.handlers:
                h.setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc: object) -> None:
        log.setLevel(self.level)
        for h, level in self.handlers:
            h.setLevel(level)


def run_one(config: RunConfig, run_dir: Path, group: MPI.Comm, results: list[str],
            verbose: bool = False) -> dict[str, Any]:
    """One run on ``group`` into ``run_dir``; returns (on every rank of the group) converged,
    reason, steps, final time, wall time [s], the result statistics and the full history of
    the result columns. A failure is returned, not raised (see the module docstring)."""
    from ecm_fem import simulation
    from ecm_fem.solver import SolverError

    t0 = time.perf_counter()
    reason = ""
    with _QuietRuns(verbose):
        try:
            simulation.run(config, run_dir, group, overwrite=True)
        except SolverError as exc:
            reason = f"solver failure: {exc}"
        except (ValueError, KeyError) as exc:  # validates but cannot be built (cli.py: exit 2)
            reason = "config error: " + str(exc).strip("'\"")
        except Exception as exc:
            if group.size > 1:
                raise  # a partner rank may be waiting in a collective call: let the CLI abort
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(traceback.format_exc())
    gc.collect()  # collective PETSc destructors of this run, in step on the group
    record: dict[str, Any] | None = None
    if group.rank == 0:
        history = _read_history(run_dir)
        steps = len(history.get("step", []))
        record = {
            "converged": not reason,
            "reason": " ".join(reason.split()),
            "steps": steps,
            "t_final": history["time"][-1] if steps else None,
            "wall_s": round(time.perf_counter() - t0, 3),
            **_stats(history, results),
            "history": {c: history.get(c, []) for c in results},
        }
    return group.bcast(record, root=0)


def _midpoint(a: float, b: float) -> float:
    if a == 0 or b == 0:
        return 0.5 * (a + b)
    return math.copysign(math.sqrt(abs(a * b)), b)


def bisect_point(point: Point, spec: SweepSpec, point_dir: Path, group: MPI.Comm,
                 results: list[str], base_text: str, verbose: bool = False,
                 progress: Callable[[str], None] | None = None
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The critical value of ``spec.critical`` at one grid point: (its row, the runs' rows).
    ``progress`` gets a line per run."""
    crit = spec.critical
    assert crit is not None
    short = _short_names([crit.key])[crit.key]
    runs: list[dict[str, Any]] = []
    overrides = spec.overrides + list(point.values.items())

    def evaluate(value: float) -> tuple[bool | None, dict[str, Any]]:
        config = config_from_text(base_text, str(spec.config), overrides + [(crit.key, value)])
        run_dir = point_dir / f"run{len(runs) + 1:02d}_{short}={format_value(value)}"
        rec = run_one(config, run_dir, group, results, verbose)
        value_c = crit.criterion.extreme(rec["history"].get(crit.criterion.column, []))
        met: bool | None = crit.criterion.met(value_c)
        if not met and not (rec["converged"] and math.isfinite(value_c)):
            met = None  # stopped before the criterion was met, or nothing to judge: undetermined
        rec.update({"value": value, "met": met,
                    "criterion_value": value_c if math.isfinite(value_c) else None,
                    "run_dir": str(run_dir)})
        runs.append(rec)
        if progress is not None:
            state = {True: "met", False: "not met", None: "undetermined"}[met]
            progress(f"    {point.name} run {len(runs)}: {crit.key} = {value:.6g}: "
                     f"{crit.criterion.column} reaches {_fmt(rec['criterion_value'])}, {state} "
                     f"({rec['wall_s']:.1f} s)")
        return met, rec

    # the bracket as established so far: not met at not_met[0], met at met[0]
    not_met: tuple[float | None, float | None] = (None, None)
    met_at: tuple[float | None, float | None] = (None, None)
    status, reason = "found", ""

    def run(value: float, where: str) -> bool | None:
        nonlocal not_met, met_at, status, reason
        met, rec = evaluate(value)
        if met is None and not rec["converged"]:
            status = "run_failed"
            reason = (f"the run at {where}{crit.key}={value:g} failed before the criterion "
                      f"was met: {rec['reason']}")
        elif met is None:
            status = "undetermined"
            reason = (f"the run at {where}{crit.key}={value:g} has no finite value of "
                      f"{crit.criterion.column} to judge the criterion by")
        elif met:
            met_at = (value, rec["criterion_value"])
        else:
            not_met = (value, rec["criterion_value"])
        return met

    met = run(crit.strong, "the strong end ")
    if met is False:
        status = "not_met"
        reason = (f"{crit.criterion} is not met at the strong end {crit.key}={crit.strong:g} "
                  f"({crit.criterion.column} reaches {_fmt(not_met[1])}): the critical value "
                  "lies beyond the bracket")
    elif met:
        met = run(crit.weak, "the weak end ")
        if met:
            status = "met_at_weak_end"
            reason = (f"{crit.criterion} is already met at the weak end {crit.key}="
                      f"{crit.weak:g} ({crit.criterion.column} reaches {_fmt(met_at[1])}): "
                      "the critical value lies below the bracket")
    while status == "found":
        weak, strong = not_met[0], met_at[0]
        assert weak is not None and strong is not None
        if abs(strong - weak) <= crit.rtol * abs(strong):
            break
        if len(runs) >= crit.max_runs:
            status = "max_runs"
            reason = (f"{crit.max_runs} runs without reaching rtol = {crit.rtol:g}; the "
                      "critical value lies in the bracket")
            break
        run(_midpoint(weak, strong), "")
    found = status in ("found", "max_runs")
    row = {
        "status": status,
        "bracket_found": found,
        "critical": _midpoint(not_met[0], met_at[0]) if found else None,  # type: ignore[arg-type]
        "not_met_at": not_met[0],
        "met_at": met_at[0],
        "criterion_not_met": not_met[1],
        "criterion_met": met_at[1],
        "runs": len(runs),
        "failed_runs": sum(not r["converged"] for r in runs),
        "wall_s": round(sum(r["wall_s"] for r in runs), 3),
        "reason": reason,
    }
    return row, runs


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4g}"


# ----------------------------------------------------------------------------- output
def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return _cell(value.item())
    return value


def _write_table(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    from ecm_fem.io import write_atomic

    out = _io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k)) for k in columns})
    write_atomic(path, out.getvalue())


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def plot_sweep(out_dir: Path, rows: list[dict[str, Any]], keys: list[str], quantity: str,
               runs: list[dict[str, Any]] | None = None, crit: CriticalSpec | None = None
               ) -> Path:
    """``sweep.png``: ``quantity`` (a sweep.csv column) against the first parameter, one line
    per value of the others (hollow markers: runs that did not converge). In critical mode the
    default quantity is |critical| with the final bracket as error bar, a triangle up at the
    strong end where the criterion was not met (the critical value lies above), down at the weak
    end where it was already met; a second panel shows the criterion's value against the
    bisected parameter for every run, with the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (1 if keys else 0) + (1 if runs is not None else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(6.5 * max(panels, 1), 4.5),
                             layout="constrained", squeeze=False)
    magnitude = crit is not None and quantity == "critical"
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = {r["point"]: _label({k: r[k] for k in keys}, _short_names(keys), ", ") or "base"
              for r in rows}
    k = 0
    if keys:
        ax = axes[0, k]
        k += 1
        x_key, others = keys[0], keys[1:]
        xs_all = [r[x_key] for r in rows]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs_all)
        categories = list(dict.fromkeys(map(str, xs_all)))
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r[o] for o in others), []).append(r)
        for n, (combo, members) in enumerate(groups.items()):
            members = sorted(members, key=lambda r: r[x_key] if numeric else
                             categories.index(str(r[x_key])))
            xs = [r[x_key] if numeric else categories.index(str(r[x_key])) for r in members]
            label = ", ".join(f"{o.rsplit('.', 1)[-1]} = {format_value(v)}"
                              for o, v in zip(others, combo, strict=True)) or None
            color = cycle[n % len(cycle)]
            if magnitude:
                pts = [(x, abs(r["critical"]), abs(r["not_met_at"]), abs(r["met_at"]))
                       for x, r in zip(xs, members, strict=True) if r["critical"] is not None]
                if pts:
                    ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                                yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                                fmt="o-", color=color, capsize=3, label=label)
                    label = None
                above = [(x, abs(r["not_met_at"])) for x, r in zip(xs, members, strict=True)
                         if r["status"] == "not_met"]
                below = [(x, abs(r["met_at"])) for x, r in zip(xs, members, strict=True)
                         if r["status"] == "met_at_weak_end"]
                for marks, marker, text in ((above, "^", "not met up to"),
                                            (below, "v", "met already at")):
                    if marks:
                        ax.plot([m[0] for m in marks], [m[1] for m in marks], marker,
                                color=color, ms=9, mfc="none", ls="none",
                                label=f"{label + ': ' if label else ''}{text}")
                continue
            pts = [(x, r.get(quantity), r.get("converged", r.get("bracket_found", True)))
                   for x, r in zip(xs, members, strict=True)]
            pts = [(x, y, ok) for x, y, ok in pts if isinstance(y, int | float)]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=color, label=label)
            for x, y, ok in pts:
                ax.plot(x, y, "o", color=color, mfc=color if ok else "none")
        if numeric and all(v > 0 for v in xs_all) and max(xs_all) >= 100 * min(xs_all):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(x_key)
        if magnitude:
            assert crit is not None
            ax.set_ylabel(f"critical |{crit.key}|")
            ax.set_ylim(0.8 * abs(crit.weak), 1.25 * abs(crit.strong))
            if crit.weak != 0 and abs(crit.strong) >= 100 * abs(crit.weak):
                ax.set_yscale("log")
            ax.set_title(str(crit.criterion), fontsize="medium")
        else:
            ax.set_ylabel(quantity)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    if runs is not None and crit is not None:
        ax = axes[0, k]
        by_point: dict[int, list[dict[str, Any]]] = {}
        for r in runs:
            by_point.setdefault(r["point"], []).append(r)
        for point, members in by_point.items():
            pts = sorted((abs(r[crit.key]), r["criterion_value"]) for r in members
                         if r["criterion_value"] is not None)
            if pts:
                ax.plot([a for a, _ in pts], [b for _, b in pts], "o-",
                        label=labels.get(point, str(point)))
        ax.axhline(crit.criterion.threshold, color="0.4", ls="--", lw=1)
        ax.set_xlabel(f"|{crit.key}|")
        ax.set_ylabel(f"{crit.criterion.column} ({'max' if crit.criterion.op == '>=' else 'min'}"
                      " over time)")
        ax.set_xlim(0.8 * abs(crit.weak), 1.25 * abs(crit.strong))
        if crit.weak != 0 and abs(crit.strong) >= 100 * abs(crit.weak):
            ax.set_xscale("log")
        if len(by_point) > 1:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    path = out_dir / "sweep.png"
    tmp = out_dir / ".sweep.png.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- the sweep
def run_sweep(spec: SweepSpec, comm: MPI.Comm | None = None, overwrite: bool = False,
              verbose: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Validate, run and tabulate a sweep on ``comm`` (default MPI.COMM_WORLD); returns (on
    every rank) the content of sweep.json. Raises ConfigError (before anything runs) for a bad
    spec."""
    from mpi4py import MPI

    comm = comm if comm is not None else MPI.COMM_WORLD
    t0 = time.perf_counter()
    points, results, _ = plan(spec)
    crit = spec.critical
    keys = list(spec.parameters)
    short = _short_names(keys)
    out_dir = spec.output or Path("results") / f"sweep_{points[0].config.name}"
    base_text = spec.config.read_text()
    stats = [f"{c}_{s}" for c in results for s in STATS]
    head = ["point", *keys]
    if crit is None:
        columns = [*head, "converged", "steps", "t_final", "wall_s", *stats, "reason", "run_dir"]
        run_columns: list[str] = []
    else:
        columns = [*head, "status", "bracket_found", "critical", "not_met_at", "met_at",
                   "criterion_not_met", "criterion_met", "runs", "failed_runs", "wall_s",
                   "reason", "dir"]
        run_columns = [*head, crit.key, "met", "criterion_value", "converged", "steps",
                       "t_final", "wall_s", *stats, "reason", "run_dir"]
    rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    quantity = spec.plot or (f"{results[0]}_max" if crit is None else "critical")
    if quantity not in columns:
        raise ConfigError(f"plot: {quantity!r} is not a column of sweep.csv "
                          f"({', '.join(columns)})")
    say = (lambda msg: print(msg, flush=True)) if comm.rank == 0 else (lambda msg: None)
    group, color, n_groups = split_groups(comm, spec.ranks_per_run)
    what = (f"critical {crit.key} for {crit.criterion} in [{crit.weak:g}, {crit.strong:g}] "
            f"(rtol {crit.rtol:g}) at " if crit else "")
    say(f"sweep: {what}{len(points)} point(s) of {spec.config}"
        + (f" over {' x '.join(f'{k} ({len(v)})' for k, v in spec.parameters.items())}"
           if keys else "")
        + f"; {n_groups} group(s) of {group.size} rank(s) -> {out_dir}")
    if dry_run:
        for p in points:
            say(f"  {p.name}")
        group.Free()
        return {"points": len(points), "dry_run": True}
    from ecm_fem.io import prepare_run_dir

    moved = prepare_run_dir(out_dir, comm, overwrite, subfolders=(), key="output")
    if moved:
        say(f"earlier results in {out_dir} were moved to {moved}")
    summary: dict[str, Any] = {}
    for start in range(0, len(points), n_groups):
        k = start + color
        mine: dict[str, Any] | None = None
        if k < len(points):
            p = points[k]
            head_values = {"point": p.index, **p.values}
            if crit is None:
                run_dir = out_dir / p.name
                rec = run_one(p.config, run_dir, group, results, verbose)
                rec.pop("history")
                mine = {"row": {**head_values, **rec, "run_dir": str(run_dir)}, "runs": []}
            else:
                point_dir = out_dir / p.name
                row, runs = bisect_point(p, spec, point_dir, group, results, base_text,
                                         verbose, say)
                for r in runs:
                    r.pop("history")
                    r[crit.key] = r.pop("value")
                mine = {"row": {**head_values, **row, "dir": str(point_dir)},
                        "runs": [{**head_values, **r} for r in runs]}
        _sleep_until_all_arrive(comm)
        gathered = comm.gather(mine if group.rank == 0 else None, root=0)
        if comm.rank == 0:
            for item in gathered:
                if item is None:
                    continue
                rows.append(item["row"])
                run_rows += item["runs"]
                say(_progress(item["row"], len(points), keys, short, crit))
            rows.sort(key=lambda r: r["point"])
            run_rows.sort(key=lambda r: r["point"])
            _write_table(out_dir / "sweep.csv", columns, rows)
            if crit is not None:
                _write_table(out_dir / "runs.csv", run_columns, run_rows)
    if comm.rank == 0:
        all_runs = run_rows if crit is not None else rows
        failed = sum(not r["converged"] for r in all_runs)
        from ecm_fem.simulation import versions

        summary = {
            "mode": "critical" if crit else "grid",
            "config": str(spec.config),
            "set": {k: v for k, v in spec.overrides},
            "parameters": spec.parameters,
            "critical": None if crit is None else {
                "parameter": crit.key, "criterion": str(crit.criterion),
                "bracket": list(crit.bracket), "weak_end": crit.weak,
                "strong_end": crit.strong, "rtol": crit.rtol, "max_runs": crit.max_runs},
            "results": results,
            "ranks": comm.size,
            "ranks_per_run": spec.ranks_per_run,
            "groups": n_groups,
            "runs": len(all_runs),
            "failed_runs": failed,
            "wall_s": round(time.perf_counter() - t0, 3),
            "versions": versions(),
            "commit": _commit(),
            "rows": rows,
            **({"run_rows": run_rows} if crit is not None else {}),
        }
        from ecm_fem.io import json_safe, write_atomic

        write_atomic(out_dir / "sweep.json", json.dumps(json_safe(summary), indent=2) + "\n")
        try:
            plot_sweep(out_dir, rows, keys, quantity, run_rows if crit else None, crit)
        except Exception as exc:  # a figure is never worth a failed sweep
            log.warning("sweep plot not made: %s", exc)
        n_points = f", {sum(r['bracket_found'] for r in rows)} of {len(rows)} point(s) " \
            "bracketed" if crit else ""
        say(f"sweep done: {len(all_runs)} run(s), {failed} failed{n_points}, "
            f"{summary['wall_s']:.1f} s -> {out_dir / 'sweep.csv'}")
    _sleep_until_all_arrive(comm)
    summary = comm.bcast(summary, root=0)
    group.Free()
    return summary


def _sleep_until_all_arrive(comm: MPI.Comm, interval: float = 0.05) -> None:
    """A barrier that sleeps: blocking MPI waits spin, which takes a core from the groups still
    running."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(interval)


def _progress(row: dict[str, Any], n: int, keys: list[str], short: dict[str, str],
              crit: CriticalSpec | None) -> str:
    label = _label({k: row[k] for k in keys}, short, " ") or "base"
    where = f"[{row['point'] + 1}/{n}] {label}:"
    if crit is None:
        state = (f"converged, {row['steps']} step(s)" if row["converged"]
                 else f"FAILED after {row['steps']} step(s): {_short(row['reason'])}")
        return f"{where} {state}, {row['wall_s']:.1f} s"
    if row["bracket_found"]:
        return (f"{where} critical {crit.key} = {row['critical']:.4g} (not met at "
                f"{row['not_met_at']:.4g}, met at {row['met_at']:.4g}; {row['runs']} runs, "
                f"{row['wall_s']:.1f} s){' [max_runs]' if row['status'] == 'max_runs' else ''}")
    return f"{where} no critical value ({row['status']}): {_short(row['reason'])}"


def _short(text: str, limit: int = 240) -> str:
    """A reason cut for the progress line (sweep.csv keeps it whole)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ecm-fem sweep``."""
    parser.add_argument("spec", help="a sweep file (YAML with a top-level 'config:' key) or a "
                        "run config (then give the grid with --param)")
    parser.add_argument("--param", dest="params", action="append", default=[],
                        metavar="KEY=V1,V2,...", help="a grid parameter and its values, e.g. "
                        "--param mechanics.stack_pressure=1.0e5,1.0e6 (repeat for a grid)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value in every run")
    parser.add_argument("--critical", metavar="KEY", help="bisect this parameter, e.g. "
                        "control.current_density (critical mode)")
    parser.add_argument("--criterion", metavar="COL>=X", help="criterion on a history column: "
                        "'KI_over_KIc_flaw>=1', 'max_p_li>=1e8', 'V_we<=-0.1' (SI units)")
    parser.add_argument("--bracket", nargs=2, type=float, metavar=("A", "B"),
                        help="values of the critical parameter, same sign: not met at the "
                        "smaller magnitude, met at the larger (plating: --bracket -1 -100)")
    parser.add_argument("--rtol", type=float, help="relative tolerance of the critical value "
                        f"(default {DEFAULT_RTOL})")
    parser.add_argument("--max-runs", type=int, help="runs per point at most in critical mode "
                        f"(default {DEFAULT_MAX_RUNS})")
    parser.add_argument("--results", metavar="COL,COL", help="history columns tabulated as "
                        "final, max and min (default: K_I/K_Ic, focusing, Li pressure, ...)")
    parser.add_argument("--plot", metavar="COLUMN", help="the sweep.csv column plotted against "
                        "the first parameter (default <first result>_max; critical mode: "
                        "critical)")
    parser.add_argument("--ranks-per-run", type=int, metavar="N", help="ranks per run (default "
                        "1): mpirun -n 4 with 2 runs 2 points at a time")
    parser.add_argument("-o", "--output", help="sweep folder (default: the sweep file's "
                        "output, else results/<sweep file name> or results/sweep_<config name>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing sweep folder instead of moving it aside")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate every point and list them without running")


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """``ecm-fem sweep``: 0 when the sweep completed (also when some runs failed: the table
    says which); raises ConfigError (exit code 2 in cli.py) before anything runs."""
    spec = spec_from_args(args)
    if spec.ranks_per_run < 1:
        raise ConfigError(f"--ranks-per-run {spec.ranks_per_run}: must be at least 1")
    if spec.critical is not None and not 0 < spec.critical.rtol < 1:
        raise ConfigError(f"--rtol {spec.critical.rtol:g}: must lie between 0 and 1")
    if spec.critical is not None and spec.critical.max_runs < 2:
        raise ConfigError(f"--max-runs {spec.critical.max_runs}: at least 2 (the bracket ends)")
    run_sweep(spec, comm, overwrite=args.overwrite, verbose=getattr(args, "verbose", False),
              dry_run=args.dry_run)
    sys.stdout.flush()
    return 0
