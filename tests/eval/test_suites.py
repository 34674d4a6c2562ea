"""The time-reversal, open-vocabulary and unseen-viewpoint suites, and multi-seed rows."""
import dataclasses
import json
import math

import pytest
import torch

from roboact.cli import main as roboact_main
from roboact.data.manifest import ClipRecord, read_manifest, write_manifest
from roboact.data.opposites import OPPOSITE, REVERSIBLE_PAIRS, reverse_time
from roboact.data.splits import camera_split, check_camera_split
from roboact.eval.cli import parse_model, parse_suites
from roboact.eval.config import SUITES, EvalConfig
from roboact.eval.runner import evaluate
from roboact.eval.seeds import aggregate_seeds, format_cell
from roboact.eval.suites import reversal_targets, select_suites, two_way_accuracy, unseen_cameras
from roboact.utils.config import ConfigError
from roboact.utils.stats import t_quantile_975
from tests.eval.conftest import FAST


# --- reversal table and its pieces ----------------------------------------------------------------------

def test_reversal_table_is_symmetric_and_names_only_corpus_actions():
    from roboact.sim.libero import PAPER_LIBERO_TASKS
    from roboact.sim.metaworld import ATOMIC_TASKS

    vocab = {lab.action for lab in ATOMIC_TASKS.values()} | {t.action for t in PAPER_LIBERO_TASKS.values()}
    for a, b in OPPOSITE.items():
        assert OPPOSITE[b] == a and a != b
    assert set(OPPOSITE) == {x for p in REVERSIBLE_PAIRS for x in p}
    for a, b in REVERSIBLE_PAIRS:
        assert a in vocab and b in vocab, (a, b)
    assert "press" not in OPPOSITE and "turn" not in OPPOSITE


def test_reverse_time_is_exactly_the_flipped_frames():
    x = torch.randn(3, 5, 4)
    r = reverse_time(x)
    for i in range(5):
        assert torch.equal(r[:, i], x[:, 4 - i])
    assert torch.equal(reverse_time(r), x)
    with pytest.raises(ValueError, match="clips, frames, dim"):
        reverse_time(torch.zeros(5, 4))


def test_two_way_accuracy_counts_ties_as_half():
    protos = torch.eye(3)
    feats = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    right, wrong = torch.tensor([0, 0, 0]), torch.tensor([1, 1, 1])
    assert two_way_accuracy(feats, protos, right, wrong) == pytest.approx((1 + 0.5 + 0) / 3)
    # swapping right and wrong scores the complement: forward + reversed of an order-blind encoder = 1
    assert two_way_accuracy(feats, protos, wrong, right) == pytest.approx(1 - (1 + 0.5 + 0) / 3)


def test_reversal_targets_need_the_opposite_in_the_vocabulary():
    actions = ["close", "open", "press", "push"]          # "pull" absent: push has no opposite here
    got = reversal_targets(actions, torch.tensor([0, 1, 2, 3, 1]))
    assert got.tolist() == [1, 0, -1, -1, 0]


# --- seeds ------------------------------------------------------------------------------------------------

def test_multi_seed_mean_and_t_interval_on_known_numbers():
    per_seed = [{"a": 0.5, "b": None, "c": 1.0}, {"a": 0.6, "b": None, "c": float("nan")},
                {"a": 0.7, "b": None, "c": 0.0}]
    means, iv = aggregate_seeds(per_seed)
    assert means["a"] == pytest.approx(0.6) and means["b"] is None
    half = 4.3027 * 0.1 / math.sqrt(3)                  # t(0.975, 2) * s / sqrt(k), s = 0.1
    assert iv["a"]["half_width"] == pytest.approx(half) and iv["a"]["n"] == 3
    assert iv["a"]["low"] == pytest.approx(0.6 - half) and iv["a"]["high"] == pytest.approx(0.6 + half)
    assert means["c"] == 0.5 and iv["c"]["n"] == 2      # a NaN seed is left out, not counted as 0
    assert iv["c"]["half_width"] == pytest.approx(t_quantile_975(1) * math.sqrt(0.5) / math.sqrt(2))
    assert "b" not in iv
    single, none = aggregate_seeds([{"a": 0.25}])
    assert single == {"a": 0.25} and none == {}
    assert format_cell(0.6, iv["a"]) == f"0.600 ± {half:.3f}" and format_cell(0.25, None) == "0.250"
    assert format_cell(None, None) == "–"


