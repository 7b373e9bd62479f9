"""Physics modules: each returns UFL residual pieces or rate expressions for its field; no
solving happens here (that is ``ecm_fem.solver``)."""
