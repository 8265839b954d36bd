#!/bin/bash
# The peer for `ukitool image -o x.raw.zst`: the same image streamed raw on stdout into
# the zstd CLI with one worker per core (its default level, 3), as people compress an
# image by hand. Arguments: OUT.zst, then ukitool's image arguments.
set -euo pipefail
out=$1
shift
"$@" -o - -q | zstd -T0 -q -f -o "$out"
