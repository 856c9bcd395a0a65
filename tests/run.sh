#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, builds the extension,
# runs the JavaScript unit tests (node --test) and then pytest.
#   bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  # Debian's Chromium is the browser of the end-to-end tests (Playwright never downloads its own).
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! command -v firefox-esr >/dev/null; then
  # Debian's Firefox ESR is the browser of the Firefox end-to-end test (driven over WebDriver BiDi).
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq firefox-esr >/dev/null
fi
if ! command -v ffmpeg >/dev/null; then
  # ffmpeg makes the containers of the input-alignment test and checks that every stem file opens without a warning.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi
if ! command -v pulseaudio >/dev/null; then
  # A PulseAudio server with a null sink is the audio output of headless Firefox in the player's real-time test.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pulseaudio >/dev/null
fi
command -v node >/dev/null || { echo "node (>= 18) is required: apt-get install -y nodejs npm" >&2; exit 1; }

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 build.py
node --test --test-reporter=spec tests/extension/  # the extension's own logic, without a browser (tests/extension/*.test.mjs)
DEMIXER_E2E_BUNDLE="$PWD/dist/chrome" python3 -m pytest "$@"  # built just above (dist/firefox beside it)
