"""Read a C3D file into a :class:`Recording` (points, analog, force plates, events, subject).

Header and parameters are parsed with the ``c3d`` package (py-c3d); the data block is decoded
here with numpy in one pass (INT and REAL, Intel / DEC / SGI-MIPS byte layouts), which is
much faster than iterating ``c3d.Reader.read_frames``.

Quirks of real files handled here:

- POINT labels beyond 255 live in ``POINT:LABELS2``, ``LABELS3``... (biomechZoo keeps the
  PiG MOMENTS there); ANALOG labels likewise.
- Subject prefixes (``Matt:LKneeAngles``) are kept in channel names; ``point_groups`` keys
  and ``info["label_prefix"]`` are prefix-free. Duplicate labels get ``.1``, ``.2``...
  (pandas style), empty labels become ``P<n>`` / ``A<n>``.
- Residual < 0 (invalid / occluded) and non-finite samples become NaN.
- Missing POINT:RATE -> the header frame rate (warning). Missing or zero ANALOG:RATE with
  analog channels present (c3d.org sample28) -> point rate x analog samples per frame
  (warning). The data layout always follows the header's analog samples per frame.
- Header frame numbers are 16 bit: when the header's last frame is saturated, POINT:FRAMES /
  POINT:LONG_FRAMES / TRIAL:ACTUAL_END_FIELD give the frame count.
- A data section shorter than the declared frames is an error (no partial recordings), as
  are a missing POINT group and POINT:USED / ANALOG:USED disagreeing with the header (the
  data layout would be a guess).
- Analog values that overflowed 16-bit integers (Geneva NP1001a16 plate moments) are
  unwrapped, with a warning; see :func:`unwrap_int16`.
- Fixed-width strings padded with NUL (sample10 TYPE-4a POINT:UNITS "mm\\0\\0") are cleaned.
- Event times (EVENT:TIMES, minutes and seconds rows) count from the start of the capture,
  not from the first stored frame: they are shifted by (TRIAL:ACTUAL_START_FIELD - 1) / rate,
  ACTUAL_START_FIELD being two 16-bit words (low, high); without it the header first frame.
  Motion Analysis files store the event names in EVENT:CONTEXTS and leave LABELS empty.
- PiG invalid model outputs (see :func:`mask_pig_invalid`) become NaN, with a count in
  ``warnings``.
- Any failure is a :class:`ReadError` naming the file; no other exception escapes.

Units are recorded, never converted, on ``points`` and ``analog``: PiG MOMENTS say ``Nmm``
while holding N·mm/kg; that is fixed by the naming layer, not here. Force plate outputs
(``gaitcli.io.forceplates``) are in N, m and N·m.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import c3d
import numpy as np

from gaitcli.data.timeseries import Event, Recording, SubjectInfo, TimeSeries, as_path
from gaitcli.errors import ReadError
from gaitcli.io.forceplates import PlateParameters, compute_forceplates

# Motion capture runs at tens to thousands of frames per second; outside this band the rate
# field is damaged, and trusting it would make a time axis of days or of microseconds.
MIN_POINT_RATE, MAX_POINT_RATE = 1.0, 100_000.0

PROCESSOR_INTEL, PROCESSOR_DEC, PROCESSOR_MIPS = 84, 85, 86
BLOCK = 512

# Magnitudes no PiG output reaches in gait (units as PiG stores them: N·mm/kg, N/kg, W/kg,
# deg). sample23 holds LHipMoment = 61495 N·mm/kg (real hip moments stay below ~5000 even
# in running), a knee force of -99 N/kg and a ground reaction of -109 N/kg (11 body weights).
PIG_INVALID_LIMITS = {"moment": 20000.0, "force": 50.0, "power": 100.0, "angle": 720.0}
# ...raised to this multiple of the kind's typical 95th percentile, so that files storing
# absolute units (N·mm, N, W) are never cut
PIG_LIMIT_TYPICAL_FACTOR = 5.0
# share of a frame's model outputs that must be exact zero vectors to call the frame "not
# computed" (sample23: 10 of 12 angles are zero while LAbsAnkleAngle, foot-only, is not)
NOT_COMPUTED_SHARE = 0.8


# --------------------------------------------------------------------------------------
# entry point


def read_c3d(path: str | Path) -> Recording:
    """Read every POINT, ANALOG, FORCE_PLATFORM, EVENT and subject datum of a C3D file."""
    path = as_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReadError(path, f"cannot open: {exc.strerror or exc}") from None
    try:
        # garbage words (signalling NaNs, zero forces) are expected and end up as NaN
        with np.errstate(all="ignore"):
            return _C3DFile(path, raw).to_recording()
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract: only ReadError leaves read_c3d
        raise ReadError(path, f"malformed C3D file ({type(exc).__name__}: {_short(exc)})") from None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:120] if text else "no detail"


# --------------------------------------------------------------------------------------
# parameters


class _LenientReader(c3d.Reader):
    """c3d.Reader without its assertions on header/parameter consistency.

    Real files disagree between header and parameters in harmless ways (missing ANALOG:RATE,
    float rounding of rates); :class:`_C3DFile` checks what the data layout needs itself.
    """

    def _check_metadata(self) -> None:
        return None


class _Params:
    """Typed access to C3D parameters by ``"GROUP:NAME"``; missing ones give the default."""

    def __init__(self, reader: c3d.Reader) -> None:
        self._reader = reader
        self._strings: dict[str, list[str]] = {}

    def has(self, key: str) -> bool:
        return self._reader.get(key) is not None

    def group(self, name: str) -> Any:
        return self._reader.get(name)

    def strings(self, key: str) -> list[str]:
        """A character parameter as a flat list of stripped strings, in storage order."""
        if key not in self._strings:
            self._strings[key] = self._read_strings(key)
        return self._strings[key]

    def _read_strings(self, key: str) -> list[str]:
        param = self._reader.get(key)
        if param is None or param.bytes_per_element != -1 or 0 in param.dimensions:
            return []
        data, dims = param.bytes, param.dimensions
        if len(dims) <= 1:
            return [_clean(_decode(data))]
        width, count = dims[0], int(np.prod(dims[1:]))
        return [_clean(_decode(data[i * width:(i + 1) * width])) for i in range(count)]

    def numbers(self, key: str) -> np.ndarray | None:
        """The parameter as a float array in the package's (row-major, reversed) shape."""
        param = self._reader.get(key)
        if param is None or param.bytes_per_element == -1 or 0 in param.dimensions:
            return None
        if param.total_bytes == 0 or len(param.bytes) < param.total_bytes:
            return None
        size = param.bytes_per_element
        if not param.dimensions:
            value = {4: lambda: param.float_value, 2: lambda: param.int16_value,
                     1: lambda: param.int8_value}.get(size)
            return None if value is None else np.array([float(value())])
        if size == 4:
            values = param.float_array
        elif size == 2:
            values = param.int16_array
        elif size == 1:
            values = param.int8_array
        else:
            return None
        return np.asarray(values, dtype=np.float64)

    def number(self, key: str, default: float | None = None) -> float | None:
        values = self.numbers(key)
        if values is None or values.size == 0:
            return default
        return float(values.ravel()[0])

    def int_words(self, key: str) -> np.ndarray | None:
        """Integer parameter read as unsigned 16-bit words (frame numbers)."""
        param = self._reader.get(key)
        if param is None or param.bytes_per_element not in (1, 2) or not param.total_bytes:
            return None
        if param.bytes_per_element == 1:
            return np.atleast_1d(np.asarray(param.uint8_array if param.dimensions
                                            else param.uint8_value, dtype=np.int64))
        return np.atleast_1d(np.asarray(param.uint16_array if param.dimensions
                                        else param.uint16_value, dtype=np.int64))

    def labels(self, group: str, count: int) -> list[str]:
        """LABELS followed by LABELS2, LABELS3... of a group, cut to ``count``."""
        return self._continued(self.strings, f"{group}:LABELS", count)

    def units(self, group: str, count: int) -> list[str]:
        return self._continued(self.strings, f"{group}:UNITS", count)

    def numbers_continued(self, key: str, count: int) -> np.ndarray | None:
        """A 1-D numeric parameter followed by KEY2, KEY3... (ANALOG:SCALE2 beyond 255)."""
        if self.numbers(key) is None:
            return None
        return np.array(self._continued(lambda k: list(self.numbers(k).ravel()), key, count))

    def words_continued(self, key: str, count: int) -> np.ndarray | None:
        if self.int_words(key) is None:
            return None
        return np.array(self._continued(lambda k: list(self.int_words(k).ravel()), key, count))

    def _continued(self, read: Any, key: str, count: int) -> list[Any]:
        values = read(key)
        k = 2
        while len(values) < count and self.has(f"{key}{k}"):
            values = values + read(f"{key}{k}")
            k += 1
        return values[:count]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _clean(text: str) -> str:
    """Strip blanks and the NUL padding some writers leave in fixed-width strings."""
    return text.replace("\x00", " ").strip()


