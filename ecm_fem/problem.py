"""The variational problem of a run: function spaces on the regions where each field is
physical, material coefficients, controls and the residual forms (PHYSICS.md sections 2-3).

Unknowns: phi [V] on the ion-conducting submesh, V_we [V] as one real-space dof (Li is an
equipotential). Galvanostatic control closes the system with int_interface i_n ds = i_app A_proj;
potentiostatic control pins V_we. The counter boundary is an ideal reference (phi = 0) or a
second Butler-Volmer electrode at potential 0.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import scifem
import ufl
from dolfinx import fem

from ecm_fem.config import ControlMode, CounterKind, PrescribedStress, RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS, ION_CONDUCTING
from ecm_fem.mesh import MeshData
from ecm_fem.physics import electrochemistry as ec
from ecm_fem.physics.kinetics import RateLaw
from ecm_fem.physics.stress_coupling import (
    CouplingParameters,
    InterfaceStress,
    mechanical_terms,
    monroe_newman_dmu,
)


class CurrentDistribution:
    """phi and V_we with Butler-Volmer kinetics at the Li interface.

    Attributes:
        phi, V_we: the unknowns (dolfinx Functions).
        i_app: applied current density [A/m^2] (a Constant the time loop updates).
        V_app: applied V_we [V] under potentiostatic control.
        i_n: UFL expression of the interface current density [A/m^2].
        residuals, unknowns, names, bcs: what ``BlockedNewtonSolver`` needs.
    """

    def __init__(self, config: RunConfig, mesh_data: MeshData):
        self.config = config
        ion = mesh_data.ion
        msh = ion.mesh
        self.mesh = msh
        self.region = ion
        tdim = msh.topology.dim
        f = FARADAY / (GAS_CONSTANT * config.temperature)
        self.f = f
        k = config.kinetics
        self._setup_stress_coupling(config)
        self.law = RateLaw(k.model.value, k.i0 * self.i0_factor, k.alpha_a, k.alpha_c, f)

        self.V = fem.functionspace(msh, ("Lagrange", config.discretisation.phi_degree))
        self.R = scifem.create_real_functionspace(msh)
        self.phi = fem.Function(self.V, name="phi")
        self.V_we = fem.Function(self.R, name="V_we")

        self.kappa = self._conductivity(config)
        self.dx = ufl.Measure("dx", domain=msh)
        self.ds = ufl.Measure("ds", domain=msh, subdomain_data=ion.facet_tags)
        ds_if = self.ds(FACET_TAGS["interface"])
        self.interface_measure = ds_if

        self.i_app = fem.Constant(msh, 0.0)
        self.V_app = fem.Constant(msh, float(config.control.voltage))
        self.eta = self.V_we - self.phi - self.U_mech
        self.i_n = self.law.current(self.eta)

        self.contact_area = msh.comm.allreduce(
            fem.assemble_scalar(fem.form(1.0 * ds_if)), op=MPI.SUM)
        if self.contact_area <= 0:
            raise ValueError("geometry: the mesh has no 'interface' facets in contact with Li")
        self.projected_area = config.geometry.projected_area

        v = ufl.TestFunction(self.V)
        q = ufl.TestFunction(self.R)
        F_phi = ec.ohmic_residual(self.phi, v, self.kappa, self.dx)
        F_phi += ec.electrode_flux_residual(self.i_n, v, ds_if)

        self.bcs: list[fem.DirichletBC] = []
        counter_facets = ion.facet_tags.find(FACET_TAGS["counter"])
        c = config.counter
        self.counter_law = None
        if c.kind == CounterKind.reference:
            dofs = fem.locate_dofs_topological(self.V, tdim - 1, counter_facets)
            self.bcs.append(fem.dirichletbc(0.0, dofs, self.V))
        else:
            self.counter_law = RateLaw("butler_volmer", c.i0, c.alpha_a, c.alpha_c, f)
            i_counter = self.counter_law.current(0.0 - self.phi)
            F_phi += ec.electrode_flux_residual(i_counter, v, self.ds(FACET_TAGS["counter"]))

        if config.control.mode == ControlMode.galvanostatic:
            mean_target = self.i_app * (self.projected_area / self.contact_area)
            F_V = (self.i_n - mean_target) * q * ds_if
        else:
            # pins V_we; scaled like a current so both residual blocks have the same units
            F_V = k.i0 * f * (self.V_we - self.V_app) * q * ds_if

        self.residuals = [F_phi, F_V]
        self.unknowns = [self.phi, self.V_we]
        self.names = ["phi", "V_we"]
        self.scalar_fields = {"V_we"}

    def _setup_stress_coupling(self, config: RunConfig) -> None:
        """U_mech [V], i0 factor and dmu_e [J/mol] of kinetics.stress_coupling. The stresses are
        prescribed uniform values until the mechanics exists, so these are plain numbers; the
        mechanics will pass UFL stress expressions to the same ``mechanical_terms``."""
        k = config.kinetics
        ps = k.prescribed_stress or PrescribedStress()
        model = k.stress_coupling.value
        needs_ion_volume = model in ("hydrostatic", "monroe_newman")
        params = CouplingParameters(
            omega_li=config.materials.li.resolve().require("molar_volume", "materials.li"),
            omega_li_ion=config.materials.electrolyte.resolve().require(
                "molar_volume", "materials.electrolyte") if needs_ion_volume else 0.0,
            gamma=k.surface_energy, alpha_a=k.alpha_a, temperature=config.temperature)
        stress = InterfaceStress(
            sigma_nn_li=ps.sigma_nn_li, sigma_h_li=ps.sigma_h_li, sigma_h_e=ps.sigma_h_electrolyte,
            tau_nn_li=ps.tau_nn_li, tau_nn_e=ps.tau_nn_electrolyte, curvature=ps.curvature)
        U, factor = mechanical_terms(model, stress, params, exp=np.exp)
        self.U_mech_value = float(U)
        self.U_mech = fem.Constant(self.mesh, self.U_mech_value)
        self.i0_factor = float(factor)
        self.dmu_e_value = float(monroe_newman_dmu(stress, params)) \
            if model == "monroe_newman" else 0.0

    def _conductivity(self, config: RunConfig) -> fem.Function:
        """kappa [S/m] as a DG0 field from the regions' materials."""
        Q = fem.functionspace(self.mesh, ("DG", 0))
        kappa = fem.Function(Q, name="kappa")
        tags = self.region.cell_tags
        known = {CELL_TAGS[r]: r for r in ION_CONDUCTING}
        unknown = np.setdiff1d(np.unique(tags.values), list(known))
        if len(unknown):
            raise ValueError(f"mesh: ion-conducting cells with unknown tag(s) {unknown.tolist()}")
        for tag, region in known.items():
            material = config.materials.for_region(region)
            kappa.x.array[tags.find(tag)] = material.require("conductivity",
                                                             f"materials.{region}")
        kappa.x.scatter_forward()
        return kappa

    def initial_guess(self) -> None:
        """A start for Newton that keeps the exponentials of Butler-Volmer in range: phi = 0 and,
        under galvanostatic control, V_we = U_mech + eta of the mean contact current."""
        self.phi.x.array[:] = 0.0
        if self.config.control.mode == ControlMode.galvanostatic:
            i_mean = float(self.i_app.value) * self.projected_area / self.contact_area
            self.V_we.x.array[:] = self.U_mech_value + self.law.overpotential(i_mean)
        else:
            self.V_we.x.array[:] = float(self.V_app.value)

    def set_time(self, t: float) -> None:
        self.i_app.value = self.config.control.current_at(t)

