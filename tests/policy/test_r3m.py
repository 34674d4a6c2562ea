"""R3M's checkpoint format (DataParallel state dict under 'r3m', torchvision ResNet names) loads strictly."""
import numpy as np
import pytest
import torch

from roboact.policy.r3m import R3MError, ResNetTrunk, infer_depth, load_r3m


def fake_r3m_checkpoint(path, depth: int = 18):
    torch.manual_seed(0)
    trunk = ResNetTrunk(depth)
    for m in trunk.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = {f"module.convnet.{k}": v for k, v in trunk.state_dict().items()}
    state["module.lang_rew.0.weight"] = torch.zeros(2, 2)  # R3M's language head: dropped on load
    torch.save({"r3m": state, "global_step": 5}, path)
    return trunk.eval()


def test_r3m_checkpoint_round_trip(tmp_path):
    (tmp_path / "r3m_18").mkdir()
    ref = fake_r3m_checkpoint(tmp_path / "r3m_18" / "model.pt")
    enc = load_r3m(tmp_path / "r3m_18")
    assert enc.image_dim == 512 and enc.spec()["name"] == "r3m-resnet18"
    frames = np.random.default_rng(0).integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    out = enc.encode_images(frames)
    with torch.no_grad():
        expect = ref(enc.preprocess(torch.from_numpy(frames)))
    assert out.shape == (2, 512) and torch.allclose(out, expect)
    assert enc.preprocess(torch.from_numpy(frames)).shape == (2, 3, 224, 224)  # resize 256, crop 224


def test_depth_is_inferred_from_torchvision_names():
    assert infer_depth(ResNetTrunk(50).state_dict()) == 50
    assert infer_depth(ResNetTrunk(34).state_dict()) == 34


def test_bad_r3m_files_are_clear_errors(tmp_path):
    with pytest.raises(R3MError, match="not found"):
        load_r3m(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"truncated")
    with pytest.raises(R3MError, match="cannot read"):
        load_r3m(tmp_path)
    torch.save({"r3m": {"module.lang_enc.w": torch.zeros(1)}}, tmp_path / "model.pt")
    with pytest.raises(R3MError, match="no 'convnet"):
        load_r3m(tmp_path)


def test_r3m_preprocessing_is_imagenet_normalised_resize_256_centre_crop_224(tmp_path):
    """Shapes alone would pass a wrong mean/std or an off-centre crop: check values on constructed frames."""
    (tmp_path / "r").mkdir()
    fake_r3m_checkpoint(tmp_path / "r" / "model.pt")
    enc = load_r3m(tmp_path / "r")
    grey = torch.full((1, 64, 64, 3), 128, dtype=torch.uint8)                 # constant: resizing keeps it
    want = [(128 / 255 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    got = enc.preprocess(grey)
    for c in range(3):
        assert torch.allclose(got[0, c], torch.full((224, 224), want[c]), atol=1e-5)
    cols = torch.arange(300).div(2, rounding_mode="floor").to(torch.uint8)  # column j holds j // 2
    ramp = cols.view(1, 1, 300, 1).expand(1, 256, 300, 3).contiguous()       # short side already 256: no resize
    out = enc.preprocess(ramp)[0, 0] * 0.229 + 0.485                         # back to [0, 1]
    left = (300 - 224) // 2                                                  # 38: the centre crop's first column
    assert torch.allclose(out[0], cols[left:left + 224].float() / 255, atol=1e-5)
