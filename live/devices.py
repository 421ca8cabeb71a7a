"""PortAudio devices through sounddevice: finding and checking them, the JACK probe, and the guards that keep a
vanished device from hanging the process. Errors are one line meant for the user (AudioDeviceError)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

DEFAULT_BLOCK = 256

# Streams whose device vanished and that PortAudio could not close (its JACK host API waits for a process
# callback that never comes). They are kept referenced, PortAudio is never terminated again in this process
# (that would hang too), and sounddevice's exit handler is disarmed so the program can still exit.
# (PortAudio 19.6's JACK host API: Pa_AbortStream waits up to 10 minutes for a dead server's process
# callback, and Pa_Terminate asserts that jack_client_close succeeds, which it cannot once the server is gone.)
_ABANDONED: list = []


class AudioDeviceError(RuntimeError):
    """Audio I/O cannot start or went away; the message is one line meant for the user."""


class NoDeviceError(AudioDeviceError):
    """No such device (or none at all)."""


class UnsupportedSettingsError(AudioDeviceError):
    """The device exists but refuses the sample rate / channel count."""


_GUARDED = False


def _sd():
    global _GUARDED
    try:
        import sounddevice as sd
    except OSError as e:  # the PortAudio library itself is missing
        raise NoDeviceError(f"PortAudio is not available ({e}); install libportaudio2") from None
    if not _GUARDED:  # runs before sounddevice's own exit handler (atexit is last-in, first-out)
        import atexit

        atexit.register(_exit_guard)
        _GUARDED = True
    return sd


def jack_server_running() -> bool | None:
    """Whether the JACK server PortAudio would talk to is up (None: libjack or JACK-Client is not installed).
    libjack's own complaints about a missing server are routed to a no-op: that is the answer, not news."""
    try:
        import jack
    except (ImportError, OSError):  # OSError: JACK-Client is there but libjack is not
        return None
    jack.set_error_function(lambda _msg: None)
    jack.set_info_function(lambda _msg: None)
    try:
        client = jack.Client("timbre-probe", no_start_server=True)
    except jack.JackOpenError:
        return False
    finally:  # libjack's messages go back to stderr for everything after the probe (PortAudio's JACK host API)
        jack.set_error_function(None)
        jack.set_info_function(None)
    client.close()
    return True


def _terminate_is_safe(sd) -> bool:
    """Pa_Terminate hangs on a stream whose JACK server died and aborts the process (an assert in PortAudio's
    JACK host API) once its server is gone; everywhere else it is harmless."""
    if _ABANDONED:
        return False
    try:
        jack = any(api["name"].startswith("JACK") for api in sd.query_hostapis())
    except Exception:  # noqa: BLE001
        return True
    return not jack or jack_server_running() is not False


def _disarm_exit_handler(sd) -> None:
    import atexit

    atexit.unregister(sd._exit_handler)


def _exit_guard() -> None:
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is not None and not _terminate_is_safe(sd):
        _disarm_exit_handler(sd)  # exit without Pa_Terminate rather than abort or hang on the way out


def rescan() -> None:
    """Make PortAudio enumerate the devices again (e.g. after a JACK server or a USB interface appeared).

    Only call it while no stream of this process is open. AudioDeviceError when PortAudio cannot be restarted in this
    process (a device vanished while in use, or the JACK server it was connected to went away)."""
    sd = _sd()
    if _ABANDONED:
        raise AudioDeviceError("an audio device was lost while in use and PortAudio still holds its stream; "
                         "restart the program to scan for devices again")
    if not _terminate_is_safe(sd):
        raise AudioDeviceError("the JACK server went away; PortAudio cannot scan again in this process - "
                         "restart the program")
    sd._terminate()
    sd._initialize()


# ---------------------------------------------------------------------------------------------------- devices
@dataclass
class Device:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False

    @property
    def label(self) -> str:
        """'name (host API)': what pickers show and settings store; accepted back by resolve_device."""
        return f"{self.name} ({self.hostapi})"


def list_devices() -> list[Device]:
    sd = _sd()
    apis = sd.query_hostapis()
    try:
        din, dout = sd.default.device
    except Exception:  # noqa: BLE001 - defaults are a nicety
        din = dout = -1
    out = []
    for d in sd.query_devices():
        out.append(Device(d["index"], d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                          d["max_output_channels"], float(d["default_samplerate"]),
                          d["index"] == din, d["index"] == dout))
    return out


def format_device_list(devices: list[Device] | None = None) -> str:
    devices = list_devices() if devices is None else devices
    if not devices:
        return "no audio devices (PortAudio found none; is a sound server or JACK running?)"
    lines = ["  idx  in out    rate  name (host API)    [> default input, < default output]"]
    for d in devices:
        mark = (">" if d.is_default_input else " ") + ("<" if d.is_default_output else " ")
        lines.append(f"{mark}{d.index:3d} {d.max_input_channels:3d} {d.max_output_channels:3d} "
                     f"{d.default_samplerate:7.0f}  {d.label}")
    return "\n".join(lines)


def resolve_device(spec: int | str | None, kind: str) -> Device:
    """A device by index ('3' or 3), by name (case-insensitive substrings, as sounddevice matches them; the
    'name (host API)' label works too) or None for the default. Raises NoDeviceError with a clear message."""
    assert kind in ("input", "output")
    sd = _sd()
    devices = list_devices()
    usable = [d for d in devices if getattr(d, f"max_{kind}_channels") > 0]
    if not usable:
        raise NoDeviceError(f"no audio {kind} device found (PortAudio sees "
                            f"{len(devices)} device(s), none with {kind} channels)")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "default")):
        default = next((d for d in usable if getattr(d, f"is_default_{kind}")), None)
        return default or usable[0]
    if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
        spec = int(spec)
    if isinstance(spec, int):
        match = next((d for d in devices if d.index == spec), None)
        if match is None:
            raise NoDeviceError(f"no audio device #{spec} (devices are numbered 0-{len(devices) - 1}; "
                                f"see --list-devices)")
        if getattr(match, f"max_{kind}_channels") < 1:
            raise NoDeviceError(f"audio device #{spec} {match.label!r} has no {kind} channels")
        return match
    exact = [d for d in usable if spec.lower() in (d.label.lower(), d.name.lower())]
    if len(exact) == 1:
        return exact[0]
    try:
        index = sd.query_devices(spec, kind)["index"]
    except ValueError as e:
        first = str(e).splitlines()[0].rstrip(":")
        names = ", ".join(repr(d.label) for d in usable)
        raise NoDeviceError(f"{first} (available {kind} devices: {names})") from None
    return next(d for d in devices if d.index == index)


def check_settings(device: Device, kind: str, rate: int, channels: int) -> None:
    """UnsupportedSettingsError when the device refuses the rate or channel count."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, channels=channels, dtype="float32", samplerate=rate)
    except Exception as e:  # noqa: BLE001 - PortAudioError or ValueError
        msg = str(e).splitlines()[0]
        if "sample rate" in msg.lower() or "samplerate" in msg.lower():
            raise UnsupportedSettingsError(f"{kind} device {device.label!r} does not support {rate} Hz "
                                           f"(its default rate is {device.default_samplerate:.0f} Hz)") from None
        raise UnsupportedSettingsError(f"{kind} device {device.label!r} refuses {channels} channel(s) at "
                                       f"{rate} Hz: {msg}") from None


def abandon(streams: list) -> None:
    """Keep streams that could not be closed (their device vanished) referenced for good, and make sure neither
    a later rescan nor the exit handler terminates PortAudio on them (that would hang)."""
    _ABANDONED.extend(streams)
    _disarm_exit_handler(_sd())
