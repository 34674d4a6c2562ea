"""`roboact curate lerobot`: local LeRobot datasets (v3.0 and v2.1, built by hand in mini_lerobot.py) become
clips, one per (episode, camera), with the episode's task as the instruction; v3.0 clips carry their stretch
of the shared mp4 and extract decodes only that stretch; bad input is an error or a rejection naming the
file and field, and the rest is still curated."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from roboact.cli import main  # noqa: E402
from roboact.data.curate.pipeline import CurateConfig, curate  # noqa: E402
from roboact.data.extract import decode_clip  # noqa: E402
from roboact.data.manifest import read_manifest, resolve  # noqa: E402
from tests.data.curate import mini_lerobot as ml  # noqa: E402

TOP, WRIST = ml.CAMERAS


@pytest.fixture()
def v30(tmp_path):
    return ml.build_v30(tmp_path / "v30")


@pytest.fixture()
def v21(tmp_path):
    return ml.build_v21(tmp_path / "v21")


def _curate(root, out, **kw):
    return curate(CurateConfig(source="lerobot", input=str(root), out_dir=str(out), progress=False, **kw))


def _by_id(result):
    return {r.clip_id: r for r in result.records}, {r.id: r for r in result.rejections}


def _patch_parquet(path, column, fn):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    i = table.column_names.index(column)
    col = table.column(column)
    pq.write_table(table.set_column(i, column, pa.array(fn(col.to_pylist()), col.type)), path)


def test_v30_clips_instructions_and_time_ranges(v30, tmp_path):
    res = _curate(v30, tmp_path / "out")
    clips, rejected = _by_id(res)
    assert sorted(clips) == [f"v30__episode_{e:06d}__{c}" for e in (0, 2) for c in (TOP, WRIST)]
    ep2 = clips[f"v30__episode_000002__{TOP}"]
    assert (ep2.instruction, ep2.action, ep2.object, ep2.camera) == ("close the drawer", "close", "drawer", TOP)
    assert ep2.extra["time_range"] == [0.0, 0.5] and ep2.num_frames == 5      # alone in file-001
    assert ep2.path.endswith("file-001.mp4") and ep2.source == "lerobot" and ep2.embodiment == "so100"
    ep0 = clips[f"v30__episode_000000__{WRIST}"]
    assert ep0.extra["time_range"] == [0.0, 0.6] and ep0.num_frames == 6 and ep0.extra["source_num_frames"] == 14
    assert {rejected[f"v30__episode_000001__{c}"].code for c in (TOP, WRIST)} == {"multi_action"}
    assert "2 actions" in rejected[f"v30__episode_000001__{TOP}"].reason


def test_v21_clips_are_whole_files(v21, tmp_path):
    clips, rejected = _by_id(_curate(v21, tmp_path / "out"))
    assert sorted(clips) == [f"v21__episode_{e:06d}__{c}" for e in (0, 2) for c in (TOP, WRIST)]
    rec = clips[f"v21__episode_000002__{WRIST}"]
    assert rec.path.endswith(f"{WRIST}/episode_000002.mp4") and rec.num_frames == 5
    assert "time_range" not in rec.extra and rec.instruction == "close the drawer"
    assert rejected[f"v21__episode_000001__{TOP}"].code == "multi_action"


@pytest.mark.parametrize("build", [ml.build_v30, ml.build_v21])
def test_extract_decodes_the_episode_not_its_neighbours(build, tmp_path):
    """Episode 1 sits between episodes 0 and 2 in v3.0's file-000: every sampled frame has its colour."""
    root = build(tmp_path / "ds")
    out = tmp_path / "out"
    assert _curate(root, out, episodes=[1, 2]).records  # episode 1 is multi-action: use its range directly
    from roboact.data.lerobot.dataset import LeRobotDataset

    ds = LeRobotDataset(root)
    ep1 = ds.episodes([1])[0]
    ref = ep1.videos[TOP]
    frames, idx, length = decode_clip(str(ref.path), 4, time_range=ref.time_range)
    colour = np.array(ml.COLOURS[1])
    assert length == ml.LENGTHS[1] and np.abs(frames.numpy().astype(int) - colour).max() <= 8
    if ref.time_range:                                     # v3.0: indices are the file's frames 6..13
        assert idx.tolist() == [6, 8, 11, 13]
    man = out / "manifest.jsonl"
    for rec in read_manifest(man):                         # what `roboact extract` passes for each clip
        got, _, _ = decode_clip(str(resolve(man, rec.path)), 3, rec.extra.get("frame_range"),
                                rec.extra.get("time_range"))
        want = np.array(ml.COLOURS[rec.extra["episode_index"]])
        want = 255 - want if rec.camera == WRIST else want
        assert np.abs(got.numpy().astype(int) - want).max() <= 8, rec.clip_id


