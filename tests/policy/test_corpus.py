
import pytest

from roboact.data.manifest import ClipRecord, read_manifest, resolve, write_manifest
from roboact.data.manifest_ops import ManifestOpError, exclude_tasks
from roboact.policy.corpus import pretraining_info, task_key

from .conftest import save_checkpoint


def corpus(root, tasks=("drawer-open-v3", "plate-slide-v3", "door-open-v3")):
    rows = [ClipRecord(clip_id=f"{t}/{k}", path=f"videos/{t}/{k}.mp4", subject="Robot", action=t.split("-")[1],
                       object=t.split("-")[0], task=t, source="metaworld", episode=f"episodes/{t}/{k}.npz",
                       split="val" if k == 2 else "train") for t in tasks for k in range(3)]
    write_manifest(root / "corpus" / "manifest.jsonl", rows)
    return root / "corpus" / "manifest.jsonl"


def test_exclude_tasks_drops_clips_and_keeps_paths_valid(tmp_path):
    src = corpus(tmp_path)
    res = exclude_tasks(src, ["metaworld/drawer-open-v3", "plate-slide-v3", "dial-turn-v3"], tmp_path / "f" / "m.jsonl",
                        key=task_key)
    assert res["kept"] == 3 and res["dropped"] == {"drawer-open-v3": 3, "plate-slide-v3": 3}
    rows = read_manifest(tmp_path / "f" / "m.jsonl")
    assert {r.task for r in rows} == {"door-open-v3"}
    assert resolve(tmp_path / "f" / "m.jsonl", rows[0].path).resolve() == (tmp_path / "corpus" / "videos" /
                                                                          "door-open-v3" / "0.mp4").resolve()
    with pytest.raises(ManifestOpError, match="leaves no clips"):
        exclude_tasks(src, ["drawer-open-v3", "plate-slide-v3", "door-open-v3"], tmp_path / "g.jsonl", key=task_key)
    with pytest.raises(ManifestOpError, match="refusing to overwrite"):
        exclude_tasks(src, ["drawer-open-v3"], src, key=task_key)


def test_pretraining_corpus_is_read_from_the_checkpoint(tmp_path, tiny_clip_backbone, monkeypatch):
    src = corpus(tmp_path)
    filtered = tmp_path / "filtered.jsonl"
    exclude_tasks(src, ["drawer-open-v3", "plate-slide-v3"], filtered, key=task_key)
    eval_tasks = ["drawer-open-v3", "plate-slide-v3", "pick-place-v3", "dial-turn-v3"]
    for name, manifest, seen in (("all", src, ["drawer-open-v3", "plate-slide-v3"]), ("held", filtered, [])):
        extra = {"train": {"data": {"manifest": str(manifest), "train_splits": ["train"]}}}
        ckpt = save_checkpoint(tiny_clip_backbone, tmp_path / name, extra=extra)
        info = pretraining_info("roboact", str(ckpt), eval_tasks, "hf-clip")
        assert info["eval_tasks_seen"] == seen and info["num_clips"] == (6 if name == "all" else 2)
        assert "metaworld" in info["text"] and ("none" in info["text"]) == (not seen)
    lost = save_checkpoint(tiny_clip_backbone, tmp_path / "lost",
                           extra={"train": {"data": {"manifest": str(tmp_path / "gone.jsonl")}}})
    assert pretraining_info("roboact", str(lost), eval_tasks, "x")["text"].startswith("unknown")
    assert "no robot data" in pretraining_info("r3m", None, eval_tasks, "x")["text"]


def test_cli_writes_the_filtered_manifest(tmp_path, capsys):
    import argparse

    from roboact.policy.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    src = corpus(tmp_path)
    args = parser.parse_args(["policy", "--exclude-tasks", "--suite", "metaworld", "--manifest", str(src),
                              "--manifest-out", str(tmp_path / "out.jsonl")])
    assert args.func(args) == 0
    assert {r.task for r in read_manifest(tmp_path / "out.jsonl")} == {"door-open-v3"}  # the suite's four dropped
    assert "roboact train --manifest" in capsys.readouterr().out


def test_seen_or_unknown_corpus_is_refused_naming_task_and_checkpoint(tmp_path, tiny_clip_backbone):
    from roboact.policy.corpus import refuse_seen_tasks, seen_note
    from roboact.policy.suites import PolicyError

    from .conftest import corpus_manifest, trained_on

    eval_tasks = ["libero_goal/turn_on_the_stove", "open_the_middle_drawer_of_the_cabinet"]
    seen = corpus_manifest(tmp_path / "seen.jsonl", tasks=("libero_goal/turn_on_the_stove", "libero_goal/x"))
    clean = corpus_manifest(tmp_path / "clean.jsonl", tasks=("libero_goal/x",))
    cases = {"seen": trained_on(seen), "clean": trained_on(clean), "lost": trained_on(tmp_path / "gone.jsonl")}
    infos = {}
    for name, extra in cases.items():
        ckpt = save_checkpoint(tiny_clip_backbone, tmp_path / name, extra=extra)
        infos[name] = (str(ckpt), pretraining_info("roboact", str(ckpt), eval_tasks, "hf-clip"))
    # LIBERO names compare whatever form they take (suite prefix, instruction in words)
    assert infos["seen"][1]["eval_tasks_seen"] == ["turn_on_the_stove"]
    with pytest.raises(PolicyError, match=r"row 'R' \(checkpoint .*seen\).*evaluated task\(s\) turn_on_the_stove.*"
                                          "--allow-seen-tasks"):
        refuse_seen_tasks("R", [infos["seen"][0]], infos["seen"][1])
    with pytest.raises(PolicyError, match="cannot tell.*gone.jsonl not found.*--allow-seen-tasks"):
        refuse_seen_tasks("R", [infos["lost"][0]], infos["lost"][1])
    refuse_seen_tasks("R", [infos["clean"][0]], infos["clean"][1])
    assert seen_note(infos["clean"][1]) == ""
    assert seen_note(infos["seen"][1]) == " [pretrained on evaluated tasks: turn_on_the_stove]"
    assert seen_note(infos["lost"][1]) == " [pretraining corpus unknown]"
    assert task_key("Turn on the stove") == task_key("libero_goal/turn_on_the_stove") == "turn_on_the_stove"
