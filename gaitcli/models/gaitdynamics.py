"""GaitDynamics at prediction time: fill missing kinematics, estimate forces, generate what-ifs.

``GaitDynamics(diffusion, refiner)`` holds the two gait-state checkpoints (either may be absent
for the tasks that do not need it) and works on whole trials of gait state
(``gaitcli.data.gaitstate.StateTrial.values``, (T, C), NaN = unknown):

- ``fill``: unknown entries by inpainting (DDIM with the known entries re-imposed at every step)
  or by each channel's training median (the paper's baseline);
- ``forces``: the refinement model on the (completed) kinematics;
- ``modify``: what-if generation, guided towards edited channels with the paper's tolerance loss.

A trial is cut into 150-sample windows half a window apart (the last aligned to the end; a
shorter trial is padded with unknown samples); overlapping windows are averaged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitcli.data import gaitstate as gs
from gaitcli.errors import DataError, UsageError

FILL_METHODS = ("inpaint", "median")
TOLERANCE = 0.1  # of each channel's range of motion (the paper)


@dataclass
class Modification:
    """``coordinate*factor`` or ``coordinate+offset`` (degrees / m/s), as ``--modify`` takes it."""

    coordinate: str
    op: str
    amount: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Angles scale about their mean (a larger sway); velocities scale whole (a faster gait)."""
        if self.op == "*" and self.coordinate.startswith("pelvis_v"):
            return values * self.amount
        if self.op == "*":
            mean = np.nanmean(values)
            return mean + (values - mean) * self.amount
        return values + self.amount


MODIFIABLE = gs.COORDINATES + ("pelvis_vx", "pelvis_vy", "pelvis_vz")


def parse_modification(text: str) -> Modification:
    """``lumbar_bending*2.5``, ``pelvis_vx*1.25``, ``knee_angle_r+5``."""
    match = re.fullmatch(r"\s*([a-z_]+)\s*([*+-])\s*([0-9.eE+-]+)\s*", text)
    if not match:
        raise UsageError(f"--modify {text!r}: expected COORDINATE*FACTOR or COORDINATE+OFFSET, "
                         "e.g. lumbar_bending*2.5")
    name, op, number = match.groups()
    if name not in MODIFIABLE:
        raise UsageError(f"--modify {text!r}: {name} is not one of {', '.join(MODIFIABLE)}")
    try:
        amount = float(number)
    except ValueError:
        raise UsageError(f"--modify {text!r}: {number!r} is not a number") from None
    return Modification(name, "*" if op == "*" else "+", -amount if op == "-" else amount)


