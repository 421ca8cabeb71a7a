"""Reports of an evaluation: the recommended σmax per pair, results.md, the trade-off plot, preset updates.

    python -m evaluation.report out/eval/results.json [--keep 0.9] [--update-presets presets]
    python -m evaluation.report out/sweep-A/results.json out/sweep-B/results.json --out docs/eval

re-derives the recommendations from a saved results.json (e.g. with another --keep), rewrites results.md and
tradeoff.png next to it, and with --update-presets writes each pair's recommended σmax (and the prior it was
measured with) into the preset files of that folder whose source/target match (every other field is kept; the
file is replaced atomically). Several results are merged into --out first (a sweep split over processes, or some
pairs measured again: a later file's pairs replace an earlier one's).
"""
from __future__ import annotations

import logging

import argparse
import json
import math
import sys
from pathlib import Path

from core.io import atomic_output, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

RULE = ("Per pair, among the transfer rows at the swept step count closest to the pair's preset steps, favouring "
        "the melody: the lowest σmax whose target-instrument recognition is within MARGIN (10 points) of the best "
        "σmax's. Without a classifier: a σmax is eligible when its pitch accuracy is at least KEEP × that of the "
        "codec row (the input through the codec alone, no bridge); of those the lowest FD wins (without FD, the "
        "largest eligible σmax); when none is eligible, the best pitch accuracy. With rows of several priors or "
        "transpositions (merged --across-priors): that σmax per prior, transpose and fold, then, of the picks heard "
        "within MARGIN of the best, the one keeping the most notes (pitch, octave included, against the melody moved "
        "as asked: transposed, folded, on every frame the input voices: pitch accuracy × voiced overlap), an "
        "unmoved one first among those within PITCH_TIE (2 points) of it. Where "
        "every swept σmax of a variant was also streamed as live (--live-rows), its σmax is the lowest of those near "
        "the best whose as-live recognition is at most LIVE_GAP (5 points) under its offline one, the preset being "
        "what is played live; where none is, the σmax as without them, and across variants a pick that falls short "
        "so gives way to those heard as live within it, where there are any. Likewise with issue #12's clip bar: of "
        "the σmax near the best, the lowest heard as the target in BAR_CLIPS (80 %) of the clips where one is, and "
        "across variants, first, a pick below it gives way to those at or above it. And with its pitch-class bar, "
        "first of all: a σmax near the best keeping the pitch classes on less than BAR_CHROMA_OF_CODEC (85 %) of "
        "what the codec row keeps gives way to those near the best that keep them, or, where none near does, to the "
        "σmax heard best of those that do.")
MARGIN = 0.10
LIVE_GAP = 0.05  # issue #12's bar: heard as the target as live at most 5 points (of crops) less than offline
BAR_CLIPS = 0.8  # issue #12's bar: a preset heard as the target in at least 80 % of the clips
BAR_CHROMA_OF_CODEC = 0.85  # issue #12's bar: pitch-class accuracy at least 85 % of the codec round trip's
PITCH_TIE = 0.02  # notes kept this close count as equal when choosing between transpositions


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def _finite(v: float, default: float = -math.inf) -> float:
    return v if math.isfinite(v) else default


def _timbre(row: dict) -> float:
    """Higher is better: the target accuracy, else −FD, else NaN."""
    t = _num(row.get("target_acc"))
    if math.isfinite(t):
        return t
    fd = _num(row.get("fd"))
    return -fd if math.isfinite(fd) else float("nan")


