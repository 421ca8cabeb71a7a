"""Issue #12's bar, pair by pair, from evaluation results at the presets or at a sweep's recommendations.

    python -m evaluation.bar docs/eval/at-presets/results.json [OTHER.json ...]
    python -m evaluation.bar --pool docs/eval/confirm3-at-presets/results.json … LAST.json   # one set of clips

For each pair's preset row (kind `transfer`, and its `as-live` twin; in a sweep, the row at its recommended σmax,
steps, prior and register, its live verdict only where that row was streamed too, as with --live-rows): heard as the target in at least 80 % of
the clips, pitch classes kept on at least 85 % of what the codec round trip keeps (the `codec` row), and as live
at most 5 points of crops under offline. One table per file and a count, so two codecs or two sets of models
measured on the same clips compare line by line; exit 0 either way (a report, not a gate).
Where the preset transposes or folds, its control row (the input moved so, through the codec, no bridge) is printed
beside it: the judge hears register as timbre, so a pair whose register move alone is heard as the target meets the
bar without proving the bridge does it; the count says how many.
`--pool`: the files' clips as one set, pair by pair at the setting the last file measured it with (files that
measured a pair otherwise are left out for it): 8 clips a split move a pair near the bar across it either way, and
several splits of unseen clips, pooled, say more than any one of them.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from core.cli import run_main
from evaluation.report import (BAR_CHROMA_OF_CODEC, BAR_CLIPS, LIVE_GAP, live_falls_short, live_twins,
                               meets_clip_bar, pct, row_variant, semitones)


def pair_verdicts(results: dict) -> dict[str, dict]:
    """Per pair with a transfer row: its figures and which parts of the bar it meets (`live` None: no as-live row).
    A sweep (several transfer rows for a pair) is read at its recommendation; without one it is refused: which is
    the preset? A sweep's recommended row has a live verdict only where it was streamed too (--live-rows)."""
    out = {}
    for pair, kinds in sorted(_by_pair(results).items()):
        transfers = kinds.get("transfer", [])
        if not transfers:
            continue
        sweep = len(transfers) > 1
        if sweep:  # read at the σmax, steps, prior and register the sweep recommends
            transfers = at_recommendation(pair, transfers, (results.get("recommended") or {}).get(pair))
        (t,) = transfers
        codec = (kinds.get("codec") or [None])[0]
        if not codec or not codec.get("chroma_acc"):
            raise ValueError(f"{pair}: no codec row with a pitch-class accuracy to hold the transfer's against")
        (live,) = live_twins(results["rows"], pair, [t])
        if kinds.get("as-live") and live is None and not sweep:  # (a sweep streams its preset, maybe not its pick)
            raise ValueError(f"{pair}: as-live rows, but none at the transfer row's σmax, steps, prior and register")
        ratio = t["chroma_acc"] / codec["chroma_acc"]
        gap = t["target_acc"] - live["target_acc"] if live else None
        moved = register_control(pair, t, kinds.get("transposed", []))
        out[pair] = dict(sigma_max=t.get("sigma_max"), prior=t.get("prior"), semitones=semitones(t),
                         register_clips=moved and moved["target_acc_clip"], clips=t["target_acc_clip"],
                         crops=t["target_acc"], chroma_ratio=ratio, live_clips=live and live["target_acc_clip"],
                         n_clips=t.get("clips"), files=t.get("files"),
                         live_crops=live and live["target_acc"], live_gap=gap,
                         offline=meets_clip_bar(t) and ratio >= BAR_CHROMA_OF_CODEC - 1e-9,
                         live=None if live is None else not live_falls_short(t["target_acc"], live["target_acc"]))
    return out


