"""The Li vacancies of a run (config section ``vacancies``): ``physics.vacancy.VacancyDiffusion``
on the Li submesh, fed each time step with the interface current of the current distribution
and, with a vacancy formation volume, the hydrostatic stress of the mechanics, and the outputs
of the vacancy criterion (PHYSICS.md section 6).

Coupling. Until contact is lost (a later issue) the vacancies do not act back on the current,
the salt or the stress: the coupled system is block lower-triangular, with c_v after (phi, V_we,
c, u). Solving the vacancy block after the others have converged, within the same time step and
from the same end-of-step state (backward Euler), is therefore Newton on the whole system with
the exact block Gauss-Seidel order: it gives the same implicit solution as one monolithic Newton
solve. The steppers (coupling.CoupledStep, monolithic.MonolithicStep) call ``advance`` after
their solve converged and before they commit, so a vacancy step that fails rejects the whole
time step, which is then retried with a smaller one like any other failure.

Interface current. i_n of the kinetics is evaluated at the vertices of each interface facet
of the ion-conducting submesh (inside the facet's cell, so a region with its own kinetics gives
its own value) and averaged over the facets through a vertex; the P1 field is then moved to the
Li submesh through the shared vertices (``transfer_shared_vertices``).

Stress drift. sigma_h = -p of the mechanics' Li cells (cell averages) is projected onto P1 on
the Li submesh with a lumped mass (the volume-weighted mean of the cells around a vertex),
whose gradient the drift needs.

Outputs. ``c_v_interface_max`` (the largest interface value [mol/m^3]), ``vacancy_amount``
(int c_v dx: mol per metre of depth in 2D, mol in 3D) and ``newton_its_vacancy`` per step in
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

        self.newton_its = 0
        self.onset: tuple[float, list[float]] | None = None
        self._initial_max, _ = self.model.interface_maximum()

    # -- data from the other fields
    def _update_current(self) -> None:
        """i_n at the interface vertices, onto the Li submesh."""
        if len(self._cells):
            values = self._i_expr.eval(self.ion.mesh, self._cells).reshape(
                len(self._cells), self._n_points)
            per_dof = np.take_along_axis(values, self._mean.facet_rows, axis=1)[:, :, None]
        else:
            per_dof = np.zeros((0, self._mean.facet_dofs.shape[1], 1))
        self._i_ion.x.array[self._mean.dofs] = self._mean(per_dof)[:, 0]
        transfer_shared_vertices(self._i_ion, self.ion, self.li, self.model.interface_current)

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

    def _update_stress(self) -> None:
        """sigma_h = -p (cell averages) projected onto P1 with a lumped mass."""
        assert self.solid is not None and self.sigma_h is not None
        pressure = self.solid.stress.pressure.x.array
        self._sigma_cells.x.array[self._li_dofs] = -pressure[self._parent_dofs]
        b = fem_petsc.assemble_vector(self._weighted_form)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        b.pointwiseDivide(b, self._lumped)
        n_owned = self.sigma_h.function_space.dofmap.index_map.size_local
        self.sigma_h.x.array[:n_owned] = b.array_r[:n_owned]
        self.sigma_h.x.scatter_forward()
        b.destroy()

    # -- the step (called by the steppers, before they commit)
    def advance(self, dt: float) -> None:
        """The vacancy step of length ``dt`` [s] with the step's converged interface current
        (and stress). Raises physics.vacancy.VacancySolverError (c_v as before) on failure."""
        self._update_current()
        if self.sigma_h is not None:
            self._update_stress()
        self.newton_its = self.model.step(dt)

    def commit(self) -> None:
        self.model.commit()

    def rollback(self) -> None:
        self.model.rollback()

    # -- outputs
    def scalars(self) -> dict[str, float]:
        """history.csv's vacancy columns (io.VACANCY_COLUMNS) of the last step."""
        value, _ = self.model.interface_maximum()
        return {"c_v_interface_max": value, "vacancy_amount": self.model.amount(),
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
        return {"vacancy_onset": list(self.onset) if self.onset is not None else None}

    def restore_scalars(self, entry: dict[str, Any]) -> None:
        onset = entry.get("vacancy_onset")
        self.onset = (float(onset[0]), list(onset[1])) if onset else None
        self.model.commit()

    def destroy(self) -> None:
        self.model.destroy()
        if self.sigma_h is not None:
            self._lumped.destroy()
