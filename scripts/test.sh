#!/usr/bin/env bash
# Installs and builds Berth (scripts/install.sh), then runs the whole test suite with node's
# test runner over the compiled tests. Extra arguments narrow the run to files whose path
# contains one of them: `scripts/test.sh differential crash`.
#
# Tests drive real runc, overlayfs and dockerd, and many of them start a Berth of their own:
# files run one at a time by default (BERTH_TEST_CONCURRENCY overrides) so two cores stay
# enough and timings stay honest.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/install.sh

# Stale outputs of deleted or renamed tests would otherwise keep running from dist/.
mapfile -t files < <(find dist/test -name '*.test.js' -type f 2>/dev/null | while read -r f; do
  src="${f#dist/}"
  [[ -f ${src%.js}.ts ]] && echo "$f"
done | sort)

if (($# > 0)); then
  selected=()
  for f in "${files[@]}"; do
    for pattern in "$@"; do
      if [[ $f == *"$pattern"* ]]; then
        selected+=("$f")
        break
      fi
    done
  done
  files=("${selected[@]}")
fi

if ((${#files[@]} == 0)); then
  echo "test.sh: no test files found under dist/test" >&2
  exit 1
fi

echo "test.sh: ${#files[@]} test files"

# The leak check compares the host after the suite with the host before it. Set
# BERTH_SKIP_LEAK_CHECK=1 only when other work on the machine creates and removes host
# resources at the same time (it would show up here as someone else's leak).
leak_check=${BERTH_SKIP_LEAK_CHECK:-0}
snapshot=$(mktemp /tmp/berth-host-snapshot.XXXXXX)
trap 'rm -f "$snapshot"' EXIT
[[ $leak_check == 1 ]] || node dist/test/support/host-leaks.js snapshot "$snapshot"

# A hung test (or file) fails after 5 minutes instead of eating the 90-minute CI run.
status=0
node --test --test-concurrency="${BERTH_TEST_CONCURRENCY:-1}" --test-timeout="${BERTH_TEST_TIMEOUT_MS:-300000}" \
  --test-reporter=spec "${files[@]}" || status=$?

if [[ $leak_check != 1 ]]; then
  node dist/test/support/host-leaks.js check "$snapshot" || status=1
fi
exit "$status"
