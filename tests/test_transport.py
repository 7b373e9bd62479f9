"""Binary-salt transport (physics.transport, problem.SaltTransport): the verification ladder.

- Formulas in c parse, evaluate alike in UFL and NumPy, and reject what is not arithmetic.
- Config checks name the key: an unknown region, a missing property, a formula where the
  electrolyte is single-ion, an impossible property value, t_end = 0.
- t+ = 1 recovers the single-ion problem exactly (same V_we and phi to round-off).
- EC-3 (VERIFICATION.md): the steady Li | binary electrolyte | Li cell at i = i_lim / 2. The
  concentration is linear, c0 (1 +- 1/2) at the electrodes, and
  V_we = eta_BV(i; i0 (c_we/c0)^alpha_a) + i L / kappa + (2 R T / F)(1 - t+) ln 3,
  whose last term, the concentration overpotential, is 45.162 mV. VERIFICATION.md gives
  56.452 mV = (2 R T / F) ln 3, which omits the factor (1 - t+) of the diffusion potential
  (Newman, Electrochemical Systems, 3rd ed., eq. 12.17 integrated across the cell; with the
  potential measured by Li reference electrodes the Nernst terms are inside phi). Measured
  relative errors at h = 5, 2.5, 1.25 um: V_we 2.0e-7, 1.1e-8, 1.2e-9; c at the interface
  4.6e-7, 1.0e-7, 1.6e-8 (above second order: the solution is one-dimensional, c linear).
- Sand's time of a semi-infinite cell under constant plating current:
  c_s(t) = c0 - 2 (1 - t+) |i| sqrt(t / (pi D)) / F and tau = pi D (c0 F)^2 / (4 (i (1 - t+))^2);
  the run stops at depletion and reports tau.
- Manufactured solution for (phi, c) with the Butler-Volmer interface, c-dependent i0, kappa(c),
  D(c) and thermodynamic factor: observed L2 rates of P1.
- Salt conservation over a run to solver tolerance.
"""

from __future__ import annotations

import json

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from conftest import config_with, run_and_wait
from dolfinx import fem

from ecm_fem import postprocess
from ecm_fem.config import RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT
from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import generate
from ecm_fem.physics.kinetics import RateLaw
from ecm_fem.physics.transport import (
    ConcentrationFunction,
    current_density,
    limiting_current,
    sand_time,
)
from ecm_fem.problem import CurrentDistribution
from ecm_fem.simulation import build_solver

F_RT = FARADAY / (GAS_CONSTANT * 298.15)
# EC-3 (VERIFICATION.md)
C0, D_SALT, T_PLUS, L_CELL = 1000.0, 1e-11, 0.2, 100e-6
KAPPA, I0 = 0.1, 10.0


def binary_config(**changes) -> RunConfig:
    data = {
        "geometry": {"width": 10e-6, "li_thickness": 10e-6, "electrolyte_thickness": L_CELL,
                     "mesh_size": 5e-6, "interface_mesh_size": 5e-6},
        "materials": {"electrolyte": {"base": "peo", "conductivity": KAPPA,
                                      "diffusivity": D_SALT, "transference_number": T_PLUS}},
        "kinetics": {"i0": I0},
        "transport": {"initial_concentration": C0},
        "control": {"mode": "galvanostatic", "current_density": 1.0},
        "time": {"t_end": 1e5, "dt": 2e4},
    }
    return config_with(data, **changes)


def steps(config: RunConfig, n: int, dt: float):
    """n backward-Euler steps of the current distribution; the problem after them."""
    ec = CurrentDistribution(config, generate(config))
    solver = build_solver(ec, config)
    ec.set_time(dt, dt)
    ec.initial_guess()
    for k in range(n):
        ec.set_time((k + 1) * dt, dt)
        report = solver.solve()
        assert report.converged
        ec.commit()
    solver.destroy()
    return ec


