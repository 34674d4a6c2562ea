
import numpy as np
import pytest
import torch

from roboact.policy.data import DemoFeatureCache, load_demo_set, open_demos
from roboact.policy.encoders import EncoderSettings, RowSpec, build_encoder
from roboact.policy.suites import PolicyError, get_bench_suite

from .conftest import write_metaworld_demos

pytest.importorskip("h5py")
MW = get_bench_suite("metaworld")
TASK = "plate-slide-v3"


@pytest.fixture
def encoders(tiny_checkpoints, tiny_clip_backbone):
    s = EncoderSettings("hf-clip", tiny_clip_backbone.path)
    return {k: build_encoder(RowSpec(k, "roboact", str(p)), s) for k, p in tiny_checkpoints.items()}


def count_frames(enc, monkeypatch) -> list:
    calls, real = [], enc.enc.backbone.encode_images
    monkeypatch.setattr(enc.enc.backbone, "encode_images", lambda x: calls.append(len(x)) or real(x))
    return calls


def test_demo_set_shapes_and_clipped_actions(demos_dir, encoders, tmp_path):
    src = open_demos(MW, TASK, demos_dir, 2, eval_episodes=5)
    data = load_demo_set(encoders["full"], src, MW, DemoFeatureCache(tmp_path / "cache"))
    assert len(data) == 24 and data.embeddings.shape == (24, encoders["full"].dim)
    assert data.proprio.shape == (24, 4) and data.actions.shape == (24, 4)
    assert data.actions.abs().max() <= 1.0  # what the env executes
    assert data.episode.tolist() == [0] * 12 + [1] * 12


def test_features_are_computed_once_and_shared_across_checkpoints(demos_dir, encoders, tmp_path, monkeypatch):
    cache = DemoFeatureCache(tmp_path / "cache")
    src = open_demos(MW, TASK, demos_dir, 3, eval_episodes=5)
    calls = count_frames(encoders["full"], monkeypatch)  # the backbone is shared by every checkpoint
    first = load_demo_set(encoders["full"], src, MW, cache)
    assert sum(calls) == 36                               # 3 demos x 12 frames, once
    again = load_demo_set(encoders["full"], src, MW, cache)
    other = load_demo_set(encoders["no_temporal"], src, MW, cache)
    assert sum(calls) == 36                               # embeddings and frame features both cached
    assert torch.equal(first.embeddings, again.embeddings)
    assert not torch.allclose(first.embeddings, other.embeddings)
    assert len(list((tmp_path / "cache" / "frames").rglob("*.safetensors"))) == 1
    assert len(list((tmp_path / "cache" / "embed").rglob("*.safetensors"))) == 2


def test_a_rewritten_demo_file_is_re_encoded_and_a_corrupt_cache_recomputed(demos_dir, encoders, tmp_path,
                                                                           monkeypatch):
    cache = DemoFeatureCache(tmp_path / "cache")
    calls = count_frames(encoders["full"], monkeypatch)
    load_demo_set(encoders["full"], open_demos(MW, TASK, demos_dir, 2, 5), MW, cache)
    write_metaworld_demos(demos_dir / "metaworld" / f"{TASK}_demo.hdf5", seed0=7)   # new content, new sha
    load_demo_set(encoders["full"], open_demos(MW, TASK, demos_dir, 2, 5), MW, cache)
    assert sum(calls) == 48
    for f in (tmp_path / "cache").rglob("*.safetensors"):
        f.write_bytes(b"garbage")
    data = load_demo_set(encoders["full"], open_demos(MW, TASK, demos_dir, 2, 5), MW, cache)
    assert sum(calls) == 72 and torch.isfinite(data.embeddings).all()


def test_missing_short_truncated_and_colliding_demos_are_clear_errors(demos_dir, tmp_path):
    from roboact.sim.demos import DemoError

    with pytest.raises(PolicyError, match="no demonstrations for metaworld/drawer-open-v3.*roboact demos"):
        open_demos(MW, "drawer-open-v3", demos_dir, 2, 5)
    with pytest.raises(PolicyError, match="holds 3 demos, the benchmark needs 50"):
        open_demos(MW, TASK, demos_dir, 50, 5)
    bad = tmp_path / "bad" / "metaworld" / f"{TASK}_demo.hdf5"
    bad.parent.mkdir(parents=True)
    good = demos_dir / "metaworld" / f"{TASK}_demo.hdf5"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DemoError, match=f"{bad.name}.*truncated or corrupt"):
        open_demos(MW, TASK, tmp_path / "bad", 2, 5)
    write_metaworld_demos(bad, seed0=100_003)
    with pytest.raises(PolicyError, match="seeds \\[100003.*evaluation rollouts"):
        open_demos(MW, TASK, tmp_path / "bad", 2, 5)


def test_demo_without_the_policy_camera_is_refused(tmp_path):
    from roboact.sim.demos import Episode, write_demos

    t = 4
    ep = Episode(actions=np.zeros((t, 4)), states=np.zeros((t, 3)), rewards=np.zeros(t), dones=np.zeros(t),
                 obs={"topview_rgb": np.zeros((t, 16, 16, 3), np.uint8), "ee_pos": np.zeros((t, 3)),
                      "gripper_states": np.zeros((t, 1))})
    write_demos(tmp_path / "metaworld" / f"{TASK}_demo.hdf5", [ep], {})
    with pytest.raises(PolicyError, match="no 'corner_rgb' \\(has .*topview_rgb"):
        open_demos(MW, TASK, tmp_path, 1, 5)


def test_token_demo_sets_give_each_step_what_the_encoder_gives(demos_dir, tiny_checkpoints, tiny_clip_backbone,
                                                               tmp_path):
    """RoboAct tokens come from the embed cache, the backbone's are gathered from the frame cache on the fly;
    either way step t of demo k is embed_episode(frame features of demo k)[t] (the closed-loop input)."""
    from roboact.policy.data import read_fields

    settings = EncoderSettings("hf-clip", tiny_clip_backbone.path, output="tokens", window=4, stride=2)
    cache = DemoFeatureCache(tmp_path / "cache")
    src = open_demos(MW, TASK, demos_dir, 2, eval_episodes=5)
    rows = {"roboact": RowSpec("r", "roboact", str(tiny_checkpoints["full"])),
            "backbone": RowSpec("b", "backbone", output="tokens")}
    for kind, spec in rows.items():
        enc = build_encoder(spec, settings)
        data = load_demo_set(enc, src, MW, cache)
        assert data.input_shape == enc.token_shape and (data.windows is None) == (kind == "roboact")
        for k, key in enumerate(src.keys):
            frames = read_fields(src, key, [f"obs/{MW.image_key}"])[f"obs/{MW.image_key}"]
            want = enc.embed_episode(enc.frame_features(frames))                 # (12, n, w)
            got = data.inputs(torch.arange(12 * k, 12 * (k + 1)))                 # windows never cross demos
            assert torch.allclose(got, want, atol=1e-5)
    embeds = list((tmp_path / "cache" / "embed").rglob("*.safetensors"))
    assert len(embeds) == 1                                  # the RoboAct tokens; nothing more for the backbone
