"""Markdown table of one pytest-benchmark run: every group, every implementation side by side.

    python benches/table.py .benchmarks/latest.json                    # print the table
    python benches/table.py .benchmarks/latest.json --readme README.md  # and put it in README

Ratios are medians of the same run ("numpy / rust = 125x"); ops/s is 1 / median. The README
section between `<!-- bench:start -->` and `<!-- bench:end -->` is replaced, markers kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from readme import rewrite

ORDER = ("rust", "rust-cold", "numpy", "reference")
NOTES = {
    "per-account": "`book-10k-options`: time per account (a pass over 10,000 accounts for Rust, "
    "over the first 100 for NumPy and the reference, divided by the accounts margined).",
    "rust-cold": "`rust-cold`: the Market's option series cache cleared before every call, so "
    "the call prices every option (NumPy and the reference always do).",
}


def implementation(bench: dict[str, Any]) -> str:
    extra = bench.get("extra_info") or {}
    return str(extra.get("implementation") or bench.get("param") or bench["name"])


def median(bench: dict[str, Any]) -> float:
    """Median seconds per call, or per account for a benchmark that margins many."""
    accounts = (bench.get("extra_info") or {}).get("accounts") or 1
    return bench["stats"]["median"] / accounts


def cpu_info() -> tuple[str | None, int | None, str | None]:
    """CPU model, logical core count and widest vector unit the kernels use
    (AVX-512, AVX2 or SSE2: the option lanes run twice as wide on AVX-512)
    from /proc/cpuinfo (None where it is unavailable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, None, None
    lines = text.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)
    cores = sum(1 for ln in lines if ln.startswith("processor"))
    flags = next(
        (set(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")), set()
    )
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE2"
    return model, cores or None, simd if flags else None


def machine_line(data: dict[str, Any]) -> str:
    """Platform, CPU, cores, Python and the date of the run."""
    info = data.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    if info.get("system"):
        plat = f"{info['system']} {info.get('release', '')} {info.get('machine', '')}".strip()
    else:
        plat = platform.platform()
    model, cores, simd = None, None, None
    if info.get("node") in (None, platform.node()):  # the run was on this machine
        model, cores, simd = cpu_info()
    model = model or cpu.get("brand_raw") or platform.processor() or "unknown CPU"
    cores = cores or cpu.get("count") or os.cpu_count()
    python = info.get("python_implementation", "Python"), info.get("python_version", "")
    when = data.get("datetime")
    date = (
        datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
        if when
        else datetime.now().strftime("%Y-%m-%d")
    )
    version = data.get("version")
    tool = f", pytest-benchmark {version}" if version else ""
    lanes = f", {simd}" if simd else ""
    return f"{plat}; {model}, {cores} cores{lanes}; {' '.join(python).strip()}{tool}; {date}"


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 1000 else f"{us:.1f}" if us >= 100 else f"{us:.2f}"


def fmt_ratio(r: float) -> str:
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×"


def table(data: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in data.get("benchmarks", []):
        groups.setdefault(b.get("group") or b["name"], []).append(b)
    rank = {name: i for i, name in enumerate(ORDER)}
    lines = [
        "| group | implementation | median (µs) | ops/s (1/median) | vs rust |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    notes = []
    for group, benches in groups.items():
        benches.sort(key=lambda b: (rank.get(implementation(b), len(ORDER)), implementation(b)))
        base = next((b for b in benches if implementation(b) == "rust"), None)
        cold = next((b for b in benches if implementation(b) == "rust-cold"), None)
        for b in benches:
            impl = implementation(b)
            med = median(b)
            if base is None:
                ratio = "n/a"
            elif b is base:
                ratio = "1×"
            else:
                ratio = f"{impl} / rust = {fmt_ratio(med / median(base))}"
                if cold is not None and b is not cold:
                    ratio += f" (/ rust-cold = {fmt_ratio(med / median(cold))})"
            ops = f"{1.0 / med:,.0f}"
            lines.append(f"| {group} | {impl} | {fmt_us(med)} | {ops} | {ratio} |")
            if (b.get("extra_info") or {}).get("accounts") and NOTES["per-account"] not in notes:
                notes.append(NOTES["per-account"])
            if impl in NOTES and NOTES[impl] not in notes:
                notes.append(NOTES[impl])
    out = [f"Machine: {machine_line(data)}", "", *lines]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path, help="pytest-benchmark JSON (--benchmark-json)")
    ap.add_argument("--readme", type=Path, help="rewrite this file's bench section")
    args = ap.parse_args(argv)
    data = json.loads(args.json.read_text())
    if not data.get("benchmarks"):
        print(f"{args.json}: no benchmarks", file=sys.stderr)
        return 1
    block = table(data)
    print(block)
    if args.readme:
        changed = rewrite(args.readme, "bench", block)
        print(f"\n{args.readme}: {'updated' if changed else 'unchanged'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
