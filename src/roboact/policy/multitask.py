"""One policy for many tasks, told apart by the instruction (`roboact policy --multitask`).

LIBERO-Goal is built for this: ten tasks in one scene with the same initial layouts, so a policy that ignores
the instruction cannot beat ~1/10. A multi-task cell is one (row, condition, seed): a single BC policy trained
on the demos of every training task at once, each step carrying its task's conditioning vector
(policy/conditioning.py), then rolled out on every evaluation task with that task's instruction. Tasks
evaluated but not trained on (`holdout_tasks`) get their own instruction's vector, which is the point of text
conditioning; the tables mark them unseen.

Resuming. LIBERO rollouts are the expensive part (10 tasks x 20 rollouts x up to 300 steps per evaluation),
so a cell saves its training state (policy, optimizer moments, sampler RNG: safetensors + JSON, nothing
pickled) at every evaluation step before evaluating, and each task's evaluation as its own JSON. A rerun loads
the state, skips the evaluations on disk, and never trains past a step whose evaluations are unfinished; the
cell's result.json, written last, marks it done. The result holds one entry per task in the shape a one-task
cell has, so the tables (report.py) are the same code for both.

Each evaluation also records the digest of the policy it rolled out (`policy_sha256`). Finished evaluations are
small JSON a study can keep in git when its machine is not kept (scripts/study14/run.sh save/restore) while the
training state is not; a rerun without the state trains again from the seed and only trusts an evaluation whose
digest matches the policy it now holds - one that does not (training not bitwise repeatable on that machine) is
set aside as `*.stale.json` and run again, so a cell's numbers always come from one policy.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from roboact.policy.data import DemoSet
from roboact.policy.encoders import EncoderSettings, RowSpec
from roboact.policy.train import BCTrainConfig


@dataclass
class MultiTaskJob:
    """One (row, condition, seed): plain data, so a worker process can run it."""

    spec: RowSpec
    condition: str
    encoder: EncoderSettings
    suite: str
    train_tasks: list[str]             # with --chain, the chain's stages last (trained on, never evaluated alone)
    eval_tasks: list[str]              # the training tasks but the stages, then any held-out ones
    sources: dict                      # train task -> data.DemoSource
    instructions: dict[str, str]       # every training and evaluation task -> its instruction
    seed: int
    cache_dir: str
    train: BCTrainConfig
    rollouts: int
    max_steps: int
    image_size: int
    folder: str
    record: int
    video_dir: str
    parallel: int = 1
    chain: object = None               # policy.chain.ChainSettings when the cell also runs the chain
    judging: dict | None = None        # the chain judge's calibration (policy.chain.calibrate_chain_judge)

    @property
    def all_tasks(self) -> list[str]:
        return list(dict.fromkeys(self.train_tasks + self.eval_tasks))

    @property
    def unseen(self) -> list[str]:
        seen = {self.instructions[t] for t in self.train_tasks}
        return [t for t in self.eval_tasks if self.instructions[t] not in seen]


def multitask_key(identity: dict, condition: dict, job: MultiTaskJob) -> str:
    """Hash of everything that changes a multi-task cell's result."""
    from roboact.policy.benchmark import settings_key

    chain = {} if job.chain is None else {"chain": asdict(job.chain)}
    return settings_key({"encoder": identity, "condition": condition, "suite": job.suite, **chain,
                         "train_tasks": job.train_tasks, "eval_tasks": job.eval_tasks,
                         "instructions": job.instructions, "seed": job.seed,
                         "demos": {t: [s.sha256, s.keys] for t, s in job.sources.items()},
                         "rollouts": job.rollouts, "max_steps": job.max_steps, "image_size": job.image_size},
                        identity, job.train)


def concat_sets(sets: list[DemoSet]) -> tuple[DemoSet, torch.Tensor]:
    """One training set from the tasks' sets (window indices and demo ids shifted), and each step's task id."""
    wins, eps, offset, ep_offset = [], [], 0, 0
    for s in sets:
        if s.windows is not None:
            wins.append(s.windows + offset)
        eps.append(s.episode + ep_offset)
        offset += len(s.embeddings)
        ep_offset += int(s.episode.max()) + 1 if len(s.episode) else 0
    if wins and len(wins) != len(sets):
        raise ValueError("cannot join token sets gathered by window with sets that are not")
    data = DemoSet(torch.cat([s.embeddings for s in sets]), torch.cat([s.proprio for s in sets]),
                   torch.cat([s.actions for s in sets]), torch.cat(eps), sets[0].source,
                   torch.cat(wins) if wins else None)
    task = torch.cat([torch.full((len(s),), i, dtype=torch.long) for i, s in enumerate(sets)])
    return data, task


