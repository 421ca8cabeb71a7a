"""Evaluation of the timbre transfer: melody kept (PESTO f0), timbre changed (instrument classifier, Fréchet
distance), bounds, cycle consistency and streaming vs offline, over a sweep of σmax (python -m evaluation).

Modules: classifier (scores a judge: python -m evaluation.classifier; the judge itself is core.timbre, trained by
python -m train.judge), ceiling (the codec round trip per instrument), frechet (Fréchet distance), run (the
pipeline), report (recommendation, markdown, plot, preset updates), streaming (latency / cost / quality of the
engine's settings), register (the judge's verdict per window by pitch band: where in its range a pair fails).
Melody metrics are core.pitch.
"""
