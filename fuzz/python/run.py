"""Run the Python fuzz targets for a time: ``python fuzz/python/run.py --seconds 60``.

Modes: ``random`` (seeded random inputs, the surfaces taking turns of equal time,
several processes) and ``atheris`` (coverage-guided on the Python code, one surface per
process; needs the atheris package). Prints the inputs run per surface and every
finding, saves each finding's input under ``--artifacts`` and exits 1 if any.
Re-run one input: ``python fuzz/python/run.py --replay FILE``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

HANG_SECONDS = 120  # one input running longer than this is a hang
# The surfaces take turns of this many seconds, so each gets the same time (not the
# same count: a command-line input costs some fifty times a portfolio's).
TURN_SECONDS = 2.0


def _hung(*_: object) -> None:
    raise TimeoutError(f"one input ran {HANG_SECONDS} s: a hang")


def run_random(seed: int, seconds: float, surfaces: list[str], artifacts: str) -> dict:
    rnd = random.Random(seed)
    counts = dict.fromkeys(surfaces, 0)
    findings: list[str] = []
    signal.signal(signal.SIGALRM, _hung)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for surface in surfaces:
            turn_end = min(end, time.monotonic() + TURN_SECONDS)
            while True:
                data = harness.random_input(rnd, rnd.choice([8, 32, 64, 128]))
                signal.alarm(HANG_SECONDS)
                try:
                    harness.TARGETS[surface](data)
                except Exception as e:  # a finding, a hang, or a bug of the harness: all reported
                    path = harness.save(Path(artifacts), surface, data, e)
                    findings.append(f"{surface}: {str(e)[:300]} ({path})")
                finally:
                    signal.alarm(0)
                counts[surface] += 1
                if time.monotonic() >= turn_end:
                    break
    return {"counts": counts, "findings": findings}


def run_atheris(surface: str, seconds: float, artifacts: str) -> None:
    import atheris  # type: ignore[import-not-found]

    count = [0]

    def one(data: bytes) -> None:
        count[0] += 1
        try:
            harness.TARGETS[surface](data)
        except harness.Finding as e:
            harness.save(Path(artifacts), surface, data, e)
            raise

    sys.argv = [sys.argv[0], f"-max_total_time={int(seconds)}", "-rss_limit_mb=4096"]
    atheris.Setup(sys.argv, one)
    try:
        atheris.Fuzz()
    finally:
        print(json.dumps({"surface": surface, "inputs": count[0]}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--surfaces", default=",".join(harness.TARGETS))
    ap.add_argument("--mode", choices=("random", "atheris"), default="random")
    ap.add_argument("--workers", type=int, default=max(1, multiprocessing.cpu_count()))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--artifacts", default="fuzz/artifacts/python")
    ap.add_argument("--replay", help="run one saved input (its surface is in its name)")
    args = ap.parse_args()
    if args.replay:
        surface = Path(args.replay).name.split("-")[0]
        harness.TARGETS[surface](Path(args.replay).read_bytes())
        print("no finding")
        return 0
    surfaces = args.surfaces.split(",")
    if args.mode == "atheris":
        run_atheris(surfaces[0], args.seconds, args.artifacts)
        return 0
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        jobs = [
            (args.seed + w, args.seconds, surfaces, args.artifacts) for w in range(args.workers)
        ]
        results = pool.starmap(run_random, jobs)
    counts = {s: sum(r["counts"][s] for r in results) for s in surfaces}
    findings = [f for r in results for f in r["findings"]]
    print(
        json.dumps(
            {
                "seed": args.seed,
                "seconds": args.seconds,
                "inputs": counts,
                "total": sum(counts.values()),
                "findings": len(findings),
            },
            indent=2,
        )
    )
    for f in findings:
        print("FINDING", f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
