"""Melody metrics: f0 tracks with PESTO (10 ms frames, fractional MIDI) and frame-wise comparisons of two tracks.

A frame is *voiced* when PESTO's confidence is at least `confidence` (default 0.5; silence scores about 0.1,
a steady tone 1.0) and the frame is no more than `gate_db` (default 40 dB) below the loudest frame of its clip;
the first and last frame of a clip never count (PESTO's CQT pads past the ends and misjudges them).
Input and output are compared on the frames voiced in both (the output is time-aligned with the input: the
renders remove their latency), with Δ = output − input in semitones:

    pitch_acc       raw pitch accuracy: fraction of those frames with |Δ| ≤ 0.5 semitone (50 cents)
    chroma_acc      octave-tolerant variant: |Δ folded to [−6, 6)| ≤ 0.5, so octave errors count as right
    pitch_distance  mean |Δ| in semitones over those frames (no folding: an octave error costs 12)
    voiced_overlap  frames voiced in both / frames voiced in the input (an output that goes silent or noisy
                    shows here, not in the accuracies)

Pitch distance: arXiv 2409.06096 reports melody preservation as a pitch distance ("DPD", lower is better)
between the pitch contours of input and output; the exact formula of the paper was not available to us, so
this module defines it as above: the mean absolute difference, in semitones, of the two f0 tracks over the
frames voiced in both. A constant 100-cent shift scores 1.0.

Scores add up over clips frame by frame (`MelodyScore.__add__`), so a set's accuracy weighs every voiced frame
equally whatever the clip lengths.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

STEP_MS = 10.0
CONFIDENCE = 0.5
GATE_DB = 40.0
PESTO_MODEL = "mir-1k_g7"
EDGE_FRAMES = 1  # frames at each end of a clip that never count as voiced


@dataclass
class PitchTrack:
    semitones: np.ndarray  # fractional MIDI note number per frame
    confidence: np.ndarray  # PESTO's voicing confidence in [0, 1]
    level_db: np.ndarray  # frame RMS in dBFS (20 ms window centred on the frame)
    step_ms: float = STEP_MS

    def __len__(self) -> int:
        return len(self.semitones)

    def voiced(self, confidence: float = CONFIDENCE, gate_db: float = GATE_DB) -> np.ndarray:
        loud = self.level_db >= (np.max(self.level_db) if len(self) else 0.0) - gate_db
        v = (self.confidence >= confidence) & loud & np.isfinite(self.semitones) & (self.level_db > -100)
        v[:EDGE_FRAMES] = False  # PESTO's CQT pads past the clip: its first and last estimates are unreliable
        v[len(v) - EDGE_FRAMES:] = False
        return v

    def crop(self, n: int) -> "PitchTrack":
        return PitchTrack(self.semitones[:n], self.confidence[:n], self.level_db[:n], self.step_ms)


def frame_levels_db(x: np.ndarray, sr: int, n_frames: int, step_ms: float = STEP_MS) -> np.ndarray:
    """RMS in dBFS of a 20 ms window centred on each frame time k·step."""
    x = np.asarray(x, dtype=np.float64)
    half = max(1, int(round(0.01 * sr)))
    centres = np.round(np.arange(n_frames) * step_ms * sr / 1000).astype(int)
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.clip(centres - half, 0, len(x))
    hi = np.clip(centres + half, 0, len(x))
    energy = (c[hi] - c[lo]) / np.maximum(hi - lo, 1)
    return 10 * np.log10(energy + 1e-12)


class PitchTracker:
    """PESTO with its model loaded once per sample rate (pesto.predict reloads it on every call)."""

    def __init__(self, step_ms: float = STEP_MS, model_name: str = PESTO_MODEL, device: str = "cpu"):
        self.step_ms, self.model_name, self.device = step_ms, model_name, device
        self._models: dict[int, object] = {}

    def _model(self, sr: int):
        if sr not in self._models:
            import pesto

            self._models[sr] = pesto.load_model(self.model_name, self.step_ms, sampling_rate=sr).to(self.device)
        return self._models[sr]

    def __call__(self, x: np.ndarray, sr: int) -> PitchTrack:
        import torch

        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        if len(x) < sr * self.step_ms / 1000 * 2:  # PESTO needs a few frames
            x = np.concatenate([x, np.zeros(int(sr * self.step_ms / 1000 * 2), np.float32)])
        with torch.inference_mode():
            pred, conf, _vol, _act = self._model(sr)(torch.from_numpy(x).to(self.device), sr=sr,
                                                     convert_to_freq=False, return_activations=True)
        pred = pred.reshape(-1).cpu().double().numpy()
        conf = conf.reshape(-1).cpu().double().numpy()
        return PitchTrack(pred, conf, frame_levels_db(x, sr, len(pred), self.step_ms), self.step_ms)


_DEFAULT: PitchTracker | None = None


def track_pitch(x: np.ndarray, sr: int) -> PitchTrack:
    """f0 track of mono audio with a shared PESTO tracker."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PitchTracker()
    return _DEFAULT(x, sr)


