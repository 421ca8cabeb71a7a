"""The ceiling row: does a codec keep each instrument, judged by a classifier that never heard it?

    python -m evaluation.ceiling models/codec.pt [runs/codec/codec-wip.pt ...] [--split heldout] [--clips 8]

For every codec file given and every instrument, `clips` clips of `seconds` from the corpus split (default
`heldout`: unseen chorales in a soundfont no model trained on) go through the codec alone (encode → decode);
the honest judge (core.timbre; python -m train.judge trains it on clean audio plus generic damage, never on this
project's output) names the instrument of each, and PESTO compares the melody with the input's. The clean input is the
first row: the judge's own accuracy there bounds what any codec can score. No transfer can be heard as an
instrument its codec does not keep, so this is the bar the issue sets first: recognized ≥ 95 %, pitch ≥ 90 %.
The judge's margin (the instrument's logit over the largest other, least and median over clips) says how near
each instrument is to losing or winning a clip, where a count of 8 out of 8 cannot. Over several splits (`--split
heldout,confirm,…`, `--clips` 8 per split) the clips heard are also counted split by split (the JSON keeps each
clip's label, in order).
Below the row, what each codec changes: the level in each band and the harmonics (their contrast against the
spectrum between them, and odd against even ones) of its round trips against the input's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged, run_main
from core.degrade import band_limit
from core.output_eq import BOOST_DB

BAR_RECOGNIZED, BAR_PITCH = 0.95, 0.90
BANDS_HZ = ((250, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 12000))


def band_level_change(x: np.ndarray, y: np.ndarray, sr: int) -> dict[str, float]:
    """Level of y against x in each of BANDS_HZ, dB (power over the whole clip, Parseval). A codec that keeps
    the melody but loses the instrument shows where: a violin darkened by 12 dB at 4–8 kHz is heard as a flute."""
    n = min(len(x), len(y))  # over the time both cover: a short output is not a quiet one
    f = np.fft.rfftfreq(n, 1 / sr)
    px, py = np.abs(np.fft.rfft(x[:n])) ** 2, np.abs(np.fft.rfft(y[:n])) ** 2
    out = {}
    for lo, hi in BANDS_HZ:
        m = (f >= lo) & (f < hi)
        out[f"{lo / 1000:g}-{hi / 1000:g}k"] = float(10 * np.log10((py[m].sum() + 1e-20) / (px[m].sum() + 1e-20)))
    return out


def harmonic_profile(x: np.ndarray, sr: int, f0_hz: np.ndarray, step_s: float, n_fft: int = 2048,
                     band_hz: tuple[float, float] = (2000, 8000), n_harmonics: int = 7) -> dict[str, float]:
    """Where a codec smears harmonics, on the frames where f0_hz (one value per step_s, frame i centred at
    i·step_s; NaN when unvoiced) is known: `contrast_db`, power at the harmonics against power midway between
    them within band_hz (a smeared or noise-filled spectrum loses it), and `odd_even_db`, harmonics 3, 5, 7
    against 2, 4, 6 relative to the fundamental, on frames whose seventh harmonic is below Nyquist (a clarinet's
    hollow low register, which even-order distortion fills in), and `h1_h2_db`, the fundamental against the second
    harmonic, the median over frames (a round trip that weakens its fundamental is heard, and tracked, an octave
    up). NaN where no frame qualifies."""
    window = np.hanning(n_fft)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    in_band = (freqs >= band_hz[0]) & (freqs < band_hz[1])
    lowest = 3 * sr / n_fft  # below this the ±0.15·f0 windows hold no bin and harmonics blur into each other
    at, between, odd_even, h1_h2 = 0.0, 0.0, [], []
    for i, f0 in enumerate(f0_hz):
        start = int(round(i * step_s * sr)) - n_fft // 2
        if not np.isfinite(f0) or f0 < lowest or start < 0 or start + n_fft > len(x):
            continue
        power = np.abs(np.fft.rfft(x[start:start + n_fft] * window)) ** 2
        order = freqs / f0  # each bin's position in harmonics of f0
        peak = lambda h: power[np.abs(order - h) < 0.15].max()  # noqa: E731 - harmonic h's level this frame
        if 2.15 * f0 < sr / 2:
            h1, h2 = peak(1), peak(2)
            h1_h2.append(10 * np.log10((h1 + 1e-20) / (h2 + 1e-20)))
        if (n_harmonics + 1) * f0 < sr / 2:  # then 2.15·f0 is below Nyquist too: h1, h2 measured above
            peaks = np.array([h1, h2, *(peak(h) for h in range(3, n_harmonics + 1))])
            levels = 10 * np.log10(peaks / (peaks[0] + 1e-20) + 1e-20)
            odd_even.append(np.mean(levels[2::2]) - np.mean(levels[1::2]))
        harm = in_band & (np.abs(order - np.round(order)) < 0.1)
        mid = in_band & (np.abs(order - np.floor(order) - 0.5) < 0.1)
        if harm.any() and mid.any():
            at += power[harm].mean()
            between += power[mid].mean()
    return dict(contrast_db=float(10 * np.log10((at + 1e-20) / (between + 1e-20))) if between > 0 else float("nan"),
                odd_even_db=float(np.mean(odd_even)) if odd_even else float("nan"),
                h1_h2_db=float(np.median(h1_h2)) if h1_h2 else float("nan"))


def clip_files(corpus: Path, split: str, instruments: list[str], clips: int) -> dict[str, list[Path]]:
    """The files `load_clips` reads, in its order: up to `clips` per instrument, the splits named in `split` (one or
    several comma-separated) in that order, each in path order. A file's split is its folder's name."""
    from core.manifest import corpus_files

    files = corpus_files(corpus, split, instruments, sort=True)
    return {name: files[name][:clips] for name in instruments if files.get(name)}


def load_clips(corpus: Path, split: str, instruments: list[str], sr: int, clips: int, seconds: float
               ) -> dict[str, list[np.ndarray]]:
    """Up to `clips` clips per instrument, each the loudest `seconds` window of one file (`clip_files`)."""
    from core.audio import load_audio

    files = clip_files(corpus, split, instruments, clips)
    n = int(seconds * sr)
    out: dict[str, list[np.ndarray]] = {}
    for name in instruments:
        for f in files.get(name, []):
            x = load_audio(f, sr)
            if len(x) > n:  # the most active window, so a clip is music rather than a rest
                e = np.convolve(x ** 2, np.ones(sr // 10), "valid")[:: sr // 10]
                k = int(np.argmax(np.convolve(e, np.ones(int(seconds * 10)), "valid")))
                x = x[k * (sr // 10): k * (sr // 10) + n]
            out.setdefault(name, []).append(x.astype(np.float32))
    missing = [i for i in instruments if i not in out]
    if missing:
        raise ValueError(f"{corpus}: no {split} audio for {', '.join(missing)}")
    return out


def score(judge, tracker, clips: dict[str, list[np.ndarray]], through, sr: int) -> dict:
    """`through`: audio → audio, or a dict of them by instrument (a round trip that knows what it decodes).
    Per instrument: the fraction of its clips the judge names correctly (`recognized`), pitch accuracy
    against the input, and `attracts`: the fraction of the OTHER instruments' clips the judge names as this one.
    A codec's artefacts can pull everything towards one instrument (a smeared violin heard as a flute); then
    that instrument's `recognized` says little, and a transfer to it proves nothing unless it beats `attracts`."""
    from core.instruments import midi_to_hz
    from core.pitch import compare_tracks

    heard: dict[str, list[str]] = {}
    rows = {}
    for name, xs in clips.items():
        mel, bands, harmonics, margins = None, [], [], []
        for x in xs:
            y = through[name](x) if isinstance(through, dict) else through(x)
            logits = judge.clip_logits(y, sr)
            heard.setdefault(name, []).append(judge.instruments[int(np.argmax(logits))])
            margins.append(judge.margin(logits, name))
            if through is not _identity:
                bands.append(band_level_change(x, y, sr))
                if tracker is not None:
                    track = tracker(x, sr)  # once: the melody score and the harmonics both follow the input's pitch
                    m = compare_tracks(track, tracker(y, sr))
                    mel = m if mel is None else mel + m
                    f0 = np.where(track.voiced(), midi_to_hz(track.semitones), np.nan)
                    harmonics.append((harmonic_profile(x, sr, f0, track.step_ms / 1000),
                                      harmonic_profile(y, sr, f0, track.step_ms / 1000)))
        pitch = 1.0 if through is _identity else float(mel.pitch_acc) if mel is not None else float("nan")
        pitch_class = 1.0 if through is _identity else float(mel.chroma_acc) if mel is not None else float("nan")
        rows[name] = dict(recognized=heard[name].count(name) / len(xs), clips=len(xs), pitch=pitch,
                          pitch_class=pitch_class,
                          margin=dict(least=round(min(margins), 3), median=round(float(np.median(margins)), 3)))
        if bands:  # the mean over clips of each band's level change
            rows[name]["band_db"] = {k: round(float(np.mean([b[k] for b in bands])), 2) for k in bands[0]}
        if harmonics:  # input → output, means over the clips that measured it (None: none did)
            rows[name]["harmonics_db"] = {k: [_mean_or_none([h[j][k] for h in harmonics]) for j in (0, 1)]
                                          for k in harmonics[0][0]}
    for name in rows:
        others = [h for k, hs in heard.items() if k != name for h in hs]
        rows[name]["attracts"] = others.count(name) / len(others) if others else 0.0
        rows[name]["heard_as"] = {k: heard[name].count(k) for k in sorted(set(heard[name]))}
        rows[name]["heard"] = heard[name]  # clip by clip, in the clips' order
    return rows


