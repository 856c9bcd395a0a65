"""What Basic Pitch's ONNX graph expects and returns (mirrors models/basic_pitch.json).

The graph takes two seconds of mono audio at 22,050 Hz and returns, for 172 frames
256 samples apart, each of the 88 piano keys' note and onset likelihoods, and a
pitch contour at a third of a semitone (264 bins).
"""

SAMPLE_RATE = 22_050
WINDOW = 43_844  # 2 s minus one hop
HOP = 256  # samples per output frame
WINDOW_FRAMES = 172
OVERLAP_FRAMES = 30  # consecutive windows share this many frames; half of it is cut from each side
LOWEST_MIDI = 21  # A0, the first of the 88 keys
PITCHES = 88
CONTOUR_BINS_PER_SEMITONE = 3

INPUT_AUDIO = "serving_default_input_2:0"  # float32 [1, WINDOW, 1]
OUTPUT_NOTE = "StatefulPartitionedCall:1"  # float32 [1, WINDOW_FRAMES, PITCHES]
OUTPUT_ONSET = "StatefulPartitionedCall:2"  # float32 [1, WINDOW_FRAMES, PITCHES]
OUTPUT_CONTOUR = "StatefulPartitionedCall:0"  # float32 [1, WINDOW_FRAMES, 3 * PITCHES]
