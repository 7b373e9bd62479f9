"""Verification of the crack-tip fracture metrics (ecm_fem.physics.fracture): J and K_I, K_II by
the equivalent domain integral and the interaction integral, against exact fields and handbook
solutions, plane strain, P2 on gmsh meshes refined at the tips.

Rungs:
1. The auxiliary (Williams) fields: Hooke's law of their strain reproduces the near-tip
   stresses of Anderson, Fracture Mechanics, 3rd ed. (2005), ch. 2.
2. The exact mixed-mode Williams displacement interpolated on a mesh with an inclined crack (no
   solve): K_I, K_II and J = (K_I^2 + K_II^2) / E' recovered; again with a compatible
   eigenstrain added (a stress-free displacement u* with eps(u*) = eps*), which only the
   eigenstrain area term of the integrals cancels.
3. Griffith crack (length 2a) in a plate under remote tension sigma, and the same crack with
   pressure p on its faces and no remote load; quarter model (symmetry), ``half_model``.
   K_I = sigma sqrt(pi a) (Tada, Paris & Irwin, The Stress Analysis of Cracks Handbook, 3rd ed.
   2000, central crack in an infinite plate; Anderson ch. 2), and p sqrt(pi a) for the
   pressurised crack, which by superposition (remote tension = uniform stress sigma_yy = p
   + crack faces loaded by -p) has the same value in the same finite plate. Face term of the
   integrals for the pressurised faces (ds).
4. Inclined central crack under uniaxial tension, full model with a slit of coincident but
   disconnected faces (gmsh's Crack plugin): K_I = sigma sqrt(pi a) cos^2 beta,
   K_II = sigma sqrt(pi a) sin beta cos beta (beta from the plane normal to the load; Tada;
   Anderson ch. 2, mixed-mode loading), at both tips (opposite crack directions).
5. A Li-filled flaw: the pressurised quarter model with the crack filled by a very soft layer
   (E_f = 1e-5 E, nu_f = 0) loaded by p on its far face, so the faces are interior facets
   between electrolyte and filler (dS): traction from the filler's stress across the faces
   (``face_stress``), prescribed pressure, prescribed vector; and the errors for
   inhomogeneous material and for a weight that reaches the filler without a face measure.
6. The same numbers on any number of ranks.

Geometry correction. The plate is 2b x 2b with b = 100 a. Tada's width correction of a central
crack in a strip of width 2b, F = [1 - 0.025 (a/b)^2 + 0.06 (a/b)^4] sqrt(sec(pi a / 2b))
(accurate to 0.1 % for any a/b), is 1 + 6e-5 here and is applied. The height of the square
plate adds an effect of order (a/b)^2 that the strip formula leaves out; measured with this
quarter model (P2, h_tip = a/80, K_I / (sigma sqrt(pi a) F) - 1): +2.98 % at b = 5 a, +0.18 % at
b = 20 a (ratio 16.6, the (a/b)^2 scaling predicts 16), so about +0.008 % at b = 100 a,
negligible next to the tolerances below, which are therefore set by the discretisation error.

Discretisation error (measured, serial, tension, radii (r_in, r_out) = (0.1, 0.3) a): uniform
tip elements h_tip out to 0.6 a, graded to 20 a far away; K_I relative error -5.7e-4, -2.9e-4,
-1.5e-4 and J relative error -4.5e-3, -2.3e-3, -1.1e-3 at h_tip = a/20, a/40, a/80: first order
in h_tip for both (the r^1/2 singularity limits P2 on a mesh not graded into the tip), the
interaction integral 8x more accurate than J. Tolerances are about twice the measured errors
of the mesh used, or looser where a test says so.
"""

from __future__ import annotations

from collections.abc import Callable

from mpi4py import MPI

import gmsh
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import LinearProblem
from dolfinx.io import gmshio

from ecm_fem.physics import fracture as fr
from ecm_fem.physics import mechanics as mech

A = 1e-6  # crack half-length a [m]
B_A = 100.0  # plate half-size b in units of a (the gmsh models are built in units of a)
B = B_A * A  # [m]
E, NU = 150e9, 0.257  # electrolyte (LLZO, PHYSICS.md section 8) [Pa], [-]
SIGMA = 10e6  # remote tension or crack-face pressure [Pa]
E_FILL, NU_FILL = 1e-5 * E, 0.0  # the soft filler of the Li-filled flaw [Pa], [-]
T_FILL_A = 0.25  # filler thickness in units of a
RADII = ((0.05 * A, 0.2 * A), (0.1 * A, 0.3 * A), (0.2 * A, 0.5 * A))  # (r_in, r_out) [m]
H_TIP = 1 / 40  # default tip element size in units of a
KIN = "plane_strain"

