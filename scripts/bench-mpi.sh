#!/usr/bin/env bash
# Times R = 1 and R = 2 ranks (one BLAS thread per rank) for `bwanalyze cka --pool tokens`, `probe`
# and `report` on a generated activation file, and for `bwtrain bench`; prints wall seconds per run.
# Measure on an idle machine: on a loaded one the wall time follows the load.
#
#   bash scripts/bench-mpi.sh                          # or: make bench-mpi
#   CLIPS=1024 TOKENS=128 FEATURES=384 LAYERS=12 RANKS="1 2 4" bash scripts/bench-mpi.sh
#
# Settings (environment): CLIPS, TOKENS, FEATURES, LAYERS (the generated file, float32; the default
# 512 x 64 x 256 x 13 depths is 436 MB), RANKS (default "1 2"), DIR (folder for the file, default a
# temporary one, removed after), REPORT_ARGS (default "--resamples 200"), TRAIN_ARGS (bwtrain bench
# options, default "--preset default --timed-steps 5"), MPIRUN_ARGS (extra mpirun options).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-512} TOKENS=${TOKENS:-64} FEATURES=${FEATURES:-256} LAYERS=${LAYERS:-12}
RANKS=${RANKS:-1 2}
REPORT_ARGS=${REPORT_ARGS:---resamples 200}
TRAIN_ARGS=${TRAIN_ARGS:---preset default --timed-steps 5}
swift build -c release --traits MPI --scratch-path .build/mpi --product bwanalyze
swift build -c release --traits MPI --scratch-path .build/mpi --product bwtrain
bin=$PWD/.build/mpi/release
work=${DIR:-$(mktemp -d)}
[ -n "${DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runs"
file="$work/runs/bench.h5"
[ -f "$file" ] || "$bin/bwanalyze" synth --out "$file" --clips "$CLIPS" --tokens "$TOKENS" --features "$FEATURES" --layers "$LAYERS" --quiet
# Root may start Open MPI jobs only when it says so; --oversubscribe lets R exceed the cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
launch() { local r=$1; shift; mpirun -n "$r" --oversubscribe ${MPIRUN_ARGS:-} "$@"; }
seconds() {  # seconds of one command; its output discarded, its errors shown if it fails
    local start end
    start=$(date +%s.%N)
    if ! "$@" > /dev/null 2> "$work/stderr"; then cat "$work/stderr" >&2; echo failed; return; fi
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
echo "file: $CLIPS clips x $TOKENS tokens x $FEATURES features x $((LAYERS + 1)) depths (float32), $(du -h "$file" | cut -f1)"
printf "%-28s" "seconds"; for r in $RANKS; do printf "%10s" "R=$r"; done; echo
row() {
    local label=$1; shift
    printf "%-28s" "$label"
    for r in $RANKS; do
        rm -rf "$work/report"
        printf "%10s" "$(seconds launch "$r" "$@" --threads 1)"
    done
    echo
}
row "cka --pool tokens" "$bin/bwanalyze" cka "$file" --pool tokens --depth layers --quiet
row "probe" "$bin/bwanalyze" probe "$file" --depth layers --quiet
row "report" "$bin/bwanalyze" report "$work/runs" --out "$work/report" $REPORT_ARGS --quiet
row "bwtrain bench" "$bin/bwtrain" bench $TRAIN_ARGS
# bwtrain bench's own figures (clips/s per regime, the job's sgemm rate), per R:
for r in $RANKS; do
    echo "--- bwtrain bench, R=$r:"
    launch "$r" "$bin/bwtrain" bench $TRAIN_ARGS --threads 1 2>/dev/null
done