def recognized_by_split(rows: dict, splits: dict[str, list[str]]) -> dict[str, dict[str, tuple[int, int]]]:
    """Clips heard as their own instrument and clips judged, per instrument and split: `rows` of `score`, `splits`
    the split of each clip by instrument (in the clips' order)."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name, labels in splits.items():
        heard = rows[name]["heard"]
        if len(heard) != len(labels):
            raise ValueError(f"{name}: {len(heard)} clips judged, {len(labels)} splits given")
        for split in dict.fromkeys(labels):  # in the order first met
            mine = [h for h, s in zip(heard, labels) if s == split]
            out.setdefault(name, {})[split] = (mine.count(name), len(mine))
    return out


def judged_instruments(judge, asked: list[str] | None, judge_file) -> list[str]:
    """The instruments asked for (default: all the judge knows); ValueError naming any the judge does not know."""
    instruments = asked or judge.instruments
    unknown = [i for i in instruments if i not in judge.instruments]
    if unknown:
        raise ValueError(f"the judge {judge_file} does not know {', '.join(unknown)}")
    return instruments


def _mean_or_none(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return round(float(np.mean(finite)), 2) if finite else None  # JSON has no NaN


def _db(v: float | None, sign: str = "") -> str:
    return "—" if v is None else f"{v:{sign}.1f}"


def _json_safe(v):
    """NaN (a figure nothing measured) as null: strict JSON readers refuse NaN."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return None if isinstance(v, float) and not np.isfinite(v) else v


