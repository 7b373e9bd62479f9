"""Rough interface: the planar Li | electrolyte stack (Li below, electrolyte above,
0 < x < width, and 0 < z < depth in 3D) with the Li | electrolyte contact on the curve y = f(x)
(2D) or on the surface y = h(x, z) (3D, ``dim: 3``) instead of y = 0.

2D profiles (both are finite Fourier series f(x) = sum_n a_n cos(k_n x) + b_n sin(k_n x) with
zero mean over their period; the random profile is periodic over the width, so the Li keeps the
area width li_thickness and the electrolyte width electrolyte_thickness):

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

The 2D interface is one interpolating OCC spline through points of f (see ``_build_2d``); Li
and electrolyte are the plane surfaces below and above it. With ``axisymmetric`` (sinusoidal
only) the drawing is the (r, z) section of concentric ripples f(r) with a peak on the axis; a
random profile is refused, its slope at the axis would make a conical point.

3D surfaces (the box 0 < x < width, 0 < z < depth, depth defaulting to width; both are finite
Fourier sums h(x, z) = sum a cos(k . r) + b sin(k . r) over wave vectors k = (k_x, k_z), r =
(x, z); the Li volume is width depth li_thickness + int h dx dz, which is 0 for the random
surface and for a sinusoid whose cell spans whole numbers of half wavelengths along x or, with
wavelength_z, along z):

- ``sinusoidal`` without ``wavelength_z``: h(x, z) = amplitude cos(2 pi x / wavelength), the 2D
  profile extruded along z (ridges uniform in z).
- ``sinusoidal`` with ``wavelength_z``: h(x, z) = amplitude cos(2 pi x / wavelength)
  cos(2 pi z / wavelength_z), an egg crate with a peak on the edge x = z = 0 where the two
  symmetry planes x = 0 and z = 0 meet (as the 3D void and protrusion), further peaks where
  both cosines are 1 or both -1 and valleys where one is 1 and the other -1. As in 2D,
  wavelength is at most width and wavelength_z at most depth, and the sides x = width and
  z = depth are symmetry planes of h only for whole numbers of half wavelengths (other sizes
  cut h on a slope). Smallest principal radius of curvature 1 / (amplitude max(k_x, k_z)^2),
  at the peaks (exact: the Hessian of h is largest in norm there, where the slope vanishes).
- ``random``: an isotropic Gaussian random surface periodic over width and depth, the 2D
  generator on the x-z plane: wave vectors k = (2 pi n / width, 2 pi m / depth) of one half
  plane (n >= 1, or n = 0 and m >= 1, so that no two are opposite) with |k| at most the
  cut-off of the 2D profile, 2 sqrt(ln 1e16) / correlation_length (where the variance has
  fallen to 1e-16 of its largest value); a, b independent normal draws with the variance
  exp(-(|k| correlation_length / 2)^2), the spectral density of the correlation function
  C(r) = rms^2 exp(-|r|^2 / correlation_length^2) in the plane. The draws are one
  ``default_rng(seed).standard_normal((n_max + 1, 2 m_max + 1, 2))`` array, n = 0 .. n_max and
  m = -m_max .. m_max in that order ((a, b) last), entries of modes left out discarded. The sum
  is scaled so that its root-mean-square height over the cell is exactly ``rms`` (Parseval: the
  half-plane modes are orthogonal over the cell). As in 2D the correlation function holds for
  the ensemble of seeds and a cell much larger than correlation_length: the k = 0 share left
  out is about pi correlation_length^2 / (width depth) of the variance. Not mirror symmetric at
  the sides (see the 2D profile).

The 3D interface is one bicubic OCC B-spline surface interpolating h (``interface_surface``,
``_build_3d``) whose edges lie in the side planes; it splits the box
-li_thickness < y < electrolyte_thickness into the Li volume below and the electrolyte volume
above, and each side face into a Li and an electrolyte part. The lateral sides are meshed
independently (node-matched periodic sides are built in 2D only; 3D runs have no mechanics).

Tags (2D and 3D): the whole curve or surface is `interface`; li_cc, counter and side as for the
planar stack. Elements shrink to ``interface_mesh_size`` along it. Checked when the config is
read, in 2D and 3D alike: the profile leaves at least half of each layer, and
interface_mesh_size resolves it (at most wavelength / 8, in 3D also wavelength_z / 8, or
correlation_length / 4, and at most the smallest (principal) radius of curvature, sampled every
correlation_length / 32 in 2D and / 16 along x and z in 3D for the random profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import gmsh
import numpy as np
from pydantic import Field, model_validator

from ecm_fem.geometry._gmsh import add_physical_groups, refine_near, sort_curves
from ecm_fem.geometry.params import Length, PlanarGeometry

_DEFAULTS = {"sinusoidal": {"amplitude": 1e-6, "wavelength": 10e-6},
             "random": {"rms": 0.5e-6, "correlation_length": 4e-6, "seed": 0}}
_TAKES = {"sinusoidal": "amplitude, wavelength, wavelength_z (dim: 3)",
          "random": "rms, correlation_length, seed"}
_SPECTRUM_FLOOR = 1e-16  # random modes kept while their variance is above this (relative)


class RoughInterfaceGeometry(PlanarGeometry):
    """The planar stack with the Li | electrolyte interface on y = f(x) (2D) or y = h(x, z)
    (3D): a cosine with a peak at x = 0 (``profile: sinusoidal``; in 3D optionally also a
    cosine along z, ``wavelength_z``) or a periodic Gaussian random profile or surface
    (``profile: random``). Parameters of the other profile are rejected."""

    SUPPORTS_3D: ClassVar[bool] = True
    SUPPORTS_AXISYMMETRIC: ClassVar[bool] = True  # sinusoidal only: concentric ripples

    kind: Literal["rough_interface"] = "rough_interface"  # type: ignore[assignment]
    profile: Literal["sinusoidal", "random"] = Field(
        "sinusoidal", description="interface shape: sinusoidal (amplitude, wavelength, in 3D "
        "wavelength_z) or random (rms, correlation_length, seed)")
    amplitude: Length | None = Field(
        None, description="sinusoidal: amplitude A of f = A cos(2 pi x / wavelength) (3D: of "
        "h, times cos(2 pi z / wavelength_z) with wavelength_z) [m] (default 1e-6)")
    wavelength: Length | None = Field(
        None, description="sinusoidal: wavelength along x, at most width [m] (default 1e-5)")
    wavelength_z: Length | None = Field(
        None, description="sinusoidal, dim: 3 only: wavelength along z, at most depth: "
        "h = A cos(2 pi x / wavelength) cos(2 pi z / wavelength_z) [m] (default: none, ridges "
        "uniform in z, h = A cos(2 pi x / wavelength))")
    rms: Length | None = Field(
        None, description="random: root-mean-square height of f over the width (3D: of h over "
        "the cell) [m] (default 5e-7)")
    correlation_length: Length | None = Field(
        None, description="random: length xi of the Gaussian correlation function "
        "rms^2 exp(-r^2 / xi^2), at most width / 2 (3D: and depth / 2) [m] (default 4e-6)")
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

    def surface_modes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The 3D surface as (k_x [1/m], k_z [1/m], c [m], complex): h(x, z) =
        Re sum_nm c_nm exp(i (k_x[n] x + k_z[m] z)), i.e. a cos(k . r) + b sin(k . r) per wave
        vector with c = a - i b (module docstring)."""
        if self.profile == "sinusoidal":
            amp, kx = self.amplitude_value, np.array([2 * np.pi / self.wavelength_value])
            if self.wavelength_z is None:
                return kx, np.zeros(1), np.array([[amp + 0j]])
            kz = 2 * np.pi / self.wavelength_z
            # cos(k_x x) cos(k_z z) = (cos(k_x x - k_z z) + cos(k_x x + k_z z)) / 2
            return kx, np.array([-kz, kz]), np.array([[amp / 2 + 0j, amp / 2 + 0j]])
        xi, depth = self.correlation_length_value, self.cell_depth
        k_cut = 2 * math.sqrt(math.log(1 / _SPECTRUM_FLOOR)) / xi
        n_max = int(k_cut * self.width / (2 * np.pi))
        m_max = int(k_cut * depth / (2 * np.pi))
        n, m = np.arange(n_max + 1), np.arange(-m_max, m_max + 1)
        kx, kz = 2 * np.pi * n / self.width, 2 * np.pi * m / depth
        k_squared = np.add.outer(kx**2, kz**2)
        half_plane = (n[:, None] > 0) | (m[None, :] > 0)
        kept = half_plane & (k_squared <= k_cut**2)
        std = np.exp(-k_squared * xi**2 / 8) * kept
        draws = np.random.default_rng(self.seed_value).standard_normal(
            (n_max + 1, 2 * m_max + 1, 2))
        c = (draws[..., 0] - 1j * draws[..., 1]) * std
        scale = self.rms_value / math.sqrt(float(np.sum(np.abs(c) ** 2)) / 2)  # Parseval
        return kx, kz, c * scale

    def surface_values(self, x: np.ndarray | float, z: np.ndarray | float,
                       order: tuple[int, int] = (0, 0)) -> np.ndarray:
        """h(x, z) [m] of the 3D surface, or its derivative d^(i + j) h / dx^i dz^j for
        ``order`` = (i, j), at the points (x, z) [m] (arrays broadcast against each other)."""
        kx, kz, c = self.surface_modes()
        x, z = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(z, dtype=float))
        along_x = np.exp(1j * np.multiply.outer(x, kx)) * (1j * kx) ** order[0]
        along_z = np.exp(1j * np.multiply.outer(z, kz)) * (1j * kz) ** order[1]
        return np.real(np.sum((along_x @ c) * along_z, axis=-1))

    def surface_grid(self, x: np.ndarray, z: np.ndarray, order: tuple[int, int] = (0, 0)
                     ) -> np.ndarray:
        """h (or its derivative ``order``, see ``surface_values``) [m] on the grid of the
        abscissae ``x`` and ``z`` [m]: shape (len(x), len(z))."""
        kx, kz, c = self.surface_modes()
        along_x = np.exp(1j * np.multiply.outer(np.asarray(x, dtype=float), kx)) \
            * (1j * kx) ** order[0]
        along_z = np.exp(1j * np.multiply.outer(np.asarray(z, dtype=float), kz)) \
            * (1j * kz) ** order[1]
        return np.real(along_x @ c @ along_z.T)

    def profile_extent(self) -> tuple[float, float, float]:
        """(lowest f, highest f, smallest radius of curvature) of the profile over the width
        [m] (3D: of h over the cell, the smallest principal radius of curvature): exact for the
        sinusoid, sampled every correlation_length / 32 for the random profile
        (correlation_length / 16 along x and z for the random surface)."""
        if self.profile == "sinusoidal":
            amp, k = self.amplitude_value, 2 * np.pi / self.wavelength_value
            if self.dim == 3 and self.wavelength_z is not None:
                k = max(k, 2 * np.pi / self.wavelength_z)
            return -amp, amp, 1 / (amp * k**2)
        if self.dim == 3:
            return self._random_surface_extent()
        x = np.linspace(0.0, self.width,
                        32 * int(np.ceil(self.width / self.correlation_length_value)) + 1)
        f, df, ddf = self._profile_derivatives(x, (0, 1, 2))
        curvature = np.abs(ddf) / (1 + df**2) ** 1.5
        return float(f.min()), float(f.max()), float(1 / curvature.max())

    def _random_surface_extent(self) -> tuple[float, float, float]:
        xi, width, depth = self.correlation_length_value, self.width, self.cell_depth
        kx, kz, c = self.surface_modes()
        nx, nz = (16 * int(np.ceil(length / xi)) for length in (width, depth))
        # the wave vectors lie on the lattice of the cell: on the uniform grid of nx by nz
        # points of one period h is an inverse FFT (nx > n_max and nz > 2 m_max: no aliasing)
        rows = np.rint(kx * width / (2 * np.pi)).astype(int)[:, None] % nx
        columns = np.rint(kz * depth / (2 * np.pi)).astype(int)[None, :] % nz

        def grid(order: tuple[int, int]) -> np.ndarray:
            spectrum = np.zeros((nx, nz), dtype=complex)
            spectrum[rows, columns] = c * np.outer((1j * kx) ** order[0], (1j * kz) ** order[1])
            return np.real(np.fft.ifft2(spectrum)) * (nx * nz)

        h, hx, hz, hxx, hxz, hzz = (grid(order) for order in
                                    ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)))
        # principal curvatures of the graph y = h: mean H +- sqrt(H^2 - K), Gaussian K
        slope_factor = 1 + hx**2 + hz**2
        gaussian = (hxx * hzz - hxz**2) / slope_factor**2
        mean = ((1 + hz**2) * hxx - 2 * hx * hz * hxz + (1 + hx**2) * hzz) \
            / (2 * slope_factor**1.5)
        largest = np.abs(mean) + np.sqrt(np.maximum(mean**2 - gaussian, 0.0))
        return float(h.min()), float(h.max()), float(1 / largest.max())

    def resolution_limit(self, radius: float) -> float:
        """Largest interface_mesh_size that resolves the profile [m]: wavelength / 8 (3D: the
        shorter of wavelength and wavelength_z over 8) or correlation_length / 4, and at most
        the smallest radius of curvature ``radius``."""
        if self.profile == "random":
            return min(self.correlation_length_value / 4, radius)
        shortest = self.wavelength_value
        if self.dim == 3 and self.wavelength_z is not None:
            shortest = min(shortest, self.wavelength_z)
        return min(shortest / 8, radius)

    @model_validator(mode="after")
    def _profile_fits(self) -> RoughInterfaceGeometry:
        if self.sei_thickness > 0:
            raise ValueError(
                "sei_thickness: a resolved SEI is not supported with a rough interface yet")
        if self.axisymmetric and self.profile != "sinusoidal":
            raise ValueError("profile: random is not axisymmetric (its slope at the axis would "
                             "make a conical point); axisymmetric: true takes profile: "
                             "sinusoidal, concentric ripples with a peak on the axis")
        others = {"sinusoidal": ("rms", "correlation_length", "seed"),
                  "random": ("amplitude", "wavelength", "wavelength_z")}[self.profile]
        for key in others:
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: not a parameter of profile: {self.profile} "
                                 f"(that profile takes {_TAKES[self.profile]})")
        if self.wavelength_z is not None and self.dim == 2:
            raise ValueError("wavelength_z: only for dim: 3 (the 2D profile varies along x "
                             "only)")
        if self.profile == "sinusoidal":
            size_key = "amplitude"
            if self.wavelength_value > self.width:
                raise ValueError(f"wavelength = {self.wavelength_value:g} m must not exceed "
                                 f"width = {self.width:g} m")
            if self.dim == 3 and self.wavelength_z is not None \
                    and self.wavelength_z > self.cell_depth:
                raise ValueError(f"wavelength_z = {self.wavelength_z:g} m must not exceed "
                                 f"depth = {self.cell_depth:g} m")
        else:
            size_key = "rms"
            xi = self.correlation_length_value
            if xi > self.width / 2:
                raise ValueError(f"correlation_length = {xi:g} m must be at most width / 2 = "
                                 f"{self.width / 2:g} m")
            if self.dim == 3 and xi > self.cell_depth / 2:
                raise ValueError(f"correlation_length = {xi:g} m must be at most depth / 2 = "
                                 f"{self.cell_depth / 2:g} m")
        low, high, radius = self.profile_extent()
        if high > self.electrolyte_thickness / 2 or -low > self.li_thickness / 2:
            raise ValueError(
                f"{size_key}: the profile spans y = {low:g} .. {high:g} m; it must leave at "
                f"least half of li_thickness = {self.li_thickness:g} m below and of "
                f"electrolyte_thickness = {self.electrolyte_thickness:g} m above")
        limit = self.resolution_limit(radius)
        if self.interface_mesh_size > limit:
            if self.profile == "random":
                rule = "correlation_length / 4"
            elif self.dim == 3 and self.wavelength_z is not None:
                rule = "min(wavelength, wavelength_z) / 8"
            else:
                rule = "wavelength / 8"
            curvature = "principal radius" if self.dim == 3 else "radius"
            raise ValueError(
                f"interface_mesh_size = {self.interface_mesh_size:g} m does not resolve the "
                f"profile: it must be at most {limit:g} m (the smaller of {rule} and the "
                f"smallest {curvature} of curvature, {radius:g} m)")
        return self


