import math

import pytest
import torch

from roboact.eval import metrics as M


def test_perfect_similarity_with_duplicate_captions_scores_one_both_ways():
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    sims = torch.nn.functional.one_hot(ids, 3).float()        # each clip matches only its own caption
    for k in (1, 5):
        assert M.recall_video_to_text(sims, ids, k) == 1.0
        assert M.recall_text_to_video(sims, ids, k) == 1.0


def test_hand_computed_ranks():
    sims = torch.tensor([[0.9, 0.1, 0.5],     # clip 0, caption 0: first
                         [0.8, 0.3, 0.2],     # clip 1, caption 1: second (0.8 above it)
                         [0.1, 0.7, 0.6]])    # clip 2, caption 2: second (0.7 above it)
    ids = torch.tensor([0, 1, 2])
    assert M.recall_video_to_text(sims, ids, 1) == pytest.approx(1 / 3)
    assert M.recall_video_to_text(sims, ids, 2) == 1.0
    # caption 0: clip 0 first; caption 1: clip 2 (0.7) beats clip 1 (0.3); caption 2: clip 2 (0.6) first
    assert M.recall_text_to_video(sims, ids, 1) == pytest.approx(2 / 3)
    assert M.recall_text_to_video(sims, ids, 2) == 1.0


def test_duplicate_captions_best_positive_counts_and_unused_captions_are_skipped():
    sims = torch.tensor([[0.2, 0.9, 0.0],     # clip 0 (caption 0): miss
                         [0.8, 0.1, 0.0],     # clip 1 (caption 0): hit
                         [0.3, 0.4, 0.0],     # clip 2 (caption 1): hit
                         [0.6, 0.5, 0.0]])    # clip 3 (caption 1): miss
    ids = torch.tensor([0, 0, 1, 1])          # caption 2 has no clip
    assert M.recall_video_to_text(sims, ids, 1) == 0.5
    # caption 0: best positive clip 1 (0.8), no negative above -> hit. caption 1: best positive clip 3 (0.5),
    # negative clip 0 (0.9) above -> miss at 1, hit at 2. Caption 2 is not averaged in.
    assert M.recall_text_to_video(sims, ids, 1) == 0.5
    assert M.recall_text_to_video(sims, ids, 2) == 1.0


def test_ties_count_against_the_model():
    sims = torch.zeros(4, 3)
    ids = torch.tensor([0, 1, 2, 0])
    assert M.recall_video_to_text(sims, ids, 1) == 0.0
    assert M.recall_text_to_video(sims, ids, 1) == 0.0
    assert M.recall_video_to_text(sims, ids, 3) == 1.0   # rank 2 < 3


def test_random_similarities_score_at_chance():
    g = torch.Generator().manual_seed(0)
    ids = torch.arange(4000) % 10
    sims = torch.rand(4000, 10, generator=g)
    assert M.recall_video_to_text(sims, ids, 1) == pytest.approx(M.chance_video_to_text(10, 1), abs=0.02)
    assert M.recall_video_to_text(sims, ids, 5) == pytest.approx(0.5, abs=0.03)


def test_text_to_video_chance_formula_matches_simulation():
    ids = torch.tensor([0, 1, 1, 2, 2, 2, 3, 3, 3, 3] * 2)   # 20 clips, 4 captions with 2..8 clips
    g = torch.Generator().manual_seed(1)
    for k in (1, 5):
        sim = [M.recall_text_to_video(torch.rand(20, 4, generator=g), ids, k) for _ in range(2000)]
        assert sum(sim) / len(sim) == pytest.approx(M.chance_text_to_video(ids, k), abs=0.02)
    assert M.chance_text_to_video(torch.arange(7), 2) == pytest.approx(2 / 7)   # one clip per caption: k/N


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match="caption_ids must index"):
        M.recall_video_to_text(torch.zeros(2, 2), torch.tensor([0, 2]), 1)
    with pytest.raises(ValueError, match="shape"):
        M.recall_text_to_video(torch.zeros(2, 2), torch.tensor([0, 1, 1]), 1)


def test_factor_accuracy_hand_case():
    protos = torch.eye(3)
    feats = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.2, 3.0], [0.0, 1.0, 0.9], [0.9, 1.0, 0.0]])
    labels = torch.tensor([0, 2, 1, 0])   # the last is predicted 1
    assert M.factor_accuracy(feats, protos, labels) == 0.75


def test_mean_abs_cos():
    x = torch.randn(5, 8)
    same = M.mean_abs_cos({"subject": x, "action": -x, "object": 2 * x})
    assert same["mean"] == pytest.approx(1.0) and same["subject-action"] == pytest.approx(1.0)
    e = torch.eye(3).repeat(4, 1)
    orth = M.mean_abs_cos({"subject": e[:, [0, 1, 2]], "action": e[:, [1, 2, 0]], "object": e[:, [2, 0, 1]]})
    assert orth["mean"] == 0.0


def _probe_data(leaky: bool, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 16, generator=g)
    if leaky:
        x[:, :3] += 3 * torch.nn.functional.one_hot(y, 3)
    return x, y


