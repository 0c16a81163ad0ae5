#!/usr/bin/env bash
# Every tracked C++ source is laid out as .clang-format says (clang-format 14, Debian's
# clang-format-14). Prints the files that are not and how to fix them; exits 1 then.
#
#   tests/lint/check_format.sh [--root DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ "${1:-}" == "--root" ]] && root="$2"
cd "$root"
fmt="$(command -v clang-format-14 || command -v clang-format || true)"
if [[ -z "$fmt" ]]; then
  echo "check_format: clang-format-14 is not installed (tests/deps.sh installs it)" >&2
  exit 1
fi
bad=()
while IFS= read -r -d '' f; do
  "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files -z -- '*.cpp' '*.h' 2>/dev/null || find agent collectors exporters rules tests \( -name '*.cpp' -o -name '*.h' \) -print0)
if [[ ${#bad[@]} -gt 0 ]]; then
  printf 'check_format: %d file(s) differ from .clang-format:\n' "${#bad[@]}" >&2
  printf '  %s\n' "${bad[@]}" >&2
  printf 'fix: %s -i %s\n' "$(basename "$fmt")" "${bad[*]}" >&2
  exit 1
fi
echo "check_format: all sources formatted"
