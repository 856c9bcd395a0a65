"""WAV reading and writing in numpy alone, so it runs in Pyodide as well as natively.

Reads PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE and RF64, with
chunks in any order, at random positions (so a long file is never loaded whole).
Writes 16-bit, 24-bit PCM and 32-bit float, as a header plus blocks of frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# The KSDATAFORMAT_SUBTYPE GUID after its first two bytes (the format tag): 0000-0010-8000-00aa00389b71.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
MAX_CHANNELS = 32  # more is a broken header, not music (and would make every block huge)
FORMATS = {"wav16": (PCM, 16), "wav24": (PCM, 24), "float32": (IEEE_FLOAT, 32)}


class WavError(ValueError):
    """The file is not a WAV we can read; the message says why, in plain words."""


@dataclass
class WavInfo:
    sample_rate: int
    channels: int
    bits: int
    float: bool
    frames: int
    data_offset: int
    warnings: list[str] = field(default_factory=list)

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8


def _chunks(f: BinaryIO, file_size: int, start: int):
    """Yield (id, size, offset of payload) for each chunk from `start` on."""
    pos = start
    while pos + 8 <= file_size:
        f.seek(pos)
        cid, size = struct.unpack("<4sI", f.read(8))
        yield cid, size, pos + 8
        pos += 8 + size + (size & 1)  # chunks are word-aligned


def _chunk_follows(f: BinaryIO, pos: int, file_size: int) -> bool:
    """Whether a well-formed chunk header starts at `pos` (so an empty 'data' chunk really is empty)."""
    f.seek(pos)
    head = f.read(8)
    if len(head) < 8:
        return len(head) == 0
    cid, size = struct.unpack("<4sI", head)
    return all(32 <= c < 127 for c in cid) and pos + 8 + size <= file_size


def read_info(f: BinaryIO) -> WavInfo:
    f.seek(0, 2)
    file_size = f.tell()
    f.seek(0)
    head = f.read(12)
    if len(head) == 0:
        raise WavError("the file is empty")
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
        raise WavError("this is not a WAV file (no RIFF/WAVE header)")
    fmt = None
    data = None
    ds64_data_size = None
    for cid, size, offset in _chunks(f, file_size, 12):
        if cid == b"ds64":
            f.seek(offset)
            _riff, ds64_data_size = struct.unpack("<QQ", f.read(16))
        elif cid == b"fmt ":
            f.seek(offset)
            fmt = f.read(min(size, 40))
        elif cid == b"data":
            data = (offset, size)
            if fmt is not None:
                break  # data usually runs to the end; nothing after it is needed
    if fmt is None or len(fmt) < 16:
        raise WavError("the WAV header has no valid 'fmt ' chunk")
    if data is None:
        raise WavError("the WAV file has no audio data ('data' chunk missing)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == EXTENSIBLE:
        if len(fmt) < 26:
            raise WavError("the WAV header is truncated (extensible format without its sub-format)")
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag not in (PCM, IEEE_FLOAT):
        raise WavError(f"unsupported WAV encoding (format tag {tag:#06x}); only PCM and float are read")
    is_float = tag == IEEE_FLOAT
    if (is_float and bits not in (32, 64)) or (not is_float and bits not in (8, 16, 24, 32)):
        raise WavError(f"unsupported WAV sample size: {bits}-bit {'float' if is_float else 'PCM'}")
    if channels < 1 or rate < 1:
        raise WavError(f"the WAV header is invalid ({channels} channels at {rate} Hz)")
    if channels > MAX_CHANNELS:
        raise WavError(f"the WAV header claims {channels} channels; Demixer reads up to {MAX_CHANNELS} "
                       "(the file is probably damaged)")
    if block_align != channels * bits // 8:
        raise WavError("the WAV header is inconsistent (block size does not match channels × sample size)")
    offset, size = data
    if ds64_data_size is not None and size == 0xFFFFFFFF:
        size = ds64_data_size
    info = WavInfo(rate, channels, bits, is_float, 0, offset)
    available = file_size - offset
    if (size == 0xFFFFFFFF or size == 0 and not _chunk_follows(f, offset, file_size)) and available > 0:
        # Recorders write these placeholders and fix them on close; an unclosed recording keeps them.
        info.warnings.append("the WAV header does not give the audio's length (a recording that was not "
                             "finished properly?); reading to the end of the file")
        size = available
    elif size > available:
        info.warnings.append(
            f"the WAV header claims {size:,} bytes of audio but the file holds {available:,}; "
            "reading what is there (the file may be truncated)"
        )
        size = available
    info.frames = size // block_align
    return info


def decode(raw: bytes, info: WavInfo) -> np.ndarray:
    """Interleaved sample bytes -> float32 [channels, frames] in [-1, 1)."""
    width = info.bits // 8
    if info.float:
        x = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
        x = ints.astype(np.float32) / float(1 << 23)
    else:
        dtype = "<i2" if width == 2 else "<i4"
        x = np.frombuffer(raw, dtype=dtype).astype(np.float64 if width == 4 else np.float32)
        x = (x / float(1 << (info.bits - 1))).astype(np.float32)
    return x.reshape(-1, info.channels).T


class WavReader:
    """Random-access reader: `read(start, count)` returns float32 [channels, count]."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.info = read_info(f)
        self.frames = self.info.frames
        self.channels = self.info.channels
        self.sample_rate = self.info.sample_rate

    def read(self, start: int, count: int) -> np.ndarray:
        count = max(0, min(count, self.frames - start))
        self._f.seek(self.info.data_offset + start * self.info.block_align)
        raw = self._f.read(count * self.info.block_align)
        usable = len(raw) - len(raw) % self.info.block_align
        return decode(raw[:usable], self.info)


