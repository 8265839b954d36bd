#!/bin/bash
# The peer of `ukitool image --add-partition BOOT:SIZE:linux:xfs --add-file-to ...` in
# bench/run.py's xfs row: a SIZE-byte file formatted and filled by mkfs.xfs from a
# protofile, as Talos makes its BOOT partition (mkfs.xfs -n ftype=1 -L BOOT -p).
#   bench/xfs_mkfs.sh PROTOFILE OUT SIZE
set -euo pipefail
rm -f "$2"
truncate -s "$3" "$2"
mkfs.xfs -q -f -n ftype=1 -L BOOT -p "$1" "$2"
