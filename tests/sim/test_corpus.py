"""The Meta-World corpus end to end: CLI, records, videos, resume, determinism, failures, manifests."""
from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest

pytest.importorskip("metaworld")

from roboact.data.manifest import ClipRecord, read_manifest, resolve  # noqa: E402
from roboact.data.splits import check_compositional, check_no_episode_leakage  # noqa: E402
from roboact.data.video import read_frames  # noqa: E402
from roboact.sim import cli as sim_cli  # noqa: E402
from roboact.data.manifest_ops import write_split_manifests  # noqa: E402
from roboact.sim.corpus import CorpusConfig, build_corpus  # noqa: E402
from roboact.sim.metaworld import ATOMIC_TASKS  # noqa: E402
from roboact.utils.config import ConfigError  # noqa: E402
from roboact.utils.io import read_json  # noqa: E402

pytestmark = pytest.mark.sim

TASKS = "handle-press-v3,coffee-button-v3"   # the two shortest expert episodes (~35-40 steps)
AFTER = 3


def simulate(argv: list[str]) -> int:
    """Run `roboact simulate ...` through the subcommand's own parser (what `roboact` main does)."""
    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", *argv])
    return args.func(args)


def tiny_args(out, *extra: str) -> list[str]:
    return ["metaworld", "--out", str(out), "--tasks", TASKS, "--episodes", "2", "--cameras", "corner",
            "--image-size", "48", "--frames-after-success", str(AFTER), "--no-progress", *extra]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("mw") / "corpus"
    assert simulate(tiny_args(out)) == 0
    return out


def _records(out) -> dict[str, dict[str, np.ndarray]]:
    return {p.relative_to(out).as_posix(): dict(np.load(p)) for p in sorted(out.glob("episodes/*/*.npz"))}


def test_manifest_rows_records_and_videos(corpus):
    manifest = corpus / "manifest.jsonl"
    rows = read_manifest(manifest)
    assert len(rows) == 4 and {r.task for r in rows} == set(TASKS.split(","))
    check_no_episode_leakage(rows)
    for r in rows:
        lab = ATOMIC_TASKS[r.task]
        assert (r.subject, r.action, r.object, r.camera) == ("Robot", lab.action, lab.object, "corner")
        assert (r.source, r.embodiment, r.fps) == ("metaworld", "sawyer", 80.0)
        assert r.caption == f"Robot presses {lab.object}, Action is press, Object is {lab.object}."
        rec = np.load(resolve(manifest, r.episode))
        t = r.num_frames
        assert rec["states"].shape == (t, 39) and rec["proprio"].shape == (t, 4)
        assert rec["actions"].shape == (t - 1, 4) and rec["rewards"].shape == (t - 1,)
        k = int(rec["success_frame"])
        assert rec["success"][k] and not rec["success"][:k].any() and t == k + AFTER + 1
        frames = read_frames(resolve(manifest, r.path))
        assert frames.shape == (t, 48, 48, 3)
    summary = read_json(corpus / "summary.json")
    # the corpus says which tasks it left out and why, in its summary and beside its manifests
    from roboact.data.heldout import read_record

    left_out = summary["excluded_tasks"]
    assert {"drawer-open-v3", "window-close-v3", "door-open-v3", "plate-slide-side-v3"} <= set(left_out)
    assert "reserve task" in left_out["window-close-v3"] and "benchmark task" in left_out["drawer-open-v3"]
    assert read_record(corpus)["excluded_tasks"] == left_out and summary["near_duplicates_included"] == []
    assert summary["episodes_kept"] == 4 and summary["episodes_failed"] == 0 and summary["clips"] == 4