def _first_parameter_byte(raw: bytes) -> int:
    return (raw[0] - 1) * BLOCK if raw[0] > 0 else -1


def _check_signature(path: Path, raw: bytes) -> int:
    """The processor type, after the checks that tell a C3D file from anything else."""
    if not raw:
        raise ReadError(path, "empty file")
    if len(raw) < BLOCK:
        raise ReadError(path, f"not a C3D file (only {len(raw)} bytes, header needs {BLOCK})")
    if raw[1] != 0x50:
        raise ReadError(path, f"not a C3D file (second byte is 0x{raw[1]:02x}, expected 0x50)")
    start = _first_parameter_byte(raw)
    if start < 0 or start + 4 > len(raw):
        raise ReadError(path, f"truncated: parameter section (block {raw[0]}) is missing")
    processor = raw[start + 3]
    if processor not in (PROCESSOR_INTEL, PROCESSOR_DEC, PROCESSOR_MIPS):
        raise ReadError(path, f"bad parameter section (processor type {processor}, "
                              "expected 84, 85 or 86)")
    n_blocks = raw[start + 2]
    if start + n_blocks * BLOCK > len(raw):
        raise ReadError(path, f"truncated: parameter section needs {n_blocks} blocks")
    return processor


# --------------------------------------------------------------------------------------
# data block


