"""An instrument's own decoder: a decoder trained against the shared encoder (frozen) for one instrument, which the
bundle, the engine and the evaluation use for whatever is bound for that instrument, every denoiser unchanged."""
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.codec import Codec, CodecError, encoder_fingerprint, save_own_decoder, with_own_decoder  # noqa: E402
from tests.helpers import make_tiny_bundle, own_decoder_codec  # noqa: E402


def _codec_with_stats(seed=0):
    torch.manual_seed(seed)
    codec = Codec.compact(n_filters=2, dimension=8).eval()
    codec.set_latent_stats(torch.randn(8), 1 + torch.rand(8))
    codec.train_info["latent_stats"] = {"instruments": ["alpha", "beta"], "frames": 0}
    return codec


def test_an_own_decoder_file_decodes_as_its_run_did_and_only_with_its_encoder_and_statistics(tmp_path):
    codec = _codec_with_stats()
    own = own_decoder_codec(codec)
    save_own_decoder(own, "beta", tmp_path / "beta.pt")
    name, back = with_own_decoder(codec, tmp_path / "beta.pt")
    assert name == "beta" and encoder_fingerprint(back) == encoder_fingerprint(codec)
    z = torch.randn(1, 8, 20)
    with torch.no_grad():
        want, shared, got = own.decode(z), codec.decode(z), back.decode(z)
    # the file keeps the decoder in fp16: its output is the run's to that rounding, and far from the shared one's
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) < 0.02 * scale < float((shared - want).abs().max())
    for k, v in codec.encoder.state_dict().items():  # the encoder and the statistics are the codec's own
        assert torch.equal(back.encoder.state_dict()[k], v), k
    assert back.stats_id() == codec.stats_id()

    moved = own_decoder_codec(codec)  # an encoder that moved: its latents are another space
    with torch.no_grad():
        next(moved.encoder.parameters()).mul_(1.01)
    with pytest.raises(CodecError, match="another encoder"):
        with_own_decoder(moved, tmp_path / "beta.pt")
    restat = own_decoder_codec(codec)
    restat.set_latent_stats(torch.zeros(8), torch.ones(8))
    with pytest.raises(CodecError, match="other latent statistics"):
        with_own_decoder(restat, tmp_path / "beta.pt")


@pytest.fixture(scope="module")
def own_bundle(tmp_path_factory):
    """The tiny bundle with a decoder of its own for 'beta' (the same codec, denoisers and seed as tiny_bundle)."""
    return make_tiny_bundle(tmp_path_factory.mktemp("own"), own_decoders=("beta",))


def test_the_bundle_decodes_an_instrument_with_its_own_decoder_and_the_others_with_the_codecs(own_bundle, tiny_bundle):
    from live.bundle import Bundle, models_sha256

    b, plain = Bundle(own_bundle, provider="cpu", threads=1), Bundle(tiny_bundle, provider="cpu", threads=1)
    assert b.own_decoders == ["beta"] and plain.own_decoders == []
    assert "decoders" not in plain.meta["codec"]  # a bundle without keeps the bundle.json it always had
    z = np.random.default_rng(0).normal(size=(8, 24)).astype(np.float32)
    codec = Codec.load(own_bundle.parent / "codec.pt")
    _, own = with_own_decoder(codec, own_bundle.parent / "beta.decoder.pt")
    with torch.no_grad():
        want_own = own.decode_numpy(z)
    np.testing.assert_allclose(b.decode(z, "beta"), want_own, atol=2e-3)
    np.testing.assert_array_equal(b.decode(z, "alpha"), b.decode(z))  # no own decoder: the codec's
    np.testing.assert_array_equal(b.decode(z), plain.decode(z, "beta"))  # the same codec in both bundles
    assert np.abs(b.decode(z, "beta") - b.decode(z)).max() > 0.05 * np.abs(want_own).max()
    assert models_sha256(own_bundle) != models_sha256(tiny_bundle)


