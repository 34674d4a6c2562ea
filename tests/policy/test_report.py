"""Tables II/III from hand-made cells whose means and intervals are known: success is in percent, a task's
row is the mean over seeds, and "overall" averages the tasks within each seed before the interval."""
import math
from pathlib import Path

import pytest

from roboact.policy.report import RowReport, build_report, table_markdown

T975_2 = 4.302652729911275          # Student-t 97.5% quantile, 2 degrees of freedom (3 seeds)


def cell(final, best):
    return {"final": final, "best": best, "best_step": 10}


def enc_row():
    finals = {"a": [0.5, 0.6, 0.7], "b": [0.1, 0.2, 0.3]}
    bests = {"a": [0.9, 0.9, 0.9], "b": [0.2, 0.4, 0.3]}
    return RowReport("enc", "roboact", "RoboAct-CLIP", "ok", {"text": "x", "eval_tasks_seen": []},
                     {t: {s: cell(finals[t][s], bests[t][s]) for s in range(3)} for t in finals})


def report():
    row = enc_row()
    off = RowReport("R3M", "r3m", "baseline", "not run: no weights", {"text": "-", "eval_tasks_seen": []})
    expert = {t: {"success_rate": 1.0, "successes": 3, "episodes": 3} for t in ("a", "b")}
    return build_report({"suite": "metaworld", "mode": "full"}, ["a", "b"], expert, [row, off])


def test_task_rows_are_percent_means_over_seeds_with_t_intervals():
    r = report()["rows"][0]
    a = r["tasks"]["a"]["final"]
    assert a["mean"] == pytest.approx(60.0) and a["n"] == 3
    assert a["half_width"] == pytest.approx(T975_2 * 10.0 / math.sqrt(3), rel=1e-4)   # std of 50, 60, 70: 10
    assert (a["low"], a["high"]) == pytest.approx((60.0 - a["half_width"], 60.0 + a["half_width"]))
    assert r["tasks"]["b"]["final"]["mean"] == pytest.approx(20.0)
    assert r["tasks"]["a"]["best"]["mean"] == pytest.approx(90.0) and r["tasks"]["a"]["best"]["half_width"] == 0
    assert r["tasks"]["a"]["per_seed"]["2"] == {"best": 0.9, "final": 0.7, "best_step": 10}


def test_overall_averages_tasks_within_each_seed_then_over_seeds():
    r = report()["rows"][0]
    final = r["overall"]["final"]                      # per seed: (50+10)/2, (60+20)/2, (70+30)/2 = 30, 40, 50
    assert final["mean"] == pytest.approx(40.0)
    assert final["half_width"] == pytest.approx(T975_2 * 10.0 / math.sqrt(3), rel=1e-4)
    best = r["overall"]["best"]                        # per seed: 55, 65, 60
    assert best["mean"] == pytest.approx(60.0)
    assert best["half_width"] == pytest.approx(T975_2 * 5.0 / math.sqrt(3), rel=1e-4)


def test_rows_that_did_not_run_are_listed_never_as_zero():
    rep = report()
    off = rep["rows"][1]
    assert off["status"].startswith("not run") and "overall" not in off and "tasks" not in off
    md = table_markdown(rep, "II", "final")
    assert "| R3M | - | - | not run: no weights |" in md
    assert "40.0" in md and "60.0" in md


def test_markdown_names_the_encoder_output_and_runtime():
    from roboact.policy.report import to_markdown

    rep = report()
    rep.update(config={"rollouts": 20, "max_steps": 200, "num_demos": 50, "seeds": 3,
                       "encoder": {"backbone": "lite0-minilm", "output": "fused+frame", "stride": 5}},
               interval="95% Student-t interval over seeds", runtime="openvino")
    md = to_markdown(rep, "II")
    assert "feed the policy their `fused+frame` output (window stride 5); image-tower runtime `openvino`" in md


def test_rows_pretrained_on_evaluated_tasks_or_an_unknown_corpus_are_marked():
    """What `roboact policy --allow-seen-tasks` runs is marked in the row itself, not only in the corpus list."""
    rep = report()
    row = dict(rep["rows"][0])
    rep["rows"] = [{**row, "name": "clean"}, {**row, "name": "leaky", "pretraining": {"eval_tasks_seen": ["a"]}},
                   {**row, "name": "lost", "pretraining": {"eval_tasks_seen": None}}]
    md = table_markdown(rep, "II", "final")
    assert "| clean | " in md and "| leaky [pretrained on evaluated tasks: a] | " in md
    assert "| lost [pretraining corpus unknown] | " in md


GOLDEN = Path(__file__).parent / "golden"


