"""Splits: by episode (no leakage), compositional (held-out pairs), by camera (unseen viewpoint)."""
from __future__ import annotations

import dataclasses

import pytest

from roboact.data.manifest import ClipRecord
from roboact.data.splits import (SplitError, assign_episode_splits, camera_split, check_camera_split,
                                 check_compositional, check_no_episode_leakage, choose_heldout_pairs,
                                 compositional_split, holdable_pairs, split_counts)

PAIRS = [("open", "drawer"), ("close", "drawer"), ("open", "window"), ("close", "window"), ("open", "door"),
         ("close", "door"), ("turn on", "faucet"), ("turn off", "faucet"), ("push", "plate"), ("pull", "plate"),
         ("push", "mug"), ("pull", "mug"), ("lock", "door"), ("press", "button")]
CAMS = ("corner", "corner3", "corner4")


def make_rows(pairs=PAIRS, episodes: int = 30, cameras=CAMS) -> list[ClipRecord]:
    rows = []
    for a, o in pairs:
        task = f"{a}-{o}".replace(" ", "")
        for e in range(episodes):
            rows += [ClipRecord(clip_id=f"{task}_e{e}_{c}", path=f"v/{task}_e{e}_{c}.mp4", subject="Robot",
                                action=a, object=o, camera=c, episode=f"episodes/{task}/e{e}.npz")
                     for c in cameras]
    return rows


def test_episode_split_keeps_cameras_together_and_is_stable():
    rows = assign_episode_splits(make_rows(), val_fraction=0.1, test_fraction=0.2)
    check_no_episode_leakage(rows)
    counts = split_counts(rows)
    n = len(rows)
    assert 0.6 < counts["train"] / n < 0.8 and 0.1 < counts["test"] / n < 0.3 and counts["val"] > 0
    again = assign_episode_splits(list(reversed(make_rows())), val_fraction=0.1, test_fraction=0.2)
    assert {r.clip_id: r.split for r in rows} == {r.clip_id: r.split for r in again}


def test_leakage_checker_catches_a_split_episode():
    rows = assign_episode_splits(make_rows(episodes=2))
    rows[0] = dataclasses.replace(rows[0], split="test" if rows[0].split != "test" else "train")
    with pytest.raises(SplitError, match="is in both"):
        check_no_episode_leakage(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compositional_holdout_keeps_actions_and_objects_in_train(seed):
    rows = make_rows(episodes=4)
    held = choose_heldout_pairs(rows, 4, seed=seed)
    assert len(held) == 4 and held == choose_heldout_pairs(list(reversed(rows)), 4, seed=seed)
    comp = compositional_split(rows, held, val_fraction=0.2)
    check_compositional(comp, held)
    train = [r for r in comp if r.split == "train"]
    assert not {(r.action, r.object) for r in train} & set(held)
    for a, o in held:
        assert any(r.action == a for r in train) and any(r.object == o for r in train)
        assert all(r.split == "test" for r in comp if (r.action, r.object) == (a, o))
    # singletons (lock/door, press/button, turn on/faucet...) can never be held out
    assert ("lock", "door") not in held and ("press", "button") not in held


def test_heldout_choice_depends_on_seed_and_refuses_the_impossible():
    rows = make_rows(episodes=1, cameras=("corner",))
    assert len({tuple(choose_heldout_pairs(rows, 3, seed=s)) for s in range(6)}) > 1
    with pytest.raises(SplitError, match="only"):
        choose_heldout_pairs(make_rows(pairs=[("open", "drawer"), ("press", "button")], episodes=1), 1)
    assert holdable_pairs({("open", "drawer"), ("press", "button")}) == []


def test_compositional_checker_catches_a_leaked_pair_and_a_lost_object():
    rows = make_rows(episodes=2, cameras=("corner",))
    held = [("close", "window")]
    comp = compositional_split(rows, held)
    leaked = [dataclasses.replace(r, split="train") if (r.action, r.object) == held[0] else r for r in comp]
    with pytest.raises(SplitError, match="outside the test split"):
        check_compositional(leaked, held)
    no_window = [r for r in comp if not (r.object == "window" and r.split == "train")]
    with pytest.raises(SplitError, match="object 'window' never appears in train"):
        check_compositional(no_window, held)


def test_camera_split_is_an_unseen_viewpoint_on_unseen_episodes():
    rows = make_rows(episodes=10)
    split = camera_split(rows, ["corner3"], val_fraction=0.1, test_fraction=0.3)
    check_camera_split(split, ["corner3"])
    assert {r.camera for r in split if r.split == "test"} == {"corner3"}
    assert "corner3" not in {r.camera for r in split if r.split != "test"}
    test_eps = {r.episode for r in split if r.split == "test"}
    assert test_eps and not test_eps & {r.episode for r in split if r.split != "test"}
    bad = [dataclasses.replace(split[0], camera="corner3", split="train"), *split[1:]]
    with pytest.raises(SplitError, match="held-out cameras"):
        check_camera_split(bad, ["corner3"])


def test_demos_of_one_file_are_separate_episodes():
    from roboact.data.manifest import ClipRecord
    from roboact.data.splits import episode_key

    a, b = (ClipRecord(clip_id=f"c{i}", path=f"v{i}.mp4", subject="Robot", action="open", object="drawer",
                       episode="task_demo.hdf5", extra={"demo": f"demo_{i}"}) for i in range(2))
    assert episode_key(a) != episode_key(b) and episode_key(a).startswith("task_demo.hdf5#")