def header(fmt: str, channels: int, sample_rate: int, frames: int) -> bytes:
    """A complete WAV header for `frames` frames of `fmt` ('wav16', 'wav24' or 'float32')."""
    tag, bits = FORMATS[fmt]
    block = channels * bits // 8
    data_size = frames * block
    # WAVE_FORMAT_EXTENSIBLE, with the speakers named (front left and right for stereo): the
    # form the spec asks for beyond 16 bits or 2 channels, and without a channel mask readers
    # such as ffmpeg have to guess the layout (and warn).
    mask = 0b11 if channels == 2 else (0b100 if channels == 1 else 0)
    fmt_chunk = struct.pack("<HHIIHH", EXTENSIBLE, channels, sample_rate, sample_rate * block, block, bits)
    fmt_chunk += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", tag) + _GUID_TAIL
    extra = b""
    if tag == IEEE_FLOAT:  # float WAVs carry a 'fact' chunk, per the spec
        extra = b"fact" + struct.pack("<II", 4, frames)
    riff_size = 4 + (8 + len(fmt_chunk)) + len(extra) + 8 + data_size
    if riff_size > 0xFFFFFFFF:
        raise WavError("the output is over 4 GB, which a WAV file cannot hold; choose 16-bit or split the input")
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
        + extra + b"data" + struct.pack("<I", data_size)
    )


def encode(block: np.ndarray, fmt: str) -> tuple[bytes, int]:
    """float [channels, frames] -> (interleaved bytes, number of samples clamped to full scale)."""
    _tag, bits = FORMATS[fmt]
    x = np.ascontiguousarray(block.T)
    if fmt == "float32":
        return x.astype("<f4").tobytes(), 0
    from .formats import quantize  # the one quantiser of every integer stem (FLAC too)

    ints, clipped = quantize(x, bits)
    if bits == 16:
        return ints.astype("<i2").tobytes(), clipped
    b = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]  # little-endian low 3 bytes
    return b.tobytes(), clipped


class WavWriter:
    """Writes a WAV whose length is known up front, block by block."""

    def __init__(self, f: BinaryIO, fmt: str, channels: int, sample_rate: int, frames: int):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self._f, self.fmt, self.channels = f, fmt, channels
        self._remaining = frames
        self.clipped = 0
        f.write(header(fmt, channels, sample_rate, frames))

    def write(self, block: np.ndarray) -> None:
        if block.shape[-1] > self._remaining:
            raise ValueError("more frames written than the header announced")
        data, clipped = encode(block, self.fmt)
        self._f.write(data)
        self.clipped += clipped
        self._remaining -= block.shape[-1]

    @property
    def complete(self) -> bool:
        return self._remaining == 0
