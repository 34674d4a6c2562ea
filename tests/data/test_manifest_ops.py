"""Manifest operations as library functions: re-split, a corpus's two manifests, excluding tasks; each raises
a clear error and writes nothing on bad input."""
from __future__ import annotations

import logging

import pytest

from roboact.data.manifest import ClipRecord, ManifestError, read_manifest, resolve, write_manifest
from roboact.data.manifest_ops import (ManifestOpError, check_new_output, exclude_tasks, resplit,
                                       write_split_manifests)
from roboact.data.splits import SplitError, check_compositional, check_no_episode_leakage, episode_key

PAIRS = (("open", "drawer"), ("close", "drawer"), ("open", "window"), ("close", "window"))


def rows(episodes=6, cams=("corner", "corner3")) -> list[ClipRecord]:
    return [ClipRecord(clip_id=f"{a}-{o}-{e}-{c}", path=f"videos/{a}-{o}-{e}-{c}.mp4", subject="Robot", action=a,
                       object=o, camera=c, task=f"{a}-{o}", episode=f"episodes/{a}-{o}-{e}.npz")
            for a, o in PAIRS for e in range(episodes) for c in cams]


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "corpus" / "manifest.jsonl"
    write_manifest(path, rows())
    return path


def test_resplit_each_kind_keeps_its_promise_and_paths(manifest, tmp_path):
    out = tmp_path / "other" / "ep.jsonl"
    res = resplit(manifest, out, "episode", val_fraction=0.2, test_fraction=0.2)
    new = read_manifest(out)
    check_no_episode_leakage(new)
    assert res["splits"] == {s: sum(r.split == s for r in new) for s in res["splits"]} and res["by"] == "episode"
    assert resolve(out, new[0].path).resolve() == (manifest.parent / new[0].path).resolve()
    res = resplit(manifest, tmp_path / "comp.jsonl", "compositional", pairs=[("close", "window")])
    check_compositional(read_manifest(tmp_path / "comp.jsonl"), [("close", "window")])
    assert res["heldout_pairs"] == [["close", "window"]]
    chosen = resplit(manifest, tmp_path / "c2.jsonl", "compositional", heldout_pairs=1, seed=3)["heldout_pairs"]
    assert chosen == resplit(manifest, tmp_path / "c3.jsonl", "compositional", heldout_pairs=1, seed=3)["heldout_pairs"]
    res = resplit(manifest, tmp_path / "cam.jsonl", "camera", cameras=["corner3"], test_fraction=0.3)
    cam = read_manifest(tmp_path / "cam.jsonl")
    assert {r.camera for r in cam if r.split == "test"} == {"corner3"} and res["dropped_rows"] == 48 - len(cam)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"by": "camera", "cameras": ["nope"]}, SplitError, "unknown camera 'nope'; cameras in .*: corner, corner3"),
    ({"by": "camera"}, SplitError, "cameras: none given"),
    ({"by": "camera", "cameras": ["corner", "corner3"]}, SplitError, "leaves none to train on"),
    ({"by": "compositional", "pairs": [("fly", "drawer")]}, SplitError, r"\('fly', 'drawer'\) has no clip in"),
    ({"by": "compositional", "heldout_pairs": 3}, SplitError, "only 2 of the requested 3"),
    ({"by": "diagonal"}, ManifestOpError, "by: must be one of episode, compositional, camera"),
])
def test_resplit_bad_requests_are_named_and_write_nothing(manifest, tmp_path, kwargs, error, message):
    kwargs = dict(kwargs)
    with pytest.raises(error, match=message):
        resplit(manifest, tmp_path / "x.jsonl", kwargs.pop("by"), **kwargs)
    assert not (tmp_path / "x.jsonl").exists()


def test_outputs_never_replace_their_input(manifest, tmp_path):
    with pytest.raises(ManifestOpError, match="is the input manifest; refusing to overwrite"):
        resplit(manifest, manifest.parent / "." / "manifest.jsonl", "episode")
    with pytest.raises(ManifestOpError, match="refusing to overwrite"):
        exclude_tasks(manifest, ["open-drawer"], manifest)
    check_new_output(manifest, tmp_path / "elsewhere.jsonl")
    with pytest.raises(ManifestError, match="manifest not found"):
        resplit(tmp_path / "none.jsonl", tmp_path / "y.jsonl", "episode")


def test_corpus_manifests_by_episode_and_compositional(tmp_path):
    info = write_split_manifests(tmp_path, rows(), 0.1, 0.1, heldout_pairs=1, seed=0)
    main, comp = read_manifest(tmp_path / "manifest.jsonl"), read_manifest(tmp_path / "manifest_compositional.jsonl")
    check_no_episode_leakage(main)
    held = [tuple(p) for p in info["heldout_pairs"]]
    check_compositional(comp, held)
    assert info["manifest_compositional"] == "manifest_compositional.jsonl" and len(held) == 1
    # a later run that cannot hold out pairs leaves no stale compositional manifest behind
    info = write_split_manifests(tmp_path, rows(), 0.1, 0.1, heldout_pairs=3, seed=0)
    assert "only 2 of the requested 3" in info["compositional_error"]
    assert not (tmp_path / "manifest_compositional.jsonl").exists()


def test_split_units_decide_the_split_but_rows_keep_their_episode(tmp_path):
    base = rows(episodes=1, cams=("agentview",))
    many = [ClipRecord(**{**r.__dict__, "clip_id": f"{r.clip_id}-{k}", "episode": "demos/all.hdf5"})
            for r in base for k in range(10)]
    units = [f"demo_{i}" for i in range(len(many))]
    write_split_manifests(tmp_path, many, 0.2, 0.2, heldout_pairs=0, seed=0, split_units=units)
    out = read_manifest(tmp_path / "manifest.jsonl")
    assert {r.episode for r in out} == {"demos/all.hdf5"}
    assert len({r.split for r in out}) == 3                      # one file, yet its demos are split apart
    assert {episode_key(r) for r in out} == {"demos/all.hdf5"}


def test_exclude_tasks_compares_names_by_the_given_key(manifest, tmp_path, caplog):
    out = tmp_path / "f" / "m.jsonl"
    with caplog.at_level(logging.WARNING):
        res = exclude_tasks(manifest, ["suite/open-drawer", "suite/fly-kite"], out,
                            key=lambda t: t.strip().removeprefix("suite/"))
    assert res["dropped"] == {"open-drawer": 12} and res["kept"] == 36
    assert "open-drawer" not in {r.task for r in read_manifest(out)}
    assert "no clip of task 'fly-kite'" in caplog.text
    with pytest.raises(ManifestOpError, match="no tasks given"):
        exclude_tasks(manifest, [], tmp_path / "g.jsonl")
