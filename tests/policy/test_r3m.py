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
