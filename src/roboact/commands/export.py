"""`roboact export CKPT DIR`: a checkpoint as a Hub-ready folder with a model card (roboact.train.export)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint as the folder a model hub expects (safetensors + "
                                      "config + model card README)",
                       description="Copy a checkpoint (a folder, a `roboact train` run folder, or a name in the "
                                   "model store) into DIR with a model card naming its training data, "
                                   "configuration and measured scores. Upload with `hf upload ORG/NAME DIR`; "
                                   "then roboact.load('ORG/NAME').")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder, run folder or model-store name")
    p.add_argument("out", metavar="DIR", help="folder to write (created; other files in it are left alone)")
    p.add_argument("--name", help="the model card's title, best the Hub repo id it will be loaded by (ORG/NAME); default: "
                                     "the recipe's name, else DIR's name")
    p.add_argument("--scores", metavar="JSON", help="scores you measured on this checkpoint, for the card: "
                                                    '{"metric": value} or {"section": {"metric": value}}')
    p.set_defaults(func=run)


def run(args) -> int:
    from roboact.train.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, name=args.name, scores_file=args.scores)
    print(f"exported {args.checkpoint} -> {out} ({', '.join(sorted(p.name for p in out.iterdir() if p.is_file()))})")
    return 0
