"""`roboact curate`: Algorithm 1 of the paper on RH20T, a local LeRobot dataset, or a CSV/JSONL list of videos +
instructions."""
from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    from roboact.utils.config import add_config_options

    p = subparsers.add_parser(
        "curate", help="keep single-action videos, label subject/action/object, write a manifest + Table I",
        description="Algorithm 1 of the paper: annotate each instruction (rules offline, or an LLM), reject "
                    "multi-action ones, and write manifest.jsonl, rejections.jsonl, pending.jsonl and "
                    "summary.{json,md} (Table I) into --out. Reruns reuse the LLM and frame-count caches. "
                    "The effective config (without the API key) is saved as OUT/curate_config.json.")
    add_config_options(p, "roboact.data.curate.pipeline.CurateConfig")
    # Flags and positionals default to None ("not given") so they override --config/--set only when given;
    # the defaults named in the help are CurateConfig's.
    p.add_argument("source", nargs="?", choices=["rh20t", "manifest", "lerobot"],
                   help="dataset kind (required, here or in the config)")
    p.add_argument("input", nargs="?",
                   help="RH20T root folder, a CSV/JSONL list with columns path,instruction, or a local LeRobot "
                        "dataset folder (v2.0/v2.1/v3.0, the one holding meta/info.json) (required)")
    p.add_argument("--out", help="output folder (required)")
    p.add_argument("--annotator", choices=["rules", "llm"],
                   help="rules: offline rule-based (default); llm: an OpenAI-compatible chat API")
    p.add_argument("--descriptions", help="RH20T task_description.json (default: in or above the root)")
    p.add_argument("--min-rating", type=int, help="RH20T: drop episodes rated below this (default 2)")
    p.add_argument("--subject", help="subject for list rows without one, and for LeRobot clips (default Robot)")
    p.add_argument("--cameras", nargs="+", metavar="KEY",
                   help="LeRobot: camera keys to use, e.g. observation.images.top or just top (default: all)")
    p.add_argument("--episodes", nargs="+", metavar="N", type=episode_spec,
                   help="LeRobot: episode indices to use, e.g. 0 3 10-19 (default: all)")
    p.add_argument("--max-instruction-chars", type=int, help="default 1000")
    p.add_argument("--workers", type=int, help="threads counting frames (default 2)")
    p.add_argument("--absolute-paths", action="store_true", default=None,
                   help="absolute video paths in the manifest")
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bars")
    g = p.add_argument_group("LLM annotator (--annotator llm)")
    g.add_argument("--llm-base-url", default=None,
                   help="chat API base URL (env ROBOACT_LLM_BASE_URL; default https://api.deepseek.com)")
    g.add_argument("--llm-model", default=None, help="model (env ROBOACT_LLM_MODEL; default deepseek-reasoner)")
    g.add_argument("--api-key", default=None,
                   help="API key (default: env ROBOACT_LLM_API_KEY, DEEPSEEK_API_KEY or OPENAI_API_KEY)")
    g.add_argument("--llm-concurrency", type=int, help="requests in flight (default 8)")
    g.add_argument("--llm-max-requests", type=int, help="request budget; 0 = unlimited (the default)")
    g.add_argument("--llm-timeout", type=float, help="seconds per request (default 180)")
    g.add_argument("--llm-retries", type=int, help="retries per instruction (default 5)")
    g.add_argument("--llm-max-tokens", type=int, help="max_tokens per answer; 0 = server default (the default)")
    g.add_argument("--llm-cache", help="SQLite answer cache (default <out>/llm_cache.sqlite)")
    p.set_defaults(func=run)


def episode_spec(text: str) -> list[int]:
    """'7' -> [7]; '10-12' -> [10, 11, 12] (inclusive, as a person reads a range)."""
    lo, sep, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an episode index or a range A-B, got {text!r}") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"expected 0 <= A <= B in A-B, got {text!r}")
    return list(range(first, last + 1))


def curate_config(args: argparse.Namespace):
    """CurateConfig from --config, --set and the flags that were given (flags win). The LLM endpoint, model
    and key fall back to the environment (ROBOACT_LLM_BASE_URL, ROBOACT_LLM_MODEL, ROBOACT_LLM_API_KEY or
    DEEPSEEK_API_KEY or OPENAI_API_KEY) before LLMConfig's defaults; they are defaults, so a config file or
    --set wins over them."""
    from roboact.data.curate.annotate_llm import api_key_from_env
    from roboact.data.curate.pipeline import CurateConfig
    from roboact.utils.config import load_config

    env = {"base_url": os.environ.get("ROBOACT_LLM_BASE_URL"), "model": os.environ.get("ROBOACT_LLM_MODEL"),
           "api_key": api_key_from_env()}
    return load_config(CurateConfig, args.config, args.overrides, {
        "source": args.source, "input": args.input, "out_dir": args.out, "annotator": args.annotator,
        "descriptions": args.descriptions, "min_rating": args.min_rating, "default_subject": args.subject,
        "cameras": args.cameras, "episodes": sorted({i for part in args.episodes for i in part}) if args.episodes else None,
        "max_instruction_chars": args.max_instruction_chars, "workers": args.workers,
        "absolute_paths": args.absolute_paths, "progress": False if args.no_progress else None,
        "llm.base_url": args.llm_base_url or None, "llm.model": args.llm_model or None,
        "llm.api_key": args.api_key, "llm.timeout_s": args.llm_timeout, "llm.max_retries": args.llm_retries,
        "llm.concurrency": args.llm_concurrency, "llm.max_requests": args.llm_max_requests,
        "llm.max_tokens": args.llm_max_tokens, "llm.cache_path": args.llm_cache},
        defaults={"llm": {k: v for k, v in env.items() if v}})


def run(args: argparse.Namespace) -> int:
    import logging

    from roboact.data.curate.pipeline import curate

    cfg = curate_config(args)
    if cfg.annotator == "llm" and not cfg.llm.api_key:
        logging.getLogger(__name__).warning("no API key given (--api-key or %s): sending requests without "
                                            "one, which only a local server accepts", "ROBOACT_LLM_API_KEY")
    result = curate(cfg)
    print(result.summary.table())
    s = result.summary
    print(f"\nrejected {s.rejected} ({', '.join(f'{k} {v}' for k, v in s.rejected_by_code.items()) or 'none'}), "
          f"pending {s.pending}; outputs in {result.out_dir}")
    if s.pending:
        print(f"{s.pending} clips are pending (see pending.jsonl): rerun the same command to finish them",
              file=sys.stderr)
    if not result.records:
        print("no clip was accepted; see rejections.jsonl", file=sys.stderr)
        return 1
    return 0
