"""Rough interface in 2D: the planar Li | electrolyte stack (Li below, electrolyte above,
0 < x < width) with the Li | electrolyte contact on the curve y = f(x) instead of y = 0.

Profiles (both are finite Fourier series f(x) = sum_n a_n cos(k_n x) + b_n sin(k_n x) with zero
mean, so the Li keeps the area width li_thickness and the electrolyte width
electrolyte_thickness):

- ``sinusoidal``: f(x) = amplitude cos(2 pi x / wavelength), a peak (Li bulging into the
  electrolyte) on the symmetry line x = 0. The sides match for periodic lateral boundaries only
  when width is a whole number of wavelengths, and the side x = width is a symmetry line of the
  profile only when width is a whole number of half wavelengths; other widths are allowed (the
  side x = width then cuts the profile on a slope).
- ``random``: a Gaussian random profile periodic over the width (k_n = 2 pi n / width, so
  f(0) = f(width) and periodic sides match), with the Gaussian correlation function
  C(r) = rms^2 exp(-r^2 / correlation_length^2), i.e. the spectral density
  exp(-(k correlation_length / 2)^2): a_n, b_n are independent normal draws (numpy
  ``default_rng(seed)``, drawn mode by mode) with that variance, modes n >= 1 kept while it is
  above 1e-16 of its largest value, and the series then scaled so that its root-mean-square
  height over the width is exactly ``rms``. The correlation function holds for the ensemble
  of seeds and for width >> correlation_length: the zero mean leaves out the k = 0 share,
  about correlation_length sqrt(pi) / width of the variance, and one realisation over a few
  correlation lengths only approximates the ensemble. The profile is not mirror symmetric at
  the sides: with symmetric sides (the default of the solvers) the cell models the profile
  reflected there, with a kink where f'(0) != 0.

The interface is one interpolating OCC spline through points of f (see ``build``); Li and
electrolyte are the plane surfaces below and above it. Tags: the whole curve is `interface`.
Elements shrink to ``interface_mesh_size`` along it.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

import gmsh
import numpy as np
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry

_DEFAULTS = {"sinusoidal": {"amplitude": 1e-6, "wavelength": 10e-6},
             "random": {"rms": 0.5e-6, "correlation_length": 4e-6, "seed": 0}}
_SPECTRUM_FLOOR = 1e-16  # random modes kept while their variance is above this (relative)


class RoughInterfaceGeometry(PlanarGeometry):
    """The planar stack with the Li | electrolyte interface on y = f(x): a cosine with a peak
    at x = 0 (``profile: sinusoidal``) or a periodic Gaussian random profile
    (``profile: random``), both of zero mean. Parameters of the other profile are rejected."""

    SUPPORTS_3D: ClassVar[bool] = False
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = False

    kind: Literal["rough_interface"] = "rough_interface"  # type: ignore[assignment]
    profile: Literal["sinusoidal", "random"] = Field(
        "sinusoidal", description="interface shape: sinusoidal (amplitude, wavelength) or random "
        "(rms, correlation_length, seed)")
    amplitude: Length | None = Field(
        None, description="sinusoidal: amplitude A of f = A cos(2 pi x / wavelength) [m] "
        "(default 1e-6)")
    wavelength: Length | None = Field(
        None, description="sinusoidal: wavelength, at most width [m] (default 1e-5)")
    rms: Length | None = Field(
        None, description="random: root-mean-square height of f over the width [m] "
        "(default 5e-7)")
    correlation_length: Length | None = Field(
        None, description="random: length xi of the Gaussian correlation function "
        "rms^2 exp(-r^2 / xi^2), at most width / 2 [m] (default 4e-6)")
    seed: Annotated[int, Field(ge=0)] | None = Field(
        None, description="random: seed of numpy's default_rng for the Fourier amplitudes [-] "
        "(default 0)")

    def _value(self, key: str) -> float:
        """Parameter ``key`` of the chosen profile, the default filled in."""
        value = getattr(self, key)
        return _DEFAULTS[self.profile][key] if value is None else value

    @property
    def amplitude_value(self) -> float:
        """Sinusoid amplitude [m], the default filled in."""
        return self._value("amplitude")

    @property
    def wavelength_value(self) -> float:
        """Sinusoid wavelength [m], the default filled in."""
        return self._value("wavelength")

    @property
    def rms_value(self) -> float:
        """Root-mean-square height of the random profile [m], the default filled in."""
        return self._value("rms")

    @property
    def correlation_length_value(self) -> float:
        """Correlation length of the random profile [m], the default filled in."""
        return self._value("correlation_length")

    @property
    def seed_value(self) -> int:
        """Seed of the random profile, the default filled in."""
        return int(self._value("seed"))

    def fourier_modes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k [1/m], a [m], b [m]): f(x) = sum a cos(k x) + b sin(k x)."""
        if self.profile == "sinusoidal":
            return (np.array([2 * np.pi / self.wavelength_value]),
                    np.array([self.amplitude_value]), np.zeros(1))
        xi = self.correlation_length_value
        n_max = int(2 * math.sqrt(math.log(1 / _SPECTRUM_FLOOR)) / xi * self.width / (2 * np.pi))
        n = np.arange(1, n_max + 1)
        k = 2 * np.pi * n / self.width
        std = np.exp(-((k * xi / 2) ** 2) / 2)
        draws = np.random.default_rng(self.seed_value).standard_normal((n_max, 2))
        a, b = draws[:, 0] * std, draws[:, 1] * std
        scale = self.rms_value / math.sqrt(float(np.sum(a**2 + b**2)) / 2)  # Parseval
        return k, a * scale, b * scale

    def profile_values(self, x: np.ndarray | float, derivative: int = 0) -> np.ndarray:
        """f(x) [m] (or its ``derivative``-th derivative) at abscissae ``x`` [m]."""
        return self._profile_derivatives(x, (derivative,))[0]

    def _profile_derivatives(self, x: np.ndarray | float, orders: tuple[int, ...]
                             ) -> list[np.ndarray]:
        k, a, b = self.fourier_modes()
        kx = np.multiply.outer(np.asarray(x, dtype=float), k)
        cos, sin = np.cos(kx), np.sin(kx)
        even, odd = cos * a + sin * b, cos * b - sin * a
        # d/dx turns a cos + b sin into k (b cos - a sin): a quarter turn per order
        turns = (even, odd, -even, -odd)
        return [turns[d % 4] @ k**d for d in orders]

    def profile_extent(self) -> tuple[float, float, float]:
        """(lowest f, highest f, smallest radius of curvature) of the profile over the width
        [m]: exact for the sinusoid, sampled every correlation_length / 32 for the random
        profile."""
        if self.profile == "sinusoidal":
            amp, k = self.amplitude_value, 2 * np.pi / self.wavelength_value
            return -amp, amp, 1 / (amp * k**2)
        x = np.linspace(0.0, self.width,
                        32 * int(np.ceil(self.width / self.correlation_length_value)) + 1)
        f, df, ddf = self._profile_derivatives(x, (0, 1, 2))
        curvature = np.abs(ddf) / (1 + df**2) ** 1.5
        return float(f.min()), float(f.max()), float(1 / curvature.max())

    def resolution_limit(self, radius: float) -> float:
        """Largest interface_mesh_size that resolves the profile [m]: wavelength / 8 or
        correlation_length / 4, and at most the smallest radius of curvature ``radius``."""
        if self.profile == "sinusoidal":
            return min(self.wavelength_value / 8, radius)
        return min(self.correlation_length_value / 4, radius)

    @model_validator(mode="after")
    def _profile_fits(self) -> RoughInterfaceGeometry:
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with a rough interface yet")
        others = {"sinusoidal": ("rms", "correlation_length", "seed"),
                  "random": ("amplitude", "wavelength")}[self.profile]
        for key in others:
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: not a parameter of profile: {self.profile} "
                                 f"(that profile takes {', '.join(_DEFAULTS[self.profile])})")
        if self.profile == "sinusoidal":
            size_key = "amplitude"
            if self.wavelength_value > self.width:
                raise ValueError(f"wavelength = {self.wavelength_value:g} m must not exceed "
                                 f"width = {self.width:g} m")
        else:
            size_key = "rms"
            xi = self.correlation_length_value
            if xi > self.width / 2:
                raise ValueError(f"correlation_length = {xi:g} m must be at most width / 2 = "
                                 f"{self.width / 2:g} m")
        low, high, radius = self.profile_extent()
        if high > self.electrolyte_thickness / 2 or -low > self.li_thickness / 2:
            raise ValueError(
                f"{size_key}: the profile spans y = {low:g} .. {high:g} m; it must leave at "
                f"least half of li_thickness = {self.li_thickness:g} m below and of "
                f"electrolyte_thickness = {self.electrolyte_thickness:g} m above")
        limit = self.resolution_limit(radius)
        if self.interface_mesh_size > limit:
            rule = ("wavelength / 8" if self.profile == "sinusoidal"
                    else "correlation_length / 4")
            raise ValueError(
                f"interface_mesh_size = {self.interface_mesh_size:g} m does not resolve the "
                f"profile: it must be at most {limit:g} m (the smaller of {rule} and the "
                f"smallest radius of curvature, {radius:g} m)")
        return self


