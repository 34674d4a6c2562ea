"""`roboact split` on a small manifest: each kind keeps its promise, paths stay valid, bad input is named."""
import json

import pytest

from roboact.cli import main
from roboact.data.manifest import ClipRecord, read_manifest, resolve, write_manifest


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for a, o in (("open", "drawer"), ("close", "drawer"), ("open", "window"), ("close", "window")):
        for e in range(6):
            for cam in ("corner", "corner3"):
                cid = f"{a}-{o}-{e}-{cam}"
                rows.append(ClipRecord(clip_id=cid, path=f"videos/{cid}.mp4", subject="Robot", action=a, object=o,
                                       camera=cam, episode=f"episodes/{a}-{o}-{e}.npz", task=f"{a}-{o}"))
    path = tmp_path / "corpus" / "manifest.jsonl"
    path.parent.mkdir()
    write_manifest(path, rows)
    return path


def test_camera_split_keeps_held_out_cameras_out_of_training(manifest, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "m.jsonl"
    assert main(["split", str(manifest), "--by", "camera", "--cameras", "corner3", "--test-fraction", "0.3",
                 "--out", str(out)]) == 0
    rows = read_manifest(out)
    assert {r.camera for r in rows if r.split != "test"} == {"corner"}
    assert {r.camera for r in rows if r.split == "test"} == {"corner3"}
    # relative paths now point from the new folder to the same files
    assert resolve(out, rows[0].path).resolve() == (manifest.parent / "videos" / f"{rows[0].clip_id}.mp4").resolve()
    assert json.loads(capsys.readouterr().out)["heldout_cameras"] == ["corner3"]


def test_compositional_split_by_named_pairs(manifest, tmp_path):
    out = tmp_path / "c.jsonl"
    assert main(["split", str(manifest), "--by", "compositional", "--pairs", "close:window", "--out", str(out)]) == 0
    rows = read_manifest(out)
    assert {(r.action, r.object) for r in rows if r.split == "test"} == {("close", "window")}
    assert ("close", "window") not in {(r.action, r.object) for r in rows if r.split != "test"}


@pytest.mark.parametrize("argv, message", [
    (["--by", "camera", "--cameras", "nope"], "unknown camera 'nope'"),
    (["--by", "camera", "--cameras", "corner,corner3"], "leaves none to train on"),
    (["--by", "compositional", "--pairs", "fly:drawer"], "has no clip"),
    (["--by", "compositional", "--pairs", "open-drawer"], "is not 'action:object'"),
])
def test_bad_requests_are_named(manifest, tmp_path, capsys, argv, message):
    assert main(["split", str(manifest), *argv, "--out", str(tmp_path / "x.jsonl")]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "x.jsonl").exists()


def test_refuses_to_overwrite_its_input(manifest, capsys):
    assert main(["split", str(manifest), "--by", "episode", "--out", str(manifest)]) == 2
    assert "is the input manifest" in capsys.readouterr().out


def test_config_file_and_set_reach_the_split_and_flags_win(manifest, tmp_path, capsys):
    cfg = tmp_path / "split.json"
    cfg.write_text(json.dumps({"manifest": str(manifest), "out": str(tmp_path / "from-file.jsonl"),
                               "by": "compositional", "pairs": [["open", "drawer"]], "val_fraction": 0.2}))
    out = tmp_path / "c.jsonl"
    assert main(["split", "--config", str(cfg), "--set", 'pairs=[["close", "window"]]', "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["heldout_pairs"] == [["close", "window"]]
    rows = read_manifest(out)
    assert {(r.action, r.object) for r in rows if r.split == "test"} == {("close", "window")}
    assert not (tmp_path / "from-file.jsonl").exists()        # --out won over the file's
    assert main(["split", str(manifest), "--config", str(cfg), "--pairs", "open:window", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["heldout_pairs"] == [["open", "window"]]


def test_bad_set_is_named_before_reading_the_manifest(tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert main(["split", str(tmp_path / "none.jsonl"), "--by", "episode", "--out", str(out),
                 "--set", "val_fractoin=0.2"]) == 2
    err = capsys.readouterr().err
    assert "val_fractoin: unknown config field for SplitConfig" in err and "val_fraction" in err
    assert main(["split", str(tmp_path / "none.jsonl"), "--out", str(out), "--set", "by=hash"]) == 2
    assert "by: 'hash' is not one of" in capsys.readouterr().err
    assert not out.exists()
