import math

import pytest
import torch
import torch.nn.functional as F

from roboact.models import losses as L


def test_sim_identical_branches_is_one_orthogonal_is_zero():
    x = torch.randn(5, 8)
    assert L.loss_sim_eq11(x, x, x).item() == pytest.approx(1.0, abs=1e-6)
    e = torch.eye(3)
    s, a, o = (e[i].expand(5, 3) for i in range(3))
    assert L.loss_sim_eq11(s, a, o).item() == pytest.approx(0.0, abs=1e-7)


def test_sim_absolute_vs_signed_on_anticorrelated_branches():
    x = torch.randn(4, 6)
    # subject = x, action = -x, object = x: cos pairs are -1, 1, -1
    assert L.loss_sim_eq11(x, -x, x, absolute=True).item() == pytest.approx(1.0, abs=1e-6)
    assert L.loss_sim_eq11(x, -x, x, absolute=False).item() == pytest.approx(-1.0 / 3.0, abs=1e-6)


def test_l2_hand_computed():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])   # norms 5, 0
    a = torch.tensor([[0.0, 1.0], [1.0, 0.0]])   # norms 1, 1
    o = torch.tensor([[0.0, 0.0], [6.0, 8.0]])   # norms 0, 10
    # 0.01 * mean(5+1+0, 0+1+10) = 0.01 * 8.5
    assert L.loss_l2_eq12(s, a, o).item() == pytest.approx(0.085, abs=1e-7)


def test_clip_perfectly_aligned_is_zero_and_uniform_is_log_n():
    n = 8
    v = torch.eye(n) * 3.0
    assert L.loss_clip_eq23(v, v.clone(), logit_scale=100.0).item() == pytest.approx(0.0, abs=1e-6)
    same = torch.ones(n, 4)
    for sym in (False, True):
        val = L.loss_clip_eq23(same, same, logit_scale=10.0, symmetric=sym).item()
        assert val == pytest.approx(math.log(n), abs=1e-5)
    assert L.uniform_clip_loss(n) == pytest.approx(math.log(n))


def test_clip_matches_cross_entropy_reference():
    torch.manual_seed(0)
    v, t = torch.randn(6, 5), torch.randn(6, 5)
    logits = 7.0 * F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T
    ref_v2t = F.cross_entropy(logits, torch.arange(6))
    ref_sym = 0.5 * (ref_v2t + F.cross_entropy(logits.T, torch.arange(6)))
    assert L.loss_clip_eq23(v, t, 7.0, symmetric=False).item() == pytest.approx(ref_v2t.item(), rel=1e-5)
    assert L.loss_clip_eq23(v, t, 7.0, symmetric=True).item() == pytest.approx(ref_sym.item(), rel=1e-5)


def test_clip_gathered_equals_single_process_on_concatenation():
    torch.manual_seed(1)
    v, t = torch.randn(6, 4), torch.randn(6, 4)
    full = L.loss_clip_eq23(v, t, 5.0)
    # rank 1 of 2 sees rows 3..5 as queries against all rows
    part = L.loss_clip_eq23(v[3:], t[3:], 5.0, text_all=t, video_all=v, offset=3)
    part0 = L.loss_clip_eq23(v[:3], t[:3], 5.0, text_all=t, video_all=v, offset=0)
    assert (0.5 * (part + part0)).item() == pytest.approx(full.item(), rel=1e-5)


def test_recomb_perfect_and_uniform():
    e = torch.eye(4)
    assert L.loss_recomb_eq19(e, e, 100.0).item() == pytest.approx(0.0, abs=1e-6)
    assert L.loss_recomb_eq19(torch.ones(4, 3), torch.ones(4, 3), 100.0).item() == pytest.approx(math.log(4), abs=1e-5)


def test_aux_weighted_sum_skips_single_class_factors():
    logits = {"subject": torch.zeros(2, 1), "action": torch.zeros(2, 4), "object": torch.tensor([[10.0, -10.0]] * 2)}
    labels = {"subject": torch.zeros(2), "action": torch.tensor([1, 2]), "object": torch.tensor([0, 0])}
    val = L.loss_aux_eq22(logits, labels, {"action": 2.0, "object": 1.0}).item()
    assert val == pytest.approx(2.0 * math.log(4), abs=1e-4)


def test_disent_and_total_combine_with_weights():
    one = torch.tensor(1.0)
    assert L.loss_disent_eq20(one, 2 * one, 3 * one, 0.5, 2.0).item() == pytest.approx(0.5 * 3 + 6)
    assert L.loss_total_eq24(one, 2 * one, 3 * one, 0.1, 10.0).item() == pytest.approx(1 + 0.2 + 30)


