"""evaluation.ceiling's bookkeeping: recognition and the 'attracts' share that exposes a judge's attractor."""
import numpy as np

from evaluation.ceiling import _identity, band_level_change, score


class AlwaysFlute:
    """A judge that hears every clip as a flute: what a codec's artefacts can make of a real judge."""

    def predict(self, wav, sr):
        return "flute"


class ByLevel:
    def predict(self, wav, sr):
        return "flute" if np.max(np.abs(wav)) < 0.5 else "violin"


def test_an_attractor_shows_up_as_attracting_every_other_instrument():
    clips = {"flute": [np.zeros(10)] * 4, "violin": [np.zeros(10)] * 3, "cello": [np.zeros(10)] * 5}
    r = score(AlwaysFlute(), None, clips, _identity, 24_000)
    assert r["flute"]["recognized"] == 1.0 and r["flute"]["attracts"] == 1.0  # 8 of 8 others heard as flute
    assert r["violin"]["recognized"] == 0.0 and r["violin"]["attracts"] == 0.0
    assert r["cello"]["heard_as"] == {"flute": 5}


def test_a_fair_judge_attracts_nothing():
    clips = {"flute": [np.full(10, 0.1)] * 2, "violin": [np.full(10, 0.9)] * 2}
    r = score(ByLevel(), None, clips, _identity, 24_000)
    assert r["flute"]["recognized"] == r["violin"]["recognized"] == 1.0
    assert r["flute"]["attracts"] == r["violin"]["attracts"] == 0.0


def band_gain(gains: dict[tuple[float, float], float], sr: int = 24_000):
    """A stand-in codec: an exact amplitude gain inside each given band, the rest untouched."""
    def through(x):
        X, f = np.fft.rfft(x), np.fft.rfftfreq(len(x), 1 / sr)
        for (lo, hi), g in gains.items():
            X[(f >= lo) & (f < hi)] *= g
        return np.fft.irfft(X, len(x))
    return through


def test_band_level_change_is_the_gain_in_each_band_in_db():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(24_000)
    d = band_level_change(x, band_gain({(4000, 8000): 0.25, (250, 1000): 2.0})(x), 24_000)
    assert abs(d["4-8k"] - 20 * np.log10(0.25)) < 1e-6 and abs(d["0.25-1k"] - 20 * np.log10(2.0)) < 1e-6
    assert abs(d["1-2k"]) < 1e-9 and abs(d["8-12k"]) < 1e-9
    same = band_level_change(x, x[:12_000], 24_000)  # a short output is compared where both play
    assert all(abs(v) < 1e-9 for v in same.values()), same


def test_a_darkening_codec_is_heard_as_a_flute_and_its_bands_say_where():
    # the ceiling row reports, per instrument, the mean level change per band of its round trips
    clips = {"violin": [np.random.default_rng(k).standard_normal(4800) for k in range(3)]}
    dark = band_gain({(2000, 4000): 0.5, (4000, 8000): 0.1})
    r = score(AlwaysFlute(), None, clips, dark, 24_000)
    assert r["violin"]["heard_as"] == {"flute": 3}
    assert r["violin"]["band_db"]["4-8k"] == -20.0 and r["violin"]["band_db"]["2-4k"] == round(20 * np.log10(0.5), 2)
    assert r["violin"]["band_db"]["1-2k"] == 0.0
    assert np.isnan(r["violin"]["pitch"])  # no pitch tracker given: not measured, never reported as kept
    assert "band_db" not in score(AlwaysFlute(), None, clips, _identity, 24_000)["violin"]  # the input row: none
