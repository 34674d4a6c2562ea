import pytest
import torch

from roboact.models import RoboActCLIP, RoboActConfig


def small_config(**kw) -> RoboActConfig:
    base = dict(image_dim=32, text_dim=24, n_frames=16, temporal_width=32, temporal_heads=4, temporal_layers=2,
                fusion_hidden=64, embed_dim=16, branch_hidden=32, text_hidden=32, aux_hidden=16, attn_tokens=4,
                attn_heads=2, subjects=["Robot", "Human"], actions=["open", "close", "push"],
                objects=["drawer", "door", "plate", "faucet"], recomb_size=8)
    base.update(kw)
    return RoboActConfig(**base)


def make_batch(b: int, n: int, cfg: RoboActConfig, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(b, n, cfg.image_dim, generator=g)
    text = torch.randn(b, cfg.text_dim, generator=g)
    labels = {"subject": torch.randint(0, 2, (b,), generator=g), "action": torch.randint(0, 3, (b,), generator=g),
              "object": torch.randint(0, 4, (b,), generator=g)}
    return frames, text, labels


@pytest.fixture
def cfg():
    return small_config()


@pytest.fixture
def model(cfg):
    torch.manual_seed(0)
    return RoboActCLIP(cfg)


def hf_cache_snapshot(cache, repo_id: str, folder, revision: str = "0123456789abcdef0123456789abcdef01234567"):
    """Lay `folder`'s files out as huggingface_hub's cache does: blobs/ by content, snapshots/<rev>/ linking
    to them, refs/main naming the revision. Returns the snapshot folder."""
    import hashlib
    from pathlib import Path

    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(folder).iterdir()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        if not (snap / f.name).is_symlink():
            (snap / f.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snap