def policy_digest(policy: torch.nn.Module) -> str:
    """sha256 of the policy's weights (names, dtypes, shapes, bytes): which policy an evaluation rolled out."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(policy.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def kept_result(path: Path, digest: str) -> dict | None:
    """The saved evaluation at `path` if it rolled out this policy (or predates digests), else None; one of
    another policy is renamed to `*.stale.json` so the caller runs it again."""
    import logging

    from roboact.utils.io import read_json

    if not path.is_file():
        return None
    res = read_json(path)
    if res.get("policy_sha256", digest) == digest:
        return res
    logging.getLogger(__name__).warning("%s was rolled out by another policy (%s, now %s): running it again",
                                        path, res["policy_sha256"][:12], digest[:12])
    path.replace(path.with_name(path.stem + ".stale.json"))
    return None


# --- training state: resumable without pickle ----------------------------------------------------------
def save_state(folder: Path, policy, opt, gen: torch.Generator, step: int, losses: list[float]) -> None:
    from safetensors.torch import save_file

    from roboact.train.checkpoint import optimizer_to_parts
    from roboact.utils.io import atomic_path, atomic_write_json

    opt_t, opt_meta = optimizer_to_parts(opt)
    tensors = {**{f"policy.{k}": v.detach().cpu().contiguous() for k, v in policy.state_dict().items()},
               **opt_t, "rng.sampler": gen.get_state()}
    with atomic_path(folder / "state.safetensors") as tmp:
        save_file(tensors, str(tmp))
    # the JSON names the step and is written last: it is what a rerun trusts
    atomic_write_json(folder / "state.json", {"step": step, "losses": losses, "optimizer": opt_meta})


def load_state(folder: Path, policy, opt, gen: torch.Generator) -> tuple[int, list[float]]:
    """(step, losses) of the saved state, loaded into policy/opt/gen; (0, []) when there is none or it does
    not belong to this policy (then training starts over: it is minutes, the evaluations are what is kept)."""
    import logging

    from safetensors.torch import load_file

    from roboact.train.checkpoint import optimizer_from_parts
    from roboact.utils.io import read_json

    if not (folder / "state.json").is_file():
        return 0, []
    try:
        meta = read_json(folder / "state.json")
        tensors = load_file(str(folder / "state.safetensors"))
        policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
        optimizer_from_parts(opt, {k: v for k, v in tensors.items() if k.startswith("opt.")}, meta["optimizer"])
        gen.set_state(tensors["rng.sampler"])
        return int(meta["step"]), list(meta["losses"])
    except Exception as e:  # truncated, or from other settings: retrain rather than trust it
        logging.getLogger(__name__).warning("%s: training state unusable (%s); training again", folder, e)
        return 0, []


# --- one cell ------------------------------------------------------------------------------------------------
def run_multitask_cell(job: MultiTaskJob) -> dict:
    """Train the multi-task policy, evaluate it on every task at each evaluation step (resumably), write the
    policy and then result.json (which marks the cell done)."""
    from roboact.policy.benchmark import _encoder, drop_runner, runner_for
    from roboact.policy.conditioning import condition_vectors
    from roboact.policy.data import DemoFeatureCache, load_demo_set
    from roboact.policy.runner import PolicyAgent
    from roboact.policy.suites import get_bench_suite
    from roboact.policy.train import make_policy, train_steps
    from roboact.utils import shutdown
    from roboact.utils.io import atomic_write_json, read_json

    suite = get_bench_suite(job.suite)
    folder = Path(job.folder)
    enc = _encoder(job.spec, job.encoder)
    cache = DemoFeatureCache(job.cache_dir)
    data, task_ids = concat_sets([load_demo_set(enc, job.sources[t], suite, cache) for t in job.train_tasks])
    train_text = [job.instructions[t] for t in job.train_tasks]
    ckpt = job.spec.path if job.spec.kind == "roboact" else None
    every = job.all_tasks                                                           # train tasks first
    all_vectors = condition_vectors(job.condition, [job.instructions[t] for t in every], train_text,
                                    job.encoder, ckpt)                              # (tasks, C)
    train_vectors = all_vectors[: len(job.train_tasks)]
    vectors = all_vectors[[every.index(t) for t in job.eval_tasks]]
    cfg = dataclasses.replace(job.train, seed=job.seed)
    if len(data) < cfg.batch_size:
        raise ValueError(f"only {len(data)} demo steps for batches of {cfg.batch_size}")
    policy = make_policy(data, cfg, cond_dim=int(vectors.shape[1]))
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    done, losses = load_state(folder / "state", policy, opt, gen)
    t_train = t_eval = 0.0
    steps = cfg.eval_steps()
    for at in steps:
        if at < done:
            continue  # a saved state past `at` means every evaluation at `at` finished before it was trained
        if at > done:
            t0 = time.perf_counter()
            losses.append(train_steps(policy, opt, data, at - done, cfg.batch_size, gen, (task_ids, train_vectors)))
            done = at
            t_train += time.perf_counter() - t0
            with shutdown.deferred():
                save_state(folder / "state", policy, opt, gen, at, losses)
        policy.eval()
        digest = policy_digest(policy)
        for i, task in enumerate(job.eval_tasks):
            path = folder / "evals" / f"step{at:07d}" / f"{task}.json"
            if kept_result(path, digest) is not None:
                continue
            t0 = time.perf_counter()
            runner = runner_for(job.suite, task, job.rollouts, job.max_steps, job.image_size, job.parallel)
            res = runner.run(PolicyAgent(enc, policy, suite.camera, vectors[i]),
                             record=job.record if at == cfg.steps else 0,
                             video_dir=Path(job.video_dir) / task, tag=f"step{at}")
            drop_runner(job.suite, task, job.rollouts, job.max_steps, job.image_size)  # one task's envs at a time
            t_eval += time.perf_counter() - t0
            atomic_write_json(path, {**{k: res[k] for k in ("success_rate", "successes", "episodes", "per_episode",
                                                            "videos", "env_ms_per_step", "agent_ms_per_step",
                                                            "seconds")}, "policy_sha256": digest})
    per_task = {}
    for task in job.eval_tasks:
        evals = [read_json(folder / "evals" / f"step{at:07d}" / f"{task}.json") for at in steps]
        curve = [{"step": at, "success_rate": e["success_rate"], "successes": e["successes"],
                  "episodes": e["episodes"], "loss": losses[k] if k < len(losses) else None}
                 for k, (at, e) in enumerate(zip(steps, evals))]
        best = max(curve, key=lambda r: r["success_rate"])
        last = evals[-1]
        per_task[task] = {"row": job.spec.name, "condition": job.condition, "task": task, "seed": job.seed,
                          "best": best["success_rate"], "best_step": best["step"], "final": curve[-1]["success_rate"],
                          "curve": curve, "unseen": task in job.unseen, "instruction": job.instructions[task],
                          "agent_ms_per_step": last["agent_ms_per_step"], "env_ms_per_step": last["env_ms_per_step"],
                          "videos": last["videos"], "final_episodes": last["per_episode"]}
    final = policy_digest(policy)
    chain = None
    if job.chain is not None:
        from roboact.policy.chain import run_chain_evals

        t0 = time.perf_counter()
        chain = run_chain_evals(job, enc, policy, {job.instructions[t]: all_vectors[i] for i, t in enumerate(every)},
                                folder / "chain", final)
        t_eval += time.perf_counter() - t0
    policy.save_pretrained(folder, extra={"row": job.spec.name, "condition": job.condition, "seed": job.seed,
                                          "train_tasks": job.train_tasks, "instructions": job.instructions,
                                          "condition_vectors": {job.instructions[t]: all_vectors[i].tolist()
                                                                for i, t in enumerate(every)}})
    out = {"row": job.spec.name, "condition": job.condition, "seed": job.seed, "train_tasks": job.train_tasks,
           "eval_tasks": job.eval_tasks, "unseen": job.unseen, "demo_steps": len(data),
           "train_seconds": round(t_train, 1), "eval_seconds": round(t_eval, 1), "tasks": per_task,
           "policy_sha256": final,
           **({"chain": chain} if chain is not None else {})}
    atomic_write_json(folder / "result.json", out)
    return out


# --- the run ---------------------------------------------------------------------------------------------------
def cell_priority(job: MultiTaskJob) -> tuple:
    """The order cells are run in, for a grid that takes several sessions: first what the comparison rests on
    (each image row at the condition made for it: RoboAct-CLIP through its own text branch, the backbone through
    its sentence embedding), seed by seed so both rows reach three seeds together; then RoboAct-CLIP's like-for-
    like sentence cells; the one-hot references last. Stable: rows keep their order within a key."""
    return (job.condition == "onehot", job.spec.kind == "roboact" and job.condition == "sentence", job.seed)


def row_name(row: str, condition: str) -> str:
    """A multi-task table row: the image row and how its policy hears the instruction."""
    return f"{row} [{condition}]"


def row_slug(row: str, condition: str) -> str:
    """Its folder under cells/ and videos/: the condition is kept whole however long the row's name is."""
    from roboact.policy.encoders import slugify

    return f"{slugify(row)[:36]}-{condition}"


