"""evaluation.ceiling's bookkeeping: recognition and the 'attracts' share that exposes a judge's attractor."""
import numpy as np

from core.timbre import TimbreClassifier
from evaluation.ceiling import _identity, band_level_change, score


class LabelJudge:
    """A stand-in judge that names one instrument per clip (`predict`): its logit 1, every other 0."""
    instruments = ["cello", "clarinet", "flute", "violin"]
    margin = TimbreClassifier.margin  # the real judge's margin, on these logits

    def clip_logits(self, wav, sr):
        return np.array([float(i == self.predict(wav, sr)) for i in self.instruments])


class AlwaysFlute(LabelJudge):
    """A judge that hears every clip as a flute: what a codec's artefacts can make of a real judge."""

    def predict(self, wav, sr):
        return "flute"


class ByLevel(LabelJudge):
    def predict(self, wav, sr):
        return "flute" if np.max(np.abs(wav)) < 0.5 else "violin"


def test_an_attractor_shows_up_as_attracting_every_other_instrument():
    clips = {"flute": [np.zeros(10)] * 4, "violin": [np.zeros(10)] * 3, "cello": [np.zeros(10)] * 5}
    r = score(AlwaysFlute(), None, clips, _identity, 24_000)
    assert r["flute"]["recognized"] == 1.0 and r["flute"]["attracts"] == 1.0  # 8 of 8 others heard as flute
    assert r["violin"]["recognized"] == 0.0 and r["violin"]["attracts"] == 0.0
    assert r["cello"]["heard_as"] == {"flute": 5}


def test_the_margin_is_the_instruments_logit_over_the_largest_other_least_and_median_over_clips():
    judge = LabelJudge()
    assert judge.margin(np.array([2.0, 5.0, 1.0, -3.0]), "clarinet") == 3.0
    assert judge.margin(np.array([2.0, 5.0, 1.0, -3.0]), "cello") == -3.0
    # three of the violin's four clips heard as a violin (margin +1), one as a flute (−1)
    clips = {"violin": [np.full(10, 0.9)] * 3 + [np.full(10, 0.1)], "flute": [np.full(10, 0.1)] * 2}
    r = score(ByLevel(), None, clips, _identity, 24_000)
    assert r["violin"]["margin"] == {"least": -1.0, "median": 1.0} and r["violin"]["recognized"] == 0.75
    assert r["flute"]["margin"] == {"least": 1.0, "median": 1.0}


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


F0 = 24_000 / 2048 * 20  # 234.375 Hz: every harmonic on an FFT bin of the profile's 2048-point frames


def hollow_tone(seconds: float = 1.0, sr: int = 24_000) -> np.ndarray:
    """A clarinet's low register in closed form: odd harmonics at 1, even ones at 0.1 (−20 dB)."""
    t = np.arange(int(seconds * sr)) / sr
    return sum((1.0 if h % 2 else 0.1) * np.sin(2 * np.pi * h * F0 * t) for h in range(1, 35))


def test_harmonic_profile_measures_a_hollow_tone_and_the_noise_between_its_harmonics():
    from evaluation.ceiling import harmonic_profile

    x, step = hollow_tone(), 0.01
    f0 = np.full(100, F0)
    f0[:10] = np.nan  # unvoiced frames do not count
    clean = harmonic_profile(x, 24_000, f0, step)
    assert abs(clean["odd_even_db"] - 20.0) < 0.05, clean
    noisy = harmonic_profile(x + 0.01 * np.random.default_rng(0).standard_normal(len(x)), 24_000, f0, step)
    assert abs(noisy["odd_even_db"] - 20.0) < 0.5  # the peaks stand 50 dB above that noise
    # between the harmonics: the noise's power per bin, σ²·Σw²; at them: the tones (odd ones dominate)
    assert clean["contrast_db"] > noisy["contrast_db"] + 20
    assert 40 < noisy["contrast_db"] < 65, noisy
    filled = harmonic_profile(x + 0.5 * x ** 2, 24_000, f0, step)  # even-order distortion fills the hollow
    assert filled["odd_even_db"] < 10
    assert abs(clean["h1_h2_db"] - 20.0) < 0.05  # h1 at 1, h2 at 0.1
    t = np.arange(len(x)) / 24_000
    weak = x - 0.9 * np.sin(2 * np.pi * F0 * t)  # the fundamental at 0.1, like its second harmonic: 0 dB
    assert abs(harmonic_profile(weak, 24_000, f0, step)["h1_h2_db"]) < 0.05
    assert np.isnan(harmonic_profile(x, 24_000, np.full(100, np.nan), step)["odd_even_db"])  # nothing voiced


