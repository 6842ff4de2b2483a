"""Benchmark of ``gait ingest``: throughput, raw-reader baseline, parallel speed-up, start-up.

Run from anywhere::

    python benchmarks/ingest.py [--data DIR ...] [--repeat N] [--verbose] [--profile]

Default data: ``../shared/data/real`` and ``../shared/data/labeled`` relative to the repo root.
It prints, in one run:

1. Ingest throughput: a full in-process ``ingest(..., IngestOptions(jobs=1, force=True))`` into a
   fresh temporary folder, in MB/s and frames/s.
2. Raw reading baseline: the same files read with the libraries alone (``c3d.Reader`` +
   ``read_frames()`` into numpy, ``opensim.TimeSeriesTable`` + ``getMatrix().to_numpy()``,
   ``numpy.loadtxt(skiprows=1)`` for WBDS), and the ratio ingest / raw throughput.
3. Parallel speed-up: ingest with ``jobs=2`` against ``jobs=1`` (median of ``--repeat`` runs each,
   interleaved, after one warm-up run).
4. Start-up time of ``gait --help`` (subprocess, median of ``--help-runs``) next to a bare
   ``python -c pass``, and which heavy modules ``--help`` imports.

Frames: for a C3D file, the number of point frames (one per video frame; analog samples per
frame are *not* counted); for a .mot/.sto/WBDS table, the number of data rows. Frames are counted
by the baseline reader (the samples it actually read).

It is a measurement, not a test: it always exits 0. Only the standard library, numpy, c3d and
opensim are used besides gaitcli. ``--profile`` adds a cProfile of one jobs=1 ingest.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure the working tree, not some installed copy

DEFAULT_DATA = [REPO.parent / "shared" / "data" / "real", REPO.parent / "shared" / "data" / "labeled"]
HEAVY = ("torch", "opensim", "c3d", "pandas", "pyarrow", "scipy")
TARGETS = {"ratio": 0.8, "speedup": 1.8, "help": 0.25}
FRAMES_DEFINITION = ("frames = C3D point frames (analog sub-samples not counted) + table data rows "
                     "(.mot/.sto/WBDS .txt), as read by the baseline readers\n"
                     "  (for a C3D they cannot read, its header's frame count)")
MB = 1e6


# -- corpus ------------------------------------------------------------------------------------
@dataclass
class DataFile:
    path: Path
    kind: str  # "c3d", "opensim", "wbds"
    size: int
    frames: int = 0
    raw_s: list[float] = field(default_factory=list)
    raw_error: str = ""
    raw_warnings: list[str] = field(default_factory=list)
    gait_read_s: float | None = None  # fastest of the passes
    gait_read_error: str = ""


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".c3d": "c3d", ".mot": "opensim", ".sto": "opensim"}.get(suffix, "wbds")


def corpus(inputs: list[Path]) -> tuple[list[DataFile], str]:
    """The files ingest reads: gaitcli's own discovery, or an equivalent filter if it breaks."""
    try:
        from gaitcli.data.ingest import discover

        files, _ = discover(inputs)
        how = "gaitcli.data.ingest.discover"
    except Exception as exc:  # noqa: BLE001 - the tree is being edited; fall back, say so
        from gaitcli.io.wbds import looks_like_wbds

        files = sorted({p.resolve() for d in inputs for p in Path(d).rglob("*") if p.is_file()
                        and (p.suffix.lower() in (".c3d", ".mot", ".sto")
                             or (p.suffix.lower() == ".txt" and looks_like_wbds(p)))})
        how = f"suffix filter (discover failed: {type(exc).__name__}: {exc})"
    return [DataFile(f, _kind(f), f.stat().st_size) for f in files], how


# -- raw baseline ------------------------------------------------------------------------------
class ShortRead(Exception):
    pass


