"""song_folder: every case of tests/support/folder_names.json (which the extension's folderName
must give too: tests/extension/test_folder_names_agree.py), and what holds for any name."""

import json
import random
import re
import unicodedata
from pathlib import Path

from pycore.names import MAX_BYTES, song_folder

# Beside tests/core both in the checkout and in Pyodide's file system (run_core_tests.mjs copies it).
TABLE = Path(__file__).resolve().parents[1] / "support" / "folder_names.json"
RESERVED = re.compile(r"(con|prn|aux|nul|com[1-9¹²³]|lpt[1-9¹²³]) *", re.ASCII | re.IGNORECASE)
TRICKY = ["a", "Z", "é", "e\u0301", "東", "🎵", "ß", " ", "  ", "\t", "\n", "\u00a0", "\u3000", ".", "..", "/", "\\",
          ":", "*", "?", '"', "<", ">", "|", "~", "\x00", "\x7f", "／", "con", "LPT1", ".mp3", ".flac", "\udcff"]


def table() -> list[dict]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def test_the_table_is_whole():
    rows = table()
    assert len(rows) >= 24, len(rows)
    for row in rows:
        assert set(row) == {"name", "folder", "why"} and row["why"], row
    assert len({row["name"] for row in rows}) == len(rows), "a name is in the table twice"


def test_every_name_of_the_table_gets_its_folder():
    wrong = [f"{row['name']!r}: {song_folder(row['name'])!r}, expected {row['folder']!r} ({row['why']})"
             for row in table() if song_folder(row["name"]) != row["folder"]]
    assert not wrong, "\n".join(wrong)


def test_long_names_are_cut_on_a_character_boundary():
    for char in ("a", "é", "東", "🎵"):
        name = song_folder(char * 300 + ".mp3")
        assert MAX_BYTES - 4 < len(name.encode("utf-8")) <= MAX_BYTES and set(name) == {char}, char


def test_any_name_gives_a_folder_every_file_system_takes():
    rng = random.Random(7)
    names = [row["name"] for row in table()]
    names += ["".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 120))) for _ in range(300)]
    for name in names:
        folder = song_folder(name)
        assert folder and len(folder.encode("utf-8")) <= MAX_BYTES, repr(name)
        assert not re.search(r'[\x00-\x1f\x7f/\\:*?"<>|~\ud800-\udfff]', folder), repr(name)
        assert folder == unicodedata.normalize("NFC", folder) and "  " not in folder, repr(name)
        assert folder.strip(" .") == folder and folder not in (".", ".."), repr(name)
        assert not RESERVED.fullmatch(folder.split(".")[0]), repr(name)
