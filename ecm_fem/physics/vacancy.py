"""Lithium-vacancy transport in the Li metal (PHYSICS.md sections 1 and 6): vacancies injected at
the interface where Li is stripped, annihilated where Li is plated, diffusing (and drifting in a
hydrostatic-stress gradient) through the Li; one ``VacancyDiffusion`` per Li region, and
``transfer_shared_vertices`` to hand a field of the ion-conducting submesh (the interface current)
to it and back; ``crossing_time`` for the first time the interface concentration reaches a value.

Units are SI: c_v [mol/m^3], D_v [m^2/s], Omega_v [m^3/mol], sigma_h [Pa], i_n [A/m^2].

Transport. With the vacancy chemical potential
    mu_v = mu0 + R T ln(c_v) - Omega_v sigma_h = mu0 + R T ln(c_v) + Omega_v p,
(sigma_h = tr(sigma)/3 > 0 in tension, p = -sigma_h, Omega_v > 0 the vacancy formation
volume) and the flux J_v = -(D_v c_v / (R T)) grad(mu_v),
    J_v = -D_v grad(c_v) + D_v c_v Omega_v / (R T) grad(sigma_h),
    dc_v/dt = -div(J_v) + s = div(D_v grad c_v) - div(D_v c_v Omega_v / (R T) grad sigma_h) + s,
s an optional volumetric source [mol/m^3/s]. Sign: creating a vacancy adds the volume Omega_v
to the solid, so the work done against a pressure p raises its free energy by p Omega_v (it is
lowered in tension): vacancies are more numerous in tension at equilibrium, c_v ~ exp(Omega_v
sigma_h / (R T)) (Herring, J. Appl. Phys. 21 (1950) 437, the origin of Nabarro-Herring creep),
and drift up the gradient of sigma_h, towards tension. This is the same law, with the same sign,
as the lattice-hydrogen flux J = -D grad C + D C V_H / (R T) grad sigma_h of Sofronis and
McMeeking, J. Mech. Phys. Solids 37 (1989) 317, for a solute of positive partial molar volume;
it is also PHYSICS.md 3.1's convention dmu = -Omega sigma_h for a species of volume Omega, and
the drift written as "-div(D_v c_v Omega_v/(R T) grad sigma_h)" on the right-hand side.

Interface (facet tag ``interface``; n the unit normal from Li into the electrolyte, i_n = j.n,
anodic = stripping positive). The molar rate of vacancies entering the Li, -J_v.n = q, is
    q(c_v) = ( <i_n>+ - <i_n>- g(c_v) ) / F,   <i>+ = max(i, 0), <i>- = max(-i, 0),
    g(c) = c / sqrt(c^2 + c_eps^2):
stripping (i_n > 0) injects one vacancy per Li atom removed; plating fills vacancies at the
rate |i_n|/F while there are vacancies to fill. The positivity law g is smooth, odd, increasing,
g(0) = 0 and 1 - g(c) ~ (c_eps/c)^2 / 2 for c >> c_eps: plating stops annihilating vacancies as
c_v -> 0 (the rest of the plated Li grows the lattice), and for c_v a few c_eps and above the
sink is the full |i_n|/F. ``annihilation_scale`` c_eps [mol/m^3] (default 1e-3 c_v_eq) is a
regularisation, not a material constant: results where c_v >> c_eps do not depend on it. The
interface current is data (a Function the caller fills), so q is smooth in c_v and the Newton
Jacobian, the UFL derivative of the residual, is exact (d q / d c = -<i_n>- g'(c) / F,
g'(c) = c_eps^2 / (c^2 + c_eps^2)^(3/2)).

Current collector (``li_cc``): c_v = c_v_eq (``collector="equilibrium"``, an ideal vacancy
sink/source) or J_v.n = 0 (``"no_flux"``). Free surfaces (``void_surface``: the Li's walls of
voids): c_v = c_v_eq (``free_surface="equilibrium"``, the default) or J_v.n = 0. A free surface
is where vacancies are made and absorbed at equilibrium concentration: the sources and sinks of
Herring's diffusion creep (J. Appl. Phys. 21 (1950) 437) and of the growth of a void by the
vacancies it absorbs; its curvature term (Gibbs-Thomson, c_v,eq exp(gamma Omega_v kappa / (R T)))
is left out: 1e-3 relative for a 1 um void radius with gamma = 0.5 J/m^2. Every other boundary:
J_v.n = 0.

Weak form (backward Euler, c_n the committed state, v the test function):
    int (c - c_n)/dt v dx_m + int D_v grad c . grad v dx_m
        - int D_v c Omega_v / (R T) grad sigma_h . grad v dx_m - int q(c) v ds_m(interface)
        - int s v dx_m = 0.
P1 (the default): dx_m and ds_m are the vertex quadrature rule, i.e. a lumped mass matrix and a
nodal interface law; the other cell terms use it too (exact for the stiffness with a constant
D_v and for the drift with a P1 sigma_h, second order otherwise, like a nodal source). Without
drift, and where the stiffness matrix K is an M-matrix (off-diagonal K_ij <= 0: in 2D when the
two angles opposite each interior edge sum to at most pi, as on Delaunay meshes and
create_rectangle's right triangles), node i's equation reads
    (m_i/dt) c_i + b_i <i_n>-_i g(c_i) / F
        = (m_i/dt) c_n,i + b_i <i_n>+_i / F + sum_j |K_ij| (c_j - c_i)
(m_i, b_i the lumped volume and interface weights). At a node of minimum c the right-hand side
is >= 0 when c_n >= 0, and the left-hand side has the sign of c_i: so c >= 0 (a discrete maximum
principle). The drift keeps this while the mesh Peclet number Omega_v |grad sigma_h| h / (2 R T)
is below 1 (it is 2.6e-3 for Omega_v = 1.3e-5 m^3/mol, 1 MPa/um and h = 1 um). Degree >= 2 uses
full quadrature (no lumping of P2 has positive weights): accurate, without that guarantee.

Conservation: with v = 1 (row sums of the discrete system) the diffusion and drift terms vanish,
and since int c dx of a P1 field equals its lumped sum, each step satisfies exactly, up to the
Newton residual, amount(t + dt) - amount(t) = dt (interface_flux() + int s dx_m) (+ the fluxes
through an equilibrium collector and equilibrium free surfaces).

Newton: the project's ``BlockedNewtonSolver`` (PETSc SNES, option prefix ``ecm_vacancy_``)
as a reduced-space variational-inequality Newton (``vinewtonrsls``, backtracking) with the bound
c_v >= 0. Plain Newton from a state with c_v >> c_eps, where the sink is saturated (g' ~ 0),
overshoots far below zero, where g turns the sink into a source, and the line search then
crawls (50 iterations without converging on a planar cell plating at 20 A/m^2); with the bound
an overshoot is projected onto c_v = 0, from where Newton climbs monotonically to the root (g is
concave on c >= 0): 3-8 iterations on that cell, 1-2 in the tests' other cases. The bound is
inactive at the solution whenever the discrete maximum principle holds; ``clipped_nodes``
counts the nodes where it is not (and a warning is logged: vacancies are then not conserved
there). Tolerances: relative 1e-10, and an absolute one of 1e-11 times the residual's natural
scale c_ref (|m|/dt + 2 |diag K|) (the size of the terms m c/dt and K c at c = c_ref =
max(c_v_eq, max c_n); its round-off is ~1e-16 of that), so that a step that starts converged
(equilibrium, round-off residual) is accepted. A step that does not converge raises
``VacancySolverError`` (a ``RuntimeError``) with c_v as before the step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc

from ecm_fem.axisymmetry import weigh
from ecm_fem.constants import FARADAY, GAS_CONSTANT, T_REFERENCE
from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.solver import BlockedNewtonSolver, SolverError

log = logging.getLogger("ecm_fem")

PREFIX = "ecm_vacancy_"
COLLECTORS = ("equilibrium", "no_flux")
# default c_eps / c_v_eq: plating annihilates vacancies at the full rate down to a few 1e-3 c_v_eq
DEFAULT_ANNIHILATION_FRACTION = 1e-3
NEWTON_RTOL = 1e-10
NEWTON_ATOL_FACTOR = 1e-11  # times the residual scale (module docstring)
_VERTEX_RULE = {"quadrature_rule": "vertex", "quadrature_degree": 1}


class VacancySolverError(SolverError):
    """Newton of a vacancy step did not converge; c_v is left as it was before the step."""


def annihilation_factor(c: Any, c_eps: Any) -> Any:
    """g(c) = c / sqrt(c^2 + c_eps^2) [-]: the fraction of the plating sink |i_n|/F that
    annihilates vacancies at concentration c (UFL or numpy)."""
    if isinstance(c, np.ndarray | float | int):
        return c / np.sqrt(c * c + c_eps * c_eps)
    return c / ufl.sqrt(c * c + c_eps * c_eps)


def interface_injection(c: Any, i_n: Any, c_eps: Any) -> Any:
    """q = (<i_n>+ - <i_n>- g(c)) / F [mol/m^2/s]: vacancies entering the Li per interface area
    (UFL), i_n [A/m^2] the interface current, positive when stripping."""
    stripping = 0.5 * (abs(i_n) + i_n)
    plating = 0.5 * (abs(i_n) - i_n)
    return (stripping - plating * annihilation_factor(c, c_eps)) / FARADAY


def _is_lagrange_p1(space: fem.FunctionSpace) -> bool:
    element = space.ufl_element()
    return (element.degree == 1 and not element.discontinuous
            and element.reference_value_shape == () and space.dofmap.index_map_bs == 1)


class VacancyDiffusion:
    """Vacancy concentration c_v [mol/m^3] in the Li of ``mesh`` (module docstring).

    Args:
        mesh: the Li mesh (the Li submesh of a run, ``ecm_fem.mesh.extract_region``).
        facet_tags: its facet tags: ``interface`` and, for an equilibrium collector, ``li_cc``.
        diffusivity: D_v [m^2/s], a number or a UFL expression on ``mesh`` (> 0).
        equilibrium_concentration: c_v_eq [mol/m^3] (> 0): the collector value and the
            default initial state.
        molar_volume: Omega_v [m^3/mol], the vacancy formation volume of the stress drift
            (0: no drift).
        temperature: T [K].
        collector: ``"equilibrium"`` (c_v = c_v_eq on li_cc) or ``"no_flux"``.
        free_surface: ``"equilibrium"`` (c_v = c_v_eq on facets tagged void_surface, if
            any) or ``"no_flux"``.
        initial_concentration: c_v at t = 0 [mol/m^3] (>= 0): a number, or anything
            ``Function.interpolate`` takes (a callable x -> values, a Function or an Expression
            on ``mesh``); default c_v_eq. An equilibrium collector or free surface sets c_v_eq
            there.
        sigma_h: hydrostatic stress [Pa], a UFL expression or Function on ``mesh`` whose
            gradient is meaningful (continuous: a DG Function is refused; project a cell-wise
            stress onto P1 first). The caller may change its values between steps.
        degree: Lagrange degree of c_v (1: lumped, positivity-preserving; module docstring).
        annihilation_scale: c_eps [mol/m^3] of the positivity law (default 1e-3 c_v_eq).
        source: volumetric source s [mol/m^3/s], a UFL expression on ``mesh`` (default none).
        linear_solver: ``"iterative"`` (GMRES + BoomerAMG, default) or ``"direct"`` (MUMPS
            LU; under mpirun on few, busy cores MUMPS took 40 times longer on small meshes).
        petsc_options: extra PETSc options (without the prefix) of the Newton solve. They stay
            in PETSc's global options database under ``prefix``: an instance with other
            options needs its own prefix.
        interface_tag, collector_tag, free_surface_tag: facet tag values (default the
            project's tags).
        prefix: PETSc option prefix.
        axisymmetric: ``mesh`` is an (r, z) section; every integral carries 2 pi r
            (ecm_fem/axisymmetry.py). With P1 the vertex rule then gives the nodes on the axis
            no mass: their rows are the steady balance with their neighbours, an O(h) region
            of the axis, and the discrete maximum principle still holds.

    Attributes:
        c_v: the unknown [mol/m^3] (after ``step``: the state at the end of the step).
        c_v_old: the committed state.
        interface_current: Function on ``mesh`` [A/m^2], in the space of c_v (P1 at the
            default degree), that the caller fills with i_n at the interface nodes (only its
            interface values are used).
        dt: the time step [s] of the last ``step`` (a Constant in the forms).
        clipped_nodes: after a step, the number of nodes where Newton's bound c_v >= 0 is
            active (0 whenever the discrete maximum principle holds; module docstring).
    """

    def __init__(
        self,
        mesh: dmesh.Mesh,
        facet_tags: dmesh.MeshTags,
        *,
        diffusivity: float | Any,
        equilibrium_concentration: float,
        molar_volume: float = 0.0,
        temperature: float = T_REFERENCE,
        collector: str = "equilibrium",
        free_surface: str = "equilibrium",
        initial_concentration: float | Callable | fem.Function | fem.Expression | None = None,
        sigma_h: Any = None,
        degree: int = 1,
        annihilation_scale: float | None = None,
        source: Any = None,
        linear_solver: str = "iterative",
        petsc_options: dict[str, Any] | None = None,
        interface_tag: int = FACET_TAGS["interface"],
        collector_tag: int = FACET_TAGS["li_cc"],
        free_surface_tag: int = FACET_TAGS["void_surface"],
        prefix: str = PREFIX,
        axisymmetric: bool = False,
    ):
        _check_parameters(diffusivity, equilibrium_concentration, molar_volume, temperature,
                          collector, degree, annihilation_scale, linear_solver)
        if free_surface not in COLLECTORS:
            raise ValueError(f"vacancy: free_surface must be one of {COLLECTORS}, not "
                             f"{free_surface!r}")
        if sigma_h is not None and molar_volume == 0.0:
            raise ValueError("vacancy: sigma_h given but molar_volume is 0, so the stress drift "
                             "would be ignored; give the vacancy formation volume [m^3/mol]")
        if isinstance(sigma_h, fem.Function) and sigma_h.function_space.ufl_element() \
                .discontinuous:
            raise ValueError("vacancy: sigma_h lives in a discontinuous space, whose gradient "
                             "inside cells misses the jumps; project it onto P1 first")
        comm = mesh.comm
        fdim = mesh.topology.dim - 1
        mesh.topology.create_connectivity(fdim, mesh.topology.dim)
        n_interface = comm.allreduce(len(facet_tags.find(interface_tag)), op=MPI.SUM)
        if n_interface == 0:
            raise ValueError(f"vacancy: no facet of the Li mesh is tagged interface "
                             f"({interface_tag})")
        collector_facets = facet_tags.find(collector_tag)
        if collector == "equilibrium" and comm.allreduce(len(collector_facets), op=MPI.SUM) == 0:
            raise ValueError(f"vacancy: collector 'equilibrium' needs facets tagged li_cc "
                             f"({collector_tag}); none on the Li mesh")

        self.mesh, self.facet_tags = mesh, facet_tags
        self.collector, self.degree = collector, degree
        self.equilibrium_concentration = float(equilibrium_concentration)
        self.annihilation_scale = float(annihilation_scale if annihilation_scale is not None
                                        else DEFAULT_ANNIHILATION_FRACTION
                                        * equilibrium_concentration)
        self.V = fem.functionspace(mesh, ("Lagrange", degree))
        self.c_v = fem.Function(self.V, name="c_v")
        self.c_v_old = fem.Function(self.V, name="c_v_old")
        self.interface_current = fem.Function(self.V, name="i_n")
        self.dt = fem.Constant(mesh, 1.0)
        self.clipped_nodes = 0
        D = fem.Constant(mesh, float(diffusivity)) if np.isscalar(diffusivity) else diffusivity
        self.diffusivity = D
        self._c_eps = fem.Constant(mesh, self.annihilation_scale)
        self._set_initial(initial_concentration)

        c, c_n, v = self.c_v, self.c_v_old, ufl.TestFunction(self.V)
        # P1: the vertex rule for every integral of the residual (module docstring), one rule
        # per kernel: FFCx 0.9 miscompiles a cell kernel that mixes the vertex rule (mass) with
        # the default rule when a P1 coefficient's gradient (sigma_h) is in the latter: the
        # residual differed from the sum of its terms by 1e-4..1e-2 relative, inconsistent with
        # its Jacobian (Newton converged linearly)
        rule = _VERTEX_RULE if degree == 1 else {}
        dx_m = ufl.Measure("dx", domain=mesh, metadata=rule)
        ds_m = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags,
                           metadata=rule)(interface_tag)
        self._injection = interface_injection(c, self.interface_current, self._c_eps)
        F = ((c - c_n) / self.dt * v + D * ufl.inner(ufl.grad(c), ufl.grad(v))) * dx_m
        if sigma_h is not None:
            drift = D * molar_volume / (GAS_CONSTANT * temperature) * ufl.grad(sigma_h)
            F -= c * ufl.inner(drift, ufl.grad(v)) * dx_m
        F -= self._injection * v * ds_m
        if source is not None:
            F -= source * v * dx_m
        self.axisymmetric = axisymmetric
        F = weigh(F, axisymmetric)
        self.residual = F
        # the coupling of a Newton method that solves c_v with the fields it depends on: the
        # derivative of the residual along an interface-current change d_current (and a
        # stress change d_sigma_h)
        self.d_current = fem.Function(self.V, name="d_i_n")
        dF = ufl.derivative(F, self.interface_current, self.d_current)
        self.d_sigma_h: fem.Function | None = None
        if isinstance(sigma_h, fem.Function):
            self.d_sigma_h = fem.Function(sigma_h.function_space, name="d_sigma_h")
            dF += ufl.derivative(F, sigma_h, self.d_sigma_h)
        self._coupling_form = fem.form(ufl.algorithms.expand_derivatives(dF))

        self.bcs: list[fem.DirichletBC] = []
        held = [collector_facets] if collector == "equilibrium" else []
        if free_surface == "equilibrium":
            held.append(facet_tags.find(free_surface_tag))
        # the owned dofs of each held boundary, for the rates at which they take vacancies out
        # (a dof on both counts as the collector's)
        n_owned = self.V.dofmap.index_map.size_local
        self._held_dofs: dict[str, np.ndarray] = {}
        for name, facets in (("collector", collector_facets if collector == "equilibrium"
                              else np.zeros(0, np.int32)),
                             ("void_surface", facet_tags.find(free_surface_tag)
                              if free_surface == "equilibrium" else np.zeros(0, np.int32))):
            dofs = fem.locate_dofs_topological(self.V, fdim, facets)
            self._held_dofs[name] = np.setdiff1d(
                dofs[dofs < n_owned], self._held_dofs.get("collector", np.zeros(0, np.int32)))
        self._balance_form = fem.form(F)
        if held:
            dofs = fem.locate_dofs_topological(self.V, fdim, np.unique(np.concatenate(held)))
            self.bcs.append(fem.dirichletbc(fem.Constant(mesh, self.equilibrium_concentration),
                                            dofs, self.V))
            self.bcs[0].set(self.c_v.x.array)
            self.c_v_old.x.array[:] = self.c_v.x.array

        interface_dofs = fem.locate_dofs_topological(self.V, fdim, facet_tags.find(interface_tag))
        n_owned = self.V.dofmap.index_map.size_local
        self._interface_dofs = np.sort(interface_dofs[interface_dofs < n_owned])
        gdim = mesh.geometry.dim
        if degree == 1:  # the vertices' own coordinates, the same bits on every partition
            self._dof_points = mesh.geometry.x[_p1_dof_nodes(self.V), :gdim]
        else:
            self._dof_points = self.V.tabulate_dof_coordinates()[:, :gdim]
        # the residual's rule: the amount then changes by exactly dt times the flux
        self._amount_form = fem.form(weigh(c * dx_m, axisymmetric))
        self._flux_form = fem.form(weigh(self._injection * ds_m, axisymmetric))
        self._residual_scale = self._scales(D, v, dx_m)

        options: dict[str, Any] = {"snes_type": "vinewtonrsls", "snes_rtol": NEWTON_RTOL,
                                   "snes_stol": 0.0, "snes_max_it": 50,
                                   "snes_linesearch_type": "bt"}
        if linear_solver == "direct":
            options.update({"ksp_type": "preonly", "pc_type": "lu",
                            "pc_factor_mat_solver_type": "mumps"})
        else:
            options.update({"ksp_type": "gmres", "ksp_rtol": 1e-12, "ksp_atol": 1e-30,
                            "ksp_max_it": 1000, "pc_type": "hypre",
                            "pc_hypre_type": "boomeramg"})
        options.update(petsc_options or {})
        self._solver = BlockedNewtonSolver([F], [self.c_v], ["c_v"], self.bcs, options=options,
                                           linear_solver=linear_solver, prefix=prefix)
        self._lower, self._upper = self._solver.x.duplicate(), self._solver.x.duplicate()
        self._lower.set(0.0)
        self._upper.set(PETSc.INFINITY)
        self._solver.snes.setVariableBounds(self._lower, self._upper)
        self._block_ksp = _block_ksp(mesh.comm, linear_solver, prefix)

    def _set_initial(self, initial: float | Callable | fem.Function | fem.Expression | None
                     ) -> None:
        if initial is None:
            self.c_v.x.array[:] = self.equilibrium_concentration
        elif np.isscalar(initial):
            self.c_v.x.array[:] = float(initial)
        else:
            self.c_v.interpolate(initial)
        self.c_v.x.scatter_forward()
        lowest = self.mesh.comm.allreduce(float(self.c_v.x.array.min(initial=np.inf)),
                                          op=MPI.MIN)
        if not lowest >= 0.0:
            raise ValueError(f"vacancy: initial_concentration must be >= 0 mol/m^3 everywhere, "
                             f"got a minimum of {lowest:g}")
        self.c_v_old.x.array[:] = self.c_v.x.array

    def _scales(self, D: Any, v: Any, dx_m: ufl.Measure) -> tuple[float, float]:
        """(|m|_2, 2 |diag K|_2): the lumped mass vector and the stiffness diagonal, which size
        the residual's terms (c/dt) m and K c (row sums of |K| are twice its diagonal on an
        M-matrix)."""
        mass = fem_petsc.assemble_vector(fem.form(weigh(v * dx_m, self.axisymmetric)))
        mass.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        u = ufl.TrialFunction(self.V)
        K = fem_petsc.assemble_matrix(fem.form(
            weigh(D * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx_m, self.axisymmetric)))
        K.assemble()
        diagonal = K.getDiagonal()
        scales = (mass.norm(), 2.0 * diagonal.norm())
        for obj in (mass, K, diagonal):
            obj.destroy()
        return scales

    # -- time stepping
    def set_dt(self, dt: float) -> None:
        """The time step [s] of the next residual, Jacobian or ``step`` (and the Newton
        tolerance that goes with it)."""
        if not (np.isfinite(dt) and dt > 0.0):
            raise ValueError(f"vacancy: time step must be a positive number of seconds, "
                             f"got {dt}")
        self.dt.value = dt
        self._solver.snes.setTolerances(atol=self.absolute_tolerance())

    def absolute_tolerance(self) -> float:
        """Newton's absolute residual tolerance at the current dt: NEWTON_ATOL_FACTOR times the
        residual's natural scale (module docstring)."""
        return NEWTON_ATOL_FACTOR * self.residual_scale()

    def residual_scale(self) -> float:
        """The residual's natural scale at the current dt, c_ref (|m|/dt + 2 |diag K|)
        [mol/s per metre in 2D, mol/s in 3D] (module docstring)."""
        dt = float(self.dt.value)
        c_ref = max(self.equilibrium_concentration, self.mesh.comm.allreduce(
            float(np.abs(self.c_v_old.x.array).max(initial=0.0)), op=MPI.MAX))
        mass_norm, stiffness_norm = self._residual_scale
        return c_ref * (mass_norm / dt + stiffness_norm)

    def step(self, dt: float) -> int:
        """Solve the backward-Euler step of length ``dt`` [s] from the committed state, starting
        Newton from the current c_v; returns the Newton iterations. Raises
        ``VacancySolverError`` (c_v unchanged) if Newton fails."""
        self.set_dt(dt)
        self.interface_current.x.scatter_forward()
        try:
            report = self._solver.solve()
        except SolverError as exc:
            raise VacancySolverError(f"vacancy step of dt = {dt:g} s: {exc}") from None
        n_owned = self.V.dofmap.index_map.size_local
        self.clipped_nodes = self.mesh.comm.allreduce(
            int(np.count_nonzero(self.c_v.x.array[:n_owned] <= 0.0)), op=MPI.SUM)
        if self.clipped_nodes:
            log.warning("vacancy step dt = %g s: c_v = 0 held by the bound at %d nodes (the "
                        "discrete maximum principle does not hold here: obtuse cells, P2 or "
                        "strong drift); vacancies are not conserved there",
                        dt, self.clipped_nodes)
        log.debug("vacancy step dt = %g s: %d Newton iterations", dt, report.newton_its)
        return report.newton_its

    # -- the block of a coupled Newton method (vacancies.LiVacancies)
    @property
    def newton_vector(self) -> PETSc.Vec:
        """A vector of c_v's layout (owned dofs) for ``residual_at`` and ``solve_block``; do
        not destroy it."""
        return self._solver.x

    def write(self, x: PETSc.Vec) -> None:
        """c_v's owned values into ``x`` (``newton_vector``'s layout)."""
        self._solver.write(x)

    def residual_at(self, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """The residual of the step (at ``set_dt``'s dt, the current interface current and
        stress) at c_v = ``x`` into ``b``; c_v holds ``x`` afterwards. Rows of dofs held at
        c_v,eq are c_v - c_v,eq."""
        self.interface_current.x.scatter_forward()
        self._solver.residual(x, b)

    def assemble_jacobian(self) -> PETSc.Mat:
        """dF/dc_v at the current c_v (identity rows for held dofs), also the operator of
        ``solve_block``."""
        A = self._solver.assemble_jacobian()
        self._block_ksp.setOperators(A)
        return A

    @property
    def jacobian(self) -> PETSc.Mat:
        """The matrix of the last ``assemble_jacobian``."""
        return self._solver.A

    def coupling_load(self, b: PETSc.Vec) -> None:
        """dF/d(i_n) [d_current] + dF/d(sigma_h) [d_sigma_h] into ``b`` (0 in held rows): the
        residual's change along the caller's current and stress directions (both fields
        data here, unknowns of the coupled method)."""
        self.d_current.x.scatter_forward()
        self._solver.assemble_increment([self._coupling_form], b)

    def solve_block(self, rhs: PETSc.Vec, out: PETSc.Vec) -> int:
        """out = A^-1 rhs with the Jacobian of the last ``assemble_jacobian`` (GMRES +
        BoomerAMG or LU, as the linear_solver); returns the Krylov iterations."""
        self._block_ksp.solve(rhs, out)
        reason = self._block_ksp.getConvergedReason()
        if reason <= 0:
            raise VacancySolverError(f"vacancy block solve failed (KSP reason {reason})")
        return self._block_ksp.getIterationNumber()

    def commit(self) -> None:
        """Accept the last step: it becomes the state the next step starts from."""
        self.c_v_old.x.array[:] = self.c_v.x.array

    def rollback(self) -> None:
        """Return c_v to the committed state (after a step that the caller rejects)."""
        self.c_v.x.array[:] = self.c_v_old.x.array

    # -- outputs (all collective)
    def amount(self) -> float:
        """Total vacancies: int c_v dx [mol per metre of depth in plane 2D, mol in 3D and
        axisymmetric]."""
        return self.mesh.comm.allreduce(fem.assemble_scalar(self._amount_form), op=MPI.SUM)

    def interface_flux(self) -> float:
        """Net rate at which vacancies enter the Li through the interface at the current c_v,
        int q(c_v) ds [mol/s per metre of depth in 2D, mol/s in 3D], with the quadrature of the
        residual, so that amount() changes by dt times this over a step (no-flux collector)."""
        return self.mesh.comm.allreduce(fem.assemble_scalar(self._flux_form), op=MPI.SUM)

    def outflow_rates(self) -> dict[str, float]:
        """The rates at which the held boundaries take vacancies out of the Li at the current
        c_v, {"collector": ..., "void_surface": ...} [mol/s per metre of depth in 2D, mol/s in
        3D and axisymmetric]: minus the sums of the unconstrained residual's rows at their
        dofs (the reactions of the Dirichlet conditions; with the residual's quadrature, so
        that amount() changes over a step by exactly dt (interface_flux() - the sum of these)
        up to the Newton residual)."""
        b = fem_petsc.assemble_vector(self._balance_form)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        values = b.getArray(readonly=True)
        local = [-float(values[dofs].sum()) for dofs in self._held_dofs.values()]
        b.destroy()
        total = self.mesh.comm.allreduce(np.array(local), op=MPI.SUM)
        return dict(zip(self._held_dofs, (float(v) for v in total), strict=True))

    def interface_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(points (n, gdim) [m], c_v (n,) [mol/m^3]) at the interface nodes this rank owns
        (each node on exactly one rank)."""
        dofs = self._interface_dofs
        return self._dof_points[dofs].copy(), self.c_v.x.array[dofs].copy()

    def interface_maximum(self) -> tuple[float, np.ndarray]:
        """The largest c_v at an interface node over all ranks [mol/m^3] and that node's
        position (gdim,) [m]; ties go to the smallest coordinates, so every rank count gives
        the same answer."""
        points, values = self.interface_values()
        if len(values):
            best = np.flatnonzero(values == values.max())
            k = best[np.lexsort(points[best].T[::-1])[0]]
            local = (float(values[k]), tuple(points[k]))
        else:
            local = (-np.inf, ())
        candidates = [c for c in self.mesh.comm.allgather(local) if len(c[1])]
        value = max(c[0] for c in candidates)
        where = min(c[1] for c in candidates if c[0] == value)
        return value, np.asarray(where)

    def destroy(self) -> None:
        """Free the PETSc objects of the solver."""
        self._solver.destroy()
        self._lower.destroy()
        self._upper.destroy()
        self._block_ksp.destroy()


def _block_ksp(comm: MPI.Comm, linear_solver: str, prefix: str) -> PETSc.KSP:
    """The Krylov solver of c_v's Jacobian inside a coupled method's preconditioner (options
    prefix ``<prefix>block_``)."""
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix + "block_")
    pc = ksp.getPC()
    if linear_solver == "direct":
        ksp.setType("preonly")
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
    else:
        ksp.setType("gmres")
        ksp.setTolerances(rtol=1e-12, atol=1e-30, max_it=1000)
        pc.setType("hypre")
        pc.setHYPREType("boomeramg")
    ksp.setFromOptions()
    return ksp


def _check_parameters(diffusivity: Any, c_eq: float, molar_volume: float, temperature: float,
                      collector: str, degree: int, annihilation_scale: float | None,
                      linear_solver: str) -> None:
    if np.isscalar(diffusivity) and not float(diffusivity) > 0.0:
        raise ValueError(f"vacancy: diffusivity must be > 0 m^2/s, got {diffusivity}")
    if not float(c_eq) > 0.0:
        raise ValueError(f"vacancy: equilibrium_concentration must be > 0 mol/m^3, got {c_eq}")
    if not float(molar_volume) >= 0.0:
        raise ValueError(f"vacancy: molar_volume must be >= 0 m^3/mol, got {molar_volume}")
    if not float(temperature) > 0.0:
        raise ValueError(f"vacancy: temperature must be > 0 K, got {temperature}")
    if collector not in COLLECTORS:
        raise ValueError(f"vacancy: collector must be one of {COLLECTORS}, got {collector!r}")
    if int(degree) != degree or degree < 1:
        raise ValueError(f"vacancy: degree must be a positive integer, got {degree}")
    if annihilation_scale is not None and not float(annihilation_scale) > 0.0:
        raise ValueError(f"vacancy: annihilation_scale must be > 0 mol/m^3, "
                         f"got {annihilation_scale}")
    if linear_solver not in ("direct", "iterative"):
        raise ValueError(f"vacancy: linear_solver must be 'direct' or 'iterative', "
                         f"got {linear_solver!r}")


def crossing_time(times: Any, values: Any, threshold: float) -> float | None:
    """The first time [s] at which the sampled ``values`` (at ``times``, rising) reach
    ``threshold``, interpolated linearly in sqrt(t) between the two samples that straddle it:
    exact for the constant-flux semi-infinite solution c_v0 + 2 J sqrt(t / (pi D_v)) when the
    first sample is t = 0. None when no sample reaches it."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    reached = np.flatnonzero(v >= threshold)
    if len(reached) == 0:
        return None
    k = int(reached[0])
    if k == 0 or v[k] == v[k - 1]:
        return float(t[k])
    s0, s1 = np.sqrt(t[k - 1]), np.sqrt(t[k])
    s = s0 + (threshold - v[k - 1]) * (s1 - s0) / (v[k] - v[k - 1])
    return float(s * s)


# -- fields between the ion-conducting submesh and the Li submesh

def _p1_dof_nodes(space: fem.FunctionSpace) -> np.ndarray:
    """The geometry node of every local dof (owned and ghost) of a P1 space on simplices: a
    cell's P1 dofs and its first tdim + 1 geometry nodes both follow the reference vertices."""
    msh = space.mesh
    imap = space.dofmap.index_map
    nodes = np.empty(imap.size_local + imap.num_ghosts, dtype=np.int64)
    nodes[space.dofmap.list.ravel()] = msh.geometry.dofmap[:, : msh.topology.dim + 1].ravel()
    return nodes


def _boundary_vertex_dofs(space: fem.FunctionSpace) -> tuple[np.ndarray, np.ndarray]:
    """(owned P1 dofs on the boundary of the space's mesh, the input global index of each
    dof's vertex). create_submesh carries the parent's input global indices over to a
    submesh's geometry, so the index names the same parent vertex on every region and rank."""
    msh = space.mesh
    tdim, fdim = msh.topology.dim, msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, tdim)
    facets = dmesh.exterior_facet_indices(msh.topology)
    dofs = fem.locate_dofs_topological(space, fdim, facets)
    dofs = np.sort(dofs[dofs < space.dofmap.index_map.size_local])
    nodes = _p1_dof_nodes(space)[dofs]
    keys = np.asarray(msh.geometry.input_global_indices, dtype=np.int64)[nodes]
    return dofs, keys


