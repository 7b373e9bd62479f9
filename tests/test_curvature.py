"""Interface curvature (mesh.InterfaceCurve), the kappa_c of the Monroe-Newman term and the
interface.csv column: exact on a polygon inscribed in a circle, second-order convergent on the
Li protrusion's quarter ellipse, zero on flat interfaces, and the same on any number of ranks.

Reference: the curvature of the ellipse (b cos t, h sin t) is
kappa = b h / (b^2 sin^2 t + h^2 cos^2 t)^(3/2) (e.g. do Carmo, Differential Geometry of Curves
and Surfaces, 1976, sec. 1-5), positive for the Li boss, which bulges into the electrolyte.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecm_fem.config import RunConfig
from ecm_fem.geometry.tags import FACET_TAGS
from ecm_fem.mesh import InterfaceCurve, generate


def circle_polygon(radius: float, n: int, outward: bool, arc: float = 2 * np.pi):
    """Facets of a polygon inscribed in a circle (n facets over ``arc``), shuffled, with
    normals pointing away from (``outward``) or towards the centre."""
    phi = np.linspace(0.0, arc, n + 1)
    pts = radius * np.column_stack([np.cos(phi), np.sin(phi)])
    if arc == 2 * np.pi:
        pts[-1] = pts[0]
    ends = np.stack([pts[:-1], pts[1:]], axis=1)
    mid = ends.mean(axis=1)
    normals = mid / np.linalg.norm(mid, axis=1)[:, None] * (1.0 if outward else -1.0)
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    flip = rng.random(n) < 0.5  # facet orientation must not matter
    ends = ends[order]
    ends[flip] = ends[flip][:, ::-1]
    return ends, normals[order]


@pytest.mark.parametrize("outward", [True, False], ids=["li_disc", "li_around_hole"])
def test_inscribed_polygon_gives_the_turning_formula(outward):
    """kappa = dphi / (2 R sin(dphi / 2)) at every vertex (the discrete formula, exact here),
    i.e. 1/R to O(dphi^2); negative when the Li is concave (electrolyte bulging into it)."""
    R, n = 3e-6, 40
    curve = InterfaceCurve(*circle_polygon(R, n, outward))
    dphi = 2 * np.pi / n
    expected = dphi / (2 * R * np.sin(dphi / 2)) * (1 if outward else -1)
    np.testing.assert_allclose(curve.vertex_curvature, expected, rtol=1e-12)
    np.testing.assert_allclose(curve.facet_curvature, expected, rtol=1e-12)
    np.testing.assert_allclose(curve.at(curve.vertices[:3]), expected, rtol=1e-12)


def test_open_arc_ends_and_symmetry_lines():
    """A quarter circle: an end on a symmetry line (x = 0) is completed by the mirror image and
    gets the interior value; a free end copies its neighbour's value; a straight line is 0."""
    R, n = 1.0, 16
    ends, normals = circle_polygon(R, n, True, arc=np.pi / 2)
    dphi = np.pi / 2 / n
    expected = dphi / (2 * R * np.sin(dphi / 2))
    curve = InterfaceCurve(ends, normals, mirror_x=(0.0,))
    np.testing.assert_allclose(curve.vertex_curvature, expected, rtol=1e-12)
    free = InterfaceCurve(ends, normals)  # the end at (0, R) copies its neighbour: same here
    np.testing.assert_allclose(free.vertex_curvature, expected, rtol=1e-12)
    x = np.linspace(0, 1, 11)
    line = np.stack([np.column_stack([x[:-1], 0 * x[:-1]]), np.column_stack([x[1:], 0 * x[1:]])],
                    axis=1)
    flat = InterfaceCurve(line, np.tile([0.0, 1.0], (10, 1)), mirror_x=(0.0, 1.0))
    np.testing.assert_array_equal(flat.vertex_curvature, 0.0)


