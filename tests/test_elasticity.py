"""Verification of the small-strain elasticity core (ecm_fem.physics.mechanics), bottom rung
up: uniform eigenstrains reproduced exactly by P1, stress measures on known tensors;
manufactured solutions with a 10x modulus jump (plane strain, 3D, axisymmetric; observed L2
and H1 rates k+1 and k for P1/P2); the Lame thick cylinder and sphere (VERIFICATION.md SM-1);
the Kirsch plate with a hole (SM-2); the rigid-body modes and bounded algebraic-multigrid
iteration counts with them as the near-null space.

Manufactured solutions with a material jump. Interface {x_k = s0} (k = 0 in plane strain and
3D, k = 1, i.e. z, axisymmetric), E = E1 for x_k < s0, E2 = 10 E1 above, the same nu.
Writing sigma = E S[eps] (S depends on nu only), the exact displacement is
    u = w / E + c,   w = S0 L (x_k - s0)/L * W(x),
    c_k = -nu/(1 - nu) (x_k - s0) div_t(g),   c_t = g(x_t)   (t: the tangential components),
with W and g smooth and g independent of x_k; div_t(g) is the tangential divergence (with
g_r / r in the axisymmetric case). Then u is continuous (w = 0 on the interface), its normal
derivative jumps by a factor 10, and the traction sigma.e_k is continuous: E S[eps(w / E)] =
S[eps(w)] is smooth, and c has zero traction on the interface (sigma_kt = 0 because c_t does
not depend on x_k and c_k = 0 there; sigma_kk = 0 because (lambda + 2 mu) eps_kk = -lambda
div_t g). So the problem has no interface source, as in the production problem, and the FE
solution (moduli DG0 on a mesh aligned with the interface) must converge at the optimal rates
k+1 (L2) and k (H1) of Lagrange Pk. The body force f = -div sigma and the exact tractions are
computed in this file from its own strong form (not from the module under test), so a wrong
strain or weight in the module would show up as a lost rate.

The moduli are DG0 Functions (cell-wise), also inside the exact fields, never a
ufl.conditional on x: Basix's default tetrahedron rules of degree 4, 5 and 7 have points on
the cell boundary, where such a conditional picks a side by round-off (it cost the 3D H1 rate,
0.72 instead of 2 for P2, before this was understood).

Tolerances: rates within 0.15 of the theoretical value on uniformly refined meshes, the margin
used by tests/test_mms.py; the observed values are stated next to each test.
"""

from __future__ import annotations

from collections.abc import Callable

from mpi4py import MPI
from petsc4py import PETSc

import basix.ufl
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc

from ecm_fem.physics import mechanics as mech
from ecm_fem.solver import BlockedNewtonSolver

# -- helpers ------------------------------------------------------------------------------


