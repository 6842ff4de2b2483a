"""Train the shipped GaitDynamics pair (gaitcli/models/default/gaitdynamics-*.safetensors) and measure it.

Trained only on permissively licensed recordings with kinematics and measured GRF
(see docs/model-card.md):
  - biomechZoo sample study (Apache-2.0): 9 children walking over 2 force plates, Plug-in Gait;
  - OpenSim examples (opensim-core Apache-2.0; opensim-models CC BY 3.0): subject01 walking
    (gait2354 / ID test data), the Rajagopal walking subject, Hamner subject02 running.
WBDS (Fukuchi) holds only mean cycles without measured timing, so it cannot form 1.5 s windows.
Never the Geneva set or the ezc3d files (GPL-3.0): the Geneva subjects serve only as an external
held-out test set here (measuring is allowed, training on them is not).

Steps: ingest -> diffusion model (gait pretrain --model diffusion) -> force-refinement model with
the same split and scaling (gait finetune --grf) -> held-out evaluation (refinement from the
recorded kinematics; the inpainting-vs-median study) -> checkpoints + a JSON of the numbers.

    python scripts/train_generative.py                 # about 20-30 minutes on 2 CPU cores
    python scripts/train_generative.py --quick         # a smoke run (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PERMISSIVE = [
    "real/biomechZoo-sample-study/Straight",
    "real/opensim-core/ID_test_subject01",
    "real/opensim-core/example3DWalking_Rajagopal",
    "real/opensim-models/Gait2354_Simbody",
    "real/opensim-models/Hamner_running",
]
EXTERNAL_TEST = ["labeled/geneva-norm-pig-c3d"]  # GPL-3.0: evaluation only
TEST_SUBJECTS = ["HC031A", "HC033A"]  # two biomechZoo children held out
DEFAULT_DIR = REPO / "gaitcli" / "models" / "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "generative")
    parser.add_argument("--diffusion-steps", type=int, default=3000, help="optimiser steps of the diffusion model")
    parser.add_argument("--refiner-steps", type=int, default=600, help="optimiser steps of the refinement model")
    parser.add_argument("--refiner-width", type=int, default=64, help="refinement model width (the preset: 128)")
    parser.add_argument("--refiner-batch", type=int, default=32)
    parser.add_argument("--reuse-diffusion", action="store_true",
                        help="keep the diffusion checkpoint already staged in --work (train the refiner only)")
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="few steps: checks the pipeline, not for shipping")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--skip-training", action="store_true", help="evaluate the checkpoints in --output-dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.diffusion_steps, args.refiner_steps, args.ddim_steps = 30, 30, 10

    import torch

    from gaitcli.data.ingest import IngestOptions, ingest
    from gaitcli.train.generative import StateSpec, train_diffusion, train_refiner
    from gaitcli.train.loop import TrainConfig

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data, external = args.work / "data", args.work / "external"
    for folder, sources in ((data, PERMISSIVE), (external, EXTERNAL_TEST)):
        paths = [args.shared / s for s in sources if (args.shared / s).exists()]
        if paths:
            report = ingest(paths, folder, IngestOptions(jobs=2))
            print(f"ingest {folder.name}: {len(report.trials)} trials, {len(report.failures)} failures", file=sys.stderr)

    diffusion_path = args.output_dir / "gaitdynamics-diffusion.safetensors"
    refiner_path = args.output_dir / "gaitdynamics-grf.safetensors"
    spec = StateSpec(stride=10, test_subjects=TEST_SUBJECTS, val_fraction=0.1, seed=args.seed)
    began = time.perf_counter()
    if not args.skip_training:
        staged = args.work / "checkpoints"
        staged.mkdir(parents=True, exist_ok=True)
        cfg = TrainConfig(task="diffusion", epochs=100000, max_steps=args.diffusion_steps, batch_size=64, lr=1e-3,
                          weight_decay=1e-5, warmup_steps=100, schedule="cosine", patience=0, keep_best=False,
                          seed=args.seed, ema_decay=0.995 if args.diffusion_steps < 5000 else 0.999)
        if not (args.reuse_diffusion and (staged / diffusion_path.name).exists()):
            meta = train_diffusion([data], staged / diffusion_path.name, "diffusion", spec, cfg,
                                   {"d_model": 64, "n_layers": 2}, log_csv=staged / "diffusion.log.csv")
            print(f"diffusion: {meta['fit']}", file=sys.stderr)
        cfg = TrainConfig(task="finetune", epochs=100000, max_steps=args.refiner_steps, batch_size=args.refiner_batch,
                          lr=1e-3,
                          weight_decay=1e-5, warmup_steps=100, schedule="cosine", patience=0, keep_best=False,
                          seed=args.seed)
        meta = train_refiner([data], staged / refiner_path.name, spec, cfg, staged / diffusion_path.name,
                             overrides={"d_model": args.refiner_width}, log_csv=staged / "refiner.log.csv")
        print(f"refiner: {meta['fit']}", file=sys.stderr)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for path in (diffusion_path, refiner_path):
            shutil.copyfile(staged / path.name, path)
    results = evaluate([data], [external], diffusion_path, refiner_path, args.ddim_steps, args.seed)
    results["seconds"] = round(time.perf_counter() - began, 1)
    out = args.work / "generative-metrics.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


def evaluate(data: list[Path], external: list[Path], diffusion: Path, refiner: Path, steps: int, seed: int) -> dict:
    """Held-out numbers: refinement from recorded kinematics, and inpainting vs median per group."""
    import pandas as pd

    from gaitcli.data import gaitstate as gs
    from gaitcli.eval.grf import inpainting_study, summarise
    from gaitcli.models.checkpoint import read_checkpoint_metadata
    from gaitcli.models.gaitdynamics import GaitDynamics

    model = GaitDynamics(diffusion, refiner)
    test = set(read_checkpoint_metadata(refiner)["split"]["test"])
    results: dict = {"test_subjects": sorted(test)}
    for name, paths, keep in (("held_out_permissive", data, test), ("external_geneva", external, None)):
        paths = [p for p in paths if p.exists()]
        if not paths:
            continue
        states, _ = gs.load_states(paths)
        states = [s for s in states if keep is None or s.subject in keep]
        rows = inpainting_study(model, states, steps=steps, seed=seed)
        frame = pd.DataFrame(rows)
        section = {"subjects": sorted({s.subject for s in states}), "trials": len(states)}
        for (method, group), part in frame.groupby(["method", "group"]) if len(frame) else []:
            section.setdefault(method, {})[group] = summarise(part.to_dict("records"))
        results[name] = section
    return results


if __name__ == "__main__":
    raise SystemExit(main())
