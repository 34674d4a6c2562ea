import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import roboact
from roboact.train.checkpoint import checkpoint_dirs, latest_checkpoint
from roboact.train.config import load_train_config
from roboact.train.loop import TrainingDiverged, train
from roboact.utils.config import ConfigError

SMALL_MODEL = {"embed_dim": 16, "temporal_width": 32, "temporal_heads": 2, "fusion_hidden": 64, "branch_hidden": 32,
               "text_hidden": 32, "aux_hidden": 16, "attn_heads": 2, "recomb_size": 8}


def make_cfg(manifest, cache, backbone, out, steps=12, **over):
    o = [f"data.manifest={manifest}", f"data.cache={cache}", "data.backbone=hf-clip",
         f"data.backbone_path={backbone.path}", f"out={out}", f"optim.steps={steps}", "optim.batch_size=8",
         "optim.warmup_steps=2", "checkpoint_every=4", "eval_every=6", "log_every=2", "progress=false",
         "tensorboard=false", f"model={json.dumps(SMALL_MODEL)}"]
    o += [f"{k}={json.dumps(v)}" for k, v in over.items()]
    return load_train_config(None, o)


def test_training_lowers_the_loss_and_exports_a_loadable_encoder(feature_corpus, tiny_clip_backbone, tmp_path):
    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "run", steps=60, **{"optim.lr": 2e-3})
    res = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    clip = [x["train/clip"] for x in lines if "train/clip" in x]
    assert clip[-1] < clip[0] * 0.8
    assert any("val/r1_video_to_text" in x for x in lines)
    enc = roboact.load(res.final)
    assert enc.cfg.actions == ["close", "open", "pull", "push"]
    assert enc.heads.banks.filled("action").all()
    meta = json.loads((Path(res.final) / "config.json").read_text())
    assert meta["train"]["optim"]["steps"] == 60  # the run's config travels with the weights
    assert len(checkpoint_dirs(tmp_path / "run")) <= cfg.keep_checkpoints


@pytest.mark.parametrize("over", [{"data.reverse_prob": 0.0}, {"data.reverse_prob": 0.5},
                                  {"model.lambda_tcn": 0.5, "model.lambda_frame": 0.5}],
                         ids=["plain", "reversal", "tcn+frame"])
def test_resume_is_bit_exact(feature_corpus, tiny_clip_backbone, tmp_path, over):
    manifest, cache = feature_corpus
    straight = train(make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "a", steps=12, **over))
    cfg_b = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "b", steps=12, **over)
    part = train(cfg_b, stop_after=6)
    assert part.steps == 6 and not Path(part.final).exists()
    assert latest_checkpoint(tmp_path / "b").name == "step_00000006"
    from roboact.train.loop import Trainer

    ran, real_step = [], Trainer.step

    def counting(self):
        ran.append(self.step_num)
        return real_step(self)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "step", counting)
        resumed = train(cfg_b, resume=True)
    assert resumed.steps == 12
    assert len(ran) == 6 and ran[0] == 6      # resuming runs steps 6..11 only: restarting would run all 12
    a = load_file(str(Path(straight.final) / "model.safetensors"))
    b = load_file(str(Path(resumed.final) / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("term", ["tcn", "frame"])
def test_each_extra_term_is_logged_and_decreases_in_a_tiny_run(feature_corpus, tiny_clip_backbone, tmp_path, term):
    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "run", steps=40,
                   **{"optim.lr": 2e-3, f"model.lambda_{term}": 1.0})
    res = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    values = [x[f"train/{term}"] for x in lines if f"train/{term}" in x]
    assert len(values) == 20 and all("train/" + ("frame" if term == "tcn" else "tcn") not in x for x in lines)
    assert sum(values[-4:]) / 4 < 0.9 * values[0], values
    assert any(f"val/{term}" in x for x in lines)
    assert getattr(roboact.load(res.final).cfg, f"lambda_{term}") == 1.0


def test_refuses_to_overwrite_a_run_without_resume(feature_corpus, tiny_clip_backbone, tmp_path):
    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "r", steps=4)
    train(cfg)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg)


