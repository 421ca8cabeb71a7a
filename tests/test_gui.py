"""The Qt control panel against a real engine (tiny ONNX bundle), offscreen; no mocks of Qt or the engine."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402

from gui.panel import ControlPanel, dial_to_sigma, sigma_to_dial  # noqa: E402
from live.preset import load_preset  # noqa: E402

LAYOUT = dict(window=16, hop=4, crossfade=2)


def _write(path, **fields):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    return path


@pytest.fixture
def preset_dir(tmp_path, tiny_bundle):
    d = tmp_path / "presets"
    _write(d / "a2b.json", name="a2b", source="alpha", target="beta", sigma_max=5.0, steps=2, solver="euler",
           dry_wet=1.0, bundle=str(tiny_bundle), **LAYOUT)
    _write(d / "b2a.json", name="b2a", source="beta", target="alpha", sigma_max=12.5, steps=3, dry_wet=0.75,
           bundle=str(tiny_bundle), description="the other way round", **LAYOUT)
    _write(d / "wide.json", name="wide", source="alpha", target="beta", sigma_max=2.0, steps=1, dry_wet=0.5,
           bundle=str(tiny_bundle), window=32, hop=8, crossfade=4)
    return d


@pytest.fixture
def settings_file(tmp_path):
    return tmp_path / "settings" / "panel.ini"


def _panel(qtbot, preset_dir, settings_file):
    panel = ControlPanel(preset_dir, QSettings(str(settings_file), QSettings.IniFormat), threads=1)
    qtbot.addWidget(panel)
    return panel


@pytest.fixture
def panel(qtbot, preset_dir, settings_file):
    p = _panel(qtbot, preset_dir, settings_file)
    yield p
    p.shutdown()


def _run_a_window(engine):
    """Parameters apply at the engine's next window: feed it enough audio for a few hops."""
    engine.process(np.zeros(4 * engine.H * engine.F * engine.device_rate // engine.sr, np.float32))


def test_dial_and_controls_reach_the_engine(panel, qtbot):
    eng = panel.build_engine()
    assert panel.engine is eng and eng.params["sigma_max"] == 5.0
    panel.sigma_dial.setValue(sigma_to_dial(20.0))
    assert panel.sigma_max == pytest.approx(20.0, rel=0.01) == panel.sigma_spin.value()
    assert eng.params["sigma_max"] == 5.0  # not before the next window
    _run_a_window(eng)
    assert eng.params["sigma_max"] == panel.sigma_max

    # the keyboard drives the dial too (PageUp = 100 of 1000 positions ≈ ×2.14 on the log scale)
    panel.sigma_dial.setFocus()
    before = panel.sigma_max
    qtbot.keyClick(panel.sigma_dial, Qt.Key_PageUp)
    assert panel.sigma_max == pytest.approx(before * (2000 ** 0.1), rel=0.02)

    panel.steps_spin.setValue(4)
    panel.dry_wet_slider.setValue(30)
    panel.gain_slider.setValue(6)
    panel.bypass_check.setChecked(True)
    _run_a_window(eng)
    p = eng.params
    assert p["sigma_max"] == panel.sigma_max
    assert (p["steps"], p["dry_wet"], p["bypass"]) == (4, pytest.approx(0.3), True)
    assert p["input_gain"] == pytest.approx(10 ** (6 / 20))


def test_transpose_in_the_panel_makes_a_new_engine_with_the_shifter(panel, preset_dir, settings_file, qtbot):
    eng = panel.build_engine()
    assert eng.shifter is None and "transpose" not in panel.state.live_values()
    before = panel.live_group.latency_label.text()
    panel.transpose_spin.stepDown()  # an octave per arrow step
    assert panel.state["transpose"] == -12
    new = panel.engine
    assert new is not eng and new.shifter is not None and new.shifter.semitones == -12
    assert new.delay == eng.delay + new.shift_delay  # at the models' rate
    assert new.params["sigma_max"] == eng.params["sigma_max"]  # the other controls carried over
    assert panel.live_group.latency_label.text() != before  # the shifter's 43 ms shown before any audio
    _run_a_window(new)
    assert new.stats.errors == 0 and new.stats.hops > 0
    assert panel.current_preset().transpose == -12  # what Save and Render use
    panel.preset_box.setCurrentText("b2a")  # a preset at its own octave: the shifter goes with the engine
    assert panel.state["transpose"] == 0 and panel.engine.shifter is None
    panel.preset_box.setCurrentText("a2b")
    panel.transpose_spin.setValue(-12)
    panel.shutdown()
    again = _panel(qtbot, preset_dir, settings_file)  # the setting is kept, as the other controls are
    assert again.state["transpose"] == -12 and again.transpose_spin.value() == -12
    again.shutdown()


def test_fold_in_the_panel_makes_a_new_engine_whose_shifter_folds(panel, preset_dir, settings_file, qtbot):
    eng = panel.build_engine()
    assert eng.shifter is None and panel.fold_spin.text() == "off" and "fold_centre" not in panel.state.live_values()
    before = panel.live_group.latency_label.text()
    panel.fold_spin.setValue(60)
    assert panel.state["fold_centre"] == 60
    new = panel.engine
    assert new is not eng and new.shifter is not None and new.shifter.fold.low == 60 - 8
    assert new.delay == eng.delay + new.shift_delay and panel.live_group.latency_label.text() != before
    _run_a_window(new)
    assert new.stats.errors == 0 and new.stats.hops > 0
    assert panel.current_preset().fold_centre == 60  # what Save and Render use
    panel.shutdown()
    again = _panel(qtbot, preset_dir, settings_file)  # kept, as the other controls are
    assert again.state["fold_centre"] == 60 and again.fold_spin.value() == 60
    again.shutdown()


def test_sigma_mapping_is_log_and_inverse():
    assert dial_to_sigma(0) == pytest.approx(0.1) and dial_to_sigma(1000) == pytest.approx(200.0)
    assert dial_to_sigma(500) == pytest.approx((0.1 * 200) ** 0.5, rel=0.01)  # geometric middle
    for s in (0.1, 0.5, 5.0, 80.0, 200.0):
        assert dial_to_sigma(sigma_to_dial(s)) == pytest.approx(s, rel=0.01)


def test_switching_target_reaches_the_engine(panel):
    eng = panel.build_engine()
    assert eng.params["target"] == "beta"
    assert [panel.target_box.itemText(i) for i in range(panel.target_box.count())] == ["alpha", "beta"]
    panel.target_box.setCurrentText("alpha")
    _run_a_window(eng)
    assert eng.params["target"] == "alpha"
    panel.source_box.setCurrentText("beta")
    _run_a_window(eng)
    assert (eng.params["source"], eng.params["target"]) == ("beta", "alpha")


def test_switching_preset_reaches_the_engine(panel, preset_dir):
    assert panel.preset_box.currentText() == "a2b"
    eng = panel.build_engine()
    panel.preset_box.setCurrentText("b2a")  # same bundle and layout: live parameters through engine.set
    _run_a_window(eng)
    assert panel.engine is eng
    b2a = load_preset(preset_dir / "b2a.json")
    assert b2a.solver == "heun"  # written without a solver: its steps were Heun steps (a2b's are Euler)
    for k in ("source", "target", "sigma_max", "steps", "solver", "dry_wet"):
        assert eng.params[k] == getattr(b2a, k), k
    assert "heun solver" in panel.details_label.text()
    panel.preset_box.setCurrentText("wide")  # another window layout: a new engine
    assert panel.engine is not eng and (panel.engine.W, panel.engine.H, panel.engine.C) == (32, 8, 4)
    assert panel.engine.params["sigma_max"] == 2.0


def test_loading_a_preset_updates_every_control(panel, tmp_path, tiny_bundle):
    path = _write(tmp_path / "elsewhere" / "custom.json", name="custom", source="beta", target="beta",
                  sigma_max=37.5, steps=5, dry_wet=0.25, bundle=str(tiny_bundle), description="loaded by hand",
                  **LAYOUT)
    preset = panel.load_preset_file(path)
    assert preset is not None
    assert panel.preset_box.currentText() == "custom"
    assert panel.source_box.currentText() == "beta" and panel.target_box.currentText() == "beta"
    assert panel.sigma_spin.value() == 37.5 and panel.sigma_max == 37.5
    assert panel.sigma_dial.value() == sigma_to_dial(37.5)
    assert panel.steps_spin.value() == 5
    assert panel.dry_wet_slider.value() == 25 and panel.dry_wet == 0.25
    assert "loaded by hand" in panel.description_label.text()
    cur = panel.current_preset()
    for k in ("name", "source", "target", "sigma_max", "steps", "dry_wet", "window", "hop", "crossfade"):
        assert getattr(cur, k) == getattr(preset, k), k

    # a broken preset changes nothing and says why
    bad = _write(tmp_path / "elsewhere" / "bad.json", name="bad", source="alpha", target="beta", sigma_max=-1,
                 bundle=str(tiny_bundle))
    assert panel.load_preset_file(bad) is None
    assert "sigma_max" in panel.status_label.text()
    assert panel.sigma_max == 37.5 and panel.preset_box.currentText() == "custom"


def test_save_preset_round_trip(panel, tmp_path, tiny_bundle):
    panel.sigma_spin.setValue(42.0)
    panel.steps_spin.setValue(6)
    panel.target_box.setCurrentText("alpha")
    out = panel.save_preset_file(tmp_path / "mine" / "my-sound.json")
    saved = load_preset(out)
    assert (saved.name, saved.sigma_max, saved.steps, saved.target) == ("my-sound", 42.0, 6, "alpha")
    assert saved.bundle_path() == tiny_bundle.resolve()
    assert panel.preset_box.currentText() == "my-sound"


def test_settings_persist(qtbot, preset_dir, settings_file):
    p1 = _panel(qtbot, preset_dir, settings_file)
    p1.preset_box.setCurrentText("b2a")
    p1.sigma_dial.setValue(sigma_to_dial(63.0))
    sigma = p1.sigma_max
    p1.steps_spin.setValue(7)
    p1.gain_slider.setValue(-6)
    p1.render_mode_box.setCurrentIndex(1)
    p1.close()  # closeEvent → shutdown → settings written
    p1.deleteLater()
    qtbot.wait(10)
    assert settings_file.is_file()

    p2 = _panel(qtbot, preset_dir, settings_file)  # a fresh QSettings object on the same file
    try:
        assert p2.preset_box.currentText() == "b2a"
        assert p2.sigma_max == sigma and p2.sigma_dial.value() == sigma_to_dial(63.0)
        assert p2.steps_spin.value() == 7
        assert p2.gain_slider.value() == -6
        assert p2.render_mode_box.currentData() == "offline"
        # picking a preset again shows the preset's own values
        p2.preset_box.setCurrentText("a2b")
        p2.preset_box.setCurrentText("b2a")
        assert p2.sigma_max == 12.5 and p2.steps_spin.value() == 3
    finally:
        p2.shutdown()


def test_start_without_a_device_says_so(panel, qtbot):
    n = threading.active_count()
    panel.input_box.addItem("ghost device", 999)  # an index PortAudio does not have
    panel.input_box.setCurrentIndex(panel.input_box.count() - 1)
    with qtbot.waitSignal(panel.error_occurred, timeout=5000) as sig:
        assert panel.start() is False
    msg = sig.args[0]
    assert msg.startswith("Cannot start audio") and any(k in msg for k in ("#999", "no audio input device",
                                                                           "PortAudio is not available")), msg
    assert not panel.running and panel.start_button.text() == "&Start" and not panel.start_button.isChecked()
    assert threading.active_count() == n
    # Space (from a control that does not use it, e.g. the dial) is the start/stop key
    panel.status_label.clear()
    panel.sigma_dial.setFocus()
    qtbot.keyClick(panel.sigma_dial, Qt.Key_Space)
    assert "Cannot start audio" in panel.status_label.text()


def test_keyboard_access(panel):
    # every control is in the tab chain and has a mnemonic label or text
    chain, w = [], panel.start_button
    for _ in range(60):
        chain.append(w)
        w = w.nextInFocusChain()
        if w is panel.start_button:
            break
    for widget in (panel.input_box, panel.output_box, panel.preset_box, panel.source_box, panel.target_box,
                   panel.sigma_dial, panel.sigma_spin, panel.steps_spin, panel.transpose_spin, panel.fold_spin,
                   panel.dry_wet_slider,
                   panel.gain_slider,
                   panel.bypass_check, panel.render_button, panel.load_button, panel.save_button):
        assert widget in chain
    assert chain.index(panel.sigma_dial) < chain.index(panel.dry_wet_slider)
    assert "&" in panel.start_button.text() and "&" in panel.bypass_check.text()


def test_render_a_file_through_the_panel(panel, qtbot, tmp_path):
    render = pytest.importorskip("live.render")
    if not hasattr(render, "render_file"):
        pytest.skip("live.render has no render_file yet")
    sf = pytest.importorskip("soundfile")
    sr = 48000
    t = np.arange(int(0.6 * sr)) / sr
    src = tmp_path / "in.wav"
    sf.write(src, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    out = tmp_path / "out" / "rendered.wav"
    out.parent.mkdir()
    seen = []
    panel.render_progress.valueChanged.connect(seen.append)
    with qtbot.waitSignal(panel.render_finished, timeout=60000) as sig:
        assert panel.render_file(src, out, mode="as-live")
    assert sig.args == [str(out)]
    assert out.is_file() and sf.info(str(out)).frames > 0
    assert panel.render_progress.value() == 100
    assert seen == sorted(seen) and seen[-1] == 100


def test_a_model_error_is_shown_at_once_while_the_audio_goes_on(panel):
    from live.audio import SessionStatus

    class PlayingWithAFailingModel:
        def status(self, reset_peaks=True):
            return SessionStatus(running=True, model_error="RuntimeError: the model exploded", model_errors=3)

        def stop(self):
            raise AssertionError("a model error must not stop the audio")

    session = panel.session = PlayingWithAFailingModel()
    panel._poll()
    assert panel.session is session  # still playing (dry hops) …
    assert "exploded" in panel.status_label.text() and "3 hops" in panel.status_label.text()  # … and said at once
    panel.session = None


def test_the_controls_take_their_ranges_and_help_from_the_parameter_table(panel):
    from live.params import param

    steps, sigma, mix = param("steps"), param("sigma_max"), param("dry_wet")
    assert (panel.steps_spin.minimum(), panel.steps_spin.maximum()) == (steps.low, steps.high)
    assert panel.steps_spin.toolTip() == steps.help
    assert (panel.sigma_spin.minimum(), panel.sigma_spin.maximum()) == (sigma.low, sigma.high)
    assert sigma.help in panel.sigma_spin.toolTip()
    assert (panel.dry_wet_slider.minimum(), panel.dry_wet_slider.maximum()) == (100 * mix.low, 100 * mix.high)


def test_the_panel_state_checks_values_by_the_table(qtbot):
    from gui.state import PanelState
    from live.params import ParamError

    state, seen = PanelState(), []
    state.changed.connect(lambda name, value: seen.append((name, value)))
    n = state["steps"] + 1
    assert state.set("steps", n) and not state.set("steps", n)  # a value it already has is no change
    with pytest.raises(ParamError):
        state.set("steps", 0)
    assert seen == [("steps", n)] and state["steps"] == n


def test_the_latency_shown_before_start_is_the_engines(tiny_bundle, tiny_preset, qtbot):
    import dataclasses

    from gui.controller import compatible
    from gui.state import PanelState
    from live.bundle import Bundle
    from live.engine import StreamingEngine

    bundle = Bundle(tiny_bundle, provider="cpu", threads=1)
    codec = dict(hop_length=bundle.samples_per_frame, sample_rate=bundle.sample_rate)
    for transpose in (0, -12):  # a transposing preset's shifter frame is part of it
        p = dataclasses.replace(tiny_preset, transpose=transpose)
        state = PanelState()
        state.load(p, bundle.instruments, codec, {"source": p.source, "target": p.target, "transpose": transpose})
        assert state.algorithmic_latency_ms() == pytest.approx(StreamingEngine(bundle, p).algorithmic_latency_ms)
    # and a preset that transposes otherwise needs another engine (the stream's delay changes)
    assert not compatible(tiny_preset, dataclasses.replace(tiny_preset, transpose=12))


def test_the_margin_is_measured_at_start_unless_set(panel, settings_file):
    assert panel.margin_spin.value() == 0 and panel.margin_spin.text() == "auto"
    assert panel.audio_group.choice()["margin_ms"] is None  # LiveSession(margin_ms=None) measures it
    assert panel.latency_label.text().endswith(" ms algorithmic + margin")
    panel.margin_spin.setValue(40)
    assert panel.audio_group.choice()["margin_ms"] == 40.0
    assert panel.latency_label.text().endswith(" ms algorithmic + 40 ms margin")
    panel.save_settings()
    assert QSettings(str(settings_file), QSettings.IniFormat).value("audio/margin_ms", type=int) == 40


def test_an_unreadable_bundle_is_named_and_the_preset_still_shows(panel, tmp_path):
    path = _write(tmp_path / "elsewhere" / "lost.json", name="lost", source="alpha", target="beta", sigma_max=3.0,
                  bundle=str(tmp_path / "nowhere"), **LAYOUT)
    assert panel.load_preset_file(path) is not None
    assert "Cannot read the bundle" in panel.status_label.text() and "bundle.json" in panel.status_label.text()
    assert panel.sigma_max == 3.0 and panel.sigma_spin.value() == 3.0
    assert [panel.source_box.itemText(i) for i in range(panel.source_box.count())] == ["alpha", "beta"]


def test_saved_control_values_the_table_refuses_give_way_to_the_preset(qtbot, preset_dir, settings_file):
    s = QSettings(str(settings_file), QSettings.IniFormat)
    s.setValue("preset/path", str((preset_dir / "b2a.json").resolve()))
    s.setValue("controls/steps", 500)  # above the table's 64
    s.setValue("controls/sigma_max", "loud")
    s.setValue("controls/dry_wet", 0.5)
    s.sync()
    p = _panel(qtbot, preset_dir, settings_file)
    try:
        assert p.preset_box.currentText() == "b2a"
        assert p.steps_spin.value() == 3 and p.sigma_max == 12.5  # b2a's own
        assert p.dry_wet == 0.5 and p.dry_wet_slider.value() == 50  # the saved one
    finally:
        p.shutdown()


@pytest.mark.parametrize("saved_solver,steps_after", [("heun", 2), (None, 2), ("euler", 7)])
def test_saved_steps_count_only_for_the_solver_they_were_saved_with(qtbot, preset_dir, settings_file, saved_solver,
                                                                    steps_after):
    # a2b: Euler 2 steps. Steps saved under Heun (or before the solver was saved) would be another cost: dropped
    s = QSettings(str(settings_file), QSettings.IniFormat)
    s.setValue("preset/path", str((preset_dir / "a2b.json").resolve()))
    s.setValue("controls/steps", 7)
    if saved_solver:
        s.setValue("controls/solver", saved_solver)
    s.sync()
    p = _panel(qtbot, preset_dir, settings_file)
    try:
        assert p.preset_box.currentText() == "a2b" and p.steps_spin.value() == steps_after
        eng = p.build_engine()
        assert (eng.params["solver"], eng.params["steps"]) == ("euler", steps_after)
    finally:
        p.shutdown()
