"""``gait benchmark`` as a library: one protocol for every model (Gait2Hip-60, Li 2025, Tan 2024).

Protocol, per model, label fraction and seed:
  1. a subject-level test split, fixed for the whole benchmark (``test_fraction`` of the
     labelled subjects, drawn with ``split_seed``); the rest is the training pool;
  2. a fraction of the pool's subjects (nested: smaller fractions are subsets of larger ones);
  3. k-fold cross-validation grouped by subject (GroupKFold) on that subset, each fold trained
     with early stopping on the held-out fold; the best epochs are recorded;
  4. a final model retrained on the whole subset for the median best epoch, then scored on the
     test subjects (per subject, per channel, per stratum).
SSL variants fine-tune a pretrained encoder (``--pretrained`` or ``--pretrain``, which
pretrains every model on the pool's kinematics, never the test subjects') and are compared with
the same architecture trained from scratch.

Every run is a folder under ``runs/`` holding ``result.json``, written last and atomically,
keyed by a hash of everything that determines it: a benchmark that is stopped and started
again skips the runs already done.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from gaitcli.data.windows import Split, label_subset, load_trials, select_channels, split_subjects
from gaitcli.errors import DataError, UsageError

STAGES = ("pretrain", "cv", "final")


@dataclass
class BenchmarkConfig:
    models: list[str] = field(default_factory=lambda: ["transformer", "lstm", "mamba"])
    inputs: str = "sagittal-angles"
    targets: str = "sagittal-moments"
    unit: str = "cycles"  # Gait2Hip-60: one gait cycle per example; or "windows" (Li 2025)
    window: int = 64
    stride: int = 8
    test_fraction: float = 0.2
    split_seed: int = 0
    folds: int = 5
    seeds: list[int] = field(default_factory=lambda: [0])
    label_fractions: list[float] = field(default_factory=lambda: [1.0])
    pretrained: str | None = None  # a checkpoint: its model gets an "ssl" variant
    pretrain: list[str] = field(default_factory=list)  # models pretrained on the pool's inputs: an "ssl" variant each
    pretrain_epochs: int = 100
    epochs: int = 300  # Gait2Hip-60: at most 300, early stopping in the folds
    patience: int = 20
    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 64
    grad_clip: float = 0.5
    warmup_steps: int = 0
    schedule: str = "constant"
    device: str = "auto"
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude_labels: list[list[str]] = field(default_factory=list)
    strata: list[str] = field(default_factory=lambda: ["cadence"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        return _hash(self.to_dict())


@dataclass
class Run:
    stage: str  # pretrain | cv | final
    model: str
    variant: str  # scratch | ssl
    fraction: float
    seed: int
    fold: int = -1
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    key: str = ""

    @property
    def run_id(self) -> str:
        if self.stage == "pretrain":
            return f"pretrain/{self.model}-s{self.seed}"
        base = f"{self.model}-{self.variant}-f{self.fraction:.3f}-s{self.seed}"
        return f"cv/{base}-k{self.fold}" if self.stage == "cv" else f"final/{base}"

    @property
    def label(self) -> str:
        return f"{self.model}+ssl" if self.variant == "ssl" else self.model


@dataclass
class Plan:
    config: BenchmarkConfig
    data: list[str]
    labelled_subjects: list[str]
    test: list[str]
    pool: list[str]
    runs: list[Run]
    fingerprint: str
    n_examples: int

    def stage(self, name: str) -> list[Run]:
        return [r for r in self.runs if r.stage == name]

    def splits(self) -> dict[str, Any]:
        """Every subject list the benchmark uses, for the results folder."""
        return {"test": self.test, "pool": self.pool,
                "runs": {r.run_id: {"train": r.train, "val": r.val, "test": r.test} for r in self.runs}}


# -- planning ------------------------------------------------------------------------------------
def parse_fractions(text: str) -> list[float]:
    """``0.05,0.1,1.0``; ``linear:N`` (1/N, 2/N, ..., 1, as Tan 2024 for small sets); or
    ``log:MIN:N`` (N fractions log-spaced from MIN to 1, as Tan 2024 for large sets)."""
    text = text.strip()
    try:
        if text.startswith("linear:"):
            n = int(text.split(":")[1])
            values = [(i + 1) / n for i in range(n)] if n >= 1 else []
        elif text.startswith("log:"):
            _, low, n = text.split(":")
            values = [float(v) for v in np.geomspace(float(low), 1.0, int(n))] if int(n) >= 2 else [1.0]
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v <= 1 for v in values):
        raise UsageError(f"--label-fractions {text!r}: give fractions in (0, 1] (0.1,0.5,1), linear:N or log:MIN:N")
    return sorted({round(v, 4) for v in values})


def group_kfold(groups: list[str], sizes: dict[str, int], folds: int, seed: int) -> list[list[str]]:
    """GroupKFold: whole groups (subjects) per fold, folds balanced by example count (largest
    group first into the fold with fewest examples; ties broken by a seeded shuffle)."""
    unique = sorted(set(groups))
    k = min(folds, len(unique))
    if k < 2:
        raise DataError(f"cross-validation needs at least 2 subjects; the subset has {len(unique)}")
    order = list(np.random.default_rng(seed).permutation(unique))
    order.sort(key=lambda g: -sizes.get(g, 0))  # stable: the shuffle breaks ties
    parts: list[list[str]] = [[] for _ in range(k)]
    load = [0] * k
    for g in order:
        i = int(np.argmin(load))
        parts[i].append(str(g))
        load[i] += max(1, sizes.get(g, 0))
    return [sorted(p) for p in parts]


def plan(data: list[str | Path], cfg: BenchmarkConfig) -> Plan:
    """Every run of the benchmark, with its subjects, before any training."""
    _check(cfg)
    data = [str(d) for d in data]
    inputs, targets = select_channels(cfg.inputs), select_channels(cfg.targets)
    trials = load_trials(data)
    sizes = _examples_per_subject(data, trials, cfg, inputs, targets)
    labelled = sorted(sizes)
    if len(labelled) < 3:
        raise DataError(f"the benchmark needs at least 3 subjects with {', '.join(inputs + targets)}; "
                        f"found {len(labelled)}")
    split = split_subjects(labelled, cfg.test_fraction, 0.0, cfg.split_seed)
    test, pool = split.test, split.train
    from gaitcli.train.workflows import data_fingerprint

    fingerprint = data_fingerprint(trials)
    base = {"config": _run_config(cfg), "fingerprint": fingerprint}
    runs: list[Run] = []
    pretrain_keys: dict[tuple[str, int], str] = {}
    if cfg.pretrain:
        # every subject's kinematics, labelled or not, except the test subjects'
        unlabelled_pool = sorted({t.subject for t in trials if t.has(inputs)} - set(test))
        for model in cfg.pretrain:
            for seed in cfg.seeds:
                run = Run("pretrain", model, "ssl", 1.0, seed, train=unlabelled_pool, test=test)
                run.key = _hash({**base, "run": run.run_id, "pool": unlabelled_pool})
                pretrain_keys[(model, seed)] = run.key
                runs.append(run)
    for model, variant in _variants(cfg):
        for fraction in cfg.label_fractions:
            for seed in cfg.seeds:
                subset = label_subset(pool, fraction, seed)
                upstream = pretrain_keys.get((model, seed), cfg.pretrained and _file_hash(cfg.pretrained))
                identity = {**base, "model": model, "variant": variant, "fraction": fraction, "seed": seed,
                            "subset": subset, "test": test, "upstream": upstream if variant == "ssl" else None}
                fold_keys = []
                for k, held in enumerate(group_kfold(subset, sizes, cfg.folds, seed)):
                    run = Run("cv", model, variant, fraction, seed, k,
                              train=[s for s in subset if s not in held], val=held, test=test)
                    run.key = _hash({**identity, "fold": k, "val": held})
                    fold_keys.append(run.key)
                    runs.append(run)
                final = Run("final", model, variant, fraction, seed, train=subset, test=test)
                final.key = _hash({**identity, "folds": fold_keys})
                runs.append(final)
    return Plan(cfg, data, labelled, test, pool, runs, fingerprint, sum(sizes.values()))


def _check(cfg: BenchmarkConfig) -> None:
    from gaitcli.models.registry import sequence_models

    unknown = [m for m in cfg.models + cfg.pretrain if m not in sequence_models()]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(sequence_models())}")
    if not cfg.models:
        raise UsageError("--models: give at least one model")
    if cfg.unit not in ("cycles", "windows"):
        raise UsageError(f"--unit must be cycles or windows, not {cfg.unit!r}")
    bad = [f for f in cfg.label_fractions if not 0 < f <= 1]
    if bad or not cfg.label_fractions:
        raise UsageError("--label-fractions must be numbers in (0, 1], e.g. 0.1,0.5,1.0")
    if cfg.folds < 2:
        raise UsageError(f"--folds must be at least 2, not {cfg.folds}")
    if not 0 < cfg.test_fraction < 1:
        raise UsageError(f"--test-fraction must be in (0, 1), not {cfg.test_fraction}")
    if cfg.pretrained and cfg.pretrain:
        raise UsageError("give --pretrained CKPT or --pretrain MODELS, not both")
    if set(cfg.pretrain) - set(cfg.models):
        raise UsageError(f"--pretrain {','.join(cfg.pretrain)}: pretrain only models that are also in --models")
    if cfg.pretrained and not Path(cfg.pretrained).is_file():
        raise UsageError(f"--pretrained {cfg.pretrained}: no such file")


def _variants(cfg: BenchmarkConfig) -> list[tuple[str, str]]:
    variants = [(m, "scratch") for m in cfg.models]
    if cfg.pretrain:
        variants += [(m, "ssl") for m in cfg.pretrain]
    elif cfg.pretrained:
        from gaitcli.models.checkpoint import read_checkpoint_metadata

        meta = read_checkpoint_metadata(cfg.pretrained)
        name = meta["model"]["name"]
        if str(meta.get("unit", "windows")) != cfg.unit:
            raise UsageError(f"--pretrained {cfg.pretrained}: the model was pretrained on {meta.get('unit', 'windows')}, "
                             f"the benchmark uses {cfg.unit} (--unit)")
        if meta.get("inputs") != select_channels(cfg.inputs):
            raise UsageError(f"--pretrained {cfg.pretrained}: its inputs ({', '.join(meta.get('inputs', []))}) "
                             "differ from --inputs")
        if (name, "scratch") not in variants:
            variants.append((name, "scratch"))
        variants.append((name, "ssl"))
    return variants


def _examples_per_subject(data: list[str], trials, cfg: BenchmarkConfig, inputs: list[str],
                          targets: list[str]) -> dict[str, int]:
    """How many training examples (cycles or windows) each labelled subject has."""
    from gaitcli.train.workflows import examples

    spec = _spec(cfg, Split([], [], []))
    found = examples(data, trials, inputs, targets, spec, None)
    sizes: dict[str, int] = {}
    for subject in found.subjects:
        sizes[subject] = sizes.get(subject, 0) + 1
    return sizes


def _run_config(cfg: BenchmarkConfig) -> dict[str, Any]:
    """The settings that change a run's result (not jobs, strata or the device's name)."""
    settings = cfg.to_dict()
    for key in ("strata", "models", "seeds", "label_fractions", "device"):
        settings.pop(key)
    return settings


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# -- running -------------------------------------------------------------------------------------
Event = Callable[[str, Run, dict[str, Any] | None], None]  # ("cached" | "start" | "done" | "failed", run, result)


def result_path(out: Path, run: Run) -> Path:
    return out / "runs" / run.run_id / "result.json"


def cached_result(out: Path, run: Run) -> dict[str, Any] | None:
    path = result_path(out, run)
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return result if result.get("key") == run.key else None


def execute(bench: Plan, out: Path, jobs: int = 1, on_event: Event | None = None) -> dict[str, dict[str, Any]]:
    """Run every stage in order (pretraining, folds, finals), skipping runs already done;
    runs of one stage go in parallel processes with ``jobs`` > 1. Returns results by run id."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        todo = []
        for run in bench.stage(stage):
            found = cached_result(out, run)
            if found is not None:
                results[run.run_id] = found
                if on_event:
                    on_event("cached", run, found)
            else:
                todo.append(run)
        for run, result in _run_all(bench, out, todo, results, jobs, on_event):
            results[run.run_id] = result
    return results


