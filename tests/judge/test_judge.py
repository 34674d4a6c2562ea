"""The judge on the tiny CLIP backbone: offline scores equal streamed ones, softmax over texts, the CLI end to end
(score a generated mp4; calibrate on a generated demo file), and every bad input refused with a clear error."""
import json
import re

import numpy as np
import pytest
import torch

from roboact.cli import main
from roboact.judge import Judge, JudgeError, check_texts
from tests.policy.conftest import save_checkpoint

TEXTS = ["Robot opens drawer, Action is open, Object is drawer.", "the drawer is still closed"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, tiny_clip_backbone):
    root = tmp_path_factory.mktemp("judge_ckpts")
    return {"full": save_checkpoint(tiny_clip_backbone, root / "full", extra={}),
            "no_disentangle": save_checkpoint(tiny_clip_backbone, root / "abl2", extra={}, disentangle=False)}


@pytest.fixture(scope="module")
def judge_full(ckpts, tiny_clip_backbone):
    from roboact.models.encoder import RoboActEncoder

    return RoboActEncoder.from_pretrained(ckpts["full"], backbone=tiny_clip_backbone)


def frames(t=11, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (t, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("stride, embedding", [(1, "fused"), (3, "fused"), (2, "action")])
def test_offline_scores_equal_the_streamed_ones(judge_full, stride, embedding):
    judge = Judge(judge_full, stride=stride, embedding=embedding)
    video = frames()
    offline = judge.score_video(video, TEXTS, fps=20.0)
    stream = judge.stream(TEXTS)
    steps = [stream.step(f) for f in video]
    assert np.allclose(np.stack([s.cosine for s in steps]), offline.cosine, atol=1e-5)
    assert np.allclose(np.stack([s.prob for s in steps]), offline.prob, atol=1e-5)
    assert np.allclose(stream.result().cosine, offline.cosine, atol=1e-5)
    assert np.allclose(offline.times, np.arange(11) / 20.0)
    stream.reset()
    assert np.allclose(stream.step(video[0]).cosine, offline.cosine[0], atol=1e-5)


def test_scores_are_the_windows_encoded_from_scratch(judge_full):
    """Frame 7 with stride 2 sees frames 7, 5, 3, 1 and then the odd ring's first frame (1) as padding."""
    judge = Judge(judge_full, stride=2)
    video = frames()
    res = judge.score_video(video, TEXTS[:1])
    n = judge.window
    idx = [max(7 - (n - 1 - j) * 2, 1) for j in range(n)]
    feats = judge_full.backbone.encode_images(video[idx]).unsqueeze(0)
    v = judge_full.encode_video(feats, normalize=True)["fused"]
    t = judge_full.encode_text(TEXTS[:1], normalize=True)["fused"]
    assert res.prob is None
    assert res.cosine[7, 0] == pytest.approx(float(v @ t.T), abs=1e-5)


def test_softmax_over_two_texts_sums_to_one_at_the_learned_temperature(judge_full):
    before = judge_full.heads.logit_scale.detach().clone()
    with torch.no_grad():
        judge_full.heads.logit_scale.fill_(np.log(20.0))
    try:
        res = Judge(judge_full).score_video(frames(), TEXTS)
    finally:
        with torch.no_grad():
            judge_full.heads.logit_scale.copy_(before)
    assert np.allclose(res.prob.sum(axis=1), 1.0, atol=1e-6)
    expected = 1 / (1 + np.exp(-20.0 * (res.cosine[:, 0] - res.cosine[:, 1])))
    assert np.allclose(res.prob[:, 0], expected, atol=1e-5)
    assert np.array_equal(res.score(0), res.prob[:, 0]) and np.array_equal(res.score(TEXTS[1]), res.prob[:, 1])


def _mp4(path, t=12):
    from roboact.commands.encode import synthetic_clip
    from roboact.data.video import write_mp4

    write_mp4(path, synthetic_clip(t=t, size=32), fps=10.0)
    return path


def test_cli_scores_a_video_and_writes_json_and_plot(ckpts, tmp_path, capsys):
    video = _mp4(tmp_path / "clip.mp4")
    rc = main(["judge", str(video), "--model", str(ckpts["full"]), "--text", TEXTS[0], "--text", TEXTS[1],
               "--stride", "2", "--threshold", "0.5", "--plot", str(tmp_path / "s.png"), "--json",
               str(tmp_path / "s.json"), "--mark", "6"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "12 frames, 10 fps" in out and "stride 2" in out and out.count(": max ") == 2
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["texts"] == TEXTS and data["stride"] == 2 and data["fps"] == 10.0
    assert np.array(data["cosine"]).shape == (12, 2)
    assert np.allclose(np.array(data["prob"]).sum(1), 1.0, atol=1e-5)
    assert data["times"][:3] == [0.0, 0.1, 0.2]
    assert {r["text"] for r in data["summary"]} == set(TEXTS)
    first = [r["first_above"] for r in data["summary"]]
    assert first == [next((t for t, p in enumerate(np.array(data["prob"])[:, k]) if p >= 0.5), None)
                     for k in range(2)]
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _demo_file(path, n=4, t=12, success_after=7):
    from roboact.sim.demos import Episode, write_demos

    rng = np.random.default_rng(0)
    rewards = (np.arange(t) >= success_after).astype(float)       # frame success_after + 1 shows success
    eps = [Episode(actions=rng.normal(size=(t, 4)), states=rng.normal(size=(t, 3)), rewards=rewards,
                   dones=np.eye(t)[-1], obs={"corner_rgb": frames(t, 32, seed=i)}, attrs={"seed": i})
           for i in range(n)]
    return write_demos(path, eps, {"language_instruction": "open the drawer", "action": "open", "object": "drawer",
                                   "task_name": "drawer-open-v3"})


def test_cli_calibrates_on_demos_resumes_and_shares_frame_features(ckpts, tmp_path, capsys, monkeypatch):
    demos = _demo_file(tmp_path / "drawer-open-v3_demo.hdf5")
    args = ["judge", "--calibrate", str(demos), "--model", str(ckpts["full"]), "--done-text",
            "the {object} is {action}; {caption}", "--not-done-text", "not yet", "--patience", "2",
            "--out", str(tmp_path / "o")]
    assert main(args) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    task = report["tasks"][0]
    assert task["texts"] == ["the drawer is open; Robot opens drawer, Action is open, Object is drawer.", "not yet"]
    assert task["score"] == "prob(done)"
    assert task["calibration_demos"] == 2 and task["held_out_demos"] == 2
    assert set(task["embeddings"]) == {"fused", "action"} and task["chosen_embedding"] in task["embeddings"]
    held = task["embeddings"]["fused"]["held_out"]
    assert [r["success"] for r in held["per_episode"]] == [8, 8] and held["patience"] == 2
    assert "| drawer-open-v3 |" in (tmp_path / "o" / "report.md").read_text()
    # a rerun reads every demo's scores from OUT/scores.jsonl: the image tower never runs
    from roboact.judge.scoring import Judge as J

    monkeypatch.setattr(J, "frame_features", lambda *a: pytest.fail("scores recomputed on resume"))
    assert main(args) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["tasks"] == report["tasks"]
    # a new report folder reading the first one's frame features (roboact policy's cache layout)
    assert main(args[:-1] + [str(tmp_path / "o2"), "--feature-cache", str(tmp_path / "o" / "cache")]) == 0
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["tasks"] == report["tasks"]


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("texts, match", [([""], r"texts\[0\]: empty"), (["ok", "   "], r"texts\[1\]: empty"),
                                          ([], "at least one"), ([b"caf\xe9"], r"texts\[0\]: not valid UTF-8"),
                                          (["caf\udce9"], r"texts\[0\]: not valid UTF-8.*b'caf\\xe9'")])
def test_bad_texts_are_refused_naming_which(texts, match):
    with pytest.raises(JudgeError, match=match):
        check_texts(texts)


def test_check_texts_accepts_utf8_bytes_and_strips():
    assert check_texts([" open the drawer ", "caf\u00e9".encode()]) == ["open the drawer", "caf\u00e9"]


@pytest.mark.parametrize("text, match", [("", "--text.*empty"), ("caf\udce9", "--text.*not valid UTF-8")])
def test_cli_refuses_bad_text(ckpts, tmp_path, capsys, text, match):
    video = _mp4(tmp_path / "clip.mp4", t=4)
    assert main(["judge", str(video), "--model", str(ckpts["full"]), "--text", text]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_cli_refuses_unreadable_video_and_missing_checkpoint(ckpts, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    assert main(["judge", str(bad), "--model", str(ckpts["full"]), "--text", "open"]) == 2
    assert "broken.mp4: cannot open video" in capsys.readouterr().err
    assert main(["judge", str(bad), "--model", str(tmp_path / "nope"), "--text", "open"]) == 2
    assert "no roboact checkpoint named" in capsys.readouterr().err
    assert main(["judge", "--model", str(ckpts["full"]), "--text", "open"]) == 2
    assert "either a VIDEO" in capsys.readouterr().err


def test_checkpoint_without_an_action_branch_is_refused(ckpts, tmp_path, capsys):
    video = _mp4(tmp_path / "clip.mp4", t=4)
    assert main(["judge", str(video), "--model", str(ckpts["no_disentangle"]), "--text", "open",
                 "--embedding", "action"]) == 2
    assert "no action branch" in capsys.readouterr().err
    # the fused embedding works on it, and calibration then tries only that one
    assert main(["judge", str(video), "--model", str(ckpts["no_disentangle"]), "--text", "open"]) == 0


def test_bad_frames_and_options_are_refused(judge_full):
    with pytest.raises(JudgeError, match=r"uint8 \[T, H, W, 3\].*float32"):
        Judge(judge_full).score_video(frames().astype(np.float32), TEXTS)
    with pytest.raises(ValueError, match="stride"):
        Judge(judge_full, stride=0)
    with pytest.raises(ValueError, match="embedding"):
        Judge(judge_full, embedding="object")
