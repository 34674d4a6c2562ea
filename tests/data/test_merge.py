"""`roboact simulate merge`: one manifest over Meta-World and LIBERO corpora (files are stand-ins; no simulator)."""
from __future__ import annotations

import argparse

import pytest

from roboact.data.manifest import ClipRecord, read_manifest, resolve, write_manifest
from roboact.data.splits import assign_episode_splits, check_compositional
from roboact.sim import cli as sim_cli
from roboact.data.merge import MergeConfig, MergeError, merge_manifests, split_unit
from roboact.utils.config import ConfigError
from roboact.utils.io import read_json

# Tasks that may be pretrained on (none of roboact.data.heldout's never-list, which a merge drops)
MW = {"drawer-close-v3": ("close", "drawer"), "door-close-v3": ("close", "door"),
      "window-open-v3": ("open", "window"), "plate-slide-back-v3": ("pull", "plate"),
      "coffee-push-v3": ("push", "mug"), "coffee-pull-v3": ("pull", "mug")}
LIBERO = {"open_the_top_drawer_and_put_the_bowl_inside": ("open", "drawer"),
          "put_the_bowl_on_the_plate": ("put", "bowl"), "put_the_wine_bottle_on_the_rack": ("put", "wine bottle")}


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def metaworld_corpus(root, episodes=4, cams=("corner", "corner4"), tasks=None):
    rows = []
    for task, (a, o) in (tasks or MW).items():
        for e in range(episodes):
            _touch(root / f"episodes/{task}/e{e:04d}.npz")
            for c in cams:
                _touch(root / f"videos/{task}/e{e:04d}_{c}.mp4")
                rows.append(ClipRecord(clip_id=f"metaworld_{task}_e{e:04d}_{c}",
                                       path=f"videos/{task}/e{e:04d}_{c}.mp4", subject="Robot", action=a,
                                       object=o, task=task, camera=c, source="metaworld", embodiment="sawyer",
                                       episode=f"episodes/{task}/e{e:04d}.npz"))
    write_manifest(root / "manifest.jsonl", assign_episode_splits(rows))
    return root / "manifest.jsonl"


def libero_corpus(root, demos=30, tasks=None):
    rows = []
    for task, (a, o) in (tasks or LIBERO).items():
        _touch(root / f"libero_goal/{task}_demo.hdf5")
        for k in range(demos):
            video = f"videos/libero_goal/{task}/seed_{k:06d}.mp4"
            _touch(root / video)
            rows.append(ClipRecord(clip_id=f"libero_goal/{task}/seed_{k:06d}", path=video, subject="Robot",
                                   action=a, object=o, task=f"libero_goal/{task}", camera="agentview", seed=k,
                                   source="libero", embodiment="panda", episode=f"libero_goal/{task}_demo.hdf5",
                                   extra={"demo": f"demo_{k}"}))
    write_manifest(root / "manifest.jsonl", rows)
    return root / "manifest.jsonl"


def merge(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "merge", *argv])
    return args.func(args)


def test_merge_two_embodiments_keeps_paths_valid_and_splits_consistent(tmp_path, capsys):
    mw, lib = metaworld_corpus(tmp_path / "data/mw"), libero_corpus(tmp_path / "demos")
    out = tmp_path / "runs/both"
    assert merge([str(mw), str(lib.parent), "--out", str(out), "--heldout-pairs", "2"]) == 0
    assert "panda 90" in capsys.readouterr().out
    rows = read_manifest(out / "manifest.jsonl")
    by_id = {r.clip_id: r for r in rows}
    assert len(rows) == len(read_manifest(mw)) + len(read_manifest(lib))
    assert {r.embodiment for r in rows} == {"sawyer", "panda"}
    for r in rows:
        assert all(resolve(out / "manifest.jsonl", p).is_file() for p in (r.path, r.episode))
    # a Meta-World clip keeps the split of its own corpus; cameras of one episode stay together
    for r in read_manifest(mw):
        assert by_id[r.clip_id].split == r.split
    # LIBERO demos share one file but are split one demo at a time
    lib_rows = [r for r in rows if r.source == "libero"]
    assert len({r.split for r in lib_rows if r.task.endswith("put_the_bowl_on_the_plate")}) > 1
    assert len({split_unit(r) for r in lib_rows}) == len(lib_rows)
    # compositional pairs are chosen over the union and are whole pairs
    summary = read_json(out / "merge_summary.json")
    held = [tuple(p) for p in summary["heldout_pairs"]]
    comp = read_manifest(out / "manifest_compositional.jsonl")
    assert len(held) == 2 and {(r.action, r.object) for r in comp if r.split == "test"} == set(held)
    units = [split_unit(r) for r in comp]
    check_compositional([ClipRecord(**{**r.__dict__, "episode": u}) for r, u in zip(comp, units)], held)
    assert summary["embodiments"] == {"panda": 90, "sawyer": 48}