def test_rerun_skips_finished_episodes_and_rebuilds_what_was_lost(corpus, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(corpus, out)
    before, records = (out / "manifest.jsonl").read_text(), _records(out)
    assert simulate(tiny_args(out)) == 0
    assert read_json(out / "summary.json")["episodes_simulated_now"] == 0
    assert (out / "manifest.jsonl").read_text() == before
    # a crash after one episode's files but before its meta, and before the manifest was written
    (out / "episodes/coffee-button-v3/e0001.json").unlink()
    (out / "manifest.jsonl").unlink()
    assert simulate(tiny_args(out)) == 0
    summary = read_json(out / "summary.json")
    assert (summary["episodes_simulated_now"], summary["episodes_skipped_done"]) == (1, 3)
    assert (out / "manifest.jsonl").read_text() == before
    after = _records(out)
    assert all(np.array_equal(records[f][k], after[f][k]) for f in records for k in records[f])


def test_same_corpus_for_any_worker_count(corpus, tmp_path):
    cfg = CorpusConfig(out_dir=str(tmp_path / "w2"), tasks=TASKS.split(","), episodes_per_task=2,
                       cameras=["corner"], image_size=48, frames_after_success=AFTER, workers=2, progress=False)
    build_corpus(cfg)
    assert (tmp_path / "w2/manifest.jsonl").read_text() == (corpus / "manifest.jsonl").read_text()
    one, two = _records(corpus), _records(tmp_path / "w2")
    assert one.keys() == two.keys()
    assert all(np.array_equal(one[f][k], two[f][k]) for f in one for k in one[f])
    clip = "videos/handle-press-v3/e0001_corner.mp4"
    assert np.array_equal(read_frames(corpus / clip), read_frames(tmp_path / "w2" / clip))


def test_failed_episode_is_counted_and_not_kept(tmp_path, capsys):
    out = tmp_path / "fail"
    argv = ["metaworld", "--out", str(out), "--tasks", "handle-press-v3", "--episodes", "1", "--cameras",
            "corner", "--image-size", "32", "--max-steps", "5", "--no-progress"]
    assert simulate(argv) == 1
    assert "0 episodes kept (0 clips), 1 failed" in capsys.readouterr().out
    summary = read_json(out / "summary.json")
    assert summary["per_task"]["handle-press-v3"] == {"kept": 0, "failed": 1, "error": 0}
    assert read_json(out / "episodes/handle-press-v3/e0000.json")["status"] == "failed"
    assert not list(out.glob("videos/**/*.mp4")) and (out / "manifest.jsonl").read_text() == ""


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="tasks: unknown task.*labelled tasks"):
        CorpusConfig(out_dir=str(tmp_path), tasks=["drawer-opne-v3"])
    with pytest.raises(ConfigError, match="cameras: .*valid cameras"):
        CorpusConfig(out_dir=str(tmp_path), cameras=["gripperPOV"])
    with pytest.raises(ConfigError, match="image_size"):
        CorpusConfig(out_dir=str(tmp_path), image_size=8)


def test_default_tasks_never_hold_a_never_pretrain_task_and_naming_one_is_refused(tmp_path):
    from roboact.data.heldout import BENCHMARK_TASKS, RESERVE_TASKS, never_pretrain

    never = set(never_pretrain())
    assert set(BENCHMARK_TASKS["metaworld"]) | set(RESERVE_TASKS["metaworld"]) <= never
    cfg = CorpusConfig(out_dir=str(tmp_path))
    near = {"plate-slide-side-v3", "pick-place-wall-v3", "pick-out-of-hole-v3", "bin-picking-v3"}
    assert not set(cfg.tasks) & (never | near)
    assert cfg.tasks == [t for t in ATOMIC_TASKS if t not in never | near]   # every other labelled task, in order
    assert set(cfg.excluded_tasks()) == (never & set(ATOMIC_TASKS)) | near
    assert "pick-place-v3" in cfg.excluded_tasks()["pick-out-of-hole-v3"]
    for task in sorted(never & set(ATOMIC_TASKS)):  # no option lets the never-list in
        for near_ok in (False, True):
            with pytest.raises(ConfigError, match=f"tasks: '{task}' never enters a pretraining corpus"):
                CorpusConfig(out_dir=str(tmp_path), tasks=["drawer-close-v3", task], include_near_duplicates=near_ok)
    with pytest.raises(ConfigError, match="same .action, object. as benchmark task plate-slide-v3.*"
                                          "--include-near-duplicates"):
        CorpusConfig(out_dir=str(tmp_path), tasks=["plate-slide-side-v3"])
    both = CorpusConfig(out_dir=str(tmp_path), include_near_duplicates=True)
    assert near <= set(both.tasks) and not set(both.tasks) & never
    assert CorpusConfig(out_dir=str(tmp_path), tasks=["plate-slide-side-v3"], include_near_duplicates=True).tasks == \
        ["plate-slide-side-v3"]


