"""`roboact curate manifest` on bad inputs: each gets a clear error or a rejection row; finished work is kept."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from roboact.cli import main
from roboact.data.curate import CurateConfig, curate
from roboact.data.curate.items import TrimSpec
from roboact.data.curate.timestamps import TimestampError, frame_window, load_color_timestamps
from roboact.data.manifest import read_manifest
from roboact.utils.config import ConfigError
from tests.data.curate.mini_rh20t import video


def zero_frame_mp4(path: Path) -> Path:
    """An mp4 container that was opened for writing but never got a frame."""
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        c.start_encoding()
    return path


@pytest.fixture
def videos(tmp_path) -> Path:
    d = tmp_path / "data"
    video(d / "good.mp4", 6)
    video(d / "other.mp4", 5)
    trunc = video(d / "trunc.mp4", 6)
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    zero_frame_mp4(d / "zero.mp4")
    (d / "empty.mp4").write_bytes(b"")
    return d


def jsonl_line(**row) -> bytes:
    return json.dumps(row).encode() + b"\n"


def test_every_bad_row_is_a_rejection_with_reason(videos, tmp_path):
    lines = [
        jsonl_line(path="good.mp4", instruction="Open the drawer", clip_id="c1", task="drawer"),
        jsonl_line(path="nope.mp4", instruction="Open the drawer"),
        jsonl_line(path="trunc.mp4", instruction="Open the drawer"),
        jsonl_line(path="zero.mp4", instruction="Open the drawer"),
        jsonl_line(path="empty.mp4", instruction="Open the drawer"),
        jsonl_line(path="other.mp4", instruction="Open the drawer " + "very " * 20_000),    # 100 kB
        b'{"path": "other.mp4", "instruction": "Open the \xff\xfe drawer"}\n',             # not UTF-8
        jsonl_line(path="other.mp4", instruction="Open the \ufffd drawer", clip_id="c9"),   # replacement char
        jsonl_line(path="other.mp4", instruction="Press the button", clip_id="c1"),         # duplicate id
        jsonl_line(path="other.mp4"),                                                       # no instruction
        b"{not json\n",
        jsonl_line(path="other.mp4", instruction="   \t "),
        jsonl_line(path="other.mp4", instruction="Pick up the cup and place it in the bin", clip_id="m"),
        jsonl_line(path="other.mp4", instruction="Press the button", split="holdout", clip_id="s"),
        jsonl_line(path="other.mp4", instruction="Press the green button", subject="Human", split="val"),
    ]
    listing = videos / "list.jsonl"
    listing.write_bytes(b"".join(lines))
    res = curate(CurateConfig("manifest", str(listing), str(tmp_path / "out"), progress=False))

    assert [(r.clip_id, r.subject, r.action, r.object, r.num_frames, r.split) for r in res.records] == \
        [("c1", "Robot", "open", "drawer", 6, "train"), ("other", "Human", "press", "button", 5, "val")]
    codes = Counter(r.code for r in res.rejections)
    assert codes == {"no_video": 1, "unreadable_video": 3, "bad_instruction": 3, "bad_row": 4,
                     "duplicate_id": 1, "multi_action": 1}
    reasons = " | ".join(r.reason for r in res.rejections)
    for needle in ("video file not found", "cannot open video", "video file is empty", "no video stream",
                   "instruction too long (100015 characters", "list.jsonl:7: line is not valid UTF-8",
                   "instruction is not valid UTF-8", "duplicate clip_id 'c1' (first at list.jsonl:1)",
                   "missing or non-text column 'instruction'", "not valid JSON", "empty instruction",
                   "split must be one of"):
        assert needle in reasons, needle
    written = [json.loads(x) for x in (tmp_path / "out" / "rejections.jsonl").read_text().splitlines()]
    assert len(written) == len(res.rejections) == 13
    assert len(read_manifest(tmp_path / "out" / "manifest.jsonl")) == 2


def test_csv_list_with_a_non_utf8_row(videos, tmp_path):
    listing = videos / "list.csv"
    listing.write_bytes(b"path,instruction,task,note\n"
                        b"good.mp4,Open the drawer,t1,kept in extra\n"
                        b"other.mp4,Wipe the t\xe4ble,t2,\n"
                        b'other.mp4,"Push the box, slowly",t3,\n')
    res = curate(CurateConfig("manifest", str(listing), str(tmp_path / "out"), progress=False))
    assert [(r.clip_id, r.action, r.object) for r in res.records] == [("good", "open", "drawer"),
                                                                      ("other", "push", "box")]
    assert res.records[0].extra["note"] == "kept in extra" and res.records[0].task == "t1"
    assert [(r.code, r.reason) for r in res.rejections] == [("bad_row", "list.csv:3: row is not valid UTF-8")]


@pytest.mark.parametrize("content, name, msg", [
    (None, "list.jsonl", "video list not found"),
    (b"", "list.jsonl", "video list is empty"),
    (b"\n  \n", "list.jsonl", "video list is empty"),
    (b"path,instruction\n", "list.csv", "video list has no rows"),
])
def test_missing_or_empty_list_is_a_clear_error(tmp_path, capsys, content, name, msg):
    listing = tmp_path / name
    if content is not None:
        listing.write_bytes(content)
    assert main(["curate", "manifest", str(listing), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert msg in err and name in err


def test_nothing_accepted_still_writes_outputs_and_exits_1(videos, tmp_path, capsys):
    listing = videos / "list.jsonl"
    listing.write_bytes(jsonl_line(path="trunc.mp4", instruction="Open the drawer"))
    out = tmp_path / "out"
    assert main(["curate", "manifest", str(listing), "--out", str(out), "--no-progress"]) == 1
    assert "no clip was accepted" in capsys.readouterr().err
    assert (out / "manifest.jsonl").read_text() == "" and (out / "summary.md").is_file()
    assert json.loads((out / "rejections.jsonl").read_text())["code"] == "unreadable_video"


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="workers"):
        CurateConfig("manifest", "x.csv", "out", workers=0)
    with pytest.raises(ConfigError, match="source"):
        CurateConfig("youtube", "x.csv", "out")


def test_timestamps_loader_refuses_code_in_the_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    arr = np.empty((), dtype=object)
    arr[()] = {"color": Evil()}
    np.save(tmp_path / "evil.npy", arr, allow_pickle=True)
    with pytest.raises(TimestampError, match="refusing to load builtins.print"):
        load_color_timestamps(tmp_path / "evil.npy")


def test_timestamps_dict_array_and_window(tmp_path):
    np.save(tmp_path / "d.npy", {"color": np.array([10, 20, 30, 40], np.int64)}, allow_pickle=True)
    np.save(tmp_path / "a.npy", np.array([10, 20, 30, 40]))
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    assert load_color_timestamps(tmp_path / "d.npy").tolist() == [10, 20, 30, 40]
    assert frame_window(TrimSpec(15, 30, tmp_path / "a.npy"), 4) == (1, 3)
    assert frame_window(TrimSpec(15, 40, tmp_path / "a.npy"), 3) == (1, 3)     # video shorter than stamps
    with pytest.raises(ValueError, match="covers none"):
        frame_window(TrimSpec(50, 60, tmp_path / "a.npy"), 4)
    with pytest.raises(TimestampError, match="bad.npy"):
        load_color_timestamps(tmp_path / "bad.npy")
