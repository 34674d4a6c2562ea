"""Named pretraining recipes: one command rebuilds an encoder from nothing and installs it under its name.

    roboact pretrain --recipe NAME            # simulate -> [LIBERO demos] -> merge -> extract -> train -> install
    roboact.load(NAME)                        # then finds it in the model store ($ROBOACT_HOME/models/NAME)

A recipe is data (a JSON file shipped in `roboact/train/recipes/`, or any JSON file a user passes): which
corpus to make, which model and optimiser settings to train with, which seeds. Every stage is one of the
stages the separate commands run (`roboact simulate`, `roboact demos`, `roboact merge`, `roboact extract`,
`roboact train`), each resumable, so rerunning the command after a crash does only what is missing. The
installed folder holds the checkpoint of the first seed, the recipe, the corpus record (tasks included and
excluded, with reasons) and a model card; the other seeds stay in the run folder for policy studies, which
pair pretraining seed i with policy seed i (`roboact policy --model NAME=D0,D1,D2`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from roboact.utils.config import check, from_dict
from roboact.utils.io import atomic_write_json, atomic_write_text, read_json

log = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe is unknown or malformed, or a stage it needs did not finish; says which and where."""


@dataclass
class MetaWorldSource:
    """Sawyer clips from Meta-World's scripted experts (roboact.sim.corpus.CorpusConfig)."""

    tasks: list[str] = field(default_factory=list)     # empty: every labelled task allowed in pretraining
    episodes_per_task: int = 20
    cameras: list[str] = field(default_factory=lambda: ["corner", "corner3"])
    randomize: list[str] = field(default_factory=list)  # camera, light, table
    video_frames: int = 0                               # roboact.sim.corpus.CorpusConfig.video_frames
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.episodes_per_task >= 3, "episodes_per_task", "needs >= 3 episodes per task")
        check(bool(self.cameras), "cameras", "give at least one camera")


@dataclass
class LiberoSource:
    """Panda clips: scripted LIBERO-Goal demonstrations, one clip per demo (roboact.sim.demo_gen)."""

    tasks: list[str] = field(default_factory=list)     # required: which LIBERO-Goal tasks (never the benchmark's)
    num_demos: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check(bool(self.tasks), "tasks", "name the LIBERO-Goal tasks to record")
        check(self.num_demos >= 3, "num_demos", "needs >= 3 demos per task")


@dataclass
class Recipe:
    name: str
    description: str = ""
    metaworld: MetaWorldSource | None = None
    libero: LiberoSource | None = None
    backbone: str = "lite0-minilm"
    # Subjects of a two-source corpus: "embodiment" names the arm (Sawyer, Panda; roboact.data.merge), so the
    # subject branch has two classes to tell apart; "keep" leaves the paper's single "Robot".
    subjects: Literal["keep", "embodiment"] = "keep"
    # TrainConfig fields layered over its defaults (e.g. {"model": {"lambda_tcn": 0.5}, "optim": {"steps": 600}});
    # data.manifest/cache and out are set by the recipe runner.
    train: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    # What a frozen-encoder policy should be given of this encoder (RoboActEncoder.encode_for_policy, `roboact
    # policy --output`): measured, not assumed — roboact-sawyer-panda's is issue 12's choice (docs/RESULTS.md).
    policy_output: str = "fused"

    def __post_init__(self) -> None:
        from roboact.models.encoder import POLICY_OUTPUTS

        check(self.policy_output in POLICY_OUTPUTS, "policy_output",
              f"must be one of {POLICY_OUTPUTS}, got {self.policy_output!r}")
        check(bool(self.name) and "/" not in self.name and not self.name.startswith("."), "name",
              f"must be a plain folder name, got {self.name!r}")
        check(self.metaworld is not None or self.libero is not None, "metaworld",
              "a recipe needs at least one corpus source (metaworld or libero)")
        check(bool(self.seeds) and len(set(self.seeds)) == len(self.seeds), "seeds",
              f"must be a non-empty list of distinct seeds, got {self.seeds!r}")
        for key in ("out", "seed"):
            check(key not in self.train, f"train.{key}", "is set by the recipe runner (seeds: `seeds`)")
        for key in ("manifest", "cache"):
            check(key not in self.train.get("data", {}), f"train.data.{key}", "is set by the recipe runner")


