"""The detector, its calibration and evaluation on hand-made score curves with known answers (no model)."""
import numpy as np
import pytest

from roboact.judge import Detector, JudgeError, LabelledEpisode, calibrate, detect, evaluate
from roboact.judge.demos import success_frame

CURVE = [0.1, 0.6, 0.2, 0.7, 0.8, 0.9, 0.3]


@pytest.mark.parametrize("patience, fired", [(1, 1), (2, 4), (3, 5), (4, None)])
def test_detect_fires_once_the_score_stayed_above_for_patience_frames(patience, fired):
    assert detect(CURVE, 0.5, patience) == fired


def test_detect_threshold_is_inclusive_and_a_dip_restarts_the_count():
    assert detect([0.5, 0.5], 0.5, 2) == 1
    assert detect([0.49, 0.5], 0.5, 2) is None
    assert detect([0.9, 0.9, 0.1, 0.9, 0.9, 0.9], 0.5, 3) == 5
    assert detect(CURVE, 0.95) is None
    with pytest.raises(JudgeError, match="patience"):
        detect(CURVE, 0.5, 0)


def test_online_detector_fires_on_the_same_frame_as_detect():
    for patience in (1, 2, 3, 4):
        d = Detector(0.5, patience)
        fired = [d.step(s) for s in CURVE]
        first = fired.index(True) if True in fired else None
        assert first == detect(CURVE, 0.5, patience)
        assert all(fired[first:]) if first is not None else not any(fired)


def _overlapping_set():
    """95 'not done' frames (90 at 0.1, 5 at 0.6) and 5 'done' frames (3 at 0.55, 2 at 0.9), in two episodes.
    By hand: F1 is best (0.667) firing on everything above 0.1 -> threshold (0.1 + 0.55) / 2; accuracy is best
    (0.97) firing only on the 0.9s -> threshold (0.6 + 0.9) / 2."""
    a = LabelledEpisode(np.r_[[0.1] * 45, [0.6] * 5, [0.55] * 3], success=50, name="a")
    b = LabelledEpisode(np.r_[[0.1] * 45, [0.9] * 2], success=45, name="b")
    return [a, b]


def test_calibrate_finds_the_known_best_threshold_per_objective():
    f1 = calibrate(_overlapping_set(), "f1")
    assert f1["threshold"] == pytest.approx(0.325) and f1["value"] == pytest.approx(2 / 3)
    acc = calibrate(_overlapping_set(), "accuracy")
    assert acc["threshold"] == pytest.approx(0.75) and acc["value"] == pytest.approx(0.97)
    assert f1["frames"] == 100 and f1["done_frames"] == 5


def test_calibrate_separable_set_splits_in_the_gap():
    eps = [LabelledEpisode(np.r_[np.linspace(0, 0.4, 10), np.linspace(0.6, 1, 4)], success=10),
           LabelledEpisode(np.r_[np.linspace(0.1, 0.3, 7), [0.7, 0.8]], success=7)]
    for objective in ("f1", "accuracy", "balanced_accuracy"):
        res = calibrate(eps, objective)
        assert res["threshold"] == pytest.approx(0.5) and res["value"] == pytest.approx(1.0)


def test_evaluate_counts_outcomes_and_delays():
    eps = [LabelledEpisode([0.1, 0.2, 0.9, 0.9, 0.9], success=2, name="on time"),
           LabelledEpisode([0.1, 0.1, 0.1, 0.9, 0.9], success=1, name="late"),
           LabelledEpisode([0.9, 0.1, 0.1, 0.9, 0.9], success=3, name="early"),
           LabelledEpisode([0.1, 0.1, 0.1, 0.1, 0.2], success=3, name="missed")]
    ev = evaluate(eps, 0.5, patience=1)
    assert [r["outcome"] for r in ev["per_episode"]] == ["on_time", "on_time", "early", "missed"]
    assert [r["delay"] for r in ev["per_episode"]] == [0, 2, -3, None]
    assert ev["episode_accuracy"] == 0.5 and ev["early_share"] == 0.25 and ev["missed_share"] == 0.25
    assert ev["delay_mean"] == pytest.approx(-1 / 3) and ev["delay_median"] == 0
    assert ev["on_time_delay_mean"] == 1.0
    # frames: 20, wrong ones: 'late' frames 1-2 (done, below), 'early' frame 0 (fired), 'missed' frames 3-4
    assert ev["frame_accuracy"] == pytest.approx(15 / 20)
    # patience 2 turns the early blip into an on-time detection at frame 4
    assert evaluate(eps, 0.5, patience=2)["per_episode"][2]["outcome"] == "on_time"


def test_labelled_episode_refuses_a_success_outside_its_frames():
    with pytest.raises(JudgeError, match="outside"):
        LabelledEpisode([0.1, 0.2], success=2, name="x")


def test_success_frame_follows_the_rewards_convention():
    assert success_frame(np.array([0, 0, 1, 1, 1])) == 3       # rewards[t] follows action t: frame t+1 shows it
    assert success_frame(np.array([0, 0, 0, 1])) is None        # the success frame was not recorded
    assert success_frame(np.zeros(5)) is None


def test_episode_objective_counts_on_time_detections_with_patience():
    """One-frame blips at 0.9 before success, 0.6 once done. Patience 1: every threshold that fires fires on a
    blip (early), so the best on-time share is 0 and the tie goes to never firing (above every score).
    Patience 2 skips the blips: (0.1 + 0.6) / 2 fires on time in both. Per-frame F1 picks that split too
    (F1 0.8) whatever the patience."""
    a = LabelledEpisode([0.1, 0.9, 0.1, 0.1, 0.6, 0.6], success=4, name="a")
    b = LabelledEpisode([0.1, 0.1, 0.9, 0.1, 0.6, 0.6], success=4, name="b")
    one = calibrate([a, b], "episode", patience=1)
    assert one["value"] == 0.0 and one["threshold"] == pytest.approx(1.9)
    two = calibrate([a, b], "episode", patience=2)
    assert two["value"] == 1.0 and two["threshold"] == pytest.approx(0.35)
    f1 = calibrate([a, b], "f1")
    assert f1["threshold"] == pytest.approx(0.35) and f1["value"] == pytest.approx(0.8)
    assert evaluate([a, b], two["threshold"], 2)["episode_accuracy"] == 1.0
