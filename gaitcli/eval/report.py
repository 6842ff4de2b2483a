"""The benchmark's results folder: metric tables, statistics, a Markdown report and figures.

Everything here is computed from the runs' saved predictions, so a report can be rebuilt
(``gait benchmark --report-only``) without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitcli.data.windows import dataset_files, select_channels
from gaitcli.eval.metrics import evaluate_table
from gaitcli.eval.stats import mean_sd, pairwise_wilcoxon, stars

SUMMARY_METRICS = ("rmse", "mae", "r2", "pearson_r", "rrmse")
RUN_KEYS = ["label", "model", "variant", "fraction", "seed"]


@dataclass
class BenchmarkTables:
    metrics: pd.DataFrame  # label, model, variant, fraction, seed, subject, channel, metric, value
    strata: pd.DataFrame  # ... plus stratum, level
    runs: pd.DataFrame  # one row per run (stage, epochs, seconds, ...)
    waveforms: pd.DataFrame  # the largest fraction, first seed: plot_waveforms' format
    units: dict[str, str]


# -- tables ----------------------------------------------------------------------------------------
def collect(bench, out: Path, results: dict[str, dict[str, Any]]) -> BenchmarkTables:
    """Per-subject test metrics of every final run, overall and per stratum."""
    cfg = bench.config
    targets = select_channels(cfg.targets)
    cycle_meta = cycle_table(bench.data)
    metric_rows, strata_rows, waves = [], [], []
    top, first_seed = max(cfg.label_fractions), cfg.seeds[0]
    for run in bench.stage("final"):
        frame = pd.read_parquet(out / "runs" / run.run_id / "predictions.parquet")
        frame = add_strata(frame, cycle_meta, cfg.strata)
        tags = {"label": run.label, "model": run.model, "variant": run.variant, "fraction": run.fraction,
                "seed": run.seed}
        cycle_cols = ("trial", "cycle") if "cycle" in frame else ("trial",)
        report = evaluate_table(frame, targets, group_cols=("subject",), cycle_cols=cycle_cols)
        metric_rows.append(report.per_group.assign(**tags))
        for column in [c for c in cfg.strata if c in frame]:
            by = evaluate_table(frame, targets, group_cols=("subject",), by=(column,), cycle_cols=cycle_cols)
            strata_rows.append(by.per_group.rename(columns={column: "level"}).assign(stratum=column, **tags))
        if run.fraction == top and run.seed == first_seed:
            waves.append(_waveform_rows(frame, targets, run.label, bench.data))
    metrics = pd.concat(metric_rows, ignore_index=True)[RUN_KEYS + ["subject", "channel", "metric", "value"]]
    strata = pd.concat(strata_rows, ignore_index=True) if strata_rows else pd.DataFrame(
        columns=RUN_KEYS + ["stratum", "level", "subject", "channel", "metric", "value"])
    runs = pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in results.values()])
    waveforms = pd.concat([w for w in waves if len(w)], ignore_index=True) if any(len(w) for w in waves) \
        else pd.DataFrame()
    return BenchmarkTables(metrics, strata, runs.sort_values("run_id").reset_index(drop=True), waveforms,
                           _units(out, bench.stage("final")[0]))


def cycle_table(data: list[str]) -> pd.DataFrame:
    """One row per ingest gait cycle: subject, trial (``trial/side`` as cycle models name it),
    cycle, condition, cadence (steps/min; NaN for pre-normalised cycles whose duration is unknown)."""
    rows = []
    columns = ["subject", "trial", "condition", "side", "cycle", "cycle_duration_s", "event_source"]
    for path in dataset_files(data):
        if not path.name.endswith(".cycles.parquet"):
            continue
        frame = pd.read_parquet(path, columns=columns)
        if frame.empty:
            continue
        first = frame.drop_duplicates(["side", "cycle"])
        known = first["event_source"].astype(str) != "pre-normalised"
        rows.append(pd.DataFrame({
            "subject": first["subject"].astype(str).to_numpy(),
            "trial": (first["trial"].astype(str) + "/" + first["side"].astype(str)).to_numpy(),
            "base_trial": first["trial"].astype(str).to_numpy(),
            "side": first["side"].astype(str).to_numpy(), "cycle": first["cycle"].to_numpy(dtype=np.int64),
            "condition": first["condition"].astype(str).to_numpy(),
            "cadence": np.where(known, 120.0 / first["cycle_duration_s"].to_numpy(dtype=float), np.nan)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["subject", "trial", "base_trial", "side", "cycle", "condition", "cadence"])


def add_strata(frame: pd.DataFrame, cycles: pd.DataFrame, strata: list[str]) -> pd.DataFrame:
    """Stratum columns for a prediction table: ``cadence`` as tertiles (per cycle for cycle
    predictions, per trial's median for continuous ones), ``side``, ``condition``; other numeric
    columns binned in tertiles too. Strata with a single level are left out."""
    frame = frame.copy()
    if "cycle" in frame:
        keys = cycles[["subject", "trial", "cycle", "side", "cadence", "condition"]]
        frame = frame.drop(columns=[c for c in ("side", "condition") if c in frame]).merge(
            keys, on=["subject", "trial", "cycle"], how="left")
    else:
        per_trial = cycles.groupby(["subject", "base_trial"], as_index=False)["cadence"].median()
        frame = frame.merge(per_trial.rename(columns={"base_trial": "trial"}), on=["subject", "trial"], how="left")
    for column in strata:
        if column not in frame:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            frame[column] = tertiles(values.to_numpy(dtype=float), "steps/min" if column == "cadence" else "")
        else:
            frame[column] = values.astype(str).replace({"": "(none)", "nan": "(none)"})
        if frame[column].nunique() < 2:
            frame = frame.drop(columns=column)
    return frame


def tertiles(values: np.ndarray, unit: str = "") -> np.ndarray:
    """Low / middle / high thirds of the finite values, labelled with their bounds."""
    finite = values[np.isfinite(values)]
    labels = np.full(values.shape, "unknown", dtype=object)
    if finite.size < 3:
        return labels
    low, high = np.quantile(finite, [1 / 3, 2 / 3])
    suffix = f" {unit}" if unit else ""
    labels[np.isfinite(values) & (values < low)] = f"low (< {low:.0f}{suffix})"
    labels[np.isfinite(values) & (values >= low) & (values < high)] = f"middle ({low:.0f}-{high:.0f}{suffix})"
    labels[np.isfinite(values) & (values >= high)] = f"high (>= {high:.0f}{suffix})"
    return labels


def _waveform_rows(frame: pd.DataFrame, targets: list[str], label: str, data: list[str]) -> pd.DataFrame:
    """Reference and prediction per gait-cycle percent, long format, for plot_waveforms."""
    if "percent" not in frame:
        from gaitcli.errors import DataError
        from gaitcli.eval.evaluate import cycle_waveforms

        try:
            return cycle_waveforms(frame, data, targets, model=label)
        except DataError:  # test trials without recorded cycles (tiled mean cycles): no waveform
            return pd.DataFrame()
    from gaitcli.eval.evaluate import channel_side

    parts = []
    cycle_id = frame["subject"].astype(str) + "/" + frame["trial"].astype(str) + "/" + frame["cycle"].astype(str)
    cycle_side = frame["trial"].astype(str).str.rsplit("/", n=1).str[-1]  # cycle examples: "trial/side"
    for channel in targets:
        # a sided channel over its own side's cycles only: the other side's cycles shift it by half a cycle
        own = (cycle_side == (channel_side(channel) or "r")).to_numpy(dtype=bool)
        parts.append(pd.DataFrame({"model": label, "channel": channel, "percent": frame["percent"].to_numpy()[own],
                                   "cycle_id": cycle_id.to_numpy()[own], "reference": frame[channel].to_numpy()[own],
                                   "predicted": frame[channel + "_pred"].to_numpy()[own]}))
    return pd.concat(parts, ignore_index=True)


def _units(out: Path, run) -> dict[str, str]:
    """The targets' units, as the final model's checkpoint recorded them at training."""
    from gaitcli.models.checkpoint import read_checkpoint_metadata

    return dict(read_checkpoint_metadata(out / "runs" / run.run_id / "model.safetensors").get("units", {}))


def subject_means(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One value per (run label, fraction, subject): the metric averaged over channels and seeds."""
    chosen = metrics[metrics["metric"] == metric]
    return chosen.groupby(["label", "model", "variant", "fraction", "subject"], as_index=False)["value"].mean()


def overall_table(metrics: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Mean ± SD across test subjects of each metric (channels and seeds averaged per subject)."""
    rows = []
    at = metrics[metrics["fraction"] == fraction]
    for metric in SUMMARY_METRICS:
        table = mean_sd(subject_means(at, metric), "value", ["label"])
        rows.append(table.assign(metric=metric))
    return pd.concat(rows, ignore_index=True)


def comparisons(metrics: pd.DataFrame, fraction: float, metric: str = "rmse") -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests between run labels on per-subject values, Holm-corrected."""
    at = metrics[(metrics["fraction"] == fraction) & (metrics["metric"] == metric)]
    return pairwise_wilcoxon(subject_means(at, metric), "value", "label", "subject").assign(metric=metric)


def ssl_vs_scratch(metrics: pd.DataFrame, metric: str = "rmse") -> pd.DataFrame:
    """At each label fraction, each SSL model against its from-scratch twin (Holm across fractions)."""
    from gaitcli.eval.stats import holm

    rows = []
    for model in sorted(metrics.loc[metrics["variant"] == "ssl", "model"].unique()):
        mine = metrics[metrics["model"] == model]
        part = []
        for fraction in sorted(mine["fraction"].unique()):
            test = pairwise_wilcoxon(subject_means(mine[mine["fraction"] == fraction], metric), "value", "variant",
                                     "subject")
            if len(test):
                row = test.iloc[0].to_dict()
                flip = row["a"] == "scratch"  # report ssl - scratch
                part.append({"model": model, "fraction": fraction, "n": row["n"],
                             "median_diff": -row["median_diff"] if flip else row["median_diff"], "p": row["p"]})
        if part:
            frame = pd.DataFrame(part)
            frame["p_holm"] = holm(frame["p"].to_numpy())
            rows.append(frame)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


# -- writing ---------------------------------------------------------------------------------------
def write_results(bench, out: Path, tables: BenchmarkTables) -> list[Path]:
    """metrics.csv/.parquet, strata.csv, runs.csv, statistics.csv, figures and report.md."""
    from gaitcli.io.parquet import write_table

    write_table(tables.metrics, out / "metrics.parquet", {"config_hash": bench.config.digest()})
    written = [out / "metrics.parquet"]
    for name, frame in (("metrics", tables.metrics), ("strata", tables.strata), ("runs", tables.runs)):
        written.append(_write_csv(out / f"{name}.csv", frame))
    top = max(bench.config.label_fractions)
    stats = pd.concat([comparisons(tables.metrics, top, m) for m in ("rmse", "mae", "r2")], ignore_index=True)
    written.append(_write_csv(out / "statistics.csv", stats))
    figures, figure_note = _figures(bench, out, tables)
    written += figures
    markdown = render_markdown(bench, tables, stats, figures, figure_note)
    written.append(_write_text(out / "report.md", markdown))
    return written


def _figures(bench, out: Path, tables: BenchmarkTables) -> tuple[list[Path], str]:
    from gaitcli.eval import plots

    if not plots.matplotlib_available():
        return [], ("Figures were not drawn: matplotlib is not installed "
                    "(`pip install matplotlib`, or the `plots` extra).")
    figures = []
    targets = select_channels(bench.config.targets)
    labels = _label_order(bench)
    unit = tables.units.get(targets[0], "")
    top = max(bench.config.label_fractions)
    if len(tables.waveforms):
        waves = _in_order(tables.waveforms, "model", labels, targets)
        figures.append(plots.plot_waveforms(waves, out / "figures" / "waveforms.png",
                                            title=f"Test subjects: reference vs predicted, {top:.0%} of labels",
                                            units=tables.units))
    at_top = tables.metrics[(tables.metrics["fraction"] == top) & (tables.metrics["metric"] == "rmse")]
    boxes = at_top.groupby(["label", "channel", "subject"], as_index=False)["value"].mean()
    boxes = _in_order(boxes.rename(columns={"label": "model", "value": "rmse"}), "model", labels, targets)
    figures.append(plots.plot_subject_boxes(boxes,
                                            out / "figures" / "subjects_rmse.png", "rmse", unit))
    if len(bench.config.label_fractions) > 1:
        curve = _in_order(subject_means(tables.metrics, "rmse").rename(columns={"value": "rmse"}), "label", labels)
        figures.append(plots.plot_efficiency(curve, out / "figures" / "data_efficiency.png", "rmse", unit))
    return figures, ""


def _label_order(bench) -> list[str]:
    """Models in the order given, then their SSL variants: the same colours in every figure."""
    finals = bench.stage("final")
    return list(dict.fromkeys([r.label for r in finals if r.variant == "scratch"] +
                              [r.label for r in finals if r.variant == "ssl"]))


def _in_order(frame: pd.DataFrame, column: str, labels: list[str], channels: list[str] | None = None) -> pd.DataFrame:
    keys = {label: i for i, label in enumerate(labels)}
    order = frame[column].map(keys).fillna(len(keys)).to_numpy()
    if channels is not None and "channel" in frame:
        order = order * 1000 + frame["channel"].map({c: i for i, c in enumerate(channels)}).fillna(999).to_numpy()
    return frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def render_markdown(bench, tables: BenchmarkTables, stats: pd.DataFrame, figures: list[Path],
                    figure_note: str) -> str:
    cfg = bench.config
    top = max(cfg.label_fractions)
    targets = select_channels(cfg.targets)
    unit = tables.units.get(targets[0], "")
    lines = ["# Benchmark report", "",
             f"Config hash `{cfg.digest()}` (full settings in `config.json`), data fingerprint `{bench.fingerprint}`.",
             "",
             f"- Data: {', '.join(bench.data)}; {len(bench.labelled_subjects)} labelled subjects, "
             f"{bench.n_examples} {cfg.unit}.",
             f"- Inputs `{cfg.inputs}` -> targets `{cfg.targets}` ({', '.join(targets)}; {unit}).",
             f"- Test subjects ({len(bench.test)}, fixed for every run): {', '.join(bench.test)}.",
             f"- Training pool: {len(bench.pool)} subjects; {cfg.folds}-fold cross-validation grouped by subject, "
             f"early stopping (patience {cfg.patience}, at most {cfg.epochs} epochs), then retraining on the whole "
             "pool subset for the median best epoch.",
             f"- Optimiser: AdamW lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, batch {cfg.batch_size}, "
             f"gradient clip {cfg.grad_clip:g}, {cfg.schedule} schedule; seeds {', '.join(map(str, cfg.seeds))}.",
             "- Each metric is computed per test subject (all its samples, channels averaged, seeds averaged), "
             "then reported as mean ± SD across subjects.", ""]
    lines += ["## Test-set results", "", f"Label fraction {top:g}.", ""]
    overall = overall_table(tables.metrics, top)
    labels = _label_order(bench)
    lines += _table(_in_order(overall, "label", labels), "label", "metric", ["rmse", "mae", "r2", "pearson_r", "rrmse"],
                    {"rmse": f"RMSE ({unit})", "mae": f"MAE ({unit})", "r2": "R²", "pearson_r": "r",
                     "rrmse": "rRMSE (%)"})
    lines += ["", "### Per channel (RMSE, " + unit + ")", ""]
    at = tables.metrics[(tables.metrics["fraction"] == top) & (tables.metrics["metric"] == "rmse")]
    per_channel = mean_sd(at.groupby(["label", "channel", "subject"], as_index=False)["value"].mean(), "value",
                          ["label", "channel"])
    lines += _table(_in_order(per_channel, "label", labels), "label", "channel", targets, {c: c for c in targets})
    lines += ["", "### Pairwise comparisons", "",
              "Wilcoxon signed-rank tests on per-subject values, paired by subject; Holm correction over the "
              "pairs of each metric. ** p < 0.01, * p < 0.05, ns otherwise.", "",
              "| metric | A | B | n | median A − B | p | p (Holm) | |", "|---|---|---|---|---|---|---|---|"]
    for row in stats.itertuples(index=False):
        lines.append(f"| {row.metric} | {row.a} | {row.b} | {row.n} | {row.median_diff:.4f} | {_p(row.p)} | "
                     f"{_p(row.p_holm)} | {stars(row.p_holm)} |")
    if len(tables.strata):
        lines += ["", "### Per stratum (RMSE, " + unit + ")", ""]
        st = tables.strata[(tables.strata["fraction"] == top) & (tables.strata["metric"] == "rmse")]
        for stratum, sub in st.groupby("stratum"):
            per = sub.groupby(["label", "level", "subject"], as_index=False)["value"].mean()
            table = mean_sd(per, "value", ["label", "level"])
            lines += [f"{stratum}:", ""]
            levels = sorted(table["level"].unique(), key=_level_order)
            lines += _table(_in_order(table, "label", labels), "label", "level", levels, None, with_n=True)
            lines.append("")
    if len(cfg.label_fractions) > 1:
        lines += ["", "## Data efficiency", "", f"RMSE ({unit}) on the test subjects by the fraction of training-pool "
                  "subjects with labels.", ""]
        curve = mean_sd(subject_means(tables.metrics, "rmse"), "value", ["label", "fraction"])
        fractions = sorted(curve["fraction"].unique())
        curve["fraction"] = curve["fraction"].map(lambda f: f"{f:g}")
        lines += _table(_in_order(curve, "label", labels), "label", "fraction", [f"{f:g}" for f in fractions], None)
        versus = ssl_vs_scratch(tables.metrics)
        if len(versus):
            lines += ["", "SSL fine-tuned vs from scratch (Wilcoxon, Holm across fractions):", "",
                      "| model | fraction | n | median SSL − scratch | p | p (Holm) | |", "|---|---|---|---|---|---|---|"]
            for row in versus.itertuples(index=False):
                lines.append(f"| {row.model} | {row.fraction:g} | {row.n} | {row.median_diff:.4f} | {_p(row.p)} | "
                             f"{_p(row.p_holm)} | {stars(row.p_holm)} |")
    lines += ["", "## Training", "", "| run | best epochs (folds) | retrain epochs | train examples | parameters | "
              "seconds |", "|---|---|---|---|---|---|"]
    runs = tables.runs
    for row in runs[runs["stage"] == "final"].itertuples(index=False):
        lines.append(f"| {row.run_id.removeprefix('final/')} | {_fold_epochs(runs, row)} | {int(row.retrain_epochs)} | "
                     f"{row.train_examples} | {int(row.parameters or 0):,} | {row.seconds:.0f} |")
    lines.append("")
    lines.append(f"Training time summed over the {len(runs)} runs: {runs['seconds'].sum() / 60:.1f} min "
                 "(with --jobs N, runs of a stage overlap, so the wall time is shorter).")
    lines += ["", "## Figures", ""]
    if figure_note:
        lines.append(figure_note)
    for path in figures:
        lines.append(f"![{path.stem}](figures/{path.name})")
    return "\n".join(lines) + "\n"


def _level_order(level: str) -> tuple[int, str]:
    """Tertile levels low, middle, high first, in that order; others alphabetically after."""
    for rank, prefix in enumerate(("low", "middle", "high")):
        if level.startswith(prefix):
            return rank, level
    return 3, level


def _fold_epochs(runs: pd.DataFrame, final) -> str:
    folds = runs[(runs["stage"] == "cv") & (runs["model"] == final.model) & (runs["variant"] == final.variant)
                 & (runs["fraction"] == final.fraction) & (runs["seed"] == final.seed)]
    return ", ".join(str(int(e) + 1) for e in folds.sort_values("fold")["best_epoch"])


def _table(frame: pd.DataFrame, row: str, column: str, columns: list[str], titles: dict[str, str] | None,
           with_n: bool = False) -> list[str]:
    """A Markdown table of "mean ± SD" cells (and the subject count): one line per ``row`` value (a
    run label: in the order models were given), one column per ``column`` value."""
    titles = titles or {c: c for c in columns}
    heading = "model" if row == "label" else row
    lines = ["| " + " | ".join([heading] + [titles[c] for c in columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, sub in frame.groupby(row, sort=False):
        cells = []
        for c in columns:
            hit = sub[sub[column].astype(str) == str(c)]
            cells.append(_cell(hit.iloc[0]) + (f" (n = {int(hit.iloc[0]['n'])})" if with_n else "") if len(hit) else "")
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return lines


def _cell(row: pd.Series) -> str:
    sd = "" if pd.isna(row["sd"]) else f" ± {row['sd']:.3f}"
    return f"{row['mean']:.3f}{sd}"


def _p(value: float) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return _write_text(path, frame.to_csv(index=False))


def _write_text(path: Path, text: str) -> Path:
    from gaitcli.io.parquet import atomic_write_bytes

    atomic_write_bytes(path, text.encode())
    return path
