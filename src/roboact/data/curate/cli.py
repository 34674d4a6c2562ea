"""`roboact curate`: Algorithm 1 of the paper on RH20T or on a CSV/JSONL list of videos + instructions."""
from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "curate", help="keep single-action videos, label subject/action/object, write a manifest + Table I",
        description="Algorithm 1 of the paper: annotate each instruction (rules offline, or an LLM), reject "
                    "multi-action ones, and write manifest.jsonl, rejections.jsonl, pending.jsonl and "
                    "summary.{json,md} (Table I) into --out. Reruns reuse the LLM and frame-count caches.")
    p.add_argument("source", choices=["rh20t", "manifest"], help="dataset kind")
    p.add_argument("input", help="RH20T root folder, or a CSV/JSONL list with columns path,instruction")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--annotator", choices=["rules", "llm"], default="rules",
                   help="rules: offline rule-based (default); llm: an OpenAI-compatible chat API")
    p.add_argument("--descriptions", default="", help="RH20T task_description.json (default: in or above the root)")
    p.add_argument("--min-rating", type=int, default=2, help="RH20T: drop episodes rated below this (default 2)")
    p.add_argument("--subject", default="Robot", help="subject for list rows without one (default Robot)")
    p.add_argument("--max-instruction-chars", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="threads counting frames")
    p.add_argument("--absolute-paths", action="store_true", help="absolute video paths in the manifest")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("LLM annotator (--annotator llm)")
    g.add_argument("--llm-base-url", default=None,
                   help="chat API base URL (env ROBOACT_LLM_BASE_URL; default https://api.deepseek.com)")
    g.add_argument("--llm-model", default=None, help="model (env ROBOACT_LLM_MODEL; default deepseek-reasoner)")
    g.add_argument("--api-key", default=None,
                   help="API key (default: env ROBOACT_LLM_API_KEY, DEEPSEEK_API_KEY or OPENAI_API_KEY)")
    g.add_argument("--llm-concurrency", type=int, default=8, help="requests in flight (default 8)")
    g.add_argument("--llm-max-requests", type=int, default=0, help="request budget; 0 = unlimited")
    g.add_argument("--llm-timeout", type=float, default=180.0, help="seconds per request (default 180)")
    g.add_argument("--llm-retries", type=int, default=5, help="retries per instruction (default 5)")
    g.add_argument("--llm-max-tokens", type=int, default=0, help="max_tokens per answer; 0 = server default")
    g.add_argument("--llm-cache", default="", help="SQLite answer cache (default <out>/llm_cache.sqlite)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from roboact.data.curate.annotate_llm import LLMConfig, api_key_from_env
    from roboact.data.curate.pipeline import CurateConfig, curate

    llm = LLMConfig(
        base_url=args.llm_base_url or os.environ.get("ROBOACT_LLM_BASE_URL") or "https://api.deepseek.com",
        model=args.llm_model or os.environ.get("ROBOACT_LLM_MODEL") or "deepseek-reasoner",
        api_key=args.api_key if args.api_key is not None else api_key_from_env(),
        timeout_s=args.llm_timeout, max_retries=args.llm_retries, concurrency=args.llm_concurrency,
        max_requests=args.llm_max_requests, max_tokens=args.llm_max_tokens, cache_path=args.llm_cache)
    if args.annotator == "llm" and not llm.api_key:
        logging.getLogger(__name__).warning("no API key given (--api-key or %s): sending requests without "
                                            "one, which only a local server accepts", "ROBOACT_LLM_API_KEY")
    cfg = CurateConfig(source=args.source, input=args.input, out_dir=args.out, annotator=args.annotator, llm=llm,
                       descriptions=args.descriptions, min_rating=args.min_rating, default_subject=args.subject,
                       max_instruction_chars=args.max_instruction_chars, workers=args.workers,
                       absolute_paths=args.absolute_paths, progress=not args.no_progress)
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
