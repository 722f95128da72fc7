"""The coefficients of `P` and `D` in `pricing::scaled_tail`, printed as Rust literals.

`Q(a)·e^(a²/2) ≈ P(a)/D(a)` for `0 ≤ a ≤ 40` (`Q` the standard normal upper
tail), `P` of degree 9 and `D` of degree 10 (the Mills ratio falls as `1/a`),
`D(0) = 1`: the rational function
of least weighted squares relative error on 500 points, Chebyshev nodes in
`y = (c−a)/(c+a)` (`c = 4.5`, dense where the function bends), found by
linearised least squares reweighted by the last denominator (Loeb's
iteration), in mpmath at 50 digits. The polynomials are fitted in `u = a/8`
for conditioning and printed in powers of `a`: dividing by `8^k` is exact, so
the literals are the fitted coefficients rounded once. All come out positive,
so evaluating them adds no cancellation. Prints the fit's worst relative
error. Needs mpmath: `python rust/core/tests/oracle/tail_fit.py`.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50
NUMERATOR, DENOMINATOR, POINTS, ROUNDS = 9, 10, 500, 10
A_MAX, C, SCALE = mp.mpf(40), mp.mpf("4.5"), mp.mpf(8)


def mills(a: mp.mpf) -> mp.mpf:
    """`Q(a)·e^(a²/2)`, `Q` the standard normal upper tail."""
    return mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


def points() -> list[mp.mpf]:
    y_min = (C - A_MAX) / (C + A_MAX)
    ys = [
        (mp.cos(mp.pi * (k + mp.mpf(1) / 2) / POINTS) + 1) / 2 * (1 - y_min) + y_min
        for k in range(POINTS)
    ]
    return [C * (1 - y) / (1 + y) for y in ys] + [mp.mpf(0), A_MAX]


def fit() -> tuple[list[mp.mpf], list[mp.mpf], mp.mpf]:
    """`P` and `D` in powers of `u = a/8`, and the worst relative error."""
    us = [a / SCALE for a in points()]
    fs = [mills(u * SCALE) for u in us]
    weights = [1 / f for f in fs]
    m, n = NUMERATOR, DENOMINATOR
    for _ in range(ROUNDS):
        rows = [
            [w * u**j for j in range(m + 1)] + [-w * f * u**j for j in range(1, n + 1)]
            for u, f, w in zip(us, fs, weights, strict=True)
        ]
        rhs = [w * f for f, w in zip(fs, weights, strict=True)]
        x, _ = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))
        p = [x[j] for j in range(m + 1)]
        q = [mp.mpf(1)] + [x[m + j] for j in range(1, n + 1)]
        worst = mp.mpf(0)
        for k, (u, f) in enumerate(zip(us, fs, strict=True)):
            den = mp.polyval(q[::-1], u)
            worst = max(worst, abs(mp.polyval(p[::-1], u) / den / f - 1))
            weights[k] = 1 / (f * den)
    return p, q, worst


if __name__ == "__main__":
    p, q, worst = fit()
    for name, coef in (("P", p), ("D", q)):
        print(f"    const {name}: [f64; {len(coef)}] = [")
        for k, x in enumerate(coef):
            print(f"        {float(x) / 8**k!r},")
        print("    ];")
    print(f"// worst relative error of the fit: {mp.nstr(worst, 3)}")
