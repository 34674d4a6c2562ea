"""Simulators (optional extra `roboact[sim]`): Meta-World and LIBERO behind one small interface.

models/ and backbones/ never import this package; policy/ imports it only inside the functions that need
an env, an expert or a demo file, so policy imports without the simulators.
"""
