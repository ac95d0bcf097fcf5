#!/usr/bin/env bash
# Builds one libFuzzer target of Fuzz/ (with AddressSanitizer) and runs it on its corpus.
#
#   tools/fuzz.sh NAME [SECONDS]      # NAME: safetensors torch numpy inflate infer-request image cifar idx mat lists config
#   tools/fuzz.sh --list
#
# The corpus (Fuzz/.corpus/NAME, not committed) is seeded from the committed fixtures and
# malformed corpora, and grows as the fuzzer finds new coverage; crashes are written to
# Fuzz/.crashes/ (add each as a regression file to the malformed corpora, with a test).
# The last line printed is the run's summary: executions, seconds, coverage (edges) and crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(safetensors torch numpy inflate infer-request image cifar idx mat lists config)
if [ "${1:-}" = "--list" ] || [ -z "${1:-}" ]; then echo "${TARGETS[*]}"; exit 0; fi
NAME=$1
SECS=${2:-60}
[[ " ${TARGETS[*]} " == *" $NAME "* ]] || { echo "unknown fuzz target '$NAME' (targets: ${TARGETS[*]})" >&2; exit 2; }

build_log=$(mktemp)
if ! swift build --package-path Fuzz -c debug --product "fuzz-$NAME" \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld > "$build_log" 2>&1; then
  cat "$build_log" >&2; exit 1
fi
rm -f "$build_log"
BIN=Fuzz/.build/debug/fuzz-$NAME

CORPUS=Fuzz/.corpus/$NAME
mkdir -p "$CORPUS" Fuzz/.crashes
seed() { for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$CORPUS/seed-$(basename "$f")" 2>/dev/null || true; done; }
case $NAME in
  safetensors) seed Tests/SSFFormatsTests/Malformed/*.safetensors Tests/SSFFormatsTests/Checkpoints/*.safetensors ;;
  torch) seed Tests/SSFFormatsTests/Checkpoints/*.pth Tests/SSFFormatsTests/Checkpoints/*.pth.tar Tests/SSFFormatsTests/Checkpoints/*.bin ;;
  numpy) seed Tests/SSFFormatsTests/Checkpoints/*.npz ;;
  inflate) printf '\x01\x78\x9c\x4b\x4c\x4a\x06\x00\x02\x4d\x01\x27' > "$CORPUS/seed-zlib"
           printf '\x02\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x4b\x4c\x4a\x06\x00\xc2\x41\x24\x35\x03\x00\x00\x00' > "$CORPUS/seed-gzip" ;;
  infer-request)
    printf '\x00\x00\x00{"inputs":[{"name":"INPUT","datatype":"FP32","shape":[1,3,4,4],"data":[%s]}],"parameters":{"top_k":2}}' \
      "$(python3 -c 'print(",".join(["0.5"] * 48))')" > "$CORPUS/seed-json"
    printf '\x01\x50\x00{"inputs":[{"name":"IMAGE","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":8}}],"binary_data_output":true}  \x04\x00\x00\x00abcd' > "$CORPUS/seed-binary" ;;
  image) seed Tests/SSFDataTests/Fixtures/*.jpg Tests/SSFDataTests/Fixtures/*.png $(find Tests/SSFDataTests/Fixtures/datasets -name '*.jpg' -o -name '*.png' | head -20) ;;
  cifar) for f in $(find Tests/SSFDataTests/Fixtures -name 'test_batch*' | head -4); do
           if [[ $f == *.bin ]]; then { printf '\x01'; cat "$f"; } > "$CORPUS/seed-bin"; else { printf '\x00'; cat "$f"; } > "$CORPUS/seed-pickle"; fi
         done ;;
  idx) python3 - "$CORPUS/seed-idx" <<'PY'
import struct, sys
images = struct.pack(">IIII", 0x803, 2, 2, 2) + bytes(range(8))
labels = struct.pack(">II", 0x801, 2) + bytes([1, 7])
open(sys.argv[1], "wb").write(struct.pack("<H", len(images)) + images + labels)
PY
       ;;
  mat) seed $(find Tests -name '*.mat' | head -10) ;;
  lists) seed $(find Tests/SSFDataTests/Fixtures -name '*.txt' | head -20) ;;
  config) seed $(find Tests -name '*.yaml' | head -10)
          printf 'lr: 0.01\nepochs: 3\nmethod: ssf\nbatch_size: 8\n' > "$CORPUS/seed-config" ;;
esac

echo "fuzzing $NAME for $SECS s ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
log=Fuzz/.crashes/$NAME.log
status=0
# -detect_leaks=0: LeakSanitizer reports a buffer Foundation's Data(contentsOf:) allocates while
# reading a file (for every reader, the empty input included), not a leak of the parsers.
# Fork mode with crashes ignored: the run lasts its whole time and records every crash it meets.
ASAN_OPTIONS=detect_leaks=0 "$BIN" "$CORPUS" -max_total_time="$SECS" -print_final_stats=1 -detect_leaks=0 -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
  -max_len=65536 -artifact_prefix="Fuzz/.crashes/$NAME-" > "$log" 2>&1 || status=$?
execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
crashes=$( (ls Fuzz/.crashes/"$NAME"-* 2>/dev/null || true) | wc -l)
[ "$status" -eq 0 ] || tail -40 "$log"
echo "$NAME: ${execs:-?} executions in $SECS s, coverage ${cov:-?} edges, $crashes crash file(s) (log: $log)"
exit $status
