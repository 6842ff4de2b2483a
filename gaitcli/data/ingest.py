"""``gait ingest`` as a library: lab export files in, Parquet trials and cycles out.

Inputs are files, folders (searched recursively) or glob patterns. Files of one capture are
grouped into one trial (see :func:`group_trials`); each trial is read, named, resampled,
segmented and written atomically. A file that fails is reported with a one-line reason and
the batch goes on. Re-running over the same inputs with the same options skips trials whose
sources are unchanged (sha256) and never duplicates rows: each trial is one file, replaced
as a whole.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import re
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from gaitcli import __version__
from gaitcli.data import schema
from gaitcli.data.cycles import count_reasons
from gaitcli.data.timeseries import SIDES, Recording
from gaitcli.data.trials import Trial, TrialOptions, assemble
from gaitcli.errors import GaitError, ReadError, UsageError, debug_enabled
from gaitcli.io import readers

# File-name tokens that name a file's role in a trial rather than the trial itself.
ROLE_SUFFIX = re.compile(r"(?i)([_\-. ]?(ik|grf|id|inversedynamics|inverse_dynamics|markers|forces|"
                         r"kinematics|kinetics|states|coordinates)|(ang|knt|mkr))$")
ROLE_PREFIX = re.compile(r"(?i)^(ik|grf|id|coordinates|states|std)([_\-. ]|$)")
SUBJECT_PATTERNS = (r"(?i)(subject\d+)", r"(WBDS\d+)", r"(NP\d{4})", r"(HC\d{3}[A-Z])", r"(?i)\b(sub-?\d+)")
GENERIC_MODELS = re.compile(r"(?i)^(rajagopal20\d\d|gait2392.*|gait2354.*|laiuhlrich20\d\d|hamner20\d\d.*|"
                            r"arnold20\d\d.*|fullbodymodel.*)\.osim$")


@dataclass
class IngestOptions(TrialOptions):
    jobs: int = 1
    subjects_csv: Path | None = None
    subject_pattern: str | None = None
    condition: str = ""
    force: bool = False  # re-ingest even when the sources are unchanged


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class TrialSummary:
    subject: str
    trial: str
    files: list[str]
    cycles: dict[str, int]
    rejected: dict[str, int]
    status: str  # "written" or "unchanged"
    outputs: list[str]
    mass_kg: float | None = None
    mass_source: str = "unknown"
    event_sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    files: int = 0
    trials: list[TrialSummary] = field(default_factory=list)
    failures: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)

    @property
    def cycles(self) -> dict[str, int]:
        return {side: sum(t.cycles.get(side, 0) for t in self.trials) for side in SIDES}

    def to_dict(self) -> dict:
        return {"files": self.files, "trials": len(self.trials), "cycles": self.cycles,
                "written": sum(t.status == "written" for t in self.trials),
                "unchanged": sum(t.status == "unchanged" for t in self.trials),
                "failures": [asdict(p) for p in self.failures],
                "skipped": [asdict(p) for p in self.skipped],
                "trial_details": [asdict(t) for t in self.trials]}


# -- discovery and grouping --------------------------------------------------------------------
def discover(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Candidate data files under the inputs, and the files passed over with the reason."""
    files: list[Path] = []
    skipped: list[Problem] = []
    for item in inputs:
        item = str(item)
        matches = [Path(m) for m in sorted(glob.glob(item, recursive=True))] if any(c in item for c in "*?[") else [Path(item)]
        if not matches:
            raise UsageError(f"{item}: no such file, folder or matching pattern")
        for path in matches:
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            elif path.exists():
                found = [path]
            else:
                raise UsageError(f"{path}: no such file or folder")
            for f in found:
                if readers.is_candidate(f) and (not path.is_dir() or readers.looks_like_data(f)):
                    files.append(f)
                elif path.is_dir():
                    skipped.append(Problem(str(f), readers.why_not_data(f)))
                else:
                    files.append(f)  # named explicitly: the reader says why it cannot
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, skipped


def trial_stem(path: Path) -> str:
    stem = path.stem
    stripped = ROLE_PREFIX.sub("", stem)
    stripped = ROLE_SUFFIX.sub("", stripped)
    return stripped.strip("_-. ")


