"""Spectral distances between a codec's output and its input, in PyTorch: the codec's training losses
(train.codec) and what evaluation.ceiling fits latents with, so the two measure alike."""
from __future__ import annotations

import torch
from torch import nn


def floor_under_loudest(level: torch.Tensor, floor: float, quiet: float, least: float) -> torch.Tensor:
    """(clips, 1, 1): `floor` times each clip's loudest value of `level` (clips, ..., ...), a clip counted as at most
    `quiet` under the batch's loudest, so that a rest is floored deep under the batch's music, not under its own
    hiss; at least `least`. Where the peak and band losses stop counting."""
    loudest = level.detach().amax(dim=(1, 2), keepdim=True)
    return (floor * torch.maximum(loudest, quiet * loudest.max())).clamp_min(least)


class MelLoss(nn.Module):
    """Multi-resolution L1 between log-magnitude mel spectrograms (power 1, log of clamp 1e-5).

    Power-2 mel spectrograms made training stall here; magnitudes do not.
    """

    def __init__(self, sample_rate: int = 24_000, n_ffts=(512, 1024, 2048), n_mels=(64, 80, 128)):
        super().__init__()
        import torchaudio

        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n, hop_length=n // 4, n_mels=m, power=1.0,
                                                 center=True)
            for n, m in zip(n_ffts, n_mels))

    @staticmethod
    def _log(mel: torch.Tensor) -> torch.Tensor:
        return torch.log(mel.clamp_min(1e-5))

    def log_mel(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self._log(self.mels[i](x))

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return sum((self.log_mel(y, i) - self.log_mel(x, i)).abs().mean() for i in range(len(self.mels))) / len(self.mels)

    def log_and_linear(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the log-mel L1 above, the relative linear-mel L1: Σ|M(y) − M(x)| / Σ M(x) over the batch, mean over
        resolutions) from one pass over the spectrograms. Over the batch, not per clip: a silent crop (a rest) made
        a per-clip ratio 10⁴ and its gradient with it; here each crop weighs as much as it sounds, and the log
        term keeps the quiet ones.

        Why the linear term (EnCodec's frequency loss is linear too): the log term weighs every bin alike, and
        most bins are the quiet floor between harmonics, so the few loud harmonics that make a timbre get
        little of its gradient. Measured on `models/wip/codec.pt` at step 44,727: held-out clarinet 0.48,
        training fonts' 0.15; with the decoder frozen, descending this term on the latents of a 294 Hz hollow
        tone took its filled-in h2 from -11 to -44 dB (the log term alone: to -28, with h5 falling)."""
        log_l1, lin_l1 = 0.0, 0.0
        for m in self.mels:
            my, mx = m(y), m(x)
            log_l1 = log_l1 + (self._log(my) - self._log(mx)).abs().mean()
            lin_l1 = lin_l1 + (my - mx).abs().sum() / (mx.sum() + 1e-5)
        return log_l1 / len(self.mels), lin_l1 / len(self.mels)

    def relative_level(self, e: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Σ M(e) / Σ M(x) over the batch, mean over resolutions: how loud `e` is against `x` in linear mel
        magnitudes (0 iff e is silent). The polarity loss's measure of a codec's even part against its input."""
        return sum(m(e).sum() / (m(x).sum() + 1e-5) for m in self.mels) / len(self.mels)


def even_part(y, y_of_negated):
    """(C(x) + C(−x)) / 2, of tensors (the training loss) or arrays (evaluation.ceiling --odd-part): the part of a
    codec's output that does not flip with its input's sign. A codec that reproduced its input would have none;
    what there is comes from even-order products (x², x·|x| …), and
    even-order products of a hollow (odd-harmonic) tone are even harmonics: h3 − h1 = h2. Session 29 measured it
    on the held-out clarinet: 13-15 dB under the round trip, holding nearly all of its even harmonics (odd − even
    −12 dB in this part, +23 dB in the rest, +12 dB in the input)."""
    return (y + y_of_negated) / 2


class LogStftLoss(nn.Module):
    """Multi-resolution L1 between log-magnitude linear-frequency spectrograms (log of clamp 1e-5).

    Mel bands above ~3 kHz are a few hundred Hz wide: a smeared harmonic and a sharp one fill them alike, so
    the mel loss cannot ask for sharp upper harmonics, where a violin's brightness lives; linear bins can."""

    def __init__(self, n_ffts=(512, 1024, 2048)):
        super().__init__()
        self.n_ffts = tuple(n_ffts)
        for n in self.n_ffts:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def magnitude(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return torch.stft(x.reshape(-1, x.shape[-1]), n, hop_length=n // 4, window=getattr(self, f"window_{n}"),
                          center=True, return_complex=True).abs()  # (clips, bins, frames)

    def log_mag(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return torch.log(self.magnitude(x, n).clamp_min(1e-5))

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return sum((self.log_mag(y, n) - self.log_mag(x, n)).abs().mean() for n in self.n_ffts) / len(self.n_ffts)


class HarmonicPeakLoss(LogStftLoss):
    """L1 between log magnitudes at the spectral peaks of either signal (the harmonics), fine linear-frequency STFTs.

    The held-out clarinet's round trip fills in the even harmonics its low register lacks (h2 -31 dB in, about
    -15 dB out) and no loss tried since session 8 moved that: log-mel and log-STFT L1s average over every bin,
    and most bins are the floor between harmonics; the linear terms weigh a -31 dB harmonic 1/1000 of the
    fundamental. Here only peaks count, each alike in log: a peak is a bin of either signal (a harmonic the input
    has, or one the output adds) that is the largest within ±`reach` bins, stands `prominence_db` over the mean
    of the bins within ±`spread_hz` (noise and window sidelobes do not; the span is in Hz, so at a low pitch the
    coarser STFT's mean does not take in the neighbouring harmonics and lose a weak one between them) and lies
    within `floor_db` of the clip's loudest bin. Levels are compared after a max over ±1 bin (a harmonic a few
    cents off is not a miss) and floored `floor_db` under that loudest bin (a harmonic the output adds where the
    input has none costs up to `floor_db` dB). A clip's loudest bin counts as no more than `quiet_db` under the
    batch's: a rest is floored `floor_db + quiet_db` under the batch's loudest bin, or its hiss (inaudible) would
    outweigh the other clips' harmonics."""

    def __init__(self, n_ffts=(2048, 4096), floor_db: float = 60.0, quiet_db: float = 30.0,
                 prominence_db: float = 10.0, reach: int = 2, spread_hz: float = 94.0, sample_rate: int = 24_000):
        super().__init__(n_ffts)  # its STFTs
        self.floor, self.quiet = 10 ** (-floor_db / 20), 10 ** (-quiet_db / 20)
        self.prominence, self.reach = 10 ** (prominence_db / 20), reach
        # ±94 Hz: 8 bins at 2048 points, 16 at 4096; a 147 Hz clarinet's neighbouring harmonics stay outside it
        self.spread = {n: max(reach, round(spread_hz * n / sample_rate)) for n in self.n_ffts}

    @staticmethod
    def along_bins(pool, v: torch.Tensor, half: int) -> torch.Tensor:
        """pool (max or mean) over ±half bins of each frame of v (clips, bins, frames)."""
        flat = v.transpose(1, 2).reshape(-1, 1, v.shape[1])
        return pool(flat, 2 * half + 1, 1, half).reshape(v.shape[0], v.shape[2], -1).transpose(1, 2)

    def peaks(self, mag: torch.Tensor, floor: torch.Tensor, n: int) -> torch.Tensor:
        local_max = self.along_bins(nn.functional.max_pool1d, mag, self.reach)
        local_mean = self.along_bins(
            lambda v, k, s, p: nn.functional.avg_pool1d(v, k, s, p, count_include_pad=False), mag, self.spread[n])
        return (mag >= local_max) & (mag > self.prominence * local_mean) & (mag > floor)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for n in self.n_ffts:
            mx, my = self.magnitude(x, n), self.magnitude(y, n)
            floor = floor_under_loudest(mx, self.floor, self.quiet, least=1e-8)
            mask = (self.peaks(mx.detach(), floor, n) | self.peaks(my.detach(), floor, n)).float()
            lx = self.along_bins(nn.functional.max_pool1d, torch.log(torch.maximum(mx, floor)), 1)
            ly = self.along_bins(nn.functional.max_pool1d, torch.log(torch.maximum(my, floor)), 1)
            total = total + ((ly - lx).abs() * mask).sum() / mask.sum().clamp_min(1.0)
        return total / len(self.n_ffts)


class BandEnvelopeLoss(nn.Module):
    """L1 between log levels (½ log energy) of input and output in fixed bands above 1 kHz, frame by frame.

    What the judge hears in a held-out clarinet's round trip is not its harmonics below 4 kHz (low-passed there
    it is a clarinet 8/8) but a floor the codec lays ~50 dB under the loud band, which on a dark instrument lifts
    5–10 kHz by 10–19 dB (a breath: heard as a flute). Every loss sees it (with that band's envelope matched to the
    input the log-mel L1 falls 1.35 → 0.97) but averages it with all else; here each band counts alike, in log,
    down to `floor_db` under the clip's loudest band-frame (that clarinet's 6–10 kHz lie 60–80 dB under it, its round
    trip's 45–55); a clip counts as at most `quiet_db` under the batch's loudest, so a rest's hiss weighs little."""

    def __init__(self, edges_hz=(1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000),
                 n_fft: int = 1024, floor_db: float = 70.0, quiet_db: float = 10.0, sample_rate: int = 24_000):
        super().__init__()
        self.n_fft, self.floor, self.quiet = n_fft, 10 ** (-floor_db / 10), 10 ** (-quiet_db / 10)
        f = torch.fft.rfftfreq(n_fft, 1 / sample_rate)
        last = len(edges_hz) - 2
        bands = torch.stack([((f >= lo) & ((f < hi) | ((i == last) & (f <= hi)))).float()
                             for i, (lo, hi) in enumerate(zip(edges_hz[:-1], edges_hz[1:]))])
        self.register_buffer("bands", bands, persistent=False)  # (bands, bins)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, hop_length=self.n_fft // 4, window=self.window,
                       center=False, return_complex=True).abs().pow(2)  # no padded edge frames: they splatter
        return torch.einsum("kb,cbt->ckt", self.bands, s)  # (clips, bands, frames)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ex, ey = self.energy(x), self.energy(y)
        floor = floor_under_loudest(ex, self.floor, self.quiet, least=1e-12)
        return 0.5 * (torch.log(ey + floor) - torch.log(ex + floor)).abs().mean()