@dataclass
class _Layout:
    n_frames: int
    n_points: int
    n_analog: int
    analog_per_frame: int
    is_float: bool
    processor: int
    point_scale: float
    analog_unsigned: bool
    data_start: int  # byte offset

    @property
    def word(self) -> int:
        return 4 if self.is_float else 2

    @property
    def point_bytes(self) -> int:
        return 4 * self.n_points * self.word

    @property
    def analog_bytes(self) -> int:
        return self.n_analog * self.analog_per_frame * self.word

    @property
    def frame_bytes(self) -> int:
        return self.point_bytes + self.analog_bytes


def _word_dtype(layout: _Layout, unsigned: bool = False) -> np.dtype:
    """How one stored word reads: DEC floats as raw 32-bit words, converted afterwards."""
    order = ">" if layout.processor == PROCESSOR_MIPS else "<"
    if layout.is_float:
        return np.dtype(order + ("u4" if layout.processor == PROCESSOR_DEC else "f4"))
    return np.dtype(order + ("u2" if unsigned else "i2"))


def _to_float(words: np.ndarray, layout: _Layout) -> np.ndarray:
    if layout.is_float and layout.processor == PROCESSOR_DEC:
        return _dec_to_float(words)
    return words.astype(np.float64)


def _dec_to_float(words: np.ndarray) -> np.ndarray:
    """DEC F-floating words (read as little-endian uint32) -> float64.

    A DEC float is two little-endian 16-bit words, the high one (sign, exponent, top of the
    mantissa) first. Swapping the words gives an IEEE bit pattern whose exponent is biased by
    128 instead of 127 and whose mantissa is 0.1f instead of 1.f: its IEEE reading is exactly
    4 times the value. DEC exponent 0 means zero.
    """
    words = np.asarray(words, dtype="<u4")
    swapped = ((words >> np.uint32(16)) | (words << np.uint32(16))).astype("<u4")
    values = swapped.view("<f4").astype(np.float64) * 0.25
    values[(swapped & np.uint32(0x7F800000)) == 0] = 0.0
    return values


def _read_data(raw: bytes, layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xyz (frames, points, 3), valid (frames, points), analog raw (samples, channels)).

    One structured view over the whole data block: no per-frame Python work, no copies
    before the conversion to float64.
    """
    n = layout.n_frames
    fields = []
    if layout.n_points:
        fields.append(("points", _word_dtype(layout), (layout.n_points, 4)))
    n_analog_words = layout.n_analog * layout.analog_per_frame
    if n_analog_words:
        fields.append(("analog", _word_dtype(layout, layout.analog_unsigned), (n_analog_words,)))
    frames = np.frombuffer(raw, dtype=np.dtype(fields), count=n, offset=layout.data_start)
    xyz = np.empty((n, 0, 3))
    valid = np.empty((n, 0), dtype=bool)
    if layout.n_points:
        stored = frames["points"]
        xyz = _to_float(stored[:, :, :3], layout)
        if not layout.is_float:
            xyz *= layout.point_scale
        # the fourth word holds camera mask and residual; negative means "invalid sample"
        fourth = _to_float(stored[:, :, 3], layout) if layout.is_float else stored[:, :, 3]
        valid = (fourth >= 0) & _all3(np.isfinite(xyz))
    analog = np.empty((n * layout.analog_per_frame, layout.n_analog))
    if n_analog_words:
        analog = _to_float(frames["analog"], layout).reshape(-1, layout.n_analog)
    return xyz, valid, analog


def unwrap_int16(raw: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Undo 16-bit wrap-around in analog channels stored as integers.

    Some writers (Geneva NP1001a16: PiG plate moments beyond 32.767 N·m) store values that
    overflowed a signed 16-bit integer, so the signal jumps by 65536 between two samples.
    No real signal sampled at analog rates jumps by more than half the 16-bit range between
    consecutive samples, so such jumps are undone. Only integer-valued channels within the
    16-bit range are considered. Returns the data and {channel: jumps undone}.
    """
    fixed: dict[int, int] = {}
    if raw.shape[0] < 2:
        return raw, fixed
    span = raw.max(axis=0) - raw.min(axis=0)
    candidates = np.flatnonzero(span > 32768)  # a wrap needs values near both ends
    for col in candidates:
        values = raw[:, col]
        steps = np.diff(values)
        jumps = np.abs(steps) > 32768
        if not jumps.any() or np.abs(values).max() > 32768 \
                or not np.all(values == np.round(values)):
            continue
        if not fixed:
            raw = raw.copy()
        raw[1:, col] += np.cumsum(-65536.0 * np.sign(steps) * jumps)
        fixed[int(col)] = int(jumps.sum())
    return raw, fixed


# --------------------------------------------------------------------------------------
# labels and groups

_GROUP_BY_LIST = {"ANGLES": "angle", "MOMENTS": "moment", "FORCES": "force", "POWERS": "power"}
_PIG_PATTERNS = (
    (re.compile(r"angles?$", re.I), "angle"),
    (re.compile(r"(moment|torque)s?$", re.I), "moment"),
    (re.compile(r"^[LR]?GroundReaction", re.I), "force"),
    (re.compile(r"(force|grf)s?$", re.I), "force"),
    (re.compile(r"powers?$", re.I), "power"),
)
# non-position model outputs that are none of the four kinetic/kinematic kinds
_OTHER_PATTERN = re.compile(r"(scalar|index|speed|velocit|accel|energy|work|length|ratio)", re.I)


