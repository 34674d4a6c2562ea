"""`roboact extract`: sampled frames -> frozen features in the cache; rejections, resume, identity, torchrun."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from roboact.backbones import load_backbone
from roboact.backbones.hf_clip import make_tiny_clip
from roboact.data import features as fc
from roboact.data.extract import ExtractConfig, extract
from roboact.data.features import CacheError, FeatureCache
from roboact.data.manifest import ClipRecord, write_manifest
from roboact.data.video import sample_clip, uniform_indices, write_mp4
from roboact.utils.config import ConfigError

GOOD = {"c00": 5, "c01": 12, "c02": 20, "c03": 40, "c04": 16, "c05": 17, "c06": 30, "c07": 8, "short": 3, "wide": 10}
BAD = {"truncated": "cannot open video", "empty": "video file is empty", "missing": "video file not found"}


def moving_bar(t: int, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A bright bar sweeping down a tinted background: every frame differs, and x264 encodes it fast."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = 40 + 20 * seed
    for i in range(t):
        frames[i, (i * 3) % (h - 8):(i * 3) % (h - 8) + 8, :, 1] = 220
    return frames


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def backbone(clip_dir):
    return load_backbone("hf-clip", path=str(clip_dir))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """10 readable clips (one 3-frame, one 48x80) and 3 unusable files, listed interleaved."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for k, (cid, t) in enumerate(GOOD.items()):
        shape = (48, 80) if cid == "wide" else (64, 64)
        write_mp4(root / "videos" / f"{cid}.mp4", moving_bar(t, *shape, seed=k % 5))
        rows.append(ClipRecord(clip_id=cid, path=f"videos/{cid}.mp4", subject="Robot", action="open",
                               object="drawer"))
    data = (root / "videos" / "c03.mp4").read_bytes()
    (root / "videos" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "videos" / "empty.mp4").write_bytes(b"")
    for i, cid in enumerate(BAD):
        rows.insert(2 + 4 * i, ClipRecord(clip_id=cid, path=f"videos/{cid}.mp4", subject="Robot",
                                          action="close", object="door"))
    write_manifest(root / "manifest.jsonl", rows)
    return root / "manifest.jsonl"


def config(manifest, out, **kw) -> ExtractConfig:
    base = dict(manifest=str(manifest), out_dir=str(out), backbone="hf-clip", shard_size=4, batch_size=2,
                num_workers=2, progress=False)
    return ExtractConfig(**{**base, **kw})


def count_encoded(monkeypatch, backbone, fail_on_call: int | None = None) -> list[int]:
    """Patch backbone.encode_images to record frames per call (and optionally crash on one call)."""
    calls: list[int] = []
    real = backbone.encode_images

    def counting(frames):
        calls.append(len(frames))
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise RuntimeError("simulated crash")
        return real(frames)

    monkeypatch.setattr(backbone, "encode_images", counting)
    return calls


@pytest.fixture(scope="module")
def straight(manifest, backbone, tmp_path_factory) -> Path:
    """One uninterrupted run: the reference cache."""
    out = tmp_path_factory.mktemp("straight")
    res = extract(config(manifest, out), backbone=backbone)
    assert res.complete and (res.kept, res.rejected, res.skipped) == (len(GOOD), len(BAD), 0)
    return out


def test_cache_covers_every_kept_clip_with_the_backbones_features(straight, manifest, backbone):
    cache = FeatureCache(straight, "hf-clip")
    assert sorted(cache.clip_ids) == sorted(GOOD)
    assert (cache.n_frames, cache.dim) == (16, backbone.image_dim)
    for cid in ("c03", "short", "wide"):
        direct = backbone.encode_images(sample_clip(manifest.parent / "videos" / f"{cid}.mp4", 16))
        torch.testing.assert_close(cache.get(cid), direct, atol=2e-3, rtol=2e-3)  # float16 storage
        assert cache.num_frames(cid) == GOOD[cid]
    assert cache.frame_indices("short").tolist() == uniform_indices(3, 16).tolist()
    assert cache.verify() >= 3


def test_unreadable_videos_become_rejection_rows_with_reasons(straight):
    rejections = {r["clip_id"]: r for r in FeatureCache(straight, "hf-clip").rejections()}
    assert sorted(rejections) == sorted(BAD)
    for cid, reason in BAD.items():
        assert reason in rejections[cid]["reason"] and rejections[cid]["path"].endswith(f"{cid}.mp4")


@pytest.mark.timeout(90)
def test_workers_do_not_hang_after_the_parent_decoded(tmp_path, backbone):
    """PyAV >= 19 caches a per-thread swscale context with slice threads; a forked worker inherits it without the
    threads and hangs the first time it rescales a frame of another size. Workers are spawned, so this finishes."""
    from roboact.data.video import read_frames

    write_mp4(tmp_path / "videos" / "square.mp4", moving_bar(6, 64, 64))
    write_mp4(tmp_path / "videos" / "wide.mp4", moving_bar(6, 48, 80))
    read_frames(tmp_path / "videos" / "square.mp4")               # the parent rescales 64x64 frames first
    write_manifest(tmp_path / "m.jsonl", [ClipRecord(clip_id="wide", path="videos/wide.mp4", subject="Robot",
                                                     action="open", object="drawer")])
    assert extract(config(tmp_path / "m.jsonl", tmp_path / "out"), backbone=backbone).complete


