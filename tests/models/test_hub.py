"""Encoders by Hugging Face Hub repo id: found in the local HF cache with no request, fetched only when online
and then with a timeout, and a missing one named with every place looked; never a network call offline."""
from __future__ import annotations

import socket

import pytest
import torch

import roboact
from roboact.models import RoboActCLIP, hub
from roboact.models.checkpoints import CheckpointError
from roboact.models.encoder import RoboActEncoder

from .conftest import hf_cache_snapshot, small_config

REPO = "someorg/roboact-tiny"


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    enc = RoboActEncoder(RoboActCLIP(small_config()))
    return enc, enc.save_pretrained(tmp_path / "ckpt")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty model store and HF cache of our own, offline, with any socket use failing the test."""
    monkeypatch.setenv("ROBOACT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)

    def no_network(*a, **k):
        raise AssertionError(f"network access attempted: {a[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    return tmp_path


def _same_weights(a: RoboActEncoder, b: RoboActEncoder) -> bool:
    sa, sb = a.heads.state_dict(), b.heads.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_repo_id_is_found_in_the_hf_cache_offline(env, saved):
    enc, ckpt = saved
    snap = hf_cache_snapshot(env / "hf", REPO, ckpt)
    loaded = roboact.load(REPO)
    assert _same_weights(loaded, enc)
    from roboact.models.checkpoints import resolve_checkpoint

    assert resolve_checkpoint(REPO) == snap


def test_missing_repo_id_names_every_place_looked(env):
    with pytest.raises(CheckpointError) as e:
        roboact.load(REPO)
    msg = str(e.value)
    for place in (f"{REPO}/final", str(env / "home" / "models" / REPO),
                  str(env / "hf" / "models--someorg--roboact-tiny"), "offline mode (HF_HUB_OFFLINE) is on"):
        assert place in msg, place


def test_a_half_cached_repo_is_not_taken(env, saved, tmp_path):
    """A snapshot without the weights (an interrupted download) is not a checkpoint."""
    _, ckpt = saved
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_bytes((ckpt / "config.json").read_bytes())
    hf_cache_snapshot(env / "hf", REPO, partial)
    with pytest.raises(CheckpointError, match="no snapshot with config.json \\+ model.safetensors"):
        roboact.load(REPO)


def test_local_store_wins_over_the_hub_and_bare_names_never_ask_it(env, saved):
    enc, ckpt = saved
    torch.manual_seed(1)
    other = RoboActEncoder(RoboActCLIP(small_config()))
    other.save_pretrained(env / "home" / "models" / REPO)
    hf_cache_snapshot(env / "hf", REPO, ckpt)
    assert _same_weights(roboact.load(REPO), other)
    assert not hub.is_repo_id("recommended") and not hub.is_repo_id("a/b/c") and not hub.is_repo_id("/abs/x")
    assert hub.is_repo_id("org/name-v1.2") and not hub.is_repo_id("org/..x") and not hub.is_repo_id("org/x--y")


def test_online_fetch_asks_with_a_timeout_and_caches(env, saved, monkeypatch):
    """Online (no HF_HUB_OFFLINE): one probe with ROBOACT_HUB_TIMEOUT, then the files into the HF cache, from
    where the next load needs no request. The Hub is faked; nothing leaves the machine."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    enc, ckpt = saved
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("ROBOACT_HUB_TIMEOUT", "3")
    calls = []

    def model_info(self, repo_id, timeout=None, **kw):
        calls.append(("info", repo_id, timeout))

    def hf_hub_download(repo_id, filename, cache_dir=None, etag_timeout=None, **kw):
        calls.append(("get", filename, etag_timeout))
        if not (ckpt / filename).is_file():
            raise EntryNotFoundError(f"{filename} not in repo")
        snap = hf_cache_snapshot(cache_dir, repo_id, ckpt)
        return str(snap / filename)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    assert _same_weights(roboact.load(REPO), enc)
    assert calls[0] == ("info", REPO, 3.0)
    assert [c[1] for c in calls[1:]] == ["config.json", "model.safetensors", "README.md"]
    assert all(c[2] == 3.0 for c in calls[1:])
    calls.clear()
    roboact.load(REPO)                          # now cached: no request at all
    assert calls == []


def test_a_foreign_repo_is_refused_before_its_weights_are_fetched(env, monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    other = tmp_path / "clip"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "clip"}')
    fetched = []

    def hf_hub_download(repo_id, filename, cache_dir=None, etag_timeout=None, **kw):
        fetched.append(filename)
        return str(hf_cache_snapshot(cache_dir, repo_id, other) / filename)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, timeout=None, **kw: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    with pytest.raises(CheckpointError, match="not a roboact-clip/1 config: not a roboact encoder"):
        roboact.load("openai/clip-like")
    assert fetched == ["config.json"]


def test_unreachable_hub_is_an_error_naming_why(env, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def unreachable(self, repo_id, timeout=None, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(CheckpointError, match="Hugging Face Hub 'someorg/roboact-tiny': ConnectionError: Name or"):
        roboact.load(REPO)
    monkeypatch.setenv("ROBOACT_HUB_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="ROBOACT_HUB_TIMEOUT='soon'"):
        roboact.load(REPO)
