"""`hf-clip`: a Hugging Face `transformers` CLIPModel, the paper's setting (openai/clip-vit-base-patch32).

Loads from a local directory (`save_pretrained` layout) or a hub id. No hub is reachable here, so a hub id
works only when it is already in the local HF cache; otherwise the error says how to point at a folder.
Preprocessing is ours (torch, no torchvision): resize short side, centre crop, CLIP mean/std.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from roboact.backbones.base import BackboneError, FrozenBackbone

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def clip_weights_present(path_or_id: str) -> bool:
    p = Path(path_or_id)
    if p.is_dir():
        return (p / "config.json").is_file() and any(p.glob("*.safetensors")) or any(p.glob("*.bin"))
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(path_or_id, "config.json"), str)
    except Exception:
        return False


class HFClip(FrozenBackbone):
    name = "hf-clip"
    image_mean = CLIP_MEAN
    image_std = CLIP_STD
    batch_size = 32

    def __init__(self, path: str = DEFAULT_CLIP):
        super().__init__()
        from transformers import CLIPModel, CLIPTokenizer

        self.path = str(path)
        local = Path(path).is_dir()
        if not local and not clip_weights_present(self.path):
            raise BackboneError(f"hf-clip: {path!r} is neither a local CLIP folder nor in the local Hugging Face "
                                "cache, and no hub is reachable; pass --backbone-path /dir/with/config.json "
                                "(e.g. a folder made by CLIPModel.save_pretrained)")
        kwargs = {} if local else {"local_files_only": True}
        try:
            self.model = CLIPModel.from_pretrained(self.path, **kwargs)
            self.tokenizer = CLIPTokenizer.from_pretrained(self.path, **kwargs)
        except (OSError, ValueError) as e:
            raise BackboneError(f"hf-clip: cannot load CLIP from {path!r}: {e}") from None
        vc, tc = self.model.config.vision_config, self.model.config.text_config
        self.image_size = int(vc.image_size)
        self.image_dim = int(self.model.config.projection_dim)
        self.text_dim = int(self.model.config.projection_dim)
        self.max_length = int(tc.max_position_embeddings)
        self.freeze()

    def spec(self) -> dict:
        return {"name": self.name, "path": self.path}

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return _as_tensor(self.model.get_image_features(pixel_values=pixels))

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        device = next(self.model.parameters()).device
        out = self.model.get_text_features(input_ids=tok["input_ids"].to(device),
                                           attention_mask=tok["attention_mask"].to(device))
        return _as_tensor(out)


def _as_tensor(out) -> torch.Tensor:
    # transformers 5 returns an output object (projected features in .pooler_output); 4.x a tensor.
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output


def make_tiny_clip(folder: str | os.PathLike, image_size: int = 32, seed: int = 0) -> Path:
    """Save a tiny random CLIPModel + byte-level tokenizer to `folder` (for tests and offline smoke runs).

    The tokenizer needs no downloaded files: a vocabulary of the 256 byte characters, the same with
    '</w>', and the special tokens, with no merges.
    """
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(vocab_list)}
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=bos,
                         eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=24,
    )
    torch.manual_seed(seed)
    CLIPModel(cfg).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte maps to a printable unicode character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))
