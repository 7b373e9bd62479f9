"""The Monroe-Newman linear-stability tool (ecm_fem.stability, PHYSICS.md 3.1).

Closed form vs published: the stability parameter of the closed-form half-space stresses with
``monroe_newman_dmu`` equals Ahmad and Viswanathan's chi (PRL 119 (2017) 056003; calcMu.m) to
round-off for any moduli, volumes and surface energy, and the neutral ratio at Monroe and
Newman's values (G_Li = 3.4 GPa, nu_Li = 0.42, nu_E = 0.33, Omega_Li+/Omega_Li = 3.85) is
2.1592, the published "about 2.16"; the literal 3D reading of PHYSICS.md 3.1 gives 0.482.

Finite elements (P2, plane strain, half wavelength with symmetry sides, 2 wavelengths deep):
- interface stresses: the largest error of the cos(kx) amplitudes of the six nonzero one-sided
  stress components, relative to G_Li k delta, was measured 0.243, 0.096, 0.028, 0.0074 at 4,
  8, 16, 32 cells per half wavelength (second order, as for P2 stresses). Asserted: each
  halving divides it by more than 2.5, and it is below 1e-2 at 32 cells.
- neutral ratio at v = 3.85: 2.2866, 2.2063, 2.1733, 2.1630 at 4, 8, 16, 32 cells (relative
  error 5.9e-2, 2.2e-2, 6.6e-3, 1.75e-3 vs the closed form 2.15919: second order). Asserted at
  32 cells: within 5e-3 relative of the closed form (three times the measured discretisation
  error, which does not depend on the partitioning), hence within 1 % of the published 2.16.
- neutral curve: at v = 0.5, 2, 6 (both stability regimes: below v = 1 the interface is
  stable under the curve, above it over the curve) the finite-element neutral ratio follows
  the published generalisation to the same 5e-3.
- with surface energy at lambda = 2 nm, S = chi / (Omega_Li G_Li k) follows the closed form
  to 0.02 (measured 0.010 at G_E/G_Li = 1, 0.003 at 4; S is 0.62 and -4.77 there).
- below the neutral ratio (G_E/G_Li = 1 at v = 3.85) dmu_e is larger at the peak than in the
  valley (the peaks grow), above it (4) smaller.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest

from ecm_fem import stability as st
from ecm_fem.physics.stress_coupling import interface_stress_from_tensors

CELLS = 32
NEUTRAL_RTOL = 5e-3


@pytest.fixture(scope="module")
def problem() -> st.InterfaceProblem:
    return st.InterfaceProblem(MPI.COMM_WORLD, st.Materials(), cells=CELLS)


def test_closed_form_is_the_published_criterion():
    rng = np.random.default_rng(1)
    for _ in range(20):
        m = st.Materials(g_li=rng.uniform(1e9, 1e10), nu_li=rng.uniform(0.2, 0.45),
                         nu_e=rng.uniform(0.2, 0.45), v=rng.uniform(0.1, 6.0),
                         gamma=rng.uniform(0.0, 1.0))
        k, g = 2 * np.pi / rng.uniform(1e-8, 1e-5), rng.uniform(0.05, 20.0)
        assert st.closed_form_chi(g, m, k) == pytest.approx(st.published_chi(g, m, k),
                                                             rel=1e-9)
    m = st.Materials()
    assert st.published_neutral_ratio(3.85) == pytest.approx(2.159187, rel=1e-6)
    assert st.closed_form_neutral_ratio(m) == pytest.approx(st.published_neutral_ratio(3.85),
                                                            rel=1e-10)
    assert round(st.closed_form_neutral_ratio(m), 2) == st.PUBLISHED_NEUTRAL_RATIO
    for v in (0.3, 0.5, 0.9, 1.2, 2.0, 6.0):
        mv = st.Materials(v=v)
        g = st.published_neutral_ratio(v)
        assert abs(st.closed_form_chi(g, mv)) < 1e-9 * mv.omega_li * mv.g_li
        # v > 1: stable (chi < 0) above the neutral ratio; v < 1: below it
        sign = 1.0 if v > 1 else -1.0
        assert sign * st.closed_form_chi(1.1 * g, mv) < 0 < sign * st.closed_form_chi(g / 1.1, mv)


def test_literal_reading_gives_the_wrong_ratio():
    m = st.Materials()

    def chi(g):
        li, el = st.closed_form_interface_stresses(g, m)
        return st.chi_from_stresses(li, el, m, 1.0, 1.0, st.literal_reading_dmu)

    assert st.find_root(chi, 0.2, 1.0) == pytest.approx(0.482, abs=1e-3)


@pytest.mark.mpi
def test_fe_interface_stresses_converge_to_closed_form():
    m = st.Materials()
    errors = []
    for cells in (4, 8, 16, 32):
        p = st.InterfaceProblem(MPI.COMM_WORLD, m, cells=cells)
        r = p.solve(1.0)
        li, el = st.closed_form_interface_stresses(1.0, m, p.k, p.delta)
        scale = m.g_li * p.k * p.delta
        errors.append(max(np.abs(r.sigma_li - li).max(), np.abs(r.sigma_e - el).max()) / scale)
    assert all(e0 / e1 > 2.5 for e0, e1 in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-2, errors


@pytest.mark.mpi
def test_neutral_ratio_monroe_newman(problem):
    g = problem.neutral_ratio(rtol=1e-8)
    assert g == pytest.approx(st.closed_form_neutral_ratio(st.Materials()), rel=NEUTRAL_RTOL)
    assert g == pytest.approx(st.PUBLISHED_NEUTRAL_RATIO, rel=1e-2)
    # the same number on every rank
    assert MPI.COMM_WORLD.allreduce(g, op=MPI.MAX) == MPI.COMM_WORLD.allreduce(g, op=MPI.MIN)


@pytest.mark.mpi
@pytest.mark.parametrize("v", [0.5, 2.0, 6.0])
def test_neutral_curve_follows_published_generalisation(problem, v):
    g = problem.neutral_ratio(st.Materials(v=v), rtol=1e-8)
    assert g == pytest.approx(st.published_neutral_ratio(v), rel=NEUTRAL_RTOL)


@pytest.mark.mpi
def test_peaks_grow_below_the_neutral_ratio(problem):
    x, dmu = problem.dmu_profile(1.0)
    assert x[0] == 0.0 and x[-1] == pytest.approx(0.5 * problem.wavelength)
    assert dmu[0] > 0 > dmu[-1]
    assert problem.chi(1.0) > 0
    chi = st.closed_form_chi(1.0, st.Materials(), problem.k)
    # the vertex profile follows chi delta cos(kx)
    assert np.abs(dmu - chi * problem.delta * np.cos(problem.k * x)).max() \
        < 0.02 * chi * problem.delta
    _, dmu = problem.dmu_profile(4.0)
    assert dmu[0] < 0 < dmu[-1]
    assert problem.chi(4.0) < 0


@pytest.mark.mpi
def test_surface_tension_at_nanometre_wavelength():
    """Any length scale in SI units, and the surface term: lambda = 2 nm, gamma = 0.556 J/m^2,
    where the surface energy moves the neutral ratio from 2.16 to 1.42 (closed form)."""
    m = st.Materials(gamma=0.556)
    p = st.InterfaceProblem(MPI.COMM_WORLD, m, wavelength=2e-9, cells=CELLS)
    scale = m.omega_li * m.g_li * p.k
    for g in (1.0, 4.0):
        assert abs(p.chi(g) - st.closed_form_chi(g, m, p.k)) < 0.02 * scale
    assert st.closed_form_neutral_ratio(m, p.k) == pytest.approx(1.4244, abs=1e-4)


def test_tensor_measures_are_frame_independent():
    """interface_stress_from_tensors on a rotated plane-strain state and normal gives the same
    measures; the isotropic 3D rule (nu) equals the in-plane rule on elastic plane strain."""
    li, el = st.closed_form_interface_stresses(1.5, st.Materials())
    base = interface_stress_from_tensors(li, el, [0.0, 1.0, 0.0], 2.0)
    for angle in (0.3, 1.2, 2.5):
        c, s = np.cos(angle), np.sin(angle)
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        rot = interface_stress_from_tensors(R @ li @ R.T, R @ el @ R.T, R @ [0.0, 1.0, 0.0], 2.0)
        for name in ("sigma_nn_li", "sigma_nn_e", "sigma_tt_li", "sigma_tt_e", "sigma_h_li",
                     "tau_nn_e"):
            assert getattr(rot, name) == pytest.approx(getattr(base, name), rel=1e-12)
    iso = interface_stress_from_tensors(li, el, [0.0, 1.0, 0.0], nu=(st.NU_LI, st.NU_E))
    assert iso.sigma_tt_li == pytest.approx(li[0, 0], rel=1e-12)
    assert iso.sigma_tt_e == pytest.approx(el[0, 0], rel=1e-12)
    # arrays of points work too
    many = interface_stress_from_tensors(np.stack([li, 2 * li]), np.stack([el, 2 * el]),
                                         np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert many.sigma_tt_li == pytest.approx([li[0, 0], 2 * li[0, 0]], rel=1e-12)


@pytest.mark.mpi
def test_command_writes_table_and_plot(shared_tmp, capsys):
    from ecm_fem.cli import main

    out = shared_tmp / "stab"
    assert main(["stability", "--cells", "8", "--ratios", "1,4", "--curve", "2",
                 "-o", str(out)]) == 0
    MPI.COMM_WORLD.barrier()
    assert (out / "stability.csv").read_text().count("\n") == 3
    assert (out / "neutral_curve.csv").exists() and (out / "stability.png").exists()
    if MPI.COMM_WORLD.rank == 0:
        text = capsys.readouterr().out
        assert "neutral G_E/G_Li" in text and "grow" in text and "decay" in text