def recommend(rows: list[dict], pair: str, keep: float = 0.9, preset_steps: int = 3, margin: float = MARGIN
              ) -> dict | None:
    """The recommended σmax of one pair from its rows (see RULE); None without transfer rows."""
    sweep = [r for r in rows if r["pair"] == pair and r["kind"] == "transfer"]
    if not sweep:
        return None
    if len(variants := sorted({row_variant(r) for r in sweep})) > 1:
        return _across_variants(rows, pair, variants, keep, preset_steps, margin)
    steps = min({int(r["steps"]) for r in sweep}, key=lambda s: (abs(s - preset_steps), s))
    sweep = sorted((r for r in sweep if int(r["steps"]) == steps), key=lambda r: r["sigma_max"])
    codec = [r for r in rows if r["pair"] == pair and r["kind"] == "codec"]
    ref = _num(codec[0]["pitch_acc"]) if codec else float("nan")
    ref = ref if math.isfinite(ref) else 1.0
    eligible = [r for r in sweep if _num(r["pitch_acc"]) >= keep * ref]
    target = [_num(r.get("target_acc")) for r in sweep]
    twins = live_twins(rows, pair, sweep)
    if any(math.isfinite(t) for t in target):  # the judge heard the rows: lowest σmax near the best recognition
        best = max(t for t in target if math.isfinite(t))
        near = [(r, t, w) for r, t, w in zip(sweep, target, twins) if math.isfinite(t) and t >= best - margin - 1e-9]
        why = f"lowest σmax whose target recognition is within {100 * margin:.0f} points of the best ({best:.0%})"
        # favouring melody, issue #12's pitch-class bar: a σmax keeping the pitch classes on less than
        # BAR_CHROMA_OF_CODEC of the codec's gives way to those near the best that keep them, or, where none near
        # does, to the one heard best of those that do
        codec_chroma = _num(codec[0].get("chroma_acc")) if codec else float("nan")
        judged = [(r, t, w) for r, t, w in zip(sweep, target, twins) if math.isfinite(t)]
        kept = [n for n in judged if keeps_pitch_classes(n[0], codec_chroma)]
        if kept and len(kept) < len(judged):
            near_kept = [n for n in near if keeps_pitch_classes(n[0], codec_chroma)]
            if near_kept:
                near = near_kept
                why += f", of those keeping the pitch classes on {BAR_CHROMA_OF_CODEC:.0%} of the codec's"
            else:
                near = [max(kept, key=lambda k: (k[1], -k[0]["sigma_max"]))]
                why = (f"none near the best recognition ({best:.0%}) keeps the pitch classes on "
                       f"{BAR_CHROMA_OF_CODEC:.0%} of the codec's: the σmax heard best of those that do")
        # issue #12's bar: where a σmax near the best is heard as the target in BAR_CLIPS of the clips, one that is
        bar = [n for n in near if meets_clip_bar(n[0])]
        if bar and len(bar) < len(near):
            near = bar
            why += f", heard so in at least {BAR_CLIPS:.0%} of clips"
        pick = near[0][0]
        # streamed as live (and judged) at every σmax: the preset is played live
        if all(w is not None and math.isfinite(_num(w.get("target_acc"))) for w in twins):
            playable = [r for r, t, w in near if _num(w.get("target_acc")) >= t - LIVE_GAP - 1e-9]
            pick = playable[0] if playable else pick
            why += (f" and, as live, at most {100 * LIVE_GAP:.0f} points under offline" if playable else
                    f"; none is within {100 * LIVE_GAP:.0f} points of it as live")
    elif eligible:
        scores = [_timbre(r) for r in eligible]
        if any(math.isfinite(s) for s in scores):
            best = max(s for s in scores if math.isfinite(s))
            pick = next(r for r, s in zip(eligible, scores) if math.isfinite(s) and s >= best - 1e-9)
            why = f"highest timbre score among σmax keeping ≥ {keep:.0%} of the codec's pitch accuracy"
        else:
            pick = eligible[-1]
            why = f"largest σmax keeping ≥ {keep:.0%} of the codec's pitch accuracy (no timbre score)"
    else:
        prod = [_num(r["pitch_acc"]) * (_num(r.get("target_acc")) if math.isfinite(_num(r.get("target_acc"))) else 1.0)
                for r in sweep]
        if any(math.isfinite(p) for p in prod):
            best = max(p for p in prod if math.isfinite(p))
            pick = next(r for r, p in zip(sweep, prod) if math.isfinite(p) and p >= best - 1e-9)
            why = f"no σmax keeps {keep:.0%} of the codec's pitch accuracy: best pitch × target accuracy"
        else:
            pick = sweep[0]
            why = "no voiced frames to score the melody: the smallest σmax"
    twin = next(w for r, w in zip(sweep, twins) if r is pick)
    return dict(sigma_max=float(pick["sigma_max"]), steps=steps, pitch_acc=pick["pitch_acc"],
                chroma_acc=pick.get("chroma_acc"), voiced_overlap=pick.get("voiced_overlap"),
                target_acc=pick.get("target_acc"), target_acc_clip=pick.get("target_acc_clip"), fd=pick.get("fd"),
                reference_pitch_acc=ref, keep=keep,
                **({"live_target_acc": twin.get("target_acc"), "live_chroma_acc": twin.get("chroma_acc")}
                   if twin is not None else {}),
                eligible=[float(r["sigma_max"]) for r in eligible], why=why, transpose=int(pick.get("transpose") or 0),
                fold_centre=int(pick.get("fold_centre") or 0),
                **({"prior": pick["prior"]} if pick.get("prior") else {}))


