"""Video files in and out (PyAV, which ships its own libx264) and the paper's uniform frame sampling.

Decoding is the one place where a bad file shows up, so every failure here is a `VideoError` naming the
file; callers turn it into a rejection row and carry on with the rest of the dataset.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from roboact.utils.io import atomic_path


class VideoError(ValueError):
    """A video cannot be read (missing, empty, truncated, zero frames) or written; names the file."""


def uniform_indices(num_frames: int, n: int) -> np.ndarray:
    """Indices of `n` frames spread uniformly over `num_frames` (first and last included).

    Clips shorter than `n` are padded by repeating frames at the same uniform positions
    (round(linspace)), so the clip's time course is kept and no frame is invented; a 1-frame clip
    yields n copies of it. Frame differences over repeated frames are exactly zero, which the Temporal
    Diff-Transformer sees as "no motion" rather than as an artefact.
    """
    if num_frames < 1:
        raise VideoError(f"cannot sample from a video with {num_frames} frames")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return np.round(np.linspace(0, num_frames - 1, n)).astype(np.int64)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float = 20.0, crf: int = 20) -> None:
    """Write uint8 frames [T, H, W, 3] as H.264 mp4, atomically. Odd sizes are padded by one pixel."""
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise VideoError(f"{path}: no frames to write")
    t, h, w, _ = frames.shape
    ph, pw = h + (h % 2), w + (w % 2)
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height = pw, ph
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for fr in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p}: video file not found")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: video file is empty")
    try:
        return av.open(str(p))
    except Exception as e:  # av raises many error types; all mean "unreadable"
        raise VideoError(f"{p}: cannot open video ({type(e).__name__}: {e})") from None


def read_frames(path: str | os.PathLike, indices: np.ndarray | None = None) -> np.ndarray:
    """Decode a video to uint8 [T, H, W, 3]; with `indices`, only those frames (in that order, repeats ok).

    Decodes sequentially (robust for any codec/container, no seeking assumptions) and stops once the
    last wanted index is reached.
    """
    frames: list[np.ndarray] = []
    wanted = None if indices is None else np.asarray(indices, dtype=np.int64)
    last = None if wanted is None else int(wanted.max())
    wanted_set = set() if wanted is None else {int(j) for j in wanted}
    keep: dict[int, np.ndarray] = {}
    container = _open(path)
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        i = -1
        try:
            for i, frame in enumerate(container.decode(stream)):
                if wanted is None:
                    frames.append(frame.to_ndarray(format="rgb24"))
                elif i in wanted_set:
                    keep[i] = frame.to_ndarray(format="rgb24")
                if last is not None and i >= last:
                    break
        except VideoError:
            raise
        except Exception as e:
            raise VideoError(f"{path}: decoding failed after {i + 1} frames ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if wanted is None:
        if not frames:
            raise VideoError(f"{path}: video has zero decodable frames")
        return np.stack(frames)
    missing = [int(j) for j in wanted if int(j) not in keep]
    if missing:
        raise VideoError(f"{path}: video ended before frame {missing[0]} (has {len(keep) and max(keep) + 1} frames)")
    return np.stack([keep[int(j)] for j in wanted])


def count_frames(path: str | os.PathLike) -> tuple[int, float]:
    """(number of decodable frames, fps). Counts by demuxing packets: cheap, and robust to bad headers."""
    container = _open(path)
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        n = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    n += 1
        except Exception as e:
            raise VideoError(f"{path}: demuxing failed after {n} packets ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if n == 0:
        raise VideoError(f"{path}: video has zero frames")
    return n, fps


def sample_clip(path: str | os.PathLike, n: int = 16) -> np.ndarray:
    """The paper's input: n uniformly sampled frames, uint8 [n, H, W, 3]. Decodes the whole file once."""
    frames = read_frames(path)
    return frames[uniform_indices(len(frames), n)]
