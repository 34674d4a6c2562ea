"""The frozen image tower on each runtime, side by side: batch-1 latency (the control case), throughput at the
extract batch, on 1 and 2 threads, and the largest feature difference from eager fp32.

Every figure is end to end as a consumer sees it: uint8 128 px frames in (resized to 224 as always), float32
features out. Offered runtimes (`--runtime` of extract / eval / policy, `roboact.load(runtime=)`) and the
candidates that were measured and not offered (why: docs/benchmarks.md) run in one process, interleaved, so a
busy machine slows them alike:

    .venv/bin/python benchmarks/bench_runtime.py [--threads 1 2] [--reps 40] [--compile] [--json OUT]

`--compile` adds torch.compile (inductor; ~1 min of compiling per thread count). onnxruntime is timed when
`onnx` and `onnxruntime` are installed (pip install onnx onnxruntime); it is not a roboact dependency.
"""
from __future__ import annotations

import argparse
import io
import platform
import time
import warnings

import numpy as np
import torch

from roboact.backbones import load_backbone


def frames_like_ours(n: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """Deterministic scene-like frames (smooth background, a few coloured boxes, mild noise): random noise would
    exercise the network far from the images it sees, which matters for the lossy paths' error."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        base = np.stack([0.3 + 0.4 * yy, 0.35 + 0.3 * xx, 0.4 + 0.2 * yy * xx], -1)
        for _ in range(4):
            x0, y0 = rng.integers(0, size - 24, 2)
            w, h = rng.integers(8, 24, 2)
            base[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
        out[i] = base + rng.normal(0, 0.02, base.shape)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


class _Tower(torch.nn.Module):
    def __init__(self, bb):
        super().__init__()
        self.bb = bb

    def forward(self, px):
        return self.bb._image_features(px)


def candidate(name: str, threads: int):
    """(encode(frames uint8) -> features, setup seconds) for one path; None when it cannot run here."""
    t0 = time.perf_counter()
    if name in ("eager", "openvino", "openvino-bf16"):
        bb = load_backbone("lite0-minilm", runtime=name, load_text=False, cache=False)
        bb.encode_images(frames_like_ours(1))                      # compile now, not inside the timing
        return bb.encode_images, time.perf_counter() - t0
    bb = load_backbone("lite0-minilm", runtime="eager", load_text=False, cache=False)
    tower = _Tower(bb).eval()
    if name == "eager channels-last":
        bb.image_model.to(memory_format=torch.channels_last)
        run = lambda px: tower(px.contiguous(memory_format=torch.channels_last))  # noqa: E731
    elif name == "torch.compile":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True                            # constant-fold the frozen weights (faster)
        run = torch.compile(tower)
    elif name == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(tower, (torch.zeros(1, 3, 224, 224),), buf, dynamo=False, input_names=["px"],
                                  dynamic_axes={"px": {0: "n"}}, opset_version=17)
            except Exception as e:                                  # noqa: BLE001 - report and skip the path
                print(f"  onnxruntime: export failed ({type(e).__name__}: {e}); skipped")
                return None
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        run = lambda px: torch.from_numpy(sess.run(None, {"px": px.numpy()})[0])  # noqa: E731
    else:
        raise ValueError(name)

    @torch.no_grad()
    def encode(frames):
        x = torch.from_numpy(frames)
        return torch.cat([run(bb.preprocess(x[i:i + 16])).float() for i in range(0, len(x), 16)])
    encode(frames_like_ours(2))
    return encode, time.perf_counter() - t0


def median_ms(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def measure(paths: list[str], threads: int, reps: int, batch: int) -> list[dict]:
    torch.set_num_threads(threads)
    frames = frames_like_ours(batch)
    built = {}
    for name in paths:
        got = candidate(name, threads)
        if got is None:
            print(f"  {name}: not available here, skipped")
            continue
        built[name] = got
    ref = built["eager"][0](frames)
    lat = {n: [] for n in built}
    tput = {n: [] for n in built}
    for r in range(3):                     # interleaved rounds: a busy machine slows every path alike
        for name, (enc, _) in built.items():
            lat[name].append(median_ms(lambda: enc(frames[r:r + 1]), reps))
            tput[name].append(median_ms(lambda: enc(frames), max(2, reps // 10)))
    rows = []
    for name, (enc, setup) in built.items():
        diff = (enc(frames) - ref).abs().max().item()
        b1, bb = float(np.median(lat[name])), float(np.median(tput[name]))
        rows.append({"path": name, "threads": threads, "setup_s": round(setup, 2), "batch1_ms": round(b1, 2),
                     "batch_ms_per_frame": round(bb / batch, 2), "frames_per_s": round(1000 * batch / bb, 1),
                     "max_abs_diff_vs_eager": diff})
    base = next(r for r in rows if r["path"] == "eager")
    for r in rows:
        r["batch1_speedup"] = round(base["batch1_ms"] / r["batch1_ms"], 2)
        r["throughput_speedup"] = round(r["frames_per_s"] / base["frames_per_s"], 2)
    return rows


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=40, help="batch-1 calls per round (3 interleaved rounds)")
    p.add_argument("--batch", type=int, default=64, help="frames per call for throughput (extract: 4 clips x 16)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    paths = ["eager", "eager channels-last", "onnxruntime", "openvino", "openvino-bf16"]
    if args.compile:
        paths.insert(2, "torch.compile")
    from roboact.backbones.runtime import RuntimeUnavailable, resolve_runtime
    try:
        resolve_runtime("openvino-bf16")
    except RuntimeUnavailable as e:
        print(f"openvino-bf16 skipped: {e}")
        paths.remove("openvino-bf16")
    rows = []
    for n in args.threads:
        print(f"--- {n} thread(s)")
        rows += measure(paths, n, args.reps, args.batch)
    print("\n| path | threads | batch-1 ms/frame | speed-up | batch-%d ms/frame | frames/s | speed-up | max abs diff "
          "vs eager | setup s |" % args.batch)
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['threads']} | {r['batch1_ms']:.2f} | {r['batch1_speedup']:.2f}x | "
              f"{r['batch_ms_per_frame']:.2f} | {r['frames_per_s']:.1f} | {r['throughput_speedup']:.2f}x | "
              f"{r['max_abs_diff_vs_eager']:.1e} | {r['setup_s']:.1f} |")
    if args.json:
        meta = {"cpu": cpu_name(), "torch": torch.__version__,
                "command": "benchmarks/bench_runtime.py " + " ".join(argv if argv is not None else
                                                                      __import__("sys").argv[1:])}
        try:
            from roboact.backbones.runtime import _openvino_capabilities
            import openvino

            meta["openvino"] = openvino.__version__
            meta["openvino_cpu_capabilities"] = list(_openvino_capabilities())
        except ImportError:
            pass
        from roboact.utils.io import atomic_write_json
        atomic_write_json(args.json, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
