#!/bin/bash
# The classic objcopy UKI recipe (as in the systemd-stub man page), VMAs computed from the
# stub's section table: the peer for `ukitool build`.
set -euo pipefail
stub=$1 linux=$2 initrd=$3 osrel=$4 cmdline=$5 out=$6
# Plain POSIX awk (Debian's default is mawk, without strtonum): hex fields via printf.
align=$((0x$(objdump -p "$stub" | awk '/SectionAlignment/ {print $2}')))
end=0
while read -r size vma; do
    e=$((0x$vma + 0x$size))
    ((e > end)) && end=$e
done < <(objdump -h -w "$stub" | awk 'NR > 5 && $4 ~ /^[0-9a-f]+$/ {print $3, $4}')
args=()
vma=$(((end + align - 1) / align * align))
for pair in ".osrel:$osrel" ".cmdline:$cmdline" ".linux:$linux" ".initrd:$initrd"; do
    name=${pair%%:*} file=${pair#*:}
    args+=(--add-section "$name=$file" --change-section-vma "$name=$(printf 0x%x "$vma")")
    size=$(stat -c %s "$file")
    vma=$(((vma + size + align - 1) / align * align))
done
objcopy "${args[@]}" "$stub" "$out"
