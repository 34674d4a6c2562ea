"""The feature-cache format: shards + sidecars -> index, reading API, checksums, identity, debris cleanup."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from roboact.data import features as fc
from roboact.data.features import CacheError, FeatureCache

N, D = 4, 6


def fake_backbone(name="fake", n_dim=D):
    return SimpleNamespace(spec=lambda: {"name": name}, image_dim=n_dim, image_size=32,
                           image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5))


def make_cache(root, rows_per_shard=(3, 2), rejected_only_shard=True):
    """A cache written through the same primitives extract uses; returns (folder, {clip_id: features})."""
    identity = fc.cache_identity(fake_backbone(), N)
    folder = fc.cache_dir(root, "fake")
    fc.claim_identity(folder, identity)
    h = fc.identity_hash(identity)
    truth, k = {}, 0
    for s, rows in enumerate(rows_per_shard):
        ids = [f"clip{k + i}" for i in range(rows)]
        feats = torch.randn(rows, N, D) * 10                                    # (R, n, d)
        idx = torch.arange(N).repeat(rows, 1) + s                               # (R, n)
        rej = [{"clip_id": f"bad{s}", "path": f"v/bad{s}.mp4", "reason": "video file is empty"}]
        fc.write_shard(folder, f"r000-{s:05d}", ids, feats, idx, torch.full((rows,), 10 + s), rej, h)
        truth.update({c: f for c, f in zip(ids, feats)})
        k += rows
    if rejected_only_shard:
        rej = [{"clip_id": "bad9", "path": "v/bad9.mp4", "reason": "video file not found"}]
        fc.write_shard(folder, "r001-00000", [], torch.zeros(0, N, D), torch.zeros(0, N, dtype=torch.int64),
                       torch.zeros(0, dtype=torch.int64), rej, h)
    fc.build_index(folder, "manifest.jsonl")
    return folder, truth


def test_round_trip_float16_storage_float32_reads(tmp_path):
    folder, truth = make_cache(tmp_path)
    cache = FeatureCache(tmp_path, "fake")
    assert sorted(cache.clip_ids) == sorted(truth) and len(cache) == 5
    assert (cache.dim, cache.n_frames) == (D, N)
    for cid, want in truth.items():
        got = cache.get(cid)
        assert got.dtype == torch.float32 and got.shape == (N, D)
        assert torch.equal(got, want.half().float())
    assert FeatureCache(tmp_path, "fake", dtype=None).get("clip0").dtype == torch.float16
    assert cache.get_many(["clip4", "clip0"]).shape == (2, N, D)
    assert cache.frame_indices("clip4").tolist() == [1, 2, 3, 4]  # second shard was offset by 1
    assert cache.num_frames("clip4") == 11
    assert sorted(r["clip_id"] for r in cache.rejections()) == ["bad0", "bad1", "bad9"]
    assert not (fc.shards_dir(folder) / "r001-00000.safetensors").exists()  # all-rejected shard: sidecar only


def test_unknown_clip_error_points_at_rejections(tmp_path):
    make_cache(tmp_path)
    with pytest.raises(KeyError, match="rejections.jsonl"):
        FeatureCache(tmp_path, "fake").get("bad0")


def test_verify_detects_corruption_and_missing_shards(tmp_path):
    folder, _ = make_cache(tmp_path)
    assert FeatureCache(tmp_path, "fake").verify() == 2
    shard = fc.shards_dir(folder) / "r000-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    (fc.shards_dir(folder) / "r000-00000.safetensors").unlink()
    with pytest.raises(CacheError) as e:
        FeatureCache(tmp_path, "fake").verify()
    assert "r000-00001: sha256 mismatch" in str(e.value) and "r000-00000: file missing" in str(e.value)


def test_identity_mismatch_is_refused_with_the_differing_field(tmp_path):
    folder, _ = make_cache(tmp_path)
    with pytest.raises(CacheError, match="n_frames: cache has 4, this run has 8"):
        fc.claim_identity(folder, fc.cache_identity(fake_backbone(), 8))
    fc.claim_identity(folder, fc.cache_identity(fake_backbone(), N))  # same settings: fine


def test_remove_unfinished_keeps_finished_shards(tmp_path):
    folder, _ = make_cache(tmp_path)
    sd = fc.shards_dir(folder)
    (sd / "r000-00002.safetensors").write_bytes(b"orphan: shard written, crash before its sidecar")
    (sd / ".r000-00003.safetensors.abc.tmp.safetensors").write_bytes(b"half-written")
    assert fc.next_shard_number(folder, 0) == 2 and fc.next_shard_number(folder, 1) == 1
    assert sorted(fc.remove_unfinished(folder)) == [".r000-00003.safetensors.abc.tmp.safetensors",
                                                    "r000-00002.safetensors"]
    assert len(fc.finished_shards(folder)) == 3
    assert fc.done_clip_ids(folder) == {f"clip{i}" for i in range(5)} | {"bad0", "bad1", "bad9"}


def test_build_index_prefers_kept_over_rejected_and_refuses_duplicates(tmp_path):
    folder, _ = make_cache(tmp_path, rows_per_shard=(2,), rejected_only_shard=False)
    h = fc.identity_hash(json.loads((folder / "identity.json").read_text()))
    retry = (torch.ones(1, N, D), torch.zeros(1, N, dtype=torch.int64), torch.tensor([5]))
    fc.write_shard(folder, "r000-00001", ["bad0"], *retry, [], h)  # a fixed file, extracted later
    index = fc.build_index(folder)
    assert "bad0" in index["clips"] and index["num_rejected"] == 0
    fc.write_shard(folder, "r000-00002", ["clip0"], *retry, [], h)
    with pytest.raises(CacheError, match="clip 'clip0' is in shards r000-00000 and r000-00002"):
        fc.build_index(folder)


def test_missing_or_wrong_cache_errors_name_what_exists(tmp_path):
    make_cache(tmp_path)
    with pytest.raises(CacheError, match=r"no feature cache index \(caches under .*: fake\)"):
        FeatureCache(tmp_path, "lite0-minilm")
    assert len(FeatureCache(fc.cache_dir(tmp_path, "fake"))) == 5  # the folder itself also works
