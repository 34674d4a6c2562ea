"""Simulators (optional extra `roboact[sim]`): Meta-World and LIBERO behind one small interface.

Nothing in models/, backbones/ or policy/ imports this package.
"""
