"""Black-76 values and deltas to 40 digits, the oracle of tests/pricing_oracle.rs.

Each case is exact binary64 inputs (kind, forward f, strike k, vol sigma, tau
years) and the exact Black-76 value and delta of those inputs (mpmath at 60
significant digits, `sqrt(tau)` and `ln(f/k)` included), rounded once to
binary64. Regenerate with `python rust/core/tests/oracle/black76.py` (needs
mpmath); the cases are deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import mpmath as mp

mp.mp.dps = 60


def black76(kind: str, f: float, k: float, sigma: float, tau: float) -> tuple[float, float]:
    ff, kk, sd = mp.mpf(f), mp.mpf(k), mp.mpf(sigma) * mp.sqrt(mp.mpf(tau))
    d1 = (mp.log(ff / kk) + sd * sd / 2) / sd
    d2 = d1 - sd
    if kind == "call":
        return float(ff * mp.ncdf(d1) - kk * mp.ncdf(d2)), float(mp.ncdf(d1))
    return float(kk * mp.ncdf(-d2) - ff * mp.ncdf(-d1)), float(-mp.ncdf(-d1))


def cases() -> list[dict]:
    rnd = random.Random(15)
    k = 60_000.0
    moneyness = [1.0, 1.0 + 2**-40, 1.0 - 2**-40]
    moneyness += [10 ** rnd.uniform(-3, 3) for _ in range(40)]
    moneyness += [1.0 + rnd.uniform(-0.3, 0.3) for _ in range(20)]
    # Seconds to thirty years; the last: a deviation a little above the floor 1e-12.
    taus = [1.0 / (365 * 86400), 1e-6, 1e-4, 1 / 365, 0.02, 0.08, 0.25, 1.0, 5.0, 30.0]
    vols = [0.05, 0.035, 0.2, 0.5, 0.8, 1.5, 3.0, 10.0, 1e-3]
    out = []
    for m in moneyness:
        for tau in taus:
            for sigma in rnd.sample(vols, 3):
                for kind in ("call", "put"):
                    f = m * k
                    value, delta = black76(kind, f, k, sigma, tau)
                    out.append(
                        {
                            "kind": kind,
                            "f": f,
                            "k": k,
                            "sigma": sigma,
                            "tau": tau,
                            "value": value,
                            "delta": delta,
                        }
                    )
    # σ√τ down to just above the floor where the pricer switches to intrinsic value.
    for sd in (2e-12, 1e-10, 1e-8, 1e-6):
        for m in (1.0, 1.0 + 1e-12, 1.0 - 1e-9, 1.001, 0.999):
            for kind in ("call", "put"):
                value, delta = black76(kind, m * k, k, sd, 1.0)
                out.append(
                    {
                        "kind": kind,
                        "f": m * k,
                        "k": k,
                        "sigma": sd,
                        "tau": 1.0,
                        "value": value,
                        "delta": delta,
                    }
                )
    return out


if __name__ == "__main__":
    path = Path(__file__).with_suffix(".json")
    rows = cases()
    path.write_text(
        "[\n" + ",\n".join(json.dumps(c, separators=(",", ":")) for c in rows) + "\n]\n"
    )
    print(f"{path}: {len(rows)} cases")
