import json

import numpy as np
import pytest
import torch

import roboact
from roboact.backbones import load_backbone
from roboact.backbones.hf_clip import make_tiny_clip
from roboact.models import RoboActCLIP
from roboact.models.encoder import CheckpointError, RoboActEncoder, load

from .conftest import make_batch, small_config


@pytest.fixture(scope="module")
def clip_bb(tmp_path_factory):
    d = make_tiny_clip(tmp_path_factory.mktemp("clip"))
    return load_backbone("hf-clip", path=str(d))


@pytest.fixture
def encoder(clip_bb):
    torch.manual_seed(0)
    cfg = small_config(backbone="hf-clip", backbone_path=clip_bb.path, image_dim=clip_bb.image_dim,
                       text_dim=clip_bb.text_dim, n_frames=8)
    return RoboActEncoder(RoboActCLIP(cfg), clip_bb)


def _trained_a_bit(encoder):
    """Make weights and banks non-trivial, so a round trip that drops anything would show."""
    heads = encoder.heads
    frames, text, labels = make_batch(16, 8, heads.cfg)
    opt = torch.optim.SGD([p for p in heads.parameters() if p.requires_grad], lr=0.1)
    out = heads(frames, text, labels)
    out.loss.backward()
    opt.step()
    heads.update_banks(out, labels, step=0)
    heads.register_seen_triplets(torch.stack([labels["subject"], labels["action"], labels["object"]], 1))
    return frames


def test_save_load_round_trip_is_bit_identical(encoder, tmp_path):
    frames = _trained_a_bit(encoder)
    encoder.eval()
    before = encoder.encode_video(frames)
    encoder.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded = roboact.load(str(tmp_path / "ckpt"))
    after = loaded.encode_video(frames)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    for f in ("subject", "action", "object"):
        assert torch.equal(loaded.heads.banks.bank(f), encoder.heads.banks.bank(f))
    assert torch.equal(loaded.heads.seen_triplets, encoder.heads.seen_triplets)
    assert loaded.cfg.actions == encoder.cfg.actions  # class vocabularies travel with the checkpoint
    txt = ["Robot opens drawer, Action is open, Object is drawer."]
    assert torch.equal(loaded.encode_text(txt)["fused"], encoder.encode_text(txt)["fused"])


def test_backbone_is_not_saved_and_gets_no_gradient(encoder, tmp_path):
    assert not any(k.startswith("_backbone") or "image_model" in k for k in encoder.state_dict())
    assert all(n.startswith("heads.") for n, _ in encoder.named_parameters())
    frames_u8 = np.random.default_rng(0).integers(0, 255, (2, 10, 32, 32, 3), dtype=np.uint8)
    feats = encoder.frame_features(frames_u8)
    text = encoder.backbone.encode_texts(["a", "b"])
    encoder.train()
    out = encoder.heads(feats, text)
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in encoder.backbone.parameters())
    assert not encoder.backbone.training


def test_encode_video_from_frames_equals_from_features(encoder):
    encoder.eval()
    clip = np.random.default_rng(1).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    from_frames = encoder.encode_video(clip)
    feats = encoder.frame_features(clip)
    assert feats.shape == (1, 8, encoder.cfg.image_dim)
    from_feats = encoder.encode_video(feats)
    assert torch.equal(from_frames["fused"], from_feats["fused"])
    n = encoder.encode_video(clip, normalize=True)
    assert torch.allclose(n["action"].norm(dim=-1), torch.ones(1))


