"""Li protrusion (2D, half of a semi-elliptic boss on the symmetry line x = 0): geometry measures
against the analytic shape, and current focusing at the protrusion tip against the classical
primary-current solution.

Primary limit. With linear kinetics the distribution is governed by the Wagner number
Wa = kappa / (i0 f b) over the base half width b (Newman & Thomas-Alyea, Electrochemical
Systems, 3rd ed., ch. 18). As Wa -> 0 the Li is an equipotential and the electrolyte potential is
that of a grounded conducting elliptic cylinder (semi-axes h along the applied field, b across)
in a uniform field E0 = i_app / kappa, the plane y = 0 being an equipotential of that solution
(Landau & Lifshitz, Electrodynamics of Continuous Media, ch. I; Smythe, Static and Dynamic
Electricity, ch. IV). Written out with the map z = y + i x = alpha zeta + beta / zeta,
alpha = (h + b) / 2, beta = (h - b) / 2, which takes |zeta| = 1 to the ellipse: the complex
potential is -E0 alpha (zeta - 1 / zeta), so on the boss (y = h cos t, x = b sin t)

    i_n / i_app = (h + b) cos t / sqrt(h^2 sin^2 t + b^2 cos^2 t),

(1 + h/b at the tip t = 0), the boss between the tip and abscissa x collects exactly
i_app (1 + h/b) x, and far away the boss is a line dipole of strength P = E0 h (h + b) / 2.

Finite cell. The side x = width is a symmetry plane, so the cell is one boss of a row with
period 2 width, and the counter boundary y = L holds phi fixed. Both act on the boss through the
dipoles P of the row (first order in P / (E0 width^2); the ellipse's higher multipoles and the
response of each boss to the others are higher order):
- the other bosses lower the field at x = 0 by the sum of P / (2 n width)^2 over n != 0, a
  relative delta = pi^2 h (h + b) / (24 width^2);
- the row's potential has Fourier modes cos(m pi x / width) decaying like exp(-m pi y / width);
  cancelling them at y = L raises the field at the boss by a relative
  epsilon = pi^2 h (h + b) / width^2 * sum_m m q^m / (1 - q^m), q = exp(-2 pi L / width):
  exponentially small in L / width (5e-5 at L = width = 20 b), not the (h/L)^2 of an isolated
  boss between two plates.
The reference is (1 + h/b)(1 - delta + epsilon). Scratch runs (not repeated here) put the boss
current within 0.06-0.09 % of it for h = b, width 10 b and 20 b, L from 3 b to 20 b (epsilon up to
0.05), and the changes with width and L are asserted below.

Discretisation (h/b = 1 and 2, width = L = 20 b, Wa = 1e-4, interface elements b/20, tip b/80):
tip factor 0.05 % and 0.15 % above the reference, boss current 0.08 % each; with elements b/5
0.2-0.5 %. The floor of about 0.1 % comes from the builders' mesh grading (element size grows by
1/8 of the distance from the interface; with a 4x gentler grading the boss error falls to 1e-4).
Nodal i_n next to the tip ripple by about 0.2 % from node to node (the consistent flux of a
nearly Dirichlet Robin condition), so the tip value is asserted within 0.5 %, the boss current
within 0.3 %.
"""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem import simulation
from ecm_fem.config import ConfigError, RunConfig, config_from_text
from ecm_fem.constants import thermal_voltage
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

KAPPA = 0.04  # S/m, LLZO (the library default)
F_RT = 1 / thermal_voltage(298.15)
I_APP = -10.0  # A/m^2, plating
B = 1e-6  # m, base half width of the protrusion in the physics tests


def quarter_ellipse_arc(b: float, h: float, n: int = 256) -> float:
    """Arc length of a quarter ellipse: a quarter of the perimeter by the periodic trapezoidal
    rule, which converges geometrically for this analytic integrand (Trefethen & Weideman, SIAM
    Rev. 56 (2014) 385, sec. 3); n = 256 is exact to rounding for h/b up to 10."""
    t = 2 * np.pi * np.arange(n) / n
    return float(np.mean(np.hypot(b * np.sin(t), h * np.cos(t)))) * 2 * np.pi / 4


def geometry(b: float, h: float, width: float, electrolyte: float, li: float,
             h_if: float, h_max: float) -> dict:
    return {"kind": "li_protrusion", "width": width, "li_thickness": li,
            "electrolyte_thickness": electrolyte, "protrusion_half_width": b,
            "protrusion_height": h, "mesh_size": h_max, "interface_mesh_size": h_if}