MODEL = RoughInterfaceGeometry


def build(g: RoughInterfaceGeometry, unit: float) -> None:
    """Make the gmsh model of ``g`` in model units of ``unit`` metres (gmsh initialised, a
    model added); the caller scales the mesh back to metres."""
    if g.dim == 3:
        _build_3d(g, unit)
    else:
        _build_2d(g, unit)


@dataclass(frozen=True)
class InterfaceSurface:
    """A bicubic B-spline surface y = s(x, z) over 0 < x < width, 0 < z < depth [m]: clamped
    knot vectors over the interpolation nodes ``x_nodes``, ``z_nodes`` (end knots repeated
    four times), control points ``poles[i, j]`` = (x_poles[i], heights[i, j], z_poles[j]).
    The x and z of the poles are the Greville abscissae of the knots, for which a cubic
    B-spline reproduces the identity: the surface's parameters are x and z themselves, and its
    edges lie exactly in the planes x = 0, width and z = 0, depth."""

    x_nodes: np.ndarray
    z_nodes: np.ndarray
    heights: np.ndarray

    @property
    def x_poles(self) -> np.ndarray:
        return _greville(_clamped_knots(self.x_nodes))

    @property
    def z_poles(self) -> np.ndarray:
        return _greville(_clamped_knots(self.z_nodes))

    def values(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """s [m] on the grid of the abscissae ``x``, ``z`` [m]: shape (len(x), len(z))."""
        return (_bspline_basis(_clamped_knots(self.x_nodes), np.asarray(x, dtype=float))
                @ self.heights
                @ _bspline_basis(_clamped_knots(self.z_nodes), np.asarray(z, dtype=float)).T)


def interface_surface(g: RoughInterfaceGeometry) -> InterfaceSurface:
    """The complete bicubic spline interpolant of the 3D surface h of ``g``: equal to h at the
    nodes of a uniform grid of spacing at most interface_mesh_size / 2, with the slopes dh/dx
    of h on the sides x = 0, width, dh/dz on z = 0, depth and the twist d^2 h / dx dz at the
    four corners. Its deviation from h is O(spacing^4) (see ``_build_3d``)."""
    spacing = g.interface_mesh_size / 2
    x, z = (np.linspace(0.0, length, int(np.ceil(length / spacing)) + 1)
            for length in (g.width, g.cell_depth))
    # the data rows: the slope at the first node, the values at every node, the slope at the
    # last node; along x for the rows, along z for the columns
    x_data, z_data = np.r_[x[0], x, x[-1]], np.r_[z[0], z, z[-1]]
    x_order, z_order = np.zeros(len(x_data), int), np.zeros(len(z_data), int)
    x_order[[0, -1]] = z_order[[0, -1]] = 1
    data = np.zeros((len(x_data), len(z_data)))
    for i in (0, 1):
        for j in (0, 1):
            chosen = np.outer(x_order == i, z_order == j)
            data[chosen] = g.surface_grid(x_data, z_data, (i, j))[chosen]
    along_x, along_z = _interpolation_matrix(x), _interpolation_matrix(z)
    heights = np.linalg.solve(along_x, np.linalg.solve(along_z, data.T).T)
    return InterfaceSurface(x, z, heights)


def _clamped_knots(nodes: np.ndarray) -> np.ndarray:
    return np.r_[[nodes[0]] * 3, nodes, [nodes[-1]] * 3]


def _greville(knots: np.ndarray) -> np.ndarray:
    """Greville abscissae of the cubic B-spline basis on ``knots``."""
    return (knots[1:-3] + knots[2:-2] + knots[3:-1]) / 3


def _bspline_basis(knots: np.ndarray, x: np.ndarray, degree: int = 3) -> np.ndarray:
    """Values of the B-spline basis functions of ``degree`` on ``knots`` at ``x`` by the
    Cox-de Boor recursion: shape (len(x), len(knots) - degree - 1). A point on the last knot
    belongs to the last non-empty knot span."""
    spans = np.flatnonzero(np.diff(knots) > 0)
    span_of_x = spans[np.clip(np.searchsorted(knots[spans], x, side="right") - 1, 0,
                              len(spans) - 1)]
    basis = np.zeros((len(x), len(knots) - 1))
    basis[np.arange(len(x)), span_of_x] = 1.0
    for d in range(1, degree + 1):
        raised = np.zeros((len(x), len(knots) - 1 - d))
        for i in range(len(knots) - 1 - d):
            left, right = knots[i + d] - knots[i], knots[i + d + 1] - knots[i + 1]
            if left > 0:
                raised[:, i] += (x - knots[i]) / left * basis[:, i]
            if right > 0:
                raised[:, i] += (knots[i + d + 1] - x) / right * basis[:, i + 1]
        basis = raised
    return basis


def _interpolation_matrix(nodes: np.ndarray) -> np.ndarray:
    """The square matrix that maps the control values of the clamped cubic B-spline on
    ``nodes`` to (its slope at the first node, its values at the nodes, its slope at the last
    node)."""
    n = len(nodes) + 2
    matrix = np.zeros((n, n))
    matrix[1:-1] = _bspline_basis(_clamped_knots(nodes), nodes)
    # a clamped cubic's end slope is 3 (P_1 - P_0) / (first knot span), likewise at the end
    matrix[0, :2] = np.array([-3.0, 3.0]) / (nodes[1] - nodes[0])
    matrix[-1, -2:] = np.array([-3.0, 3.0]) / (nodes[-1] - nodes[-2])
    return matrix


def _build_3d(g: RoughInterfaceGeometry, unit: float) -> None:
    """The 3D cell: the B-spline surface of ``interface_surface`` (parameters x and z,
    interpolation nodes d = interface_mesh_size / 2 apart or closer) fragments the box
    -li_thickness < y < electrolyte_thickness into Li below and electrolyte above; the side
    faces are split along the surface's edges. The complete bicubic interpolant deviates from
    h by O(d^4), about (5 / 384) d^4 |h''''|, against the O(s^2) sagitta of the mesh's flat
    facets, s^2 / (8 R) with s = interface_mesh_size and R the smallest principal radius of
    curvature: with d = s / 2 the ratio is of order (5 / 768) (s k)^2, below 4e-3 for the
    s <= wavelength / 8 that the checks allow. Measured: at most 2e-3 of that sagitta, 5e-5 A
    (2e-5 A without wavelength_z) for the default sinusoid and 1.5e-4 rms for the default
    random surface. The poles are as many as the interface's mesh nodes, about four per
    s^2: the OCC surface costs no more than meshing it."""
    occ = gmsh.model.occ
    W, D = g.width / unit, g.cell_depth / unit
    L_li, L_e = g.li_thickness / unit, g.electrolyte_thickness / unit
    h, h_if = g.mesh_size / unit, g.interface_mesh_size / unit
    surface = interface_surface(g)
    poles = [occ.addPoint(x / unit, surface.heights[i, j] / unit, z / unit)
             for j, z in enumerate(surface.z_poles) for i, x in enumerate(surface.x_poles)]

    def ends_four_times(nodes: np.ndarray) -> list[int]:
        return [4] + [1] * (len(nodes) - 2) + [4]

    interface = occ.addBSplineSurface(
        poles, len(surface.x_poles), degreeU=3, degreeV=3,
        knotsU=list(surface.x_nodes / unit), knotsV=list(surface.z_nodes / unit),
        multiplicitiesU=ends_four_times(surface.x_nodes),
        multiplicitiesV=ends_four_times(surface.z_nodes))
    occ.remove([(0, p) for p in poles])
    box = occ.addBox(0.0, -L_li, 0.0, W, L_li + L_e, D)
    occ.fragment([(3, box)], [(2, interface)])
    occ.synchronize()

    volumes: dict[str, list[int]] = {"li": [], "electrolyte": []}
    for _, v in gmsh.model.getEntities(3):
        _, y, _ = occ.getCenterOfMass(3, v)  # |h| < L / 2 puts Li's below y = 0
        volumes["li" if y < 0 else "electrolyte"].append(v)
    faces = sort_curves(volumes, W, -L_li, L_e, depth=D)
    if faces.pop("free") or len(faces["interface"]) != 1 or \
            [len(v) for v in volumes.values()] != [1, 1]:
        raise RuntimeError("rough_interface: the surface did not split the box into Li below "
                           "and electrolyte above")
    add_physical_groups(volumes, faces, 3)
    refine_near(faces["interface"], [], h_if, h, dim=3)
    gmsh.model.mesh.generate(3)


def _build_2d(g: RoughInterfaceGeometry, unit: float) -> None:
    """The 2D cell. The interface is one interpolating (C2, cubic) OCC spline through f at
    spacing d = min(interface_mesh_size / 2, wavelength / 64 or correlation_length / 32). Away from
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
