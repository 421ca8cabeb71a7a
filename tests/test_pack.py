"""The GPU pack: balanced corpus parts within their size, merged back into one corpus the trainers read."""
import json
from pathlib import Path

import numpy as np
import pytest

from core.audio import write_audio_atomic
from core.manifest import CorpusError, corpus_files, read_manifest
from train import pack


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for inst, fonts, n in (("violin", ["a"], 6), ("flute", ["a", "b"], 6)):
        for font in fonts:
            for i in range(n):
                path = f"{inst}/train/{i}_{font}.flac"
                write_audio_atomic(root / path, 0.1 * rng.standard_normal(24_000).astype(np.float32), 24_000,
                                   subtype="PCM_16")
                records.append(dict(path=path, instrument=inst, split="train", font=font, seconds=1.0))
    records.append(dict(path="violin/test/x.flac", instrument="violin", split="test", font="a", seconds=1.0))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_parts_stay_within_budget_balance_instruments_and_never_repeat_a_file(tmp_path):
    root = _corpus(tmp_path / "c")
    size = (root / "violin/train/0_a.flac").stat().st_size
    parts = pack.choose_files(root, [int(6.5 * size), int(4.5 * size)])
    assert [len(p) for p in parts] == [6, 4]
    for p in parts:
        per = [sum(r["instrument"] == i for r in p) for i in ("violin", "flute")]
        assert per[0] == per[1]  # instruments balanced by minutes, not by fonts
        assert {r["font"] for r in p if r["instrument"] == "flute"} == {"a", "b"}
        assert all(r["split"] == "train" for r in p)
    paths = [r["path"] for p in parts for r in p]
    assert len(paths) == len(set(paths))


def test_merged_parts_are_one_corpus_the_trainers_read(tmp_path):
    root = _corpus(tmp_path / "c")
    parts = pack.choose_files(root, [10 ** 9])
    half = len(parts[0]) // 2
    for k, records in enumerate((parts[0][:half], parts[0][half:])):
        pack.write_part(root, tmp_path / f"p{k}", records)
    n = pack.merge(tmp_path / "merged", [tmp_path / "p0", tmp_path / "p1"])
    files = corpus_files(tmp_path / "merged", "train")
    assert n == 18 and sum(len(v) for v in files.values()) == 18 and all(f.is_file() for v in files.values() for f in v)
    assert len(read_manifest(tmp_path / "merged")) == 18


def test_a_pack_never_deletes_a_folder_it_did_not_write(tmp_path):
    root = _corpus(tmp_path / "c")
    (tmp_path / "codec.pt").write_bytes(b"x")
    with pytest.raises(CorpusError, match="not a pack"):
        pack.pack(root, tmp_path / "codec.pt", root)
    assert (root / "manifest.jsonl").is_file()
