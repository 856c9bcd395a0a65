"""The core's entry point inside the extension (Pyodide), called by extension/engine/engine_worker.js.

    result = await pyodide.pyimport("pycore.browser").separate_file(opts)

OPFS in, OPFS out: memory is bounded by a few segments whatever the song's length.
opts is a JS object:
  input           a JS file (see below) holding a WAV of any rate, channels, sample format
  outputs         {stem: JS file} for each stem of the layout, empty, opened for writing
  settings        the job's settings {stems, format, preset, clip} (pycore/settings.py),
                  already validated by the service worker; checked again here
  encoders        {stem: JS encoder} for FLAC, MP3 and Opus stems (extension/engine/encoders.js,
                  opened on the stems' files, tags given): write(left, right) (Int32Arrays for FLAC,
                  Float32Arrays otherwise; may return a promise to wait on), finish() -> promise, abort()
  scratch         {stem: JS file} for rescaling encoded stems (their float samples until the
                  song's peak is known); absent for WAV, which rescales in place
  runModel(wave, spec) -> Promise<[freq, time]>   Float32Arrays in the model's layout; it must
                  start the model before returning, so Python works on while it runs
  inFlight        how many segments runModel may have at once (its sessions; 1 when absent)
  playOutputs     {stem: JS file}, empty: a 16-bit WAV of each stem for the player, when the
                  format is not WAV (extension/lib/library.js: play/<stem>.wav); optional
  peaksOutputs    {stem: JS file}, empty: each stem's waveform overview (pycore/peaks.py,
                  library.js: peaks/<stem>.peaks), at the level the stems were written; optional
  With settings.midi 'on' (pycore/stem_notes.py decides which stems):
  notesScratch    {stem: JS file} for each transcribed stem's mono audio, empty
  midiOutputs     {stem: JS file} for its .mid, empty
  runNotes(audio) -> Promise<[note, onset, contour]>   one window of the note model
  onTranscribing(stem)            before each stem's notes are made
  onProgress(done, total)         model segments
  isCancelled() -> bool           when true, separate_file raises Cancelled
A JS file is random access over an OPFS FileSystemSyncAccessHandle:
  read(pos, n) -> Uint8Array (shorter at the end), write(pos, Uint8Array) -> n,
  size(), truncate(n), flush()
Returns {stems, frames, warnings, midi: {stem: notes}, peaks?: {bin}} (peaks when peaksOutputs
were written), or {error} when the input is not audio we can read (a plain sentence for the user;
the engine stays usable).

    result = await pyodide.pyimport("pycore.browser").mix_file(opts)

renders the mix the player plays (pycore/mix.py) from a library entry's stem WAVs:
  inputs          {stem: JS file} the stems' WAVs (all of one song: 44.1 kHz stereo, one length)
  gains           {stem: number} linear, 0 = muted (1 for a stem not named)
  settings        {format, clip} of the export (pycore/settings.py)
  output          a JS file, empty, for a WAV format; for the others
  encoder         a JS encoder (as encoders[stem] above) and
  scratch         a JS file for rescaling (optional: without it the mix is clamped, and says so)
  isCancelled() -> bool           optional; when true, mix_file raises Cancelled
Returns {frames, warnings}, or {error} (a plain sentence) when the stems cannot be mixed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from pyodide.ffi import to_js

from . import formats
from .model_contract import SAMPLE_RATE, SOURCES
from .mix import mix_stems
from .peaks import PEAKS_BIN, PeaksTap
from .separate import Options, separate
from .settings import normalize
from .sources import wav_source
from .notes_contract import PITCHES, WINDOW_FRAMES
from .stem_files import EncodedStems, PlayCopy, WavStems
from .stem_notes import NotesTap, stem_midi
from .transcribe import NoteOptions


def _array(js) -> np.ndarray:
    """A JS Float32Array -> numpy float32 (one copy)."""
    out = np.empty(js.length, dtype=np.float32)
    js.assign_to(out)
    return out


def _typed(x: np.ndarray):
    """numpy float32 -> a JS Float32Array (one copy)."""
    return to_js(memoryview(np.ascontiguousarray(x, dtype=np.float32)).cast("B").cast("f"))


class _JsRunner:
    """The model in its own worker: `run` starts it at once and returns an awaitable of its outputs."""

    def __init__(self, run_model, in_flight: int = 1):
        self._run_model = run_model
        self.in_flight = in_flight  # separate() keeps this many segments with the model

    def run(self, wave: np.ndarray, spec: np.ndarray):
        return self._outputs(self._run_model(_typed(wave), _typed(spec)))  # a JS promise: already running

    @staticmethod
    async def _outputs(promise):
        result = await promise
        return _JsSources(result[0]), _array(result[1])


class _JsSources:
    """The model's frequency output left in JavaScript, copied in a source at a time
    (sources_from_outputs asks for them in turn): Pyodide's heap never shrinks."""

    def __init__(self, js):
        self._js = js

    def source(self, k: int) -> np.ndarray:
        n = self._js.length // len(SOURCES)
        return _array(self._js.subarray(k * n, (k + 1) * n))