def _read_c3d_raw(path: Path) -> int:
    import c3d
    import numpy as np

    with open(path, "rb") as handle:
        reader = c3d.Reader(handle)
        points, analog = [], []
        for _, pts, ana in reader.read_frames():
            points.append(pts)
            analog.append(ana)
        points_arr = np.stack(points) if points else np.empty((0, 0, 5))
        analog_arr = np.stack(analog) if analog else np.empty((0, 0, 0))
        declared = int(reader.frame_count)
    del analog_arr
    if points_arr.shape[0] != declared:  # the c3d package only warns when the data runs out
        raise ShortRead(f"short read: {points_arr.shape[0]} of {declared} declared frames")
    return int(points_arr.shape[0])


def _read_opensim_raw(path: Path) -> int:
    import numpy as np
    import opensim

    table = opensim.TimeSeriesTable(str(path))
    values = table.getMatrix().to_numpy()
    time_col = np.asarray(table.getIndependentColumn())
    assert values.shape[0] == time_col.shape[0]
    return int(values.shape[0])


def _read_wbds_raw(path: Path) -> int:
    import numpy as np

    return int(np.loadtxt(path, skiprows=1, ndmin=2).shape[0])


RAW_READERS = {"c3d": _read_c3d_raw, "opensim": _read_opensim_raw, "wbds": _read_wbds_raw}


def quiet_opensim() -> None:
    try:
        import opensim

        opensim.Logger.setLevelString("error")
        opensim.Logger.removeFileSink()  # no opensim.log in the working directory
    except Exception:  # noqa: BLE001
        pass


def raw_pass(files: list[DataFile], record: bool) -> float:
    """Read every file with the libraries alone; returns the wall time of the whole pass."""
    total = 0.0
    for f in files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                frames = RAW_READERS[f.kind](f.path)
                error = ""
            except Exception as exc:  # noqa: BLE001 - a failing file is a result, not a crash
                frames, error = 0, f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                if caught:
                    error += f" (warned: {str(caught[0].message).splitlines()[0][:100]})"
            elapsed = time.perf_counter() - start
        total += elapsed
        if record:
            f.raw_s.append(elapsed)
            f.raw_error = error
            f.frames = frames if not error else f.frames
            f.raw_warnings = [] if error else sorted({str(w.message).splitlines()[0][:120] for w in caught})
    return total


def header_frames(f: DataFile) -> int:
    """Frame count from the C3D header, for a file the baseline could not read."""
    try:
        import c3d

        with open(f.path, "rb") as handle:
            reader = c3d.Reader(handle)
            return int(reader.frame_count)
    except Exception:  # noqa: BLE001
        return 0


def gait_read_pass(files: list[DataFile]) -> float:
    """gaitcli's readers alone (no naming, resampling, events or Parquet), for the breakdown."""
    from gaitcli.io import readers

    total = 0.0
    for f in files:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                readers.read_recording(f.path)
        except Exception as exc:  # noqa: BLE001
            f.gait_read_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        elapsed = time.perf_counter() - start
        f.gait_read_s = elapsed if f.gait_read_s is None else min(f.gait_read_s, elapsed)
        total += elapsed
    return total


# -- ingest ------------------------------------------------------------------------------------
@dataclass
class IngestRun:
    seconds: float
    summary: dict | None = None
    error: str = ""
    cpu: float = float("nan")  # CPU seconds of this process and its (pool) children
    others: float = float("nan")  # CPU seconds the rest of the machine used meanwhile


