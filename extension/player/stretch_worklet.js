// The AudioWorklet module of the player's Stretch node (audioWorklet.addModule loads this
// file: the extension's CSP forbids the blob: URL the library would make its module from).
// Module imports are evaluated in order: stretch_fix.js wraps registerProcessor first, then
// the vendored library, seeing it runs in a worklet, registers its processor through it.
import './stretch_fix.js';
import '../vendor/stretch/SignalsmithStretch.mjs';
