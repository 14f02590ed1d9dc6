#!/usr/bin/env python
"""Batch prediction through every route out of a fitted model: the estimator's ``predict``, its module
(``to_module(output="predict")``, eager and ``torch.compile``d), ONNX Runtime on the module's ONNX file
(``torchsvm.export.to_onnx``) and on skl2onnx's graph (``import torchsvm.onnx``), and scikit-learn's own class.

    python benchmarks/bench_export.py [--datasets mnist-10k] [--batches 1 64 10000] [--repeats 7] [--device cuda]

``SVC()`` and ``LinearSVC()`` with their defaults are fitted on the training split (scikit-learn's classes on the
same rows); the batches are the test split's first rows (repeated to 10,000 where it is shorter), float32 as the
fit saw them. Every route's labels are checked against the estimator's. Each time is the median over
``--repeats`` calls, the routes interleaved; each route is called once before timing (compiled graphs are built
per batch size), and one whose first call took more than ``--slow`` seconds is timed once (its ``calls``).
With ``--device cuda`` the estimators fit and predict there and the modules run there (each call from and to host
memory, as a caller with NumPy rows sees it); ONNX Runtime and scikit-learn stay on the CPU (the ``export`` extra's
onnxruntime is its CPU build). Results go to benchmarks/results/export-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# Inductor compiles in this process: a pool of compile workers left running would share the cores the timings use.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import numpy as np  # noqa: E402
import sklearn.svm as sk  # noqa: E402
import torch  # noqa: E402
from _data import add_data_arguments, load_flat  # noqa: E402
from _record import add_record_arguments, device_name, save_record  # noqa: E402

import torchsvm as ts  # noqa: E402
from torchsvm.export import to_onnx  # noqa: E402


def _routes(est, theirs, X32: np.ndarray, tmp: Path, device: torch.device) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """route name -> predict(X float32 rows) -> labels."""
    import onnxruntime as ort
    import skl2onnx

    import torchsvm.onnx  # noqa: F401  (registers the converters)

    module = est.to_module(output="predict").to(torch.float32).eval()  # on the estimator's device
    compiled = torch.compile(module)
    onnx_path = to_onnx(module.cpu(), tmp / f"{type(est).__name__}.onnx", output="predict", n_features=X32.shape[1])
    options = ort.SessionOptions()
    # ONNX Runtime's threads spin after each call by default: on a shared machine they would slow the next route.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(onnx_path), options)
    graph = skl2onnx.to_onnx(est, X32[:1], target_opset={"": 18, "ai.onnx.ml": 3},
                             options={type(est): {"zipmap": False}})
    ml_session = ort.InferenceSession(graph.SerializeToString(), options)
    label = ml_session.get_outputs()[0].name

    module.to(device)  # back from the CPU copy ONNX was written from

    def torch_route(m: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
        def run(X: np.ndarray) -> np.ndarray:
            with torch.no_grad():  # .cpu() waits for the device: the time is the caller's
                return m(torch.from_numpy(X).to(device)).cpu().numpy()
        return run

    return {
        "estimator.predict": est.predict,
        "module (eager)": torch_route(module),
        "module (torch.compile)": torch_route(compiled),
        "onnxruntime (to_onnx)": lambda X: session.run(None, {"X": X})[0],
        "onnxruntime (skl2onnx)": lambda X: ml_session.run([label], {"X": X})[0],
        "scikit-learn predict": theirs.predict,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p, ["mnist-10k"])
    add_record_arguments(p)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 10000])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--slow", type=float, default=5.0, help="a route whose first call took longer is timed once")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the estimators and modules run")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", FutureWarning)
    rows, lines = [], []
    for name in args.datasets:
        X, y, X_test, _ = load_flat(name, Path(args.data_root), args.n_train)
        pool = np.ascontiguousarray(np.resize(X_test, (max(args.batches), X_test.shape[1])).astype(np.float32))
        for ours, theirs in ((ts.SVC(device=args.device), sk.SVC()), (ts.LinearSVC(device=args.device), sk.LinearSVC())):
            start = time.perf_counter()
            ours.fit(X, y)
            theirs.fit(X, y)
            print(f"{name} {type(ours).__name__}: fitted both in {time.perf_counter() - start:.1f} s", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                routes = _routes(ours, theirs, pool, Path(tmp), torch.device(args.device))
                for n in args.batches:
                    batch = pool[:n]
                    reference = ours.predict(batch)
                    times: dict[str, list[float]] = {r: [] for r in routes}
                    slow = set()
                    for route, run in routes.items():  # once before timing: compiles, warms caches; checks labels
                        t0 = time.perf_counter()
                        labels = np.asarray(run(batch))
                        if time.perf_counter() - t0 > args.slow:  # timed once more, not --repeats times
                            slow.add(route)
                        agree = float((labels == reference).mean())
                        if route != "scikit-learn predict" and agree < 0.999:
                            raise AssertionError(f"{route} agrees with the estimator on {agree:.4f} of {n} rows")
                    for k in range(args.repeats):
                        for route, run in routes.items():
                            if route in slow and k:
                                continue
                            t0 = time.perf_counter()
                            run(batch)
                            times[route].append(time.perf_counter() - t0)
                    base = statistics.median(times["estimator.predict"])
                    for route, ts_ in times.items():
                        median = statistics.median(ts_)
                        rows.append(dict(dataset=name, estimator=type(ours).__name__, batch=n, route=route,
                                         seconds=median, vs_predict=median / base, calls=len(ts_)))
                        print(f"  {type(ours).__name__:9s} batch {n:6d}  {route:24s} {median * 1e3:9.3f} ms  "
                              f"{median / base:5.2f}x predict", flush=True)
    device = device_name(args.device)
    lines = [f"# Batch prediction routes ({device}, {dt.date.today()})", "",
             "Median of the routes' calls, interleaved; `vs predict`: the route's time over the estimator's own "
             "`predict` in the same run.", "",
             "| data | estimator | batch | route | ms | vs predict | calls |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['estimator']} | {r['batch']} | {r['route']} | {r['seconds'] * 1e3:.3f} | "
              f"{r['vs_predict']:.2f} | {r['calls']} |" for r in rows]
    if not args.no_save:
        save_record(f"export-{args.device}-{dt.date.today()}", dict(device=device, batches=args.batches, repeats=args.repeats,
                                                           rows=rows), lines, args.tag)


if __name__ == "__main__":
    main()