def test_leakage_probe_near_chance_on_independent_features_high_on_leaky_ones():
    for leaky in (False, True):
        xtr, ytr = _probe_data(leaky, 300, 0)
        xev, yev = _probe_data(leaky, 300, 1)
        p = M.leakage_probe(xtr, ytr, xev, yev)
        assert p.n_train == 300 and p.n_eval == 300 and p.n_classes == 3
        assert p.chance == pytest.approx(torch.bincount(yev).max().item() / 300)
        if leaky:
            assert p.accuracy > 0.9
        else:
            assert abs(p.accuracy - 1 / 3) < 0.1


def test_leakage_probe_skips_a_single_class():
    assert M.leakage_probe(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), torch.randn(2, 2),
                           torch.zeros(2, dtype=torch.long)) is None


def test_empty_inputs_give_nan_not_a_crash():
    assert math.isnan(M.recall_video_to_text(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 1))
    assert math.isnan(M.factor_accuracy(torch.zeros(0, 2), torch.eye(2), torch.zeros(0, dtype=torch.long)))


def test_cosine_matrix_is_cosine_whatever_the_norms():
    a = torch.tensor([[3.0, 4.0], [2.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 5.0], [-1.0, -1.0]])
    s = 1 / math.sqrt(2)
    expected = torch.tensor([[0.6, 0.8, -1.4 * s], [1.0, 0.0, -s]])
    assert torch.allclose(M.cosine_matrix(a, b), expected, atol=1e-6)


def test_single_clip_and_chance_edges():
    # one clip is a valid split (a tiny held-out pair), not an empty one
    assert M.recall_video_to_text(torch.tensor([[0.2, 0.9]]), torch.tensor([1]), 1) == 1.0
    assert M.factor_accuracy(torch.tensor([[0.0, 2.0]]), torch.eye(2), torch.tensor([1])) == 1.0
    assert M.chance_video_to_text(3, 5) == 1.0 and M.chance_video_to_text(4, 1) == 0.25
    assert math.isnan(M.chance_video_to_text(0, 1))


def test_factor_accuracy_shape_errors_name_both_sides():
    with pytest.raises(ValueError, match="3 features but 2 labels"):
        M.factor_accuracy(torch.zeros(3, 2), torch.eye(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="features have width 3, class features 2"):
        M.factor_accuracy(torch.zeros(2, 3), torch.eye(2), torch.zeros(2, dtype=torch.long))


def test_mean_abs_cos_is_per_clip_then_averaged():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0]])     # clip 0 orthogonal, clip 1 parallel: mean |cos| 0.5
    out = M.mean_abs_cos({"subject": a, "action": b, "object": a})
    assert out["subject-action"] == pytest.approx(0.5) and out["subject-object"] == pytest.approx(1.0)
    assert out["mean"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_input_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"similarity matrix must be \(clips, captions\), got shape \(3,\)"):
        M.recall_video_to_text(torch.zeros(3), torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"caption_ids must have shape \(2,\), got \(3,\)"):
        M.recall_video_to_text(torch.zeros(2, 4), torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        M.recall_text_to_video(torch.zeros(2, 2), torch.tensor([0, 1]), 0)


def test_text_to_video_edges_one_caption_empty_and_k_beyond_the_clips():
    assert M.recall_text_to_video(torch.tensor([[0.5], [0.1]]), torch.tensor([0, 0]), 1) == 1.0
    assert math.isnan(M.recall_text_to_video(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 1))
    assert M.chance_text_to_video(torch.tensor([0]), 1) == 1.0          # one clip: always found
    assert M.chance_text_to_video(torch.tensor([0, 1]), 5) == 1.0       # k > N: every caption found
    assert math.isnan(M.chance_text_to_video(torch.zeros(0, dtype=torch.long), 1))
    # caption 1 has no clip: averaged over captions 0 and 2 only, each 1 of 3 clips -> P(top 1) = 1/3
    assert M.chance_text_to_video(torch.tensor([0, 2, 2]), 1) == pytest.approx((1 / 3 + 2 / 3) / 2)


def test_leakage_probe_reference_rates_convergence_and_two_classes():
    xtr, ytr = _probe_data(True, 200, 0)
    ytr2, yev2 = (ytr > 0).long(), torch.tensor([0, 0, 0, 1])           # train majority: 1, not the first class
    p = M.leakage_probe(xtr, ytr2, xtr[:4], yev2)                       # two classes, four eval clips
    assert int(torch.bincount(ytr2).argmax()) == 1
    assert p is not None and p.n_classes == 2 and p.constant_probe == 0.25
    assert p.chance == 0.75 and p.converged
    one = M.leakage_probe(xtr, ytr, xtr[:1], ytr[:1])                    # one eval clip is still a probe
    assert one is not None and one.n_eval == 1
    assert not M.leakage_probe(xtr, ytr, xtr, ytr, max_iter=1).converged


def test_leakage_probe_reads_a_factor_whatever_the_feature_scale():
    # the information sits in one feature a thousand times smaller than the noise features: the probe
    # standardises, so it still reads it (an unscaled, regularised probe would report no leakage)
    xtr, ytr = _probe_data(False, 300, 0)
    xev, yev = _probe_data(False, 300, 1)
    xtr[:, 0], xev[:, 0] = 1e-3 * (ytr.float() + 0.1 * xtr[:, 0]), 1e-3 * (yev.float() + 0.1 * xev[:, 0])
    assert M.leakage_probe(xtr, ytr, xev, yev).accuracy > 0.9
