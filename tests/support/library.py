"""Library entries (extension/lib/library.js's format) written straight into the extension's
OPFS from one of its pages: what a finished job leaves, for the player to open.

    library/<id>/entry.json           written last
    library/<id>/<stem>.wav           the stems (WAV: they are also what the player plays)
    library/<id>/peaks/<stem>.peaks   Int8 (min, max) of both channels per PEAKS_BIN frames
"""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import soundfile as sf

RATE = 44100
PEAKS_BIN = 1024  # lib/library.js PEAKS_BIN

# In the page: write bytes (base64, in pieces) to an OPFS path, creating its folders.
_WRITE_JS = """async ([path, pieces, append]) => {
  const parts = path.split('/');
  const name = parts.pop();
  let dir = await navigator.storage.getDirectory();
  for (const p of parts) dir = await dir.getDirectoryHandle(p, { create: true });
  const handle = await dir.getFileHandle(name, { create: true });
  const w = await handle.createWritable({ keepExistingData: append });
  if (append) await w.seek((await handle.getFile()).size);
  for (const b64 of pieces) {
    const s = atob(b64);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    await w.write(bytes);
  }
  await w.close();
}"""

# In the page: a file of `header` then `block` repeated until `total` bytes, written chunk by chunk.
_REPEAT_JS = """async ([path, headerB64, blockB64, total]) => {
  const decode = (b64) => { const s = atob(b64); const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; };
  const parts = path.split('/');
  const name = parts.pop();
  let dir = await navigator.storage.getDirectory();
  for (const p of parts) dir = await dir.getDirectoryHandle(p, { create: true });
  const handle = await dir.getFileHandle(name, { create: true });
  const w = await handle.createWritable();
  const header = decode(headerB64);
  const block = decode(blockB64);
  await w.write(header);
  let left = total - header.length;
  // 16 blocks a write: fewer round trips, a few tens of MB at most in the page.
  const big = new Uint8Array(block.length * 16);
  for (let i = 0; i < 16; i++) big.set(block, i * block.length);
  while (left > 0) {
    const piece = left >= big.length ? big : big.subarray(0, left);
    await w.write(piece);
    left -= piece.length;
  }
  await w.close();
  return (await handle.getFile()).size;
}"""


def wav_bytes(audio: np.ndarray, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, RATE, subtype=subtype, format=fmt)
    return buf.getvalue()


def peaks_of(audio: np.ndarray) -> bytes:
    """Int8 (min, max) pairs over both channels per PEAKS_BIN frames, full scale 127."""
    n = len(audio)
    bins = -(-n // PEAKS_BIN)
    padded = np.zeros((bins * PEAKS_BIN, audio.shape[1]), np.float32)
    padded[:n] = audio
    blocks = padded.reshape(bins, PEAKS_BIN * audio.shape[1])
    lo = np.clip(np.round(blocks.min(axis=1) * 127), -127, 127).astype(np.int8)
    hi = np.clip(np.round(blocks.max(axis=1) * 127), -127, 127).astype(np.int8)
    return np.stack([lo, hi], axis=1).tobytes()


def _b64_pieces(data: bytes, piece: int = 3 << 20) -> list[str]:
    return [base64.b64encode(data[i : i + piece]).decode() for i in range(0, len(data), piece)] or [""]


def _run(page, js: str, arg):
    """page.evaluate(js, arg) of a Playwright page; or `page` is a callable run(js, arg) (Firefox over BiDi)."""
    return page(js, arg) if callable(page) else page.evaluate(js, arg)


def write_file(page, path: str, data: bytes) -> None:
    _run(page, _WRITE_JS, [path, _b64_pieces(data), False])


def entry_json(entry_id: str, name: str, stems: list[str], frames: int, files: dict[str, int], fmt: str = "wav16") -> dict:
    return {
        "version": 1,
        "id": entry_id,
        "name": name,
        "created": int(time.time() * 1000),
        "source": "file",
        "settings": {"stems": "four" if len(stems) == 4 else "two", "format": fmt, "preset": "balanced", "clip": "rescale"},
        "sampleRate": RATE,
        "frames": frames,
        "stems": stems,
        "files": [{"stem": s, "file": f"{s}.wav", "bytes": files[s]} for s in stems],
        "play": {s: f"{s}.wav" for s in stems},
        "peaks": {"bin": PEAKS_BIN, "files": {s: f"peaks/{s}.peaks" for s in stems}},
        "bytes": sum(files.values()),
    }


def write_entry(page, entry_id: str, name: str, stems: dict[str, np.ndarray], subtype: str = "PCM_16",
                fmt: str = "WAV") -> dict:
    """An entry of `stems` ({name: float32 [n, 2]}), as a job would leave it."""
    frames = max(len(a) for a in stems.values())
    sizes = {}
    for stem, audio in stems.items():
        data = wav_bytes(audio, subtype, fmt)
        write_file(page, f"library/{entry_id}/{stem}.wav", data)
        peaks = peaks_of(audio)
        write_file(page, f"library/{entry_id}/peaks/{stem}.peaks", peaks)
        sizes[stem] = len(data) + len(peaks)
    entry = entry_json(entry_id, name, list(stems), frames, sizes, {"PCM_16": "wav16", "PCM_24": "wav24", "FLOAT": "float32"}.get(subtype, "wav16"))
    write_file(page, f"library/{entry_id}/entry.json", json.dumps(entry).encode())
    return entry


def write_long_entry(page, entry_id: str, name: str, blocks: dict[str, np.ndarray], seconds: float) -> dict:
    """An entry `seconds` long, 16-bit, each stem its block (float32 [k * PEAKS_BIN, 2]) repeated:
    written in the page chunk by chunk, so no hour of audio ever crosses from here."""
    frames = round(seconds * RATE)
    sizes = {}
    for stem, block in blocks.items():
        assert len(block) % PEAKS_BIN == 0, "a block of whole peak bins, so that its peaks tile"
        header = wav_bytes(np.zeros((0, 2), np.float32))
        assert len(header) == 44, len(header)
        data_bytes = frames * 4
        header = bytearray(header)
        header[4:8] = (36 + data_bytes).to_bytes(4, "little")
        header[40:44] = data_bytes.to_bytes(4, "little")
        pcm = np.clip(np.round(block * 32767), -32768, 32767).astype("<i2").tobytes()
        total = _run(
            page,
            _REPEAT_JS, [f"library/{entry_id}/{stem}.wav", base64.b64encode(bytes(header)).decode(), base64.b64encode(pcm).decode(), 44 + data_bytes]
        )
        assert total == 44 + data_bytes, total
        bins = -(-frames // PEAKS_BIN)
        one = np.frombuffer(peaks_of(block), np.int8).reshape(-1, 2)
        peaks = np.tile(one, (-(-bins // len(one)), 1))[:bins].tobytes()
        write_file(page, f"library/{entry_id}/peaks/{stem}.peaks", peaks)
        sizes[stem] = total + len(peaks)
    entry = entry_json(entry_id, name, list(blocks), frames, sizes)
    write_file(page, f"library/{entry_id}/entry.json", json.dumps(entry).encode())
    return entry


def remove_entry(page, entry_id: str) -> None:
    _run(
        page,
        """async (id) => {
          const root = await navigator.storage.getDirectory();
          try { await (await root.getDirectoryHandle('library')).removeEntry(id, { recursive: true }); } catch {}
        }""",
        entry_id,
    )