# ----------------------------------------------------------------------------- formulas, config
def test_formula_in_c_evaluates_alike_in_ufl_and_numpy():
    f = ConcentrationFunction("1e-2 * sqrt(c / 1000) * exp(-c / 2000) + 2 ** -3 - tanh(c) / pi")
    c = np.array([10.0, 500.0, 1500.0])
    expected = 1e-2 * np.sqrt(c / 1000) * np.exp(-c / 2000) + 2 ** -3 - np.tanh(c) / np.pi
    assert np.allclose(f.numpy(c), expected, rtol=1e-14)
    assert np.allclose(ConcentrationFunction("0.3").numpy(c), 0.3)
    # the UFL expression evaluated at a point of a one-cell mesh
    from dolfinx import mesh as dmesh

    msh = dmesh.create_unit_square(MPI.COMM_SELF, 1, 1)
    value = fem.assemble_scalar(fem.form(f.ufl(fem.Constant(msh, 500.0)) * ufl.dx(domain=msh)))
    assert value == pytest.approx(expected[1], rel=1e-12)
    for bad in ("__import__('os')", "c.real", "foo(c)", "c +", "lambda: 1", "[c]"):
        with pytest.raises(ValueError, match="formula in c"):
            ConcentrationFunction(bad)


@pytest.mark.parametrize("change, message", [
    ({"transport.regions": ["gb"]}, "transport.regions: the geometry has no ion-conducting "
                                    "region 'gb'"),
    ({"materials.electrolyte": "llzo"}, "materials.electrolyte: material 'llzo' has no "
                                        "diffusivity"),
    ({"materials.electrolyte.diffusivity": "1e-11 * (1 - c / 1500)"},
     "materials.electrolyte.diffusivity: diffusivity = .* at c = .* is outside"),
    ({"materials.electrolyte.transference_number": "c"}, "transference_number"),
    ({"materials.electrolyte.conductivity": "0.1 * c / 1000", "transport": None},
     "materials.electrolyte.conductivity: a formula in c needs a binary electrolyte"),
    ({"time.t_end": 0.0}, "set time.t_end > 0"),
    ({"materials.electrolyte.diffusivity": "1e-11 * cos(c)"}, "'cos\\(c\\)' is not allowed"),
])
def test_bad_transport_configs_name_the_key(change, message):
    with pytest.raises(ValueError, match=message):
        binary_config(**change)


# ----------------------------------------------------------------------------- single-ion limit
def test_transference_number_one_recovers_the_single_ion_problem():
    single = binary_config(transport=None, **{"materials.electrolyte.diffusivity": None,
                                              "materials.electrolyte.transference_number": None})
    ec_single = steps(single, 1, 1.0)
    ec_binary = steps(binary_config(**{"materials.electrolyte.transference_number": 1.0}), 2, 1.0)
    comm = MPI.COMM_WORLD
    V1 = postprocess.real_value(ec_single.V_we)
    V2 = postprocess.real_value(ec_binary.V_we)
    assert V2 == pytest.approx(V1, rel=1e-10)
    diff = comm.allreduce(float(np.max(np.abs(ec_single.phi.x.array - ec_binary.phi.x.array))),
                          op=MPI.MAX)
    assert diff < 1e-10 * abs(V1)
    c = ec_binary.salt.c.x.array
    assert np.max(np.abs(c - C0)) < 1e-9 * C0


# ----------------------------------------------------------------------------- EC-3
def ec3_errors(h: float, linear_solver: str = "direct") -> tuple[float, float, float]:
    """Relative errors of V_we and of the interface concentration, and the relative salt
    change, of the steady EC-3 cell at i = i_lim / 2 with mesh size h."""
    i_lim = limiting_current(D_SALT, C0, L_CELL, T_PLUS)
    i = 0.5 * i_lim
    config = binary_config(**{"geometry.mesh_size": h, "geometry.interface_mesh_size": h,
                              "control.current_density": i,
                              "solver.linear_solver": linear_solver})
    ec = steps(config, 6, 2e4)  # lambda_1 dt = pi^2 D dt / L^2 = 197: steady after 6 steps
    profile = postprocess.interface_profile(ec)
    scalars = postprocess.step_scalars(ec, profile)
    c_we = 1.5 * C0
    eta = 2.0 / F_RT * np.arcsinh(i / (2.0 * I0 * np.sqrt(c_we / C0)))
    concentration = 2.0 / F_RT * (1.0 - T_PLUS) * np.log(3.0)
    assert concentration == pytest.approx(45.1619e-3, rel=1e-5)
    V = eta + i * L_CELL / KAPPA + concentration
    e_V = abs(scalars["V_we"] - V) / V
    e_c = max(abs(scalars["c_min_interface"] - c_we), abs(scalars["c_max_interface"] - c_we))
    amount = C0 * 10e-6 * L_CELL
    return e_V, e_c / c_we, abs(scalars["salt_amount"] - amount) / amount