def live_twins(rows: list[dict], pair: str, sweep: list[dict]) -> list[dict | None]:
    """Each sweep row's as-live twin (None where there is none): the same pair, prior, transpose, fold, σmax and
    steps, streamed block by block as live."""
    key = lambda r: (row_variant(r), float(r["sigma_max"]), int(r["steps"]))  # noqa: E731
    live = {key(r): r for r in rows if r["pair"] == pair and r["kind"] == "as-live" and r.get("sigma_max") is not None
            and r.get("steps") is not None}
    return [live.get(key(r)) for r in sweep]


def row_variant(row: dict) -> tuple[str, int, int]:
    """What else than σmax and steps a transfer row was rendered with: its prior, transpose and fold."""
    return row.get("prior") or "", int(row.get("transpose") or 0), int(row.get("fold_centre") or 0)


def semitones(row: dict) -> str:
    """' -12 st', ' fold 58', '' for a row that does not move its input."""
    return ((f" {int(row['transpose']):+d} st" if row.get("transpose") else "")
            + (f" fold {int(row['fold_centre'])}" if row.get("fold_centre") else ""))


def _variant_name(v: tuple[str, int, int]) -> str:
    return (v[0] or "preset prior") + semitones({"transpose": v[1], "fold_centre": v[2]})


def _across_variants(rows, pair, variants, keep, preset_steps, margin) -> dict:
    """Rows of several priors or transpositions (merged --across-priors): the rule picks a σmax per variant; a low
    σmax says less about the melody across variants (one map keeps it at σmax 1 where another moves it at 0.5), so
    among the picks whose recognition is within MARGIN of the best, the one keeping the most notes wins (pitch
    against the melody as asked, transposed by its transpose, folded by its fold, on every frame the input voices:
    `notes_kept`); within PITCH_TIE of that, an unmoved one (no transpose, no fold) first, so the player's octave
    changes only where that keeps the notes or gets the target heard."""
    picks = [recommend([r for r in rows if r["pair"] != pair or r["kind"] != "transfer" or row_variant(r) == v],
                       pair, keep, preset_steps, margin) for v in variants]
    # first, as within a variant, a pick heard as the target in fewer than BAR_CLIPS of the clips gives way to those
    # heard in as many or more
    bar = [p for p in picks if meets_clip_bar(p)]
    below = bool(bar) and len(bar) < len(picks)
    picks = bar if below else picks
    # then a pick heard as live more than LIVE_GAP under offline gives way to those heard as live within it (a pick
    # not streamed as live is neither: with no pick known to pass, the choice is as without live rows)
    passing = [p for p in picks if math.isfinite(_num(p.get("live_target_acc"))) and not _live_gap_exceeded(p)]
    aside = bool(passing) and any(_live_gap_exceeded(p) for p in picks)
    picks = passing if aside else picks
    heard = [_finite(_num(p.get("target_acc"))) for p in picks]
    near = [p for p, t in zip(picks, heard) if t >= max(heard) - margin - 1e-9]
    # the notes themselves, octave included (a map that keeps pitch classes but jumps octaves is heard as wrong
    # notes), on every frame the input voices (one that drops notes keeps fewer of them: session 36)
    melody = lambda p: (notes_kept(p), _finite(_num(p.get("chroma_acc"))))  # noqa: E731
    most = max(melody(p)[0] for p in near)
    level = [p for p in near if melody(p)[0] >= most - PITCH_TIE - 1e-9]  # as many notes kept, within PITCH_TIE
    best = max(level, key=lambda p: (p["transpose"] == 0 and not p["fold_centre"], melody(p), -p["sigma_max"]))
    return dict(best, why=best["why"] + f"; of {', '.join(map(_variant_name, variants))}, the one keeping the most "
                                        f"notes among those within {100 * margin:.0f} points of the best recognition"
                                        + (f" (unmoved first within {100 * PITCH_TIE:.0f} points)"
                                           if len({v[1:] for v in variants}) > 1 else "")
                                        + (f", those heard as the target in fewer than {BAR_CLIPS:.0%} of clips set "
                                           f"aside" if below else "")
                                        + (f", those heard as live more than {100 * LIVE_GAP:.0f} points under "
                                           f"offline set aside" if aside else ""))