def test_encode_video_bad_frames(encoder):
    with pytest.raises(ValueError, match="at least 2 frames"):
        encoder.encode_video(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        encoder.encode_video(np.zeros((4, 32, 32, 4), np.uint8))


def test_policy_outputs_are_the_encoder_outputs_a_policy_sees(encoder):
    encoder.eval()
    cfg = encoder.cfg
    clip = np.random.default_rng(2).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    feats = encoder.frame_features(clip)                                     # (1, 8, d); the last frame kept
    assert torch.equal(feats[:, -1], encoder.backbone.encode_images(clip[-1:]))
    video = encoder.encode_video(feats)
    assert encoder.policy_outputs == ("fused", "subject", "action", "object", "fused+frame", "tokens")
    for out in ("fused", "subject", "action", "object"):
        got = encoder.encode_for_policy(feats, out)
        assert torch.equal(got, video[out]) and got.shape[-1] == encoder.output_dim(out), out
    both = encoder.encode_for_policy(clip)                                   # default: fused+frame, from frames
    assert both.shape == (1, cfg.fused_dim + cfg.image_dim) == (1, encoder.output_dim("fused+frame"))
    assert torch.allclose(both[:, :cfg.fused_dim], video["fused"], atol=1e-6)
    assert torch.allclose(both[:, cfg.fused_dim:], feats[:, -1], atol=1e-6)   # the current frame, not another
    tokens = encoder.encode_for_policy(feats, "tokens")
    assert tokens.shape == (1, 7, encoder.output_dim("tokens")) and torch.equal(tokens, encoder.encode_tokens(feats))


def test_policy_output_a_model_lacks_names_what_it_has(clip_bb):
    cfg = small_config(backbone="hf-clip", backbone_path=clip_bb.path, image_dim=clip_bb.image_dim,
                       text_dim=clip_bb.text_dim, n_frames=8, temporal=False)
    enc = RoboActEncoder(RoboActCLIP(cfg), clip_bb).eval()
    assert "tokens" not in enc.policy_outputs
    feats = torch.randn(1, 8, clip_bb.image_dim)
    with pytest.raises(ValueError, match="no Temporal Diff-Transformer.*outputs are fused, subject, action, object, "
                                         "fused\\+frame$"):
        enc.encode_for_policy(feats, "tokens")
    with pytest.raises(ValueError, match="output must be one of .*'fused\\+frame'"):
        enc.output_dim("frame")


def test_corrupted_safetensors_is_a_clear_error(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "c")
    w = tmp_path / "c" / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted or unreadable safetensors"):
        load(tmp_path / "c")
    w.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load(tmp_path / "c")


def test_bad_config_field_is_named(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "c")
    p = tmp_path / "c" / "config.json"
    meta = json.loads(p.read_text())
    meta["model"]["embed_dimm"] = 3
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="model.embed_dimm: unknown config field"):
        load(tmp_path / "c")
    meta["model"].pop("embed_dimm")
    meta["model"]["n_frames"] = 1
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="n_frames"):
        load(tmp_path / "c")


def test_weights_that_do_not_match_config(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "c")
    p = tmp_path / "c" / "config.json"
    meta = json.loads(p.read_text())
    meta["model"]["embed_dim"] = 8
    meta["model"]["attn_heads"] = 2
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape"):
        load(tmp_path / "c")


def test_load_unknown_name_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOACT_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="no roboact checkpoint named 'nope'"):
        roboact.load("nope")


