"""How well a video matches instructions over time: for every frame t, the RoboAct-CLIP embedding of the
window of the last n frames ending at t (the window a policy sees) against each instruction's embedding.

    judge = Judge(roboact.load("runs/study/models/old_full_s0"))
    res = judge.score_video("clip.mp4", ["the drawer is open", "the drawer is still closed"])
    res.cosine      # (T, K) cosine per frame and text
    res.prob        # (T, K) softmax over the K texts at the model's learned temperature (K >= 2)

    stream = judge.stream(texts)                  # inside a control loop: one new frame per call
    s = stream.step(frame)                        # s.cosine (K,), s.prob (K,) or None

Windows are those of the policy's windowed encoders (roboact.policy.encoders): `stride` control steps
apart, left-padded with the first frame at episode start, one backbone call per streamed frame; the
offline scores are computed from the same windows (`window_indices`), so both agree (tests check it).

A cosine is a similarity, and the softmax a probability only over the texts given: neither says "the task
succeeded" with a known error rate until it is calibrated against labelled episodes (judge/detect.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from roboact.utils.config import check

EMBEDDINGS = ("fused", "action")   # eq. 23's aligned vectors, or the action branch against the action text


class JudgeError(ValueError):
    """Bad input to the judge (texts, frames, options, a checkpoint lacking what is asked); names it."""


def check_texts(texts: Sequence[str] | str, where: str = "texts") -> list[str]:
    """The instructions as a list of clean str, or JudgeError naming the bad one.

    Command-line arguments that are not valid UTF-8 reach Python as str with lone surrogates
    (surrogateescape); they are refused here with the offending bytes shown, rather than being sent to the
    tokenizer as replacement characters and scored as if they were the instruction meant.
    """
    items = [texts] if isinstance(texts, (str, bytes)) else list(texts)
    if not items:
        raise JudgeError(f"{where}: give at least one instruction")
    out = []
    for i, t in enumerate(items):
        label = f"{where}[{i}]" if len(items) > 1 or not isinstance(texts, (str, bytes)) else where
        if isinstance(t, bytes):
            try:
                t = t.decode("utf-8")
            except UnicodeDecodeError as e:
                raise JudgeError(f"{label}: not valid UTF-8 (byte 0x{t[e.start]:02x} at offset {e.start} of "
                                 f"{t!r})") from None
        if not isinstance(t, str):
            raise JudgeError(f"{label}: must be a string, got {type(t).__name__}")
        bad = next((j for j, c in enumerate(t) if 0xD800 <= ord(c) <= 0xDFFF), None)
        if bad is not None:
            raw = t.encode("utf-8", "surrogateescape") if all(
                0xDC80 <= ord(c) <= 0xDCFF for c in t if 0xD800 <= ord(c) <= 0xDFFF) else None
            shown = repr(raw) if raw is not None else repr(t)
            raise JudgeError(f"{label}: not valid UTF-8 (undecodable character at position {bad} of {shown})")
        if not t.strip():
            raise JudgeError(f"{label}: empty instruction ({t!r})")
        out.append(t.strip())
    return out


@dataclass
class JudgeConfig:
    """window: frames per window (None: the checkpoint's n_frames, as in pretraining); stride: control steps
    between the window's frames (a stride > 1 spans a longer stretch, as the policy's `--stride`);
    embedding: "fused" (the eq. 23 video vs text vectors) or "action" (the action branch vs the action text
    MLP); batch: windows run through the heads at once offline."""

    window: int | None = None
    stride: int = 1
    embedding: str = "fused"
    batch: int = 256

    def __post_init__(self) -> None:
        check(self.window is None or self.window >= 2, "window", f"must be >= 2 frames, got {self.window}")
        check(self.stride >= 1, "stride", f"must be >= 1, got {self.stride}")
        check(self.embedding in EMBEDDINGS, "embedding", f"must be one of {EMBEDDINGS}, got {self.embedding!r}")
        check(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")


@dataclass
class StepScores:
    """One streamed step: cosine (K,) per text, prob (K,) softmax over texts (None with one text);
    [B, K] each for a batch of environments."""

    cosine: np.ndarray
    prob: np.ndarray | None


@dataclass
class JudgeResult:
    """Scores of one video: cosine (T, K), prob (T, K) or None with one text, times (T,) in seconds (frame
    index / fps; frame indices when fps is unknown)."""

    texts: list[str]
    cosine: np.ndarray
    prob: np.ndarray | None
    fps: float | None = None
    embedding: str = "fused"
    window: int = 0
    stride: int = 1
    source: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.cosine.shape[0])

    @property
    def times(self) -> np.ndarray:
        t = np.arange(self.num_frames, dtype=np.float64)
        return t / self.fps if self.fps else t

    def score(self, text: int | str = 0) -> np.ndarray:
        """The detector's score of one text per frame: its probability over the texts when there are >= 2,
        else its cosine. (T,)"""
        k = self.texts.index(text) if isinstance(text, str) else int(text)
        return (self.prob if self.prob is not None else self.cosine)[:, k]

    @property
    def score_name(self) -> str:
        return "softmax probability over the texts" if self.prob is not None else "cosine similarity"

    def summary(self, threshold: float | None = None, patience: int = 1) -> list[dict]:
        """Per text: max score and its frame, and the frame where `detect` fires with `threshold`."""
        from roboact.judge.detect import detect

        rows = []
        for k, text in enumerate(self.texts):
            s = self.score(k)
            row = {"text": text, "max": float(s.max()), "frame_of_max": int(s.argmax()),
                   "mean_cosine": float(self.cosine[:, k].mean())}
            if threshold is not None:
                row["first_above"] = detect(s, threshold, patience)
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        return {"texts": self.texts, "source": self.source, "fps": self.fps, "embedding": self.embedding,
                "window": self.window, "stride": self.stride, "score": self.score_name,
                "times": self.times.round(6).tolist(), "cosine": self.cosine.round(6).tolist(),
                "prob": None if self.prob is None else self.prob.round(6).tolist(), **self.meta}

    def save_json(self, path: str | os.PathLike, **extra) -> Path:
        from roboact.utils.io import atomic_write_json

        atomic_write_json(path, {**self.to_dict(), **extra})
        return Path(path)

    def save_plot(self, path: str | os.PathLike, threshold: float | None = None, mark: int | None = None,
                  mark_label: str = "success") -> Path:
        from roboact.judge.plot import plot_scores

        return plot_scores(path, self, threshold=threshold, mark=mark, mark_label=mark_label)


class Judge:
    """A loaded RoboAct-CLIP encoder used to score videos against instructions (see the module doc)."""

    def __init__(self, encoder, config: JudgeConfig | None = None, checkpoint: str | None = None, **kw):
        self.encoder = encoder
        self.checkpoint = checkpoint         # the folder the encoder came from, when known (reports, caches)
        self.config = config or JudgeConfig(**kw)
        self.window = int(self.config.window or encoder.cfg.n_frames)
        self.stride = self.config.stride
        check_embedding(encoder, self.config.embedding)

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "cpu", runtime: str = "default", **kw) -> "Judge":
        from roboact.models.checkpoints import resolve_checkpoint
        from roboact.models.encoder import RoboActEncoder

        folder = resolve_checkpoint(name_or_path)
        enc = RoboActEncoder.from_pretrained(folder, device=device, runtime=runtime)
        return cls(enc, checkpoint=str(folder), **kw)

    @property
    def embedding(self) -> str:
        return self.config.embedding

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str], where: str = "texts") -> dict[str, torch.Tensor]:
        """{embedding: (K, D)} L2-normalised, for every embedding the judge can use."""
        out = self.encoder.encode_text(check_texts(texts, where), normalize=True)
        return {e: out[e].float().cpu() for e in EMBEDDINGS}

    @torch.no_grad()
    def frame_features(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [T, H, W, 3] -> the backbone's per-frame features [T, d] (the costly part; cache it)."""
        return self.encoder.backbone.encode_images(check_frames(frames)).float()

    @torch.no_grad()
    def window_embeddings(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frame features [T, d] -> {embedding: (T, D)}, L2-normalised, the window ending at every frame."""
        from roboact.policy.encoders import window_indices

        idx = window_indices(len(features), self.window, self.stride)              # (T, n)
        b = self.config.batch
        parts = [self.encoder.encode_video(features[idx[i:i + b]], normalize=True)   # (B, n, d) windows
                 for i in range(0, len(idx), b)]
        return {e: torch.cat([p[e] for p in parts]).float().cpu() for e in EMBEDDINGS}

    def score_features(self, features: torch.Tensor, texts: Sequence[str], embedding: str | None = None,
                       text_emb: dict[str, torch.Tensor] | None = None, fps: float | None = None,
                       source: str | None = None) -> JudgeResult:
        """The scores of a video from its frame features (reuse them across texts or embeddings)."""
        return self.score_windows(self.window_embeddings(features), texts, embedding, text_emb, fps, source)

    def score_windows(self, windows: dict[str, torch.Tensor], texts: Sequence[str], embedding: str | None = None,
                      text_emb: dict[str, torch.Tensor] | None = None, fps: float | None = None,
                      source: str | None = None) -> JudgeResult:
        """The scores from `window_embeddings` (computed once, scored for every embedding)."""
        emb = embedding or self.embedding
        check_embedding(self.encoder, emb)
        texts = check_texts(texts)
        t = (text_emb or self.text_embeddings(texts))[emb]                         # (K, D)
        return self._result(texts, windows[emb] @ t.T, emb, fps, source)            # cosine (T, K)

    def score_video(self, frames_or_path: np.ndarray | str | os.PathLike, texts: Sequence[str] | str,
                    fps: float | None = None) -> JudgeResult:
        """Every frame's window against every text. A path is decoded (its fps taken from the header)."""
        texts = check_texts(texts)                                                 # before any decoding
        source = None
        if isinstance(frames_or_path, (str, os.PathLike)):
            from roboact.data.video import read_frames, stream_fps

            source = str(frames_or_path)
            frames = read_frames(source)
            fps = fps or stream_fps(source)
        else:
            frames = frames_or_path
        return self.score_features(self.frame_features(frames), texts, fps=fps, source=source)

    def stream(self, texts: Sequence[str] | str, fps: float | None = None) -> "JudgeStream":
        return JudgeStream(self, check_texts(texts), fps)

    def _result(self, texts, cos: torch.Tensor, emb: str, fps, source) -> JudgeResult:
        prob = softmax_over_texts(cos, self.encoder) if cos.shape[-1] >= 2 else None
        return JudgeResult(texts=list(texts), cosine=cos.numpy(), prob=None if prob is None else prob.numpy(),
                           fps=fps, embedding=emb, window=self.window, stride=self.stride, source=source)


class JudgeStream:
    """Online scoring: `step(frame)` adds one camera frame (or a batch of environments' frames) and returns
    the current window's scores; one backbone call per step. `result()` is every step so far as a
    JudgeResult (one environment)."""

    def __init__(self, judge: Judge, texts: list[str], fps: float | None = None):
        from roboact.policy.encoders import WindowedObsEncoder

        self.judge, self.texts, self.fps = judge, texts, fps
        self._text = judge.text_embeddings(texts)[judge.embedding]                 # (K, D)
        self._windows = WindowedObsEncoder(judge.encoder.backbone, "judge", judge.window, judge.stride)
        self._history: list[np.ndarray] = []

    def reset(self) -> None:
        self._windows.reset()
        self._history = []

    @torch.no_grad()
    def step(self, frame: np.ndarray) -> StepScores:
        single = np.asarray(frame).ndim == 3
        window = self._windows.push_frame(check_frames(frame, batch=not single))   # (B, n, d)
        v = self.judge.encoder.encode_video(window, normalize=True)[self.judge.embedding].float().cpu()
        cos = v @ self._text.T                                                      # (B, K)
        prob = softmax_over_texts(cos, self.judge.encoder) if len(self.texts) >= 2 else None
        if single:
            self._history.append(cos[0].numpy())
        cos_np, prob_np = cos.numpy(), None if prob is None else prob.numpy()
        return StepScores(cos_np[0], None if prob_np is None else prob_np[0]) if single else StepScores(cos_np, prob_np)

    def result(self) -> JudgeResult:
        if not self._history:
            raise JudgeError("no single-environment frames streamed yet")
        return self.judge._result(self.texts, torch.from_numpy(np.stack(self._history)), self.judge.embedding,
                                  self.fps, None)


def softmax_over_texts(cos: torch.Tensor, encoder) -> torch.Tensor:
    """(…, K) cosines -> probabilities over the K texts at the model's learned temperature (eq. 23's logits)."""
    scale = float(encoder.heads.temperature_scale().detach())
    return torch.softmax(scale * cos, dim=-1)


def check_embedding(encoder, embedding: str) -> None:
    """JudgeError when the checkpoint has no such embedding (ablation 2 has no trained action branch)."""
    if embedding not in EMBEDDINGS:
        raise JudgeError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    if embedding == "action" and not encoder.cfg.disentangle:
        raise JudgeError("embedding 'action': this checkpoint has no action branch (trained with "
                         "model.disentangle=false: its 'action' is only a third of the fused vector); "
                         "use embedding 'fused'")


def check_frames(frames, batch: bool = True) -> np.ndarray:
    """uint8 [T, H, W, 3] (or [H, W, 3] with batch=False), or JudgeError naming the shape and dtype."""
    x = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    want = 4 if batch else 3
    if x.dtype != np.uint8 or x.ndim != want or x.shape[-1] != 3 or (batch and len(x) == 0):
        shape = "[T, H, W, 3] with T >= 1" if batch else "[H, W, 3]"
        raise JudgeError(f"frames must be uint8 {shape}, got {x.dtype} {tuple(x.shape)}")
    return x
