#!/usr/bin/env bash
# Every instrument's denoiser on a lent GPU, once the codec's ceiling holds, from the pack of `python -m train.pack
# make --init THE_FINAL_CODEC` (see its help):
#   device run: carry [".gpu"] (after any ".gpu-K" parts), command "bash train/device_denoisers.sh MINUTES",
#   MINUTES at least 3 under the call's timeout_s / 60 (latents, start-up, export)
# The pack's codec encodes its corpus (with ±2-semitone copies) and has its latent statistics fitted; then one
# EDM trainer per instrument, all at once on the one GPU (each is CPU-bound: the machine's cores serve them side by
# side), with the recipe measured on an H100 (batch 512, rate 1e-3). Writes to $OUT: codec.pt (the pack's codec
# with its statistics: ship it with these denoisers, never apart), denoisers/NAME.pt (fp16 EMA weights) and
# NAME.log per trainer.
set -euo pipefail
MINUTES=${1:-6}
BATCH=${BATCH:-512}
LR=${LR:-1e-3}
SHIFTS=${SHIFTS:--2,-1,0,1,2}
WORK=${WORK:-/tmp/denoisers}
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
rm -rf "$WORK"  # a warm machine keeps /tmp: an earlier call's latents or runs must never join this one
merge_pack_corpus "$WORK/corpus"
mkdir -p "$OUT/denoisers"
cp .gpu/init/codec.pt "$OUT/codec.pt"
"$PY" -m train.latents --codec "$OUT/codec.pt" --corpus "$WORK/corpus" --out "$WORK/latents" --shifts="$SHIFTS" \
    --threads "$(nproc)"
INSTRUMENTS=$(ls "$WORK/latents")
[ -n "$INSTRUMENTS" ] || { echo "error: the pack's corpus gave no latents" >&2; exit 1; }
THREADS=$(( $(nproc) / $(echo "$INSTRUMENTS" | wc -w) )); THREADS=$(( THREADS > 0 ? THREADS : 1 ))
declare -A pid_of
for inst in $INSTRUMENTS; do
    "$PY" -m train.denoiser --instrument "$inst" --latents "$WORK/latents" --codec "$OUT/codec.pt" \
        --run-dir "$WORK/run-$inst" --device "$DEVICE" --batch "$BATCH" --lr "$LR" --minutes "$MINUTES" \
        --threads "$THREADS" > "$OUT/$inst.log" 2>&1 &
    pid_of[$inst]=$!
done
failed=""
for inst in $INSTRUMENTS; do  # every trainer that ran to its end is exported, even if another failed
    if wait "${pid_of[$inst]}"; then
        "$PY" -m train.denoiser --instrument "$inst" --run-dir "$WORK/run-$inst" --codec "$OUT/codec.pt" \
            --export "$OUT/denoisers/$inst.pt"
    else
        failed="$failed $inst"; tail -n 20 "$OUT/$inst.log" >&2
    fi
done
ls -l "$OUT" "$OUT/denoisers"
if [ -n "$failed" ]; then echo "error: training failed for$failed (see their logs)" >&2; exit 1; fi
