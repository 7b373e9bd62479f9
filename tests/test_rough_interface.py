"""Rough interface (2D, Li | electrolyte contact on y = f(x)): tags and measures against the
exact profile, convergence of the interface length under refinement, the random profile's
statistics and reproducibility, config errors, and the current distribution on a sinusoid.

Measures. Li lies below f, so its area is width li_thickness + int f dx and the electrolyte's
width electrolyte_thickness - int f dx. The mesh puts its interface nodes on the spline
through f (module ``ecm_fem.geometry.rough_interface``: the spline is within 1e-5 of the
amplitude of f), and the facets are chords of it. A chord of length h on a curve of curvature
kappa is shorter than its arc by h^3 kappa^2 / 24, so the polygon misses
(h^2 / 24) int kappa^2 ds of the arc length: O(h^2), with h the interface element size. The
sagittas h^3 kappa / 12 enclosed between chord and arc change the areas by
(h^2 / 12) int kappa ds, which nearly cancels between peaks and valleys.

Current distribution. For a small sinusoid f = A cos(k x) on an equipotential Li with linear
kinetics (charge-transfer resistance R = 1 / (i0 f)) under an electrolyte of conductivity kappa
much thicker than 1 / k, the potential perturbation c cos(k x) exp(-k y) gives, to first order
in A k,

    i_n / i_app = 1 + A k cos(k x) / (1 + Wa),   Wa = kappa k R,

so the peaks (x = 0, where the Li bulges towards the counter electrode) carry more current than
the valleys, by a factor that the kinetics lower. The second order adds the same cos(2 k x) term
to peak and valley, so (i_peak - i_valley) / (2 i_app) follows the formula to O((A k)^2)
relative.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.rough_interface import RoughInterfaceGeometry
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, L_LI, L_E = 18e-6, 10e-6, 30e-6
AMPLITUDE, WAVELENGTH = 1e-6, 8e-6  # width 2.25 wavelengths: int f != 0, f(W) = 0 on a slope


def sinusoid(h_if: float = 1e-6, **extra) -> dict:
    return {"kind": "rough_interface", "width": W, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "amplitude": AMPLITUDE, "wavelength": WAVELENGTH,
            "mesh_size": 5e-6, "interface_mesh_size": h_if, **extra}


def random_profile(**extra) -> dict:
    return {"kind": "rough_interface", "profile": "random", "width": W, "li_thickness": L_LI,
            "electrolyte_thickness": L_E, "rms": 0.4e-6, "correlation_length": 3e-6,
            "mesh_size": 5e-6, "interface_mesh_size": 0.5e-6, **extra}


def exact_integrals(g: RoughInterfaceGeometry, panels: int = 64) -> dict[str, float]:
    """int f dx, arc length int sqrt(1 + f'^2) dx and int kappa^2 ds over the width, by
    40-point Gauss-Legendre on ``panels`` equal panels (the integrands are analytic: exact to
    rounding, checked against twice the panels in the tests)."""
    t, w = np.polynomial.legendre.leggauss(40)
    edges = np.linspace(0.0, g.width, panels + 1)
    half = np.diff(edges) / 2
    x = ((edges[:-1] + edges[1:]) / 2)[:, None] + half[:, None] * t
    weights = half[:, None] * w
    f, df, ddf = (g.profile_values(x, d) for d in range(3))
    ds = np.sqrt(1 + df**2)
    return {"area": float(np.sum(weights * f)), "arc": float(np.sum(weights * ds)),
            "kappa2": float(np.sum(weights * ddf**2 / ds**5))}


def measures(md) -> dict[str, float]:
    ion = md.ion
    return {
        "li": tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"]),
        "electrolyte": tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"]),
        "interface": tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["interface"]),
        "interface_parent": tagged_measure(md.mesh, md.facet_tags, "dS", FACET_TAGS["interface"]),
        "li_cc": tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS["li_cc"]),
        "counter": tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["counter"]),
        "side": tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS["side"]),
        "side_electrolyte": tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["side"]),
    }


_MESHES: dict = {}


def mesh_of(geometry: dict):
    key = repr(sorted(geometry.items()))
    if key not in _MESHES:
        config = RunConfig.model_validate({"geometry": geometry})
        _MESHES[key] = (config, generate(config))
    return _MESHES[key]


# ----------------------------------------------------------------------------- sinusoid
@pytest.mark.mpi
def test_sinusoid_measures_converge_to_the_profile():
    """Width 2.25 wavelengths, A = 1 um, wavelength 8 um, interface elements 1, 0.5, 0.25 um:
    - every tag present, no SEI or grain cells; li_cc and counter = width, the sides
      2 (L_li + L_e) together and L_e - f(0) + L_e - f(W) on the electrolyte side (exact: straight);
    - the interface length short of the exact arc by (h^2 / 24) int kappa^2 ds within 10 %
      (measured 0.93, 0.995, 1.000 of it: 4.8e-3, 1.3e-3, 3.2e-4 relative) and falling by more
      than 3.5x per halving (measured 3.75, 3.98: second order);
    - the Li area off width L_li + int f by (h^2 / 12) int kappa ds within 20 % (measured
      -2.9e-4, -7.7e-5, -1.9e-5 relative; the electrolyte takes the opposite error), falling
      by more than 3.5x per halving; Li + electrolyte = width (L_li + L_e) to round-off."""
    deficits, area_errors = [], []
    for h_if in (1e-6, 0.5e-6, 0.25e-6):
        config, md = mesh_of(sinusoid(h_if))
        g = config.geometry
        exact = exact_integrals(g)
        assert exact_integrals(g, 128)["arc"] == pytest.approx(exact["arc"], rel=1e-13)
        m = measures(md)
        for name, tag in CELL_TAGS.items():
            count = md.mesh.comm.allreduce(len(md.cell_tags.find(tag)), op=MPI.SUM)
            assert (count > 0) == (name in ("li", "electrolyte")), name
        f_ends = g.profile_values(np.array([0.0, W]))
        assert m["li_cc"] == pytest.approx(W, rel=1e-12)
        assert m["counter"] == pytest.approx(W, rel=1e-12)
        assert m["side"] == pytest.approx(2 * (L_LI + L_E), rel=1e-12)
        assert m["side_electrolyte"] == pytest.approx(2 * L_E - f_ends.sum(), rel=1e-12)
        assert m["interface_parent"] == pytest.approx(m["interface"], rel=1e-12)
        assert m["li"] + m["electrolyte"] == pytest.approx(W * (L_LI + L_E), rel=1e-12)
        # int kappa ds = atan f'(W) - atan f'(0): the turn of the tangent
        turn = float(np.diff(np.arctan(g.profile_values(np.array([0.0, W]), 1)))[0])
        area_error = m["li"] - (W * L_LI + exact["area"])
        assert area_error == pytest.approx(h_if**2 / 12 * turn, rel=0.2)
        deficit = exact["arc"] - m["interface"]
        assert deficit == pytest.approx(h_if**2 / 24 * exact["kappa2"], rel=0.1)
        deficits.append(deficit / exact["arc"])
        area_errors.append(abs(area_error))
    assert deficits[0] < 5e-3
    for errors in (deficits, area_errors):
        assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 3.5, errors


def test_sinusoid_profile_values():
    """f = A cos(2 pi x / wavelength) in metres, a peak at x = 0, and its derivatives."""
    g = RunConfig.model_validate({"geometry": sinusoid()}).geometry
    x = np.linspace(0.0, W, 7)
    k = 2 * np.pi / WAVELENGTH
    assert g.profile_values(x) == pytest.approx(AMPLITUDE * np.cos(k * x), abs=1e-12 * AMPLITUDE)
    assert g.profile_values(x, 1) == pytest.approx(-AMPLITUDE * k * np.sin(k * x),
                                                   abs=1e-12 * AMPLITUDE * k)
    assert g.profile_values(x, 2) == pytest.approx(-AMPLITUDE * k**2 * np.cos(k * x),
                                                   abs=1e-12 * AMPLITUDE * k**2)
    assert float(g.profile_values(0.0)) == pytest.approx(AMPLITUDE, rel=1e-15)
    assert g.profile_extent() == pytest.approx((-AMPLITUDE, AMPLITUDE, 1 / (AMPLITUDE * k**2)))


@pytest.mark.mpi
def test_same_mesh_on_any_number_of_ranks():
    """gmsh runs on rank 0: the mesh distributed over all ranks has as many cells and the same
    interface as the one each rank builds alone (MPI.COMM_SELF)."""
    for geometry in (sinusoid(), random_profile()):
        config = RunConfig.model_validate({"geometry": geometry})
        shared, alone = generate(config, MPI.COMM_WORLD), generate(config, MPI.COMM_SELF)
        for a, b in ((shared.mesh, alone.mesh), (shared.ion.mesh, alone.ion.mesh)):
            assert a.topology.index_map(2).size_global == b.topology.index_map(2).size_global
        lengths = [tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
                   for md in (shared, alone)]
        assert lengths[0] == pytest.approx(lengths[1], rel=1e-12)


# ----------------------------------------------------------------------------- random profile
def sample(g: RoughInterfaceGeometry, n: int = 4096) -> np.ndarray:
    """f at n equally spaced points of one period [0, width): the mean and the mean square of
    a trigonometric polynomial of degree < n / 2 are exact to rounding there."""
    return g.profile_values(np.arange(n) * g.width / n)


def test_random_profile_statistics_and_reproducibility():
    """Zero mean and rms exact to 1e-12, periodic f(0) = f(width), the same profile for the same
    seed (the default seed is 0) and a different one for another seed."""
    g = RunConfig.model_validate({"geometry": random_profile()}).geometry
    f = sample(g)
    assert len(g.fourier_modes()[0]) * 2 < len(f)
    assert abs(f.mean()) < 1e-12 * g.rms
    assert np.sqrt(np.mean(f**2)) == pytest.approx(g.rms, rel=1e-12)
    ends = g.profile_values(np.array([0.0, W]))
    assert ends[1] == pytest.approx(ends[0], abs=1e-12 * g.rms)
    again = RunConfig.model_validate({"geometry": random_profile(seed=0)}).geometry
    assert np.array_equal(sample(again), f)
    other = sample(RunConfig.model_validate({"geometry": random_profile(seed=1)}).geometry)
    assert np.sqrt(np.mean(other**2)) == pytest.approx(g.rms, rel=1e-12)
    assert np.max(np.abs(other - f)) > 0.5 * g.rms


def test_random_profile_has_the_gaussian_correlation():
    """Over 200 seeds on a wide cell (width = 40 xi), the mean circular autocorrelation
    <f(x) f(x + r)> / rms^2 for r up to 3 xi follows exp(-r^2 / xi^2) within 0.06 (measured
    0.049: the left-out k = 0 share s = sqrt(pi) xi / width = 0.044), and within 0.02 once
    that share is taken out, (exp(-r^2 / xi^2) - s) / (1 - s) (measured 0.012, sampling
    noise)."""
    xi, width = 1e-6, 40e-6
    lag = np.arange(64) * width / 512
    mean = np.zeros(len(lag))
    for seed in range(200):
        g = RoughInterfaceGeometry(kind="rough_interface", profile="random", width=width,
                                   rms=0.1e-6, correlation_length=xi, seed=seed,
                                   interface_mesh_size=0.25e-6, electrolyte_thickness=10e-6)
        f = sample(g, 512)
        spectrum = np.abs(np.fft.rfft(f)) ** 2
        mean += np.fft.irfft(spectrum, n=512)[: len(lag)] / np.sum(f**2) / 200
    gauss, share = np.exp(-((lag / xi) ** 2)), np.sqrt(np.pi) * xi / width
    assert np.max(np.abs(mean - gauss)) < 0.06
    assert np.max(np.abs(mean - (gauss - share) / (1 - share))) < 0.02


@pytest.mark.mpi
def test_random_profile_mesh():
    """The random profile meshed: areas width L_li and width L_e (zero mean; the chord errors
    cancel on a periodic curve, measured 2e-7 relative), the interface short of the exact arc
    by (h^2 / 24) int kappa^2 ds within 10 % (measured 1.2e-3 relative), the side lengths
    from f(0) = f(width)."""
    config, md = mesh_of(random_profile())
    g = config.geometry
    exact = exact_integrals(g)
    m = measures(md)
    assert abs(exact["area"]) < 1e-12 * W * g.rms
    assert m["li"] == pytest.approx(W * L_LI, rel=1e-6)
    assert m["electrolyte"] == pytest.approx(W * L_E, rel=1e-6)
    assert exact["arc"] - m["interface"] == pytest.approx(
        g.interface_mesh_size**2 / 24 * exact["kappa2"], rel=0.1)
    assert m["side_electrolyte"] == pytest.approx(2 * (L_E - float(g.profile_values(0.0))),
                                                  rel=1e-12)
    for name in ("li_cc", "counter"):
        assert m[name] == pytest.approx(W, rel=1e-12)


# ----------------------------------------------------------------------------- config
def test_defaults_are_valid():
    """``kind: rough_interface`` alone is a sinusoid with the documented defaults, and
    ``profile: random`` alone a random profile (seed 0)."""
    g = config_from_text("geometry:\n  kind: rough_interface\n").geometry
    assert (g.profile, g.amplitude_value, g.wavelength_value) == ("sinusoidal", 1e-6, 1e-5)
    g = config_from_text("geometry:\n  kind: rough_interface\n  profile: random\n").geometry
    assert (g.rms_value, g.correlation_length_value, g.seed_value) == (5e-7, 4e-6, 0)


@pytest.mark.parametrize(("extra", "message"), [
    ("  rms: 1.0e-7\n", "rms: not a parameter of profile: sinusoidal"),
    ("  seed: 3\n", "seed: not a parameter of profile: sinusoidal"),
    ("  profile: random\n  wavelength: 1.0e-5\n", "wavelength: not a parameter of profile: random"),
    ("  wavelength: 3.0e-5\n", r"wavelength = 3e-05 m must not exceed width = 2e-05 m"),
    ("  profile: random\n  correlation_length: 1.1e-5\n",
     r"correlation_length = 1.1e-05 m must be at most width / 2 = 1e-05 m"),
    ("  amplitude: 6.0e-6\n  wavelength: 2.0e-5\n", r"amplitude: the profile spans y = -6e-06 "
     r"\.\. 6e-06 m; it must leave at least half of li_thickness"),
    ("  profile: random\n  rms: 3.0e-6\n", r"rms: the profile spans y = "),
    ("  amplitude: 2.0e-7\n  wavelength: 4.0e-6\n", r"interface_mesh_size = 1e-06 m does not "
     r"resolve the profile: it must be at most 5e-07 m \(the smaller of wavelength / 8"),
    ("  amplitude: 3.0e-6\n", r"interface_mesh_size = 1e-06 m does not resolve the profile: it "
     r"must be at most 8.44\d*e-07 m .*radius of curvature, 8.44\d*e-07 m\)"),
    ("  profile: random\n  correlation_length: 2.0e-6\n", r"interface_mesh_size = 1e-06 m does "
     r"not resolve the profile: it must be at most 5e-07 m \(the smaller of "
     "correlation_length / 4"),
    ("  sei_thickness: 1.0e-8\n", "sei_thickness: a resolved SEI is not supported"),
], ids=["rms_on_sinusoid", "seed_on_sinusoid", "wavelength_on_random", "wavelength",
        "correlation_length", "amplitude", "rms", "mesh_vs_wavelength", "mesh_vs_curvature",
        "mesh_vs_correlation", "sei"])
def test_config_errors_name_the_key(extra, message):
    """Cross-field checks run while the config is parsed, before gmsh."""
    with pytest.raises(ConfigError, match=r"geometry \(line 1\): " + message):
        config_from_text("geometry:\n  kind: rough_interface\n" + extra)


def test_field_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"geometry.seed \(line 4\): .*greater than or equal"):
        config_from_text("geometry:\n  kind: rough_interface\n  profile: random\n  seed: -1\n")
    with pytest.raises(ConfigError, match=r"geometry.profile \(line 3\): .*'sinusoidal'"):
        config_from_text("geometry:\n  kind: rough_interface\n  profile: fractal\n")
    with pytest.raises(ConfigError, match=r"geometry.amplitude \(line 3\): .*greater than 0"):
        config_from_text("geometry:\n  kind: rough_interface\n  amplitude: 0\n")


# ----------------------------------------------------------------------------- current
@pytest.mark.mpi
def test_current_concentrates_at_the_peaks(shared_tmp):
    """A = 0.1 um, wavelength = width = 4 um (A k = 0.157), electrolyte 8 um (exp(-k L) = 3e-6),
    linear kinetics at Wa = kappa k / (i0 f) = 1, interface elements wavelength / 40: the
    contact integral of i_n is i_app width (to solver tolerance), the peaks x = 0, width carry
    more than the valley x = width / 2, and (i_peak - i_valley) / (2 i_app) is A k / (1 + Wa)
    within 1 % (first order in A k, module docstring; measured -0.14 %, and +0.06 % with
    elements wavelength / 20; the mean of peak and valley is 0.996, the second order)."""
    kappa, i_app = 0.04, -10.0  # S/m (LLZO default), A/m^2 (plating)
    amp, lam = 0.1e-6, 4e-6
    k = 2 * np.pi / lam
    f_rt = 1 / thermal_voltage(298.15)
    config = RunConfig.model_validate({
        "geometry": {"kind": "rough_interface", "width": lam, "li_thickness": 2e-6,
                     "electrolyte_thickness": 8e-6, "amplitude": amp, "wavelength": lam,
                     "mesh_size": 0.5e-6, "interface_mesh_size": 0.1e-6},
        "kinetics": {"model": "linear", "i0": kappa * k / f_rt},
        "control": {"current_density": i_app},
        "solver": {"linear_solver": "direct"},
    })
    summary = simulation.run(config, shared_tmp / "run")
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(shared_tmp / "run" / "interface.csv", delimiter=",", names=True)
    table = table[np.argsort(table["x"])]  # x is monotone along the interface
    x, y, i_n = table["x"], table["y"], table["i_n"]
    contact = float(np.sum(0.5 * (i_n[1:] + i_n[:-1]) * np.hypot(np.diff(x), np.diff(y))))
    assert contact == pytest.approx(i_app * lam, rel=1e-9)
    assert x[0] == pytest.approx(0.0, abs=1e-15) and y[0] == pytest.approx(amp, rel=1e-9)
    peak, valley = i_n[0] / i_app, float(np.interp(lam / 2, x, i_n)) / i_app
    assert peak == pytest.approx(i_n[-1] / i_app, rel=1e-3)
    assert peak > 1 > valley
    assert (peak - valley) / 2 == pytest.approx(amp * k / 2, rel=0.01)
    assert summary["i_max"] == pytest.approx(i_n[0], rel=1e-3)
