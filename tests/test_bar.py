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


def test_a_sweep_is_read_at_its_recommendation_refused_without_one_and_the_command_reports(tmp_path, capsys):
    sweep = _rows("a-to-b", 1.0, 0.9, 0.9, 1.0) + _rows("a-to-b", 0.5, 0.6, 0.9, 1.0, sigma=5.0)[1:]
    with pytest.raises(ValueError, match="no recommendation"):
        bar.pair_verdicts(dict(rows=sweep))
    rec = dict(sigma_max=5.0, steps=4, prior="matched", transpose=0, fold_centre=0)
    v = bar.pair_verdicts(dict(rows=sweep, recommended={"a-to-b": rec}))["a-to-b"]
    assert (v["sigma_max"], v["clips"], v["offline"]) == (5.0, 0.5, False)  # the recommended row, not the first
    assert bar.pair_verdicts(dict(rows=sweep, recommended={"a-to-b": dict(rec, sigma_max=2.0)}))["a-to-b"]["offline"]
    with pytest.raises(ValueError, match="0 transfer rows at its recommendation"):  # another prior: no row
        bar.pair_verdicts(dict(rows=sweep, recommended={"a-to-b": dict(rec, prior="local")}))
    with pytest.raises(ValueError, match="no recommendation"):  # one without a σmax: refused in a line, no KeyError
        bar.pair_verdicts(dict(rows=sweep, recommended={"a-to-b": {"steps": 4}}))
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


def test_a_sweep_is_read_where_its_own_rule_picks_and_live_only_where_that_row_was_streamed():
    from evaluation.report import recommend

    # rows without a prior (a sweep before priors existed): the rule's pick, prior-less, reads its row
    rows = (_rows("a-to-b", 0.5, 0.3, 0.9, 1.0, sigma=1.0) + _rows("a-to-b", 1.0, 0.9, 0.9, 1.0, sigma=2.0)[1:]
            + _rows("a-to-b", 1.0, 0.95, 0.8, 1.0, sigma=5.0)[1:])
    rows = [dict({k: v for k, v in r.items() if k != "prior"}, pitch_acc=0.95) for r in rows]
    rows.append(dict(rows[-1], kind="as-live", sigma_max=4.0, target_acc=0.1))  # the preset streamed, not the pick
    rec = recommend(rows, "a-to-b", preset_steps=4)
    assert rec["sigma_max"] == 2.0 and "prior" not in rec  # 90 % is within 10 points of 95 %: the lower σmax
    v = bar.pair_verdicts(dict(rows=rows, recommended={"a-to-b": rec}))["a-to-b"]
    assert (v["sigma_max"], v["crops"], v["offline"], v["live"]) == (2.0, 0.9, True, None)
    rows.append(dict(rows[2], kind="as-live", target_acc=0.8))  # now the pick streamed too, 10 points under
    v = bar.pair_verdicts(dict(rows=rows, recommended={"a-to-b": rec}))["a-to-b"]
    assert v["live"] is False and v["live_gap"] == pytest.approx(0.1)


def test_a_pair_that_moves_its_input_is_printed_beside_its_control_and_counted_where_the_move_alone_passes():
    moved = [dict(r, transpose=-12) if r["kind"] == "transfer" else r
             for r in _rows("a-to-b", 1.0, 0.95, 0.9, 1.0) + _rows("a-to-c", 1.0, 0.9, 0.9, 1.0)]
    controls = [dict(pair="a-to-b", kind="transposed", transpose=-12, target_acc=0.9, target_acc_clip=0.875),
                dict(pair="a-to-b", kind="transposed", transpose=12, target_acc=0.0, target_acc_clip=0.0),
                dict(pair="a-to-c", kind="transposed", transpose=-12, target_acc=0.2, target_acc_clip=0.25)]
    plain = _rows("b-to-c", 1.0, 0.9, 0.9, 1.0)
    v = bar.pair_verdicts(dict(rows=moved + controls + plain))
    assert (v["a-to-b"]["register_clips"], v["a-to-c"]["register_clips"], v["b-to-c"]["register_clips"]) == (
        0.875, 0.25, None)  # each read at its own transposition, not the first control of the pair
    text = bar.table(v)
    assert "| a-to-b | 2 matched -12 st |" in text and text.count("| 87.5% |") == 1 and "| — |" in text
    assert "2 move their input (transpose or fold); for 1 of them the move alone" in text
    with pytest.raises(ValueError, match="no control row"):  # a moved transfer without its control: no verdict
        bar.pair_verdicts(dict(rows=moved + controls[1:]))
    assert "move their input" not in bar.table(bar.pair_verdicts(dict(rows=plain)))


def test_pooled_files_add_clips_weight_rates_and_leave_out_a_file_that_measured_a_pair_otherwise(tmp_path, capsys):
    def counted(rows, clips, frames):
        return [dict(r, clips=clips, voiced_frames=frames, voiced_overlap=0.5) for r in rows]

    a = counted(_rows("a-to-b", 0.5, 0.4, 0.8, 1.0, live_crops=0.4), 8, 100)   # 4/8 clips
    b = counted(_rows("a-to-b", 1.0, 1.0, 1.0, 1.0, live_crops=0.95), 24, 300)  # 24/24
    old = counted(_rows("a-to-b", 0.0, 0.0, 0.0, 1.0, sigma=5.0), 8, 100)     # another σmax: not this preset's
    pooled = bar.pool([dict(rows=old), dict(rows=a), dict(rows=b)])
    v = bar.pair_verdicts(pooled)["a-to-b"]
    assert (v["n_clips"], v["files"]) == (32, 2)
    assert v["clips"] == pytest.approx((4 + 24) / 32) and v["crops"] == pytest.approx((0.4 * 8 + 1.0 * 24) / 32)
    assert v["live_crops"] == pytest.approx((0.4 * 8 + 0.95 * 24) / 32)
    t = next(r for r in pooled["rows"] if r["kind"] == "transfer")
    assert t["chroma_acc"] == pytest.approx((0.8 * 100 + 1.0 * 300) / 400)  # weighted by frames voiced in both
    assert (t["voiced_frames"], t["voiced_overlap"], t["fd"]) == (400, pytest.approx(0.5), None)
    assert v["offline"] and v["live"]  # 87.5 % of 32 clips; as live 3.75 points under
    assert not bar.pair_verdicts(dict(rows=a))["a-to-b"]["offline"]  # the 8 clips alone miss it
    # the setting is the last file's: with the σ5 file last, only it counts
    assert bar.pair_verdicts(bar.pool([dict(rows=a), dict(rows=old)]))["a-to-b"]["n_clips"] == 8
    with pytest.raises(ValueError, match="a sweep"):
        bar.pool([dict(rows=a + old[1:])])
    with pytest.raises(ValueError, match="different lengths"):
        bar.pool([dict(rows=a, config=dict(seconds=8.0)), dict(rows=b, config=dict(seconds=4.0))])
    files = []
    for i, rows in enumerate((a, b)):
        files.append(tmp_path / f"{i}.json")
        files[-1].write_text(json.dumps(dict(rows=rows)))
    assert bar.main(["--pool", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert "2 files pooled" in out and "| 32 (2) |" in out and "1 of 1 pairs meet the bar offline" in out