def _run_all(bench: Plan, out: Path, todo: list[Run], done: dict[str, dict[str, Any]], jobs: int,
             on_event: Event | None) -> Iterable[tuple[Run, dict[str, Any]]]:
    tasks = [(run, _upstream(bench, run, out, done)) for run in todo]
    if jobs <= 1 or len(tasks) <= 1:
        for run, upstream in tasks:
            if on_event:
                on_event("start", run, None)
            result = run_one(bench.data, bench.config, run, out, upstream, threads=0)
            if on_event:
                on_event("done", run, result)
            yield run, result
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for run, upstream in tasks:
            if on_event:
                on_event("start", run, None)
            futures[pool.submit(run_one, bench.data, bench.config, run, out, upstream, threads)] = run
        for future in as_completed(futures):
            run = futures[future]
            result = future.result()
            if on_event:
                on_event("done", run, result)
            yield run, result


def _upstream(bench: Plan, run: Run, out: Path, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a run needs from earlier stages: the pretrained checkpoint, the folds' best epochs."""
    upstream: dict[str, Any] = {}
    if run.variant == "ssl" and run.stage != "pretrain":
        if bench.config.pretrained:
            upstream["checkpoint"] = bench.config.pretrained
        else:
            pre = Run("pretrain", run.model, "ssl", 1.0, run.seed)
            upstream["checkpoint"] = str(out / "runs" / pre.run_id / "model.safetensors")
    if run.stage == "final":
        folds = [r for r in bench.stage("cv") if (r.model, r.variant, r.fraction, r.seed)
                 == (run.model, run.variant, run.fraction, run.seed)]
        upstream["best_epochs"] = [done[r.run_id]["best_epoch"] for r in folds]
    return upstream


def run_one(data: list[str], cfg: BenchmarkConfig, run: Run, out: Path, upstream: dict[str, Any],
            threads: int = 0) -> dict[str, Any]:
    """Train (and for a final run, score) one run; its folder gets result.json last."""
    import torch

    from gaitcli.train import workflows
    from gaitcli.train.loop import TrainConfig

    if threads:
        torch.set_num_threads(threads)
    folder = result_path(out, run).parent
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished run of an earlier start: nothing in it is kept
    folder.mkdir(parents=True)
    began = time.perf_counter()
    train = TrainConfig(task="finetune", epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                        batch_size=cfg.batch_size, grad_clip=cfg.grad_clip, warmup_steps=cfg.warmup_steps,
                        schedule=cfg.schedule, patience=cfg.patience, device=cfg.device, seed=run.seed)
    checkpoint = folder / "model.safetensors"
    torch.manual_seed(run.seed)  # the same initial weights for a model and seed, in any process
    # fold runs are not scored on the test subjects: only their best epoch is used
    spec = _spec(cfg, Split(run.train, run.val, [] if run.stage == "cv" else run.test))
    overrides = cfg.model_overrides.get(run.model, {})
    if run.stage == "pretrain":
        pool = run.train  # early stopping on 10 % of these subjects
        n_val = max(1, round(0.1 * len(pool))) if len(pool) > 2 else 0
        order = list(np.random.default_rng(run.seed).permutation(pool))
        spec.split = {"train": sorted(order[n_val:]), "val": sorted(order[:n_val]), "test": run.test}
        train = replace(train, task="pretrain", epochs=cfg.pretrain_epochs, mask_ratio=0.1)
        meta = workflows.pretrain(data, checkpoint, run.model, spec, train, overrides)
    elif run.stage == "cv":
        meta = _finetune(data, cfg, run, spec, train, checkpoint, upstream, overrides)
    else:
        epochs = int(math.ceil(statistics.median([e + 1 for e in upstream["best_epochs"]])))
        train = replace(train, epochs=max(1, epochs), patience=0, keep_best=False)
        meta = _finetune(data, cfg, run, spec, train, checkpoint, upstream, overrides)
    result = {"key": run.key, "run_id": run.run_id, "stage": run.stage, "model": run.model,
              "variant": run.variant, "fraction": run.fraction, "seed": run.seed, "fold": run.fold,
              "train_subjects": run.train, "val_subjects": run.val, "epochs_run": meta["fit"]["epochs_run"],
              "best_epoch": meta["fit"]["best_epoch"], "best_val_loss": _finite(meta["fit"]["best_val_loss"]),
              "train_examples": meta["train_windows"], "parameters": _parameters(checkpoint)}
    if run.stage == "final":
        result["retrain_epochs"] = train.epochs
        result["fold_best_epochs"] = upstream["best_epochs"]
        _score(data, cfg, run, checkpoint, folder)
    elif run.stage == "cv":
        checkpoint.unlink()  # the fold's model is not needed once its best epoch is known
    result["seconds"] = round(time.perf_counter() - began, 2)
    _write_json(result_path(out, run), result)
    return result


def _finetune(data, cfg, run, spec, train, checkpoint, upstream, overrides) -> dict[str, Any]:
    from gaitcli.train import workflows

    if run.variant == "ssl":
        return workflows.finetune(Path(upstream["checkpoint"]), data, checkpoint, spec, train)
    if cfg.pretrained:
        from gaitcli.models.checkpoint import read_checkpoint_metadata

        meta = read_checkpoint_metadata(cfg.pretrained)
        if meta["model"]["name"] == run.model:  # the SSL model's own architecture, from scratch
            return workflows.finetune(Path(cfg.pretrained), data, checkpoint, spec, train, from_scratch=True)
    return workflows.finetune(None, data, checkpoint, spec, train, model_name=run.model,
                              model_overrides=overrides)


def _spec(cfg: BenchmarkConfig, split: Split):
    from gaitcli.train.workflows import DataSpec

    return DataSpec(inputs=cfg.inputs, targets=cfg.targets, unit=cfg.unit, window=cfg.window, stride=cfg.stride,
                    exclude_labels=[tuple(r) for r in cfg.exclude_labels],
                    split={"train": split.train, "val": split.val, "test": split.test})


def _score(data: list[str], cfg: BenchmarkConfig, run: Run, checkpoint: Path, folder: Path) -> None:
    """The final model on the test subjects: the prediction table (one row per sample) as Parquet."""
    from gaitcli.eval.evaluate import prediction_frame
    from gaitcli.io.parquet import write_table

    frame, targets, _ = prediction_frame(checkpoint, data, split="test")
    write_table(frame, folder / "predictions.parquet", {"run": run.run_id, "targets": targets})


def _parameters(checkpoint: Path) -> int | None:
    if not checkpoint.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(checkpoint), "np") as handle:
        return int(sum(np.prod(handle.get_slice(k).get_shape()) for k in handle.keys()))


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _write_json(path: Path, value: Any) -> None:
    from gaitcli.io.parquet import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(value, indent=2, default=str) + "\n").encode())


