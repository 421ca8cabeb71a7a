"""evaluation.ceiling's bookkeeping: recognition and the 'attracts' share that exposes a judge's attractor."""
import numpy as np

from evaluation.ceiling import _identity, score


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
