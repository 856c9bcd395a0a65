from pycore.names import MAX_BYTES, song_folder


def test_plain_names_keep_their_stem():
    assert song_folder("Zeno - Signs.flac") == "Zeno - Signs"
    assert song_folder("song.tar.mp3") == "song.tar"
    assert song_folder("Song. Live at the Roxy") == "Song. Live at the Roxy"  # no extension to drop


def test_non_latin_names_survive():
    assert song_folder("Björk – 東京 ソング ♫.mp3") == "Björk – 東京 ソング ♫"
    assert song_folder("Сплин — Романс.flac") == "Сплин — Романс"
    assert song_folder("AC／DC.mp3") == "AC／DC"  # a fullwidth slash is an ordinary character


def test_separators_and_control_characters_are_replaced():
    assert song_folder("AC/DC - T.N.T..flac") == "AC_DC - T.N.T"
    assert song_folder("a\\b:c*?.wav") == "a_b_c__"
    assert song_folder("tab\tbell\x07.wav") == "tab_bell_"


def test_names_that_mean_a_folder_or_a_device_are_not_used_as_such():
    for name in ("..mp3", "...mp3", " .wav", ".", ""):
        assert song_folder(name) == "song", name
    assert song_folder("/.flac") == "_" and song_folder("../..") == "_"
    assert song_folder("con.mp3") == "_con" and song_folder("LPT1.wav") == "_LPT1"


def test_long_names_are_cut_on_a_character_boundary():
    for char in ("a", "é", "東", "🎵"):
        name = song_folder(char * 300 + ".mp3")
        assert 0 < len(name.encode("utf-8")) <= MAX_BYTES and set(name) == {char}, char
