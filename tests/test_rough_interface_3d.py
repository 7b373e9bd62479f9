"""Rough interface in 3D (rough_interface, dim: 3; Li | electrolyte contact on y = h(x, z)): the
surface and its B-spline, tags and measures against the exact surface with their convergence
under refinement, rank independence, the random surface's statistics and reproducibility,
config errors, and the current distribution on an egg-crate sinusoid.

Measures. Li lies below h, so its volume is width depth li_thickness + int h dx dz and the
electrolyte's width depth electrolyte_thickness - int h dx dz; the interface's area is
int sqrt(1 + |grad h|^2) dx dz. Both integrals are taken by Gauss-Legendre quadrature (exact to
rounding for these analytic integrands; checked against twice the panels). The CAD surface is
the bicubic interpolant of h, within 1e-4 of the amplitude (rms) of h and 5e-3 of the facets'
sagitta (``test_the_b_spline_surface_interpolates_h``), and the mesh's interface is made of
flat triangles with their corners on it: the faceted area falls short of the exact one by O(s^2) and
the volumes are off by O(s^2) in the interface element size s (the sagittas; their sum nearly
cancels between peaks and valleys). Measured values are in the tests' docstrings.

Current distribution. For h = A cos(k_x x) cos(k_z z), the sum of the two plane waves
cos(k_x x -+ k_z z) of wave number k = |(k_x, k_z)|, on an equipotential Li with linear kinetics
(charge-transfer resistance R = 1 / (i0 f)) under an electrolyte of conductivity kappa much
thicker than 1 / k, the potential perturbation c cos(k_x x) cos(k_z z) exp(-k y) (harmonic since
k_x^2 + k_z^2 = k^2) gives, to first order in A k (the 2D analysis of test_rough_interface.py
with k = |k|),

    i_n / i_app = 1 + A k cos(k_x x) cos(k_z z) / (1 + Wa),   Wa = kappa k R:

the peaks, where the electrolyte is thinnest, carry more current than the valleys. The second
order adds the same amount at peaks and valleys (cos^2 cos^2 = 1 at both), so
(i_peak - i_valley) / (2 i_app) follows the formula to O((A k)^2) relative.
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from conftest import REPO, tagged_measure
from dolfinx import fem

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text, load_config
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.rough_interface import RoughInterfaceGeometry, interface_surface
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

# 1.25 wavelengths along x and z (and W != D): int h dx dz != 0, the far sides cut h on a slope
W, D, L_LI, L_E = 10e-6, 7.5e-6, 3e-6, 6e-6
AMPLITUDE, WAVELENGTH, WAVELENGTH_Z = 0.5e-6, 8e-6, 6e-6
SURFACES = {
    "egg_crate": {"profile": "sinusoidal", "amplitude": AMPLITUDE, "wavelength": WAVELENGTH,
                  "wavelength_z": WAVELENGTH_Z},
    "ridges": {"profile": "sinusoidal", "amplitude": AMPLITUDE, "wavelength": WAVELENGTH},
    "random": {"profile": "random", "rms": 0.3e-6, "correlation_length": 3e-6, "seed": 7},
}


def geometry(surface: str, h_if: float = 0.75e-6, **extra) -> dict:
    return {"kind": "rough_interface", "dim": 3, "width": W, "depth": D, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "mesh_size": 2e-6, "interface_mesh_size": h_if,
            **SURFACES[surface], **extra}


def model(surface: str, **extra) -> RoughInterfaceGeometry:
    return RunConfig.model_validate({"geometry": geometry(surface, **extra)}).geometry


def exact_integrals(g: RoughInterfaceGeometry, panels: int = 16) -> dict[str, float]:
    """int h dx dz and the area int sqrt(1 + |grad h|^2) dx dz over the cell, by 40-point
    Gauss-Legendre on ``panels`` equal panels along x and along z."""
    t, w = np.polynomial.legendre.leggauss(40)

    def rule(length: float) -> tuple[np.ndarray, np.ndarray]:
        edges = np.linspace(0.0, length, panels + 1)
        half = np.diff(edges)[:, None] / 2
        return (((edges[:-1] + edges[1:]) / 2)[:, None] + half * t).ravel(), (half * w).ravel()

    (x, wx), (z, wz) = rule(g.width), rule(g.cell_depth)
    weights = np.outer(wx, wz)
    slope2 = g.surface_grid(x, z, (1, 0)) ** 2 + g.surface_grid(x, z, (0, 1)) ** 2
    return {"volume": float(np.sum(weights * g.surface_grid(x, z))),
            "area": float(np.sum(weights * np.sqrt(1 + slope2)))}


def measures(md) -> dict[str, float]:
    """Global volumes of the cell tags and areas of the facet tags (ds + dS); ``height2``:
    int y^2 |n_y| dS over the interface, which is int h^2 dx dz on the exact surface."""
    out = {n: tagged_measure(md.mesh, md.cell_tags, "dx", t) for n, t in CELL_TAGS.items()}
    for name, tag in FACET_TAGS.items():
        out[name] = (tagged_measure(md.mesh, md.facet_tags, "ds", tag)
                     + tagged_measure(md.mesh, md.facet_tags, "dS", tag))
    y, n = ufl.SpatialCoordinate(md.mesh)[1], ufl.FacetNormal(md.mesh)
    dS = ufl.Measure("dS", domain=md.mesh, subdomain_data=md.facet_tags)
    form = fem.form(y("+") ** 2 * abs(n("+")[1]) * dS(FACET_TAGS["interface"]))
    out["height2"] = md.mesh.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)
    return out


_MESHES: dict = {}


def mesh_of(geometry_dict: dict):
    key = repr(sorted(geometry_dict.items()))
    if key not in _MESHES:
        config = RunConfig.model_validate({"geometry": geometry_dict})
        _MESHES[key] = (config.geometry, generate(config))
    return _MESHES[key]


# ----------------------------------------------------------------------------- the surface
def test_sinusoidal_surfaces():
    """Egg crate h = A cos(k_x x) cos(k_z z), a peak at x = z = 0, with its derivatives; without
    wavelength_z the 2D profile at every z; the smallest principal radius of curvature
    1 / (A max(k_x, k_z)^2) exact: the largest principal curvature sampled on a fine grid
    reaches it at the peak and nowhere exceeds it."""
    g = model("egg_crate")
    kx, kz = 2 * np.pi / WAVELENGTH, 2 * np.pi / WAVELENGTH_Z
    x, z = np.meshgrid(np.linspace(0.0, W, 11), np.linspace(0.0, D, 7), indexing="ij")
    cx, sx, cz, sz = np.cos(kx * x), np.sin(kx * x), np.cos(kz * z), np.sin(kz * z)
    tol = 1e-12 * AMPLITUDE
    assert g.surface_values(x, z) == pytest.approx(AMPLITUDE * cx * cz, abs=tol)
    assert g.surface_values(x, z, (1, 0)) == pytest.approx(-AMPLITUDE * kx * sx * cz, abs=tol * kx)
    assert g.surface_values(x, z, (1, 1)) == pytest.approx(AMPLITUDE * kx * kz * sx * sz,
                                                           abs=tol * kx * kz)
    assert g.surface_values(x, z, (0, 2)) == pytest.approx(-AMPLITUDE * kz**2 * cx * cz,
                                                           abs=tol * kz**2)
    assert g.surface_grid(x[:, 0], z[0]) == pytest.approx(g.surface_values(x, z), abs=tol)
    assert float(g.surface_values(0.0, 0.0)) == pytest.approx(AMPLITUDE, rel=1e-15)
    low, high, radius = g.profile_extent()
    assert (low, high, radius) == pytest.approx((-AMPLITUDE, AMPLITUDE, 1 / (AMPLITUDE * kz**2)))
    xs, zs = np.linspace(0.0, W, 401), np.linspace(0.0, D, 301)
    p, q, r, s, t = (g.surface_grid(xs, zs, o) for o in ((1, 0), (0, 1), (2, 0), (1, 1), (0, 2)))
    w2 = 1 + p**2 + q**2
    mean = ((1 + q**2) * r - 2 * p * q * s + (1 + p**2) * t) / (2 * w2**1.5)
    largest = np.abs(mean) + np.sqrt(np.maximum(mean**2 - (r * t - s**2) / w2**2, 0.0))
    assert largest.max() == pytest.approx(1 / radius, rel=1e-12)

    ridges = model("ridges")
    flat = RunConfig.model_validate({"geometry": {
        k: v for k, v in geometry("ridges").items() if k not in ("dim", "depth")}}).geometry
    assert ridges.surface_values(x, z) == pytest.approx(flat.profile_values(x), abs=tol)
    assert np.all(ridges.surface_values(x, z, (0, 1)) == 0.0)
    assert ridges.profile_extent() == pytest.approx(flat.profile_extent())


@pytest.mark.parametrize("surface", SURFACES)
def test_the_b_spline_surface_interpolates_h(surface):
    """The bicubic interpolant that the builder hands to OCC: its poles' x and z reach the
    sides exactly (its edges lie in the side planes), it equals h at its nodes, and between
    them it deviates from h by O(spacing^4) (spacing interface_mesh_size / 2), far less than
    the sagitta s^2 / (8 R) of the mesh's facets (s = interface_mesh_size, R the smallest
    principal radius of curvature). Measured at s = 0.75 um and 0.375 um, in units of A
    (rms): egg crate 8.2e-5, 5.1e-6; ridges 1.9e-5, 1.2e-6; random 9.2e-5, 5.6e-6 (16x per
    halving), at most 1.3e-3 of the sagitta; asserted below 5e-3 of it."""
    for h_if in (0.75e-6, 0.375e-6):
        g = model(surface, h_if=h_if)
        spline = interface_surface(g)
        assert (spline.x_poles[0], spline.x_poles[-1]) == (0.0, W)
        assert (spline.z_poles[0], spline.z_poles[-1]) == (0.0, D)
        nodes = (spline.x_nodes, spline.z_nodes)
        assert np.diff(spline.x_nodes).max() <= h_if / 2 * (1 + 1e-12)
        scale = g.amplitude_value if g.profile == "sinusoidal" else g.rms_value
        assert spline.values(*nodes) == pytest.approx(g.surface_grid(*nodes), abs=1e-12 * scale)
        x, z = (np.sort(np.r_[n, (n[1:] + n[:-1]) / 2, n[:-1] + np.diff(n) / 4]) for n in nodes)
        deviation = np.abs(spline.values(x, z) - g.surface_grid(x, z)).max()
        sagitta = h_if**2 / (8 * g.profile_extent()[2])
        assert deviation < 5e-3 * sagitta, (h_if, deviation / scale, deviation / sagitta)


# ----------------------------------------------------------------------------- measures
@pytest.mark.mpi
@pytest.mark.parametrize(("surface", "sizes"), [
    ("egg_crate", (0.75e-6, 0.5e-6, 0.375e-6)),
    ("ridges", (0.75e-6, 0.375e-6)),
    ("random", (0.75e-6, 0.375e-6)),
])
def test_measures_converge_to_the_surface(surface, sizes):
    """Every tag of the family present with its measure (li, electrolyte; interface, li_cc,
    counter, side), none other; li_cc and counter W D and the sides 2 (W + D)(L_li + L_e)
    (flat faces: to 1e-12); Li + electrolyte = the box. Relative interface-area deficits at
    interface_mesh_size 0.75 um (the coarsest the checks allow for the egg crate, whose
    shortest wavelength is 6 um), 0.5 um and 0.375 um, measured: egg crate 2.57e-3, 1.15e-3,
    6.6e-4; ridges 7.2e-4 and 1.8e-4 (0.75, 0.375 um); random 4.0e-4 and 1.1e-4: second order
    (2.23x and 1.76x for the steps of 1.5x and 1.33x, 3.92x and 3.61x per halving). Li volume
    errors in units of W D A (A: amplitude or rms): egg crate -9.8e-4, -2.4e-4, -8.4e-5;
    ridges -2.4e-3, -6.4e-4; random -6.3e-4, +5.4e-5, against int h dx dz = 1.6e-2 W D A
    (egg crate), 0.127 W D A (ridges), 0 (random). Asserted: the area low, by less than
    3.5e-3 (s / 0.75 um)^2, falling at least 0.8 times as fast as s^2; the volume errors below 3e-3
    W D A, falling by more than 3x from 0.75 to 0.375 um."""
    deficits, volume_errors = [], []
    for h_if in sizes:
        g, md = mesh_of(geometry(surface, h_if))
        assert md.mesh.geometry.dim == 3 and md.mesh.topology.dim == 3
        exact = exact_integrals(g)
        assert exact_integrals(g, 32)["area"] == pytest.approx(exact["area"], rel=1e-13)
        m = measures(md)
        for name in ("li", "electrolyte", "interface", "li_cc", "counter", "side"):
            assert m[name] > 0, name
        for name in ("sei", "gb", "void_surface", "crack_surface", "sei_electrolyte",
                     "gb_boundary"):
            assert m[name] == 0.0, name
        assert m["li_cc"] == pytest.approx(W * D, rel=1e-12)
        assert m["counter"] == pytest.approx(W * D, rel=1e-12)
        assert m["side"] == pytest.approx(2 * (W + D) * (L_LI + L_E), rel=1e-12)
        assert m["li"] + m["electrolyte"] == pytest.approx(W * D * (L_LI + L_E), rel=1e-12)
        scale = W * D * (g.amplitude_value if g.profile == "sinusoidal" else g.rms_value)
        volume_error = (m["li"] - (W * D * L_LI + exact["volume"])) / scale
        assert m["electrolyte"] - (W * D * L_E - exact["volume"]) == pytest.approx(
            -volume_error * scale, rel=1e-6)
        deficit = 1 - m["interface"] / exact["area"]
        assert 0 < deficit < 3.5e-3 * (h_if / 0.75e-6) ** 2, (h_if, deficit)
        assert abs(volume_error) < 3e-3, (h_if, volume_error)
        deficits.append(deficit)
        volume_errors.append(abs(volume_error))
    for k in range(len(sizes) - 1):
        assert deficits[k] / deficits[k + 1] > 0.8 * (sizes[k] / sizes[k + 1]) ** 2, deficits
    assert volume_errors[0] / volume_errors[-1] > 3, volume_errors


@pytest.mark.mpi
def test_same_mesh_on_one_two_and_three_ranks():
    """gmsh runs on rank 0 of the communicator and the mesh is distributed: the same global
    cell count (egg crate: 4969 tetrahedra with this gmsh, random: 5097), Li volume and
    interface area on 1 rank, on all ranks of the run and, under mpirun -n 3, on a
    communicator of 2 of them (so one run under -n 3 compares 1, 2 and 3 ranks)."""
    world = MPI.COMM_WORLD
    comms = [MPI.COMM_SELF, world]
    if world.size == 3:
        comms.append(world.Split(0 if world.rank < 2 else 1, world.rank))
    for surface in ("egg_crate", "random"):
        config = RunConfig.model_validate({"geometry": geometry(surface)})
        results = []
        for comm in comms:
            md = generate(config, comm)
            results.append((comm.size, md.mesh.topology.index_map(3).size_global,
                            tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"]),
                            tagged_measure(md.mesh, md.facet_tags, "dS",
                                           FACET_TAGS["interface"])))
        cells = {n for _, n, *_ in results}
        assert len(cells) == 1, results
        for _, _, li, area in results[1:]:
            assert li == pytest.approx(results[0][2], rel=1e-12)
            assert area == pytest.approx(results[0][3], rel=1e-12)
        gathered = world.allgather([(size, n) for size, n, *_ in results])
        assert {size for row in gathered for size, _ in row} == \
            ({1, 2, 3} if world.size == 3 else {1, world.size})
        assert {n for row in gathered for _, n in row} == cells
    if len(comms) == 3:
        comms[2].Free()


# ----------------------------------------------------------------------------- random surface
def test_random_surface_statistics_and_reproducibility():
    """On a uniform grid of one period, finer than twice the highest mode (the mean and mean
    square of a trigonometric polynomial are exact to rounding there): zero mean and rms
    exact to 1e-12, periodic along x and z; the same surface for the same seed (the default
    seed is 0), another one with the same rms for another seed."""
    g = model("random")
    kx, kz, _ = g.surface_modes()
    nx, nz = 4 * len(kx), 2 * len(kz)
    x, z = np.arange(nx) * W / nx, np.arange(nz) * D / nz
    h = g.surface_grid(x, z)
    assert abs(h.mean()) < 1e-12 * g.rms
    assert np.sqrt(np.mean(h**2)) == pytest.approx(g.rms, rel=1e-12)
    assert g.surface_grid([0.0, W], z) == pytest.approx(np.tile(h[0], (2, 1)), abs=1e-12 * g.rms)
    assert g.surface_grid(x, [0.0, D]) == pytest.approx(np.tile(h[:, :1], (1, 2)),
                                                        abs=1e-12 * g.rms)
    assert np.array_equal(model("random", seed=7).surface_grid(x, z), h)
    assert np.array_equal(model("random", seed=None).surface_grid(x, z),
                          model("random", seed=0).surface_grid(x, z))
    other = model("random", seed=8).surface_grid(x, z)
    assert np.sqrt(np.mean(other**2)) == pytest.approx(g.rms, rel=1e-12)
    assert np.max(np.abs(other - h)) > 0.5 * g.rms


@pytest.mark.mpi
def test_meshed_random_surface_has_the_rms():
    """The meshed interface's heights: sqrt(int y^2 |n_y| dS / (W D)), the rms of h over the
    cell on the exact surface, is the requested rms within 2 % at interface_mesh_size 0.75 um
    and 0.6 % at 0.375 um (measured -1.46 % and -0.41 %: the flat facets cut the peaks and
    fill the valleys, O(s^2)); a second mesh from the same seed is the same mesh."""
    errors = []
    for h_if, tolerance in ((0.75e-6, 2e-2), (0.375e-6, 6e-3)):
        g, md = mesh_of(geometry("random", h_if))
        rms = math.sqrt(measures(md)["height2"] / (W * D))
        assert rms == pytest.approx(g.rms, rel=tolerance)
        errors.append(abs(rms / g.rms - 1))
    assert errors[0] / errors[1] > 3, errors
    again = generate(RunConfig.model_validate({"geometry": geometry("random", 0.375e-6)}))
    assert again.mesh.topology.index_map(3).size_global == md.mesh.topology.index_map(3).size_global
    assert math.sqrt(measures(again)["height2"] / (W * D)) == pytest.approx(rms, rel=1e-12)


def test_random_surface_has_the_isotropic_gaussian_correlation():
    """Over 100 seeds on a cell of 20 by 20 correlation lengths, the mean circular
    autocorrelation <h(r) h(r + s)> / rms^2 at lags |s| < 3 xi in every direction of the
    x-z plane follows exp(-|s|^2 / xi^2) within 0.03 (measured 0.019: the left-out k = 0 share
    pi xi^2 / (W D) = 0.0079), and within 0.02 once that share is taken out (measured 0.011;
    0.006 along the axes: sampling noise). The seeds change only the draws, so the copies skip
    the checks of the config."""
    xi, length, n, seeds = 1e-6, 20e-6, 128, 100
    g = RoughInterfaceGeometry(kind="rough_interface", dim=3, profile="random", width=length,
                               rms=0.1e-6, correlation_length=xi, interface_mesh_size=0.25e-6,
                               electrolyte_thickness=10e-6)
    grid = np.arange(n) * length / n
    mean = np.zeros((n, n))
    for seed in range(seeds):
        h = g.model_copy(update={"seed": seed}).surface_grid(grid, grid)
        mean += np.fft.irfft2(np.abs(np.fft.rfft2(h)) ** 2, s=(n, n)) / np.sum(h**2) / seeds
    lag = np.minimum(grid, length - grid)
    distance = np.hypot(*np.meshgrid(lag, lag, indexing="ij"))
    near = distance < 3 * xi
    gauss, share = np.exp(-((distance[near] / xi) ** 2)), np.pi * xi**2 / length**2
    assert np.max(np.abs(mean[near] - gauss)) < 0.03
    assert np.max(np.abs(mean[near] - (gauss - share) / (1 - share))) < 0.02


# ----------------------------------------------------------------------------- config
_3D = "geometry:\n  kind: rough_interface\n  dim: 3\n"


@pytest.mark.parametrize(("text", "message"), [
    ("geometry:\n  kind: rough_interface\n  wavelength_z: 1.0e-5\n",
     "wavelength_z: only for dim: 3"),
    (_3D + "  profile: random\n  wavelength_z: 1.0e-5\n",
     "wavelength_z: not a parameter of profile: random"),
    (_3D + "  wavelength_z: 3.0e-5\n", r"wavelength_z = 3e-05 m must not exceed depth = 2e-05 m"),
    (_3D + "  depth: 6.0e-6\n  wavelength_z: 1.0e-5\n",
     r"wavelength_z = 1e-05 m must not exceed depth = 6e-06 m"),
    (_3D + "  depth: 6.0e-6\n  profile: random\n",
     r"correlation_length = 4e-06 m must be at most depth / 2 = 3e-06 m"),
    (_3D + "  profile: random\n  correlation_length: 1.1e-5\n",
     r"correlation_length = 1.1e-05 m must be at most width / 2 = 1e-05 m"),
    (_3D + "  amplitude: 6.0e-6\n  wavelength: 2.0e-5\n  wavelength_z: 2.0e-5\n",
     r"amplitude: the profile spans y = -6e-06 \.\. 6e-06 m; it must leave at least half of "
     "li_thickness"),
    (_3D + "  profile: random\n  rms: 3.0e-6\n", r"rms: the profile spans y = "),
    (_3D + "  amplitude: 2.0e-7\n  wavelength_z: 4.0e-6\n", r"interface_mesh_size = 1e-06 m "
     r"does not resolve the profile: it must be at most 5e-07 m \(the smaller of "
     r"min\(wavelength, wavelength_z\) / 8"),
    (_3D + "  amplitude: 3.0e-6\n  wavelength_z: 1.0e-5\n", r"interface_mesh_size = 1e-06 m "
     r"does not resolve the profile: it must be at most 8.44\d*e-07 m .*smallest principal "
     r"radius of curvature, 8.44\d*e-07 m\)"),
    (_3D + "  profile: random\n  correlation_length: 2.0e-6\n", r"interface_mesh_size = "
     r"1e-06 m does not resolve the profile: it must be at most 5e-07 m \(the smaller of "
     "correlation_length / 4"),
    (_3D + "  sei_thickness: 1.0e-8\n", "sei_thickness: a resolved SEI is not supported"),
], ids=["wavelength_z_in_2d", "wavelength_z_on_random", "wavelength_z", "depth_vs_wavelength_z",
        "depth_vs_correlation_length", "correlation_length", "amplitude", "rms",
        "mesh_vs_wavelength_z", "mesh_vs_curvature", "mesh_vs_correlation", "sei"])
def test_config_errors_name_the_key(text, message):
    """Cross-field checks of the 3D surface run while the config is parsed, before gmsh."""
    with pytest.raises(ConfigError, match=r"geometry \(line 1\): " + message):
        config_from_text(text)


def test_field_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"geometry.wavelength_z \(line 4\): .*greater than 0"):
        config_from_text(_3D + "  wavelength_z: -1.0e-6\n")
    with pytest.raises(ConfigError, match=r"geometry.wavelength_z \(line 4\): .*micrometres"):
        config_from_text(_3D + "  wavelength_z: 10\n")


def test_defaults_and_the_example_config():
    """``kind: rough_interface, dim: 3`` alone is the 2D default sinusoid extruded along z
    (depth = width); the example config is a 3D current-distribution run; a mechanics
    section is accepted in 3D."""
    g = config_from_text(_3D).geometry
    assert (g.amplitude_value, g.wavelength_value, g.wavelength_z) == (1e-6, 1e-5, None)
    assert g.cell_depth == g.width and g.projected_area == pytest.approx(g.width**2)
    example = load_config(REPO / "configs" / "rough_interface_3d_li_llzo.yaml")
    assert example.geometry.kind == "rough_interface" and example.geometry.dim == 3
    assert example.mechanics is None
    assert config_from_text(_3D + "mechanics: {}\n").mechanics is not None


# ----------------------------------------------------------------------------- current
@pytest.mark.mpi
def test_current_concentrates_at_the_peaks(shared_tmp):
    """Egg crate A = 0.05 um, wavelength = wavelength_z = width = depth = 4 um (A k = 0.111
    with k = |(k_x, k_z)|), electrolyte 4 um (exp(-k L) = 1.4e-4), linear kinetics at
    Wa = kappa k / (i0 f) = 1, interface elements wavelength / 16 with quadratic phi: the
    contact integral of i_n is i_app W D (measured to 5e-15 relative: a linear problem and a
    direct solver), the peaks (corners x = z = 0 and x = z = W) carry more than the valleys
    (x = W / 2, z = 0 and x = 0, z = D / 2), the largest |i_n| is at a peak, and the
    modulation follows
    A k / (1 + Wa) = 0.0555 (module docstring) within 1 %: measured at the corners
    (i_peak - i_valley) / (2 i_app) 0.0554 (-0.2 %; peaks 1.0549 i_app, valleys 0.9441), and
    the least-squares fit of i_n / i_app = c0 + c1 cos(k_x x) cos(k_z z) over the interface
    nodes c1 = 0.0555 (-0.09 %). With linear phi the corners give +2.7 % and +3.5 % at this
    mesh, the fit +4.4 %."""
    kappa, i_app = 0.04, -10.0  # S/m (LLZO default), A/m^2 (plating)
    amp, lam = 0.05e-6, 4e-6
    k_x = 2 * np.pi / lam
    k = math.hypot(k_x, k_x)
    f_rt = 1 / thermal_voltage(298.15)
    config = RunConfig.model_validate({
        "geometry": {"kind": "rough_interface", "dim": 3, "width": lam, "depth": lam,
                     "li_thickness": 1e-6, "electrolyte_thickness": 4e-6, "amplitude": amp,
                     "wavelength": lam, "wavelength_z": lam, "mesh_size": 1e-6,
                     "interface_mesh_size": lam / 16},
        "kinetics": {"model": "linear", "i0": kappa * k / f_rt},
        "control": {"current_density": i_app},
        "discretisation": {"phi_degree": 2},
        "solver": {"linear_solver": "direct"},
    })
    summary = simulation.run(config, shared_tmp / "run")
    assert summary["i_mean"] * summary["contact_fraction"] == pytest.approx(i_app, rel=1e-6)
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(shared_tmp / "run" / "interface.csv", delimiter=",", names=True)
    x, y, z, i_n = table["x"], table["y"], table["z"], table["i_n"] / i_app
    shape = np.cos(k_x * x) * np.cos(k_x * z)
    assert y == pytest.approx(amp * shape, abs=1e-4 * amp)  # the nodes are on the surface

    def at(px: float, pz: float) -> float:
        node = np.flatnonzero(np.hypot(x - px, z - pz) < 1e-3 * lam)
        assert len(node) == 1  # the corners are mesh nodes
        return float(i_n[node[0]])

    peaks, valleys = (at(0.0, 0.0), at(lam, lam)), (at(lam / 2, 0.0), at(0.0, lam / 2))
    assert min(peaks) > 1 > max(valleys)
    expected = amp * k / 2
    for peak in peaks:
        for valley in valleys:
            assert (peak - valley) / 2 == pytest.approx(expected, rel=0.01)
    fit, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(shape), shape]), i_n, rcond=None)
    assert fit[1] == pytest.approx(expected, rel=0.01)
    assert shape[np.argmax(i_n)] > 0.99
    assert summary["i_max"] / i_app == pytest.approx(i_n.max(), rel=1e-9)