def unique_names(names: Sequence[str], count: int, stem: str) -> list[str]:
    """``count`` names: blanks become ``<stem><n>``, repeats get ``.1``, ``.2``..."""
    padded = [n.strip() for n in names[:count]] + [""] * max(0, count - len(names))
    out: list[str] = []
    seen: Counter[str] = Counter()
    taken = set(padded)
    for i, name in enumerate(padded):
        name = name or f"{stem}{i + 1}"
        if seen[name]:
            candidate = f"{name}.{seen[name]}"
            while candidate in taken:
                seen[name] += 1
                candidate = f"{name}.{seen[name]}"
            seen[name] += 1
            name = candidate
        else:
            seen[name] += 1
        taken.add(name)
        out.append(name)
    return out


def split_prefix(label: str, prefixes: Sequence[str]) -> tuple[str, str]:
    """(prefix, bare label) for ``Subject:Label``; prefixes from SUBJECTS:LABEL_PREFIXES first."""
    for prefix in prefixes:
        if prefix and label.startswith(prefix):
            return prefix, label[len(prefix):]
    if ":" in label:
        head, _, tail = label.partition(":")
        if head and tail:
            return head + ":", tail
    return "", label


def classify_point(label: str, listed: dict[str, str], modeled: set[str]) -> str:
    """angle/moment/force/power/marker/other for a prefix-free label.

    Order: the file's POINT:ANGLES/MOMENTS/FORCES/POWERS lists; other Vicon TYPE_GROUPS lists
    (e.g. SCALARS) -> other; POINT:MODELED_MARKERS -> marker (positions); PiG name patterns;
    names of non-position quantities -> other; anything else is a position -> marker.
    """
    if label in listed:
        return listed[label]
    if label in modeled:
        return "marker"
    for pattern, group in _PIG_PATTERNS:
        if pattern.search(label):
            return group
    if _OTHER_PATTERN.search(label):
        return "other"
    return "marker"


# --------------------------------------------------------------------------------------
# the file


