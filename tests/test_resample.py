"""The low-latency FIR resampler: its filter meets its specification, chunking never changes its output, and its
stated delay is the delay in the signal (so renders and the engine's latency figure line up)."""
import numpy as np
import pytest

from live.resample import FIR_PASSBAND, StreamResampler, holdback, kaiser_lowpass, pick_quality


def _chunked(rs, x, sizes):
    out, i, k = [], 0, 0
    while i < len(x):
        n = int(sizes[k % len(sizes)])
        out.append(rs(x[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out)


@pytest.mark.parametrize("k", [2, 4])
def test_kaiser_lowpass_meets_its_specification(k):
    from scipy.signal import freqz

    h = kaiser_lowpass(k)
    fs = 24_000 * k
    w, resp = freqz(h, worN=1 << 14, fs=fs)
    mag = 20 * np.log10(np.abs(resp) + 1e-12)
    assert np.abs(mag[w <= FIR_PASSBAND * 24_000]).max() < 0.05  # flat pass band (dB)
    assert mag[w >= (1 - FIR_PASSBAND) * 24_000].max() < -59  # images and aliases about 60 dB down
    assert (len(h) - 1) % (2 * k) == 0 and np.allclose(h, h[::-1])  # linear phase, whole low-rate delay


@pytest.mark.parametrize("rates", [(48_000, 24_000), (24_000, 48_000), (96_000, 24_000), (24_000, 96_000)])
def test_fir_output_does_not_depend_on_chunking(rates):
    x = np.random.default_rng(0).normal(size=30_000).astype(np.float32)
    a = _chunked(StreamResampler(*rates, "fir"), x, [7])
    b = _chunked(StreamResampler(*rates, "fir"), x, np.random.default_rng(1).integers(1, 2000, 200))
    assert len(a) == len(x) * rates[1] // rates[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_round_trip_is_the_input_delayed_by_the_stated_delay():
    x = np.sin(2 * np.pi * 1000 * np.arange(48_000) / 48_000).astype(np.float32)
    down, up = StreamResampler(48_000, 24_000), StreamResampler(24_000, 48_000)
    assert down.quality == up.quality == "fir"
    y = _chunked(up, _chunked(down, x, [256]), [2560])
    d = 2 * down.delay + up.delay  # in 48 kHz samples
    assert 0 < d < 0.002 * 48_000  # under 2 ms for both sides together
    np.testing.assert_allclose(y[d + 1000:40_000], x[1000:40_000 - d], atol=1e-3)
    assert holdback(48_000, 24_000, "fir", 16) <= 1 and holdback(24_000, 48_000, "fir", 2560) == 0


def test_quality_choice():
    assert pick_quality(44_100, 24_000) == "LQ" and pick_quality(48_000, 24_000) == "fir"
    with pytest.raises(ValueError, match="integer ratio"):
        pick_quality(44_100, 24_000, "fir")
    with pytest.raises(ValueError, match="resampler quality"):
        pick_quality(48_000, 24_000, "best")
