"""Feature-space patch matching and texture swapping (srlib.texture_match): naive vs vectorised vs chunked.

What SRNTT and TTSR do for every input, timed on random features of the sizes they see. An LR
input of side ``s`` and a reference of side ``S`` give, at VGG19 relu3_1, a query map of 256 x s x s
(the 4x-upsampled input at 1/4) and a key map of 256 x S/4 x S/4; the swap then fills three levels
from value maps of 256 x S/4, 128 x S/2 and 64 x S (relu3_1, relu2_1, relu1_1). TTSR's settings
(3x3 patches, padding 1, folds divided by 9); ``--padding 0`` for SRNTT's 'VALID' matching.

Two measurements per method and size:

* ``match``: :func:`srlib.texture_match.match_patches` (arg max and similarity map);
* ``swap``: :func:`srlib.texture_match.swap_features` of the three value maps.

Time is the median of ``--repeat`` runs (fewer when one run takes over 10 s) after a warm-up on a
small input. Peak memory is what the operation allocates above its inputs at its highest point, as
``scripts/bench_deform_conv.py`` measures it (whose function this script uses): on CUDA
``torch.cuda.max_memory_allocated``; on CPU the allocations and frees ``torch.profiler`` records,
replayed in time order. A method is skipped, with the reason, where it would not finish in
reasonable time (``naive``: more than 2**22 query x reference patch pairs) or would need more than
``--max-gb`` of memory (``vectorised``: the (query x reference) correlation volume alone is 1 GB at
128 x 128 vs 512 x 512). Indices and swapped maps of the methods that ran are compared, and the
largest difference is printed.

Usage:
    python scripts/bench_texture_match.py               # LR 32/64/128 vs reference 128/256/512 (minutes on CPU)
    python scripts/bench_texture_match.py --quick       # LR 16 vs reference 64, a few seconds
    python scripts/bench_texture_match.py --device cuda --json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

SIZES = [(32, 128), (64, 256), (128, 512)]  # (LR side, reference side) in pixels
QUICK_SIZES = [(16, 64)]
METHODS = ("naive", "vectorised", "chunked")
CHANNELS = (256, 128, 64)  # relu3_1, relu2_1, relu1_1
NAIVE_MAX_PAIRS = 1 << 22  # query positions x reference patches beyond which the Python loops are skipped
LONG_RUN_S = 10.0  # a run longer than this is not repeated


def inputs(lr_side: int, ref_side: int, device):
    """Query (N=1, 256, s, s), key (1, 256, S/4, S/4) and the three value maps, from a seeded generator."""
    import torch

    g = torch.Generator().manual_seed(0)
    key_side = ref_side // 4
    query = torch.rand(1, CHANNELS[0], lr_side, lr_side, generator=g)
    key = torch.rand(1, CHANNELS[0], key_side, key_side, generator=g)
    values = [torch.rand(1, c, key_side * r, key_side * r, generator=g) for c, r in zip(CHANNELS, (1, 2, 4))]
    return [t.to(device) for t in (query, key, *values)]


def estimate(lr_side: int, ref_side: int, method: str, padding: int, max_gb: float) -> str | None:
    """Why ``method`` is skipped at this size, or None."""
    grid = lambda side: side + 2 * padding - 2  # noqa: E731  (3x3 patch grid)
    pairs = grid(lr_side) ** 2 * grid(ref_side // 4) ** 2
    if method == "naive" and pairs > NAIVE_MAX_PAIRS:
        return f"{pairs:,} patch pairs in Python loops"
    if method == "vectorised":
        unfolded_relu1 = CHANNELS[2] * 144 * grid(ref_side // 4) ** 2  # 12x12 patches of every reference position
        gb = 4 * (pairs + 2 * unfolded_relu1) / 2 ** 30
        if gb > max_gb:
            return f"needs about {gb:.1f} GB (> --max-gb {max_gb:g})"
    return None


def run(kind: str, method: str, padding: int, tensors, match=None):
    import torch

    from srlib.texture_match import match_patches, swap_features

    query, key, *values = tensors
    with torch.no_grad():
        if kind == "match":
            return match_patches(query, key, 3, padding, method=method)
        return [swap_features(v, match, divisor=9.0, method=method) for v in values]


def timed(fn, device, repeat: int):
    """Median seconds of up to ``repeat`` runs of ``fn`` (one, if it is long), and its last result."""
    import torch

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
        if times[-1] > LONG_RUN_S:
            break
    return statistics.median(times), result


def measure(device, lr_side: int, ref_side: int, padding: int, repeat: int, max_gb: float) -> tuple[list, dict]:
    """Rows for every method at one size, and the agreement between the methods that ran."""
    from bench_deform_conv import peak_memory  # same folder: one way to measure peak memory for both benches

    tensors = inputs(lr_side, ref_side, device)
    rows, results = [], {}
    for method in METHODS:
        row = {"device": device.type, "lr": lr_side, "ref": ref_side, "method": method}
        skip = estimate(lr_side, ref_side, method, padding, max_gb)
        if skip:
            rows.append({**row, "skipped": skip})
            continue
        seconds, match = timed(lambda: run("match", method, padding, tensors), device, repeat)
        row["match_ms"] = 1e3 * seconds
        row["match_mb"] = peak_memory(lambda: run("match", method, padding, tensors), device) / 2 ** 20
        seconds, swap = timed(lambda: run("swap", method, padding, tensors, match), device, repeat)
        row["swap_ms"] = 1e3 * seconds
        row["swap_mb"] = peak_memory(lambda: run("swap", method, padding, tensors, match), device) / 2 ** 20
        rows.append(row)
        results[method] = (match, swap)
    agreement = {}
    base_match, base_swap = results["chunked"]
    for method, (match, swap) in results.items():
        if method != "chunked":
            agreement[f"{method}_vs_chunked"] = {
                "same_indices": bool((match.index == base_match.index).all()),
                "max_swap_diff": max((a - b).abs().max().item() for a, b in zip(swap, base_swap))}
    return rows, agreement


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small size only")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: CPU, and CUDA too when present")
    parser.add_argument("--padding", type=int, choices=[0, 1], default=1, help="1: TTSR (default); 0: SRNTT")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--max-gb", type=float, default=4.0, help="skip the vectorised method above this estimate")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--json", action="store_true", help="print the rows and checks as one JSON object")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    devices = {"auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"],
               "cuda": ["cuda"]}[args.device]
    rows, checks = [], {}
    for device in map(torch.device, devices):
        warm = inputs(8, 32, device)
        for method in METHODS:  # kernels, caches, CUDA context: nothing of this is measured
            run("swap", method, args.padding, warm, run("match", method, args.padding, warm))
        for lr_side, ref_side in QUICK_SIZES if args.quick else SIZES:
            size_rows, agreement = measure(device, lr_side, ref_side, args.padding, args.repeat, args.max_gb)
            rows += size_rows
            checks[f"{device.type} {lr_side}/{ref_side}"] = agreement
    if args.json:
        print(json.dumps({"padding": args.padding, "threads": args.threads, "rows": rows, "checks": checks}, indent=1))
        return
    header = (f"{'device':6} {'LR':>4} {'ref':>4} {'method':11} {'match ms':>10} {'match MB':>9} "
              f"{'swap ms':>9} {'swap MB':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        head = f"{r['device']:6} {r['lr']:4} {r['ref']:4} {r['method']:11}"
        if "skipped" in r:
            print(f"{head} skipped: {r['skipped']}")
        else:
            print(f"{head} {r['match_ms']:10.1f} {r['match_mb']:9.1f} {r['swap_ms']:9.1f} {r['swap_mb']:8.1f}")
    for size, agreement in checks.items():
        for pair, result in agreement.items():
            print(f"check {size} {pair}: same indices {result['same_indices']}, "
                  f"max |swap difference| {result['max_swap_diff']:.1e}")
    print(f"CPU threads: {args.threads}; 256-channel relu3_1 matching, 3x3 patches, padding {args.padding}; "
          "swap of relu3_1/2_1/1_1 (256/128/64 channels); peak = memory above the inputs")


if __name__ == "__main__":
    main()