@dataclass
class MelodyScore:
    """Frame counts; add scores to pool clips, read the rates from the properties."""
    ref_voiced: int = 0  # frames voiced in the reference (input)
    both_voiced: int = 0
    within: int = 0  # |Δ| ≤ tolerance
    chroma_within: int = 0  # octave-folded |Δ| ≤ tolerance
    abs_sum: float = 0.0  # Σ|Δ| in semitones

    def __add__(self, other: "MelodyScore") -> "MelodyScore":
        return MelodyScore(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    @property
    def pitch_acc(self) -> float:
        return self.within / self.both_voiced if self.both_voiced else float("nan")

    @property
    def chroma_acc(self) -> float:
        return self.chroma_within / self.both_voiced if self.both_voiced else float("nan")

    @property
    def pitch_distance(self) -> float:
        return self.abs_sum / self.both_voiced if self.both_voiced else float("nan")

    @property
    def voiced_overlap(self) -> float:
        return self.both_voiced / self.ref_voiced if self.ref_voiced else float("nan")

    def summary(self) -> dict:
        return dict(pitch_acc=self.pitch_acc, chroma_acc=self.chroma_acc, pitch_distance=self.pitch_distance,
                    voiced_overlap=self.voiced_overlap, voiced_frames=self.both_voiced)


def frame_errors(ref: PitchTrack, est: PitchTrack, confidence: float = CONFIDENCE, gate_db: float = GATE_DB,
                 transpose: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame by frame, tracks cut to the shorter one: (voiced in `ref`, voiced in both, Δ = output − input moved by
    `transpose` in semitones on the frames voiced in both). transpose: semitones the output was asked to move (the
    effect's transpose); an array: per frame of `ref` (a register fold's moves)."""
    n = min(len(ref), len(est))
    ref, est = ref.crop(n), est.crop(n)
    rv, ev = ref.voiced(confidence, gate_db), est.voiced(confidence, gate_db)
    both = rv & ev
    moved = np.asarray(transpose, np.float64)[:n][both] if np.ndim(transpose) else transpose
    return rv, both, est.semitones[both] - (ref.semitones[both] + moved)


def pitch_class_kept(d: np.ndarray, tolerance: float = 0.5) -> np.ndarray:
    """Per frame, whether Δ (semitones) is within `tolerance` of a whole number of octaves."""
    return np.abs((d + 6.0) % 12.0 - 6.0) <= tolerance + 1e-9


def compare_tracks(ref: PitchTrack, est: PitchTrack, confidence: float = CONFIDENCE, gate_db: float = GATE_DB,
                   tolerance: float = 0.5, transpose: float | np.ndarray = 0.0) -> MelodyScore:
    """Score `est` (output) against `ref` (input) frame by frame (frame_errors); the reference is the input moved
    by `transpose`."""
    rv, both, d = frame_errors(ref, est, confidence, gate_db, transpose)
    return MelodyScore(int(rv.sum()), int(both.sum()), int(np.sum(np.abs(d) <= tolerance + 1e-9)),
                       int(np.sum(pitch_class_kept(d, tolerance))), float(np.sum(np.abs(d))))


def pitch_class_by_band(ref: PitchTrack, est: PitchTrack, band: int = 4, confidence: float = CONFIDENCE,
                        gate_db: float = GATE_DB, tolerance: float = 0.5, transpose: float | np.ndarray = 0.0
                        ) -> dict[int, list[int]]:
    """Lowest MIDI note of each `band`-semitone band of the input's pitch → [frames whose pitch class the output
    kept, frames voiced in both]: where in the input's range a transfer keeps the melody (octaves forgiven)."""
    _, both, d = frame_errors(ref, est, confidence, gate_db, transpose)
    kept = pitch_class_kept(d, tolerance)
    lows = (np.floor(ref.semitones[: len(both)][both] / band) * band).astype(int)
    return {int(lo): [int(np.sum(kept[lows == lo])), int(np.sum(lows == lo))] for lo in np.unique(lows)}


def melody_score(ref_audio: np.ndarray, est_audio: np.ndarray, sr: int, tracker: PitchTracker | None = None,
                 confidence: float = CONFIDENCE, gate_db: float = GATE_DB) -> MelodyScore:
    """Track both signals with PESTO and compare them (see the module docstring for the definitions)."""
    tracker = tracker or PitchTracker()
    return compare_tracks(tracker(ref_audio, sr), tracker(est_audio, sr), confidence, gate_db)