def test_nan_loss_stops_with_a_clear_message_and_keeps_last_good_checkpoint(feature_corpus, tiny_clip_backbone,
                                                                            tmp_path, monkeypatch):
    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "n", steps=12)
    from roboact.models import losses as L

    real = L.loss_sim_eq11
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        v = real(*a, **k)
        return v * float("nan") if calls["n"] > 5 else v

    monkeypatch.setattr(L, "loss_sim_eq11", flaky)
    with pytest.raises(TrainingDiverged, match=r"sim.*NaN/Inf.*step_00000004"):
        train(cfg)
    last = latest_checkpoint(tmp_path / "n")
    w = load_file(str(last / "model.safetensors"))
    assert all(torch.isfinite(v.float()).all() for v in w.values())


def test_config_errors_name_the_field(feature_corpus, tiny_clip_backbone, tmp_path):
    manifest, cache = feature_corpus
    with pytest.raises(ConfigError, match="optim.lr"):
        make_cfg(manifest, cache, tiny_clip_backbone, tmp_path, **{"optim.lr": -1})
    with pytest.raises(ConfigError, match="optim.batchsize: unknown"):
        make_cfg(manifest, cache, tiny_clip_backbone, tmp_path, **{"optim.batchsize": 3})
    with pytest.raises(ConfigError, match="model.embed_dimm: unknown"):  # at load, before any data or backbone
        make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "m", **{"model.embed_dimm": 3})
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="model.temporal"):
        make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "m", **{"model.temporal": "nope"})


def test_wrong_backbone_cache_is_refused(feature_corpus, tiny_clip_backbone, tmp_path):
    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "w", **{"data.backbone": "lite0-minilm",
                                                                          "data.backbone_path": None})
    from roboact.data.features import CacheError

    with pytest.raises(CacheError, match="lite0-minilm"):
        train(cfg)


DDP_SCRIPT = r"""
import json, sys, torch
from roboact.train.config import load_train_config
from roboact.train.loop import train
cfg = load_train_config(None, json.loads(sys.argv[1]))
train(cfg)
"""


def test_ddp_two_processes_match_single_process(feature_corpus, tiny_clip_backbone, tmp_path):
    """2 CPU ranks x batch 4 must train the same weights as 1 process x batch 8 (dropout off): gathered
    contrastive loss, averaged gradients and banks fed in rank order make them the same computation."""
    manifest, cache = feature_corpus
    model = dict(SMALL_MODEL, temporal_dropout=0.0)
    base = [f"data.manifest={manifest}", f"data.cache={cache}", "data.backbone=hf-clip",
            f"data.backbone_path={tiny_clip_backbone.path}", "optim.steps=6", "optim.warmup_steps=1",
            "checkpoint_every=6", "eval_every=0", "progress=false", "tensorboard=false", f"model={json.dumps(model)}"]
    single = train(load_train_config(None, base + [f"out={tmp_path / 's'}", "optim.batch_size=8"]))
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    args = json.dumps(base + [f"out={tmp_path / 'd'}", "optim.batch_size=4"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           str(script), args], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(Path(single.final) / "model.safetensors"))
    b = load_file(str(tmp_path / "d" / "final" / "model.safetensors"))
    # Attention key biases get a gradient that is zero in exact arithmetic (softmax ignores a per-query
    # constant); Adam turns their float noise into lr-sized steps, so compare them through the outputs.
    key_bias = {k for k in a if k.endswith(("qkv.bias", "in_proj_bias"))}
    for k in set(a) - key_bias:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5, rtol=1e-4), k
    from roboact.data.features import FeatureCache

    feats = FeatureCache(cache, "hf-clip").get_many(FeatureCache(cache, "hf-clip").clip_ids)
    ea, eb = roboact.load(single.final), roboact.load(tmp_path / "d" / "final")
    for k, v in ea.encode_video(feats).items():
        assert torch.allclose(v, eb.encode_video(feats)[k], atol=1e-4, rtol=1e-4), k


def test_resumed_run_forgets_metrics_logged_after_its_checkpoint(tmp_path):
    from roboact.train.loop import truncate_metrics

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "train/clip": 1.0}) + "\n" for s in (2, 4, 6, 8)))
    truncate_metrics(log, 4)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [2, 4]
    truncate_metrics(log, 0)
    assert log.read_text() == ""


