import pytest
import torch

from roboact.models import RoboActCLIP
from roboact.models.config import RoboActConfig
from roboact.utils.config import ConfigError

from .conftest import make_batch, small_config


@pytest.mark.parametrize("n", [2, 8, 16])
@pytest.mark.parametrize("b", [1, 64])
def test_output_shapes(model, cfg, n, b):
    frames, text, labels = make_batch(b, n, cfg)
    out = model(frames, text, labels)
    d = cfg.embed_dim
    for f in ("subject", "action", "object"):
        assert getattr(out, f).shape == (b, d)
        assert out.text[f].shape == (b, d)
    assert out.video.shape == out.text["fused"].shape == (b, 3 * d)
    assert out.logits["action"].shape == (b, 3) and out.logits["object"].shape == (b, 4)
    assert set(out.losses) == {"clip", "sim", "l2", "recomb", "disent", "aux", "total"}
    assert torch.isfinite(out.loss)


def test_gradients_reach_every_trainable_head(model, cfg):
    frames, text, labels = make_batch(16, 16, cfg)
    out = model(frames, text, labels)
    model.update_banks(out, labels, step=0)
    trip = model.sample_triplets(8)
    out = model(frames, text, labels, recomb=(trip, torch.randn(len(trip), cfg.text_dim)))
    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert no_grad == []


def test_residual_combiner_gets_gradient_from_recombination(cfg):
    model = RoboActCLIP(small_config(combiner="residual_mlp"))
    frames, text, labels = make_batch(16, 8, model.cfg)
    out = model(frames, text, labels)
    model.update_banks(out, labels, step=0)
    trip = model.sample_triplets(8)
    out = model(frames, text, labels, recomb=(trip, torch.randn(len(trip), cfg.text_dim)))
    out.losses["recomb"].backward()
    assert model.combiner.mlp[-1].weight.grad.abs().sum() > 0


def test_bank_updates_only_on_configured_steps_and_last_instance_wins():
    model = RoboActCLIP(small_config(bank_update_every=3))
    frames, text, labels = make_batch(6, 4, model.cfg)
    labels["action"] = torch.tensor([0, 1, 0, 2, 1, 0])  # last "open" is row 5, last "close" row 4
    out = model(frames, text, labels)
    assert not model.update_banks(out, labels, step=1)
    assert not model.banks.filled("action").any()
    assert model.update_banks(out, labels, step=3)
    bank = model.banks.bank("action")
    assert torch.equal(bank[0], out.action[5].detach())
    assert torch.equal(bank[1], out.action[4].detach())
    assert torch.equal(bank[2], out.action[3].detach())
    assert model.banks.filled("action").all()
    # banks are detached copies: changing the model later does not change them
    assert not bank.requires_grad


def test_sample_triplets_seen_vs_all(cfg):
    model = RoboActCLIP(small_config(recomb_triplets="seen"))
    frames, text, labels = make_batch(32, 4, model.cfg)
    out = model(frames, text, labels)
    model.update_banks(out, labels, step=0)
    assert len(model.sample_triplets(100)) == 0  # nothing registered as seen yet
    seen = torch.tensor([[0, 0, 0], [1, 2, 3], [0, 0, 0]])
    model.register_seen_triplets(seen)
    got = {tuple(t) for t in model.sample_triplets(100).tolist()}
    filled = {f: set(torch.nonzero(model.banks.filled(f)).flatten().tolist()) for f in ("subject", "action", "object")}
    expected = {t for t in [(0, 0, 0), (1, 2, 3)] if t[0] in filled["subject"] and t[1] in filled["action"]
                and t[2] in filled["object"]}
    assert got == expected
    model_all = RoboActCLIP(small_config(recomb_triplets="all"))
    model_all.update_banks(model_all(frames, text, labels), labels, step=0)
    trips = model_all.sample_triplets(1000)
    n_all = 1
    for f in ("subject", "action", "object"):
        n_all *= int(model_all.banks.filled(f).sum())
    assert len(trips) == n_all == len({tuple(t) for t in trips.tolist()})