@dataclass
class TrialGroup:
    subject: str
    trial: str
    files: list[Path]
    subject_from_folder: bool = False  # no name pattern matched: a subject name in the file wins


def group_trials(files: list[Path], subject_pattern: str | None = None) -> list[TrialGroup]:
    """Files of one capture form one trial.

    C3D files are trials on their own. Other files in one folder share a trial when their
    names agree once role words are removed (``subject01_walk1_ik.mot`` and
    ``subject01_walk1_grf.mot``; ``WBDS01walkOCang.txt`` and ``...knt.txt``); a file whose name
    is only a role word (``coordinates.sto``) joins the folder's trial when there is exactly one,
    and one named for less (``std_subject01_InverseDynamics.sto``, reduced to ``subject01``) joins
    the single trial whose name extends it (``subject01_walk1``).
    """
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    groups: list[TrialGroup] = []
    for f in files:
        if f.suffix.lower() == ".c3d":
            groups.append(TrialGroup("", f.stem, [f]))
        else:
            by_folder[f.parent].append(f)
    for folder, members in by_folder.items():
        stems: dict[str, list[Path]] = defaultdict(list)
        for f in members:
            stems[trial_stem(f)].append(f)
        named = [s for s in stems if s]
        if "" in stems and len(named) == 1:
            stems[named[0]] += stems.pop("")
        for short in sorted(named, key=len):
            longer = [s for s in stems if s != short and s.startswith(short + "_")]
            if len(longer) == 1 and short in stems:
                stems[longer[0]] += stems.pop(short)
        for stem, group_files in stems.items():
            groups.append(TrialGroup("", stem or folder.name, sorted(group_files)))
    for g in groups:
        subject = subject_from_name(g.trial, g.files[0], subject_pattern)
        g.subject, g.subject_from_folder = subject or g.files[0].parent.name, subject is None
    return _unique_trial_names(groups)


def subject_from_name(trial: str, path: Path, pattern: str | None = None) -> str | None:
    for p in ([pattern] if pattern else []) + list(SUBJECT_PATTERNS):
        m = re.search(p, trial) or re.search(p, path.name)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return None


def _unique_trial_names(groups: list[TrialGroup]) -> list[TrialGroup]:
    """Trials with the same subject and name get their folder name appended (deterministic)."""
    seen: dict[tuple[str, str], list[TrialGroup]] = defaultdict(list)
    for g in groups:
        seen[(g.subject, g.trial)].append(g)
    for clash in seen.values():
        if len(clash) > 1:
            for g in clash:
                g.trial = f"{g.trial}__{g.files[0].parent.name}"
    return sorted(groups, key=lambda g: (g.subject, g.trial))


# -- body mass ---------------------------------------------------------------------------------
def read_subjects_csv(path: Path) -> dict[str, dict[str, float]]:
    """subject -> {mass_kg, height_m}. Columns: subject, mass_kg, height_m (optional)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read subjects table ({exc})") from None
    if not rows or "subject" not in rows[0] or "mass_kg" not in rows[0]:
        raise UsageError(f"{path}: subjects table needs columns 'subject' and 'mass_kg'")
    table = {}
    for k, row in enumerate(rows, start=2):
        try:
            table[row["subject"].strip()] = {
                "mass_kg": float(row["mass_kg"]),
                **({"height_m": float(row["height_m"])} if row.get("height_m") else {}),
            }
        except ValueError:
            raise UsageError(f"{path}: line {k}: mass_kg/height_m must be numbers") from None
    return table


def model_beside(files: list[Path]) -> Path | None:
    """A subject-scaled .osim in the trial's folder or its direct subfolders (generic models ignored)."""
    folder = files[0].parent
    candidates = sorted(folder.glob("*.osim")) + sorted(folder.glob("*/*.osim"))
    scaled = [m for m in candidates if not GENERIC_MODELS.match(m.name)]
    return scaled[0] if scaled else None


