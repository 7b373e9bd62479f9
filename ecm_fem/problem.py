"""The variational problem of a run: function spaces on the regions where each field is
physical, material coefficients, controls and the residual forms (PHYSICS.md sections 2-3).

Unknowns: phi [V] on the ion-conducting submesh, V_we [V] as one real-space dof (Li is an
equipotential). Galvanostatic control closes the system with int_interface i_n ds = i_app A_proj;
potentiostatic control pins V_we. The counter boundary is an ideal reference (phi = 0) or a
second Butler-Volmer electrode at potential 0. With a binary electrolyte (config.transport) the
salt concentration c [mol/m^3] is a third unknown on the ion-conducting submesh
(``SaltTransport``, physics/transport.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem

from ecm_fem._compat import real_functionspace
from ecm_fem.axisymmetry import weigh
from ecm_fem.config import ControlMode, CounterKind, Materials, PrescribedStress, RunConfig
from ecm_fem.constants import FARADAY, GAS_CONSTANT
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS, ION_CONDUCTING
from ecm_fem.mesh import InterfaceCurve, InterfaceSurface, MeshData, region_field
from ecm_fem.physics import electrochemistry as ec
from ecm_fem.physics import transport
from ecm_fem.physics.kinetics import RateLaw
from ecm_fem.physics.stress_coupling import (
    CouplingParameters,
    InterfaceStress,
    mechanical_terms,
    monroe_newman_dmu,
)
from ecm_fem.physics.transport import ConcentrationFunction, property_value


class CurrentDistribution:
    """phi and V_we with Butler-Volmer kinetics at the Li interface.

    The interface takes the kinetics (i0, alpha_a, alpha_c) of the ion-conducting cell it
    touches, so Li | electrolyte, Li | SEI and each SEI patch can differ: these parameters and
    the conductivity are cell-wise (DG0) fields. With ``kinetics.sei_film`` the SEI is a series
    film resistance R_f: the charge-transfer overpotential eta_ct = eta - R_f i_n is then an
    extra unknown on the interface (see ``_add_film``).

    Attributes:
        phi, V_we: the unknowns (dolfinx Functions); eta_ct too with an SEI film.
        i_app: applied current density [A/m^2] (a Constant the time loop updates).
        V_app: applied V_we [V] under potentiostatic control.
        eta: UFL total interface overpotential V_we - phi - U_mech [V].
        eta_ct: UFL charge-transfer overpotential [V] (eta without a film).
        i_n: UFL expression of the interface current density [A/m^2].
        residuals, unknowns, names, bcs, jacobi_fields: what ``BlockedNewtonSolver`` needs.
    """

    def __init__(self, config: RunConfig, mesh_data: MeshData):
        self.config = config
        self.axisymmetric = config.axisymmetric
        ion = mesh_data.ion
        msh = ion.mesh
        self.mesh = msh
        self.region = ion
        tdim = msh.topology.dim
        f = FARADAY / (GAS_CONSTANT * config.temperature)
        self.f = f
        k = config.kinetics
        self.regions = self._ion_regions(mesh_data)

        i0, alpha_a, alpha_c = (
            self._cellwise(label, lambda name, parent, j=j: k.for_contact(name, parent)[j])
            for j, label in enumerate(("i0", "alpha_a", "alpha_c")))
        self.kinetic_parameters = {"i0": i0, "alpha_a": alpha_a, "alpha_c": alpha_c}
        self.V = fem.functionspace(msh, ("Lagrange", config.discretisation.phi_degree))
        # With a binary electrolyte the bulk integrands hold grad(c)/c: the fixed degree keeps
        # the Jacobian the derivative of the residual (see boundary_degree below); without it
        # Newton converged linearly (factor 0.78) where c falls steeply near depletion.
        # (The cell tags, for the binary regions, only then: a form that adds a plain dx term
        # to these residuals keeps working without transport.)
        bulk_degree = 2 * config.discretisation.phi_degree + 2
        self.dx = ufl.Measure("dx", domain=msh) if config.transport is None else ufl.Measure(
            "dx", domain=msh, subdomain_data=ion.cell_tags,
            metadata={"quadrature_degree": bulk_degree})
        self.salt = SaltTransport(self) if config.transport is not None else None
        self.kappa = self.salt.property("conductivity") if self.salt is not None else \
            self._cellwise("kappa", lambda name, parent: config.materials.for_region(
                name, parent).require("conductivity", Materials.key(name, parent)))
        i0_factor = self._setup_stress_coupling(config, alpha_a)
        if self.salt is not None:
            i0_factor = i0_factor * self.salt.i0_factor(alpha_a)
        # the rate law of the kinetics section's values, as numbers (initial guess, tests)
        self.law = RateLaw(k.model.value, k.i0 * self.i0_factor, k.alpha_a, k.alpha_c, f)
        law = RateLaw(k.model.value, i0_factor * i0, alpha_a, alpha_c, f)

        self.R = real_functionspace(msh)
        self.phi = fem.Function(self.V, name="phi")
        self.V_we = fem.Function(self.R, name="V_we")

        # One quadrature degree for every boundary form (residuals, their Jacobians, the
        # coupling derivatives): UFL's estimate grows with each derivative of the exponential
        # kinetics, and a Jacobian integrated more exactly than its residual is not the
        # residual's derivative (Newton then converges only linearly where the current
        # varies steeply along the interface). 2 p + 2 is what UFL gives the residual.
        boundary_degree = 2 * config.discretisation.phi_degree + 2
        self.ds = ufl.Measure("ds", domain=msh, subdomain_data=ion.facet_tags,
                              metadata={"quadrature_degree": boundary_degree})
        ds_if = self.ds(FACET_TAGS["interface"])
        self.interface_measure = ds_if
        # the interface's shape: its curvature goes to interface.csv and to Monroe-Newman
        # kinetics (a polyline in 2D, a triangulated surface in 3D)
        if msh.geometry.dim == 2:
            self.interface_curve = InterfaceCurve.of_boundary(
                msh, ion.facet_tags, FACET_TAGS["interface"], li_inside=False,
                axisymmetric=self.axisymmetric)
        else:
            self.interface_curve = InterfaceSurface.of_boundary(
                msh, ion.facet_tags, FACET_TAGS["interface"], li_inside=False)

        self.i_app = fem.Constant(msh, 0.0)
        self.V_app = fem.Constant(msh, float(config.control.voltage))
        self.eta = self.V_we - self.phi - self.U_mech
        self.residuals: list[ufl.Form] = []
        self.unknowns: list[fem.Function] = [self.phi, self.V_we]
        self.names = ["phi", "V_we"]
        self.jacobi_fields = {"V_we"}
        self.bcs: list[fem.DirichletBC] = []
        self.film_resistance = config.film_resistance()
        self.eta_ct_function: fem.Function | None = None
        if self.film_resistance > 0:
            self.eta_ct = self._add_film(law, ds_if)
            # equal to law.current(eta_ct) once the film relation holds; written through the
            # film's ohmic drop so that phi's block carries the film conductance (a Robin term
            # that AMG sees) and V_we's block has a nonzero diagonal
            self.i_n = (self.eta - self.eta_ct) / self.film_resistance
        else:
            self.eta_ct = self.eta
            self.i_n = law.current(self.eta_ct)

        self.contact_area = msh.comm.allreduce(
            fem.assemble_scalar(fem.form(self.weigh(1.0 * ds_if))), op=MPI.SUM)
        if self.contact_area <= 0:
            raise ValueError("geometry: the mesh has no 'interface' facets in contact with Li")
        self.projected_area = config.geometry.projected_area

        v = ufl.TestFunction(self.V)
        q = ufl.TestFunction(self.R)
        F_phi = ec.ohmic_residual(self.phi, v, self.kappa, self.dx)
        F_phi += ec.electrode_flux_residual(self.i_n, v, ds_if)
        self.current_density = ec.current_density(self.phi, self.kappa)
        if self.salt is not None:
            F_phi += self.salt.diffusion_potential_residual(v)
            self.current_density = self.salt.current_density()

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
        self.residuals = [F_phi, F_V, *self.residuals]  # the film's residual goes after
        if self.salt is not None:
            self.salt.add_unknown()
        self.residuals = [self.weigh(F) for F in self.residuals]

    def weigh(self, form: Any) -> Any:
        """``form`` (written for a plane cell) as this run's integral: with the 2 pi r weight
        when axisymmetric (ecm_fem/axisymmetry.py)."""
        return weigh(form, self.axisymmetric)

    def _add_film(self, law: RateLaw, ds_if: ufl.Measure) -> fem.Function:
        """The SEI film: eta_ct on the interface dofs of a copy of phi's space (every other dof
        pinned to 0 by a Dirichlet condition), with the series relation
        eta_ct + R_f i_n(eta_ct) = eta on the interface. A trace space on a facet submesh
        would hold only the interface dofs; the pinned copy keeps the assembly on one mesh."""
        V_ct = fem.functionspace(self.mesh, self.V.ufl_element())
        eta_ct = fem.Function(V_ct, name="eta_ct")
        fdim = self.mesh.topology.dim - 1
        interface = fem.locate_dofs_topological(
            V_ct, fdim, self.region.facet_tags.find(FACET_TAGS["interface"]))
        index_map = V_ct.dofmap.index_map
        pinned = np.setdiff1d(np.arange(index_map.size_local + index_map.num_ghosts,
                                        dtype=np.int32), interface)
        self._film_bc = fem.dirichletbc(0.0, pinned, V_ct)
        self.bcs.append(self._film_bc)
        w = ufl.TestFunction(V_ct)
        scale = self.config.kinetics.i0 * self.f  # [A/(V m^2)]: residual in A/m like the others
        self.residuals.append(
            scale * (eta_ct + self.film_resistance * law.current(eta_ct) - self.eta) * w * ds_if)
        self.unknowns.append(eta_ct)
        self.names.append("eta_ct")
        self.jacobi_fields.add("eta_ct")
        self.eta_ct_function = eta_ct
        return eta_ct

    def _setup_stress_coupling(self, config: RunConfig, alpha_a: fem.Function) -> Any:
        """U_mech [V] and dmu_e [J/mol] of kinetics.stress_coupling as Functions on phi's space
        (only their interface values matter), and the i0 factor exp(alpha_a dmu_e / (R T)) as
        a UFL expression (alpha_a is cell-wise). Without mechanics they hold the uniform values
        of kinetics.prescribed_stress; with mechanics ``set_interface_stress`` fills them from
        the finite-element stresses at every coupling iteration. The numbers for the kinetics
        section's alpha_a and the prescribed stresses go to U_mech_value and i0_factor (the
        initial guess)."""
        k = config.kinetics
        self.coupling_model = k.stress_coupling.value
        needs_ion_volume = self.coupling_model in ("hydrostatic", "monroe_newman")
        self.coupling_parameters = CouplingParameters(
            omega_li=config.materials.li.resolve().require("molar_volume", "materials.li"),
            omega_li_ion=config.materials.electrolyte.resolve().require(
                "molar_volume", "materials.electrolyte") if needs_ion_volume else 0.0,
            gamma=k.surface_energy, alpha_a=k.alpha_a, temperature=config.temperature)
        ps = k.prescribed_stress or PrescribedStress()
        stress = InterfaceStress(
            sigma_nn_li=ps.sigma_nn_li, sigma_h_li=ps.sigma_h_li, sigma_h_e=ps.sigma_h_electrolyte,
            tau_nn_li=ps.tau_nn_li, tau_nn_e=ps.tau_nn_electrolyte, curvature=ps.curvature,
            sigma_nn_e=ps.sigma_nn_electrolyte, sigma_tt_li=ps.sigma_tt_li,
            sigma_tt_e=ps.sigma_tt_electrolyte)
        U, dmu = self.coupling_values(stress)
        self.U_mech_value = float(U)
        self.dmu_e_value = float(dmu)
        self.i0_factor = float(np.exp(k.alpha_a * dmu / (GAS_CONSTANT * config.temperature)))
        # interface stress measures for interface.csv, set with U_mech (set_interface_stress)
        self.stress_outputs: dict[str, fem.Function] = {}
        self.U_mech = fem.Function(self.V, name="U_mech")
        self.dmu_e = fem.Function(self.V, name="dmu_e")
        self.U_mech.x.array[:] = self.U_mech_value
        self.dmu_e.x.array[:] = self.dmu_e_value
        if self.coupling_model != "monroe_newman":
            return 1.0
        return ufl.exp(alpha_a * self.dmu_e / (GAS_CONSTANT * config.temperature))

    def coupling_values(self, stress: InterfaceStress) -> tuple[Any, Any]:
        """(U_mech [V], dmu_e [J/mol]) of this run's coupling model for interface stresses
        ``stress`` (floats or NumPy arrays); dmu_e is 0 except for monroe_newman."""
        U, _ = mechanical_terms(self.coupling_model, stress, self.coupling_parameters, exp=np.exp)
        dmu = monroe_newman_dmu(stress, self.coupling_parameters) \
            if self.coupling_model == "monroe_newman" else 0.0 * U
        return U, dmu

    def set_interface_stress(self, dofs: np.ndarray, stress: InterfaceStress) -> None:
        """Set U_mech and dmu_e at the local dofs ``dofs`` of phi's space from the interface
        stresses there (arrays of len(dofs)), and the one-sided stress measures of
        interface.csv in ``stress_outputs`` (created at the first call), then update the
        ghosts (collective)."""
        U, dmu = self.coupling_values(stress)
        outputs = {"sigma_nn_li": stress.sigma_nn_li, "p_li": -stress.sigma_h_li,
                   "tau_nn_li": stress.tau_nn_li, "sigma_nn_electrolyte": stress.sigma_nn_e,
                   "p_electrolyte": -stress.sigma_h_e, "tau_nn_electrolyte": stress.tau_nn_e}
        for name in outputs:
            if name not in self.stress_outputs:
                self.stress_outputs[name] = fem.Function(self.V, name=name)
        for field, values in ((self.U_mech, U), (self.dmu_e, dmu),
                              *((self.stress_outputs[k], v) for k, v in outputs.items())):
            field.x.array[dofs] = values
            field.x.scatter_forward()

    def _ion_regions(self, mesh_data: MeshData) -> dict[int, tuple[str, str | None]]:
        """cell tag -> (region or sub-region name, parent region) of the ion-conducting cells."""
        regions: dict[int, tuple[str, str | None]] = {CELL_TAGS[r]: (r, None)
                                                      for r in ION_CONDUCTING}
        for name, (parent, tag) in mesh_data.subregions.items():
            if parent in ION_CONDUCTING:
                regions[tag] = (name, parent)
        tags = self.region.cell_tags
        unknown = np.setdiff1d(np.unique(tags.values), list(regions))
        if len(unknown):
            raise ValueError(f"mesh: ion-conducting cells with unknown tag(s) {unknown.tolist()}")
        return regions

    def _cellwise(self, name: str, value: Callable[[str, str | None], float]) -> fem.Function:
        """A DG0 field on the ion-conducting cells with ``value(region, parent)`` per region."""
        return region_field(self.mesh, self.region.cell_tags, self.regions, value, name)

    def initial_guess(self) -> None:
        """A start for Newton that keeps the exponentials of Butler-Volmer in range: phi = 0 and,
        under galvanostatic control, V_we = U_mech + eta of the mean contact current (with the
        film's ohmic drop; eta_ct starts at the charge-transfer part)."""
        self.phi.x.array[:] = 0.0
        if self.config.control.mode == ControlMode.galvanostatic:
            i_mean = float(self.i_app.value) * self.projected_area / self.contact_area
            eta_ct = self.law.overpotential(i_mean)
            self.V_we.x.array[:] = self.U_mech_value + eta_ct + self.film_resistance * i_mean
        else:
            eta_ct = 0.0
            self.V_we.x.array[:] = float(self.V_app.value)
        if self.eta_ct_function is not None:
            u = self.eta_ct_function
            u.x.array[:] = 0.0
            free = np.setdiff1d(np.arange(len(u.x.array)), self._film_bc.dof_indices()[0])
            u.x.array[free] = eta_ct

        if self.salt is not None:
            self.salt.initial_state()

    def set_time(self, t: float, dt: float | None = None) -> None:
        """The controls at time ``t`` [s], for a step of length ``dt`` [s] ending there."""
        self.i_app.value = self.config.control.current_at(t)
        if self.salt is not None and dt:
            self.salt.dt.value = dt

    def commit(self) -> None:
        """Accept the solved step: it is the state the next step starts from."""
        if self.salt is not None:
            self.salt.commit()


class SaltTransport:
    """The binary electrolyte of ``config.transport`` inside a CurrentDistribution ``p``: the
    salt concentration c [mol/m^3] in a copy of phi's space, its residual (physics.transport), the
    concentration-dependent properties and i0 factor.

    c is an unknown on the whole ion-conducting mesh for a single assembly, but its equation is
    integrated over the binary cells only (``binary``, 1 there and 0 elsewhere, so their
    boundary to a single-ion conductor blocks the anion); the dofs of no binary cell are pinned
    to c0 by a Dirichlet condition.
    """

    # GAMG on the salt's block of the field split: 268 GMRES iterations for 3 Newton steps of the
    # EC-3 cell (h = 2.5 um) against 624 with BoomerAMG (the block is non-symmetric through the
    # diffusion potential's grad(c)/c)
    SPLIT_OPTIONS: dict[str, Any] = {"fieldsplit_c_pc_type": "gamg"}

    def __init__(self, p: CurrentDistribution):
        config = p.config
        t = config.transport
        assert t is not None
        self.p = p
        self.c0 = t.initial_concentration
        self.c_ref = t.reference_concentration or self.c0
        self.exponent = t.exchange_current_exponent
        self.depletion_fraction = t.depletion_fraction
        listed = set(t.regions)
        self.binary_regions = {tag: (name, parent) for tag, (name, parent) in p.regions.items()
                               if name in listed or parent in listed}
        self.binary = region_field(p.mesh, p.region.cell_tags, self.binary_regions,
                                   lambda name, parent: 1.0, "binary")
        # a space of its own: boundary conditions are matched to unknowns by function space
        self.V = fem.functionspace(p.mesh, p.V.ufl_element())
        self.c = fem.Function(self.V, name="c")
        self.c_n = fem.Function(self.V, name="c_n")
        self.dt = fem.Constant(p.mesh, 1.0)
        self.dx = p.dx(tuple(self.binary_regions))
        self.t_plus = self.property("transference_number")
        self.tdf = self.property("thermodynamic_factor")
        self.D = self.property("diffusivity")

    def property(self, prop: str) -> Any:
        """The UFL field of a material property on the ion-conducting cells: numbers as a DG0
        field, formulas in c where a region gives one (physics.transport)."""
        p = self.p
        numbers: dict[tuple[str, str | None], float] = {}  # (region, parent) -> value
        formulas: list[tuple[fem.Function, ConcentrationFunction]] = []
        for tag, (name, parent) in p.regions.items():
            material = p.config.materials.for_region(name, parent)
            if tag not in self.binary_regions:
                if prop == "conductivity":
                    numbers[name, parent] = material.require(prop, Materials.key(name, parent))
                continue
            value = property_value(getattr(material, prop))
            if isinstance(value, ConcentrationFunction):
                chi = region_field(p.mesh, p.region.cell_tags, {tag: (name, parent)},
                                   lambda *_: 1.0, f"in_{name}")
                formulas.append((chi, value))
            else:
                numbers[name, parent] = value
        field: Any = region_field(
            p.mesh, p.region.cell_tags,
            {tag: region for tag, region in p.regions.items() if region in numbers},
            lambda name, parent: numbers[name, parent], prop)
        for chi, formula in formulas:
            field = field + chi * formula.ufl(self.c)
        return field

    def i0_factor(self, alpha_a: Any) -> Any:
        """(c / c_ref)^exponent at the interface in binary cells (exponent: transport's, else
        alpha_a), 1 elsewhere."""
        exponent = alpha_a if self.exponent is None else self.exponent
        return 1.0 + self.binary * ((self.c / self.c_ref) ** exponent - 1.0)

    def diffusion_potential_residual(self, v: Any) -> ufl.Form:
        p = self.p
        return transport.diffusion_potential_residual(self.c, v, p.kappa, self.t_plus,
                                                      self.tdf, p.f, self.dx)

    def current_density(self) -> Any:
        p = self.p
        return transport.current_density(p.phi, self.c, p.kappa, self.t_plus, self.tdf, p.f,
                                         self.binary)

    def add_unknown(self) -> None:
        """Append c, its residual and the pins of the non-binary dofs to p's lists."""
        p = self.p
        w = ufl.TestFunction(self.V)
        i = p.current_density
        F_c = transport.salt_residual(self.c, self.c_n, self.dt, w, self.D, self.t_plus, i,
                                      self.dx)
        # rows in A/m like the charge balance (mol/(m s) times F), so that one Newton
        # tolerance fits both
        p.residuals.append(FARADAY * F_c)
        p.unknowns.append(self.c)
        p.names.append("c")
        binary_cells = np.concatenate([p.region.cell_tags.find(tag)
                                       for tag in self.binary_regions]).astype(np.int32)
        inside = np.unique(self.V.dofmap.list[binary_cells])
        index_map = self.V.dofmap.index_map
        outside = np.setdiff1d(np.arange(index_map.size_local + index_map.num_ghosts,
                                         dtype=np.int32), inside)
        if p.mesh.comm.allreduce(len(outside), op=MPI.SUM):
            p.bcs.append(fem.dirichletbc(self.c0, outside, self.V))
        self.amount_form = fem.form(p.weigh(self.c * self.dx))

    def initial_state(self) -> None:
        self.c.x.array[:] = self.c0
        self.c_n.x.array[:] = self.c0

    def commit(self) -> None:
        self.c_n.x.array[:] = self.c.x.array

    def amount(self) -> float:
        """Salt in the binary regions [mol per m of depth in plane 2D, mol in 3D and
        axisymmetric] (collective)."""
        comm = self.p.mesh.comm
        return comm.allreduce(fem.assemble_scalar(self.amount_form), op=MPI.SUM)

