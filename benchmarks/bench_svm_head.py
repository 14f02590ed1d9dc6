#!/usr/bin/env python
"""The differentiable SVM head against MetaOptNet's qpth QP and cvxpylayers: time, objective, feasibility.

    python benchmarks/bench_svm_head.py --device cpu [--embeddings random clustered] [--checkpoint M.ckpt]
    pip install --no-deps qpth   # the reference; qpth pins numpy < 2, so it is not a dependency

For 5-way {1, 5, 15}-shot episodes and batches of {1, 8, 32, 128} episodes, each method solves the
Crammer-Singer dual on the support embeddings' linear kernel
    minimize 1/2 sum_m a_m^T K a_m - sum_i a_{i,y_i}  s.t.  a_im <= C [m = y_i],  sum_m a_im = 0
and backpropagates a fixed linear loss of alpha into the embeddings; time = median of forward +
backward over the repeats after a warm-up (on CUDA with synchronization). Embeddings:
- ``random``: Gaussian, 64 and 1600 dimensions (C = 0.1, as MetaOptNet's head on miniImageNet); K is
  well conditioned.
- ``clustered``: shaped like trained ones: each class a point on the unit sphere (the classes sharing a
  common direction), its samples that point moved in a few (``--rank``) directions of their own by
  ``--noise``, L2-normalized: near-duplicate samples and a nearly low-rank K (its median condition
  number is recorded per row).
- ``trained``: with ``--checkpoint``, the embeddings a few-shot module (``FewShotModule``, e.g. from
  ``torchsvm fit --config configs/svm_head.yaml``) gives test-split images of its held-out classes,
  normalized as the module does.
Methods:
- ``torchsvm``: :func:`torchsvm.functional.crammer_singer_dual` (tol 1e-6).
- ``qpth ridge``: MetaOptNet's code path in training, ``QPFunction(maxIter=15)`` on ``K (x) I + 1.0 I``
  (the ridge keeps qpth's LU from failing; the problem is then another one).
- ``qpth``: the same without the ridge (it may fail or stop inexact).
- ``cvxpylayers``: the problem as a ``CvxpyLayer`` (small batches only; CPU).
Objective (on the problem without ridge) and largest constraint violation are those of each
method's alpha, in float64. The heads' accuracy in training is bench_few_shot.py's.
Results go to benchmarks/results/svm-head-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import warnings
from pathlib import Path

import torch
from _record import add_record_arguments, device_name, device_sync, save_record

from torchsvm.functional import crammer_singer_dual
from torchsvm.solvers.multiclass import crammer_singer_objective

N_WAY = 5


def episodes(kind: str, B: int, shots: int, D: int, device: torch.device, dtype: torch.dtype, seed: int = 0,
             rank: int = 4, noise: float = 0.05, embed=None):
    """Support embeddings ``(B, N, D)``, labels ``(B, N)`` and the loss's weights ``(B, N, M)``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N_WAY).repeat_interleave(shots).repeat(B, 1)
    if kind == "random":
        S = torch.randn(B, N_WAY * shots, D, generator=g)
    elif kind == "clustered":
        unit = torch.nn.functional.normalize
        common = unit(torch.randn(B, 1, D, generator=g), dim=-1)
        centers = unit(0.7 * common + 0.3 * unit(torch.randn(B, N_WAY, D, generator=g), dim=-1), dim=-1)
        directions = torch.randn(B, N_WAY, D, rank, generator=g) / rank**0.5
        moved = centers.unsqueeze(2) + noise * (directions @ torch.randn(B, N_WAY, rank, shots, generator=g)).mT
        S = unit(moved, dim=-1).reshape(B, N_WAY * shots, D)
    else:  # trained: embed(B, shots, generator) gives the support embeddings of B episodes
        S = embed(B, shots, g)
    W = torch.randn(B, N_WAY * shots, N_WAY, generator=g)
    return S.to(device=device, dtype=dtype), y.to(device), W.to(device=device, dtype=dtype)


def checkpoint_embedder(path: str, data_root: str):
    """``embed(B, shots, generator)``: support embeddings of B episodes of a FewShotModule checkpoint's
    held-out classes (test-split images), as its head sees them, and the module's C."""
    from lightning_modules import EpisodeDataModule, FewShotModule

    module = FewShotModule.load_from_checkpoint(path, map_location="cpu").eval()
    dm = EpisodeDataModule(data_dir=str(Path(data_root) / "mnist-10k"), download=False)
    dm.setup("test")
    X, y = dm.tensors("test")
    members = [torch.nonzero(y == c).squeeze(1) for c in dm.hparams.test_classes]

    def embed(B: int, shots: int, g: torch.Generator) -> torch.Tensor:
        picks = []
        for _ in range(B):
            chosen = torch.randperm(len(members), generator=g)[:N_WAY].tolist()
            picks += [members[c][torch.randperm(len(members[c]), generator=g)[:shots]] for c in chosen]
        with torch.no_grad():
            Z = module.embedding(X[torch.cat(picks)])
        Z = torch.nn.functional.normalize(Z, dim=-1) if module.hparams.l2_normalize else Z
        return Z.reshape(B, N_WAY * shots, -1)

    return embed, float(module.hparams.C)