# --- finding recipes ---------------------------------------------------------------------------------
def builtin_recipes() -> dict[str, Path]:
    """name -> JSON file of the recipes shipped with the package."""
    root = resources.files("roboact.train") / "recipes"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".json")}


def load_recipe(name_or_file: str) -> Recipe:
    """A shipped recipe by name, or a recipe JSON file."""
    p = Path(name_or_file)
    if p.suffix == ".json" and p.is_file():
        path = p
    else:
        known = builtin_recipes()
        if name_or_file not in known:
            raise RecipeError(f"unknown recipe {name_or_file!r}: not a JSON file and not one of "
                              f"{sorted(known)} (`roboact pretrain --list`)")
        path = known[name_or_file]
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RecipeError(f"{path}: cannot read recipe ({e})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a JSON object, got {type(data).__name__}")
    try:
        recipe = from_dict(Recipe, data, where=str(path))
    except ValueError as e:
        raise RecipeError(f"{path}: {e}") from None
    check_train_overrides(recipe, where=str(path))
    return recipe


def check_train_overrides(recipe: Recipe, where: str) -> None:
    """The recipe's train settings must be a valid TrainConfig before hours of simulation start."""
    from roboact.train.config import TrainConfig
    from roboact.utils.config import deep_merge

    try:
        from_dict(TrainConfig, deep_merge({"data": {"manifest": "m", "cache": "c"}}, recipe.train), where="train")
    except ValueError as e:
        raise RecipeError(f"{where}: {e}") from None


# --- running ------------------------------------------------------------------------------------------
@dataclass
class PretrainResult:
    run_dir: Path
    checkpoints: list[Path]          # final/ of each seed, in recipe order
    installed: Path | None


def run_recipe(recipe: Recipe, run_dir: str | os.PathLike, workers: int = 2, progress: bool = True,
               install: bool = True) -> PretrainResult:
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "recipe.json", dataclasses.asdict(recipe))
    manifests = []
    if recipe.metaworld is not None:
        manifests.append(simulate_metaworld(recipe.metaworld, out / "corpus" / "metaworld", workers, progress))
    if recipe.libero is not None:
        manifests.append(record_libero(recipe.libero, out / "corpus" / "libero_goal", workers, progress))
    if len(manifests) > 1 or recipe.subjects != "keep":
        manifest = merge(manifests, out / "corpus" / "merged", recipe.subjects)
    else:
        manifest = manifests[0]
    cache = extract_features(manifest, out / "cache", recipe.backbone, workers, progress)
    ckpts = [train_seed(recipe, manifest, cache, out / "models" / f"seed{s}", s, progress) for s in recipe.seeds]
    corpus = corpus_record(manifest)
    atomic_write_json(out / "corpus.json", corpus)
    installed = install_model(recipe, ckpts[0], corpus, out) if install else None
    return PretrainResult(out, ckpts, installed)


def simulate_metaworld(src: MetaWorldSource, folder: Path, workers: int, progress: bool) -> Path:
    from roboact.sim.corpus import CorpusConfig, build_corpus

    print(f"[simulate] Meta-World: {len(src.tasks) or 'all allowed'} tasks x {src.episodes_per_task} episodes "
          f"x {src.cameras}{' randomised ' + ','.join(src.randomize) if src.randomize else ''}")
    summary = build_corpus(CorpusConfig(out_dir=str(folder), tasks=list(src.tasks),
                                        episodes_per_task=src.episodes_per_task, cameras=list(src.cameras),
                                        randomize=list(src.randomize), video_frames=src.video_frames,
                                        workers=workers, seed=src.seed,
                                        progress=progress))
    if summary.get("episodes_error"):
        raise RecipeError(f"{folder}: {summary['episodes_error']} episodes raised; rerun the same command to "
                          "retry them (finished episodes are kept)")
    return _manifest(folder)


