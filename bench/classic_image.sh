#!/bin/bash
# The classic image pipeline, the peer for `ukitool image`: truncate + sgdisk + mkfs.vfat
# --offset + mcopy (uefi layout: the UKI as EFI/BOOT/BOOTX64.EFI on a 512 MiB FAT32 ESP
# at 1 MiB, as `ukitool image --esp-size 512M` makes it).
set -euo pipefail
uki=$1 img=$2 size=$3
rm -f "$img"
truncate -s "$size" "$img"
sgdisk -o -n 1:2048:+512M -t 1:EF00 -c 1:EFI "$img" >/dev/null
# -s 8: 4 KiB clusters whatever the disk size. Without it mkfs.vfat sizes clusters from
# the whole file (32 KiB on 64 GiB), which leaves a 512 MiB FAT32 with too few clusters
# for mtools to accept.
mkfs.vfat -F 32 -s 8 -n EFI --offset 2048 "$img" $((512 * 1024)) >/dev/null 2>&1
export MTOOLS_SKIP_CHECK=1
mmd -i "$img@@1M" ::/EFI ::/EFI/BOOT
mcopy -i "$img@@1M" "$uki" ::/EFI/BOOT/BOOTX64.EFI
