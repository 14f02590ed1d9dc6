#!/usr/bin/env python
"""Reverse-mode automatic differentiation by hand, for y = x + 1 / (w x + b).

    python scripts/autodiff_trace.py --x 0.3 --w 0.5 --b 0.1

Prints the forward primal trace (v1 = w x, v2 = v1 + b, v3 = 1 / v2, v4 = x + v3 = y) and the
adjoint trace (v_bar = dy/dv, swept backwards from y_bar = 1), each step a hand-written local
derivative recorded on a small tape, then checks dy/dx, dy/dw, dy/db against torch.autograd.
At x = 0.3, w = 0.5, b = 0.1: v = (0.15, 0.25, 4, 4.3) and dy/dx = -7, dy/dw = -4.8, dy/db = -16.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field


@dataclass
class Tape:
    """A Wengert list: each entry is (name, value, formula, [(input name, local derivative)])."""

    values: dict[str, float] = field(default_factory=dict)
    entries: list[tuple[str, str, list[tuple[str, float]]]] = field(default_factory=list)

    def input(self, name: str, value: float) -> str:
        self.values[name] = value
        return name

    def mul(self, out: str, a: str, b: str) -> str:
        va, vb = self.values[a], self.values[b]
        self.values[out] = va * vb
        self.entries.append((out, f"{a} * {b}", [(a, vb), (b, va)]))  # d(ab)/da = b, d(ab)/db = a
        return out

    def add(self, out: str, a: str, b: str) -> str:
        self.values[out] = self.values[a] + self.values[b]
        self.entries.append((out, f"{a} + {b}", [(a, 1.0), (b, 1.0)]))
        return out

    def reciprocal(self, out: str, a: str) -> str:
        va = self.values[a]
        self.values[out] = 1.0 / va
        self.entries.append((out, f"1 / {a}", [(a, -1.0 / va**2)]))  # d(1/a)/da = -1/a^2
        return out

    def backward(self, output: str) -> dict[str, float]:
        """Sweep the tape in reverse: v_bar[input] += v_bar[out] * d out / d input."""
        bars = {output: 1.0}
        for out, _, partials in reversed(self.entries):
            for name, local in partials:
                bars[name] = bars.get(name, 0.0) + bars.get(out, 0.0) * local
        return bars


def trace(x: float, w: float, b: float) -> tuple[Tape, dict[str, float]]:
    """Record y = x + 1 / (w x + b) on a tape and return it with the adjoints of every value."""
    tape = Tape()
    tape.input("x", x)
    tape.input("w", w)
    tape.input("b", b)
    tape.mul("v1", "w", "x")
    tape.add("v2", "v1", "b")
    tape.reciprocal("v3", "v2")
    tape.add("v4", "x", "v3")
    return tape, tape.backward("v4")


def torch_gradients(x: float, w: float, b: float) -> dict[str, float]:
    """dy/dx, dy/dw, dy/db from torch.autograd, the independent reference."""
    import torch

    xs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in (("x", x), ("w", w), ("b", b))}
    y = xs["x"] + 1 / (xs["w"] * xs["x"] + xs["b"])
    y.backward()
    return {k: float(t.grad) for k, t in xs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Reverse-mode autodiff table for y = x + 1/(w x + b).")
    p.add_argument("--x", type=float, default=0.3)
    p.add_argument("--w", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.1)
    args = p.parse_args(argv)
    if args.w * args.x + args.b == 0:
        p.error("w x + b must be nonzero: y is undefined there")

    tape, bars = trace(args.x, args.w, args.b)
    print("Forward primal trace")
    print("| value | formula | primal |\n| --- | --- | --- |")
    for name in ("x", "w", "b"):
        print(f"| {name} | input | {tape.values[name]:.6g} |")
    for out, formula, _ in tape.entries:
        print(f"| {out} | {formula} | {tape.values[out]:.6g} |")
    print(f"y = v4 = {tape.values['v4']:.6g}\n")

    print("Reverse adjoint trace (v_bar = dy/dv)")
    print("| adjoint | value |\n| --- | --- |")
    for name in ("v4", "v3", "v2", "v1", "b", "w", "x"):
        print(f"| {name}_bar | {bars[name]:.6g} |")

    reference = torch_gradients(args.x, args.w, args.b)
    print("\nCheck against torch.autograd")
    for name in ("x", "w", "b"):
        ok = abs(bars[name] - reference[name]) <= 1e-9 * max(1.0, abs(reference[name]))
        print(f"dy/d{name}: tape {bars[name]:.6g}, torch {reference[name]:.6g}  {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(f"tape and torch.autograd disagree on dy/d{name}")


if __name__ == "__main__":
    main()
