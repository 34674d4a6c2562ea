import numpy as np
import pytest
import torch

from roboact.backbones import BackboneError, backbone_status, load_backbone
from roboact.backbones.hf_clip import make_tiny_clip


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("lite0-minilm")


def test_hf_clip_loads_from_local_folder_and_encodes(tiny_clip_dir):
    bb = load_backbone("hf-clip", path=str(tiny_clip_dir), cache=False)
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 56, 3), dtype=np.uint8)
    img = bb.encode_images(frames)
    txt = bb.encode_texts(["Robot opens drawer", "Human closes door", "x"])
    assert img.shape == (3, bb.image_dim) and txt.shape == (3, bb.text_dim)
    assert torch.isfinite(img).all() and torch.isfinite(txt).all()
    assert not torch.allclose(txt[0], txt[1])
    # same path, same features: the folder fully determines the backbone
    bb2 = load_backbone("hf-clip", path=str(tiny_clip_dir), cache=False)
    assert torch.equal(bb2.encode_images(frames), img)


def test_hf_clip_features_match_transformers_reference(tiny_clip_dir):
    from transformers import CLIPModel

    bb = load_backbone("hf-clip", path=str(tiny_clip_dir), cache=False)
    frames = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    ref_model = CLIPModel.from_pretrained(str(tiny_clip_dir)).eval()
    pixels = bb.preprocess(torch.from_numpy(frames))
    with torch.no_grad():
        ref = ref_model.get_image_features(pixel_values=pixels)
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    assert torch.allclose(bb.encode_images(frames), ref, atol=1e-5)


def test_hf_clip_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneError, match="neither a local CLIP folder"):
        load_backbone("hf-clip", path="nobody/no-such-clip-model", cache=False)


def test_unknown_backbone_name():
    with pytest.raises(BackboneError, match="unknown backbone 'resnet9000'.*lite0-minilm"):
        load_backbone("resnet9000")


def test_lite0_minilm_offline_features(lite0):
    frames = np.random.default_rng(0).integers(0, 255, (5, 128, 128, 3), dtype=np.uint8)
    f = lite0.encode_images(frames)
    assert f.shape == (5, 1280) and torch.isfinite(f).all()
    assert f.std(dim=0).mean() > 0  # different frames, different features
    t = lite0.encode_texts(["Robot opens drawer, Action is open, Object is drawer.", "Robot closes door"])
    assert t.shape == (2, 384)
    assert torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-4)
    # batch-size independence: encoding one frame alone gives the same feature
    assert torch.allclose(lite0.encode_images(frames[:1]), f[:1], atol=1e-4)


def test_backbones_are_frozen_and_stay_in_eval(lite0, tiny_clip_dir):
    for bb in (lite0, load_backbone("hf-clip", path=str(tiny_clip_dir), cache=False)):
        assert all(not p.requires_grad for p in bb.parameters())
        bb.train()
        assert not bb.training and all(not m.training for m in bb.modules())


@pytest.mark.parametrize("frames, msg", [
    (np.zeros((2, 64, 64, 4), np.uint8), "3 channels.*alpha"),
    (np.zeros((2, 3, 64, 64), np.uint8), "channels-first"),
    (np.zeros((2, 64, 64, 3), np.float32), "uint8"),
    (np.zeros((2, 2, 64, 64, 3), np.uint8), r"\[N, H, W, 3\]"),
    (np.zeros((0, 64, 64, 3), np.uint8), "empty"),
])
def test_bad_frames_raise_clear_errors(tiny_clip_dir, frames, msg):
    bb = load_backbone("hf-clip", path=str(tiny_clip_dir))
    with pytest.raises(BackboneError, match=msg):
        bb.encode_images(frames)


def test_status_lists_both_backbones():
    names = {b["name"]: b for b in backbone_status()}
    assert set(names) == {"lite0-minilm", "hf-clip"}
    assert names["lite0-minilm"]["weights_present"] is True


def test_hf_clip_preprocessing_uses_clip_statistics_and_a_centre_crop(tiny_clip_dir):
    """The reference test above feeds our own preprocessing to transformers; check that preprocessing
    itself: OpenAI CLIP's mean/std, short side to the model's size, centre crop."""
    bb = load_backbone("hf-clip", path=str(tiny_clip_dir), cache=False)
    s = bb.image_size
    grey = torch.full((1, 40, 56, 3), 200, dtype=torch.uint8)
    got = bb.preprocess(grey)
    assert got.shape == (1, 3, s, s)
    clip_mean, clip_std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    for c in range(3):
        assert torch.allclose(got[0, c], torch.full((s, s), (200 / 255 - clip_mean[c]) / clip_std[c]), atol=1e-5)
    cols = torch.arange(s + 10).to(torch.uint8)                              # wider than tall by 10 columns
    ramp = cols.view(1, 1, -1, 1).expand(1, s, s + 10, 3).contiguous()
    out = bb.preprocess(ramp)[0, 0] * clip_std[0] + clip_mean[0]
    assert torch.allclose(out[0], cols[5:5 + s].float() / 255, atol=1e-5)   # 5 columns cut on each side


def test_upsampling_without_the_antialias_kernel_gives_the_same_pixels():
    """The compiled runtimes skip the antialias kernel when upsampling (docs/benchmarks.md): same pixels to 5e-6
    for the frame sizes the package renders; downsampling keeps the kernel whatever is asked."""
    from roboact.backbones.base import FrozenBackbone

    class Sized(FrozenBackbone):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.image_size = 224

    bb, g = Sized(), torch.Generator().manual_seed(0)
    for h, w in ((64, 64), (128, 128), (128, 160)):
        frames = torch.randint(0, 256, (4, h, w, 3), generator=g, dtype=torch.uint8)
        diff = (bb.resize(frames) - bb.resize(frames, antialias_upsampling=False)).abs().max()
        assert 0 < diff < 5e-6, (h, w, diff)       # not bit-identical: the kernel does run when asked
    big = torch.randint(0, 256, (2, 256, 256, 3), generator=g, dtype=torch.uint8)
    assert torch.equal(bb.resize(big), bb.resize(big, antialias_upsampling=False))
