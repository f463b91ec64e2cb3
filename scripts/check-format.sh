#!/usr/bin/env bash
# Check (default) or apply (--fix) .clang-format on every C++ file in the repo.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then install_packages clang-format-14; cf=$(command -v clang-format-14); fi
cd "$root"
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.hpp' '*.cpp' '*.hpp.in' | grep -v '^tests/data/')
if [ "${1:-}" = "--fix" ]; then
  "$cf" -i "${files[@]}"; log "formatted ${#files[@]} files with $("$cf" --version)"
else
  "$cf" --dry-run --Werror "${files[@]}" || die "formatting differs from .clang-format; run scripts/check-format.sh --fix"
  log "format ok: ${#files[@]} files ($("$cf" --version))"
fi