def test_export_refuses_a_decoder_of_another_encoder_or_of_an_instrument_without_a_denoiser(own_bundle, tmp_path):
    from export.onnx import ExportError, export_bundle

    src = own_bundle.parent
    codec = Codec.load(src / "codec.pt")
    files = [src / "codec.pt", src / "alpha.pt", src / "beta.pt"]
    save_own_decoder(own_decoder_codec(codec), "gamma", tmp_path / "gamma.pt")
    with pytest.raises(ExportError, match="no denoiser"):
        export_bundle(files + [tmp_path / "gamma.pt"], tmp_path / "b1")
    other = own_decoder_codec(codec)
    with torch.no_grad():
        next(other.encoder.parameters()).mul_(1.01)
    save_own_decoder(other, "beta", tmp_path / "stray.pt")
    with pytest.raises(ExportError, match="another encoder"):
        export_bundle(files + [tmp_path / "stray.pt"], tmp_path / "b2")
    shutil.copy(src / "beta.decoder.pt", tmp_path / "beta-again.pt")
    with pytest.raises(ExportError, match="two decoder files"):
        export_bundle(files + [src / "beta.decoder.pt", tmp_path / "beta-again.pt"], tmp_path / "b3")
    assert not any(p.name.startswith("b") for p in tmp_path.iterdir() if p.is_dir())  # nothing half-written


def test_a_bundle_whose_own_decoder_reads_another_context_is_refused(own_bundle, tmp_path):
    from live.bundle import BundleError, read_bundle_json

    bad = tmp_path / "bundle"
    shutil.copytree(own_bundle, bad)
    meta = json.loads((bad / "bundle.json").read_text())
    meta["codec"]["decoders"]["beta"]["context_frames"] += 1
    (bad / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="frames of context"):
        read_bundle_json(bad)
    (bad / meta["codec"]["decoders"]["beta"]["file"]).unlink()
    meta["codec"]["decoders"]["beta"]["context_frames"] -= 1
    (bad / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="decoder-beta.onnx is missing"):
        read_bundle_json(bad)


def test_the_engine_decodes_the_committed_frames_with_the_targets_own_decoder(own_bundle, tiny_preset):
    """The wet output is the target's own decoder over the committed latents, not the codec's decoder."""
    import dataclasses

    from live.bundle import Bundle
    from live.engine import StreamingEngine

    bundle = Bundle(own_bundle, provider="cpu", threads=1)
    p = dataclasses.replace(tiny_preset, dry_wet=1.0, bundle=str(own_bundle))  # alpha → beta
    e = StreamingEngine(bundle, p, 24_000, gate_threshold_db=None, dc_cutoff_hz=None)
    t = np.arange(24_000) / 24_000
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y, committed = [], []
    for i in range(0, len(x), 512):
        before = e.hops.committed.end
        y.append(e.process(x[i:i + 512]))
        committed.append(e.hops.committed.get(before, e.hops.committed.end))
    y, committed = np.concatenate(y), np.concatenate(committed, axis=1)
    assert e.stats.errors == 0 and e.stats.dry_hops == 0 and e.stats.hops > 10  # the models ran
    k_end = e.hops.committed.end
    k0, ctx, hop = k_end - 48, bundle.decoder_context, bundle.samples_per_frame
    start = e.prefill + k0 * hop
    own = bundle.decode(committed[:, k0 - ctx:k_end], "beta")[ctx * hop:]
    shared = bundle.decode(committed[:, k0 - ctx:k_end])[ctx * hop:]
    got = y[start:start + len(own)]
    assert len(got) > 20 * hop
    np.testing.assert_allclose(got, own[: len(got)], atol=1e-4)
    assert np.abs(got - shared[: len(got)]).max() > 0.05 * np.abs(got).max()


def test_the_ceiling_pairs_each_decoder_file_with_the_codec_it_was_trained_against(tmp_path):
    from evaluation.ceiling import own_decoder_round_trips

    codec, other = _codec_with_stats(0), _codec_with_stats(1)
    codec.save(tmp_path / "codec.pt")
    other.save(tmp_path / "other.pt")
    own = own_decoder_codec(codec)
    save_own_decoder(own, "beta", tmp_path / "beta.pt")
    trips = own_decoder_round_trips([tmp_path / "codec.pt", tmp_path / "other.pt"], [tmp_path / "beta.pt"])
    assert set(trips[tmp_path / "codec.pt"]) == {"beta"} and trips[tmp_path / "other.pt"] == {}
    x = (0.3 * np.sin(2 * np.pi * 300 * np.arange(4800) / 24_000)).astype(np.float32)
    with torch.no_grad():
        want = own.decode_numpy(codec.encode_numpy(x))[: len(x)]
    got = trips[tmp_path / "codec.pt"]["beta"](x)
    assert len(got) == len(x) and np.abs(got - want).max() < 0.02 * np.abs(want).max()
    with pytest.raises(ValueError, match="none of the codecs"):
        own_decoder_round_trips([tmp_path / "other.pt"], [tmp_path / "beta.pt"])


