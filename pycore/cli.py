"""The native command line: `python -m pycore separate INPUT... -o OUTDIR`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from . import formats
from .names import song_folder, song_name
from .native_decode import DecodeError, open_audio
from .separate import STEM_LAYOUTS, Options, run_sync, separate
from .settings import EXTENSION_ONLY, SETTINGS, SWITCHES
from .transcribe import STEM_DEFAULTS, NoteOptions, parse_note
from .stem_files import StemFiles
from .stem_notes import NotesTap, midi_stems, stem_midi
from .wav import WavError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pycore", description="Split songs into stems on this machine.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("separate", help="separate audio files into stems",
                       description="Writes OUTDIR/<song name>/<stem>.<ext> for each input.")
    s.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio files (WAV, FLAC, MP3, OGG, ...)")
    s.add_argument("-o", "--out", type=Path, required=True, metavar="OUTDIR", help="folder for the stems")
    # The job settings, with the extension's choices and defaults (pycore/settings.py).
    helps = {
        "stems": "four: drums, bass, other, vocals; two: vocals, instrumental",
        "format": "output format: WAV (16/24-bit, 32-bit float), FLAC (16/24-bit), MP3 (320 kbit/s CBR or VBR V0), "
                  "Opus (160 kbit/s, Ogg)",
        "preset": "fast: less overlap; balanced: Demucs's defaults; best: 4 passes per segment "
                  "(2 shifts, each also on the sign-inverted mix), about 4x slower",
        "clip": "stems beyond full scale: rescale lowers all stems by one gain so none clips, "
                "clamp cuts the peaks (float32 output is never altered)",
    }
    helps["midi"] = "also write <stem>.mid beside each pitched stem (bass, vocals, other; see --midi-stems)"
    for name, spec in SETTINGS.items():
        if name in EXTENSION_ONLY:
            continue
        if name in SWITCHES:
            s.add_argument(f"--{name}", action="store_const", const="on", default=spec["default"], help=helps[name])
            continue
        s.add_argument(f"--{name}", choices=list(spec["choices"]), default=spec["default"],
                       help=f"{helps[name]} (default: {spec['default']})")
    s.add_argument("--midi-stems", type=lambda v: tuple(x.strip() for x in v.split(",") if x.strip()),
                   metavar="LIST", help="with --midi: the stems to transcribe, e.g. bass,vocals (drums too if asked)")
    _note_arguments(s)
    s.add_argument("--overlap", type=float, help="overlap between segments, 0 to 0.9 (overrides the preset)")
    s.add_argument("--shifts", type=int, help="average N randomly shifted passes (overrides the preset)")
    s.add_argument("--force", action="store_true", help="overwrite stems that already exist")
    s.add_argument("--model", type=Path, help="path of an htdemucs ONNX file (default: the prepared model the "
                                               "extension ships, fetched and prepared on first use)")
    s.add_argument("--threads", type=int, default=None, help="threads for the model (default: all cores)")

    t = sub.add_parser("transcribe", help="write the notes of an audio file as MIDI",
                       description="Transcribes one instrument or voice (a separated stem works best) to a MIDI file.")
    t.add_argument("input", type=Path, metavar="INPUT", help="an audio file (WAV, FLAC, MP3, OGG, ...)")
    t.add_argument("-o", "--out", type=Path, required=True, metavar="OUT.mid", help="the MIDI file to write")
    t.add_argument("--stem", choices=list(STEM_DEFAULTS), help="what it is: sets the pitch range and whether it "
                   "plays one note at a time (bass: E1-G4, one note; vocals: C2-C6, one note)")
    t.add_argument("--lowest", type=parse_note, metavar="NOTE", help="lowest note kept (E1, F#2 or a MIDI number)")
    t.add_argument("--highest", type=parse_note, metavar="NOTE", help="highest note kept")
    t.add_argument("--mono", dest="monophonic", action="store_const", const=True, help="one note at a time")
    t.add_argument("--poly", dest="monophonic", action="store_const", const=False, help="chords allowed")
    t.add_argument("--force", action="store_true", help="overwrite OUT.mid if it exists")
    _note_arguments(t)
    return p


def _note_arguments(p: argparse.ArgumentParser) -> None:
    d = NoteOptions()
    p.add_argument("--onset-threshold", type=float, metavar="P", help=f"how sure a note start must be, 0-1: "
                   f"lower finds more notes (default: {d.onset_threshold})")
    p.add_argument("--frame-threshold", type=float, metavar="P", help=f"how sure a held note must be, 0-1 "
                   f"(default: {d.frame_threshold})")
    p.add_argument("--min-note-ms", type=float, metavar="MS", help=f"shortest note kept (default: {d.min_note_ms})")
    p.add_argument("--tempo", type=float, metavar="BPM", help="the song's tempo, for the MIDI file's bars "
                   "(default: 120; notes keep their real times either way)")
    p.add_argument("--bends", action="store_true", default=None, help="add pitch bends (slides, vibrato)")


def _note_options(args, stem: str | None) -> NoteOptions:
    given = {k: getattr(args, k, None) for k in ("onset_threshold", "frame_threshold", "min_note_ms", "tempo", "bends",
                                                 "lowest", "highest", "monophonic")}
    return NoteOptions.for_stem(stem or "", **given)


def _error(name: str, message: str) -> None:
    print(f"demixer: {name}: {message}", file=sys.stderr)


def _model_path(given: Path | None) -> Path:
    if given is not None:
        if not given.is_file():
            raise DecodeError(f"model file not found: {given}")
        return given
    if os.environ.get("DEMIXER_MODEL"):
        return Path(os.environ["DEMIXER_MODEL"])
    from models.fetch import REPO_CACHE
    from models.prepare import prepared_model

    cache = REPO_CACHE if REPO_CACHE.parent.joinpath("pyproject.toml").exists() else Path.home() / ".cache" / "demixer"
    return prepared_model(cache)


def _separate_one(path: Path, args, options: Options, runner) -> None:
    from tqdm import tqdm

    source = open_audio(path)
    files = StemFiles(args.out / song_folder(path.name), args.format, args.clip, song=song_name(path.name))
    layout = STEM_LAYOUTS[options.stems]
    midi = midi_stems(layout, args.midi_stems) if args.midi == "on" else ()
    sink = NotesTap(files, midi, lambda stem: tempfile.TemporaryFile()) if midi else files
    existing = [p for p in [*files.final_paths(layout), *(files.folder / f"{s}.mid" for s in midi)] if p.exists()]
    if existing and not args.force:
        raise FileExistsError(f"stems already exist in {files.folder} (use --force to overwrite)")
    for warning in source.warnings:
        _error(path.name, f"note: {warning}")
    with tqdm(total=None, desc=path.name[:30], unit="seg", file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = run_sync(separate(source, runner, sink, options, on_progress=progress))
    for warning in report.warnings[len(source.warnings):]:
        _error(path.name, f"note: {warning}")
    for message in files.messages():
        _error(path.name, f"note: {message}")
    written = [p.name for p in files.paths]
    if midi:
        from .notes_runner import NotesOnnxRunner, notes_model_path
        try:
            notes_runner = NotesOnnxRunner(notes_model_path(), args.threads)
        except Exception as e:  # the stems are written: a missing note model costs only the MIDI
            _error(path.name, f"no MIDI: cannot load the note model: {e}")
        else:
            def save(stem: str, notes) -> None:
                _write_midi(files.folder / f"{stem}.mid", notes, stem, args.tempo)
                written.append(f"{stem}.mid ({len(notes)} notes)")

            run_sync(sink.transcribe(notes_runner, lambda stem: _note_options(args, stem), save))
    print(f"{path.name} -> {files.folder}/ ({', '.join(written)})")


def _write_midi(target: Path, notes, stem: str, tempo: float | None) -> None:
    """The .mid appears whole or not at all (written beside it, then renamed)."""
    partial = target.with_name(target.name + ".part")
    try:
        partial.write_bytes(stem_midi(stem, notes, tempo))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _transcribe(args) -> int:
    from .notes_runner import NotesOnnxRunner, notes_model_path, transcribe_file

    try:
        options = _note_options(args, args.stem)
    except ValueError as e:
        _error("options", str(e))
        return 2
    if args.out.exists() and not args.force:
        _error(str(args.out), "already exists (use --force to overwrite)")
        return 1
    try:
        runner = NotesOnnxRunner(notes_model_path())
    except Exception as e:  # noqa: BLE001 - a sentence, not a traceback
        _error("model", f"cannot load the note model: {e}")
        return 1
    try:
        notes = transcribe_file(args.input, options, runner)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        _write_midi(args.out, notes, args.stem or "", options.tempo)
    except (DecodeError, WavError, ValueError, OSError) as e:
        _error(str(args.input), str(e))
        return 1
    print(f"{args.input.name} -> {args.out} ({len(notes)} notes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "transcribe":
        return _transcribe(args)
    try:
        _note_options(args, None)
    except ValueError as e:
        _error("options", str(e))
        return 2
    try:
        given = {k: v for k, v in (("overlap", args.overlap), ("shifts", args.shifts)) if v is not None}
        options = Options.preset(args.preset, stems=args.stems, **given)
    except ValueError as e:
        _error("options", str(e))
        return 2
    try:
        from .onnx_runner import OnnxRunner

        runner = OnnxRunner(_model_path(args.model), args.threads)
    except Exception as e:  # a corrupt or missing model must still end with a sentence, not a traceback
        _error("model", f"cannot load the model: {e}")
        return 1
    fmt = formats.get(args.format)
    if not fmt.wav:
        from .native_encode import EncoderUnavailable, check_support

        try:
            check_support(fmt)
        except EncoderUnavailable as e:
            _error("format", str(e))
            return 2
    failures = 0
    for path in args.inputs:
        try:
            _separate_one(path, args, options, runner)
        except KeyboardInterrupt:
            _error(path.name, "cancelled; no stems were kept")
            return 130
        except PermissionError as e:
            _error(str(path), f"permission denied: {e.filename or e}")
            failures += 1
        except (DecodeError, WavError, FileExistsError, ValueError, OSError) as e:
            _error(str(path), str(e))
            failures += 1
        except Exception as e:  # noqa: BLE001 - a bug must not cost the user the other inputs, nor show a traceback
            _error(str(path), f"internal error, please report it: {type(e).__name__}: {e}")
            failures += 1
    if failures:
        print(f"demixer: {failures} of {len(args.inputs)} inputs failed", file=sys.stderr)
    return 1 if failures else 0
