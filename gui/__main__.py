"""python -m gui: the control panel.

    python -m gui                                   # settings persist (QSettings "timbre-bridge"/"panel")
    python -m gui --preset-dir my/presets --settings /tmp/panel.ini
    python -m gui --screenshot docs/panel.png       # render the panel offscreen to a PNG and exit
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from live.engine import LIVE_THREADS
from live.preset import PRESET_DIR


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m gui", description="Control panel for the live timbre-transfer effect")
    ap.add_argument("--preset-dir", type=Path, default=PRESET_DIR, help=f"presets to offer ({PRESET_DIR})")
    ap.add_argument("--preset", default=None, help="preset to show first (name in --preset-dir, or a .json file)")
    ap.add_argument("--settings", type=Path, default=None, help="keep settings in this .ini file instead of the "
                                                                "platform's place")
    ap.add_argument("--org", default="timbre-bridge", help="QSettings organization name")
    ap.add_argument("--app", default="panel", help="QSettings application name")
    ap.add_argument("--threads", type=int, default=LIVE_THREADS, help="onnxruntime threads per model")
    ap.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--style", default="Fusion", help="Qt style (default Fusion)")
    ap.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the panel and exit (offscreen)")
    ap.add_argument("--size", default=None, help="window size WxH (screenshots)")
    return ap.parse_args(argv)


def _demo_levels(panel) -> None:
    """Screenshot only: run one real second of a test tone through an engine (no audio device) so the meters
    and readouts show what the engine actually reports."""
    import numpy as np

    try:
        eng = panel.build_engine(device_rate=48000)
    except Exception as e:  # noqa: BLE001 - no bundle yet: an idle panel is still a fine picture
        print(f"(screenshot without engine: {e})", file=sys.stderr)
        return
    t = np.arange(48000) / 48000.0
    tone = (0.25 * np.sin(2 * np.pi * 440 * t) + 0.08 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)
    for i in range(0, len(tone), 256):
        eng.process(tone[i:i + 256])
    panel._poll()


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.panel import ControlPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Timbre bridge")
    if args.style:
        app.setStyle(args.style)
    tmp = None
    if args.settings is not None:
        settings = QSettings(str(args.settings), QSettings.IniFormat)
    elif args.screenshot is not None:  # a clean, reproducible picture: never the user's saved state
        tmp = tempfile.TemporaryDirectory()
        settings = QSettings(str(Path(tmp.name) / "panel.ini"), QSettings.IniFormat)
    else:
        settings = QSettings(args.org, args.app)
    panel = ControlPanel(args.preset_dir, settings, threads=args.threads, provider=args.provider)
    if args.preset:
        i = panel.preset_box.findText(args.preset)
        if i >= 0:
            panel.preset_box.setCurrentIndex(i)
        elif panel.load_preset_file(Path(args.preset) if Path(args.preset).suffix
                                    else args.preset_dir / f"{args.preset}.json") is None:
            print(f"error: {panel.status_label.text()}", file=sys.stderr)
    if args.size:
        w, h = (int(x) for x in args.size.lower().split("x"))
        panel.resize(w, h)
    elif args.screenshot is not None or settings.value("window/geometry") is None:
        panel.resize(panel.sizeHint())
    panel.show()
    if args.screenshot is None:
        import signal

        from PySide6.QtCore import QTimer

        signal.signal(signal.SIGINT, lambda *_: panel.close())  # Ctrl-C in the terminal closes the panel
        tick = QTimer(interval=200, timeout=lambda: None)  # lets Python run that handler while Qt waits
        tick.start()
        code = app.exec()
        panel.shutdown()  # stops audio and writes the settings (closeEvent did it already when closed)
        return int(code)
    _demo_levels(panel)
    for _ in range(5):
        app.processEvents()
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    ok = panel.grab().save(str(args.screenshot))
    panel.shutdown()
    panel.deleteLater()
    app.processEvents()
    print(f"{'saved' if ok else 'could not save'} {args.screenshot}")
    return 0 if ok else 1


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