class ConstantPitch:
    """A pitch tracker that hears F0 everywhere (PESTO's interface, no model)."""

    def __call__(self, x, sr):
        from core.pitch import PitchTrack, frame_levels_db

        n = int(len(x) / sr * 100)
        return PitchTrack(np.full(n, 69 + 12 * np.log2(F0 / 440)), np.ones(n), frame_levels_db(x, sr, n))


def test_the_ceiling_row_reports_each_instruments_harmonics_input_to_output():
    clips = {"clarinet": [hollow_tone(0.5)]}
    rng = np.random.default_rng(1)
    r = score(AlwaysFlute(), ConstantPitch(), clips, lambda x: x + 0.01 * rng.standard_normal(len(x)), 24_000)
    h = r["clarinet"]["harmonics_db"]
    assert abs(h["odd_even_db"][0] - 20) < 0.05 and abs(h["odd_even_db"][1] - 20) < 0.5
    assert h["contrast_db"][0] > h["contrast_db"][1] + 20  # the noise the stand-in codec adds between harmonics
    assert r["clarinet"]["pitch"] == 1.0 and r["clarinet"]["pitch_class"] == 1.0


def test_the_ceiling_row_tells_octave_errors_from_a_lost_melody():
    """A round trip the tracker hears an octave up on half its frames keeps the pitch on half and the pitch class
    on all of them; one a semitone off keeps neither."""
    from core.pitch import PitchTrack, frame_levels_db

    class OctaveUpOnOutput:
        def __init__(self, shift):
            self.calls, self.shift = 0, shift

        def __call__(self, x, sr):
            self.calls += 1
            n = int(len(x) / sr * 100)
            semis = np.full(n, 69 + 12 * np.log2(F0 / 440))
            if self.calls % 2 == 0:  # every second call tracks the round trip
                semis[n // 2:] += self.shift
            return PitchTrack(semis, np.ones(n), frame_levels_db(x, sr, n))

    clips = {"clarinet": [hollow_tone(0.5)]}
    octave = score(AlwaysFlute(), OctaveUpOnOutput(12.0), clips, lambda x: x, 24_000)["clarinet"]
    assert abs(octave["pitch"] - 0.5) < 0.03 and octave["pitch_class"] == 1.0
    semitone = score(AlwaysFlute(), OctaveUpOnOutput(1.0), clips, lambda x: x, 24_000)["clarinet"]
    assert abs(semitone["pitch"] - 0.5) < 0.03 and abs(semitone["pitch_class"] - 0.5) < 0.03


def test_harmonic_profile_skips_what_it_cannot_measure_and_follows_the_pitch():
    from evaluation.ceiling import _json_safe, harmonic_profile

    x = hollow_tone()
    low = harmonic_profile(x, 24_000, np.full(100, 30.0), 0.01)  # an octave error below the FFT's resolution
    assert np.isnan(low["odd_even_db"]) and np.isnan(low["contrast_db"])
    high = harmonic_profile(x, 24_000, np.full(100, 1700.0), 0.01)  # h8 above Nyquist: no odd − even, no warning
    assert np.isnan(high["odd_even_db"])
    assert np.isfinite(high["h1_h2_db"])  # h2 at 3.4 kHz: measured
    assert np.isnan(harmonic_profile(x, 24_000, np.full(100, 6000.0), 0.01)["h1_h2_db"])  # h2 past Nyquist: not
    # a pitch track that jumps an octave halfway: the second half is measured at 2·F0, where the tone's
    # "harmonics" alternate 0 dB and −20 dB as h2, h4 … of F0 — all even of F0: odd − even over 2·F0 is 0 dB
    f0 = np.full(100, F0)
    f0[50:] = 2 * F0
    half = harmonic_profile(x, 24_000, f0, 0.01)
    assert 5 < half["odd_even_db"] < 15  # the mean of +20 (first half) and ~0 (second): frames follow the track
    assert _json_safe({"a": [float("nan"), 1.0], "b": float("inf")}) == {"a": [None, 1.0], "b": None}


def test_the_tone_probe_reads_a_filter_exactly_and_catches_even_order_distortion():
    from evaluation.tones import ABSENT_DB, TONES, balance_errors

    sr = 24_000
    assert all(np.allclose(e, 0.0, atol=1e-6) for by in balance_errors(lambda x: x, sr).values() for e in by.values())
    a = 0.6  # y[n] = x[n] + a·x[n-1]: |H(f)| = |1 + a·e^(-j2πf/sr)|, so harmonic k moves by |H(k·f0)| / |H(f0)|
    fir = lambda x: np.concatenate([x[:1], x[1:] + a * x[:-1]]).astype(np.float32)  # noqa: E731
    gain = lambda f: 20 * np.log10(abs(1 + a * np.exp(-2j * np.pi * f / sr)))  # noqa: E731
    errors = balance_errors(fir, sr, tones={"sawtooth": TONES["sawtooth"]}, pitches=(294.0,))["sawtooth"][294.0]
    want = [gain(k * 294.0) - gain(294.0) for k in range(1, 9)]
    assert np.allclose(errors, want, atol=0.05), np.round(errors - want, 3)
    # x + 0.1·x²: a pure tone at peak 0.5 grows a second harmonic 20·log10(0.1·0.5/2) = -32 dB down (absent: -40)
    sine = balance_errors(lambda x: x + 0.1 * x ** 2, sr, tones={"sine": TONES["sine"]}, pitches=(440.0,))["sine"][440.0]
    assert abs(sine[1] - (20 * np.log10(0.1 * 0.5 / 2) - ABSENT_DB)) < 0.5 and np.allclose(sine[2:], 0.0, atol=1.0)


def test_the_tone_probe_rejects_bad_input_in_one_line(tmp_path, capsys):
    from evaluation.tones import main

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for argv in ([str(tmp_path / "missing.pt")], [str(junk)], [str(junk), "--pitches", ","],
                 [str(junk), "--pitches", "5000"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_latent_drift_is_zero_for_the_same_encoder_and_the_rms_in_the_references_units_otherwise():
    import torch

    from core.codec import Codec
    from evaluation.ceiling import latent_drift

    torch.manual_seed(0)
    ref = Codec.compact(n_filters=2, dimension=8).eval()
    ref.set_latent_stats(torch.linspace(-0.5, 0.5, 8), torch.linspace(0.5, 2.0, 8))
    moved = Codec.compact(n_filters=2, dimension=8).eval()
    moved.load_state_dict(ref.state_dict())
    moved.set_latent_stats(torch.zeros(8), torch.ones(8))  # its own statistics play no part
    clips = [np.random.default_rng(k).standard_normal(1920 * (k + 1)).astype(np.float32) * 0.1 for k in range(2)]
    assert latent_drift(moved, ref, clips) == 0.0
    with torch.no_grad():
        for w in moved.encoder.parameters():
            w.mul_(1 + 0.1 * torch.randn_like(w))
        diffs = [((moved.encode_raw(torch.as_tensor(c).view(1, 1, -1)) - ref.encode_raw(torch.as_tensor(c).view(1, 1, -1)))
                  / ref.latent_std[:, None]) for c in clips]
    expected = float(torch.cat([d.flatten() for d in diffs]).pow(2).mean().sqrt())  # over every frame of both clips
    assert expected > 0.01
    np.testing.assert_allclose(latent_drift(moved, ref, clips), expected, rtol=1e-4)


class ByHiss(LabelJudge):
    """A judge that hears a breath (energy above 6 kHz, over 1e-4 of the whole) as a flute."""

    def predict(self, wav, sr):
        p, f = np.abs(np.fft.rfft(wav)) ** 2, np.fft.rfftfreq(len(wav), 1 / sr)
        return "flute" if p[f >= 6000].sum() > 1e-4 * p.sum() else "clarinet"


def test_a_low_passed_row_says_the_judges_doubt_lies_above_the_cutoff():
    # a codec that lays a floor over a dark tone's top octave is heard as a flute; low-passed at 6 kHz it is a
    # clarinet again, at 8 kHz not; low-passing what has nothing above the cutoff leaves it as it was
    from evaluation.ceiling import low_passed

    sr, t = 24_000, np.arange(9_600) / 24_000
    # odd harmonics of 200 Hz, whole periods: every partial on an FFT bin, nothing leaks past the cutoff
    clips = {"clarinet": [sum(np.sin(2 * np.pi * h * 200.0 * t) / h for h in range(1, 20, 2)) for _ in range(2)]}
    hiss = np.random.default_rng(0).standard_normal(len(t))

    def floor(x):
        return x + band_gain({(6000, 12_001): 1.0, (0, 6000): 0.0})(0.02 * hiss)

    assert score(ByHiss(), None, clips, _identity, sr)["clarinet"]["recognized"] == 1.0
    assert score(ByHiss(), None, clips, floor, sr)["clarinet"]["heard_as"] == {"flute": 2}
    at6, at8 = (score(ByHiss(), None, clips, low_passed(floor, hz, sr), sr)["clarinet"] for hz in (6000, 8000))
    assert at6["recognized"] == 1.0 and at8["heard_as"] == {"flute": 2}
    x = clips["clarinet"][0]
    np.testing.assert_allclose(low_passed(_identity, 6000, sr)(x), x, atol=1e-6)  # nothing above: unchanged


def test_the_low_pass_control_shows_a_judge_that_hears_the_filter_as_an_instrument():
    # a judge that takes "nothing above 6 kHz" for a clarinet: a bright flute low-passed at 6 kHz is a clarinet to
    # it, whatever any codec did; the control row says so (attracts), and a judge that keys on nothing there does not
    from evaluation.ceiling import low_pass_controls

    sr, t = 24_000, np.arange(9_600) / 24_000
    bright = sum(np.sin(2 * np.pi * h * 500.0 * t) / h for h in range(1, 24))  # partials up to 11.5 kHz
    dark = sum(np.sin(2 * np.pi * h * 200.0 * t) / h for h in range(1, 20, 2))  # nothing over 3.8 kHz
    clips = {"clarinet": [dark, dark], "flute": [bright, bright]}
    (label, row), = low_pass_controls(ByHiss(), None, clips, [6000.0], sr).items()
    assert label == "input, low-passed at 6000 Hz (the control)"
    assert row["flute"]["heard_as"] == {"clarinet": 2} and row["clarinet"]["attracts"] == 1.0
    assert score(ByHiss(), None, clips, _identity, sr)["clarinet"]["attracts"] == 0.0  # unfiltered: each as itself
    assert low_pass_controls(ByHiss(), None, clips, [], sr) == {}


def test_the_ceiling_command_refuses_a_cutoff_past_nyquist_in_one_line(capsys):
    from evaluation.ceiling import main

    assert main(["models/codec.pt", "--low-pass", "4000,20000"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "20000" in err[0] and "12000" in err[0]


def test_a_boost_limit_without_an_output_eq_or_out_of_range_is_refused_in_one_line(capsys):
    from evaluation.ceiling import main

    for argv in (["--max-boost-db", "0"], ["--output-eq", "--max-boost-db", "-3"]):
        assert main(["models/codec.pt", *argv]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--max-boost-db" in err[0]


def test_a_drift_from_a_codec_without_fitted_statistics_is_refused_before_any_clip_is_judged(tmp_path, capsys):
    # its statistics are mean 0, std 1: a drift in raw latent units read as standard deviations (session 24's
    # first try printed 94-327 "std" against models/wip/codec.pt)
    from core.codec import Codec
    from evaluation.ceiling import main

    Codec.compact(n_filters=2, dimension=8).save(tmp_path / "unfitted.pt")
    assert main(["models/codec.pt", "--drift-from", str(tmp_path / "unfitted.pt"),
                 "--corpus", str(tmp_path / "no-corpus")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not fitted" in err[0] and "unfitted.pt" in err[0]


def test_fitted_latents_bring_the_round_trip_closer_and_zero_steps_is_the_round_trip(tmp_path):
    # a clip the decoder can render exactly (decoded from random latents), which the untrained encoder misses:
    # latents fitted with the decoder fixed come far closer, and say how far they moved; none fitted is the plain
    # round trip, byte for byte
    import torch

    from core.codec import Codec
    from evaluation.ceiling import codec_round_trip, fitted_round_trip
    from core.spectral import BandEnvelopeLoss, MelLoss

    torch.manual_seed(0)
    codec = Codec.compact(n_filters=2, dimension=8)
    codec.save(tmp_path / "codec.pt")
    with torch.no_grad():
        x = codec.decode(torch.randn(1, 8, 15))[0, 0].numpy()
    plain, _ = codec_round_trip(tmp_path / "codec.pt")
    none, moved_none = fitted_round_trip(tmp_path / "codec.pt", 0)
    np.testing.assert_array_equal(none(x), plain(x))
    fitted, moved = fitted_round_trip(tmp_path / "codec.pt", 30, lr=0.05)
    mel, band = MelLoss(24_000), BandEnvelopeLoss()

    def losses(y):
        a, b = (torch.as_tensor(v).view(1, 1, -1) for v in (y, x))
        return float(mel(a, b) + band(a, b))

    assert losses(fitted(x)) < 0.5 * losses(plain(x))
    assert moved_none == [0.0] and moved[0] > 0.01


def test_the_odd_part_removes_even_order_products_and_measures_what_it_removed():
    # closed forms: for y = x + a·x² + b·x³ the odd part (y(x) − y(−x))/2 is x + b·x³ and the even part a·x², so the
    # even part's energy under the round trip is 10·log10(Σ(a·x²)² / Σy²); the x² fills a hollow tone's even
    # harmonics (odd − even < 10 dB), and its odd part is the hollow tone again (+20 dB, as built)
    from evaluation.ceiling import harmonic_profile, odd_part

    x = (0.1 * hollow_tone()).astype(np.float32)
    a, b = 0.5, 0.3
    codec = lambda v: v + a * v ** 2 + b * v ** 3  # noqa: E731
    probe, even_db = odd_part(codec)
    np.testing.assert_allclose(probe(x), x + b * x ** 3, rtol=1e-5, atol=1e-7)
    want = 10 * np.log10(np.sum((a * x.astype(np.float64) ** 2) ** 2) / np.sum(codec(x.astype(np.float64)) ** 2))
    assert abs(even_db[0] - want) < 1e-3 and -20 < want < -5
    probe, even_db = odd_part(_identity)
    np.testing.assert_allclose(probe(x), x, atol=1e-7)
    assert even_db[0] < -150  # nothing: the identity has no even part
    f0, step = np.full(100, F0), 0.01
    filled = harmonic_profile(x + 0.5 * x ** 2 / 0.1, 24_000, f0, step)
    odd = harmonic_profile(odd_part(lambda v: v + 0.5 * v ** 2 / 0.1)[0](x), 24_000, f0, step)
    assert filled["odd_even_db"] < 10 and abs(odd["odd_even_db"] - 20.0) < 0.05
    from evaluation.ceiling import per_instrument_means  # how the row files those clip-by-clip figures

    assert per_instrument_means([1.0, 3.0, 5.0, 7.0, 9.0], {"cello": [0, 0], "flute": [0, 0, 0]}, 2) == \
        {"cello": 2.0, "flute": 7.0}


def test_an_output_eq_fitted_on_the_training_split_cuts_a_floor_the_codec_lays_and_never_reads_the_judged_clips(
        tmp_path):
    # the same floor over a dark tone's top as above; the EQ is fitted on the corpus's train split only (the judged
    # clips are not in it) and takes the floor down by the most it may cut, so the tone is a clarinet again
    import soundfile as sf

    from core.manifest import write_manifest
    from core.output_eq import CUT_DB, band_centres
    from evaluation.ceiling import with_output_eq

    sr, t = 24_000, np.arange(3 * 24_000) / 24_000
    tone = sum(np.sin(2 * np.pi * h * 200.0 * t) / h for h in range(1, 20, 2)).astype(np.float32)
    hiss = np.random.default_rng(0).standard_normal(len(t))
    records = []
    for k in range(2):
        (tmp_path / "clarinet").mkdir(exist_ok=True)
        sf.write(tmp_path / "clarinet" / f"t{k}.wav", tone, sr)
        records.append(dict(path=f"clarinet/t{k}.wav", instrument="clarinet", split="train"))
    write_manifest(tmp_path, records)
    seen = []

    def floor(x):
        seen.append(len(x))
        return x + band_gain({(6000, 12_001): 1.0, (0, 6000): 0.0})(0.02 * hiss[: len(x)])

    _, cut_only = with_output_eq(lambda x: 0.5 * floor(x), tmp_path, ["clarinet"], sr, boost_db=0.0)
    assert np.all(cut_only["clarinet"] <= 0.0) and np.all(cut_only["clarinet"][band_centres(sr) > 7000] == CUT_DB)
    seen.clear()
    probes, gains = with_output_eq(floor, tmp_path, ["clarinet"], sr)
    assert seen == [len(t), len(t)]  # fitted on the two training files, whole (shorter than FIT_SECONDS)
    centres = band_centres(sr)
    assert np.all(gains["clarinet"][centres > 7000] == CUT_DB)
    assert np.abs(gains["clarinet"][centres < 3000]).max() < 0.01  # the tone's own bands are left alone
    judged = {"clarinet": [tone[:9_600]]}
    assert score(ByHiss(), None, judged, floor, sr)["clarinet"]["heard_as"] == {"flute": 1}
    assert score(ByHiss(), None, judged, probes, sr)["clarinet"]["recognized"] == 1.0


def test_recognition_split_by_split_counts_each_splits_clips():
    """Judged over several splits at once, a codec's clips are counted per split too: where it loses them."""
    import pytest

    from evaluation.ceiling import recognized_by_split

    clips = {"flute": [np.full(10, 0.1)] * 2 + [np.full(10, 0.9)] * 3, "violin": [np.full(10, 0.9)] * 2}
    rows = score(ByLevel(), None, clips, _identity, 24_000)  # quiet clips: flute, loud: violin
    assert rows["flute"]["heard"] == ["flute"] * 2 + ["violin"] * 3
    splits = {"flute": ["heldout", "confirm", "heldout", "confirm", "confirm"], "violin": ["confirm", "confirm"]}
    assert recognized_by_split(rows, splits) == {"flute": {"heldout": (1, 2), "confirm": (1, 3)},
                                                 "violin": {"confirm": (2, 2)}}
    with pytest.raises(ValueError, match="5 clips judged, 4 splits"):
        recognized_by_split(rows, {"flute": splits["flute"][:4]})