def test_merge_rejects_collisions_missing_files_and_overwriting_a_source(tmp_path):
    mw = metaworld_corpus(tmp_path / "a")
    twin = metaworld_corpus(tmp_path / "b")
    with pytest.raises(MergeError, match="clip_id 'metaworld_drawer-close-v3_e0000_corner' is in both"):
        merge_manifests(MergeConfig(manifests=[str(mw), str(twin)], out_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
    with pytest.raises(MergeError, match="overwrite"):
        merge_manifests(MergeConfig(manifests=[str(mw)], out_dir=str(tmp_path / "a")))
    (tmp_path / "a/videos/drawer-close-v3/e0001_corner4.mp4").unlink()
    with pytest.raises(MergeError, match="e0001_corner4.mp4.*does not exist"):
        merge_manifests(MergeConfig(manifests=[str(mw)], out_dir=str(tmp_path / "out")))
    with pytest.raises(ConfigError, match="manifests"):
        MergeConfig(manifests=[], out_dir=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="heldout_pairs"):
        MergeConfig(manifests=[str(mw)], out_dir=str(tmp_path / "out"), heldout_pairs=-1)


def test_merge_drops_never_pretrain_tasks_and_carries_the_exclusion_record(tmp_path, capsys):
    from roboact.data.heldout import read_record, write_record

    mw = metaworld_corpus(tmp_path / "mw", tasks={**MW, "drawer-open-v3": ("open", "drawer")})
    write_record(mw.parent, {"plate-slide-side-v3": "same (action, object) as benchmark task plate-slide-v3",
                             "window-close-v3": "reserve task"})
    # a `roboact demos` folder holding a benchmark task beside one that may be pretrained on
    lib = libero_corpus(tmp_path / "demos", demos=4, tasks={"turn_on_the_stove": ("turn on", "stove"),
                                                          "put_the_bowl_on_the_plate": ("put", "bowl")})
    out = tmp_path / "both"
    assert merge([str(mw), str(lib), "--out", str(out), "--heldout-pairs", "0"]) == 0
    tasks = {r.task for r in read_manifest(out / "manifest.jsonl")}
    assert tasks == set(MW) | {"libero_goal/put_the_bowl_on_the_plate"}
    summary = read_json(out / "merge_summary.json")
    assert summary["dropped_clips"] == {"drawer-open-v3": 8, "libero_goal/turn_on_the_stove": 4}
    assert [i["dropped_never_pretrain"] for i in summary["inputs"]] == [8, 4]
    record = read_record(out)["excluded_tasks"]
    assert set(record) == {"drawer-open-v3", "libero_goal/turn_on_the_stove", "plate-slide-side-v3",
                           "window-close-v3"} == set(summary["excluded_tasks"])
    assert "benchmark task of `roboact policy --suite libero_goal`" in record["libero_goal/turn_on_the_stove"]
    # nothing left to merge is an error naming the tasks
    only = libero_corpus(tmp_path / "only", demos=2, tasks={"turn_on_the_stove": ("turn on", "stove")})
    with pytest.raises(MergeError, match="never enters pretraining.*turn_on_the_stove"):
        merge_manifests(MergeConfig(manifests=[str(only)], out_dir=str(tmp_path / "o2")))


def test_subjects_by_embodiment_name_the_arm_and_rebuild_the_captions(tmp_path):
    mw, lib = metaworld_corpus(tmp_path / "mw"), libero_corpus(tmp_path / "demos")
    assert merge([str(mw), str(lib), "--out", str(tmp_path / "kept")]) == 0
    assert {r.subject for r in read_manifest(tmp_path / "kept" / "manifest.jsonl")} == {"Robot"}  # default: as is
    assert merge([str(mw), str(lib), "--out", str(tmp_path / "arms"), "--subjects", "embodiment", "--heldout-pairs", "2"]) == 0
    rows = read_manifest(tmp_path / "arms" / "manifest.jsonl")
    assert {(r.embodiment, r.subject) for r in rows} == {("sawyer", "Sawyer"), ("panda", "Panda")}
    drawer = next(r for r in rows if r.task == "drawer-close-v3")
    assert drawer.caption == "Sawyer closes drawer, Action is close, Object is drawer."
    assert read_json(tmp_path / "arms" / "merge_summary.json")["subjects"] == {"Panda": 90, "Sawyer": 48}
    # the compositional manifest carries the same subjects
    assert {r.subject for r in read_manifest(tmp_path / "arms" / "manifest_compositional.jsonl")} == {"Sawyer", "Panda"}


def test_subjects_by_embodiment_refuse_an_unknown_arm(tmp_path):
    mw = metaworld_corpus(tmp_path / "mw")
    rows = read_manifest(mw)
    write_manifest(mw, [ClipRecord(**{**r.__dict__, "embodiment": "ur5"}) for r in rows])
    with pytest.raises(MergeError, match="embodiment 'ur5'.*known: panda, sawyer"):
        merge_manifests(MergeConfig(manifests=[str(mw)], out_dir=str(tmp_path / "o"), subjects="embodiment"))
    with pytest.raises(ConfigError, match="subjects"):
        MergeConfig(manifests=[str(mw)], out_dir=str(tmp_path / "o"), subjects="arm")
