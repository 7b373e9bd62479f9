"""``python3 -m ecm_fem ...``: the same command line as ``ecm-fem``."""

from ecm_fem.cli import console_main

console_main()