class _C3DFile:
    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        self.raw = raw
        self.warnings: list[str] = []
        self.plate_info: dict[str, Any] = {}
        processor = _check_signature(path, raw)
        try:
            self.reader = _LenientReader(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001 - any parser failure is a bad parameter section
            raise ReadError(path, f"bad parameter section ({type(exc).__name__}: "
                                  f"{_short(exc)})") from None
        self.params = _Params(self.reader)
        self.header = self.reader.header
        if self.params.group("POINT") is None:
            raise ReadError(path, "bad parameter section (no POINT group)")
        self.processor = processor
        self.point_rate = self._point_rate()
        self.layout = self._layout()
        self.analog_rate = self._analog_rate()

    # -- layout ---------------------------------------------------------------------------
    def _point_rate(self) -> float:
        rate = self.params.number("POINT:RATE")
        if rate is None or not np.isfinite(rate) or rate <= 0:
            rate = float(self.header.frame_rate)
            if not np.isfinite(rate) or rate <= 0:
                raise ReadError(self.path, "no point rate (POINT:RATE and header rate missing)")
            self.warnings.append(f"POINT:RATE missing; using the header frame rate {rate:g} Hz")
        if not MIN_POINT_RATE <= rate <= MAX_POINT_RATE:
            raise ReadError(self.path, f"implausible point rate {rate:g} Hz (POINT:RATE); expected "
                                       f"{MIN_POINT_RATE:g}-{MAX_POINT_RATE:g} Hz")
        return float(rate)

    def _frame_count(self) -> int:
        """Header count, unless its 16-bit last frame is saturated (then the parameters')."""
        count = int(self.header.last_frame) - int(self.header.first_frame) + 1
        if int(self.header.last_frame) < 65535 and count > 0:
            return count
        candidates = [count]
        for key in ("POINT:FRAMES", "POINT:LONG_FRAMES"):
            param = self.reader.get(key)
            if param is not None and param.bytes_per_element == 4:
                value = self.params.number(key)
            else:
                words = self.params.int_words(key)
                value = None if words is None else float(words[0])
            if value is not None and np.isfinite(value):
                candidates.append(int(value))
        end = self.params.int_words("TRIAL:ACTUAL_END_FIELD")
        start = self._actual_start_field()
        if end is not None and end.size >= 2 and start is not None:
            candidates.append(int(end[0]) + 65536 * int(end[1]) - start + 1)
        return max(candidates)

    def _layout(self) -> _Layout:
        scale = self.params.number("POINT:SCALE", float(self.header.scale_factor))
        if scale is None or not np.isfinite(scale) or scale == 0:
            raise ReadError(self.path, "bad POINT:SCALE")
        n_points = int(self.params.int_words("POINT:USED")[0]) if self.params.has(
            "POINT:USED") else int(self.header.point_count)
        per_frame = int(self.header.analog_per_frame)
        n_analog = int(self.params.int_words("ANALOG:USED")[0]) if self.params.has(
            "ANALOG:USED") else (int(self.header.analog_count) // per_frame if per_frame else 0)
        if per_frame == 0:
            n_analog = 0
        if n_points != int(self.header.point_count):
            raise ReadError(self.path, f"bad parameter section (POINT:USED {n_points} != "
                                       f"{self.header.point_count} points in the header)")
        if n_analog * per_frame != int(self.header.analog_count):
            raise ReadError(self.path, f"bad parameter section (ANALOG:USED {n_analog} x "
                                       f"{per_frame} samples per frame != "
                                       f"{self.header.analog_count} in the header)")
        data_block = int(self.header.data_block)
        if data_block < 1:
            raise ReadError(self.path, f"bad data block pointer {data_block}")
        fmt = " ".join(self.params.strings("ANALOG:FORMAT")).upper()
        layout = _Layout(
            n_frames=self._frame_count(), n_points=n_points, n_analog=n_analog,
            analog_per_frame=per_frame, is_float=scale < 0, processor=self.processor,
            point_scale=abs(scale), analog_unsigned=fmt.startswith("UNSIGNED"),
            data_start=(data_block - 1) * BLOCK)
        self._check_size(layout)
        return layout

    def _check_size(self, layout: _Layout) -> None:
        available = len(self.raw) - layout.data_start
        if layout.frame_bytes == 0:
            raise ReadError(self.path, "no data: POINT:USED and ANALOG:USED are both 0")
        if layout.n_frames <= 0:
            raise ReadError(self.path, f"no frames (first {self.header.first_frame}, "
                                       f"last {self.header.last_frame})")
        frames_in_file = max(available, 0) // layout.frame_bytes
        if frames_in_file < layout.n_frames:
            raise ReadError(self.path, f"truncated: data section ends at frame {frames_in_file} "
                                       f"of {layout.n_frames}")

    def _analog_rate(self) -> float:
        derived = self.point_rate * self.layout.analog_per_frame
        rate = self.params.number("ANALOG:RATE")
        if self.layout.n_analog == 0:
            return float(rate or derived)
        if rate is None or not np.isfinite(rate) or rate <= 0:
            found = "missing" if rate is None else f"{rate:g}"
            self.warnings.append(
                f"ANALOG:RATE is {found}; using point rate x {self.layout.analog_per_frame} "
                f"samples per frame = {derived:g} Hz")
            return derived
        if abs(rate - derived) > 1e-3 * derived:
            self.warnings.append(f"ANALOG:RATE {rate:g} Hz disagrees with the data layout "
                                 f"({derived:g} Hz); using {derived:g} Hz")
            return derived
        return float(rate)

    def _actual_start_field(self) -> int | None:
        words = self.params.int_words("TRIAL:ACTUAL_START_FIELD")
        if words is None or words.size == 0:
            return None
        value = int(words[0]) + (65536 * int(words[1]) if words.size > 1 else 0)
        return value if value > 0 else None

    @property
    def first_frame(self) -> int:
        actual = self._actual_start_field()
        return actual if actual is not None else int(self.header.first_frame)

    # -- recording ------------------------------------------------------------------------
    def to_recording(self) -> Recording:
        xyz, valid, analog_raw = _read_data(self.raw, self.layout)
        series: dict[str, TimeSeries] = {}
        points, groups, prefix = self._points(xyz, valid)
        if points is not None:
            series["points"] = points
        analog = self._analog(analog_raw)
        if analog is not None:
            series["analog"] = analog
            plates = self._forceplates(analog)
            if plates is not None:
                series["forceplates"] = plates
        return Recording(
            path=self.path, format="c3d", series=series, events=self._events(),
            subject=self._subject(prefix), point_groups=groups, info=self._info(prefix),
            warnings=self.warnings)

    def _points(self, xyz: np.ndarray, valid: np.ndarray
                ) -> tuple[TimeSeries | None, dict[str, str], str]:
        """(points series, point_groups, most common label prefix)."""
        n_points = self.layout.n_points
        if n_points == 0:
            return None, {}, ""
        labels = unique_names(self.params.labels("POINT", n_points), n_points, "P")
        prefixes = self.params.strings("SUBJECTS:LABEL_PREFIXES")
        bare = [split_prefix(label, prefixes)[1] for label in labels]
        prefix_counts = Counter(label[:-len(b)] for label, b in zip(labels, bare) if label != b)
        prefix = prefix_counts.most_common(1)[0][0] if prefix_counts else ""
        listed, listed_units = self._listed_groups(prefixes)
        modeled = {split_prefix(m, prefixes)[1]
                   for m in self.params.strings("POINT:MODELED_MARKERS")}
        kinds = [classify_point(b, listed, modeled) for b in bare]

        values = np.where(valid[:, :, None], xyz, np.nan)
        masked = mask_pig_invalid(values, bare, kinds)
        if masked:
            details = ", ".join(f"{labels[i]} {n}" for i, n in masked.items())
            self.warnings.append(f"PiG invalid model outputs set to NaN (samples): {details}")
        unit_by_kind = self._point_units()
        channels = [f"{label}_{axis}" for label in labels for axis in "xyz"]
        units = [listed_units.get(b) or unit_by_kind[kind]
                 for b, kind in zip(bare, kinds) for _ in range(3)]
        time = np.arange(values.shape[0]) / self.point_rate
        series = TimeSeries(time, values.reshape(values.shape[0], -1), channels, units,
                            self.point_rate)
        return series, dict(zip(bare, kinds)), prefix

    def _listed_groups(self, prefixes: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        """Kinds from POINT:ANGLES/MOMENTS/FORCES/POWERS and the other POINT:TYPE_GROUPS lists
        (label -> kind), and the units of "other" lists such as SCALARS (label -> unit)."""
        kinds: dict[str, str] = {}
        units: dict[str, str] = {}
        pairs = self.params.strings("POINT:TYPE_GROUPS")
        singular = {plural.upper(): one.upper() for plural, one in zip(pairs[0::2], pairs[1::2])}
        for name in dict.fromkeys(list(_GROUP_BY_LIST) + [p.upper() for p in pairs[0::2]]):
            if not name or name == "MODELED_MARKERS":
                continue
            kind = _GROUP_BY_LIST.get(name, "other")
            unit = ""
            if kind == "other" and name in singular:
                unit = (self.params.strings(f"POINT:{singular[name]}_UNITS") or [""])[0]
            for label in self.params.strings(f"POINT:{name}"):
                if label:
                    bare = split_prefix(label, prefixes)[1]
                    kinds.setdefault(bare, kind)
                    if unit:
                        units.setdefault(bare, unit)
        return kinds, units

    def _point_units(self) -> dict[str, str]:
        def declared(key: str, default: str) -> str:
            found = self.params.strings(key)
            return found[0] if found and found[0] else default

        if not self.params.strings("POINT:UNITS"):
            self.warnings.append("POINT:UNITS missing; assuming mm")
        return {
            "marker": declared("POINT:UNITS", "mm"),
            "angle": declared("POINT:ANGLE_UNITS", "deg"),
            "moment": declared("POINT:MOMENT_UNITS", "Nmm"),
            "force": declared("POINT:FORCE_UNITS", "N"),
            "power": declared("POINT:POWER_UNITS", "W"),
            "other": "",
        }

    def _analog(self, analog_raw: np.ndarray) -> TimeSeries | None:
        n = self.layout.n_analog
        if n == 0:
            return None
        offsets, scales = self._analog_transform(n)
        names = unique_names(self.params.labels("ANALOG", n), n, "A")
        if not self.layout.analog_unsigned:
            analog_raw, wrapped = unwrap_int16(analog_raw)
            if wrapped:
                self.warnings.append(
                    "analog values wrapped at the 16-bit limit (+/-32768) and were unwrapped: "
                    + ", ".join(f"{names[i]} {k}x" for i, k in wrapped.items()))
        data = (analog_raw - offsets) * scales
        units = self.params.units("ANALOG", n)
        units = units + [""] * (n - len(units))
        time = np.arange(data.shape[0]) / self.analog_rate
        return TimeSeries(time, data, names, units, self.analog_rate)

    def _analog_transform(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        gen_scale = self.params.number("ANALOG:GEN_SCALE", 1.0) or 1.0
        scales = np.ones(n)
        found = self.params.numbers_continued("ANALOG:SCALE", n)
        if found is not None:
            scales[:found.size] = found
        offsets = np.zeros(n)
        words = self.params.words_continued("ANALOG:OFFSET", n)
        if words is not None:
            words = words.astype(np.float64)
            if not self.layout.analog_unsigned:
                words = np.where(words >= 32768, words - 65536, words)
            offsets[:words.size] = words
        return offsets, scales * gen_scale

    def _forceplates(self, analog: TimeSeries) -> TimeSeries | None:
        params = self._plate_parameters()
        if params is None:
            return None
        result = compute_forceplates(analog, params)
        self.warnings.extend(result.warnings)
        self.plate_info.update(result.info)
        return result.series

    def _plate_parameters(self) -> PlateParameters | None:
        used = self.params.number("FORCE_PLATFORM:USED", 0) or 0
        if used <= 0:
            return None
        point_unit = (self.params.strings("POINT:UNITS") or ["mm"])[0]
        zero = self.params.int_words("FORCE_PLATFORM:ZERO")
        return PlateParameters(
            used=int(used),
            types=self.params.numbers("FORCE_PLATFORM:TYPE"),
            channels=self.params.numbers("FORCE_PLATFORM:CHANNEL"),
            corners=self.params.numbers("FORCE_PLATFORM:CORNERS"),
            origins=self.params.numbers("FORCE_PLATFORM:ORIGIN"),
            cal_matrix=self.params.numbers("FORCE_PLATFORM:CAL_MATRIX"),
            zero=None if zero is None else tuple(int(z) for z in zero[:2]),
            length_unit=point_unit,
            point_rate=self.point_rate,
        )

    # -- events ---------------------------------------------------------------------------
    def _events(self) -> list[Event]:
        times = self.params.numbers("EVENT:TIMES")
        used = int(self.params.number("EVENT:USED", 0) or 0)
        if times is None or used <= 0:
            return []
        times = times.reshape(-1, 2) if times.ndim != 2 else times
        used = min(used, times.shape[0])
        labels = self.params.strings("EVENT:LABELS")
        contexts = self.params.strings("EVENT:CONTEXTS")
        shift = (self.first_frame - 1) / self.point_rate
        events = []
        for i in range(used):
            seconds = 60.0 * times[i, 0] + times[i, 1] - shift
            label = labels[i] if i < len(labels) else ""
            context = contexts[i] if i < len(contexts) else ""
            name, side = event_name_and_side(label, context)
            events.append(Event(time=float(seconds), name=name, side=side, source="file"))
        events.sort(key=lambda e: e.time)
        self._warn_events_outside(events)
        return events

    def _warn_events_outside(self, events: list[Event]) -> None:
        duration = (self.layout.n_frames - 1) / self.point_rate
        outside = [e for e in events if e.time < -0.5 / self.point_rate
                   or e.time > duration + 0.5 / self.point_rate]
        if outside:
            self.warnings.append(
                f"{len(outside)} of {len(events)} events lie outside the recording "
                f"(0-{duration:.3f} s), e.g. {outside[0].name} at {outside[0].time:.3f} s")

    # -- subject and info -----------------------------------------------------------------
    def _subject(self, prefix: str) -> SubjectInfo:
        subject = SubjectInfo()
        mass = self._first_number(("PROCESSING:BODYMASS", "SUBJECTS:BODYMASS",
                                   "SUBJECT:BODYMASS", "SUBJECT:WEIGHT", "PROCESSING:WEIGHT"))
        if mass is not None:
            subject.mass_kg, subject.sources["mass_kg"] = mass[1], f"c3d {mass[0]}"
        height = self._first_number(("PROCESSING:HEIGHT", "SUBJECTS:HEIGHT", "SUBJECT:HEIGHT"))
        if height is not None:
            key, value = height
            metres = value / 1000.0 if value > 3.0 else value  # stored in mm by PiG
            subject.height_m, subject.sources["height_m"] = metres, f"c3d {key}"
        for side, key in (("l", "PROCESSING:LLEGLENGTH"), ("r", "PROCESSING:RLEGLENGTH")):
            value = self.params.number(key)
            if value is not None and value > 0:
                subject.leg_length_m[side] = value / 1000.0 if value > 3.0 else value
                subject.sources[f"leg_length_m.{side}"] = f"c3d {key}"
        name = self._subject_name(prefix)
        if name:
            subject.name, subject.sources["name"] = name
        return subject

    def _first_number(self, keys: Sequence[str]) -> tuple[str, float] | None:
        for key in keys:
            value = self.params.number(key)
            if value is not None and np.isfinite(value) and value > 0:
                return key, value
        return None

    def _subject_name(self, prefix: str) -> tuple[str, str] | None:
        names = [n for n in self.params.strings("SUBJECTS:NAMES") if n]
        prefixes = self.params.strings("SUBJECTS:LABEL_PREFIXES")
        if prefix and prefix in prefixes and prefixes.index(prefix) < len(names):
            return names[prefixes.index(prefix)], "c3d SUBJECTS:NAMES"
        if prefix and prefix.rstrip(":") in names:
            return prefix.rstrip(":"), "c3d SUBJECTS:NAMES"
        if names:
            return names[0], "c3d SUBJECTS:NAMES"
        if prefix:
            return prefix.rstrip(":"), "c3d POINT label prefix"
        return None

    def _info(self, prefix: str) -> dict[str, Any]:
        software = " ".join(s for s in self.params.strings("MANUFACTURER:SOFTWARE") if s)
        version = self.params.strings("MANUFACTURER:VERSION")
        if not version:
            numbers = self.params.numbers("MANUFACTURER:VERSION")
            version = [".".join(str(int(v)) for v in numbers.ravel())] if numbers is not None else []
        return {
            "first_frame": self.first_frame,
            "n_frames": self.layout.n_frames,
            "point_rate": self.point_rate,
            "analog_rate": self.analog_rate if self.layout.n_analog else None,
            "point_units": (self.params.strings("POINT:UNITS") or ["mm"])[0],
            "label_prefix": prefix,
            "manufacturer": " ".join(s for s in self.params.strings("MANUFACTURER:COMPANY") if s),
            "software": software,
            "software_version": " ".join(v for v in version if v),
            "processor": {84: "intel", 85: "dec", 86: "sgi"}[self.processor],
            "data_format": "real" if self.layout.is_float else "integer",
            **self.plate_info,
        }


# --------------------------------------------------------------------------------------
# events

_EVENT_NAMES = {
    "foot strike": "foot_strike", "footstrike": "foot_strike", "heel strike": "foot_strike",
    "foot contact": "foot_strike", "hs": "foot_strike", "fs": "foot_strike",
    "foot off": "foot_off", "footoff": "foot_off", "toe off": "foot_off", "to": "foot_off",
    "fo": "foot_off",
}
_SIDES = {"left": "l", "right": "r", "l": "l", "r": "r"}


def event_name_and_side(label: str, context: str) -> tuple[str, str]:
    """Map a C3D event (label, context) to (name, side).

    "Foot Strike"/"Foot Off" in any case, and LHS/RHS/LTO/RTO (side from the letter) become
    foot_strike/foot_off. The side comes from the context (Left/Right) or the label's L/R
    prefix. Motion Analysis puts the name in CONTEXTS and leaves LABELS empty.
    """
    label, context = label.strip(), context.strip()
    if not label and context:
        label, context = context, ""
    side = _SIDES.get(context.lower(), "")
    key = label.lower().replace("_", " ").strip()
    if key in _EVENT_NAMES:
        return _EVENT_NAMES[key], side
    short = re.fullmatch(r"([lr])[ _-]?(hs|fs|to|fo|heel strike|foot strike|foot off|toe off)",
                         key)
    if short:
        return _EVENT_NAMES[short.group(2)], side or short.group(1)
    for prefix, letter in (("left ", "l"), ("right ", "r")):
        if key.startswith(prefix) and key[len(prefix):] in _EVENT_NAMES:
            return _EVENT_NAMES[key[len(prefix):]], side or letter
    return label, side


# --------------------------------------------------------------------------------------
# PiG invalid values

_MEASURED_GRF = re.compile(r"(GroundReaction|NormalisedGRF)", re.I)


def mask_pig_invalid(values: np.ndarray, labels: Sequence[str], kinds: Sequence[str]
                     ) -> dict[int, int]:
    """Set Plug-in Gait's "not computed" samples of model outputs to NaN, in place.

    ``values`` is (frames, points, 3), ``labels`` prefix-free. Markers are never touched.
    Two rules, chosen on the real PiG files in the corpus (see tests):

    1. *Model not run in a frame*: at least two and at least :data:`NOT_COMPUTED_SHARE` of
       the angle outputs (or of the kinetic outputs: moments, forces, powers) that have a
       value in the frame are exactly (0, 0, 0); those zero vectors become NaN. PiG fills
       frames it did not process with zero vectors (sample23: frames 0-252 of the angles;
       old INT files: zero powers where the moments are invalid). A lone zero vector is
       kept: quantised INT files and powers (X = Y = 0 always) hold legitimate exact
       zeros. The PiG ground
       reaction outputs (GroundReaction*, NormalisedGRF) are left alone: zero there means
       "no plate force assigned", which downstream code relies on.
    2. *Impossible magnitude*: a component reaching :data:`PIG_INVALID_LIMITS` for its kind
       (N·mm/kg, N/kg, W/kg, deg), raised to :data:`PIG_LIMIT_TYPICAL_FACTOR` times the
       kind's typical 95th percentile so that files storing absolute units are safe. The
       whole excursion around such samples is masked: frames are added on both sides while
       the point's magnitude stays above its median non-zero magnitude (sample23
       LHipMoment: a 60-frame hump peaking at 61495). NormalisedGRF (% body weight) is
       exempt.

    Returns {point index: frames masked} for the points that lost frames.
    """
    before = ~_all3(np.isfinite(values))
    for group in (("angle",), ("moment", "force", "power")):
        members = [i for i, (kind, label) in enumerate(zip(kinds, labels))
                   if kind in group and not _MEASURED_GRF.search(label)]
        _mask_frames_not_computed(values, members)
    for kind, limit in PIG_INVALID_LIMITS.items():
        members = [i for i, (k, label) in enumerate(zip(kinds, labels))
                   if k == kind and "normalisedgrf" not in label.lower()]
        _mask_impossible(values, members, limit)
    after = ~_all3(np.isfinite(values))
    lost = (after & ~before).sum(axis=0)
    return {int(i): int(lost[i]) for i in np.flatnonzero(lost)}


def _all3(flags: np.ndarray) -> np.ndarray:
    """``flags.all(axis=-1)`` for xyz triples; numpy's reduction over a length-3 axis is slow."""
    return flags[..., 0] & flags[..., 1] & flags[..., 2]


def _mask_frames_not_computed(values: np.ndarray, members: list[int]) -> None:
    if len(members) < 2:
        return
    block = values[:, members, :]
    present = _all3(np.isfinite(block))
    zero = _all3(block == 0.0)
    n_zero = zero.sum(axis=1)
    not_computed = (n_zero >= 2) & (n_zero >= NOT_COMPUTED_SHARE * present.sum(axis=1))
    if not_computed.all():
        return  # nothing in the trial to tell a computed frame from the others
    rows, cols = np.nonzero(zero & not_computed[:, None])
    values[rows, np.asarray(members)[cols], :] = np.nan


def _mask_impossible(values: np.ndarray, members: list[int], limit: float) -> None:
    if not members:
        return
    block = np.abs(values[:, members, :])
    magnitude = np.maximum(np.maximum(block[..., 0], block[..., 1]), block[..., 2])  # NaN-aware
    typical = _column_percentile(magnitude, 95.0)
    typical = typical[np.isfinite(typical)]
    if typical.size:
        limit = max(limit, PIG_LIMIT_TYPICAL_FACTOR * float(np.median(typical)))
    bad = magnitude >= limit
    for column in np.flatnonzero(bad.any(axis=0)):
        mag = magnitude[:, column]
        reference = mag[~bad[:, column] & (mag > 0)]
        level = float(np.median(reference)) if reference.size else 0.0
        values[_grow_excursions(bad[:, column], mag, level), members[column], :] = np.nan


def _column_percentile(values: np.ndarray, q: float) -> np.ndarray:
    """Percentile of the finite values of each column (NaN for empty columns), fast."""
    ordered = np.sort(values, axis=0)  # NaN sort last
    counts = np.isfinite(values).sum(axis=0)
    index = np.floor(q / 100.0 * np.maximum(counts - 1, 0)).astype(int)
    out = ordered[index, np.arange(values.shape[1])]
    out[counts == 0] = np.nan
    return out


def _grow_excursions(seed: np.ndarray, magnitude: np.ndarray, level: float) -> np.ndarray:
    """``seed`` extended over neighbouring frames whose magnitude stays above ``level``."""
    above = ~(magnitude <= level)  # NaN counts as above: a gap does not end an excursion
    out = seed.copy()
    n = seed.shape[0]
    for start in np.flatnonzero(seed):
        i = start - 1
        while i >= 0 and above[i] and not out[i]:
            out[i] = True
            i -= 1
        i = start + 1
        while i < n and above[i] and not out[i]:
            out[i] = True
            i += 1
    return out