def test_ablations_run_and_differ_from_full_model(cfg):
    frames, text, labels = make_batch(8, 16, cfg)
    outs = {}
    for name, kw in {"full": {}, "no_temporal": {"temporal": False}, "no_disent": {"disentangle": False}}.items():
        torch.manual_seed(0)
        m = RoboActCLIP(small_config(**kw)).eval()
        outs[name] = m(frames, text, labels)
        assert torch.isfinite(outs[name].loss)
    assert set(outs["no_disent"].losses) == {"clip", "total"}
    assert not hasattr(RoboActCLIP(small_config(temporal=False)).fusion, "temporal") or \
        RoboActCLIP(small_config(temporal=False)).fusion.temporal is None
    assert not torch.allclose(outs["full"].video, outs["no_temporal"].video)
    assert not torch.allclose(outs["full"].video, outs["no_disent"].video)


def test_no_temporal_ablation_ignores_middle_frames(cfg):
    m = RoboActCLIP(small_config(temporal=False)).eval()
    frames, _, _ = make_batch(2, 8, m.cfg)
    shuffled = frames.clone()
    shuffled[:, 1:-1] = shuffled[:, 1:-1].flip(1)
    assert torch.allclose(m.encode_frames(frames).video, m.encode_frames(shuffled).video)
    full = RoboActCLIP(small_config()).eval()
    assert not torch.allclose(full.encode_frames(frames).video, full.encode_frames(shuffled).video)


def test_temporal_model_distinguishes_a_clip_from_its_reversal(model):
    model.eval()
    frames, _, _ = make_batch(2, 16, model.cfg)
    assert not torch.allclose(model.encode_frames(frames).video, model.encode_frames(frames.flip(1)).video)


@pytest.mark.parametrize("bad, msg", [
    (torch.randn(2, 1, 32), "at least 2 frames"),
    (torch.randn(2, 16, 31), "width 31"),
    (torch.randn(16, 32), "shape"),
    (torch.randint(0, 255, (2, 16, 32), dtype=torch.uint8), "floating point"),
])
def test_bad_frame_features_raise_clear_errors(model, bad, msg):
    with pytest.raises(ValueError, match=msg):
        model.encode_frames(bad)


def test_nan_in_features_is_located(model, cfg):
    frames, _, _ = make_batch(3, 16, cfg)
    frames[1, 5, 7] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/Inf .*clip 1, frame 5, dim 7"):
        model.encode_frames(frames)


def test_text_batch_mismatch(model, cfg):
    frames, text, _ = make_batch(3, 16, cfg)
    with pytest.raises(ValueError, match="text_feats has 2 rows"):
        model(frames, text[:2])


@pytest.mark.parametrize("kw, field", [
    ({"n_frames": 1}, "n_frames"), ({"temporal_width": 30}, "temporal_width"), ({"embed_dim": 0}, "embed_dim"),
    ({"actions": ["open", "open"]}, "actions"), ({"lambda_aux": -1.0}, "lambda_aux"),
    ({"attn_tokens": 5}, "attn_tokens"),
])
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ConfigError, match=field):
        small_config(**kw)


def test_default_config_is_valid():
    cfg = RoboActConfig(actions=["open"], objects=["drawer"])
    assert cfg.fused_dim == 3 * cfg.embed_dim


def test_meanpool_baseline_is_order_blind_and_needs_no_disentanglement():
    m = RoboActCLIP(small_config(fusion="meanpool", disentangle=False)).eval()
    frames, text, labels = make_batch(4, 8, m.cfg)
    assert torch.allclose(m.encode_frames(frames).video, m.encode_frames(frames.flip(1)).video, atol=1e-6)
    out = m(frames, text, labels)
    assert set(out.losses) == {"clip", "total"}
    with pytest.raises(ConfigError, match="fusion"):
        small_config(fusion="meanpool")