@pytest.mark.mpi
def test_ec3_limiting_current_and_concentration_overpotential():
    assert limiting_current(D_SALT, C0, L_CELL, T_PLUS) == pytest.approx(24.121, rel=1e-4)
    errors = np.array([ec3_errors(h) for h in (5e-6, 2.5e-6, 1.25e-6)])
    print("EC-3 errors (V_we, c_we, salt)", errors.tolist())
    rates = np.log2(errors[:-1, :2] / errors[1:, :2])
    assert np.all(rates > 1.8), rates  # second order
    assert errors[-1, 0] < 1e-8 and errors[-1, 1] < 1e-7  # measured 1.2e-9, 1.6e-8
    assert np.all(errors[:, 2] < 1e-10)  # the salt is conserved
    # the default iterative solver (field split, AMG) gives the same state
    iterative = ec3_errors(2.5e-6, "iterative")
    assert iterative == pytest.approx(tuple(errors[1]), rel=1e-6, abs=1e-12)


# ----------------------------------------------------------------------------- Sand's time
SAND_I = -50.0  # A/m^2, plating: the salt is depleted at the working electrode


def sand_run(folder, dt: float) -> tuple[dict, np.ndarray]:
    config = binary_config(**{
        "geometry.width": 4e-6, "geometry.electrolyte_thickness": 200e-6,  # 4.7 diffusion
        "geometry.mesh_size": 10e-6, "geometry.interface_mesh_size": 0.25e-6,  # lengths
        "control.current_density": SAND_I, "time.t_end": 100.0, "time.dt": dt,
        "output.fields_every": 0, "output.checkpoint_every": 0,
        # LU: the field split takes 150-450 GMRES iterations per Newton step here (note)
        "solver.linear_solver": "direct"})
    summary = run_and_wait(config, folder)
    rows = np.genfromtxt(folder / "history.csv", delimiter=",", names=True)
    return summary, rows


@pytest.mark.mpi
def test_sand_time_of_a_semi_infinite_cell(shared_tmp):
    tau = sand_time(D_SALT, C0, SAND_I, T_PLUS)
    assert tau == pytest.approx(45.702, rel=1e-4)
    errors = []
    for dt in (1.0, 0.5):
        summary, rows = sand_run(shared_tmp / f"sand_{dt}", dt)
        assert summary["converged"] and not summary["complete"]
        written = json.loads((shared_tmp / f"sand_{dt}" / "summary.json").read_text())
        assert written["salt_depletion_time"] == summary["salt_depletion_time"]
        errors.append(summary["salt_depletion_time"] / tau - 1)
        t = rows["time"]
        exact = C0 - 2 * (1 - T_PLUS) * abs(SAND_I) * np.sqrt(t / (np.pi * D_SALT)) / FARADAY
        lag = [rows["c_min_interface"][np.argmin(np.abs(t - t_check))]
               - exact[np.argmin(np.abs(t - t_check))] for t_check in (5.0, 10.0, 20.0, 40.0)]
        print(f"dt = {dt} s: c_s - exact at t = 5, 10, 20, 40 s:", lag)
        # the lag of backward Euler: largest early (the sqrt(t) start), below 1 % of c0 at
        # dt = 0.5 s, decreasing in time
        if dt == 0.5:
            assert np.all(np.abs(lag) < 0.01 * C0) and np.all(np.diff(np.abs(lag)) < 0), lag
        salt = rows["salt_amount"]
        assert np.max(np.abs(salt / salt[0] - 1)) < 1e-9  # the salt is conserved
    print("Sand's time: relative errors at dt = 1, 0.5 s", errors)
    # backward Euler is first order in dt (the surface concentration lags its sqrt(t) law);
    # measured +0.32 % at dt = 0.5 s
    assert abs(errors[1]) < 0.005
    assert 1.6 < errors[0] / errors[1] < 2.4