def test_load_by_name_from_roboact_home(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOACT_HOME", str(tmp_path))
    encoder.save_pretrained(tmp_path / "models" / "mine")
    assert isinstance(roboact.load("mine"), RoboActEncoder)


def test_backbone_mismatch_is_refused(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "c")

    class Fake:
        name, image_dim, text_dim = "lite0-minilm", 1280, 384

    with pytest.raises(CheckpointError, match="trained on backbone 'hf-clip'"):
        RoboActEncoder.from_pretrained(tmp_path / "c", backbone=Fake())


def test_to_moves_the_backbone_with_the_heads(clip_bb, tmp_path):
    """`.to()` / `load(device=...)` must move the frozen backbone too (it sits outside the module registry),
    or `load(..., device="cuda")` would encode every frame on the CPU. dtype stands in for device here."""
    d = make_tiny_clip(tmp_path / "clip")
    bb = load_backbone("hf-clip", path=str(d), cache=False)
    cfg = small_config(backbone="hf-clip", backbone_path=str(d), image_dim=bb.image_dim, text_dim=bb.text_dim)
    enc = RoboActEncoder(RoboActCLIP(cfg), bb).to(torch.float64)
    assert next(enc.heads.parameters()).dtype == torch.float64
    assert next(enc.backbone.parameters()).dtype == torch.float64
    assert not any("image_model" in k or k.startswith("_backbone") for k in enc.state_dict())
    # a backbone shared through load_backbone's cache is copied, not moved: other holders keep theirs
    shared = load_backbone("hf-clip", path=str(d))
    enc2 = RoboActEncoder(RoboActCLIP(cfg), shared).to(torch.float64)
    assert next(enc2.backbone.parameters()).dtype == torch.float64 and enc2.backbone is not shared
    assert next(load_backbone("hf-clip", path=str(d)).parameters()).dtype == torch.float32
    # (the lazily built backbone of `load(path, device="cuda")` is checked in tests/gpu)


def test_load_takes_the_runtime_switch(tmp_path, tiny_clip_backbone):
    from roboact.backbones import BackboneError

    bb = tiny_clip_backbone
    cfg = small_config(backbone="hf-clip", backbone_path=bb.path, image_dim=bb.image_dim, text_dim=bb.text_dim)
    folder = RoboActEncoder(RoboActCLIP(cfg), bb).save_pretrained(tmp_path / "ck")
    frames = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    eager, ov = roboact.load(folder, runtime="eager"), roboact.load(folder)
    assert (eager.backbone.runtime, ov.backbone.runtime) == ("eager", "openvino")
    a, b = eager.encode_video(frames)["fused"], ov.encode_video(frames)["fused"]
    assert torch.allclose(a, b, atol=1e-4)
    with pytest.raises(BackboneError, match="unknown runtime 'turbo'"):
        roboact.load(folder, runtime="turbo")


def test_frame_decoder_and_extra_term_settings_round_trip(clip_bb, tmp_path):
    torch.manual_seed(0)
    cfg = small_config(backbone="hf-clip", backbone_path=clip_bb.path, image_dim=clip_bb.image_dim,
                       text_dim=clip_bb.text_dim, n_frames=8, lambda_tcn=0.4, lambda_frame=0.6,
                       frame_targets="first_last")
    encoder = RoboActEncoder(RoboActCLIP(cfg), clip_bb)
    frames = _trained_a_bit(encoder)
    encoder.save_pretrained(tmp_path / "c")
    from safetensors.torch import load_file

    assert {"frame_decoder.weight", "frame_decoder.bias"} <= set(load_file(str(tmp_path / "c" / "model.safetensors")))
    loaded = load(tmp_path / "c")
    assert (loaded.cfg.lambda_tcn, loaded.cfg.lambda_frame, loaded.cfg.frame_targets) == (0.4, 0.6, "first_last")
    assert torch.equal(loaded.heads.frame_decoder.weight, encoder.heads.frame_decoder.weight)
    assert torch.equal(loaded.heads.frame_decoder.bias, encoder.heads.frame_decoder.bias)
    text = torch.randn(len(frames), cfg.text_dim)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = encoder.heads.eval()(frames, text, generator=gen()).losses
    b = loaded.heads(frames, text, generator=gen()).losses
    assert torch.equal(a["frame"], b["frame"]) and torch.equal(a["tcn"], b["tcn"])


def test_checkpoint_saved_before_the_extra_terms_still_loads(encoder, tmp_path):
    """config.json written before lambda_tcn / lambda_frame / frame_targets existed: they take their
    defaults (off) and the weights load unchanged."""
    frames = _trained_a_bit(encoder)
    encoder.eval().save_pretrained(tmp_path / "old")
    p = tmp_path / "old" / "config.json"
    meta = json.loads(p.read_text())
    for k in ("lambda_tcn", "lambda_frame", "frame_targets"):
        meta["model"].pop(k)
    p.write_text(json.dumps(meta))
    loaded = load(tmp_path / "old")
    assert (loaded.cfg.lambda_tcn, loaded.cfg.lambda_frame) == (0.0, 0.0)
    assert not hasattr(loaded.heads, "frame_decoder")
    assert torch.equal(loaded.encode_video(frames)["fused"], encoder.encode_video(frames)["fused"])


def test_load_and_first_encode_print_nothing(tmp_path, monkeypatch, capfd):
    """A library call prints nothing: building the default backbone (sentence-transformers' "Loading weights"
    bar, transformers' warnings, the OpenVINO compile) used to write to stderr on the first encode."""
    import roboact.backbones as backbones
    from transformers.utils import logging as tlog

    monkeypatch.setattr(backbones, "_CACHE", {})          # build it here, not reuse another test's
    tlog.warning_once.cache_clear()                       # and let once-only warnings speak again
    cfg = small_config(backbone="lite0-minilm", image_dim=1280, text_dim=384, n_frames=4)
    RoboActEncoder(RoboActCLIP(cfg)).save_pretrained(tmp_path / "c")
    capfd.readouterr()
    enc = roboact.load(tmp_path / "c")
    enc.encode_text(["Robot opens drawer, Action is open, Object is drawer."])
    enc.encode_video(np.zeros((4, 32, 32, 3), np.uint8))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
