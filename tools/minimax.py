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
  tanh  tanh x = x P(s) / Q(s),           s = x^2, x in [0, 9.02], Q monic (f32 only)
(sigmoid, and tanh for f64, are built on exp's pieces and have no table of their own.)
"""

import struct

import mpmath as mp
import numpy as np

mp.mp.dps = 50
GRID = 3000


def alternating_extrema(e, k):
    """The indices of k consecutive extrema of the errors e, one per run of equal sign, among
    them the largest; None if e changes sign fewer than k - 1 times."""
    runs = []
    for j, v in enumerate(e):
        sign = v >= 0
        if runs and runs[-1][0] == sign:
            if abs(v) > abs(e[runs[-1][1]]):
                runs[-1][1] = j
        else:
            runs.append([sign, j])
    while len(runs) > k:
        if abs(e[runs[0][1]]) < abs(e[runs[-1][1]]):
            runs.pop(0)
        else:
            runs.pop()
    return [j for _, j in runs] if len(runs) == k else None


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
        extrema = alternating_extrema(e, n + 1)
        new_err = max(abs(v) for v in e)
        if extrema is None:
            return c, new_err
        pts = [grid[k] for k in extrema]
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


def remez_rational(g, a, b, m, n, iters=40):
    """Minimizes the relative error max |(x P(x^2) / Q(x^2) - g(x)) / g(x)| over [a, b], with P
    of degree m and Q of degree n in s = x^2 and P(0) = Q(0) = 1 (so g(x) ~ x near 0).
    Linearized Remez: at each reference, solve x P - g Q = (-1)^i E g Q_prev for P, Q and E,
    then move the reference to the extrema of the error. Returns (p, q, error)."""
    k = m + n + 1
    pts = [a + (b - a) * (1 - mp.cos(mp.pi * (i + 0.5) / k)) / 2 for i in range(k)]
    grid = [a + (b - a) * (1 - mp.cos(mp.pi * i / GRID)) / 2 for i in range(1, GRID + 1)]
    gv = [g(x) for x in grid]
    qprev = lambda x: mp.mpf(1)
    p = q = None
    err = None
    for _ in range(iters):
        rows, rhs = [], []
        for i, x in enumerate(pts):
            s, gx = x * x, g(x)
            rows.append([x * s**j for j in range(1, m + 1)] + [-gx * s**j for j in range(1, n + 1)]
                        + [-((-1) ** i) * gx * qprev(x)])
            rhs.append(gx - x)
        sol = mp.lu_solve(mp.matrix(rows), mp.matrix(rhs))
        p = [mp.mpf(1)] + [sol[j] for j in range(m)]
        q = [mp.mpf(1)] + [sol[m + j] for j in range(n)]
        qprev = lambda x, q=q: mp.polyval(q[::-1], x * x)
        e = [(x * mp.polyval(p[::-1], x * x) / qprev(x) - gx) / gx for x, gx in zip(grid, gv)]
        extrema = alternating_extrema(e, k)
        new_err = max(abs(v) for v in e)
        if extrema is None:
            return p, q, new_err
        pts = [grid[j] for j in extrema]
        if err is not None and abs(new_err - err) < err * mp.mpf("1e-6"):
            return p, q, new_err
        err = new_err
    return p, q, err


def fit_tanh():
    """Fits the f32 tanh's P and Q (degree 4 each) on [0, 9.02], a little past 9.0109, where
    tanh rounds to 1 in f32, scales both to make Q monic (so the kernel's first step of Q is an
    add), and prints them with the relative error of the rounded sets."""
    end = mp.mpf("9.02")
    p, q, e = remez_rational(mp.tanh, mp.mpf(0), end, 4, 4)
    pr, qr = [f32(v / q[-1]) for v in p], [f32(v / q[-1]) for v in q]
    xs = [end * mp.mpf(i) / 20000 for i in range(1, 20001)]
    er = max(abs(x * mp.polyval(pr[::-1], x * x) / mp.polyval(qr[::-1], x * x) / mp.tanh(x) - 1)
             for x in xs)
    unit = mp.mpf(2) ** -24
    print(f"// TANH f32: minimax error {mp.nstr(e / unit, 3)} units, "
          f"rounded {mp.nstr(er / unit, 3)} units of 2^-24")
    for name, c in (("TANH_P", pr), ("TANH_Q", qr)):
        print(f"{name} = [{', '.join(str(np.float32(float(v))) for v in c)}]")


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

    fit_tanh()


if __name__ == "__main__":
    main()