class GaitDynamics:
    def __init__(self, diffusion: str | Path | None = None, refiner: str | Path | None = None,
                 device: str = "cpu") -> None:
        from gaitcli.models.checkpoint import load_checkpoint

        self.device = device
        self.diffusion = self.refiner = None
        self.meta: dict = {}
        for role, path in (("diffusion", diffusion), ("grf-refiner", refiner)):
            if path is None:
                continue
            model, meta = load_checkpoint(path, map_location=device)
            if meta.get("kind") != "gait-state" or meta.get("role") != role:
                raise UsageError(f"{path}: not a gait-state {role} checkpoint")
            if meta.get("state_channels") != gs.STATE_CHANNELS:
                raise UsageError(f"{path}: trained on another gait-state definition than this version of gait")
            model.eval()
            setattr(self, "diffusion" if role == "diffusion" else "refiner", model)
            self.meta[role] = meta
        if not self.meta:
            raise UsageError("no gait-state checkpoint given")
        first = next(iter(self.meta.values()))
        self.norm = gs.MinMax.from_dict(first["normalizer"])
        self.median = np.asarray(first["median"], dtype=np.float64)
        if len(self.meta) == 2 and self.meta["diffusion"]["normalizer"] != self.meta["grf-refiner"]["normalizer"]:
            raise UsageError("the diffusion and refinement checkpoints were trained with different scalings; "
                             "train the refiner with `gait finetune DIFFUSION.safetensors DATA --grf`")

    # -- windows -----------------------------------------------------------------------------
    @staticmethod
    def _starts(n: int) -> list[int]:
        from gaitcli.data.windows import window_starts

        return window_starts(max(n, gs.WINDOW), gs.WINDOW, gs.WINDOW // 2)

    def _windows(self, scaled: np.ndarray) -> tuple[np.ndarray, list[int]]:
        n = scaled.shape[0]
        if n < gs.WINDOW:
            scaled = np.vstack([scaled, np.full((gs.WINDOW - n, scaled.shape[1]), np.nan, scaled.dtype)])
        starts = self._starts(n)
        return np.stack([scaled[s:s + gs.WINDOW] for s in starts]), starts

    @staticmethod
    def _merge(windows: np.ndarray, starts: list[int], n: int) -> np.ndarray:
        total = np.zeros((max(n, gs.WINDOW), windows.shape[-1]))
        count = np.zeros((max(n, gs.WINDOW), 1))
        for w, s in zip(windows, starts):
            total[s:s + gs.WINDOW] += w
            count[s:s + gs.WINDOW] += 1
        return (total / count)[:n]

    # -- tasks -------------------------------------------------------------------------------
    def fill(self, values: np.ndarray, method: str = "inpaint", steps: int = 50, seed: int = 0,
             known: np.ndarray | None = None) -> np.ndarray:
        """``values`` with the unknown kinematic entries filled (known entries kept exactly).

        ``known`` (T, C) overrides which entries count as known (default: the finite ones).
        Forces are generated along with the kinematics but only kinematics are returned filled;
        the force channels are left as they were.
        """
        if method not in FILL_METHODS:
            raise UsageError(f"--fill-missing must be one of {', '.join(FILL_METHODS)}, not {method!r}")
        known = np.isfinite(values) if known is None else known & np.isfinite(values)
        scaled = self.norm.apply(values)
        if method == "median":
            filled = np.where(known, scaled, self.median)
        else:
            filled = self._inpaint(np.where(known, scaled, np.nan), steps, seed)
        kin = len(gs.KINEMATIC_CHANNELS)
        out = values.copy()
        out[:, :kin] = np.where(known[:, :kin], values[:, :kin], self.norm.invert(filled)[:, :kin])
        return out

    def _inpaint(self, scaled: np.ndarray, steps: int, seed: int, guidance=None) -> np.ndarray:
        import torch

        from gaitcli.models.diffusion import cosine_schedule, ddim_sample

        if self.diffusion is None:
            raise UsageError("inpainting needs a diffusion checkpoint (--generative)")
        windows, starts = self._windows(scaled)
        known = torch.as_tensor(np.isfinite(windows))
        x = torch.as_tensor(np.nan_to_num(windows), dtype=torch.float32)
        schedule = cosine_schedule(self.diffusion.config.diffusion_steps)
        generator = torch.Generator().manual_seed(seed)
        out = ddim_sample(self.diffusion, tuple(x.shape), schedule, steps=steps, generator=generator,
                          known=x.to(self.device), known_mask=known.to(self.device),
                          guidance=guidance)
        return self._merge(out.float().cpu().numpy(), starts, scaled.shape[0])

    def forces(self, values: np.ndarray) -> np.ndarray:
        """Both feet's forces (N/kg, COP channels as in the state) from kinematic state (T, C)."""
        import torch

        if self.refiner is None:
            raise UsageError("force estimation needs a refinement checkpoint (--grf-model)")
        kin = len(gs.KINEMATIC_CHANNELS)
        scaled = np.nan_to_num(self.norm.apply(values)[:, :kin])
        windows, starts = self._windows(scaled)
        with torch.no_grad():
            out = self.refiner(torch.as_tensor(np.nan_to_num(windows), dtype=torch.float32, device=self.device))
        merged = self._merge(out.float().cpu().numpy(), starts, values.shape[0])
        full = np.zeros((values.shape[0], len(gs.STATE_CHANNELS)))
        full[:, kin:] = merged
        return self.norm.invert(full)[:, kin:]

    def with_forces(self, values: np.ndarray) -> np.ndarray:
        out = values.copy()
        out[:, len(gs.KINEMATIC_CHANNELS):] = self.forces(values)
        return out

    def modify(self, state: gs.StateTrial, changes: list[Modification], steps: int = 50, seed: int = 0) -> np.ndarray:
        """What-if state: the edited coordinates as guidance targets (tolerance 10 % of each
        channel's range, as the paper); every channel is generated, none imposed."""
        import torch

        from gaitcli.models.diffusion import tolerance_loss

        target_coords = gs.state_coordinates(state)
        for change in changes:
            if change.coordinate.startswith("pelvis_v"):
                continue
            if not np.isfinite(target_coords.get(change.coordinate, np.array([np.nan]))).any():
                raise DataError(f"--modify {change.coordinate}: the trial has no {change.coordinate}")
            target_coords[change.coordinate] = change.apply(target_coords[change.coordinate])
        target = _state_from_coordinates(state, target_coords)
        for change in changes:
            if change.coordinate.startswith("pelvis_v"):
                k = gs.STATE_CHANNELS.index(change.coordinate)
                target[:, k] = change.apply(state.values[:, k])
        scaled_target = self.norm.apply(target)
        weight = np.zeros(len(gs.STATE_CHANNELS), dtype=np.float32)
        for c in gs.VELOCITY + gs.SIX_D + list(gs.HINGES):
            weight[gs.STATE_CHANNELS.index(c)] = 1.0
        tolerance = TOLERANCE * 2.0  # scaled channels span [-1, 1]: 10 % of the range is 0.2
        windows_target, _ = self._windows(scaled_target)  # the same windows _inpaint cuts
        guidance = tolerance_loss(torch.as_tensor(windows_target, dtype=torch.float32, device=self.device),
                                  tolerance, torch.as_tensor(weight, device=self.device))
        unknown = np.full_like(scaled_target, np.nan)
        return self.norm.invert(self._inpaint(unknown, steps, seed, guidance=guidance))


def _state_from_coordinates(state: gs.StateTrial, coords: dict[str, np.ndarray]) -> np.ndarray:
    """State values rebuilt from edited coordinates (velocities and forces copied)."""
    from gaitcli.data.windows import TrialData

    trial = TrialData(subject=state.subject, trial=state.trial, condition="", time=state.time,
                      values={k: v for k, v in coords.items()}, units={}, rate=gs.RATE_HZ)
    rebuilt = gs.trial_state(trial, height_m=state.height_m).values
    kin = len(gs.KINEMATIC_CHANNELS)
    out = state.values.copy()
    rebuilt_ok = np.isfinite(rebuilt[:, :kin])
    out[:, :kin] = np.where(rebuilt_ok, rebuilt[:, :kin], state.values[:, :kin])
    out[:, :len(gs.VELOCITY)] = state.values[:, :len(gs.VELOCITY)]
    return out


# -- files -> state ------------------------------------------------------------------------------
def read_trial(path: Path, mass_kg: float | None = None, height_m: float | None = None):
    """A lab file (.mot/.sto/.c3d, or an ingest *.continuous.parquet) as ``TrialData`` at 100 Hz."""
    from dataclasses import asdict

    from gaitcli.data.windows import TrialData, load_trials

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        trials = [t for t in load_trials([path]) if not t.tiled]
        if not trials:
            raise DataError(f"{path}: not an ingest continuous file (*.continuous.parquet)")
        trial = trials[0]
        trial.mass_kg = mass_kg or trial.mass_kg
        trial.height_m = height_m or trial.height_m
        return trial
    from gaitcli.data.ingest import IngestOptions, build_trial

    built = build_trial([path], IngestOptions(rate=gs.RATE_HZ, mass_kg=mass_kg))
    ts = built.continuous
    if ts is None:
        raise DataError(f"{path}: time-normalised data has no time axis")
    return TrialData(subject=built.subject, trial=built.trial, condition=built.condition, time=ts.time,
                     values={c: ts.channel(c) for c in ts.channels}, units=dict(built.units), rate=gs.RATE_HZ,
                     mass_kg=built.mass_kg, source=str(path), height_m=height_m or built.height_m,
                     events=[asdict(e) for e in built.events])


def missing_coordinates(trial) -> list[str]:
    """Coordinates of the gait state a trial lacks entirely or in part (NaN gaps)."""
    out = []
    for c in gs.COORDINATES + gs.TRANSLATIONS:
        values = trial.values.get(c)
        if values is None or not np.isfinite(values).all():
            out.append(c)
    return out


def completed_coordinates(state: gs.StateTrial, values: np.ndarray, trial) -> dict[str, np.ndarray]:
    """Canonical coordinates after filling: the trial's own values where it had them (exactly),
    the generated ones elsewhere; other channels of the trial (arms, subtalar) kept."""
    generated = gs.state_coordinates(state, values)
    out: dict[str, np.ndarray] = {}
    time = trial.time
    for c, v in trial.values.items():
        if len(v) == len(time) and _is_coordinate_like(c):
            out[c] = np.interp(state.time, time, v) if len(time) != len(state.time) else np.asarray(v, float)
    for c, v in generated.items():
        own = out.get(c)
        out[c] = v if own is None else np.where(np.isfinite(own), own, v)
    return out


def _is_coordinate_like(name: str) -> bool:
    from gaitcli.data.naming import family

    return family(name) in ("angle", "translation")


# -- the predict job ---------------------------------------------------------------------------
@dataclass
class GenerativeJob:
    """What ``gait predict`` asks of the generative models for one file."""

    grf: bool = False
    fill: str | None = None  # "inpaint" | "median" | None (inpaint when something is missing)
    modify: tuple[str, ...] = ()
    osim: Path | None = None
    steps: int = 50
    seed: int = 0
    mass_kg: float | None = None
    height_m: float | None = None


@dataclass
class GenerativeResult:
    source: str
    written: list[Path]
    filled: list[str]
    method: str | None
    mass_kg: float | None
    height_m: float
    notes: list[str]
    completed: Path | None = None
    kam: dict[str, float] | None = None  # first-peak knee adduction moment per side, % BW·ht
    modified: dict[str, tuple[float, float, float]] | None = None  # range: recorded, target, generated
    peak_vgrf: dict[str, float] | None = None  # N/kg


def run_generative(model: GaitDynamics, path: Path, target: Path, job: GenerativeJob) -> GenerativeResult:
    """File -> gait state -> filled / modified kinematics -> forces -> files beside ``target``.

    ``target`` names the GRF .mot (``--grf``) or the moments file; the completed or modified
    kinematics go to ``<target stem>.kinematics.mot``.
    """
    from gaitcli.io.opensim_write import write_external_loads_xml, write_grf_mot, write_storage

    trial = read_trial(path, job.mass_kg, job.height_m)
    state = gs.trial_state(trial, job.height_m, job.mass_kg)
    notes = list(state.notes)
    missing = missing_coordinates(trial)
    method = job.fill or ("inpaint" if missing and (job.grf or job.modify) else None)
    values = state.values
    if method and missing:
        values = model.fill(values, method, job.steps, job.seed)
    modified: dict[str, tuple[float, float, float]] = {}
    if job.modify:
        changes = [parse_modification(m) for m in job.modify]
        before = gs.StateTrial(**{**state.__dict__, "values": values})
        values = model.modify(before, changes, job.steps, job.seed)
        modified = _ranges(before, values, changes)
    written: list[Path] = []
    stem = target.with_suffix("")
    completed = None
    filled_note = (f"gait: filled by {method}" + (f" (DDIM {job.steps} steps, seed {job.seed})" if method == "inpaint" else "")
                   + ": " + ", ".join(missing)) if method and missing else "gait: no channel filled"
    if missing and method or job.modify:
        completed = stem.with_name(stem.name + ".kinematics.mot")
        coords = completed_coordinates(state, values, trial) if not job.modify else gs.state_coordinates(state, values)
        comments = [filled_note] + ([f"gait: modified {', '.join(job.modify)} (guidance, tolerance 10 % of range)"]
                                    if job.modify else [])
        write_storage(completed, completed.stem, state.time, coords, comments, in_degrees=True)
        written.append(completed)
    result = GenerativeResult(str(path), written, missing if method else [], method, state.mass_kg, state.height_m,
                              notes, completed, modified=modified)
    if not (job.grf or job.modify):
        return result
    values = model.with_forces(values)
    feet = gs.state_feet(state, values)
    result.peak_vgrf = {s: float(np.nanmax(feet[s]["force"][:, 1])) for s in feet}
    per_kg = stem.with_name(stem.name + ".per_kg.sto")
    columns = {}
    for side in feet:
        for k, a in enumerate("xyz"):
            columns[f"ground_force_{side}_v{a}"] = feet[side]["force"][:, k]
        for k, a in enumerate("xyz"):
            columns[f"ground_force_{side}_p{a}"] = feet[side]["cop"][:, k]
    write_storage(per_kg, per_kg.stem, state.time, columns,
                  [filled_note, "gait: forces in N/kg (body weight = 9.81), centre of pressure in m (NaN unloaded)"])
    written.append(per_kg)
    if state.mass_kg:
        newtons = {s: {"force": feet[s]["force"] * state.mass_kg, "cop": feet[s]["cop"]} for s in feet}
        grf_path = target if target.suffix.lower() == ".mot" else stem.with_name(stem.name + ".grf.mot")
        write_grf_mot(grf_path, state.time, newtons, [filled_note, f"gait: body mass {state.mass_kg:g} kg"])
        xml = grf_path.with_name(grf_path.stem + "_external_loads.xml")
        write_external_loads_xml(xml, grf_path.name)
        written += [grf_path, xml]
        if job.osim is not None:
            result.kam = _kam(job.osim, state, values, newtons)
    else:
        notes.append("body mass unknown: GRF written in N/kg only (pass --mass for the OpenSim GRF .mot)")
    return result


def _ranges(before: gs.StateTrial, values: np.ndarray, changes: list[Modification]) -> dict:
    """Peak-to-peak range of each edited coordinate: as recorded, as asked, as generated."""
    recorded, generated = gs.state_coordinates(before), gs.state_coordinates(before, values)
    out = {}
    for change in changes:
        name = change.coordinate
        if name.startswith("pelvis_v"):
            k = gs.STATE_CHANNELS.index(name)
            scale = before.height_m
            old, new = before.values[:, k] * scale, values[:, k] * scale
        else:
            old, new = recorded[name], generated[name]
        measure = np.nanmean if name.startswith("pelvis_v") else np.ptp
        out[f"{name} {'mean' if name.startswith('pelvis_v') else 'range'}"] = (
            float(measure(old)), float(measure(change.apply(old))), float(measure(new)))
    return out


def _kam(osim: Path, state: gs.StateTrial, values: np.ndarray, newtons: dict) -> dict[str, float]:
    """Mean first-peak knee adduction moment per side (% BW·ht), over the stances of the trial."""
    from gaitcli.eval.grf import stances
    from gaitcli.eval.kam import knee_adduction_moment
    from gaitcli.io.osim_fk import frame_positions

    coords = gs.state_coordinates(state, values)
    knees = frame_positions(Path(osim), state.time, coords, ["knee_r", "knee_l"])
    out = {}
    for side in ("r", "l"):
        kam = knee_adduction_moment(newtons[side]["force"], newtons[side]["cop"], knees[f"knee_{side}"], side,
                                    state.mass_kg, state.height_m)
        fy = newtons[side]["force"][:, 1] / state.mass_kg
        peaks = [np.nanmax(kam[a:a + (b - a) // 2]) for a, b in stances(fy) if np.isfinite(kam[a:b]).any()]
        out[side] = float(np.mean(peaks)) if peaks else float("nan")
    return out


def default_paths() -> tuple[Path, Path]:
    here = Path(__file__).resolve().parent / "default"
    return here / "gaitdynamics-diffusion.safetensors", here / "gaitdynamics-grf.safetensors"