# ----------------------------------------------------------------------------- geometry
W, L_LI, L_E = 20e-6, 10e-6, 50e-6


@pytest.mark.mpi
@pytest.mark.parametrize(("b", "h"), [(3e-6, 6e-6), (6e-6, 3e-6)], ids=["tall", "flat"])
def test_protrusion_measures_converge_to_the_shape(b, h):
    """Li area W L_li + pi b h / 4, electrolyte area W L_e - pi b h / 4, interface length
    (W - b) + quarter-ellipse arc; straight boundaries exact. The arc is drawn by chords, so the
    errors are O(h_if^2): below 1e-3 relative with 1 um interface elements and more than 2x
    smaller per halving (measured 2.3-3.8x). Both ellipse orientations (OCC draws a tall one
    turned)."""
    errors = []
    for refine in (1, 2, 4):
        config = RunConfig.model_validate({"geometry": geometry(
            b, h, W, L_E, L_LI, 1e-6 / refine, 5e-6 / refine)})
        md = generate(config)
        for name, tag in CELL_TAGS.items():
            if name in ("li", "electrolyte"):
                assert tagged_measure(md.mesh, md.cell_tags, "dx", tag) > 0
            else:
                assert len(md.cell_tags.find(tag)) == 0
        assert tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS["li_cc"]) == pytest.approx(W)
        assert tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS["side"]) == pytest.approx(
            2 * (L_LI + L_E))
        assert tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds",
                        FACET_TAGS["counter"]) == pytest.approx(W)
        li = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"])
        el = tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"])
        itf = tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
        boss = np.pi * b * h / 4
        errors.append((abs(li / (W * L_LI + boss) - 1), abs(el / (W * L_E - boss) - 1),
                       abs(itf / (W - b + quarter_ellipse_arc(b, h)) - 1)))
    errors = np.array(errors)
    assert errors[0].max() < 1e-3, errors
    assert np.all(errors[1:] < errors[:-1] / 2), errors


@pytest.mark.mpi
def test_same_mesh_on_any_number_of_ranks():
    """gmsh runs on rank 0 of the communicator: the mesh distributed over all ranks has as many
    cells and the same interface as the one each rank builds alone."""
    config = RunConfig.model_validate({"geometry": geometry(3e-6, 6e-6, W, L_E, L_LI, 1e-6, 5e-6)})
    shared, alone = generate(config, MPI.COMM_WORLD), generate(config, MPI.COMM_SELF)
    tdim = shared.mesh.topology.dim
    assert (shared.mesh.topology.index_map(tdim).size_global
            == alone.mesh.topology.index_map(tdim).size_global)
    lengths = [tagged_measure(md.ion.mesh, md.ion.facet_tags, "ds", FACET_TAGS["interface"])
               for md in (shared, alone)]
    assert lengths[0] == pytest.approx(lengths[1], rel=1e-12)


def test_protrusion_config_errors_name_the_field():
    base = "geometry:\n  kind: li_protrusion\n  width: 1.0e-5\n"
    cases = [
        ("  protrusion_half_width: 1.0e-5\n", r"protrusion_half_width = 1e-05 m must be smaller "
         "than width"),
        ("  electrolyte_thickness: 2.0e-6\n  protrusion_height: 2.0e-6\n  mesh_size: 1.0e-6\n",
         "protrusion_height = 2e-06 m must be smaller than electrolyte_thickness"),
        ("  sei_thickness: 1.0e-8\n", "sei_thickness: a resolved SEI is not supported"),
        ("  tip_mesh_size: 2.0e-6\n", "tip_mesh_size = 2e-06 m must not exceed "
         "interface_mesh_size"),
        ("  protrusion_height: 1.0e-7\n", r"tip_mesh_size: the tip elements \(2.5e-07 m\)"),
    ]
    for extra, message in cases:
        with pytest.raises(ConfigError, match=r"geometry \(line 1\): " + message):
            config_from_text(base + extra)


# ----------------------------------------------------------------------------- physics
def reference_tip_factor(h_over_b: float, width_over_b: float,
                         electrolyte_over_b: float | None = None) -> float:
    """(1 + h/b)(1 - delta + epsilon): the isolated boss's tip factor with the first-order
    corrections for the periodic row of bosses (delta) and for the counter boundary at
    L = electrolyte thickness (epsilon, default L = width); module docstring."""
    h, w = h_over_b, width_over_b
    L = w if electrolyte_over_b is None else electrolyte_over_b
    q = np.exp(-2 * np.pi * L / w)
    m = np.arange(1, 20)
    delta = np.pi**2 * h * (h + 1) / (24 * w**2)
    epsilon = np.pi**2 * h * (h + 1) / w**2 * np.sum(m * q**m / (1 - q**m))
    return float((1 + h) * (1 - delta + epsilon))


