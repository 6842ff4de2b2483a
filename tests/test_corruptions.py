"""Seeded corruptions of real lab files: bad input never gives a traceback.

The house rule: a damaged file gets a clear one-line error naming the file and the problem.
Every case below takes one small real file from the shared corpus, damages it in one seeded way
(``random.Random(seed)``) and checks that

* ``read_recording`` returns a :class:`Recording` or raises :class:`ReadError` whose message is
  one line naming the file (any other exception fails the case, with its seed), and
* ``ingest`` over the damaged file returns a report (never raises) whose failure reasons are
  single lines without a traceback.

Each case is its own test, named ``<source>-<corruption>-<k>``; its seed is the CRC-32 of that
name, so a failure is reproduced by running that one test, or by hand with
``variant(case_id)`` which returns (file name, bytes, description).

Every Recording that is returned must also keep the readers' promises: finite, strictly
increasing times and a finite positive rate (``_check_recording``).

Numeric RuntimeWarnings from damaged values (overflow, NaN comparisons) are allowed.

``KNOWN_BUGS`` lists the cases that fail because of code owned elsewhere (strict xfails: they
turn red once fixed, then come off the list). ``REGRESSIONS`` pins, by hand, the reader bugs
these cases found and that were fixed, so they stay covered whatever the random draws.
The module runs in about 8 s on 2 cores (read_recording and ingest on every case).
"""

from __future__ import annotations