# -- estimates -----------------------------------------------------------------------------------
def estimate_seconds(bench: Plan, out: Path | None = None) -> dict[str, float]:
    """Time per optimiser step of each model, measured on a few batches of the data's shape, times
    the steps of the runs still to do (every fold run to --epochs: an upper bound)."""
    import torch

    from gaitcli.models.registry import create_model

    cfg = bench.config
    inputs, targets = select_channels(cfg.inputs), select_channels(cfg.targets)
    length = _example_length(bench)
    per_step: dict[str, float] = {}
    for model_name in {r.model for r in bench.runs}:
        model = create_model(model_name, in_channels=len(inputs), out_channels=len(targets),
                             **cfg.model_overrides.get(model_name, {}))
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        x = torch.randn(cfg.batch_size, length, len(inputs))
        timings = []
        for _ in range(4):
            began = time.perf_counter()
            loss = model(x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            timings.append(time.perf_counter() - began)
        per_step[model_name] = statistics.median(timings[1:])
    per_subject = bench.n_examples / max(1, len(bench.labelled_subjects))
    total, remaining = 0.0, 0.0
    for run in bench.runs:
        examples = per_subject * (len(bench.pool) if run.stage == "pretrain" else len(run.train))
        epochs = cfg.pretrain_epochs if run.stage == "pretrain" else cfg.epochs
        seconds = per_step[run.model] * epochs * math.ceil(examples / cfg.batch_size)
        total += seconds
        if out is None or cached_result(out, run) is None:
            remaining += seconds
    return {"upper_bound_s": total, "remaining_upper_bound_s": remaining, **{f"step_{k}_s": v for k, v in per_step.items()}}


def _example_length(bench: Plan) -> int:
    if bench.config.unit == "windows":
        return bench.config.window
    from gaitcli.data.windows import load_cycle_windows

    found = load_cycle_windows(bench.data, select_channels(bench.config.inputs), None, bench.labelled_subjects[:1])
    return int(found.inputs.shape[1]) if len(found) else 101


# -- the whole benchmark -------------------------------------------------------------------------
def write_plan(bench: Plan, out: Path) -> None:
    """config.json (with its hash) and splits.json: what the results were produced from."""
    out.mkdir(parents=True, exist_ok=True)
    from gaitcli import __version__

    _write_json(out / "config.json", {"config": bench.config.to_dict(), "hash": bench.config.digest(),
                                      "data": bench.data, "data_fingerprint": bench.fingerprint,
                                      "gait_version": __version__})
    _write_json(out / "splits.json", bench.splits())


def run_benchmark(data: list[str | Path], out: Path, cfg: BenchmarkConfig, jobs: int = 1,
                  on_event: Event | None = None) -> tuple[Plan, list[Path]]:
    """Plan, run (resuming), then write the tables, statistics, figures and report."""
    from gaitcli.eval.report import collect, write_results

    bench = plan(data, cfg)
    write_plan(bench, out)
    results = execute(bench, out, jobs, on_event)
    return bench, write_results(bench, out, collect(bench, out, results))


def report_only(data: list[str | Path], out: Path, cfg: BenchmarkConfig) -> tuple[Plan, list[Path]]:
    """The report again from the runs already done (every run must be there)."""
    from gaitcli.eval.report import collect, write_results

    bench = plan(data, cfg)
    results = {}
    missing = []
    for run in bench.runs:
        found = cached_result(out, run)
        if found is None:
            missing.append(run.run_id)
        else:
            results[run.run_id] = found
    if missing:
        raise DataError(f"{out}: {len(missing)} of {len(bench.runs)} runs are not done yet "
                        f"(first: {missing[0]}); run the benchmark to finish them")
    return bench, write_results(bench, out, collect(bench, out, results))