def _identity(x):
    return x


def low_passed(through, cutoff_hz: float, sr: int):
    """`through` with everything at and above cutoff_hz removed from its output (an FFT brick wall): if a codec's
    round trip is heard as its instrument once low-passed, and the input low-passed alike still is too
    (`low_pass_controls`), what the judge doubts lies above the cutoff."""
    return lambda x: band_limit(through(x), sr, cutoff_hz)


def low_pass_controls(judge, tracker, clips: dict[str, list[np.ndarray]], cutoffs: list[float], sr: int) -> dict:
    """The inputs themselves low-passed at each cutoff: the control for every codec's low-passed rows. A judge that
    hears the filter as an instrument makes those rows say nothing about the codec (session 38: the shipped judge
    hears 58 % of all clips brick-walled at 4 kHz as a clarinet, and no violin brick-walled at 8 kHz as a violin;
    session 23's "the clarinet is 8/8 low-passed at 6 kHz" read the filter as much as the codec)."""
    return {f"input, low-passed at {hz:g} Hz (the control)":
            score(judge, tracker, clips, low_passed(_identity, hz, sr), sr) for hz in cutoffs}


def latent_drift(codec, reference, clips: list[np.ndarray]) -> float:
    """RMS difference of `codec`'s latents from `reference`'s over the clips' frames, both normalized with the
    reference's statistics (the space its denoisers learned): 0 for the same encoder, 1 a whole standard deviation.
    How far a fine-tuned encoder moved the data the shipped denoisers expect."""
    import torch

    sq, n = 0.0, 0
    with torch.no_grad():
        for clip in clips:
            x = torch.as_tensor(np.asarray(clip, dtype=np.float32)).view(1, 1, -1)
            d = reference.normalize(codec.encode_raw(x)) - reference.encode(x)
            sq, n = sq + float(d.pow(2).sum()), n + d.numel()
    return float(np.sqrt(sq / max(n, 1)))