def transfer_shared_vertices(source: fem.Function, source_region: Any, target_region: Any,
                             target: fem.Function) -> None:
    """Copy the values of the P1 ``source`` (on ``source_region.mesh``, e.g. the ion-conducting
    submesh ``MeshData.ion``) onto the P1 ``target`` (on ``target_region.mesh``, e.g. the Li
    submesh) at every vertex the two regions share (the interface, where both are cut from the
    same parent mesh), owned values and ghosts; other target values are left alone. Either
    direction works. Collective.

    The shared vertices are matched by the parent vertex they come from, named by the input
    global index that create_submesh carries over (``Region.vertex_map`` holds rank-local
    parent indices, which do not name a vertex across ranks). Each owned boundary value of the
    source goes to the rank key % size, where each rank's owned boundary target vertices
    collect it (two all-to-all exchanges of interface-sized data)."""
    for name, f, region in (("source", source, source_region),
                            ("target", target, target_region)):
        if not _is_lagrange_p1(f.function_space):
            raise ValueError(f"transfer_shared_vertices: {name} must be a scalar P1 Function")
        if f.function_space.mesh is not region.mesh:
            raise ValueError(f"transfer_shared_vertices: {name} does not live on its region's "
                             "mesh")
    comm = target.function_space.mesh.comm
    size = comm.size
    src_dofs, src_keys = _boundary_vertex_dofs(source.function_space)
    dst_dofs, dst_keys = _boundary_vertex_dofs(target.function_space)

    # 1. every owned source value to the directory rank key % size
    home = src_keys % size
    outgoing = [(src_keys[home == r], source.x.array[src_dofs[home == r]]) for r in range(size)]
    received = comm.alltoall(outgoing)
    dir_keys = np.concatenate([k for k, _ in received]) if received else np.zeros(0, np.int64)
    dir_values = np.concatenate([v for _, v in received]) if received else np.zeros(0)
    order = np.argsort(dir_keys)
    dir_keys, dir_values = dir_keys[order], dir_values[order]

    # 2. every owned target vertex asks the directory, which answers (found, value)
    home = dst_keys % size
    requests = comm.alltoall([dst_keys[home == r] for r in range(size)])
    answers = []
    for keys in requests:
        pos = np.minimum(np.searchsorted(dir_keys, keys), len(dir_keys) - 1)
        if len(dir_keys):
            found = dir_keys[pos] == keys
            answers.append((found, dir_values[pos[found]]))
        else:
            answers.append((np.zeros(len(keys), dtype=bool), np.zeros(0)))
    replies = comm.alltoall(answers)
    for r, (found, values) in enumerate(replies):
        target.x.array[dst_dofs[np.flatnonzero(home == r)[found]]] = values
    target.x.scatter_forward()
