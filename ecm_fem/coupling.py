"""The two-way coupling of a time step between the current distribution and the mechanics
(PHYSICS.md 3.1 and 4).

* Kinetics from mechanics: the interface stresses of the mechanics (recovered on the Li side and
  on the ion-conducting side of each interface facet from the cell averages nearby, see
  ``InterfaceStressMap``, with the facet's normal from Li into the electrolyte) and the
  interface curvature give U_mech and dmu_e of ``kinetics.stress_coupling`` at the interface
  dofs of phi's space; a dof shared by two facets takes their mean.
* Mechanics from kinetics: the interface current drives the growth eigenstrain of the Li band.

Both act within the step (backward Euler). This module holds what both coupling schemes use
(the stress map, the step result) and the staggered scheme
(mechanics.coupling.scheme: staggered; the default, monolithic, is in monolithic.py). In it
the mechanics and the current distribution are solved in turn until the interface current
that drives the growth equals, to ``mechanics.coupling.rtol``, the current that the kinetics
return for the resulting stresses. The interface current is the unknown of a quasi-Newton
iteration with a least-squares Jacobian built from the iterations of the step (IQN-ILS:
Degroote, Bathe, Vierendeels, Comput. Struct. 87 (2009) 793); the first iteration is relaxed
by 1/2. A plain or Aitken-relaxed fixed point is not enough: the feedback (more plating, more
pressure, less plating) is stiff where creeping Li is squeezed out of a confined flaw, and
there it diverged at any time step. A step is accepted only when the iteration has
converged; otherwise every state goes back to the start of the step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from mpi4py import MPI

import numpy as np
from dolfinx import fem
from scipy.spatial import cKDTree

from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import (
    FacetDofMean,
    cell_centroids,
    facet_normals,
    facet_vertices,
    owned_facet_cells,
    simplex_diameters,
)
from ecm_fem.physics.stress_coupling import InterfaceStress, interface_stress_from_tensors
from ecm_fem.solver import BlockedNewtonSolver, SolveReport, SolverError
from ecm_fem.vacancy_newton import CurrentVacancyNewton

if TYPE_CHECKING:
    from dolfinx import mesh as dmesh

    from ecm_fem.config import RunConfig
    from ecm_fem.problem import CurrentDistribution
    from ecm_fem.solid import StepSolid, StressFields
    from ecm_fem.vacancies import LiVacancies

log = logging.getLogger("ecm_fem")


def interface_facet_pairs(p: CurrentDistribution, parent: dmesh.Mesh, cells: np.ndarray,
                          local_facets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For interface facets of the ion submesh given by their (owned) ion cell and local facet
    index: the facet, its Li cell and its ion-conducting cell, as local indices of ``parent``."""
    sub = p.mesh
    tdim, fdim = parent.topology.dim, parent.topology.dim - 1
    for m in (sub, parent):
        m.topology.create_connectivity(tdim, fdim)
        m.topology.create_connectivity(fdim, 0)
    parent.topology.create_connectivity(fdim, tdim)
    sub_c2f, sub_f2v = sub.topology.connectivity(tdim, fdim), sub.topology.connectivity(fdim, 0)
    par_c2f, par_f2v = parent.topology.connectivity(tdim, fdim), \
        parent.topology.connectivity(fdim, 0)
    par_f2c = parent.topology.connectivity(fdim, tdim)
    facets, li_cells, ion_cells = [], [], []
    for c, lf in zip(cells, local_facets, strict=True):
        verts = set(p.region.vertex_map[sub_f2v.links(sub_c2f.links(c)[lf])].tolist())
        c_ion = int(p.region.cell_map[c])
        facet = next(f for f in par_c2f.links(c_ion) if set(par_f2v.links(f).tolist()) == verts)
        facets.append(facet)
        ion_cells.append(c_ion)
        li_cells.append(next(int(cc) for cc in par_f2c.links(facet) if cc != c_ion))
    return (np.array(facets, dtype=np.int32), np.array(li_cells, dtype=np.int32),
            np.array(ion_cells, dtype=np.int32))


class SavedValues:
    """Copies of some Functions' values, to put back after a trial evaluation."""

    def __init__(self, functions: list[fem.Function]):
        self.functions = functions
        self.values = [f.x.array.copy() for f in functions]

    def restore(self) -> None:
        for f, v in zip(self.functions, self.values, strict=True):
            f.x.array[:] = v


