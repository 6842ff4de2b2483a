"""SSL fine-tuned vs from-scratch, at several label fractions, on held-out subjects.

Uses every labelled source in ../shared/data (Geneva included: GPL-3.0 data may be used for
benchmarks, never for shipped weights). One subject split for everything: pretraining sees the
training and validation subjects' kinematics only; each fine-tuning run (pretrained or scratch,
100 % or 20 % of the training subjects' labels) is scored on the same test subjects.

    python scripts/compare_ssl.py --fractions 1.0,0.2 --epochs 60
Prints a table and writes build/ssl-comparison/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["real/biomechZoo-sample-study/Straight", "real/opensim-core", "real/opensim-models",
           "real/opencap-processing", "real/c3d-org-samples", "labeled/fukuchi2018-wbds",
           "labeled/geneva-norm-pig-c3d"]
EXCLUDE_LABELS = [("example3DWalking_Rajagopal/*", "hip_*_moment"), ("example3DWalking_Rajagopal/*", "pelvis_*")]


def summary_rows(meta: dict) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for row in meta["test_metrics"]["summary"]:
        if row["metric"] in ("rmse", "r2"):
            rows.setdefault(row["channel"], {})[row["metric"]] = row["mean"]
            rows[row["channel"]][row["metric"] + "_sd"] = row["sd"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "ssl-comparison")
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--fractions", default="1.0,0.2")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from gaitcli.data.ingest import ingest
    from gaitcli.train.loop import TrainConfig
    from gaitcli.train.workflows import DataSpec, finetune, pretrain

    began = time.perf_counter()
    data = args.work / "ingest"
    ingest([args.shared / s for s in SOURCES], data)
    spec = lambda fraction=1.0: DataSpec(window=64, stride=8, test_fraction=0.2, val_fraction=0.15,  # noqa: E731
                                         seed=args.seed, label_fraction=fraction, exclude_labels=EXCLUDE_LABELS)
    pre = args.work / "pretrained.safetensors"
    pretrain([data], pre, args.model, spec(),
             TrainConfig(task="pretrain", epochs=args.epochs, lr=1e-3, warmup_steps=100, patience=20,
                         seed=args.seed, device="cpu"))
    results = {}
    for fraction in [float(f) for f in args.fractions.split(",")]:
        for start in ("ssl", "scratch"):
            out = args.work / f"{start}-{fraction:g}.safetensors"
            meta = finetune(pre, [data], out, spec(fraction),
                            TrainConfig(task="finetune", epochs=args.epochs, lr=5e-4, warmup_steps=50, patience=20,
                                        seed=args.seed, device="cpu"), from_scratch=(start == "scratch"))
            results[f"{start}@{fraction:g}"] = {"metrics": summary_rows(meta), "train_subjects": len(meta["train_subjects_used"]),
                                                "train_windows": meta["train_windows"], "fit": meta["fit"],
                                                "test_subjects": meta["split"]["test"]}
            print(f"{start}@{fraction:g} done ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    channels = sorted(next(iter(results.values()))["metrics"])
    print(f"{'run':<14}" + "".join(f"{c.replace('_moment', ''):>24}" for c in channels))
    for run, r in results.items():
        cells = [f"{r['metrics'][c]['rmse']:.3f} / {r['metrics'][c]['r2']:.2f}" for c in channels]
        print(f"{run:<14}" + "".join(f"{cell:>24}" for cell in cells))
    print("(RMSE N·m/kg / R2, mean across test subjects: " + ", ".join(results[next(iter(results))]["test_subjects"]) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
