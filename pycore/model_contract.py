"""What the htdemucs ONNX graph expects and returns (mirrors models/htdemucs.json).

The graph takes one fixed-size segment: the waveform and its spectrogram, and
returns a frequency branch (complex-as-channels, still to be inverted) and a
time branch. A source's waveform is iSTFT(frequency branch) + time branch.
"""

SAMPLE_RATE = 44_100
SEGMENT = 343_980  # int(7.8 s * 44100): the length the model was trained on
SOURCES = ("drums", "bass", "other", "vocals")  # order of the model's outputs
N_FFT = 4096
HOP = 1024
FREQ_BINS = N_FFT // 2  # Demucs drops the Nyquist bin
FRAMES = -(-SEGMENT // HOP)  # ceil: 336

INPUT_WAVE = "input"  # float32 [1, 2, SEGMENT]
INPUT_SPEC = "onnx::ReduceMean_1"  # float32 [1, 4, FREQ_BINS, FRAMES]
OUTPUT_FREQ = "output"  # float32 [1, 4 sources, 4, FREQ_BINS, FRAMES]
OUTPUT_TIME = "5073"  # float32 [1, 4 sources, 2, SEGMENT]