def test_reversal_augmentation_uses_only_triplets_seen_in_training(feature_corpus, tiny_clip_backbone):
    from roboact.data.features import FeatureCache
    from roboact.data.clipset import Vocab, build_clipset, load_rows, reversal_map

    manifest, cache = feature_corpus
    rows = load_rows(manifest)
    vocab = Vocab.from_rows(rows)
    train_set = build_clipset([r for r in rows if r.split == "train"], FeatureCache(cache, "hf-clip"), vocab)
    actions, captions = reversal_map(train_set, vocab)
    for row, a, c in zip(train_set.rows, actions.tolist(), captions.tolist()):
        if (row.action, row.object) == ("pull", "window"):  # its opposite (push, window) is held out
            assert a == c == -1
        else:  # every other action of the corpus has its opposite with the same object in training
            assert vocab.actions[a] != row.action and train_set.captions[c].endswith(f"Object is {row.object}.")
            assert f"Action is {vocab.actions[a]}," in train_set.captions[c]


# --- the command line: --config, --set and flags over TrainConfig ----------------------------------------

def _train_cli(argv, monkeypatch):
    """Run `roboact train ARGV` with the training itself replaced: returns (exit code, the config it got)."""
    from roboact.cli import main
    from roboact.train import loop

    seen = []

    def fake_train(cfg, resume=False):
        seen.append(cfg)
        return loop.TrainResult(cfg.out, f"{cfg.out}/final", cfg.optim.steps, {})

    monkeypatch.setattr(loop, "train", fake_train)
    return main(["train", *argv]), (seen[0] if seen else None)


def test_cli_config_file_set_and_flags_reach_the_config(tmp_path, monkeypatch):
    from roboact.models.config import RoboActConfig

    # a train config as saved before `model` was typed: a dict of RoboActConfig overrides
    legacy = {"out": "runs/old", "seed": 3, "data": {"manifest": "m.jsonl", "cache": "c", "backbone": "hf-clip"},
              "optim": {"steps": 150, "lr": 1e-3, "betas": [0.9, 0.95]}, "model": {"temporal": False}}
    path = tmp_path / "train_config.json"
    path.write_text(json.dumps(legacy))
    rc, cfg = _train_cli(["--config", str(path), "--set", "optim.steps=170", "model.embed_dim=32", "seed=4",
                          "--out", str(tmp_path / "new"), "--set", "out=ignored"], monkeypatch)
    assert rc == 0 and isinstance(cfg.model, RoboActConfig)
    assert (cfg.out, cfg.seed, cfg.data.manifest, cfg.data.backbone) == (str(tmp_path / "new"), 4, "m.jsonl", "hf-clip")
    assert (cfg.optim.steps, cfg.optim.lr, cfg.optim.betas) == (170, 1e-3, (0.9, 0.95))
    assert (cfg.model.temporal, cfg.model.embed_dim, cfg.model.disentangle) == (False, 32, True)
    rc, on = _train_cli(["--config", str(path), "--set", "model.temporal=true", "model.lambda_tcn=0.5",
                         "model.lambda_frame=0.25", "model.frame_targets=first_last"], monkeypatch)
    assert rc == 0 and (on.model.lambda_tcn, on.model.lambda_frame, on.model.frame_targets) == (0.5, 0.25, "first_last")
    assert on.to_dict()["model"] == {"lambda_tcn": 0.5, "lambda_frame": 0.25, "frame_targets": "first_last"}
    # saved, `model` keeps its old form (what differs from the defaults) and reloads to the same config
    assert cfg.to_dict()["model"] == {"temporal": False, "embed_dim": 32}
    path.write_text(json.dumps(cfg.to_dict()))
    assert load_train_config(str(path)) == cfg