def round_trip(codec):
    """x → decode(encode(x)), cut to x's length."""
    def through(x):
        return codec.decode_numpy(codec.encode_numpy(x))[: len(x)]

    return through


def codec_round_trip(codec_path: Path):
    from core.codec import Codec

    codec = Codec.load(codec_path).float().eval()
    return round_trip(codec), codec.sample_rate


def own_decoder_round_trips(codec_paths: list[Path], decoder_files: list[Path]) -> dict[Path, dict]:
    """{codec file: {instrument: the round trip through that codec's encoder and the instrument's own decoder}} for
    the decoder files given (core.codec.with_own_decoder): what the bundle plays for an instrument that has one.
    ValueError for a decoder file trained against none of the codecs, or two for one instrument and codec."""
    from core.codec import Codec, CodecError, with_own_decoder

    trips: dict[Path, dict] = {c: {} for c in codec_paths}
    why_not: dict[Path, str] = {}
    for c in codec_paths:
        codec = Codec.load(c).float().eval()
        for f in decoder_files:
            try:
                name, own = with_own_decoder(codec, f)
            except CodecError as e:
                why_not.setdefault(f, str(e))
                continue
            if name in trips[c]:
                raise ValueError(f"two decoder files for {name} trained against {c}")
            trips[c][name] = round_trip(own.float().eval())
            why_not[f] = ""
    orphans = [f"{f}: {why}" for f, why in why_not.items() if why]
    if orphans:
        raise ValueError("decoder file(s) trained against none of the codecs given: " + "; ".join(orphans))
    return trips


def odd_part(through):
    """(probe, even_db): `through` reduced to its odd part, (C(x) − C(−x)) / 2, the output that flips with the
    input's sign; `even_db` collects, clip by clip, the energy of the rest, the even part (C(x) + C(−x)) / 2, in dB
    under the plain round trip's. A codec that reproduced its input would have no even part; what there is comes
    from even-order products, which fill in a hollow tone's even harmonics (core.spectral.even_part). If the judge
    hears an instrument in the odd part and not in the round trip, the even part is what it misses."""
    from core.spectral import even_part  # one definition, for training's loss and this probe

    even_db: list[float] = []

    def probe(x):
        x = np.asarray(x, np.float32)
        y, y_neg = np.asarray(through(x), np.float64), np.asarray(through(-x), np.float64)
        even = even_part(y, y_neg)
        even_db.append(float(10 * np.log10((np.sum(even ** 2) + 1e-20) / (np.sum(y ** 2) + 1e-20))))
        return ((y - y_neg) / 2).astype(np.float32)

    return probe, even_db


