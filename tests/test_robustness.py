"""evaluation.robustness: how a judge hears generic damage, read off judges whose cues are known."""
import numpy as np
import pytest

from core.timbre import TimbreClassifier
from evaluation.robustness import PROBES, format_robustness, main, robustness

SR = 24_000
T = np.arange(SR) / SR  # one second: every partial below on a whole number of periods, one FFT bin each


class ByTop:
    """A judge that names a flute whatever has energy above 6 kHz, a clarinet the rest: a top taken for timbre."""
    instruments = ["clarinet", "flute"]
    margin = TimbreClassifier.margin

    def clip_logits(self, wav, sr):
        p, f = np.abs(np.fft.rfft(wav)) ** 2, np.fft.rfftfreq(len(wav), 1 / sr)
        flute = p[f >= 6000].sum() > 1e-4 * p.sum()
        return np.array([float(not flute), float(flute)])


def _clips():
    bright = sum(np.sin(2 * np.pi * h * 500.0 * T) / h for h in range(1, 24)).astype(np.float32)  # up to 11.5 kHz
    dark = sum(np.sin(2 * np.pi * h * 200.0 * T) / h for h in range(1, 20, 2)).astype(np.float32)  # up to 3.8 kHz
    return {"clarinet": [dark, 0.5 * dark], "flute": [bright, 0.5 * bright]}


def test_a_judge_that_takes_the_top_for_timbre_loses_the_bright_instrument_to_a_band_limit_only():
    rows = robustness(ByTop(), _clips(), SR)
    assert list(rows) == ["input", *PROBES]
    assert rows["input"]["flute"]["recognized"] == rows["input"]["clarinet"]["recognized"] == 1.0
    for cutoff in ("4", "6"):  # at and above 6 kHz removed: the flute has no top left, so it is a clarinet
        r = rows[f"band limit {cutoff} kHz"]
        assert r["flute"]["recognized"] == 0.0 and r["flute"]["heard_as"] == {"clarinet": 2}
        assert r["clarinet"]["attracts"] == 1.0 and r["clarinet"]["recognized"] == 1.0
    assert rows["band limit 8 kHz"]["flute"]["recognized"] == 1.0  # 6-8 kHz partials stay
    # white noise puts a top on the dark tone: the clarinet is heard as a flute; every row says who pulls whom
    assert rows["white noise, 20 dB SNR"]["clarinet"]["heard_as"] == {"flute": 2}
    assert rows["white noise, 20 dB SNR"]["flute"]["attracts"] == 1.0
    text = format_robustness(rows, ["clarinet", "flute"])
    assert "| band limit 6 kHz | 100% / 100% | 0% / 0% |" in text


def test_every_probe_keeps_the_length_and_is_the_same_audio_every_time():
    x = _clips()["flute"][0]
    for name, probe in PROBES.items():
        a, b = probe(x, SR), probe(x, SR)
        assert a.shape == x.shape and a.dtype == np.float32, name
        np.testing.assert_array_equal(a, b)


def test_the_command_refuses_a_missing_judge_or_corpus_in_one_line(tmp_path, capsys):
    assert main(["--classifier", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such judge file" in err
    assert main(["--corpus", str(tmp_path / "nowhere"), "--clips", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err
    assert main(["--clips", "0"]) == 2
    assert "--clips 0" in capsys.readouterr().err
