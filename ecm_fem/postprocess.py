"""Derived quantities of a solved state: the interface profile (i_n, eta along the interface),
scalars per time step (V_we, V_cell, mean and extreme current, focusing factor, ASR, contact
fraction) and the current-density field for ParaView.

Every reduction is done with MPI so the numbers are the same on any number of ranks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mpi4py import MPI

import numpy as np
from dolfinx import fem

from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.physics import electrochemistry as ec

if TYPE_CHECKING:
    from ecm_fem.problem import CurrentDistribution


def real_value(u: fem.Function) -> float:
    """The value of a one-dof real-space Function on every rank."""
    comm = u.function_space.mesh.comm
    n_owned = u.function_space.dofmap.index_map.size_local
    local = float(u.x.array[0]) if n_owned else 0.0
    return comm.allreduce(local, op=MPI.SUM)


def interface_profile(p: CurrentDistribution) -> dict[str, np.ndarray]:
    """i_n and eta at the interface dofs of phi, sorted by position; full arrays on every rank.

    Keys follow the interface.csv contract: x, y, z, i_n, eta, U_mech, dmu_e.
    """
    V = p.V
    comm = p.mesh.comm
    fdim = p.mesh.topology.dim - 1
    facets = p.region.facet_tags.find(FACET_TAGS["interface"])
    dofs = fem.locate_dofs_topological(V, fdim, facets)
    dofs = dofs[dofs < V.dofmap.index_map.size_local]  # owned only: each point once
    xyz = V.tabulate_dof_coordinates()[dofs]
    phi = p.phi.x.array[dofs]
    V_we = real_value(p.V_we)
    eta = V_we - phi - p.U_mech_value
    i_n = p.law.current_numpy(eta)
    local = np.column_stack([xyz, i_n, eta, np.full_like(eta, p.U_mech_value),
                             np.full_like(eta, p.dmu_e_value)])
    table = np.vstack(comm.allgather(local))
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    names = ["x", "y", "z", "i_n", "eta", "U_mech", "dmu_e"]
    return {n: table[:, k] for k, n in enumerate(names)}


def step_scalars(p: CurrentDistribution, profile: dict[str, np.ndarray]) -> dict[str, float]:
    """The history.csv scalars of the current state.

    focusing_factor = i_max / i_mean with i_max the interface value of largest magnitude (so
    the factor is >= 1 for plating and for stripping) and i_mean the contact-area average.
    asr = V_cell / i_app [Ohm m^2] (nan at zero current).
    """
    comm = p.mesh.comm
    ds = p.interface_measure
    total = comm.allreduce(fem.assemble_scalar(fem.form(p.i_n * ds)), op=MPI.SUM)
    i_mean = total / p.contact_area
    i_n = profile["i_n"]
    i_max = float(i_n[np.argmax(np.abs(i_n))]) if len(i_n) else float("nan")
    V_we = real_value(p.V_we)
    V_cell = V_we  # the counter electrode (reference or BV electrode) sits at potential 0
    i_app = float(p.i_app.value)
    return {
        "V_we": V_we,
        "V_cell": V_cell,
        "i_app": i_app,
        "i_mean": i_mean,
        "i_max": i_max,
        "focusing_factor": i_max / i_mean if i_mean != 0 else float("nan"),
        "asr": V_cell / i_app if i_app != 0 else float("nan"),
        "contact_fraction": p.contact_area / p.projected_area,
    }


class CurrentDensityField:
    """j = -kappa grad phi [A/m^2] in a discontinuous vector space of the degree that holds it
    exactly (DG1 also for P1 phi, so that VTX can write it). ``update()`` re-evaluates it."""

    def __init__(self, p: CurrentDistribution):
        gdim = p.mesh.geometry.dim
        degree = max(1, p.V.ufl_element().basix_element.degree - 1)
        W = fem.functionspace(p.mesh, ("DG", degree, (gdim,)))
        self.function = fem.Function(W, name="current_density")
        self._expr = fem.Expression(ec.current_density(p.phi, p.kappa),
                                    W.element.interpolation_points())

    def update(self) -> fem.Function:
        self.function.interpolate(self._expr)
        return self.function
