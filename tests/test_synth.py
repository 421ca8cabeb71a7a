"""Synthetic harmonic tones for codec training (train.synth) and their share of an AudioPool's crops."""
import numpy as np
import pytest
import torch

from train.synth import (FADE, HOLLOW_SHARE, MIDI_RANGE, TOP, harmonic_gain, harmonic_tone, melody_f0, n_harmonics, note_envelope,
                         random_spectrum)

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
        db, centre, width, boost = random_spectrum(replay, n_harmonics(f0, SR))
        x = harmonic_tone(n, SR, np.random.default_rng(seed), breath=False)
        power = np.abs(np.fft.rfft(x[start:start + n_fft] * np.hanning(n_fft))) ** 2
        freqs = np.fft.rfftfreq(n_fft, 1 / SR)
        p0 = f0[start]
        k = np.arange(1, len(db) + 1)
        expected = db + boost * np.exp(-0.5 * (np.log2(k * p0 / centre) / width) ** 2)
        # energy around each harmonic, not its peak bin: no scalloping between bins
        below_fade = k[k * p0 < (TOP - FADE) * SR]
        measured = np.array([10 * np.log10(power[np.abs(freqs - h * p0) < 0.3 * p0].sum()) for h in below_fade])
        expected = expected[: len(measured)]
        loud = expected - expected[0] > -40  # well above the window's leakage
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
    # a harmonic keeps its level up to (TOP - FADE)·sr, fades linearly to 0 at TOP·sr and stays silent above
    fk = np.array([0.2, TOP - FADE, TOP - FADE / 2, TOP, 0.49]) * SR
    gain = harmonic_gain(fk, -6.0, 1000.0, 1.0, 0.0, SR)
    assert np.allclose(gain, [10 ** (-6 / 20), 10 ** (-6 / 20), 0.5 * 10 ** (-6 / 20), 0.0, 0.0])
    f = np.fft.rfftfreq(SR, 1 / SR)
    for seed in range(30):  # without breath noise, above TOP·sr there is only the window's leakage
        x = harmonic_tone(SR, SR, np.random.default_rng(seed), breath=False)
        spec = np.abs(np.fft.rfft(x * np.hanning(SR))) ** 2
        assert spec[f > (TOP + 0.01) * SR].sum() / spec.sum() < 1e-5, seed  # -50 dB: the envelopes' corners
        top = spec[(f > (TOP - FADE - 0.02) * SR) & (f < (TOP - FADE) * SR)].sum()  # the band reaches the top
        assert top / spec.sum() > 1e-9, seed


def test_note_envelope_has_no_steps():
    # legato notes carry the level across note changes, detached ones ramp from and to silence: no clicks
    for seed in range(40):
        f0 = melody_f0(SR, SR, np.random.default_rng(seed))
        env = note_envelope(f0, SR, np.random.default_rng(seed + 100))
        assert np.abs(np.diff(env)).max() < 1.3 / (0.005 * SR), seed  # steepest: a 5 ms attack to 1.2
        assert env.min() >= 0.0 and env.max() <= 1.2 + 1e-9


def test_tones_are_reproducible_levelled_and_varied():
    a = harmonic_tone(12_000, SR, np.random.default_rng(3))
    b = harmonic_tone(12_000, SR, np.random.default_rng(3))
    c = harmonic_tone(12_000, SR, np.random.default_rng(4))
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.allclose(a, c)
    peaks = [np.abs(harmonic_tone(12_000, SR, np.random.default_rng(s))).max() for s in range(20)]
    assert min(peaks) >= 10 ** (-20.01 / 20) and max(peaks) <= 10 ** (-2.99 / 20)
    levels = [random_spectrum(np.random.default_rng(s), 16)[0] for s in range(300)]
    hollow = sum(np.mean(db[1:9:2] - db[0:8:2]) < -12 for db in levels)  # h2,4,6,8 against h1,3,5,7
    # HOLLOW_SHARE of the spectra have their even harmonics 10-40 dB down; the shallowest miss this -12 dB mark
    assert 0.75 * HOLLOW_SHARE < hollow / 300 < HOLLOW_SHARE + 0.05


def test_audio_pool_replaces_its_share_of_crops_with_synthetic_tones(tmp_path):
    from core.audio import write_audio_atomic
    from train.common import AudioPool

    files = [tmp_path / "dc.flac"]
    write_audio_atomic(files[0], np.full(24_000, 0.25, np.float32), SR, subtype="PCM_16")
    for share in (0.0, 0.3):
        pool = AudioPool(files, SR, 1000, synthetic_share=share)
        x = pool.crops(1000, 2000, torch.Generator().manual_seed(1))
        synthetic = (x[:, 0] - x[:, 0, :1]).abs().amax(dim=1) > 1e-3  # a file crop is constant
        assert abs(float(synthetic.float().mean()) - share) < 0.06 and (share or not synthetic.any()), share
        again = pool.crops(1000, 2000, torch.Generator().manual_seed(1))
        assert torch.equal(x, again)  # drawn from the generator: a resumed run sees the same batches
    # a pool without synthetic tones draws exactly as before they existed: same crops, same generator state after
    g0, g1 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    plain = AudioPool(files, SR, 1000).crops(50, 2000, g0)
    zero = AudioPool(files, SR, 1000, synthetic_share=0.0).crops(50, 2000, g1)
    assert torch.equal(plain, zero) and torch.equal(g0.get_state(), g1.get_state())
    g2 = torch.Generator().manual_seed(2)
    AudioPool(files, SR, 1000, synthetic_share=0.3).crops(50, 2000, g2)
    assert not torch.equal(g0.get_state(), g2.get_state())  # the synthetic draws come from the same generator
    with pytest.raises(ValueError, match="synthetic share"):
        AudioPool(files, SR, 1000, synthetic_share=1.0)


def test_audio_pool_darkens_its_share_of_crops_and_draws_nothing_without_it(tmp_path):
    from core.audio import write_audio_atomic
    from train.common import AudioPool

    files = [tmp_path / "hiss.flac"]  # white noise: its top is as loud as its body, until darkened
    write_audio_atomic(files[0], (0.1 * np.random.default_rng(0).standard_normal(48_000)).astype(np.float32), SR,
                       subtype="PCM_24")
    g0, g1 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    plain = AudioPool(files, SR, 1000).crops(50, 2000, g0)
    zero = AudioPool(files, SR, 1000, dark_share=0.0).crops(50, 2000, g1)
    assert torch.equal(plain, zero) and torch.equal(g0.get_state(), g1.get_state())
    x = AudioPool(files, SR, 1000, dark_share=0.4).crops(1000, 2000, torch.Generator().manual_seed(1))
    spec = torch.fft.rfft(x[:, 0]).abs() ** 2
    f = torch.fft.rfftfreq(2000, 1 / SR)
    top = 10 * torch.log10(spec[:, f > 10_000].mean(1) / spec[:, (f > 200) & (f < 1400)].mean(1))
    dark = top < -6  # the mildest draw takes ≥ 8.8 dB from 10 kHz up; a white crop's top is within 2 dB of its body
    assert abs(float(dark.float().mean()) - 0.4) < 0.06 and float(top[~dark].abs().max()) < 3
    with pytest.raises(ValueError, match="dark share"):
        AudioPool(files, SR, 1000, dark_share=1.5)
