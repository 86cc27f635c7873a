#!/bin/sh
# Fails, naming the files, when a tracked C++ file differs from what
# clang-format makes of it with the project's .clang-format.
# Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -eu
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format is not installed (scripts/install-test-deps.sh)" >&2
  exit 1
fi
bad=$(git ls-files '*.cc' '*.h' | xargs clang-format --dry-run 2>&1 | grep -o '^[^:]*:[0-9]*:[0-9]*: warning' | cut -d: -f1 | sort -u)
if [ -n "$bad" ]; then
  echo "check-format: these files are not clang-formatted:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check-format: $(git ls-files '*.cc' '*.h' | wc -l) files clang-formatted"
