"""`roboact pretrain --recipe`: a tiny recipe builds, installs under its name for roboact.load, records its
corpus, and a rerun redoes nothing; bad recipes are refused before any simulation starts."""
import json

import pytest

pytest.importorskip("metaworld")

from roboact.train import recipes as R  # noqa: E402

TINY = {
    "name": "tiny-test",
    "description": "Two Meta-World tasks, three episodes each, four training steps.",
    "metaworld": {"tasks": ["drawer-close-v3", "window-open-v3"], "episodes_per_task": 3, "cameras": ["corner"]},
    "train": {"optim": {"steps": 4, "batch_size": 4, "warmup_steps": 0}, "checkpoint_every": 2,
              "eval_every": 0, "tensorboard": False},
    "seeds": [0, 1],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    home = root / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOACT_HOME", str(home))
    (root / "tiny.json").write_text(json.dumps(TINY))
    recipe = R.load_recipe(str(root / "tiny.json"))
    res = R.run_recipe(recipe, root / "run", workers=1, progress=False)
    yield root, home, recipe, res
    mp.undo()


def test_builds_every_seed_and_installs_by_name(built, monkeypatch):
    root, home, recipe, res = built
    monkeypatch.setenv("ROBOACT_HOME", str(home))
    assert [c.parent.name for c in res.checkpoints] == ["seed0", "seed1"]
    assert res.installed == home / "models" / "tiny-test"
    import roboact

    enc = roboact.load("tiny-test")
    assert enc.cfg.actions and enc.cfg.objects
    # the installed model is seed 0's, and its card says what it was trained on
    assert (res.installed / "model.safetensors").read_bytes() == (res.checkpoints[0] / "model.safetensors").read_bytes()
    corpus = json.loads((res.installed / "corpus.json").read_text())
    assert set(corpus["tasks"]) == {"drawer-close-v3", "window-open-v3"}
    assert corpus["clips"] == sum(corpus["tasks"].values()) > 0
    # the benchmark and reserve tasks were kept out, and the model card lists them with their reasons
    assert {"drawer-open-v3", "window-close-v3", "shelf-place-v3"} <= set(corpus["excluded"])
    card = (res.installed / "README.md").read_text()
    assert "roboact pretrain --recipe tiny-test" in card and "drawer-close-v3" in card
    assert "- window-close-v3: " in card
    assert json.loads((res.installed / "recipe.json").read_text())["seeds"] == [0, 1]
    assert "`enc.encode_for_policy(frames, output='fused')`" in card   # the recipe's policy input, default


def test_rerun_redoes_nothing(built, monkeypatch):
    root, home, recipe, res = built
    monkeypatch.setenv("ROBOACT_HOME", str(home))
    import roboact.train.loop as loop

    def boom(*a, **k):
        raise AssertionError("a finished seed was retrained")

    monkeypatch.setattr(loop, "train", boom)
    again = R.run_recipe(recipe, root / "run", workers=1, progress=False)
    assert again.checkpoints == res.checkpoints
    summary = json.loads((root / "run" / "corpus" / "metaworld" / "summary.json").read_text())
    assert summary["episodes_simulated_now"] == 0


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(R.RecipeError, match="paper-metaworld"):
        R.load_recipe("no-such-recipe")


def test_shipped_recipes_load():
    names = R.builtin_recipes()
    assert "paper-metaworld" in names
    for name in names:
        assert R.load_recipe(name).name == name  # the file name is the recipe's name
    assert R.load_recipe("roboact-sawyer-panda").policy_output == "fused+frame"   # issue 12's measured choice


@pytest.mark.parametrize("change, field", [
    ({"metaworld": None}, "at least one corpus source"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"train": {"optim": {"steps": 0}}}, "optim.steps"),
    ({"train": {"out": "x"}}, "train.out"),
    ({"metaworld": {"episodes_per_task": 1}}, "episodes_per_task"),
    ({"colour": "blue"}, "colour"),
    ({"policy_output": "frame"}, "policy_output.*fused\\+frame"),
])
def test_bad_recipes_name_the_field(tmp_path, change, field):
    bad = {**TINY, **change}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(R.RecipeError, match=field):
        R.load_recipe(str(tmp_path / "bad.json"))


def test_list_names_each_recipe_with_its_policy_input(capsys):
    from roboact.cli import main

    assert main(["pretrain", "--list"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(R.builtin_recipes())
    assert "[policy input: fused+frame]" in lines["roboact-sawyer-panda"]
    assert "[policy input: fused]" in lines["paper-metaworld"]
