"""MIDI transcription against Spotify's Basic Pitch: how well our notes agree with the reference's.

    python bench/midi.py                          # vocals and bass of the CC0 excerpts, separated by Demixer
    python bench/midi.py --stems a.wav bass.flac  # any audio files (a file named like a stem gets its range)

The reference is basic-pitch==0.4.0 from PyPI, run on the same nmp.onnx with onnxruntime, in a
virtual environment of its own (.cache/bench/basic-pitch-venv, made on first run; installed
--no-deps, as its declared dependencies pull TensorFlow). For each stem file it prints the
reference's notes, ours, and note-level precision, recall and F (mir_eval, run in that
environment: onset within 50 ms, exact pitch, offsets ignored), for three runs of ours:
  whole range  no pitch range, polyphonic;
  stem range   each stem's range from STEM_DEFAULTS (polyphonic: the reference has no monophonic mode);
  chunked      whole range, decoded CORE frames at a time with CONTEXT either side (NoteTracker),
               so a 30 s clip is decoded in pieces as a long song is.
Two more columns tell the decoding from the rest: "F span" leaves out the notes near the end
(the reference drops the audio's last 0.7 %, ours runs to its end, and notes there differ), and
"exact" says whether our decode() of the reference's own model output gives exactly its notes
(in the chunked run: whether the chunked notes are exactly the unchunked ones).
The input is each ../shared/testdata/cc0-excerpts track's mixture (the sum of its four stems),
separated by `python -m pycore separate` (cached in .cache/bench/midi/, as are both sides' notes,
results.json). Target: mean F >= 0.98 for the whole and stem ranges. --diff lists the notes that
did not match.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from pycore.names import song_folder
from pycore.native_decode import open_audio
from pycore.notes_runner import NotesOnnxRunner, notes_model_path
from pycore.separate import run_sync
from pycore.transcribe import (
    STEM_DEFAULTS,
    MonoTap,
    NoteOptions,
    NoteTracker,
    Transcriber,
    decode,
    transcribe_source,
)

TESTDATA = REPO.parent / "shared" / "testdata" / "cc0-excerpts"
WORK = REPO / ".cache" / "bench" / "midi"
VENV = REPO / ".cache" / "bench" / "basic-pitch-venv"
PACKAGES = ["onnxruntime", "librosa", "pretty_midi", "mir_eval", "resampy<0.4.3", "scipy", "scikit-learn"]
TARGET = 0.98

# Run with the venv's python: the reference's notes for each job, then ours scored against them.
REFERENCE = r'''
import contextlib, io, json, logging, sys, time
logging.disable(logging.WARNING)  # basic-pitch warns that TensorFlow, CoreML and TFLite are absent
import numpy as np
import mir_eval
from basic_pitch.inference import predict
from basic_pitch.note_creation import model_frames_to_time

KW = dict(onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)

def reference(job):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per file
        output, _, events = predict(job["audio"], jobs["model"], onset_threshold=0.5, frame_threshold=0.3,
                                    minimum_note_length=127.70, minimum_frequency=job["min_hz"],
                                    maximum_frequency=job["max_hz"], melodia_trick=True)
    n = len(output["note"])  # saved for our decode (the bench's "exact" column)
    np.savez(job["npz"], note=output["note"], onset=output["onset"], times=model_frames_to_time(n))
    return sorted([float(s), float(e), int(p), int(round(127 * a))] for s, e, p, a, _ in events), n

def arrays(notes):
    return (np.array([n[:2] for n in notes]).reshape(-1, 2), np.array([440 * 2 ** ((n[2] - 69) / 12) for n in notes]))

def score(ref, est):
    (ri, rp), (ei, ep) = arrays(ref), arrays(est)
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, **KW)
    pairs = mir_eval.transcription.match_notes(ri, rp, ei, ep, **KW) if len(ref) and len(est) else []
    return {"prf": [p, r, f], "unmatched_ref": sorted(set(range(len(ref))) - {a for a, _ in pairs}),
            "unmatched_ours": sorted(set(range(len(est))) - {b for _, b in pairs})}

jobs = json.load(open(sys.argv[1]))
reference(jobs["jobs"][0])  # warm up (librosa's first load takes seconds), untimed
for job in jobs["jobs"]:
    t = time.perf_counter()
    job["reference"], n = reference(job)
    job["seconds"] = time.perf_counter() - t
    # The reference keeps floor(samples * 86 / 22050) frames (86.13 a second), ours run to the end; a
    # note needs 12 frames, so none can start after its frame n - 13. "span": notes over by then.
    job["horizon"] = float(model_frames_to_time(n)[n - 12])
    inside = [x for x in job["reference"] if x[1] <= job["horizon"]]
    job["scores"] = {name: {**score(job["reference"], ours),
                            "span": score(inside, [x for x in ours if x[1] <= job["horizon"]])["prf"][2]}
                     for name, ours in job["ours"].items()}
json.dump(jobs, open(sys.argv[2], "w"))
'''


def ensure_venv() -> Path:
    """The reference's python, installing basic-pitch into its own venv on first run."""
    python, ready = VENV / "bin" / "python", VENV / ".ready"
    if ready.exists():
        return python
    print(f"setting up the reference in {VENV.relative_to(REPO)} (once)", flush=True)
    if not python.exists():
        if not shutil.which("python3.11"):
            sys.exit("the reference's venv needs python3.11 (basic-pitch 0.4.0's tested Python), not found")
        print("  python3.11 -m venv", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print("  pip install --no-deps basic-pitch==0.4.0", flush=True)
    subprocess.run([*pip, "--no-deps", "basic-pitch==0.4.0"], check=True)
    print("  pip install " + " ".join(PACKAGES), flush=True)
    subprocess.run([*pip, *PACKAGES], check=True)
    ready.touch()
    return python


def separated_stems() -> list[tuple[str, str, Path]]:
    """(track, stem, file) for the vocals and bass of each excerpt, separated once and cached."""
    if not TESTDATA.is_dir():
        sys.exit(f"missing test data: {TESTDATA} (the CC0 excerpts, ../shared/testdata/cc0-excerpts)")
    out = []
    for folder in sorted(p for p in TESTDATA.iterdir() if p.is_dir()):
        mix = WORK / f"{folder.name}.wav"
        stems = WORK / "stems" / song_folder(mix.name)
        if not all((stems / f"{s}.wav").exists() for s in ("vocals", "bass")):
            WORK.mkdir(parents=True, exist_ok=True)
            parts = [sf.read(folder / f"{s}.flac", dtype="float32")[0] for s in ("bass", "drums", "other", "vocals")]
            sf.write(mix, sum(parts), 44_100, subtype="FLOAT")  # the mixture is the stems' sum
            print(f"separating {folder.name} (about a minute)", flush=True)
            subprocess.run([sys.executable, "-m", "pycore", "separate", str(mix), "-o", str(WORK / "stems"),
                            "--format", "float32", "--force"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        out += [(folder.name, s, stems / f"{s}.wav") for s in ("vocals", "bass")]
    return out


def midi_to_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def ours(path: Path, runner, options: NoteOptions, chunk: tuple[int, int] | None = None) -> list:
    """Our notes as [start, end, pitch, velocity], whole or with a NoteTracker of `chunk` (core, context)."""
    if chunk is None:
        notes = run_sync(transcribe_source(open_audio(path), runner, options))
    else:  # transcribe_source's loop, with our own tracker
        source = open_audio(path)
        tracker = NoteTracker(options, core=chunk[0], context=chunk[1])
        transcriber = Transcriber(runner, options, tracker=tracker)

        async def go():
            pending: list[bytes] = []
            tap = MonoTap(source.frames, 44_100, pending.append)
            for start in range(0, source.frames, 1 << 18):
                tap.push(source.read(start, min(1 << 18, source.frames - start)))
                for data in pending:
                    await transcriber.feed(np.frombuffer(data, "<f4"))
                pending.clear()
            return await transcriber.finish()

        notes = run_sync(go())
    return [[n.start, n.end, n.pitch, n.velocity] for n in notes]


def exact(job: dict) -> bool:
    """Whether our decode, given the reference's own model output, gives exactly its notes."""
    with np.load(job["npz"]) as m:
        events = decode(m["note"], m["onset"], NoteOptions(lowest=job["range"][0], highest=job["range"][1]))
        times = m["times"]  # its frames' times, so that only the decoding is compared
    return sorted([float(times[s]), float(times[e]), p, round(127 * a)] for s, e, p, a in events) == job["reference"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stems", nargs="+", type=Path, metavar="FILE", help="audio files instead of the separated excerpts")
    parser.add_argument("--core", type=int, default=870, help="the chunked run's frames decoded at a time (870: 10 s)")
    parser.add_argument("--context", type=int, default=870, help="the chunked run's frames of context either side")
    parser.add_argument("--diff", action="store_true", help="list the notes that did not match")
    args = parser.parse_args()
    python = ensure_venv()
    files = [(p.parent.name, p.stem.lower(), p) for p in args.stems] if args.stems else separated_stems()
    runner = NotesOnnxRunner(notes_model_path())
    runs = ("whole range", "stem range", "chunked")
    jobs = []
    print(f"transcribing {len(files)} files with ours", flush=True)
    for track, stem, path in files:
        defaults = {k: v for k, v in STEM_DEFAULTS.get(stem, {}).items() if k in ("lowest", "highest")}
        for run in runs[:2]:  # a reference job per range; the chunked run is scored against the whole range's
            options = NoteOptions(monophonic=False, **(defaults if run == "stem range" else {}))
            job = {"track": track, "stem": stem, "audio": str(path), "ours": {}, "our_seconds": {},
                   "range": [options.lowest, options.highest], "npz": str(WORK / f"model-{len(jobs)}.npz"),
                   "min_hz": midi_to_hz(options.lowest) if options.lowest else None,
                   "max_hz": midi_to_hz(options.highest + 1) if options.highest else None}  # as constrain_frequency rounds
            chunks = {run: None, **({"chunked": (args.core, args.context)} if run == "whole range" else {})}
            for name, chunk in chunks.items():
                t = time.perf_counter()
                job["ours"][name] = ours(path, runner, options, chunk)
                job["our_seconds"][name] = time.perf_counter() - t
            jobs.append(job)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "reference.py").write_text(REFERENCE)
    (WORK / "jobs.json").write_text(json.dumps({"model": str(notes_model_path()), "jobs": jobs}))
    print(f"transcribing {len(files)} files with basic-pitch 0.4.0", flush=True)
    subprocess.run([str(python), str(WORK / "reference.py"), str(WORK / "jobs.json"), str(WORK / "results.json")], check=True)
    results = json.loads((WORK / "results.json").read_text())["jobs"]  # kept: both sides' notes, for a closer look
    header = (f"{'run':12s} {'track':12s} {'stem':7s} {'ref':>4s} {'ours':>4s} {'P':>6s} {'R':>6s} {'F':>6s} "
              f"{'F span':>6s} {'exact':>5s} {'ref s':>6s} {'ours s':>6s}")
    print("\nnote-level agreement with basic-pitch 0.4.0 (onset within 50 ms, same pitch, offsets ignored);\n"
          "F span: only notes over 12 frames (0.14 s) before the reference's frames end (it drops the audio's last 0.7 %);\n"
          "exact: our decode of the reference's own model output gives exactly its notes (chunked: the same notes\n"
          "as our whole-range run)\n" + header)
    means, exacts = {}, []
    for run in runs:
        rows = [j for j in results if run in j["scores"]]
        for job in rows:
            score = job["scores"][run]
            p, r, f = score["prf"]
            if run == "chunked":  # the chunking's own effect: ours decoded in pieces against ours at once
                same = "yes" if job["ours"]["chunked"] == job["ours"]["whole range"] else "no"
            else:
                same = "yes" if exact(job) else "NO"
                exacts.append(same == "yes")
            print(f"{run:12s} {job['track'][:12]:12s} {job['stem'][:7]:7s} {len(job['reference']):4d} {len(job['ours'][run]):4d} "
                  f"{p:6.3f} {r:6.3f} {f:6.3f} {score['span']:6.3f} {same:>5s} {job['seconds']:6.2f} {job['our_seconds'][run]:6.2f}")
            if args.diff:
                for side, key, notes in (("ref only", "unmatched_ref", job["reference"]), ("ours only", "unmatched_ours", job["ours"][run])):
                    for start, end, pitch, velocity in (notes[i] for i in score[key]):
                        print(f"    {side:9s} {start:7.3f} to {end:7.3f} s, pitch {pitch}, velocity {velocity}"
                              f"{' (near the end)' if end > job['horizon'] else ''}")
        means[run] = [float(np.mean([j["scores"][run]["prf"][2] for j in rows])), float(np.mean([j["scores"][run]["span"] for j in rows]))]
        print(f"{run:12s} {'MEAN':12s} {'':7s} {'':4s} {'':4s} {'':6s} {'':6s} {means[run][0]:6.3f} {means[run][1]:6.3f} {'':5s} "
              f"{sum(j['seconds'] for j in rows):6.2f} {sum(j['our_seconds'][run] for j in rows):6.2f}")
    for run in runs[:2]:
        print(f"check: {run}: mean F {means[run][0]:.3f} >= {TARGET}: {'PASS' if means[run][0] >= TARGET else 'FAIL'} "
              f"(within the reference's span {means[run][1]:.3f})")
    print(f"check: our decode reproduces the reference's notes from its model output: {sum(exacts)} of {len(exacts)}: "
          f"{'PASS' if all(exacts) else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