_SOLVED: dict[tuple, dict[str, float]] = {}  # the same on every rank: tests run in step


def focusing(h_over_b: float, width_over_b: float, elements_per_b: int, wagner: float,
             tmp: Path, electrolyte_over_b: float | None = None,
             discretisation: tuple[int, int] = (1, 1)) -> dict[str, float]:
    """Solve one protrusion cell (electrolyte thickness default width, linear kinetics at Wagner
    number ``wagner``; remembered for later tests) and return the tip current over i_app and
    over the contact mean, the current collected by the boss over i_app b, and the contact
    integral of i_n over i_app W, all from interface.csv (trapezoid rule on the nodal values,
    exact for P1 and linear kinetics)."""
    key = (h_over_b, width_over_b, electrolyte_over_b or width_over_b, elements_per_b, wagner,
           discretisation)
    if key not in _SOLVED:
        _SOLVED[key] = _solve(*key, tmp)
    return _SOLVED[key]


def _solve(h_over_b: float, width_over_b: float, electrolyte_over_b: float,
           elements_per_b: int, wagner: float, discretisation: tuple[int, int],
           tmp: Path) -> dict[str, float]:
    width = width_over_b * B
    config = RunConfig.model_validate({
        "discretisation": {"phi_degree": discretisation[0],
                           "geometry_order": discretisation[1]},
        "geometry": geometry(B, h_over_b * B, width, electrolyte_over_b * B, 2e-6,
                             B / elements_per_b, B),
        "kinetics": {"model": "linear", "i0": KAPPA / (wagner * F_RT * B)},
        "control": {"current_density": I_APP},
        "solver": {"linear_solver": "direct"},
    })
    run_dir = tmp / "_".join(map(str, ("r", h_over_b, width_over_b, electrolyte_over_b,
                                        elements_per_b, wagner, *discretisation)))
    summary = simulation.run(config, run_dir)
    MPI.COMM_WORLD.barrier()  # interface.csv is written by rank 0
    table = np.genfromtxt(run_dir / "interface.csv", delimiter=",", names=True)
    table = table[np.argsort(table["x"])]  # x is monotone along the interface
    x, y, i_n = table["x"], table["y"], table["i_n"]
    assert x[0] == pytest.approx(0, abs=1e-15) and y[0] == pytest.approx(h_over_b * B)

    def integral(k: slice) -> float:
        ds = np.hypot(np.diff(x[k]), np.diff(y[k]))
        return float(np.sum(0.5 * (i_n[k][1:] + i_n[k][:-1]) * ds))

    on_boss = slice(0, int(np.searchsorted(x, B * (1 + 1e-9), side="right")))
    return {"tip": i_n[0] / I_APP, "tip_over_mean": i_n[0] / summary["i_mean"],
            "boss": integral(on_boss) / (I_APP * B),
            "contact": integral(slice(None)) / (I_APP * width),
            "i_max": summary["i_max"] / I_APP,
            "contact_over_width": I_APP / summary["i_mean"]}


WA_PRIMARY = 1e-4  # its correction to the tip factor is about 1e-4 (measured against 1e-5)


@pytest.mark.mpi
@pytest.mark.parametrize("h_over_b", [1.0, 2.0])
def test_primary_tip_current_approaches_one_plus_h_over_b(shared_tmp, h_over_b):
    """Wa = 1e-4, width = L = 20 b: the tip current i_n(tip)/i_app within 0.5 % of
    (1 + h/b)(1 - delta) and the boss current within 0.3 % (module docstring for the
    measured errors); both closer with b/20 interface elements than with b/5; the contact
    integral of i_n is i_app W."""
    ref = reference_tip_factor(h_over_b, 20)
    coarse = focusing(h_over_b, 20, 5, WA_PRIMARY, shared_tmp)
    fine = focusing(h_over_b, 20, 20, WA_PRIMARY, shared_tmp)
    for r in (coarse, fine):
        assert r["contact"] == pytest.approx(1.0, rel=1e-9)
        assert r["i_max"] == pytest.approx(r["tip"], rel=5e-3)  # the peak is at the tip
    assert fine["tip"] == pytest.approx(ref, rel=5e-3)
    assert fine["boss"] == pytest.approx(ref, rel=3e-3)
    for key in ("tip", "boss"):
        assert abs(fine[key] - ref) < abs(coarse[key] - ref), (key, coarse[key], fine[key], ref)


