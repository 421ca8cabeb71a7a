"""Corpus building, the training commands end to end on a tiny corpus, exact resume, and their bad inputs."""
import argparse
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.instruments import INSTRUMENTS, get_instrument  # noqa: E402
from train import corpus  # noqa: E402

def _have_fonts(*names) -> bool:
    return shutil.which("fluidsynth") is not None and all(
        any(Path(p).is_file() for p in corpus.SOUNDFONTS[n].paths) for n in names)


needs_fluidsynth = pytest.mark.skipif(not _have_fonts("fluidr3"), reason="fluidsynth + fluid-soundfont-gm not installed")
needs_all_fonts = pytest.mark.skipif(not _have_fonts(*corpus.SOUNDFONTS), reason="the Debian soundfonts are not installed")


def test_splits_are_disjoint_by_chorale_and_deterministic():
    ids = [corpus.chorale_id(p) for p in corpus.chorale_paths()]
    assert len(ids) >= 400
    a, b = corpus.split_chorales(ids, 0), corpus.split_chorales(ids, 0)
    assert a == b
    counts = {s: sum(v == s for v in a.values()) for s in corpus.SPLITS}
    assert counts["train"] > 300 and counts["valid"] > 30 and counts["test"] > 30
    fonts = {"violin": ["fluidr3", "csound"], "flute": ["fluidr3"], "cello": ["fluidr3"]}
    jobs = corpus.plan_render(Path("/tmp/x"), ["violin", "flute", "cello"], (20, 5, 5), 2, 0, fonts, "timgm6mb")
    by_chorale = {}
    for j in jobs:
        split = "test" if j["split"] == corpus.HELDOUT else j["split"]
        by_chorale.setdefault(j["chorale"], set()).add(split)
        assert a[j["chorale"]] == split
        # the held-out font renders only the held-out split, and nothing else is rendered with it
        assert (j["font"] == "timgm6mb") == (j["split"] == corpus.HELDOUT)
    assert all(len(s) == 1 for s in by_chorale.values())
    n = {(i, s): sum(j["instrument"] == i and j["split"] == s for j in jobs) for i in fonts for s in ("train", "heldout")}
    assert n["violin", "train"] == 2 * 20 * 2 and n["flute", "train"] == 20 * 2 and n["flute", "heldout"] == 5 * 2
    assert len({j["out"] for j in jobs}) == len(jobs)  # one file per render


@needs_all_fonts
def test_a_training_font_that_shares_the_held_out_fonts_samples_is_measured_as_such():
    # sf_GMbank (csound) reuses TimGM6mb's cello samples but not its flute: the probe must see both facts,
    # or the held-out split would secretly be a training font
    def shared_fonts(name):  # each font's probe phrase against the held-out font's, as training_fonts measures it
        inst = get_instrument(name)
        ref = corpus.probe_phrase(inst, corpus.find_soundfont("timgm6mb"))
        return {f: corpus.spectral_similarity(corpus.probe_phrase(inst, corpus.find_soundfont(f)), ref)
                for f in ("fluidr3", "csound")}

    cello, flute = shared_fonts("cello"), shared_fonts("flute")
    assert cello["csound"] >= corpus.SHARED_SAMPLES_CORR > cello["fluidr3"]
    assert flute["csound"] < corpus.SHARED_SAMPLES_CORR and flute["fluidr3"] < corpus.SHARED_SAMPLES_CORR


@needs_all_fonts
def test_training_fonts_drop_the_held_out_fonts_twins_and_repeats_of_an_earlier_font():
    # measured facts of Debian's fonts: csound reuses TimGM6mb's cello (held out), MuseScore General reuses
    # FluidR3's trumpet but has a cello of its own
    fonts = list(corpus.TRAIN_FONTS)
    assert corpus.training_fonts(get_instrument("cello"), fonts, "timgm6mb") == ["fluidr3", "musescore"]
    assert corpus.training_fonts(get_instrument("trumpet"), fonts, "timgm6mb") == ["fluidr3", "csound"]


@needs_all_fonts
def test_a_font_added_later_leaves_every_earlier_render_and_its_seed_as_it_was():
    before = corpus.plan_render(Path("/tmp/x"), ["violin", "flute"], (6, 2, 2), 1, 0,
                                {"violin": ["fluidr3"], "flute": ["fluidr3", "csound"]}, "timgm6mb", judge=3)
    after = corpus.plan_render(Path("/tmp/x"), ["violin", "flute"], (6, 2, 2), 1, 0,
                               {"violin": ["fluidr3", "musescore"], "flute": ["fluidr3", "csound", "musescore"]},
                               "timgm6mb", judge=3)
    old = {j["out"]: j["seed"] for j in before}
    new = {j["out"]: j["seed"] for j in after}
    assert all(new[k] == v for k, v in old.items())
    assert len(new) - len(old) == 2 * (6 + 2 + 2)  # one more render of each train, valid and test melody
    assert {j["font"] for j in after if j["out"] not in old} == {"musescore"}


def test_audio_pool_gives_each_group_the_same_share_of_crops(tmp_path):
    from core.audio import write_audio_atomic
    from train.common import AudioPool

    files = []
    for i in range(4):  # one file of "a", three as long of "b"
        files.append(tmp_path / f"{i}.flac")
        write_audio_atomic(files[-1], np.full(24_000, 0.1 if i == 0 else -0.1, np.float32), 24_000, subtype="PCM_16")
    share = {}
    for groups in (None, ["a", "b", "b", "b"]):
        pool = AudioPool(files, 24_000, 1000, groups)
        x = pool.crops(2000, 1000, torch.Generator().manual_seed(0))
        share[groups is None] = float((x[:, 0, 0] > 0).float().mean())
    assert abs(share[True] - 0.25) < 0.04 and abs(share[False] - 0.5) < 0.04, share
    assert AudioPool(files, 24_000, 1000, ["a", "b", "b", "b"]).group_seconds == pytest.approx({"a": 1.0, "b": 3.0})
    weighted = AudioPool(files, 24_000, 1000, ["a", "b", "b", "b"], group_weights={"a": 3.0})  # "a" 3 : "b" 1
    x = weighted.crops(2000, 1000, torch.Generator().manual_seed(0))
    assert abs(float((x[:, 0, 0] > 0).float().mean()) - 0.75) < 0.04 and weighted.group_shares == {"a": 0.75, "b": 0.25}
    for bad in ({"c": 2.0}, {"a": 0.0}):
        with pytest.raises(ValueError, match="group weights"):
            AudioPool(files, 24_000, 1000, ["a", "b", "b", "b"], group_weights=bad)
    with pytest.raises(ValueError):
        AudioPool(files, 24_000, 1000, ["a"])


def test_crop_feeder_workers_make_the_same_batches_and_resume_on_the_next_one(tmp_path):
    from core.audio import write_audio_atomic
    from train.common import AudioPool, CropFeeder

    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.flac")
        write_audio_atomic(files[-1], 0.3 * rng.standard_normal(30_000).astype(np.float32), 24_000, subtype="PCM_16")
    pool = AudioPool(files, 24_000, 4000)

    def batches(workers, n, state=None):
        gen = torch.Generator().manual_seed(7)
        if state is not None:
            gen.set_state(state)
        with CropFeeder(pool, 3, 4000, gen, augment=0.5, workers=workers) as feeder:
            out = [feeder.next() for _ in range(n)]
            return out, feeder.generator_state()

    inline, _ = batches(0, 6)
    ahead, state = batches(2, 3)  # 4 batches made ahead, 3 handed out
    assert all(torch.equal(a, b) for a, b in zip(inline, ahead))
    assert not torch.equal(inline[0], inline[1])  # augmented crops differ from batch to batch
    resumed, _ = batches(2, 3, state)  # a checkpoint taken now resumes on batch 4, not on batch 8
    assert all(torch.equal(a, b) for a, b in zip(inline[3:], resumed))


def test_every_voice_fits_every_instrument_range():
    paths = corpus.chorale_paths()[:6]
    for p in paths:
        for voice in corpus.chorale_voices(p):
            for inst in INSTRUMENTS.values():
                notes = corpus.fit_to_range(voice, inst)
                assert all(inst.low <= n.pitch <= inst.high for n in notes)
                # octave moves only: intervals between notes are kept modulo the octave
                d0 = [(b.pitch - a.pitch) % 12 for a, b in zip(voice, voice[1:])]
                assert d0 == [(b.pitch - a.pitch) % 12 for a, b in zip(notes, notes[1:])]


def test_spread_register_draws_every_octave_that_fits():
    """register "spread": each draw is an octave of the melody that leaves as few notes out as the centred one;
    over draws it reaches both ends of a wide range, where "centre" always takes the same octave."""
    inst = get_instrument("tenor_sax")  # 44-75: a chorale voice fits at two octaves
    voice = [corpus.Note(p, float(i), 1.0) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62, 60])]
    centred = corpus.fit_to_range(voice, inst)
    assert [n.pitch for n in centred] == [p.pitch for p in voice]  # median 64 is the one nearest the centre 59.5
    rng = np.random.default_rng(0)
    drawn = {corpus.fit_to_range(voice, inst, rng)[0].pitch for _ in range(40)}
    assert drawn == {48, 60}  # 72 would put 64-67 over the top (75); 36 under the bottom (44)
    with pytest.raises(corpus.CorpusError, match="register"):
        corpus.plan_render(Path("/tmp/x"), ["violin"], (1, 0, 0), 1, 0, {"violin": ["fluidr3"]}, None,
                           register="middle")


def test_a_corpus_holds_one_register(tmp_path):
    """The same seed picks the same melodies: spread ones rendered beside centred ones would be the same tunes
    twice in every split (and first in the evaluation's sorted clips), so a corpus refuses the other register."""
    corpus.write_manifest(tmp_path, [dict(path="violin/heldout/a_v0_timgm6mb.flac", instrument="violin",
                                          split="heldout", source="fluidsynth")])  # written before registers
    with pytest.raises(corpus.CorpusError, match="centre register.*spread register into a corpus of its own"):
        corpus.render_corpus(tmp_path, ["violin"], per_split=(1, 0, 1), workers=1, register="spread")


@needs_fluidsynth
@pytest.mark.parametrize("name", ["cello", "flute"])
def test_rendered_notes_sit_in_the_instrument_range(name, tmp_path):
    pesto = pytest.importorskip("pesto")
    inst = get_instrument(name)
    path = corpus.chorale_paths()[3]
    notes = corpus.fit_to_range(corpus.chorale_voices(path)[1][:10], inst)
    rng = np.random.default_rng(0)
    audio = corpus.render_midi(corpus.performance_midi(notes, inst, rng, 90.0), corpus.find_soundfont("fluidr3"))
    _, pitch, conf, _ = pesto.predict(torch.from_numpy(audio), corpus.SAMPLE_RATE, convert_to_freq=False)
    voiced = pitch.numpy()[conf.numpy() > 0.8]
    assert len(voiced) > 50
    lo, hi = np.percentile(voiced, [5, 95])
    assert inst.low - 1.5 <= lo and hi <= inst.high + 1.5, (lo, hi, inst)
    # and the tracked melody follows the written one (median within a semitone)
    assert abs(np.median(voiced) - np.median([n.pitch for n in notes])) < 2.5