def machine_busy() -> float | None:
    """CPU seconds all CPUs have been busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_ingest(inputs: list[Path], jobs: int, tmp_root: str | None,
               profile: cProfile.Profile | None = None) -> IngestRun:
    from gaitcli.data.ingest import IngestOptions, ingest

    folder = Path(tempfile.mkdtemp(prefix="gait-bench-", dir=tmp_root))
    out = folder / "out"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            busy0, cpu0 = machine_busy(), own_cpu()
            start = time.perf_counter()
            try:
                if profile:
                    profile.enable()
                report = ingest(inputs, out, IngestOptions(jobs=jobs, force=True))
                error = ""
            except Exception as exc:  # noqa: BLE001 - report it, keep measuring
                report, error = None, f"{type(exc).__name__}: {exc}"
                traceback.print_exc(file=sys.stderr)
            finally:
                if profile:
                    profile.disable()
            elapsed = time.perf_counter() - start
            cpu, busy1 = own_cpu() - cpu0, machine_busy()
        others = busy1 - busy0 - cpu if busy0 is not None and busy1 is not None else float("nan")
        summary = None
        if report is not None:
            summary = {"files": report.files, "trials": len(report.trials),
                       "failures": [(p.path, p.reason) for p in report.failures]}
        return IngestRun(elapsed, summary, error, cpu, max(0.0, others))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- start-up ----------------------------------------------------------------------------------
HELP_CMD = [sys.executable, "-m", "gaitcli.cli.main", "--help"]
BARE_CMD = [sys.executable, "-c", "pass"]
MODULES_MARK = "@@gait-bench-modules@@"
PROBE = ("import json, runpy, sys\n"
         "sys.argv = ['gait', '--help']\n"
         "try:\n"
         "    runpy.run_module('gaitcli.cli.main', run_name='__main__', alter_sys=True)\n"
         "except SystemExit:\n"
         "    pass\n"
         f"print({MODULES_MARK!r} + json.dumps(sorted(sys.modules)))\n")


def time_command(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, done.returncode


def startup(runs: int) -> dict:
    time_command(BARE_CMD), time_command(HELP_CMD)  # warm the page cache and __pycache__
    bare, helps, codes = [], [], set()
    for _ in range(runs):  # interleaved, so that a noisy neighbour hits both alike
        bare.append(time_command(BARE_CMD)[0])
        seconds, code = time_command(HELP_CMD)
        helps.append(seconds)
        codes.add(code)
    probe = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE], cwd=REPO,
                           capture_output=True, text=True)
    modules: list[str] = []
    for line in probe.stdout.splitlines():
        if line.startswith(MODULES_MARK):
            modules = json.loads(line[len(MODULES_MARK):])
    heavy = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})
    top = []  # top-level imports (no indentation) by cumulative time
    for line in probe.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        try:
            _, cumulative, name = line[len("import time:"):].split("|")
            if not name.startswith("  "):  # one leading space for top level, more for nested
                top.append((int(cumulative) / 1e6, name.strip()))
        except ValueError:
            continue
    top.sort(reverse=True)
    return {"bare": bare, "help": helps, "codes": sorted(codes), "heavy": heavy,
            "modules": len(modules), "top_imports": top[:6], "probe_ok": bool(modules)}


# -- report ------------------------------------------------------------------------------------
def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def machine_ceiling(repeat: int = 3) -> float:
    """Speed-up of pure-Python CPU work in 2 processes vs 1 here: what --jobs 2 can reach at best.

    On shared virtual machines two "cores" rarely give 2x; this puts the ingest ratio in context.
    """
    import multiprocessing

    n = 3_000_000
    ratios = []
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # start the workers before timing
        for _ in range(repeat):
            began = time.perf_counter()
            _spin(n), _spin(n)
            serial = time.perf_counter() - began
            began = time.perf_counter()
            pool.map(_spin, [n, n])
            ratios.append(serial / (time.perf_counter() - began))
    return median(ratios)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(values: list[float]) -> str:
    if not values:
        return "n/a"
    spread = f" (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})" if len(values) > 1 else ""
    return f"{median(values):.3f} s{spread}"


def rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds and seconds == seconds and seconds > 0 else float("nan")


def profile_summary(profile: cProfile.Profile, top: int = 15) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("cumulative").print_stats(top)
    text = stream.getvalue()
    start = text.find("   ncalls")
    print(text[start:].rstrip() if start >= 0 else text.rstrip())
    # stage breakdown: cumulative time of the pipeline's stages
    stages = {"sha256 of sources": ("gaitcli/data/ingest.py", "sha256"),
              "read files (gaitcli readers)": ("gaitcli/data/ingest.py", "_read"),
              "body mass": ("gaitcli/data/ingest.py", "resolve_mass"),
              "assemble (naming, filter, resample, events, cycles)": ("gaitcli/data/trials.py", "assemble"),
              "write Parquet (frames + pyarrow)": ("gaitcli/data/ingest.py", "write_trial"),
              "discover + group": ("gaitcli/data/ingest.py", "discover")}
    total = max((v[3] for k, v in stats.stats.items() if k[2] == "ingest" and k[0].endswith("gaitcli/data/ingest.py")),
                default=float("nan"))
    print("\nstage breakdown (cumulative, of one profiled jobs=1 ingest):")
    for label, (suffix, func) in stages.items():
        seconds = sum(v[3] for k, v in stats.stats.items()
                      if k[0].replace(os.sep, "/").endswith(suffix) and k[2] == func)
        print(f"  {label:<55} {seconds:7.3f} s  {100 * seconds / total:5.1f} %")
    print(f"  {'total ingest() under the profiler':<55} {total:7.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", type=Path, default=DEFAULT_DATA, help="folders or files to ingest")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per configuration (median reported)")
    parser.add_argument("--help-runs", type=int, default=10, help="subprocess runs of `gait --help`")
    parser.add_argument("--tmp", default=None, help="where the temporary output folders go (default: system temp)")
    parser.add_argument("--verbose", action="store_true", help="per-file lines and every ingest failure")
    parser.add_argument("--profile", action="store_true", help="cProfile one jobs=1 ingest: top 15 by cumulative time")
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    began = time.perf_counter()

    inputs = [p.resolve() for p in args.data]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        print(f"data not found: {', '.join(missing)}")
        return 0
    files, how = corpus(inputs)
    total_mb = sum(f.size for f in files) / MB
    by_kind: dict[str, list[DataFile]] = {}
    for f in files:
        by_kind.setdefault(f.kind, []).append(f)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPU(s); repo {REPO}")
    print(f"data: {', '.join(str(p) for p in inputs)}")
    print(f"files ingest reads ({how}): {len(files)} = "
          + ", ".join(f"{len(v)} {k} ({sum(f.size for f in v) / MB:.1f} MB)" for k, v in sorted(by_kind.items()))
          + f"; total {total_mb:.1f} MB")

    # warm-up: imports, file cache, opensim's first-use costs, the process pool
    t0 = time.perf_counter()
    import c3d  # noqa: F401
    import numpy  # noqa: F401
    import opensim  # noqa: F401

    quiet_opensim()
    warm = run_ingest(inputs, 1, args.tmp)
    raw_pass(files, record=False)
    print(f"warm-up (imports, one ingest, one raw pass): {time.perf_counter() - t0:.1f} s"
          + (f"; ingest raised: {warm.error}" if warm.error else ""))

    # timed runs, interleaved so that noise drifts affect every configuration alike
    runs: dict[int, list[IngestRun]] = {1: [], 2: []}
    raw_times: list[float] = []
    for _ in range(repeat):
        runs[1].append(run_ingest(inputs, 1, args.tmp))
        raw_times.append(raw_pass(files, record=True))
        runs[2].append(run_ingest(inputs, 2, args.tmp))
    for f in files:
        if f.raw_error and f.kind == "c3d":
            f.frames = header_frames(f)
    gait_read_s = median([gait_read_pass(files) for _ in range(repeat)])

    total_frames = sum(f.frames for f in files)
    ok_files = [f for f in files if not f.raw_error]
    ok_mb = sum(f.size for f in ok_files) / MB
    ok_frames = sum(f.frames for f in ok_files)
    raw_s = median(raw_times)
    raw_ok_s = median([sum(f.raw_s[k] for f in ok_files) for k in range(repeat)])
    ingest_times = {j: [r.seconds for r in runs[j] if not r.error] for j in runs}
    t1, t2 = median(ingest_times[1]), median(ingest_times[2])
    last = next((r.summary for r in reversed(runs[1]) if r.summary), None)

    print()
    print("== 1. ingest throughput (in-process, jobs=1, force=True, fresh output folder) ==")
    print(f"  {FRAMES_DEFINITION}")
    frames_by_kind = ", ".join(f"{k} {sum(f.frames for f in v):,}" for k, v in sorted(by_kind.items()))
    print(f"  input: {total_mb:.1f} MB, {total_frames:,} frames ({frames_by_kind})")
    if last:
        c3d_failed = sum(1 for p, _ in last["failures"] if p.lower().endswith(".c3d"))
        print(f"  ingest result: {last['files']} files -> {last['trials']} trials, "
              f"{len(last['failures'])} failures ({c3d_failed} C3D)")
        for p, reason in last["failures"] if args.verbose else []:
            print(f"    failed: {p}: {reason}")
    errors = sorted({r.error for rs in runs.values() for r in rs if r.error})
    for e in errors:
        print(f"  ingest RAISED: {e}")
    print(f"  wall time: {fmt_s(ingest_times[1])}")
    print(f"  throughput: {rate(total_mb, t1):.1f} MB/s, {rate(total_frames, t1):,.0f} frames/s")

    print()
    print("== 2. raw reading baseline (c3d.Reader.read_frames, opensim.TimeSeriesTable, numpy.loadtxt) ==")
    for kind, members in sorted(by_kind.items()):
        secs = median([sum(f.raw_s[k] for f in members) for k in range(repeat)])
        mb = sum(f.size for f in members) / MB
        frames = sum(f.frames for f in members)
        print(f"  {kind:<8} {len(members):4d} files {mb:7.1f} MB {frames:9,} frames  {secs:7.3f} s  "
              f"{rate(mb, secs):7.1f} MB/s {rate(frames, secs):11,.0f} frames/s")
    print(f"  all      wall time: {fmt_s(raw_times)}")
    print(f"  throughput: {rate(ok_mb, raw_ok_s):.1f} MB/s, {rate(ok_frames, raw_ok_s):,.0f} frames/s")
    failed_raw = [f for f in files if f.raw_error]
    if failed_raw:
        print(f"  baseline FAILED on {len(failed_raw)} file(s) (left out of its throughput):")
        for f in failed_raw:
            print(f"    {f.path}: {f.raw_error}")
    warned = [f for f in files if f.raw_warnings]
    if warned:
        print(f"  baseline warnings on {len(warned)} file(s): "
              + "; ".join(f"{f.path.name}: {f.raw_warnings[0]}" for f in warned[:3])
              + (" ..." if len(warned) > 3 else ""))
    ratio = rate(total_mb, t1) / rate(ok_mb, raw_ok_s)
    print(f"  ratio ingest / raw throughput (MB/s): {ratio:.2f}x  "
          f"(frames/s: {rate(total_frames, t1) / rate(ok_frames, raw_ok_s):.2f}x)")
    print(f"  for comparison, gaitcli readers alone (read_recording, no pipeline), median pass: {gait_read_s:.3f} s, "
          f"{rate(total_mb, gait_read_s):.1f} MB/s = {rate(total_mb, gait_read_s) / rate(ok_mb, raw_ok_s):.2f}x raw")
    read_failed = [f for f in files if f.gait_read_error]
    if read_failed:
        print(f"  gaitcli readers raised on {len(read_failed)} file(s): "
              + "; ".join(f"{f.path.name}: {f.gait_read_error}" for f in read_failed[:5]))
    slowest = sorted(files, key=lambda f: -(f.gait_read_s or 0))[:3]
    print("  slowest in gaitcli readers (best of the passes): " + ", ".join(f"{f.path.name} {f.gait_read_s:.3f} s" for f in slowest))
    if args.verbose:
        print("  per file: kind, MB, frames, raw median s, gaitcli reader best s, path")
        for f in files:
            print(f"    {f.kind:<8} {f.size / MB:6.2f} {f.frames:7d} {median(f.raw_s):7.4f} "
                  f"{(f.gait_read_s or 0):7.4f}  {f.path}{'  RAW FAILED: ' + f.raw_error if f.raw_error else ''}")

    print()
    print(f"== 3. parallel speed-up (median of {repeat}, interleaved, after one warm-up) ==")
    for j in (1, 2):
        ok = [r for r in runs[j] if not r.error]
        cpu = median([r.cpu for r in ok])
        cores = median([r.cpu / r.seconds for r in ok])
        others = median([r.others / r.seconds for r in ok])
        print(f"  jobs={j}: {fmt_s(ingest_times[j])}; CPU {cpu:.2f} s, cores used {cores:.2f}, "
              f"other processes meanwhile {others:.2f} cores")
    speedup = rate(t1, t2)
    best = rate(min(ingest_times[1] or [0]), min(ingest_times[2] or [0]))
    print(f"  speed-up jobs 2 / jobs 1: {speedup:.2f}x (best-of: {best:.2f}x)")
    cpu1 = median([r.cpu for r in runs[1] if not r.error])
    cpu2 = median([r.cpu for r in runs[2] if not r.error])
    print(f"  CPU work jobs 2 / jobs 1: {rate(cpu2, cpu1):.2f}x (1.00 = no parallel overhead); "
          f"if both cores were free, expect about {rate(2 * cpu1, cpu2):.2f}x at best")
    ceiling = machine_ceiling()
    print(f"  machine ceiling (pure-Python work, 2 processes vs 1): {ceiling:.2f}x; "
          f"ingest reaches {rate(speedup, ceiling) * 100:.0f} % of it")
    print(f"  load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")

    print()
    print(f"== 4. start-up: `python -m gaitcli.cli.main --help` (median of {args.help_runs}) ==")
    st = startup(max(1, args.help_runs))
    help_s = median(st["help"])
    print(f"  python -c pass : {fmt_s(st['bare'])}")
    print(f"  gait --help    : {fmt_s(st['help'])}  exit codes {st['codes']}")
    print(f"  gait cost over bare python: {help_s - median(st['bare']):.3f} s")
    if st["probe_ok"]:
        print(f"  modules imported by --help: {st['modules']}; heavy ({'/'.join(HEAVY)}): "
              f"{', '.join(st['heavy']) or 'none'}")
        print("  largest top-level imports (-X importtime, cumulative): "
              + ", ".join(f"{name} {s * 1000:.0f} ms" for s, name in st["top_imports"]))
    else:
        print("  could not list the imported modules (probe failed)")

    if args.profile:
        print()
        print("== profile: one jobs=1 ingest under cProfile, top 15 by cumulative time ==")
        profile = cProfile.Profile()
        run_ingest(inputs, 1, args.tmp, profile)
        profile_summary(profile)

    def row(metric: str, value: str, target: str, ok: bool | None) -> str:
        return f"{metric:<30} {value:<12} {target:<8} {'?' if ok is None else 'yes' if ok else 'no'}"

    def judged(x: float, good: bool) -> bool | None:
        return None if x != x else good

    print()
    print(row("metric", "value", "target", None).replace(" ?", " ok"))
    print(row("ingest / raw throughput", f"{ratio:.2f}x", f">={TARGETS['ratio']}",
              judged(ratio, ratio >= TARGETS["ratio"])))
    print(row("jobs 2 / jobs 1", f"{speedup:.2f}x", f">={TARGETS['speedup']}",
              judged(speedup, speedup >= TARGETS["speedup"])))
    print(row("  (machine ceiling)", f"{ceiling:.2f}x", "", None).rstrip(" ?"))
    print(row("gait --help", f"{help_s:.2f} s", f"<={TARGETS['help']}", judged(help_s, help_s <= TARGETS["help"])))
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - a measurement: report, never fail the caller
        traceback.print_exc()
    sys.exit(0)
