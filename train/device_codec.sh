#!/usr/bin/env bash
# Codec training on a lent GPU, from the pack of `python -m train.pack make` (see its help):
#   device run: carry [".gpu"] (after any ".gpu-K" parts), command "bash train/device_codec.sh MINUTES",
#   MINUTES at least 2 under the call's timeout_s / 60 (start-up, export): a call cut off returns nothing usable
# Writes to $OUT: codec.pt + codec.disc.pt (fp16, to evaluate and commit) and run/last.pt.part-* (the whole
# training state, split under the 16 MiB a returned file may have; join them with cat to resume here).
set -euo pipefail
MINUTES=${1:-8}
BATCH=${BATCH:-32}
INSTRUMENT_WEIGHTS=${INSTRUMENT_WEIGHTS:-}  # e.g. violin=2,clarinet=2: more crops for the instruments kept worst
CODEC_ARGS=${CODEC_ARGS:-}  # more train.codec options, e.g. "--adv-weight 0.3 --fm-weight 10"
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
merge_pack_corpus /tmp/corpus
mkdir -p "$OUT/run"
"$PY" -m train.codec --corpus /tmp/corpus --run-dir "$OUT/run" --init .gpu/init/codec.pt --device "$DEVICE" \
    --batch "$BATCH" --minutes "$MINUTES" --save-every 60 ${INSTRUMENT_WEIGHTS:+--instrument-weights "$INSTRUMENT_WEIGHTS"} $CODEC_ARGS
"$PY" -m train.codec --run-dir "$OUT/run" --export "$OUT/codec.pt" --with-disc
split -b 15M -d "$OUT/run/last.pt" "$OUT/run/last.pt.part-"
rm "$OUT/run/last.pt"
ls -l "$OUT" "$OUT/run"