def test_total_loss_is_eq24_of_its_parts_with_the_configured_lambdas():
    """Distinct lambdas, so swapping any two (eq. 20's or eq. 24's) changes the total."""
    lam = dict(lambda_ortho=1.7, lambda_recomb=0.45, lambda_disent=0.3, lambda_aux=2.2)
    model = RoboActCLIP(small_config(**lam))
    frames, text, labels = make_batch(16, 8, model.cfg)
    model.update_banks(model(frames, text, labels), labels, step=0)
    trip = model.sample_triplets(8)
    out = model(frames, text, labels, recomb=(trip, torch.randn(len(trip), model.cfg.text_dim)))
    ls = {k: v.item() for k, v in out.losses.items()}
    assert all(abs(ls[k]) > 1e-3 for k in ("clip", "sim", "l2", "recomb", "aux")), ls   # every part counts
    disent = lam["lambda_ortho"] * (ls["sim"] + ls["l2"]) + lam["lambda_recomb"] * ls["recomb"]     # eq. 20
    assert ls["disent"] == pytest.approx(disent, rel=1e-5)
    total = ls["clip"] + lam["lambda_disent"] * disent + lam["lambda_aux"] * ls["aux"]          # eq. 24
    assert ls["total"] == pytest.approx(total, rel=1e-5)
    assert out.loss.item() == pytest.approx(total, rel=1e-5)


def test_temporal_transformer_reads_frame_differences_not_frames(cfg):
    """Eq. 4: two clips whose frames differ by one constant vector have the same differences, so the same
    temporal token; a transformer fed raw frames would tell them apart (checked on the same weights)."""
    from roboact.models.temporal import TemporalDiffTransformer

    torch.manual_seed(0)
    tdt = TemporalDiffTransformer(cfg).eval()
    frames, _, _ = make_batch(3, 8, cfg)
    shifted = frames + 5.0 * torch.randn(3, 1, cfg.image_dim)                 # (B, n, d): same increments
    with torch.no_grad():
        assert torch.allclose(tdt(frames), tdt(shifted), atol=1e-5)
        assert not torch.allclose(tdt.inp(frames[:, 1:]), tdt.inp(shifted[:, 1:]), atol=1e-3)  # raw frames differ
        assert not torch.allclose(tdt(frames), tdt(frames.flip(1)), atol=1e-3)  # and order still matters


# --- beyond the paper: the time-contrastive (lambda_tcn) and frame-reconstruction (lambda_frame) terms ------

@pytest.mark.parametrize("kw, present", [
    ({}, set()), ({"lambda_tcn": 0.5}, {"tcn"}), ({"lambda_frame": 0.5}, {"frame"}),
    ({"lambda_tcn": 0.5, "lambda_frame": 0.5, "disentangle": False}, {"tcn", "frame"}),
])
def test_extra_terms_are_absent_unless_switched_on(kw, present):
    model = RoboActCLIP(small_config(**kw))
    out = model(*make_batch(8, 8, model.cfg))
    assert {"tcn", "frame"} & set(out.losses) == present
    assert (out.states is not None) == ("tcn" in present)
    assert hasattr(model, "frame_decoder") == ("frame" in present)


def test_extra_terms_off_leave_the_model_bit_identical():
    """Same weights, with and without the time-contrastive term: the encoding is bit for bit the same (its
    states are read off the path that computes Tem), and the decoder adds parameters only when on."""
    torch.manual_seed(0)
    base = RoboActCLIP(small_config()).eval()
    on = RoboActCLIP(small_config(lambda_tcn=1.0)).eval()
    on.load_state_dict(base.state_dict())
    frames, text, labels = make_batch(8, 16, base.cfg)
    assert torch.equal(base.encode_frames(frames).video, on.encode_frames(frames).video)
    a, b = base(frames, text, labels).losses, on(frames, text, labels).losses
    assert all(torch.equal(a[k], b[k]) for k in a if k != "total")
    assert set(RoboActCLIP(small_config(lambda_frame=1.0)).state_dict()) - set(base.state_dict()) == \
        {"frame_decoder.weight", "frame_decoder.bias"}