def test_interrupted_run_resumes_without_redoing_finished_shards(manifest, backbone, straight, tmp_path,
                                                                 monkeypatch):
    out = tmp_path / "resumed"
    first = extract(config(manifest, out, max_shards=1), backbone=backbone)        # stops after one shard
    assert not first.complete and first.new_shards == 1
    count_encoded(monkeypatch, backbone, fail_on_call=3)
    with pytest.raises(RuntimeError, match="simulated crash"):                      # dies in its 2nd shard
        extract(config(manifest, out), backbone=backbone)
    folder = fc.cache_dir(out, "hf-clip")
    finished = fc.finished_shards(folder)
    assert len(finished) == 2
    assert not [p for p in fc.shards_dir(folder).iterdir() if p.name.startswith(".")]  # no half-written file
    calls = count_encoded(monkeypatch, backbone)
    res = extract(config(manifest, out), backbone=backbone)
    assert res.complete and res.skipped == 8 and res.kept + res.rejected == len(GOOD) + len(BAD) - 8
    kept_before = sum(len(r.clip_ids) for r in finished)
    assert sum(calls) == 16 * (len(GOOD) - kept_before)                              # finished shards not redone
    ref, got = FeatureCache(straight, "hf-clip", dtype=None), FeatureCache(out, "hf-clip", dtype=None)
    assert sorted(got.clip_ids) == sorted(ref.clip_ids)
    for cid in ref.clip_ids:
        assert torch.equal(got.get(cid), ref.get(cid)), cid
    calls.clear()
    again = extract(config(manifest, out), backbone=backbone)                      # nothing left to do
    assert again.complete and again.kept == 0 and calls == []


def test_other_sampling_in_same_cache_is_refused(manifest, backbone, straight):
    with pytest.raises(CacheError, match="n_frames: cache has 16, this run has 8"):
        extract(config(manifest, straight, n_frames=8), backbone=backbone)


def test_config_names_the_bad_field(manifest, tmp_path):
    with pytest.raises(ConfigError, match="shard_size"):
        config(manifest, tmp_path, shard_size=0)
    with pytest.raises(ConfigError, match="device"):
        config(manifest, tmp_path, device="tpu")
    if not torch.cuda.is_available():  # --device cuda where there is none: stopped at load, saying why
        with pytest.raises(ConfigError, match="device.*sees no CUDA device"):
            config(manifest, tmp_path, device="cuda")