def record_libero(src: LiberoSource, folder: Path, workers: int, progress: bool) -> Path:
    from roboact.sim.demo_gen import DemosConfig, generate_demos

    print(f"[demos] LIBERO-Goal: {len(src.tasks)} tasks x {src.num_demos} demos")
    summaries = generate_demos(DemosConfig(suite="libero_goal", tasks=list(src.tasks), num_demos=src.num_demos,
                                           output_dir=str(folder), workers=workers, seed=src.seed))
    short = [s for s in summaries if s.demos < src.num_demos]
    if short:
        raise RecipeError("LIBERO demos incomplete: " + ", ".join(f"{s.task} {s.demos}/{src.num_demos}"
                                                                 for s in short)
                          + f" (logs under {folder}); rerun to resume, or lower libero.num_demos")
    return _manifest(folder)


def _manifest(folder: Path) -> Path:
    m = folder / "manifest.jsonl"
    if not m.is_file():
        raise RecipeError(f"{folder}: no manifest.jsonl was written (no successful episode?)")
    return m


def merge(manifests: list[Path], folder: Path, subjects: str = "keep") -> Path:
    from roboact.data.merge import MergeConfig, merge_manifests

    print(f"[merge] {len(manifests)} corpora -> {folder} (subjects: {subjects})")
    merge_manifests(MergeConfig(manifests=[str(m) for m in manifests], out_dir=str(folder), subjects=subjects))
    return _manifest(folder)


def extract_features(manifest: Path, cache: Path, backbone: str, workers: int, progress: bool) -> Path:
    from roboact.data.extract import ExtractConfig, extract

    print(f"[extract] frozen {backbone} features -> {cache}")
    res = extract(ExtractConfig(manifest=str(manifest), out_dir=str(cache), backbone=backbone,
                                num_workers=min(2, workers), progress=progress))
    if not res.complete:
        raise RecipeError(f"feature extraction did not finish every clip of {manifest} (rejections in "
                          f"{cache}); rerun to resume")
    return cache


def train_seed(recipe: Recipe, manifest: Path, cache: Path, out: Path, seed: int, progress: bool) -> Path:
    from roboact.models.checkpoints import find_checkpoint
    from roboact.train.config import TrainConfig
    from roboact.train.loop import train
    from roboact.utils.config import deep_merge

    final = out / "final"
    if find_checkpoint(final)[0] is not None:
        print(f"[train] seed {seed}: done ({final})")
        return final
    print(f"[train] seed {seed} -> {out}")
    user = deep_merge(recipe.train, {"out": str(out), "seed": seed, "progress": progress,
                                     "data": {"manifest": str(manifest), "cache": str(cache),
                                              "backbone": recipe.backbone}})
    cfg = from_dict(TrainConfig, user)
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    res = train(cfg, resume=resume)
    return Path(res.final)


def corpus_record(manifest: Path) -> dict:
    """What the encoder saw: clips per task and embodiment, and the tasks kept out, with reasons (the
    exclusion record the corpus writers leave beside the manifest, roboact.data.heldout)."""
    from collections import Counter

    from roboact.data.heldout import read_record
    from roboact.data.manifest import read_manifest

    rows = read_manifest(manifest)
    train_rows = [r for r in rows if r.split == "train"]
    return {"manifest": str(manifest), "clips": len(rows), "train_clips": len(train_rows),
            "tasks": dict(sorted(Counter(r.task for r in rows).items())),
            "subjects": dict(Counter(r.subject for r in rows)),
            "embodiments": dict(Counter(r.embodiment for r in rows)),
            "excluded": (read_record(manifest) or {}).get("excluded_tasks", {})}