def test_clip_duplicate_captions_equal_a_multi_positive_target():
    # Why eq. 23 needs no special handling of repeated captions: identical text rows make the plain
    # diagonal cross-entropy equal to a uniform target over all same-caption columns.
    torch.manual_seed(0)
    v, t = torch.randn(4, 5), torch.randn(4, 5)
    t[1] = t[0]
    logits = 5.0 * F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T
    tgt = torch.tensor([[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    soft = -(tgt * F.log_softmax(logits, -1)).sum(-1).mean()
    assert L.loss_clip_eq23(v, t, 5.0, symmetric=False).item() == pytest.approx(soft.item(), rel=1e-6)


# --- beyond the paper: time-contrastive and frame-reconstruction terms -------------------------------------

def test_tcn_draws_are_sorted_distinct_seeded_and_never_pair_a_clip_with_itself():
    pos, other = L.tcn_draws(64, 15, generator=torch.Generator().manual_seed(3))
    assert pos.shape == (64, 3) and ((pos[:, 0] < pos[:, 1]) & (pos[:, 1] < pos[:, 2])).all()
    assert pos.min() >= 0 and pos.max() <= 14 and len(set(pos[:, 0].tolist())) > 5   # spread, not fixed
    assert sorted(other.tolist()) == list(range(64))
    for seed in range(40):                                    # never itself, whatever the draw
        assert (L.tcn_draws(3, 15, generator=torch.Generator().manual_seed(seed))[1] != torch.arange(3)).all()
    again = L.tcn_draws(64, 15, generator=torch.Generator().manual_seed(3))
    assert torch.equal(pos, again[0]) and torch.equal(other, again[1])
    assert L.tcn_draws(1, 15)[1] is None
    with pytest.raises(ValueError, match="at least 3 per-frame states"):
        L.tcn_draws(4, 2)


def test_tcn_hand_computed():
    """Two clips of three 1-d states; anchors c and a, positive b, negatives the other end and the other
    clip's same-role state; similarity -(x - y)^2 / W."""
    states = torch.tensor([[[0.0], [1.0], [3.0]], [[10.0], [10.5], [12.0]]])          # (2, 3, 1)
    pos, other = torch.tensor([[0, 1, 2], [0, 1, 2]]), torch.tensor([1, 0])
    a, b, c = states[:, 0, 0], states[:, 1, 0], states[:, 2, 0]
    terms = []
    for i in range(2):
        j = 1 - i
        for anchor, far, opp in ((c[i], a[i], c[j]), (a[i], c[i], a[j])):
            logits = torch.stack([-(anchor - b[i]) ** 2, -(anchor - far) ** 2, -(anchor - opp) ** 2])
            terms.append(-torch.log_softmax(logits, 0)[0])
    assert L.loss_tcn(states, pos, other).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-6)
    # without another clip: only the in-clip negative
    ref = [-torch.log_softmax(torch.stack([-(x - b[0]) ** 2, -(x - y) ** 2]), 0)[0]
           for x, y in ((c[0], a[0]), (a[0], c[0]))]
    assert L.loss_tcn(states[:1], pos[:1], None).item() == pytest.approx(torch.stack(ref).mean().item(), rel=1e-6)


def test_tcn_prefers_states_ordered_in_time_over_shuffled_ones():
    """States that move steadily along a per-clip direction (nearer in time = nearer in space) score lower
    than the same states shuffled in time: a sign error or a swapped positive/negative reverses this."""
    g = torch.Generator().manual_seed(0)
    b, t, w = 32, 15, 8
    direction = torch.randn(b, 1, w, generator=g)
    ordered = 3 * torch.randn(b, 1, w, generator=g) + torch.linspace(0, 2, t)[None, :, None] * direction  # (B, T, W)
    shuffled = torch.stack([x[torch.randperm(t, generator=g)] for x in ordered])
    draws = [L.tcn_draws(b, t, generator=torch.Generator().manual_seed(s)) for s in range(20)]
    lo = torch.stack([L.loss_tcn(ordered, *d) for d in draws]).mean()
    hi = torch.stack([L.loss_tcn(shuffled, *d) for d in draws]).mean()
    assert lo < math.log(2) - 0.1 < hi, (lo, hi)   # ordered beats chance over the in-clip pair; shuffled does not


def test_frame_loss_targets_layernormed_frames_and_is_scale_invariant():
    g = torch.Generator().manual_seed(0)
    frames = 5 + 3 * torch.randn(4, 2, 16, generator=g)
    decoded = torch.randn(4, 2, 16, generator=g)
    target = (frames - frames.mean(-1, keepdim=True)) / frames.var(-1, unbiased=False, keepdim=True).add(1e-5).sqrt()
    assert L.loss_frame(decoded, frames).item() == pytest.approx(((decoded - target) ** 2).mean().item(), rel=1e-5)
    assert L.loss_frame(target, frames).item() == pytest.approx(0.0, abs=1e-6)
    assert L.loss_frame(decoded, 10 * frames).item() == pytest.approx(L.loss_frame(decoded, frames).item(), rel=1e-4)


# --- details a training run relies on without seeing them ---------------------------------------------------

def test_aux_sums_every_factor_ignores_unlabelled_clips_and_defaults_alpha_to_one():
    ce4 = math.log(4)                                           # uniform logits over 4 classes
    logits = {"action": torch.zeros(3, 4), "object": torch.zeros(3, 4), "subject": torch.zeros(1, 4)}
    labels = {"action": torch.tensor([0, -1, 2]), "object": torch.tensor([1, 1, 1])}   # -1: no label
    # object has no alpha (weight 1), subject has no labels (skipped), action is weighted 3
    assert L.loss_aux_eq22(logits, labels, {"action": 3.0}).item() == pytest.approx(4 * ce4, rel=1e-5)
    one_clip = {"action": torch.tensor([[2.0, 0.0]])}          # a batch of one clip still trains
    assert L.loss_aux_eq22(one_clip, {"action": torch.tensor([1])}, {}).item() == pytest.approx(
        F.cross_entropy(one_clip["action"], torch.tensor([1])).item())


def test_aux_without_any_usable_factor_is_a_zero_like_the_logits():
    z = L.loss_aux_eq22({"subject": torch.zeros(2, 1, dtype=torch.float64)}, {"subject": torch.zeros(2)}, {})
    assert z.item() == 0.0 and z.dtype == torch.float64 and z.shape == ()
    assert L.loss_aux_eq22({}, {}, {}).item() == 0.0


def test_defaults_are_the_papers_choices_symmetric_clip_and_absolute_similarity():
    torch.manual_seed(1)
    v, t = torch.randn(4, 6), torch.randn(4, 6)
    both = 0.5 * (L.loss_clip_eq23(v, t, 5.0, symmetric=False) + L.loss_clip_eq23(t, v, 5.0, symmetric=False))
    assert L.loss_clip_eq23(v, t, 5.0).item() == pytest.approx(both.item(), rel=1e-6)
    x = torch.randn(3, 6)
    assert L.loss_sim_eq11(x, -x, x).item() == pytest.approx(1.0)       # |cos|: anti-correlation counts


def test_sim_and_recomb_are_per_row_cosines_whatever_the_scale():
    torch.manual_seed(2)
    s, a, o = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    cos = torch.stack([F.cosine_similarity(p, q, dim=1) for p, q in ((s, a), (s, o), (a, o))]).abs().mean()
    assert L.loss_sim_eq11(s, a, o).item() == pytest.approx(cos.item(), rel=1e-5)
    assert L.loss_sim_eq11(1e-3 * s, 1e-3 * a, o).item() == pytest.approx(cos.item(), rel=1e-5)   # small branches
    r, t = torch.randn(4, 6), torch.randn(4, 6)
    ref = F.cross_entropy(7.0 * F.normalize(r, dim=1) @ F.normalize(t, dim=1).T, torch.arange(4))
    assert L.loss_recomb_eq19(3 * r, 0.5 * t, 7.0).item() == pytest.approx(ref.item(), rel=1e-5)


def test_contrastive_losses_build_their_targets_where_the_inputs_live():
    # training on a GPU: a target made on the CPU next to logits elsewhere fails (the meta device stands in)
    v, t = torch.randn(4, 6, device="meta"), torch.randn(4, 6, device="meta")
    assert L.loss_clip_eq23(v, t, 5.0).device.type == "meta"
    assert L.loss_recomb_eq19(v, t, 5.0).device.type == "meta"


def test_tcn_draws_edges_three_states_and_two_clips():
    pos, other = L.tcn_draws(2, 3, generator=torch.Generator().manual_seed(0))
    assert pos.tolist() == [[0, 1, 2], [0, 1, 2]] and other.tolist() == [1, 0]
    shifts = {int(L.tcn_draws(3, 5, generator=torch.Generator().manual_seed(s))[1][0]) for s in range(30)}
    assert shifts == {1, 2}                                     # any other clip, not only the next one
