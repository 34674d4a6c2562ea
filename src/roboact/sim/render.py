"""The fast offscreen renderer (docs/design.md §4).

Software rendering (Mesa llvmpipe) with MuJoCo's defaults is 5-30x slower than needed. Before creating a
renderer we turn off multisampling, size the offscreen buffer to the image, and drop shadows and
reflections. Simulators that rebuild their render context on reset (LIBERO) must call `apply` again.
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per process; scale with processes

import numpy as np


def configure_model(model, width: int, height: int) -> None:
    """Fast settings on an `mujoco.MjModel` (must precede creating a Renderer on it)."""
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)


def fast_scene_flags(scene) -> None:
    import mujoco

    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


def ensure_gl_backend() -> None:
    """Use the backend MUJOCO_GL names even if mujoco was imported before it was set.

    mujoco picks its GL context class once, at import; a simulator package imported before this module
    (metaworld, robosuite) leaves it on GLFW, which cannot open a context without a display.
    """
    from mujoco import gl_context

    backend = os.environ.get("MUJOCO_GL", "").lower()
    if backend not in ("egl", "osmesa"):
        return
    import importlib

    module = importlib.import_module(f"mujoco.{backend}")
    if gl_context.GLContext is not module.GLContext:
        gl_context.GLContext = module.GLContext


class FastRenderer:
    """Renders named cameras of a (model, data) pair to uint8 RGB, with the fast settings applied."""

    def __init__(self, model, width: int = 128, height: int = 128):
        import mujoco

        ensure_gl_backend()
        configure_model(model, width, height)
        self.model = model
        self.width, self.height = width, height
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        fast_scene_flags(self._renderer.scene)

    def render(self, data, camera: str | int, rotate180: bool = False) -> np.ndarray:
        """uint8 [H, W, 3]; `rotate180` turns cameras whose XML frame is upside down the right way up."""
        self._renderer.update_scene(data, camera=camera)
        fast_scene_flags(self._renderer.scene)
        return _orient(self._renderer.render(), rotate180)

    def segment(self, data, camera: str | int, rotate180: bool = False) -> np.ndarray:
        """int32 [H, W] geom id per pixel (-1: background or a non-geom object), oriented like `render`.

        Lets tests check frame orientation against world geometry, and gives object masks.
        """
        import mujoco

        self._renderer.enable_segmentation_rendering()
        try:
            self._renderer.update_scene(data, camera=camera)
            seg = self._renderer.render()  # [H, W, 2]: object id, object type
        finally:
            self._renderer.disable_segmentation_rendering()
        ids = np.where(seg[..., 1] == mujoco.mjtObj.mjOBJ_GEOM, seg[..., 0], -1).astype(np.int32)
        return _orient(ids, rotate180)

    def close(self) -> None:
        self._renderer.close()


def _orient(img: np.ndarray, rotate180: bool) -> np.ndarray:
    return np.ascontiguousarray(img[::-1, ::-1] if rotate180 else img)
