"""Manufactured solution of the coupled interface problem: the potential phi in the electrolyte
and the displacement u in Li and LLZO, linked by stress-dependent Butler-Volmer kinetics at the
Li | LLZO interface, solved by the production classes (CurrentDistribution, StepSolid,
CoupledStep: the kinetics read the interface stresses recovered from the mechanics).

Planar cell (Li -L < y < 0, LLZO 0 < y < L, 0 < x < W, plane strain, elastic Li, symmetric
sides, roller on the counter face, the stack pressure on the Li current collector). Exact
fields, smooth in each region:
    u_x = a sin(pi x / W) cos(pi (y - L) / D),  u_y = b cos(pi x / W) sin(pi (y - L) / D),
    phi = A (1 - y / L) (1 + cos(pi x / W) / 2),     D = 4 L,
which satisfy the supports (u_x = 0 and no shear on the sides, u_y = 0 and no shear on the
counter face) and phi = 0 at the counter. Their stresses (tens of MPa) shift the kinetics by
millivolts, comparable with the overpotential. Sources: the body force -div sigma(u_ex) in
each region, the traction jump (sigma_Li - sigma_E)(u_ex) e_y on the interface, the exact
traction minus the stack pressure on the current collector, -div(kappa grad phi_ex) in the
electrolyte and, on the interface, kappa grad(phi_ex).n_out - i_n(V_app - phi_ex - U_ex) with
the model's U_ex and i0 factor from the exact interface stresses. Potentiostatic control.

Measured (h = W/4, W/8, W/16): L2 rates of u (P2) 3.07, 2.94; of phi (P1) 1.99, 2.06
(normal_traction) and 1.80, 1.91 (monroe_newman). The interface field the kinetics read (U_mech
or dmu_e, in phi's P1 space) converges at 1.39, 1.68 and then 1.83 (W/32) with the recovered
interface stress (coupling.InterfaceStressMap); with plain cell averages it went 1.62, 1.49,
1.40, towards first order.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from dolfinx import fem

from ecm_fem.config import RunConfig
from ecm_fem.coupling import CoupledStep
from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import generate
from ecm_fem.physics import mechanics as mech
from ecm_fem.physics.kinetics import RateLaw
from ecm_fem.physics.stress_coupling import InterfaceStress, mechanical_terms, monroe_newman_dmu
from ecm_fem.problem import CurrentDistribution
from ecm_fem.simulation import build_solver
from ecm_fem.solid import StepSolid

W = L = 10e-6
D = 4 * L
A_U, B_U = 2e-8, -1.5e-8  # m: strains of a few 1e-3, stresses of tens of MPa in Li
A_PHI = 0.01  # V
V_APP = 0.0
LI, LLZO = (7.82e9, 0.381), (150e9, 0.257)
KAPPA = 0.04
PLANE = mech.Kinematics.PLANE_STRAIN


def u_exact(x):
    return ufl.as_vector([A_U * ufl.sin(np.pi * x[0] / W) * ufl.cos(np.pi * (x[1] - L) / D),
                          B_U * ufl.cos(np.pi * x[0] / W) * ufl.sin(np.pi * (x[1] - L) / D)])


def phi_exact(x):
    return A_PHI * (1 - x[1] / L) * (1 + 0.5 * ufl.cos(np.pi * x[0] / W))


def sigma2(sigma3):
    return ufl.as_tensor([[sigma3[i, j] for j in range(2)] for i in range(2)])


def config(model: str, h: float) -> RunConfig:
    return RunConfig.model_validate({
        "geometry": {"width": W, "li_thickness": L, "electrolyte_thickness": L,
                     "mesh_size": h, "interface_mesh_size": h},
        "materials": {"li": "lithium", "electrolyte": "llzo"},
        "kinetics": {"i0": 51.0, "stress_coupling": model},
        "control": {"mode": "potentiostatic", "voltage": V_APP},
        "mechanics": {"li_law": "elastic", "stack_pressure": 1e6, "growth": False},
        "time": {"t_end": 0.0},
    })


def solve(model: str, h: float) -> tuple[float, float, float]:
    """L2 errors at mesh size h: of phi [V m], of u [m^2] and, relative to the exact values'
    norm, of the interface field the kinetics use (U_mech, or dmu_e for monroe_newman)."""
    cfg = config(model, h)
    md = generate(cfg)
    ec = CurrentDistribution(cfg, md)
    params = ec.coupling_parameters

    # the kinetics' exact interface stresses, from u_ex on each side (flat: n = e_y, t = e_x)
    xe = ufl.SpatialCoordinate(ec.mesh)
    s_li = mech.hooke(mech.strain3(u_exact(xe), PLANE), *LI)
    s_e = mech.hooke(mech.strain3(u_exact(xe), PLANE), *LLZO)
    exact = InterfaceStress(
        sigma_nn_li=s_li[1, 1], sigma_h_li=ufl.tr(s_li) / 3, sigma_h_e=ufl.tr(s_e) / 3,
        tau_nn_li=s_li[1, 1] - ufl.tr(s_li) / 3, tau_nn_e=s_e[1, 1] - ufl.tr(s_e) / 3,
        sigma_nn_e=s_e[1, 1], sigma_tt_li=s_li[0, 0], sigma_tt_e=s_e[0, 0], curvature=0.0)
    U_ex, factor = mechanical_terms(model, exact, params)
    law = RateLaw("butler_volmer", 51.0, 0.5, 0.5, ec.f)
    pe = phi_exact(xe)
    i_ex = law.current(V_APP - pe - U_ex, i0=51.0 * factor)
    n_out = ufl.as_vector([0.0, -1.0])
    v = ufl.TestFunction(ec.V)
    dx6 = ufl.Measure("dx", domain=ec.mesh, metadata={"quadrature_degree": 6})
    ds_if = ufl.Measure("ds", domain=ec.mesh, subdomain_data=ec.region.facet_tags,
                        metadata={"quadrature_degree": 6})(FACET_TAGS["interface"])
    f_phi = -ufl.div(KAPPA * ufl.grad(pe))
    g = KAPPA * ufl.dot(ufl.grad(pe), n_out) - i_ex
    ec.residuals[0] -= f_phi * v * dx6 + g * v * ds_if
    solver = build_solver(ec, cfg)

    solid = StepSolid(cfg, md)
    p = solid.problem
    x = ufl.SpatialCoordinate(p.mesh)
    w = ufl.TestFunction(p.V)
    dx = ufl.Measure("dx", domain=p.mesh, subdomain_data=md.cell_tags,
                     metadata={"quadrature_degree": 6})
    ds = ufl.Measure("ds", domain=p.mesh, subdomain_data=md.facet_tags,
                     metadata={"quadrature_degree": 6})
    dS = ufl.Measure("dS", domain=p.mesh, subdomain_data=md.facet_tags,
                     metadata={"quadrature_degree": 6})
    sigma_ex = mech.hooke(mech.strain3(u_exact(x), PLANE), p.E, p.nu)
    body = -ufl.div(sigma2(sigma_ex))
    jump = ufl.dot(sigma2(mech.hooke(mech.strain3(u_exact(x), PLANE), *LI))
                   - sigma2(mech.hooke(mech.strain3(u_exact(x), PLANE), *LLZO)),
                   ufl.as_vector([0.0, 1.0]))
    bottom = ufl.dot(sigma2(sigma_ex), ufl.as_vector([0.0, -1.0]))
    p.residual -= (ufl.dot(body, w) * dx + ufl.dot(jump, w("+")) * dS(FACET_TAGS["interface"])
                   + ufl.dot(bottom, w) * ds(FACET_TAGS["li_cc"])
                   + mech.pressure_residual(p.stack_pressure, w, PLANE, ds(FACET_TAGS["li_cc"])))
    solid.solver.destroy()
    solid.solver = p.build_solver()

    stepper = CoupledStep(cfg, ec, solver, solid)
    ec.set_time(0.0)
    ec.initial_guess()
    stepper.initial_state()
    result = stepper.attempt(0.0, 0.0)
    assert result.ok, result.reason

    comm = MPI.COMM_WORLD

    def norm(form) -> float:
        return np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM))

    e_phi = norm((ec.phi - pe) ** 2 * dx6)
    e_u = norm(ufl.dot(p.u - u_exact(x), p.u - u_exact(x)) * dx)
    if model == "monroe_newman":
        dmu_ex = monroe_newman_dmu(exact, params)
        e_coupling, shift = norm((ec.dmu_e - dmu_ex) ** 2 * ds_if), norm(dmu_ex ** 2 * ds_if)
    else:
        e_coupling, shift = norm((ec.U_mech - U_ex) ** 2 * ds_if), norm(U_ex ** 2 * ds_if)
    solver.destroy()
    solid.destroy()
    return e_phi, e_u, e_coupling / shift


@pytest.mark.mpi
@pytest.mark.parametrize("model", ["normal_traction", "monroe_newman"])
def test_coupled_interface_mms_rates(model):
    results = np.array([solve(model, h) for h in (W / 4, W / 8, W / 16)])
    rates = np.log2(results[:-1] / results[1:])
    print(model, results.tolist(), rates.tolist())
    assert np.all(rates[:, 0] > 1.75), rates  # phi, P1
    assert np.all(rates[:, 1] > 2.6), rates  # u, P2
    assert rates[-1, 2] > 1.6, rates  # U_mech or dmu_e on the interface, towards 2
    assert np.all(results[:, 2] < 0.2)
