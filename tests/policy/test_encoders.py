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
    with pytest.raises(PolicyError, match="output must be one of .*fused\\+frame.*tokens"):
        EncoderSettings(output="token")


@pytest.mark.parametrize("stride", [1, 2])
def test_roboact_tokens_offline_equal_the_closed_loop_stream(tiny_checkpoints, settings, stride):
    """The Temporal Diff-Transformer's states as trained on (embed_episode) are those the policy gets online."""
    settings.output, settings.stride = "tokens", stride
    enc = build_encoder(RowSpec("x", "roboact", str(tiny_checkpoints["full"])), settings)
    cfg = enc.enc.cfg
    assert enc.token_shape == (cfg.n_frames - 1, cfg.temporal_width) and enc.dim == cfg.temporal_width
    frames = np.random.default_rng(4).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    offline = enc.embed_episode(enc.frame_features(frames))                  # (T, n-1, W)
    assert offline.shape == (9, *enc.token_shape)
    enc.reset()
    online = torch.cat([enc.step(f) for f in frames])
    assert torch.allclose(offline, online, atol=1e-5)
    # the last token is the summary the fused output is built from (eq. 6), so nothing new is computed
    fusion = enc.enc.heads.fusion
    windows = enc.frame_features(frames)[window_indices(9, cfg.n_frames, stride)]
    assert torch.allclose(offline[:, -1], fusion.temporal(fusion.input_norm(windows)), atol=1e-6)
    assert enc.identity()["output"] == "tokens"


def test_encode_tokens_ends_with_the_summary_the_fused_output_is_built_from(tiny_checkpoints, tiny_clip_backbone):
    enc = build_encoder(RowSpec("x", "roboact", str(tiny_checkpoints["full"])),
                        EncoderSettings("hf-clip", tiny_clip_backbone.path)).enc
    feats = torch.randn(3, enc.cfg.n_frames, tiny_clip_backbone.image_dim)
    tokens = enc.encode_tokens(feats)
    assert tokens.shape == (3, enc.cfg.n_frames - 1, enc.cfg.temporal_width)
    assert torch.allclose(tokens[:, -1], enc.heads.fusion.parts(feats)[0][0], atol=1e-6)  # Tem of eq. 8
    assert not torch.allclose(tokens[:, 0], tokens[:, -1])                   # one state per frame difference


@pytest.mark.parametrize("variant", ["no_temporal", "meanpool"])
def test_tokens_of_a_model_without_a_temporal_module_name_its_outputs(tiny_checkpoints, tiny_clip_backbone, tmp_path,
                                                                      variant):
    from .conftest import save_checkpoint

    path = tiny_checkpoints.get(variant) or save_checkpoint(tiny_clip_backbone, tmp_path / variant, fusion="meanpool",
                                                            disentangle=False)
    settings = EncoderSettings("hf-clip", tiny_clip_backbone.path, output="tokens")
    with pytest.raises(PolicyError, match="no Temporal Diff-Transformer.*outputs are fused, subject, action, "
                                          "object, fused\\+frame$"):
        build_encoder(RowSpec("abl", "roboact", str(path)), settings)


@pytest.mark.parametrize("stride", [1, 3])
def test_backbone_tokens_are_the_window_of_frame_features(settings, tiny_clip_backbone, stride):
    settings.window, settings.stride = 4, stride
    enc = build_encoder(RowSpec("bb", "backbone", output="tokens"), settings)
    d = tiny_clip_backbone.image_dim
    assert enc.token_shape == (4, d)
    frames = np.random.default_rng(5).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    feats = enc.frame_features(frames)
    offline = enc.embed_episode(feats)                                       # (T, n, d)
    assert torch.equal(offline, feats[window_indices(8, 4, stride)])
    assert torch.equal(offline[:, -1], feats)                                # each window ends at the current frame
    enc.reset()
    online = torch.cat([enc.step(f) for f in frames])
    assert torch.allclose(offline, online, atol=1e-5)
    frame_row = build_encoder(RowSpec("bb", "backbone"), settings)
    # same frame cache; the frame row keeps its identity (old cells keep their keys), the tokens row differs
    assert enc.frame_identity() == frame_row.frame_identity()
    assert frame_row.identity() == {"kind": "frame", **frame_row.frame_identity()}
    assert enc.identity() == {**frame_row.identity(), "output": "tokens", "window": 4, "stride": stride}


def test_backbone_tokens_in_lockstep_drop_ended_envs(settings):
    settings.window, settings.stride = 3, 2
    enc = build_encoder(RowSpec("bb", "backbone", output="tokens"), settings)
    frames = np.random.default_rng(6).integers(0, 255, (5, 3, 32, 32, 3), dtype=np.uint8)   # (T, B, ...)
    enc.reset()
    batched = [enc.step(frames[0]), enc.step(frames[1])]
    enc.keep([0, 2])
    batched += [enc.step(frames[t][[0, 2]]) for t in range(2, 5)]
    single = build_encoder(RowSpec("bb", "backbone", output="tokens"), settings)
    single.reset()
    alone = [single.step(frames[t][2]) for t in range(5)]
    assert torch.allclose(batched[-1][1], alone[-1][0], atol=1e-5)


def test_row_outputs_are_checked_per_kind(tiny_checkpoints):
    assert RowSpec("bb", "backbone", output="tokens").for_seed(0).output == "tokens"
    multi = RowSpec("m", "roboact", seed_paths=("a", "b"), output="tokens")
    assert multi.for_seed(1).output == "tokens" and multi.for_seed(1).path == "b"
    with pytest.raises(PolicyError, match="output must be one of \\('frame', 'tokens'\\) for a backbone row"):
        RowSpec("bb", "backbone", output="fused")
    with pytest.raises(PolicyError, match="takes no output"):
        RowSpec("r3m", "r3m", output="tokens")
