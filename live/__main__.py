"""python -m live: the timbre-transfer effect on a live input (microphone / line in) to an output device.

    python -m live --list-devices
    python -m live --preset violin-to-flute --input "USB" --output "USB" --sigma-max 8 --seconds 30

One status line per second: latency, real-time factor, PortAudio's CPU load, dropouts, levels. Ctrl-C stops.
Exit codes: 0 stopped normally, 1 the audio or the engine failed while running, 2 could not start.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from live.audio import DEFAULT_BLOCK, DEFAULT_MARGIN_MS, AudioDeviceError, LiveSession, format_device_list
from core.cli import ranged
from live.params import PLAYER_CONTROLS, add_options, given, param
from live.engine import LIVE_THREADS
from live.preset import DEFAULT_PRESET, PRESET_DIR, PresetError, load_preset



def _device(s: str) -> int | str:
    return int(s) if s.strip().lstrip("-").isdigit() else s


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m live", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    ap.add_argument("--preset", default=None, help="preset name (in --preset-dir) or path to a .json "
                                                   "(default: violin-to-flute if there, else the first)")
    ap.add_argument("--preset-dir", type=Path, default=PRESET_DIR, help=f"where named presets live ({PRESET_DIR})")
    ap.add_argument("--input", "-i", type=_device, default=None,
                    help="input device: index or name (default: the system default)")
    ap.add_argument("--output", "-o", type=_device, default=None,
                    help="output device: index or name (default: the system default)")
    ap.add_argument("--rate", type=ranged(int, 8000, 384_000), default=None, help="device sample rate (default: the output device's)")
    ap.add_argument("--block", type=ranged(int, 0, 16384), default=DEFAULT_BLOCK,
                    help=f"audio block size in frames (default {DEFAULT_BLOCK})")
    ap.add_argument("--in-channels", type=int, default=None,
                    help="input channels, mixed down to mono (default: up to 2)")
    ap.add_argument("--out-channels", type=int, default=None,
                    help="output channels, all get the same signal (default: up to 2)")
    ap.add_argument("--latency", default="low", help="PortAudio latency: low, high or seconds (default low)")
    ap.add_argument("--margin-ms", type=ranged(float, 0.0, 2000.0), default=DEFAULT_MARGIN_MS,
                    help="extra output delay that absorbs compute time and jitter (default: measured at start, "
                         "the slow end of the time a hop takes through the worker thread, + one block + 10 ms; "
                         "live.engine.margin_from_hop_times)")
    add_options(ap, PLAYER_CONTROLS)
    ap.add_argument("--threads", type=ranged(int, 1, 256), default=LIVE_THREADS,
                    help=f"onnxruntime threads per model (default {LIVE_THREADS}: measured fastest on 2 cores, and it "
                         "leaves a core to the audio callback)")
    ap.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"], help="onnxruntime provider")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--quiet", "-q", action="store_true", help="no status lines")
    return ap.parse_args(argv)


def _split(engine) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in engine.latency_split_ms().items())


def _or_default(args, name: str):
    value = getattr(args, name)
    return param(name).default if value is None else value


def _preset(args):
    if args.preset is None:
        found = sorted(Path(args.preset_dir).glob("*.json"))
        if not found:
            raise PresetError(f"no presets in {args.preset_dir}; pass --preset FILE.json")
        preferred = [p for p in found if p.stem == DEFAULT_PRESET]
        args.preset = str((preferred or found)[0])
    preset = load_preset(args.preset, Path(args.preset_dir))
    over = given(args, [n for n in PLAYER_CONTROLS if param(n).in_preset])
    return dataclasses.replace(preset, **over).validate() if over else preset


def main(argv=None) -> int:
    args = parse_args(argv)
    err = sys.stderr
    session = None
    try:
        if args.list_devices:
            print(format_device_list())
            return 0
        preset = _preset(args)
        latency = args.latency if args.latency in ("low", "high") else float(args.latency)
        session = LiveSession(preset, input=args.input, output=args.output, rate=args.rate, block=args.block,
                              margin_ms=args.margin_ms, threads=args.threads, provider=args.provider,
                              input_gain=_or_default(args, 'input_gain'), bypass=_or_default(args, 'bypass'), in_channels=args.in_channels,
                              out_channels=args.out_channels, latency=latency)
        session.start()
    except KeyboardInterrupt:
        if session is not None:
            session.stop()
        return 130
    except (AudioDeviceError, PresetError, ValueError) as e:
        print(f"error: {e}", file=err)
        return 2
    except RuntimeError as e:  # BundleError and friends: the model bundle cannot be opened
        print(f"error: {e}", file=err)
        return 2

    eng = session.engine
    print(f"{preset.name}: {eng.params['source']} -> {eng.params['target']}, sigma_max {eng.params['sigma_max']:g}, "
          f"{eng.params['steps']} {eng.params['solver']} steps | "
          f"{session.input_device.label} -> {session.output_device.label} "
          f"@ {session.rate} Hz, block {session.block} | {session.bundle.providers[0]} | "
          f"latency {eng.latency_ms:.0f} ms ({_split(eng)}) + device buffers | Ctrl-C stops",
          flush=True)
    tty = sys.stdout.isatty()
    code = 0
    model_error_shown = False
    t_end = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        next_line = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            if t_end is not None and now >= t_end:
                break
            time.sleep(max(0.0, min(next_line, t_end or next_line) - now))
            st = session.status()
            if st.error:
                print(("\n" if tty else "") + f"error: {st.error}", file=err, flush=True)
                code = 1
                break
            if st.model_error and not model_error_shown:  # the audio goes on (dry hops), the player is told now
                print(("\n" if tty else "") + f"error: a model failed, its hops go out dry: {st.model_error}",
                      file=err, flush=True)
                model_error_shown, code = True, 1
            if time.monotonic() >= next_line:
                next_line += 1.0
                if not args.quiet:
                    print(("\r" + st.line() + "  ") if tty else st.line(), end="" if tty else "\n", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        if tty and not args.quiet:
            print()
        session.stop()
    st = session.status()
    print(f"stopped after {st.seconds or 0:.1f} s: {st.hops} hops, {st.underruns} underrun / {st.overruns} overrun "
          f"samples, {st.dry_hops} dry hops, {st.xruns} device xruns", flush=True)
    if st.error and code == 0:
        print(f"error: {st.error}", file=err)
        code = 1
    from live.devices import _ABANDONED

    if _ABANDONED:  # PortAudio holds a stream on a vanished device: exit without waiting on it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