@pytest.mark.parametrize("disentangle", [True, False])
def test_total_with_extra_terms_is_eq24_plus_their_weighted_sum(disentangle):
    lam = dict(lambda_ortho=1.7, lambda_recomb=0.45, lambda_disent=0.3, lambda_aux=2.2,
               lambda_tcn=0.7, lambda_frame=1.3)
    model = RoboActCLIP(small_config(disentangle=disentangle, **lam))
    frames, text, labels = make_batch(16, 8, model.cfg)
    if disentangle:
        model.update_banks(model(frames, text, labels), labels, step=0)
    trip = model.sample_triplets(8)
    recomb = (trip, torch.randn(len(trip), model.cfg.text_dim)) if disentangle else None
    out = model(frames, text, labels, recomb=recomb)
    ls = {k: v.item() for k, v in out.losses.items()}
    assert all(abs(ls[k]) > 1e-3 for k in ("clip", "tcn", "frame")), ls
    eq24 = ls["clip"]
    if disentangle:
        eq24 += lam["lambda_disent"] * ls["disent"] + lam["lambda_aux"] * ls["aux"]
    extra = lam["lambda_tcn"] * ls["tcn"] + lam["lambda_frame"] * ls["frame"]
    assert ls["total"] == pytest.approx(eq24 + extra, rel=1e-5)


def test_tcn_draws_follow_the_generator():
    model = RoboActCLIP(small_config(lambda_tcn=1.0)).eval()
    batch = make_batch(16, 16, model.cfg)
    tcn = [model(*batch, generator=torch.Generator().manual_seed(s)).losses["tcn"] for s in (1, 1, 2)]
    assert torch.equal(tcn[0], tcn[1]) and not torch.equal(tcn[0], tcn[2])


def test_frame_loss_gradient_reaches_the_fused_embedding_and_the_fusion():
    model = RoboActCLIP(small_config(lambda_frame=1.0, frame_targets="first_last"))
    frames, text, labels = make_batch(8, 8, model.cfg)
    out = model(frames, text, labels)
    out.video.retain_grad()
    out.losses["frame"].backward()
    assert out.video.grad is not None and out.video.grad.abs().sum() > 0
    assert model.fusion.mlp[0].weight.grad.abs().sum() > 0          # through Fv into eq. 8's MLP
    assert model.fusion.temporal.inp.weight.grad.abs().sum() > 0    # and the Temporal Diff-Transformer
    assert model.frame_decoder.weight.shape == (2 * model.cfg.image_dim, model.cfg.fused_dim)


def test_tcn_gradient_reaches_the_temporal_transformer_only():
    model = RoboActCLIP(small_config(lambda_tcn=1.0))
    model(*make_batch(8, 8, model.cfg)).losses["tcn"].backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["fusion.temporal.inp.weight"].abs().sum() > 0
    assert grads["fusion.mlp.0.weight"] is None                      # the states come before eq. 8's MLP


@pytest.mark.parametrize("kw, field", [
    ({"lambda_tcn": -0.1}, "lambda_tcn"), ({"lambda_frame": -1.0}, "lambda_frame"),
    ({"lambda_tcn": 0.5, "temporal": False}, "lambda_tcn"),
    ({"lambda_tcn": 0.5, "fusion": "meanpool", "disentangle": False}, "lambda_tcn"),
    ({"lambda_tcn": 0.5, "n_frames": 3}, "lambda_tcn"),
])
def test_extra_term_config_errors_name_the_field(kw, field):
    with pytest.raises(ConfigError, match=field):
        small_config(**kw)
    small_config(**{k: v for k, v in kw.items() if not k.startswith("lambda")})   # valid with the term off


def test_tcn_on_too_few_frames_is_a_clear_error():
    model = RoboActCLIP(small_config(lambda_tcn=1.0))
    with pytest.raises(ValueError, match="at least 3 per-frame states"):
        model(*make_batch(4, 3, model.cfg))


# --- loss assembly: every term from losses.py, fed this config's settings (not the functions' defaults) -----

