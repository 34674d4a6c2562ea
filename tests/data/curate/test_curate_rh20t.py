"""`roboact curate rh20t` on the miniature RH20T tree: manifest, Table I, rejections, trimming, reruns."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from roboact.cli import main
from roboact.data.captions import atomic_caption
from roboact.data.curate import CurateConfig, curate
from roboact.data.curate.annotate_llm import LLMConfig
from roboact.data.manifest import read_manifest, resolve
from tests.data.curate.fake_llm import FakeChatServer, answer
from tests.data.curate.mini_rh20t import EXPECTED


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_cli_yields_manifest_and_table_i(mini_rh20t, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["curate", "rh20t", str(mini_rh20t), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| Total Videos | 5 |" in printed and "| Total Frames | 40 |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["total_videos"], summary["unique_tasks"], summary["distinct_actions"], summary["total_frames"]) \
        == (EXPECTED["videos"], EXPECTED["tasks"], EXPECTED["actions"], EXPECTED["frames"])
    assert summary["rejected_by_code"] == EXPECTED["rejected"]
    assert "| Distinct Atomic Actions | 2 |" in (out / "summary.md").read_text()

    manifest = read_manifest(out / "manifest.jsonl")
    assert {(r.action, r.object) for r in manifest} == {("open", "drawer"), ("press", "button")}
    for r in manifest:
        assert r.caption == atomic_caption(r.subject, r.action, r.object)
        assert resolve(out / "manifest.jsonl", r.path).is_file()
        assert r.source == "rh20t" and r.split == "train" and r.fps == 10.0
        assert r.subject == ("Human" if r.clip_id.split("__")[0].endswith("_human") else "Robot")
    by_id = {r.clip_id: r for r in manifest}
    assert by_id["task_0005_user_0003_scene_0001_cfg_0005__cam_A"].embodiment == "franka"
    assert by_id["task_0001_user_0001_scene_0001_cfg_0003__cam_B"].path.endswith("cam_B/color/color.mp4")
    assert by_id["task_0001_user_0001_scene_0001_cfg_0003__cam_A"].caption == \
        "Robot opens drawer, Action is open, Object is drawer."


def test_every_rejection_names_its_file_and_reason(mini_rh20t, tmp_path):
    out = tmp_path / "out"
    curate(CurateConfig("rh20t", str(mini_rh20t), str(out), progress=False))
    rej = rows(out / "rejections.jsonl")
    assert Counter(r["code"] for r in rej) == EXPECTED["rejected"]
    assert all(r["path"] and r["reason"] and r["id"] for r in rej)
    by_code = {r["code"]: r for r in rej}
    assert by_code["low_rating"]["reason"] == "rating 1 < min_rating 2"
    assert by_code["no_video"]["path"].endswith("cam_C")
    assert by_code["multi_action"]["reason"].startswith("2 actions (pick up cup; place cup)")
    assert "color.mp4" in by_code["unreadable_video"]["reason"]
    assert "task_0099" in by_code["no_language"]["reason"]
    assert "metadata.json" in by_code["bad_metadata"]["reason"]
    assert (out / "pending.jsonl").read_text() == ""


def test_human_episode_is_trimmed_by_its_timestamps(mini_rh20t, tmp_path):
    res = curate(CurateConfig("rh20t", str(mini_rh20t), str(tmp_path / "out"), progress=False))
    human = {r.camera: r for r in res.records if r.subject == "Human"}
    assert human["A"].num_frames == 6 and human["A"].extra["frame_range"] == [2, 8]
    assert human["A"].extra["source_num_frames"] == 12 and human["A"].extra["trim"]["applied"] is True
    assert human["B"].num_frames == 7 and human["B"].extra["trim"]["applied"] is False
    assert "frame_range" not in human["B"].extra


def test_trim_window_outside_the_video_is_rejected(mini_rh20t, tmp_path):
    meta = mini_rh20t / "RH20T_cfg3" / "task_0001_user_0001_scene_0001_cfg_0003_human" / "metadata.json"
    meta.write_text(json.dumps({"start_time": 9000, "end_time": 9500}))
    res = curate(CurateConfig("rh20t", str(mini_rh20t), str(tmp_path / "out"), progress=False))
    trim = [r for r in res.rejections if r.code == "trim_empty"]
    assert len(trim) == 1 and "covers none of the 12 frames" in trim[0].reason
    assert res.summary.total_videos == 4


def test_min_rating_is_a_flag(mini_rh20t, tmp_path):
    res = curate(CurateConfig("rh20t", str(mini_rh20t), str(tmp_path / "out"), min_rating=1, progress=False))
    assert res.summary.total_videos == 6 and res.summary.actions["push"] == 1


def test_rerun_is_identical_and_does_not_decode_again(mini_rh20t, tmp_path, monkeypatch):
    out = tmp_path / "out"
    curate(CurateConfig("rh20t", str(mini_rh20t), str(out), progress=False))
    first = (out / "manifest.jsonl").read_bytes()

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")
    monkeypatch.setattr("roboact.data.curate.probe.count_frames", no_decoding)
    curate(CurateConfig("rh20t", str(mini_rh20t), str(out), progress=False))
    assert (out / "manifest.jsonl").read_bytes() == first


INSTRUCTIONS = {"Open the middle drawer.": answer(("open", "the middle drawer")),
                "Pick up the cup and place it on the plate.": answer(("pick up", "cup"), ("place", "cup")),
                "Turn on the lamp.": answer(("turn on", "lamp")),
                "Press the red button.": f"<think>one press</think>```json\n{answer(('presses', 'red button'))}\n```"}


def llm_cfg(server, out, root, **kw) -> CurateConfig:
    llm = LLMConfig(base_url=server.base_url, model="fake-r1", api_key="sk-SECRET", timeout_s=2, backoff_s=0.001,
                    **kw)
    return CurateConfig("rh20t", str(root), str(out), annotator="llm", llm=llm, progress=False)


def test_llm_annotator_gives_the_same_corpus_and_reruns_for_free(mini_rh20t, tmp_path):
    rules = curate(CurateConfig("rh20t", str(mini_rh20t), str(tmp_path / "rules"), progress=False))
    with FakeChatServer(INSTRUCTIONS) as server:
        res = curate(llm_cfg(server, tmp_path / "llm", mini_rh20t))
        assert server.total == 4                       # one request per distinct instruction
        curate(llm_cfg(server, tmp_path / "llm", mini_rh20t))
        assert server.total == 4                       # the rerun is answered by the cache
    assert [(r.clip_id, r.action, r.object, r.num_frames) for r in res.records] == \
        [(r.clip_id, r.action, r.object, r.num_frames) for r in rules.records]
    assert res.records[0].extra["annotator"] == "llm:fake-r1" and res.summary.annotator == "llm:fake-r1"
    saved = (tmp_path / "llm" / "curate_config.json").read_text()
    assert "sk-SECRET" not in saved and '"model": "fake-r1"' in saved


def test_budget_leaves_pending_rows_and_the_rerun_finishes_them(mini_rh20t, tmp_path):
    out = tmp_path / "out"
    with FakeChatServer(INSTRUCTIONS) as server:
        first = curate(llm_cfg(server, out, mini_rh20t, max_requests=2, concurrency=1))
        pending = rows(out / "pending.jsonl")
        assert first.summary.pending == len(pending) > 0
        assert all(p["reason"] == "pending: budget" for p in pending)
        assert not any(r.code.startswith("llm") for r in first.rejections)   # pending is not rejected
        second = curate(llm_cfg(server, out, mini_rh20t))
        assert server.total == 4                     # answers of the first run were kept
    assert second.summary.pending == 0 and second.summary.total_videos == EXPECTED["videos"]


def test_llm_answer_that_is_never_json_becomes_a_rejection_row(mini_rh20t, tmp_path):
    answers = dict(INSTRUCTIONS, **{"Press the red button.": "Sorry, I can only answer in prose."})
    with FakeChatServer(answers) as server:
        res = curate(llm_cfg(server, tmp_path / "out", mini_rh20t, max_retries=1))
    bad = [r for r in res.rejections if r.code == "llm_unparseable"]
    assert len(bad) == 1 and bad[0].instruction == "Press the red button." and "no JSON object" in bad[0].reason
    assert res.summary.total_videos == 4


@pytest.mark.parametrize("damage, msg", [
    (lambda root: (root / "task_description.json").unlink(), "task_description.json not found"),
    (lambda root: (root / "task_description.json").write_bytes(b'{"task_0001": "Open the \xff drawer"}'),
     "task_description.json: not valid JSON"),
    (lambda root: [p.rename(p.with_name("x" + p.name)) for p in root.glob("RH20T_cfg*/task_*")],
     "no RH20T episode folders"),
])
def test_unusable_dataset_is_a_clear_error(mini_rh20t, tmp_path, capsys, damage, msg):
    damage(mini_rh20t)
    assert main(["curate", "rh20t", str(mini_rh20t), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert msg in capsys.readouterr().err


def test_missing_root_is_a_clear_error(tmp_path, capsys):
    assert main(["curate", "rh20t", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "RH20T root folder not found" in capsys.readouterr().err


def test_sigterm_with_llm_requests_in_flight_stops_at_once_and_the_rerun_finishes(mini_rh20t, tmp_path):
    """The scheduler's SIGTERM lands while the LLM threads wait on slow answers: curate exits within seconds
    (it does not wait for the requests), writes no partial output, and the rerun equals a straight run."""
    from tests.preempt import Command, temp_files

    out, straight = tmp_path / "out", tmp_path / "straight"
    with FakeChatServer(INSTRUCTIONS) as server:
        ref = curate(llm_cfg(server, straight, mini_rh20t))
        server.hold_s = 30.0                                   # every answer now takes 30 s
        argv = ["curate", "rh20t", mini_rh20t, "--out", out, "--annotator", "llm", "--llm-base-url",
                server.base_url, "--llm-model", "fake-r1", "--api-key", "sk-SECRET", "--llm-concurrency", "2",
                "--no-progress"]
        with Command(argv, tmp_path / "sigterm.log") as run:
            run.wait_for(lambda: server.in_flight >= 2)
            assert run.stop(exit_within=10) == 143
        assert "roboact curate: stopped by SIGTERM" in run.text()
        assert not (out / "manifest.jsonl").exists() and not temp_files(out)
        server.hold_s = 0.0
        assert main([str(a) for a in argv]) == 0
    for name in ("manifest.jsonl", "rejections.jsonl", "pending.jsonl", "summary.md"):
        assert (out / name).read_text() == (straight / name).read_text().replace(str(straight), str(out)), name
    assert ref.summary.pending == 0
