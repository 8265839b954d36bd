#!/bin/bash
# The classic chain for Talos's dual-boot metal image (1.11+, 4247 MiB), the peer for
# `ukitool image --layout talos`: what Talos 1.13+'s imager runs, on a file: truncate,
# sgdisk (Talos's names, types, GUIDs and the BIOS attribute), mkfs.vfat --invariant on
# a file + mcopy, mkfs.xfs -p (a protofile) on a file, grub-mkimage for core.img, dd
# (filesystems, boot.img, core.img into place, with Talos's blocklist patches).
# META (tag 0x11) has no command-line writer and is left out of this chain.
# Usage: classic_talos.sh UKI SYSTEMD_BOOT GRUB_I386_PC_DIR OUT.img
set -euo pipefail
uki=$1 sdboot=$2 grubdir=$3 img=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MiB=$((1 << 20))
# Kernel, initramfs, cmdline and VERSION_ID from the UKI.
objcopy -O binary --only-section=.linux "$uki" "$work/vmlinuz"
objcopy -O binary --only-section=.initrd "$uki" "$work/initramfs.xz"
objcopy -O binary --only-section=.cmdline "$uki" "$work/cmdline"
objcopy -O binary --only-section=.osrel "$uki" "$work/osrel"
ver=$(sed -n 's/^VERSION_ID=//p' "$work/osrel" | tr -d '"')
cmdline=$(tr -d '\0' < "$work/cmdline" | sed 's/[\\{}&$|;<>"]/\\&/g')

rm -f "$img"
truncate -s 4247M "$img"
sgdisk -o -U d92d45b3-cde9-8760-be9f-a2a71fac8d11 \
    -n 1:2048:+2101M -t 1:EF00 -c 1:EFI -u 1:bca5174b-0118-8a6a-af0b-2c6e1585acae \
    -n 2:0:+1M -t 2:EF02 -c 2:BIOS -u 2:a2a02ff5-d88d-8e6e-9c95-26b9b6c80bc3 -A 2:set:2 \
    -n 3:0:+2000M -t 3:8300 -c 3:BOOT -u 3:24c73076-4092-85dd-9d98-686a2dbf6d81 \
    -n 4:0:+1M -t 4:8300 -c 4:META -u 4:cf04f137-101e-8ec6-9627-fa3f51cdabb8 "$img" >/dev/null

# ESP: FAT32 on a file, filled by mtools, copied in.
truncate -s 2101M "$work/esp"
mkfs.vfat -F 32 -n EFI --invariant "$work/esp" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp" ::/EFI ::/EFI/boot ::/EFI/Linux ::/loader
mcopy -i "$work/esp" "$sdboot" ::/EFI/boot/BOOTX64.efi
mcopy -i "$work/esp" "$uki" "::/EFI/Linux/Talos-$ver.efi"
printf '# systemd-boot configuration\n\ntimeout 10\n' > "$work/loader.conf"
mcopy -i "$work/esp" "$work/loader.conf" ::/loader/loader.conf
dd if="$work/esp" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none

# BOOT: XFS from a protofile, on a file, copied in.
mkdir -p "$work/grub"
cat > "$work/grub/grub.cfg" <<CFG
set default="A - Talos $ver"

set timeout=3

insmod all_video

terminal_input console
terminal_output console

menuentry "A - Talos $ver" {
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz $cmdline
  initrd /A/initramfs.xz
}
menuentry "Reset Talos installation and return to maintenance mode" {
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz $cmdline talos.experimental.wipe=system:EPHEMERAL,STATE
  initrd /A/initramfs.xz
}
CFG
cat > "$work/proto" <<PROTO
/dev/null
0 0
d--755 0 0
A d--755 0 0
vmlinuz ---644 0 0 $work/vmlinuz
initramfs.xz ---644 0 0 $work/initramfs.xz
\$
grub d--700 0 0
grub.cfg ---600 0 0 $work/grub/grub.cfg
\$
\$
PROTO
truncate -s 2000M "$work/boot"
mkfs.xfs -q -f -n ftype=1 -L BOOT -m uuid=24c73076-4092-85dd-9d98-686a2dbf6d81 \
    -p "$work/proto" "$work/boot"
dd if="$work/boot" of="$img" bs=1M seek=$((4306944 * 512 / MiB)) conv=notrunc,sparse status=none

# BIOS: grub-mkimage's core.img at BIOS's first LBA, boot.img's code in the MBR, with
# Talos's patches (boot.img 0x5C = BIOS LBA, 0x66 = 90 90; core.img 0x1F4 = LBA + 1).
bios=4304896
grub-mkimage -O i386-pc -d "$grubdir" -p '(hd0,gpt3)/grub' -o "$work/core.img" \
    part_gpt ext2 fat xfs normal configfile linux boot search search_fs_uuid search_fs_file \
    ls cat echo test help reboot halt all_video biosdisk part_msdos
le64() { printf "$(printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\\x\8\\x\7\\x\6\\x\5\\x\4\\x\3\\x\2\\x\1/')"; }
cp "$grubdir/boot.img" "$work/boot.img"
le64 "$bios" | dd of="$work/boot.img" bs=1 seek=$((0x5c)) conv=notrunc status=none
printf '\x90\x90' | dd of="$work/boot.img" bs=1 seek=$((0x66)) conv=notrunc status=none
le64 $((bios + 1)) | dd of="$work/core.img" bs=1 seek=$((0x1f4)) conv=notrunc status=none
dd if="$work/core.img" of="$img" bs=512 seek="$bios" conv=notrunc status=none
dd if="$work/boot.img" of="$img" bs=446 count=1 conv=notrunc status=none