def notes_kept(row: dict) -> float:
    """The share of the input's voiced frames that come out voiced and within 50 cents: pitch accuracy (on the
    frames voiced in both) × voiced overlap (voiced in both / voiced in the input; unrecorded counts as 1)."""
    pitch, overlap = _num(row["pitch_acc"]), _num(row.get("voiced_overlap"))
    if not math.isfinite(pitch):  # nothing voiced in both: no notes to count (and -inf × 0 would be NaN)
        return -math.inf
    return pitch * (overlap if math.isfinite(overlap) else 1.0)


def keeps_pitch_classes(row: dict, codec_chroma: float) -> bool:
    """Whether a row keeps the pitch classes on at least BAR_CHROMA_OF_CODEC of what the codec's round trip keeps
    (unmeasured counts as kept: nothing to set it aside for)."""
    chroma = _num(row.get("chroma_acc"))
    if not (math.isfinite(chroma) and math.isfinite(codec_chroma) and codec_chroma > 0):
        return True
    return chroma >= BAR_CHROMA_OF_CODEC * codec_chroma - 1e-9


def meets_clip_bar(row: dict) -> bool:
    """Whether a row (or pick) was heard as the target in at least BAR_CLIPS of its clips."""
    return _num(row.get("target_acc_clip")) >= BAR_CLIPS - 1e-9


def live_falls_short(offline_acc, live_acc) -> bool:
    """Whether the target was heard as live more than LIVE_GAP less often than offline (both measured)."""
    live, offline = _num(live_acc), _num(offline_acc)
    return math.isfinite(live) and math.isfinite(offline) and live < offline - LIVE_GAP - 1e-9


def _live_gap_exceeded(pick: dict) -> bool:
    """Whether a pick was streamed as live and heard there more than LIVE_GAP less often as the target."""
    return live_falls_short(pick.get("target_acc"), pick.get("live_target_acc"))


# ---------------------------------------------------------------- markdown
def pct(v) -> str:
    v = _num(v)
    return f"{100 * v:.1f}%" if math.isfinite(v) else "–"


def _f(v, fmt=".2f") -> str:
    v = _num(v)
    return format(v, fmt) if math.isfinite(v) else "–"


_ORDER = {"lower": 0, "codec": 1, "transposed": 2, "transfer": 3, "upper": 4, "as-live": 5, "offline-quality": 6}
_LABEL = {"lower": "lower bound: input unchanged", "codec": "input through the codec (no bridge)",
          "transposed": "input transposed / folded, through the codec (no bridge)",
          "upper": "upper bound: real target through the codec", "transfer": "transfer",
          "as-live": "as live (streaming)", "offline-quality": "preset, offline quality"}


