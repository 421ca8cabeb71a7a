"""The real PortAudio path through a JACK dummy server (no sound card needed): live session, CLI, bad devices,
unsupported rates, and a server that dies mid-run. Skipped when jackd is not installed."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from live import audio
from live.audio import LiveSession, NoDeviceError, UnsupportedSettingsError

ROOT = Path(__file__).resolve().parents[1]
JACK_RATE, JACK_PERIOD = 48000, 256
pytestmark = pytest.mark.audio


class JackServer:
    """jackd -d dummy under a private server name (never touches a user's own JACK server)."""

    def __init__(self, log: Path):
        self.name = f"timbre-test-{os.getpid()}-{time.monotonic_ns() % 100000}"
        self.log_path = log
        self.proc: subprocess.Popen | None = None
        self.old_env = os.environ.get("JACK_DEFAULT_SERVER")

    def start(self) -> "JackServer":
        if shutil.which("jackd") is None:
            pytest.skip("jackd is not installed (apt install jackd2) - no PortAudio device to test with")
        try:
            audio._sd()
        except audio.AudioDeviceError as e:
            pytest.skip(str(e))
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "-d", "dummy", "-r", str(JACK_RATE),
                                      "-p", str(JACK_PERIOD)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        os.environ["JACK_DEFAULT_SERVER"] = self.name  # what libjack (inside PortAudio) connects to
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if self.proc.poll() is not None:
                self.stop()
                pytest.skip(f"jackd exited ({self.proc.returncode}): {self.log_path.read_text()[-300:]}")
            audio.rescan()  # PortAudio enumerates JACK only when it initializes
            if self.device() is not None:
                return self
        self.stop()
        pytest.skip("no JACK device appeared in PortAudio within 10 s (PortAudio built without JACK?)")

    def device(self) -> audio.Device | None:
        return next((d for d in audio.list_devices() if d.hostapi.startswith("JACK")), None)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stop(self) -> None:
        # PortAudio must let go of the server before it goes (its JACK host API asserts on a dead server),
        # unless a stream was abandoned on it already (test_device_lost_...): then it is never terminated.
        sd = audio._sd()
        reinit = audio._terminate_is_safe(sd)
        if reinit:
            sd._terminate()
        self.kill()
        if self.old_env is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = self.old_env
        if reinit:
            sd._initialize()
        if hasattr(self, "log"):
            self.log.close()


@pytest.fixture(scope="module")
def jack(tmp_path_factory):
    server = JackServer(tmp_path_factory.mktemp("jack") / "jackd.log").start()
    yield server
    server.stop()


def _wait(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ------------------------------------------------------------------------------------------------ no device
def test_missing_device_is_a_clear_error_and_leaves_no_thread(tiny_preset):
    n = threading.active_count()
    session = LiveSession(tiny_preset, input="no-such-device-xyz", threads=1)
    with pytest.raises(NoDeviceError) as e:
        session.start()
    msg = str(e.value)
    assert "\n" not in msg and any(k in msg for k in ("no-such-device-xyz", "no audio input device",
                                                      "PortAudio is not available")), msg
    assert session.engine is None and not session.running
    session.stop()  # harmless
    assert threading.active_count() == n


# ------------------------------------------------------------------------------------------------ with JACK
def test_the_jack_probe_sees_the_server_it_is_pointed_at(jack, monkeypatch, capfd):
    assert audio.jack_server_running() is True  # the private dummy server (JACK_DEFAULT_SERVER)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"{jack.name}-absent")
    assert audio.jack_server_running() is False
    assert capfd.readouterr().err == ""  # libjack's complaints about the missing server stay quiet


def test_live_session_runs_without_dropouts(jack, tiny_preset):
    dev = jack.device()
    n = threading.active_count()
    session = LiveSession(tiny_preset, input=dev.label, output=dev.index, threads=1)  # default block, margin
    session.start()
    try:
        assert session.rate == JACK_RATE and session.block == 256
        assert len(session.streams) == 1  # one duplex stream
        t_end = time.monotonic() + 10.5
        while time.monotonic() < t_end:
            time.sleep(0.5)
            st = session.status()
            assert st.error is None and st.running, st.line()
        session.engine.set(sigma_max=9.0, target="alpha")  # what the GUI does while running
        assert _wait(lambda: session.engine.params["sigma_max"] == 9.0, 2.0)
    finally:
        session.stop()
    st = session.status()
    print(st.line())
    assert st.seconds >= 10.0
    hop_s = session.engine.H * session.engine.F / session.engine.sr
    assert st.hops >= 0.8 * 10.0 / hop_s, st.line()  # the worker kept up with the stream
    assert (st.underruns, st.overruns, st.dry_hops) == (0, 0, 0), st.line()
    assert st.callbacks >= 0.8 * 10.0 * JACK_RATE / 256
    assert st.latency_ms >= session.engine.latency_ms > 0
    assert session.engine._worker is None and threading.active_count() == n


def test_separate_input_and_output_streams(jack, tiny_preset):
    """What runs when input and output are on different host APIs: two streams, two callbacks."""
    dev = jack.device()
    session = LiveSession(tiny_preset, input=dev.index, output=dev.index, threads=1, duplex=False)
    with session:
        assert len(session.streams) == 2
        time.sleep(2.5)
        st = session.status()
        assert st.error is None, st.error
    st = session.status()
    assert st.hops >= 20 and (st.underruns, st.overruns, st.dry_hops) == (0, 0, 0), st.line()


def test_unsupported_rate_is_a_clear_error(jack, tiny_preset):
    n = threading.active_count()
    session = LiveSession(tiny_preset, input=jack.device().index, output=jack.device().index, rate=12345)
    with pytest.raises(UnsupportedSettingsError, match="does not support 12345 Hz"):
        session.start()
    assert session.engine is None and threading.active_count() == n


def test_unknown_device_name_with_devices_present(jack, tiny_preset):
    with pytest.raises(NoDeviceError, match="no-such-device-xyz.*available input devices: 'system"):
        LiveSession(tiny_preset, input="no-such-device-xyz").start()
    with pytest.raises(NoDeviceError, match="no audio device #99"):
        LiveSession(tiny_preset, output=99).start()


def _preset_dir(tmp_path: Path, tiny_bundle: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    (d / "a2b.json").write_text(f'{{"name": "a2b", "source": "alpha", "target": "beta", "sigma_max": 5.0, '
                                f'"steps": 2, "window": 16, "hop": 4, "crossfade": 2, "bundle": "{tiny_bundle}"}}')
    (d / "wide.json").write_text(f'{{"name": "wide", "source": "beta", "target": "alpha", "sigma_max": 3.0, '
                                 f'"window": 32, "hop": 8, "crossfade": 4, "bundle": "{tiny_bundle}"}}')
    return d


def test_cli_runs_prints_status_and_stops_on_ctrl_c(jack, tiny_bundle, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "live", "--preset-dir", str(_preset_dir(tmp_path, tiny_bundle)), "--threads", "1",
           "--input", "system", "--sigma-max", "7", "--seconds", "30"]
    # a player's terminal: the CLI must not inherit an ignored SIGINT, as it would from a test run started as a
    # background job (a non-interactive shell's `cmd &` ignores SIGINT, and an ignored signal stays so across exec)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        header = proc.stdout.readline()
        assert "alpha -> beta, sigma_max 7" in header and "48000 Hz, block 256" in header, header
        line = proc.stdout.readline()  # the first once-a-second status line
        assert "latency" in line and "RTF" in line and "CPU" in line and "dBFS" in line, line
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after" in out and "0 underrun" in out, out + err

    # a device that does not exist: one line, exit code 2
    r = subprocess.run(cmd[:-2] + ["--input", "nowhere-mic", "--seconds", "1"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nowhere-mic" in r.stderr, r.stderr


def test_panel_drives_a_running_session(jack, qtbot, tiny_bundle, tmp_path):
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings, Qt

    from gui.panel import ControlPanel, sigma_to_dial

    panel = ControlPanel(_preset_dir(tmp_path, tiny_bundle), QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                         threads=1, poll_ms=50)
    qtbot.addWidget(panel)
    try:
        label = jack.device().label
        panel.input_box.setCurrentIndex(panel.input_box.findText(label))
        panel.output_box.setCurrentIndex(panel.output_box.findText(label))
        with qtbot.waitSignal(panel.running_changed, timeout=10000):
            qtbot.mouseClick(panel.start_button, Qt.LeftButton)
        assert panel.running and panel.start_button.text() == "&Stop", panel.status_label.text()
        eng = panel.engine
        assert eng is panel.session.engine and eng.live
        panel.sigma_dial.setValue(sigma_to_dial(30.0))
        panel.target_box.setCurrentText("alpha")
        qtbot.waitUntil(lambda: eng.params["sigma_max"] == panel.sigma_max and eng.params["target"] == "alpha",
                        timeout=3000)
        qtbot.waitUntil(lambda: "engine" in panel.latency_label.text() and panel.rtf_label.text() != "—",
                        timeout=3000)
        assert not panel.input_box.isEnabled()  # devices are fixed while running
        panel.preset_box.setCurrentText("wide")  # another window layout: audio restarts with a new engine
        assert panel.running and panel.engine is not eng and panel.engine.W == 32, panel.status_label.text()
        assert eng._worker is None
        eng = panel.engine
        panel.stop()
        assert not panel.running and panel.start_button.text() == "&Start"
        assert eng._worker is None and "Stopped after" in panel.status_label.text()
    finally:
        panel.shutdown()


def _device_lost_child(bundle: str, workdir: str) -> None:
    """Runs in a child process: PortAudio's JACK host API cannot close a stream whose server died and may even
    crash on the way out, so this scenario never runs inside the test process."""
    import json as _json

    from live.preset import Preset

    preset = Preset(name="t", source="alpha", target="beta", sigma_max=5.0, steps=2, window=16, hop=4, crossfade=2,
                    bundle=bundle)

    class _Skip(Exception):
        pass

    pytest.skip = lambda msg, **k: (_ for _ in ()).throw(_Skip(msg))  # JackServer.start skips via pytest
    out = {}
    try:
        server = JackServer(Path(workdir) / "jackd.log").start()
    except _Skip as e:
        print(_json.dumps({"skip": str(e)}), flush=True)
        os._exit(0)
    session = LiveSession(preset, input=server.device().index, output=server.device().index, threads=1)
    session.start()
    out["hops_before"] = _wait(lambda: session.status().hops > 2, 10.0) and session.status().hops
    server.kill()  # the device disappears
    t0 = time.monotonic()
    out["noticed"] = _wait(lambda: session.status().error is not None, 10.0)
    out["noticed_s"] = time.monotonic() - t0
    st = session.status()
    out["running"], out["error"] = st.running, st.error
    t0 = time.monotonic()
    session.stop()
    out["stop_s"] = time.monotonic() - t0
    out["worker_gone"] = session.engine._worker is None and not session.running
    session.stop()  # twice is fine
    print(_json.dumps(out), flush=True)
    os._exit(0)  # what python -m live does after a lost device: PortAudio cannot shut down cleanly then


def test_device_lost_mid_run_is_reported_and_stop_returns(tiny_bundle, tmp_path):
    import json as _json

    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt install jackd2)")
    code = f"from tests.test_live_audio import _device_lost_child; _device_lost_child({str(tiny_bundle)!r}, {str(tmp_path)!r})"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, f"child crashed ({res.returncode}): {res.stderr[-2000:]}"
    out = _json.loads(res.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["hops_before"], out
    assert out["noticed"], "device loss went unnoticed"
    assert not out["running"] and "device" in out["error"], out
    # stop returns rather than hanging on the dead stream (a hang ends at the 120 s timeout); 10 s, not a timing
    # (the test failed once with training holding both cores; 3 s was the only bound a busy machine could miss)
    assert out["stop_s"] < 10.0 and out["worker_gone"], out
