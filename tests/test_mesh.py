"""Planar geometry: every tag present with the analytic measure, the ion-conducting submesh
carries the interface and counter tags, and the global mesh is the same on any rank count."""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest
from conftest import tagged_measure

from ecm_fem.config import RunConfig
from ecm_fem.geometry.tags import CELL_TAGS, FACET_TAGS
from ecm_fem.mesh import generate

W, L_LI, L_E = 20e-6, 10e-6, 50e-6


@pytest.fixture(scope="module")
def planar():
    cfg = RunConfig.model_validate({"geometry": {
        "width": W, "li_thickness": L_LI, "electrolyte_thickness": L_E,
        "mesh_size": 5e-6, "interface_mesh_size": 1e-6}})
    return cfg, generate(cfg)


@pytest.mark.mpi
def test_planar_measures(planar):
    _, md = planar
    rel = 1e-12  # straight edges: exact up to round-off
    assert tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["li"]) == pytest.approx(
        W * L_LI, rel)
    assert tagged_measure(md.mesh, md.cell_tags, "dx", CELL_TAGS["electrolyte"]) == pytest.approx(
        W * L_E, rel)
    for name, length in [("li_cc", W), ("counter", W), ("side", 2 * (L_LI + L_E))]:
        assert tagged_measure(md.mesh, md.facet_tags, "ds", FACET_TAGS[name]) == pytest.approx(
            length, rel), name
    # the interface is interior in the parent mesh and exterior on the electrolyte submesh
    ion = md.ion
    assert tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["interface"]) == pytest.approx(
        W, rel)
    assert tagged_measure(ion.mesh, ion.facet_tags, "ds", FACET_TAGS["counter"]) == pytest.approx(
        W, rel)
    assert tagged_measure(ion.mesh, ion.cell_tags, "dx", CELL_TAGS["electrolyte"]) == pytest.approx(
        W * L_E, rel)


@pytest.mark.mpi
def test_same_mesh_on_every_rank_count(planar):
    cfg, md = planar
    tdim = md.mesh.topology.dim
    n_world = md.mesh.topology.index_map(tdim).size_global
    serial = generate(cfg, MPI.COMM_SELF)  # each rank builds the whole mesh alone
    assert serial.mesh.topology.index_map(tdim).size_global == n_world
    assert serial.ion.mesh.topology.index_map(tdim).size_global == \
        md.ion.mesh.topology.index_map(tdim).size_global


def test_interface_refinement(planar):
    _, md = planar
    # cells are much smaller next to the interface than far from it
    msh = md.mesh
    h = msh.h(msh.topology.dim, np.arange(msh.topology.index_map(2).size_local, dtype=np.int32))
    mid = msh.geometry.x[msh.geometry.dofmap[: len(h)]].mean(axis=1)
    near, far = h[np.abs(mid[:, 1]) < 1e-6], h[mid[:, 1] > 30e-6]
    comm = msh.comm
    near_max = comm.allreduce(near.max() if len(near) else 0.0, op=MPI.MAX)
    far_sum = comm.allreduce(far.sum(), op=MPI.SUM)
    far_n = comm.allreduce(len(far), op=MPI.SUM)
    assert near_max < 2.0e-6 and far_sum / far_n > 3e-6