def _outputs(model, b=6, n=8, seed=0):
    frames, text, labels = make_batch(b, n, model.cfg, seed=seed)
    return frames, text, labels, model(frames, text, labels)


@pytest.mark.parametrize("symmetric", [True, False])
def test_each_term_uses_the_configured_setting(symmetric):
    from roboact.models import losses as L

    cfg = small_config(clip_symmetric=symmetric, sim_abs=not symmetric, l2_coef=0.37,
                       alpha_subject=0.3, alpha_action=1.9, alpha_object=0.6)
    torch.manual_seed(0)
    model = RoboActCLIP(cfg)
    _, _, labels, out = _outputs(model)
    scale = model.temperature_scale()
    assert out.losses["clip"].item() == pytest.approx(
        L.loss_clip_eq23(out.video, out.text["fused"], scale, symmetric=symmetric).item(), rel=1e-6)
    assert out.losses["sim"].item() == pytest.approx(
        L.loss_sim_eq11(out.subject, out.action, out.object, absolute=not symmetric).item(), rel=1e-6)
    assert out.losses["l2"].item() == pytest.approx(
        L.loss_l2_eq12(out.subject, out.action, out.object, coef=0.37).item(), rel=1e-6)
    alphas = {"subject": 0.3, "action": 1.9, "object": 0.6}
    assert out.losses["aux"].item() == pytest.approx(L.loss_aux_eq22(out.logits, labels, alphas).item(), rel=1e-6)


@pytest.mark.parametrize("symmetric", [True, False])
def test_data_parallel_clip_loss_contrasts_against_every_ranks_rows(symmetric):
    """What DDP training computes on rank 1 of 2: a gather returning (rank 0's rows, then ours; our offset)."""
    from roboact.models import losses as L

    torch.manual_seed(0)
    model = RoboActCLIP(small_config(clip_symmetric=symmetric))
    frames, text, labels = make_batch(6, 8, model.cfg)

    def peer(x):                        # rank 0's six rows: any rows that are not ours will do
        return 2.0 * x.detach().flip(0) + 1.0

    def gather(x):
        return torch.cat([peer(x), x]), 6

    out = model(frames, text, labels, gather=gather)
    v_all, t_all = gather(out.video)[0], gather(out.text["fused"])[0]
    want = L.loss_clip_eq23(out.video, out.text["fused"], model.temperature_scale(), symmetric=symmetric,
                            text_all=t_all, video_all=v_all, offset=6)
    assert out.losses["clip"].item() == pytest.approx(want.item(), rel=1e-6)
    alone = model(frames, text, labels).losses["clip"]
    assert abs(out.losses["clip"].item() - alone.item()) > 1e-3        # the other rank's rows count


def test_recombination_counts_from_two_triplets_and_the_temperature_caps_at_100():
    torch.manual_seed(0)
    model = RoboActCLIP(small_config())
    frames, text, labels = make_batch(16, 8, model.cfg)
    model.update_banks(model(frames, text, labels), labels, step=0)
    trip = model.sample_triplets(2)
    assert len(trip) == 2
    out = model(frames, text, labels, recomb=(trip, torch.randn(2, model.cfg.text_dim)))
    assert out.losses["recomb"].item() > 1e-3
    with torch.no_grad():
        model.logit_scale.fill_(10.0)                                  # exp(10) would be 22026
    assert model.temperature_scale().item() == pytest.approx(100.0)


@pytest.mark.parametrize("targets, idx", [("last", [-1]), ("first_last", [0, -1])])
def test_frame_term_rebuilds_the_configured_frames(targets, idx):
    from roboact.models import losses as L

    torch.manual_seed(0)
    model = RoboActCLIP(small_config(lambda_frame=1.0, frame_targets=targets))
    frames, _, _, out = _outputs(model, n=5)
    decoded = model.frame_decoder(out.video).view(out.video.shape[0], len(idx), -1)
    want = L.loss_frame(decoded, frames[:, idx])
    assert out.losses["frame"].item() == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(ValueError, match="frame-reconstruction term needs the clip's frame features"):
        model.frame_loss(out.video, None)