def published_report(multitask=None):
    """Rows in an order that catches a table that stops early: a row that did not run, then an ablation that
    belongs only to Table III (and never ran task b), then the full model; an expert below 100%."""
    pre = {"text": "18 Meta-World tasks", "eval_tasks_seen": []}
    off = RowReport("R3M", "r3m", "baseline", "not run: no weights", {"text": "-", "eval_tasks_seen": []})
    abl = RowReport("Ablation 1", "roboact", "ablation 1 (no temporal)", "ok", pre,
                    {"a": {0: cell(0.25, 0.5), 1: cell(0.75, 0.5)}}, input="fused vector")
    enc = RowReport("RoboAct-CLIP", "roboact", "RoboAct-CLIP", "ok", pre,
                    {"a": {s: cell(f, 0.9) for s, f in enumerate((0.5, 0.6, 0.7))},
                     "b": {s: cell(f, 0.3) for s, f in enumerate((0.1, 0.2, 0.3))}}, input="fused vector")
    expert = {"a": {"success_rate": 0.75, "successes": 3, "episodes": 4},
              "b": {"success_rate": 0.5, "successes": 1, "episodes": 2}}
    meta = {"suite": "libero_goal" if multitask else "metaworld", "mode": "full",
            "config": {"rollouts": 20, "max_steps": 200, "num_demos": 50, "seeds": 3,
                       "encoder": {"backbone": "lite0-minilm", "output": "tokens", "stride": 5}},
            "runtime": "openvino", "command": "roboact policy --suite metaworld",
            "timing_ms_per_step": {"RoboAct-CLIP": {"agent": 3.25, "env": 10.04},
                                   "Ablation 1": {"agent": 2.0, "env": 9.0}}}
    if multitask:
        meta["multitask"] = multitask
    return build_report(meta, ["a", "b"], expert, [off, abl, enc])


@pytest.mark.parametrize("table,multitask,golden", [
    ("II", None, "table_II.md"), ("III", None, "table_III.md"),
    ("II", {"train_tasks": ["a"], "unseen_tasks": ["b"]}, "table_II_multitask.md")])
def test_published_markdown_matches_the_hand_checked_tables(table, multitask, golden):
    """The whole published page, checked by hand once: Ablation 1 final on task a is 50.0 ± 317.7 (25 and 75,
    t(1) = 12.706), RoboAct-CLIP 60.0 ± 24.8; the expert 75 (3/4), 50 (1/2), overall 62.5; a task that never
    ran (Ablation 1, b) and an overall without common seeds print "-"; each table keeps only its rows; the paper's and the
    public reference numbers are the published ones. A change here changes what users publish: review the
    diff, then rewrite the file from to_markdown(published_report(...), table)."""
    from roboact.policy.report import to_markdown

    assert to_markdown(published_report(multitask), table) == (GOLDEN / golden).read_text()


def test_report_json_names_each_row_and_keeps_tasks_without_cells():
    rep = published_report()
    abl = rep["rows"][1]
    assert {k: abl[k] for k in ("name", "kind", "role", "input")} == {
        "name": "Ablation 1", "kind": "roboact", "role": "ablation 1 (no temporal)", "input": "fused vector"}
    assert abl["tasks"]["b"]["final"]["n"] == 0 and abl["tasks"]["b"]["per_seed"] == {}
    assert abl["overall"]["final"]["n"] == 0 and rep["interval"] == "95% Student-t interval over seeds"
    row = RowReport("x", "roboact", "RoboAct-CLIP", "ok", {}, {"a": {0: cell(0.5, 0.5)}})
    assert row.overall([], "final").n == 0 and row.interval("b", "final").n == 0


def test_markdown_of_a_report_written_before_output_stride_and_runtime_were_recorded():
    from roboact.policy.report import to_markdown

    rep = published_report()
    rep["config"]["encoder"] = {"backbone": "lite0-minilm"}        # what those runs used: fused, stride 1, eager
    del rep["runtime"]
    assert "their `fused` output (window stride 1); image-tower runtime `eager`." in to_markdown(rep, "II")


def test_multitask_note_names_every_unseen_task_or_none():
    from roboact.policy.report import to_markdown

    none = to_markdown(published_report({"train_tasks": ["a", "b"], "unseen_tasks": []}), "II")
    assert "Overall is the mean over every column.\n" in none and "unseen" not in none
    two = to_markdown(published_report({"train_tasks": [], "unseen_tasks": ["a", "b"]}), "II")
    assert "never trained on (a, b), only their instruction is new to the policy." in two


