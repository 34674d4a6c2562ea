"""`roboact demo` end to end on a tiny corpus: every stage runs, the report holds every table, and a rerun
reuses every stage."""
import json

import pytest

pytest.importorskip("metaworld")

from roboact.commands.demo import DemoConfig, run_demo  # noqa: E402

TASKS = ["drawer-close-v3", "window-open-v3", "door-close-v3", "door-lock-v3"]  # none never-pretrain (data.heldout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=str(out), tasks=TASKS, episodes_per_task=3, heldout_pairs=1, steps=8, batch_size=8,
                     workers=2, progress=False)
    return cfg, run_demo(cfg)


def test_report_has_every_table_and_plot(demo):
    cfg, path = demo
    md = path.read_text()
    for heading in ("held-out episodes of seen", "unseen (action, object) pairs", "Stage times"):
        assert heading in md
    for row in ("RoboAct-CLIP", "ablation 1 (no temporal)", "ablation 2 (no disentanglement)",
                "frozen backbone (mean-pool)"):
        assert md.count(row) >= 2, row  # in both evaluations
    for metric in ("R@1", "leakage"):
        assert metric in md
    # every plot the report links to exists
    import re

    links = re.findall(r"\]\(([^)]+\.png)\)", md)
    assert links and all((path.parent / link).is_file() for link in links)
    timings = json.loads((path.parent / "report.json").read_text())["timings"]
    assert {"simulate", "extract", "evaluate"} <= set(timings)
    assert all(f"train {v}" in timings for v in ("full", "no_temporal", "no_disentangle", "frozen_baseline"))


def test_rerun_reuses_every_stage(demo, monkeypatch):
    cfg, path = demo
    import roboact.commands.demo as d

    def boom(*a, **k):
        raise AssertionError("a finished model was retrained")

    monkeypatch.setattr(d, "_train_variant", boom)
    before = (path.parent / "models" / "full" / "final" / "model.safetensors").stat().st_mtime_ns
    assert run_demo(DemoConfig(**{**cfg.__dict__, "workers": 1})) == path
    assert (path.parent / "models" / "full" / "final" / "model.safetensors").stat().st_mtime_ns == before


def test_bad_settings_name_the_field():
    from roboact.utils.config import ConfigError

    with pytest.raises(ConfigError, match="episodes_per_task"):
        DemoConfig(episodes_per_task=1)
    with pytest.raises(ConfigError, match="variants"):
        DemoConfig(variants=["full", "nope"])
