"""Derived quantities of a solved state: the interface profile (i_n, eta along the interface),
scalars per time step (V_we, V_cell, mean and extreme current, focusing factor, ASR, contact
fraction) and the current-density field for ParaView.

Every reduction is done with MPI so the numbers are the same on any number of ranks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mpi4py import MPI

import basix
import numpy as np
import ufl
from dolfinx import fem

from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import cell_tag_array, owned_facet_cells

if TYPE_CHECKING:
    from ecm_fem.problem import CurrentDistribution


def real_value(u: fem.Function) -> float:
    """The value of a one-dof real-space Function on every rank."""
    comm = u.function_space.mesh.comm
    n_owned = u.function_space.dofmap.index_map.size_local
    local = float(u.x.array[0]) if n_owned else 0.0
    return comm.allreduce(local, op=MPI.SUM)


STRESS_FIELDS = ["sigma_nn_li", "p_li", "tau_nn_li",
                 "sigma_nn_electrolyte", "p_electrolyte", "tau_nn_electrolyte"]
PROFILE_FIELDS = ["x", "y", "z", "i_n", "eta", "eta_ct", "U_mech", "dmu_e", *STRESS_FIELDS,
                  "c", "c_v", "region", "curvature", "s"]


def interface_profile(p: CurrentDistribution, c_v: fem.Function | None = None
                      ) -> dict[str, np.ndarray]:
    """i_n, eta and the mechanical terms at the interface, sorted by position; full arrays on
    every rank.

    The values are evaluated inside the cell on each interface facet, at the Lagrange points of
    phi's degree that lie on the facet, so properties that jump between regions (SEI patches)
    give two rows at a shared point, one per side (told apart by ``region``, the cell tag).
    Keys follow the interface.csv contract: x, y, z, i_n, eta (= V_we - phi - U_mech),
    eta_ct (charge-transfer part; eta minus the SEI film's drop), U_mech, dmu_e, region, and
    curvature, the interface's kappa_c [1/m] (mesh.InterfaceCurve, in 3D
    mesh.InterfaceSurface: positive where Li bulges into the electrolyte) and s, the arc
    length along the interface [m] from its end of smallest x
    (mesh.InterfaceCurve.arc_length: pieces separated by a void are joined by the straight
    gap; nan on 3D meshes).
    With mechanics each row also gets, on the Li side and on the ion-conducting side
    ("electrolyte": also SEI or a grain boundary where that is what the Li touches): the normal
    stress n.sigma.n, the pressure p = -tr(sigma)/3 and the deviatoric normal stress
    n.(sigma - sigma_h I).n [Pa], with n the unit normal from Li into the electrolyte: the
    interface stresses that the kinetics read (coupling.InterfaceStressMap, in
    ``p.stress_outputs``); nan without mechanics. ``c`` is the salt concentration of a binary
    electrolyte at the interface [mol/m^3] (nan without transport); ``c_v`` the Li-vacancy
    concentration [mol/m^3], from the Function ``c_v`` on the ion-conducting submesh whose
    interface values are those of the Li (vacancies.LiVacancies.profile_field; nan without).
    """
    msh = p.mesh
    comm = msh.comm
    fdim = msh.topology.dim - 1
    cells, local_facets = (a.tolist() for a in owned_facet_cells(
        msh, p.region.facet_tags, FACET_TAGS["interface"]))

    element = basix.create_element(basix.ElementFamily.P, _basix_cell(msh),
                                   p.V.ufl_element().basix_element.degree,
                                   basix.LagrangeVariant.gll_warped)
    x = ufl.SpatialCoordinate(msh)
    coords = [x[k] if k < msh.geometry.dim else 0.0 * x[0] for k in range(3)]
    stresses = [p.stress_outputs[k] for k in STRESS_FIELDS] if p.stress_outputs \
        else [0.0 * x[0]] * len(STRESS_FIELDS)
    salt = p.salt.c if p.salt is not None else 0.0 * x[0]
    vacancies = c_v if c_v is not None else 0.0 * x[0]
    expr = fem.Expression(ufl.as_vector([*coords, p.i_n, p.eta, p.eta_ct, p.U_mech, p.dmu_e,
                                         *stresses, salt, vacancies]), element.points)
    n_values = 10 + len(STRESS_FIELDS)
    if cells:
        values = expr.eval(msh, np.asarray(cells, dtype=np.int32))
        values = values.reshape(len(cells), len(element.points), n_values)
        if not p.stress_outputs:  # no mechanics
            values[:, :, 8: 8 + len(STRESS_FIELDS)] = np.nan
        if p.salt is None:
            values[:, :, -2] = np.nan
        if c_v is None:
            values[:, :, -1] = np.nan
        closure = element.entity_closure_dofs[fdim]
        tag_of = cell_tag_array(msh, p.region.cell_tags)
        rows = [np.column_stack([values[k, closure[lf]],
                                 np.full(len(closure[lf]), tag_of[c], dtype=float)])
                for k, (c, lf) in enumerate(zip(cells, local_facets, strict=True))]
        local = np.vstack(rows)
    else:
        local = np.zeros((0, n_values + 1))
    table = np.vstack(comm.allgather(local))
    # one row per point and side: points shared by neighbouring facets of one region collapse
    scale = max(float(np.abs(table[:, :3]).max()), 1e-300) if len(table) else 1.0
    key = np.column_stack([np.round(table[:, :3] / scale, 11), table[:, -1]])
    _, first = np.unique(key, axis=0, return_index=True)
    table = table[np.sort(first)]
    order = np.lexsort((table[:, -1], table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    curve = p.interface_curve
    points = table[:, :curve.gdim]
    kappa, arc = curve.at(points), curve.arc_length(points)
    table = np.column_stack([table, kappa, arc])
    return {n: table[:, k] for k, n in enumerate(PROFILE_FIELDS)}


def _basix_cell(msh) -> basix.CellType:
    return getattr(basix.CellType, msh.topology.cell_name())


def step_scalars(p: CurrentDistribution, profile: dict[str, np.ndarray]) -> dict[str, float]:
    """The history.csv scalars of the current state.

    focusing_factor = i_max / i_mean with i_max the interface value of largest magnitude (so
    the factor is >= 1 for plating and for stripping) and i_mean the contact-area average;
    nan when |i_mean| is below 1e-9 i0 (at rest: local currents may flow, summing to 0).
    asr = V_cell / i_app [Ohm m^2] (nan at zero current).
    """
    comm = p.mesh.comm
    ds = p.interface_measure
    total = comm.allreduce(fem.assemble_scalar(fem.form(p.weigh(p.i_n * ds))), op=MPI.SUM)
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
        "focusing_factor": (i_max / i_mean if abs(i_mean) > 1e-9 * p.config.kinetics.i0
                            else float("nan")),
        "asr": V_cell / i_app if i_app != 0 else float("nan"),
        "contact_fraction": p.contact_area / p.projected_area,
        **(salt_scalars(p, profile) if p.salt is not None else {}),
    }


def salt_scalars(p: CurrentDistribution, profile: dict[str, np.ndarray]) -> dict[str, float]:
    """The binary electrolyte's history.csv scalars: the smallest and largest salt
    concentration at the interface [mol/m^3] and the salt amount (mol per m of depth in 2D,
    mol in 3D; constant to solver tolerance: the anion does not react)."""
    assert p.salt is not None
    c = profile["c"]
    return {"c_min_interface": float(np.min(c)), "c_max_interface": float(np.max(c)),
            "salt_amount": p.salt.amount()}


class CurrentDensityField:
    """The current density [A/m^2] (-kappa grad phi, plus the diffusion potential's part in a
    binary electrolyte) in a discontinuous vector space of the degree that holds the single-ion
    current exactly (DG1 also for P1 phi, so that VTX can write it). ``update()``
    re-evaluates it."""

    def __init__(self, p: CurrentDistribution):
        gdim = p.mesh.geometry.dim
        degree = max(1, p.V.ufl_element().basix_element.degree - 1)
        W = fem.functionspace(p.mesh, ("DG", degree, (gdim,)))
        self.function = fem.Function(W, name="current_density")
        self._expr = fem.Expression(p.current_density,
                                    W.element.interpolation_points())

    def update(self) -> fem.Function:
        self.function.interpolate(self._expr)
        return self.function
