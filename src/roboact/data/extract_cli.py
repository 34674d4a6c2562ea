"""`roboact extract`: fill the frozen-feature cache from a clip manifest (see roboact.data.extract).

Single process:   roboact extract --manifest data/mw/manifest.jsonl --out cache
Several ranks:    torchrun --nproc_per_node 4 -m roboact.cli extract --manifest ... --out cache
"""
from __future__ import annotations

import argparse

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES


def register(subparsers) -> None:
    from roboact.utils.config import add_config_options

    p = subparsers.add_parser(
        "extract", help="encode n uniformly sampled frames per clip into the feature cache (resumable)",
        description="Decode each manifest clip, sample n frames uniformly, encode them with the frozen backbone "
                    "and store float16 features in OUT/<backbone>/. Reruns skip finished shards; bad videos "
                    "are listed in rejections.jsonl. Run under torchrun to split clips across processes. The "
                    "effective config is saved as OUT/<backbone>/extract_config.json.")
    add_config_options(p, "roboact.data.extract.ExtractConfig")
    # Flags default to None ("not given") so they override --config/--set only when given; the defaults
    # named in the help are ExtractConfig's.
    p.add_argument("--manifest", help="clip manifest (JSONL of ClipRecord); required (here or in the config)")
    p.add_argument("--out", help="cache root; features go to OUT/<backbone>/; required")
    p.add_argument("--backbone", help="frozen backbone name (default: lite0-minilm)")
    p.add_argument("--backbone-path", help="weights folder for hf-clip")
    p.add_argument("--n-frames", type=int, help="frames sampled per clip (default: 16)")
    p.add_argument("--shard-size", type=int, help="clips per shard (default: 256)")
    p.add_argument("--batch-size", type=int, help="clips per encode batch (default: 4)")
    p.add_argument("--num-workers", type=int, help="video decoding processes (default: 2)")
    p.add_argument("--max-shards", type=int, help="stop after this many new shards per rank")
    p.add_argument("--device", help="auto (this rank's GPU, else CPU; the default), cpu, cuda[:i]")
    p.add_argument("--runtime", choices=RUNTIMES, help=RUNTIME_HELP + " (default: default)")
    p.add_argument("--verify", action="store_true", help="check every shard's sha256 after the run")
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")
    p.set_defaults(func=run)


def extract_config(args: argparse.Namespace):
    """ExtractConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.data.extract import ExtractConfig
    from roboact.utils.config import load_config

    return load_config(ExtractConfig, args.config, args.overrides, {
        "manifest": args.manifest, "out_dir": args.out, "backbone": args.backbone,
        "backbone_path": args.backbone_path, "n_frames": args.n_frames, "shard_size": args.shard_size,
        "batch_size": args.batch_size, "num_workers": args.num_workers, "max_shards": args.max_shards,
        "device": args.device, "runtime": args.runtime, "progress": False if args.no_progress else None})


def run(args: argparse.Namespace) -> int:
    from roboact import dist
    from roboact.data.extract import extract
    from roboact.data.features import FeatureCache
    from roboact.utils.config import save_config

    cfg = extract_config(args)
    with dist.distributed() as di:
        res = extract(cfg)
    if not di.is_main:
        return 0
    save_config(cfg, res.cache_dir / "extract_config.json")
    cache = FeatureCache(res.cache_dir)
    print(f"{res.cache_dir}: {len(cache)} clips cached ({res.kept} new, {res.skipped} from earlier runs), "
          f"{res.rejected} rejected this run ({len(cache.rejections())} in rejections.jsonl), "
          f"{res.frames_per_s:.1f} frames/s")
    if args.verify:
        print(f"verified {cache.verify()} shard(s): checksums and shapes match the index")
    if not res.complete:
        print("not complete (stopped by --max-shards): run the same command again to continue")
    return 0
