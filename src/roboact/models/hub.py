"""Encoders by Hugging Face Hub repo id: `roboact.load("org/name")` when a local folder and the model store
($ROBOACT_HOME/models) have nothing by that name (roboact.models.checkpoints tries those first).

Offline first and never a hang. The local Hugging Face cache is read before any request, and is all that is read
when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set. Otherwise one metadata request with a short timeout
(ROBOACT_HUB_TIMEOUT seconds, default 10) says whether the Hub is reachable and has the repo; only then are the
files fetched, through huggingface_hub's own cache, so the next load finds them offline. huggingface_hub's
sessions have no timeout of their own, hence the probe. Only config.json, model.safetensors and the model card
are fetched: the weights are safetensors, nothing is unpickled.

The environment is read at each call, not once: huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE when it is
first imported, so a process that sets them later (or a test) would otherwise be ignored.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# What a hub folder written by `roboact export` holds; the first two are required.
REQUIRED_FILES = ("config.json", "model.safetensors")
OPTIONAL_FILES = ("README.md",)
TIMEOUT_ENV = "ROBOACT_HUB_TIMEOUT"
# "org/name" only: a bare name is a model-store name, and a typo in one must not become a network request.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


@dataclass
class HubLookup:
    """The outcome of looking a repo id up: the folder, or why not (one line per place, for the error)."""

    folder: Path | None
    tried: list[str] = field(default_factory=list)


def is_repo_id(name: str | os.PathLike) -> bool:
    s = str(name)
    return bool(_REPO_ID.match(s)) and ".." not in s and "--" not in s and not s.endswith((".", "-"))


def offline() -> bool:
    from huggingface_hub import constants

    env = any(os.environ.get(k, "").upper() in {"1", "ON", "YES", "TRUE"}
              for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return env or constants.is_offline_mode()


def cache_dir() -> Path:
    """The Hugging Face hub cache, by the same variables huggingface_hub reads (at call time, see above)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def repo_cache_folder(repo_id: str) -> Path:
    return cache_dir() / ("models--" + repo_id.replace("/", "--"))


def timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "10")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: must be > 0 seconds")
    return value


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of the repo's main revision holding every required file, or None; no request."""
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(repo_id, f, cache_dir=str(cache_dir())) for f in REQUIRED_FILES]
    if all(isinstance(p, str) for p in found):
        folders = {Path(p).parent for p in found}
        if len(folders) == 1:
            return folders.pop()
    return None


def download(repo_id: str, seconds: float) -> Path:
    """Probe (short timeout), then fetch the files into the cache. Raises with the reason on any failure."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from roboact.utils.quiet import quiet_loading

    from roboact.models.encoder import FORMAT
    from roboact.utils.io import read_json

    HfApi().model_info(repo_id, timeout=seconds)
    paths = []
    with quiet_loading():                       # a library call: no download bars
        for name in REQUIRED_FILES + OPTIONAL_FILES:
            try:
                paths.append(hf_hub_download(repo_id, name, cache_dir=str(cache_dir()), etag_timeout=seconds))
            except EntryNotFoundError:
                if name in REQUIRED_FILES:
                    raise FileNotFoundError(f"the repo has no {name}; is it a roboact encoder "
                                            "(a folder written by `roboact export`)?") from None
            if name == "config.json":           # another model's weights can be gigabytes: check before fetching
                meta = read_json(paths[-1])
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise ValueError(f"its config.json is not a {FORMAT} config: not a roboact encoder")
    return Path(paths[0]).parent


def find_on_hub(repo_id: str) -> HubLookup:
    """Cache first; then the Hub unless offline. Never raises for a missing or unreachable repo."""
    snap = cached_snapshot(repo_id)
    if snap is not None:
        return HubLookup(snap)
    tried = [f"Hugging Face cache {repo_cache_folder(repo_id)} (no snapshot with {' + '.join(REQUIRED_FILES)})"]
    if offline():
        tried.append(f"Hugging Face Hub {repo_id!r}: not asked, offline mode (HF_HUB_OFFLINE) is on")
        return HubLookup(None, tried)
    seconds = timeout()                         # a bad ROBOACT_HUB_TIMEOUT is the user's error, raised
    try:
        return HubLookup(download(repo_id, seconds))
    except Exception as e:  # noqa: BLE001 - httpx and huggingface_hub raise their own types; report, never hang
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        tried.append(f"Hugging Face Hub {repo_id!r}: {type(e).__name__}: {first[:200]}")
        return HubLookup(None, tried)


__all__ = ["HubLookup", "cache_dir", "cached_snapshot", "download", "find_on_hub", "is_repo_id", "offline",
           "repo_cache_folder", "timeout"]
