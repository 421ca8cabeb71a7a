#!/usr/bin/env bash
# Several codec runs side by side on one lent GPU, from the pack's codec (`python -m train.pack make`), to compare
# levers in one call (one machine start) instead of one call each:
#   device run: carry [".gpu"], command
#   "bash train/device_codec_variants.sh MINUTES 'enc=--freeze-decoder' 'enc-stft=--freeze-decoder --stft-weight 1'"
# Each NAME=ARGS is one `train.codec` run from .gpu/init/codec.pt with COMMON_ARGS then ARGS, for MINUTES, with the
# machine's cores shared out as loader workers. Writes to $OUT: NAME.pt + NAME.disc.pt (fp16, to evaluate here:
# `python -m evaluation.ceiling models/codec.pt NAME.pt`), NAME.last.pt (the training state, to resume with
# `--run-dir`) where it fits a returned file, and variants.log. A call returns 8 files: three variants at most.
# No deadline of its own: MINUTES at least 1.5 under the call's timeout_s / 60 (start-up, exports), or nothing returns.
set -euo pipefail
MINUTES=${1:?usage: device_codec_variants.sh MINUTES NAME=ARGS [NAME=ARGS ...]}
shift
(( $# >= 1 && $# <= 3 )) || { echo "error: give 1 to 3 variants NAME=ARGS (a call returns 8 files)" >&2; exit 2; }
BATCH=${BATCH:-32}
COMMON_ARGS=${COMMON_ARGS:-}  # train.codec options every variant shares, e.g. "--instrument-weights clarinet=3"
names=()
for spec in "$@"; do  # every spec checked before any trainer starts
    name=${spec%%=*}
    [[ "$spec" == *=* && "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "error: variant '$spec' is not NAME=ARGS" >&2; exit 2; }
    [[ " ${names[*]} " != *" $name "* ]] || { echo "error: variant name $name given twice" >&2; exit 2; }
    names+=("$name")
done
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
merge_pack_corpus /tmp/corpus
mkdir -p "$OUT"
LOG="$OUT/variants.log"
: > "$LOG"
workers=$(( ( $(nproc) - $# ) / $# ))
(( workers >= 1 )) || workers=1
pids=()
for spec in "$@"; do
    name=${spec%%=*}
    args=${spec#*=}
    rm -rf "/tmp/variant-$name"
    # shellcheck disable=SC2086  # the options are words
    "$PY" -m train.codec --corpus /tmp/corpus --run-dir "/tmp/variant-$name" --init .gpu/init/codec.pt \
        --device "$DEVICE" --batch "$BATCH" --minutes "$MINUTES" --save-every 60 --loader-workers "$workers" \
        $COMMON_ARGS $args > "/tmp/variant-$name.log" 2>&1 &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
for spec in "$@"; do
    name=${spec%%=*}
    { echo "== $name: ${spec#*=}"; tr '\r' '\n' < "/tmp/variant-$name.log" | { grep -v '^\s*$' || true; } | tail -n 25; } >> "$LOG"
    if [ -f "/tmp/variant-$name/last.pt" ]; then
        "$PY" -m train.codec --run-dir "/tmp/variant-$name" --export "$OUT/$name.pt" --with-disc >> "$LOG" 2>&1 || rc=$?
        if (( $(stat -c %s "/tmp/variant-$name/last.pt") < 15 * 2**20 )); then
            cp "/tmp/variant-$name/last.pt" "$OUT/$name.last.pt"
        fi
    fi
done
ls -l "$OUT" | tee -a "$LOG"
exit "$rc"
