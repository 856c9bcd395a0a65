"""The library and the player's exports in Chromium, on real music with the real model: a finished
job stays in the extension's OPFS as a library entry; the popup lists it with Listen and Remove;
the player's "mix you hear" is exactly the stems it lets through; the zip holds the folder's
files byte for byte; removing an entry frees its files; the size limit removes the oldest entry
and the popup says so."""

from __future__ import annotations

import io
import math
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.audio import load_clip, mixture, write_song
from support.chromium import EXTENSION_ID, start_job, wait_for_job

from pycore.metrics import sdr

JOB_TIMEOUT = 600
STEMS = ("drums", "bass", "other", "vocals")
GB = 1024**3

# Every file under the extension's OPFS: {path: bytes}.
OPFS_FILES = """async () => {
  const out = {};
  const walk = async (dir, prefix) => {
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind === 'directory') await walk(handle, prefix + name + '/');
      else out[prefix + name] = (await handle.getFile()).size;
    }
  };
  await walk(await navigator.storage.getDirectory(), '');
  return out;
}"""


def opfs_files(page) -> dict[str, int]:
    return page.evaluate(OPFS_FILES)


def entry_of(page, entry_id: str) -> dict:
    return page.evaluate(
        """async (id) => {
          const root = await navigator.storage.getDirectory();
          const dir = await (await root.getDirectoryHandle('library')).getDirectoryHandle(id);
          return JSON.parse(await (await (await dir.getFileHandle('entry.json')).getFile()).text());
        }""",
        entry_id,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s", pytrace=False)


def downloaded(browser, pattern: str, before: set[Path], timeout: float = 120) -> Path:
    """The one new, complete file under Downloads/Demixer/ matching `pattern`."""

    def new():
        found = [p for p in (browser.downloads / "Demixer").glob(pattern) if p not in before and p.is_file()]
        found = [p for p in found if not p.name.endswith((".crdownload", ".part"))]
        return found[0] if len(found) == 1 else None

    return wait_for(new, timeout, f"a download matching {pattern}")


@pytest.fixture(scope="module")
def finished(browser, lithium, tmp_path_factory):
    """One job of a 6 s clip (one model segment), four stems, saved to Downloads and kept in the library."""
    tmp = tmp_path_factory.mktemp("library")
    clip = mixture(load_clip(lithium, seconds=6, start=16))
    song = write_song(tmp / "Lithium library.wav", clip)
    popup = browser.open_popup()
    try:
        start_job(popup, [song], stems="four", fmt="wav16")
        row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
        assert row["status"] == "done", row["text"]
        job = next(j for j in popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"] if j["name"] == song.name)
    finally:
        popup.close()
    return {"job": job, "id": job["id"], "folder": browser.downloads / "Demixer" / job["folder"], "frames": len(clip)}


def test_a_finished_job_is_an_entry_of_the_library(browser, popup, finished):
    entry = entry_of(popup, finished["id"])
    assert entry["version"] == 1 and entry["id"] == finished["id"]
    assert (entry["name"], entry["source"], entry["sampleRate"], entry["frames"]) == ("Lithium library", "file", 44100, finished["frames"])
    assert entry["stems"] == list(STEMS)
    assert [f["file"] for f in entry["files"]] == [f"{s}.wav" for s in STEMS]
    assert entry["play"] == {s: f"{s}.wav" for s in STEMS}  # WAV stems play as they are
    files = opfs_files(popup)
    prefix = f"library/{finished['id']}/"
    mine = {k[len(prefix):]: v for k, v in files.items() if k.startswith(prefix)}
    bins = math.ceil(finished["frames"] / entry["peaks"]["bin"])
    assert entry["peaks"]["bin"] == 1024
    for stem in STEMS:
        assert mine[entry["peaks"]["files"][stem]] == 2 * bins  # an (min, max) Int8 pair a bin
    assert entry["bytes"] == sum(v for k, v in mine.items() if k != "entry.json")
    # The library's files are the folder's, byte for byte, and no scratch is left.
    for stem in STEMS:
        assert (finished["folder"] / f"{stem}.wav").stat().st_size == mine[f"{stem}.wav"]
    assert not [k for k in files if k.startswith(("work/", "inbox/"))], files

    # The popup lists it, with Listen on the job and on the entry; Listen opens the player on it.
    row = popup.locator(f'#library-list li[data-id="{finished["id"]}"]')
    row.wait_for(timeout=10_000)
    text = row.inner_text()
    assert "Lithium library" in text and "0:06" in text and "4 stems" in text and "a file" in text, text
    assert "of 2 GB" in popup.inner_text("#library-usage")
    assert popup.locator(f'#jobs li.job[data-id="{finished["id"]}"] button.listen').count() == 1
    with browser.context.expect_page() as opened:
        row.locator("button.listen").click()
    player = opened.value
    player.wait_for_load_state()
    assert player.url == f"chrome-extension://{EXTENSION_ID}/player/player.html?id={finished['id']}"
    player.close()


def open_player(browser, entry_id: str):
    page = browser.context.new_page()
    page.on("console", lambda m: browser.console.append(f"player {m.type}: {m.text}"))
    page.goto(f"chrome-extension://{EXTENSION_ID}/player/player.html?id={entry_id}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    return page


def export(player, kind: str, **extra) -> str:
    """Clicks the player's export of `kind` and waits for its answer in the status line."""
    player.evaluate("() => { document.querySelector('#status').textContent = ''; }")
    if kind == "mix":
        player.select_option("#mix-format", extra["format"])
        player.click("#save-mix")
    elif kind == "zip":
        player.click("#save-zip")
    elif kind == "folder":
        player.click("#save-folder")
    elif kind == "stem":
        player.select_option("#stem-pick", extra["stem"])
        player.click("#save-stem")
    else:
        raise ValueError(kind)
    player.wait_for_function(
        "() => /Saved to|failed|could not/i.test(document.querySelector('#status').textContent)", timeout=180_000
    )
    status = player.inner_text("#status")
    assert "Saved to" in status, status
    return status


def read_float(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    assert rate == 44100
    return audio


def test_the_mix_you_hear_is_what_the_player_lets_through(browser, finished):
    stems = {s: read_float(finished["folder"] / f"{s}.wav") for s in STEMS}
    player = open_player(browser, finished["id"])
    try:
        # Vocals soloed (the keyboard's 4): the mix is the vocals stem.
        player.keyboard.press("4")
        assert player.evaluate("() => window.demixerPlayer.gains") == {"drums": 0, "bass": 0, "other": 0, "vocals": 1}
        before = set((browser.downloads / "Demixer").glob("*"))
        export(player, "mix", format="float32")
        solo = read_float(downloaded(browser, "Lithium library (*).wav", before))
        assert solo.shape == stems["vocals"].shape
        score = sdr(stems["vocals"], solo)
        print(f"\nvocals soloed: {score:.1f} dB against the vocals stem")
        assert score >= 60, score

        # Vocals muted, nothing soloed: the other three summed.
        player.keyboard.press("4")  # solo off again
        player.locator('[data-stem="vocals"] button.mute').click()
        assert player.evaluate("() => window.demixerPlayer.gains") == {"drums": 1, "bass": 1, "other": 1, "vocals": 0}
        before = set((browser.downloads / "Demixer").glob("*"))
        export(player, "mix", format="float32")
        karaoke = read_float(downloaded(browser, "Lithium library (*).wav", before))
        others = stems["drums"] + stems["bass"] + stems["other"]
        score = sdr(others, karaoke)
        print(f"vocals muted: {score:.1f} dB against drums + bass + other")
        assert score >= 60, score

        # Everything muted: digital silence, of the song's length.
        for stem in ("drums", "bass", "other"):
            player.locator(f'[data-stem="{stem}"] button.mute').click()
        assert set(player.evaluate("() => window.demixerPlayer.gains").values()) == {0}
        before = set((browser.downloads / "Demixer").glob("*"))
        export(player, "mix", format="wav16")
        silence, _ = sf.read(str(downloaded(browser, "Lithium library (*).wav", before)), dtype="int16")
        assert len(silence) == finished["frames"] and not silence.any()
    finally:
        player.close()


def test_the_zip_holds_every_stem_as_the_folder_has_it(browser, finished):
    player = open_player(browser, finished["id"])
    try:
        before = set((browser.downloads / "Demixer").glob("*"))
        export(player, "zip")
        archive = downloaded(browser, "Lithium library*.zip", before)
    finally:
        player.close()
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as z:
        names = sorted(z.namelist())
        assert names == sorted(f"Lithium library/{s}.wav" for s in STEMS), names
        for stem in STEMS:
            assert z.read(f"Lithium library/{stem}.wav") == (finished["folder"] / f"{stem}.wav").read_bytes(), stem


def test_the_stems_saved_again_are_the_folders(browser, finished):
    """Save stems makes a new folder (the first is never overwritten); Save stem one file beside it."""
    player = open_player(browser, finished["id"])
    try:
        status = export(player, "folder")
        assert "Downloads/Demixer/Lithium library (2)/" in status, status
        again = browser.downloads / "Demixer" / "Lithium library (2)"
        wait_for(lambda: all((again / f"{s}.wav").is_file() for s in STEMS), 60, "the folder saved again")
        for stem in STEMS:
            assert (again / f"{stem}.wav").read_bytes() == (finished["folder"] / f"{stem}.wav").read_bytes(), stem
        before = set((browser.downloads / "Demixer").glob("*"))
        export(player, "stem", stem="bass")
        one = downloaded(browser, "Lithium library (bass)*.wav", before)
        assert one.read_bytes() == (finished["folder"] / "bass.wav").read_bytes()
    finally:
        player.close()


def write_fake_entry(page, entry_id: str, name: str, created: int, size: int) -> None:
    """An entry written straight into the library's format, its one stem `size` bytes of zeros."""
    page.evaluate(
        """async ([id, name, created, size]) => {
          const root = await navigator.storage.getDirectory();
          const dir = await (await root.getDirectoryHandle('library', { create: true })).getDirectoryHandle(id, { create: true });
          const stem = await (await dir.getFileHandle('vocals.wav', { create: true })).createWritable();
          await stem.truncate(size);
          await stem.close();
          const entry = { version: 1, id, name, created, source: 'file', settings: {}, sampleRate: 44100,
            frames: Math.floor((size - 44) / 4), stems: ['vocals'], files: [{ stem: 'vocals', file: 'vocals.wav', bytes: size }],
            play: { vocals: 'vocals.wav' }, peaks: { bin: 1024, files: {} }, bytes: size };
          const w = await (await dir.getFileHandle('entry.json', { create: true })).createWritable();
          await w.write(JSON.stringify(entry));
          await w.close();
        }""",
        [entry_id, name, created, size],
    )


def test_removing_an_entry_frees_its_files(browser, popup):
    write_fake_entry(popup, "to-remove", "Song to remove", 1_000, 1_000_000)
    popup.select_option("#library", "2")  # asks the service worker for the library again
    row = popup.locator('#library-list li[data-id="to-remove"]')
    row.wait_for(timeout=10_000)
    row.locator("button.remove").click()
    row.wait_for(state="detached", timeout=10_000)
    left = [k for k in opfs_files(popup) if k.startswith("library/to-remove/")]
    assert left == [], left


def test_the_size_limit_removes_the_oldest_entry_and_says_so(browser, popup, lithium, tmp_path):
    # An old entry of 1.2 GB (real bytes in OPFS), then a job with the limit at 1 GB: the old entry goes.
    write_fake_entry(popup, "old-big-entry", "An old long song", 2_000, int(1.2 * GB))
    popup.select_option("#library", "1")
    popup.wait_for_function("() => document.querySelector('#library-notice').textContent.includes('An old long song')", timeout=30_000)
    assert popup.locator('#library-list li[data-id="old-big-entry"]').count() == 0
    notice = popup.inner_text("#library-notice")
    print("\npopup:", notice)
    assert 'the oldest song was removed: "An old long song"' in notice, notice
    assert not [k for k in opfs_files(popup) if k.startswith("library/old-big-entry/")]

    # A finished job past the limit removes the oldest entries too (a job that does not save to Downloads).
    write_fake_entry(popup, "old-entry-2", "Another old song", 3_000, int(1.2 * GB))
    clip = mixture(load_clip(lithium, seconds=3, start=22))
    song = write_song(tmp_path / "Lithium kept.wav", clip)
    popup.uncheck("#save")
    try:
        start_job(popup, [song], stems="two", fmt="wav16")
        row = wait_for_job(popup, song.name, {"done", "failed", "cancelled"}, JOB_TIMEOUT)
    finally:
        popup.check("#save")
    assert row["status"] == "done", row["text"]
    assert "in the library (not saved to Downloads)" in row["text"], row["text"]
    assert not (browser.downloads / "Demixer" / "Lithium kept").exists()
    popup.wait_for_function("() => document.querySelector('#library-notice').textContent.includes('Another old song')", timeout=30_000)
    assert popup.locator('#library-list li[data-id="old-entry-2"]').count() == 0
    assert popup.locator('#library-list li[data-name="Lithium kept"]').count() == 1
    assert not [k for k in opfs_files(popup) if k.startswith("library/old-entry-2/")]
    popup.select_option("#library", "2")  # back to the default for the tests that follow


def test_clearing_the_library_removes_every_byte(browser, popup):
    popup.locator("#library-list li").first.wait_for(timeout=20_000)  # the service worker's list has come
    popup.click("#library-clear")
    assert "Click again" in popup.inner_text("#library-clear")  # it asks first
    popup.click("#library-clear")
    popup.wait_for_function("() => document.querySelectorAll('#library-list li').length === 0", timeout=20_000)
    assert [k for k in opfs_files(popup) if k.startswith("library/")] == []
    assert popup.evaluate("() => chrome.storage.local.get('library')")["library"]["entries"] == []
    assert "No songs" in popup.inner_text("#library-usage")


def test_the_popup_fits_its_width_at_100_and_125_percent(browser, popup):
    """Nothing runs past the popup's right edge, and no menu or choice wraps, at the default zoom and at 125 %."""
    for zoom in (1, 1.25):
        popup.set_viewport_size({"width": round(404 * zoom), "height": 900})
        popup.evaluate(f"document.body.style.zoom = '{zoom}'")
        past = popup.evaluate("""() => {
            const edge = document.body.getBoundingClientRect().right + 1;
            return [...document.querySelectorAll('body *')].filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > edge)
              .map((e) => e.tagName + '#' + e.id);
        }""")
        assert past == [], (zoom, past)
        # The stems' choices and the menus' names each hold on one line.
        heights = popup.evaluate("""() => [...document.querySelectorAll('fieldset label, .menu, .switch')]
            .map((e) => [e.textContent.trim(), e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight || 16)])""")
        tall = [(text, h) for text, h in heights if h > 2.2]
        assert tall == [], (zoom, tall)
    popup.evaluate("document.body.style.zoom = ''")
