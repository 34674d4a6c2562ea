"""`roboact pretrain --recipe NAME`: rebuild a named encoder from nothing and install it in the model store
(roboact.train.recipes). Resumable: a rerun does only the stages and episodes that are missing."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="build a named encoder from a recipe (simulate, extract, train) and "
                                        "install it for roboact.load(NAME)",
                       description="Run every stage of a pretraining recipe (a shipped name or a JSON file) and "
                                   "install the first seed's checkpoint as $ROBOACT_HOME/models/NAME. Rerunning "
                                   "the same command resumes.")
    p.add_argument("--recipe", help="recipe name (see --list) or recipe JSON file")
    p.add_argument("--list", action="store_true", help="list the shipped recipes and exit")
    p.add_argument("--out", help="run folder (default runs/pretrain/NAME)")
    p.add_argument("--workers", type=int, default=2, help="simulation / decoding processes (default 2)")
    p.add_argument("--no-install", action="store_true", help="build only; do not copy into the model store")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from roboact.train.recipes import RecipeError, builtin_recipes, load_recipe, run_recipe

    if args.list:
        for name in sorted(builtin_recipes()):
            r = load_recipe(name)
            print(f"{name:24s} [policy input: {r.policy_output}] {r.description.split('. ')[0]}")
        return 0
    if not args.recipe:
        raise RecipeError("--recipe NAME or FILE is required (or --list)")
    if args.workers < 1:
        raise RecipeError(f"--workers must be >= 1, got {args.workers}")
    recipe = load_recipe(args.recipe)
    res = run_recipe(recipe, args.out or f"runs/pretrain/{recipe.name}", workers=args.workers,
                     progress=not args.no_progress, install=not args.no_install)
    print(f"checkpoints: {', '.join(str(c) for c in res.checkpoints)}")
    if res.installed:
        print(f"installed: {res.installed} -> roboact.load({recipe.name!r})")
    return 0
