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
OUT=${OUT:-out/device}
SITE=${SITE:-$PWD/.gpu/site}  # the pack's packages, built for the device's Python 3.12
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TQDM_MININTERVAL=20  # a progress line every 20 s, not a screenful of them
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}  # the device image's python3 holds PyTorch
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
"$PY" -c "import soundfile, soxr, encodec, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" -m train.pack merge /tmp/corpus .gpu/corpus $(ls -d .gpu-*/corpus 2>/dev/null || true)
mkdir -p "$OUT/run"
"$PY" -m train.codec --corpus /tmp/corpus --run-dir "$OUT/run" --init .gpu/init/codec.pt --device "$DEVICE" \
    --batch "$BATCH" --minutes "$MINUTES" --save-every 60 ${INSTRUMENT_WEIGHTS:+--instrument-weights "$INSTRUMENT_WEIGHTS"}
"$PY" -m train.codec --run-dir "$OUT/run" --export "$OUT/codec.pt" --with-disc
split -b 15M -d "$OUT/run/last.pt" "$OUT/run/last.pt.part-"
rm "$OUT/run/last.pt"
ls -l "$OUT" "$OUT/run"
