#!/bin/bash
# The classic image pipeline, the peer for `ukitool image`: truncate + sgdisk + mkfs.vfat
# --offset + mcopy (uefi layout: the UKI as EFI/BOOT/BOOTX64.EFI on a FAT32 ESP).
set -euo pipefail
uki=$1 img=$2 size=$3
rm -f "$img"
truncate -s "$size" "$img"
sgdisk -q -n 1:1MiB:+512MiB -t 1:EF00 -c 1:EFI "$img" >/dev/null
mkfs.vfat -F 32 -n EFI --offset 2048 "$img" $((512 * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$img@@1M" ::/EFI ::/EFI/BOOT
mcopy -i "$img@@1M" "$uki" ::/EFI/BOOT/BOOTX64.EFI
