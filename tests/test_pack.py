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


def _tiny_device(tmp_path: Path) -> Path:
    """The device's working folder as a pack leaves it: the whole tiny corpus, no packages, a tiny codec to start from."""
    import torch

    from core.codec import Codec

    root = _corpus(tmp_path / "c")
    work = tmp_path / "device"
    pack.write_part(root, work / ".gpu" / "corpus", pack.choose_files(root, [10 ** 9])[0])
    (work / ".gpu" / "site").mkdir()
    torch.manual_seed(0)
    Codec.compact(n_filters=2, dimension=8).save(work / ".gpu" / "init" / "codec.pt")
    return work


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


def test_instrument_weights_give_minutes_in_proportion(tmp_path):
    """flute=2: two flute files to each violin one while both last, within the budget."""
    root = _corpus(tmp_path / "c")
    size = (root / "violin/train/0_a.flac").stat().st_size
    (part,) = pack.choose_files(root, [int(9.5 * size)], {"flute": 2.0})
    assert [sum(r["instrument"] == i for r in part) for i in ("violin", "flute")] == [3, 6]
    (part,) = pack.choose_files(root, [10 ** 9], {"flute": 2.0})  # room for all: the weights change no file
    assert len(part) == 18
    with pytest.raises(CorpusError, match="clarient"):
        pack.choose_files(root, [10 ** 9], {"clarient": 3.0})


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


def test_a_pack_resumes_only_denoisers_of_its_codecs_latent_space(tmp_path):
    import torch

    from core.codec import Codec
    from core.denoiser import MODEL_FORMAT
    from core.io import save_atomic

    root = _corpus(tmp_path / "c")
    codec = Codec.compact(n_filters=2, dimension=8)
    codec.save(tmp_path / "bare.pt")
    codec.set_latent_stats(torch.full((8,), 0.5), torch.full((8,), 2.0))
    codec.train_info["latent_stats"] = dict(hash=codec.stats_id())
    codec.save(tmp_path / "codec.pt")
    (tmp_path / "none").mkdir()
    with pytest.raises(CorpusError, match="no denoiser files"):
        pack.pack(root, tmp_path / "codec.pt", tmp_path / "pack", denoisers=tmp_path / "none")
    (tmp_path / "den").mkdir()
    for name, space in (("violin", codec.stats_id()), ("flute", "0123456789abcdef")):
        save_atomic(dict(format=MODEL_FORMAT, instrument=name, train_info=dict(codec_stats=dict(hash=space))),
                    tmp_path / "den" / f"{name}.pt")
    with pytest.raises(CorpusError, match="flute.pt: trained in latent space 0123456789abcdef"):
        pack.pack(root, tmp_path / "codec.pt", tmp_path / "pack", denoisers=tmp_path / "den")
    (tmp_path / "den" / "flute.pt").unlink()
    assert pack.resumable_denoisers(tmp_path / "den", tmp_path / "codec.pt") == [tmp_path / "den" / "violin.pt"]
    with pytest.raises(CorpusError, match="no latent statistics"):
        pack.resumable_denoisers(tmp_path / "den", tmp_path / "bare.pt")
    assert not (tmp_path / "pack").exists()


def test_a_pack_never_deletes_a_folder_it_did_not_write(tmp_path):
    root = _corpus(tmp_path / "c")
    (tmp_path / "codec.pt").write_bytes(b"x")
    with pytest.raises(CorpusError, match="not a pack"):
        pack.pack(root, tmp_path / "codec.pt", root)
    assert (root / "manifest.jsonl").is_file()