def markdown(results: dict) -> str:
    cfg, clf = results.get("config", {}), results.get("classifier")
    lines = ["# Timbre transfer evaluation", ""]
    lines.append(f"Bundle `{results['bundle']['path']}`; sweep rendered as `{cfg.get('mode')}`; "
                 f"{'folders' if cfg.get('folders') else 'corpus ' + str(cfg.get('corpus')) + ' split ' + str(cfg.get('split'))}; "
                 + ", ".join(f"{k}: {len(v)} clips / {results['clip_seconds'][k]:.0f} s"
                             for k, v in sorted(results["clips"].items())) + ".")
    if clf:
        lines.append(f"Classifier `{clf['path']}` (held-out accuracy {pct(clf.get('test_accuracy'))}, "
                     f"crops {pct(clf.get('test_crop_accuracy'))}).")
    else:
        lines.append("No classifier: timbre accuracy and FD are not measured.")
    lines += ["", "Pitch accuracy: frames within 50 cents of the input's f0 (PESTO), on frames voiced in both; "
              "chroma: the same, octave errors forgiven; pitch distance: mean |Δ| in semitones; voiced overlap: "
              "frames voiced in both / voiced in the input. Target acc: crops (clips) the classifier labels as the "
              "target instrument. FD: Fréchet distance of classifier embeddings to real target audio "
              "(lower is closer). RTF: render time / audio time.", "", "## Recommended σmax", "",
              "| pair | σmax | steps | pitch acc | target acc | FD | why |", "|---|---|---|---|---|---|---|"]
    for pair in results["pairs"]:
        r = results["recommended"].get(pair)
        if r:
            lines.append(f"| {pair} | {r['sigma_max']:g}{semitones(r)} | {r['steps']} | {pct(r['pitch_acc'])} | "
                         f"{pct(r.get('target_acc'))} | {_f(r.get('fd'))} | {r['why']} |")
    lines += ["", f"Rule: {results.get('rule', RULE)}", ""]
    head = ["| row | σmax | steps | pitch acc | chroma acc | pitch dist (st) | voiced overlap | target acc "
            "(crops) | target acc (clips) | FD | RTF |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for pair in results["pairs"]:
        rows = sorted((r for r in results["rows"] if r["pair"] == pair),
                      key=lambda r: (_ORDER.get(r["kind"], 9), r.get("steps") or 0, r.get("sigma_max") or 0))
        lines += [f"## {pair.replace('-to-', ' → ')}", ""] + head
        for r in rows:
            lines.append(f"| {_LABEL.get(r['kind'], r['kind'])} | {_f(r.get('sigma_max'), 'g')} | "
                         f"{r.get('steps') or '–'}{' ' + r['solver'] if r.get('solver') else ''}"
                         f"{' ' + r['prior'] if r.get('prior') else ''}"
                         f"{semitones(r)} | "
                         f"{pct(r['pitch_acc'])} | {pct(r['chroma_acc'])} | "
                         f"{_f(r['pitch_distance'])} | {pct(r['voiced_overlap'])} | {pct(r.get('target_acc'))} | "
                         f"{pct(r.get('target_acc_clip'))} | {_f(r.get('fd'))} | {_f(r.get('rtf'), '.3f')} |")
        lines.append("")
    if results.get("cycle"):
        lines += ["## Cycle consistency A → B → A", "",
                  "Whole-clip bridge on the latents there and back; latent MSE against the input's latents, melody "
                  "of the decoded round trip against the input, and how often the classifier hears A again.", "",
                  "| pair | σmax | steps | latent MSE | pitch acc | chroma acc | pitch dist (st) | back-to-A acc | FD |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in results["cycle"]:
            lines.append(f"| {r['pair']} | {_f(r['sigma_max'], 'g')} | {r['steps']} | {_f(r['latent_mse'], '.4f')} | "
                         f"{pct(r['pitch_acc'])} | {pct(r['chroma_acc'])} | {_f(r['pitch_distance'])} | "
                         f"{pct(r.get('target_acc'))} | {_f(r.get('fd'))} |")
        lines.append("")
    if results.get("examples"):
        lines += ["## Audio examples", ""] + [f"- `{p}`" for p in results["examples"]] + [""]
    return "\n".join(lines)


def write_markdown(results: dict, path: Path) -> Path:
    return write_text_atomic(path, markdown(results))


# ---------------------------------------------------------------- plot
def plot_tradeoff(results: dict, path: Path, per_panel: int = 4) -> Path:
    """Pitch accuracy (y) against target-instrument accuracy (x; FD or σmax without a classifier), one curve
    per pair, step count and prior, each point annotated with its σmax; bounds and the recommendation marked.
    Up to `per_panel` pairs share one panel; more get one small panel each (30 pairs in one legend hid the plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [r for r in results["rows"] if r["kind"] == "transfer"]
    if any(math.isfinite(_num(r.get("target_acc"))) for r in sweep):
        xkey, xlabel, scale = "target_acc", "target-instrument accuracy (classifier, crops) %", 100.0
    elif any(math.isfinite(_num(r.get("fd"))) for r in sweep):
        xkey, xlabel, scale = "fd", "Fréchet distance to real target audio (lower = closer)", 1.0
    else:
        xkey, xlabel, scale = "sigma_max", "σmax", 1.0
    pairs = results["pairs"]
    groups = [pairs] if len(pairs) <= per_panel else [[p] for p in pairs]
    cols = min(len(groups), 6)
    nrows = math.ceil(len(groups) / cols)
    big = len(groups) == 1
    fig, axes = plt.subplots(nrows, cols, figsize=(8, 6) if big else (2.9 * cols, 2.6 * nrows + 0.8), dpi=110,
                             squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ax in enumerate(axes.flat):
        if k >= len(groups):
            ax.axis("off")
            continue
        for i, pair in enumerate(groups[k]):
            _plot_pair(ax, results, pair, colours[i % len(colours)], xkey, scale, big)
        if xkey == "sigma_max":
            ax.set_xscale("log")
        elif xkey == "target_acc":
            ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
        if big:
            ax.set_xlabel(xlabel)
            ax.set_ylabel("pitch accuracy (within 50 cents of the input) %")
        else:
            ax.set_title(groups[k][0].replace("-to-", " → "), fontsize=9)
            ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7 if big else 5, loc="best")
    title = ("σmax trade-off: melody kept vs timbre changed\n"
             "▼ input unchanged  ▲ real target via codec  ■ as live  ◆ offline quality  ★ recommended")
    if big:
        axes[0, 0].set_title(title, fontsize=10)
    else:
        fig.suptitle(f"{title}\nx: {xlabel}; y: pitch accuracy (within 50 cents of the input) %", fontsize=10)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def _plot_pair(ax, results: dict, pair: str, col, xkey: str, scale: float, big: bool) -> None:
    rows = results["rows"]
    ps = [r for r in rows if r["kind"] == "transfer" and r["pair"] == pair]
    styles = ["-", "--", ":", "-."]
    name = pair.replace("-to-", " → ") + ", " if big else ""
    for j, (steps, variant) in enumerate(sorted({(r["steps"], row_variant(r)) for r in ps})):
        pts = sorted((r for r in ps if r["steps"] == steps and row_variant(r) == variant), key=lambda r: r["sigma_max"])
        prior = variant[0] + semitones({"transpose": variant[1], "fold_centre": variant[2]})
        xs = [scale * _num(r.get(xkey)) for r in pts]
        ys = [100 * _num(r["pitch_acc"]) for r in pts]
        ax.plot(xs, ys, styles[j % len(styles)], marker="o", color=col if big else f"C{j}", ms=4,
                label=f"{name}{steps} steps{', ' + prior if prior else ''}")
        for x, y, r in zip(xs, ys, pts):
            if math.isfinite(x) and math.isfinite(y):
                ax.annotate(f"{r['sigma_max']:g}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6,
                            color=col if big else f"C{j}")
    for kind, marker in (("lower", "v"), ("upper", "^"), ("as-live", "s"), ("offline-quality", "D")):
        for r in (r for r in rows if r["pair"] == pair and r["kind"] == kind):
            x, y = scale * _num(r.get(xkey)), 100 * _num(r["pitch_acc"])
            if xkey == "sigma_max" and kind in ("lower", "upper"):
                continue
            if math.isfinite(x) and math.isfinite(y):
                ax.scatter([x], [y], marker=marker, color=col, s=40, edgecolors="k", linewidths=0.5, zorder=3)
    rec = results.get("recommended", {}).get(pair)
    if rec:
        r = next((r for r in ps if r["sigma_max"] == rec["sigma_max"] and r["steps"] == rec["steps"]
                  and r.get("prior") == rec.get("prior", r.get("prior"))
                  and int(r.get("transpose") or 0) == rec.get("transpose", 0)
                  and int(r.get("fold_centre") or 0) == rec.get("fold_centre", 0)), None)
        if r is not None:
            x, y = scale * _num(r.get(xkey)), 100 * _num(r["pitch_acc"])
            if math.isfinite(x) and math.isfinite(y):
                ax.scatter([x], [y], marker="*", s=220 if big else 120, color=col, edgecolors="k", zorder=4)


# ---------------------------------------------------------------- presets
def update_presets(folder: str | Path, recommended: dict) -> tuple[list[Path], list[str]]:
    """Write each pair's recommended σmax, with the prior, transpose and fold it was measured with (a result
    without transposed or folded rows was measured at 0, so it sets them to 0), into the presets of `folder` with
    that source and target, through live.preset (validated, saved atomically; every other field kept). Returns the
    files written and the pairs that have no preset there. Invalid preset files are left alone with a warning."""
    from live.preset import PresetError, scan_presets, update_preset_file

    try:
        presets, bad = scan_presets(Path(folder))
    except PresetError as e:
        raise FileNotFoundError(str(e)) from None
    for e in bad:
        log.warning("not updated: %s", e)
    done, seen = [], set()
    for p in presets:
        rec = recommended.get(f"{p.source}-to-{p.target}")
        if not rec:
            continue
        seen.add(f"{p.source}-to-{p.target}")
        sigma = float(rec["sigma_max"])
        if p.sigma_min >= sigma:
            log.warning("%s: sigma_min %s is not below the recommended σmax %s; left unchanged", p.path, p.sigma_min,
                        sigma)
            continue
        # the prior the σmax was measured with goes with it (sweeps before priors existed measured gaussian)
        # written where it changes (a preset at 0 stays without the field); results without transposed or folded
        # rows were measured at 0, so their σmax goes with transpose 0 and no fold
        moved, fold = int(rec.get("transpose", 0)), int(rec.get("fold_centre", 0))
        done.append(update_preset_file(p.path, sigma_max=sigma, prior=rec.get("prior", "gaussian"),
                                       **({"transpose": moved} if moved != p.transpose else {}),
                                       **({"fold_centre": fold} if fold != p.fold_centre else {})))
    return done, sorted(set(k for k, v in recommended.items() if v) - seen)


def merge_results(parts: list[dict], across_priors: bool = False) -> dict:
    """Several runs of python -m evaluation (a sweep split over processes, or some pairs measured again) as one:
    a pair in a later part replaces it in an earlier one; with `across_priors`, only its rows of the priors and
    transpositions the later part measured (the others stay beside them, and the pair's recommendation chooses
    among all). The clips must be the same where instruments meet, so that every row of the table was scored on
    the same audio."""
    merged = json.loads(json.dumps(parts[0]))
    for k, part in enumerate(parts[1:], 2):
        # the same models, wherever exported; where a part predates the hash, the same folder
        hashed = all(r["bundle"].get("models_sha256") for r in (merged, part))
        for what, key in (("bundle", lambda r: r["bundle"]["models_sha256"] if hashed else r["bundle"]["path"]),
                          ("judge", lambda r: (r.get("classifier") or {}).get("path")),
                          ("render mode", lambda r: r["config"].get("mode"))):
            if key(part) != key(merged):
                raise ValueError(f"part {k} has another {what} than part 1 ({key(part)} vs {key(merged)})")
        for inst, names in part["clips"].items():
            if inst in merged["clips"] and (merged["clips"][inst] != names
                                            or merged["clip_seconds"][inst] != part["clip_seconds"][inst]):
                raise ValueError(f"part {k} scored other {inst} clips than part 1 (--clips, --seconds and the corpus "
                                 f"must be the same to merge)")
        merged["clips"].update(part["clips"])
        merged["clip_seconds"].update(part["clip_seconds"])
        new = set(part["pairs"])
        merged["pairs"] = [p for p in merged["pairs"] if p not in new] + list(part["pairs"])
        # a row is kept beside the later part's when the later part did not measure its prior and transpose (the
        # transposed-input control row: its transpose)
        variant = lambda r: (r["pair"], r["kind"] == "transposed") + row_variant(r)  # noqa: E731
        for key in ("rows", "cycle"):  # cycle rows against cycle rows only
            measured = {variant(r) for r in part.get(key, [])}
            merged[key] = [r for r in merged.get(key, []) if r["pair"] not in new or (
                across_priors and (r.get("prior") or r["kind"] == "transposed") and variant(r) not in measured)
                           ] + list(part.get(key, []))
        merged["recommended"] = {p: r for p, r in merged["recommended"].items() if p not in new} | part["recommended"]
        if across_priors:  # chosen again over every prior's rows, with this rule
            merged["rule"] = RULE
            for p, rec in part["recommended"].items():
                if rec:
                    merged["recommended"][p] = recommend(merged["rows"], p, rec.get("keep", 0.9), rec["steps"])
    merged["config"]["pairs"] = [p.split("-to-") for p in merged["pairs"]]
    return merged


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report", description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path, nargs="+",
                    help="results.json of python -m evaluation; several are merged (a later one's pairs win)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the merged results.json, results.md and tradeoff.png (default: the first's)")
    ap.add_argument("--keep", type=float, default=None, help="re-derive recommendations with this pitch fraction")
    ap.add_argument("--update-presets", type=Path, default=None, metavar="DIR")
    ap.add_argument("--across-priors", action="store_true",
                    help="a later part replaces only the rows of the priors and transpositions it measured; each "
                         "pair's prior, transpose and σmax are chosen over all of them (the rule's σmax per variant, "
                         "then, among those heard within 10 points of the best, the most notes kept (pitch × voiced "
                         "overlap), an unmoved one first within 2 points of that)")
    a = ap.parse_args(argv)
    parts = []
    for f in a.results:
        try:
            parts.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: {f}: {e}", file=sys.stderr)
            return 2
    try:
        results = merge_results(parts, a.across_priors)
    except (ValueError, KeyError) as e:
        print(f"error: cannot merge {', '.join(map(str, a.results))}: {e}", file=sys.stderr)
        return 2
    out = a.out or a.results[0].parent
    if a.keep is not None:
        steps = {p: (results["recommended"].get(p) or {}).get("steps", 3) for p in results["pairs"]}
        results["recommended"] = {p: recommend(results["rows"], p, a.keep, steps[p]) for p in results["pairs"]}
        results["rule"] = RULE
    if a.keep is not None or len(parts) > 1 or a.out:
        write_json_atomic(out / "results.json", results)
    write_markdown(results, out / "results.md")
    plot_tradeoff(results, out / "tradeoff.png")
    print_recommendations(results["recommended"])
    if a.update_presets:
        return apply_presets(a.update_presets, results["recommended"])
    return 0


def print_recommendations(recs: dict) -> None:
    for pair, r in recs.items():
        if r:
            print(f"{pair}: σmax {r['sigma_max']:g}{semitones(r)} ({r['steps']} steps"
                  f"{', ' + r['prior'] if r.get('prior') else ''}; "
                  f"pitch {pct(r['pitch_acc'])}, "
                  f"target {pct(r.get('target_acc'))}) — {r['why']}")


def apply_presets(folder: Path, recs: dict) -> int:
    try:
        done, missing = update_presets(folder, recs)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in done:
        print(f"updated {p}")
    if missing:
        print(f"no preset in {folder} for: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
