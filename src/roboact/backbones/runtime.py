"""How a frozen image tower is executed: the `runtime` switch shared by extract, eval, policy and `roboact.load`.

A frozen tower never trains, so it can be handed to an inference engine. On a CPU the image tower is most of
the cost of every consumer (a policy rollout spends 65-75% of each step in it), and eager PyTorch at batch 1
leaves most of the CPU's speed unused. Measured side by side (benchmarks/bench_runtime.py, docs/benchmarks.md):

- `eager`: today's PyTorch path, fp32. The reference every other runtime is tested against.
- `openvino`: the same weights converted by OpenVINO (traced from the PyTorch module, fp32 kept with
  INFERENCE_PRECISION_HINT=f32). Features within 1e-4 of eager (about 2e-5 measured), batch-size invariant,
  ~2.6x faster at batch 1. The default on a CPU.
- `openvino-bf16`: OpenVINO with bf16 inference (needs a CPU with AVX512-BF16 or AMX). ~4.8x faster at batch 1,
  but features move by up to ~1.3 (fused-embedding cosine to eager >= 0.96): lossy, a named option, never a
  default; its effect on retrieval and on a policy table is in docs/runtime.md.

On a GPU only `eager` exists. `default` picks by device (openvino on a CPU, eager on a GPU), so the choice is
deterministic for a machine and never depends on what happens to be installed: a runtime that cannot run is an
error naming what to install or which runtime to pick, never a silent fall-back. Because runtimes give
(slightly) different numbers, every feature cache and policy cell records the resolved runtime.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch
from torch import nn

from roboact.backbones.base import BackboneError
from roboact.utils.quiet import quiet_loading

RUNTIMES = ("default", "eager", "openvino", "openvino-bf16")
LOSSY = frozenset({"openvino-bf16"})
CPU_ONLY = frozenset({"openvino", "openvino-bf16"})
EXACT_ATOL = 1e-4    # what "same features" means for a non-lossy runtime (tests hold every runtime to it)

RUNTIME_HELP = ("how the frozen image tower runs: default (openvino on a CPU, eager on a GPU), eager (PyTorch "
                "fp32), openvino (fp32, features within 1e-4 of eager, ~2-3x faster on a CPU), openvino-bf16 "
                "(lossy, fastest; needs AVX512-BF16/AMX). Recorded in caches and policy cells; docs/runtime.md")


class RuntimeUnavailable(BackboneError):
    """A runtime this machine (or this device) cannot run; the message says what to install or pick."""


def check_runtime_name(name: str) -> str:
    """Validate a runtime name (config load time): unknown names fail before anything is loaded."""
    if name not in RUNTIMES:
        raise BackboneError(f"unknown runtime {name!r}; choose one of: {', '.join(RUNTIMES)}")
    return name


def resolve_runtime(name: str, device: str | torch.device = "cpu") -> str:
    """The runtime that actually runs for `name` on `device`; raises RuntimeUnavailable when it cannot."""
    check_runtime_name(name)
    on_cpu = torch.device(device).type == "cpu"
    if name == "default":
        name = "openvino" if on_cpu else "eager"
    if name in CPU_ONLY and not on_cpu:
        raise RuntimeUnavailable(f"runtime {name!r} runs on the CPU only, not on {device}; "
                                 "use runtime 'eager' (or 'default') on a GPU")
    if name in CPU_ONLY:
        _check_openvino(bf16=name == "openvino-bf16")
    return name


def runtime_identity(name: str) -> dict:
    """The part of a cache / cell identity that a runtime adds. Eager adds nothing, so caches and policy
    cells made before runtimes existed (all eager) keep their identity and are still found."""
    if name == "default":
        raise ValueError("resolve the runtime before recording it")
    return {} if name == "eager" else {"runtime": name}


def _import_openvino():
    """`import openvino`, with OpenVINO's usage telemetry off for this process.

    OpenVINO's Python package sends usage events to Intel whenever it is imported, unless the user opted out
    (`opt_in_out --opt_out`). A library that runs offline on robots and clusters should not phone home on its
    users' behalf, so roboact declines it for its own process; set ROBOACT_OPENVINO_TELEMETRY=1 to leave
    OpenVINO's own setting in charge. Nothing is written to the user's home for this.
    """
    import os

    if os.environ.get("ROBOACT_OPENVINO_TELEMETRY") != "1":
        try:
            from openvino_telemetry.utils import opt_in_checker as oc

            oc.OptInChecker.check = lambda self, *a, **k: oc.ConsentCheckResult.DECLINED
        except (ImportError, AttributeError):   # another telemetry package layout: leave it as it is
            pass
    import openvino

    return openvino


@functools.lru_cache(maxsize=None)
def _openvino_capabilities() -> tuple[str, ...]:
    ov = _import_openvino()
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _check_openvino(bf16: bool) -> None:
    try:
        _import_openvino()
    except ImportError:
        raise RuntimeUnavailable("runtime 'openvino' needs the openvino package: pip install 'openvino>=2025.1' "
                                 "(a roboact dependency; was it installed with --no-deps?), or use runtime "
                                 "'eager'") from None
    if bf16 and "BF16" not in _openvino_capabilities():
        # OpenVINO would quietly run fp32 instead: refuse, so a table never claims a bf16 run it did not make.
        raise RuntimeUnavailable(f"runtime 'openvino-bf16' needs a CPU with bf16 instructions (AVX512-BF16 or "
                                 f"AMX); this CPU offers {', '.join(_openvino_capabilities())}. Use runtime "
                                 "'openvino' (fp32, same features as eager) instead")


def runtime_status(device: str = "cpu") -> list[dict]:
    """For `roboact info`: each runtime, what `default` resolves to here, and whether it can run (or why not)."""
    out = []
    for name in RUNTIMES:
        try:
            resolved, why = resolve_runtime(name, device), ""
        except BackboneError as e:
            resolved, why = None, str(e)
        out.append({"name": name, "resolves_to": resolved, "available": resolved is not None, "why_not": why,
                    "lossy": name in LOSSY})
    return out


def compile_tower(tower: nn.Module, runtime: str, image_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function images [N, 3, S, S] float -> features [N, d] float32 running `tower` on `runtime`.

    Compiled for any batch size (OpenVINO's dynamic batch gives bit-identical rows whatever the batch, which
    keeps resumed extraction and streamed control-time features equal to batch encoding), with the calling
    process's torch thread count, and with OpenVINO's thread pinning off so that several worker processes on
    one machine do not pin themselves to the same cores.
    """
    if runtime not in CPU_ONLY:
        raise ValueError(f"runtime {runtime!r} has no compiled form")
    ov = _import_openvino()

    example = torch.zeros(1, 3, image_size, image_size)
    try:
        # quiet_loading: tracing walks every submodule, text tower included, whose properties log warnings
        with warnings.catch_warnings(), torch.no_grad(), quiet_loading():
            warnings.simplefilter("ignore")   # the tracer warns about Python-side shape arithmetic it freezes
            model = ov.convert_model(tower, example_input=example, input=[(-1, 3, image_size, image_size)])
        compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if runtime == "openvino-bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(torch.get_num_threads()), "ENABLE_CPU_PINNING": False,
        })
    except Exception as e:  # OpenVINO raises its own exception types; name the way out
        raise RuntimeUnavailable(f"runtime {runtime!r} could not compile the image tower on this machine "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                 "use runtime 'eager' to run it in PyTorch") from e
    request = compiled.create_infer_request()

    def run(images: torch.Tensor) -> torch.Tensor:
        out = request.infer({0: images.detach().contiguous().numpy()})
        return torch.from_numpy(out[0].copy())                                 # (N, d)
    return run


__all__ = ["CPU_ONLY", "EXACT_ATOL", "LOSSY", "RUNTIMES", "RUNTIME_HELP", "RuntimeUnavailable", "check_runtime_name",
           "compile_tower", "resolve_runtime", "runtime_identity", "runtime_status"]
