"""core.pitchshift: exact pitch for sines and harmonic tones, level kept, exact identity at 0 semitones, the same
output whatever the blocks, offline output aligned with its input."""
import numpy as np
import pytest

from core.pitchshift import FRAME, PitchShifter, RegisterFold, frame_f0, ratio, shift_pitch, shift_track

SR = 24_000


def _tone(freqs, seconds=1.5, amps=None):
    t = np.arange(int(seconds * SR)) / SR
    amps = amps or [0.5 / len(freqs)] * len(freqs)
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps)).astype(np.float32)


def _peaks(y, n_peaks=1, n=16384):
    """The n largest spectral peaks' frequencies (parabolic interpolation on the log magnitude), ascending."""
    seg = y[len(y) // 2 - n // 2: len(y) // 2 + n // 2] * np.hanning(n)
    mag = np.log(np.abs(np.fft.rfft(seg)) + 1e-12)
    local = np.flatnonzero((mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:])) + 1
    out = []
    for k in sorted(local, key=lambda k: -mag[k])[:n_peaks]:
        a, b, c = mag[k - 1: k + 2]
        out.append((k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / n)
    return sorted(out)


@pytest.mark.parametrize("f", [110.0, 440.0])
@pytest.mark.parametrize("semitones", [-12, 12, 7, -5])
def test_a_sine_moves_by_exactly_the_semitones_asked_and_keeps_its_level(f, semitones):
    x = _tone([f])
    y = shift_pitch(x, semitones)
    assert len(y) == len(x)
    (got,) = _peaks(y)
    assert got == pytest.approx(f * 2 ** (semitones / 12), rel=1e-3)  # within 2 cents (as the FFT peak can tell)
    inner = slice(SR // 4, -SR // 4)
    assert np.sqrt(np.mean(y[inner] ** 2)) == pytest.approx(np.sqrt(np.mean(x[inner] ** 2)), rel=0.10)


def test_a_harmonic_tone_stays_harmonic_an_octave_down():
    # a violin-like A4 with four partials: every partial moves by the same ratio, so the tone stays one note
    x = _tone([440.0, 880.0, 1320.0, 1760.0], amps=[0.3, 0.15, 0.1, 0.05])
    got = _peaks(shift_pitch(x, -12), n_peaks=4)
    np.testing.assert_allclose(got, [220.0, 440.0, 660.0, 880.0], rtol=3e-4)


def test_zero_semitones_is_the_input_delayed_exactly():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    s = PitchShifter(0)
    y = s(x)
    assert s.delay == FRAME
    np.testing.assert_allclose(y[: s.delay], 0.0, atol=1e-6)
    np.testing.assert_allclose(y[s.delay:], x[: -s.delay], atol=1e-6)
    np.testing.assert_array_equal(shift_pitch(x, 0), x)


def test_the_output_does_not_depend_on_the_blocks():
    x = _tone([196.0, 392.0]) + 0.01 * np.random.default_rng(1).standard_normal(int(1.5 * SR)).astype(np.float32)
    whole = PitchShifter(-12)(x)
    s, rng, out, i = PitchShifter(-12), np.random.default_rng(2), [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        out.append(s(x[i:i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(out), whole)


def test_offline_output_is_aligned_with_its_input_and_silence_stays_silent():
    x = np.zeros(SR, np.float32)
    x[SR // 2:] = _tone([330.0], seconds=0.5)
    for semitones in (-12, 12):
        y = shift_pitch(x, semitones)
        onset = np.flatnonzero(np.abs(y) > 0.05)[0]
        assert abs(onset - SR // 2) <= FRAME // 4  # within one hop of the analysis, not a frame late
        assert np.abs(y[: SR // 2 - FRAME]).max() == 0.0
    assert ratio(12) == 2.0 and ratio(-12) == 0.5


def test_overlaps_whose_windows_do_not_sum_flat_are_refused():
    with pytest.raises(ValueError, match="overlap at least 3"):
        PitchShifter(12, frame=1024, overlap=2)
    with pytest.raises(ValueError, match="multiple"):
        PitchShifter(12, frame=1000, overlap=3)


# ---------------------------------------------------------------- register fold
def _note(midi, seconds, partials=7):
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return _tone([f * k for k in range(1, partials + 1) if f * k < SR / 2], seconds,
                 [0.3 / k for k in range(1, partials + 1) if f * k < SR / 2])


@pytest.mark.parametrize("f", [60.0, 110.0, 261.63, 440.0, 1000.0])
def test_yin_reads_the_fundamental_of_sines_and_of_tones_missing_their_even_harmonics(f):
    t = np.arange(FRAME) / SR
    sine = np.sin(2 * np.pi * f * t)
    odd = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 16, 2) if f * k < SR / 2)  # clarinet-like
    for x in (sine, odd):
        assert frame_f0(x, SR) == pytest.approx(f, rel=0.005)  # within 9 cents
    assert frame_f0(np.random.default_rng(0).normal(size=FRAME), SR) is None  # noise has no period
    assert frame_f0(np.zeros(FRAME), SR) is None
    assert frame_f0(10 ** (-60 / 20) * np.sqrt(2) * sine, SR) is None  # under the −55 dBFS floor: no pitch


def test_yin_never_reads_a_pitch_out_of_its_range_from_frames_that_begin_in_silence():
    # the shifter's first frames start with zeros, and so does every frame after a digital gap: a nearly flat
    # difference function there once gave pitches of −6857 Hz or infinity (and a fold that never returned)
    rng = np.random.default_rng(0)
    t = np.arange(FRAME) / SR
    for _ in range(500):
        k = int(rng.integers(400, FRAME - 100))
        tail = rng.normal(size=FRAME - k) if rng.random() < 0.5 else np.sin(2 * np.pi * rng.uniform(60, 1500) * t[k:])
        f = frame_f0(np.r_[np.zeros(k), rng.choice([1e-3, 0.01, 0.3]) * tail], SR)
        assert f is None or 55.0 <= f <= 2100.0
    fold = RegisterFold(60)
    assert [fold(m) for m in (np.inf, np.nan, np.inf)] == [0, 0, 0] and fold.moves == 0  # as unvoiced


def test_the_fold_moves_by_octaves_after_its_hold_and_not_back_at_the_edge():
    fold = RegisterFold(60, half_width=8, hold=3)  # register 52–68
    assert [fold(m) for m in (64, 70, 70)] == [0, 0, 0]  # two frames out of the register: not yet
    assert fold(70) == -12 and fold.moves == 1  # the third: an octave down (58)
    assert [fold(m) for m in (69.4, 68.6, 69.4, None, 66)] == [-12] * 5  # vibrato round the edge: held
    assert [fold(m) for m in (63, 63, 63)] == [-12, -12, 0]  # 51 is under the register: back up
    assert [fold(m) for m in (90, 90, 90)] == [0, 0, -24]  # two octaves in one move
    assert [fold(m) for m in (40, None, 40, 40)] == [-24, -24, -24, -24]  # an unvoiced frame breaks the count
    with pytest.raises(ValueError, match="wider than an octave"):
        RegisterFold(60, half_width=6)


def test_a_melody_leaving_the_register_is_folded_into_it_and_its_shifts_are_recorded():
    melody = [(60, 0.5), (72, 0.5), (60, 0.5), (48, 0.5)]  # C4, C5, C4, C3 into 60 ± 8: C4, C4, C4, C4
    x = np.concatenate([_note(m, s) for m, s in melody])
    y, shifts = shift_track(x, 0, fold_centre=60, sample_rate=SR)
    assert len(y) == len(shifts) == len(x)
    starts = np.cumsum([0] + [int(s * SR) for _, s in melody])
    for (m, _), a, b in zip(melody, starts[:-1], starts[1:]):
        mid = slice(a + 3 * FRAME, b - FRAME)  # past the hold and the frames that straddle the change
        want = 60 - m
        assert np.all(shifts[mid] == want)
        (got,) = _peaks(y[mid], n=4096)
        assert got == pytest.approx(440 * 2 ** ((60 - 69) / 12), rel=2e-3)
    first = slice(FRAME, starts[1] - FRAME)
    assert np.allclose(y[first], x[first], atol=1e-5)  # unshifted frames are the input itself
    # the recorded shift changes where the output's pitch does: from each note's start until the change, the new
    # note at the old move (the 3 frames the fold waits); from just after it on, the new move
    for j in np.flatnonzero(np.diff(shifts)) + 1:
        k = np.searchsorted(starts, j, side="right") - 1
        note, start = melody[k][0], starts[k]
        assert j - start < 1200  # the 3 frames of the hold and the frame's own reach, 50 ms
        for at, move in ((slice(j - 640, j - 128), shifts[j - 1]), (slice(j + 128, j + 640), shifts[j])):
            want = 440 * 2 ** ((note + move - 69) / 12)  # 512 samples hold 2.7 periods of the lowest, C3
            assert frame_f0(y[at], SR, fmin=100) == pytest.approx(want, rel=0.01), (j, move)
    # streamed in any blocks, the same samples (the fold decides per frame, not per block)
    s = PitchShifter(0, fold=RegisterFold(60), sample_rate=SR)
    cuts = np.cumsum(np.random.default_rng(1).integers(1, 3000, size=40))
    streamed = np.concatenate([s(part) for part in np.split(np.concatenate([x, np.zeros(s.delay, np.float32)]),
                                                             cuts[cuts < len(x)])])
    assert np.array_equal(streamed[s.delay:], y)
    assert s.fold.moves == 3
