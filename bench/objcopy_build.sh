#!/bin/bash
# The classic objcopy UKI recipe (as in the systemd-stub man page), VMAs computed from the
# stub's section table: the peer for `ukitool build`.
set -euo pipefail
stub=$1 linux=$2 initrd=$3 osrel=$4 cmdline=$5 out=$6
align=$(objdump -p "$stub" | awk '/SectionAlignment/ {print strtonum("0x"$2)}')
end=$(objdump -h "$stub" -w | awk 'NR>5 && $4 ~ /^[0-9a-f]+$/ {e=strtonum("0x"$4)+strtonum("0x"$3); if (e>m) m=e} END {print m}')
args=()
vma=$(( (end + align - 1) / align * align ))
for pair in ".osrel:$osrel" ".cmdline:$cmdline" ".linux:$linux" ".initrd:$initrd"; do
    name=${pair%%:*} file=${pair#*:}
    args+=(--add-section "$name=$file" --change-section-vma "$name=$(printf 0x%x "$vma")")
    size=$(stat -c %s "$file")
    vma=$(( (vma + size + align - 1) / align * align ))
done
objcopy "${args[@]}" "$stub" "$out"
