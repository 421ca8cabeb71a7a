#!/usr/bin/env bash
# Every instrument's denoiser on a lent GPU, once the codec's ceiling holds, from the pack of `python -m train.pack
# make --init THE_FINAL_CODEC` (see its help):
#   device run: carry [".gpu"] (after any ".gpu-K" parts), command "DEADLINE_S=T bash train/device_denoisers.sh
#   MINUTES", T the call's timeout_s less 30: training gets at most MINUTES and no more than the latents leave
#   before T with 90 s for the exports (a call cut off at its limit returns nothing: on an H100, encoding a
#   two-part pack on the CPU once took 2.3 of a 5.75-minute call, and nothing came back)
# The pack's codec encodes its corpus on the GPU (with ±2-semitone copies) and has its latent statistics fitted
# unless it has them; then one EDM trainer per instrument (from the pack's init/denoisers/NAME.pt where it has
# one: `python -m train.pack make --denoisers DIR`), all at once on the one GPU (each is CPU-bound: the machine's
# cores serve them side by side), with the recipe measured on an H100 (batch 512, rate 1e-3). Writes to $OUT:
# codec.pt (the pack's codec with its statistics: ship it with these denoisers, never apart), denoisers/NAME.pt
# (fp16 EMA weights) and denoisers.log (every trainer's log, one after another: a call returns at most 8 files).
set -euo pipefail
MINUTES=${1:-6}
ASKED=$MINUTES  # MINUTES may shrink to meet DEADLINE_S below
BATCH=${BATCH:-512}
LR=${LR:-1e-3}
SHIFTS=${SHIFTS:--2,-1,0,1,2}
WORK=${WORK:-/tmp/denoisers}
DEADLINE_S=${DEADLINE_S:-}  # seconds from the start by which this script must have written everything
CODEC=${CODEC:-.gpu/init/codec.pt}  # the codec whose latent space they learn (train/device_all.sh: the one it just trained)
INIT_OTHER_SPACE=${INIT_OTHER_SPACE:-}  # non-empty: the pack's denoisers are a warm start in CODEC's new space
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
rm -rf "$WORK"  # a warm machine keeps /tmp: an earlier call's latents or runs must never join this one
merge_pack_corpus "$WORK/corpus"
mkdir -p "$OUT/denoisers" "$WORK/logs"
: > "$OUT/denoisers.log"  # this run's logs only
cp "$CODEC" "$OUT/codec.pt"
"$PY" -m train.latents --codec "$OUT/codec.pt" --corpus "$WORK/corpus" --out "$WORK/latents" --shifts="$SHIFTS" \
    --threads "$(nproc)" --device "$DEVICE"
INSTRUMENTS=$(ls "$WORK/latents")
[ -n "$INSTRUMENTS" ] || { echo "error: the pack's corpus gave no latents" >&2; exit 1; }
N=$(echo "$INSTRUMENTS" | wc -w)
[ $(( N + 2 )) -le 8 ] || { echo "error: $N instruments: their files, the codec and the log exceed the 8 files a" \
    "device call returns" >&2; exit 1; }
if [ -n "$DEADLINE_S" ]; then
    # what is left, less 90 s: the trainers' clocks start once their latents are loaded, and the final saves,
    # the exports one after another (each a Python start) and the copy back come after them
    MINUTES=$("$PY" -c 'import sys; m, d, t = map(float, sys.argv[1:]); print(f"{min(m, (d - t - 90) / 60):.2f}")' \
        "$MINUTES" "$DEADLINE_S" "$SECONDS")
    echo "training for $MINUTES minutes ($SECONDS s gone of DEADLINE_S=$DEADLINE_S)"
    # cut by the deadline below a minute (or below what was asked, if less): too short to be worth exporting
    "$PY" -c 'import sys; m, asked = map(float, sys.argv[1:]); sys.exit(m < min(1.0, asked))' "$MINUTES" "$ASKED" || {
        echo "error: no time left to train before DEADLINE_S=$DEADLINE_S (the latents took $SECONDS s)" >&2; exit 1; }
fi
THREADS=$(( $(nproc) / N )); THREADS=$(( THREADS > 0 ? THREADS : 1 ))
declare -A pid_of
for inst in $INSTRUMENTS; do
    init=(); [ -f ".gpu/init/denoisers/$inst.pt" ] && init=(--init ".gpu/init/denoisers/$inst.pt")  # the pack's
    [ ${#init[@]} -gt 0 ] && [ -n "$INIT_OTHER_SPACE" ] && init+=(--init-other-space)
    "$PY" -m train.denoiser --instrument "$inst" --latents "$WORK/latents" --codec "$OUT/codec.pt" \
        --run-dir "$WORK/run-$inst" --device "$DEVICE" --batch "$BATCH" --lr "$LR" --minutes "$MINUTES" \
        --threads "$THREADS" "${init[@]}" > "$WORK/logs/$inst.log" 2>&1 &
    pid_of[$inst]=$!
done
failed=""
for inst in $INSTRUMENTS; do  # every trainer that ran to its end is exported, even if another failed
    if wait "${pid_of[$inst]}"; then  # an export that fails is a failure too, not the end of the others
        "$PY" -m train.denoiser --instrument "$inst" --run-dir "$WORK/run-$inst" --codec "$OUT/codec.pt" \
            --export "$OUT/denoisers/$inst.pt" >> "$WORK/logs/$inst.log" 2>&1 || failed="$failed $inst"
    else
        failed="$failed $inst"; tail -n 20 "$WORK/logs/$inst.log" >&2
    fi
    { echo "== $inst"; cat "$WORK/logs/$inst.log"; } >> "$OUT/denoisers.log"
done
ls -l "$OUT" "$OUT/denoisers"
if [ -n "$failed" ]; then echo "error: training failed for$failed (see their logs)" >&2; exit 1; fi