def test_unknown_instrument_and_bad_folders_give_one_clear_message(tmp_path, capsys):
    assert corpus.main(["render", "--out", str(tmp_path / "c"), "--instruments", "kazoo"]) == 2
    assert "unknown instrument 'kazoo'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert corpus.main(["import", "--out", str(tmp_path / "c"), "--instrument", "sax", str(tmp_path / "empty")]) == 2
    assert "no audio files" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"RIFF....WAVEgarbage")
    (bad / "b.flac").write_bytes(b"")
    assert corpus.main(["import", "--out", str(tmp_path / "c"), "--instrument", "sax", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 audio files could be read" in err and "a.wav" in err
    assert not (tmp_path / "c" / "sax").exists() or not any((tmp_path / "c" / "sax").rglob("*.flac"))


def test_new_instrument_without_a_usable_codec_gives_one_clear_message(tmp_path, capsys):
    from core.codec import Codec
    from train import instrument

    rec = tmp_path / "rec"
    rec.mkdir()
    args = ["my_sax", str(rec), "--corpus", str(tmp_path / "c"), "--latents", str(tmp_path / "l"),
            "--models", str(tmp_path / "m"), "--presets", str(tmp_path / "p")]
    assert instrument.main([*args, "--codec", str(tmp_path / "none.pt")]) == 2
    assert "no codec file" in capsys.readouterr().err
    Codec.compact().save(tmp_path / "fresh.pt")  # no latent statistics fitted yet
    assert instrument.main([*args, "--codec", str(tmp_path / "fresh.pt")]) == 2
    assert "has no latent statistics" in capsys.readouterr().err
    assert not any(tmp_path.glob("[clmp]/**/*"))  # nothing imported, trained or written


def test_import_a_folder_of_recordings(tmp_path):
    import soundfile as sf

    src = tmp_path / "rec"
    src.mkdir()
    for i in range(5):
        t = np.arange(44_100) / 44_100
        sf.write(src / f"take{i}.wav", np.stack([np.sin(2 * np.pi * 300 * t)] * 2, 1) * 0.2, 44_100)
    recs = corpus.import_folder(tmp_path / "c", "my_sax", src)
    assert len(recs) == 5 and {r["split"] for r in recs} == {"train", "valid", "test"}
    x, sr = sf.read(tmp_path / "c" / recs[0]["path"])
    assert sr == 24_000 and x.ndim == 1
    assert len(corpus.read_manifest(tmp_path / "c")) == 5


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed")
    root = tmp_path_factory.mktemp("corpus")
    corpus.render_corpus(root, ["violin", "flute"], per_split=(2, 1, 1), workers=1, fonts=["fluidr3"],
                         heldout=None)
    return root


@needs_fluidsynth
def test_tiny_end_to_end_training_lowers_losses_and_exports(tiny_corpus, tmp_path):
    from core.codec import Codec
    from train import codec as codec_train
    from train import denoiser as den_train
    from train import latents
    from train.common import AudioPool, corpus_files
    from core.spectral import MelLoss

    run = tmp_path / "codec"
    args = codec_train.build_parser().parse_args(
        ["--corpus", str(tiny_corpus), "--run", str(run), "--n-filters", "4", "--dimension", "8", "--batch", "4",
         "--steps", "120", "--segment", "0.27", "--threads", "2"])
    trained = codec_train.train(args)
    fresh = Codec.compact(n_filters=4, dimension=8)
    fresh.load_state_dict(torch.load(run / "last.pt", weights_only=False)["codec"])  # same weights as trained
    pool = AudioPool([f for fs in corpus_files(tiny_corpus, "valid").values() for f in fs], 24_000, 6400)
    x = pool.crops(8, 6400, torch.Generator().manual_seed(0))
    mel = MelLoss()
    torch.manual_seed(0)
    untrained = Codec.compact(n_filters=4, dimension=8)
    with torch.no_grad():
        before = float(mel(untrained(x)[..., :6400], x))
        after = float(mel(trained.eval()(x)[..., :6400], x))
    assert after < 0.8 * before, (before, after)
    codec_train.codec_file_from_run(run / "last.pt", tmp_path / "codec.pt")
    latents.build_cache(tmp_path / "codec.pt", tiny_corpus, tmp_path / "latents", None, [-2.0, 0.0, 2.0])
    c = Codec.load(tmp_path / "codec.pt")
    assert c.train_info["latent_stats"]["frames"] > 100
    z = np.concatenate(latents.load_latents(tmp_path / "latents" / "violin" / "train.npz", c), axis=1)
    assert abs(z.mean()) < 0.5 and 0.5 < z.std() < 1.5  # normalized with stats fitted on both instruments
    dargs = den_train.build_parser().parse_args(
        ["--instrument", "violin", "--latents", str(tmp_path / "latents"), "--codec", str(tmp_path / "codec.pt"),
         "--run", str(tmp_path / "den"), "--channels", "16,16", "--batch", "16", "--frames", "16", "--steps", "300",
         "--valid-every", "150", "--lr", "2e-3"])
    state = den_train.train(dargs)
    losses = [h["loss"] for h in state.history if "loss" in h]
    assert np.mean(losses[-2:]) < 0.7 * losses[0], losses
    blob = den_train.denoiser_file_from_run(tmp_path / "den", tmp_path / "violin.pt")
    assert blob["instrument"] == "violin" and blob["train_info"]["steps"] == 300
    from export.onnx import export_bundle

    meta = export_bundle([tmp_path / "codec.pt", tmp_path / "violin.pt"], tmp_path / "bundle")
    assert set(meta["instruments"]) == {"violin"} and meta["codec"]["latent_dim"] == 8


def _den_args(tmp_path, latents_dir, codec_path, steps, run="den"):
    from train import denoiser as den_train

    return den_train.build_parser().parse_args(
        ["--instrument", "alpha", "--latents", str(latents_dir), "--codec", str(codec_path), "--run",
         str(tmp_path / run), "--channels", "8,8", "--batch", "4", "--frames", "8,16", "--steps", str(steps),
         "--valid-every", "1000"])


def test_resuming_gives_the_same_next_step_as_an_uninterrupted_run(tmp_path):
    from train import denoiser as den_train

    _toy_latent_setup(tmp_path)
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 12, "straight"))
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 7, "resumed"))
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 12, "resumed"))  # resumes at 7
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert a["state"]["step"] == b["state"]["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
        assert torch.equal(a["ema"][k], b["ema"][k]), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (runs where a GPU is lent)")
def test_the_trainers_run_on_cuda_including_validation(tmp_path):
    """The denoiser trainer's first validation once built σ on the CPU ("Expected all tensors to be on the same
    device"): a few steps with a validation on CUDA."""
    from train import denoiser as den_train

    _toy_latent_setup(tmp_path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "lat" / "alpha" / "valid.npz", **{f"{i:05d}_+0": rng.normal(size=(8, 40)).astype(np.float16)
                                                          for i in range(2)})
    args = _den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 6)
    args.valid_every, args.device = 3, "cuda"
    state = den_train.train(args)
    assert state.step == 6 and any("valid" in h for h in state.history)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (runs where a GPU is lent)")
def test_latents_encoded_on_cuda_match_the_cpus_and_the_codec_file_keeps_its_statistics(tiny_corpus, tmp_path):
    from core.codec import Codec
    from train import latents

    torch.manual_seed(0)
    Codec.compact(n_filters=4, dimension=8).save(tmp_path / "codec.pt")
    (tmp_path / "gpu.pt").write_bytes((tmp_path / "codec.pt").read_bytes())
    latents.build_cache(tmp_path / "codec.pt", tiny_corpus, tmp_path / "cpu", None, [0.0])
    latents.build_cache(tmp_path / "gpu.pt", tiny_corpus, tmp_path / "cuda", None, [0.0], device="cuda")
    a = latents.load_latents(tmp_path / "cpu" / "violin" / "train.npz")
    b = latents.load_latents(tmp_path / "cuda" / "violin" / "train.npz")
    assert len(a) == len(b) and all(np.allclose(x, y, rtol=1e-2, atol=1e-2 * np.abs(x).max()) for x, y in zip(a, b))
    ca, cb = Codec.load(tmp_path / "codec.pt"), Codec.load(tmp_path / "gpu.pt")
    assert torch.allclose(ca.latent_std, cb.latent_std, rtol=1e-2) and cb.train_info["latent_stats"]["frames"] > 0


def test_latent_crops_are_whole_slices_of_one_sequence():
    from train.denoiser import LatentCrops

    # value = 1000·sequence + frame index: a crop that crossed two sequences or skipped a frame would show
    arrays = [np.stack([1000 * i + np.arange(n, dtype=np.float32)] * 3) for i, n in enumerate((20, 9, 50, 16))]
    lc = LatentCrops(arrays, 16)
    assert len(lc.arrays) == 3  # the 9-frame sequence is too short for 16-frame crops
    x = lc.crops(400, 16, torch.Generator().manual_seed(0))
    assert x.shape == (400, 3, 16)
    seq, frame = torch.div(x, 1000, rounding_mode="floor"), x % 1000
    assert (seq == seq[:, :, :1]).all() and (torch.diff(frame, dim=2) == 1).all()
    lengths = {0: 20, 2: 50, 3: 16}
    for b in range(400):
        s = int(seq[b, 0, 0])
        assert frame[b, 0, -1] < lengths[s]
    counts = {s: int((seq[:, 0, 0] == s).sum()) for s in lengths}
    assert counts[2] > counts[0] > counts[3] > 0  # drawn in proportion to length
    y = lc.crops(400, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, y)  # seeded


def test_validation_by_band_follows_the_datas_device_and_dtype():
    from core.denoiser import EDMDenoiser, denoiser_config
    from train.denoiser import validation_by_band

    m = EDMDenoiser(denoiser_config(latent_dim=4, channels=(8, 8), blocks=1, emb_dim=8)).double()
    v = validation_by_band(m, torch.randn(2, 4, 16, dtype=torch.float64))  # σ built as float32 once failed here
    assert len(v) > 0 and all(np.isfinite(list(v.values())))


def test_training_refuses_missing_inputs_clearly(tmp_path):
    from train import denoiser as den_train

    with pytest.raises(Exception, match="no such checkpoint"):
        den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "nope.pt", 5))