def run_multitask_benchmark(cfg, suite, tasks: list[str], out: Path, t0: float) -> dict:
    """`run_benchmark` for `cfg.multitask`: the same steps (seen-task check, demos, rows, expert check on every
    evaluated task, cached demo features), with one cell per (row, condition, seed)."""
    from roboact.policy import benchmark as bm
    from roboact.policy.conditioning import LABELS, unavailable
    from roboact.policy.data import DemoFeatureCache, encode_demos, open_demos
    from roboact.policy.report import RowReport
    from roboact.utils import shutdown
    from roboact.utils.io import read_json

    train_tasks, eval_tasks, instructions = multitask_tasks(cfg, suite, tasks)
    holdout = eval_tasks[len(tasks):]
    stages = {t: instructions[t] for t in train_tasks[len(tasks):]}
    bm.check_seen_tasks(cfg, eval_tasks)
    if cfg.make_demos:
        bm.ensure_demos(cfg, suite, tasks)
    sources = {t: open_demos(suite, t, cfg.demos_dir, cfg.num_demos, cfg.rollouts) for t in train_tasks}
    rows = bm.prepare_rows(cfg, eval_tasks)
    plan = []                                   # (row, condition, table name, why not run, {seed: folder})
    try:
        expert = bm.expert_check(cfg, eval_tasks, out)
        cache = DemoFeatureCache(cfg.cache_dir)
        jobs = []
        for row in rows:
            for cond in cfg.conditions:
                name = row_name(row.spec.name, cond)
                why = row.status if row.status != "ok" else unavailable(cond, row.spec.kind)
                folders: dict[int, Path] = {}
                plan.append((row, cond, name, why, folders))
                if why:
                    continue
                for t in train_tasks:
                    encode_demos(row.encoder, sources[t], suite, cache)
                bm._ENCODERS[json.dumps([asdict(row.spec), asdict(cfg.encoder)], sort_keys=True)] = row.encoder
                for seed in range(cfg.seeds):
                    job = _job(cfg, row, cond, name, seed, train_tasks, eval_tasks, sources, instructions, out)
                    folders[seed] = Path(job.folder)
                    if not (folders[seed] / "result.json").is_file():
                        jobs.append(job)
        jobs.sort(key=cell_priority)
        n_cells = sum(len(p[4]) for p in plan)
        bm.log.info("%d multi-task cells to run (%d already done)", len(jobs), n_cells - len(jobs))
        if cfg.chain.enabled and "judge" in cfg.chain.switches:
            from roboact.policy.chain import chain_judging

            for job in jobs:
                if job.spec.kind == "roboact":
                    job.judging = chain_judging(cfg, job.spec.path, [sources[t] for t in stages], out)
        bm.run_cells(cfg, jobs)
    finally:
        bm.close_runners()
        bm._ENCODERS.clear()
    reports, chains = [], {}
    for row, cond, name, why, folders in plan:
        label = row.encoder.input_label() if row.encoder is not None else ""
        rep = RowReport(name, row.spec.kind, row.role, why or "ok", row.pretraining,
                        input=f"{label}; instruction through the {LABELS[cond]}" if label else "",
                        slug=row_slug(row.spec.name, cond))
        for seed, folder in folders.items():
            res = read_json(folder / "result.json")
            for t, cell in res["tasks"].items():
                rep.cells.setdefault(t, {})[seed] = cell
            if "chain" in res:
                chains.setdefault(name, {})[seed] = res["chain"]
        reports.append(rep)
    unseen = [t for t in eval_tasks if instructions[t] not in {instructions[u] for u in train_tasks}]
    extra = {"multitask": {"train_tasks": train_tasks, "holdout_tasks": holdout, "unseen_tasks": unseen,
                           "instructions": instructions, "conditions": list(cfg.conditions)}}
    if cfg.chain.enabled:
        from roboact.policy.chain import chain_report

        extra["chain"] = chain_report(cfg.chain, [p[2] for p in plan], {p[2]: p[3] for p in plan}, chains)
    with shutdown.deferred():
        return bm.write_outputs(cfg, eval_tasks, expert, rows, {}, out, time.perf_counter() - t0, reports, extra)


