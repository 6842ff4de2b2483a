"""Model speed, printed side by side in one run (a measurement, never a test).

1. Inference for a 10 s trial (1000 samples at 100 Hz, 6 sagittal angles) on CPU, per registered
   architecture: overlapping 64-sample windows every 16 samples, as `gait predict` runs them,
   plus one whole-sequence forward pass for reference.
2. Its ratio to OpenSim's InverseDynamicsTool on the subject01 walking trial of OpenSim's own
   ID regression test (0.5-1.6 s with 6 Hz filtering, as its setup file says), scaled to 10 s.
   Target: >= 100x faster.
3. Training throughput (windows/s, forward + backward + AdamW step, batch 64) of the Li 2025
   (window 64, 18 channels) and Tan 2024 (window 128, 48 channels) transformer presets on CPU.
4. The same on CUDA with bf16 autocast when a GPU is present.

    python benchmarks/models.py [--repeat 5] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def inference_times(device: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    import torch

    from gaitcli.models.registry import create_model, list_models

    results = {}
    torch.manual_seed(0)
    trial = torch.randn(1000, 6)
    starts = list(range(0, 1000 - 64 + 1, 16))
    windows = torch.stack([trial[s:s + 64] for s in starts]).to(device)
    for name in list_models():
        overrides = {"in_channels": 6, "out_channels": 6}
        model = create_model(name, **overrides).to(device).eval()
        params = sum(p.numel() for p in model.parameters())

        def windowed():
            with torch.no_grad(), _autocast(device):
                model(windows)
            _sync(device)

        patch = getattr(model.config, "patch_len", 1)
        whole = trial[: (1000 // patch) * patch].unsqueeze(0).to(device)

        def full():
            with torch.no_grad(), _autocast(device):
                model(whole)
            _sync(device)

        results[name] = (timed(windowed, repeat), timed(full, repeat), params)
    return results


def training_throughput(device: str, repeat: int) -> dict[str, float]:
    import torch

    from gaitcli.models.registry import create_model

    out = {}
    for name, window, channels in (("transformer_li2025", 64, 18), ("transformer_tan2024", 128, 48)):
        model = create_model(name, in_channels=channels, out_channels=channels).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(64, window, channels, device=device)

        def step():
            with _autocast(device):
                loss = ((model(x) - x) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            _sync(device)

        out[name] = 64 / timed(step, repeat)
    return out


def inverse_dynamics_seconds(shared: Path, repeat: int) -> tuple[float, float] | None:
    """Wall time of OpenSim's InverseDynamicsTool on subject01 (0.5-1.6 s), and the trial length."""
    try:
        import opensim
    except ImportError:
        return None
    folder = shared / "real/opensim-core/ID_test_subject01"
    if not folder.is_dir():
        return None
    work = Path(tempfile.mkdtemp(prefix="gait-id-"))
    for f in folder.iterdir():
        shutil.copy(f, work / f.name)
    opensim.Logger.setLevelString("Error")

    def run():
        tool = opensim.InverseDynamicsTool(str(work / "subject01_Setup_InverseDynamics.xml"))
        tool.setResultsDir(str(work / "results"))
        tool.run()

    import os

    cwd = os.getcwd()
    os.chdir(work)  # the setup file names its inputs relative to itself
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # OpenSim prints each model's summary on stdout
    try:
        seconds = timed(run, repeat)
    finally:
        os.dup2(saved, 1)
        os.chdir(cwd)
    return seconds, 1.6 - 0.5


def gait_predict_seconds(shared: Path, repeat: int, model: str | None) -> float | None:
    """Whole `gait predict` pipeline on the same trial's IK file (read, name, windows, model)."""
    from gaitcli.models.inference import Predictor, default_model_path

    path = shared / "real/opensim-core/ID_test_subject01/subject01_walk1_ik.mot"
    if model is None and not default_model_path().is_file():
        return None
    predictor = Predictor(model)
    return timed(lambda: predictor.predict(path), repeat)


def _autocast(device: str):
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gait model speed")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", default=None, help="checkpoint for the predict timing (default: shipped)")
    args = parser.parse_args(argv)
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, devices: {', '.join(devices)}")
    id_run = inverse_dynamics_seconds(args.shared, args.repeat)
    predict_s = gait_predict_seconds(args.shared, args.repeat, args.model)
    for device in devices:
        print(f"\n== inference, 10 s trial (1000 x 6), {device} ==")
        print(f"{'model':<22}{'params':>10}{'windows (57x64)':>18}{'whole sequence':>16}{'vs ID tool':>12}")
        per_10s_id = id_run[0] * 10.0 / id_run[1] if id_run else None
        for name, (windowed, full, params) in inference_times(device, args.repeat).items():
            ratio = f"{per_10s_id / windowed:.0f}x" if per_10s_id else "n/a"
            print(f"{name:<22}{params:>10,}{windowed * 1000:>15.1f} ms{full * 1000:>13.1f} ms{ratio:>12}")
        print(f"\n== training throughput, batch 64, {device} ==")
        for name, rate in training_throughput(device, max(2, args.repeat // 2)).items():
            print(f"{name:<22}{rate:>10.0f} windows/s")
    print("\n== against OpenSim inverse dynamics (subject01 walk, opensim-core ID test) ==")
    if id_run:
        print(f"InverseDynamicsTool: {id_run[0]:.3f} s for {id_run[1]:.1f} s of walking "
              f"({id_run[0] * 10 / id_run[1]:.3f} s per 10 s); it needs the scaled model, IK and measured GRF")
    else:
        print("InverseDynamicsTool: not run (opensim or ../shared missing)")
    if predict_s is not None:
        print(f"gait predict (whole pipeline, 3.5 s IK file, shipped model): {predict_s:.3f} s"
              + (f"; per second of data {predict_s / 3.5 * 1000:.1f} ms vs ID {id_run[0] / id_run[1] * 1000:.1f} ms"
                 f" = {(id_run[0] / id_run[1]) / (predict_s / 3.5):.0f}x" if id_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