# ----------------------------------------------------------------------------- MMS
W_MMS = L_MMS = 10e-6
KAPPA_MMS = "0.05 * sqrt(c / 1000)"
D_MMS = "1e-11 * exp(-c / 2000)"
TDF_MMS = "1 + 0.2 * c / 1000"
T_PLUS_MMS = 0.3


def c_exact(x):
    return C0 * (1.0 + 0.3 * ufl.cos(np.pi * x[0] / W_MMS) * ufl.sin(np.pi * x[1] / L_MMS)
                 + 0.2 * ufl.cos(np.pi * x[1] / L_MMS))


def phi_exact(x):
    return 0.01 * (1.0 - x[1] / L_MMS) * (1.0 + 0.5 * ufl.cos(np.pi * x[0] / W_MMS))


def mms_errors(h: float) -> tuple[float, float]:
    """L2 errors of phi [V m] and c [mol/m^2] at mesh size h. The exact fields have zero normal
    derivatives on the sides (no flux there) and phi = 0 at the counter; the sources are the
    bulk residuals of the exact fields and, on the interface and the counter, their fluxes."""
    config = RunConfig.model_validate({
        "geometry": {"width": W_MMS, "li_thickness": L_MMS, "electrolyte_thickness": L_MMS,
                     "mesh_size": h, "interface_mesh_size": h},
        "materials": {"electrolyte": {"base": "peo", "conductivity": KAPPA_MMS,
                                      "diffusivity": D_MMS, "transference_number": T_PLUS_MMS,
                                      "thermodynamic_factor": TDF_MMS}},
        "kinetics": {"i0": I0},
        "transport": {"initial_concentration": C0},
        "control": {"mode": "potentiostatic", "voltage": 0.0},
        "time": {"t_end": 1.0, "dt": 1.0},
        "solver": {"linear_solver": "direct"},
    })
    ec = CurrentDistribution(config, generate(config))
    x = ufl.SpatialCoordinate(ec.mesh)
    ce, pe = c_exact(x), phi_exact(x)
    kappa = ConcentrationFunction(KAPPA_MMS).ufl(ce)
    D = ConcentrationFunction(D_MMS).ufl(ce)
    tdf = ConcentrationFunction(TDF_MMS).ufl(ce)
    i_ex = current_density(pe, ce, kappa, T_PLUS_MMS, tdf, ec.f)
    N_ex = -D * ufl.grad(ce) - (1 - T_PLUS_MMS) * i_ex / FARADAY
    dt = 1.0
    law = RateLaw("butler_volmer", I0, 0.5, 0.5, ec.f)
    i_n_ex = law.current(0.0 - pe, i0=I0 * (ce / C0) ** 0.5)
    n_out = ufl.FacetNormal(ec.mesh)
    tags = ec.region.facet_tags
    dx6 = ufl.Measure("dx", domain=ec.mesh, subdomain_data=ec.region.cell_tags,
                      metadata={"quadrature_degree": 6})
    ds6 = ufl.Measure("ds", domain=ec.mesh, subdomain_data=tags,
                      metadata={"quadrature_degree": 6})
    v = ufl.TestFunction(ec.V)
    w = ufl.TestFunction(ec.salt.V)
    ds_if, ds_counter = ds6(FACET_TAGS["interface"]), ds6(FACET_TAGS["counter"])
    ec.residuals[0] -= ufl.div(i_ex) * v * dx6 \
        - (ufl.dot(i_ex, n_out) + i_n_ex) * v * ds_if
    source = (ce - C0) / dt + ufl.div(N_ex)  # c_n = c0 (the start), exact in the space
    k = ec.names.index("c")
    ec.residuals[k] -= FARADAY * (source * w * dx6 - ufl.dot(N_ex, n_out) * w * ds_if
                                  - ufl.dot(N_ex, n_out) * w * ds_counter)
    solver = build_solver(ec, config)
    ec.set_time(dt, dt)
    ec.initial_guess()
    report = solver.solve()
    assert report.converged, report.reason
    comm = MPI.COMM_WORLD

    def norm(form) -> float:
        return np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM))

    errors = norm((ec.phi - pe) ** 2 * dx6), norm((ec.salt.c - ce) ** 2 * dx6)
    solver.destroy()
    return errors


