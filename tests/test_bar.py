"""evaluation.bar: issue #12's bar read pair by pair from at-presets rows."""
import json

import pytest

from evaluation import bar


def _rows(pair, clips, crops, chroma, codec_chroma, live_crops=None, sigma=2.0):
    src, tgt = pair.split("-to-")
    base = dict(pair=pair, source=src, target=tgt)
    rows = [dict(base, kind="codec", chroma_acc=codec_chroma, target_acc=0.0, target_acc_clip=0.0),
            dict(base, kind="transfer", sigma_max=sigma, steps=4, prior="matched", target_acc=crops,
                 target_acc_clip=clips, chroma_acc=chroma)]
    if live_crops is not None:
        rows.append(dict(base, kind="as-live", sigma_max=sigma, steps=4, prior="matched", target_acc=live_crops,
                         target_acc_clip=clips, chroma_acc=chroma))
    return rows


def test_each_part_of_the_bar_at_its_boundary():
    rows = (_rows("a-to-b", 0.8, 0.90, 0.85, 1.0, live_crops=0.85)       # every part exactly at its bound: meets it
            + _rows("a-to-c", 0.75, 0.90, 0.99, 1.0, live_crops=0.90)    # 6/8 clips: misses it
            + _rows("b-to-a", 1.0, 0.90, 0.84, 1.0, live_crops=0.90)     # pitch class 84 % of the codec's: misses it
            + _rows("b-to-c", 1.0, 0.90, 0.90, 1.0, live_crops=0.849)    # 5.1 points under as live: not as live
            + _rows("c-to-a", 1.0, 0.90, 0.45, 0.5))                     # 90 % of a poor codec's: offline, no live row
    v = bar.pair_verdicts(dict(rows=rows))
    assert (v["a-to-b"]["offline"], v["a-to-b"]["live"]) == (True, True)
    assert v["a-to-c"]["offline"] is False and v["b-to-a"]["offline"] is False
    assert (v["b-to-c"]["offline"], v["b-to-c"]["live"]) == (True, False)
    assert (v["c-to-a"]["offline"], v["c-to-a"]["live"]) == (True, None)
    assert v["c-to-a"]["chroma_ratio"] == pytest.approx(0.9)
    text = bar.table(v)
    assert "3 of 5 pairs meet the bar offline, 1 offline and as live" in text
    assert "| b-to-c |" in text and "not as live" in text and "offline only" in text


def test_a_sweep_is_refused_and_the_command_reports(tmp_path, capsys):
    sweep = _rows("a-to-b", 1.0, 0.9, 0.9, 1.0) + _rows("a-to-b", 1.0, 0.9, 0.9, 1.0, sigma=5.0)[1:]
    with pytest.raises(ValueError, match="2 transfer rows"):
        bar.pair_verdicts(dict(rows=sweep))
    f = tmp_path / "results.json"
    f.write_text(json.dumps(dict(rows=_rows("a-to-b", 1.0, 0.9, 0.9, 1.0, live_crops=0.9))))
    assert bar.main([str(f)]) == 0
    assert "1 of 1 pairs meet the bar offline, 1 offline and as live" in capsys.readouterr().out
    f.write_text(json.dumps(dict(rows=sweep)))
    assert bar.main([str(f)]) == 2


def test_a_missing_codec_row_or_an_unmatched_live_row_is_an_error_not_a_verdict():
    rows = _rows("a-to-b", 1.0, 0.9, 0.9, 1.0, live_crops=0.9)
    with pytest.raises(ValueError, match="no codec row"):
        bar.pair_verdicts(dict(rows=rows[1:]))
    other_prior = [dict(r, prior="local") if r["kind"] == "as-live" else r for r in rows]
    with pytest.raises(ValueError, match="none at the transfer row"):
        bar.pair_verdicts(dict(rows=other_prior))
