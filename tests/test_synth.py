"""Synthetic harmonic tones for codec training (train.synth) and their share of an AudioPool's crops."""
import numpy as np
import pytest
import torch

from train.synth import MIDI_RANGE, harmonic_tone, melody_f0, random_spectrum

SR = 24_000


def _steady_window(f0: np.ndarray, n_fft: int, settle: int) -> int | None:
    """Start of an n_fft window whose pitch is constant and stayed so for `settle` samples before it."""
    for start in range(settle, len(f0) - n_fft, 512):
        if np.ptp(f0[start - settle:start + n_fft]) == 0.0:
            return start
    return None


def test_a_tone_has_the_harmonic_levels_it_drew():
    # the generator draws the melody, then the spectrum: replaying those draws predicts the tone's harmonics
    n, n_fft, settle = SR, 4096, int(0.09 * SR)  # past the longest attack
    checked = 0
    for seed in range(40):
        f0 = melody_f0(n, SR, np.random.default_rng(seed))
        start = _steady_window(f0, n_fft, settle)
        if start is None:
            continue  # vibrato or short notes in this one
        replay = np.random.default_rng(seed)
        melody_f0(n, SR, replay)
        db, centre, width, boost = random_spectrum(replay)
        x = harmonic_tone(n, SR, np.random.default_rng(seed))
        power = np.abs(np.fft.rfft(x[start:start + n_fft] * np.hanning(n_fft))) ** 2
        freqs = np.fft.rfftfreq(n_fft, 1 / SR)
        p0 = f0[start]
        k = np.arange(1, len(db) + 1)
        expected = db + boost * np.exp(-0.5 * (np.log2(k * p0 / centre) / width) ** 2)
        # energy around each harmonic, not its peak bin: no scalloping between bins
        measured = np.array([10 * np.log10(power[np.abs(freqs - h * p0) < 0.3 * p0].sum()) for h in k if h * p0 < 0.45 * SR])
        expected = expected[: len(measured)]
        loud = expected - expected[0] > -25  # well above breath noise (up to -15 dB in total) and leakage
        got = measured[loud] - measured[0]
        want = expected[loud] - expected[0]
        assert np.allclose(got, want, atol=0.5), (seed, np.round(got - want, 1))
        checked += 1
    assert checked >= 5


def test_no_harmonic_above_nine_tenths_of_nyquist_and_melodies_stay_in_range():
    lo, hi = (440.0 * 2 ** ((m - 69) / 12) for m in MIDI_RANGE)
    for seed in range(20):
        f0 = melody_f0(SR, SR, np.random.default_rng(seed))
        assert f0.min() >= lo * 2 ** (-0.41 / 12) and f0.max() <= hi * 2 ** (0.41 / 12)  # vibrato ≤ 40 cents
    # without breath noise (seeded so), the spectrum above 0.45·sr holds only window leakage
    quiet = 0
    for seed in range(30):
        x = harmonic_tone(SR, SR, np.random.default_rng(seed))
        spec = np.abs(np.fft.rfft(x * np.hanning(SR))) ** 2
        f = np.fft.rfftfreq(SR, 1 / SR)
        ratio = spec[f > 0.46 * SR].sum() / spec.sum()
        if ratio < 1e-7:
            quiet += 1
    assert quiet >= 5  # about half the tones have no breath noise: those are band-limited


def test_tones_are_reproducible_levelled_and_varied():
    a = harmonic_tone(12_000, SR, np.random.default_rng(3))
    b = harmonic_tone(12_000, SR, np.random.default_rng(3))
    c = harmonic_tone(12_000, SR, np.random.default_rng(4))
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.allclose(a, c)
    peaks = [np.abs(harmonic_tone(12_000, SR, np.random.default_rng(s))).max() for s in range(20)]
    assert min(peaks) >= 10 ** (-20.01 / 20) and max(peaks) <= 10 ** (-2.99 / 20)
    levels = [random_spectrum(np.random.default_rng(s))[0] for s in range(300)]
    hollow = sum(np.mean(db[1:9:2] - db[0:8:2]) < -12 for db in levels)  # h2,4,6,8 against h1,3,5,7
    assert 60 < hollow < 140  # about a third of the spectra have their even harmonics far down


def test_audio_pool_replaces_its_share_of_crops_with_synthetic_tones(tmp_path):
    from core.audio import write_audio_atomic
    from train.common import AudioPool

    files = [tmp_path / "dc.flac"]
    write_audio_atomic(files[0], np.full(24_000, 0.25, np.float32), SR, subtype="PCM_16")
    for share in (0.0, 0.3):
        pool = AudioPool(files, SR, 1000, synthetic_share=share)
        x = pool.crops(1000, 2000, torch.Generator().manual_seed(1))
        synthetic = (x[:, 0] - x[:, 0, :1]).abs().amax(dim=1) > 1e-3  # a file crop is constant
        assert abs(float(synthetic.float().mean()) - share) < 0.06, share
        again = pool.crops(1000, 2000, torch.Generator().manual_seed(1))
        assert torch.equal(x, again)  # drawn from the generator: a resumed run sees the same batches
    with pytest.raises(ValueError, match="synthetic share"):
        AudioPool(files, SR, 1000, synthetic_share=1.0)
