"""The folder name for a song's stems, made from its file name, safe on every file system.

A file name can hold anything a user or a website put there: path separators
("AC/DC" arrives as "AC／DC" or "AC_DC", or as a real slash in a browser's File
name), control characters, names that mean "this folder" or "the parent folder",
names Windows reserves, or 300 characters where most file systems allow 255 bytes.

The extension names its folders with the same rule (extension/lib/folder_name.js),
so a song gets the same folder from the command line and from the browser.
tests/support/folder_names.json holds the cases both must agree on, and
tests/extension/test_folder_names_agree.py checks that they do. Change both or neither.

Every character class is spelled out, never left to the language (Python's
str.split() and JavaScript's \\s disagree on what whitespace is; so do their
case-insensitive matches), and lengths count UTF-8 bytes of code points, not
UTF-16 units. Pure Python, no numpy: it also runs inside Pyodide.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 150  # well under the usual 255-byte limit, leaving room for " (2)", the stem and ".wav.part"

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a non-UTF-8 byte of a POSIX file name (surrogateescape)
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,5}")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|~]')
# Unicode's White_Space less the control characters (already replaced): the same class as in folder_name.js.
_SPACES = re.compile(r"[\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# Windows' device names, also followed by an extension ("con.mp3") or by spaces; ¹²³ count as digits there.
_RESERVED = re.compile(r"(?:con|prn|aux|nul|com[1-9\u00b9\u00b2\u00b3]|lpt[1-9\u00b9\u00b2\u00b3]) *", re.ASCII | re.IGNORECASE)


def song_name(file_name: str) -> str:
    """The name less a real extension: a final "." and 1-5 ASCII letters or digits, after at least
    one character ("Song.mp3" -> "Song"; "Song. Live at the Roxy", "T.N.T." and ".hidden" stay)."""
    dot = file_name.rfind(".")
    return file_name[:dot] if dot > 0 and _EXTENSION.fullmatch(file_name, dot + 1) else file_name


def song_folder(file_name: str) -> str:
    """'AC/DC: Song?.mp3' -> 'AC_DC_ Song_': the name less its extension, sanitised and shortened.

    Takes a bare file name (or a tab's title), never a path: slashes in it are characters to replace.
    The rule, step by step (folder_name.js takes the same steps):
    lone surrogates become U+FFFD; a final "." and 1-5 ASCII letters or digits, after at
    least one character, is dropped; NFC; control characters, / \\ : * ? " < > | and ~
    become "_"; each run of whitespace becomes one space; spaces and dots go from both
    ends; at most MAX_BYTES bytes of UTF-8, cut between code points; spaces and dots go
    from the end again; nothing left is "Untitled"; a Windows device name before the
    first dot gets a "_" in front (the name cut to MAX_BYTES - 1 bytes first).
    """
    name = song_name(_SURROGATE.sub("\ufffd", file_name))
    name = unicodedata.normalize("NFC", name)
    name = _SPACES.sub(" ", _UNSAFE.sub("_", name)).strip(" .")
    name = _shorten(name, MAX_BYTES).rstrip(" .")
    if not name:
        return "Untitled"  # the name was only dots and spaces
    if _RESERVED.fullmatch(name.split(".", 1)[0]):
        name = "_" + _shorten(name, MAX_BYTES - 1).rstrip(" .")
    return name


def _shorten(name: str, max_bytes: int) -> str:
    """Cut to at most max_bytes of UTF-8 without splitting a character."""
    data = name.encode("utf-8")
    if len(data) <= max_bytes:
        return name
    return data[:max_bytes].decode("utf-8", errors="ignore")