def test_the_device_script_trains_from_a_pack_and_returns_a_resumable_run(tmp_path):
    # train/device_codec.sh as a lent GPU runs it (here on the CPU): parts merged, the run trained from the
    # pack's codec, exported to fp16 files and its checkpoint split under the 16 MiB a returned file may have
    import os
    import subprocess
    import sys

    import torch

    from core.codec import Codec

    repo = Path(__file__).resolve().parents[1]
    root = _corpus(tmp_path / "c")
    records = pack.choose_files(root, [10 ** 9])[0]
    work = tmp_path / "device"
    pack.write_part(root, work / ".gpu" / "corpus", records[: len(records) // 2])
    pack.write_part(root, work / ".gpu-1" / "corpus", records[len(records) // 2:])
    (work / ".gpu" / "site").mkdir()
    torch.manual_seed(0)
    Codec.compact().save(work / ".gpu" / "init" / "codec.pt")
    env = dict(os.environ, PYTHON=sys.executable, DEVICE="cpu", BATCH="2", OUT=str(tmp_path / "out"),
               PYTHONPATH=str(repo), OMP_NUM_THREADS="1", INSTRUMENT_WEIGHTS="violin=3",
               CODEC_ARGS="--fm-weight 2.5 --stft-weight 0.5")
    res = subprocess.run(["bash", str(repo / "train" / "device_codec.sh"), "0.05"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    out = tmp_path / "out"
    parts = sorted((out / "run").glob("last.pt.part-*"))
    assert len(parts) >= 2 and all(p.stat().st_size <= 15 * 2 ** 20 for p in parts)
    (tmp_path / "last.pt").write_bytes(b"".join(p.read_bytes() for p in parts))
    ck = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ck["state"]["step"] > 0 and ck["train_info"]["device"] == "cpu"
    assert ck["train_info"]["hours_audio"] == round(len(records) / 3600, 3)  # both parts' files, merged
    assert ck["train_info"]["session_runs"][-1]["crops"] == "shares flute 25%, violin 75%"
    weights = ck["train_info"]["session_runs"][-1]["weights"]
    assert weights == dict(mel=1.0, stft=0.5, lin=0.0, peak=0.0, band=0.0, polarity=0.0, adv=0.3, fm=2.5)  # CODEC_ARGS
    assert (out / "codec.pt").is_file() and (out / "codec.disc.pt").is_file()
    assert Codec.load(out / "codec.pt").train_info["steps"] == ck["state"]["step"]


def test_the_variants_script_trains_each_variant_from_the_packs_codec(tmp_path):
    # train/device_codec_variants.sh as a lent GPU runs it (here on the CPU, tiny): two codec runs side by side from
    # the pack's codec, each with its own options, exported as NAME.pt + NAME.disc.pt + NAME.last.pt, one log
    import os
    import subprocess
    import sys

    import torch

    from core.codec import Codec

    repo = Path(__file__).resolve().parents[1]
    work = _tiny_device(tmp_path)
    init = Codec.load(work / ".gpu" / "init" / "codec.pt")
    env = dict(os.environ, PYTHON=sys.executable, DEVICE="cpu", BATCH="2", OUT=str(tmp_path / "out"),
               PYTHONPATH=str(repo), OMP_NUM_THREADS="1",
               COMMON_ARGS="--instrument-weights violin=3 --n-filters 2 --dimension 8")
    script = str(repo / "train" / "device_codec_variants.sh")
    res = subprocess.run(["bash", script, "0.05", "enc=--freeze-decoder --stft-weight 0.5", "plain="], cwd=work,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}{ext}" for n in ("enc", "plain") for ext in (".pt", ".disc.pt", ".last.pt")) + ["variants.log"]
    log = (out / "variants.log").read_text()
    assert log.index("== enc: --freeze-decoder") < log.index("== plain:")
    runs = {n: Codec.load(out / f"{n}.pt").train_info["session_runs"][-1] for n in ("enc", "plain")}
    assert runs["enc"]["freeze_decoder"] and not runs["plain"]["freeze_decoder"]
    assert runs["enc"]["weights"]["stft"] == 0.5 and runs["plain"]["weights"]["stft"] == 0.0
    assert runs["enc"]["crops"] == runs["plain"]["crops"] == "shares flute 25%, violin 75%"  # COMMON_ARGS
    enc = Codec.load(out / "enc.pt")
    assert all(torch.equal(enc.state_dict()[k].float(), v.half().float())  # fp16 files; the init's weights as fp16
               for k, v in init.state_dict().items() if k.startswith("decoder."))
    assert any(not torch.equal(enc.state_dict()[k].float(), v.half().float())
               for k, v in init.state_dict().items() if k.startswith("encoder."))
    assert torch.load(out / "plain.last.pt", weights_only=False)["state"]["step"] > 0
    bad = subprocess.run(["bash", script, "0.05", "a=", "b=", "c=", "d="], cwd=work, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "1 to 3 variants" in bad.stderr
    for specs, why in ((["a=", "a=--lr 1e-4"], "given twice"), (["a=", "b c"], "is not NAME=ARGS")):
        bad = subprocess.run(["bash", script, "0.05", *specs], cwd=work, env=dict(env, OUT=str(tmp_path / "bad")),
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and why in bad.stderr and not (tmp_path / "bad").exists()  # before any trainer


def test_the_denoiser_device_script_trains_every_instrument_in_the_packs_latent_space(tmp_path):
    # train/device_denoisers.sh as a lent GPU runs it (here on the CPU, tiny batches): latents of the pack's corpus
    # with the pack's codec, one trainer per instrument side by side, fp16 files that export with that codec
    import os
    import shutil
    import subprocess
    import sys

    import torch

    from core.codec import Codec
    from export.onnx import export_denoiser

    repo = Path(__file__).resolve().parents[1]
    work = _tiny_device(tmp_path)
    env = dict(os.environ, PYTHON=sys.executable, DEVICE="cpu", BATCH="4", SHIFTS="-1,0,1", OUT=str(tmp_path / "out"),
               WORK=str(tmp_path / "w"), PYTHONPATH=str(repo), OMP_NUM_THREADS="1", DEADLINE_S="100000")
    script = str(repo / "train" / "device_denoisers.sh")
    res = subprocess.run(["bash", script, "0.03"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "training for 0.03 minutes" in res.stdout  # the deadline far off: MINUTES as given
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8  # what a device call returns at most
    log = (out / "denoisers.log").read_text()
    assert log.index("== flute") < log.index("== violin") and log.count("stopped at step") == 2
    codec = Codec.load(out / "codec.pt")
    stats = codec.train_info["latent_stats"]
    assert stats["instruments"] == ["flute", "violin"]
    assert "latent_stats" not in Codec.load(work / ".gpu" / "init" / "codec.pt").train_info  # the pack's copy as it was
    for name in ("flute", "violin"):
        blob = torch.load(out / "denoisers" / f"{name}.pt", weights_only=False)
        assert blob["instrument"] == name and blob["train_info"]["steps"] > 0
        assert blob["train_info"]["codec_stats"]["hash"] == stats["hash"] == codec.stats_id()
        assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
        export_denoiser(out / "denoisers" / f"{name}.pt", tmp_path, codec.latent_dim, None, codec.stats_id())
    # a pack made with --denoisers: each trainer goes on from its file (the codec with the statistics they share)
    shutil.copy2(out / "codec.pt", work / ".gpu" / "init" / "codec.pt")
    shutil.copytree(out / "denoisers", work / ".gpu" / "init" / "denoisers")
    again = subprocess.run(["bash", script, "0.03"], cwd=work, env=dict(env, OUT=str(tmp_path / "again")),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    log = (tmp_path / "again" / "denoisers.log").read_text()
    assert log.count("initialized from .gpu/init/denoisers/") == 2
    for name in ("flute", "violin"):
        before = torch.load(out / "denoisers" / f"{name}.pt", weights_only=False)["train_info"]["steps"]
        after = torch.load(tmp_path / "again" / "denoisers" / f"{name}.pt", weights_only=False)["train_info"]["steps"]
        assert after > before
    # train/device_all.sh: the codec trained on (its encoder too: a new latent space), then in one call the pack's
    # denoisers warm-started in that space; six denoisers, the codec, its discriminator and the log fit 8 files
    import io
    import tarfile

    res = subprocess.run(["bash", str(repo / "train" / "device_all.sh"), "0.05", "0.03"], cwd=work,
                         env=dict(env, OUT=str(tmp_path / "all"), STAGE=str(tmp_path / "stage"),
                                  CODEC_ARGS="--n-filters 2 --dimension 8", CODEC_BATCH="2", DENOISER_BATCH="4"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    back = sorted(p.name for p in (tmp_path / "all").rglob("*") if p.is_file())
    assert back == ["codec.disc.pt", "codec.pt", "denoisers.log", "denoisers.tar.part-00"], back
    new = Codec.load(tmp_path / "all" / "codec.pt")
    assert new.train_info["steps"] > 0 and new.stats_id() != codec.stats_id()
    assert (tmp_path / "all" / "denoisers.log").read_text().count("warm start from .gpu/init/denoisers/") == 2
    parts = sorted((tmp_path / "all").glob("denoisers.tar.part-*"))
    tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))).extractall(tmp_path / "untar")
    for name in ("flute", "violin"):
        blob = torch.load(tmp_path / "untar" / "denoisers" / f"{name}.pt", weights_only=False)
        assert blob["train_info"]["codec_stats"]["hash"] == new.stats_id()
        export_denoiser(tmp_path / "untar" / "denoisers" / f"{name}.pt", tmp_path, new.latent_dim, None,
                        new.stats_id())
    # a deadline that leaves 2 s past its margin, which the latents (a Python start at least) use up: one clear
    # error, no trainer started (were the time they took not counted, 0.03 minutes would still fit)
    late = subprocess.run(["bash", script, "0.03"], cwd=work, env=dict(env, DEADLINE_S="92", OUT=str(tmp_path / "late")),
                          capture_output=True, text=True, timeout=600)
    assert late.returncode != 0 and "no time left to train before DEADLINE_S=92" in late.stderr, late.stderr[-2000:]
    assert (tmp_path / "late" / "denoisers.log").read_text() == ""


def test_several_splits_are_read_as_one_set_split_by_split_in_path_order(tmp_path):
    from core.manifest import split_names
    from evaluation.ceiling import clip_files, load_clips

    root = _corpus(tmp_path / "c")
    short = np.sin(np.arange(7_200) / 5.0).astype(np.float32)  # shorter than a clip: loaded whole
    write_audio_atomic(root / "violin/test/x.flac", short, 24_000, subtype="PCM_16")
    both = corpus_files(root, "test,train")["violin"]
    assert [f.parent.name for f in both] == ["test"] + ["train"] * 6  # the splits in the order named
    assert both[1:] == sorted(both[1:]) == corpus_files(root, "train")["violin"]
    assert [f.parent.name for f in corpus_files(root, "train, test")["violin"]] == ["train"] * 6 + ["test"]
    assert "flute" not in corpus_files(root, "test")
    listed = [f.name for f in corpus_files(root, "test,train")["flute"]]  # the manifest's order: font a, then b
    assert listed == [f"{i}_{font}.flac" for font in "ab" for i in range(6)] != sorted(listed)
    assert [f.name for f in corpus_files(root, "test,train", sort=True)["flute"]] == sorted(listed)
    assert [f.parent.name for f in clip_files(root, "test,train", ["violin"], 2)["violin"]] == ["test", "train"]
    clips = load_clips(root, "test,train", ["violin"], 24_000, 2, 0.5)["violin"]
    assert len(clips[0]) == len(short) and np.abs(clips[0] - short).max() < 1e-4  # the first split named first
    assert len(clips[1]) == 12_000
    with pytest.raises(CorpusError, match="no split"):
        split_names(" , ")
    with pytest.raises(CorpusError, match="twice"):
        split_names("train,test,train")
