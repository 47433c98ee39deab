"""Execute every notebook of the book under a budget and report each one's wall time.

DESIGN budget: under SRLIB_BUDGET=cpu each notebook should take at most ~3 minutes on 2 CPU cores.

    python scripts/time_notebooks.py --budget cpu            # all notebooks in _toc.yml
    python scripts/time_notebooks.py --budget smoke book/01_sr_problem/metrics.ipynb
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CPU_LIMIT_S = 180


def toc_notebooks() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found: list[Path] = []

    def walk(entries):
        for e in entries:
            if "file" in e and (ROOT / f"{e['file']}.ipynb").exists():
                found.append(ROOT / f"{e['file']}.ipynb")
            walk(e.get("sections", []))
            walk(e.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    return found


def run(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--budget", default="cpu", choices=["smoke", "cpu", "gpu"])
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ["SRLIB_BUDGET"] = args.budget
    notebooks = [n.resolve() for n in args.notebooks] or toc_notebooks()
    rows = []
    for nb in notebooks:
        seconds = run(nb, args.timeout)
        rows.append({"notebook": str(nb.relative_to(ROOT)), "seconds": round(seconds, 1)})
        if not args.json:
            flag = "  OVER the cpu budget" if args.budget == "cpu" and seconds > CPU_LIMIT_S else ""
            print(f"{rows[-1]['notebook']:<55} {seconds:7.1f} s{flag}", flush=True)
    total = sum(r["seconds"] for r in rows)
    if args.json:
        print(json.dumps({"budget": args.budget, "cores": os.cpu_count(), "notebooks": rows, "total_s": round(total, 1)}, indent=2))
    else:
        print(f"{'total':<55} {total:7.1f} s  (budget {args.budget}, {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
