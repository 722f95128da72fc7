"""The coefficients of `R` in `pricing::scaled_tail`, printed as Rust literals.

`Q(a)·e^(a²/2) = t·R(y)` for `a ≥ 0`, `t = c/(c+a)`, `y = (c−a)/(c+a) = 2t − 1`:
`R` is interpolated at Chebyshev nodes in `y` (mpmath, 50 digits), truncated
to degree 22 and written in monomials of `y`. Needs mpmath:
`python rust/core/tests/oracle/tail_fit.py`.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50
C, DEGREE, NODES = mp.mpf("4.5"), 22, 70


def r_of_y(y: mp.mpf) -> mp.mpf:
    t = (y + 1) / 2
    if t == 0:  # a → ∞: Q(a)·e^(a²/2) ~ 1/(a√(2π)), and a·t → c
        return 1 / (mp.sqrt(2 * mp.pi) * C)
    a = C * (1 - t) / t
    return mp.erfc(a / mp.sqrt(2)) / 2 / t * mp.exp(a * a / 2)


def chebyshev() -> list[mp.mpf]:
    nodes = [mp.pi * (k + mp.mpf(1) / 2) / NODES for k in range(NODES)]
    values = [r_of_y(mp.cos(x)) for x in nodes]
    coef = [
        2 * mp.fsum(v * mp.cos(j * x) for v, x in zip(values, nodes, strict=True)) / NODES
        for j in range(NODES)
    ]
    coef[0] /= 2
    return coef[: DEGREE + 1]


def monomials(cheb: list[mp.mpf]) -> list[mp.mpf]:
    t = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]  # T_0, T_1 in powers of y
    while len(t) < len(cheb):
        a, b = [mp.mpf(0)] + [2 * x for x in t[-1]], t[-2]
        t.append([x - (b[i] if i < len(b) else 0) for i, x in enumerate(a)])
    out = [mp.mpf(0)] * len(cheb)
    for c, tn in zip(cheb, t, strict=True):
        for i, x in enumerate(tn):
            out[i] += c * x
    return out


if __name__ == "__main__":
    for x in monomials(chebyshev()):
        print(f"        {float(x)!r},")