# tags: cells, then facets
PLATE, FILL = 10, 11
CRACK, LIGAMENT, LEFT, TOP, RIGHT, BOTTOM, FILL_BOTTOM = 1, 2, 3, 4, 5, 6, 7


def report(msg: str) -> None:
    """Measured values for the log (pytest -s), once, from rank 0."""
    if MPI.COMM_WORLD.rank == 0:
        print(msg)


def width_correction(a_over_b: float) -> float:
    """Tada's finite-width factor of a central crack (length 2a) in a strip of width 2b under
    remote tension (Tada, Paris & Irwin 2000; Feddersen's secant with Tada's polynomial
    correction, 0.1 % accurate)."""
    x = a_over_b
    return (1 - 0.025 * x**2 + 0.06 * x**4) * np.sqrt(1 / np.cos(0.5 * np.pi * x))


K_REF = SIGMA * np.sqrt(np.pi * A) * width_correction(A / B)  # [Pa m^0.5]
E_PRIME = E / (1 - NU**2)


# -- meshes -------------------------------------------------------------------------------


def gmsh_mesh(comm: MPI.Comm, build: Callable[[], None], degree: int = 2, ghosts: bool = True):
    """(mesh, cell tags, facet tags) of the OCC model that ``build`` adds in units of a
    (OCC's tolerances are absolute: at 1e-6 m its booleans drop the parts), meshed on rank 0
    of ``comm`` with geometry of degree ``degree``, distributed (with shared-facet ghosts
    unless ``ghosts`` is False) and scaled to metres."""
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        if comm.rank == 0:
            gmsh.model.add("fracture")
            build()
            gmsh.model.mesh.setOrder(degree)
        # shared-facet ghosts: the Li-filled flaw integrates over interior facets (dS)
        partitioner = mesh.create_cell_partitioner(
            mesh.GhostMode.shared_facet if ghosts else mesh.GhostMode.none)
        out = gmshio.model_to_mesh(gmsh.model, comm, 0, gdim=2, partitioner=partitioner)
        # (DOLFINx 0.9 returns a tuple, 0.10 a MeshData: ecm_fem._compat.model_to_mesh)
        msh, ct, ft = out if isinstance(out, tuple) else (out.mesh, out.cell_tags,
                                                          out.facet_tags)
    finally:
        gmsh.finalize()
    msh.geometry.x[:] *= A
    return msh, ct, ft


def refine_at(points: list[int], h_tip: float, h_far: float = B_A / 5) -> None:
    """Elements of size h_tip within 0.6 a of the points, growing linearly to h_far over
    3 h_far (a Distance/Threshold background field; units of a); nothing else sets sizes."""
    f = gmsh.model.mesh.field
    f.add("Distance", 1)
    f.setNumbers(1, "PointsList", points)
    f.add("Threshold", 2)
    f.setNumber(2, "InField", 1)
    for key, value in (("SizeMin", h_tip), ("SizeMax", h_far), ("DistMin", 0.6),
                       ("DistMax", 0.6 + 3 * h_far)):
        f.setNumber(2, key, value)
    f.setAsBackgroundMesh(2)
    for option in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints", "MeshSizeFromCurvature"):
        gmsh.option.setNumber("Mesh." + option, 0)


def quarter_plate(comm: MPI.Comm, h_tip: float, filled: bool = False, ghosts: bool = True):
    """[0, b]^2 with the crack face y = 0, 0 <= x <= a (tip (a, 0)) and the ligament beyond;
    ``filled``: the filler [0, a] x [-t, 0] under the crack face, sharing it. h_tip in units
    of a."""
    def build():
        occ = gmsh.model.occ
        xy = ((0, 0), (1, 0), (B_A, 0), (B_A, B_A), (0, B_A))
        pts = [occ.addPoint(x, y, 0) for x, y in xy]
        lines = [occ.addLine(pts[i], pts[(i + 1) % 5]) for i in range(5)]
        plate = [occ.addPlaneSurface([occ.addCurveLoop(lines)])]
        if filled:
            fill = occ.addRectangle(0, -T_FILL_A, 0, 1, T_FILL_A)
            _, parts = occ.fragment([(2, plate[0])], [(2, fill)])
            plate, fill = ([t for _, t in p] for p in parts)  # fragment renumbers
        occ.synchronize()
        gmsh.model.addPhysicalGroup(2, plate, PLATE)
        if filled:
            gmsh.model.addPhysicalGroup(2, fill, FILL)
        groups: dict[int, list[int]] = {}
        eps = 1e-3
        for _, c in gmsh.model.getEntities(1):
            x, y, _ = gmsh.model.occ.getCenterOfMass(1, c)
            if abs(y) < eps:
                tag = CRACK if x < 1 else LIGAMENT
            elif abs(x) < eps:
                tag = LEFT
            elif abs(y - B_A) < eps:
                tag = TOP
            elif abs(x - B_A) < eps:
                tag = RIGHT
            elif abs(y + T_FILL_A) < eps:
                tag = FILL_BOTTOM
            else:
                continue  # the filler's side x = a
            groups.setdefault(tag, []).append(c)
        for tag, curves in groups.items():
            gmsh.model.addPhysicalGroup(1, curves, tag)
        tip = gmsh.model.getEntitiesInBoundingBox(1 - eps, -eps, -eps, 1 + eps, eps, eps, 0)
        refine_at([t for _, t in tip], h_tip)
        gmsh.model.mesh.generate(2)
    return gmsh_mesh(comm, build, ghosts=ghosts)


