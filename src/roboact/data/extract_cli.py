"""`roboact extract`: fill the frozen-feature cache from a clip manifest (see roboact.data.extract).

Single process:   roboact extract --manifest data/mw/manifest.jsonl --out cache
Several ranks:    torchrun --nproc_per_node 4 -m roboact.cli extract --manifest ... --out cache
"""
from __future__ import annotations

import argparse

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="encode n uniformly sampled frames per clip into the feature cache (resumable)",
        description="Decode each manifest clip, sample n frames uniformly, encode them with the frozen backbone "
                    "and store float16 features in OUT/<backbone>/. Reruns skip finished shards; bad videos "
                    "are listed in rejections.jsonl. Run under torchrun to split clips across processes.")
    p.add_argument("--manifest", required=True, help="clip manifest (JSONL of ClipRecord)")
    p.add_argument("--out", required=True, help="cache root; features go to OUT/<backbone>/")
    p.add_argument("--backbone", default="lite0-minilm", help="frozen backbone name (default: lite0-minilm)")
    p.add_argument("--backbone-path", default=None, help="weights folder for hf-clip")
    p.add_argument("--n-frames", type=int, default=16, help="frames sampled per clip (default: 16)")
    p.add_argument("--shard-size", type=int, default=256, help="clips per shard (default: 256)")
    p.add_argument("--batch-size", type=int, default=4, help="clips per encode batch (default: 4)")
    p.add_argument("--num-workers", type=int, default=2, help="video decoding processes (default: 2)")
    p.add_argument("--max-shards", type=int, default=None, help="stop after this many new shards per rank")
    p.add_argument("--device", default="auto", help="auto (this rank's GPU, else CPU), cpu, cuda[:i]")
    p.add_argument("--runtime", default="default", choices=RUNTIMES, help=RUNTIME_HELP)
    p.add_argument("--verify", action="store_true", help="check every shard's sha256 after the run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roboact import dist
    from roboact.data.extract import ExtractConfig, extract
    from roboact.data.features import FeatureCache

    cfg = ExtractConfig(manifest=args.manifest, out_dir=args.out, backbone=args.backbone,
                        backbone_path=args.backbone_path, n_frames=args.n_frames, shard_size=args.shard_size,
                        batch_size=args.batch_size, num_workers=args.num_workers, max_shards=args.max_shards,
                        device=args.device, runtime=args.runtime, progress=not args.no_progress)
    with dist.distributed() as di:
        res = extract(cfg)
    if not di.is_main:
        return 0
    cache = FeatureCache(res.cache_dir)
    print(f"{res.cache_dir}: {len(cache)} clips cached ({res.kept} new, {res.skipped} from earlier runs), "
          f"{res.rejected} rejected this run ({len(cache.rejections())} in rejections.jsonl), "
          f"{res.frames_per_s:.1f} frames/s")
    if args.verify:
        print(f"verified {cache.verify()} shard(s): checksums and shapes match the index")
    if not res.complete:
        print("not complete (stopped by --max-shards): run the same command again to continue")
    return 0