@pytest.mark.mpi
def test_protrusion_curvature_converges_at_second_order():
    """On the meshed quarter-ellipse boss (b = 2 um, h = 4 um, uniform interface elements
    h_if): the vertex curvature away from the ends has max relative error 1.3e-2, 4.0e-3, 1.0e-3
    at h_if = 0.4, 0.2, 0.1 um (measured; bound: < 2e-2 and > 3x smaller per halving); the tip,
    an end on the symmetry line, 1.9e-2, 5.4e-3, 1.4e-3. The flat part is exactly 0 and the
    re-entrant corner where the boss meets the flat is a concentrated negative curvature
    ~ -(pi/2) / h_if."""
    b, h = 2e-6, 4e-6
    inner, tip = [], []
    for refine in (1, 2, 4):
        h_if = 0.4e-6 / refine
        config = RunConfig.model_validate({"geometry": {
            "kind": "li_protrusion", "width": 20e-6, "li_thickness": 10e-6,
            "electrolyte_thickness": 30e-6, "protrusion_half_width": b, "protrusion_height": h,
            "mesh_size": 5e-6, "interface_mesh_size": h_if, "tip_mesh_size": h_if}})
        md = generate(config)
        curve = InterfaceCurve.of_boundary(md.ion.mesh, md.ion.facet_tags,
                                           FACET_TAGS["interface"], li_inside=False)
        v, k = curve.vertices, curve.vertex_curvature
        on_boss = (v[:, 0] > 0.05 * b) & (v[:, 1] > 0.05 * h)
        t = np.arctan2(v[on_boss, 1] / h, v[on_boss, 0] / b)
        exact = b * h / (b**2 * np.sin(t) ** 2 + h**2 * np.cos(t) ** 2) ** 1.5
        inner.append(np.max(np.abs(k[on_boss] / exact - 1)))
        tip.append(abs(k[np.argmin(np.hypot(v[:, 0], v[:, 1] - h))] / (h / b**2) - 1))
        np.testing.assert_array_equal(k[(v[:, 1] == 0.0) & (v[:, 0] > 1.5 * b)], 0.0)
        corner = k[np.argmin(np.hypot(v[:, 0] - b, v[:, 1]))] * h_if
        assert -1.7 < corner < -1.4, corner
    inner, tip = np.array(inner), np.array(tip)
    assert inner[0] < 2e-2 and tip[0] < 2e-2, (inner, tip)
    assert np.all(inner[1:] < inner[:-1] / 3) and np.all(tip[1:] < tip[:-1] / 3), (inner, tip)


def _polyline_facets(vertices: list[tuple[float, float]], rng: np.random.Generator):
    """Facets of a polyline in random order and orientation, with normals (unused by s)."""
    pts = np.array(vertices, dtype=float)
    ends = np.stack([pts[:-1], pts[1:]], axis=1)
    flip = rng.random(len(ends)) < 0.5
    ends[flip] = ends[flip][:, ::-1]
    d = ends[:, 1] - ends[:, 0]
    normals = np.column_stack([-d[:, 1], d[:, 0]]) / np.linalg.norm(d, axis=1)[:, None]
    order = rng.permutation(len(ends))
    return ends[order], normals[order]


def test_arc_length_follows_the_curve_across_walls_and_gaps():
    """s from the end of smallest x: on a flat interface split by a gap (a void) s = x; down
    the wall of a flaw (0, 3) -> (0.5, 3) -> (0.5, 0) -> (5, 0) the wall adds its length, so
    the points of the wall no longer collapse onto one x; P2 midpoints are interpolated."""
    rng = np.random.default_rng(3)
    flat = [(x, 0.0) for x in np.linspace(0, 2, 5)]
    right = [(x, 0.0) for x in np.linspace(3, 5, 7)]
    e1, n1 = _polyline_facets(flat, rng)
    e2, n2 = _polyline_facets(right, rng)
    curve = InterfaceCurve(np.vstack([e2, e1]), np.vstack([n2, n1]))
    x = np.array([0.0, 0.25, 1.9, 2.0, 3.0, 3.1, 4.5, 5.0])
    assert curve.arc_length(np.column_stack([x, 0 * x])) == pytest.approx(x, abs=1e-12)

    wall = [(0.0, 3.0), (0.5, 3.0), *[(0.5, y) for y in np.linspace(3, 0, 7)[1:]],
            *[(x, 0.0) for x in np.linspace(0.5, 5, 10)[1:]]]
    ends, normals = _polyline_facets(wall, rng)
    curve = InterfaceCurve(ends, normals)
    points = np.array([[0.0, 3.0], [0.5, 3.0], [0.5, 1.5], [0.5, 0.25], [0.5, 0.0], [2.0, 0.0],
                       [5.0, 0.0]])
    expected = [0.0, 0.5, 2.0, 3.25, 3.5, 5.0, 8.0]
    assert curve.arc_length(points) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(InterfaceCurve(np.zeros((0, 2, 2)), np.zeros((0, 2))).arc_length(
        points)).all()


