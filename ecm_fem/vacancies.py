"""The Li vacancies of a run (config section ``vacancies``): ``physics.vacancy.VacancyDiffusion``
on the Li submesh, fed each time step with the interface current of the current distribution
and, with a vacancy formation volume, the hydrostatic stress of the mechanics, and the outputs
of the vacancy criterion (PHYSICS.md section 6).

Coupling. c_v is an unknown of the step's Newton method, next to the current distribution
(vacancy_newton.CurrentVacancyNewton, without mechanics and in each current solve of the
staggered scheme) or next to the current distribution, u and the growth currents (the
monolithic scheme, monolithic.MonolithicStep). This class gives that method c_v's block: the
residual for the unknowns' current state (``residual``), its Jacobian (``assemble_jacobian``,
``apply``, ``solve`` for the preconditioner), the coupling C a = dF_v/di_n [di_n] + dF_v/dsigma_h
[dsigma_h] along the method's directions (``linearise`` compiles the UFL derivative of i_n along
them, ``coupling_load`` evaluates it like i_n and takes the pressure increment of the Li cells
for the drift), and the nonlinear elimination with the bounded Newton method of
physics.vacancy (``eliminate``, which keeps c_v >= 0). Until contact is lost (a later issue) the
vacancies do not act back on the current, the salt or the stress, so the coupled Jacobian is
block lower-triangular with c_v last. A step that fails rejects c_v with everything else
(``rollback``).

Interface current. i_n of the kinetics is evaluated at the vertices of each interface facet
of the ion-conducting submesh (inside the facet's cell, so a region with its own kinetics gives
its own value) and averaged over the facets through a vertex; the P1 field is then moved to the
Li submesh through the shared vertices (``transfer_shared_vertices``).

Stress drift. sigma_h = -p of the mechanics' Li cells (cell averages) is projected onto P1 on
the Li submesh with a lumped mass (the volume-weighted mean of the cells around a vertex),
whose gradient the drift needs.

Outputs. ``c_v_interface_max`` (the largest interface value [mol/m^3]), ``vacancy_amount``
(int c_v dx: mol per metre of depth in 2D, mol in 3D), ``vacancies_absorbed_void`` and
``vacancies_absorbed_collector`` (the vacancies the void walls and the collector, held at
c_v,eq, have taken out of the Li since t = 0, same units: the reactions of those conditions,
summed over the steps times dt), ``vacancies_injected`` (the net number the interface put in,
injected less annihilated: dt times interface_flux, summed), so that amount(t) = amount(0) +
injected - both absorbed to the Newton tolerance, and
``newton_its_vacancy`` (the bounded Newton iterations of the step's eliminations) per step in
history.csv; the c_v profile in interface.csv (``c_v``: the P1 field handed back to the
ion-conducting submesh, evaluated at the profile's points); ``fields/vacancies.bp``. With a
critical concentration, the first time it is reached at the interface (linear in sqrt(t)
between the two steps that straddle it, ``crossing_time``) and the place of the largest value
in that step.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from petsc4py import PETSc

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc

from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import FacetDofMean, extract_region, owned_facet_cells
from ecm_fem.physics.vacancy import VacancyDiffusion, crossing_time, transfer_shared_vertices

if TYPE_CHECKING:
    from ecm_fem.config import RunConfig
    from ecm_fem.mesh import MeshData
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.solid import StepSolid

log = logging.getLogger("ecm_fem")


class LiVacancies:
    """The vacancy field of a run and its outputs (module docstring). Collective methods."""

    name = "vacancies"

    def __init__(self, config: RunConfig, mesh_data: MeshData, ec: CurrentDistribution,
                 solid: StepSolid | None):
        v = config.vacancies
        assert v is not None
        md = mesh_data
        self.solid = solid
        self.ion = md.ion
        self.li = extract_region(md.mesh, md.cell_tags, md.facet_tags, md.region_tags("li"))
        self.critical = v.critical_concentration
        self.stop_at_critical = v.stop_at_critical
        li_mesh = self.li.mesh
        P1_li = fem.functionspace(li_mesh, ("Lagrange", 1))
        self.sigma_h = fem.Function(P1_li, name="sigma_h") if v.formation_volume > 0 else None
        self.model = VacancyDiffusion(
            li_mesh, self.li.facet_tags, diffusivity=v.diffusivity,
            equilibrium_concentration=v.equilibrium_concentration,
            molar_volume=v.formation_volume, temperature=config.temperature,
            collector=v.collector, free_surface=v.void_surface,
            initial_concentration=v.initial_concentration,
            sigma_h=self.sigma_h, annihilation_scale=v.annihilation_scale,
            linear_solver=config.solver.linear_solver, axisymmetric=config.axisymmetric)
        self.c_v = self.model.c_v

        ion_mesh = self.ion.mesh
        P1_ion = fem.functionspace(ion_mesh, ("Lagrange", 1))
        cells, local = owned_facet_cells(ion_mesh, self.ion.facet_tags, FACET_TAGS["interface"])
        self._cells = cells
        self._mean = FacetDofMean(P1_ion, cells, local, 1)
        # i_n at the vertices of each interface cell (the P1 element's points)
        self._i_expr = fem.Expression(ec.i_n, self._mean.element.points)
        self._n_points = len(self._mean.element.points)
        self._i_ion = fem.Function(P1_ion, name="i_n")
        self.on_ion = fem.Function(P1_ion, name="c_v")
        if self.sigma_h is not None:
            self._setup_projection()

        self._x, self._b, self._y = (self.model.newton_vector.duplicate() for _ in range(3))
        self.n_owned = self._x.getLocalSize()
        self._di_expr: fem.Expression | None = None

        self.newton_its = 0
        # vacancies taken out by the void walls and the collector since t = 0 (held at c_v,eq)
        # and net of the injection at the interface (negative while stripping)
        self.absorbed = {"void_surface": 0.0, "collector": 0.0, "interface": 0.0}
        self.onset: tuple[float, list[float]] | None = None
        self._initial_max, _ = self.model.interface_maximum()

    # -- data from the other fields
    def _interface_field(self, expr: fem.Expression, target: fem.Function) -> None:
        """An expression of the ion-conducting submesh (i_n or its derivative) at the
        interface vertices, averaged over the facets through each, onto ``target`` on the Li
        submesh."""
        if len(self._cells):
            values = expr.eval(self.ion.mesh, self._cells).reshape(
                len(self._cells), self._n_points)
            per_dof = np.take_along_axis(values, self._mean.facet_rows, axis=1)[:, :, None]
        else:
            per_dof = np.zeros((0, self._mean.facet_dofs.shape[1], 1))
        self._i_ion.x.array[self._mean.dofs] = self._mean(per_dof)[:, 0]
        transfer_shared_vertices(self._i_ion, self.ion, self.li, target)

    def _update_current(self) -> None:
        """i_n at the interface vertices, onto the Li submesh."""
        self._interface_field(self._i_expr, self.model.interface_current)

    def _setup_projection(self) -> None:
        li_mesh = self.li.mesh
        self._sigma_cells = fem.Function(fem.functionspace(li_mesh, ("DG", 0)))
        v = ufl.TestFunction(self.sigma_h.function_space)
        dx = ufl.Measure("dx", domain=li_mesh, metadata={"quadrature_degree": 1})
        self._weighted_form = fem.form(self._sigma_cells * v * dx)
        lumped = fem_petsc.assemble_vector(fem.form(v * dx))
        lumped.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        self._lumped = lumped
        n_li = len(self.li.cell_map)
        self._li_dofs = self._sigma_cells.function_space.dofmap.list[:n_li, 0]
        assert self.solid is not None
        parent_dofs = self.solid.stress.pressure.function_space.dofmap.list
        self._parent_dofs = parent_dofs[np.asarray(self.li.cell_map[:n_li]), 0]

    def _project(self, cell_values: np.ndarray, target: fem.Function) -> None:
        """Values on the mechanics' cells (indexed like its DG0 dofs) projected onto P1 on
        the Li submesh with a lumped mass, into ``target``."""
        self._sigma_cells.x.array[self._li_dofs] = cell_values[self._parent_dofs]
        b = fem_petsc.assemble_vector(self._weighted_form)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        b.pointwiseDivide(b, self._lumped)
        n_owned = target.function_space.dofmap.index_map.size_local
        target.x.array[:n_owned] = b.array_r[:n_owned]
        target.x.scatter_forward()
        b.destroy()

    def _update_stress(self) -> None:
        """sigma_h = -p (cell averages) projected onto P1 with a lumped mass."""
        assert self.solid is not None and self.sigma_h is not None
        self._project(-self.solid.stress.pressure.x.array, self.sigma_h)

    def _update_data(self) -> None:
        self._update_current()
        if self.sigma_h is not None:
            self._update_stress()

    # -- the c_v block of the steppers' Newton methods (module docstring)
    def linearise(self, di_n: Any) -> None:
        """Compile ``di_n``, the UFL derivative of the kinetics' i_n along the stepper's
        direction functions (on the ion-conducting submesh), for ``coupling_load``."""
        self._di_expr = fem.Expression(di_n, self._mean.element.points)

    def start_step(self, dt: float) -> None:
        """Before a step's Newton method: its dt; the vacancy Newton count restarts."""
        self.model.set_dt(dt)
        self.newton_its = 0

    def values(self) -> np.ndarray:
        """c_v's owned values (the block of the stepper's vector)."""
        return self.c_v.x.array[: self.n_owned].copy()

    def residual(self, x_v: np.ndarray, refresh: bool = True) -> np.ndarray:
        """The c_v residual (owned rows) at c_v = ``x_v`` for the interface current of the
        current distribution's unknowns as they are now (and the mechanics' stress).
        ``refresh=False``: that current and stress were read by the previous call of this
        method or ``eliminate``, and the unknowns and the stress have not changed since."""
        if refresh:
            self._update_data()
        self._x.setArray(x_v)
        self.model.residual_at(self._x, self._b)
        return self._b.getArray(readonly=True).copy()

    def assemble_jacobian(self) -> None:
        """dF_v/dc_v at c_v of the last ``residual``."""
        self.model.assemble_jacobian()

    def coupling_load(self, pressure_increment: np.ndarray | None = None) -> np.ndarray:
        """dF_v/d(x_e, u) [a]: the residual's change along the stepper's directions, through
        the interface current (``linearise``'s di_n at the directions' current values) and,
        with the drift, a pressure increment on the mechanics' cells (None: no change)."""
        assert self._di_expr is not None, "linearise() first"
        self._interface_field(self._di_expr, self.model.d_current)
        if self.model.d_sigma_h is not None:
            if pressure_increment is None:
                self.model.d_sigma_h.x.array[:] = 0.0
            else:
                self._project(-pressure_increment, self.model.d_sigma_h)
        self.model.coupling_load(self._y)
        return self._y.getArray(readonly=True).copy()

    def apply(self, a_v: np.ndarray, load: np.ndarray) -> np.ndarray:
        """J_vv a_v + ``load`` (``coupling_load`` of the same direction)."""
        self._x.setArray(a_v)
        self.model.jacobian.mult(self._x, self._y)
        return self._y.getArray(readonly=True) + load

    def solve(self, r_v: np.ndarray, load: np.ndarray) -> np.ndarray:
        """a_v with J_vv a_v = r_v - ``load``: c_v's rows of the block-triangular
        preconditioner."""
        self._b.setArray(r_v - load)
        self.model.solve_block(self._b, self._x)
        return self._x.getArray(readonly=True).copy()

    def eliminate(self, x_v: np.ndarray, refresh: bool = True) -> np.ndarray:
        """c_v solved, with the bounded Newton method of physics.vacancy (c_v >= 0), for the
        current and stress of the unknowns as they are now, from ``x_v``; returns it (owned).
        ``refresh``: as for ``residual``. Raises VacancySolverError."""
        if refresh:
            self._update_data()
        self.c_v.x.array[: self.n_owned] = x_v
        self.c_v.x.scatter_forward()
        self.newton_its += self.model.step(float(self.model.dt.value))
        return self.values()

    def residual_scale(self) -> float:
        """The c_v residual's natural scale at the step's dt (physics.vacancy)."""
        return self.model.residual_scale()

    def absolute_tolerance(self) -> float:
        """The c_v residual's absolute Newton tolerance at the step's dt."""
        return self.model.absolute_tolerance()

    def commit(self) -> None:
        """Accept the step: the vacancies its held boundaries took out are added up."""
        dt = float(self.model.dt.value)
        for name, rate in self.model.outflow_rates().items():
            self.absorbed[name] += dt * rate
        self.absorbed["interface"] -= dt * self.model.interface_flux()
        self.model.commit()

    def rollback(self) -> None:
        self.model.rollback()

    # -- outputs
    def scalars(self) -> dict[str, float]:
        """history.csv's vacancy columns (io.VACANCY_COLUMNS) of the last step."""
        value, _ = self.model.interface_maximum()
        return {"c_v_interface_max": value, "vacancy_amount": self.model.amount(),
                "vacancies_absorbed_void": self.absorbed["void_surface"],
                "vacancies_absorbed_collector": self.absorbed["collector"],
                "vacancies_injected": -self.absorbed["interface"],
                "newton_its_vacancy": self.newton_its}

    def profile_field(self) -> fem.Function:
        """c_v handed to the ion-conducting submesh (valid at the interface), for the
        interface profile."""
        transfer_shared_vertices(self.c_v, self.li, self.ion, self.on_ion)
        return self.on_ion

    def check_critical(self, history: list[dict[str, Any]]) -> bool:
        """Record the first time the interface reaches the critical concentration (from the
        last two rows of ``history``, the last one this step's) and the place of the largest
        value then; True when this step reached it."""
        if self.critical is None or self.onset is not None:
            return False
        value, where = self.model.interface_maximum()
        if value < self.critical:
            return False
        if len(history) >= 2:
            times, before = [history[-2]["time"], history[-1]["time"]], \
                history[-2]["c_v_interface_max"]
        else:
            times, before = [0.0, history[-1]["time"]], self._initial_max
        t_crit = crossing_time(times, [before, value], self.critical)
        assert t_crit is not None
        self.onset = (t_crit, [float(c) for c in where] + [0.0] * (3 - len(where)))
        log.warning("vacancies: the interface concentration reached the critical value %.4g "
                    "mol/m^3 at t = %.6g s (interpolated in sqrt(t)), largest at x = %s um",
                    self.critical, t_crit,
                    ", ".join(f"{1e6 * c:.4g}" for c in self.onset[1][:len(where)]))
        return True

    def summary(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """summary.json's vacancy keys: the largest interface concentration over the run
        [mol/m^3], the time [s] and position [m] (x, y, z) where the critical concentration was
        first reached (None when it was not)."""
        peak = max((row["c_v_interface_max"] for row in history), default=self._initial_max)
        out: dict[str, Any] = {"c_v_interface_peak": max(peak, self._initial_max),
                               "vacancy_critical_time": None, "vacancy_critical_position": None}
        if self.onset is not None:
            out["vacancy_critical_time"], out["vacancy_critical_position"] = self.onset
        return out

    def checkpoint_scalars(self) -> dict[str, Any]:
        return {"vacancy_onset": list(self.onset) if self.onset is not None else None,
                "vacancies_absorbed": dict(self.absorbed)}

    def restore_scalars(self, entry: dict[str, Any]) -> None:
        onset = entry.get("vacancy_onset")
        self.onset = (float(onset[0]), list(onset[1])) if onset else None
        self.absorbed.update(entry.get("vacancies_absorbed", {}))
        self.model.commit()

    def destroy(self) -> None:
        self.model.destroy()
        for vec in (self._x, self._b, self._y):
            vec.destroy()
        if self.sigma_h is not None:
            self._lumped.destroy()
