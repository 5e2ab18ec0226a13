#!/usr/bin/env python3
"""Fits the polynomials behind dlc's vectorised erf/erfc (crates/dlc-codegen/src/emit/math.rs).

Pure Python (no numpy): Chebyshev interpolation at Chebyshev nodes, converted to
monomials in the variable the kernel evaluates, then checked by simulating the
f32 Horner evaluation against math.erf / math.erfc in double precision.

  small: erf(x) = x * P(x^2)               for |x| < 1     (P in z = x^2 on [0, 1])
  mid:   erfc(x) = exp(-x^2) * Q1(1/x)     for 1 <= x < 2.5 (t = 1/x in [0.4, 1])
  large: erfc(x) = exp(-x^2) * Q2(1/x)     for 2.5 <= x < 10 (t = 1/x in [0.1, 0.4])

One polynomial over all of t in [0.1, 1] needs degree > 14, and its monomial form then
loses accuracy to cancellation in f32; two degree-9 pieces stay within ~2 ulp.

Run: python3 tools/fit_erf.py  (prints the coefficients, highest degree first).
"""
import math
import struct


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def cheb_fit(f, a, b, n):
    """Chebyshev interpolant of degree n-1 of f on [a, b], as monomial coefficients in x."""
    nodes = [math.cos(math.pi * (k + 0.5) / n) for k in range(n)]
    vals = [f((b - a) / 2 * s + (a + b) / 2) for s in nodes]
    c = [2.0 / n * sum(vals[k] * math.cos(math.pi * j * (k + 0.5) / n) for k in range(n)) for j in range(n)]
    c[0] /= 2
    # Chebyshev polynomials T_j(s) as monomials in s.
    T = [[1.0], [0.0, 1.0]]
    for j in range(2, n):
        t = [0.0] * (j + 1)
        for i, v in enumerate(T[j - 1]):
            t[i + 1] += 2 * v
        for i, v in enumerate(T[j - 2]):
            t[i] -= v
        T.append(t)
    mono_s = [0.0] * n
    for j in range(n):
        for i, v in enumerate(T[j]):
            mono_s[i] += c[j] * v
    # Substitute s = (x - mid) / half: expand sum m_i ((x - mid)/half)^i.
    mid, half = (a + b) / 2, (b - a) / 2
    mono_x = [0.0] * n
    for i, m in enumerate(mono_s):
        for k in range(i + 1):
            mono_x[k] += m * math.comb(i, k) * (-mid) ** (i - k) / half ** i
    return mono_x


def horner32(coefs, x):
    acc = f32(coefs[-1])
    for c in reversed(coefs[:-1]):
        acc = f32(f32(acc * x) + f32(c))  # fma would be closer; this bounds the error from above
    return acc


def main():
    p = cheb_fit(lambda z: math.erf(math.sqrt(z)) / math.sqrt(z) if z > 0 else 2 / math.sqrt(math.pi), 0.0, 1.0, 8)
    report("P (erf small, in z = x^2)", p, [
        (x, f32(x * horner32(p, f32(x * x))), math.erf(x)) for x in (i / 20000 for i in range(1, 20000))
    ])
    for name, lo, hi in [("Q1 (erfc, x in [1, 2.5], in t = 1/x)", 0.4, 1.0), ("Q2 (erfc, x in [2.5, 10], in t = 1/x)", 0.1, 0.4)]:
        q = cheb_fit(lambda t: math.erfc(1 / t) * math.exp(1 / t ** 2), lo, hi, 10)
        pts = []
        for i in range(20001):
            t = lo + (hi - lo) * i / 20000
            pts.append((t, horner32(q, f32(t)), math.erfc(1 / t) * math.exp(1 / t ** 2)))
        report(name, q, pts)


def report(name, coefs, points):
    worst = max(abs(got - want) / abs(want) for _, got, want in points)
    print(f"{name}, highest degree first:")
    print(", ".join(f"{f32(c):.9e}" for c in reversed(coefs)))
    print(f"  max relative error of the f32 evaluation: {worst:.3e}")


if __name__ == "__main__":
    main()
