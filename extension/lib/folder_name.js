// The folder name for a song's stems, made from its file name or a tab's title,
// safe on every file system.
//
// The command line names its folders with the same rule (pycore/names.py,
// song_folder), so a song gets the same folder from the browser and from the
// command line. tests/support/folder_names.json holds the cases both must agree
// on, and tests/extension/test_folder_names_agree.py checks that they do: change
// both or neither.
//
// Every character class is spelled out, never left to the language (JavaScript's
// \s and Python's str.split() disagree on what whitespace is; so do their
// case-insensitive matches), and lengths count UTF-8 bytes of code points, not
// UTF-16 units. No imports: it runs in the service worker and in node.

// Well under the usual 255-byte limit, leaving room for " (2)", the stem and ".wav.part".
export const MAX_BYTES = 150;

const SURROGATE = /[\uD800-\uDFFF]/gu; // with the u flag: lone ones only, never half of a pair
const EXTENSION = /^[A-Za-z0-9]{1,5}$/;
const UNSAFE = /[\u0000-\u001f\u007f/\\:*?"<>|~]/g;
// Unicode's White_Space less the control characters (already replaced): the same class as in names.py.
const SPACES = /[\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;
// Windows' device names, also followed by an extension ("con.mp3") or by spaces; ¹²³ count as digits there.
// No u flag: /i then never matches a non-ASCII letter to an ASCII one, as Python's re.ASCII.
const RESERVED = /^(?:con|prn|aux|nul|com[1-9\u00b9\u00b2\u00b3]|lpt[1-9\u00b9\u00b2\u00b3]) *$/i;

// 'AC/DC: Song?.mp3' -> 'AC_DC_ Song_': the name less its extension, sanitised and shortened.
// A bare file name (or a tab's title), never a path: slashes in it are characters to replace.
// The rule, step by step (names.py takes the same steps): lone surrogates become
// U+FFFD; a final "." and 1-5 ASCII letters or digits, after at least one character,
// is dropped; NFC; control characters, / \ : * ? " < > | and ~ become "_"; each run
// of whitespace becomes one space; spaces and dots go from both ends; at most
// MAX_BYTES bytes of UTF-8, cut between code points; spaces and dots go from the end
// again; nothing left is "Untitled"; a Windows device name before the first dot gets
// a "_" in front (the name cut to MAX_BYTES - 1 bytes first).
export function folderName(fileName) {
  let name = songName(String(fileName ?? '').replace(SURROGATE, '\ufffd'));
  name = name.normalize('NFC');
  name = name.replace(UNSAFE, '_').replace(SPACES, ' ').replace(/^[ .]+|[ .]+$/g, '');
  name = shorten(name, MAX_BYTES).replace(/[ .]+$/, '');
  if (!name) return 'Untitled'; // the name was only dots and spaces
  if (RESERVED.test(name.split('.', 1)[0])) name = `_${shorten(name, MAX_BYTES - 1).replace(/[ .]+$/, '')}`;
  return name;
}

// Cut to at most maxBytes of UTF-8 without splitting a character (a code point:
// an emoji's two UTF-16 units stay together). Lone surrogates are gone by now.
// The name less a real extension (pycore/names.py's song_name): "Song.mp3" -> "Song";
// "Song. Live at the Roxy", "T.N.T." and ".hidden" stay as they are.
export function songName(fileName) {
  const name = String(fileName ?? '');
  const dot = name.lastIndexOf('.');
  return dot > 0 && EXTENSION.test(name.slice(dot + 1)) ? name.slice(0, dot) : name;
}

function shorten(name, maxBytes) {
  let bytes = 0;
  let end = 0;
  for (const char of name) {
    const cp = char.codePointAt(0);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) return name.slice(0, end);
    end += char.length;
  }
  return name;
}