def install_model(recipe: Recipe, ckpt: Path, corpus: dict, run_dir: Path) -> Path:
    """Copy the first seed's checkpoint into the model store under the recipe's name, with a model card;
    the copy is made beside the destination and renamed into place, so a reader never sees half a model."""
    from roboact.models.checkpoints import model_store

    dest = model_store() / recipe.name
    tmp = dest.with_name(f".{recipe.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(ckpt, tmp)
    atomic_write_json(tmp / "recipe.json", dataclasses.asdict(recipe))
    atomic_write_json(tmp / "corpus.json", corpus)
    atomic_write_text(tmp / "README.md", model_card(recipe.name, recipe=dataclasses.asdict(recipe), corpus=corpus,
                                                    train=read_json(ckpt / "config.json").get("train"),
                                                    scores=validation_scores(ckpt), run_dir=run_dir))
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = dest.with_name(f".{recipe.name}.old-{os.getpid()}")
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
    print(f"[install] {dest}  (roboact.load({recipe.name!r}))")
    return dest


def model_card(name: str, *, description: str = "", recipe: dict | None = None, corpus: dict | None = None,
               train: dict | None = None, scores: list[dict] | None = None, run_dir: Path | None = None,
               load_as: str | None = None) -> str:
    """The README.md a model folder carries (the model store's and a Hub folder's): what the encoder was trained
    on, with which settings, and the scores measured on it. Only what the checkpoint's own records say: a section
    with no record says so rather than guess. `scores`: [{"source": where measured, "metrics": {name: value}}]."""
    lines = ["---", "library_name: roboact", "tags: [roboact, robotics, video-text-retrieval, robot-learning]", "---",
             "", f"# {name}", "", description or (recipe or {}).get("description") or "A RoboAct-CLIP encoder.", ""]
    how = [f"Load: `roboact.load({(load_as or name)!r})`" + (" once it is on the Hub (or in the local Hugging Face "
                                                           "cache), or `roboact.load(FOLDER)` from a copy."
                                                           if load_as else ".")]
    if recipe:
        how.insert(0, f"Rebuild: `roboact pretrain --recipe {recipe['name']}`"
                      + (f" (run folder here: `{run_dir}`)." if run_dir else "."))
    if recipe and recipe.get("policy_output"):
        out = recipe["policy_output"]
        how.append(f"As a frozen policy input: `enc.encode_for_policy(frames, output={out!r})` (`roboact policy "
                   f"--output {out}`).")
    lines += [" ".join(how), "", "## Training data", ""] + _card_data(corpus, train) + ["## Configuration", ""]
    for title, cfg in (("Recipe", recipe), ("Training", train)):
        if cfg:
            lines += [f"{title}:", "", "```json", json.dumps(cfg, indent=2), "```", ""]
    if not (recipe or train):
        lines += ["No training configuration was kept with this checkpoint.", ""]
    lines += ["## Scores", ""]
    for block in scores or []:
        lines += [f"Measured: {block['source']}.", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in block["metrics"].items()] + [""]
    if not scores:
        lines += ["No scores were recorded with this checkpoint; see docs/model.md and docs/RESULTS.md of the "
                  "roboact repository for the policy and retrieval results measured with its recipes.", ""]
    return "\n".join(lines)


def _card_data(corpus: dict | None, train: dict | None) -> list[str]:
    if corpus:
        out = [f"{corpus['clips']} clips ({corpus['train_clips']} in the training split), "
               f"{len(corpus['tasks'])} tasks; subjects {corpus['subjects']}; embodiments {corpus['embodiments']}.",
               "", "Tasks (clips): " + ", ".join(f"{t} ({n})" for t, n in corpus["tasks"].items()), ""]
        excluded = corpus.get("excluded") or {}
        if excluded:
            out += ["Kept out of pretraining:", ""] + [f"- {t}: {why}" for t, why in sorted(excluded.items())] + [""]
        return out
    data = (train or {}).get("data") or {}
    if data:
        return [f"Manifest `{data.get('manifest')}` (splits {data.get('train_splits')}), frozen backbone "
                f"`{data.get('backbone')}`; the corpus itself was not recorded with this checkpoint.", ""]
    return ["Not recorded with this checkpoint.", ""]


def validation_scores(ckpt: Path) -> list[dict]:
    """The validation metrics `roboact train` logged at the checkpoint's step (its run folder's metrics.jsonl),
    as a model-card score block; [] when the checkpoint is not in a run folder or no validation ran."""
    from roboact.eval.plots import read_metrics

    ckpt = Path(ckpt)
    run = ckpt.parent if ckpt.name == "final" else None
    if run is None or not (run / "metrics.jsonl").is_file():
        return []
    step = (read_json(ckpt / "config.json") or {}).get("step")
    rows = [r for r in read_metrics(str(run)) if any(k.startswith("val/") for k in r)
            and (step is None or r["step"] <= step)]
    if not rows:
        return []
    last = rows[-1]
    return [{"source": f"validation split at training step {last['step']} ({run / 'metrics.jsonl'})",
             "metrics": {k: float(v) for k, v in last.items() if k.startswith("val/")}}]
