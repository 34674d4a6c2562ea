"""What a trained RoboAct-CLIP encoder understands: retrieval, zero-shot factors, novel (action, object)
pairs, disentanglement, time reversal and unseen viewpoints, on cached features, over one or more seeds.
`evaluate(EvalConfig)` is the library entry point; `roboact eval` the command. Heavy modules (sklearn,
matplotlib) are imported only when used."""
from roboact.eval.config import EvalConfig

__all__ = ["EvalConfig", "evaluate"]


def evaluate(cfg: EvalConfig) -> dict:
    from roboact.eval.runner import evaluate as _evaluate

    return _evaluate(cfg)