def test_an_instruments_own_decoder_opens_with_its_denoiser_before_any_hop(own_bundle):
    # the engine and the panel open an instrument's sessions on the caller's thread (bundle.denoiser) when it is
    # chosen: its own decoder must open there too, not in the audio worker's first hop that decodes for it
    from live.bundle import Bundle

    b = Bundle(own_bundle, provider="cpu", threads=1)
    assert b._own_decoders == {}
    b.denoiser("alpha")
    assert b._own_decoders == {}  # alpha has none
    b.denoiser("beta")
    assert set(b._own_decoders) == {"beta"}
    assert b.decoder_session("beta") is b._own_decoders["beta"] and b.decoder_session("alpha") is b._dec


def test_switching_to_a_target_decoded_by_another_decoder_does_not_click(own_bundle, tiny_preset):
    # beta has a decoder of its own, alpha the codec's: when the target changes, the hop that first decodes for the
    # new one crossfades the two decoders' output, as the latent crossfade does for the bridge
    import dataclasses

    from live.bundle import Bundle
    from live.engine import StreamingEngine

    bundle = Bundle(own_bundle, provider="cpu", threads=1)
    p = dataclasses.replace(tiny_preset, bundle=str(own_bundle))  # alpha → beta
    t = np.arange(72_000) / 24_000
    x = (0.3 * np.sin(2 * np.pi * 261.6 * t)).astype(np.float32)
    half = len(x) // 2

    def stream(e, x):
        return np.concatenate([e.process(x[i:i + 256]) for i in range(0, len(x), 256)])

    e = StreamingEngine(bundle, p, 24_000)
    y1 = stream(e, x[:half])
    e.set(target="alpha")
    y2 = stream(e, x[half:])
    y = np.concatenate([y1, y2])
    assert e.stats.errors == 0 and e.stats.dry_hops == 0  # the models ran
    steady = [np.abs(np.diff(part)) for part in (y1[len(y1) // 2:], y2[len(y2) // 2:])]
    bound = 1.1 * max(np.percentile(s, 99.9) for s in steady)
    window = slice(half - 2000, half + e.delay + 2 * e.H * e.F)  # around where the change lands
    assert np.abs(np.diff(y[window])).max() <= bound


def test_the_solver_decodes_the_codec_row_as_the_source_and_bridged_rows_as_the_target(tiny_preset):
    # the codec row is the source's own round trip (no bridge); every bridged row is bound for the target: with
    # a target that has its own decoder, decoding them alike would judge one row with the wrong decoder
    from types import SimpleNamespace

    from evaluation.solver import SolverSetting, solver_rows

    decoded = []

    class Ev:
        bundle = SimpleNamespace(transfer=lambda z, *a: z + 1.0)

        def moved_clips(self, refs, preset):
            return [c.audio for c in refs], [0] * len(refs)

        def encode(self, x):
            return np.zeros((8, 4), np.float32)

        def decode(self, z, instrument):
            decoded.append((float(z.mean()), instrument))
            return np.zeros(8, np.float32)

        def score(self, kind, a, b, refs, outs, ref_emb, **kw):
            return {"kind": kind}

    clips = {"alpha": [SimpleNamespace(audio=np.zeros(8, np.float32))]}
    solver_rows(Ev(), tiny_preset, [SolverSetting("euler", 2, 7.0, 0.02)], clips, 4)
    assert decoded[0] == (0.0, "alpha")  # the codec row: the encoder's latents, the source's decoder
    assert decoded[1:] and all(d == (1.0, "beta") for d in decoded[1:])  # every bridged row: the target's


def test_an_own_decoder_that_does_not_open_fails_its_instrument_every_time(own_bundle, tmp_path):
    # a truncated decoder-beta.onnx: choosing beta fails on the caller's thread, again on a second try (the
    # denoiser is not kept without it), so no hop ever tries to open it
    from live.bundle import Bundle, BundleError

    bad = tmp_path / "bundle"
    shutil.copytree(own_bundle, bad)
    (bad / "decoder-beta.onnx").write_bytes(b"not onnx")
    b = Bundle(bad, provider="cpu", threads=1)
    for _ in range(2):
        with pytest.raises(BundleError, match="decoder-beta.onnx"):
            b.denoiser("beta")
    assert "beta" not in b._denoisers and b.denoiser("alpha") is b.denoiser("alpha")
