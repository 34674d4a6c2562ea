"""RH20T per-camera frame timestamps, and the frame window of a time-trimmed (human) clip.

RH20T stores `cam_<serial>/timestamps.npy` as a pickled dict {"color": [ms, ...], "depth": [...]}.
Unpickling runs code chosen by the file, so instead of `np.load(allow_pickle=True)` we read the .npy
header ourselves and unpickle with an allow-list of the few numpy constructors an array of numbers needs;
anything else is refused with an error naming the file. Plain integer arrays load without pickle at all.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from roboact.data.curate.items import TrimSpec


class TimestampError(ValueError):
    """timestamps.npy unreadable or of an unexpected shape; names the file."""


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_color_timestamps(path: Path) -> np.ndarray:
    """Colour-frame timestamps (int64 [T], ms) from a timestamps.npy: a dict with 'color' or a 1-D array."""
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                obj = _NumpyOnlyUnpickler(io.BytesIO(f.read())).load()
            else:
                f.seek(0)
                obj = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise TimestampError(f"{path}: unreadable timestamps ({e})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if isinstance(obj, dict):
        obj = obj.get("color")
    try:
        ts = np.asarray(obj, dtype=np.int64)
    except (TypeError, ValueError):
        ts = None
    if ts is None or ts.ndim != 1 or ts.size == 0:
        raise TimestampError(f"{path}: expected a 1-D list of colour timestamps (or a dict with 'color')")
    return ts


def frame_window(spec: TrimSpec, num_frames: int) -> tuple[int, int]:
    """[start, stop) frame indices whose timestamps fall in [start_ms, end_ms]; ValueError if none do.

    Frames beyond the shorter of (decodable frames, timestamps) are ignored: a video and its timestamp
    list can disagree by a frame or two at the end of a recording.
    """
    ts = load_color_timestamps(spec.timestamps)[:num_frames]
    idx = np.flatnonzero((ts >= spec.start_ms) & (ts <= spec.end_ms))
    if idx.size == 0:
        raise ValueError(f"trim window [{spec.start_ms}, {spec.end_ms}] ms covers none of the {len(ts)} frames "
                         f"(timestamps {int(ts.min())}..{int(ts.max())})")
    return int(idx[0]), int(idx[-1]) + 1
