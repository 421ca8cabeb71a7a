"""Which leg of the bridge loses at the live window's edge? Each leg over the whole clip or per live window.

    python -m evaluation.edge --pairs cello:tenor_sax,clarinet:trumpet [--clips 8] [--seconds 8]

Live, the engine bridges the window of the newest W frames every H frames and commits the frames 2–5 from its
newest edge (the crossfade C), where the denoisers see no future; offline, committed frames sit 16–79 frames from
an edge. Each pair's preset runs its held-out source clips (moved as the preset moves them) four ways in latent
space (bridged_by_leg): every step over the whole clip; one of them per live window (the source's ODE up to σmax,
the prior's meet at σmax, the target's ODE down), each frame as its window computed it at the live lag, the rest
over the whole clip; all per live window, as the engine does (the window's frames [t−H−C, t−C) kept, without the
crossfade). The latents are decoded whole. Printed per row: clips and crops the judge names as the target, pitch
class kept. The step whose row falls loses the most without the frames ahead.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import numpy as np

from evaluation.options import add_pair_options, clips_for, judged_evaluator, run_judged


def per_window(z: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], window: int, hop: int, lag: int,
               fill: np.ndarray) -> np.ndarray:
    """fn over each live window [t−window, t) of z [C, T] (t = hop, 2·hop, …; `fill` frames before the start and
    after the end), and of each window's output the frames [t−hop−lag, t−lag), assembled into [C, T]."""
    if window < hop + lag:
        raise ValueError(f"window ({window}) must hold hop + lag ({hop} + {lag}) frames")
    c, n = z.shape
    pad = lambda k: np.repeat(np.asarray(fill, z.dtype).reshape(c, 1), k, axis=1)  # noqa: E731
    zp = np.concatenate([pad(window), z, pad(hop + lag)], axis=1)  # z[:, f] = zp[:, f + window]
    out = np.empty_like(z)
    for t in range(window + hop, zp.shape[1] + 1, hop):
        y = fn(zp[:, t - window:t])
        first = t - hop - lag - window  # the first kept frame, in z's index
        lo, hi = max(first, 0), min(first + hop, n)
        if lo < hi:
            out[:, lo:hi] = y[:, window - hop - lag + (lo - first): window - hop - lag + (hi - first)]
    return out


def bridged_by_leg(z: np.ndarray, up: Callable, down: Callable, meet: Callable | None, window: int, hop: int,
                   lag: int, fill: np.ndarray, time_factor: int) -> dict[str, np.ndarray]:
    """The bridge of z [C, T]: up (source ODE to σmax), `meet` (the prior's move onto the target's σmax
    marginal), down (target ODE from σmax), each over the whole clip (padded with `fill` to a multiple of
    time_factor) or per live window (per_window: each frame as its window computed it), five ways:

        "whole"            every step over the whole clip
        "asc per window"   up per window, the rest whole
        "meet per window"  the meet per window (a prior whose moments span frames, `local` or `instance`, sees no
                           frames ahead at the edge either), the rest whole
        "desc per window"  down per window, the rest whole
        "both per window"  all three in each live window, as the engine's hop processor (less its crossfade)

    Frames outside z are `fill` wherever a step runs: data-space silence even where the engine would hold
    silence carried up the source's leg (the first window and the last few frames only)."""
    t = z.shape[1]

    def whole(fn, x):
        extra = -x.shape[1] % time_factor
        xp = np.concatenate([x, np.repeat(np.asarray(fill, x.dtype).reshape(-1, 1), extra, axis=1)], axis=1)
        return np.asarray(fn(xp))[:, :t]

    met = meet if meet is not None else (lambda x: x)  # noqa: E731
    win = lambda x, fn: per_window(x, fn, window, hop, lag, fill)  # noqa: E731
    up_whole = whole(up, z)
    met_whole = met(up_whole)
    return {"whole": whole(down, met_whole),
            "asc per window": whole(lambda x: down(met(x)), win(z, up)),
            "meet per window": whole(down, win(up_whole, met)),
            "desc per window": win(met_whole, down),
            "both per window": win(z, lambda w: down(met(up(w))))}


def legs_for_clip(bundle, preset, x: np.ndarray, time_factor: int) -> dict[str, np.ndarray]:
    """bridged_by_leg for 24 kHz audio x (a multiple of the codec's hop) through a Bundle with the preset's pair,
    σmax, steps, solver, prior, window, hop and crossfade: shared-normalized latents per row, as the engine commits
    them (its window starts filled with the codec's silence, as here)."""
    from core.sampling import decode_from_prior, encode_to_prior

    p = preset
    src, tgt = bundle.denoiser(p.source), bundle.denoiser(p.target)
    meet = bundle.meet(p.source, p.target, p.sigma_max, p.prior)
    ode = (float(p.sigma_max), int(p.steps), float(p.sigma_min), float(p.rho), p.solver)
    rows = bridged_by_leg(src.to_own(bundle.encode(x)), lambda w: encode_to_prior(src, w, *ode),
                          lambda w: decode_from_prior(tgt, w, *ode),
                          (lambda w: meet(w, float(p.sigma_max))) if meet else None, p.window, p.hop, p.crossfade,
                          src.to_own(bundle.silence_latent[:, None])[:, 0], time_factor)
    return {k: tgt.from_own(np.asarray(y, np.float32)) for k, y in rows.items()}


def main(argv=None) -> int:
    return run_judged(_main, argv)


def _main(argv=None) -> int:
    from evaluation.report import pct

    ap = argparse.ArgumentParser(prog="python -m evaluation.edge", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_options(ap)
    a = ap.parse_args(argv)
    ev = judged_evaluator(a)
    bd = ev.bundle
    clips = clips_for(ev, a, {s for s, _ in a.pairs})
    for s, t in a.pairs:
        p = ev.base_preset(s, t)
        outs = {}
        moved, moves = ev.moved_clips(clips[s], p)
        for c, x in zip(clips[s], moved):
            for k, y in legs_for_clip(bd, p, x, ev.tf).items():
                outs.setdefault(k, []).append(bd.decode(y, t)[:len(c.audio)])
        print(f"\n{s} → {t} (σmax {p.sigma_max:g}, {p.steps} {p.solver} steps, {p.prior}; window {p.window}, "
              f"hop {p.hop}, frames kept {p.crossfade}–{p.crossfade + p.hop - 1} from the newest); "
              f"{len(clips[s])} {a.split} clips ≤ {a.seconds:g} s")
        for k, ys in outs.items():
            r = ev.score(k, s, t, clips[s], ys, None, transpose=p.transpose, moves=moves)
            print(f"  {k:16s} heard as {t}: clips {pct(r['target_acc_clip'])}, crops {pct(r['target_acc'])}; "
                  f"pitch class {pct(r['chroma_acc'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