def register_control(pair: str, t: dict, controls: list[dict]) -> dict | None:
    """The control row of a transfer that moves its input (transposes or folds): the input moved as it was, through
    the codec, no bridge. None for a transfer that does not move it; an error where one that does has no control."""
    _, transpose, fold = row_variant(t)
    if not (transpose or fold):
        return None
    match = [c for c in controls if row_variant(c)[1:] == (transpose, fold)]
    if not match:
        raise ValueError(f"{pair}: the transfer moves its input ({semitones(t).strip()}) and no control row (the input "
                         "moved so, no bridge) was measured with it: measure it with python -m evaluation")
    return match[0]


def at_recommendation(pair: str, transfers: list[dict], rec: dict | None) -> list[dict]:
    """A sweep's one row at its recommendation for the pair: σmax, steps, prior, transpose and fold."""
    if not rec or rec.get("sigma_max") is None or rec.get("steps") is None:
        raise ValueError(f"{pair}: {len(transfers)} transfer rows and no recommendation among them to read the bar "
                         "at: measure the presets (python -m evaluation --at-presets)")
    want = (rec.get("prior") or "", int(rec.get("transpose") or 0), int(rec.get("fold_centre") or 0),
            float(rec["sigma_max"]), int(rec["steps"]))
    rows = [t for t in transfers if (*row_variant(t), float(t["sigma_max"]), int(t["steps"])) == want]
    if len(rows) != 1:
        raise ValueError(f"{pair}: {len(rows)} transfer rows at its recommendation (σmax {want[3]:g}, {want[4]} steps,"
                         f" prior {want[0] or 'none'}, transpose {want[1]}, fold {want[2]}): not one to read the bar at")
    return rows


POOLED_RATES = ("target_acc", "target_acc_clip")  # per clip (every clip the same length: crops alike)
PITCH_RATES = ("pitch_acc", "chroma_acc", "pitch_distance")  # per frame voiced in both


def pool(results: list[dict]) -> dict:
    """Several at-presets results of other clips (splits rendered one after another) as one set, pair by pair, at
    the setting the last file that measured the pair used (its transfer row's σmax, steps, prior, transpose, fold):
    that pair's rows from every file whose transfer row has that setting, each kind of row (and its setting) pooled
    — clips added, clip and crop rates weighted by clips, pitch rates by the frames voiced in both; the Fréchet
    distance and the real-time factor do not pool (None). A sweep (a pair with several transfer rows) or files of
    other clip lengths are refused: which row, how many crops?"""
    if len({(r.get("config") or {}).get("seconds") for r in results}) > 1:
        raise ValueError("the files' clips are of different lengths: their crops do not pool")
    setting = lambda r: (r["kind"], *row_variant(r), r.get("sigma_max"), r.get("steps"))  # noqa: E731
    files = [_by_pair(res) for res in results]
    wanted: dict[str, tuple] = {}
    for by_pair in files:
        for pair, kinds in by_pair.items():
            transfers = kinds.get("transfer", [])
            if len(transfers) > 1:
                raise ValueError(f"{pair}: {len(transfers)} transfer rows in one file (a sweep): pool at-presets "
                                 "results (python -m evaluation --at-presets)")
            if transfers:
                wanted[pair] = setting(transfers[0])  # the last file's wins
    groups: dict[tuple, list[dict]] = {}
    for by_pair in files:
        for pair, kinds in by_pair.items():
            if pair in wanted and any(setting(t) == wanted[pair] for t in kinds.get("transfer", [])):
                for r in (r for rows in kinds.values() for r in rows):
                    groups.setdefault((pair, setting(r)), []).append(r)
    return dict(rows=[_pooled(rows) for rows in groups.values()], config=results[-1].get("config"))


def _by_pair(results: dict) -> dict[str, dict[str, list[dict]]]:
    by_pair: dict[str, dict[str, list[dict]]] = {}
    for r in results["rows"]:
        by_pair.setdefault(r["pair"], {}).setdefault(r["kind"], []).append(r)
    return by_pair