class JsFile:
    """A Python binary stream (read, write, seek, tell, truncate) over a JS file of engine_worker.js.

    WavReader reads the input through it at random positions; the stem sink
    writes (and, to rescale clipped stems, re-reads and truncates) through it.
    """

    def __init__(self, js):
        self._js = js
        self._pos = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: int(self._js.size())}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, int(self._js.size()) - self._pos)
        if n == 0:
            return b""
        data = self._js.read(self._pos, n).to_bytes()
        self._pos += len(data)
        return data

    def write(self, data) -> int:
        data = bytes(data)
        written = int(self._js.write(self._pos, to_js(data)))
        if written != len(data):
            raise OSError(f"the browser's storage took {written} of {len(data)} bytes (is the disk full?)")
        self._pos += written
        return written

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        self._js.truncate(size)
        return size

    def flush(self) -> None:
        self._js.flush()

    def close(self) -> None:
        self._js.flush()  # the handle itself is closed by engine/engine_worker.js, which opened it


class _JsEncoder:
    """A stem's encoder in JavaScript (extension/engine/encoders.js), fed planar blocks."""

    def __init__(self, js):
        self._js = js

    def write(self, block: np.ndarray):
        kind = "i" if block.dtype == np.int32 else "f"  # Int32Array or Float32Array, one copy each
        planes = [to_js(memoryview(np.ascontiguousarray(channel)).cast("B").cast(kind)) for channel in block]
        return self._js.write(*planes)  # None, or a JS promise (awaitable here) when it wants us to wait

    def finish(self):
        return self._js.finish()

    def abort(self) -> None:
        self._js.abort()


def _sink(settings: dict, output: Callable, encoder: Callable, scratch: Callable | None):
    """The sink of the settings' format and clip mode. For a stem, `output` gives its JS file (WAV),
    `encoder` its JS encoder (the other formats) and `scratch`, if any, its JS file for rescaling."""
    fmt = formats.get(settings["format"])
    if fmt.wav:
        return WavStems(fmt.name, lambda stem: JsFile(output(stem)), clip=settings["clip"])
    open_scratch = (lambda stem: JsFile(scratch(stem))) if scratch else None
    return EncodedStems(fmt.name, lambda stem, frames: _JsEncoder(encoder(stem)), clip=settings["clip"],
                        open_scratch=open_scratch)


def _answer(d: dict):
    from js import Object

    return to_js(d, dict_converter=Object.fromEntries)