class InterfaceStressMap:
    """Hands the mechanics' interface stresses to the kinetics (module docstring).

    ``update(stress)`` (collective) recovers the stress on each side of every owned interface
    facet at its midpoint, evaluates the measures of ``InterfaceStress``
    (``interface_stress_from_tensors``), averages them at the facet's dofs of phi's space
    (summed over ranks with a reverse scatter, so a dof gets the same mean on any number of
    ranks) and sets U_mech and dmu_e there with the interface curvature of the dof
    (mesh.InterfaceCurve in 2D, mesh.InterfaceSurface in 3D). The tangential stress
    sigma_tt of the Monroe-Newman measures is t.sigma.t along the in-plane tangent in 2D; a 3D
    surface has no single tangent, so there each side takes the isotropic rule sigma_tt =
    tr(sigma) / (1 + nu) - sigma_nn with its Poisson's ratio ``poisson`` (exact for elastic
    fields, whatever the direction of the interface's undulation;
    stress_coupling.interface_stress_from_tensors).

    Recovery: the mechanics' stresses are cell averages (first-order accurate at the
    interface, where the cell centroids lie h/3 and more away). Each side's stress at the facet
    midpoint is instead a linear least-squares fit through the cell averages (taken at the
    centroids) of the RECOVERY_CELLS nearest cells of the same region, second-order accurate
    for smooth stresses and exact for uniform ones; where the cells cannot support a linear fit
    the facet's own cell value is used. The cells within a band along the interface are
    gathered on every rank, so the recovered values do not depend on the partition."""

    RECOVERY_CELLS = 8

    MEASURES = tuple(f.name for f in fields(InterfaceStress) if f.name != "curvature")
    N_MEASURES = len(MEASURES)

    def __init__(self, ec: CurrentDistribution, parent: dmesh.Mesh, cell_tag: np.ndarray,
                 poisson: fem.Function | None = None):
        self.ec = ec
        sub = ec.mesh
        cells, local = owned_facet_cells(sub, ec.region.facet_tags, FACET_TAGS["interface"])
        facets, li, ion = interface_facet_pairs(ec, parent, cells, local)
        normals = facet_normals(parent, facets, li)
        self._n = np.column_stack([normals, np.zeros((len(normals), 3 - normals.shape[1]))])
        self._nu = None  # 2D: sigma_tt along the in-plane tangent
        if parent.geometry.dim == 3:  # no single tangent: the isotropic rule
            if poisson is None:
                raise ValueError("InterfaceStressMap: 3D meshes need the Poisson's ratios")
            dofs = poisson.function_space.dofmap.list
            self._nu = (poisson.x.array[dofs[li, 0]], poisson.x.array[dofs[ion, 0]])
        self._setup_recovery(parent, cell_tag, facets, li, ion)
        self._mean = FacetDofMean(ec.V, cells, local, self.N_MEASURES)
        self.dofs = self._mean.dofs
        x = ec.V.tabulate_dof_coordinates()[self.dofs]
        curve = ec.interface_curve
        self._curvature = curve.at(x[:, :curve.gdim])

    def _setup_recovery(self, parent: dmesh.Mesh, cell_tag: np.ndarray, facets: np.ndarray,
                        li: np.ndarray, ion: np.ndarray) -> None:
        """The band cells to gather and, per owned facet and side, the recovery weights."""
        comm = parent.comm
        corners = facet_vertices(parent, facets)
        mid = corners.mean(axis=1)
        h_max = comm.allreduce(float(simplex_diameters(corners).max())
                               if len(facets) else 0.0, op=MPI.MAX)
        all_mid = np.vstack(comm.allgather(mid))
        n_owned = parent.topology.index_map(parent.topology.dim).size_local
        owned = np.arange(n_owned, dtype=np.int32)
        centroids = cell_centroids(parent, owned)
        near = np.zeros(n_owned, dtype=bool)
        if len(all_mid) and n_owned:
            dist, _ = cKDTree(all_mid).query(centroids)
            near = dist <= 4.0 * h_max
        self._band = owned[near]
        band_x = np.vstack(comm.allgather(centroids[near]))
        band_tag = np.concatenate(comm.allgather(cell_tag[self._band]))
        # where each side's own cell sits in the gathered band (by centroid)
        tree = cKDTree(band_x) if len(band_x) else None
        self._weights = []
        for side in (li, ion):
            stencils = np.zeros((len(facets), self.RECOVERY_CELLS), dtype=np.int64)
            weights = np.zeros((len(facets), self.RECOVERY_CELLS))
            own = tree.query(cell_centroids(parent, side))[1] if len(side) else []
            for k in range(len(facets)):
                same = np.flatnonzero(band_tag == cell_tag[side[k]])
                order = np.argsort(np.linalg.norm(band_x[same] - mid[k], axis=1),
                                   kind="stable")[: self.RECOVERY_CELLS]
                idx = same[order]
                A = np.column_stack([np.ones(len(idx)), (band_x[idx] - mid[k]) / h_max])
                if len(idx) == self.RECOVERY_CELLS and np.linalg.cond(A) < 1e8:
                    stencils[k] = idx
                    weights[k] = np.linalg.pinv(A)[0]
                else:  # the facet's own cell
                    stencils[k] = own[k]
                    weights[k, 0] = 1.0
            self._weights.append((stencils, weights))

    def _recovered(self, stress: StressFields) -> tuple[np.ndarray, np.ndarray]:
        """(Li side, ion side) stresses (k, 3, 3) [Pa] at the owned facets' midpoints."""
        comm = self.ec.mesh.comm
        sigma = stress.sigma.x.array.reshape(-1, 9)
        band = np.vstack(comm.allgather(sigma[self._band]))
        out = []
        for stencils, weights in self._weights:
            out.append(np.einsum("kj,kjc->kc", weights, band[stencils]).reshape(-1, 3, 3)
                       if len(stencils) else np.zeros((0, 3, 3)))
        return out[0], out[1]

    def update(self, stress: StressFields) -> None:
        sigma_li, sigma_ion = self._recovered(stress)
        facets = interface_stress_from_tensors(sigma_li, sigma_ion, self._n, nu=self._nu)
        mean = self._mean(np.column_stack(
            [getattr(facets, m) for m in self.MEASURES]).reshape(-1, self.N_MEASURES))
        self.ec.set_interface_stress(self.dofs, InterfaceStress(
            curvature=self._curvature, **{m: mean[:, k] for k, m in enumerate(self.MEASURES)}))


