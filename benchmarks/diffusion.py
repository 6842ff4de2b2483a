"""Diffusion sampling speed (GaitDynamics denoiser), printed side by side in one run.

A measurement, never a test: it always exits 0 unless its options are wrong.

1. Latency: DDIM generation of ONE 1.5 s window, shape (1, 150, C), with 10, 50 and 100 steps
   (``gaitcli.models.diffusion.ddim_sample`` under ``torch.inference_mode``), for the CPU-sized
   default model (``create_model("diffusion")``, or the model of ``--checkpoint``) and the paper
   preset (``"diffusion_gaitdynamics"``: 4 blocks, 4 heads, width 256, ff 1024), with torch
   threads = 1 and = all available (``--threads``). Target: <= 100 ms for DDIM-50 with the default
   model on CPU (the paper: < 1 s on a laptop GPU); each such line says PASS or over.
2. Inpainting: DDIM-50 with half the channels known (RePaint, as the paper's Fig. 6), next to the
   plain DDIM-50: it should cost about the same (one extra ``q_sample`` per step).
3. Batched throughput: windows/s of DDIM-50 at batch sizes 1, 8, 32, 128, at the largest thread
   count (throughput is what a whole machine does; ms/window there is the batch time / batch).
4. The same on CUDA when ``torch.cuda.is_available()``, fp32 and bf16 autocast (synchronised
   around every timing), else a line saying CUDA is not available here.

C (channels): ``len(gaitcli.data.gaitstate.STATE_CHANNELS)`` when that exists, else 57. Weights do
not change the cost, so the models are randomly initialised unless ``--checkpoint`` names one.

Timing: one warm-up chain of 5 steps on the same shape (every DDIM step costs the same), then the
median of ``--repeats`` chains; a configuration stops repeating once ``--budget`` seconds are spent
(the "runs" column says how many were measured). A random generator on the sampling device is
passed, as reproducible sampling would. The machine may be shared: the load average is printed,
and each row has "cores" (this process's CPU seconds per wall second) and "others" (the cores other
processes kept busy meanwhile, from /proc/stat); rows with others >= 0.5 are marked * (several
torch threads that lose a core to another process can run many times slower, not just 2x).

    python benchmarks/diffusion.py [--repeats 7] [--threads 1,all] [--device auto|cpu|cuda]
                                   [--checkpoint PATH] [--quick]

Full run: about 3 minutes on 2 idle CPU cores (mostly the paper preset at batch 32 and 128,
about 1 min per DDIM-50 chain of 128 windows); ``--quick`` (2 repeats, batches 1 and 8, 10 and 50
steps): about 15 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure the working tree, not some installed copy

WINDOW = 150            # 1.5 s at 100 Hz
TARGET_MS = 100.0       # DDIM-50, one window, default model, CPU
PAPER_GPU_MS = 1000.0   # the paper: "< 1 s" per generation on a laptop GPU
FALLBACK_CHANNELS = 57
WARMUP_STEPS = 5
PAPER = "diffusion_gaitdynamics"
CONTENDED = 0.5         # other processes busy on this many cores or more during a timing: marked *


@dataclasses.dataclass
class Row:
    model: str
    params: int
    device: str
    threads: str
    mode: str           # "fp32", "bf16", with "+inpaint"
    steps: int
    batch: int
    seconds: float      # median wall time of one chain for the whole batch
    runs: int
    cores: float = float("nan")   # CPU seconds of this process per wall second, over the timed chains
    others: float = float("nan")  # cores the rest of the machine kept busy meanwhile (/proc/stat)
    target: bool = False  # a row the 100 ms target applies to

    @property
    def ms_per_window(self) -> float:
        return self.seconds * 1000.0 / self.batch

    @property
    def windows_per_s(self) -> float:
        return self.batch / self.seconds

    @property
    def contended(self) -> bool:
        return self.others >= CONTENDED

    @property
    def check(self) -> str:
        verdict = ("PASS" if self.ms_per_window <= TARGET_MS else "over") if self.target else ""
        return f"{verdict} *".strip() if self.contended else verdict


def channel_count() -> tuple[int, str]:
    try:
        from gaitcli.data import gaitstate

        return len(gaitstate.STATE_CHANNELS), "len(gaitcli.data.gaitstate.STATE_CHANNELS)"
    except Exception as exc:  # noqa: BLE001 - the module is being written; fall back, say why
        return FALLBACK_CHANNELS, f"fallback ({type(exc).__name__}: {exc})"


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


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
    return t.user + t.system


def timed(run: Callable[[int], Any], steps: int, device: str, repeats: int,
          budget: float) -> tuple[float, int, float, float]:
    """Median wall time of ``run(steps)`` after one ``run(WARMUP_STEPS)``; stops after ``budget`` s.
    Also: this process's cores (CPU s / wall s) and the other processes' cores over the timed runs."""
    _sync(device)
    run(min(steps, WARMUP_STEPS))
    _sync(device)
    times: list[float] = []
    busy0, cpu0, began_all = machine_busy(), own_cpu(), time.perf_counter()
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        run(steps)
        _sync(device)
        times.append(time.perf_counter() - began)
        if sum(times) >= budget:
            break
    wall = time.perf_counter() - began_all
    busy1, cpu = machine_busy(), own_cpu() - cpu0
    others = max(0.0, (busy1 - busy0 - cpu) / wall) if busy0 is not None and busy1 is not None else float("nan")
    return statistics.median(times), len(times), cpu / wall, others


def sampler(model, channels: int, batch: int, device: str, *, inpaint: bool, bf16: bool) -> Callable[[int], Any]:
    """``run(steps)``: one DDIM chain of ``steps`` for ``batch`` windows (half the channels known
    with ``inpaint``)."""
    import torch

    from gaitcli.models.diffusion import ddim_sample

    schedule = {k: v.to(device) for k, v in model.schedule().items()}
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (batch, WINDOW, channels)
    known = known_mask = None
    if inpaint:
        known = torch.randn(shape, generator=generator, device=device)
        known_mask = torch.zeros(1, 1, channels, dtype=torch.bool, device=device)
        known_mask[..., : channels // 2] = True
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def run(steps: int):
        with torch.inference_mode(), autocast():
            return ddim_sample(model, shape, schedule, steps=steps, generator=generator,
                               known=known, known_mask=known_mask)

    return run


def measure(name: str, model, channels: int, device: str, threads: str, *, steps: int, batch: int,
            inpaint: bool = False, bf16: bool = False, repeats: int, budget: float, target: bool = False) -> Row:
    run = sampler(model, channels, batch, device, inpaint=inpaint, bf16=bf16)
    seconds, runs, cores, others = timed(run, steps, device, repeats, budget)
    mode = ("bf16" if bf16 else "fp32") + ("+inpaint" if inpaint else "")
    params = sum(p.numel() for p in model.parameters())
    return Row(name, params, device, threads, mode, steps, batch, seconds, runs, cores, others, target)


def load_models(checkpoint: Path | None, channels: int) -> list[tuple[str, Any, int, bool]]:
    """(label, model on CPU in eval mode, channels, 100 ms target applies) for the default (or the
    checkpoint) and the paper preset."""
    import torch

    from gaitcli.models.registry import create_model

    torch.manual_seed(0)
    if checkpoint is not None:
        from gaitcli.models.checkpoint import load_checkpoint

        first, _ = load_checkpoint(checkpoint)
        cfg = first.config
        if getattr(cfg, "in_channels", None) != getattr(cfg, "out_channels", None) or not hasattr(first, "schedule"):
            raise SystemExit(f"{checkpoint}: not a diffusion denoiser ({type(first).__name__}); "
                             f"DDIM needs in_channels == out_channels and a noise schedule")
        first_label, first_channels = f"ckpt:{getattr(cfg, 'preset', None) or cfg.name}", cfg.in_channels
    else:
        first = create_model("diffusion", in_channels=channels, out_channels=channels)
        first_label, first_channels = "diffusion", channels
    paper = create_model(PAPER, in_channels=channels, out_channels=channels)
    return [(first_label, first.eval(), first_channels, True), (PAPER, paper.eval(), channels, False)]


def parse_threads(text: str, available: int) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        n = available if part in ("all", "max") else int(part)
        if n < 1:
            raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {n}")
        if n not in out:
            out.append(n)
    return out


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def run_device(device: str, models, thread_counts: list[int], args, rows: list[Row]) -> None:
    import torch

    precisions = [False]
    if device == "cuda":
        for _, model, _, _ in models:
            model.to(device)
        try:  # bf16 autocast, if it works here
            name, model, channels, _ = models[0]
            sampler(model, channels, 1, device, inpaint=False, bf16=True)(2)
            torch.cuda.synchronize()
            precisions.append(True)
        except Exception as exc:  # noqa: BLE001
            print(f"bf16 autocast on CUDA: not measured ({type(exc).__name__}: {exc})")
        thread_labels = ["-"]
    else:
        thread_labels = [str(n) for n in thread_counts]
    common = dict(repeats=args.repeats, budget=args.budget)

    for bf16 in precisions:
        precision = "bf16 autocast" if bf16 else "fp32"
        for threads in thread_labels:
            if device == "cpu":
                torch.set_num_threads(int(threads))
            where = f"{device}, {threads} thread(s)" if device == "cpu" else f"{device}, {precision}"
            print(f"\n== one window (1, {WINDOW}, C), DDIM latency, {where} ==")
            head = "".join(f"{f'{s} steps':>12}" for s in args.steps)
            print(f"{'model':<26}{'params':>11}{head}{'  DDIM-50 +inpaint':>19}{'  inpaint/plain':>15}  target")
            for name, model, channels, target in models:
                cpu_target = target and device == "cpu"
                by_steps = {s: measure(name, model, channels, device, threads, steps=s, batch=1, bf16=bf16,
                                       target=cpu_target and s == 50, **common) for s in args.steps}
                inp = measure(name, model, channels, device, threads, steps=50, batch=1, inpaint=True,
                              bf16=bf16, target=cpu_target, **common)
                rows.extend(by_steps.values())
                rows.append(inp)
                cells = "".join(f"{r.ms_per_window:>9.1f} ms" for r in by_steps.values())
                plain = by_steps.get(50)
                ratio = f"{inp.seconds / plain.seconds:>14.2f}x" if plain else f"{'n/a':>15}"
                if cpu_target and plain:
                    verdict = f"  {plain.check} ({plain.ms_per_window:.0f} ms vs <= {TARGET_MS:.0f} ms)"
                elif name == PAPER and device == "cuda" and plain:
                    verdict = (f"  paper: < 1 s on a laptop GPU; here {plain.ms_per_window:.0f} ms"
                               f" ({plain.ms_per_window / PAPER_GPU_MS:.2f}x of 1 s)")
                else:
                    verdict = ""
                print(f"{name:<26}{inp.params:>11,}{cells}{inp.ms_per_window:>16.1f} ms{ratio}{verdict}")

        threads = thread_labels[-1] if device == "cuda" else str(max(thread_counts))
        if device == "cpu":
            torch.set_num_threads(int(threads))
        where = f"{device}, {threads} thread(s)" if device == "cpu" else f"{device}, {precision}"
        print(f"\n== batched throughput, DDIM-50, {where} ==")
        cells = "".join(f"{f'batch {b}':>14}" for b in args.batches)
        print(f"{'model':<26}{cells}   (windows/s; x = vs batch 1)")
        for name, model, channels, _ in models:
            cells = []
            base = None
            for b in args.batches:
                found = [r for r in rows if r.model == name and r.device == device and r.threads == threads
                         and r.mode == ("bf16" if bf16 else "fp32") and r.steps == 50 and r.batch == b]
                row = found[0] if found else measure(name, model, channels, device, threads, steps=50, batch=b,
                                                     bf16=bf16, **common)
                if not found:
                    rows.append(row)
                base = base or (row.windows_per_s if b == 1 else None)
                gain = f" {row.windows_per_s / base:.1f}x" if base and b != 1 else ""
                cells.append(f"{row.windows_per_s:.1f}{gain}")
            print(f"{name:<26}" + "".join(f"{c:>14}" for c in cells))
    if device == "cuda":
        for _, model, _, _ in models:
            model.to("cpu")


def print_table(rows: list[Row]) -> None:
    print(f"\n== all measurements (ms/window = chain time / batch; vs 100 ms = ms/window / {TARGET_MS:.0f}) ==")
    cols = (f"{'model':<24}{'params':>11}  {'device':<6}{'threads':>8}  {'mode':<13}{'steps':>6}{'batch':>6}"
            f"{'ms/window':>11}{'windows/s':>11}{'vs 100 ms':>11}{'runs':>6}{'cores':>7}{'others':>8}  check")
    print(cols)
    print("-" * len(cols))
    for r in rows:
        print(f"{r.model:<24}{r.params:>11,}  {r.device:<6}{r.threads:>8}  {r.mode:<13}{r.steps:>6}{r.batch:>6}"
              f"{r.ms_per_window:>11.2f}{r.windows_per_s:>11.1f}{r.ms_per_window / TARGET_MS:>10.2f}x{r.runs:>6}"
              f"{r.cores:>7.2f}{r.others:>8.2f}  {r.check}")
    busy = [r for r in rows if r.contended]
    print("cores: this process's CPU s per wall s; others: cores other processes kept busy meanwhile"
          " (/proc/stat).")
    if busy:
        print(f"* {len(busy)} of {len(rows)} rows ran while other processes used >= {CONTENDED} core: with "
              f"several torch threads on a shared machine that can cost far more than the lost share; rerun "
              f"on a quiet machine before reading those numbers.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed chains per configuration, median "
                        "reported (default 7; 2 with --quick)")
    parser.add_argument("--threads", default="1,all", help="CPU thread counts for the latency rows, comma-"
                        "separated, 'all' = the cores this process may use (default: 1,all)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, and CUDA when available (default)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained diffusion checkpoint (safetensors) "
                        "to time instead of the randomly initialised default model")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, batches 1 and 8, 10 and 50 steps")
    parser.add_argument("--steps", type=_ints, default=None, help="DDIM steps for the latency rows (default 10,50,100)")
    parser.add_argument("--batches", type=_ints, default=None, help="batch sizes for throughput (default 1,8,32,128)")
    parser.add_argument("--budget", type=float, default=None, help="seconds after which a configuration stops "
                        "repeating (at least one timed chain; default 10, 2 with --quick)")
    args = parser.parse_args(argv)
    args.repeats = max(1, args.repeats if args.repeats is not None else (2 if args.quick else 7))
    args.steps = args.steps or ([10, 50] if args.quick else [10, 50, 100])
    args.batches = args.batches or ([1, 8] if args.quick else [1, 8, 32, 128])
    args.budget = args.budget if args.budget is not None else (2.0 if args.quick else 10.0)
    if 50 not in args.steps:
        args.steps.append(50)  # the target and the inpainting comparison are DDIM-50

    began = time.perf_counter()
    import torch

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    default_threads = torch.get_num_threads()
    try:
        thread_counts = parse_threads(args.threads, available)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(f"--threads: {exc}")
    channels, how = channel_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}; {available} CPU core(s) available "
          f"(torch default {default_threads} threads); load average {load}")
    print(f"C = {channels} channels ({how}); windows of {WINDOW} samples (1.5 s at 100 Hz)")
    print(f"target: DDIM-50, one window, default model, CPU <= {TARGET_MS:.0f} ms "
          f"(the paper: < 1 s on a laptop GPU)")
    print(f"timing: warm-up of {WARMUP_STEPS} steps, median of up to {args.repeats} chains "
          f"(each configuration stops after {args.budget:g} s), torch.inference_mode")

    models = load_models(args.checkpoint, channels)
    if args.checkpoint is not None:
        print(f"default model replaced by {args.checkpoint} ({models[0][0]}, C = {models[0][2]})")

    devices = ["cpu"] if args.device in ("auto", "cpu") else []
    cuda = torch.cuda.is_available()
    if args.device in ("auto", "cuda"):
        if cuda:
            devices.append("cuda")
            print(f"CUDA: {torch.cuda.get_device_name(0)}")
        else:
            print("CUDA is not available here: no GPU rows")
    rows: list[Row] = []
    try:
        for device in devices:
            run_device(device, models, thread_counts, args, rows)
    finally:
        torch.set_num_threads(default_threads)
    if rows:
        print_table(rows)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