def test_cli_extract_and_verify(manifest, clip_dir, tmp_path, capsys):
    from roboact.cli import main

    rc = main(["extract", "--manifest", str(manifest), "--out", str(tmp_path), "--backbone", "hf-clip",
               "--backbone-path", str(clip_dir), "--num-workers", "0", "--shard-size", "5", "--verify",
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and f"{len(GOOD)} clips cached" in out and "verified 3 shard(s)" in out
    saved = fc.cache_dir(tmp_path, "hf-clip") / "extract_config.json"   # the effective config, reloadable
    rc = main(["extract", "--config", str(saved), "--no-progress"])   # a rerun from it: nothing left to do
    assert rc == 0 and f"(0 new, {len(GOOD) + len(BAD)} from earlier runs)" in capsys.readouterr().out


def test_cli_config_file_set_and_flags_reach_the_config(tmp_path, capsys):
    import json

    from roboact.cli import build_parser, main
    from roboact.data.extract_cli import extract_config

    path = tmp_path / "extract.json"
    path.write_text(json.dumps({"manifest": "m.jsonl", "out_dir": "cache", "n_frames": 8, "shard_size": 64}))
    args = build_parser().parse_args(["extract", "--config", str(path), "--set", "n_frames=4", "batch_size=2",
                                      "--batch-size", "3", "--out", "other"])
    cfg = extract_config(args)
    assert (cfg.manifest, cfg.out_dir, cfg.n_frames, cfg.shard_size, cfg.batch_size, cfg.device) == \
        ("m.jsonl", "other", 4, 64, 3, "auto")
    out = tmp_path / "never"
    assert main(["extract", "--manifest", "m.jsonl", "--out", str(out), "--set", "nframes=4"]) == 2
    err = capsys.readouterr().err
    assert "nframes: unknown config field for ExtractConfig" in err and "n_frames" in err
    assert main(["extract", "--manifest", "m.jsonl", "--out", str(out), "--set", "n_frames=1"]) == 2
    assert "n_frames: must be >= 2" in capsys.readouterr().err
    assert not out.exists()


def test_torchrun_two_ranks_split_clips_and_merge_one_index(manifest, clip_dir, straight, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m",
           "roboact.cli", "extract", "--manifest", str(manifest), "--out", str(tmp_path), "--backbone", "hf-clip",
           "--backbone-path", str(clip_dir), "--num-workers", "0", "--shard-size", "2", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = fc.cache_dir(tmp_path, "hf-clip")
    assert {p.name[:4] for p in fc.shards_dir(folder).glob("*.safetensors")} == {"r000", "r001"}
    got, ref = FeatureCache(tmp_path, "hf-clip"), FeatureCache(straight, "hf-clip")
    assert sorted(got.clip_ids) == sorted(GOOD) and len(got.rejections()) == len(BAD)
    for cid in GOOD:
        torch.testing.assert_close(got.get(cid), ref.get(cid), atol=2e-3, rtol=2e-3)


def test_frame_range_limits_sampling_and_bad_ranges_are_rejected(tmp_path):
    """Curated human clips carry extra.frame_range = [start, stop): sampling stays inside it."""
    import numpy as np

    from roboact.data.extract import ClipFrames
    from roboact.data.video import write_mp4

    frames = np.zeros((30, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(30, dtype=np.uint8)[:, None, None] * 8   # frame index in the red channel
    path = tmp_path / "v.mp4"
    write_mp4(path, frames, fps=10, crf=0)
    ds = ClipFrames([("a", str(path), [10, 20]), ("b", str(path), [25, 5]), ("c", str(path), None)], n=4)
    a, b, c = ds[0], ds[1], ds[2]
    assert a["error"] is None and a["indices"].tolist() == [10, 13, 16, 19]
    assert b["error"] is not None and "frame_range" in b["error"]
    assert c["indices"].tolist() == [0, 10, 19, 29]


def test_runtime_is_part_of_the_cache_identity(manifest, clip_dir, straight, tmp_path):
    """Features from two runtimes are never mixed in one cache; an eager cache keeps its old identity."""
    from roboact.backbones.runtime import EXACT_ATOL

    default = FeatureCache(straight, "hf-clip")                    # the fixture's backbone: runtime 'default'
    assert default.identity["runtime"] == "openvino"
    out = tmp_path / "eager"
    assert extract(config(manifest, out, num_workers=0, backbone_path=str(clip_dir), runtime="eager")).complete
    eager = FeatureCache(out, "hf-clip")
    assert "runtime" not in eager.identity                           # as before runtimes existed
    for cid in ("c03", "short", "wide"):
        assert (eager.get(cid) - default.get(cid)).abs().max() <= EXACT_ATOL + 2e-3   # float16 storage
    with pytest.raises(CacheError, match="runtime: cache has None, this run has 'openvino'"):
        extract(config(manifest, out, num_workers=0, backbone_path=str(clip_dir), runtime="openvino"))
    with pytest.raises(ConfigError, match="runtime.*must be one of default, eager"):
        config(manifest, tmp_path, runtime="fast")


SLOW_ENCODE = """
import time
import roboact.data.extract as ex
_encode = ex.encode_batch
def slow(backbone, items):
    time.sleep(0.4)
    return _encode(backbone, items)
ex.encode_batch = slow
from roboact.cli import main
if __name__ == "__main__":  # decoding workers are spawned: they import this file, and must not rerun it
    sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_stops_torchrun_ranks_and_decoders_and_the_rerun_completes(manifest, clip_dir, backbone, straight,
                                                                          tmp_path):
    """SIGTERM to torchrun mid-run: it passes the signal to both ranks, which stop with their decoding
    workers; finished shards stay, no half file, and a rerun fills the cache (here in one process, which a
    cache allows, to save a torchrun start-up)."""
    from tests.preempt import Command, temp_files

    script = tmp_path / "slow_extract.py"
    script.write_text("import sys\n" + SLOW_ENCODE)
    argv = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(script), "extract",
            "--manifest", str(manifest), "--out", str(tmp_path / "cache"), "--backbone", "hf-clip",
            "--backbone-path", str(clip_dir), "--num-workers", "1", "--batch-size", "1", "--shard-size", "1",
            "--no-progress"]
    folder = fc.cache_dir(tmp_path / "cache", "hf-clip")
    with Command(argv, tmp_path / "sigterm.log", python=True) as run:
        run.wait_for(lambda: len(fc.finished_shards(folder)) >= 2 if folder.is_dir() else False)
        run.stop(workers=4, exit_within=30)   # 2 ranks + their decoding workers
    assert run.text().count("stopped by SIGTERM; finished: ") == 2 and "(exit status 143)" in run.text()
    done = {c for r in fc.finished_shards(folder) for c in r.clip_ids}
    assert 0 < len(done) < len(GOOD) and not temp_files(tmp_path / "cache")
    res = extract(config(manifest, tmp_path / "cache"), backbone=backbone)
    assert res.complete and res.skipped == len(done) + len(BAD) - res.rejected
    got, ref = FeatureCache(tmp_path / "cache", "hf-clip"), FeatureCache(straight, "hf-clip")
    assert sorted(got.clip_ids) == sorted(GOOD) and len(got.rejections()) == len(BAD)
    for cid in GOOD:
        torch.testing.assert_close(got.get(cid), ref.get(cid), atol=2e-3, rtol=2e-3)