def mapped_mesh(comm: MPI.Comm, ns: int, nt: int, mapping, degree: int = 2) -> mesh.Mesh:
    """Triangles of degree ``degree`` (1 or 2) on the unit square (s, t), every geometry node
    mapped by ``mapping(s, t) -> (x, y)`` (arrays): an isoparametric mesh of a curved domain
    whose curved boundary nodes lie exactly on the curve. Built on rank 0 and distributed."""
    k = degree
    if comm.rank == 0:
        s, t = np.meshgrid(np.linspace(0, 1, k * ns + 1), np.linspace(0, 1, k * nt + 1),
                           indexing="ij")
        x = np.column_stack(mapping(s.ravel(), t.ravel()))

        def node(i, j):
            return i * (k * nt + 1) + j

        cells = []
        for i in range(ns):
            for j in range(nt):
                a, b = (k * i, k * j), (k * i + k, k * j)
                c, d = (k * i + k, k * j + k), (k * i, k * j + k)
                for v0, v1, v2 in ((a, b, c), (a, c, d)):
                    cell = [node(*v0), node(*v1), node(*v2)]
                    if k == 2:  # DOLFINx order: midpoints of edges (1,2), (0,2), (0,1)
                        for p, q in ((v1, v2), (v0, v2), (v0, v1)):
                            cell.append(node((p[0] + q[0]) // 2, (p[1] + q[1]) // 2))
                    cells.append(cell)
        cells = np.array(cells, dtype=np.int64)
    else:
        x = np.empty((0, 2))
        cells = np.empty((0, 3 if k == 1 else 6), dtype=np.int64)
    element = basix.ufl.element("Lagrange", "triangle", k, shape=(2,))
    return mesh.create_mesh(comm, cells, x, ufl.Mesh(element))


def tag_facets(msh: mesh.Mesh, markers: dict[int, Callable]) -> mesh.MeshTags:
    """Boundary facets tagged by marker (the first marker wins where they overlap)."""
    fdim = msh.topology.dim - 1
    idx, val = [], []
    for tag, marker in markers.items():
        f = mesh.locate_entities_boundary(msh, fdim, marker)
        idx.append(f)
        val.append(np.full_like(f, tag))
    idx, val = np.concatenate(idx), np.concatenate(val)
    idx, first = np.unique(idx, return_index=True)
    return mesh.meshtags(msh, fdim, idx, val[first])


def integrate(msh: mesh.Mesh, form) -> float:
    return msh.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def dg0(msh: mesh.Mesh, expr) -> fem.Function:
    """A DG0 Function with the value of ``expr`` at each cell's midpoint."""
    Q = fem.functionspace(msh, ("DG", 0))
    f = fem.Function(Q)
    f.interpolate(fem.Expression(expr, Q.element.interpolation_points()))
    return f


def solve_direct(F, u, bcs) -> None:
    """The production Newton solver with MUMPS; the problems here are linear, so one Newton
    step (two at most, if the first leaves a residual just above rtol) must do."""
    solver = BlockedNewtonSolver([F], [u], ["u"], bcs, linear_solver="direct")
    rep = solver.solve()
    solver.destroy()
    assert rep.newton_its <= 2, rep


def report(msg: str) -> None:
    """Measured values for the log (pytest -s), once, from rank 0."""
    if MPI.COMM_WORLD.rank == 0:
        print(msg)


def rates(h, err) -> np.ndarray:
    h, err = np.asarray(h), np.asarray(err)
    return np.log(err[1:] / err[:-1]) / np.log(h[1:] / h[:-1])


# -- manufactured solutions with a modulus jump -------------------------------------------

L = 10e-6  # domain size [m]
E1, E2, NU = 15e9, 150e9, 0.3  # [Pa], [Pa], [-]
S0 = 20e6  # stress scale of the manufactured field [Pa]


def lame(E, nu):
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


def mms_fields(x, kind: str, E):
    """(u_exact, in-plane sigma_exact, f = -div sigma_exact) for the cell-wise modulus E,
    written from the strong form in this file."""
    xi = [x[i] / L for i in range(len(x))]
    k = 1 if kind == "axisymmetric" else 0
    s0 = L / 2
    ug = S0 * L / E2  # displacement scale of the interface motion
    cnu = NU / (1 - NU)
    if kind == "plane_strain":
        W = ufl.as_vector([ufl.cos(xi[1]) + xi[0] ** 2, ufl.sin(2 * xi[0] + xi[1])])
        g = ug * ufl.sin(np.pi * xi[1])
        div_g = ug * np.pi / L * ufl.cos(np.pi * xi[1])
        c = ufl.as_vector([-cnu * (x[0] - s0) * div_g, g])
    elif kind == "3d":
        W = ufl.as_vector([ufl.cos(xi[1]) + xi[0] * xi[2], ufl.sin(2 * xi[0] + xi[1]),
                           ufl.cos(xi[2] + xi[0])])
        gy = ug * ufl.sin(np.pi * xi[1]) * ufl.cos(xi[2])
        gz = ug * xi[1] * xi[2]
        div_g = ug / L * (np.pi * ufl.cos(np.pi * xi[1]) * ufl.cos(xi[2]) + xi[1])
        c = ufl.as_vector([-cnu * (x[0] - s0) * div_g, gy, gz])
    else:  # axisymmetric, x = (r, z), interface z = s0; u_r odd and u_z even in r
        W = ufl.as_vector([xi[0] * ufl.cos(xi[1]), ufl.cos(xi[0] ** 2) + xi[1]])
        gr_over_r = ug / L * ufl.exp(-xi[0] ** 2)  # g_r = r * this
        g = x[0] * gr_over_r
        div_g = ug / L * ufl.exp(-xi[0] ** 2) * (2 - 2 * xi[0] ** 2)  # dg/dr + g/r
        c = ufl.as_vector([g, -cnu * (x[1] - s0) * div_g])
    u = S0 * L * (x[k] - s0) / L * W / E + c

    lmbda, mu = lame(E, NU)
    d = len(x)
    eps = ufl.sym(ufl.grad(u))
    if kind == "axisymmetric":
        hoop = u[0] / x[0]
        tr = ufl.tr(eps) + hoop
        sig = lmbda * tr * ufl.Identity(2) + 2 * mu * eps
        sig_tt = lmbda * tr + 2 * mu * hoop
        div = ufl.div(sig) + ufl.as_vector([(sig[0, 0] - sig_tt) / x[0], sig[1, 0] / x[0]])
    else:
        sig = lmbda * ufl.tr(eps) * ufl.Identity(d) + 2 * mu * eps
        div = ufl.div(sig)
    return u, sig, -div


def mms_solve(kind: str, degree: int, n: int) -> tuple[float, float, float]:
    """Relative (L2, H1-seminorm) errors and h; axisymmetric norms weighted by 2 pi r, the H1
    one including the hoop term (e_r / r)^2 of the energy."""
    comm = MPI.COMM_WORLD
    if kind == "3d":
        msh = mesh.create_box(comm, [[0, 0, 0], [L, L, L]], [n, n, n],
                              mesh.CellType.tetrahedron)
    else:
        msh = mesh.create_rectangle(comm, [[0, 0], [L, L]], [n, n], mesh.CellType.triangle)
    gdim = msh.geometry.dim
    tol = 1e-6 * L

    def on(i, val):
        return lambda y: np.isclose(y[i], val, atol=tol)

    # Dirichlet on the faces x_i = 0 (axisymmetric: z = 0 fully, u_r = 0 on the axis),
    # exact traction on the faces x_i = L
    tags = tag_facets(msh, {10 + i: on(i, L) for i in range(gdim)})
    x = ufl.SpatialCoordinate(msh)
    k = 1 if kind == "axisymmetric" else 0
    E = dg0(msh, ufl.conditional(ufl.lt(x[k], L / 2), E1, E2))
    u_ex, sig_ex, f = mms_fields(x, kind, E)
    qdeg = 2 * degree + 3
    dx = ufl.Measure("dx", msh, metadata={"quadrature_degree": qdeg})
    ds = ufl.Measure("ds", msh, subdomain_data=tags, metadata={"quadrature_degree": qdeg})
    V = fem.functionspace(msh, ("Lagrange", degree, (gdim,)))
    u, v = fem.Function(V), ufl.TestFunction(V)

    F = mech.elastic_residual(u, v, E, NU, kind, dx) + mech.body_force_residual(f, v, kind, dx)
    for i in range(gdim):
        e_i = ufl.as_vector([1.0 if j == i else 0.0 for j in range(gdim)])
        F += mech.traction_residual(ufl.dot(sig_ex, e_i), v, kind, ds(10 + i))

    u_bc = fem.Function(V)
    u_bc.interpolate(fem.Expression(u_ex, V.element.interpolation_points()))
    fdim = gdim - 1
    bcs = []
    if kind == "axisymmetric":
        bottom = mesh.locate_entities_boundary(msh, fdim, on(1, 0.0))
        axis = mesh.locate_entities_boundary(msh, fdim, on(0, 0.0))
        bcs.append(fem.dirichletbc(u_bc, fem.locate_dofs_topological(V, fdim, bottom)))
        bcs.append(fem.dirichletbc(0.0, fem.locate_dofs_topological(V.sub(0), fdim, axis),
                                   V.sub(0)))
    else:
        faces = np.unique(np.concatenate([
            mesh.locate_entities_boundary(msh, fdim, on(i, 0.0)) for i in range(gdim)]))
        bcs.append(fem.dirichletbc(u_bc, fem.locate_dofs_topological(V, fdim, faces)))
    solve_direct(F, u, bcs)

    w = mech.measure_weight(msh, kind)
    e = u - u_ex
    ge = ufl.grad(e)
    h1_integrand = ufl.inner(ge, ge)
    h1_ref = ufl.inner(ufl.grad(u_ex), ufl.grad(u_ex))
    if kind == "axisymmetric":
        h1_integrand += (e[0] / x[0]) ** 2
        h1_ref += (u_ex[0] / x[0]) ** 2
    l2 = np.sqrt(integrate(msh, ufl.dot(e, e) * w * dx) / integrate(msh, ufl.dot(u_ex, u_ex)
                                                                      * w * dx))
    h1 = np.sqrt(integrate(msh, h1_integrand * w * dx) / integrate(msh, h1_ref * w * dx))
    return L / n, l2, h1


# -- SM-1: Lame thick cylinder (plane strain) and thick sphere (axisymmetric) -------------

A_IN, B_OUT, P_IN = 1e-6, 10e-6, 10e6  # inner, outer radius [m]; inner pressure [Pa]
E_LLZO, NU_LLZO = 150e9, 0.257  # [Pa], [-] (PHYSICS.md section 8)


def lame_exact(kind: str) -> tuple[float, float]:
    """(u_r(a) [m], sigma_tt(a) [Pa]) of the thick cylinder (plane strain) or sphere under
    internal pressure: Lame's solutions (e.g. Timoshenko & Goodier, Theory of Elasticity:
    thick-walled cylinder; spherical container under uniform pressure)."""
    a, b, p, E, nu = A_IN, B_OUT, P_IN, E_LLZO, NU_LLZO
    if kind == "plane_strain":
        u = (1 + nu) * p * a**2 / (E * (b**2 - a**2)) * ((1 - 2 * nu) * a + b**2 / a)
        return u, p * (a**2 + b**2) / (b**2 - a**2)
    u = p * a**3 / (E * (b**3 - a**3)) * ((1 - 2 * nu) * a + (1 + nu) * b**3 / (2 * a**2))
    return u, p * (b**3 + 2 * a**3) / (2 * (b**3 - a**3))


def quarter_annulus(n: int) -> mesh.Mesh:
    """a <= |x| <= b, x, y >= 0; quadratic geometry, radial spacing graded geometrically
    (r = a (b/a)^s) since the stresses fall like 1/r^2 (cylinder) or 1/r^3 (sphere)."""
    def mapping(s, t):
        r, th = A_IN * (B_OUT / A_IN) ** s, 0.5 * np.pi * t
        return r * np.cos(th), r * np.sin(th)
    return mapped_mesh(MPI.COMM_WORLD, n, n, mapping)


def symmetry_bcs(V: fem.FunctionSpace, tol: float) -> list[fem.DirichletBC]:
    """u_x = 0 on x = 0 (the axis, u_r = 0, when axisymmetric) and u_y = 0 on y = 0."""
    fdim = V.mesh.topology.dim - 1
    bcs = []
    for i in range(2):
        facets = mesh.locate_entities_boundary(V.mesh, fdim,
                                               lambda y, i=i: np.isclose(y[i], 0, atol=tol))
        dofs = fem.locate_dofs_topological(V.sub(i), fdim, facets)
        bcs.append(fem.dirichletbc(0.0, dofs, V.sub(i)))
    return bcs


def lame_solve(kind: str, n: int, degree: int = 2) -> tuple[float, float, float]:
    """Mean over the inner surface of u.e_r, of the circumferential (in-plane tangential)
    stress and of the out-of-plane stress sigma_33 (sigma_zz, or the hoop stress)."""
    msh = quarter_annulus(n)
    radius = lambda y: np.hypot(y[0], y[1])  # noqa: E731
    tags = tag_facets(msh, {1: lambda y: np.isclose(radius(y), A_IN, rtol=1e-6)})
    ds = ufl.Measure("ds", msh, subdomain_data=tags)
    V = fem.functionspace(msh, ("Lagrange", degree, (2,)))
    u, v = fem.Function(V), ufl.TestFunction(V)
    F = mech.elastic_residual(u, v, E_LLZO, NU_LLZO, kind, ufl.dx(msh))
    F += mech.pressure_residual(P_IN, v, kind, ds(1))
    solve_direct(F, u, symmetry_bcs(V, 1e-6 * A_IN))

    x = ufl.SpatialCoordinate(msh)
    e_r = x / ufl.sqrt(ufl.dot(x, x))
    e_t = ufl.as_vector([-e_r[1], e_r[0]])
    sigma = mech.stress3(u, E_LLZO, NU_LLZO, kind)
    length = integrate(msh, 1.0 * ds(1))
    return tuple(integrate(msh, q * ds(1)) / length for q in (
        ufl.dot(u, e_r), mech.normal_stress(sigma, e_t), sigma[2, 2]))


LEVELS_SM1 = (8, 16, 32)


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["plane_strain", "axisymmetric"])
def test_sm1_lame_cylinder_and_sphere(kind):
    """SM-1. The exact fields are constant along the inner surface, so its means are the
    point values of VERIFICATION.md (asserted to their 5 digits first). P2 on quadratic
    geometry with n = 8, 16, 32 cells per side. Expected: displacements converge like h^3,
    stresses (gradients of P2) like h^2, boundary means at least as fast. Asserted: errors
    fall monotonically, the last observed rate is >= 2.7 for u_r and >= 1.7 for the
    stresses, and the finest errors are below the bounds in ``tol``. Observed (serial),
    relative errors on the finest mesh and last rates: cylinder u_r 6.2e-9 (4.1), sigma_tt
    3.7e-6 (3.0: the boundary mean superconverges), sigma_zz = nu (sigma_rr + sigma_tt) =
    0.0519 MPa 7.2e-4 (3.0); sphere u_r 9.0e-7 (3.7), meridional and hoop sigma_tt 1.2e-3
    (1.9)."""
    u_ref, s_ref = lame_exact(kind)
    quoted = {"plane_strain": (8.5058e-11, 10.2020e6), "axisymmetric": (4.1974e-11, 5.0150e6)}
    assert u_ref == pytest.approx(quoted[kind][0], rel=1e-4)
    assert s_ref == pytest.approx(quoted[kind][1], rel=1e-4)
    s33_ref = NU_LLZO * (-P_IN + s_ref) if kind == "plane_strain" else s_ref
    tol = {"plane_strain": (1e-7, 1e-5, 2e-3), "axisymmetric": (5e-6, 2e-3, 2e-3)}[kind]

    res = np.array([lame_solve(kind, n) for n in LEVELS_SM1])
    err = np.abs(res / np.array([u_ref, s_ref, s33_ref]) - 1)
    r = np.log(err[-2] / err[-1]) / np.log(2)
    report(f"{kind}: relative errors (u_r, sigma_tt, sigma_33) per level\n{err}\nrates {r}")
    assert np.all(err[1:] < err[:-1]), err
    assert r[0] >= 2.7 and np.all(r[1:] >= 1.7), r
    assert np.all(err[-1] < np.array(tol)), err


# -- SM-2: Kirsch, circular hole in remote uniaxial tension (plane strain) ----------------

A_HOLE, W_PLATE, T_REMOTE = 1e-6, 5e-6, 10e6  # hole radius, plate half-width [m]; T [Pa]


def kirsch_displacement(x0, x1, sqrt, E: float = E_LLZO, nu: float = NU_LLZO):
    """Exact plane-strain displacement (u_x, u_y) [m] around a traction-free hole of radius a
    in remote tension T along x, rigid motion fixed by the symmetry planes x = 0 and y = 0.
    Derived here from the Kirsch stresses of VERIFICATION.md SM-2 (G. Kirsch, Z. VDI 42
    (1898) 797; the Airy-function solution in Timoshenko & Goodier, Theory of Elasticity, or
    Barber, Elasticity, ch. 8) through plane-strain Hooke's law and integration of the
    strain-displacement relations, rigid motion removed; with kappa = 3 - 4 nu:
        u_r = T/(4 mu) [r ((kappa - 1)/2 + cos 2t) + a^2/r (1 + (kappa + 1) cos 2t)
                        - a^4/r^3 cos 2t],
        u_t = -T/(4 mu) [r + (kappa - 1) a^2/r + a^4/r^3] sin 2t,
    Checked symbolically (sympy) when derived, and against the stresses by
    ``test_kirsch_displacement_reproduces_kirsch_stresses``. Works on UFL and NumPy arguments
    (pass the matching sqrt)."""
    a, T = A_HOLE, T_REMOTE
    mu, kappa = E / (2 * (1 + nu)), 3 - 4 * nu
    r2 = x0 * x0 + x1 * x1
    r = sqrt(r2)
    c2, s2 = (x0 * x0 - x1 * x1) / r2, 2 * x0 * x1 / r2
    ur = T / (4 * mu) * (r * ((kappa - 1) / 2 + c2) + a**2 / r * (1 + (kappa + 1) * c2)
                         - a**4 / r**3 * c2)
    ut = -T / (4 * mu) * (r + (kappa - 1) * a**2 / r + a**4 / r**3) * s2
    c, s = x0 / r, x1 / r
    return ur * c - ut * s, ur * s + ut * c


def kirsch_stress_polar(r, t):
    """(sigma_rr, sigma_tt, sigma_rt) [Pa] of VERIFICATION.md SM-2."""
    a, T = A_HOLE, T_REMOTE
    q2, q4 = a**2 / r**2, a**4 / r**4
    srr = T / 2 * (1 - q2) + T / 2 * (1 - 4 * q2 + 3 * q4) * np.cos(2 * t)
    stt = T / 2 * (1 + q2) - T / 2 * (1 + 3 * q4) * np.cos(2 * t)
    srt = -T / 2 * (1 + 2 * q2 - 3 * q4) * np.sin(2 * t)
    return srr, stt, srt


def test_kirsch_displacement_reproduces_kirsch_stresses():
    """Central differences (step 1e-5 a, truncation error ~1e-10 relative) of the exact
    displacement, through plane-strain Hooke's law, must give the SM-2 stresses to 1e-6 of T
    at points 1.05 a to 5 a from the centre, all angles; and the displacement must satisfy
    the symmetry conditions u_y(y = 0) = 0, u_x(x = 0) = 0."""
    rng = np.random.default_rng(1)
    r = A_HOLE * rng.uniform(1.05, 5.0, 50)
    t = rng.uniform(0, 2 * np.pi, 50)
    x0, x1, d = r * np.cos(t), r * np.sin(t), 1e-5 * A_HOLE

    def grad(i, j):  # d u_i / d x_j
        dx = (d, 0) if j == 0 else (0, d)
        up = kirsch_displacement(x0 + dx[0], x1 + dx[1], np.sqrt)[i]
        um = kirsch_displacement(x0 - dx[0], x1 - dx[1], np.sqrt)[i]
        return (up - um) / (2 * d)

    exx, eyy, exy = grad(0, 0), grad(1, 1), 0.5 * (grad(0, 1) + grad(1, 0))
    lmbda, mu = lame(E_LLZO, NU_LLZO)
    sxx = lmbda * (exx + eyy) + 2 * mu * exx
    syy = lmbda * (exx + eyy) + 2 * mu * eyy
    sxy = 2 * mu * exy
    c, s = np.cos(t), np.sin(t)
    srr = c * c * sxx + s * s * syy + 2 * s * c * sxy
    stt = s * s * sxx + c * c * syy - 2 * s * c * sxy
    srt = (syy - sxx) * s * c + (c * c - s * s) * sxy
    for got, want in zip((srr, stt, srt), kirsch_stress_polar(r, t), strict=True):
        assert np.max(np.abs(got - want)) < 1e-6 * T_REMOTE
    xs = np.linspace(A_HOLE, 5 * A_HOLE, 7)
    assert np.allclose(kirsch_displacement(xs, 0 * xs, np.sqrt)[1], 0, atol=1e-25)
    assert np.allclose(kirsch_displacement(0 * xs, xs, np.sqrt)[0], 0, atol=1e-25)


def quarter_plate_with_hole(n: int) -> mesh.Mesh:
    """[0, W]^2 minus the disc r < a: each line t = const runs straight from the hole point
    at angle t pi/2 to the outer edge point with the same t (x = W for t <= 1/2, y = W
    above), so the corner (W, W) is the node line t = 1/2 (n even)."""
    def mapping(s, t):
        th = 0.5 * np.pi * t
        bx = np.where(t <= 0.5, W_PLATE, W_PLATE * (2 - 2 * t))
        by = np.where(t <= 0.5, 2 * W_PLATE * t, W_PLATE)
        return ((1 - s) * A_HOLE * np.cos(th) + s * bx, (1 - s) * A_HOLE * np.sin(th) + s * by)
    return mapped_mesh(MPI.COMM_WORLD, n, n, mapping)


def vertex_mean(msh: mesh.Mesh, expr, point, tol: float) -> float:
    """Mean over the cells around the mesh vertex at ``point`` of the cell-wise value of
    ``expr`` there (a partition-independent point value of a discontinuous field)."""
    tdim = msh.topology.dim
    msh.topology.create_connectivity(0, tdim)
    v2c, c2v = msh.topology.connectivity(0, tdim), msh.topology.connectivity(tdim, 0)
    n_owned = msh.topology.index_map(tdim).size_local
    vertices = mesh.locate_entities(msh, 0, lambda y: np.isclose(y[0], point[0], atol=tol)
                                    & np.isclose(y[1], point[1], atol=tol))
    cells, local = [], []
    for vtx in vertices:
        for c in v2c.links(vtx):
            if c < n_owned:
                cells.append(c)
                local.append(int(np.flatnonzero(c2v.links(c) == vtx)[0]))
    # the Expression is compiled collectively (JIT), so on every rank, cells or not
    compiled = fem.Expression(expr, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    vals = compiled.eval(msh, np.array(cells, dtype=np.int32))
    total = float(sum(vals[i, j] for i, j in enumerate(local)))
    total = msh.comm.allreduce(total, op=MPI.SUM)
    count = msh.comm.allreduce(len(cells), op=MPI.SUM)
    assert count > 0
    return total / count


def kirsch_solve(n: int, degree: int) -> tuple[float, float, float]:
    """(h, relative L2 error of u, sigma_xx = sigma_tt at (0, a))."""
    msh = quarter_plate_with_hole(n)
    V = fem.functionspace(msh, ("Lagrange", degree, (2,)))
    u, v = fem.Function(V), ufl.TestFunction(V)
    F = mech.elastic_residual(u, v, E_LLZO, NU_LLZO, "plane_strain", ufl.dx(msh))
    tol = 1e-6 * A_HOLE
    x = ufl.SpatialCoordinate(msh)
    u_ex = ufl.as_vector(kirsch_displacement(x[0], x[1], ufl.sqrt))
    u_bc = fem.Function(V)
    u_bc.interpolate(fem.Expression(u_ex, V.element.interpolation_points()))
    fdim = msh.topology.dim - 1
    outer = mesh.locate_entities_boundary(
        msh, fdim, lambda y: np.isclose(y[0], W_PLATE, atol=tol)
        | np.isclose(y[1], W_PLATE, atol=tol))
    bcs = [fem.dirichletbc(u_bc, fem.locate_dofs_topological(V, fdim, outer)),
           *symmetry_bcs(V, tol)]
    solve_direct(F, u, bcs)

    dx = ufl.dx(msh, metadata={"quadrature_degree": 2 * degree + 4})
    err = np.sqrt(integrate(msh, ufl.dot(u - u_ex, u - u_ex) * dx)
                  / integrate(msh, ufl.dot(u_ex, u_ex) * dx))
    sigma = mech.stress3(u, E_LLZO, NU_LLZO, "plane_strain")
    s_top = vertex_mean(msh, sigma[0, 0], (0.0, A_HOLE), tol)
    return 1.0 / n, err, s_top


@pytest.mark.mpi
def test_sm2_kirsch_plate_with_hole():
    """SM-2 with P2 on quadratic geometry, n = 16, 32, 64 cells per side of the mapped
    quarter plate (W = 5a), exact displacement on x = W and y = W, symmetry on x = 0 and
    y = 0, traction-free hole. The L2 error of u must fall as h^3 (observed rates 2.96, 3.03;
    asserted within 0.15 as the MMS rates), and sigma_tt(a, 90 deg) = sigma_xx(0, a), the
    mean of the cell values at that vertex, must approach 3T: observed relative errors 1.3e-2,
    3.7e-3, 1.0e-3 (rate 1.8-1.9, the h^2 of a P2 stress at a point); asserted to fall
    monotonically and end below 2e-3. (P1, for the record: L2 rates 1.69, 1.87 on n = 16-64,
    still pre-asymptotic around the stress concentration; not asserted.)"""
    res = [kirsch_solve(n, 2) for n in (16, 32, 64)]
    h, l2, s_top = (np.array(c) for c in zip(*res, strict=True))
    r = rates(h, l2)
    s_err = np.abs(s_top / (3 * T_REMOTE) - 1)
    report(f"Kirsch P2: L2 errors {l2}, rates {r}; sigma_tt(a, 90 deg)/3T - 1 = {s_err}")
    assert np.all(np.abs(r - 3) < 0.15), r
    assert np.all(s_err[1:] < s_err[:-1]) and s_err[-1] < 2e-3, s_err


# -- algebraic multigrid with the rigid-body near-null space ------------------------------


def amg_iterations(kind: str, n: int, modes: str = "rigid") -> tuple[int, int]:
    """(global dofs, CG iterations to a 1e-8 relative residual) of CG + GAMG on a P1
    two-material body (E 15 / 150 GPa, split at mid-height) clamped at the bottom, under its
    own weight, in SI units (matrix entries ~E, Dirichlet rows with diagonal 1).
    ``modes``: 'rigid' (``rigid_body_modes``), 'none' (GAMG's default: one constant per
    component), 'z' (axisymmetric: the axial translation alone, the only exact zero mode)."""
    comm = MPI.COMM_WORLD
    if kind == "3d":
        msh = mesh.create_box(comm, [[0, 0, 0], [L, L, L]], [n, n, n],
                              mesh.CellType.tetrahedron)
    else:
        msh = mesh.create_rectangle(comm, [[0, 0], [L, L]], [n, n], mesh.CellType.triangle)
    gdim = msh.geometry.dim
    x = ufl.SpatialCoordinate(msh)
    E = dg0(msh, ufl.conditional(ufl.lt(x[gdim - 1], L / 2), E1, E2))
    V = fem.functionspace(msh, ("Lagrange", 1, (gdim,)))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    dx = ufl.dx(msh)
    a = fem.form(mech.elastic_residual(u, v, E, NU, kind, dx))
    weight = ufl.as_vector([0.0] * (gdim - 1) + [-1e12])  # [N/m^3]
    rhs = fem.form(-mech.body_force_residual(weight, v, kind, dx))
    fdim = gdim - 1
    bottom = mesh.locate_entities_boundary(msh, fdim, lambda y: np.isclose(y[gdim - 1], 0))
    bcs = [fem.dirichletbc(np.zeros(gdim), fem.locate_dofs_topological(V, fdim, bottom), V)]
    if kind == "axisymmetric":
        bcs += symmetry_bcs(V, 1e-6 * L)[:1]  # u_r = 0 on the axis

    A = fem_petsc.assemble_matrix(a, bcs=bcs)
    A.assemble()
    b = fem_petsc.assemble_vector(rhs)
    fem_petsc.apply_lifting(b, [a], [bcs])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fem_petsc.set_bc(b, bcs)
    if modes == "rigid":
        A.setNearNullSpace(mech.rigid_body_modes(V, kind))
    elif modes == "z":
        z = A.createVecRight()
        z.getArray()[1::2] = 1.0
        z.normalize()
        A.setNearNullSpace(PETSc.NullSpace().create(vectors=[z], comm=comm))

    prefix = "ecm_test_elasticity_amg_"
    opts = PETSc.Options()
    for key, val in {"ksp_type": "cg", "ksp_rtol": 1e-8, "ksp_max_it": 400,
                     "ksp_norm_type": "unpreconditioned", "pc_type": "gamg"}.items():
        opts[prefix + key] = val
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setFromOptions()
    sol = A.createVecRight()
    ksp.solve(b, sol)
    its, reason = ksp.getIterationNumber(), ksp.getConvergedReason()
    dofs = V.dofmap.index_map.size_global * gdim
    for obj in (ksp, A, b, sol):
        obj.destroy()
    for key in list(opts.getAll()):
        if key.startswith(prefix):
            opts.delValue(key)
    if modes != "z":  # the z-only case may stall: that is what it shows
        assert reason > 0, (kind, n, modes, reason)
    return dofs, its


AMG_SIZES = {"plane_strain": (16, 32, 64, 128), "axisymmetric": (16, 32, 64, 128),
             "3d": (8, 16)}


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["plane_strain", "axisymmetric", "3d"])
def test_amg_iterations_bounded_with_rigid_body_modes(kind):
    """CG + GAMG with ``rigid_body_modes`` as the near-null space: iteration counts stay
    bounded under refinement. Measured (1 | 2 | 3 ranks), P1, AMG_SIZES cells per side:
        plane strain, 578 / 2178 / 8450 / 33282 dofs: 20 21 23 26 | 18 21 24 25 | 18 22 23 27;
            GAMG's default modes at 8450 dofs: 42 | 41 | 41
        axisymmetric, same sizes: 18 20 22 24 | 17 20 22 24 | 17 19 21 24; default modes:
            35 | 35 | 35; z-translation alone on 578 / 2178 dofs: 39 74 | 38 75 | 38 74
        3D, 2187 / 14739 dofs: 19 23 | 20 23 | 18 22; default modes at 14739: 47 | 46 | 47.
    Asserted: at most 32 iterations; over the last halving of h at most 30% more, 40% in 3D,
    plus one iteration of run-to-run noise (observed 4-22%, once 41% in 3D on 3 ranks; an
    h^-1/2 growth would give 41%, the z-translation alone gives 90%); at least 1.3x fewer than
    with GAMG's default modes (observed 1.6-2.1x). For the axisymmetric case, the exact null
    space alone (z-translation) is shown to be no good, growing by >= 1.7x per halving: why
    ``rigid_body_modes`` returns all three in-plane modes there."""
    sizes = AMG_SIZES[kind]
    its = np.array([amg_iterations(kind, n)[1] for n in sizes])
    its_default = amg_iterations(kind, sizes[-2] if kind != "3d" else sizes[-1], "none")[1]
    its_ref = its[-2] if kind != "3d" else its[-1]
    report(f"{kind}: iterations {its} with rigid-body modes; {its_default} with GAMG's "
           f"default modes vs {its_ref} at the same size")
    assert its.max() <= 32, its
    # GAMG in parallel is not reproducible run to run: on 3 ranks, the same partition and
    # matrices gave 3D counts of 18 23, 19 23, 19 24 and 17 24 (CI). So one iteration of slack
    # on top of the growth factor; 3D has only two sizes and gets 40 % (h^-1/2 would be 41 %)
    growth = 1.4 if kind == "3d" else 1.3
    assert its[-1] <= growth * its[-2] + 1, its
    assert its_default >= 1.3 * its_ref, (its, its_default)
    if kind == "axisymmetric":
        its_z = np.array([amg_iterations(kind, n, "z")[1] for n in (16, 32)])
        report(f"axisymmetric, z-translation only: {its_z}")
        assert its_z[1] >= 1.7 * its_z[0], its_z


MMS_LEVELS = {("plane_strain", 1): (8, 16, 32), ("plane_strain", 2): (4, 8, 16),
              ("axisymmetric", 1): (8, 16, 32), ("axisymmetric", 2): (4, 8, 16),
              ("3d", 1): (4, 8, 16), ("3d", 2): (2, 4, 6)}


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("kind", ["plane_strain", "axisymmetric", "3d"])
def test_mms_rates_with_modulus_jump(kind, degree):
    """Observed L2 and H1 rates of the manufactured solution with a 10x modulus jump (module
    docstring) on the last pair of meshes, asserted within 0.15 of k+1 and k. Observed
    (serial; L2 then H1 rates over the levels of MMS_LEVELS):
        plane strain P1 1.85 1.95 | 1.02 1.01,  P2 3.07 3.03 | 1.98 1.99
        axisymmetric P1 2.00 2.00 | 1.00 1.00,  P2 2.98 3.00 | 1.98 2.00
        3D           P1 1.81 1.91 | 0.98 1.00,  P2 3.01 3.03 | 1.94 1.97
    (3D on 4-16 and 2-6 cells per side to keep the run short.)"""
    res = [mms_solve(kind, degree, n) for n in MMS_LEVELS[kind, degree]]
    h, l2, h1 = (np.array(c) for c in zip(*res, strict=True))
    r_l2, r_h1 = rates(h, l2), rates(h, h1)
    report(f"{kind} P{degree}: L2 rates {r_l2}, H1 rates {r_h1}")
    assert r_l2[-1] == pytest.approx(degree + 1, abs=0.15), r_l2
    assert r_h1[-1] == pytest.approx(degree, abs=0.15), r_h1


# -- exact-polynomial checks: eigenstrain, stress measures, rigid-body modes --------------

EIGEN = {"plane_strain": np.diag([1.0, -2.0, 3.0]) * 1e-3,
         "axisymmetric": np.diag([1.0, -2.0, 1.0]) * 1e-3,  # eps_rr = eps_tt: stress free
         "3d": np.diag([1.0, -2.0, 3.0]) * 1e-3}


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["plane_strain", "axisymmetric", "3d"])
def test_uniform_eigenstrain_exact(kind):
    """A uniform inelastic strain eps* (3x3, as creep and growth strains enter) in a body held
    only by symmetry conditions: the exact response is linear, so P1 must reproduce it to
    round-off. 3D and axisymmetric (eps*_rr = eps*_tt): stress-free, u = eps* x. Plane
    strain: the out-of-plane component is constrained, sigma_zz = -E eps*_zz, the in-plane
    stresses vanish and eps_xx = eps*_xx + nu eps*_zz (likewise yy)."""
    comm = MPI.COMM_WORLD
    if kind == "3d":
        msh = mesh.create_box(comm, [[0, 0, 0], [L, L, L]], [3, 3, 3],
                              mesh.CellType.tetrahedron)
    else:
        msh = mesh.create_rectangle(comm, [[0, 0], [L, L]], [4, 4], mesh.CellType.triangle)
    gdim = msh.geometry.dim
    V = fem.functionspace(msh, ("Lagrange", 1, (gdim,)))
    u, v = fem.Function(V), ufl.TestFunction(V)
    eig = EIGEN[kind]
    E = dg0(msh, ufl.conditional(ufl.lt(ufl.SpatialCoordinate(msh)[0], L / 2), E1, E2))
    F = mech.elastic_residual(u, v, E, NU, kind, ufl.dx(msh), eps_inelastic=ufl.as_matrix(eig))
    fdim = gdim - 1
    bcs = []
    for i in range(gdim):
        facets = mesh.locate_entities_boundary(msh, fdim, lambda y, i=i: np.isclose(y[i], 0))
        bcs.append(fem.dirichletbc(0.0, fem.locate_dofs_topological(V.sub(i), fdim, facets),
                                   V.sub(i)))
    solve_direct(F, u, bcs)

    x = ufl.SpatialCoordinate(msh)
    strain = np.diag(eig)[:gdim].copy()
    sigma_ex = np.zeros((3, 3))
    if kind == "plane_strain":
        strain += NU * eig[2, 2]
        sigma_ex[2, 2] = -1.0  # times E
    u_ex = ufl.as_vector([strain[i] * x[i] for i in range(gdim)])
    sigma = mech.stress3(u, E, NU, kind, eps_inelastic=ufl.as_matrix(eig))
    ds_ = sigma - E * eig[2, 2] * ufl.as_matrix(sigma_ex)
    vol = integrate(msh, 1.0 * ufl.dx(msh))
    u_err = np.sqrt(integrate(msh, ufl.dot(u - u_ex, u - u_ex) * ufl.dx) / vol) / (1e-3 * L)
    s_err = np.sqrt(integrate(msh, ufl.inner(ds_, ds_) * ufl.dx) / vol) / (1e-3 * E2)
    assert u_err < 1e-10 and s_err < 1e-10, (u_err, s_err)


