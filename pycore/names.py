"""The folder name for a song's stems, made from its file name, safe on every file system.

A file name can hold anything a user or a website put there: path separators
("AC/DC" arrives as "AC／DC" or "AC_DC", or as a real slash in a browser's File
name), control characters, names that mean "this folder" or "the parent folder",
names Windows reserves, or 300 characters where most file systems allow 255 bytes.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 180  # well under the usual 255-byte limit, leaving room for the stem and ".wav.part"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def song_folder(file_name: str) -> str:
    """'AC/DC: Song?.mp3' -> 'AC_DC_ Song_': the name less its extension, sanitised and shortened.

    Takes a bare file name (or a tab's title), never a path: slashes in it are characters to replace.
    """
    stem, dot, ext = file_name.rpartition(".")
    if not dot or not stem or len(ext) > 5 or not ext.isalnum():
        stem = file_name  # no real extension ("Song. Live", "T.N.T." or ".hidden")
    name = unicodedata.normalize("NFC", stem)
    name = _UNSAFE.sub("_", name).strip(" .")
    name = _shorten(name, MAX_BYTES).strip(" .")
    if not name:
        return "song"  # the name was only dots, spaces or separators
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    return name


def _shorten(name: str, max_bytes: int) -> str:
    """Cut to at most max_bytes of UTF-8 without splitting a character."""
    data = name.encode("utf-8")
    if len(data) <= max_bytes:
        return name
    return data[:max_bytes].decode("utf-8", errors="ignore")