def condition_number(S: torch.Tensor) -> float:
    """Median over the episodes of K's condition number (inf where K is singular)."""
    ev = torch.linalg.eigvalsh((S @ S.mT).double())
    return float((ev[:, -1] / ev[:, 0].clamp_min(0)).median())


def torchsvm_head(C: float):
    def solve(S, y):
        return crammer_singer_dual(S @ S.mT, y, C, tol=1e-6, validate=False)

    return solve


def qpth_head(ridge: float, C: float):
    from qpth.qp import QPFunction

    def solve(S, y):
        B, N, _ = S.shape
        n = N * N_WAY
        K = S @ S.mT
        eye_m = torch.eye(N_WAY, device=S.device, dtype=S.dtype)
        G = (K.unsqueeze(-1).unsqueeze(-3) * eye_m.view(1, 1, N_WAY, 1, N_WAY)).reshape(B, n, n)  # K (x) I
        G = G + ridge * torch.eye(n, device=S.device, dtype=S.dtype)
        onehot = torch.nn.functional.one_hot(y, N_WAY).to(S.dtype).reshape(B, n)
        ineq = torch.eye(n, device=S.device, dtype=S.dtype).expand(B, n, n)
        eq = torch.kron(torch.eye(N, device=S.device, dtype=S.dtype), torch.ones(1, N_WAY, device=S.device,
                                                                                 dtype=S.dtype)).expand(B, N, n)
        sol = QPFunction(verbose=False, maxIter=15)(G, -onehot, ineq, C * onehot, eq,
                                                    torch.zeros(B, N, device=S.device, dtype=S.dtype))
        return sol.reshape(B, N, N_WAY)

    return solve


def cvxpylayers_head(N: int, D: int, C: float):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    A = cp.Variable((N, N_WAY))
    St = cp.Parameter((D, N))  # the support embeddings, transposed: sum_m a_m^T S S^T a_m = ||S^T A||^2
    onehot = cp.Parameter((N, N_WAY))
    objective = 0.5 * cp.sum_squares(St @ A) - cp.sum(cp.multiply(onehot, A))
    problem = cp.Problem(cp.Minimize(objective), [A <= C * onehot, cp.sum(A, axis=1) == 0])
    layer = CvxpyLayer(problem, parameters=[St, onehot], variables=[A])

    def solve(S, y):
        (sol,) = layer(S.mT.cpu().double(), torch.nn.functional.one_hot(y, N_WAY).double().cpu())
        return sol.to(S.device, S.dtype)

    return solve


