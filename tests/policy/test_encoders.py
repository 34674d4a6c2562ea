import numpy as np
import pytest
import torch

from roboact.policy.encoders import (EncoderSettings, EncoderUnavailable, FrameObsEncoder, RowSpec, build_encoder,
                                     window_indices)
from roboact.policy.suites import PolicyError


@pytest.fixture
def settings(tiny_clip_backbone):
    return EncoderSettings("hf-clip", tiny_clip_backbone.path)


def test_window_indices_match_the_stream_padding():
    assert window_indices(4, 3).tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert window_indices(7, 3, stride=2).tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 2], [1, 1, 3], [0, 2, 4],
                                                       [1, 3, 5], [2, 4, 6]]


@pytest.mark.parametrize("variant,output,stride", [("full", "fused", 1), ("full", "action", 3),
                                                   ("no_temporal", "fused", 1), ("no_disentangle", "object", 2),
                                                   ("full", "fused+frame", 2)])
def test_offline_episode_embedding_equals_the_closed_loop_stream(tiny_checkpoints, settings, variant, output, stride):
    """What the policy is trained on (embed_episode over a demo) is what it sees at control time (step)."""
    settings.output, settings.stride = output, stride
    enc = build_encoder(RowSpec("x", "roboact", str(tiny_checkpoints[variant])), settings)
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    offline = enc.embed_episode(enc.frame_features(frames))                  # (T, D)
    assert offline.shape == (9, enc.dim)
    enc.reset()
    online = torch.cat([enc.step(f) for f in frames])
    assert torch.allclose(offline, online, atol=1e-5)
    enc.reset()  # a new episode starts from a fresh window
    assert torch.allclose(enc.step(frames[3]), enc.embed_episode(enc.frame_features(frames[3:4])), atol=1e-5)


def test_frame_encoder_and_identities(tiny_checkpoints, settings, tiny_clip_backbone):
    bb_row = build_encoder(RowSpec("bb", "backbone"), settings)
    assert isinstance(bb_row, FrameObsEncoder) and bb_row.dim == tiny_clip_backbone.image_dim
    frames = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    assert torch.allclose(bb_row.embed_episode(bb_row.frame_features(frames))[2], bb_row.step(frames[2])[0], atol=1e-5)
    full = build_encoder(RowSpec("a", "roboact", str(tiny_checkpoints["full"])), settings)
    abl = build_encoder(RowSpec("b", "roboact", str(tiny_checkpoints["no_temporal"])), settings)
    assert full.frame_identity() == abl.frame_identity() == bb_row.frame_identity()  # shared frame cache
    assert full.identity() != abl.identity()


def test_checkpoint_with_another_backbone_is_refused(tiny_checkpoints, tmp_path):
    with pytest.raises(PolicyError, match="trained on backbone 'hf-clip'.*'lite0-minilm'"):
        build_encoder(RowSpec("a", "roboact", str(tiny_checkpoints["full"])), EncoderSettings("lite0-minilm"))
    with pytest.raises(PolicyError, match="not a RoboAct-CLIP checkpoint folder"):
        build_encoder(RowSpec("a", "roboact", str(tmp_path)), EncoderSettings("lite0-minilm"))


def test_baselines_without_weights_are_not_run_rows(tmp_path, monkeypatch):
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    for kind in ("r3m", "mpi", "clip"):
        with pytest.raises(EncoderUnavailable, match="not run: no weights"):
            build_encoder(RowSpec(kind, kind), EncoderSettings())
    (tmp_path / "MPI-small-state_dict.pt").write_bytes(b"x")
    (tmp_path / "MPI-small.json").write_text("{}")
    with pytest.raises(EncoderUnavailable, match="not run: not supported"):
        build_encoder(RowSpec("mpi", "mpi", str(tmp_path)), EncoderSettings())
    with pytest.raises(PolicyError, match="not an MPI checkpoint folder"):
        build_encoder(RowSpec("mpi", "mpi", str(tmp_path / "nothing")), EncoderSettings())


def test_real_clip_row_loads_a_local_clip_folder(tiny_clip_backbone):
    enc = build_encoder(RowSpec("CLIP", "clip", tiny_clip_backbone.path), EncoderSettings())
    assert enc.dim == tiny_clip_backbone.image_dim


def test_row_spec_validation():
    with pytest.raises(PolicyError, match="needs a checkpoint"):
        RowSpec("x", "roboact")
    with pytest.raises(PolicyError, match="kind must be"):
        RowSpec("x", "resnet")
    assert RowSpec("Ablation 1 (no temporal)", "backbone").slug == "ablation-1-no-temporal"


def test_device_is_checked_at_load():
    with pytest.raises(PolicyError, match="device: must be cpu or cuda"):
        EncoderSettings(device="tpu")
    if not torch.cuda.is_available():   # here and in CI: a clear error now, not a torch assertion mid-run
        with pytest.raises(PolicyError, match="sees no CUDA device"):
            EncoderSettings(device="cuda")
    assert EncoderSettings(device="cpu").device == "cpu"


def test_runtime_reaches_the_encoders_and_their_cell_keys(tiny_checkpoints, tiny_clip_backbone):
    """An eager row keeps the identity it had before runtimes existed; any other runtime is in the key."""
    eager = EncoderSettings("hf-clip", tiny_clip_backbone.path, runtime="eager")
    ov = EncoderSettings("hf-clip", tiny_clip_backbone.path, runtime="openvino")
    for spec in (RowSpec("bb", "backbone"), RowSpec("a", "roboact", str(tiny_checkpoints["full"]))):
        e, o = build_encoder(spec, eager), build_encoder(spec, ov)
        assert "runtime" not in e.frame_identity() and o.frame_identity()["runtime"] == "openvino"
        assert e.identity() != o.identity()
        frames = np.random.default_rng(2).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
        assert torch.allclose(e.frame_features(frames), o.frame_features(frames), atol=1e-4)
    with pytest.raises(PolicyError, match="runtime: unknown runtime 'fastest'"):
        EncoderSettings(runtime="fastest")


def test_fused_plus_frame_is_fused_beside_the_current_frame_feature(tiny_checkpoints, tiny_clip_backbone):
    settings = EncoderSettings("hf-clip", tiny_clip_backbone.path, output="fused+frame", stride=2)
    enc = build_encoder(RowSpec("x", "roboact", str(tiny_checkpoints["full"])), settings)
    frames = np.random.default_rng(3).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    feats = enc.frame_features(frames)                                       # (T, d)
    emb = enc.embed_episode(feats)
    d = tiny_clip_backbone.image_dim
    assert enc.dim == enc.enc.cfg.fused_dim + d and emb.shape == (5, enc.dim)
    assert torch.equal(emb[:, -d:], feats)                                   # the tail is frame t's own feature
    fused = build_encoder(RowSpec("x", "roboact", str(tiny_checkpoints["full"])),
                          EncoderSettings("hf-clip", tiny_clip_backbone.path, stride=2))
    assert torch.allclose(emb[:, :-d], fused.embed_episode(feats), atol=1e-6)
    assert enc.identity()["output"] == "fused+frame" and enc.identity() != fused.identity()
    with pytest.raises(PolicyError, match="output must be one of .*fused\\+frame"):
        EncoderSettings(output="tokens")
