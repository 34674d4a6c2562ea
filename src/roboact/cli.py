"""The `roboact` command. Each subcommand lives in its own module exposing `register(subparsers)`;
this file only lists them, so `roboact --help` stays fast (modules import heavy libraries lazily).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module exposing register(subparsers). Order is the order of `roboact --help`.
COMMANDS: dict[str, str] = {
    "info": "roboact.commands.info",
    "encode": "roboact.commands.encode",
    "simulate": "roboact.sim.cli",
    "demos": "roboact.sim.demos_cli",
    "chain": "roboact.sim.chain.cli",
    "curate": "roboact.data.curate.cli",
    "extract": "roboact.data.extract_cli",
    "split": "roboact.data.split_cli",
    "train": "roboact.train.cli",
    "eval": "roboact.eval.cli",
    "pretrain": "roboact.commands.pretrain",
    "export": "roboact.commands.export",
    "demo": "roboact.commands.demo",
    "policy": "roboact.policy.cli",
    "judge": "roboact.judge.cli",
}


def build_parser() -> argparse.ArgumentParser:
    from roboact import __version__

    parser = argparse.ArgumentParser(prog="roboact", description="RoboAct-CLIP: atomic-action video-language "
                                     "pretraining and frozen encoders for robot policies.")
    parser.add_argument("--version", action="version", version=f"roboact {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue  # subcommand not part of this build
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from roboact.utils import shutdown

    try:  # SIGTERM / SIGINT: workers stopped, one line logged, exit status 143 / 130 (utils/shutdown.py)
        rc = shutdown.run_command(args.command, lambda: args.func(args))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"roboact {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
