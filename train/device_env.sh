# Sourced by the device scripts (train/device_*.sh): the lent machine's environment from the pack of
# `python -m train.pack make`, a check that it imports, and the corpus parts joined into one.
OUT=${OUT:-out/device}
SITE=${SITE:-$PWD/.gpu/site}  # the pack's packages, built for the device's Python 3.12
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TQDM_MININTERVAL=20  # a progress line every 20 s, not a screenful of them
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}  # the device image's python3 holds PyTorch
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
"$PY" -c "import soundfile, soxr, encodec, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

merge_pack_corpus() {  # DEST: one corpus of every part the machine holds (.gpu and any .gpu-K carried before)
    "$PY" -m train.pack merge "$1" .gpu/corpus $(ls -d .gpu-*/corpus 2>/dev/null || true)
}
