"""The command line and the extension name a song's folder alike: pycore's song_folder and the
extension's folderName (extension/lib/folder_name.js, run in node) give the same folder for every
name of tests/support/folder_names.json and for a few hundred generated ones."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from pycore.names import MAX_BYTES, song_folder

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "tests" / "support" / "folder_names.json"
MODULE = REPO / "extension" / "lib" / "folder_name.js"

# Reads a JSON list of names on stdin, writes [MAX_BYTES, [folderName(name), ...]] on stdout.
SCRIPT = """
const { MAX_BYTES, folderName } = await import(process.argv[1]);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const names = JSON.parse(Buffer.concat(chunks).toString('utf8'));
process.stdout.write(JSON.stringify([MAX_BYTES, names.map(folderName)]));
"""

# What the two languages could tell apart: the characters each rule names, whitespace that Python's
# str.split() and JavaScript's \\s disagree on, letters whose case mapping leaves ASCII, combining
# marks, characters outside the BMP, a lone surrogate, extensions and device names.
PIECES = [
    "a", "Z", "0", "9", "é", "e\u0301", "A\u030a", "\u1100\u1161\u11a8", "ß", "東", "ソ", "Ж", "ع", "क्ष", "🎵", "👍🏽",
    "👩\u200d💻", "\U0001d11e", "／", "＼", "İ", "ı", "ſ", "\u212a", "\u00b9", "\u00b2", "\u00b3", "\u2074",
    " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000", "\u200a",
    "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\ufeff", "\x00", "\x07", "\x7f", "\x9f",
    ".", "..", "/", "\\", ":", "*", "?", '"', "<", ">", "|", "~", "-", "_", "(", ")",
    "con", "CON", "Nul", "aux", "prn", "com", "COM", "lpt", "Lpt", "1", "0",
    ".mp3", ".FLAC", ".m4a", ".mpeg4", ".mpeg4x", ".tar", ".", "\udcff",
]


def generated(count: int, seed: int = 20261124) -> list[str]:
    """Random mixes of PIECES, some with long runs of one piece, some cut near the byte limit."""
    rng = random.Random(seed)
    names = []
    for i in range(count):
        parts = [rng.choice(PIECES) for _ in range(rng.randint(0, 40))]
        if i % 3 == 0:  # a long run, so the cut lands among these characters
            parts.insert(rng.randint(0, len(parts)), rng.choice(PIECES) * rng.randint(20, 160))
        if i % 7 == 0:  # a device name first, and an extension last
            parts[:0] = [rng.choice(["con", "NUL", "Com1", "lpt9", "LPT\u00b3", "aux"]), rng.choice([".", " ", " .", ""])]
            parts.append(rng.choice([".mp3", ".wav", ""]))
        names.append("".join(parts))
    names += ["x" * n + tail for n in range(MAX_BYTES - 6, MAX_BYTES + 3) for tail in ("東🎵", " .a", "é.mp3", "..")]
    return names


def test_python_and_javascript_name_every_folder_alike(node):
    table = [row["name"] for row in json.loads(TABLE.read_text(encoding="utf-8"))]
    extra = generated(400)
    names = table + extra
    proc = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, MODULE.as_uri()],
        input=json.dumps(names),  # ASCII, lone surrogates escaped: JSON.parse gives them to JavaScript as they are
        capture_output=True, text=True, encoding="utf-8", timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    js_max, js = json.loads(proc.stdout)
    assert js_max == MAX_BYTES, (js_max, MAX_BYTES)
    assert len(js) == len(names)
    mismatches = [(name, song_folder(name), folder) for name, folder in zip(names, js) if song_folder(name) != folder]
    for name, py, folder in mismatches:
        print(f"{name!r}:\n  Python     {py!r}\n  JavaScript {folder!r}")
    print(f"{len(table)} table names and {len(extra)} generated ones; {len(mismatches)} differ")
    assert not mismatches, f"{len(mismatches)} of {len(names)} names get different folders (printed above)"