def test_bar_chart_draws_each_rows_means_and_intervals_per_metric(tmp_path, monkeypatch):
    """The chart is a published figure too: every bar is the table's mean, its error bar the table's half-width,
    best on the left panel and final on the right, tasks then overall, in the rows' order."""
    import matplotlib.axes

    from roboact.policy.report import bar_chart

    second = RowReport("backbone", "backbone", "baseline", "ok", {"text": "-", "eval_tasks_seen": []},
                       {t: {s: cell(0.3, 0.4) for s in range(3)} for t in ("a", "b")})
    rep = build_report({"suite": "metaworld", "mode": "full"}, ["a", "b"], {}, [enc_row(), second])
    drawn = []
    real_bar = matplotlib.axes.Axes.bar

    def spy(ax, x, height, width, **kw):
        drawn.append((ax, list(x), list(height), list(kw["yerr"]), kw["label"], width))
        return real_bar(ax, x, height, width, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "bar", spy)
    out = bar_chart(rep, tmp_path / "success.png")
    assert out == tmp_path / "success.png" and out.stat().st_size > 1000
    assert [d[4] for d in drawn] == ["enc", "backbone", "enc", "backbone"]
    assert drawn[0][0] is drawn[1][0] and drawn[0][0] is not drawn[2][0]       # two panels, both rows on each
    enc = rep["rows"][0]
    for (ax, xs, heights, errs, name, width), metric in zip(drawn, ("best", "best", "final", "final")):
        row = next(r for r in rep["rows"] if r["name"] == name)
        ivs = [row["tasks"]["a"][metric], row["tasks"]["b"][metric], row["overall"][metric]]
        assert heights == pytest.approx([iv["mean"] for iv in ivs])
        assert errs == pytest.approx([iv["half_width"] for iv in ivs])
        assert width == pytest.approx(0.4)
        offset = -0.2 if name == "enc" else 0.2                              # rows side by side in each group
        assert xs == pytest.approx([0 + offset, 1 + offset, 2 + offset])
    assert enc["overall"]["best"]["mean"] == pytest.approx(60.0)             # the figure shows percent, like the table
    left, right = drawn[0][0], drawn[2][0]
    for ax, metric in ((left, "best"), (right, "final")):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "overall"]
        assert ax.get_ylim() == (0.0, 105.0)
        assert ax.get_title() == f"{metric} success (%), 95% t-interval over seeds"
    assert left.get_ylabel() == "success rate (%)"
    assert len(left.figure.axes) == 2
    legend = left.figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["enc", "backbone"]


def test_bar_chart_of_one_row_centres_its_bars_on_the_groups(tmp_path, monkeypatch):
    import matplotlib.axes

    from roboact.policy.report import bar_chart

    rep = build_report({"suite": "metaworld", "mode": "full"}, ["a", "b"], {}, [enc_row()])
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "bar",
                        lambda ax, x, h, w, **kw: drawn.append((list(x), w)) or None)
    monkeypatch.setattr(matplotlib.axes.Axes, "get_legend_handles_labels", lambda ax: ([], []))
    bar_chart(rep, tmp_path / "one.png")
    assert drawn == [([0.0, 1.0, 2.0], pytest.approx(0.8))] * 2


def test_multitask_markdown_prints_the_chain_table_after_the_corpora():
    from roboact.policy.chain import chain_markdown
    from roboact.policy.report import to_markdown

    k = lambda m: {"mean": m, "low": m - 0.1, "high": m + 0.1, "n": 3, "std": 0.05}  # noqa: E731
    chain = {"settings": {"instructions": ["open the drawer", "close the drawer"], "budgets": [100, 80],
                          "episodes": 4, "starts": "starts.json"},
             "rows": [{"name": "RoboAct-CLIP", "switches": {
                 "oracle": {"status": "ok", "in_a_row": [k(0.75), k(0.5)], "switching": None},
                 "judge": {"status": "not run: no checkpoint"}}}]}
    rep = published_report({"train_tasks": ["a"], "unseen_tasks": ["b"]})
    rep["chain"] = chain
    md = to_markdown(rep, "II")
    block = "\n".join(["", *chain_markdown(chain)])
    assert block in md and "| RoboAct-CLIP | oracle | 75.0 ± 10.0 | 50.0 ± 10.0 |" in md
    assert md.index("## Pretraining corpus of each encoder") < md.index("## The instruction chain")
    assert md.index("## The instruction chain") < md.index("## Public reference points")
    assert to_markdown(published_report({"train_tasks": ["a"], "unseen_tasks": ["b"]}), "II") == \
        md.replace(block + "\n", "", 1)                # the chain adds exactly its block, nothing else
    single = published_report()
    single["chain"] = chain
    assert "instruction chain" not in to_markdown(single, "II")   # only a multi-task page has a chain