@pytest.mark.mpi
def test_manufactured_solution_rates():
    errors = np.array([mms_errors(W_MMS / n) for n in (4, 8, 16, 32)])
    rates = np.log2(errors[:-1] / errors[1:])
    print("MMS errors", errors.tolist(), "rates", rates.tolist())
    # measured (phi, c): 1.80 1.90 | 1.90 1.96 | then towards 2
    assert np.all(rates > 1.75) and np.all(rates[-1] > 1.9), rates


# ----------------------------------------------------------------------------- with mechanics, 3D
@pytest.mark.mpi
def test_with_mechanics_the_two_coupling_schemes_agree(shared_tmp):
    """The salt joins the coupled step: the staggered and the monolithic scheme give the same
    state (Li protrusion in PEO, Norton Li, growth, Monroe-Newman kinetics; by hand on 2 ranks
    V_we agreed to 3e-14 and max p_Li to 6e-10), and the salt is conserved."""
    results = {}
    for scheme in ("staggered", "monolithic"):
        config = RunConfig.model_validate({
            "geometry": {"kind": "li_protrusion", "width": 10e-6, "li_thickness": 5e-6,
                         "electrolyte_thickness": 20e-6, "protrusion_half_width": 2e-6,
                         "protrusion_height": 3e-6, "mesh_size": 4e-6,
                         "interface_mesh_size": 1e-6, "tip_mesh_size": 0.5e-6},
            "materials": {"electrolyte": "peo"},
            "kinetics": {"i0": 5.0, "stress_coupling": "monroe_newman"},
            "transport": {"initial_concentration": C0},
            "control": {"mode": "galvanostatic", "current_density": -5.0},
            "mechanics": {"stack_pressure": 1e5, "growth_band": 0.5e-6,
                          "coupling": {"scheme": scheme}},
            "time": {"t_end": 10.0, "dt": 5.0},
            "output": {"fields_every": 0, "checkpoint_every": 0},
        })
        results[scheme] = run_and_wait(config, shared_tmp / scheme)
    a, b = results["staggered"], results["monolithic"]
    assert a["converged"] and b["converged"] and a["steps"] == b["steps"] == 2
    for key in ("V_we", "c_min_interface", "c_max_interface", "max_p_li", "focusing_factor"):
        assert b[key] == pytest.approx(a[key], rel=1e-7), key
    assert a["c_min_interface"] < C0 < a["c_max_interface"] or a["c_max_interface"] < C0
    history = np.genfromtxt(shared_tmp / "monolithic" / "history.csv", delimiter=",",
                            names=True)
    assert np.max(np.abs(history["salt_amount"] / history["salt_amount"][0] - 1)) < 1e-10


@pytest.mark.mpi
def test_three_dimensional_cell_equals_the_plane_one(shared_tmp):
    """A planar cell is one-dimensional: its 3D box and its 2D section give the same V_we and
    interface concentrations after two steps, to the discretisation error of the transient
    profile on these different meshes (V_we measured 2.1e-5 apart, the interface concentration
    1e-3 of its change)."""
    results = []
    for dim in (2, 3):
        geometry = {"dim": dim, "width": 10e-6, "li_thickness": 5e-6,
                    "electrolyte_thickness": 40e-6, "mesh_size": 5e-6,
                    "interface_mesh_size": 2.5e-6}
        if dim == 3:
            geometry["depth"] = 5e-6
        config = binary_config(**{"geometry": geometry, "control.current_density": -10.0,
                                  "time.t_end": 20.0, "time.dt": 10.0,
                                  "solver.linear_solver": "direct",
                                  "output.fields_every": 0, "output.checkpoint_every": 0})
        results.append(run_and_wait(config, shared_tmp / f"dim{dim}"))
    two, three = results
    print({key: three[key] / two[key] - 1
           for key in ("V_we", "c_min_interface", "c_max_interface")})
    assert three["V_we"] == pytest.approx(two["V_we"], rel=1e-4)
    assert two["c_min_interface"] < 0.9 * C0  # the salt has moved: 114 mol/m^3
    for key in ("c_min_interface", "c_max_interface"):  # measured 1e-3 of the change
        assert abs(three[key] - two[key]) < 3e-3 * (C0 - two[key]), key
