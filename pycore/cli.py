"""The native command line: `python -m pycore separate INPUT... -o OUTDIR`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import formats
from .names import song_folder, song_name
from .native_decode import DecodeError, open_audio
from .separate import STEM_LAYOUTS, Options, run_sync, separate
from .settings import SETTINGS
from .stem_files import StemFiles
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
    for name, spec in SETTINGS.items():
        s.add_argument(f"--{name}", choices=list(spec["choices"]), default=spec["default"],
                       help=f"{helps[name]} (default: {spec['default']})")
    s.add_argument("--overlap", type=float, help="overlap between segments, 0 to 0.9 (overrides the preset)")
    s.add_argument("--shifts", type=int, help="average N randomly shifted passes (overrides the preset)")
    s.add_argument("--force", action="store_true", help="overwrite stems that already exist")
    s.add_argument("--model", type=Path, help="path of an htdemucs ONNX file (default: the prepared model the "
                                               "extension ships, fetched and prepared on first use)")
    s.add_argument("--threads", type=int, default=None, help="threads for the model (default: all cores)")
    return p


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
    sink = StemFiles(args.out / song_folder(path.name), args.format, args.clip, song=song_name(path.name))
    existing = [p for p in sink.final_paths(STEM_LAYOUTS[options.stems]) if p.exists()]
    if existing and not args.force:
        raise FileExistsError(f"stems already exist in {sink.folder} (use --force to overwrite)")
    for warning in source.warnings:
        _error(path.name, f"note: {warning}")
    with tqdm(total=None, desc=path.name[:30], unit="seg", file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = run_sync(separate(source, runner, sink, options, on_progress=progress))
    for warning in report.warnings[len(source.warnings):]:
        _error(path.name, f"note: {warning}")
    for message in sink.messages():
        _error(path.name, f"note: {message}")
    print(f"{path.name} -> {sink.folder}/ ({', '.join(p.name for p in sink.paths)})")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