MODEL = RoughInterfaceGeometry


def build(g: RoughInterfaceGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres.

    The interface is one interpolating (C2, cubic) OCC spline through f at spacing
    d = min(interface_mesh_size / 2, wavelength / 64 or correlation_length / 32). Away from
    the sides it deviates from f by about (5 / 384) d^4 |f''''|, under 1e-6 A for the
    sinusoid (A (5 / 384) (2 pi / 64)^4); the spline's free end conditions add an O(d^2)
    deviation next to the sides: measured at most 9e-6 A (default sinusoid) and 3e-6 rms
    (default random profile) over the whole curve. Both are far below the chord error of the
    mesh, h^2 |f''| / 8 with h = interface_mesh_size >= 2 d. Prescribing f' as end tangents
    (addSpline's ``tangents``) made the deviation worse with gmsh 4.13."""
    occ = gmsh.model.occ
    W, L_li, L_e = g.width / unit, g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    shortest = (g.wavelength_value / 64 if g.profile == "sinusoidal"
                else g.correlation_length_value / 32)
    spacing = min(g.interface_mesh_size / 2, shortest)
    x = np.linspace(0.0, g.width, int(np.ceil(g.width / spacing)) + 1)
    y = g.profile_values(x) / unit
    if g.profile == "random":
        y[-1] = y[0]  # periodic to round-off; exactly, so that the side curves pair up

    points = [occ.addPoint(xi / unit, yi, 0.0) for xi, yi in zip(x, y, strict=True)]
    spline = occ.addSpline(points)
    corners = {(0, -1): occ.addPoint(0.0, -L_li, 0.0), (1, -1): occ.addPoint(W, -L_li, 0.0),
               (0, 1): occ.addPoint(0.0, L_e, 0.0), (1, 1): occ.addPoint(W, L_e, 0.0)}
    left, right = points[0], points[-1]

    def line(a: int, b: int) -> int:
        return occ.addLine(a, b)

    li_loop = occ.addCurveLoop([line(corners[0, -1], corners[1, -1]),
                                line(corners[1, -1], right), -spline,
                                line(left, corners[0, -1])])
    el_loop = occ.addCurveLoop([spline, line(right, corners[1, 1]),
                                line(corners[1, 1], corners[0, 1]),
                                line(corners[0, 1], left)])
    surfaces = {"li": [occ.addPlaneSurface([li_loop])],
                "electrolyte": [occ.addPlaneSurface([el_loop])]}
    occ.synchronize()

    curves = sort_curves(surfaces, W, -L_li, L_e)
    if curves.pop("free") or curves["interface"] != [spline]:
        raise RuntimeError("rough_interface: the curves are not the spline interface and the "
                           "cell's outer box")
    add_physical_groups(surfaces, curves)
    refine_near(curves["interface"], [], h_if, h)
    gmsh.model.mesh.generate(2)