def with_output_eq(through, corpus: Path, instruments: list[str], sr: int,
                   boost_db: float = BOOST_DB) -> tuple[dict, dict]:
    """({instrument: `through` followed by that instrument's output EQ}, {instrument: the EQ's gains per band}):
    each EQ fitted on `through`'s round trips of the instrument's training audio (core.output_eq: FIT_CLIPS clips,
    the loudest FIT_SECONDS of each, of the FIT_SPLIT split), never on the clips judged. Whether a static
    correction per instrument, which a product that knows the instrument it decodes could apply, gives back what
    the judge misses."""
    from tqdm import tqdm

    from core.output_eq import FIT_CLIPS, FIT_SECONDS, FIT_SPLIT, apply, band_centres, band_gains_db, design_fir

    audio = load_clips(corpus, FIT_SPLIT, instruments, sr, FIT_CLIPS, FIT_SECONDS)
    probes, gains = {}, {}
    for name in tqdm(instruments, desc=f"fitting output EQs on {FIT_SPLIT}", unit="instrument", leave=False):
        g = gains[name] = band_gains_db(audio[name], [through(x) for x in audio[name]], sr, boost_db)
        h = design_fir(band_centres(sr), g, sr)
        probes[name] = (lambda h: lambda x: apply(h, through(x)))(h)
    return probes, gains


def per_instrument_means(values: list[float], clips: dict[str, list], digits: int) -> dict[str, float]:
    """A probe's clip-by-clip figures averaged per instrument: score() runs the clips instrument by instrument, in
    the order of `clips`, so each instrument's figures are the next len(clips[i]) of `values`."""
    means, start = {}, 0
    for name, xs in clips.items():
        means[name] = round(float(np.mean(values[start:start + len(xs)])), digits)
        start += len(xs)
    return means


