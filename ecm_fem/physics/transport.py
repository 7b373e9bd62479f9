"""Binary-salt transport in polymer or liquid electrolytes: concentrated-solution theory for a
1:1 salt (Newman, Electrochemical Systems, 3rd ed., ch. 12-13), with the potential phi [V]
measured against a Li reference electrode at the local concentration c [mol/m^3].

    i = -kappa grad phi + (2 kappa R T / F) (1 - t+) (1 + dln f/dln c) grad ln c   [A/m^2]
    N_- = -D grad c - (1 - t+) i / F                         (anion flux, mol/(m^2 s))
    dc/dt + div N_- = 0,   div i = 0

With div i = 0 the salt balance is dc/dt = div(D grad c) - i . grad(t+) / F, the form of the
issue. The anion does not react: N_- . n = 0 on every Li electrode and on every boundary of the
binary region (to a single-ion conductor, a side, a void). Written for the anion, the salt
balance therefore has natural boundary conditions only, and its weak form (test function w)

    int (c - c_n)/dt w dx + int (D grad c + (1 - t+) i / F) . grad w dx = 0

holds the reaction's salt source at a Li interface, (1 - t+) i_n / F, without a boundary term,
and conserves int c dx exactly (w = 1). The charge balance keeps the single-ion weak form with
the diffusion-potential term added:

    int kappa grad phi . grad v dx - int (2 kappa/f) (1 - t+) TDF grad(c)/c . grad v dx
        - int i_n v ds = 0,        f = F / (R T), TDF = 1 + dln f/dln c.

With t+ = 1 the salt decouples (pure diffusion with no-flux walls: c stays at its uniform start)
and the diffusion-potential term vanishes, so the single-ion problem is recovered exactly.

Properties (kappa, D, t+, TDF) are numbers or expressions of c, e.g. "1e-2 * c / 1000"
(``ConcentrationFunction``): names c, exp, log, sqrt, tanh, pi; operators + - * / **.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import ufl

from ecm_fem.constants import FARADAY

_FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "exp": (ufl.exp, np.exp), "log": (ufl.ln, np.log), "sqrt": (ufl.sqrt, np.sqrt),
    "tanh": (ufl.tanh, np.tanh),
}
_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b,
}


class ConcentrationFunction:
    """A material property given as a formula in the salt concentration c [mol/m^3].

    The text is parsed once (Python expression syntax, only the names and operators of the
    module docstring); a ValueError names what is not allowed. ``ufl(c)`` gives the UFL
    expression, ``numpy(c)`` the values."""

    def __init__(self, text: str):
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"'{text}' is not a formula in c: {exc.msg}") from None
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            pass
        elif isinstance(node, ast.Name) and node.id in ("c", "pi"):
            pass
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _FUNCTIONS and len(node.args) == 1 and not node.keywords):
            self._check(node.args[0])
        else:
            raise ValueError(f"'{self.text}': '{ast.unparse(node)}' is not allowed in a formula "
                             f"in c (use numbers, c, pi, {', '.join(_FUNCTIONS)}, + - * / **)")

    def _eval(self, node: ast.AST, c: Any, which: int) -> Any:
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](self._eval(node.left, c, which),
                                             self._eval(node.right, c, which))
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, c, which)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return c if node.id == "c" else math.pi
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id][which](self._eval(node.args[0], c, which))

    def ufl(self, c: Any) -> Any:
        return self._eval(self._tree, c, 0)

    def numpy(self, c: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self._eval(self._tree, np.asarray(c, dtype=float), 1)) \
                + 0.0 * np.asarray(c, dtype=float)


def property_value(value: float | str) -> float | ConcentrationFunction:
    """A number, or the ConcentrationFunction of a formula text."""
    return ConcentrationFunction(value) if isinstance(value, str) else float(value)


def check_property(value: float | str, name: str, c_range: tuple[float, float],
                   low: float, high: float) -> None:
    """Raise a ValueError unless ``value`` (number or formula) lies in [low, high] over the
    concentrations ``c_range`` (checked at 201 points)."""
    prop = property_value(value)
    c = np.linspace(*c_range, 201)
    values = prop.numpy(c) if isinstance(prop, ConcentrationFunction) else np.array([prop])
    bad = ~np.isfinite(values) | (values < low) | (values > high)
    if bad.any():
        where = f" at c = {c[np.argmax(bad)]:g} mol/m^3" if len(values) > 1 else ""
        raise ValueError(f"{name} = {values[np.argmax(bad)]:g}{where} is outside "
                         f"[{low:g}, {high:g}]")


def current_density(phi: Any, c: Any, kappa: Any, t_plus: Any, tdf: Any, f: float,
                    binary: Any = 1.0) -> Any:
    """i [A/m^2]; ``binary`` (1 in binary cells, 0 elsewhere) switches the diffusion potential
    off in single-ion conductors."""
    return -kappa * ufl.grad(phi) \
        + binary * (2.0 * kappa / f) * (1.0 - t_plus) * tdf * ufl.grad(c) / c


def diffusion_potential_residual(c: Any, v: Any, kappa: Any, t_plus: Any, tdf: Any, f: float,
                                 dx: ufl.Measure) -> ufl.Form:
    """The term the binary electrolyte adds to the charge-conservation residual
    ``electrochemistry.ohmic_residual`` (int -i . grad v = int kappa grad phi . grad v - this),
    with ``dx`` restricted to the binary cells."""
    return -(2.0 * kappa / f) * (1.0 - t_plus) * tdf \
        * ufl.inner(ufl.grad(c) / c, ufl.grad(v)) * dx


def salt_residual(c: Any, c_n: Any, dt: Any, w: Any, D: Any, t_plus: Any, i: Any,
                  dx: ufl.Measure) -> ufl.Form:
    """The anion balance of the module docstring [mol/s per unit depth in 2D]."""
    return ((c - c_n) / dt * w
            + ufl.inner(D * ufl.grad(c) + (1.0 - t_plus) * i / FARADAY, ufl.grad(w))) * dx


def sand_time(D: float, c0: float, i: float, t_plus: float) -> float:
    """Sand's time [s] of a semi-infinite binary electrolyte under constant current density i:
    tau = pi D (c0 F)^2 / (4 (i (1 - t+))^2) (Bard & Faulkner, Electrochemical Methods, 2nd ed.,
    eq. 8.2.14, with the migration share t+ of the current)."""
    return math.pi * D * (c0 * FARADAY) ** 2 / (4.0 * (i * (1.0 - t_plus)) ** 2)


def limiting_current(D: float, c0: float, L: float, t_plus: float) -> float:
    """Steady limiting current density [A/m^2] of a Li | binary electrolyte | Li cell of
    thickness L: i_lim = 2 F D c0 / ((1 - t+) L) (VERIFICATION.md EC-3)."""
    return 2.0 * FARADAY * D * c0 / ((1.0 - t_plus) * L)


def depletion_time(times: np.ndarray, c_surface: np.ndarray, c_stop: float) -> float:
    """The time at which the surface concentration reaches 0, from the last two samples that
    straddle ``c_stop``: linear in sqrt(t), the exact shape of the semi-infinite constant-current
    solution c_s = c0 - 2 (1 - t+) i sqrt(t / (pi D)) / F."""
    s = np.sqrt(np.asarray(times, dtype=float))
    c = np.asarray(c_surface, dtype=float)
    k = int(np.argmax(c <= c_stop))
    if c[k] > c_stop:
        raise ValueError("the surface concentration never reached the stop value")
    if k == 0:
        return float(times[0])
    slope = (c[k] - c[k - 1]) / (s[k] - s[k - 1])
    return float((s[k] - c[k] / slope) ** 2) if slope < 0 else float(times[k])