async def separate_file(opts):
    settings = normalize(opts.settings.to_py())
    options = Options.preset(settings["preset"], stems=settings["stems"])
    try:
        source = wav_source(JsFile(opts.input))
        if source.frames == 0:
            raise ValueError("the file contains no audio (0 samples)")
    except ValueError as e:  # WavError and friends: the input, not the engine, is at fault
        return _answer({"error": str(e)})
    scratch = getattr(opts, "scratch", None)
    sink = _sink(settings, lambda stem: getattr(opts.outputs, stem), lambda stem: getattr(opts.encoders, stem),
                 (lambda stem: getattr(scratch, stem)) if scratch else None)
    # Innermost first: the play copy gets the very blocks the stems get, the overview is drawn
    # at the gain the stems were given, and the notes tap stays outermost.
    play, peaks = getattr(opts, "playOutputs", None), getattr(opts, "peaksOutputs", None)
    if play:
        sink = PlayCopy(sink, lambda stem: JsFile(getattr(play, stem)), clip=settings["clip"])
    if peaks:
        sink = PeaksTap(sink, lambda stem: JsFile(getattr(peaks, stem)))
    if settings["midi"] == "on":
        sink = NotesTap(sink, None, lambda stem: JsFile(getattr(opts.notesScratch, stem)))
    report = await separate(
        source,
        _JsRunner(opts.runModel, int(getattr(opts, "inFlight", None) or 1)),
        sink,
        options,
        on_progress=lambda done, total: opts.onProgress(done, total),
        is_cancelled=lambda: bool(opts.isCancelled()),
    )
    warnings = report.warnings + sink.messages()
    midi = await _transcribe(opts, sink, warnings) if isinstance(sink, NotesTap) else {}
    out = {"stems": list(report.stems), "frames": report.frames, "sampleRate": SAMPLE_RATE, "warnings": warnings, "midi": midi}
    if peaks:
        out["peaks"] = {"bin": PEAKS_BIN}
    return _answer(out)


async def mix_file(opts):
    from js import Object

    settings = normalize(opts.settings.to_py())
    scratch = getattr(opts, "scratch", None)
    sink = _sink(settings, lambda _: opts.output, lambda _: opts.encoder, (lambda _: scratch) if scratch else None)
    cancelled = getattr(opts, "isCancelled", None)
    try:
        sources = {stem: wav_source(JsFile(getattr(opts.inputs, stem))) for stem in Object.keys(opts.inputs)}
        gains = {stem: float(gain) for stem, gain in opts.gains.to_py().items()}
        frames = await mix_stems(sources, gains, sink, is_cancelled=(lambda: bool(cancelled())) if cancelled else None)
    except ValueError as e:  # WavError, stems not of one song, a WAV over 4 GB: said in plain words
        return _answer({"error": str(e)})
    return _answer({"frames": frames, "warnings": sink.messages()})


class _JsNotesRunner:
    def __init__(self, run_notes):
        self._run = run_notes

    async def run(self, audio: np.ndarray):
        result = await self._run(_typed(audio))
        shapes = ((WINDOW_FRAMES, PITCHES), (WINDOW_FRAMES, PITCHES), (WINDOW_FRAMES, 3 * PITCHES))
        return tuple(_array(result[k]).reshape(shape) for k, shape in enumerate(shapes))


async def _transcribe(opts, tap: NotesTap, warnings: list[str]) -> dict[str, int]:
    """The tapped stems' .mid files, written whole; the stems are saved whatever happens here."""
    counts: dict[str, int] = {}
    runner = _JsNotesRunner(opts.runNotes)
    for stem in tap.stems:
        try:
            opts.onTranscribing(stem)
            notes = (await tap.transcribe_one(stem, runner, NoteOptions.for_stem(stem)))
            out = JsFile(getattr(opts.midiOutputs, stem))
            out.write(stem_midi(stem, notes))
            out.flush()
            counts[stem] = len(notes)
        except Exception as e:  # noqa: BLE001 - the stems are written: a failure costs only this MIDI
            warnings.append(f"the notes of the {stem} could not be written as MIDI ({type(e).__name__}: {e})")
    return counts