def test_stress_measures_and_input_checks():
    """von Mises and hydrostatic stress of uniaxial tension s (s, s/3), pure shear t
    (sqrt(3) t, 0) and a pressure p (0, -p); the traction helpers on a tilted normal; and
    the kinematics checks (unknown name, wrong dimension, 2D inelastic strain)."""
    msh = mesh.create_unit_square(MPI.COMM_SELF, 1, 1)

    def value(expr):
        return fem.assemble_scalar(fem.form(expr * ufl.dx(msh)))

    s, t, p = 3.0, 2.0, 5.0
    uni = ufl.as_matrix(np.diag([s, 0.0, 0.0]))
    shear = ufl.as_matrix([[0.0, t, 0.0], [t, 0.0, 0.0], [0.0, 0.0, 0.0]])
    pres = -p * ufl.Identity(3)
    assert value(mech.von_mises(uni)) == pytest.approx(s)
    assert value(mech.hydrostatic(uni)) == pytest.approx(s / 3)
    assert value(mech.von_mises(shear)) == pytest.approx(np.sqrt(3) * t)
    assert value(mech.hydrostatic(pres)) == pytest.approx(-p)
    n = ufl.as_vector([0.6, 0.8])
    assert value(mech.normal_stress(uni, n)) == pytest.approx(s * 0.36)
    assert value(mech.traction(shear, n)[0]) == pytest.approx(0.8 * t)
    lmbda, mu = mech.lame_parameters(E_LLZO, NU_LLZO)
    assert (lmbda, mu) == pytest.approx(lame(E_LLZO, NU_LLZO))

    V = fem.functionspace(msh, ("Lagrange", 1, (2,)))
    u = fem.Function(V)
    with pytest.raises(ValueError, match="plane_strain, axisymmetric, 3d"):
        mech.strain3(u, "plane_stress")
    with pytest.raises(ValueError, match="needs a 3D displacement"):
        mech.strain3(u, "3d")
    with pytest.raises(ValueError, match="3x3"):
        mech.stress3(u, 1.0, 0.3, "plane_strain", eps_inelastic=ufl.Identity(2))


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["plane_strain", "axisymmetric", "3d"])
def test_rigid_body_modes(kind):
    """The modes are orthonormal; on the stiffness matrix without boundary conditions (SI
    units, P2; the axisymmetric body is the ring L <= r <= 2L) the plane-strain and 3D modes
    have zero energy to round-off, |K m| <= 1e-10 |K|_inf (all of them, being orthonormal
    combinations of zero modes); axisymmetric: the z-translation (second mode) has zero
    energy and the radial translation does not."""
    comm = MPI.COMM_WORLD
    if kind == "3d":
        msh = mesh.create_box(comm, [[0, 0, 0], [L, L, L]], [3, 3, 3],
                              mesh.CellType.tetrahedron)
    else:
        msh = mesh.create_rectangle(comm, [[L, 0], [2 * L, L]], [4, 4],
                                    mesh.CellType.triangle)
    gdim = msh.geometry.dim
    V = fem.functionspace(msh, ("Lagrange", 2, (gdim,)))
    K = fem_petsc.assemble_matrix(fem.form(mech.elastic_residual(
        ufl.TrialFunction(V), ufl.TestFunction(V), E_LLZO, NU_LLZO, kind, ufl.dx(msh))))
    K.assemble()
    ns = mech.rigid_body_modes(V, kind)
    modes = ns.getVecs()
    assert len(modes) == {"plane_strain": 3, "axisymmetric": 3, "3d": 6}[kind]
    gram = np.array([[a.dot(b) for b in modes] for a in modes])
    assert np.allclose(gram, np.eye(len(modes)), atol=1e-12)
    Km = K.createVecLeft()
    energy = []
    for m in modes:
        K.mult(m, Km)
        energy.append(Km.norm() / K.norm(PETSc.NormType.INFINITY))
    energy = np.array(energy)
    if kind == "axisymmetric":
        assert energy[1] < 1e-10 and energy[0] > 1e-6, energy
    else:
        assert np.all(energy < 1e-10), energy
    K.destroy()