def resolve_mass(group: TrialGroup, recs: list[Recording], options: IngestOptions,
                 subjects: dict[str, dict[str, float]]) -> tuple[float | None, str, float | None]:
    """(mass kg, where it came from, height m): --mass, subjects.csv, the C3D, a scaled .osim."""
    height = next((float(f"{r.subject.height_m:.7g}") for r in recs if r.subject.height_m), None)
    if options.mass_kg:
        return options.mass_kg, "--mass", height
    if group.subject in subjects:
        row = subjects[group.subject]
        return row["mass_kg"], "subjects.csv", row.get("height_m", height)
    for rec in recs:
        if rec.subject.mass_kg and rec.subject.mass_kg > 0:
            # C3D stores REALs as float32: 32.1 reads as 32.099998...; keep float32's precision.
            mass = float(f"{rec.subject.mass_kg:.7g}")
            return mass, rec.subject.sources.get("mass_kg", rec.format), height
    model = model_beside(group.files) if any(r.format in ("mot", "sto") for r in recs) else None
    if model is not None:
        from gaitcli.io.opensim_files import model_info

        try:
            return float(f"{model_info(model).mass_kg:.7g}"), f"model {model.name}", height
        except ReadError:
            pass
    return None, "unknown", height


# -- one trial ---------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def options_fingerprint(options: IngestOptions) -> str:
    relevant = {k: v for k, v in asdict(options).items() if k not in ("jobs", "force")}
    relevant["gait"] = __version__
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TrialOutcome:
    summary: TrialSummary | None
    failures: list[Problem]
    manifest_entry: dict | None


def process_group(group: TrialGroup, out: Path, options: IngestOptions,
                  subjects: dict[str, dict[str, float]], previous: dict | None) -> TrialOutcome:
    """Read, assemble and write one trial. Never raises for bad data: failures are returned."""
    hashes = {str(f): sha256(f) for f in group.files}
    fingerprint = options_fingerprint(options)
    if (previous and not options.force and previous.get("sources") == hashes
            and previous.get("options") == fingerprint
            and all((out / o).exists() for o in previous.get("outputs", []))):
        summary = TrialSummary(**{**previous["summary"], "status": "unchanged"})
        return TrialOutcome(summary, [], previous)
    recs, failures = [], []
    for f in group.files:
        try:
            recs.append(_read(f, group))
        except ReadError as exc:  # UnsupportedFile included
            failures.append(Problem(str(f), exc.reason))
    if not recs:
        return TrialOutcome(None, failures, None)
    try:
        trial = _assemble_group(group, recs, options, subjects)
        outputs = write_trial(trial, out, hashes, options)
    except GaitError as exc:
        return TrialOutcome(None, failures + [Problem(_label(group), str(exc))], None)
    except MemoryError:
        return TrialOutcome(None, failures + [Problem(_label(group), "too large to process in memory")], None)
    except (ValueError, FloatingPointError, IndexError, KeyError, np.linalg.LinAlgError) as exc:
        # Data the pipeline cannot use: named, not a traceback. --debug in the CLI re-raises.
        if debug_enabled():
            raise
        return TrialOutcome(None, failures + [Problem(_label(group), f"cannot process: {exc}")], None)
    summary = TrialSummary(
        subject=trial.subject, trial=trial.trial, files=[str(f) for f in group.files],
        cycles={s: sum(c.side == s for c in trial.cycles) for s in SIDES},
        rejected=count_reasons([r for _, r in trial.rejected]), status="written", outputs=outputs,
        mass_kg=trial.mass_kg, mass_source=trial.mass_source, event_sources=trial.event_sources,
        warnings=trial.warnings,
    )
    entry = {"sources": hashes, "options": fingerprint, "outputs": outputs, "summary": asdict(summary)}
    return TrialOutcome(summary, failures, entry)


def _label(group: TrialGroup) -> str:
    return str(group.files[0]) if len(group.files) == 1 else f"{group.files[0].parent}/{group.trial} ({len(group.files)} files)"


def _read(path: Path, group: TrialGroup) -> Recording:
    if path.suffix.lower() in (".mot", ".sto"):
        from gaitcli.io.opensim_files import read_opensim

        return read_opensim(path, model=model_beside(group.files))
    return readers.read_recording(path)


def _slot_sides(recs: list[Recording]) -> dict[Path, dict[str, str]]:
    from gaitcli.io.external_loads import slot_sides_for

    return {r.path: slot_sides_for(r.path) for r in recs if r.format in ("mot", "sto")}


