#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each, one after another (they share the
# machine's cores with whatever else runs), and prints per target how long it ran, how many
# inputs it executed and whether it found anything. Exits 1 if any target crashed, hung or ran
# out of memory; its input is then in fuzz/artifacts/NAME/, to be run again with
# `cargo +nightly fuzz run NAME fuzz/artifacts/NAME/FILE`, fixed, and kept as a regression test
# (the file in fuzz/corpus/NAME/ and a named unit test next to the fixed code).
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (installed here when missing). Each target starts
# from its checked-in corpus (fuzz/corpus/NAME/, read only) plus what earlier runs found
# (fuzz/target/corpus/NAME/, not checked in). FUZZ_MERGE=1 afterwards minimises what was found
# (libFuzzer's -merge=1) and copies at most 20 of those inputs of up to 1 KiB, the largest
# first, into the checked-in corpus as found-HASH, so it stays a few hundred KB in all.
#
# The targets are built without a sanitizer by default (FUZZ_SANITIZER=none): the workspace
# forbids unsafe code, so AddressSanitizer would find little beyond what panics and the
# overflow checks (always on here) find, at twice the cost. FUZZ_SANITIZER=address turns it on.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
secs="$1"
shift
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
flags=(-s "${FUZZ_SANITIZER:-none}" --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo "+$toolchain" install cargo-fuzz --locked || exit 2
fi
# The fuzz workspace builds the same dependency versions as the main one.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

echo "fuzz.sh: building ${#targets[@]} targets (${flags[*]})"
(cd fuzz && cargo "+$toolchain" fuzz build "${flags[@]}") || exit 2

logs="$(mktemp -d)"
failed=0
summary=()
for t in "${targets[@]}"; do
  work="fuzz/target/corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  (cd fuzz && cargo "+$toolchain" fuzz run "${flags[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) >"$logs/$t.log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/$t.log" | tail -1 | awk '{print $2}')
  after=$(find "fuzz/artifacts/$t" -type f | wc -l)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed=1
    artifact=$(ls -t "fuzz/artifacts/$t" 2>/dev/null | head -1)
    line="$t: FOUND after ${took}s, ${execs:-?} runs: fuzz/artifacts/$t/${artifact:-?} (log $logs/$t.log)"
    grep -m1 -A3 "panicked at\|ERROR: libFuzzer" "$logs/$t.log" | sed 's/^/    /'
  else
    line="$t: ran ${took}s, ${execs:-?} runs, nothing found (corpus $corpus inputs)"
  fi
  echo "$line"
  summary+=("$line")
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    min="$logs/min-$t"
    mkdir -p "$min"
    (cd fuzz && cargo "+$toolchain" fuzz run "${flags[@]}" "$t" "$min" "target/corpus/$t" -- -merge=1) \
      >>"$logs/$t.log" 2>&1
    kept=0
    for f in $(ls -S "$min"); do
      [ "$(stat -c %s "$min/$f")" -le 1024 ] || continue
      [ -e "fuzz/corpus/$t/found-$f" ] && continue
      cp "$min/$f" "fuzz/corpus/$t/found-$f"
      kept=$((kept + 1))
      [ "$kept" -ge 20 ] && break
    done
    echo "    kept $kept new inputs in fuzz/corpus/$t/"
  fi
done

echo
echo "fuzz.sh: ${secs}s per target"
printf '  %s\n' "${summary[@]}"
exit "$failed"