import math
import random
import re
import struct
import traceback
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from gaitcli.data.ingest import IngestOptions, ingest
from gaitcli.data.timeseries import Recording
from gaitcli.errors import ReadError
from gaitcli.io.readers import read_recording

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytestmark = [
    pytest.mark.skipif(not DATA.is_dir(), reason="real data corpus not present"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


# ------------------------------------------------------------------------------------------------
# Sources: small real files of every reader, both OpenSim header styles, several C3D vendors
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str  # relative to DATA
    kind: str  # "c3d" | "opensim" | "wbds"
    max_rows: int | None = None  # keep the header and this many data rows (big text files)


SOURCES: dict[str, Source] = {
    # C3D: DEC real + type 4 plates; Intel integer; Intel real; type 1 plates with ANALOG:RATE 0;
    # hybrid (Motion Analysis style) with V units; DEC PiG with model outputs; biomechZoo PiG
    # with POINT:LABELS2 (290 points).
    "TYPE-4a": Source("real/c3d-org-samples/sample10_TYPE-4a.c3d", "c3d"),
    "Eb015pi": Source("real/c3d-org-samples/sample01_Eb015pi.c3d", "c3d"),
    "Eb015pr": Source("real/c3d-org-samples/sample01_Eb015pr.c3d", "c3d"),
    "type1": Source("real/c3d-org-samples/sample28_type1.c3d", "c3d"),
    "Hybrid": Source("real/c3d-org-samples/sample26_Walking_Hybrid_1_1.c3d", "c3d"),
    "gait-pig": Source("real/c3d-org-samples/sample03_gait-pig.c3d", "c3d"),
    "HC002D06": Source("real/biomechZoo-sample-study/Straight/HC002D06.c3d", "c3d"),
    # OpenSim: new header (version=/nRows=/inDegrees=), free-text header without inDegrees,
    # Moco radians with wrong nColumns, old header (name/datacolumns/datarows/range).
    "ik-mot": Source("real/opensim-core/ID_test_subject01/subject01_walk1_ik.mot", "opensim"),
    "grf-mot": Source("real/opensim-models/Gait2354_Simbody/subject01_walk1_grf.mot", "opensim",
                      max_rows=600),
    "coords-sto": Source("real/opensim-core/example3DWalking_Rajagopal/coordinates.sto",
                         "opensim", max_rows=400),
    "id-sto": Source("real/opensim-models/Gait10dof18musc/subject01_walk_ID.sto", "opensim"),
    "old-sto": Source("real/opensim-core/c3d/reference_conversions/std_walking5_grfs.sto",
                      "opensim"),
    # Fukuchi WBDS processed table
    "wbds": Source("labeled/fukuchi2018-wbds/WBDS01walkOCang.txt", "wbds"),
}


@lru_cache(maxsize=None)
def original(source_id: str) -> bytes:
    source = SOURCES[source_id]
    raw = (DATA / source.path).read_bytes()
    if source.max_rows is None:
        return raw
    lines = raw.split(b"\n")
    end = next(i for i, line in enumerate(lines) if line.strip().lower() == b"endheader")
    return b"\n".join(lines[: end + 2 + source.max_rows]) + b"\n"


# ------------------------------------------------------------------------------------------------
# C3D layout, found independently of the reader under test
# ------------------------------------------------------------------------------------------------

BLOCK = 512


@dataclass(frozen=True)
class Param:
    name: str  # GROUP:NAME
    start: int  # offset of the name-length byte
    offset_field: int  # offset of the 16-bit "offset to next" word
    type_byte: int  # offset of the element size byte (-1 char, 1, 2, 4)
    dims_at: int  # offset of the first dimension byte (count byte just before)
    data_at: int  # offset of the first data byte
    size: int  # element size as stored
    dims: tuple[int, ...]

    @property
    def n_bytes(self) -> int:
        return abs(self.size) * math.prod(self.dims)


@dataclass(frozen=True)
class C3DMap:
    processor: int
    param_start: int
    param_end: int
    data_start: int
    params: dict[str, Param]


def c3d_map(raw: bytes) -> C3DMap:
    processor = raw[(raw[0] - 1) * BLOCK + 3]
    big = processor == 86
    param_start = (raw[0] - 1) * BLOCK
    param_end = min(len(raw), param_start + raw[param_start + 2] * BLOCK)
    groups: dict[int, str] = {}
    found: list[tuple[int, str, Param]] = []
    pos = param_start + 4
    while pos + 4 < param_end:
        n_chars, group_id = struct.unpack("bb", raw[pos:pos + 2])
        if n_chars == 0 or group_id == 0:
            break
        name = raw[pos + 2:pos + 2 + abs(n_chars)].decode("latin-1").upper()
        offset_field = pos + 2 + abs(n_chars)
        (step,) = struct.unpack(">h" if big else "<h", raw[offset_field:offset_field + 2])
        if group_id < 0:
            groups[-group_id] = name
        else:
            body = offset_field + 2
            size = struct.unpack("b", raw[body:body + 1])[0]
            n_dims = raw[body + 1]
            dims = tuple(raw[body + 2:body + 2 + n_dims])
            found.append((group_id, name, Param("", pos, offset_field, body, body + 2,
                                                body + 2 + n_dims, size, dims)))
        if step <= 0:
            break
        pos = offset_field + step
    params = {}
    for group_id, name, p in found:
        key = f"{groups.get(group_id, '?')}:{name}"
        params[key] = Param(key, p.start, p.offset_field, p.type_byte, p.dims_at, p.data_at,
                            p.size, p.dims)
    words = struct.unpack(">9H" if big else "<9H", raw[2:20])
    return C3DMap(processor, param_start, param_end, (words[7] - 1) * BLOCK, params)


def pack_float(value: float, processor: int) -> bytes:
    """One C3D float as the file's processor stores it (DEC: IEEE x 4 with swapped words)."""
    if processor == 85:
        value *= 4.0
    if math.isfinite(value) and abs(value) > 3.4e38:
        value = math.copysign(math.inf, value)  # beyond float32: the stored bits say infinity
    if processor == 86:
        return struct.pack(">f", value)
    if processor == 85:
        (bits,) = struct.unpack("<I", struct.pack("<f", value))
        return struct.pack("<I", ((bits >> 16) | (bits << 16)) & 0xFFFFFFFF)
    return struct.pack("<f", value)


def pack_word(value: int, processor: int) -> bytes:
    return struct.pack(">H" if processor == 86 else "<H", value & 0xFFFF)


# ------------------------------------------------------------------------------------------------
# Corruptions. Each takes (bytes, rng) and returns (bytes, description).
# ------------------------------------------------------------------------------------------------

Corruption = Callable[[bytes, random.Random], "tuple[bytes, str]"]
BYTE_CORRUPTIONS: dict[str, Corruption] = {}
C3D_CORRUPTIONS: dict[str, Corruption] = {}
TEXT_CORRUPTIONS: dict[str, Corruption] = {}
OPENSIM_CORRUPTIONS: dict[str, Corruption] = {}
WBDS_CORRUPTIONS: dict[str, Corruption] = {}


def corruption(*tables: dict[str, Corruption]):
    def register(func: Corruption) -> Corruption:
        for table in tables:
            table[func.__name__.removeprefix("c_")] = func
        return func
    return register


def _flip(data: bytearray, rng: random.Random, lo: int, hi: int, count: int) -> list[str]:
    done = []
    hi = min(hi, len(data))
    if hi <= lo:
        return done
    for _ in range(count):
        at = rng.randrange(lo, hi)
        mask = rng.choice([0x01, 0x80, 0xFF, 1 << rng.randrange(8), rng.randrange(1, 256)])
        data[at] ^= mask
        done.append(f"0x{at:x}^0x{mask:02x}")
    return done


# -- any file: bytes ------------------------------------------------------------------------------


@corruption(BYTE_CORRUPTIONS)
def c_flip_any(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(raw)
    done = _flip(data, rng, 0, len(data), rng.randint(1, 12))
    return bytes(data), "flip " + " ".join(done)


@corruption(BYTE_CORRUPTIONS)
def c_truncate(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    n = len(raw)
    length = rng.choice([0, 1, rng.randint(2, 16), rng.randrange(n // 10 + 1), n // 2,
                         rng.randrange(n), n - 1, n - rng.randint(1, 64)])
    length = max(0, min(length, n))
    return raw[:length], f"truncate to {length} of {n} bytes"


@corruption(BYTE_CORRUPTIONS)
def c_insert_bytes(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(raw) + 1)
    extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 3, 7, 64, 513])))
    return raw[:at] + extra + raw[at:], f"insert {len(extra)} random bytes at 0x{at:x}"


@corruption(BYTE_CORRUPTIONS)
def c_delete_bytes(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(raw))
    count = rng.choice([1, 2, 3, 5, 100, 512])
    return raw[:at] + raw[at + count:], f"delete {count} bytes at 0x{at:x}"


@corruption(BYTE_CORRUPTIONS)
def c_zero_block(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    size = rng.choice([BLOCK, BLOCK, 64, 4096])
    at = rng.randrange(max(1, len(raw) // size)) * size if rng.random() < 0.7 else \
        rng.randrange(len(raw))
    return raw[:at] + bytes(len(raw[at:at + size])) + raw[at + size:], \
        f"zero {size} bytes at 0x{at:x}"


@corruption(BYTE_CORRUPTIONS)
def c_duplicate_block(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    size = rng.choice([BLOCK, BLOCK, 100, 2048])
    at = rng.randrange(max(1, len(raw) // size)) * size if rng.random() < 0.7 else \
        rng.randrange(len(raw))
    return raw[:at + size] + raw[at:at + size] + raw[at + size:], \
        f"duplicate {size} bytes at 0x{at:x}"


# -- C3D: bytes in known regions ------------------------------------------------------------------


@corruption(C3D_CORRUPTIONS)
def c_flip_header(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(raw)
    done = _flip(data, rng, 0, BLOCK if rng.random() < 0.5 else 24, rng.randint(1, 4))
    return bytes(data), "flip in header " + " ".join(done)


@corruption(C3D_CORRUPTIONS)
def c_flip_params(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    data = bytearray(raw)
    done = _flip(data, rng, m.param_start, m.param_end, rng.choice([1, 1, 2, 5, 20]))
    return bytes(data), "flip in parameters " + " ".join(done)


@corruption(C3D_CORRUPTIONS)
def c_flip_data(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    data = bytearray(raw)
    done = _flip(data, rng, m.data_start, len(raw), rng.choice([1, 10, 200]))
    return bytes(data), f"flip {len(done)} bytes in data, first " + " ".join(done[:3])


@corruption(C3D_CORRUPTIONS)
def c_truncate_at(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    where, length = rng.choice([
        ("in header", rng.randrange(BLOCK)),
        ("at header end", BLOCK),
        ("in parameter header", m.param_start + rng.randrange(4)),
        ("mid-parameters", rng.randrange(m.param_start + 4, m.param_end)),
        ("at parameter end", m.param_end),
        ("at data start", m.data_start),
        ("mid-data", rng.randrange(m.data_start, len(raw))),
        ("one byte short", len(raw) - 1),
        ("one block short", len(raw) - BLOCK),
    ])
    return raw[:length], f"truncate {where} at {length} of {len(raw)} bytes"


@corruption(C3D_CORRUPTIONS)
def c_truncate_in_params(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    length = rng.randrange(m.param_start + 4, m.param_end)
    return raw[:length], f"truncate mid-parameters at {length} of {len(raw)} bytes"


@corruption(C3D_CORRUPTIONS)
def c_parameter_block_byte(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    value = rng.choice([0, 1, raw[0] + 1, 3, 255, rng.randrange(256)])
    return bytes([value]) + raw[1:], f"parameter block byte (0x00) {raw[0]} -> {value}"


@corruption(C3D_CORRUPTIONS)
def c_key_byte(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    value = rng.choice([0x00, 0x4F, 0x51, 0xFF, rng.randrange(256)])
    if value == 0x50:
        value = 0x00
    return raw[:1] + bytes([value]) + raw[2:], f"key byte (0x01) 0x50 -> 0x{value:02x}"


@corruption(C3D_CORRUPTIONS)
def c_processor_byte(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    at = m.param_start + 3
    value = rng.choice([v for v in (84, 85, 86, 0, 83, 87, 255) if v != raw[at]])
    return raw[:at] + bytes([value]) + raw[at + 1:], f"processor type {raw[at]} -> {value}"


@corruption(C3D_CORRUPTIONS)
def c_parameter_block_count(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    at = m.param_start + 2
    value = rng.choice([0, 1, raw[at] - 1, raw[at] + 1, 255])
    value &= 0xFF
    return raw[:at] + bytes([value]) + raw[at + 1:], f"parameter blocks {raw[at]} -> {value}"


_HEADER_WORDS = {1: "point count", 2: "analog values per frame", 3: "first frame",
                 4: "last frame", 5: "max gap", 8: "data block", 9: "analog samples per frame"}


@corruption(C3D_CORRUPTIONS)
def c_header_word(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    word = rng.choice([1, 1, 2, 3, 4, 4, 8, 9])
    at = 2 * word
    (old,) = struct.unpack(">H" if m.processor == 86 else "<H", raw[at:at + 2])
    value = rng.choice([0, 1, old + 1, max(old - 1, 0), 2 * old, 32768, 65535,
                        rng.randrange(65536)]) & 0xFFFF
    return raw[:at] + pack_word(value, m.processor) + raw[at + 2:], \
        f"header word {word + 1} ({_HEADER_WORDS[word]}) {old} -> {value}"


@corruption(C3D_CORRUPTIONS)
def c_header_frames(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    fmt = ">H" if m.processor == 86 else "<H"
    (first,) = struct.unpack(fmt, raw[6:8])
    (last,) = struct.unpack(fmt, raw[8:10])
    new_first, new_last = rng.choice([(last, first), (0, 0), (first, 65535), (65535, 65535),
                                      (last + 1, last), (first, first), (0, last), (1, 1)])
    return (raw[:6] + pack_word(new_first, m.processor) + pack_word(new_last, m.processor)
            + raw[10:]), f"header frames {first}-{last} -> {new_first}-{new_last}"


@corruption(C3D_CORRUPTIONS)
def c_header_float(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    at, name = rng.choice([(12, "scale factor"), (20, "frame rate")])
    value = rng.choice([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e30, 1e-30])
    return raw[:at] + pack_float(value, m.processor) + raw[at + 4:], \
        f"header {name} -> {value}"


def _set_param_float(raw: bytes, rng: random.Random, keys: list[str],
                     values: list[float]) -> tuple[bytes, str]:
    m = c3d_map(raw)
    present = [k for k in keys if k in m.params and m.params[k].size == 4
               and m.params[k].n_bytes >= 4]
    if not present:
        return _set_param_word(raw, rng, keys, [0, 65535, 32768])
    key = rng.choice(present)
    p = m.params[key]
    value = rng.choice(values)
    n = p.n_bytes // 4
    indices = range(n) if rng.random() < 0.3 else [rng.randrange(n)]
    data = bytearray(raw)
    for i in indices:
        at = p.data_at + 4 * i
        if at + 4 <= len(data):
            data[at:at + 4] = pack_float(value, m.processor)
    return bytes(data), f"{key}[{'all' if len(indices) > 1 else indices[0]}] -> {value}"


def _set_param_word(raw: bytes, rng: random.Random, keys: list[str],
                    values: list[int]) -> tuple[bytes, str]:
    m = c3d_map(raw)
    present = [k for k in keys if k in m.params and m.params[k].n_bytes >= 1]
    if not present:
        return c_flip_params(raw, rng)
    key = rng.choice(present)
    p = m.params[key]
    value = rng.choice(values)
    data = bytearray(raw)
    width = abs(p.size) if p.size in (1, 2) else (4 if p.size == 4 else 1)
    n = p.n_bytes // width
    i = rng.randrange(max(n, 1))
    at = p.data_at + width * i
    if p.size == 4:
        data[at:at + 4] = pack_float(float(value), m.processor)
    elif width == 2:
        data[at:at + 2] = pack_word(value, m.processor)
    else:
        data[at] = value & 0xFF
    return bytes(data), f"{key}[{i}] -> {value}"


_BAD_FLOATS = [0.0, -1.0, -1e-3, math.nan, math.inf, -math.inf, 1e38, 1e-38]


@corruption(C3D_CORRUPTIONS)
def c_point_scale(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_float(raw, rng, ["POINT:SCALE"], _BAD_FLOATS)


@corruption(C3D_CORRUPTIONS)
def c_analog_scale(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_float(raw, rng, ["ANALOG:SCALE", "ANALOG:GEN_SCALE"], _BAD_FLOATS)


@corruption(C3D_CORRUPTIONS)
def c_rates(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_float(raw, rng, ["ANALOG:RATE", "ANALOG:RATE", "POINT:RATE"],
                            [0.0, 0.0, -100.0, math.nan, math.inf, 1e-13, 1e12, 1.0])


@corruption(C3D_CORRUPTIONS)
def c_used_counts(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_word(raw, rng, ["POINT:USED", "ANALOG:USED", "POINT:FRAMES"],
                           [0, 1, 2, 255, 256, 32767, 32768, 65535])


@corruption(C3D_CORRUPTIONS)
def c_force_platform(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    key = rng.choice(["FORCE_PLATFORM:USED", "FORCE_PLATFORM:TYPE", "FORCE_PLATFORM:CHANNEL",
                      "FORCE_PLATFORM:CORNERS", "FORCE_PLATFORM:ORIGIN",
                      "FORCE_PLATFORM:CAL_MATRIX", "FORCE_PLATFORM:ZERO"])
    p = m.params.get(key)
    if p is not None and p.size == 4:
        return _set_param_float(raw, rng, [key], _BAD_FLOATS)
    return _set_param_word(raw, rng, [key], [0, 1, 5, 7, 99, 255, 256, 999, 65535, 65436])


@corruption(C3D_CORRUPTIONS)
def c_events_and_subject(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    keys = [k for k in ("EVENT:USED", "EVENT:TIMES", "EVENT:CONTEXTS", "EVENT:LABELS",
                        "PROCESSING:BODYMASS", "PROCESSING:HEIGHT", "PROCESSING:LLEGLENGTH",
                        "SUBJECTS:NAMES", "TRIAL:ACTUAL_START_FIELD", "TRIAL:ACTUAL_END_FIELD",
                        "POINT:UNITS", "ANALOG:OFFSET", "ANALOG:FORMAT")
            if k in m.params]
    if not keys:
        return c_flip_params(raw, rng)
    key = rng.choice(keys)
    p = m.params[key]
    if p.size == 4:
        return _set_param_float(raw, rng, [key], _BAD_FLOATS + [1e9, -1e9])
    if p.size == -1:
        return _set_param_chars(raw, rng, [key])
    return _set_param_word(raw, rng, [key], [0, 1, 255, 32767, 32768, 65535])


def _set_param_chars(raw: bytes, rng: random.Random, keys: list[str]) -> tuple[bytes, str]:
    m = c3d_map(raw)
    present = [k for k in keys if k in m.params and m.params[k].n_bytes > 0]
    if not present:
        return c_flip_params(raw, rng)
    key = rng.choice(present)
    p = m.params[key]
    junk = rng.choice([b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"Traceback\n", b"\t", b"\x1b[31m",
                       bytes(rng.randrange(256) for _ in range(8))])
    at = p.data_at + rng.randrange(p.n_bytes)
    end = min(at + len(junk), p.data_at + p.n_bytes)
    data = bytearray(raw)
    data[at:end] = junk[:end - at]
    return bytes(data), f"{key} chars at +{at - p.data_at} -> {junk[:end - at]!r}"


@corruption(C3D_CORRUPTIONS)
def c_labels(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_chars(raw, rng, ["POINT:LABELS", "ANALOG:LABELS", "POINT:LABELS2",
                                       "ANALOG:UNITS", "POINT:DESCRIPTIONS"])


@corruption(C3D_CORRUPTIONS)
def c_param_structure(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The bytes that frame a parameter: element size, dimension count/sizes, next offset."""
    m = c3d_map(raw)
    key = rng.choice(sorted(m.params))
    p = m.params[key]
    data = bytearray(raw)
    what = rng.choice(["size", "ndims", "dim", "offset", "name length", "group id"])
    if what == "size":
        value = rng.choice([-1, 0, 1, 2, 3, 4, 8, 127, -128])
        data[p.type_byte] = value & 0xFF
    elif what == "ndims":
        value = rng.choice([0, 1, 2, 3, 7, 255])
        data[p.type_byte + 1] = value
    elif what == "dim":
        value = rng.choice([0, 1, 255, rng.randrange(256)])
        if p.dims:
            data[p.dims_at + rng.randrange(len(p.dims))] = value
        else:
            data[p.type_byte + 1] = 1
            data[p.dims_at] = value
    elif what == "offset":
        value = rng.choice([0, 1, 2, -1, -2000, 32767, rng.randrange(-32768, 32768)])
        data[p.offset_field:p.offset_field + 2] = struct.pack(
            ">h" if m.processor == 86 else "<h", value)
    elif what == "name length":
        value = rng.choice([0, 1, 127, -1, -128])
        data[p.start] = value & 0xFF
    else:
        value = rng.choice([0, 1, -1, 99, -99, 127])
        data[p.start + 1] = value & 0xFF
    return bytes(data), f"{key} {what} -> {value}"


@corruption(C3D_CORRUPTIONS)
def c_rate_extremes(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Positive but implausible rates. 1e-13 Hz stretches a trial over ~1e16 s: resampling it
    asks for more than 2**56 bytes, which fails at once on any machine. Rates like 0.001 Hz are
    left out on purpose: ingest then allocates many GiB and runs for minutes."""
    return _set_param_float(raw, rng, ["POINT:RATE", "POINT:RATE", "ANALOG:RATE"],
                            [1e-13, 0.5, 3.0, 1e5, 1e7, 2.0 ** 31])


@corruption(C3D_CORRUPTIONS)
def c_missing_param(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A parameter the reader relies on renamed away (its name's last letter changed)."""
    m = c3d_map(raw)
    wanted = ["POINT:RATE", "POINT:SCALE", "POINT:USED", "POINT:LABELS", "POINT:UNITS",
              "ANALOG:USED", "ANALOG:RATE", "ANALOG:SCALE", "ANALOG:OFFSET", "ANALOG:LABELS",
              "ANALOG:GEN_SCALE", "FORCE_PLATFORM:TYPE", "FORCE_PLATFORM:CHANNEL",
              "FORCE_PLATFORM:CORNERS", "FORCE_PLATFORM:ORIGIN", "FORCE_PLATFORM:CAL_MATRIX",
              "EVENT:TIMES", "EVENT:LABELS", "EVENT:CONTEXTS", "TRIAL:ACTUAL_START_FIELD",
              "POINT:LABELS2", "POINT:MOMENTS", "POINT:ANGLES"]
    present = [k for k in wanted if k in m.params]
    key = rng.choice(present)
    p = m.params[key]
    data = bytearray(raw)
    data[p.offset_field - 1] = ord("Q")  # last character of the name
    return bytes(data), f"{key} renamed away"


@corruption(C3D_CORRUPTIONS)
def c_event_times(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = c3d_map(raw)
    if "EVENT:TIMES" not in m.params or rng.random() < 0.2:
        return _set_param_word(raw, rng, ["EVENT:USED"], [1, 18, 255, 32767, 65535])
    return _set_param_float(raw, rng, ["EVENT:TIMES"],
                            [math.nan, math.inf, -math.inf, -1e6, 1e9, 0.0, -5.0, 1e-30])


@corruption(C3D_CORRUPTIONS)
def c_subject_numbers(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _set_param_float(raw, rng, ["PROCESSING:BODYMASS", "PROCESSING:HEIGHT",
                                       "PROCESSING:LLEGLENGTH", "PROCESSING:RLEGLENGTH",
                                       "SUBJECTS:BODYMASS"],
                            [1e-30, 1e30, 1e-3, 0.0, -70.0, math.nan, math.inf, 1e38])


# -- text files -----------------------------------------------------------------------------------


def _lines(raw: bytes) -> list[str]:
    return raw.decode("latin-1").split("\n")


def _join(lines: list[str]) -> bytes:
    return "\n".join(lines).encode("latin-1", errors="replace")


def _header_end(lines: list[str]) -> int:
    """Index of the label line (OpenSim: after endheader; WBDS: line 0)."""
    for i, line in enumerate(lines):
        if line.strip().lower() == "endheader":
            return i + 1
    return 0


def _data_range(lines: list[str]) -> tuple[int, int]:
    start = _header_end(lines) + 1
    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


_BAD_NUMBERS = ["abc", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e400",
                "1.7976931348623157e308", "-1e300", "1e-400", "1,5", "0x10", "--1", "1e", ".",
                "+", "", "1.2.3", "\u0661\u0662", "1_000", "True", "#", "\x00", "9" * 400]


@corruption(TEXT_CORRUPTIONS)
def c_delete_lines(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    count = rng.choice([1, 1, 2, 5, len(lines) // 2, len(lines) - 1])
    if rng.random() < 0.5:
        at = rng.randrange(len(lines))
        gone = list(range(at, min(at + count, len(lines))))
    else:
        gone = sorted(rng.sample(range(len(lines)), min(count, len(lines))))
    keep = set(range(len(lines))) - set(gone)
    return _join([lines[i] for i in sorted(keep)]), \
        f"delete {len(gone)} lines from {gone[0] + 1}"


@corruption(TEXT_CORRUPTIONS)
def c_duplicate_lines(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    at = rng.randrange(len(lines))
    count = rng.choice([1, 1, 3, 20])
    copy = lines[at:at + count]
    return _join(lines[:at + count] + copy + lines[at + count:]), \
        f"duplicate lines {at + 1}-{at + len(copy)}"


@corruption(TEXT_CORRUPTIONS)
def c_bad_number(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    start, end = _data_range(lines)
    changes = []
    for _ in range(rng.choice([1, 1, 3, 50])):
        i = rng.randrange(start, end)
        sep = "\t" if "\t" in lines[i] else " "
        cells = lines[i].split(sep)
        numeric = [j for j, c in enumerate(cells) if c.strip()]
        if not numeric:
            continue
        j = rng.choice(numeric) if rng.random() < 0.8 else numeric[0]  # sometimes the time
        bad = rng.choice(_BAD_NUMBERS)
        cells[j] = bad
        lines[i] = sep.join(cells)
        changes.append(f"line {i + 1} col {j + 1} -> {bad[:12]!r}")
    return _join(lines), "; ".join(changes[:3]) + (" ..." if len(changes) > 3 else "")


@corruption(TEXT_CORRUPTIONS)
def c_bad_column(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A whole column (maybe the time) NaN, inf, huge, zero or constant."""
    lines = _lines(raw)
    start, end = _data_range(lines)
    sep = "\t" if "\t" in lines[start] else None
    n = len(lines[start].split(sep))
    j = rng.choice([0, rng.randrange(n), rng.randrange(n)])
    value = rng.choice(["nan", "inf", "1e308", "-1e308", "0", "1e-320", "5"])
    for i in range(start, end):
        cells = lines[i].split(sep)
        if j < len(cells):
            cells[j] = value
        lines[i] = ("\t" if sep else " ").join(cells)
    return _join(lines), f"column {j + 1} -> {value} in every row"


@corruption(TEXT_CORRUPTIONS)
def c_whitespace(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    how = rng.choice(["tabs->space", "tabs->spaces", "spaces->tab", "tabs->double tab",
                      "random lines tabs->space", "trailing tabs", "leading spaces"])
    picked = set(rng.sample(range(len(lines)), max(1, len(lines) // 10))) \
        if how.startswith("random") else set(range(len(lines)))
    out = []
    for i, line in enumerate(lines):
        if i not in picked:
            out.append(line)
        elif how in ("tabs->space", "random lines tabs->space"):
            out.append(line.replace("\t", " "))
        elif how == "tabs->spaces":
            out.append(line.replace("\t", "    "))
        elif how == "spaces->tab":
            out.append(re.sub(" +", "\t", line))
        elif how == "tabs->double tab":
            out.append(line.replace("\t", "\t\t"))
        elif how == "trailing tabs":
            out.append(line + "\t\t")
        else:
            out.append("   " + line)
    return _join(out), how


@corruption(TEXT_CORRUPTIONS)
def c_duplicate_time_row(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    start, end = _data_range(lines)
    i = rng.choice([start, end - 1, rng.randrange(start, end)])
    return _join(lines[:i + 1] + [lines[i]] + lines[i + 1:]), f"duplicate data line {i + 1}"


@corruption(TEXT_CORRUPTIONS)
def c_time_decreases(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    start, end = _data_range(lines)
    how = rng.choice(["swap", "reverse", "negative", "same"])
    i = rng.randrange(start, end - 1)
    if how == "swap":
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif how == "reverse":
        lines[start:end] = lines[start:end][::-1]
    else:
        sep = "\t" if "\t" in lines[i] else " "
        cells = lines[i].split(sep)
        first = next(k for k, c in enumerate(cells) if c.strip())
        cells[first] = "-1000" if how == "negative" else lines[i + 1].split()[0]
        lines[i] = sep.join(cells)
    return _join(lines), f"time {how} at line {i + 1}"


@corruption(TEXT_CORRUPTIONS)
def c_append_garbage(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    garbage = rng.choice([
        b"garbage line\n", b"\x00\x01\x02\xff" * 8, b"1 2 3\n", b"endheader\n",
        b"\t".join([b"1e308"] * 40) + b"\n", b"x" * 100000, b"\n\n\n\n",
        bytes(rng.randrange(256) for _ in range(200)), b"<html>\n</html>\n",
        b"0\t" * 3, "\u00e9\u00e8\n".encode("utf-8"),
    ])
    sep = b"" if raw.endswith(b"\n") or rng.random() < 0.3 else b"\n"
    return raw + sep + garbage, f"append {garbage[:16]!r} ({len(garbage)} bytes)"


@corruption(TEXT_CORRUPTIONS)
def c_encoding(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    how = rng.choice(["bom", "crlf", "cr only", "utf-16", "latin-1 byte", "bad utf-8",
                      "nul byte"])
    if how == "bom":
        return b"\xef\xbb\xbf" + raw, how
    if how == "crlf":
        return raw.replace(b"\n", b"\r\n"), how
    if how == "cr only":
        return raw.replace(b"\n", b"\r"), how
    if how == "utf-16":
        return raw.decode("latin-1").encode("utf-16"), how
    at = rng.randrange(len(raw))
    insert = {"latin-1 byte": b"\xe9", "bad utf-8": b"\xc3\x28\xa0\xa1", "nul byte": b"\x00"}[how]
    return raw[:at] + insert + raw[at:], f"{how} at 0x{at:x}"


@corruption(TEXT_CORRUPTIONS)
def c_labels_line(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    i = _header_end(lines)
    sep = "\t" if "\t" in lines[i] else None
    labels = lines[i].split(sep)
    how = rng.choice(["drop label", "extra label", "duplicate label", "rename time", "empty",
                      "drop time", "labels only", "newline in labels", "unicode label"])
    if how == "drop label":
        labels.pop(rng.randrange(1, len(labels)))
    elif how == "extra label":
        labels.append("extra")
    elif how == "duplicate label":
        labels[-1] = labels[1]
    elif how == "rename time":
        labels[0] = rng.choice(["Time", "TIME", "t", "frame", "", "time\x0b"])
    elif how == "empty":
        labels = []
    elif how == "drop time":
        labels = labels[1:]
    elif how == "labels only":
        return _join(lines[:i + 1]), how
    elif how == "newline in labels":
        # Python's str.splitlines breaks at all of these; a message quoting the label raw
        # would print on two lines
        j = rng.randrange(len(labels))
        labels[j] = labels[j][:2] + rng.choice(["\r", "\x0b", "\x0c", "\x1c", "\x85"]) + \
            labels[j][2:]
    else:
        labels[rng.randrange(1, len(labels))] = "h\u00fcft\u00e9_\u0394"
    lines[i] = ("\t" if sep else " ").join(labels)
    return _join(lines), how


@corruption(TEXT_CORRUPTIONS)
def c_label_control_char(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A line-breaking control character inside a column label, and a reason to quote it."""
    lines = _lines(raw)
    i = _header_end(lines)
    sep = "\t" if "\t" in lines[i] else " "
    labels = lines[i].split(sep)
    named = [j for j, label in enumerate(labels) if label.strip()]
    j = rng.choice(named[:5])
    char = rng.choice(["\r", "\x0b", "\x0c", "\x1c", "\x1e", "\x85"])
    labels[j] = labels[j][:2] + char + labels[j][2:]
    lines[i] = sep.join(labels)
    why = rng.choice(["only", "bad cell", "only"])
    if why == "bad cell":
        row = rng.randrange(*_data_range(lines))
        cells = lines[row].split(sep)
        if j < len(cells):
            cells[j] = "oops"
        lines[row] = sep.join(cells)
    return _join(lines), f"label {j + 1} gets {char!r}" + (", and a bad cell" if why != "only"
                                                           else "")


@corruption(TEXT_CORRUPTIONS)
def c_few_rows(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    start, _ = _data_range(lines)
    keep = rng.choice([0, 1, 2, 3, 5])
    return _join(lines[:start + keep]), f"keep {keep} data rows"


@corruption(TEXT_CORRUPTIONS)
def c_few_columns(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    label_at = _header_end(lines)
    keep = rng.choice([1, 2, 3])
    out = lines[:label_at]
    sep = "\t" if "\t" in lines[label_at] else None
    for line in lines[label_at:]:
        out.append(("\t" if sep else " ").join(line.split(sep)[:keep]))
    return _join(out), f"keep the first {keep} columns"


@corruption(TEXT_CORRUPTIONS)
def c_huge_values(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Scale a block of rows to huge/tiny magnitudes: numeric trouble downstream."""
    lines = _lines(raw)
    start, end = _data_range(lines)
    lo = rng.randrange(start, end)
    hi = min(end, lo + rng.choice([1, 10, 100]))
    factor = rng.choice(["e300", "e-300", "e38", "e200"])
    for i in range(lo, hi):
        sep = "\t" if "\t" in lines[i] else " "
        cells = lines[i].split(sep)
        first = next((k for k, c in enumerate(cells) if c.strip()), 0)
        lines[i] = sep.join(c if k <= first or not c.strip() else c.strip() + factor
                            for k, c in enumerate(cells))
    return _join(lines), f"data x1{factor} in lines {lo + 1}-{hi}"


@corruption(TEXT_CORRUPTIONS)
def c_time_scale(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Times that stay increasing but span an absurd range or step absurdly finely."""
    lines = _lines(raw)
    start, end = _data_range(lines)
    how = rng.choice(["jump", "jump", "scale"])
    # No 1e6..1e12: such trials make ingest allocate GiB to TiB (slow, or killed for memory);
    # 1e15/1e16 s ask for more than 2**56 bytes, which fails at once on any machine.
    factor = rng.choice([1e-320, 1e-300, 1e-12, 1e-6, 1e3, 1e16, 1e300]) if how == "scale" else \
        rng.choice([10.0, 1e3, 1e15, 1e300])
    at = rng.choice([end - 1, rng.randrange(start, end)]) if how == "jump" else start
    for i in range(at, end):
        sep = "\t" if "\t" in lines[i] else " "
        cells = lines[i].split(sep)
        first = next((k for k, c in enumerate(cells) if c.strip()), None)
        if first is None:
            continue
        try:
            value = float(cells[first])
        except ValueError:
            continue
        cells[first] = repr(value * factor if how == "scale" else value + factor)
        lines[i] = sep.join(cells)
    return _join(lines), (f"times x {factor:g}" if how == "scale"
                          else f"times + {factor:g} from line {at + 1}")


# -- OpenSim header -------------------------------------------------------------------------------


@corruption(OPENSIM_CORRUPTIONS)
def c_remove_endheader(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    i = _header_end(lines) - 1
    how = rng.choice(["delete", "misspell", "indent", "upper", "twice"])
    if how == "delete":
        del lines[i]
    elif how == "misspell":
        lines[i] = "end header"
    elif how == "indent":
        lines[i] = "\t endheader \t"
    elif how == "upper":
        lines[i] = "ENDHEADER"
    else:
        lines.insert(i, "endheader")
    return _join(lines), f"endheader: {how}"


@corruption(OPENSIM_CORRUPTIONS)
def c_header_counts(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    end = _header_end(lines) - 1
    keys = ("nrows", "ncolumns", "datarows", "datacolumns", "range", "datarate", "version")
    value = rng.choice(["", "abc", "-1", "0", "1e9", "9" * 30, "nan", "inf", "3.5", "1 2 3",
                        "=", "0x10"])
    changes = []
    for i in range(end):
        key, sep, _ = lines[i].strip().partition("=")
        word = key.split()[0].lower() if key.split() else ""
        if (sep and key.strip().lower() in keys) or (not sep and word in keys):
            if rng.random() < 0.6:
                lines[i] = f"{key.strip()}={value}" if sep else f"{word} {value}"
                changes.append(lines[i])
    if not changes:
        extra = rng.choice(["nRows", "nColumns", "DataRate", "range", "datarows"])
        lines.insert(end, f"{extra}={value}" if extra[0].isupper() else f"{extra} {value}")
        changes.append(lines[end])
    return _join(lines), "header " + "; ".join(changes)


@corruption(OPENSIM_CORRUPTIONS)
def c_in_degrees(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    end = _header_end(lines) - 1
    value = rng.choice(["yes", "no", "maybe", "", "YES", "No ", "1", "true"])
    for i in range(end):
        if lines[i].strip().lower().startswith("indegrees"):
            if rng.random() < 0.3:
                del lines[i]
                return _join(lines), "inDegrees line removed"
            lines[i] = f"inDegrees={value}"
            return _join(lines), f"inDegrees={value!r}"
    lines.insert(end, f"inDegrees={value}")
    return _join(lines), f"inDegrees={value!r} added"


@corruption(OPENSIM_CORRUPTIONS)
def c_header_text(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    end = _header_end(lines) - 1
    text = rng.choice(["Angles are in radians.", "Angles are in degrees.", "=", "==x", "a=b=c",
                       "name", "range", "\t", "endheaderx", "1\t2\t3", "time\tx"])
    lines.insert(rng.randrange(end + 1), text)
    return _join(lines), f"header line {text!r} inserted"


# -- WBDS -----------------------------------------------------------------------------------------


@corruption(WBDS_CORRUPTIONS)
def c_wbds_header(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(raw)
    labels = lines[0].split("\t")
    how = rng.choice(["rename column", "time lower", "drop last label", "duplicate label",
                      "trailing tab", "blank first line", "header twice", "no header"])
    if how == "rename column":
        labels[rng.randrange(1, len(labels))] = rng.choice(["", "X", "RHipAngleX"])
    elif how == "time lower":
        labels[0] = "time"
    elif how == "drop last label":
        labels.pop()
    elif how == "duplicate label":
        labels[3] = labels[2]
    elif how == "trailing tab":
        labels.append("")
    elif how == "blank first line":
        lines.insert(0, "")
    elif how == "header twice":
        lines.insert(1, lines[0])
    else:
        lines = lines[1:]
    if how not in ("blank first line", "header twice", "no header"):
        lines[0] = "\t".join(labels)
    return _join(lines), f"WBDS header: {how}"


# ------------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------------

# How many seeds each corruption gets per source kind (about 750 cases, under 10 s on 2 cores).
PLAN: dict[str, list[tuple[dict[str, Corruption], int]]] = {
    "c3d": [(BYTE_CORRUPTIONS, 2), (C3D_CORRUPTIONS, 2)],
    "opensim": [(BYTE_CORRUPTIONS, 1), (TEXT_CORRUPTIONS, 2), (OPENSIM_CORRUPTIONS, 2)],
    "wbds": [(BYTE_CORRUPTIONS, 2), (TEXT_CORRUPTIONS, 3), (WBDS_CORRUPTIONS, 4)],
}
# More seeds, on every C3D, for the header/parameter corruptions most likely to get past the
# signature checks
EXTRA_C3D = {"truncate_at": 2, "flip_header": 1, "flip_params": 2, "point_scale": 1,
             "rates": 1, "processor_byte": 1}

ALL_CORRUPTIONS = {**BYTE_CORRUPTIONS, **C3D_CORRUPTIONS, **TEXT_CORRUPTIONS,
                   **OPENSIM_CORRUPTIONS, **WBDS_CORRUPTIONS}


def _case_ids() -> list[str]:
    ids = []
    for source_id, source in SOURCES.items():
        for table, seeds in PLAN[source.kind]:
            for name in table:
                n = seeds + (EXTRA_C3D.get(name, 0) if source.kind == "c3d" else 0)
                ids += [f"{source_id}-{name}-{k}" for k in range(n)]
    return ids


CASES = _case_ids()


def seed_of(case_id: str) -> int:
    return zlib.crc32(case_id.encode())


def variant(case_id: str) -> tuple[str, bytes, str]:
    """(file name, damaged bytes, what was done) for a case id: reproduces a case by hand."""
    source_id, name, _ = case_id.rsplit("-", 2)  # source ids may hold dashes, names do not
    data, description = ALL_CORRUPTIONS[name](original(source_id), random.Random(seed_of(case_id)))
    return Path(SOURCES[source_id].path).name, data, description


# Known failures in code this module's author may not change (gaitcli/io/c3d_files.py,
# gaitcli/io/forceplates.py, gaitcli/data/*): the case id -> what goes wrong. Strict, so each
# one turns into a failure ("XPASS(strict)") when fixed, and must then be removed from here.
KNOWN_BUGS: dict[str, str] = {}  # none open: the five huge-grid cases were fixed (rate and span limits)


def _params() -> list:
    return [pytest.param(case, id=case,
                         marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case])]
                         if case in KNOWN_BUGS else [])
            for case in CASES]


def test_there_are_enough_cases():
    assert len(CASES) >= 300
    assert len(set(CASES)) == len(CASES)


# ------------------------------------------------------------------------------------------------
# Hand-made regressions for what the seeded cases found in the text readers (fixed), so that
# they stay covered whatever the random draws
# ------------------------------------------------------------------------------------------------


def _set_time(lines: list[str], value: Callable[[float], str]) -> None:
    first, end = _data_range(lines)
    for i in range(first, end):
        cells = lines[i].split("\t")
        cells[0] = value(float(cells[0]))
        lines[i] = "\t".join(cells)


def _nan_data_rate(lines: list[str]) -> None:
    lines.insert(1, "DataRate=nan")


def _control_char_label_and_bad_cell(lines: list[str]) -> None:
    at = _header_end(lines)
    lines[at] = lines[at].replace("pelvis_tilt", "pel\rvis")
    cells = lines[at + 3].split("\t")
    cells[1] = "oops"
    lines[at + 3] = "\t".join(cells)


def _tiny_time_steps(lines: list[str]) -> None:
    _set_time(lines, lambda t: repr(t * 1e-320))


def _nan_time(lines: list[str]) -> None:
    _set_time(lines, lambda t: "nan")


def _cut_at_40_percent(lines: list[str]) -> None:
    del lines[42:]


def _repeated_label(lines: list[str]) -> None:
    lines[0] = lines[0].replace("LPelvisAngleX", "RPelvisAngleX")


# what was wrong -> (source, edit of its lines, text the ReadError must hold; "" = must read)
REGRESSIONS: dict[str, tuple[str, Callable[[list[str]], None], str]] = {
    "DataRate=nan gave rate nan": ("ik-mot", _nan_data_rate, ""),
    "label holding \\r was quoted raw in the error": (
        "id-sto", _control_char_label_and_bad_cell, "in column 'pel\\rvis_moment' at line"),
    "time steps of 1e-322 s gave rate inf": ("ik-mot", _tiny_time_steps, "too small"),
    "WBDS time NaN was accepted": ("wbds", _nan_time, "not finite"),
    "WBDS table cut at 40 % was stretched over the cycle": (
        "wbds", _cut_at_40_percent, "expected 0 to 100"),
    "WBDS repeated column name was accepted": ("wbds", _repeated_label, "appears twice"),
}


@pytest.mark.parametrize("what", list(REGRESSIONS))
def test_text_reader_regressions(what: str, tmp_path: Path) -> None:
    source_id, edit, expected = REGRESSIONS[what]
    path = tmp_path / Path(SOURCES[source_id].path).name
    lines = _lines(original(source_id))
    edit(lines)
    path.write_bytes(_join(lines))
    if not expected:
        _check_recording(read_recording(path), what)
        return
    with pytest.raises(ReadError) as caught:
        read_recording(path)
    message = str(caught.value)
    assert expected in message and path.name in message and _one_line(message), message


def _check_recording(recording: Recording, where: str) -> None:
    """What every reader promises about what it returns, damaged input or not."""
    for name, ts in recording.series.items():
        assert np.isfinite(ts.time).all(), f"{where}: series {name!r} has non-finite times"
        assert (np.diff(ts.time) > 0).all(), f"{where}: series {name!r} times do not increase"
        # one sample has no rate unless the file declares one: 0 is allowed there
        assert math.isfinite(ts.rate) and (ts.rate > 0 or len(ts) <= 1), \
            f"{where}: series {name!r} rate {ts.rate}"


def _one_line(text: str) -> bool:
    return len(text.splitlines()) <= 1 and "\n" not in text and "\r" not in text


@pytest.mark.parametrize("case", _params())
def test_corrupted_file_gives_one_line_error(case: str, tmp_path: Path) -> None:
    seed = seed_of(case)
    name, data, description = variant(case)
    where = f"case {case} (seed {seed}: {description})"
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            recording = read_recording(path)
        except ReadError as err:
            message = str(err)
            assert _one_line(message), f"{where}: ReadError spans lines: {message!r}"
            assert name in message, f"{where}: ReadError does not name the file: {message!r}"
        except Exception as exc:  # noqa: BLE001 - any other type is the bug this test looks for
            pytest.fail(f"{where}: read_recording raised {type(exc).__name__}: {exc}\n"
                        + "".join(traceback.format_exception(exc)[-6:]), pytrace=False)
        else:
            assert isinstance(recording, Recording), where
            _check_recording(recording, where)

        try:
            report = ingest([path], tmp_path / "out", IngestOptions())
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{where}: ingest raised {type(exc).__name__}: {exc}\n"
                        + "".join(traceback.format_exception(exc)[-6:]), pytrace=False)
    for problem in report.failures:
        assert _one_line(problem.reason), f"{where}: failure reason spans lines: {problem!r}"
        assert "Traceback" not in problem.reason, f"{where}: traceback in reason: {problem!r}"