def _assemble_group(group: TrialGroup, recs: list[Recording], options: IngestOptions,
                    subjects: dict[str, dict[str, float]]) -> Trial:
    """Subject id, body mass and the canonical trial, the same for ``ingest`` and ``predict``."""
    named = next((r.subject.name for r in recs if r.subject.name), None)
    if group.subject_from_folder and named:
        group = TrialGroup(_safe(named), group.trial, group.files)
    mass, mass_source, height = resolve_mass(group, recs, options, subjects)
    return assemble(recs, group.subject, group.trial, options.condition, mass, mass_source, height, options,
                    slot_sides=_slot_sides(recs))


def build_trial(files: list[str | Path], options: IngestOptions | None = None) -> Trial:
    """Read and assemble the files of one capture, in memory (what ``predict`` uses).

    Raises ReadError or DataError with a one-line reason; writes nothing.
    """
    options = options or IngestOptions()
    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise ReadError(path, "no such file")
    groups = group_trials([p.resolve() for p in paths], options.subject_pattern)
    if len(groups) != 1:
        raise UsageError("the files given do not form one trial: " + ", ".join(p.name for p in paths))
    recs = [_read(f, groups[0]) for f in groups[0].files]
    subjects = read_subjects_csv(options.subjects_csv) if options.subjects_csv else {}
    return _assemble_group(groups[0], recs, options, subjects)


# -- writing -----------------------------------------------------------------------------------
def _metadata(trial: Trial, kind: str, hashes: dict[str, str], options: IngestOptions) -> dict:
    return {
        "schema_version": schema.SCHEMA_VERSION, "gait_version": __version__, "kind": kind,
        "subject": trial.subject, "trial": trial.trial, "condition": trial.condition,
        "sources": [{"path": p, "sha256": h} for p, h in hashes.items()],
        "rate_hz": options.rate if trial.continuous is not None else None,
        "points": options.points, "units": trial.units,
        "mass_kg": trial.mass_kg, "height_m": trial.height_m, "mass_source": trial.mass_source,
        "mass_normalised": trial.mass_normalised, "event_sources": trial.event_sources,
        "events": [asdict(e) for e in trial.events],
        "rejected_cycles": [{"side": c.side, "start": c.start, "end": c.end, "reason": r} for c, r in trial.rejected],
        "lowpass_hz": options.lowpass, "notes": trial.notes, "warnings": trial.warnings,
    }


