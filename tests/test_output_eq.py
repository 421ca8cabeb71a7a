"""core.output_eq: the fitted gains, the FIR's response and its causality against closed forms."""
import numpy as np
import pytest

from core.output_eq import BOOST_DB, CUT_DB, apply, band_centres, band_gains_db, design_fir, long_term_power

SR = 24_000


def _noise(seconds=4.0, seed=0):
    return np.random.default_rng(seed).standard_normal(int(seconds * SR))


def test_a_codec_that_only_scales_is_undone_by_the_same_gain_in_every_band():
    xs = [_noise(seed=k) for k in range(3)]
    np.testing.assert_allclose(band_gains_db(xs, [0.5 * x for x in xs], SR), 20 * np.log10(2), atol=1e-9)
    np.testing.assert_allclose(band_gains_db(xs, [2.0 * x for x in xs], SR), -20 * np.log10(2), atol=1e-9)
    # a codec 40 dB too loud is corrected by the cut's limit only, one 30 dB too quiet by the boost's
    assert np.all(band_gains_db(xs, [100 * x for x in xs], SR) == CUT_DB)
    assert np.all(band_gains_db(xs, [10 ** (-30 / 20) * x for x in xs], SR) == BOOST_DB)
    # cut only (boost_db 0, session 32): what the codec lost stays lost, what it added is still cut
    assert np.all(band_gains_db(xs, [0.5 * x for x in xs], SR, boost_db=0.0) == 0.0)
    np.testing.assert_allclose(band_gains_db(xs, [2.0 * x for x in xs], SR, boost_db=0.0), -20 * np.log10(2),
                               atol=1e-9)


def test_the_gains_follow_a_band_the_codec_adds():
    """Input: noise below 3 kHz; round trip: the same plus a floor 20 dB under it from 6 kHz up. The EQ keeps the
    input's bands (0 dB) and cuts the floor's by the most it may."""
    from scipy.signal import butter, sosfilt

    x = sosfilt(butter(8, 3000, fs=SR, output="sos"), _noise())
    floor = 0.1 * np.std(x) * sosfilt(butter(8, 6000, "high", fs=SR, output="sos"), _noise(seed=1))
    g = band_gains_db([x], [x + floor], SR)
    c = band_centres(SR)
    assert np.abs(g[c < 2000]).max() < 0.01
    assert np.all(g[(c > 7000) & (c < 11000)] == CUT_DB)


def test_the_fir_has_the_response_asked_for_and_minimum_phase():
    c = band_centres(SR)
    gains = np.where(c < 2000, 0.0, np.where(c < 5000, 6.0, -20.0))
    h = design_fir(c, gains, SR)
    f = np.fft.rfftfreq(8192, 1 / SR)
    got = 20 * np.log10(np.abs(np.fft.rfft(h, 8192)) + 1e-12)
    for lo, hi, want in ((400, 1200, 0.0), (3000, 3800, 6.0), (7000, 11000, -20.0)):
        band = got[(f >= lo) & (f < hi)]
        assert np.abs(band - want).max() < 1.0, (lo, hi, band.min(), band.max())
    energy = np.cumsum(h ** 2) / np.sum(h ** 2)
    assert energy[24] > 0.9  # a minimum-phase filter: its energy up front, ~1 ms of delay, not half its length


def test_the_filter_is_causal_and_its_impulse_response_is_the_fir():
    c = band_centres(SR)
    assert len(c) == 20 and round(c[-1]) == 8063  # third octaves from 100 Hz to 8 kHz at 24 kHz
    h = design_fir(c, np.linspace(0, -12, len(c)), SR)
    impulse = np.zeros(1000, np.float32)
    impulse[300] = 1
    out = apply(h, impulse)
    assert len(out) == len(impulse)
    assert np.all(out[:300] == 0)  # nothing before the input: a live path could run it
    np.testing.assert_allclose(out[300:300 + len(h)], h, atol=1e-7)


def test_a_clip_shorter_than_a_segment_is_refused_when_none_is_long_enough():
    with pytest.raises(ValueError, match="no clip"):
        long_term_power([np.zeros(100)], SR)