# --- configuration and CLI --------------------------------------------------------------------------------

def test_multi_checkpoint_rows_parse_and_normalise():
    assert parse_model("full=runs/s0/full, runs/s1/full ,runs/s2/full") == \
        ("full", ["runs/s0/full", "runs/s1/full", "runs/s2/full"])
    assert parse_model("no temporal=runs/abl1") == ("no temporal", "runs/abl1")
    with pytest.raises(ValueError, match="row 'full' has an empty folder"):
        parse_model("full=a,,b")
    cfg = EvalConfig(manifest="m", cache="c", out="o", models=[("full", ["a", "b", "c"]), ("base", "d")])
    assert cfg.models == [("full", ("a", "b", "c")), ("base", ("d",))]
    with pytest.raises(ConfigError, match="models\\[0\\]: row 'full' names a twice"):
        EvalConfig(manifest="m", cache="c", out="o", models=[("full", ["a", "b", "a"])])
    assert parse_suites("reversal, viewpoint") == ["reversal", "viewpoint"] and parse_suites(None) is None
    with pytest.raises(ValueError, match="--suites"):
        parse_suites("reversal,bogus")
    with pytest.raises(ConfigError, match=r"suites: unknown suite \['bogus'\]"):
        EvalConfig(manifest="m", cache="c", out="o", models=[("a", "b")], suites=["bogus"])


def test_select_suites_skips_with_reason_or_refuses_an_explicit_request():
    why = dict.fromkeys(SUITES, "")
    why["viewpoint"] = "no unseen camera"
    assert select_suites(None, why) == (["standard", "reversal", "openvocab"], {"viewpoint": "no unseen camera"})
    run, skipped = select_suites(["reversal"], why)
    assert run == ["reversal"] and set(skipped) == {"standard", "openvocab", "viewpoint"}
    with pytest.raises(ValueError, match="suite 'viewpoint' cannot run on this data: no unseen camera"):
        select_suites(["standard", "viewpoint"], why)


# --- splits -----------------------------------------------------------------------------------------------

def test_camera_split_leaves_no_test_camera_in_training():
    rows = [ClipRecord(clip_id=f"e{e}/{cam}", path=f"v/e{e}{cam}.mp4", subject="Robot", action="open",
                       object="drawer", task="t", camera=cam, seed=e, num_frames=8, fps=20.0, episode=f"e{e}")
            for e in range(60) for cam in ("corner", "corner3", "topview")]
    split = camera_split(rows, ["topview"], test_fraction=0.3)
    check_camera_split(split, ["topview"])
    test = [r for r in split if r.split == "test"]
    train = [r for r in split if r.split == "train"]
    assert test and train
    assert {r.camera for r in test} & {r.camera for r in train} == set()
    assert unseen_cameras(test, train) == ["topview"]


# --- end to end -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeds(trained, tiny_clip_backbone):
    """Two more seeds of the full model, and a copy of the manifest whose test clips were filmed by a
    camera ("cam1") that no training clip was: the features are the same, only the labels say so."""
    from roboact.train.loop import train
    from tests.train.test_train import make_cfg

    root, manifest, cache, full, base = trained
    more = [train(make_cfg(manifest, cache, tiny_clip_backbone, root / f"full_s{s}", steps=40, seed=s, **FAST))
            for s in (1, 2)]
    rows = [dataclasses.replace(r, camera="cam1") if r.split == "test" else r for r in read_manifest(manifest)]
    cams = root / "manifest_cams.jsonl"
    write_manifest(cams, rows)
    return [str(full)] + [m.final for m in more], cams


