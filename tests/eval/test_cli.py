"""`roboact eval` builds its EvalConfig from --config, --set and the flags that were given; the run saves
that config, and --config of it reproduces the report."""
import json

from roboact.cli import build_parser
from roboact.cli import main as roboact_main
from roboact.eval.cli import build_config


def _config(argv):
    return build_config(build_parser().parse_args(["eval", *argv]))


def test_config_file_set_and_flags_reach_the_config(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"manifest": "m.jsonl", "cache": "c", "out": "o", "seed": 5, "batch_size": 64,
                                "models": [["full", ["s0", "s1"]]], "suites": ["reversal"]}))
    cfg = _config(["--config", str(path), "--set", "seed=6", "probe_max_train=100", "plots=false",
                   "--batch-size", "32", "--model", "base=b"])
    assert (cfg.manifest, cfg.cache, cfg.out, cfg.suites) == ("m.jsonl", "c", "o", ["reversal"])
    assert (cfg.seed, cfg.probe_max_train, cfg.plots, cfg.batch_size) == (6, 100, False, 32)
    assert cfg.models == [("base", ("b",))]                 # a given --model replaces the file's rows
    assert _config(["--config", str(path)]).models == [("full", ("s0", "s1"))]
    # without a file the flags alone keep their old meaning and defaults
    cfg = _config(["--manifest", "m", "--cache", "c", "--out", "o", "--model", "a=x"])
    assert (cfg.split, cfg.train_split, cfg.seed, cfg.device, cfg.batch_size, cfg.plots) == \
        ("test", "train", 0, "cpu", 512, True)


def test_bad_set_or_missing_field_fails_before_any_work(tmp_path, capsys):
    common = ["eval", "--manifest", str(tmp_path / "none.jsonl"), "--cache", str(tmp_path), "--model", "a=x",
              "--out", str(tmp_path / "out")]
    assert roboact_main(common + ["--set", "batchsize=3"]) == 2
    err = capsys.readouterr().err
    assert "batchsize: unknown config field for EvalConfig" in err and "batch_size" in err
    assert roboact_main(common + ["--set", "threads=two"]) == 2
    assert "threads: expected an integer, got 'two'" in capsys.readouterr().err
    assert roboact_main(["eval", "--cache", "c", "--out", "o", "--model", "a=x"]) == 2
    assert "manifest: required" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_saved_config_reproduces_the_report(trained, tmp_path, capsys):
    root, manifest, cache, full, base = trained
    first = tmp_path / "first"
    assert roboact_main(["eval", "--manifest", str(manifest), "--cache", str(cache), "--out", str(first),
                         "--model", f"full={full}", "--suites", "standard", "--no-plots", "--no-progress"]) == 0
    saved = json.loads((first / "eval_config.json").read_text())
    assert saved["models"] == [["full", [str(full)]]] and saved["suites"] == ["standard"]
    again = tmp_path / "again"
    assert roboact_main(["eval", "--config", str(first / "eval_config.json"), "--out", str(again)]) == 0
    capsys.readouterr()
    a, b = (json.loads((d / "report.json").read_text()) for d in (first, again))
    assert a["rows"][0]["metrics"] == b["rows"][0]["metrics"] and a["rows"][0]["metrics"]["v2t_r1"] is not None


SLOW_ROW = """
import time
import roboact.eval.runner as runner
_row = runner.evaluate_row
def slow(*a, **k):
    print("row started", flush=True)
    time.sleep(30)
    return _row(*a, **k)
runner.evaluate_row = slow
"""


def test_sigterm_mid_evaluation_leaves_no_report_and_the_rerun_matches(trained, tmp_path, capsys):
    from tests.preempt import Command, temp_files

    root, manifest, cache, full, base = trained
    argv = ["eval", "--manifest", str(manifest), "--cache", str(cache), "--model", f"full={full}", "--suites",
            "standard", "--no-progress"]
    assert roboact_main([*argv, "--out", str(tmp_path / "straight")]) == 0
    out = tmp_path / "out"
    with Command([*argv, "--out", out], tmp_path / "sigterm.log", patch=SLOW_ROW) as run:
        run.wait_for(lambda: "row started" in run.text())
        assert run.stop() == 143
    assert "roboact eval: stopped by SIGTERM" in run.text() and "(exit status 143)" in run.text()
    assert not (out / "report.json").exists() and not (out / "report.md").exists() and not temp_files(tmp_path)
    assert roboact_main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    a, b = (json.loads((d / "report.json").read_text()) for d in (tmp_path / "straight", out))
    assert [r["metrics"] for r in a["rows"]] == [r["metrics"] for r in b["rows"]]
