"""Demixer's separation core: song in, stems out, with Demucs v4 (htdemucs).

The data path: a mix source (sources.py) -> standardise and cut into segments
(separate.py) -> spectrogram (spectrogram.py) -> the model through a runner
(onnx_runner.py natively, onnxruntime-web in the browser) -> inverse spectrogram,
overlap-add -> a stem sink (stem_files.py natively, browser.py in the extension).
numpy is the only dependency, so the same code runs in Pyodide.
"""

__version__ = "0.1.0"