def measure(methods: dict, S, y, W, sync, repeats: int, budget_s: float, C: float) -> dict:
    """Each method's forward + backward: median time, objective, largest violation. The methods run
    interleaved, one run of each per round, so that all see the same machine (this CPU's speed drifts by
    1.5x over minutes: timed one after the other, the ratios drifted with it)."""
    def run(solve):
        Sr = S.clone().requires_grad_(True)
        sync()
        t0 = time.perf_counter()
        alpha = solve(Sr, y)
        (alpha * W).sum().backward()
        sync()
        return alpha.detach(), time.perf_counter() - t0

    results, alphas, times = {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, solve in methods.items():
            try:
                alphas[name], first = run(solve)  # warm-up (and the only run when it is slow)
            except (RuntimeError, ValueError) as err:  # qpth's LU without the ridge, a solver failure
                results[name] = {"error": f"{type(err).__name__}: {str(err)[:120]}"}
                continue
            times[name] = [first] if first > budget_s else []
        timed = [name for name, seconds in times.items() if not seconds]
        for _ in range(repeats):
            for name in timed:
                times[name].append(run(methods[name])[1])
    K = (S @ S.mT).double()
    onehot = torch.nn.functional.one_hot(y, N_WAY).double()
    for name, alpha in alphas.items():
        a = alpha.double()
        violation = torch.maximum((a - C * onehot).clamp_min(0).amax((1, 2)), a.sum(-1).abs().amax(1))
        results[name] = {"seconds": statistics.median(times[name]), "runs": len(times[name]),
                         "objective": float(crammer_singer_objective(K, onehot, a).mean()),
                         "max_violation": float(violation.max()), "finite": bool(torch.isfinite(a).all())}
    return results


def bench_solvers(args, device, sync) -> list[dict]:
    rows = []
    kinds = list(args.embeddings) + (["trained"] if args.checkpoint else [])
    embed, C_trained = checkpoint_embedder(args.checkpoint, args.data_root) if args.checkpoint else (None, None)
    for kind in kinds:
        C = C_trained if kind == "trained" else args.C
        for D in args.dims if kind != "trained" else [0]:
            for shots in args.shots:
                for B in args.batches:
                    S, y, W = episodes(kind, B, shots, D, device, torch.float32, rank=args.rank, noise=args.noise,
                                       embed=embed)
                    methods = {"torchsvm": torchsvm_head(C)}
                    if not args.skip_qpth:
                        methods |= {"qpth ridge": qpth_head(1.0, C), "qpth": qpth_head(0.0, C)}
                    if not args.skip_cvxpylayers and B <= args.cvxpylayers_max_batch:
                        methods["cvxpylayers"] = cvxpylayers_head(N_WAY * shots, S.shape[-1], C)
                    row = {"embeddings": kind, "dim": S.shape[-1], "shots": shots, "batch": B, "C": C,
                           "condition_number": condition_number(S)}
                    row |= measure(methods, S, y, W, sync, args.repeats, args.budget_s, C)
                    if "seconds" in row.get("qpth ridge", {}):
                        row["speedup_vs_qpth_ridge"] = row["qpth ridge"]["seconds"] / row["torchsvm"]["seconds"]
                    rows.append(row)
                    print({k: (v if not isinstance(v, dict) else {kk: (round(vv, 6) if isinstance(vv, float) else vv)
                                                                 for kk, vv in v.items()}) for k, v in row.items()},
                          flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--embeddings", nargs="*", choices=["random", "clustered"], default=["random", "clustered"])
    p.add_argument("--checkpoint", help="a FewShotModule checkpoint: also time its embeddings ('trained')")
    p.add_argument("--C", type=float, default=0.1, help="the cost on random and clustered embeddings")
    p.add_argument("--rank", type=int, default=4, help="clustered: directions each class's samples move in")
    p.add_argument("--noise", type=float, default=0.05, help="clustered: how far they move")
    p.add_argument("--dims", type=int, nargs="+", default=[64, 1600])
    p.add_argument("--shots", type=int, nargs="+", default=[1, 5, 15])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=10.0, help="a method whose warm-up takes longer runs once")
    p.add_argument("--skip-qpth", action="store_true")
    p.add_argument("--skip-cvxpylayers", action="store_true")
    p.add_argument("--cvxpylayers-max-batch", type=int, default=8)
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    add_record_arguments(p)
    args = p.parse_args(argv)
    device, sync = torch.device(args.device), device_sync(args.device)
    rows = bench_solvers(args, device, sync)
    record = {"benchmark": "bench_svm_head", "date": dt.date.today().isoformat(), "device": device_name(device),
              "torch": torch.__version__, "n_way": N_WAY, "clustered": {"rank": args.rank, "noise": args.noise},
              "checkpoint": args.checkpoint, "rows": rows}
    if args.no_save:
        return
    methods = ["torchsvm", "qpth ridge", "qpth", "cvxpylayers"]

    def cell(r, m):
        v = r.get(m)
        if v is None:
            return "-"
        if "error" in v:
            return "fails"
        return f"{1e3 * v['seconds']:.1f} ms, obj {v['objective']:.5g}, viol {v['max_violation']:.0e}"

    lines = [f"# bench_svm_head: {record['device']}, {record['date']}", "",
             "5-way episodes, linear kernel (float32 in); forward + backward, the methods interleaved, median of "
             f"{args.repeats} after a warm-up (one run where the warm-up took > {args.budget_s} s); objective of "
             "the problem without ridge (lower is better) and largest constraint violation, averaged / maximized "
             f"over the batch. Clustered embeddings: rank {args.rank}, noise {args.noise}"
             + (f"; trained: {args.checkpoint}" if args.checkpoint else "") + ".", "",
             "| embeddings | D | C | cond(K) | shots | batch | " + " | ".join(methods) + " | qpth ridge / torchsvm time |",
             "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in methods) + " | --- |"]
    for r in rows:
        speed = f"{r['speedup_vs_qpth_ridge']:.1f}x" if "speedup_vs_qpth_ridge" in r else "-"
        lines.append(f"| {r['embeddings']} | {r['dim']} | {r['C']} | {r['condition_number']:.1e} | {r['shots']} | "
                     f"{r['batch']} | " + " | ".join(cell(r, m) for m in methods) + f" | {speed} |")
    save_record(f"svm-head-{device.type}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
