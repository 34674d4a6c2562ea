import numpy as np
import pytest
import torch

from roboact.models import RoboActCLIP
from roboact.models.encoder import RoboActEncoder
from roboact.models.streaming import window_from_scratch

from .conftest import small_config


@pytest.fixture
def encoder(tiny_clip_backbone):
    torch.manual_seed(0)
    bb = tiny_clip_backbone
    cfg = small_config(backbone="hf-clip", backbone_path=bb.path, image_dim=bb.image_dim, text_dim=bb.text_dim,
                       n_frames=8)
    return RoboActEncoder(RoboActCLIP(cfg), bb).eval()


def test_stream_matches_window_from_scratch(encoder):
    frames = np.random.default_rng(0).integers(0, 255, (13, 32, 32, 3), dtype=np.uint8)
    stream = encoder.stream()
    for t in range(len(frames)):
        got = stream.step(frames[t])["fused"]
        ref = window_from_scratch(encoder, frames[: t + 1], 8)
        assert torch.allclose(got, ref, atol=1e-5), t


def test_policy_step_is_the_policy_input_of_the_window_so_far(encoder):
    frames = np.random.default_rng(3).integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    stream = encoder.stream()
    with pytest.raises(ValueError, match="output must be one of"):
        stream.policy_step(frames[0], output="frame")
    assert stream.window is None                                             # a refused step adds no frame
    for t in range(len(frames)):
        got = stream.policy_step(frames[t])                                  # fused+frame
        ref = encoder.encode_for_policy(stream.window, "fused+frame")
        assert torch.equal(got, ref)
        assert torch.allclose(got[:, :encoder.cfg.fused_dim], window_from_scratch(encoder, frames[: t + 1], 8),
                              atol=1e-5), t
        assert torch.allclose(got[:, encoder.cfg.fused_dim:], encoder.backbone.encode_images(frames[t:t + 1]),
                              atol=1e-6), t


def test_stream_counts_one_backbone_frame_per_step(encoder, monkeypatch):
    calls = []
    real = encoder.backbone.encode_images
    monkeypatch.setattr(encoder.backbone, "encode_images", lambda x: calls.append(len(x)) or real(x))
    stream = encoder.stream()
    for f in np.zeros((5, 32, 32, 3), np.uint8):
        stream.step(f)
    assert calls == [1] * 5


def test_stream_batch_of_envs_and_reset(encoder):
    frames = np.random.default_rng(1).integers(0, 255, (3, 2, 32, 32, 3), dtype=np.uint8)  # (T, envs, H, W, 3)
    stream = encoder.stream()
    for t in range(3):
        out = stream.step(frames[t])
    assert out["fused"].shape[0] == 2
    with pytest.raises(ValueError, match="reset"):
        stream.step(frames[0, :1])
    stream.reset()
    assert stream.step(frames[0, :1])["action"].shape[0] == 1
    # the episode start is padded with the first frame: all differences are zero
    assert torch.equal(stream.window[0, 0], stream.window[0, -1])


def test_keep_drops_ended_envs_and_the_rest_match_their_own_streams(encoder):
    frames = np.random.default_rng(2).integers(0, 255, (6, 3, 32, 32, 3), dtype=np.uint8)  # (T, envs, H, W, 3)
    batched, singles = encoder.stream(), [encoder.stream() for _ in range(3)]
    alive = [0, 1, 2]
    for t in range(6):
        if t == 3:
            alive = [0, 2]
            batched.keep([0, 2])  # env 1's episode ended
        got = batched.step(frames[t, alive])["fused"]
        for row, env in enumerate(alive):
            ref = singles[env].step(frames[t, env])["fused"]
            assert torch.allclose(got[row], ref[0], atol=1e-5), (t, env)
    fresh = encoder.stream()
    fresh.keep([0])  # nothing to drop before the first frame
    assert fresh.window is None
