"""Video files in and out (PyAV, which ships its own libx264) and the paper's uniform frame sampling.

Decoding is the one place where a bad file shows up, so every failure here is a `VideoError` naming the
file; callers turn it into a rejection row and carry on with the rest of the dataset.
"""
from __future__ import annotations

import os
import sys
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
    frames = np.asarray(frames)
    if len(frames) == 0:
        raise VideoError(f"{path}: no frames to write")
    with Mp4Writer(path, fps=fps, crf=crf) as w:
        w.add(frames)


class Mp4Writer:
    """An H.264 mp4 written frame batch by frame batch, so a long video never sits in memory; atomic (the
    file appears only when the `with` block ends without error).

    `gop` sets the key-frame interval: small values (LeRobot writes 2) make seeking to any frame cheap at
    some cost in size. B-frames are off, so every frame's presentation time is its index / fps and a
    reader can find a frame by its timestamp.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 20.0, crf: int = 20, gop: int | None = None):
        self.path, self.fps, self.crf, self.gop = Path(path), fps, crf, gop
        self.num_frames = 0
        self._size: tuple[int, int] | None = None   # (H, W) of the first frame; every frame must match

    def __enter__(self) -> "Mp4Writer":
        import av

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(tmp), mode="w", format="mp4")
        except BaseException:
            self._atomic.__exit__(*sys.exc_info())
            raise
        self._stream = None
        return self

    def add(self, frames: np.ndarray) -> None:
        """Append uint8 frames [T, H, W, 3] (or one [H, W, 3])."""
        import av

        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise VideoError(f"{self.path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
        h, w = frames.shape[1:3]
        if self._size is None:
            self._open_stream(h, w)
        elif self._size != (h, w):
            raise VideoError(f"{self.path}: frame size {h}x{w} differs from the video's {self._size[0]}x{self._size[1]}")
        ph, pw = self._stream.height, self._stream.width
        if (ph, pw) != (h, w):
            frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        for fr in frames:
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            vf.pts = self.num_frames
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
            self.num_frames += 1

    def _open_stream(self, h: int, w: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1000)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = w + (w % 2), h + (h % 2)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / rate
        options = {"crf": str(self.crf), "preset": "veryfast", "bf": "0"}
        if self.gop:
            options["g"] = str(self.gop)
        stream.options = options
        self._stream, self._size = stream, (h, w)

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                if self._stream is None:
                    raise VideoError(f"{self.path}: no frames to write")
                for packet in self._stream.encode():
                    self._container.mux(packet)
        except BaseException:
            self._container.close()
            self._atomic.__exit__(*sys.exc_info())
            raise
        self._container.close()
        self._atomic.__exit__(*exc)


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


def _video_stream(container, path):
    """The container's first video stream, or VideoError naming the file."""
    if not container.streams.video:
        raise VideoError(f"{path}: no video stream")
    return container.streams.video[0]


def _fps(stream, path=None) -> float:
    """The stream's frame rate from its header; with `path`, a VideoError naming it when there is none."""
    fps = float(stream.average_rate or stream.guessed_rate or 0.0)
    if path is not None and fps <= 0:
        raise VideoError(f"{path}: the video stream has no frame rate")
    return fps


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
        stream = _video_stream(container, path)
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


def read_frames_at(path: str | os.PathLike, times: np.ndarray) -> np.ndarray:
    """The frames shown at `times` (seconds on the video's clock, any order, repeats ok): uint8 [n, H, W, 3].

    Seeks to the key frame before the earliest time and decodes only up to the latest, so a clip that is a
    short stretch of a long video (a LeRobot v3.0 file holds many episodes) costs that stretch, not the
    file. The frame "at" t is the one whose presentation time is within half a frame period of t, as
    LeRobot's own loader matches them (it allows 1e-4 s; half a period also absorbs rounding in a
    float32 timestamp column). A time with no such frame is a VideoError naming the file and the time.
    """
    import bisect

    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        raise ValueError("times must not be empty")
    wanted = sorted(set(float(t) for t in times))
    found: dict[float, np.ndarray] = {}
    container = _open(path)
    last_time = None
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        tol = 0.5 / _fps(stream, path)
        try:
            container.seek(max(int((wanted[0] - tol) / stream.time_base), 0), stream=stream, backward=True,
                           any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                last_time = t
                if t > wanted[-1] + tol:
                    break
                lo = bisect.bisect_left(wanted, t - tol)
                hi = bisect.bisect_right(wanted, t + tol)
                if lo < hi:
                    img = frame.to_ndarray(format="rgb24")
                    for w in wanted[lo:hi]:
                        if w not in found or abs(t - w) < found[w][0]:
                            found[w] = (abs(t - w), img)
        except VideoError:
            raise
        except Exception as e:
            raise VideoError(f"{path}: decoding failed near {wanted[0]:.3f} s ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    missing = [w for w in wanted if w not in found]
    if missing:
        end = "no frame decoded" if last_time is None else f"last frame decoded at {last_time:.3f} s"
        raise VideoError(f"{path}: no frame at {missing[0]:.3f} s ({end})")
    return np.stack([found[float(t)][1] for t in times])


def count_frames(path: str | os.PathLike) -> tuple[int, float]:
    """(number of decodable frames, fps). Counts by demuxing packets: cheap, and robust to bad headers."""
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        fps = _fps(stream)
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


def stream_fps(path: str | os.PathLike) -> float:
    """The frame rate in the video's header (no demuxing): what a clip's timestamps are counted in."""
    container = _open(path)
    try:
        return _fps(_video_stream(container, path), path)
    finally:
        container.close()


def sample_clip(path: str | os.PathLike, n: int = 16) -> np.ndarray:
    """The paper's input: n uniformly sampled frames, uint8 [n, H, W, 3]. Decodes the whole file once."""
    frames = read_frames(path)
    return frames[uniform_indices(len(frames), n)]