def fitted_round_trip(codec_path: Path, steps: int, lr: float = 0.01):
    """(through, moved): each clip's latents fitted to it with the decoder fixed, from the encoder's, by `steps`
    Adam steps on the training losses (log-mel + band envelope), then decoded; `moved` collects how far each clip's
    latents went (RMS, in the codec's normalized units). What the decoder can render given the latents a better
    encoder could give: if the judge hears the instrument here and not in the plain round trip, the encoder is
    the one to train (and with it every denoiser); if not even here, the decoder."""
    import torch
    from tqdm import tqdm

    from core.codec import Codec
    from core.spectral import BandEnvelopeLoss, MelLoss

    codec = Codec.load(codec_path).float().eval().requires_grad_(False)
    mel, band = MelLoss(codec.sample_rate), BandEnvelopeLoss(sample_rate=codec.sample_rate)
    moved: list[float] = []

    def through(x):
        target = torch.as_tensor(np.asarray(x, dtype=np.float32)).view(1, 1, -1)
        with torch.no_grad():
            start = codec.encode(target)
        z = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in tqdm(range(steps), desc="fitting a clip's latents", unit="step", leave=False, disable=not steps):
            y = codec.decode(z)[..., : target.shape[-1]]
            loss = mel(y, target) + band(y, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        moved.append(float((z.detach() - start).pow(2).mean().sqrt()))
        with torch.no_grad():
            return codec.decode(z)[0, 0, : len(x)].numpy()

    return through, moved


def main(argv=None) -> int:
    from core.io import CheckpointError
    from core.manifest import CorpusError

    return run_main(_main, argv, errors=(ValueError, CheckpointError, CorpusError))


def _main(argv=None) -> int:
    from tqdm import tqdm

    from core.timbre import DEFAULT_PATH, TimbreClassifier
    from core.pitch import PitchTracker

    ap = argparse.ArgumentParser(prog="python -m evaluation.ceiling", description=__doc__.split("\n")[0])
    ap.add_argument("codecs", nargs="+", type=Path, help="codec files (.pt)")
    ap.add_argument("--classifier", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--instruments", type=comma_list(), default=None, help="comma-separated (default: the judge's)")
    ap.add_argument("--clips", type=ranged(int, 1, 1000), default=8)
    ap.add_argument("--seconds", type=ranged(float, 1.0, 600.0), default=8.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--drift-from", type=Path, default=None, metavar="CODEC_FILE",
                    help="also print how far each codec's latents are from this codec's on the same clips (RMS in "
                         "its normalized units): whether denoisers trained with it can stay with a fine-tuned encoder")
    ap.add_argument("--low-pass", type=comma_list(float), default=[], metavar="HZ,...",
                    help="also a row per codec and cutoff: its round trips low-passed there, and the input's, the "
                         "control (where the judge's doubt lies: a codec heard as its instrument once low-passed errs "
                         "above the cutoff, if the input low-passed alike is heard as before and attracts nothing)")
    ap.add_argument("--fit-latents", type=ranged(int, 1, 100_000), default=None, metavar="STEPS",
                    help="also a row per codec: each clip's latents fitted to it with the decoder fixed (STEPS Adam "
                         "steps; 200 took 2-3 minutes per 8-s clip on a 2-core CPU): whether the encoder or the "
                         "decoder loses what the judge misses")
    ap.add_argument("--odd-part", action="store_true",
                    help="also a row per codec: the odd part of its round trips, (C(x) - C(-x)) / 2, and in the "
                         "codec's row the energy of the even part, (C(x) + C(-x)) / 2, which a codec that "
                         "reproduced its input would not have (even-order products: a hollow tone's filled-in even "
                         "harmonics)")
    ap.add_argument("--output-eq", action="store_true",
                    help="also a row per codec: its round trips through a static EQ per instrument, fitted on its "
                         "round trips of the training fonts (core.output_eq): whether a correction that knows the "
                         "instrument gives back what the judge misses")
    ap.add_argument("--max-boost-db", type=float, default=None, metavar="DB",
                    help="with --output-eq: the most a band is boosted (default core.output_eq.BOOST_DB; 0: cut only)")
    ap.add_argument("--own-decoders", nargs="+", type=Path, default=[], metavar="DECODER_FILE",
                    help="also a row per codec these instruments' own decoder files were trained against (train.codec "
                         "--export FILE --own-decoder INSTRUMENT): each of them decoded with its own, as the bundle "
                         "does, the other instruments with the codec's decoder")
    ap.add_argument("--store", action="store_true",
                    help="also record each codec's row in its file (train_info['ceiling']; the model card prints it)")
    a = ap.parse_args(argv)
    for f in [a.classifier, *a.codecs, *a.own_decoders, *([a.drift_from] if a.drift_from else [])]:
        if not f.is_file():
            raise ValueError(f"{f}: no such file")
    bad = [hz for hz in a.low_pass if not 0 < hz < 12_000]
    if bad:
        raise ValueError(f"--low-pass {', '.join(f'{hz:g}' for hz in bad)}: a cutoff lies between 0 and 12000 Hz "
                         "(the codecs' Nyquist)")
    if a.max_boost_db is not None and not (a.output_eq and 0 <= a.max_boost_db <= BOOST_DB):
        raise ValueError(f"--max-boost-db goes with --output-eq and lies between 0 and {BOOST_DB:g} dB")
    reference = None
    if a.drift_from:
        from core.codec import Codec, encoder_config

        reference = Codec.load(a.drift_from).float().eval()
        if not reference.stats_fitted:
            # unfitted statistics are mean 0, std 1: a drift in raw latent units (~100s), not in standard deviations
            raise ValueError(f"--drift-from {a.drift_from}: its latent statistics are not fitted (python -m "
                             "train.latents), so there are no units to measure a drift in; name a codec that has them")
    own = own_decoder_round_trips(a.codecs, a.own_decoders)  # before any judging: a stray file fails at once
    judge = TimbreClassifier.load(a.classifier)
    instruments = judged_instruments(judge, a.instruments, a.classifier)
    tracker = PitchTracker()
    results = {}
    sr = 24_000
    clips = load_clips(a.corpus, a.split, instruments, sr, a.clips, a.seconds)
    splits = {i: [f.parent.name for f in fs] for i, fs in clip_files(a.corpus, a.split, instruments, a.clips).items()}
    results["input (judge's own accuracy)"] = score(judge, tracker, clips, _identity, sr)
    results.update(low_pass_controls(judge, tracker, clips, a.low_pass, sr))
    for c in tqdm(a.codecs, desc="codecs", unit="codec"):
        through, csr = codec_round_trip(c)
        if csr != sr:
            raise ValueError(f"{c}: sample rate {csr}, expected {sr}")
        results[str(c)] = score(judge, tracker, clips, through, sr)
        if own.get(c):
            results[f"{c}, own decoders ({', '.join(sorted(own[c]))})"] = score(
                judge, tracker, clips, {i: own[c].get(i, through) for i in instruments}, sr)
        if a.output_eq:
            boost = BOOST_DB if a.max_boost_db is None else a.max_boost_db
            probes, gains = with_output_eq(through, a.corpus, instruments, sr, boost)
            limit = "" if a.max_boost_db is None else " (cut only)" if boost == 0 else f" (boost ≤ {boost:g} dB)"
            row = results[f"{c}, output EQ{limit}"] = score(judge, tracker, clips, probes, sr)
            for i in instruments:
                row[i]["output_eq_db"] = [round(float(g), 2) for g in gains[i]]
        for hz in a.low_pass:
            results[f"{c}, low-passed at {hz:g} Hz"] = score(judge, tracker, clips, low_passed(through, hz, sr), sr)
        if a.odd_part:
            odd, even_db = odd_part(through)
            results[f"{c}, odd part"] = score(judge, tracker, clips, odd, sr)
            for i, v in per_instrument_means(even_db, clips, 2).items():
                results[str(c)][i]["even_part_db"] = v
        if a.fit_latents:
            fitted, moved = fitted_round_trip(c, a.fit_latents)
            row = results[f"{c}, latents fitted ({a.fit_latents} steps)"] = score(judge, tracker, clips, fitted, sr)
            for i, v in per_instrument_means(moved, clips, 3).items():
                row[i]["latents_moved"] = v
        if reference is not None:
            codec = Codec.load(c).float().eval()
            if encoder_config(codec.config) != encoder_config(reference.config):  # a widened decoder is no matter
                raise ValueError(f"{c} has config {codec.config}, {a.drift_from} {reference.config}: no common "
                                 "latent space to measure a drift in")
            for i in instruments:
                results[str(c)][i]["drift"] = latent_drift(codec, reference, clips[i])
                results[str(c)][i]["drift_from"] = str(a.drift_from)
    print(f"{a.split} split, {a.clips} clips × {a.seconds:g} s per instrument; judge {a.classifier} "
          f"(never heard a codec); bar: recognized ≥ {BAR_RECOGNIZED:.0%}, pitch ≥ {BAR_PITCH:.0%}")
    print(f"| row | {' | '.join(instruments)} | all |")
    print("|---|" + "---|" * (len(instruments) + 1))
    for row, r in results.items():
        cells = [f"{r[i]['recognized']:.0%} / {r[i]['pitch']:.0%} / {r[i]['attracts']:.0%}" for i in instruments]
        rec = np.mean([r[i]["recognized"] for i in instruments])
        pit = np.mean([r[i]["pitch"] for i in instruments])
        print(f"| {row} | {' | '.join(cells)} | {rec:.0%} / {pit:.0%} |")
    print("cells: recognized as itself / pitch kept (PESTO, ±50 cents, frames voiced in both) / share of the other "
          "instruments' clips heard as this one (a codec artefact the judge takes for this instrument)")
    if len({s for labels in splits.values() for s in labels}) > 1:  # several splits: where each codec loses its clips
        print("\nrecognized as itself, split by split (clips heard / clips)")
        print(f"| row | split | {' | '.join(instruments)} |")
        print("|---|---|" + "---|" * len(instruments))
        for row, r in results.items():
            counts = recognized_by_split(r, splits)
            for split in dict.fromkeys(s for i in instruments for s in splits[i]):
                cells = [f"{counts[i][split][0]}/{counts[i][split][1]}" if split in counts[i] else "—"
                         for i in instruments]
                print(f"| {row} | {split} | {' | '.join(cells)} |")
    print("\nthe judge's margin: the instrument's logit minus the largest other, least / median over its clips "
          "(> 0: heard as itself; how near a clip is to being lost, or won)")
    print(f"| row | {' | '.join(instruments)} |")
    print("|---|" + "---|" * len(instruments))
    for row, r in results.items():
        cells = [f"{r[i]['margin']['least']:+.2f} / {r[i]['margin']['median']:+.2f}" for i in instruments]
        print(f"| {row} | {' | '.join(cells)} |")
    for row, r in results.items():
        if all("band_db" in r[i] for i in instruments):
            print(f"\n{row}: level change per band against the input, dB (mean over clips)")
            bands = list(r[instruments[0]]["band_db"])
            print(f"| instrument | {' | '.join(bands)} |")
            print("|---|" + "---|" * len(bands))
            for i in instruments:
                levels = r[i]["band_db"]
                print(f"| {i} | {' | '.join(f'{levels[b]:+.1f}' for b in bands)} |")
    for row, r in results.items():
        if all("harmonics_db" in r[i] for i in instruments):
            print(f"\n{row}: harmonics, input → output, dB (mean over clips; frames voiced in the input)")
            print("| instrument | at vs between harmonics, 2–8 kHz | odd − even (h3,5,7 − h2,4,6) | h1 − h2 | "
                  "pitch class kept (octaves forgiven) |")
            print("|---|---|---|---|---|")
            for i in instruments:
                h = r[i]["harmonics_db"]
                print(f"| {i} | {_db(h['contrast_db'][0])} → {_db(h['contrast_db'][1])} | "
                      f"{_db(h['odd_even_db'][0], '+')} → {_db(h['odd_even_db'][1], '+')} | "
                      f"{_db(h['h1_h2_db'][0], '+')} → {_db(h['h1_h2_db'][1], '+')} | {r[i]['pitch_class']:.0%} |")
    for row, r in results.items():
        if all("even_part_db" in r[i] for i in instruments):
            print(f"\n{row}: even part (C(x) + C(-x)) / 2, energy under the round trip's, dB (mean over clips): "
                  + ", ".join(f"{i} {r[i]['even_part_db']:.1f}" for i in instruments))
    if a.drift_from:
        print(f"\nlatent drift from {a.drift_from} (RMS over the clips' frames, in its normalized units)")
        print(f"| instrument | {' | '.join(str(c) for c in a.codecs)} |")
        print("|---|" + "---|" * len(a.codecs))
        for i in instruments:
            drifts = [results[str(c)][i]["drift"] for c in a.codecs]
            print(f"| {i} | {' | '.join(f'{d:.3f}' for d in drifts)} |")
    for row, r in results.items():
        if all("latents_moved" in r[i] for i in instruments):
            print(f"\n{row}: how far the fitted latents moved from the encoder's (RMS, normalized units): "
                  + ", ".join(f"{i} {r[i]['latents_moved']:.3f}" for i in instruments))
    if a.store:
        from core.codec import Codec

        for c in a.codecs:
            codec = Codec.load(c)
            codec.train_info["ceiling"] = dict(split=a.split, clips=a.clips, seconds=a.seconds,
                                               classifier=str(a.classifier), rows=results[str(c)])
            codec.save(c)
    if a.json:
        from core.io import atomic_output

        with atomic_output(a.json) as tmp:
            tmp.write_text(json.dumps(dict(split=a.split, clips=a.clips, seconds=a.seconds,
                                           classifier=str(a.classifier), rows=_json_safe(results)), indent=1,
                                      allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