def _toy_latent_setup(tmp_path):
    from core.codec import Codec

    codec = Codec.compact(n_filters=2, dimension=8)
    codec.train_info["latent_stats"] = {"frames": 1}
    codec.save(tmp_path / "codec.pt")
    rng = np.random.default_rng(0)
    (tmp_path / "lat" / "alpha").mkdir(parents=True)
    np.savez(tmp_path / "lat" / "alpha" / "train.npz", **{f"{i:05d}_+0": rng.normal(size=(8, 40)).astype(np.float16)
                                                          for i in range(4)})


def test_a_denoiser_from_another_latent_space_is_refused_or_taken_as_a_warm_start(tmp_path, capsys):
    from core.codec import Codec
    from train import denoiser as den_train

    _toy_latent_setup(tmp_path)
    codec = Codec.load(tmp_path / "codec.pt")
    codec.train_info["latent_stats"] = dict(frames=1, hash=codec.stats_id())  # as train.latents records them
    codec.save(tmp_path / "codec.pt")
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 6, "old"))
    den_train.denoiser_file_from_run(tmp_path / "old", tmp_path / "alpha.pt")
    blob = torch.load(tmp_path / "alpha.pt", weights_only=False)
    k = next(k for k, v in blob["state_dict"].items() if k.endswith("weight") and v.dim() > 1)
    blob["state_dict"][k] += 0.5  # weights no fresh start has: where the warm start begins is then plain
    torch.save(blob, tmp_path / "alpha.pt")
    new = Codec.load(tmp_path / "codec.pt")  # a fine-tuned codec: new statistics, a new space
    new.set_latent_stats(torch.full((8,), 0.1), torch.full((8,), 1.5))
    new.train_info["latent_stats"] = dict(frames=1, hash=new.stats_id())
    new.save(tmp_path / "new.pt")
    assert new.stats_id() != codec.stats_id()
    again = _den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 8, "again")  # its own space: goes on
    again.init = tmp_path / "alpha.pt"
    assert den_train.train(again).step == 8 and "initialized from" in capsys.readouterr().out
    args = _den_args(tmp_path, tmp_path / "lat", tmp_path / "new.pt", 9, "refused")
    args.init = tmp_path / "alpha.pt"
    with pytest.raises(SystemExit, match="cannot go on in this one"):
        den_train.train(args)
    args = _den_args(tmp_path, tmp_path / "lat", tmp_path / "new.pt", 2, "warm")
    args.init, args.init_other_space = tmp_path / "alpha.pt", True
    state = den_train.train(args)
    assert "warm start from" in capsys.readouterr().out
    assert state.step == 2  # its own steps: the 6 of the other space are not this run's
    warm = den_train.denoiser_file_from_run(tmp_path / "warm", tmp_path / "warm.pt")
    assert warm["train_info"]["codec_stats"]["hash"] == new.stats_id()  # it belongs to the new space now
    assert torch.allclose(warm["state_dict"][k].float(), blob["state_dict"][k].float(), atol=0.02)
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "new.pt", 2, "cold"))
    cold = den_train.denoiser_file_from_run(tmp_path / "cold", tmp_path / "cold.pt")
    assert (cold["state_dict"][k].float() - blob["state_dict"][k].float()).abs().min() > 0.4