def test_cli_bad_set_fails_before_any_data_or_backbone_loads(tmp_path, monkeypatch, capsys):
    argv = ["--manifest", str(tmp_path / "missing.jsonl"), "--cache", str(tmp_path / "nocache"),
            "--out", str(tmp_path / "run")]
    rc, cfg = _train_cli(argv + ["--set", "model.temporl=false"], monkeypatch)
    err = capsys.readouterr().err
    assert rc == 2 and cfg is None and "model.temporl: unknown config field for RoboActConfig" in err
    assert "temporal" in err                       # the valid keys are listed
    rc, _ = _train_cli(argv + ["--set", "model.temporal=maybe"], monkeypatch)
    assert rc == 2 and "model.temporal: expected true/false, got 'maybe'" in capsys.readouterr().err
    rc, _ = _train_cli(argv + ["--set", "model.attn_heads=5"], monkeypatch)   # RoboActConfig's own checks, at load
    assert rc == 2 and "model.attn_heads: attention token width" in capsys.readouterr().err
    rc, _ = _train_cli(argv + ["--set", "model.lambda_tcn=0.5", "model.temporal=false"], monkeypatch)
    assert rc == 2 and "model.lambda_tcn: the time-contrastive term needs" in capsys.readouterr().err
    rc, _ = _train_cli(argv + ["--set", "model.frame_targets=middle"], monkeypatch)
    assert rc == 2 and "model.frame_targets: 'middle' is not one of" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


SLOW_STEP = """
import time
from roboact.train.loop import Trainer
_step = Trainer.step
def slow(self):
    time.sleep(0.1)
    return _step(self)
Trainer.step = slow
"""


def test_sigterm_checkpoints_and_the_resumed_run_is_bit_exact(feature_corpus, tiny_clip_backbone, tmp_path):
    """`roboact train` preempted mid-run saves a checkpoint at the step it stopped (checkpoint_on_stop_s=0);
    rerun with --resume, it ends with the very weights of an uninterrupted run."""
    manifest, cache = feature_corpus
    over = {"checkpoint_every": 1000, "checkpoint_on_stop_s": 0, "eval_every": 0}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the command runs (tests.preempt sets OMP_NUM_THREADS=1): same float sums
    try:
        _preempt_and_resume(manifest, cache, tiny_clip_backbone, tmp_path, over)
    finally:
        torch.set_num_threads(threads)


def _preempt_and_resume(manifest, cache, tiny_clip_backbone, tmp_path, over):
    from tests.preempt import Command, temp_files

    straight = train(make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "a", steps=24, **over))
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "b", steps=24, **over)
    (tmp_path / "b.json").write_text(json.dumps(cfg.to_dict()))
    argv = ["train", "--config", tmp_path / "b.json"]
    metrics = tmp_path / "b" / "metrics.jsonl"
    with Command(argv, tmp_path / "sigterm.log", patch=SLOW_STEP) as run:
        run.wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2)
        assert run.stop() == 143
    stopped_at = int(latest_checkpoint(tmp_path / "b").name.split("_")[1])
    assert 4 <= stopped_at < 24 and not (tmp_path / "b" / "final").exists() and not temp_files(tmp_path / "b")
    assert f"stopped by SIGTERM; finished: step {stopped_at} of 24" in run.text()
    assert "rerun the same command with --resume" in run.text()
    from roboact.cli import main

    assert main([*map(str, argv), "--resume"]) == 0   # the same command, in this process (saves a start-up)
    a = load_file(str(Path(straight.final) / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("interval, saved", [(0, 5), (3600, 4)])
def test_a_stop_checkpoints_only_when_the_last_checkpoint_is_older_than_the_interval(
        feature_corpus, tiny_clip_backbone, tmp_path, monkeypatch, interval, saved):
    import signal

    from roboact.train.loop import Trainer
    from roboact.utils import shutdown

    manifest, cache = feature_corpus
    cfg = make_cfg(manifest, cache, tiny_clip_backbone, tmp_path / "run", steps=12, checkpoint_on_stop_s=interval)
    real = Trainer.step

    def step(self):
        out = real(self)
        if self.step_num == 5:
            os.kill(os.getpid(), signal.SIGTERM)   # arrives mid-loop; the step still finishes
        return out
    monkeypatch.setattr(Trainer, "step", step)
    assert shutdown.run_command("train", lambda: train(cfg), exit_stuck=False) == 143
    assert latest_checkpoint(tmp_path / "run").name == f"step_{saved:08d}"   # checkpoint_every=4


def test_checkpoint_on_stop_must_be_seconds(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_on_stop_s"):
        load_train_config(None, [f"out={tmp_path}", "checkpoint_on_stop_s=-1"])
