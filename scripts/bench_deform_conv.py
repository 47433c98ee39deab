"""Deformable convolution (srlib, plain torch) against ``conv2d`` of the same size: time and peak memory.

Three ops on the same (N, C, H, W) input, 3x3 kernel, C -> C channels, 'same' padding:

* ``conv2d``: ``torch.nn.functional.conv2d`` (oneDNN on CPU, cuDNN on GPU);
* ``deform``: ``srlib.models.deform_conv.deform_conv2d`` with random fractional offsets and masks (one
  kernel tap at a time, as the library does);
* ``deform_im2col``: the same op with every tap sampled at once (an (N, C * 9, H * W) column tensor,
  then one matmul), written here only to measure what the library's loop over taps saves.

Two modes: ``forward`` (inference, ``torch.no_grad``) and ``train`` (forward + backward to the input,
weight, offsets and masks). Peak memory is what the op allocates above the inputs at its highest
point: on CUDA ``torch.cuda.max_memory_allocated``; on CPU, which has no such counter, the
allocations and frees that ``torch.profiler`` records (``profile_memory=True``) replayed in time
order (a temporary allocated and freed inside one kernel, such as a oneDNN workspace, is not seen).
Times are medians of ``--repeat`` runs after two warm-ups, without the profiler.

Usage:
    python scripts/bench_deform_conv.py                 # default sizes on CPU (and CUDA when present)
    python scripts/bench_deform_conv.py --quick         # one small size, a few seconds
    python scripts/bench_deform_conv.py --device cuda --json

The default sizes are modest (well under a minute on 2 CPU cores): a 32-channel 32x32 feature map
and an SSEN-like 64-channel one of a 48x48 LR patch, batch 2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

SIZES = [(1, 32, 32, 32), (2, 64, 48, 48)]  # (N, C, H, W)
QUICK_SIZES = [(1, 16, 24, 24)]
OPS = ("conv2d", "deform", "deform_im2col")
MODES = ("forward", "train")
KERNEL = 3


def deform_conv2d_im2col(x, offset, weight, mask):
    """Every tap sampled at once (stride 1, padding k // 2, one group): the memory-hungry alternative."""
    import torch

    from srlib.models.deform_conv import bilinear_weights, sampling_positions

    n, c, h, w = x.shape
    taps, length = weight.shape[-2] * weight.shape[-1], h * w
    rows, cols = sampling_positions(offset, weight.shape[-2:], padding=weight.shape[-1] // 2)  # (N, 1, K, H, W)
    index, corner = bilinear_weights(rows.reshape(n, taps * length), cols.reshape(n, taps * length), h, w)
    corner = corner * mask.reshape(n, 1, taps * length)  # (N, 4, K*L)
    value = x.reshape(n, c, h * w).gather(2, index.reshape(n, 1, -1).expand(n, c, -1))  # (N, C, 4*K*L)
    columns = (value.view(n, c, 4, taps * length) * corner.unsqueeze(1)).sum(2)  # (N, C, K*L)
    columns = columns.view(n, c * taps, length)  # (N, C*K, L): the im2col matrix, channel-major as the weight
    return torch.matmul(weight.reshape(weight.shape[0], c * taps), columns).view(n, -1, h, w)


def inputs(size, device):
    """Input, weight, fractional offsets in [-2, 2) and masks in (0, 1), from a seeded generator."""
    import torch

    n, c, h, w = size
    g = torch.Generator().manual_seed(0)
    taps = KERNEL * KERNEL
    x = torch.rand(n, c, h, w, generator=g)
    weight = (torch.rand(c, c, KERNEL, KERNEL, generator=g) - 0.5) / (c * taps) ** 0.5
    offset = 4 * torch.rand(n, 2 * taps, h, w, generator=g) - 2
    mask = torch.rand(n, taps, h, w, generator=g)
    return [t.to(device) for t in (x, weight, offset, mask)]


def run(op, mode, x, weight, offset, mask):
    import torch
    import torch.nn.functional as F

    from srlib.models.deform_conv import deform_conv2d

    def forward():
        if op == "conv2d":
            return F.conv2d(x, weight, padding=KERNEL // 2)
        if op == "deform":
            return deform_conv2d(x, offset, weight, None, mask, padding=KERNEL // 2)
        return deform_conv2d_im2col(x, offset, weight, mask)

    if mode == "forward":
        with torch.no_grad():
            return forward()
    for t in [x, weight] if op == "conv2d" else [x, weight, offset, mask]:
        t.requires_grad_(True)
    forward().square().mean().backward()


def peak_memory(fn, device) -> int:
    """Bytes that ``fn()`` allocates above what is allocated when it starts, at its highest point."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):  # allocations (+) and frees (-)
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def measure(device, size, op, mode, repeat: int) -> dict:
    """Peak memory of one run, then the median time of ``repeat`` runs after two warm-ups."""
    import torch

    tensors = inputs(size, device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    def clear_grads():  # outside what is measured: the backward pass allocates fresh gradients every run
        for t in tensors:
            t.grad = None

    for _ in range(2):  # warm-up (CUDA context, kernels, caches) before anything is measured
        run(op, mode, *tensors)
    clear_grads()
    peak = peak_memory(lambda: run(op, mode, *tensors), device)
    times = []
    for _ in range(repeat):
        clear_grads()
        sync()
        start = time.perf_counter()
        run(op, mode, *tensors)
        sync()
        times.append(time.perf_counter() - start)
    return {"device": device.type, "size": list(size), "op": op, "mode": mode,
            "time_ms": 1e3 * statistics.median(times), "peak_mb": peak / 2**20}


def check(device) -> dict:
    """Sanity: zero offsets and unit masks give conv2d; the loop over taps equals the im2col variant."""
    import torch
    import torch.nn.functional as F

    from srlib.models.deform_conv import deform_conv2d

    x, weight, offset, mask = inputs((1, 8, 12, 12), device)
    plain = deform_conv2d(x, torch.zeros_like(offset), weight, None, torch.ones_like(mask), padding=1)
    loop = deform_conv2d(x, offset, weight, None, mask, padding=1)
    return {"vs_conv2d": (plain - F.conv2d(x, weight, padding=1)).abs().max().item(),
            "loop_vs_im2col": (loop - deform_conv2d_im2col(x, offset, weight, mask)).abs().max().item()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small size only")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: CPU, and CUDA too when present")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--json", action="store_true", help="print the checks and rows as one JSON object")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    devices = {"auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"],
               "cuda": ["cuda"]}[args.device]
    devices = [torch.device(d) for d in devices]
    checks = {d.type: check(d) for d in devices}
    rows = [measure(device, size, op, mode, args.repeat) for device in devices
            for size in (QUICK_SIZES if args.quick else SIZES) for mode in MODES for op in OPS]
    if args.json:
        print(json.dumps({"checks": checks, "rows": rows}, indent=1))
        return
    for device, result in checks.items():
        print(f"check on {device}: |deform(zero offsets) - conv2d| = {result['vs_conv2d']:.1e}, "
              f"|loop - im2col| = {result['loop_vs_im2col']:.1e}")
    header = (f"{'device':6} {'N x C x H x W':>15} {'mode':8} {'op':14} {'time ms':>9} {'x conv':>7} "
              f"{'peak MB':>8} {'x conv':>7}")
    print(header)
    print("-" * len(header))
    base = {(r["device"], tuple(r["size"]), r["mode"]): r for r in rows if r["op"] == "conv2d"}
    for r in rows:
        ref = base[(r["device"], tuple(r["size"]), r["mode"])]
        size = "x".join(map(str, r["size"]))
        mem_ratio = f"{r['peak_mb'] / ref['peak_mb']:7.1f}" if ref["peak_mb"] > 0.05 else f"{'-':>7}"
        print(f"{r['device']:6} {size:>15} {r['mode']:8} {r['op']:14} {r['time_ms']:9.2f} "
              f"{r['time_ms'] / ref['time_ms']:7.1f} {r['peak_mb']:8.1f} {mem_ratio}")
    print(f"CPU threads: {args.threads}; 3x3 kernel, C -> C channels, padding 1; peak = memory above the inputs")


if __name__ == "__main__":
    main()
