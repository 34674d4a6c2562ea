"""What each encoder was pretrained on, and a way to pretrain one that never saw the evaluation tasks.

`pretraining_info` states a row's corpus in the tables. For a RoboAct-CLIP checkpoint it is read, not
assumed: `config.json` records the training manifest and splits (`roboact train` writes them), and the
manifest's training rows say which sources (Meta-World, LIBERO, ...) and tasks the heads saw — in
particular whether any clip of the benchmark's evaluation tasks was among them.

`roboact policy --exclude-tasks` writes a copy of a manifest without the clips of given tasks
(`roboact.data.manifest_ops.exclude_tasks`, comparing names by `task_key`), for
`roboact train --manifest <filtered>`: the Meta-World corpus contains drawer-open, plate-slide, pick-place
and dial-turn clips, so "pretrained without the evaluation tasks" needs its own checkpoint.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from roboact.data.heldout import task_key  # noqa: F401  (the one task-name comparison; also imported from here)

FIXED_CORPORA = {
    "backbone": "the frozen backbone's own pretraining only ({backbone}); no robot data",
    "clip": "OpenAI CLIP: 400M web image-text pairs; no robot data",
    "r3m": "R3M: Ego4D human videos (time contrast + language); no robot data",
    "mpi": "MPI: Ego4D hand-object interaction clips; no robot data",
}


def _manifest_of(checkpoint: str) -> tuple[Path | None, list[str]]:
    from roboact.utils.io import read_json

    meta = read_json(Path(checkpoint) / "config.json")
    data = (meta.get("train") or {}).get("data") or {}
    if not data.get("manifest"):
        return None, []
    return Path(data["manifest"]), list(data.get("train_splits") or ["train"])  # as given to `roboact train`


def roboact_corpus(checkpoint: str, eval_tasks: list[str]) -> dict:
    """Sources, tasks and evaluation-task overlap of the clips a checkpoint was trained on."""
    from roboact.data.manifest import ManifestError, read_manifest

    manifest, splits = _manifest_of(checkpoint)
    if manifest is None:
        return {"text": "unknown (the checkpoint records no training manifest)", "eval_tasks_seen": None}
    if not manifest.is_file():
        return {"text": f"unknown (training manifest {manifest} not found here)", "eval_tasks_seen": None,
                "manifest": str(manifest)}
    try:
        rows = [r for r in read_manifest(manifest) if r.split in splits]
    except ManifestError as e:
        return {"text": f"unknown (training manifest unreadable: {e})", "eval_tasks_seen": None}
    sources = Counter(r.source or "unknown" for r in rows)
    tasks = {task_key(r.task) for r in rows if r.task}
    seen = sorted(set(map(task_key, eval_tasks)) & tasks)
    src = ", ".join(f"{s} {n} clips" for s, n in sorted(sources.items()))
    text = (f"{src}; {len(tasks)} tasks; evaluation tasks among them: "
            + (", ".join(seen) if seen else "none"))
    return {"text": text, "eval_tasks_seen": seen, "manifest": str(manifest), "splits": splits,
            "sources": dict(sources), "num_clips": len(rows), "num_tasks": len(tasks)}


def pretraining_info(kind: str, path: str | None, eval_tasks: list[str], backbone: str) -> dict:
    if kind == "roboact":
        return roboact_corpus(path, eval_tasks)
    return {"text": FIXED_CORPORA[kind].format(backbone=backbone), "eval_tasks_seen": []}


def refuse_seen_tasks(row: str, checkpoints: list[str], info: dict) -> None:
    """PolicyError unless the row's pretraining corpus is known to hold none of the evaluated tasks.

    Refused: a corpus with an evaluated task (named, with the checkpoint), and a corpus that cannot be
    read (no training manifest recorded, the manifest not found here, or unreadable). The second is refused
    too, not warned about: a row whose corpus is unknown may have seen its tasks, and a warning scrolls
    away while the table it leaves behind looks clean. Either make the recorded manifest readable (the
    checkpoint's config.json, train.data.manifest) or pass --allow-seen-tasks, which runs the row and
    marks it in every table ("pretraining corpus unknown" or the tasks it saw).
    """
    from roboact.policy.suites import PolicyError

    seen = info.get("eval_tasks_seen")
    where = f"row {row!r} (checkpoint {', '.join(checkpoints)})"
    if seen is None:
        raise PolicyError(f"{where}: cannot tell whether its pretraining corpus holds an evaluated task: "
                          f"{info.get('text', 'unknown')}. Make the training manifest readable, or pass "
                          "--allow-seen-tasks to run it anyway (the tables then say so)")
    if seen:
        raise PolicyError(f"{where}: its pretraining corpus holds clips of evaluated task(s) {', '.join(seen)}; "
                          "its success would measure memory of those scenes, not the encoder. Pretrain "
                          "without them (roboact simulate metaworld leaves them out; roboact policy "
                          "--exclude-tasks filters an old manifest), or pass --allow-seen-tasks to run it "
                          "anyway (the tables then say so)")


def seen_note(info: dict) -> str:
    """What a table row's name carries about evaluated tasks in its pretraining: '' when none were seen."""
    seen = info.get("eval_tasks_seen")
    if seen is None:
        return " [pretraining corpus unknown]"
    return f" [pretrained on evaluated tasks: {', '.join(seen)}]" if seen else ""