def stalled(changes: list[float], window: int = 4) -> bool:
    """Whether a coupling iteration with these relative changes (one per iteration) has
    stopped converging: from the sixth iteration on, the change has not halved over the last
    ``window`` iterations. Converging runs measured on the examples halve it every one or two
    iterations (0.96, 0.34, 0.09, 0.12, 0.046, 6e-3, 2e-4, ...); the stiff rest after plating
    hovered around 1 for 30 iterations. Stopping early lets the step be cut at once."""
    return len(changes) >= 6 and changes[-1] > 0.5 * changes[-1 - window]


@dataclass
class StepResult:
    """One attempted step: ``reports`` are the current distribution's and (with mechanics)
    the mechanics' Newton effort summed over the coupling iterations; ``hardest`` is the
    largest Newton iteration count of a single solve."""

    ok: bool
    reason: str = ""
    reports: list[SolveReport] = field(default_factory=list)
    coupling_its: int = 0
    hardest: int = 0


def _total(reports: list[SolveReport]) -> SolveReport:
    return SolveReport(True, reports[-1].reason, sum(r.newton_its for r in reports),
                       sum(r.krylov_its for r in reports))


class CoupledStep:
    """Solves one time step of the current distribution ``ec`` (with its ``solver``) and, when
    given, the mechanics ``solid``, coupled as described in the module docstring. With
    ``vacancies`` every current-distribution solve is the Newton method of the current and c_v
    together (vacancy_newton.CurrentVacancyNewton), c_v's drift reading the stress of the last
    mechanics solve."""

    def __init__(self, config: RunConfig, ec: CurrentDistribution, solver: BlockedNewtonSolver,
                 solid: StepSolid | None, vacancies: LiVacancies | None = None):
        self.ec, self.solid, self.vacancies = ec, solid, vacancies
        self._joint = CurrentVacancyNewton(config, ec, solver, vacancies) \
            if vacancies is not None else None
        self.solver: BlockedNewtonSolver | CurrentVacancyNewton = self._joint or solver
        # with mechanics the map always runs: interface.csv reports its stresses
        self.stress_map = InterfaceStressMap(ec, solid.problem.mesh, solid.problem.cell_tag,
                                             solid.problem.nu) if solid is not None else None
        self.feedback = ec.coupling_model != "none"
        self.rtol = config.mechanics.coupling.rtol if config.mechanics else 0.0
        self.max_iterations = config.mechanics.coupling.max_iterations \
            if config.mechanics else 1
        self.i0 = config.kinetics.i0
        self.first_relaxation = 0.5
        self._stage = ""

    def destroy(self) -> None:
        """Free the joint Newton method of the vacancies (the other solvers belong to the
        caller)."""
        if self._joint is not None:
            self._joint.destroy()

    def initial_state(self) -> None:
        """The interface stresses before the first step (the committed state at t = 0)."""
        if self.stress_map is not None:
            assert self.solid is not None
            self.stress_map.update(self.solid.stress)

    def attempt(self, t: float, dt: float) -> StepResult:
        """Solve the step ending at ``t``; on failure every state is back where it was."""
        ec, solid = self.ec, self.solid
        saved = SavedValues([*ec.unknowns, ec.U_mech, ec.dmu_e, *ec.stress_outputs.values()])
        u_backup = solid.problem.u.x.array.copy() if solid is not None else None
        ec.set_time(t, dt)
        vac = self.vacancies
        if vac is not None:
            vac.start_step(dt)
        ec_reports: list[SolveReport] = []
        mech_reports: list[SolveReport] = []
        failure = ""
        try:
            its = self._iterate(dt, ec_reports, mech_reports)
        except (SolverError, RuntimeError) as exc:
            failure = f"{self._stage}: {exc}"
        if failure:
            saved.restore()
            if solid is not None and u_backup is not None:
                solid.restore(u_backup)
            if vac is not None:
                vac.rollback()
            return StepResult(False, failure)
        ec.commit()
        if solid is not None:
            solid.commit()
        if vac is not None:
            vac.commit()
        reports = [_total(ec_reports)] + ([_total(mech_reports)] if mech_reports else [])
        hardest = max(r.newton_its for r in ec_reports + mech_reports)
        return StepResult(True, "", reports, its, hardest)

    def _iterate(self, dt: float, ec_reports: list[SolveReport],
                 mech_reports: list[SolveReport]) -> int:
        """The coupling iterations of one step; returns their number."""
        ec, solid, stress_map = self.ec, self.solid, self.stress_map

        def solve_ec() -> None:
            self._stage = "current distribution" + (" and vacancies" if self._joint else "")
            ec_reports.append(self.solver.solve())

        def solve_mechanics(current: np.ndarray | None) -> None:
            self._stage = "mechanics"
            mech_reports.append(solid.trial(current, dt))

        if solid is None:
            solve_ec()
            return 1
        grows = solid.problem.growth is not None and dt > 0
        assert stress_map is not None
        if not grows:  # the mechanics does not feel the current: solve it first
            solve_mechanics(None)
            stress_map.update(solid.stress)
            solve_ec()
            return 1
        solve_ec()
        current = solid.interface_currents(ec)
        if not self.feedback:  # the kinetics do not feel the stresses: one pass
            solve_mechanics(current)
            stress_map.update(solid.stress)
            if self.vacancies is not None and self.vacancies.sigma_h is not None:
                solve_ec()  # c_v's drift for the new stress (the current is converged)
            return 1
        # interface quasi-Newton with a least-squares Jacobian (IQN-ILS, module docstring)
        d_returned: list[np.ndarray] = []
        d_residual: list[np.ndarray] = []
        prev: tuple[np.ndarray, np.ndarray] | None = None
        change = np.inf
        changes: list[float] = []
        for k in range(1, self.max_iterations + 1):
            solve_mechanics(current)
            stress_map.update(solid.stress)
            solve_ec()
            returned = solid.interface_currents(ec)
            r = returned - current
            scale = max(abs(float(ec.i_app.value)), float(np.abs(returned).max()),
                        1e-3 * self.i0)
            change = float(np.abs(r).max()) / scale
            log.debug("coupling iteration %d: relative current change %.3e (max |i| %.3e, "
                      "i range %.3e..%.3e)", k, change, scale, returned.min(), returned.max())
            if change <= self.rtol:
                return k
            changes.append(change)
            if stalled(changes):
                self._stage = "coupling"
                raise RuntimeError(f"coupling stalled after {k} iterations (relative current "
                                   f"changes {', '.join(f'{c:.1e}' for c in changes[-5:])})")
            if prev is not None:
                d_returned.append(returned - prev[0])
                d_residual.append(r - prev[1])
            prev = (returned, r)
            if d_residual:
                V = np.column_stack(d_residual)
                W = np.column_stack(d_returned)
                c = np.linalg.lstsq(V, -r, rcond=1e-12)[0]
                current = returned + W @ c
            else:
                current = current + self.first_relaxation * r
        self._stage = "coupling"
        raise RuntimeError(f"coupling did not converge in {self.max_iterations} iterations "
                           f"(relative current change {change:.2e} > mechanics.coupling.rtol "
                           f"= {self.rtol:g})")