def test_read_frames_at_seeks_instead_of_decoding_from_the_start(tmp_path, monkeypatch):
    """A late stretch of a long file costs a few frames, not the whole file."""
    import av

    from roboact.data.video import Mp4Writer, read_frames_at

    path = tmp_path / "long.mp4"
    with Mp4Writer(path, fps=10, gop=2) as w:
        for i in range(300):
            w.add(np.full((16, 16, 3), i % 250, np.uint8))
    decoded = []
    real_open = av.open

    class Counting:
        def __init__(self, c):
            self._c = c

        def __getattr__(self, name):
            return getattr(self._c, name)

        def decode(self, *a, **k):
            for f in self._c.decode(*a, **k):
                decoded.append(f.pts)
                yield f

    monkeypatch.setattr(av, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    got = read_frames_at(path, np.array([28.0, 28.5, 29.0]))
    assert np.abs(got[:, 0, 0, 0].astype(int) - np.array([30, 35, 40])).max() <= 3
    assert 11 <= len(decoded) <= 15          # 28.0-29.0 s spans 11 frames; a full decode would be 291


def test_cameras_and_episodes_filters_from_the_command_line(v30, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["curate", "lerobot", str(v30), "--out", str(out), "--no-progress", "--cameras", "wrist",
                 "--episodes", "0", "2-2"]) == 0
    rows = read_manifest(out / "manifest.jsonl")
    assert [(r.extra["episode_index"], r.camera) for r in rows] == [(0, WRIST), (2, WRIST)]
    assert json.loads((out / "curate_config.json").read_text())["episodes"] == [0, 2]
    assert main(["curate", "lerobot", str(v30), "--out", str(out), "--cameras", "side"]) == 2
    err = capsys.readouterr().err
    assert "--cameras 'side': no such camera" in err and "info.json" in err and TOP in err
    assert main(["curate", "lerobot", str(v30), "--out", str(out), "--episodes", "7"]) == 2
    assert "no episode 7 in the dataset" in capsys.readouterr().err
    assert main(["curate", "manifest", "x.csv", "--out", str(out), "--episodes", "1"]) == 2
    assert "episodes: applies to a LeRobot dataset only" in capsys.readouterr().err


def test_not_a_dataset_and_unknown_version_are_clear_errors(v30, tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["curate", "lerobot", str(plain), "--out", str(tmp_path / "o")]) == 2
    assert "not a LeRobot dataset (no meta/info.json)" in capsys.readouterr().err
    info = v30 / "meta" / "info.json"
    info.write_text(info.read_text().replace('"v3.0"', '"v1.6"'))
    assert main(["curate", "lerobot", str(v30), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "info.json: codebase_version 'v1.6' is not supported" in err and "v2.1" in err


def test_bad_episodes_are_rejected_naming_file_and_field_and_the_rest_is_curated(v30, tmp_path):
    # a missing video file: episode 2's wrist camera (file-001); a time range past its mp4: episode 0's top;
    # a task index with no task: episode 2's frames; a camera's columns missing: episode 0's wrist
    (v30 / "videos" / WRIST / "chunk-000" / "file-001.mp4").unlink()
    eps = v30 / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    _patch_parquet(eps, f"videos/{TOP}/to_timestamp", lambda v: [9.0] + v[1:])
    _patch_parquet(eps, f"videos/{WRIST}/from_timestamp", lambda v: [None] + v[1:])
    data = v30 / "data" / "chunk-000" / "file-000.parquet"
    res = _curate(v30, tmp_path / "out", episodes=[0, 2])
    clips, rejected = _by_id(res)
    assert sorted(clips) == [f"v30__episode_000002__{TOP}"]
    r = rejected[f"v30__episode_000002__{WRIST}"]
    assert r.code == "no_video" and "file-001.mp4: video file not found" in r.reason
    r = rejected[f"v30__episode_000000__{TOP}"]
    assert r.code == "bad_time_range" and "[0.000, 9.000) s" in r.reason and "lies outside the video" in r.reason
    assert "from_timestamp, to_timestamp" in r.reason and "file-000.parquet row 0" in r.reason
    r = rejected[f"v30__episode_000000__{WRIST}"]
    assert r.code == "no_video" and f"no videos/{WRIST}/from_timestamp" in r.reason and "file-000.parquet" in r.reason

    _patch_parquet(data, "task_index", lambda v: [7 if t == 2 else t for t in v])
    clips, rejected = _by_id(_curate(v30, tmp_path / "out2", episodes=[0, 2], cameras=[TOP]))
    r = rejected[f"v30__episode_000002__{TOP}"]
    assert r.code == "no_language" and "task_index 7 of episode 2 has no task in meta/tasks.parquet" in r.reason
    assert str(data) in r.reason and not clips                 # episode 0's top is still out of range


def test_unreadable_frames_reject_only_their_episodes(v21, tmp_path):
    (v21 / "data" / "chunk-000" / "episode_000002.parquet").write_bytes(b"not parquet")
    clips, rejected = _by_id(_curate(v21, tmp_path / "out"))
    assert sorted(clips) == [f"v21__episode_000000__{c}" for c in (TOP, WRIST)]
    r = rejected[f"v21__episode_000002__{TOP}"]
    assert r.code == "bad_metadata" and "episode_000002.parquet: not a readable parquet file" in r.reason


def test_several_tasks_in_one_episode_make_it_multi_action(v21, tmp_path):
    _patch_parquet(v21 / "data" / "chunk-000" / "episode_000000.parquet", "task_index", lambda v: [0, 0, 0, 2, 2, 2])
    clips, rejected = _by_id(_curate(v21, tmp_path / "out", cameras=[TOP]))
    r = rejected[f"v21__episode_000000__{TOP}"]
    assert r.code == "multi_action" and r.instruction == "open the drawer. close the drawer"
