"""Evaluation of the timbre transfer: melody kept (PESTO f0), timbre changed (instrument classifier, Fréchet
distance), bounds, cycle consistency and streaming vs offline, over a sweep of σmax (python -m evaluation).

Modules: pitch (f0 tracks and melody scores), classifier (log-mel CNN, python -m evaluation.classifier),
frechet (Fréchet distance), run (the pipeline), report (recommendation, markdown, plot, preset updates).
"""
