#!/usr/bin/env python
"""Few-shot heads compared by a clean protocol: hyperparameters chosen on validation, test reported once.

    python benchmarks/bench_few_shot.py [--datasets mnist fashion-mnist] [--heads crammer_singer prototype]
                                        [--seeds 0 1 2] [--epochs 6]

For each data set (MNIST digits 0-4 -> 5-9 from ../shared/data/mnist-10k; Fashion-MNIST classes
0-4 -> 5-9) and each head, with the same embedding network, training budget and augmentation
(configs/svm_head.yaml's, ``--epochs`` epochs):
1. every setting of the head's grid (Crammer-Singer: C; prototype: normalized or raw embeddings) is
   trained with the first seed and scored on validation episodes (the held-out classes' images of the
   training split); only the chosen model is tested;
2. the setting with the best validation accuracy is trained with the other seeds too;
3. each of those models is tested once on 5-way 5-shot and 1-shot episodes of the held-out classes'
   test-split images (500 episodes each). Reported: the mean over seeds with its 95% interval
   (Student's t over the seeds), and each seed's figure.
Results go to benchmarks/results/few-shot-<device>-<date>[-<tag>].{json,md}; every run's figures are
printed as it ends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import time
import warnings
from pathlib import Path

import torch
from _record import add_record_arguments, device_name, save_record

GRIDS = {  # what validation chooses among, per head
    "crammer_singer": [{"C": 0.1}, {"C": 1.0}],
    "prototype": [{"l2_normalize": True, "scale": 10.0}, {"l2_normalize": False, "scale": 1.0}],
    "ovr": [{"C": 0.1}, {"C": 1.0}],
}
DATA_DIRS = {"mnist": "mnist-10k", "fashion-mnist": "fashion-mnist"}
T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}  # Student's t, 97.5%


def config_settings() -> tuple[dict, dict]:
    """The model and data settings of configs/svm_head.yaml (the shared budget and augmentation)."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "svm_head.yaml").read_text())
    return dict(config["model"]["init_args"]), dict(config["data"]["init_args"])


def fit(dataset: str, head: str, settings: dict, seed: int, args) -> tuple[dict, object]:
    """Train one model; ``(run, test)``: its figures so far and a function that tests it (once)."""
    import pytorch_lightning as pl

    from lightning_modules import EpisodeDataModule, FewShotModule

    model_args, data_args = config_settings()
    data_args.update(dataset=dataset, seed=seed)
    pl.seed_everything(seed, verbose=False)
    dm = EpisodeDataModule(data_dir=str(Path(args.data_root) / DATA_DIRS[dataset]), download=False, **data_args)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator=args.accelerator, devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    module = FewShotModule(**(model_args | {"head": head} | settings))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and logging intervals
        trainer.fit(module, datamodule=dm)
    run = {"dataset": dataset, "head": head, "settings": settings, "seed": seed, "fit_s": time.perf_counter() - t0,
           "val_acc": float(trainer.callback_metrics["val_acc"])}
    print(run, flush=True)

    def test() -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r in trainer.test(module, datamodule=dm, verbose=False):
                run.update({k: float(v) for k, v in r.items() if k.startswith("test_acc_")})
        print(run, flush=True)
        return run

    return run, test


def summary(runs: list[dict], key: str) -> tuple[float, float]:
    """Mean over seeds and the half width of its 95% interval (Student's t)."""
    values = [r[key] for r in runs]
    if len(values) < 2:
        return values[0], math.nan
    return statistics.mean(values), T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def markdown(record: dict) -> list[str]:
    lines = [f"# bench_few_shot: {record['device']}, {record['date']}", "",
             f"5-way episodes; train classes 0-4, held-out classes 5-9; configs/svm_head.yaml's network, "
             f"augmentation and schedule, {record['epochs']} epochs. Settings chosen on validation (seed "
             f"{record['seeds'][0]}); test: mean over seeds {record['seeds']} with the 95% interval over seeds "
             "(Student's t); in brackets each seed's figure.", "",
             "| data | head | chosen (validation accuracy of each setting) | test 5-shot | test 1-shot | fit (s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in record["results"]:
        grid = ", ".join(f"{s['settings']}: {s['val_acc']:.4f}" for s in row["selection"])
        cells = []
        for key in ("test_acc_5shot", "test_acc_1shot"):
            if not row["runs"] or key not in row["runs"][0]:
                cells.append("-")
                continue
            mean, half = summary(row["runs"], key)
            seeds = ", ".join(f"{r[key]:.4f}" for r in row["runs"])
            cells.append(f"{mean:.4f} +- {half:.4f} [{seeds}]")
        fit_s = statistics.mean(r["fit_s"] for r in row["runs"]) if row["runs"] else math.nan
        lines.append(f"| {row['dataset']} | {row['head']} | {row['chosen']} ({grid}) | {cells[0]} | {cells[1]} | "
                     f"{fit_s:.0f} |")
    lines += ["", "Paired by seed (the same seed: the same initialization and episodes), each SVM head's accuracy "
              "minus the prototype head's, mean and 95% interval (Student's t):", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in record["results"]):
        heads = {r["head"]: r["runs"] for r in record["results"] if r["dataset"] == dataset}
        for svm_head in ("crammer_singer", "ovr"):
            if svm_head not in heads or "prototype" not in heads:
                continue
            for key in ("test_acc_5shot", "test_acc_1shot"):
                pairs = [{"d": a[key] - b[key]} for a, b in zip(heads[svm_head], heads["prototype"], strict=True)]
                mean, half = summary(pairs, "d")
                each = ", ".join(f"{p['d']:+.4f}" for p in pairs)
                lines.append(f"- {dataset}, {svm_head}, {key[9:]}: {mean:+.4f} +- {half:.4f} ({each})")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=sorted(DATA_DIRS), default=["mnist", "fashion-mnist"])
    p.add_argument("--heads", nargs="+", choices=sorted(GRIDS), default=["crammer_singer", "prototype"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    add_record_arguments(p)
    args = p.parse_args(argv)
    record = {"benchmark": "bench_few_shot", "date": dt.date.today().isoformat(),
              "device": device_name(torch.device("cuda" if args.accelerator == "gpu" else "cpu")),
              "epochs": args.epochs, "seeds": args.seeds, "grids": GRIDS, "results": []}
    for dataset in args.datasets:
        for head in args.heads:
            # Selection: every setting with the first seed, scored on validation only; only the chosen
            # model is ever tested.
            selection = [fit(dataset, head, settings, args.seeds[0], args) for settings in GRIDS[head]]
            best, test = max(selection, key=lambda pair: pair[0]["val_acc"])
            chosen = best["settings"]
            row = {"dataset": dataset, "head": head, "chosen": chosen,
                   "selection": [{"settings": r["settings"], "val_acc": r["val_acc"]} for r, _ in selection], "runs": []}
            record["results"].append(row)
            for seed in args.seeds:  # the chosen setting, each seed tested once
                row["runs"].append(test() if seed == args.seeds[0] else fit(dataset, head, chosen, seed, args)[1]())
    if not args.no_save:
        save_record(f"few-shot-{'cuda' if args.accelerator == 'gpu' else 'cpu'}-{record['date']}", record,
                    markdown(record), args.tag)


if __name__ == "__main__":
    main()
