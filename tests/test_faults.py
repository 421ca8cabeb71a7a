"""No silent failure and no lost recording: every fault says so, every bad input gets one clear message.

Each test here failed on the main branch before the fix it names (issue #13)."""
import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from live.bundle import Bundle, BundleError
from live.engine import EngineError, StreamingEngine
from live.hop import DCBlocker, InputGate
from live.preset import PresetError, load_preset
from live.render import main as render_main
from live.render import render_array, render_file

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "bundle"
needs_shipped = pytest.mark.skipif(not (SHIPPED / "bundle.json").is_file(), reason="no shipped bundle in models/")


def _tone(seconds, rate, f=220.0, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _run(fn, argv):
    """(exit status, stderr) of an entry point called in-process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = fn(argv)
    return rc, err.getvalue()


@pytest.fixture
def bundle(tiny_bundle):
    return Bundle(tiny_bundle, provider="cpu", threads=1)


class Raising:
    """A model that always fails, standing in for a broken session."""

    time_factor = 1
    moments = (0.0, 1.0)  # what prior matched asks of a denoiser before it runs one

    @staticmethod
    def to_own(z):
        return z

    from_own = to_own

    def __call__(self, *a, **k):
        raise RuntimeError("the model exploded")


def _break(bundle, what):
    if what == "encoder":
        bundle.encode = Raising()
    elif what == "decoder":
        bundle.decode = Raising()
    else:
        bundle.denoiser("alpha")  # opened, then replaced
        bundle._denoisers["alpha"] = Raising()
    return bundle


# ------------------------------------------------------------------ data loss
def test_a_render_never_replaces_its_input(tmp_path, preset_file):
    src = tmp_path / "take.wav"
    sf.write(src, _tone(0.5, 24_000), 24_000)
    before = src.read_bytes()
    rc, err = _run(render_main, [str(src), str(src), "--preset", str(preset_file), "--threads", "1"])
    assert rc == 2 and "never replaces its input" in err and err.count("error:") == 1
    assert src.read_bytes() == before


def test_a_folder_is_not_rendered_into_itself_and_name_clashes_are_refused(tmp_path, preset_file):
    d = tmp_path / "takes"
    d.mkdir()
    sf.write(d / "take.wav", _tone(0.5, 24_000), 24_000)
    sf.write(d / "take.flac", _tone(0.5, 24_000, 330), 24_000)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    for out in (d, d / "sub"):
        rc, err = _run(render_main, [str(d), str(out), "--preset", str(preset_file), "--threads", "1"])
        assert rc == 2 and "inside the input folder" in err
    rc, err = _run(render_main, [str(d), str(tmp_path / "out"), "--preset", str(preset_file), "--threads", "1"])
    assert rc == 2 and "same output file" in err and "take.wav" in err and "take.flac" in err
    assert not (tmp_path / "out").exists()
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_one_unreadable_file_does_not_stop_the_batch(tmp_path, preset_file):
    d = tmp_path / "takes"
    d.mkdir()
    sf.write(d / "a.wav", _tone(0.5, 24_000), 24_000)
    (d / "b.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(d / "c.wav", _tone(0.5, 24_000, 330), 24_000)
    rc, err = _run(render_main, [str(d), str(tmp_path / "out"), "--preset", str(preset_file), "--threads", "1"])
    assert rc == 1
    assert "1 of 3 files were not rendered" in err and "b.wav" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "c.wav"]


# ------------------------------------------------------------------ silent failure
@pytest.mark.parametrize("what", ["encoder", "denoiser", "decoder"])
def test_a_failing_model_is_counted_live_and_fails_an_offline_render(tiny_bundle, tiny_preset, tmp_path, what):
    live = StreamingEngine(_break(Bundle(tiny_bundle, provider="cpu", threads=1), what), tiny_preset, 24_000)
    y = live.process(_tone(0.5, 24_000))
    assert live.stats.errors > 0 and "exploded" in str(live.error)  # live: the audio goes on, the fault is kept
    assert np.isfinite(y).all()
    with pytest.raises(EngineError, match="exploded"):
        render_array(_tone(0.5, 24_000), 24_000,
                     lambda r: StreamingEngine(_break(Bundle(tiny_bundle, provider="cpu", threads=1), what),
                                               tiny_preset, r, fail_fast=True))
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, _tone(0.5, 24_000), 24_000)
    with pytest.raises(EngineError):
        render_file(src, out, tiny_preset, bundle=_break(Bundle(tiny_bundle, provider="cpu", threads=1), what))
    assert not out.exists()  # no dry copy passed off as a transfer


def test_the_live_session_status_reports_a_model_error(tiny_bundle, tiny_preset):
    from live.audio import LiveSession

    session = LiveSession.__new__(LiveSession)  # the status logic alone, without a device
    eng = StreamingEngine(_break(Bundle(tiny_bundle, provider="cpu", threads=1), "denoiser"), tiny_preset, 24_000)
    eng.process(_tone(0.3, 24_000))
    assert eng.stats.errors > 0
    session.engine, session.error, session._running, session.io, session._t0, session.streams = eng, None, True, None, None, []
    st = session.status()
    assert st.running and st.error is None  # live: the stream goes on (those hops dry) …
    assert "exploded" in (st.model_error or "") and st.model_errors > 0  # … and says so at once
    assert "MODEL ERROR" in st.line()


@pytest.mark.parametrize("argv,message", [
    (["--block", "-5"], "--block"), (["--block", "0"], "--block"), (["--steps", "0"], "--steps"),
    (["--steps", "65"], "--steps"), (["--sigma-max", "nan"], "--sigma-max"), (["--dry-wet", "2"], "--dry-wet"),
    (["--threads", "0"], "--threads")])
def test_numeric_options_are_checked_on_the_command_line(tmp_path, preset_file, argv, message):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(0.3, 24_000), 24_000)
    with pytest.raises(SystemExit) as e, contextlib.redirect_stderr(io.StringIO()) as err:
        render_main([str(src), str(tmp_path / "o.wav"), "--preset", str(preset_file)] + argv)
    assert e.value.code == 2 and message in err.getvalue()
    assert not (tmp_path / "o.wav").exists()


def test_offline_mode_caps_the_doubled_steps_instead_of_blaming_the_preset(tmp_path, preset_file):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(0.5, 24_000), 24_000)
    rc, err = _run(render_main, [str(src), str(tmp_path / "o.wav"), "--preset", str(preset_file), "--steps", "40",
                                 "--mode", "offline", "--threads", "1"])
    assert rc == 0, err
    assert (tmp_path / "o.wav").is_file()


# ------------------------------------------------------------------ audio defects
def test_dc_blocker_is_the_one_pole_filter_whatever_the_chunking():
    x = np.random.default_rng(0).normal(size=5000).astype(np.float32) + 0.3
    R = np.exp(-2 * np.pi * 20 / 24_000)
    ref, x1, y1 = np.empty(len(x)), 0.0, 0.0
    for i, v in enumerate(x.astype(np.float64)):  # y[n] = x[n] − x[n−1] + R·y[n−1]
        y1 = v - x1 + R * y1
        x1 = v
        ref[i] = y1
    whole = DCBlocker(24_000)(x)
    b = DCBlocker(24_000)
    parts = np.concatenate([b(x[i:i + 777]) for i in range(0, len(x), 777)])
    np.testing.assert_allclose(whole, ref, atol=1e-5)
    np.testing.assert_allclose(parts, ref, atol=1e-5)
    assert abs(DCBlocker(24_000)(np.full(48_000, 0.5, np.float32))[-2400:].mean()) < 1e-4  # DC is removed


def test_the_gate_follows_the_input_to_silence():
    g = InputGate(24_000, threshold_db=-55.0, ratio=4.0)
    loud = g(np.full(2560, 0.1, np.float32))
    assert np.allclose(loud[160:], 1.0)
    quiet = g(np.full(24_000, 10 ** (-65 / 20), np.float32))  # 10 dB under the threshold → 30 dB down
    assert 20 * np.log10(quiet[-1]) == pytest.approx(-30.0, abs=0.5)
    assert quiet[0] > quiet[-1]  # it closes gradually (release), it does not snap
    silent = g(np.zeros(24_000, np.float32))
    assert silent[-1] < 1e-6  # −120 dB after a second of digital silence


@needs_shipped
def test_silence_in_gives_silence_out_and_no_dc():
    b = Bundle(SHIPPED, provider="cpu", threads=1)
    p = load_preset("violin-to-flute")
    y, e = render_array(np.zeros(3 * 24_000, np.float32), 24_000, lambda r: StreamingEngine(b, p, r, fail_fast=True))
    assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 0
    assert np.max(np.abs(y)) < 1e-5  # was about −49 dBFS of hum around 500–590 Hz before the gate
    x, _ = sf.read(ROOT / "examples" / "violin_phrase.flac", dtype="float32")
    y, e = render_array(x, 24_000, lambda r: StreamingEngine(b, p, r, fail_fast=True))
    assert e.stats.errors == 0 and e.stats.dry_hops == 0
    assert np.sqrt(np.mean(y ** 2)) > 1e-3 and abs(float(np.mean(y))) < 3e-4  # the DC offset was about −0.003


@needs_shipped
def test_a_files_first_notes_come_out_at_full_level():
    """The first 300 ms of a file, rendered as its start and inside the longer file: the same level when primed
    (measured here before priming: 6.5 and 11.7 dB quieter at these two starts)."""
    b = Bundle(SHIPPED, provider="cpu", threads=1)
    p = load_preset("violin-to-flute")
    x, sr = sf.read(ROOT / "examples" / "violin_phrase.flac", dtype="float32")
    n = int(0.3 * sr)

    def level(y):
        return 20 * np.log10(np.sqrt(np.mean(y[:n] ** 2)) + 1e-12)

    def render(x, prime=True):
        y, e = render_array(x, sr, lambda r: StreamingEngine(b, p, r, fail_fast=True), prime=prime)
        assert e.stats.errors == 0 and e.stats.dry_hops == 0
        return y

    whole = render(x)
    for start in (2.0, 4.0):
        s0 = int(start * sr)
        inside = level(whole[s0:])
        primed, cold = render(x[s0:]), render(x[s0:], prime=False)
        assert abs(level(primed) - inside) < 2.0
        # priming ran: the first notes differ from a cold start's (the models before session 10 started 6.5 and
        # 11.7 dB quieter cold here; today's are within about 1 dB either way, so the level alone cannot tell)
        assert np.max(np.abs(primed[:n] - cold[:n])) > 0.1 * np.max(np.abs(primed[:n]))


def test_priming_feeds_the_files_opening_backwards_and_discards_what_it_makes():
    """What the first-notes test cannot tell by level with today's models: the engine hears the file's opening
    reversed (not silence, not another stretch) before the file, and that part of its output is dropped."""
    from live.render import prime_length, render_array

    class RecordingEngine:  # the attributes render_array and prime_length read; output = input, delayed
        W, dec_ctx, F, enc_ctx, H, sr, delay = 32, 4, 320, 640, 4, 24_000, 100

        def __init__(self):
            self.heard = []

        def process(self, block):
            self.heard.append(block.copy())
            return block

    x = np.random.default_rng(0).standard_normal(24_000).astype(np.float32)
    engine = RecordingEngine()
    y, _ = render_array(x, 24_000, lambda sr: engine, block=256)
    heard = np.concatenate(engine.heard)
    n = prime_length(engine, 24_000)
    assert n == int(np.ceil((36 * 320 + 640)))
    assert np.array_equal(heard[:n], x[:n][::-1]) and np.array_equal(heard[n:n + len(x)], x)
    assert np.array_equal(y[: len(x) - engine.delay], x[engine.delay:])  # the primed part is not in the output


def test_the_inputs_sample_format_is_kept(tmp_path, preset_file):
    preset = load_preset(preset_file)
    src = tmp_path / "in24.wav"
    sf.write(src, _tone(0.5, 48_000), 48_000, subtype="PCM_24")
    render_file(src, tmp_path / "o.wav", preset, threads=1)
    assert sf.info(str(tmp_path / "o.wav")).subtype == "PCM_24"
    render_file(src, tmp_path / "o.flac", preset, threads=1)
    assert sf.info(str(tmp_path / "o.flac")).subtype == "PCM_24"
    render_file(src, tmp_path / "f.wav", preset, threads=1, subtype="FLOAT")
    assert sf.info(str(tmp_path / "f.wav")).subtype == "FLOAT"
    rc, err = _run(render_main, [str(src), str(tmp_path / "x.flac"), "--preset", str(preset_file), "--subtype", "FLOAT"])
    assert rc == 2 and "cannot hold sample format FLOAT" in err and not (tmp_path / "x.flac").exists()


# ------------------------------------------------------------------ tracebacks → messages
def _copy_bundle(tiny_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dst)
    return dst


@pytest.mark.parametrize("damage,message", [
    ("truncate-encoder", "encoder.onnx: not a loadable ONNX model"),
    ("no-codec", "missing field 'codec'"),
    ("latent-dim", "channels but bundle.json says latent_dim"),
    ("truncate-denoiser", "denoiser-alpha.onnx: not a loadable ONNX model")])
def test_a_damaged_bundle_gives_one_line_naming_the_file(tmp_path, tiny_bundle, damage, message):
    b = _copy_bundle(tiny_bundle, tmp_path)
    meta = json.loads((b / "bundle.json").read_text())
    if damage.startswith("truncate"):
        f = b / ("encoder.onnx" if damage.endswith("encoder") else "denoiser-alpha.onnx")
        f.write_bytes(f.read_bytes()[:200])
    elif damage == "no-codec":
        del meta["codec"]
    else:
        meta["codec"]["latent_dim"] += 1
        meta["codec"]["silence_latent"].append(0.0)
    (b / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=message):
        Bundle(b, provider="cpu", threads=1).denoiser("alpha")
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps(dict(name="p", source="alpha", target="beta", sigma_max=5.0, window=16, hop=4,
                                      crossfade=2, bundle=str(b))))
    src = tmp_path / "in.wav"
    sf.write(src, _tone(0.3, 24_000), 24_000)
    proc = subprocess.run([sys.executable, "-m", "live.render", str(src), str(tmp_path / "o.wav"), "--preset",
                           str(preset)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error:") and message in proc.stderr
    assert not (tmp_path / "o.wav").exists()


def test_bench_and_preset_listing_report_instead_of_tracebacks(tmp_path, preset_file, tiny_bundle):
    proc = subprocess.run([sys.executable, "-m", "live.bench", "--preset", "nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "no preset 'nope'" in proc.stderr
    from live.preset import main as preset_main

    d = preset_file.parent
    (d / "broken.json").write_text(json.dumps(dict(name="broken", source="alpha", target="beta")))  # no sigma_max
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = preset_main(["--preset-dir", str(d)])
    assert rc == 1 and "alpha-to-beta" in out.getvalue()  # the good one is still listed
    assert "missing field(s) sigma_max" in err.getvalue()
    proc = subprocess.run([sys.executable, "-m", "live.preset", "--preset-dir", str(tmp_path / "nowhere")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such preset folder" in proc.stderr and "Traceback" not in proc.stderr
    bad_bundle = _copy_bundle(tiny_bundle, tmp_path)
    (bad_bundle / "encoder.onnx").write_bytes(b"not onnx")
    (d / "broken.json").write_text(json.dumps(dict(name="b2", source="alpha", target="beta", sigma_max=2.0,
                                                   window=16, hop=4, crossfade=2, bundle=str(bad_bundle))))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = preset_main(["--preset-dir", str(d)])
    assert rc == 1 and "encoder.onnx: not a loadable ONNX model" in err.getvalue()


def test_a_preset_must_say_its_sigma_max(tmp_path, preset_file):
    data = json.loads(preset_file.read_text())
    del data["sigma_max"]
    f = tmp_path / "nosigma.json"
    f.write_text(json.dumps(data))
    with pytest.raises(PresetError, match="sigma_max"):
        load_preset(f)


def test_ctrl_c_exits_130_without_a_traceback():
    from core.cli import EXIT_INTERRUPTED, run_main

    def interrupted():
        raise KeyboardInterrupt

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_main(interrupted) == EXIT_INTERRUPTED == 130
    assert "Traceback" not in err.getvalue()


def test_the_model_card_says_what_the_training_record_says():
    from train.card import adversarial_text

    assert "no adversarial stage reached" in adversarial_text(dict(steps=4221, args=dict(adv_start="20000")))
    text = adversarial_text(dict(steps=9000, args=dict(adv_start="4500")))
    assert "from step 4500" in text and "4500 adversarial steps" in text and "no adversarial" not in text


def test_bench_figures_come_from_hops_that_ran(bundle, tiny_preset, tiny_bundle):
    from live.bench import bench_preset, measure_rtf

    rows = bench_preset(bundle, tiny_preset, [2], 24_000, 256, 1.0, margin_ms=0.0)
    r = rows[0]
    assert r["errors"] == 0 and r["dry_hops"] == 0
    assert 0 < r["hop_p50_ms"] <= r["hop_p99_ms"] and r["rtf"] > 0
    frame_ms = 1000 * bundle.samples_per_frame / bundle.sample_rate
    assert r["hop_budget_ms"] == pytest.approx(tiny_preset.hop * frame_ms, abs=0.01)
    # the latency split: (H + C) frames, no resampler at 24 kHz, the margin asked for, two device blocks
    assert r["algorithmic_ms"] == pytest.approx((tiny_preset.hop + tiny_preset.crossfade) * frame_ms, abs=0.05)
    assert r["resampler_ms"] == 0 and r["margin_ms"] == 0 and r["device_ms"] == pytest.approx(2000 * 256 / 24_000, abs=0.05)
    with pytest.raises(EngineError):  # a model that raises stops the benchmark instead of timing dry hops
        measure_rtf(_break(Bundle(tiny_bundle, provider="cpu", threads=1), "denoiser"), tiny_preset,
                    _tone(1.0, 24_000), 24_000, 256)


def test_the_render_command_fails_loudly_when_a_model_raises(tmp_path, preset_file, monkeypatch):
    import live.render

    class BrokenBundle(Bundle):
        def transfer(self, *a, **k):
            raise RuntimeError("the model exploded")

    monkeypatch.setattr(live.render, "Bundle", BrokenBundle)
    src = tmp_path / "in.wav"
    sf.write(src, _tone(0.5, 24_000), 24_000)
    rc, err = _run(render_main, [str(src), str(tmp_path / "o.wav"), "--preset", str(preset_file), "--threads", "1"])
    assert rc == 1 and err.count("error:") == 1 and "exploded" in err
    assert not (tmp_path / "o.wav").exists()


def test_the_live_margin_comes_from_hop_times_measured_through_the_worker(bundle, tiny_preset):
    from live.engine import SCHEDULING_MS, margin_from_hop_times, measure_hop_ms

    times = measure_hop_ms(bundle, tiny_preset, hops=16)
    assert len(times) == 16 and (times > 0).all()
    m = margin_from_hop_times(times, block_ms=5.0)
    assert m == pytest.approx(max(1.25 * np.percentile(times, 99), 1.5 * np.median(times)) + 5.0 + SCHEDULING_MS)
    assert m > times.max()  # covers every measured hop
    # a calibration that saw no slow hop still leaves 1.5 × the median for them, plus a block and the scheduling room
    assert margin_from_hop_times(np.full(64, 10.0), block_ms=5.0) == pytest.approx(15.0 + 5.0 + SCHEDULING_MS)