def test_compositional_manifest_holds_out_whole_pairs(tmp_path):
    rows = [ClipRecord(clip_id=f"{t}_e{e}_{c}", path=f"videos/{t}/e{e}_{c}.mp4", subject="Robot",
                       action=lab.action, object=lab.object, task=t, camera=c, episode=f"episodes/{t}/e{e}.npz")
            for t, lab in ATOMIC_TASKS.items() for e in range(3) for c in ("corner", "corner4")]
    info = write_split_manifests(tmp_path, rows, val_fraction=0.1, test_fraction=0.1, heldout_pairs=3, seed=5)
    comp = read_manifest(tmp_path / info["manifest_compositional"])
    held = [tuple(p) for p in info["heldout_pairs"]]
    assert len(held) == 3
    check_compositional(comp, held)
    assert {(r.action, r.object) for r in comp if r.split == "test"} == set(held)
    check_no_episode_leakage(read_manifest(tmp_path / "manifest.jsonl"))


def test_video_steps_keep_at_least_n_frames_at_one_stride_ending_on_the_last():
    from roboact.sim.corpus import video_steps

    assert video_steps(10, 0) == list(range(10))
    assert video_steps(10, 16) == list(range(10))           # short episode: every frame
    for t, n in [(64, 32), (83, 32), (204, 32), (41, 8), (17, 2)]:
        steps = video_steps(t, n)
        strides = {b - a for a, b in zip(steps, steps[1:])}
        assert len(steps) >= n and steps[-1] == t - 1 and steps[0] >= 0 and len(strides) == 1, (t, n, steps)
        assert steps[0] < next(iter(strides))                # no room left for another frame at the start


def test_video_frames_renders_only_kept_frames_with_the_same_pixels_and_records(corpus, tmp_path):
    """The two-pass episode (physics only, then render the kept steps) must give exactly the full render's
    pixels at those steps, the same record, and metas that say how video frames map to record frames."""
    import dataclasses

    from roboact.sim.corpus import EpisodeJob, episode_seed, rollout

    task = TASKS.split(",")[0]
    job = EpisodeJob(task, 0, episode_seed(0, task, 0), ("corner",), 48, 200, AFTER, 20, str(tmp_path), ("light",))
    full, sub = rollout(job), rollout(dataclasses.replace(job, video_frames=8))
    steps = sub["video_steps"]
    assert 8 <= len(steps) < len(full["states"]) and steps[-1] == len(full["states"]) - 1
    assert np.array_equal(full["frames"]["corner"][steps], sub["frames"]["corner"])
    for key in ("states", "actions", "success"):
        assert np.array_equal(full[key], sub[key])

    out = tmp_path / "sub"
    assert simulate(tiny_args(out, "--video-frames", "8")) == 0
    rows = read_manifest(out / "manifest.jsonl")
    assert len(rows) == 4
    for r in rows:
        meta = read_json(out / r.episode.replace(".npz", ".json"))
        assert meta["settings"]["video_frames"] == 8 and meta["num_frames"] == r.num_frames >= 8
        assert meta["video_first"] + (r.num_frames - 1) * meta["video_stride"] == meta["record_frames"] - 1
        assert r.fps == pytest.approx(80.0 / meta["video_stride"])
        assert len(read_frames(resolve(out / "manifest.jsonl", r.path))) == r.num_frames
    # the full-rate corpus's episodes are not reused for other settings, and its own stay valid
    assert read_json(corpus / "episodes" / task / "e0000.json")["settings"].get("video_frames") is None
    with pytest.raises(ConfigError, match="video_frames"):
        CorpusConfig(out_dir=str(tmp_path), video_frames=1)
