"""Per-instrument output EQ: a codec's average spectral error on an instrument, undone after its decoder.

The product always knows which instrument it decodes (the target of a transfer, the instrument of a round trip),
so each instrument could carry a static correction: in third-octave bands, the input's long-term power over the
codec round trip's on that instrument's training audio (never the held-out font), clipped to [CUT_DB, BOOST_DB],
as a minimum-phase FIR (next to no delay, so a live path could run it). A probe so far
(`python -m evaluation.ceiling CODEC --output-eq`): session 30 measured it on the shipped codec and did not ship
it (docs/eval/codec-variants/output-eq/).
"""
from __future__ import annotations

import numpy as np

N_FFT = 2048  # Welch segments for the long-term spectra (11.7 Hz bins at 24 kHz)
BAND_LO_HZ, BANDS_PER_OCTAVE = 100.0, 3
CUT_DB, BOOST_DB = -24.0, 12.0  # the most a band is cut or boosted
TAPS = 511  # the linear-phase prototype; its minimum-phase version has (TAPS + 1) / 2 taps
FIT_SPLIT, FIT_CLIPS, FIT_SECONDS = "train", 32, 20.0  # what the EQ is fitted on: the training fonts only


def band_centres(sample_rate: int) -> np.ndarray:
    """Third-octave centres from BAND_LO_HZ up to the last one at least a third of an octave under Nyquist (8 kHz at
    24 kHz: 20 bands; above it the last band's gain holds, response_db)."""
    n = int(np.floor(BANDS_PER_OCTAVE * np.log2(0.5 * sample_rate / BAND_LO_HZ)))
    return BAND_LO_HZ * 2.0 ** (np.arange(n) / BANDS_PER_OCTAVE)


def long_term_power(clips, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(freqs, power): Welch power spectral density summed over the clips (each weighs as much as it sounds)."""
    from scipy.signal import welch

    total = None
    for x in clips:
        x = np.asarray(x, np.float64)
        if len(x) < N_FFT:
            continue
        f, p = welch(x, sample_rate, nperseg=N_FFT)
        total = p * len(x) if total is None else total + p * len(x)
    if total is None:
        raise ValueError(f"no clip as long as {N_FFT} samples to fit an output EQ on")
    return f, total


def band_gains_db(inputs, outputs, sample_rate: int, boost_db: float = BOOST_DB) -> np.ndarray:
    """Per third-octave band (band_centres): 10·log10(input power / round trip power), clipped to [CUT_DB,
    boost_db]; inputs[i] went through the codec as outputs[i]. boost_db 0: cut only (the floor a codec adds is
    taken out; what it lost is not boosted, as what it lost on the training fonts need not be lost elsewhere)."""
    f, p_in = long_term_power(inputs, sample_rate)
    _, p_out = long_term_power(outputs, sample_rate)
    centres = band_centres(sample_rate)
    gains = np.zeros(len(centres))
    half = 2.0 ** (0.5 / BANDS_PER_OCTAVE)
    for k, c in enumerate(centres):
        m = (f >= c / half) & (f < c * half)
        gains[k] = 10 * np.log10((p_in[m].sum() + 1e-30) / (p_out[m].sum() + 1e-30))
    return np.clip(gains, CUT_DB, boost_db)


def response_db(centres: np.ndarray, gains_db: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """The gain wanted at `freqs`: linear in log-frequency between band centres, the end bands' beyond them."""
    return np.interp(np.log2(np.maximum(freqs, 1e-3)), np.log2(centres), gains_db)


def design_fir(centres, gains_db, sample_rate: int, taps: int = TAPS) -> np.ndarray:
    """A minimum-phase FIR whose magnitude follows response_db (scipy: firwin2's linear-phase prototype, then
    minimum_phase with the whole magnitude kept)."""
    from scipy.signal import firwin2, minimum_phase

    grid = np.linspace(0, 0.5 * sample_rate, 1025)
    gain = 10 ** (response_db(np.asarray(centres), np.asarray(gains_db), grid) / 20)
    linear = firwin2(taps, grid, gain, fs=sample_rate)
    return minimum_phase(linear, method="homomorphic", half=False).astype(np.float64)


def apply(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x through the FIR from rest, as long as x (a causal filter: no look-ahead)."""
    return np.convolve(np.asarray(x, np.float64), h)[: len(x)].astype(np.float32)
