"""The streaming engine: block-size invariance, exact streamed latents, seamless windows and parameter changes,
ONNX/PyTorch agreement, rendering and its bad inputs."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from live.bundle import Bundle
from live.engine import StreamingEngine
from live.render import render_array, render_file


def _tone(seconds, rate, f=220.0, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _stream(engine, x, blocks):
    out, i, k = [], 0, 0
    while i < len(x):
        n = blocks[k % len(blocks)]
        out.append(engine.process(x[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out)


@pytest.fixture(autouse=True)
def models_must_run(monkeypatch):
    """Every test here claims something about output the models made: a model error (a dry hop) fails it."""
    failures = []
    fail = StreamingEngine._fail

    def record(self, e):
        failures.append(e)
        return fail(self, e)

    monkeypatch.setattr(StreamingEngine, "_fail", record)
    yield
    assert not failures, f"a model failed during the test (its hops went out dry): {failures[0]!r}"


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return Bundle(tiny_bundle, provider="cpu", threads=1)


@pytest.mark.parametrize("rate", [24_000, 48_000, 44_100])  # identity, the FIR, soxr
def test_output_is_the_same_whatever_the_block_sizes(bundle, tiny_preset, rate):
    x = _tone(1.5, rate) + 0.05 * np.random.default_rng(0).normal(size=int(1.5 * rate)).astype(np.float32)
    rand = list(np.random.default_rng(1).integers(1, 3000, size=400))
    engines = [StreamingEngine(bundle, tiny_preset, rate) for _ in range(3)]
    outs = [_stream(e, x, b) for e, b in zip(engines, ([64], [4096], rand))]
    assert np.abs(outs[0]).max() > 1e-3
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    # and the offline "as live" render (not primed: a live stream starts from silence) is that same stream
    y, e = render_array(x, rate, lambda r: StreamingEngine(bundle, tiny_preset, r), 777, keep_latency=True,
                        prime=False)
    np.testing.assert_array_equal(y[: len(outs[0])], outs[0])
    for e in engines + [e]:  # the models ran: no hop went out dry
        assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0


def test_streamed_latents_equal_whole_file_latents(bundle, tiny_preset):
    x = _tone(1.0, 24_000, 330)
    e = StreamingEngine(bundle, tiny_preset, 24_000)
    got = []
    for i in range(0, len(x), 1000):  # every frame, read as soon as it is encoded (the window keeps only W)
        before = e.hops.frames_in
        e.process(x[i:i + 1000])
        got.append(e.hops.latents.get(before, e.hops.frames_in))
    got = np.concatenate(got, axis=1)
    t = e.hops.frames_in
    pre = bundle.encoder_context
    whole = bundle.encode(np.concatenate([np.zeros(pre, np.float32), x[: t * bundle.samples_per_frame]]))[:, pre // bundle.samples_per_frame:]
    assert got.shape[1] == t > 40
    np.testing.assert_allclose(got, whole[:, :t], atol=1e-5)


def test_chunked_decoding_adds_no_seams(bundle, tiny_preset):
    """The wet output is exactly the decoding of the committed latent sequence as a whole."""
    p = dataclasses.replace(tiny_preset, dry_wet=1.0)
    e = StreamingEngine(bundle, p, 24_000, gate_threshold_db=None, dc_cutoff_hz=None)  # the decoder's own output
    x = _tone(1.0, 24_000, 440)
    y, committed = [], []
    for i in range(0, len(x), 512):  # every committed column, read as it is appended (the history keeps H + D)
        before = e.hops.committed.end
        y.append(e.process(x[i:i + 512]))
        committed.append(e.hops.committed.get(before, e.hops.committed.end))
    y, committed = np.concatenate(y), np.concatenate(committed, axis=1)
    k_end = e.hops.committed.end
    k0 = k_end - 48
    ctx = bundle.decoder_context
    whole = bundle.decode(committed[:, k0 - ctx:k_end])[ctx * bundle.samples_per_frame:]
    # committed column c (frame c − C) starts at output sample prefill + c·hop
    start = e.prefill + k0 * bundle.samples_per_frame
    got = y[start:start + len(whole)]
    assert len(got) > 20 * bundle.samples_per_frame
    np.testing.assert_allclose(got, whole[: len(got)], atol=1e-4)


def _jumps(y):
    return np.abs(np.diff(y))


def _boundary_and_inside(e, y, skip_s=0.3):
    hop_len = e.H * e.F
    first = e.prefill  # output hops start here (24 kHz device rate)
    b = np.arange(first + hop_len, len(y) - 1, hop_len)
    b = b[b > int(skip_s * e.sr)]
    j = _jumps(y)
    inside = np.delete(j, np.concatenate([b - 1, b]))[int(skip_s * e.sr):]
    return j[b - 1], inside


def _flux(y, at, n=256):
    """Spectral flux between the n samples before and after each position."""
    w = np.hanning(n)
    return np.array([np.linalg.norm(np.abs(np.fft.rfft(w * y[a:a + n])) - np.abs(np.fft.rfft(w * y[a - n:a])))
                     for a in at if a - n >= 0 and a + n <= len(y)])


def _assert_no_clicks(e, y):
    """Sample jumps at hop boundaries within the 99.9th percentile inside; spectral flux there like mid-hop."""
    at_b, inside = _boundary_and_inside(e, y)
    assert at_b.max() <= np.percentile(inside, 99.9) * 1.05 + 1e-6
    hop_len = e.H * e.F
    bounds = np.arange(e.prefill + hop_len, len(y), hop_len)[4:]
    assert np.median(_flux(y, bounds)) <= 1.5 * np.median(_flux(y, bounds - hop_len // 2)) + 1e-6


def test_no_clicks_at_window_boundaries_for_a_steady_tone(bundle, tiny_preset):
    e = StreamingEngine(bundle, tiny_preset, 24_000)
    _assert_no_clicks(e, _stream(e, _tone(3.0, 24_000, 261.6), [256]))
    assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0


@pytest.mark.parametrize("change", [dict(sigma_max=40.0), dict(target="alpha"), dict(steps=4, sigma_max=0.5),
                                    dict(prior="transport", sigma_max=0.5), dict(prior="gaussian", sigma_max=0.5)])
def test_parameter_changes_mid_stream_do_not_click(bundle, tiny_preset, change):
    e = StreamingEngine(bundle, tiny_preset, 24_000)
    x = _tone(3.0, 24_000, 261.6)
    half = len(x) // 2
    y1 = _stream(e, x[:half], [256])
    e.set(**change)
    y2 = _stream(e, x[half:], [256])
    for k, v in change.items():
        assert e.params[k] == v
    y = np.concatenate([y1, y2])
    ref = StreamingEngine(bundle, tiny_preset, 24_000)
    y_ref = _stream(ref, x, [256])
    _, inside_ref = _boundary_and_inside(ref, y_ref)
    bound = max(np.percentile(inside_ref, 99.9), np.percentile(_jumps(y2[len(y2) // 2:]), 99.9)) * 1.1
    window = slice(half - 2000, half + e.delay + 2 * e.H * e.F)  # around where the change lands
    assert _jumps(y[window]).max() <= bound
    assert not np.allclose(y2[-4000:], y_ref[-4000:], atol=1e-5)  # and it did change the sound


def test_onnx_and_pytorch_paths_agree(bundle, tiny_bundle):
    torch = pytest.importorskip("torch")
    from core.codec import Codec
    from core.denoiser import load_denoiser
    from core.sampling import bridge

    codec = Codec.load(tiny_bundle.parent / "codec.pt")
    a, _ = load_denoiser(tiny_bundle.parent / "alpha.pt")
    b, _ = load_denoiser(tiny_bundle.parent / "beta.pt")
    x = _tone(0.5, 24_000, 300)[: 32 * 320]
    z_t = codec.encode_numpy(x)
    z_o = bundle.encode(x)
    np.testing.assert_allclose(z_o, z_t, atol=1e-4)
    with torch.no_grad():
        y_t = bridge(torch.from_numpy(z_t)[None], a, b, 5.0, 3)[0].numpy()
    y_o = bridge(z_o, bundle.denoiser("alpha"), bundle.denoiser("beta"), 5.0, 3)
    np.testing.assert_allclose(y_o, y_t, atol=2e-3)
    np.testing.assert_allclose(bundle.decode(y_o), codec.decode_numpy(y_t), atol=2e-3)


def test_each_hop_runs_the_denoisers_as_often_as_its_solver_says(bundle, tiny_preset, monkeypatch):
    from core.sampling import evaluations_per_bridge
    from live.bundle import OnnxDenoiser

    calls = []
    run = OnnxDenoiser.__call__
    monkeypatch.setattr(OnnxDenoiser, "__call__", lambda self, x, s: calls.append(self.name) or run(self, x, s))
    e = StreamingEngine(bundle, dataclasses.replace(tiny_preset, solver="euler", steps=3), 24_000)
    hop = e.hops.hop_samples
    e.process(np.zeros(hop, np.float32) + 0.1)
    assert e.stats.hops == 1 and len(calls) == evaluations_per_bridge(3, "euler") == 6
    assert calls == ["alpha"] * 3 + ["beta"] * 3  # the source's leg, then the target's
    e.set(solver="heun")  # live, between hops
    calls.clear()
    e.process(np.zeros(hop, np.float32) + 0.1)
    assert e.stats.hops == 2 and len(calls) == evaluations_per_bridge(3, "heun") == 12


@pytest.mark.parametrize("rate,atol", [(24_000, 1e-6), (48_000, 2e-3)])  # 48 kHz: through both FIR resamplers
def test_bypass_and_dry_wet_zero_give_the_delayed_input(bundle, tiny_preset, rate, atol):
    for kw in (dict(bypass=True), dict()):
        p = dataclasses.replace(tiny_preset, dry_wet=0.0) if not kw else tiny_preset
        e = StreamingEngine(bundle, p, rate, **kw)
        x = _tone(1.0, rate, 500)
        y = _stream(e, x, [300])
        d = e.delay  # the stated delay is the delay in the signal, resampler filters included
        skip = rate // 1000  # 1 ms: a linear-phase filter rings before the tone's sudden onset
        assert np.abs(y[d:]).max() > 0.25
        np.testing.assert_allclose(y[d + skip:], x[skip: len(y) - d], atol=atol)


# ------------------------------------------------------------------ rendering and bad input
def test_render_files_at_any_rate_and_channel_count(tmp_path, preset_file):
    import soundfile as sf

    from live.preset import load_preset

    preset = load_preset(preset_file)
    x = np.stack([_tone(1.0, 44_100, 440), _tone(1.0, 44_100, 660)], axis=1)
    sf.write(tmp_path / "in.ogg", x, 44_100)
    for mode in ("as-live", "offline"):
        seen = []
        out = tmp_path / f"out-{mode}.flac"
        render_file(tmp_path / "in.ogg", out, preset, mode=mode, progress=seen.append, threads=1)  # raises on a model error
        y, sr = sf.read(out)
        assert sr == 44_100 and y.ndim == 1 and abs(len(y) - 44_100) < 10
        assert np.isfinite(y).all() and np.abs(y).max() > 1e-4
        assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


@pytest.mark.parametrize("kind,message", [
    ("corrupt", "cannot read audio"), ("empty", "empty"), ("nan", "NaN"), ("missing", "no such file")])
def test_bad_input_files_give_a_clear_message_and_no_output(tmp_path, preset_file, kind, message):
    import soundfile as sf

    from live.render import main

    src = tmp_path / "bad.wav"
    if kind == "corrupt":
        src.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    elif kind == "empty":
        sf.write(src, np.zeros(0, np.float32), 24_000)
    elif kind == "nan":
        x = _tone(0.5, 24_000)
        x[100] = np.nan
        sf.write(src, x, 24_000, subtype="FLOAT")
    out = tmp_path / "out" / "y.wav"
    out.parent.mkdir()
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main([str(src), str(out), "--preset", str(preset_file), "--threads", "1"])
    assert rc == 2
    assert message in err.getvalue() and err.getvalue().count("error:") == 1 and "%|" not in err.getvalue()
    assert list(out.parent.iterdir()) == []  # nothing half-written


def test_silent_and_clipped_inputs_render_with_a_warning(tmp_path, preset_file):
    import soundfile as sf

    from live.preset import load_preset

    preset = load_preset(preset_file)
    sf.write(tmp_path / "silent.wav", np.zeros(12_000, np.float32), 24_000)
    w = render_file(tmp_path / "silent.wav", tmp_path / "s.wav", preset, threads=1)
    assert any("silent" in m for m in w)
    sf.write(tmp_path / "clip.wav", np.clip(_tone(0.5, 24_000, amp=3.0), -1, 1), 24_000)
    w = render_file(tmp_path / "clip.wav", tmp_path / "c.wav", preset, threads=1)
    assert any("clipped" in m for m in w)
    assert (tmp_path / "s.wav").is_file() and (tmp_path / "c.wav").is_file()


@pytest.mark.parametrize("patch,message", [
    (dict(sigma_max="loud"), "'sigma_max' must be a number"), (dict(steps=0), "'steps' = 0 is outside"),
    (dict(window=18), "multiple of"), (dict(hop=16), "must fit in window"), (dict(crossfade=6), "must not exceed hop"), (dict(target="tuba"), "not in the bundle"),
    (dict(colour="red"), "unknown field"), (dict(sigma_min=0.4, sigma_max=0.3), "below sigma_max"), (dict(steps=2.5), "integer"),
    (dict(solver="rk4"), "'solver' must be one of euler, heun")])
def test_bad_preset_fields_give_clear_messages(tmp_path, preset_file, patch, message):
    from live.preset import PresetError, load_preset

    data = json.loads(preset_file.read_text()) | patch
    f = tmp_path / "presets" / "bad.json"
    f.write_text(json.dumps(data))
    with pytest.raises(PresetError, match=message):
        p = load_preset(f)
        p.validate(Bundle(p.bundle_path(), provider="cpu", threads=1).instruments)


def test_presets_without_a_solver_keep_the_heun_steps_they_were_written_for(tmp_path, preset_file):
    from live.preset import load_preset
    from live.params import param

    data = json.loads(preset_file.read_text())
    data.pop("solver", None)
    f = tmp_path / "old.json"
    f.write_text(json.dumps(data | dict(steps=3)))
    assert load_preset(f).solver == "heun"
    data.pop("steps", None)  # no steps either: the table's defaults, solver and steps together
    f.write_text(json.dumps(data))
    p = load_preset(f)
    assert (p.solver, p.steps) == (param("solver").default, param("steps").default)


def test_missing_bundle_gives_a_clear_message(tmp_path):
    from live.bundle import BundleError

    with pytest.raises(BundleError, match="no bundle.json"):
        Bundle(tmp_path)


def test_a_bundle_is_named_by_its_models_not_its_folder(tiny_bundle, tmp_path):
    """models_sha256: the same checkpoints exported again to another folder (another export time and parity
    figures in bundle.json) give the same value; one changed byte of a model, or one changed moment in bundle.json,
    another. (Results from either folder then merge: evaluation.report compares this, not paths.)"""
    import shutil

    from export.onnx import export_bundle
    from live.bundle import models_sha256

    files = [tiny_bundle.parent / f for f in ("codec.pt", "alpha.pt", "beta.pt")]
    export_bundle(files, tmp_path / "again")
    first, again = (json.loads((b / "bundle.json").read_text()) for b in (tiny_bundle, tmp_path / "again"))
    assert first != again  # export time, parity figures
    assert models_sha256(tmp_path / "again") == models_sha256(tiny_bundle)
    moved = tmp_path / "moment"
    shutil.copytree(tiny_bundle, moved)
    meta = json.loads((moved / "bundle.json").read_text())
    meta["instruments"]["alpha"]["latent_space"]["moments"]["mean"][0] += 0.5  # what prior matched aims at
    (moved / "bundle.json").write_text(json.dumps(meta))
    assert models_sha256(moved) != models_sha256(tiny_bundle)
    flipped = tmp_path / "flipped"
    shutil.copytree(tiny_bundle, flipped)
    onnx_file = flipped / meta["instruments"]["beta"]["file"]
    raw = bytearray(onnx_file.read_bytes())
    raw[-1] ^= 1
    onnx_file.write_bytes(bytes(raw))
    assert models_sha256(flipped) != models_sha256(tiny_bundle)


def _seam_ratio(bundle, preset):
    """Largest frame-to-frame latent change at window seams over the 99th percentile inside windows."""
    e = StreamingEngine(bundle, preset, 24_000)
    x = _tone(3.0, 24_000, 261.6)
    lat = []
    for i in range(0, len(x), 512):
        before = e.hops.committed.end
        e.process(x[i:i + 512])
        lat.append(e.hops.committed.get(before, e.hops.committed.end))
    lat = np.concatenate(lat, axis=1)
    n = lat.shape[1] - 40  # skip the start
    lat = lat[:, -n:]
    d = np.linalg.norm(np.diff(lat, axis=1), axis=0)  # d[i]: change from frame i to i+1
    first = e.hops.committed.end - n
    cols = np.arange(first + 1, e.hops.committed.end)  # committed column each d[i] arrives at
    # each hop appends H columns starting at a multiple of H; its crossfade starts there too
    seam = (cols % preset.hop) == 0
    return d[seam].max() / np.percentile(d[~seam], 99)


def test_window_seams_are_crossfaded_in_latent_space(bundle, tiny_preset):
    # Heun's few-step overshoot at σmax 20 makes windows disagree most: the hardest seams to hide
    p = dataclasses.replace(tiny_preset, window=16, hop=8, crossfade=3, sigma_max=20.0, solver="heun")
    faded = _seam_ratio(bundle, p)
    assert faded < 1.0 and _seam_ratio(bundle, dataclasses.replace(p, solver="euler")) < 1.0
    # the measure does see seams: without a crossfade they stand out
    hard = _seam_ratio(bundle, dataclasses.replace(p, crossfade=0))
    assert hard > 1.3 and hard > 2 * faded


# ------------------------------------------------------------------ the shipped models and presets
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "bundle"
needs_shipped = pytest.mark.skipif(not (SHIPPED / "bundle.json").is_file(), reason="no shipped bundle in models/")


@needs_shipped
def test_shipped_presets_cover_every_pair_and_run():
    import itertools

    from live.preset import list_presets

    presets = list_presets()
    b = Bundle(SHIPPED, provider="cpu", threads=1)
    pairs = {(p.source, p.target) for p in presets}
    assert set(itertools.permutations(b.instruments, 2)) <= pairs
    for p in presets:
        assert p.bundle_path() == SHIPPED.resolve()
        e = StreamingEngine(b, p, 48_000)
        y = e.process(_tone(0.5, 48_000, 440))
        assert np.isfinite(y).all()
        assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0, (p.name, e.error)


@needs_shipped
def test_no_clicks_with_the_shipped_models():
    from live.preset import load_preset

    b = Bundle(SHIPPED, provider="cpu", threads=1)
    p = load_preset("violin-to-flute")
    e = StreamingEngine(b, p, 24_000)
    _assert_no_clicks(e, _stream(e, _tone(3.0, 24_000, 392.0), [512]))
    assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0


def test_the_transport_map_is_made_when_the_engine_starts_or_is_set_not_in_a_hop(bundle, tiny_preset, monkeypatch):
    import live.bundle as lb

    made = []
    real = lb.transport_map
    monkeypatch.setattr(lb, "transport_map", lambda *a: made.append(a[2]) or real(*a))
    bundle._transport.clear()
    e = StreamingEngine(bundle, dataclasses.replace(tiny_preset, prior="transport", sigma_max=0.7), 24_000)
    assert made == [0.7]
    e.set(sigma_max=1.3)
    assert made == [0.7, 1.3]
    x = _tone(1.0, 24_000, 330)
    y = _stream(e, x, [512])
    assert made == [0.7, 1.3] and e.params["sigma_max"] == 1.3  # the hops found it made
    assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0 and np.abs(y).max() > 1e-4


def test_a_folding_preset_moves_the_wet_input_into_its_register_by_octaves(bundle, tiny_preset, monkeypatch):
    from core.pitchshift import PitchShifter, RegisterFold
    from live.hop import HopProcessor

    seen = []
    call = HopProcessor.__call__

    def record(self, chunk, dry_only=False, dry=None):
        seen.append(chunk.copy())
        return call(self, chunk, dry_only, dry)

    monkeypatch.setattr(HopProcessor, "__call__", record)
    plain = StreamingEngine(bundle, tiny_preset, 24_000)
    e = StreamingEngine(bundle, dataclasses.replace(tiny_preset, fold_centre=60), 24_000)
    assert e.shift_delay == PitchShifter(0).delay
    assert e.algorithmic_latency_ms == pytest.approx(plain.algorithmic_latency_ms + 1000 * e.shift_delay / 24_000)
    # C4, C5, C4 (harmonic tones) into 60 ± 8: the C5 goes down an octave, the C4 after it back up
    x = np.concatenate([sum(_tone(0.5, 24_000, f * k, 0.3 / k) for k in range(1, 6)) for f in (261.63, 523.25,
                                                                                                 261.63)])
    y = _stream(e, x, [300])
    wet = np.concatenate(seen)
    expected = PitchShifter(0, fold=RegisterFold(60), sample_rate=24_000)(x)
    np.testing.assert_array_equal(wet, expected[: len(wet)])  # the shifter's fold, on the same samples
    assert e.shifter.fold.moves == 2 and e.shifter.fold.semitones == 0
    assert np.abs(y).max() > 1e-3 and e.stats.errors == 0 and e.stats.dry_hops == 0


@pytest.mark.parametrize("rate", [24_000, 48_000])
def test_a_transposing_preset_shifts_the_wet_path_only_and_says_its_delay(bundle, tiny_preset, rate, monkeypatch):
    from core.pitchshift import PitchShifter
    from live.hop import HopProcessor

    seen = {"wet": [], "dry": []}
    call = HopProcessor.__call__

    def record(self, chunk, dry_only=False, dry=None):
        seen["wet"].append(chunk.copy())
        seen["dry"].append(chunk.copy() if dry is None else dry.copy())
        return call(self, chunk, dry_only, dry)

    monkeypatch.setattr(HopProcessor, "__call__", record)
    plain = StreamingEngine(bundle, tiny_preset, rate)
    e = StreamingEngine(bundle, dataclasses.replace(tiny_preset, transpose=-12), rate)
    assert e.shift_delay == PitchShifter(-12).delay
    assert e.delay == plain.delay + e.shift_delay * rate // 24_000
    assert e.algorithmic_latency_ms == pytest.approx(plain.algorithmic_latency_ms + 1000 * e.shift_delay / 24_000)
    x = _tone(1.0, 24_000, 440)
    seen["wet"].clear(), seen["dry"].clear()
    y = _stream(StreamingEngine(bundle, dataclasses.replace(tiny_preset, transpose=-12), 24_000), x, [300])
    wet, dry = np.concatenate(seen["wet"]), np.concatenate(seen["dry"])
    # the encoder hears the input shifted by the shifter (same delay), the dry path the input as played, as late
    np.testing.assert_array_equal(wet, PitchShifter(-12)(x)[: len(wet)])
    np.testing.assert_array_equal(dry[e.shift_delay:], x[: len(dry) - e.shift_delay])
    assert np.abs(y).max() > 1e-3
    # dry_wet 0 at any rate: the delayed input as played, not transposed, at the stated delay
    q = dataclasses.replace(tiny_preset, transpose=-12, dry_wet=0.0)
    e = StreamingEngine(bundle, q, rate)
    x = _tone(1.0, rate, 500)
    y = _stream(e, x, [300])
    skip = rate // 1000
    np.testing.assert_allclose(y[e.delay + skip:], x[skip: len(y) - e.delay], atol=2e-3)
    assert e.stats.errors == 0 and e.stats.dry_hops == 0


def test_the_edge_diagnostics_per_window_legs_are_what_the_engine_commits(bundle, tiny_preset):
    """evaluation.edge's "both per window" row is the hop processor's bridge: every committed frame the crossfade
    leaves alone, exactly (past the opening, where the whole-file encoder pads the start its own way); the rows with
    a leg over the whole clip are not (the denoisers look ahead)."""
    from evaluation.edge import legs_for_clip

    p = dataclasses.replace(tiny_preset, prior="matched")
    e = StreamingEngine(bundle, p, 24_000, gate_threshold_db=None, dc_cutoff_hz=None)
    hp, n = e.hops, e.hops.hop_samples
    x = _tone(1.0, 24_000, 330)[: 18 * n]
    committed = []
    for i in range(0, len(x), n):  # hop k commits frames [(k+1)·H − H − C, (k+1)·H − C): column c is frame c − C
        before = hp.committed.end
        hp(x[i:i + n])
        committed.append(hp.committed.get(before, hp.committed.end))
    C, H, W = p.crossfade, p.hop, p.window
    engine = np.concatenate(committed, axis=1)[:, C:]  # frames 0 … 18·H − C − 1
    rows = legs_for_clip(bundle, p, x, bundle.denoiser(p.target).time_factor)
    frames = np.arange(W + 8, engine.shape[1])  # windows clear of the encoder's first 8 frames
    alone = frames[(frames + C) % H >= C]  # the crossfade blends each hop's first C frames with the last window's
    blended = frames[(frames + C) % H < C]
    both = rows["both per window"]
    np.testing.assert_allclose(both[:, alone], engine[:, alone], rtol=1e-4, atol=1e-4)
    assert np.abs(both[:, blended] - engine[:, blended]).max() > 1e-3
    for k in ("whole", "asc per window", "desc per window"):
        assert np.abs(rows[k][:, frames] - engine[:, frames]).max() > 1e-2, k
