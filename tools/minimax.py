#!/usr/bin/env python3
"""Derives the polynomial coefficients of compiler/src/codegen/math/ (docs/math.md).

Each approximation is a weighted minimax fit found by the Remez exchange algorithm in
50-digit arithmetic (mpmath), then rounded to the target precision. The weight makes the
error relative to the function the kernel finally returns; the printed error is that relative
error in units of 2^-24 (f32) or 2^-53 (f64), before the kernel's own roundings.

    python3 tools/minimax.py            # prints every table as Rust literals

The fitted forms (x is the reduced argument):
  exp   e^r = 1 + r + r^2 Q(r),          r in [-ln2/2, ln2/2] (widened a little)
  log   log1p(f) = f - s (f - z Q(z)),   s = f / (2 + f), z = s^2, z in [0, (3 - 2 sqrt 2)^2]
(tanh and sigmoid are built on exp's pieces and have no table of their own.)
"""

import struct

import mpmath as mp
import numpy as np

mp.mp.dps = 50
GRID = 3000


def remez(g, w, a, b, n, iters=30):
    """Minimizes max |w(x) (g(x) - sum c_j x^j)| over [a, b], j < n. Returns (c, error)."""
    # Initial reference: Chebyshev extrema, moved off a point where the weight vanishes.
    pts = [a + (b - a) * (1 - mp.cos(mp.pi * (i + 0.5) / (n + 1))) / 2 for i in range(n + 1)]
    pts = [x + (b - a) / 1000 if abs(w(x)) < mp.mpf(10) ** -20 else x for x in pts]
    grid = [a + (b - a) * (1 - mp.cos(mp.pi * i / GRID)) / 2 for i in range(GRID + 1)]
    grid = [x for x in grid if abs(w(x)) > mp.mpf(10) ** -30]
    gv = [g(x) for x in grid]
    wv = [w(x) for x in grid]
    err = None
    for _ in range(iters):
        rows = [[x**j for j in range(n)] + [(-1) ** i / w(x)] for i, x in enumerate(pts)]
        sol = mp.lu_solve(mp.matrix(rows), mp.matrix([g(x) for x in pts]))
        c = [sol[j] for j in range(n)]
        e = [wv[k] * (gv[k] - mp.polyval(c[::-1], x)) for k, x in enumerate(grid)]
        # One extremum per run of equal sign.
        runs = []
        for k in range(len(grid)):
            s = e[k] >= 0
            if runs and runs[-1][0] == s:
                if abs(e[k]) > abs(e[runs[-1][1]]):
                    runs[-1][1] = k
            else:
                runs.append([s, k])
        # Keep n + 1 consecutive runs holding the largest extremum.
        while len(runs) > n + 1:
            if abs(e[runs[0][1]]) < abs(e[runs[-1][1]]):
                runs.pop(0)
            else:
                runs.pop()
        new_err = max(abs(v) for v in e)
        if len(runs) < n + 1:
            return c, new_err
        pts = [grid[k] for _, k in runs]
        if err is not None and abs(new_err - err) < err * mp.mpf("1e-6"):
            err = new_err
            break
        err = new_err
    return c, err


def rounded_error(g, w, a, b, c):
    """Max weighted error of the coefficients c exactly as given."""
    xs = [a + (b - a) * mp.mpf(i) / 20000 for i in range(20001)]
    return max(abs(w(x) * (g(x) - mp.polyval(c[::-1], x))) for x in xs if w(x) != 0)


def f32(x):
    """x rounded to the nearest f32."""
    return mp.mpf(struct.unpack("f", struct.pack("f", float(x)))[0])


def f64(x):
    """x rounded to the nearest f64."""
    return mp.mpf(float(x))


def fit(name, g, w, a, b, degrees):
    """Fits g with weight w on [a, b] with degrees[0] f32 and degrees[1] f64 coefficients."""
    precisions = (
        ("f32", f32, mp.mpf(2) ** -24, degrees[0]),
        ("f64", f64, mp.mpf(2) ** -53, degrees[1]),
    )
    for prec, rnd, unit, n in precisions:
        c, e = remez(g, w, a, b, n)
        cr = [rnd(v) for v in c]
        er = rounded_error(g, w, a, b, cr)
        print(f"// {name} {prec}: {n} coefficients, minimax error {mp.nstr(e / unit, 3)} units, "
              f"rounded {mp.nstr(er / unit, 3)} units of 2^{-24 if prec == 'f32' else -53}")
        # Both print the shortest decimal that reads back as the same number.
        if prec == "f32":
            lits = [str(np.float32(float(v))) for v in cr]
        else:
            lits = [repr(float(v)) for v in cr]
        print(f"{name}_{prec.upper()} = [{', '.join(lits)}]")


def main():
    """Prints every coefficient table with its error."""
    half_ln2 = mp.log(2) / 2 * mp.mpf("1.01")

    def exp_q(r):
        return (mp.exp(r) - 1 - r) / r**2 if r != 0 else mp.mpf(1) / 2

    fit("EXP", exp_q, lambda r: r**2 / mp.exp(r), -half_ln2, half_ln2, (5, 10))

    zmax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * mp.mpf("1.01")

    def log_q(z):
        s = mp.sqrt(z)
        return (2 * mp.atanh(s) / s - 2) / z if z != 0 else mp.mpf(2) / 3

    def log_w(z):
        s = mp.sqrt(z)
        return z * s / (2 * mp.atanh(s)) if z != 0 else mp.mpf(0)

    fit("LOG", log_q, log_w, mp.mpf(0), zmax, (3, 7))


if __name__ == "__main__":
    main()