def multitask_tasks(cfg, suite, tasks: list[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """(train tasks, evaluation tasks, every one's instruction) of a multi-task run: the tasks, then with --chain
    the chain's stages (trained on, never evaluated alone); evaluated: the tasks, then the held-out ones. One
    home, so the grid and anything measuring it (benchmarks/multitask_bc_budget.py) train on the same tasks."""
    from roboact.policy.conditioning import check_instruction
    from roboact.policy.suites import PolicyError
    from roboact.sim.suites import get_suite

    holdout = [suite.canonical(t) for t in cfg.holdout_tasks]
    eval_tasks = list(dict.fromkeys(tasks + holdout))
    sim = get_suite(cfg.suite)
    instructions = {t: check_instruction(sim.instruction(t), f"{cfg.suite}/{t}") for t in eval_tasks}
    stages = chain_stage_tasks(cfg)                          # {} without --chain
    instructions.update(stages)
    train_tasks = tasks + list(stages)
    train_text = [instructions[u] for u in train_tasks]
    same = [t for t in train_tasks if train_text.count(instructions[t]) > 1]
    if same:
        raise PolicyError(f"training tasks {same} share one instruction, so no policy can tell them apart")
    return train_tasks, eval_tasks, instructions


def chain_stage_tasks(cfg) -> dict[str, str]:
    """With --chain: the stages' task names -> instructions (training-only tasks), after checking the chain's
    evaluation starts; {} otherwise."""
    from roboact.policy.chain import stage_demos_command, stage_instructions
    from roboact.policy.data import demo_path
    from roboact.policy.suites import PolicyError
    from roboact.sim.chain.starts import ChainStarts

    if not cfg.chain.enabled:
        return {}
    from roboact.sim.base import SimError

    try:
        n = len(ChainStarts.load(cfg.chain.starts).starts)
    except (OSError, SimError) as e:
        raise PolicyError(f"chain.starts: {e} (a checkout of roboact holds them in "
                          "docs/results/chain/chain_starts_eval.json)") from None
    if n < cfg.chain.episodes:
        raise PolicyError(f"chain.starts {cfg.chain.starts}: holds {n} chain initial states, chain.episodes asks for "
                          f"{cfg.chain.episodes}")
    stages = stage_instructions()
    missing = [t for t in stages if not demo_path(cfg.demos_dir, cfg.suite, t).is_file()]
    if missing:
        raise PolicyError(f"no chained demos for the stage(s) {', '.join(missing)} in {cfg.demos_dir}; make them with "
                          f"`{stage_demos_command(cfg.demos_dir, cfg.num_demos)}`")
    return stages


def _job(cfg, row, cond: str, name: str, seed: int, tasks: list[str], eval_tasks: list[str], sources: dict,
         instructions: dict, out: Path) -> MultiTaskJob:
    from roboact.policy.benchmark import _encoder
    from roboact.policy.conditioning import condition_identity
    from roboact.policy.encoders import checkpoint_digest

    spec = row.spec.for_seed(seed)
    enc = row.encoder if spec is row.spec else _encoder(spec, cfg.encoder)
    digest = checkpoint_digest(spec.path) if cond == "roboact-text" else None
    job = MultiTaskJob(spec, cond, cfg.encoder, cfg.suite, list(tasks), list(eval_tasks),
                       {t: sources[t] for t in tasks}, {t: instructions[t] for t in dict.fromkeys(tasks + eval_tasks)},
                       seed, cfg.cache_dir, dataclasses.replace(cfg.train, seed=seed), cfg.rollouts, cfg.max_steps,
                       cfg.image_size, "", cfg.videos if seed == 0 else 0,
                       str(out / "videos" / row_slug(row.spec.name, cond)), cfg.parallel,
                       cfg.chain if cfg.chain.enabled else None)
    key = multitask_key(enc.identity(), condition_identity(cond, [instructions[t] for t in tasks], cfg.encoder,
                                                           digest), job)
    job.folder = str(out / "cells" / row_slug(row.spec.name, cond) / f"seed{seed}-{key}")
    return job
