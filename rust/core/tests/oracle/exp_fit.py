"""The coefficients of the exponential's polynomial in `pricing::exp_neg_sum`, printed as Rust literals.

`e^r = 1 + r + r²/2 + r³·T(r)` for `|r| ≤ ln2/2`, `T` of degree 8 (`e^r` of
degree 11): `T` of least maximum relative error of `e^r` (weight `r³/e^r`, see below),
found by Remez's exchange on the linear problem, in mpmath at 50 digits. The
Taylor polynomial needs degree 13 for the same accuracy. The weight leaves
out `r³`, which vanishes at 0 (the exchange needs a weight that does not):
`T` levels `(T − tail)/e^r`, and `e^r`'s error is `r³` times that. The literals are the
fitted coefficients rounded once; the script prints the worst relative error
of `e^r` from the rounded coefficients (exact arithmetic), which is far below
the half ulp that rounding the result adds. Needs mpmath:
`python rust/core/tests/oracle/exp_fit.py`.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50
DEGREE, ROUNDS, GRID = 8, 12, 4000
R = mp.log(2) / 2


def tail(r: mp.mpf) -> mp.mpf:
    """`(e^r − 1 − r − r²/2)/r³`, by its series near 0."""
    if abs(r) < mp.mpf("1e-8"):
        return mp.mpf(1) / 6 + r / 24 + r * r / 120
    return (mp.exp(r) - 1 - r - r * r / 2) / r**3


def error(c: list[mp.mpf], r: mp.mpf) -> mp.mpf:
    """Relative error of `e^r` with `T` of coefficients `c`."""
    return (1 + r + r * r / 2 + r**3 * mp.polyval(c[::-1], r)) / mp.exp(r) - 1


def fit() -> list[mp.mpf]:
    """Remez's exchange: `T` levelling the weighted error on `DEGREE + 2` points."""
    n = DEGREE + 2
    xs = [-R * mp.cos(mp.pi * k / (n - 1)) for k in range(n)]
    dense = [-R + 2 * R * k / GRID for k in range(GRID + 1)]
    for _ in range(ROUNDS):
        # (T(x) − tail(x))/e^x = (−1)^k·E at each point: linear in T's coefficients and E.
        rows, rhs = [], []
        for k, x in enumerate(xs):
            w = 1 / mp.exp(x)
            rows.append([w * x**j for j in range(DEGREE + 1)] + [-((-1) ** k)])
            rhs.append(w * tail(x))
        sol = mp.lu_solve(mp.matrix(rows), mp.matrix(rhs))
        c = [sol[j] for j in range(DEGREE + 1)]
        # New points: the extremum of the error in each run of one sign.
        errs = [(mp.polyval(c[::-1], x) - tail(x)) / mp.exp(x) for x in dense]
        runs, start = [], 0
        for k in range(1, len(dense) + 1):
            if k == len(dense) or mp.sign(errs[k]) != mp.sign(errs[start]):
                best = max(range(start, k), key=lambda i: abs(errs[i]))
                runs.append(best)
                start = k
        if len(runs) >= n:
            # Keep the n largest, adjacent runs alternate in sign.
            while len(runs) > n:
                drop = runs[0] if abs(errs[runs[0]]) < abs(errs[runs[-1]]) else runs[-1]
                runs.remove(drop)
            xs = [dense[i] for i in runs]
    return c


def main() -> None:
    c = fit()
    rounded = [mp.mpf(float(x)) for x in c]
    worst = max(abs(error(rounded, -R + 2 * R * k / 20000)) for k in range(20001))
    print("// T(r) coefficients, r^0 .. r^%d (1/n! for n = 3 .. %d, fitted):" % (DEGREE, DEGREE + 3))
    for x in rounded:
        print(f"    {float(x)!r},")
    print(f"// worst relative error of e^r (exact arithmetic): {mp.nstr(worst, 3)}")


if __name__ == "__main__":
    main()