def test_every_suite_with_multi_seed_rows(trained, seeds, tmp_path):
    root, manifest, cache, full, base = trained
    folders, cams = seeds
    rep = evaluate(EvalConfig(manifest=str(cams), cache=str(cache), out=str(tmp_path / "ev"), progress=False,
                              models=[("full", folders), ("baseline", str(base))]))
    assert [s for s in SUITES if rep["suites"][s]["status"] == "ok"] == list(SUITES)
    fr, br = rep["rows"]
    assert len(fr["seeds"]) == 3 and [s["train_seed"] for s in fr["seeds"]] == [0, 1, 2]
    for k in ("v2t_r1", "rev_balanced", "rev_rev_v2t_r1", "comp_v2t_r5_all", "vp_action"):
        vals = [s["metrics"][k] for s in fr["seeds"]]
        assert fr["metrics"][k] == pytest.approx(sum(vals) / 3), k
        assert fr["intervals"][k]["n"] == 3
        sd = float(torch.tensor(vals, dtype=torch.float64).std())
        assert fr["intervals"][k]["half_width"] == pytest.approx(4.3027 * sd / math.sqrt(3), abs=1e-9), k
    assert br["intervals"] == {} and len(br["seeds"]) == 1
    # an order-blind encoder: forward and reversed choices are complements, balanced exactly 0.5
    m = br["metrics"]
    assert m["rev_balanced"] == 0.5 and m["rev_fwd_acc"] + m["rev_rev_acc"] == 1.0
    rev = rep["suites"]["reversal"]["info"]
    assert rev["pairs"] == [["open", "close"], ["push", "pull"]] and rev["clips"] == 12
    assert rev["clips_with_opposite_caption"] == 12          # close-door and pull-window are training captions
    ov = rep["suites"]["openvocab"]["info"]
    assert ov["pool_seen_pair_captions"] > 0 and ov["pool_unseen_pair_captions"] == 2 and ov["clips"] == 12
    assert ov["caption_pool"] == ov["pool_seen_pair_captions"] + ov["pool_unseen_pair_captions"]
    assert rep["suites"]["openvocab"]["chance"]["comp_v2t_r5_unseen"] == 1.0
    vp = rep["suites"]["viewpoint"]["info"]
    assert vp["heldout_cameras"] == ["cam1"] and vp["train_cameras"] == ["cam0"] and vp["clips"] == 12
    md = (tmp_path / "ev" / "report.md").read_text()
    for title in ("## Time reversal", "## Open-vocabulary composition", "## Unseen viewpoint"):
        assert title in md
    assert "**cam1**" in md and " ± " in md and "| full | full | 3 |" in md
    for s in ("reversal", "openvocab", "viewpoint"):
        assert (tmp_path / "ev" / rep["plots"][f"suite_{s}"]).stat().st_size > 1000
    saved = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert saved["rows"][0]["intervals"]["vp_object"]["n"] == 3


def test_a_suite_that_cannot_apply_is_explained_or_refused(trained, tmp_path):
    root, manifest, cache, full, base = trained
    common = dict(manifest=str(manifest), cache=str(cache), progress=False, plots=False, models=[("b", str(base))])
    rep = evaluate(EvalConfig(out=str(tmp_path / "a"), **common))            # one camera everywhere
    assert rep["suites"]["viewpoint"]["status"] == "not run"
    assert "roboact split MANIFEST --by camera" in rep["suites"]["viewpoint"]["reason"]
    assert rep["rows"][0]["metrics"]["vp_action"] is None
    md = (tmp_path / "a" / "report.md").read_text()
    assert "## Unseen viewpoint\n\nNot run: every camera of the scored split (cam0)" in md
    with pytest.raises(ValueError, match="suite 'viewpoint' cannot run on this data"):
        evaluate(EvalConfig(out=str(tmp_path / "b"), suites=["reversal", "viewpoint"], **common))
    rep = evaluate(EvalConfig(out=str(tmp_path / "c"), suites=["reversal"], **common))
    assert rep["rows"][0]["metrics"]["v2t_r1"] is None and rep["rows"][0]["metrics"]["rev_balanced"] == 0.5
    assert "## Standard metrics\n\nNot run: not selected" in (tmp_path / "c" / "report.md").read_text()


def test_cli_multi_checkpoint_row_runs_and_a_missing_seed_names_the_row(trained, seeds, tmp_path, capsys):
    root, manifest, cache, full, base = trained
    folders, _ = seeds
    common = ["eval", "--manifest", str(manifest), "--cache", str(cache), "--out", str(tmp_path / "cli"),
              "--no-plots", "--no-progress", "--suites", "reversal"]
    assert roboact_main(common + ["--model", "full=" + ",".join(folders)]) == 0
    out = capsys.readouterr().out
    assert "| full | full | 3 |" in out and "balanced 2-way acc" in out
    missing = tmp_path / "s9"
    assert roboact_main(common + ["--model", f"full={folders[0]},{missing}", "--model", f"b={base}"]) == 2
    err = capsys.readouterr().err
    assert "row 'full': checkpoint 2 of 2" in err and str(missing) in err and "does not exist" in err