@pytest.mark.mpi
def test_quadratic_potential_needs_curved_elements(shared_tmp):
    """P2 phi on elements whose edges follow the ellipse (geometry_order 2, the default for
    phi_degree 2): tip factor -5.4e-4, -2.2e-4, -1.1e-4 from the reference with b/5, b/10,
    b/20 interface elements (the reference's own first-order corrections are good to about
    1e-4), so b/10 is asserted within 5e-4 and closer than P1 with b/20 (+5.0e-4). On
    straight-sided elements the polygonal boss has corners, and P2 resolves their
    singularities instead: measured 2.14, 2.08, 2.05 at b/5, b/10, b/20 (scratch runs) for a
    reference of 1.996, converging only at first order."""
    ref = reference_tip_factor(1.0, 20)
    curved = focusing(1.0, 20, 10, WA_PRIMARY, shared_tmp, discretisation=(2, 2))
    p1 = focusing(1.0, 20, 20, WA_PRIMARY, shared_tmp)
    straight = focusing(1.0, 20, 5, WA_PRIMARY, shared_tmp, discretisation=(2, 1))
    assert curved["tip"] == pytest.approx(ref, rel=5e-4)
    assert curved["contact"] == pytest.approx(1.0, rel=5e-4)  # trapezoid rule on P2 values
    assert abs(curved["tip"] - ref) < abs(p1["tip"] - ref)
    assert straight["tip"] > ref * 1.05


@pytest.mark.mpi
def test_finite_cell_corrections_match_the_dipole_row(shared_tmp):
    """h = b. Halving the period (width = L = 20 b -> 10 b) lowers the factors by 0.0118
    (delta, less a little epsilon); bringing the counter in (L = 10 b -> 5 b at width 10 b)
    raises them by 0.0187 (epsilon). The first-order estimates must give the boss current's
    changes within 5 % (measured 1.3 % and 2.2 %), which shows the corrections are understood,
    not fitted. The tip value follows the period change equally well (1.3 %); it feels the
    counter's correction field, which varies over the boss on the scale width / pi, more than
    the boss average does (measured 8 %, asserted within 15 %)."""
    wide = focusing(1.0, 20, 20, WA_PRIMARY, shared_tmp)
    narrow = focusing(1.0, 10, 20, WA_PRIMARY, shared_tmp)
    near = focusing(1.0, 10, 20, WA_PRIMARY, shared_tmp, electrolyte_over_b=5)
    period = reference_tip_factor(1.0, 20) - reference_tip_factor(1.0, 10)
    counter = reference_tip_factor(1.0, 10, 5) - reference_tip_factor(1.0, 10)
    for key in ("tip", "boss"):
        assert wide[key] - narrow[key] == pytest.approx(period, rel=0.05), key
    assert near["boss"] - narrow["boss"] == pytest.approx(counter, rel=0.05)
    assert near["tip"] - narrow["tip"] == pytest.approx(counter, rel=0.15)


@pytest.mark.mpi
def test_tip_focusing_fades_as_kinetics_dominate(shared_tmp):
    """h = b, width = 20 b, Wa = 0.01 ... 100: the tip current over the contact mean falls
    monotonically to 1 (within 1 % at Wa = 100, measured 0.5 %), with the excess falling like
    1/Wa for large Wa; over i_app it tends to width / contact length, since the contact is
    longer than the cell; at Wa = 0.01 it is within 1 % of the primary value."""
    wa = [0.01, 0.1, 1.0, 10.0, 100.0]
    runs = [focusing(1.0, 20, 10, w, shared_tmp) for w in wa]
    ratio = [r["tip_over_mean"] for r in runs]
    assert all(b < a for a, b in zip(ratio, ratio[1:], strict=False)), ratio
    assert ratio[-1] == pytest.approx(1.0, abs=0.01)
    assert 7 < (ratio[-2] - 1) / (ratio[-1] - 1) < 13, ratio
    assert runs[-1]["tip"] == pytest.approx(1 / runs[-1]["contact_over_width"], rel=0.01)
    assert runs[0]["tip"] == pytest.approx(reference_tip_factor(1.0, 20), rel=0.01)