def test_refit_moments_are_the_new_latents_closed_form_with_the_weights_untouched(tmp_path, capsys):
    from core.codec import Codec
    from train import denoiser as den_train

    _toy_latent_setup(tmp_path)
    codec = Codec.load(tmp_path / "codec.pt")
    codec.set_latent_stats(torch.full((8,), 0.5), torch.full((8,), 2.0))
    codec.train_info["latent_stats"] = dict(frames=1, hash=codec.stats_id())
    codec.save(tmp_path / "codec.pt")
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 3, "old"))
    den_train.denoiser_file_from_run(tmp_path / "old", tmp_path / "alpha.pt")
    given = (tmp_path / "alpha.pt").read_bytes()
    # the fine-tuned encoder's latents: shifted by 3 and scaled ×4, with pitch-shifted copies refit must skip
    rng = np.random.default_rng(1)
    raw = [rng.normal(3.0, 4.0, size=(8, 50)) for _ in range(3)]
    (tmp_path / "new" / "alpha").mkdir(parents=True)
    np.savez(tmp_path / "new" / "alpha" / "train.npz", **{f"{i:05d}_+0": a for i, a in enumerate(raw)},
             **{f"{i:05d}_+2": a + 100 for i, a in enumerate(raw)})
    argv = ["--instrument", "alpha", "--codec", str(tmp_path / "codec.pt"), "--latents", str(tmp_path / "new"),
            "--refit-moments", str(tmp_path / "alpha.pt")]
    assert den_train.main(argv + ["--export", str(tmp_path / "refit.pt")]) == 0
    old = torch.load(tmp_path / "alpha.pt", weights_only=False)
    new = torch.load(tmp_path / "refit.pt", weights_only=False)
    z = (np.concatenate(raw, axis=1) - 0.5) / 2.0  # the unshifted latents in the codec's normalization
    m = new["train_info"]["latent_space"]["moments"]
    np.testing.assert_allclose(m["mean"], z.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(m["std"], z.std(axis=1), rtol=1e-5)
    np.testing.assert_allclose(m["cov"], np.cov(z, bias=True), atol=1e-5)
    assert not np.allclose(m["mean"], old["train_info"]["latent_space"]["moments"]["mean"], atol=0.5)
    assert all(torch.equal(old["state_dict"][k], new["state_dict"][k]) for k in old["state_dict"])
    assert new["train_info"]["steps"] == old["train_info"]["steps"] == 3
    assert new["train_info"]["moments_refit"]["frames"] == 150
    from train.card import denoiser_section

    rows = [r for r in denoiser_section([tmp_path / "alpha.pt", tmp_path / "refit.pt"]) if r.startswith("| alpha")]
    assert "| as trained |" in rows[0] and "| moments refit (150 frames) |" in rows[1]  # the card tells them apart
    capsys.readouterr()
    with pytest.raises(SystemExit, match="overwrite its input"):
        den_train.main(argv + ["--export", str(tmp_path / "alpha.pt")])
    with pytest.raises(SystemExit, match="--export OUT"):
        den_train.main(argv)
    with pytest.raises(SystemExit, match="the alpha's denoiser, not the beta's"):
        den_train.main(["--instrument", "beta"] + argv[2:] + ["--export", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="no denoiser file"):
        den_train.main(argv[:-1] + [str(tmp_path / "none.pt"), "--export", str(tmp_path / "x.pt")])
    other = Codec.load(tmp_path / "codec.pt")  # another codec's statistics: the normalization does not hold
    other.set_latent_stats(torch.full((8,), 0.1), torch.full((8,), 1.5))
    other.save(tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="latent space"):
        den_train.main(["--instrument", "alpha", "--codec", str(tmp_path / "other.pt"), "--latents",
                        str(tmp_path / "new"), "--refit-moments", str(tmp_path / "alpha.pt"), "--export",
                        str(tmp_path / "x.pt")])
    assert not (tmp_path / "x.pt").exists()
    assert (tmp_path / "alpha.pt").read_bytes() == given  # the input as it was


def test_a_killed_denoiser_trainer_saves_the_steps_it_made(tmp_path):
    """`kill` (SIGTERM) on a background trainer saves before it leaves, as Ctrl-C does: with saves every 1000 s,
    a killed run once lost every step since its start."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    _toy_latent_setup(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-u", "-m", "train.denoiser", "--instrument", "alpha", "--latents", str(tmp_path / "lat"),
           "--codec", str(tmp_path / "codec.pt"), "--run", str(tmp_path / "den"), "--channels", "8,8", "--batch", "4",
           "--frames", "8,16", "--valid-every", "1000000", "--save-every", "1000", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen = b""
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.time() + 120
        while not re.search(rb"\| *[1-9][0-9]*/[0-9]+", seen) and proc.poll() is None and time.time() < deadline:
            try:  # the progress bar counts steps: wait for the first ones
                seen += os.read(proc.stdout.fileno(), 65536)
            except BlockingIOError:
                time.sleep(0.1)
        assert re.search(rb"\| *[1-9][0-9]*/[0-9]+", seen), seen[-2000:]
        assert not (tmp_path / "den" / "last.pt").exists()  # nothing saved yet
        proc.send_signal(signal.SIGTERM)
        os.set_blocking(proc.stdout.fileno(), True)
        out = (seen + proc.communicate(timeout=60)[0]).decode(errors="replace")
    finally:
        proc.kill()
    assert proc.returncode == 130, out[-2000:]
    ck = torch.load(tmp_path / "den" / "last.pt", weights_only=False)
    assert ck["state"]["step"] > 0


def test_denoiser_training_under_torchrun_with_two_processes(tmp_path):
    """Several workers without code changes: torchrun, two CPU processes (gloo), gradients averaged by DDP."""
    import os
    import subprocess
    import sys

    _toy_latent_setup(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "train.denoiser",
           "--instrument", "alpha", "--latents", str(tmp_path / "lat"), "--codec", str(tmp_path / "codec.pt"),
           "--run-dir", str(tmp_path / "ddp"), "--channels", "8,8", "--batch", "4", "--frames", "8", "--steps", "6",
           "--device", "cpu", "--threads", "1", "--valid-every", "1000"]
    res = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=240,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    ck = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    assert ck["state"]["step"] == 6 and ck["meta"]["world"] == 2


def test_log_stft_loss_sees_a_gain_and_a_smeared_harmonic():
    # closed form: a gain g moves every unclamped bin by log g; a tone spread to noise of the same power (what
    # a smearing codec does) is far from the tone in linear bins
    from core.spectral import LogStftLoss

    loss = LogStftLoss(n_ffts=(512, 2048))
    t = torch.arange(24_000) / 24_000
    tone = (0.3 * torch.sin(2 * torch.pi * 4_400 * t) + 0.05 * torch.randn(24_000)).reshape(1, 1, -1)
    assert float(loss(tone, tone)) == 0.0
    torch.testing.assert_close(loss(2 * tone, tone), torch.tensor(float(np.log(2))), rtol=1e-4, atol=1e-4)
    smeared = torch.randn(1, 1, 24_000) * tone.std()
    assert float(loss(smeared, tone)) > 3 * float(loss(1.5 * tone, tone))


def test_relative_linear_mel_loss_reads_a_gain_and_weighs_loud_bins():
    # closed forms: mel magnitudes (power 1) scale with a gain g, so the relative linear L1 of g·x is |g − 1| and the
    # log term |log g|; a harmonic 30 dB under the fundamental moves the linear term ~30× less than the same change
    # on the fundamental, the log term alike for both (the reason for the linear term)
    from core.spectral import MelLoss

    loss = MelLoss(24_000)
    t = torch.arange(24_000) / 24_000
    tone = lambda a1, a2: (a1 * torch.sin(2 * torch.pi * 300 * t) + a2 * torch.sin(2 * torch.pi * 600 * t)).reshape(1, 1, -1)  # noqa: E731
    x = tone(0.3, 0.3 * 10 ** (-30 / 20))
    log_l1, lin_l1 = loss.log_and_linear(0.5 * x, x)
    torch.testing.assert_close(lin_l1, torch.tensor(0.5), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(log_l1, loss(0.5 * x, x))
    _, on_h2 = loss.log_and_linear(tone(0.3, 0.3 * 10 ** (-30 / 20) * 2), x)
    _, on_h1 = loss.log_and_linear(tone(0.6, 0.3 * 10 ** (-30 / 20)), x)
    assert 20 < float(on_h1 / on_h2) < 45
    # a silent crop beside a sounding one weighs by its sound (per-clip ratios made a rest 10⁴ in training)
    pair, noisy_rest = torch.cat([x, torch.zeros_like(x)]), torch.cat([x, 1e-4 * torch.randn_like(x)])
    assert float(loss.log_and_linear(noisy_rest, pair)[1]) < 0.01  # a per-clip ratio: ~10⁴ in training


def test_codec_adversarial_stage_runs(tiny_corpus, tmp_path):
    from train import codec as codec_train

    args = codec_train.build_parser().parse_args(
        ["--corpus", str(tiny_corpus), "--run", str(tmp_path / "adv"), "--n-filters", "2", "--dimension", "8",
         "--batch", "2", "--steps", "3", "--segment", "0.27", "--adv-start", "1"])
    codec_train.train(args)
    ck = torch.load(tmp_path / "adv" / "last.pt", weights_only=False)
    assert ck["state"]["step"] == 3 and ck["opt_d"]["state"]  # the discriminator took optimizer steps
    # fp16 files to resume from in a later session: the codec and, beside it, its discriminator
    codec_train.codec_file_from_run(tmp_path / "adv" / "last.pt", tmp_path / "wip.pt", with_disc=True)
    assert codec_train.disc_path(tmp_path / "wip.pt").is_file()
    args2 = codec_train.build_parser().parse_args(
        ["--corpus", str(tiny_corpus), "--run", str(tmp_path / "adv2"), "--n-filters", "2", "--dimension", "8",
         "--batch", "2", "--steps", "3", "--segment", "0.27", "--adv-start", "1", "--init", str(tmp_path / "wip.pt")])
    codec_train.train(args2)  # already at step 3: saves at once, with the loaded discriminator
    ck2 = torch.load(tmp_path / "adv2" / "last.pt", weights_only=False)
    assert ck2["state"]["step"] == 3
    for k, v in ck["disc"].items():
        if v.is_floating_point():
            torch.testing.assert_close(ck2["disc"][k], v.half().float(), rtol=0, atol=0)


def test_codec_snapshots_are_the_export_of_their_step(tiny_corpus, tmp_path):
    # an adversarial run's last step is one draw of many: --snapshot-every keeps each Nth step's codec file
    from train import codec as codec_train
    from core.codec import Codec

    run = tmp_path / "snap"
    args = codec_train.build_parser().parse_args(
        ["--corpus", str(tiny_corpus), "--run", str(run), "--n-filters", "2", "--dimension", "8", "--batch", "2",
         "--steps", "4", "--segment", "0.27", "--adv-start", "1", "--snapshot-every", "2"])
    codec_train.train(args)
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["codec-0000002.pt", "codec-0000004.pt"]
    codec_train.codec_file_from_run(run / "last.pt", tmp_path / "end.pt")
    end, at4, at2 = (Codec.load(p) for p in (tmp_path / "end.pt", codec_train.snapshot_path(run, 4),
                                              codec_train.snapshot_path(run, 2)))
    assert (at4.train_info["steps"], at2.train_info["steps"]) == (4, 2)
    s_end, s4, s2 = end.state_dict(), at4.state_dict(), at2.state_dict()
    assert all(torch.equal(s4[k], v) for k, v in s_end.items())  # the last snapshot is the run's export
    assert any(not torch.equal(s2[k], v) for k, v in s_end.items())  # an earlier one is that step's, not a copy


def test_codec_moving_average_is_the_closed_form_and_what_its_export_writes(tiny_corpus, tmp_path):
    # --ema keeps ema ← ema + (1 − d)(w − ema) beside the run, starting at the weights it starts from: two steps
    # from w0 give d²·w0 + d(1 − d)·w1 + (1 − d)·w2; the raw trajectory is the one a run without it takes
    from core.codec import Codec
    from train import codec as codec_train
    from train.card import runs_text

    def run(name, steps, *more):
        codec_train.train(codec_train.build_parser().parse_args(
            ["--corpus", str(tiny_corpus), "--run", str(tmp_path / name), "--n-filters", "2", "--dimension", "8",
             "--batch", "2", "--steps", str(steps), "--segment", "0.27", "--adv-start", "1", "--threads", "1",
             *more]))
        return torch.load(tmp_path / name / "last.pt", weights_only=False)

    run("start", 1)
    codec_train.codec_file_from_run(tmp_path / "start" / "last.pt", tmp_path / "w0.pt")
    init = ["--init", str(tmp_path / "w0.pt")]
    w0 = Codec.load(tmp_path / "w0.pt").float().state_dict()
    w1, plain = run("plain", 2, *init)["codec"], run("plain", 3)  # step 1 → 2, then resumed → 3
    w2 = plain["codec"]
    assert "ema" not in plain
    run("avg", 2, *init, "--ema", "0.5")
    avg = run("avg", 3)  # resumed without the option: keeps its decay and its average
    assert avg["train_info"]["session_runs"][-1]["ema"] == 0.5
    d = 0.5
    for k, v in avg["codec"].items():
        assert torch.equal(v, w2[k]), k  # the average draws nothing and steers nothing
        if k.startswith(("encoder.", "decoder.")):
            torch.testing.assert_close(avg["ema"][k], d * d * w0[k] + d * (1 - d) * w1[k] + (1 - d) * w2[k],
                                       rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(avg["ema"][k], w2[k]) for k in w2 if k.startswith("decoder."))
    averaged = codec_train.codec_file_from_run(tmp_path / "avg" / "last.pt", tmp_path / "avg.pt")
    last = codec_train.codec_file_from_run(tmp_path / "avg" / "last.pt", tmp_path / "raw.pt", raw=True)
    assert (averaged.train_info["weights"], last.train_info["weights"]) == ("moving average", "last step")
    for k, v in Codec.load(tmp_path / "avg.pt").state_dict().items():
        assert torch.equal(v, avg["ema"][k].half()), k
    for k, v in Codec.load(tmp_path / "raw.pt").state_dict().items():
        assert torch.equal(v, avg["codec"][k].half()), k
    assert "exported weights: a moving average, decay 0.5" in "\n".join(runs_text(avg["train_info"]))
    assert "moving average" not in "\n".join(runs_text(plain["train_info"]))


def test_discriminator_updates_its_share_of_adversarial_steps(tiny_corpus, tmp_path):
    # Adam counts each parameter's steps: the discriminator took exactly share × adversarial steps, and the
    # generator's steps (through a frozen discriminator) never moved it
    from train import codec as codec_train

    assert [codec_train.disc_updates(k, 2 / 3) for k in range(6)] == [False, True, True, False, True, True]
    assert sum(codec_train.disc_updates(k, 0.25) for k in range(400)) == 100

    def run(name, steps, share, *more):
        codec_train.train(codec_train.build_parser().parse_args(
            ["--corpus", str(tiny_corpus), "--run", str(tmp_path / name), "--n-filters", "2", "--dimension", "8",
             "--batch", "2", "--steps", str(steps), "--segment", "0.27", "--adv-start", "1", "--threads", "1",
             "--disc-share", str(share), *more]))
        return torch.load(tmp_path / name / "last.pt", weights_only=False)

    half = run("half", 5, 0.5, "--synthetic-share", "0.25", "--lin-weight", "2", "--peak-weight", "1.5",
               "--band-weight", "0.5", "--dark-share", "0.5", "--polarity-weight", "0.7",
               "--instruments", "flute")  # 4 adversarial
    assert {int(s["step"]) for s in half["opt_d"]["state"].values()} == {2}
    assert half["train_info"]["session_runs"][-1]["disc_share"] == 0.5
    assert half["train_info"]["session_runs"][-1]["synthetic_share"] == 0.25
    untouched, rare = run("none", 1, 1.0), run("rare", 5, 0.01)  # no adversarial step; 4 without a D update
    assert not rare["opt_d"]["state"]
    for k, v in untouched["disc"].items():
        torch.testing.assert_close(rare["disc"][k], v, rtol=0, atol=0)
    # resumed without the option, a run keeps its recorded share: 2 more adversarial steps, 1 more update
    codec_train.train(codec_train.build_parser().parse_args(
        ["--corpus", str(tiny_corpus), "--run", str(tmp_path / "half"), "--n-filters", "2", "--dimension", "8",
         "--batch", "2", "--steps", "7", "--segment", "0.27", "--threads", "1"]))
    resumed = torch.load(tmp_path / "half" / "last.pt", weights_only=False)
    assert {int(s["step"]) for s in resumed["opt_d"]["state"].values()} == {3}
    assert resumed["train_info"]["session_runs"][-1]["disc_share"] == 0.5
    assert resumed["train_info"]["session_runs"][-1]["synthetic_share"] == 0.25  # and its synthetic tones
    assert resumed["train_info"]["session_runs"][-1]["dark_share"] == 0.5  # and its darkened crops
    assert resumed["train_info"]["session_runs"][-1]["weights"]["lin"] == 2.0  # and its loss weights
    assert resumed["train_info"]["session_runs"][-1]["weights"]["peak"] == 1.5
    assert resumed["train_info"]["session_runs"][-1]["weights"]["band"] == 0.5
    assert resumed["train_info"]["session_runs"][-1]["weights"]["polarity"] == 0.7
    # and the instruments it drew its crops from (session 36 found a resumed one-instrument run drawing all of them)
    assert resumed["args"]["instruments"] == ["flute"]
    assert resumed["train_info"]["session_runs"][-1]["corpus"].startswith("flute") and \
        "violin" not in resumed["train_info"]["session_runs"][-1]["corpus"]
    from train.card import runs_text

    assert "synthetic harmonic tones: 25% of crops" in "\n".join(runs_text(resumed["train_info"]))
    assert "darkened (roll-off from 1.5-6 kHz): 50% of crops" in "\n".join(runs_text(resumed["train_info"]))


def test_the_generator_step_leaves_the_discriminator_without_gradients():
    # the frozen discriminator passes gradients to the codec's output and computes none for its own weights
    from encodec.msstftd import MultiScaleSTFTDiscriminator

    from train.codec import generator_adversarial_losses

    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(filters=2)
    x, y = torch.randn(2, 1, 4000), torch.randn(2, 1, 4000, requires_grad=True)
    l_g, l_fm = generator_adversarial_losses(disc, x, y)
    (l_g + l_fm).backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    assert all(p.grad is None for p in disc.parameters()) and all(p.requires_grad for p in disc.parameters())


def test_instrument_weights_are_checked_and_recorded(tiny_corpus, tmp_path):
    from train import codec as codec_train

    base = ["--corpus", str(tiny_corpus), "--n-filters", "2", "--dimension", "8", "--batch", "2", "--segment", "0.27",
            "--steps", "1", "--threads", "1"]
    for bad in ("violin", "violin=0", "violin=inf", "violin=nan", "violin=2,violin=3", "=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=W"):
            codec_train.instrument_weights(bad)
    assert codec_train.instrument_weights(" violin = 2, clarinet=0.5 ") == {"violin": 2.0, "clarinet": 0.5}
    with pytest.raises(SystemExit, match="oboe, not in the corpus"):
        codec_train.train(codec_train.build_parser().parse_args(
            base + ["--run", str(tmp_path / "bad"), "--instrument-weights", "oboe=2"]))
    codec_train.train(codec_train.build_parser().parse_args(
        base + ["--run", str(tmp_path / "w"), "--instrument-weights", "violin=3"]))
    run = torch.load(tmp_path / "w" / "last.pt", weights_only=False)["train_info"]["session_runs"][-1]
    assert run["crops"] == "shares flute 25%, violin 75%" and run["instrument_weights"] == {"violin": 3.0}
    # resumed without the option, the run keeps its recorded shares (session 25 resumed one with them given again:
    # the default then was every instrument alike); "" gives every instrument alike on purpose
    for steps, given, crops in ((2, [], "shares flute 25%, violin 75%"), (3, ["--instrument-weights", ""],
                                                                          "each instrument an equal share")):
        args = base[:base.index("--steps")] + ["--steps", str(steps), "--threads", "1"]
        codec_train.train(codec_train.build_parser().parse_args(args + ["--run", str(tmp_path / "w"), *given]))
        run = torch.load(tmp_path / "w" / "last.pt", weights_only=False)["train_info"]["session_runs"][-1]
        assert run["from_step"] == steps - 1 and run["crops"] == crops
    codec_train.train(codec_train.build_parser().parse_args(
        base + ["--run", str(tmp_path / "v"), "--instrument-weights", "violin=3"]))
    codec_train.codec_file_from_run(tmp_path / "v" / "last.pt", tmp_path / "v.pt")
    codec_train.train(codec_train.build_parser().parse_args(  # a run from a file draws its own shares
        base[:base.index("--steps")] + ["--steps", "2", "--run", str(tmp_path / "f"),
                                        "--init", str(tmp_path / "v.pt")]))
    run = torch.load(tmp_path / "f" / "last.pt", weights_only=False)["train_info"]["session_runs"][-1]
    assert run["crops"] == "each instrument an equal share"
    ck = torch.load(tmp_path / "v" / "last.pt", weights_only=False)
    del ck["state"]["runs"][-1]["instrument_weights"]  # as records before session 25 were: the shares as text
    torch.save(ck, tmp_path / "v" / "last.pt")
    with pytest.raises(SystemExit, match="flute 25%, violin 75% and its record does not keep the weights"):
        codec_train.train(codec_train.build_parser().parse_args(
            base[:base.index("--steps")] + ["--steps", "2", "--run", str(tmp_path / "v")]))


def test_codec_resumed_with_crop_workers_continues_exactly(tiny_corpus, tmp_path):
    # crops made ahead by two worker processes: a run stopped at step 3 and resumed to 5 ends where a run of
    # 5 straight steps (no workers) does
    from train import codec as codec_train

    def run(name, steps, workers):
        args = codec_train.build_parser().parse_args(
            ["--corpus", str(tiny_corpus), "--run", str(tmp_path / name), "--n-filters", "2", "--dimension", "8",
             "--batch", "2", "--steps", str(steps), "--segment", "0.27", "--adv-start", "2", "--threads", "1",
             "--loader-workers", str(workers)])
        codec_train.train(args)
        return torch.load(tmp_path / name / "last.pt", weights_only=False)

    straight = run("straight", 5, 0)
    run("resumed", 3, 2)
    resumed = run("resumed", 5, 2)
    assert resumed["state"]["step"] == 5
    for k, v in straight["codec"].items():
        torch.testing.assert_close(resumed["codec"][k], v, rtol=0, atol=0)


def test_codec_runs_are_recorded_across_resumes_and_files(tiny_corpus, tmp_path):
    """Each run (session) adds one line to the record the model card prints: where it started, its steps."""
    from train import codec as codec_train
    from core.codec import Codec

    base = ["--corpus", str(tiny_corpus), "--n-filters", "2", "--dimension", "8", "--batch", "2", "--segment", "0.27",
            "--adv-start", "1"]
    parse = codec_train.build_parser().parse_args
    codec_train.train(parse(base + ["--run", str(tmp_path / "a"), "--steps", "2"]))
    codec_train.train(parse(base + ["--run", str(tmp_path / "a"), "--steps", "5", "--lr", "3e-4"]))  # resumed
    runs = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["train_info"]["session_runs"]
    assert [(r["from_step"], r["steps"], r["lr"]) for r in runs] == [(0, 2, 1e-3), (2, 3, 3e-4)]
    assert runs[0]["started_from"] == "scratch" and runs[1]["started_from"].endswith("last.pt")
    codec_train.codec_file_from_run(tmp_path / "a" / "last.pt", tmp_path / "wip.pt", with_disc=True)
    assert Codec.load(tmp_path / "wip.pt").train_info["session_runs"] == runs  # the file keeps them
    no_adv = [a for a in base if a not in ("--adv-start", "1")]  # not given: the record's step is kept, not the default
    codec_train.train(parse(no_adv + ["--run", str(tmp_path / "b"), "--steps", "6",
                                      "--init", str(tmp_path / "wip.pt")]))
    ck_b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    runs_b = ck_b["train_info"]["session_runs"]
    assert ck_b["train_info"]["adv_start"] == 1 and runs_b[2]["adversarial_from"] == 1
    assert runs_b[:2] == runs and (runs_b[2]["from_step"], runs_b[2]["steps"]) == (5, 1)
    from train.card import runs_text

    assert len(runs_text({"session_runs": runs_b})) == 3 and "rate 0.0003" in runs_text({"session_runs": runs_b})[1]
    w = codec_train.DEFAULT_WEIGHTS  # none given, none recorded: the defaults, as the record prints them
    assert (f"loss weights mel 1, stft {w['stft']:g}, lin {w['lin']:g}, peak {w['peak']:g}, band {w['band']:g}, "
            f"polarity {w['polarity']:g}, adv {w['adv']:g}, fm {w['fm']:g}") in runs_text({"session_runs": runs_b})[2]
    assert "(updated on 67% of steps)" in runs_text({"session_runs": runs_b})[2]


def test_the_card_knows_a_shipped_codec_from_the_one_in_training(tmp_path):
    """models/codec.pt and wip/codec.pt with the same weights are one codec (its statistics aside): the card
    prints it once; other weights are a codec still in training."""
    from core.codec import Codec
    from train.card import same_weights

    torch.manual_seed(0)
    c = Codec.compact(n_filters=2, dimension=8)
    c.save(tmp_path / "wip.pt")
    c.set_latent_stats(torch.full((8,), 0.5), torch.full((8,), 2.0))
    c.save(tmp_path / "shipped.pt")
    assert same_weights(tmp_path / "wip.pt", tmp_path / "shipped.pt")
    with torch.no_grad():
        next(c.decoder.parameters()).add_(1e-3)
    c.save(tmp_path / "other.pt")
    assert not same_weights(tmp_path / "wip.pt", tmp_path / "other.pt")


def _tiny_codec_with_statistics(tiny_corpus, tmp_path):
    """A tiny codec trained 2 steps, with latent statistics, at tmp_path/a.pt (+ its discriminator): the options
    that train it, the parser, and the codec as loaded back."""
    from train import codec as codec_train
    from core.codec import Codec

    base = ["--corpus", str(tiny_corpus), "--n-filters", "2", "--dimension", "8", "--batch", "2", "--segment", "0.27",
            "--adv-start", "1", "--threads", "1"]
    parse = codec_train.build_parser().parse_args
    codec_train.train(parse(base + ["--run", str(tmp_path / "a"), "--steps", "2"]))
    codec_train.codec_file_from_run(tmp_path / "a" / "last.pt", tmp_path / "a.pt", with_disc=True)
    init = Codec.load(tmp_path / "a.pt")
    init.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    init.train_info["latent_stats"] = dict(instruments=["x"], frames=1)
    init.save(tmp_path / "a.pt")
    return base, parse, Codec.load(tmp_path / "a.pt")


def test_codec_with_a_frozen_encoder_keeps_its_latent_space(tiny_corpus, tmp_path):
    """--freeze-encoder trains the decoder only: the encoder's weights, the latent statistics and their hash (which
    every denoiser was trained in) come out as they went in, also when resumed without the option."""
    from train import codec as codec_train
    from core.codec import Codec

    base, parse, init = _tiny_codec_with_statistics(tiny_corpus, tmp_path)
    codec_train.train(parse(base + ["--run", str(tmp_path / "b"), "--steps", "4", "--init", str(tmp_path / "a.pt"),
                                    "--freeze-encoder"]))
    codec_train.train(parse(base + ["--run", str(tmp_path / "b"), "--steps", "5"]))  # resumed: still frozen
    codec_train.codec_file_from_run(tmp_path / "b" / "last.pt", tmp_path / "b.pt")
    out = Codec.load(tmp_path / "b.pt")
    for k, v in init.state_dict().items():
        if k.startswith(("encoder.", "latent_")):
            torch.testing.assert_close(out.state_dict()[k], v, rtol=0, atol=0)
    moved = [k for k, v in init.state_dict().items() if k.startswith("decoder.") and not torch.equal(out.state_dict()[k], v)]
    assert moved  # the decoder trained
    assert out.stats_id() == init.stats_id() and out.train_info["latent_stats"] == init.train_info["latent_stats"]
    assert [r.get("freeze_encoder") for r in out.train_info["session_runs"]] == [False, True, True]
    # from a frozen run's file the next run stays frozen; --no-freeze-encoder lets the encoder train again
    codec_train.train(parse(base + ["--run", str(tmp_path / "d"), "--steps", "6", "--init", str(tmp_path / "b.pt")]))
    frozen = torch.load(tmp_path / "d" / "last.pt", weights_only=False)
    assert frozen["train_info"]["session_runs"][-1]["freeze_encoder"] is True
    assert all(torch.equal(frozen["codec"][k].half().float(), v) for k, v in init.state_dict().items()
               if k.startswith("encoder."))
    codec_train.train(parse(base + ["--run", str(tmp_path / "e"), "--steps", "7", "--init", str(tmp_path / "b.pt"),
                                    "--no-freeze-encoder"]))
    thawed = torch.load(tmp_path / "e" / "last.pt", weights_only=False)
    assert thawed["train_info"]["session_runs"][-1]["freeze_encoder"] is False
    assert "latent_stats" not in thawed["train_info"]  # a new space: its statistics are to be fitted again
    with pytest.raises(SystemExit, match="--freeze-encoder keeps an encoder"):
        codec_train.train(parse(base + ["--run", str(tmp_path / "f"), "--steps", "1", "--freeze-encoder"]))
    # without the option, from a file of an unfrozen run: the encoder trains
    codec_train.train(parse(base + ["--run", str(tmp_path / "c"), "--steps", "3", "--init", str(tmp_path / "a.pt")]))
    ck = torch.load(tmp_path / "c" / "last.pt", weights_only=False)
    assert any(not torch.equal(ck["codec"][k].half().float(), v) for k, v in init.state_dict().items()
               if k.startswith("encoder."))


def test_codec_with_a_frozen_decoder_keeps_its_decoder_and_logs_the_drift(tiny_corpus, tmp_path):
    """--freeze-decoder trains the encoder only: the decoder's weights and the latent statistics come out as they
    went in, the encoder moves, and the run logs how far the latents moved (drift: RMS in units of the std), which
    is 0 at the first logged step of an encoder that did not train and equals the formula on the weights."""
    from train import codec as codec_train
    from core.codec import Codec

    base, parse, init = _tiny_codec_with_statistics(tiny_corpus, tmp_path)
    codec_train.train(parse(base + ["--run", str(tmp_path / "b"), "--steps", "52", "--init", str(tmp_path / "a.pt"),
                                    "--freeze-decoder", "--lr", "1e-2"]))
    codec_train.codec_file_from_run(tmp_path / "b" / "last.pt", tmp_path / "b.pt")
    out = Codec.load(tmp_path / "b.pt")
    for k, v in init.state_dict().items():
        if k.startswith(("decoder.", "latent_")):
            torch.testing.assert_close(out.state_dict()[k], v, rtol=0, atol=0)
    assert any(not torch.equal(out.state_dict()[k], v) for k, v in init.state_dict().items() if k.startswith("encoder."))
    assert out.stats_id() == init.stats_id() and out.train_info["latent_stats"] == init.train_info["latent_stats"]
    assert out.train_info["session_runs"][-1]["freeze_decoder"] is True
    from train.card import runs_text

    lines = runs_text(out.train_info)
    assert "steps (encoder only) in" in lines[-1] and "only)" not in lines[0]
    assert "steps (decoder only) in" in runs_text({"session_runs": [dict(steps=3, freeze_encoder=True)]})[0]
    ck = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    drift = [h["drift"] for h in ck["state"]["history"] if "drift" in h]
    assert len(drift) == 1 and drift[0] > 0
    # a closed form: a bias of 0.3 added to the encoder's last convolution moves every latent by 0.3, so the drift is
    # the RMS of 0.3 / std over the channels, whatever the input
    x = torch.randn(2, 1, 1920, generator=torch.Generator().manual_seed(0))
    shifted = Codec.load(tmp_path / "a.pt").float()
    with torch.no_grad():
        [m for m in shifted.encoder.modules() if isinstance(m, torch.nn.Conv1d)][-1].bias.add_(0.3)
        d = codec_train.batch_latent_drift(shifted, init.float().encoder, x)
        assert codec_train.batch_latent_drift(init.float(), init.float().encoder, x) == 0
    expected = float((0.3 / torch.linspace(0.5, 2, 8)).pow(2).mean().sqrt())
    assert float(d) == pytest.approx(expected, rel=1e-4)
    # drift is logged only where the statistics are kept with a training encoder: not by a plain run (a new space)
    codec_train.train(parse(base + ["--run", str(tmp_path / "g"), "--steps", "52", "--init", str(tmp_path / "a.pt")]))
    plain = torch.load(tmp_path / "g" / "last.pt", weights_only=False)
    assert any(h["step"] == 50 for h in plain["state"]["history"])
    assert not any("drift" in h for h in plain["state"]["history"])
    # from a frozen-decoder run's file the next run stays so; --freeze-encoder given there thaws the decoder
    codec_train.train(parse(base + ["--run", str(tmp_path / "e"), "--steps", "53", "--init", str(tmp_path / "b.pt")]))
    again = torch.load(tmp_path / "e" / "last.pt", weights_only=False)
    assert again["train_info"]["session_runs"][-1]["freeze_decoder"] is True
    codec_train.train(parse(base + ["--run", str(tmp_path / "f"), "--steps", "100", "--init", str(tmp_path / "b.pt"),
                                    "--freeze-encoder"]))
    flipped = torch.load(tmp_path / "f" / "last.pt", weights_only=False)
    assert [flipped["train_info"]["session_runs"][-1][k] for k in ("freeze_encoder", "freeze_decoder")] == [True, False]
    assert any(h["step"] == 100 for h in flipped["state"]["history"])
    assert not any("drift" in h for h in flipped["state"]["history"])
    with pytest.raises(SystemExit, match="leave nothing to train"):
        codec_train.train(parse(base + ["--run", str(tmp_path / "c"), "--steps", "1", "--init", str(tmp_path / "a.pt"),
                                        "--freeze-decoder", "--freeze-encoder"]))
    with pytest.raises(SystemExit, match="--freeze-decoder keeps a decoder"):
        codec_train.train(parse(base + ["--run", str(tmp_path / "d"), "--steps", "1", "--freeze-decoder"]))


def test_edge_weight_reaches_the_loss_of_every_crop_length_and_the_exported_record(tmp_path, monkeypatch):
    """--edge-weight W --edge-frames E: each step's loss gets edge_weights(crop length, E, W) (crops alternate 8 and
    16 frames here); without the flag no weights at all; the exported file says which loss trained it."""
    from core.precond import edge_weights
    from train import denoiser as den_train

    _toy_latent_setup(tmp_path)
    seen = []
    real = den_train.edm_loss

    def spy(*a, frame_weight=None, **kw):
        seen.append(frame_weight)
        return real(*a, frame_weight=frame_weight, **kw)

    monkeypatch.setattr(den_train, "edm_loss", spy)
    args = _den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 4, "edge")
    args.edge_weight, args.edge_frames = 4.0, 3
    den_train.train(args)
    steps = [w for w in seen if w is not None and w.dim() == 1]
    assert len(steps) == 4
    for i, w in enumerate(steps):
        assert torch.equal(w, edge_weights((8, 16)[i % 2], 3, 4.0))
    blob = den_train.denoiser_file_from_run(tmp_path / "edge", tmp_path / "edge.pt")
    assert blob["train_info"]["loss"] == dict(edge_weight=4.0, edge_frames=3)
    seen.clear()
    den_train.train(_den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 2, "plain"))
    assert seen and all(w is None for w in seen)
    plain = den_train.denoiser_file_from_run(tmp_path / "plain", tmp_path / "plain.pt")
    assert plain["train_info"]["loss"] == dict(edge_weight=1.0, edge_frames=8)
    with pytest.raises(SystemExit):
        den_train.build_parser().parse_args(["--instrument", "a", "--edge-weight", "inf"])


def test_harmonic_peak_loss_weighs_each_harmonic_alike():
    # closed forms: identical signals cost 0 and a gain g costs |log g|; of a tone's three harmonics, doubling one
    # costs log(2)/3, the one 30 dB under the others as much as a loud one (each peak alike), where the relative
    # linear-mel term weighs it ~30x less; a harmonic the output adds to a hollow tone costs more the louder it is;
    # a rest's hiss beside a sounding clip costs next to nothing
    from core.spectral import HarmonicPeakLoss, MelLoss

    loss = HarmonicPeakLoss()
    t = torch.arange(24_000) / 24_000

    def tone(*amps):  # harmonics of 294 Hz at these amplitudes
        return sum(a * torch.sin(2 * torch.pi * 294 * (k + 1) * t) for k, a in enumerate(amps)).reshape(1, 1, -1)

    quiet = 0.3 * 10 ** (-30 / 20)
    x = tone(0.3, quiet, 0.3)
    assert float(loss(x, x)) == 0.0
    torch.testing.assert_close(loss(2 * x, x), torch.tensor(float(np.log(2))), rtol=1e-4, atol=1e-4)
    for doubled in (tone(0.3, 2 * quiet, 0.3), tone(0.6, quiet, 0.3)):
        torch.testing.assert_close(loss(doubled, x), torch.tensor(float(np.log(2) / 3)), rtol=0.05, atol=0.0)
    mel = MelLoss(24_000)
    assert float(mel.log_and_linear(tone(0.6, quiet, 0.3), x)[1] / mel.log_and_linear(tone(0.3, 2 * quiet, 0.3), x)[1]) > 10
    hollow = tone(0.3, 0.0, 0.3)
    added = [float(loss(tone(0.3, 0.3 * 10 ** (db / 20), 0.3), hollow)) for db in (-40, -30, -15)]
    assert added[0] > 0.1 and added[0] < added[1] < added[2]
    # at a low clarinet's 147 Hz a -31 dB h2 between loud h1 and h3 is a peak at both STFT sizes (a span of bins
    # fixed across sizes took the neighbours into the coarser one's mean and lost it there)
    low = sum(a * torch.sin(2 * torch.pi * 147 * k * t) for k, a in ((1, 0.3), (2, 0.3 * 10 ** (-31 / 20)), (3, 0.3)))
    for n in loss.n_ffts:
        mag = loss.magnitude(low.reshape(1, 1, -1), n)
        h2 = round(2 * 147 * n / 24_000)
        assert bool(loss.peaks(mag, 1e-3 * mag.max(), n)[0, h2 - 1: h2 + 2, 4:-4].any(0).all()), n
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    pair, noisy_rest = torch.cat([x, torch.zeros_like(x)]), torch.cat([x, 1e-4 * noise])
    assert float(loss(noisy_rest, pair)) < 0.05


def test_band_envelope_loss_counts_each_band_alike():
    # closed forms: identical signals cost 0, a gain g costs |log g|, g on the content of one of the ten bands
    # costs |log g| / 10 whether that band is loud or 40 dB down (30 dB over the floor); a rest's hiss 90 dB down
    # beside a sounding clip costs next to nothing
    from core.spectral import BandEnvelopeLoss

    loss = BandEnvelopeLoss()
    t = torch.arange(24_000, dtype=torch.float64) / 24_000  # float32 phases would add a floor ~60 dB down

    def partials(*pairs):  # (Hz, amplitude): each inside one band, away from its edges
        return sum(a * torch.sin(2 * torch.pi * f * t) for f, a in pairs).reshape(1, 1, -1).float()

    centres = (1250, 1750, 2500, 3500, 4500, 5500, 6500, 7500, 9000, 11000)
    dark = [(f, 0.3 if f < 4000 else 0.3 * 10 ** (-40 / 20)) for f in centres]
    x = partials(*dark)
    assert float(loss(x, x)) == 0.0
    torch.testing.assert_close(loss(2 * x, x), torch.tensor(float(np.log(2))), rtol=1e-3, atol=1e-4)
    for k in (1, 7):  # a loud band and one 40 dB down
        y = partials(*[(f, a * (4 if i == k else 1)) for i, (f, a) in enumerate(dark)])
        torch.testing.assert_close(loss(y, x), torch.tensor(float(np.log(4) / 10)), rtol=0.01, atol=0.0)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    pair, noisy_rest = torch.cat([x, torch.zeros_like(x)]), torch.cat([x, 1e-5 * noise])  # 90 dB down
    assert float(loss(noisy_rest, pair)) < 0.05


def test_a_widened_decoder_computes_what_the_narrow_one_did_and_trains_on_from_it(tiny_corpus, tmp_path):
    # Net2WiderNet: every wide channel copies a narrow one and the layers reading the copies split its weights, so
    # the wide decoder's output is the narrow one's (to float64 rounding); unequal splits let training tell the
    # copies apart. A run from the narrow file with --decoder-filters starts from that decoder, encoder and
    # statistics kept, and a resumed run keeps its width without the option.
    from core.codec import Codec
    from train import codec as codec_train
    from train.widen import widen_decoder_state

    torch.manual_seed(0)
    narrow = Codec.compact(n_filters=2, dimension=8).double().eval()
    z = torch.randn(2, 8, 12, dtype=torch.float64)
    with torch.no_grad():
        y = narrow.decoder(z)
    for width in (3, 4):
        wide = Codec.compact(n_filters=2, dimension=8, decoder_filters=width).double().eval()
        assert wide.config["decoder_filters"] == width
        with torch.no_grad():
            assert float((wide.decoder(z) - y).abs().max()) > 1e-3 * float(y.abs().max())  # a fresh one differs
        wide.decoder.load_state_dict(widen_decoder_state(narrow.decoder.state_dict(), wide.decoder.state_dict(),
                                                         torch.Generator().manual_seed(1)))
        with torch.no_grad():
            torch.testing.assert_close(wide.decoder(z), y, rtol=1e-9, atol=1e-12)
    last = dict(wide.decoder.named_modules())["model.14"].conv.conv.weight_v  # reads 4 copies of 2 channels
    assert not torch.allclose(last[:, :2], last[:, 2:])  # the copies' shares differ
    assert Codec.compact(n_filters=2, decoder_filters=2).config == Codec.compact(n_filters=2).config

    base = ["--corpus", str(tiny_corpus), "--n-filters", "2", "--dimension", "8", "--batch", "2", "--segment", "0.27",
            "--threads", "1", "--adv-start", "1"]
    codec_train.train(codec_train.build_parser().parse_args(base + ["--run", str(tmp_path / "n"), "--steps", "2"]))
    codec_train.codec_file_from_run(tmp_path / "n" / "last.pt", tmp_path / "narrow.pt", with_disc=True)
    with pytest.raises(SystemExit, match="has config"):  # another encoder: not a widening
        codec_train.train(codec_train.build_parser().parse_args(
            base + ["--run", str(tmp_path / "x"), "--steps", "3", "--init", str(tmp_path / "narrow.pt"),
                    "--n-filters", "4"]))
    codec_train.train(codec_train.build_parser().parse_args(
        base + ["--run", str(tmp_path / "w"), "--steps", "2", "--init", str(tmp_path / "narrow.pt"),
                "--decoder-filters", "3", "--freeze-encoder"]))  # already at step 2: saves what it started from
    ck = torch.load(tmp_path / "w" / "last.pt", weights_only=False)
    assert ck["config"]["decoder_filters"] == 3
    assert ck["train_info"]["session_runs"][-1]["decoder_widened_from"] == 2
    start, file = Codec.compact(**ck["config"]).double().eval(), Codec.load(tmp_path / "narrow.pt").double()
    start.load_state_dict({k: v.double() for k, v in ck["codec"].items()})
    for k, v in file.encoder.state_dict().items():
        torch.testing.assert_close(start.encoder.state_dict()[k], v, rtol=0, atol=0)
    x = torch.randn(1, 1, 2560, dtype=torch.float64) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(start(x), file(x), rtol=1e-5, atol=1e-5 * float(file(x).abs().max()))
    codec_train.train(codec_train.build_parser().parse_args(base + ["--run", str(tmp_path / "w"), "--steps", "3"]))
    ck = torch.load(tmp_path / "w" / "last.pt", weights_only=False)
    assert ck["state"]["step"] == 3 and ck["config"]["decoder_filters"] == 3  # the width kept without the option
    trained = Codec.compact(**ck["config"]).double()
    trained.load_state_dict({k: v.double() for k, v in ck["codec"].items()})
    for k, v in start.encoder.state_dict().items():  # still frozen, as recorded
        torch.testing.assert_close(trained.encoder.state_dict()[k], v, rtol=0, atol=0)
    assert any(not torch.equal(trained.decoder.state_dict()[k], v) for k, v in start.decoder.state_dict().items())
    with pytest.raises(SystemExit, match="resume it with its own"):
        codec_train.train(codec_train.build_parser().parse_args(
            base + ["--run", str(tmp_path / "w"), "--steps", "4", "--decoder-filters", "4"]))


def test_the_polarity_loss_is_the_even_parts_level_and_pulls_even_order_products_out():
    # closed forms: mel magnitudes scale with a gain, so relative_level(g·x, x) = |g|; for y = x + a·x² the even part
    # (y(x) + y(−x))/2 is a·x², its level a·Σ M(x²) / Σ M(x), and descending it takes a towards 0 (not x's part)
    from core.spectral import MelLoss, even_part

    loss = MelLoss(24_000)
    t = torch.arange(24_000) / 24_000
    x = (0.3 * torch.sin(2 * torch.pi * 300 * t) + 0.1 * torch.sin(2 * torch.pi * 900 * t)).reshape(1, 1, -1)
    torch.testing.assert_close(loss.relative_level(-0.25 * x, x), torch.tensor(0.25), rtol=1e-4, atol=1e-4)
    assert float(loss.relative_level(torch.zeros_like(x), x)) == 0.0
    a, c = torch.tensor(0.5, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    codec = lambda v: c * v + a * v ** 2 + 0.2 * v ** 3  # noqa: E731
    e = even_part(codec(x), codec(-x))
    torch.testing.assert_close(e, (a * x ** 2).detach(), rtol=1e-5, atol=1e-7)
    level = loss.relative_level(e, x)
    want = 0.5 * sum(float(m(x ** 2).sum() / m(x).sum()) for m in loss.mels) / len(loss.mels)
    assert abs(float(level) - want) < 1e-4 * want
    level.backward()
    assert float(a.grad) > 0 and float(c.grad) == 0.0  # the odd part (c·x + 0.2·x³) is none of its business


def test_an_own_decoder_comes_from_a_run_that_kept_its_codecs_encoder_frozen(tiny_corpus, tmp_path):
    # train.codec --export FILE --own-decoder NAME: the run's decoder, tied to the --init codec's encoder and
    # statistics, so the bundle can decode NAME's outputs with it; a run that trained its encoder has none to give
    from core.codec import Codec, with_own_decoder
    from train import codec as codec_train

    base = ["--corpus", str(tiny_corpus), "--n-filters", "2", "--dimension", "8", "--batch", "2", "--segment", "0.27",
            "--threads", "1", "--adv-start", "1"]
    codec_train.train(codec_train.build_parser().parse_args(base + ["--run", str(tmp_path / "n"), "--steps", "2"]))
    codec_train.codec_file_from_run(tmp_path / "n" / "last.pt", tmp_path / "c.pt")
    c = Codec.load(tmp_path / "c.pt")
    c.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    c.train_info["latent_stats"] = {"instruments": ["violin"], "frames": 0}
    c.save(tmp_path / "c.pt")
    codec_train.train(codec_train.build_parser().parse_args(
        base + ["--run", str(tmp_path / "d"), "--steps", "5", "--init", str(tmp_path / "c.pt"), "--freeze-encoder"]))
    assert codec_train.main(["--run", str(tmp_path / "d"), "--export", str(tmp_path / "violin.pt"),
                             "--own-decoder", "violin"]) == 0
    name, own = with_own_decoder(Codec.load(tmp_path / "c.pt"), tmp_path / "violin.pt")
    assert name == "violin" and own.stats_id() == c.stats_id()
    assert any(not torch.equal(own.decoder.state_dict()[k], v) for k, v in c.decoder.state_dict().items())
    from train.card import decoders_section

    card = "\n".join(decoders_section([tmp_path / "violin.pt"]))  # the card gives its own run, not the codec's
    assert "`violin.pt`: violin" in card and "5 steps in all" in card and "3 steps (decoder only)" in card
    assert card.count("- Session run") == 1
    with pytest.raises(SystemExit, match="trained the encoder too"):
        codec_train.main(["--run", str(tmp_path / "n"), "--export", str(tmp_path / "x.pt"), "--own-decoder", "violin"])
    assert not (tmp_path / "x.pt").exists()


@needs_all_fonts
def test_a_confirm_split_renders_unused_test_chorales_in_the_held_out_font_and_changes_no_earlier_render(tmp_path):
    fonts = {"violin": ["fluidr3", "musescore"], "flute": ["fluidr3", "csound"]}
    before = corpus.plan_render(Path("/tmp/x"), ["violin", "flute"], (6, 2, 3), 1, 0, fonts, "timgm6mb", judge=3)
    after = corpus.plan_render(Path("/tmp/x"), ["violin", "flute"], (6, 2, 3), 1, 0, fonts, "timgm6mb", judge=3,
                               confirm=4)
    old = {j["out"]: j["seed"] for j in before}
    new = {j["out"]: j for j in after}
    assert all(new[k]["seed"] == v for k, v in old.items())  # every earlier render, seed and all, as it was
    added = [j for k, j in new.items() if k not in old]
    assert {j["split"] for j in added} == {corpus.CONFIRM} and {j["font"] for j in added} == {"timgm6mb"}
    splits = corpus.split_chorales([corpus.chorale_id(p) for p in corpus.chorale_paths()], 0)
    for name in fonts:
        mine = [j for j in added if j["instrument"] == name]
        assert len(mine) == 4 and all(splits[j["chorale"]] == "test" for j in mine)
        # none of them is a melody this instrument has in any other split
        assert not {j["chorale"] for j in mine} & {j["chorale"] for j in before if j["instrument"] == name}
    with pytest.raises(corpus.CorpusError, match="held-out font"):
        corpus.render_corpus(tmp_path / "c", ["violin"], per_split=(1, 0, 1), heldout=None, confirm=2)
    assert not (tmp_path / "c").exists()  # refused before anything is written
    # more than the test and valid pools leave, or splits that take both pools whole (-1): refused, not cut short
    n_test, n_valid = (sum(v == s for v in splits.values()) for s in ("test", "valid"))
    for per, ask in (((1, 0, 3), n_test - 3 + n_valid + 1), ((1, -1, -1), 1)):
        with pytest.raises(corpus.CorpusError, match="--confirm"):
            corpus.plan_render(Path("/tmp/x"), ["violin"], per, 1, 0, {"violin": ["fluidr3"]}, "timgm6mb",
                               confirm=ask)
    # a later render with more test chorales draws them past the chosen ones, into the confirm melodies: refused
    grown = corpus.plan_render(Path("/tmp/x"), ["violin", "flute"], (6, 2, 5), 1, 0, fonts, "timgm6mb", judge=3)
    have = [dict(instrument=j["instrument"], chorale=j["chorale"], split=j["split"]) for j in after]
    corpus.check_confirm_apart(have, after)  # the corpus as rendered: fine
    with pytest.raises(corpus.CorpusError, match="confirm melody"):
        corpus.check_confirm_apart(have, grown)


@needs_all_fonts
def test_confirm_splits_past_the_test_pool_draw_valid_pool_chorales_the_valid_split_left():
    fonts = {"violin": ["fluidr3", "musescore"]}
    splits = corpus.split_chorales([corpus.chorale_id(p) for p in corpus.chorale_paths()], 0)
    n_test = sum(v == "test" for v in splits.values())
    plan = functools.partial(corpus.plan_render, Path("/tmp/x"), ["violin"], (6, 2, 3), 1, 0, fonts, "timgm6mb",
                             judge=3)
    upto = plan(confirm=(n_test - 3,))  # the whole test pool
    past = plan(confirm=(n_test - 3, 5))
    old = {j["out"]: j["seed"] for j in upto}
    assert all(j["seed"] == old[j["out"]] for j in past if j["out"] in old) and len(past) == len(upto) + 5
    added = [j for j in past if j["out"] not in old]
    assert {j["split"] for j in added} == {"confirm2"} and {j["font"] for j in added} == {"timgm6mb"}
    assert all(splits[j["chorale"]] == "valid" for j in added)
    # none of them is a chorale the valid split (or any other) renders for this instrument
    assert not {j["chorale"] for j in added} & {j["chorale"] for j in upto}
    corpus.check_confirm_apart([], past)


@needs_all_fonts
def test_a_second_confirm_split_draws_after_the_first_and_changes_nothing_rendered(tmp_path):
    fonts = {"violin": ["fluidr3", "musescore"], "flute": ["fluidr3", "csound"]}
    plan = functools.partial(corpus.plan_render, Path("/tmp/x"), ["violin", "flute"], (6, 2, 3), 1, 0, fonts,
                             "timgm6mb", judge=3)
    first, both = plan(confirm=4), plan(confirm=(4, 3))
    old = {j["out"]: j["seed"] for j in first}
    new = {j["out"]: j for j in both}
    assert all(new[k]["seed"] == v for k, v in old.items())  # the first confirm split, seeds and all, as it was
    added = [j for k, j in new.items() if k not in old]
    assert {j["split"] for j in added} == {"confirm2"} and {j["font"] for j in added} == {"timgm6mb"}
    for name in fonts:
        mine = {j["chorale"] for j in added if j["instrument"] == name}
        assert len(mine) == 3 and not mine & {j["chorale"] for j in first if j["instrument"] == name}
    assert [corpus.confirm_split(i) for i in range(3)] == ["confirm", "confirm2", "confirm3"]
    assert corpus.is_confirm_split("confirm2") and not corpus.is_confirm_split("confirmed")
    # a first confirm split of another size would move the second one's melodies into it: refused
    have = [dict(instrument=j["instrument"], chorale=j["chorale"], split=j["split"]) for j in both]
    with pytest.raises(corpus.CorpusError, match="confirm melody"):
        corpus.check_confirm_apart(have, plan(confirm=(5, 3)))
    # a confirm2 with no confirm before it would take what a later confirm draws; a negative count: refused
    for counts in ((0, 3), (4, -1)):
        with pytest.raises(corpus.CorpusError, match="counts ≥ 0"):
            plan(confirm=counts)
    assert plan(confirm=(4, 0)) == first and plan(confirm=()) == plan()
    # the count list parses like the other counts: negatives refused at parsing
    with pytest.raises(SystemExit):
        corpus.main(["render", "--out", str(tmp_path / "c"), "--confirm", "8,-1"])
    assert not (tmp_path / "c").exists()


def test_bf16_autocast_runs_the_passes_in_bf16_and_keeps_weights_and_losses_fp32(tiny_corpus, tmp_path):
    """--bf16 (issue #12's 'bf16 autocast where it holds quality'): the convolutions run in bf16, the weights,
    the losses and the exported record stay fp32 and say so; the same run in fp32 differs (so autocast engaged),
    but only by bf16's rounding."""
    from core.codec import Codec
    from train import codec as codec_train
    from train import denoiser as den_train
    from train.common import as_fp32, forward_precision

    from encodec.msstftd import MultiScaleSTFTDiscriminator

    disc = MultiScaleSTFTDiscriminator(filters=4)
    dtypes = []
    disc.apply(lambda m: m.register_forward_hook(lambda mod, i, o: dtypes.append(o.dtype))
               if isinstance(m, torch.nn.Conv2d) else None)
    y = torch.randn(2, 1, 4800, requires_grad=True)
    x = torch.randn(2, 1, 4800)
    g16, fm16 = codec_train.generator_adversarial_losses(disc, x, y, forward_precision(torch.device("cpu"), True))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert g16.dtype == fm16.dtype == torch.float32
    (g16 + fm16).backward()
    assert y.grad is not None and y.grad.dtype == torch.float32 and y.grad.abs().sum() > 0
    dtypes.clear()
    g16, fm16 = float(g16.detach()), float(fm16.detach())
    g32, fm32 = (float(v.detach()) for v in codec_train.generator_adversarial_losses(disc, x, y))
    assert set(dtypes) == {torch.float32}
    assert g16 != g32 and abs(g16 - g32) < 0.05 * abs(g32) + 1e-3
    assert abs(fm16 - fm32) < 0.05 * fm32
    assert as_fp32(([torch.ones(1, dtype=torch.bfloat16)], (torch.ones(1),)))[0][0].dtype == torch.float32

    runs = {}
    for name, extra in (("fp32", []), ("bf16", ["--bf16"])):
        args = codec_train.build_parser().parse_args(
            ["--corpus", str(tiny_corpus), "--run", str(tmp_path / name), "--n-filters", "2", "--dimension", "8",
             "--batch", "2", "--steps", "3", "--segment", "0.27", "--adv-start", "1", *extra])
        codec_train.train(args)
        codec_train.codec_file_from_run(tmp_path / name / "last.pt", tmp_path / f"{name}.pt")
        runs[name] = Codec.load(tmp_path / f"{name}.pt")
        ck = torch.load(tmp_path / name / "last.pt", weights_only=False)
        assert all(v.dtype == torch.float32 for v in ck["codec"].values() if v.is_floating_point())
        assert runs[name].train_info["session_runs"][-1]["precision"] == ("bf16 autocast" if extra else "fp32")
    a, b = runs["fp32"].state_dict(), runs["bf16"].state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    from train.card import runs_text

    assert "bf16 autocast" in runs_text(runs["bf16"].train_info)[-1]
    assert "bf16" not in runs_text(runs["fp32"].train_info)[-1]

    _toy_latent_setup(tmp_path)
    states = {}
    for name in ("den32", "den16"):
        args = _den_args(tmp_path, tmp_path / "lat", tmp_path / "codec.pt", 8, name)
        args.bf16 = name == "den16"
        den_train.train(args)
        states[name] = torch.load(tmp_path / name / "last.pt", weights_only=False)
        blob = den_train.denoiser_file_from_run(tmp_path / name, tmp_path / f"{name}.pt")
        assert blob["train_info"]["precision"] == ("bf16 autocast" if args.bf16 else "fp32")
    m32, m16 = states["den32"]["model"], states["den16"]["model"]
    assert all(v.dtype == torch.float32 for v in m16.values() if v.is_floating_point())
    assert any(not torch.equal(m32[k], m16[k]) for k in m32)


def test_precision_agreement_is_exact_where_autocast_changes_nothing_and_measures_where_it_does():
    from train.common import forward_precision
    from train.precision import agreement

    torch.manual_seed(0)
    x = torch.randn(64, 32)
    scale = torch.nn.Parameter(torch.randn(32))  # elementwise only: autocast leaves it in fp32
    same = agreement(lambda ctx: ((x * scale) ** 2).mean(), [scale], forward_precision(torch.device("cpu"), True))
    assert same == dict(loss_rel_error=0.0, grad_cosine=pytest.approx(1.0, abs=1e-12), grad_norm_rel_error=0.0)
    lin = torch.nn.Linear(32, 32)

    def through_linear(ctx):
        with ctx():
            y = lin(x)
        return (y.float() ** 2).mean()

    moved = agreement(through_linear, list(lin.parameters()), forward_precision(torch.device("cpu"), True))
    assert 0 < moved["loss_rel_error"] < 0.02 and 0.99 < moved["grad_cosine"] < 1.0


def test_the_precision_benchmark_refuses_a_missing_corpus_or_model_with_one_message(tmp_path):
    from train.precision import main

    root = Path(__file__).resolve().parents[1]
    with pytest.raises(SystemExit, match=r"^error: .*no manifest\.jsonl"):
        main(["--corpus", str(tmp_path), "--codec", str(root / "models/codec.pt"),
              "--denoiser", str(root / "models/denoisers/clarinet.pt")])
    with pytest.raises(SystemExit, match=r"^error: .*nothing\.pt not found"):
        main(["--corpus", str(tmp_path), "--codec", str(tmp_path / "nothing.pt")])