def inclined_plate(comm: MPI.Comm, h_tip: float, beta: float):
    """[-b, b]^2 with the central crack of length 2a at angle beta to the x axis (h_tip in
    units of a), meshed as a slit: the crack line is embedded, then gmsh's Crack plugin
    duplicates its nodes except at the two tips, so the faces coincide but are disconnected
    (facet tag CRACK, both faces)."""
    c, s = np.cos(beta), np.sin(beta)

    def build():
        occ = gmsh.model.occ
        plate = occ.addRectangle(-B_A, -B_A, 0, 2 * B_A, 2 * B_A)
        tips = [occ.addPoint(-c, -s, 0), occ.addPoint(c, s, 0)]
        crack = occ.addLine(*tips)
        occ.fragment([(2, plate)], [(1, crack)])
        occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [plate], PLATE)
        groups = {TOP: [], BOTTOM: []}
        for _, curve in gmsh.model.getEntities(1):
            y = gmsh.model.occ.getCenterOfMass(1, curve)[1]
            if abs(abs(y) - B_A) < 1e-3:
                groups[TOP if y > 0 else BOTTOM].append(curve)
        for tag, curves in groups.items():
            gmsh.model.addPhysicalGroup(1, curves, tag)
        gmsh.model.addPhysicalGroup(1, [crack], CRACK)
        refine_at(tips, h_tip)
        gmsh.model.mesh.generate(2)
        gmsh.plugin.setNumber("Crack", "Dimension", 1)
        gmsh.plugin.setNumber("Crack", "PhysicalGroup", CRACK)
        gmsh.plugin.run("Crack")
        # the plugin appends new nodes; model_to_mesh wants them numbered contiguously
        gmsh.model.mesh.renumberNodes()
        gmsh.model.mesh.renumberElements()
    return gmsh_mesh(comm, build)


# -- solves -------------------------------------------------------------------------------


def dg0(msh: mesh.Mesh, cell_tags: mesh.MeshTags, values: dict[int, float]) -> fem.Function:
    """A DG0 Function with the value values[tag] on the cells of each tag."""
    f = fem.Function(fem.functionspace(msh, ("DG", 0)))
    for tag, value in values.items():
        f.x.array[f.function_space.dofmap.list[cell_tags.find(tag), 0]] = value
    f.x.scatter_forward()
    return f


