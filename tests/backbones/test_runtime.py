"""Image-tower runtimes: every path's features against eager fp32, and every way a runtime can be unavailable."""
import copy

import numpy as np
import pytest
import torch

from roboact.backbones import BackboneError, load_backbone, private
from roboact.backbones import runtime as rt
from roboact.backbones.hf_clip import make_tiny_clip

FRAMES = np.random.default_rng(0).integers(0, 255, (5, 128, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def eager_lite0():
    return load_backbone("lite0-minilm", runtime="eager", load_text=False)


@pytest.fixture(scope="module")
def eager_features(eager_lite0):
    return eager_lite0.encode_images(FRAMES)


def _bf16_available() -> bool:
    try:
        rt.resolve_runtime("openvino-bf16")
        return True
    except rt.RuntimeUnavailable:
        return False


def test_default_is_openvino_on_cpu_and_eager_on_gpu():
    assert rt.resolve_runtime("default", "cpu") == "openvino"
    assert rt.resolve_runtime("default", "cuda") == "eager"      # no GPU needed: only the device type is read
    assert rt.resolve_runtime("eager", "cuda:1") == "eager"


def test_openvino_matches_eager_within_tolerance_and_is_batch_invariant(eager_features):
    ov = load_backbone("lite0-minilm", runtime="openvino", load_text=False, cache=False)
    assert ov.runtime == "openvino"
    feats = ov.encode_images(FRAMES)
    err = (feats - eager_features).abs().max().item()
    assert err <= rt.EXACT_ATOL, err
    assert err > 0 or torch.equal(feats, eager_features)          # a real second path, not eager again
    # control time encodes one frame per step; extraction encodes chunks: rows must not depend on the batch
    singles = torch.cat([ov.encode_images(FRAMES[i]) for i in range(len(FRAMES))])
    assert torch.equal(singles, feats)


def test_default_runtime_backbone_is_the_openvino_one(eager_features):
    bb = load_backbone("lite0-minilm", load_text=False, cache=False)
    assert (bb.runtime_request, bb.runtime) == ("default", "openvino")
    assert (bb.encode_images(FRAMES[:2]) - eager_features[:2]).abs().max() <= rt.EXACT_ATOL


@pytest.mark.skipif(not _bf16_available(), reason="this CPU has no bf16 instructions (AVX512-BF16/AMX)")
def test_openvino_bf16_is_lossy_but_close(eager_features):
    bb = load_backbone("lite0-minilm", runtime="openvino-bf16", load_text=False, cache=False)
    feats = bb.encode_images(FRAMES)
    err = (feats - eager_features).abs().max().item()
    assert "openvino-bf16" in rt.LOSSY
    assert rt.EXACT_ATOL < err < 0.5, err                            # really bf16, and still the same features
    cos = torch.nn.functional.cosine_similarity(feats, eager_features, dim=-1)
    assert cos.min() > 0.99


def test_bf16_on_a_cpu_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(rt, "_openvino_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(rt.RuntimeUnavailable, match="bf16 instructions.*FP32, INT8.*runtime 'openvino'"):
        rt.resolve_runtime("openvino-bf16")
    with pytest.raises(rt.RuntimeUnavailable, match="bf16"):
        load_backbone("lite0-minilm", runtime="openvino-bf16", load_text=False, cache=False)


def test_missing_openvino_names_the_package_and_the_alternative(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)             # import openvino -> ImportError
    with pytest.raises(rt.RuntimeUnavailable, match="pip install 'openvino.*runtime 'eager'"):
        rt.resolve_runtime("openvino")
    assert rt.resolve_runtime("eager") == "eager"                    # eager never needs it


def test_unknown_runtime_and_cpu_only_runtime_on_gpu():
    with pytest.raises(BackboneError, match="unknown runtime 'tensorrt'.*default, eager, openvino"):
        load_backbone("lite0-minilm", runtime="tensorrt")
    with pytest.raises(rt.RuntimeUnavailable, match="CPU only.*'eager'"):
        rt.resolve_runtime("openvino", "cuda")


def test_a_tower_that_fails_to_compile_names_the_way_out(monkeypatch):
    openvino = rt._import_openvino()

    def boom(*a, **k):
        raise RuntimeError("Exception from src/frontends: unsupported operation aten::foo")
    monkeypatch.setattr(openvino, "convert_model", boom)
    bb = load_backbone("lite0-minilm", runtime="openvino", load_text=False, cache=False)
    with pytest.raises(rt.RuntimeUnavailable, match="could not compile.*aten::foo.*runtime 'eager'"):
        bb.encode_images(FRAMES[:1])


def test_hf_clip_tower_runs_on_openvino(tmp_path):
    d = make_tiny_clip(tmp_path / "clip")
    frames = np.random.default_rng(1).integers(0, 255, (3, 40, 56, 3), dtype=np.uint8)
    ref = load_backbone("hf-clip", path=str(d), runtime="eager", cache=False).encode_images(frames)
    got = load_backbone("hf-clip", path=str(d), runtime="openvino", cache=False).encode_images(frames)
    assert (got - ref).abs().max() <= rt.EXACT_ATOL


def test_compiled_backbone_copies_and_recompiles(eager_features):
    bb = load_backbone("lite0-minilm", runtime="openvino", load_text=False, cache=False)
    first = bb.encode_images(FRAMES[:2])
    assert "_engine" in bb.__dict__
    for twin in (copy.deepcopy(bb), private(bb)):
        assert twin.runtime == "openvino"
        assert torch.equal(twin.encode_images(FRAMES[:2]), first)
    bb.float()                                                        # any _apply drops the compiled engine
    assert "_engine" not in bb.__dict__ and bb.runtime == "openvino"


def test_reuse_cache_is_per_runtime():
    a = load_backbone("lite0-minilm", runtime="eager", load_text=False)
    b = load_backbone("lite0-minilm", runtime="openvino", load_text=False)
    assert a is not b and a is load_backbone("lite0-minilm", runtime="eager", load_text=False)
    assert (a.runtime, b.runtime) == ("eager", "openvino")


def test_openvino_usage_telemetry_is_declined_for_our_process(tmp_path, monkeypatch):
    """Importing openvino through roboact must not opt the user into Intel's usage telemetry."""
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    code = ("from roboact.backbones import runtime as rt; rt._import_openvino(); "
            "import openvino_telemetry as t; print(t.Telemetry().consent)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert not (tmp_path / "intel").exists()                        # nothing written to the user's home


def test_runtime_identity_leaves_eager_identities_unchanged():
    assert rt.runtime_identity("eager") == {}
    assert rt.runtime_identity("openvino") == {"runtime": "openvino"}
    with pytest.raises(ValueError):
        rt.runtime_identity("default")


def test_info_lists_the_runtimes_and_why_one_is_missing(monkeypatch, capsys):
    from roboact.cli import main

    monkeypatch.setattr(rt, "_openvino_capabilities", lambda: ("FP32",))
    status = {r["name"]: r for r in rt.runtime_status("cpu")}
    assert status["default"]["resolves_to"] == "openvino" and status["eager"]["available"]
    assert not status["openvino-bf16"]["available"] and "bf16 instructions" in status["openvino-bf16"]["why_not"]
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default        -> openvino" in out and "openvino-bf16  NOT available: runtime 'openvino-bf16'" in out
