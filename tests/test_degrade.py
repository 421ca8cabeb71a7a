"""core.degrade: each effect against its definition (SNR, decay time, cutoff, step size), and the chains' bounds."""
import numpy as np
import pytest

from core import degrade

SR = 24_000


def _tone(f=440.0, seconds=1.0, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("snr", [20.0, 30.0, 40.0])
@pytest.mark.parametrize("colour", ["pink", "white"])
def test_noise_is_added_at_the_asked_snr(snr, colour):
    x = _tone()
    y = degrade.add_noise(x, np.random.default_rng(0), snr, colour)
    n = y - x
    assert 10 * np.log10(np.mean(x ** 2) / np.mean(n ** 2)) == pytest.approx(snr, abs=0.05)


def test_room_impulse_decays_60_db_at_rt60():
    h = degrade.room_impulse(np.random.default_rng(0), SR, rt60=0.5, direct_to_reverb_db=10.0)
    assert h[0] == 1.0 and len(h) == int(0.5 * SR)
    tail = h[1:]
    assert 10 * np.log10(1.0 / np.sum(tail ** 2)) == pytest.approx(10.0, abs=1e-3)  # direct-to-reverberant ratio
    env = lambda a, b: np.sqrt(np.mean(h[int(a * SR):int(b * SR)] ** 2))  # noqa: E731
    assert 20 * np.log10(env(0.40, 0.45) / env(0.05, 0.10)) == pytest.approx(-60 * 0.35 / 0.5, abs=2.0)


def test_lowpass_and_tilt_shape_the_spectrum_as_defined():
    lo, hi = _tone(200.0), _tone(9000.0)
    a = 1 - np.exp(-2 * np.pi * 2000 / SR)
    for f, x in ((200.0, lo), (9000.0, hi)):
        w = 2 * np.pi * f / SR  # one-pole magnitude: a / |1 − (1−a)e^{−jw}|
        expect = a / abs(1 - (1 - a) * np.exp(-1j * w))
        got = np.std(degrade.one_pole_lowpass(x, SR, 2000.0)[SR // 2:]) / np.std(x[SR // 2:])
        assert got == pytest.approx(expect, rel=0.02)
    up = degrade.eq_tilt(_tone(2000.0), SR, 1.5)  # one octave above the 1 kHz pivot: +1.5 dB
    assert 20 * np.log10(np.std(up) / np.std(_tone(2000.0))) == pytest.approx(1.5, abs=0.05)


def test_bell_lifts_its_centre_by_its_gain_and_one_width_away_by_exp_minus_half():
    for f, expect in ((1000.0, -6.0), (2000.0, -6.0 * np.exp(-0.5)), (16.0, 0.0)):
        x = _tone(f)
        y = degrade.bell_eq(x, SR, 1000.0, -6.0, 1.0)
        assert 20 * np.log10(np.std(y) / np.std(x)) == pytest.approx(expect, abs=0.05), f


def test_colour_draws_tilt_and_bells_within_their_bounds(monkeypatch):
    """The draws themselves: a tilt within ±1.5 dB/oct, 0-3 bells of ±6 dB at 100 Hz-8 kHz, σ 0.2-1 octave."""
    tilts, bells = [], []
    monkeypatch.setattr(degrade, "eq_tilt", lambda x, sr, db: tilts.append(db) or x)
    monkeypatch.setattr(degrade, "bell_eq", lambda x, sr, *a: bells[-1].append(a) or x)
    for seed in range(200):
        bells.append([])
        degrade.colour(_tone(), np.random.default_rng(seed), SR)
    assert len(tilts) == 200 and max(map(abs, tilts)) <= 1.5 and np.std(tilts) > 0.5
    assert {len(b) for b in bells} == {0, 1, 2, 3}
    every = [a for b in bells for a in b]
    assert all(100 <= c <= 8000 and abs(g) <= 6 and 0.2 <= w <= 1 for c, g, w in every)
    assert min(c for c, _, _ in every) < 200 and max(c for c, _, _ in every) > 4000


def test_quantize_uses_the_bit_depth_step():
    x = np.linspace(-0.9, 0.9, 1001).astype(np.float32)
    y = degrade.quantize(x, 6)
    step = 2 / 64
    assert np.max(np.abs(y - x)) <= step / 2 + 1e-7
    assert len(np.unique(y)) <= 64


def test_band_limit_keeps_what_is_under_its_cutoff_exactly_and_removes_the_rest():
    under, over = _tone(3000.0), _tone(7000.0)  # whole periods in one second: each tone is one FFT bin
    np.testing.assert_allclose(degrade.band_limit(under + over, SR, 5000.0), under, atol=1e-6)
    np.testing.assert_allclose(degrade.band_limit(under, SR, 3000.0), 0.0, atol=1e-6)  # "at and above" the cutoff
    assert degrade.band_limit(under[:-1], SR, 5000.0).shape == (SR - 1,)  # odd lengths keep their length


def _judge_chain_before_session_38(x, rng, sr):
    """The chain the shipped judge trained with, as it was written (the reference for the default)."""
    for op in rng.permutation(5)[: rng.integers(1, 3)]:
        if op == 0:
            x = degrade.one_pole_lowpass(x, sr, rng.uniform(2000, 8000))
        elif op == 1:
            x = degrade.add_noise(x, rng, rng.uniform(10, 30))
        elif op == 2:
            x = degrade.quantize(x, int(rng.integers(6, 11)))
        elif op == 3:
            x = degrade.reverb(x, rng, sr, rt60=(0.2, 1.2), drr_db=(0.0, 10.0))
        else:
            x = degrade.eq_tilt(x, sr, rng.uniform(-3.0, 3.0))
    return np.asarray(x, np.float32)


def test_the_default_judge_chain_is_the_shipped_judges_draw_for_draw():
    x = _tone(3000.0) + _tone(7000.0)
    for seed in range(12):
        np.testing.assert_array_equal(degrade.judge_chain(x, np.random.default_rng(seed), SR),
                                      _judge_chain_before_session_38(x, np.random.default_rng(seed), SR))


def test_the_judge_chain_draws_only_the_damage_named_the_band_limit_among_it():
    x = _tone(3000.0) + _tone(7000.0)
    for seed in range(20):  # the band limit alone, cutoff drawn from 3-8 kHz: the 3 kHz tone stays, 7 kHz goes or stays
        y = degrade.judge_chain(x, np.random.default_rng(seed), SR, ("band-limit",))
        spectrum = np.abs(np.fft.rfft(y)) / (SR / 2)
        assert spectrum[3000] == pytest.approx(0.3, abs=1e-4)
        assert spectrum[7000] == pytest.approx(0.0, abs=1e-4) or spectrum[7000] == pytest.approx(0.3, abs=1e-4)
        assert np.sum(spectrum > 1e-4) <= 2  # nothing else drawn (noise, reverb, quantization would fill the spectrum)
    cut = [np.abs(np.fft.rfft(degrade.judge_chain(x, np.random.default_rng(s), SR, ("band-limit",))))[7000] < 1
           for s in range(20)]
    assert 0 < sum(cut) < 20  # cutoffs fall on both sides of 7 kHz
    with pytest.raises(ValueError, match="judge damage bogus: choose from low-pass"):
        degrade.judge_chain(x, np.random.default_rng(0), SR, ("noise", "bogus"))
    with pytest.raises(ValueError, match="judge damage"):
        degrade.judge_chain(x, np.random.default_rng(0), SR, ())


def test_chains_are_seeded_same_length_and_never_clip():
    x = _tone(amp=0.95)
    a = degrade.mic_chain(x, np.random.default_rng(3), SR, p=1.0)
    b = degrade.mic_chain(x, np.random.default_rng(3), SR, p=1.0)
    np.testing.assert_array_equal(a, b)
    assert len(a) == len(x) and a.dtype == np.float32 and np.max(np.abs(a)) <= 0.99 + 1e-6
    assert not np.allclose(a, x)
    for seed in range(8):
        y = degrade.judge_chain(x, np.random.default_rng(seed), SR)
        assert len(y) == len(x) and np.isfinite(y).all() and not np.allclose(y, x)


def _level_db(y, x):
    return 20 * np.log10(np.std(y) / np.std(x))


def test_roll_off_is_flat_to_its_cutoff_then_falls_its_slope_per_octave_down_to_its_floor():
    for f, expect in ((500.0, 0.0), (2000.0, 0.0), (4000.0, -24.0), (8000.0, -48.0)):
        x = _tone(f)  # whole periods in one second: every tone is one FFT bin, so the figures are exact
        assert _level_db(degrade.roll_off(x, SR, 2000.0, 24.0), x) == pytest.approx(expect, abs=1e-3), f
    x = _tone(11_000.0)
    assert _level_db(degrade.roll_off(x, SR, 1000.0, 48.0, floor_db=-60.0), x) == pytest.approx(-60.0, abs=1e-3)


def test_darken_keeps_the_body_and_takes_the_top_within_its_drawn_bounds():
    lo, hi = _tone(1000.0), _tone(11_000.0)
    drops = []
    for seed in range(40):  # the same seed draws the same cutoff and slope for both tones
        assert _level_db(degrade.darken(lo, np.random.default_rng(seed), SR), lo) == pytest.approx(0.0, abs=1e-3)
        drops.append(-_level_db(degrade.darken(hi, np.random.default_rng(seed), SR), hi))
    # the mildest draw (6 kHz, 12 dB/octave) takes 12·log2(11/6) = 10.5 dB; the steepest (1.5 kHz, 48) 138 → floor
    assert min(drops) >= 12 * np.log2(11 / 6) - 1e-3 and max(drops) <= 100 + 1e-3
    assert max(drops) - min(drops) > 30  # cutoffs and slopes are drawn, not fixed