def solve_linear(a: ufl.Form, L: ufl.Form, bcs: list) -> fem.Function:
    problem = LinearProblem(a, L, bcs, petsc_options={
        "ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
    return problem.solve()


def solve_quarter(load: str, h_tip: float = H_TIP, comm: MPI.Comm = MPI.COMM_WORLD):
    """The quarter model (h_tip in units of a) under ``load``: "tension" (sigma on y = b),
    "pressure" (p on the crack face) or "filled" (p on the filler's far face). Symmetry
    u_x = 0 on x = 0, u_y = 0 on the ligament. Returns (u, E, nu, cell tags, facet tags)."""
    msh, ct, ft = quarter_plate(comm, h_tip, filled=load == "filled")
    V = fem.functionspace(msh, ("Lagrange", 2, (2,)))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    Ef = dg0(msh, ct, {PLATE: E, FILL: E_FILL})
    nuf = dg0(msh, ct, {PLATE: NU, FILL: NU_FILL})
    ds = ufl.Measure("ds", msh, subdomain_data=ft)
    a = mech.elastic_residual(u, v, Ef, nuf, KIN, ufl.dx(msh))
    if load == "tension":
        L = -mech.traction_residual(ufl.as_vector([0.0, SIGMA]), v, KIN, ds(TOP))
    elif load == "pressure":
        L = -mech.pressure_residual(SIGMA, v, KIN, ds(CRACK))
    else:
        L = -mech.pressure_residual(SIGMA, v, KIN, ds(FILL_BOTTOM))
    bcs = [fem.dirichletbc(0.0, fem.locate_dofs_topological(V.sub(i), 1, ft.find(tag)), V.sub(i))
           for i, tag in ((1, LIGAMENT), (0, LEFT))]
    return solve_linear(a, L, bcs), Ef, nuf, ct, ft


def quarter_factors(u, Ef, nuf, ct, ft, load: str, radii=RADII) -> list[fr.CrackTipResult]:
    """The integrals at the tip (a, 0) for each pair of radii, with the crack-face load of
    the pressurised case."""
    kwargs = {}
    if load == "pressure":
        kwargs = {"face_measure": ufl.Measure("ds", u.function_space.mesh,
                                              subdomain_data=ft)(CRACK),
                  "face_pressure": SIGMA}
    return [fr.crack_tip_integrals(u, Ef, nuf, ct, [PLATE], (A, 0.0), (1.0, 0.0), r_in, r_out,
                                   half_model=True, **kwargs) for r_in, r_out in radii]


# -- 1. auxiliary fields ------------------------------------------------------------------


def williams_stress(r, t, K_I, K_II):
    """In-plane near-tip stresses (s11, s22, s12) [Pa], tip frame, of Anderson (ch. 2, the
    mode I and II crack-tip stress fields; also Tada, Paris & Irwin, part I)."""
    f = 1 / ufl.sqrt(2 * np.pi * r)
    c, s, c3, s3 = ufl.cos(t / 2), ufl.sin(t / 2), ufl.cos(3 * t / 2), ufl.sin(3 * t / 2)
    s11 = K_I * f * c * (1 - s * s3) - K_II * f * s * (2 + c * c3)
    s22 = K_I * f * c * (1 + s * s3) + K_II * f * s * c * c3
    s12 = K_I * f * c * s * c3 + K_II * f * c * (1 - s * s3)
    return s11, s22, s12


def test_williams_auxiliary_fields_match_handbook():
    """Hooke's law (``mechanics.hooke``) of the strain of ``williams_displacement_gradient``
    equals the Williams stresses of Anderson ch. 2 for modes I and II, and sigma_zz =
    nu (sigma_11 + sigma_22) (plane strain), on the rectangle [0.1, 1] x [-1, 1] (m; theta
    from -1.47 to 1.47): relative L2 difference below 1e-12."""
    msh = mesh.create_rectangle(MPI.COMM_SELF, [[0.1, -1.0], [1.0, 1.0]], [8, 16])
    x = ufl.SpatialCoordinate(msh)
    r, t = ufl.sqrt(x[0] ** 2 + x[1] ** 2), ufl.atan2(x[1], x[0])
    dx = ufl.dx(msh, metadata={"quadrature_degree": 8})
    for K_I, K_II in ((1.0e6, 0.0), (0.0, 1.0e6)):
        G = fr.williams_displacement_gradient(r, t, K_I, K_II, E, NU)
        e = ufl.sym(G)
        eps3 = ufl.as_tensor([[e[0, 0], e[0, 1], 0.0], [e[1, 0], e[1, 1], 0.0], [0, 0, 0]])
        sig = mech.hooke(eps3, E, NU)
        s11, s22, s12 = williams_stress(r, t, K_I, K_II)
        diff = ((sig[0, 0] - s11) ** 2 + (sig[1, 1] - s22) ** 2 + 2 * (sig[0, 1] - s12) ** 2
                + (sig[2, 2] - NU * (s11 + s22)) ** 2)
        ref = s11**2 + s22**2 + 2 * s12**2
        rel = np.sqrt(fem.assemble_scalar(fem.form(diff * dx))
                      / fem.assemble_scalar(fem.form(ref * dx)))
        assert rel < 1e-12, (K_I, K_II, rel)


# -- 2. exact Williams field on an inclined-crack mesh ------------------------------------


@pytest.mark.mpi
def test_exact_williams_field_recovered():
    """The exact mixed-mode Williams displacement (K_I = 2, K_II = -1 MPa m^0.5, an exact
    traction-free solution) about the right tip of a crack at 30 degrees, interpolated in P2:
    K_I, K_II within 1e-4 and J = (K_I^2 + K_II^2) / E' within 1e-4 for every pair of radii
    (the P2 interpolation error of the r^1/2 field; observed 1.3e-5 and 1.5e-5 for the
    smallest pair, below 2e-7 for the others). Then the same
    with a compatible eigenstrain eps* = sym grad u*, u* = c (x^2 + y^2, x y) / a, added to the
    field and passed as ``eps_inelastic`` (c = 0.01): the stress is unchanged, and the area
    terms int q sigma : eps*_,1 (0.25 J to 1.6 J for these radii, asserted > 0.2 J) must cancel
    what u* adds to the other terms. They do up to the interpolation error of the singular
    field (not in equilibrium exactly, nor exactly traction-free on the faces): K_I, K_II
    within 1e-4 and J within 1e-3 of the first results (observed at most 1.2e-5 and 3e-4)."""
    beta = np.deg2rad(30.0)
    K_I, K_II = 2e6, -1e6
    msh, ct, _ = inclined_plate(MPI.COMM_WORLD, H_TIP, beta)
    tip, e1 = A * np.array([np.cos(beta), np.sin(beta)]), np.array([np.cos(beta), np.sin(beta)])
    x = ufl.SpatialCoordinate(msh)
    e2 = np.array([-e1[1], e1[0]])
    x1 = (x[0] - tip[0]) * e1[0] + (x[1] - tip[1]) * e1[1]
    x2 = (x[0] - tip[0]) * e2[0] + (x[1] - tip[1]) * e2[1]
    r = ufl.sqrt(x1**2 + x2**2)
    # theta at nodes on the crack line: the side of the cell (sign of x2 at its midpoint)
    side = fem.Function(fem.functionspace(msh, ("DG", 0)))
    side.interpolate(fem.Expression(ufl.sign(x2), side.function_space.element
                                    .interpolation_points()))
    theta = ufl.conditional(ufl.gt(abs(x2), 1e-9 * r), ufl.atan2(x2, x1),
                            side * ufl.acos(ufl.max_value(-1.0, ufl.min_value(1.0, x1 / r))))
    # Williams' displacement (Anderson ch. 2), tip frame
    mu, kappa = E / (2 * (1 + NU)), 3 - 4 * NU
    cth, sth = ufl.cos(theta / 2), ufl.sin(theta / 2)
    amp = ufl.sqrt(r / (2 * np.pi)) / (2 * mu)
    u_loc = [amp * (K_I * cth * (kappa - 1 + 2 * sth**2) + K_II * sth * (kappa + 1 + 2 * cth**2)),
             amp * (K_I * sth * (kappa + 1 - 2 * cth**2) - K_II * cth * (kappa - 1 - 2 * sth**2))]
    u_w = ufl.as_vector([e1[0] * u_loc[0] + e2[0] * u_loc[1], e1[1] * u_loc[0] + e2[1] * u_loc[1]])
    V = fem.functionspace(msh, ("Lagrange", 2, (2,)))
    u = fem.Function(V)
    u.interpolate(fem.Expression(u_w, V.element.interpolation_points()))

    ref_J = (K_I**2 + K_II**2) / E_PRIME
    results = [fr.crack_tip_integrals(u, E, NU, ct, [PLATE], tip, e1, r_in, r_out)
               for r_in, r_out in RADII]
    for res in results:
        report(f"exact Williams field, radii {res.r_in / A:.2f} a, {res.r_out / A:.2f} a: "
               f"K_I {res.K_I / K_I - 1:+.2e}, K_II {res.K_II / K_II - 1:+.2e}, "
               f"J {res.J / ref_J - 1:+.2e}")
        assert res.K_I == pytest.approx(K_I, rel=1e-4)
        assert res.K_II == pytest.approx(K_II, rel=1e-4)
        assert res.J == pytest.approx(ref_J, rel=1e-4)

    c = 0.01  # (linear theory: only the size relative to the Williams field matters)
    u_star = c / A * ufl.as_vector([x[0] ** 2 + x[1] ** 2, x[0] * x[1]])
    g = ufl.sym(ufl.grad(u_star))
    eps_star = ufl.as_tensor([[g[0, 0], g[0, 1], 0.0], [g[1, 0], g[1, 1], 0.0], [0, 0, 0]])
    u_star_h = fem.Function(V)
    u_star_h.interpolate(fem.Expression(u_star, V.element.interpolation_points()))
    sigma_w = mech.stress3(u, E, NU, KIN)  # before u* is added: the stress of both states
    u.x.array[:] += u_star_h.x.array  # quadratic: interpolated exactly
    for res0, (r_in, r_out) in zip(results, RADII, strict=True):
        res = fr.crack_tip_integrals(u, E, NU, ct, [PLATE], tip, e1, r_in, r_out,
                                     eps_inelastic=eps_star)
        q = fem.Function(fem.functionspace(msh, ("Lagrange", 1)))
        q.interpolate(lambda y, r_in=r_in, r_out=r_out: np.clip(
            (r_out - np.hypot(y[0] - tip[0], y[1] - tip[1])) / (r_out - r_in), 0, 1))
        term = msh.comm.allreduce(fem.assemble_scalar(fem.form(
            q * ufl.inner(sigma_w, ufl.dot(ufl.grad(eps_star), ufl.as_vector(e1)))
            * ufl.dx(msh))), op=MPI.SUM)
        report(f"with eigenstrain, radii {r_in / A:.2f}, {r_out / A:.2f} a: K_I, K_II, J "
               f"changed by {res.K_I / res0.K_I - 1:+.1e}, {res.K_II / res0.K_II - 1:+.1e}, "
               f"{res.J / res0.J - 1:+.1e}; eigenstrain area term of J {term / res0.J:.2f} J")
        assert abs(term) > 0.2 * res0.J  # the check below is a sharp one
        assert res.K_I == pytest.approx(res0.K_I, rel=1e-4)
        assert res.K_II == pytest.approx(res0.K_II, rel=1e-4)
        assert res.J == pytest.approx(res0.J, rel=1e-3)


# -- 3. Griffith crack, quarter model -----------------------------------------------------


@pytest.mark.mpi
def test_griffith_crack_quarter_model():
    """Remote tension on the quarter model at h_tip = a/20, a/40, a/80 (module docstring for
    the measured errors): K_I and J relative errors fall at least 1.6x per halving of h_tip
    (first order, observed 2.0-2.1x), and on the finest mesh |K_I error| < 3e-4, |J error| <
    2.5e-3 (observed 1.5e-4, 1.1e-3). Domain independence: the three pairs of radii agree to
    1e-4 of K_I on every mesh (observed spread 2.6e-5, 2.7e-6, 1.6e-7 at a/20, a/40, a/80; the
    pair (0, 0.3 a), not used, is off by -2.3e-3 at a/40: with r_in = 0 the r^-1/2 auxiliary
    stress meets the quadrature of the tip cells, so keep r_in at a few tip elements). The
    pressurised crack (face term) on the a/40 mesh gives the K_I and J of tension to 1e-8
    (observed 3e-11): superposition, exact here because the two discrete solutions differ by
    the uniform stress state, which P2 represents exactly."""
    levels = (1 / 20, 1 / 40, 1 / 80)
    err = []
    for h in levels:
        res = quarter_factors(*solve_quarter("tension", h), "tension")
        k = np.array([r.K_I for r in res])
        j = np.array([r.J for r in res])
        report(f"tension, h_tip = a/{1 / h:.0f}: K_I errors {k / K_REF - 1}, "
               f"J errors {j / (K_REF**2 / E_PRIME) - 1}, K_I spread {np.ptp(k) / K_REF:.1e}")
        assert np.ptp(k) < 1e-4 * K_REF, k
        assert all(r.K_II == 0.0 for r in res)
        err.append((abs(k[1] / K_REF - 1), abs(j[1] / (K_REF**2 / E_PRIME) - 1)))
        if h == H_TIP:
            tension = res
    err = np.array(err)
    assert np.all(err[:-1] > 1.6 * err[1:]), err
    assert err[-1, 0] < 3e-4 and err[-1, 1] < 2.5e-3, err

    pressure = quarter_factors(*solve_quarter("pressure"), "pressure")
    for rp, rt in zip(pressure, tension, strict=True):
        report(f"pressure vs tension, radii {rp.r_in / A:.2f}, {rp.r_out / A:.2f} a: K_I "
               f"{rp.K_I / rt.K_I - 1:+.1e}, J {rp.J / rt.J - 1:+.1e}")
        assert rp.K_I == pytest.approx(rt.K_I, rel=1e-8)
        assert rp.J == pytest.approx(rt.J, rel=1e-8)


# -- 4. inclined crack, full model --------------------------------------------------------


@pytest.mark.mpi
def test_inclined_crack_mode_separation():
    """Central crack at beta = 30 degrees in uniaxial tension sigma along y (traction on y =
    +-b; rigid motion removed by pinning two bottom corners, which carry no reaction under the
    self-equilibrated load). Reference K_I = sigma sqrt(pi a) cos^2 beta, K_II = sigma sqrt(pi
    a) sin beta cos beta (positive at both tips for the crack directions pointing away from
    the centre), times the width correction. Asserted at both tips and all pairs of radii:
    K_I and K_II within 5e-4 sigma sqrt(pi a) of their references, J within 5e-3 of
    (K_I^2 + K_II^2)/E' of the references. Observed at h_tip = a/40, in units of sigma
    sqrt(pi a): K_I -2.2e-4 (tip at +a) and -2.5e-4 (tip at -a), K_II -1.7e-4 and -2.4e-4
    (relative: K_I -3e-4, K_II -5e-4, as in the mode I model); J -2.65e-3; spread over the
    radii below 5e-6."""
    beta = np.deg2rad(30.0)
    msh, ct, ft = inclined_plate(MPI.COMM_WORLD, H_TIP, beta)
    V = fem.functionspace(msh, ("Lagrange", 2, (2,)))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    ds = ufl.Measure("ds", msh, subdomain_data=ft)
    a = mech.elastic_residual(u, v, E, NU, KIN, ufl.dx(msh))
    L = -(mech.traction_residual(ufl.as_vector([0.0, SIGMA]), v, KIN, ds(TOP))
          + mech.traction_residual(ufl.as_vector([0.0, -SIGMA]), v, KIN, ds(BOTTOM)))
    tol = 1e-6 * A
    bcs = []
    for corner, comps in (((-B, -B), (0, 1)), ((B, -B), (1,))):
        vtx = mesh.locate_entities_boundary(msh, 0, lambda y, c=corner: np.isclose(
            y[0], c[0], atol=tol) & np.isclose(y[1], c[1], atol=tol))
        for i in comps:
            bcs.append(fem.dirichletbc(0.0, fem.locate_dofs_topological(V.sub(i), 0, vtx),
                                       V.sub(i)))
    uh = solve_linear(a, L, bcs)

    scale = K_REF
    K_I_ref, K_II_ref = scale * np.cos(beta) ** 2, scale * np.sin(beta) * np.cos(beta)
    J_ref = (K_I_ref**2 + K_II_ref**2) / E_PRIME
    e = np.array([np.cos(beta), np.sin(beta)])
    for sign in (1, -1):
        for r_in, r_out in RADII:
            res = fr.crack_tip_integrals(uh, E, NU, ct, [PLATE], sign * A * e, sign * e,
                                         r_in, r_out)
            report(f"inclined, tip {sign:+d}, radii {r_in / A:.2f}, {r_out / A:.2f} a: K_I "
                   f"{(res.K_I - K_I_ref) / scale:+.2e}, K_II {(res.K_II - K_II_ref) / scale:+.2e}"
                   f" (of sigma sqrt(pi a)), J {res.J / J_ref - 1:+.2e}")
            assert abs(res.K_I - K_I_ref) < 5e-4 * scale
            assert abs(res.K_II - K_II_ref) < 5e-4 * scale
            assert res.J == pytest.approx(J_ref, rel=5e-3)


# -- 5. Li-filled flaw: loaded faces between two materials --------------------------------


@pytest.mark.mpi
def test_filled_flaw_interior_faces():
    """The pressurised crack with a soft filler (module docstring, rung 5). The filler (nu = 0,
    so no lateral expansion for the bond to resist) transmits p to the faces up to the
    stiffness ratio: its top follows the crack opening (~ 2 p a / E'), which changes its stress
    by ~ 2 p (E_f / E') (a / t) = 7e-5 p. K_I from the three face-load options (the filler's
    stress across the faces, the prescribed pressure, the prescribed traction vector) within
    1e-3 of K_ref: observed -2.9e-4 (prescribed) and -2.8e-4 (filler stress), the
    discretisation error of the a/40 mesh; the filler's traction agrees with the prescribed
    one to 5e-5 (observed 1.0e-5). Errors: the moduli vary if the filler's cells are selected;
    without the faces, the weight reaches the filler; in parallel, dS faces on a mesh without
    shared-facet ghosts."""
    u, Ef, nuf, ct, ft = solve_quarter("filled")
    msh = u.function_space.mesh
    dS = ufl.Measure("dS", msh, subdomain_data=ft)(CRACK)
    options = {"stress": {"face_stress": mech.stress3(u, Ef, nuf, KIN)},
               "pressure": {"face_pressure": SIGMA},
               "traction": {"face_traction": ufl.as_vector([0.0, SIGMA])}}
    results = {}
    for name, kw in options.items():
        res = [fr.crack_tip_integrals(u, Ef, nuf, ct, [PLATE], (A, 0.0), (1.0, 0.0), r_in, r_out,
                                      face_measure=dS, half_model=True, **kw)
               for r_in, r_out in RADII]
        k = np.array([r.K_I for r in res])
        report(f"filled flaw, faces loaded by {name}: K_I errors {k / K_REF - 1}")
        assert np.all(np.abs(k / K_REF - 1) < 1e-3), k
        results[name] = k
    assert np.allclose(results["stress"], results["pressure"], rtol=5e-5, atol=0)
    assert np.allclose(results["traction"], results["pressure"], rtol=1e-12, atol=0)

    with pytest.raises(ValueError, match="E varies"):
        fr.crack_tip_integrals(u, Ef, nuf, ct, [PLATE, FILL], (A, 0.0), (1.0, 0.0),
                               *RADII[0], face_measure=dS, face_pressure=SIGMA)
    with pytest.raises(ValueError, match="reaches the boundary of the selected cells"):
        fr.crack_tip_integrals(u, Ef, nuf, ct, [PLATE], (A, 0.0), (1.0, 0.0), *RADII[0],
                               half_model=True)
    if msh.comm.size > 1:
        msh0, ct0, ft0 = quarter_plate(msh.comm, 1 / 5, filled=True, ghosts=False)
        u0 = fem.Function(fem.functionspace(msh0, ("Lagrange", 1, (2,))))
        with pytest.raises(ValueError, match="shared-facet ghosts"):
            fr.crack_tip_integrals(u0, E, NU, ct0, [PLATE], (A, 0.0), (1.0, 0.0), *RADII[0],
                                   face_measure=ufl.Measure("dS", msh0, subdomain_data=ft0)(
                                       CRACK), face_pressure=SIGMA)


# -- 6. rank-count independence, input errors ---------------------------------------------


@pytest.mark.mpi
def test_same_numbers_on_any_number_of_ranks():
    """The pressurised quarter model (a/20) solved on all ranks and on each rank alone: K_I
    and J agree to 1e-9 (round-off of the partitioned assembly and solve)."""
    h = 1 / 20
    shared = quarter_factors(*solve_quarter("pressure", h, MPI.COMM_WORLD), "pressure")
    alone = quarter_factors(*solve_quarter("pressure", h, MPI.COMM_SELF), "pressure")
    for rs, ra in zip(shared, alone, strict=True):
        assert rs.K_I == pytest.approx(ra.K_I, rel=1e-9)
        assert rs.J == pytest.approx(ra.J, rel=1e-9)


def test_helpers_and_input_errors():
    """Irwin's relations and the K_Ic ratio; the errors for wrong radii, a zero direction, a
    load without faces, faces without (or with two) loads, face_stress on ds faces, faces off
    the crack line, and a weight reaching a boundary across the crack direction."""
    assert fr.plane_strain_modulus(E, NU) == pytest.approx(E_PRIME)
    assert fr.k_from_j(fr.j_from_k(3e6, 0.0, E, NU), E, NU) == pytest.approx(3e6)
    assert fr.j_from_k(3e6, 4e6, E, NU) == pytest.approx(25e12 / E_PRIME)
    res = fr.CrackTipResult(J=25e12 / E_PRIME, K_I=3e6, K_II=4e6, r_in=0.0, r_out=1.0,
                            E_prime=E_PRIME)
    assert res.J_from_K == pytest.approx(res.J) and res.K_from_J == pytest.approx(5e6)
    assert fr.k_ratio(res, 1.5e6) == pytest.approx(2.0)
    assert fr.k_ratio(0.75e6, 1.5e6) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="K_Ic must be > 0"):
        fr.k_ratio(res, 0.0)

    msh, ct, ft = quarter_plate(MPI.COMM_SELF, 1 / 5)
    u = fem.Function(fem.functionspace(msh, ("Lagrange", 1, (2,))))
    args = (u, E, NU, ct, [PLATE], (A, 0.0))
    with pytest.raises(ValueError, match="0 <= r_in < r_out"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.3 * A, 0.2 * A)
    with pytest.raises(ValueError, match="nonzero vector"):
        fr.crack_tip_integrals(*args, (0.0, 0.0), 0.1 * A, 0.2 * A)
    with pytest.raises(ValueError, match="needs the face_measure"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 0.2 * A, face_pressure=1.0)
    faces = ufl.Measure("ds", msh, subdomain_data=ft)(CRACK)
    with pytest.raises(ValueError, match="exactly one of"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 0.2 * A, face_measure=faces)
    with pytest.raises(ValueError, match="exactly one of"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 0.2 * A, face_measure=faces,
                               face_pressure=1.0, face_traction=ufl.as_vector([0.0, 1.0]))
    with pytest.raises(ValueError, match="face_stress is the stress across a dS face"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 0.2 * A, face_measure=faces,
                               face_stress=ufl.Identity(3))
    with pytest.raises(ValueError, match="crack line behind the tip"):  # x = 0 is no crack face
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 1.5 * A, face_pressure=1.0,
                               face_measure=ufl.Measure("ds", msh, subdomain_data=ft)(LEFT))
    with pytest.raises(ValueError, match="does not run along the crack line"):
        fr.crack_tip_integrals(*args, (1.0, 0.0), 0.1 * A, 1.5 * A)  # reaches x = 0