def _pooled(rows: list[dict]) -> dict:
    """One row of the same pair, kind and setting measured on several sets of clips."""
    def mean(key, weight):
        pairs = [(r[key], weight(r)) for r in rows if r.get(key) is not None and math.isfinite(r[key])]
        total = sum(w for _, w in pairs)
        return sum(x * w for x, w in pairs) / total if total else None

    out = dict(rows[0], clips=sum(r.get("clips") or 0 for r in rows), files=len(rows), fd=None, rtf=None)
    for key in POOLED_RATES:
        out[key] = mean(key, lambda r: r.get("clips") or 0)
    for key in PITCH_RATES:
        out[key] = mean(key, lambda r: r.get("voiced_frames") or 0)
    frames = [r.get("voiced_frames") or 0 for r in rows]
    input_voiced = sum(f / r["voiced_overlap"] for f, r in zip(frames, rows) if r.get("voiced_overlap"))
    out.update(voiced_frames=sum(frames), voiced_overlap=sum(frames) / input_voiced if input_voiced else None)
    return out


def table(verdicts: dict[str, dict], counts: bool = False) -> str:
    """The bar pair by pair; `counts`: each pair's clips and how many files they come from (a pooled set)."""
    lines = ["| pair | σmax, prior | clips off / live | crops off / live | pitch class / codec's | bar "
             "| register alone (no bridge), clips |", "|---|---|---|---|---|---|---|"]
    if counts:
        lines = [lines[0] + " clips (files) |", lines[1] + "---|"]
    for pair, v in verdicts.items():
        live_c = "—" if v["live_clips"] is None else pct(v["live_clips"])
        live_k = "—" if v["live_crops"] is None else pct(v["live_crops"])
        bar = ("meets it" if v["offline"] and v["live"] else "offline only" if v["offline"] and v["live"] is None
               else "not as live" if v["offline"] else "misses it")
        sigma = "—" if v["sigma_max"] is None else f"{v['sigma_max']:g}"
        moved = "—" if v["register_clips"] is None else pct(v["register_clips"])
        lines.append(f"| {pair} | {sigma} {v['prior'] or ''}{v['semitones']} | {pct(v['clips'])} / {live_c} | "
                     f"{pct(v['crops'])} / {live_k} | {pct(v['chroma_ratio'])} | {bar} | {moved} |"
                     + (f" {v['n_clips']} ({v['files']}) |" if counts else ""))
    offline = sum(v["offline"] for v in verdicts.values())
    both = sum(bool(v["offline"] and v["live"]) for v in verdicts.values())
    lines.append(f"\n{offline} of {len(verdicts)} pairs meet the bar offline, {both} offline and as live")
    movers = [v for v in verdicts.values() if v["register_clips"] is not None]
    if movers:
        alone = sum(meets_clip_bar(dict(target_acc_clip=v["register_clips"])) for v in movers)
        lines.append(f"{len(movers)} move their input (transpose or fold); for {alone} of them the move alone, no "
                     f"bridge, is heard as the target in ≥ {BAR_CLIPS:.0%} of clips: there the bar shows little")
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_main(_main, argv, errors=(ValueError, OSError, json.JSONDecodeError))


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.bar", description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", type=Path,
                    help="results.json of `python -m evaluation --at-presets`, or of a sweep (read at its recommendations)")
    ap.add_argument("--pool", action="store_true",
                    help="the files' clips as one set (at-presets results of other clips), each pair at the setting "
                         "the last file measured it with")
    a = ap.parse_args(argv)
    sets = [(f, json.loads(f.read_text())) for f in a.results]
    if a.pool:
        sets = [(f"{len(sets)} files pooled", pool([r for _, r in sets]))]
    for f, results in sets:
        print(f"{f} ({(results.get('config') or {}).get('bundle', '?')}; bar: ≥ {BAR_CLIPS:.0%} of clips, pitch class ≥ "
              f"{BAR_CHROMA_OF_CODEC:.0%} of the codec's, as live ≤ {LIVE_GAP * 100:g} points of crops under offline)")
        print(table(pair_verdicts(results), counts=a.pool) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
