#!/usr/bin/env bash
# A new codec and then every denoiser in its latent space, in one lent-GPU call: one machine start and one pack
# (`python -m train.pack make --init CODEC --denoisers models/denoisers`, see its help) instead of two of each:
#   device run: carry [".gpu-1"] (each ".gpu-K" part) with command "true", then carry [".gpu"] with command
#   "DEADLINE_S=T bash train/device_all.sh CODEC_MINUTES DENOISER_MINUTES", T the call's timeout_s less 30
# Stage 1 is train/device_codec.sh (INSTRUMENT_WEIGHTS and CODEC_ARGS as there, CODEC_BATCH its BATCH), stage 2
# train/device_denoisers.sh on stage 1's codec (its statistics fitted there), each trainer going on from the pack's
# denoiser of that instrument (a warm start in the new space), for DENOISER_MINUTES or what DEADLINE_S leaves
# (DENOISER_BATCH its BATCH).
# Writes to $OUT (a call returns 8 files at most): codec.pt (with its latent statistics: ship it with these
# denoisers, never apart), codec.disc.pt (a later run resumes the adversarial stage with --init codec.pt),
# denoisers.tar.part-* (join with cat and untar: denoisers/NAME.pt, fp16) and denoisers.log. The codec run's
# optimizer state stays on the machine: with six denoisers back there is no room for it.
set -euo pipefail
CODEC_MINUTES=${1:?usage: device_all.sh CODEC_MINUTES DENOISER_MINUTES}
DENOISER_MINUTES=${2:?usage: device_all.sh CODEC_MINUTES DENOISER_MINUTES}
OUT=${OUT:-out/device}
STAGE=${STAGE:-/tmp/device-all}  # this call's scratch on the machine (a warm machine keeps /tmp: cleared first)
HERE=$(dirname "${BASH_SOURCE[0]}")
rm -rf "$STAGE"
mkdir -p "$STAGE" "$OUT"
OUT="$STAGE/codec" BATCH=${CODEC_BATCH:-32} bash "$HERE/device_codec.sh" "$CODEC_MINUTES"
mv "$STAGE/codec/codec.disc.pt" "$OUT/codec.disc.pt"
# stage 2 gets what is left of the deadline, less the 20 s the packing below may take
left=${DEADLINE_S:+$(( DEADLINE_S - SECONDS - 20 ))}
rc=0
DEADLINE_S=$left CODEC="$STAGE/codec/codec.pt" INIT_OTHER_SPACE=1 WORK="$STAGE/denoisers" OUT="$OUT" \
    BATCH=${DENOISER_BATCH:-512} \
    bash "$HERE/device_denoisers.sh" "$DENOISER_MINUTES" || rc=$?
if [ -d "$OUT/denoisers" ] && [ -n "$(ls "$OUT/denoisers")" ]; then  # whatever trained comes back, even if one failed
    tar -cf "$STAGE/denoisers.tar" -C "$OUT" denoisers
    split -b 15M -d "$STAGE/denoisers.tar" "$OUT/denoisers.tar.part-"
fi
rm -rf "$OUT/denoisers"
ls -l "$OUT"
exit "$rc"
