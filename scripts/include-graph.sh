#!/usr/bin/env bash
# Folder-level include graph of include/lensing: prints one "from -> to" line
# per pair of folders where a header of `from` includes a header of `to`
# (with the number of such includes), and exits non-zero if the folders
# include each other in a cycle (tsort reports loops).  The umbrella header
# lensing.hpp is left out: it includes everything and nothing includes it.
# Run by ctest (label "layering").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/include/lensing"

edges=$(grep -rHo --include='*.hpp' '^[[:space:]]*#[[:space:]]*include[[:space:]]*<lensing/[a-z_0-9]*/' -- */ |
  sed -E 's#^([^/]+)/[^:]*:.*<lensing/([^/]+)/$#\1 \2#' |
  awk '$1 != $2' | sort | uniq -c | awk '{print $2, $3, $1}')

echo "include graph of include/lensing (folder -> folder it includes: number of #includes)"
if [ -n "$edges" ]; then
  echo "$edges" | awk '{printf "  %-12s -> %-12s %s\n", $1, $2, $3}'
fi

# Every folder is a node (tsort also sees folders with no edge to another).
nodes=$(ls -d */ | tr -d /)
loops=$( { echo "$edges" | awk 'NF {print $1, $2}'; for n in $nodes; do echo "$n $n"; done; } | tsort 2>&1 >/dev/null || true)
if [ -n "$loops" ]; then
  echo "include-graph: cycle between folders:" >&2
  echo "$loops" >&2
  exit 1
fi
order=$( { echo "$edges" | awk 'NF {print $2, $1}'; for n in $nodes; do echo "$n $n"; done; } | tsort | tr '\n' ' ')
echo "no cycle between folders; lowest first: $order"
