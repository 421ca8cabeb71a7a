"""Live audio I/O: a PortAudio stream (devices: live.devices) feeding a StreamingEngine.

The audio callback only moves samples: mix the input down to mono into a preallocated buffer, `engine.push`,
`engine.pull` into another preallocated buffer, copy it to every output channel. The models run on the engine's
worker thread. `LiveSession` owns the stream(s) and the engine and is shared by `python -m live` and the GUI.

    session = LiveSession(preset, input="USB", output=None, block=256, margin_ms=40)
    session.start()            # AudioDeviceError (one clear line) when a device is missing or refuses the settings
    print(session.status().line())
    session.engine.set(sigma_max=8.0)
    session.stop()
"""
from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from live.devices import (DEFAULT_BLOCK, AudioDeviceError, Device, NoDeviceError,  # noqa: F401 - the device API
                          UnsupportedSettingsError, _sd, _terminate_is_safe, abandon, check_settings,
                          format_device_list, jack_server_running, list_devices, rescan, resolve_device)
from live.engine import LIVE_THREADS
from live.preset import Preset

DEFAULT_MARGIN_MS = None  # None: measured when the engine is built (live.engine.margin_from_hop_times)


def dbfs(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-6 else -120.0


# ---------------------------------------------------------------------------------------------------- session
@dataclass
class SessionStatus:
    running: bool = False
    error: str | None = None  # the stream stopped or cannot go on (device, callback)
    model_error: str | None = None  # a model failed: the audio goes on, those hops dry (shown, never silent)
    model_errors: int = 0
    latency_ms: float = 0.0  # input to output: engine (algorithmic + resamplers + margin) + device buffers
    engine_latency_ms: float = 0.0
    device_latency_ms: float = 0.0
    rtf: float = 0.0
    cpu_load: float = 0.0  # PortAudio's estimate of the callback's share of its time
    hops: int = 0
    underruns: int = 0
    overruns: int = 0
    dry_hops: int = 0
    xruns: int = 0  # callbacks PortAudio flagged with an over/underflow
    callbacks: int = 0
    in_peak_db: float = -120.0
    out_peak_db: float = -120.0
    in_rms_db: float = -120.0
    out_rms_db: float = -120.0
    seconds: float = 0.0

    @property
    def dropouts(self) -> int:
        return self.underruns + self.overruns + self.dry_hops

    def line(self) -> str:
        s = (f"{self.seconds:6.1f}s  latency {self.latency_ms:5.1f} ms  RTF {self.rtf:4.2f}  "
             f"CPU {100 * self.cpu_load:3.0f}%  under {self.underruns} over {self.overruns} dry {self.dry_hops} "
             f"xrun {self.xruns}  in {self.in_peak_db:6.1f} dBFS  out {self.out_peak_db:6.1f} dBFS")
        s += f"  MODEL ERROR ({self.model_errors} hops dry): {self.model_error}" if self.model_error else ""
        return s + (f"  ERROR: {self.error}" if self.error else "")


class _AudioIO:
    """What the PortAudio callbacks touch: the engine and preallocated buffers (no reference to the session,
    so a stream abandoned on a lost device keeps nothing else alive). Counters are plain ints (GIL-atomic)."""

    def __init__(self, engine, block: int):
        cap = max(int(block), 4096)
        self.engine = engine
        self.mono = np.zeros(cap, np.float32)
        self.out = np.zeros(cap, np.float32)
        self.callbacks = 0
        self.xruns = 0  # callbacks PortAudio flagged with an over/underflow
        self.finished = False
        self.error: str | None = None
        self.in_peak = self.out_peak = 0.0  # highest block peak since status() last read them

    def _mono_of(self, indata, frames: int):
        if indata.shape[1] == 1:
            return indata[:, 0]
        buf = self.mono[:frames] if frames <= len(self.mono) else np.empty(frames, np.float32)
        np.sum(indata, axis=1, out=buf)
        buf *= 1.0 / indata.shape[1]
        return buf

    def _flags(self, status) -> None:
        if status.input_overflow or status.input_underflow or status.output_underflow or status.output_overflow:
            self.xruns += 1

    def _pull_to(self, outdata, frames: int) -> None:
        out = self.out[:frames] if frames <= len(self.out) else np.empty(frames, np.float32)
        eng = self.engine
        eng.pull(frames, out=out)
        outdata[:] = out[:, None]  # broadcast to every output channel
        if eng.stats.out_peak > self.out_peak:
            self.out_peak = eng.stats.out_peak

    def _push(self, indata, frames: int) -> None:
        eng = self.engine
        eng.push(self._mono_of(indata, frames))
        if eng.stats.in_peak > self.in_peak:
            self.in_peak = eng.stats.in_peak

    # the callbacks (PortAudio's real-time thread): they copy between preallocated rings and never wait on the
    # worker. Not strictly lock-free: being Python they take the GIL, and engine.push wakes the worker with
    # threading.Event.set(), which holds the Event's internal lock for a few instructions (never contended for
    # long: the worker only holds it inside Event.wait/clear).
    def duplex(self, indata, outdata, frames, _time, status) -> None:
        self.callbacks += 1
        if status:
            self._flags(status)
        try:
            self._push(indata, frames)
            self._pull_to(outdata, frames)
        except Exception as e:  # noqa: BLE001 - keep the stream alive, say why
            outdata.fill(0)
            self.error = self.error or f"audio callback failed: {e!r}"

    def input(self, indata, frames, _time, status) -> None:
        self.callbacks += 1
        if status:
            self._flags(status)
        try:
            self._push(indata, frames)
        except Exception as e:  # noqa: BLE001
            self.error = self.error or f"audio input callback failed: {e!r}"

    def output(self, outdata, frames, _time, status) -> None:
        if status:
            self._flags(status)
        try:
            self._pull_to(outdata, frames)
        except Exception as e:  # noqa: BLE001
            outdata.fill(0)
            self.error = self.error or f"audio output callback failed: {e!r}"

    def on_finished(self) -> None:
        self.finished = True


class LiveSession:
    """Stream(s) + engine. `start()` checks devices and settings before anything is built or started, so a bad
    device fails fast with AudioDeviceError and leaves no thread behind; `stop()` always returns promptly (a stream
    PortAudio cannot close on a vanished device is abandoned after `close_timeout` seconds)."""

    STALL_S = 2.0  # no callback for this long while running → the device is gone

    def __init__(self, preset: Preset, input: int | str | None = None, output: int | str | None = None,
                 rate: int | None = None, block: int = DEFAULT_BLOCK, margin_ms: float | None = DEFAULT_MARGIN_MS,
                 threads: int = LIVE_THREADS, provider: str = "auto", input_gain: float = 1.0, bypass: bool = False,
                 in_channels: int | None = None, out_channels: int | None = None, latency: str | float = "low",
                 bundle=None, switch_interval: float | None = 0.001, close_timeout: float = 1.0,
                 duplex: bool | None = None, preload_instruments: bool = False):
        self.preset = preset
        self.input_spec, self.output_spec = input, output
        self.rate, self.block = rate, int(block)
        self.margin_ms, self.threads, self.provider = margin_ms, threads, provider
        self.input_gain, self.bypass = input_gain, bypass
        self.in_channels, self.out_channels = in_channels, out_channels
        self.latency = latency
        self.bundle = bundle  # reuse an opened live.bundle.Bundle (the GUI caches them)
        self.switch_interval = switch_interval
        self.close_timeout = close_timeout
        self.duplex = duplex  # None: one duplex stream when both devices share a host API, else two streams
        # open every instrument's model before audio starts, so switching instruments later loads nothing
        # while the stream runs (the GUI offers them all)
        self.preload_instruments = preload_instruments
        self.engine = None
        self.streams: list = []
        self.io: _AudioIO | None = None
        self.input_device: Device | None = None
        self.output_device: Device | None = None
        self.error: str | None = None
        self._running = False
        self._stopping = False
        self._last_cb_count = 0
        self._last_cb_change = 0.0
        self._t0 = self._t_stop = 0.0
        self._old_switch: float | None = None

    # ------------------------------------------------------------------ setup
    def _resolve(self) -> None:
        self.input_device = resolve_device(self.input_spec, "input")
        self.output_device = resolve_device(self.output_spec, "output")
        rate = int(self.rate or self.output_device.default_samplerate or self.input_device.default_samplerate)
        self.rate = rate
        self.in_ch = int(self.in_channels or min(2, self.input_device.max_input_channels))
        self.out_ch = int(self.out_channels or min(2, self.output_device.max_output_channels))
        if not 1 <= self.in_ch <= self.input_device.max_input_channels:
            raise UnsupportedSettingsError(f"input device {self.input_device.label!r} has "
                                           f"{self.input_device.max_input_channels} input channel(s), not {self.in_ch}")
        if not 1 <= self.out_ch <= self.output_device.max_output_channels:
            raise UnsupportedSettingsError(f"output device {self.output_device.label!r} has "
                                           f"{self.output_device.max_output_channels} output channel(s), "
                                           f"not {self.out_ch}")
        if not 0 <= self.block <= 16384:
            raise UnsupportedSettingsError(f"block size {self.block} is outside 0..16384 (0: the host's choice)")
        check_settings(self.input_device, "input", rate, self.in_ch)
        check_settings(self.output_device, "output", rate, self.out_ch)

    def _build_engine(self):
        from live.bundle import Bundle
        from live.engine import StreamingEngine

        bundle = self.bundle or Bundle(self.preset.bundle_path(), provider=self.provider, threads=self.threads)
        self.bundle = bundle
        if self.preload_instruments:
            for name in bundle.instruments:
                bundle.denoiser(name)
        if self.margin_ms is None:  # measure this machine's hop times with these settings, then size the margin
            from live.engine import margin_from_hop_times, measure_hop_ms

            block_ms = 1000.0 * (self.block or 1024) / self.rate  # block 0: the host chooses, often ≤ 1024
            self.margin_ms = margin_from_hop_times(measure_hop_ms(bundle, self.preset), block_ms)
        return StreamingEngine(bundle, self.preset, device_rate=self.rate, margin_ms=self.margin_ms,
                               input_gain=self.input_gain, bypass=self.bypass)

    def _open_streams(self) -> None:
        sd = _sd()
        io = self.io = _AudioIO(self.engine, self.block)
        common = dict(samplerate=self.rate, blocksize=self.block, dtype="float32", latency=self.latency,
                      finished_callback=io.on_finished)
        try:
            same_api = self.input_device.hostapi == self.output_device.hostapi
            if self.duplex and not same_api:
                raise AudioDeviceError(f"a duplex stream needs both devices on one host API "
                                 f"({self.input_device.hostapi} vs {self.output_device.hostapi})")
            if self.duplex if self.duplex is not None else same_api:  # one duplex stream: one clock, one callback
                self.streams = [sd.Stream(device=(self.input_device.index, self.output_device.index),
                                          channels=(self.in_ch, self.out_ch), callback=io.duplex, **common)]
            else:  # different host APIs cannot share a stream
                self.streams = [sd.InputStream(device=self.input_device.index, channels=self.in_ch,
                                               callback=io.input, **common),
                                sd.OutputStream(device=self.output_device.index, channels=self.out_ch,
                                                callback=io.output, **common)]
        except AudioDeviceError:
            raise
        except Exception as e:  # noqa: BLE001 - PortAudioError, ValueError
            self._close_streams()
            raise AudioDeviceError(f"cannot open audio ({self.input_device.label} -> {self.output_device.label} at "
                             f"{self.rate} Hz, block {self.block}): {str(e).splitlines()[0]}") from None

    # ------------------------------------------------------------------ control
    def start(self) -> "LiveSession":
        """Resolve and check the devices, build the engine, open the stream(s), start worker and stream."""
        if self._running:
            return self
        self.error = None
        self._resolve()  # AudioDeviceError before anything is built
        self.engine = self._build_engine()
        try:
            self._open_streams()
            self.engine.start()
            self._running, self._stopping = True, False
            self._t0 = self._last_cb_change = time.monotonic()
            self._last_cb_count = 0
            if self.switch_interval:  # the callback waits for the GIL at most about this long
                self._old_switch = sys.getswitchinterval()
                sys.setswitchinterval(self.switch_interval)
            for s in self.streams:
                s.start()
        except AudioDeviceError:
            self.stop()
            raise
        except Exception as e:  # noqa: BLE001 - PortAudioError on start
            self.stop()
            raise AudioDeviceError(f"cannot start audio: {str(e).splitlines()[0]}") from None
        return self

    @property
    def running(self) -> bool:
        return self._running

    def _close_streams(self) -> bool:
        """Abort and close the streams on a helper thread: PortAudio may wait on a dead server. True when done."""
        streams, self.streams = self.streams, []
        if not streams:
            return True

        def close():
            for s in streams:
                try:
                    s.abort(ignore_errors=True)
                finally:
                    s.close(ignore_errors=True)

        t = threading.Thread(target=close, name="audio-close", daemon=True)
        t.start()
        t.join(self.close_timeout)
        if t.is_alive():
            abandon(streams)  # Pa_Terminate at exit would wait on the dead stream too
            if self.io is not None:
                self.io.engine = None  # the abandoned callback keeps nothing alive
            self.error = self.error or "the audio device did not close in time (abandoned)"
            return False
        return True

    def stop(self) -> None:
        """Stop the stream(s) and the engine's worker. Safe to call twice and after errors; never hangs."""
        self._stopping = True
        self._close_streams()
        if self.engine is not None:
            self.engine.stop()
        if self._old_switch is not None:
            sys.setswitchinterval(self._old_switch)
            self._old_switch = None
        if self._running:
            self._t_stop = time.monotonic()
        self._running = False

    def __enter__(self) -> "LiveSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ monitoring (any thread; cheap)
    def _check_health(self) -> None:
        if not self._running or self.error or self.io is None:
            return
        io, now = self.io, time.monotonic()
        if io.callbacks != self._last_cb_count:
            self._last_cb_count, self._last_cb_change = io.callbacks, now
        try:
            inactive = any(not s.active for s in self.streams)
        except Exception:  # noqa: BLE001
            inactive = True
        if io.error:
            self.error = io.error
        elif inactive or io.finished:
            self.error = "the audio stream stopped (device disconnected or sound server gone?)"
        elif now - self._last_cb_change > self.STALL_S:
            self.error = f"no audio callback for {now - self._last_cb_change:.1f} s (device disconnected?)"

    def status(self, reset_peaks: bool = True) -> SessionStatus:
        """A snapshot; levels are the highest block peak since the last status() (reset_peaks=False: peek)."""
        self._check_health()
        io = self.io
        st = SessionStatus(running=self._running and self.error is None, error=self.error,
                           callbacks=io.callbacks if io else 0, xruns=io.xruns if io else 0)
        if self._t0:
            st.seconds = (time.monotonic() if self._running else self._t_stop) - self._t0
        eng = self.engine
        if eng is not None:
            es = eng.stats
            st.engine_latency_ms = eng.latency_ms
            st.rtf, st.hops = es.rtf, es.hops
            st.underruns, st.overruns, st.dry_hops = es.underruns, es.overruns, es.dry_hops
            if eng.error is not None:  # live keeps playing (dry hops) and says so at once
                st.model_error, st.model_errors = f"{type(eng.error).__name__}: {eng.error}", es.errors
            in_pk, out_pk = es.in_peak, es.out_peak
            if io is not None and self._running:
                in_pk, out_pk = max(in_pk, io.in_peak), max(out_pk, io.out_peak)
                if reset_peaks:
                    io.in_peak = io.out_peak = 0.0
            st.in_peak_db, st.out_peak_db = dbfs(in_pk), dbfs(out_pk)
            st.in_rms_db, st.out_rms_db = dbfs(es.in_rms), dbfs(es.out_rms)
        dev = 0.0
        for s in self.streams:
            try:
                lat = s.latency
                dev += sum(lat) if isinstance(lat, tuple) else lat
                st.cpu_load = max(st.cpu_load, float(s.cpu_load))
            except Exception:  # noqa: BLE001 - a closed or dead stream
                pass
        st.device_latency_ms = 1000.0 * dev
        st.latency_ms = st.engine_latency_ms + st.device_latency_ms
        return st