def _constant(value: str, n: int):
    """A string column holding one value: an Arrow dictionary array, no per-row Python objects."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([value]))


def _labels(values: list[str], points: int):
    """One string per cycle, repeated over its points, as an Arrow dictionary array."""
    import pyarrow as pa

    names = sorted(set(values))
    codes = np.repeat(np.array([names.index(v) for v in values], dtype=np.int32), points)
    return pa.DictionaryArray.from_arrays(codes, pa.array(names, type=pa.string()))


def continuous_columns(trial: Trial) -> dict:
    ts = trial.continuous
    n = len(ts)
    columns = {"subject": _constant(trial.subject, n), "trial": _constant(trial.trial, n),
               "condition": _constant(trial.condition, n), "time": ts.time}
    columns.update({name: ts.data[:, j] for j, name in enumerate(ts.channels)})
    return columns


def cycles_columns(trial: Trial, points: int) -> dict:
    n = len(trial.cycles)
    values = trial.cycle_values.reshape(n * points, len(trial.channels))
    repeat = lambda items, dtype: np.repeat(np.asarray(items, dtype=dtype), points)  # noqa: E731
    columns = {
        "subject": _constant(trial.subject, n * points),
        "trial": _constant(trial.trial, n * points),
        "condition": _constant(trial.condition, n * points),
        "side": _labels([c.side for c in trial.cycles], points),
        "cycle": repeat([c.index for c in trial.cycles], np.int32),
        "point": np.tile(np.arange(points, dtype=np.int32), n),
        "percent": np.tile(np.linspace(0.0, 100.0, points), n),
        "event_source": _labels([c.event_source for c in trial.cycles], points),
        "cycle_start_s": repeat([c.start for c in trial.cycles], np.float64),
        "cycle_duration_s": repeat([c.duration for c in trial.cycles], np.float64),
        "stance_percent": repeat([np.nan if c.stance_percent is None else c.stance_percent
                                  for c in trial.cycles], np.float64),
    }
    columns.update({name: np.ascontiguousarray(values[:, j]) for j, name in enumerate(trial.channels)})
    return columns


def write_trial(trial: Trial, out: Path, hashes: dict[str, str], options: IngestOptions) -> list[str]:
    folder = out / _safe(trial.subject)
    outputs = []
    if trial.continuous is not None:
        path = folder / (_safe(trial.trial) + schema.CONTINUOUS_SUFFIX)
        from gaitcli.io.parquet import write_table

        write_table(continuous_columns(trial), path, _metadata(trial, "continuous", hashes, options))
        outputs.append(str(path.relative_to(out)))
    path = folder / (_safe(trial.trial) + schema.CYCLES_SUFFIX)
    from gaitcli.io.parquet import write_table

    write_table(cycles_columns(trial, options.points), path, _metadata(trial, "cycles", hashes, options))
    outputs.append(str(path.relative_to(out)))
    return outputs


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._") or "unnamed"


# -- the batch ---------------------------------------------------------------------------------
ProgressCallback = Callable[[int, int, str], None]


def _load_manifest(out: Path) -> dict:
    path = out / schema.MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text()).get("trials", {})
    except (json.JSONDecodeError, OSError):
        return {}  # a damaged manifest only costs a full re-ingest


def _save_manifest(out: Path, entries: dict) -> None:
    from gaitcli.io.parquet import atomic_write_bytes

    payload = {"gait_version": __version__, "schema_version": schema.SCHEMA_VERSION, "trials": entries}
    atomic_write_bytes(out / schema.MANIFEST, json.dumps(payload, indent=1, sort_keys=True).encode())


def ingest(inputs: Iterable[str | Path], out: str | Path, options: IngestOptions | None = None,
           on_progress: ProgressCallback | None = None) -> IngestReport:
    """Ingest files, folders or globs into ``out``; see the module docstring."""
    options = options or IngestOptions()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: output exists and is not a folder")
    subjects = read_subjects_csv(options.subjects_csv) if options.subjects_csv else {}
    files, skipped = discover(inputs)
    groups = group_trials(files, options.subject_pattern)
    report = IngestReport(files=len(files), skipped=skipped)
    manifest = _load_manifest(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = [f"{g.subject}/{g.trial}" for g in groups]
    outcomes = _run(groups, keys, out, options, subjects, manifest, on_progress)
    for key, outcome in zip(keys, outcomes):
        report.failures += outcome.failures
        if outcome.summary is not None:
            report.trials.append(outcome.summary)
            manifest[key] = outcome.manifest_entry
    _save_manifest(out, manifest)
    return report


def _run(groups: list[TrialGroup], keys: list[str], out: Path, options: IngestOptions,
         subjects: dict, manifest: dict, on_progress: ProgressCallback | None) -> list[TrialOutcome]:
    total = len(groups)
    if options.jobs <= 1 or total <= 1:
        results = []
        for k, (group, key) in enumerate(zip(groups, keys)):
            results.append(process_group(group, out, options, subjects, manifest.get(key)))
            if on_progress:
                on_progress(k + 1, total, group.trial)
        return results
    results: list[TrialOutcome | None] = [None] * total
    _preload_readers()
    # Largest trials first: the pool then ends with small ones and both workers finish together.
    order = sorted(range(total), key=lambda i: -sum(f.stat().st_size for f in groups[i].files))
    with ProcessPoolExecutor(max_workers=options.jobs, mp_context=_pool_context()) as pool:
        futures = {pool.submit(process_group, groups[i], out, options, subjects, manifest.get(keys[i])): i
                   for i in order}
        for done, future in enumerate(as_completed(futures), start=1):
            i = futures[future]
            results[i] = future.result()
            if on_progress:
                on_progress(done, total, groups[i].trial)
    return [r for r in results if r is not None]


def _preload_readers() -> None:
    """Import the readers once in the parent, so forked workers start with them loaded."""
    import pyarrow.parquet  # noqa: F401
    import scipy.signal  # noqa: F401

    import gaitcli.io.c3d_files  # noqa: F401
    import gaitcli.io.opensim_files  # noqa: F401


def _pool_context():
    import multiprocessing
    import sys

    # fork shares the parent's imports; elsewhere (macOS, Windows) use the platform default.
    return multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