def sphere_triangles(radius: float, h: float, quarter: bool = False):
    """gmsh's triangulation of a sphere's surface (element size h) centred at the origin, or
    of its quarter x > 0, z > 0; (triangles [m], outward unit normals)."""
    import gmsh

    gmsh.initialize()
    gmsh.option.setNumber("General.Verbosity", 1)
    gmsh.model.add("sphere")
    ball = gmsh.model.occ.addSphere(0.0, 0.0, 0.0, 1.0)
    if quarter:
        box = gmsh.model.occ.addBox(0.0, -2.0, 0.0, 2.0, 4.0, 2.0)
        gmsh.model.occ.intersect([(3, ball)], [(3, box)])
    gmsh.model.occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMax", h / radius)
    gmsh.option.setNumber("Mesh.MeshSizeMin", h / radius)
    gmsh.model.mesh.generate(2)
    tags, xyz, _ = gmsh.model.mesh.getNodes()
    position = dict(zip(tags, xyz.reshape(-1, 3), strict=True))
    pieces = []
    for _, surface in gmsh.model.getEntities(2):
        _, _, nodes = gmsh.model.mesh.getElements(2, surface)
        t = np.array([[position[n] for n in tri] for tri in nodes[0].reshape(-1, 3)])
        if np.allclose(np.linalg.norm(t, axis=2), 1.0, atol=1e-9):  # not the cut planes
            pieces.append(t)
    gmsh.finalize()
    triangles = np.concatenate(pieces) * radius
    centres = triangles.mean(axis=1)
    return triangles, centres / np.linalg.norm(centres, axis=1)[:, None]


def test_sphere_surface_curvature_converges_and_mirrors():
    """mesh.InterfaceSurface on a triangulated sphere (R = 5 um): kappa_c = 2 / R at every
    vertex, max error below 5e-2 at h = R / 5 and 1.2e-2 at R / 10 (measured 4.3e-2, 9.7e-3:
    O(h^2)); a Li sphere is positive, a hole in the Li negative; a quarter sphere cut by the
    symmetry planes x = 0 and z = 0, mirrored across them, gives the same (measured 3.8e-2,
    9.8e-3), including its vertices on the planes."""
    from ecm_fem.mesh import InterfaceSurface

    R = 5e-6
    for h, bound in ((R / 5, 5e-2), (R / 10, 1.2e-2)):
        triangles, outward = sphere_triangles(R, h)
        li_sphere = InterfaceSurface(triangles, outward).vertex_curvature
        assert np.abs(li_sphere * R / 2 - 1).max() < bound
        hole = InterfaceSurface(triangles, -outward).vertex_curvature
        np.testing.assert_allclose(hole, -li_sphere, rtol=1e-12)
        quarter_t, quarter_n = sphere_triangles(R, h, quarter=True)
        quarter = InterfaceSurface(quarter_t, quarter_n, mirror=((0.0, 1.0), (0.0, 1.0)))
        on_planes = (np.abs(quarter.vertices[:, 0]) < 1e-12) | \
            (np.abs(quarter.vertices[:, 2]) < 1e-12)
        assert on_planes.sum() > 10
        assert np.abs(quarter.vertex_curvature * R / 2 - 1).max() < bound
