#!/usr/bin/env bash
# The long fuzz run (issue 9): make small seed corpora from the real fixtures, then run
# each cargo-fuzz target in turn, one job each, for a bounded time. Crashers land in
# fuzz/artifacts/<target>/; check each in as tests/regressions/<name> (regressions.rs).
#
#   fuzz/run.sh                       every target, FUZZ_SECONDS (default 300) each
#   FUZZ_SECONDS=3600 fuzz/run.sh inspect verify
#   FUZZ_RUNS=10000000 fuzz/run.sh gpt  stop after that many executions (or FUZZ_SECONDS)
#   FUZZ_SEEDS_ONLY=1 fuzz/run.sh     only (re)make the seed corpora
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The corpora
# (fuzz/corpus/, grown by libFuzzer) and fuzz/artifacts/ are never committed; the
# executions and times of each run are appended to fuzz/runs.log (not committed either)
# and summarised in docs/robustness.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fx="${UKITOOL_FIXTURES:-$root/tests/fixtures/out}"
secs="${FUZZ_SECONDS:-300}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/fuzz}"
all_targets=(inspect extract verify verify_anchors siglist measure build_uki gpt fat disk kernel xfs qcow2 vhd vmdk bmap)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

[[ -f "$fx/uki-signed.efi" ]] || bash "$root/tests/fixtures/generate.sh" "$fx"
cargo build --quiet -p ukitool --manifest-path "$root/Cargo.toml"
ukitool="$CARGO_TARGET_DIR/debug/ukitool"

# Seeds: small (<= ~1 MiB) and remade each run, so nothing binary is checked in.
seeds() {
    local w c="$here/corpus"
    w=$(mktemp -d)
    trap 'rm -rf "$w"' RETURN
    mkdir -p "$c"/{pe,signed,siglist,gpt,fat,disk,build,xfs}
    # A tiny UKI (4 KiB of the real kernel's setup header, a small initrd, a profile and
    # a .pcrsig), unsigned and signed; the stub signed by sbsign and twice (a nested
    # signature, osslsigncode -nest).
    head -c 4096 "$fx/vmlinuz" >"$w/linux"
    head -c 2048 "$fx/initrd.cpio.gz" >"$w/initrd"
    printf 'foo=bar quiet\n' >"$w/cmdline"
    "$ukitool" build --stub "$fx/linuxx64.efi.stub" --linux "$w/linux" --initrd "$w/initrd" \
        --cmdline @"$w/cmdline" --os-release @"$fx/os-release" --uname 6.1.0-test \
        --splash "$fx/splash.bmp" --pcr-key "$fx/snakeoil.key" \
        --profile 'ID=one' --section .cmdline:"$w/cmdline" --profile 'ID=two' \
        --timestamp 1 -o "$c/pe/tiny-uki.efi"
    "$ukitool" build --stub "$fx/linuxx64.efi.stub" --linux "$w/linux" --initrd "$w/initrd" \
        --cmdline 'x' --timestamp 1 --key "$fx/snakeoil.key" --cert "$fx/snakeoil.pem" \
        -o "$c/signed/tiny-uki-signed.efi"
    sbsign --key "$fx/snakeoil.key" --cert "$fx/snakeoil.pem" --output "$c/signed/stub-sbsign.efi" \
        "$fx/linuxx64.efi.stub" >/dev/null 2>&1
    rm -f "$c/signed/stub-nested.efi"
    osslsigncode sign -key "$fx/other.key" -certs "$fx/other.pem" -nest -h sha384 \
        -in "$c/signed/stub-sbsign.efi" -out "$c/signed/stub-nested.efi" >/dev/null
    cp "$fx/addon.efi" "$c/pe/addon.efi"
    cp "$fx/linuxx64.efi.stub" "$c/pe/stub.efi"
    cp "$c/signed/"*.efi "$c/pe/"
    # EFI signature lists: an X.509 list (snakeoil) and a SHA-256 list.
    python3 - "$fx/snakeoil.pem" "$c/siglist" <<'PY'
import base64, hashlib, struct, sys, uuid
pem = open(sys.argv[1]).read()
der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))
owner = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b").bytes_le
def esl(ty, entries):
    size = 16 + len(entries[0])
    body = b"".join(owner + e for e in entries)
    return uuid.UUID(ty).bytes_le + struct.pack("<III", 28 + len(body), 0, size) + body
x509 = esl("a5c059a1-94e4-4aa7-87b5-ab155c2bf072", [der])
sha = esl("c1c41626-504c-4092-aca9-41f936934328", [hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()])
open(sys.argv[2] + "/x509.esl", "wb").write(x509)
open(sys.argv[2] + "/sha256.esl", "wb").write(sha)
open(sys.argv[2] + "/both.esl", "wb").write(x509 + sha)
PY
    # A 128 KiB FAT12 volume with a directory tree and long names; a 64 KiB GPT disk;
    # a 1 MiB GPT disk whose ESP holds the FAT volume.
    rm -f "$w/fat.img"
    mkfs.vfat -C -n SEED -i 0badcafe "$w/fat.img" 128 >/dev/null
    mmd -i "$w/fat.img" ::/EFI ::/EFI/BOOT ::/loader "::/A long directory name"
    mcopy -i "$w/fat.img" "$w/linux" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$w/fat.img" "$w/cmdline" "::/A long directory name/a file with a long name.conf"
    cp "$w/fat.img" "$c/fat/fat12.img"
    rm -f "$c/gpt/small.img"
    truncate -s 64K "$c/gpt/small.img"
    sgdisk -a 1 --new=1:34:60 --typecode=1:ef00 --change-name=1:ESP \
        --new=2:61:90 "$c/gpt/small.img" >/dev/null
    truncate -s 1M "$w/disk.img"
    sgdisk -a 8 --new=1:40:+128K --typecode=1:ef00 --change-name=1:ESP "$w/disk.img" >/dev/null
    dd if="$w/fat.img" of="$w/disk.img" bs=512 seek=40 conv=notrunc status=none
    cp "$w/disk.img" "$c/disk/esp.img"
    cp "$w/disk.img" "$c/gpt/esp.img"
    # The tiny set (the default corpus of long runs): a minimal PE32+ stub made by
    # tests/fixtures/pe.py, a UKI ukitool builds on it (a profile, a .pcrsig), that
    # signed by sbsign and nested by osslsigncode; a 48 KiB FAT12 volume holding the
    # signed one as BOOTX64.EFI, in an 80 KiB GPT disk with a 4-entry table. 8-20 KiB
    # per file instead of 80-1000 KiB: 10-50x the executions per second.
    mkdir -p "$c"/{tiny-pe,tiny-signed,tiny-gpt,tiny-fat,tiny-disk}
    local sbat=$'sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n'
    python3 "$root/tests/fixtures/pe.py" tiny "$w/stub.efi" .text=@$'\xc3' .sbat=@"$sbat" \
        .sdmagic=@'#### LoaderInfo: systemd-stub 252 ####'
    head -c 64 "$fx/initrd.cpio.gz" >"$w/initrd64"
    "$ukitool" build --stub "$w/stub.efi" --linux "$w/linux" --initrd "$w/initrd64" \
        --cmdline @"$w/cmdline" --os-release @"$fx/os-release" --uname 6.1.0-test \
        --pcr-key "$fx/snakeoil.key" --profile 'ID=one' --section .cmdline:"$w/cmdline" \
        --profile 'ID=two' --timestamp 1 -o "$c/tiny-pe/uki.efi"
    cp "$w/stub.efi" "$c/tiny-pe/stub.efi"
    sbsign --key "$fx/snakeoil.key" --cert "$fx/snakeoil.pem" --output "$c/tiny-signed/signed.efi" \
        "$c/tiny-pe/uki.efi" >/dev/null 2>&1
    rm -f "$c/tiny-signed/nested.efi"
    osslsigncode sign -key "$fx/other.key" -certs "$fx/other.pem" -nest -h sha384 \
        -in "$c/tiny-signed/signed.efi" -out "$c/tiny-signed/nested.efi" >/dev/null
    cp "$c/tiny-signed/"*.efi "$c/tiny-pe/"
    rm -f "$w/tiny-fat.img"
    mkfs.vfat -C -n SEED -i 0badcafe -s 1 -r 16 "$w/tiny-fat.img" 48 >/dev/null
    mmd -i "$w/tiny-fat.img" ::/EFI ::/EFI/BOOT "::/A long directory name"
    mcopy -i "$w/tiny-fat.img" "$c/tiny-signed/signed.efi" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$w/tiny-fat.img" "$w/cmdline" "::/A long directory name/a file with a long name.conf"
    cp "$w/tiny-fat.img" "$c/tiny-fat/fat12.img"
    truncate -s 80K "$w/tiny-disk.img"
    sgdisk --resize-table=4 "$w/tiny-disk.img" >/dev/null
    sgdisk -a 1 --new=1:3:+48K --typecode=1:ef00 --change-name=1:ESP \
        -U 6e1c7c0b-1f3a-4c5e-9d2b-3a4f5e6d7c8b -u 1:0b4f6a2e-7d1c-4e3b-8a9f-1c2d3e4f5a6b \
        "$w/tiny-disk.img" >/dev/null
    dd if="$w/tiny-fat.img" of="$w/tiny-disk.img" bs=512 seek=3 conv=notrunc status=none
    cp "$w/tiny-disk.img" "$c/tiny-disk/esp.img"
    cp "$w/tiny-disk.img" "$c/tiny-gpt/esp.img"
    # Kernels: the x86 setup header, a small arm64 Image with its banner, and that
    # Image as the gzip and the zstd payload of an EFI zboot header.
    mkdir -p "$c/kernel"
    head -c 4096 "$fx/vmlinuz" >"$c/kernel/x86"
    python3 - "$c/kernel" <<'PY'
import gzip, struct, subprocess, sys
out = sys.argv[1]
image = bytearray(b"MZ" + bytes(62))
image[0x10:0x18] = struct.pack("<Q", 0x20000)
image[0x38:0x3c] = b"ARMd"
image += bytes(range(256)) * 8 + b"Linux version 6.12.0-fuzz (f@z) #1 SMP\n" + bytes(64)
open(out + "/image", "wb").write(image)
for name, payload in [("gzip", gzip.compress(bytes(image), mtime=0)),
                      ("zstd", subprocess.run(["zstd", "-q", "-c", "-19"], input=bytes(image),
                                              capture_output=True, check=True).stdout)]:
    head = bytearray(b"MZ\0\0zimg" + bytes(0x38))
    struct.pack_into("<II", head, 8, 0x40, len(payload))
    head[0x18:0x18 + len(name)] = name.encode()
    head[0x38:0x3c] = bytes([0xcd, 0x23, 0x82, 0x81])
    open(out + "/zboot-" + name, "wb").write(bytes(head[:0x40]) + payload)
PY
    # Build inputs are raw bytes cut into fields by the target.
    cp "$w/cmdline" "$w/linux" "$c/build/"
    head -c 512 "$fx/os-release" >"$c/build/osrel"
    # XFS volumes (the xfs target reads a bare volume), cut to their first 1 MiB (or
    # 128 KiB, tiny): the AG 0 headers, the root inode chunk, directory blocks and small
    # files; what lies past the cut reads as a listed problem. One from mkfs.xfs with
    # its defaults, filled from a protofile (TEST_DIR, TEST_DEV and QA_CHECK_FS, as
    # under fstests, let it make a volume under 300 MB), with a shortform and a
    # 40-entry block directory and a symlink; one from ukitool (an image's BOOT).
    mkdir -p "$c"/{xfs,tiny-xfs} "$w/xsrc/EFI/BOOT" "$w/xsrc/grub"
    cp "$w/linux" "$w/xsrc/EFI/BOOT/BOOTX64.EFI"
    {
        printf '/dev/null\n0 0\nd--755 0 0\n'
        printf 'EFI d--755 0 0\nBOOT d--755 0 0\nBOOTX64.EFI ---644 0 0 %s\n$\n$\n' "$w/linux"
        printf 'grub d--755 0 0\n'
        for i in $(seq 10 49); do
            printf 'entry-%s.cfg ---644 0 0 %s\n' "$i" "$w/cmdline"
            cp "$w/cmdline" "$w/xsrc/grub/entry-$i.cfg"
        done
        printf '$\ncurrent l--777 0 0 EFI/BOOT/BOOTX64.EFI\n$\n'
    } >"$w/xfs.proto"
    truncate -s 32M "$w/mkfs.xfs"
    TEST_DIR="$w" TEST_DEV="$w/mkfs.xfs" QA_CHECK_FS=1 \
        mkfs.xfs -q -f -L SEED -p "$w/xfs.proto" "$w/mkfs.xfs"
    head -c 1M "$w/mkfs.xfs" >"$c/xfs/mkfs.xfs"
    head -c 128K "$w/mkfs.xfs" >"$c/tiny-xfs/mkfs.xfs"
    "$ukitool" image -q --uki "$c/tiny-pe/uki.efi" --timestamp 1 --esp-size 34M \
        --add-partition BOOT:64M:linux:xfs --add-file-to BOOT:"$w/xsrc":/ -o "$w/xfs-disk.img" >/dev/null
    local boot
    boot=$("$ukitool" inspect --json "$w/xfs-disk.img" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["xfs_volumes"][0]["offset"])')
    dd if="$w/xfs-disk.img" of="$c/xfs/ukitool.xfs" bs=64K iflag=skip_bytes skip="$boot" \
        count=16 status=none
    head -c 128K "$c/xfs/ukitool.xfs" >"$c/tiny-xfs/ukitool.xfs"
    # VM images and a bmap of the tiny GPT disk, as qemu-img and bmaptool write them
    # (issue 17): qcow2 v3 plain and compressed, v2; VHD dynamic and fixed; VMDK
    # monolithicSparse and streamOptimized. 64 KiB clusters/grains shrunk to 4-64 KiB.
    mkdir -p "$c"/{qcow2,vhd,vmdk,bmap}
    local disk="$w/tiny-disk.img"
    qemu-img convert -O qcow2 -o cluster_size=4096 "$disk" "$c/qcow2/v3.qcow2"
    qemu-img convert -c -O qcow2 -o cluster_size=4096 "$disk" "$c/qcow2/v3-compressed.qcow2"
    qemu-img convert -O qcow2 -o compat=0.10,cluster_size=4096 "$disk" "$c/qcow2/v2.qcow2"
    qemu-img convert -O vpc "$disk" "$c/vhd/dynamic.vhd"
    qemu-img convert -O vpc -o subformat=fixed "$disk" "$c/vhd/fixed.vhd"
    qemu-img convert -O vmdk "$disk" "$c/vmdk/sparse.vmdk"
    qemu-img convert -O vmdk -o subformat=streamOptimized "$disk" "$c/vmdk/stream.vmdk"
    cp --sparse=always "$disk" "$w/bmap.img"
    fallocate --dig-holes "$w/bmap.img"
    bmaptool -q create -o "$c/bmap/tiny.bmap" "$w/bmap.img"
    # For the disk target: a GPT disk whose partition 1 holds the first 90 KiB of that
    # volume (superblock, AG 0 headers, the root inode chunk), 124 KiB in all.
    rm -f "$w/xfs-tiny-disk.img"
    truncate -s $(((34 + 180 + 33) * 512)) "$w/xfs-tiny-disk.img"
    sgdisk -a 1 --new=1:34:213 --typecode=1:8300 --change-name=1:BOOT \
        "$w/xfs-tiny-disk.img" >/dev/null
    dd if="$c/xfs/ukitool.xfs" of="$w/xfs-tiny-disk.img" bs=512 seek=34 count=180 \
        conv=notrunc status=none
    cp "$w/xfs-tiny-disk.img" "$c/tiny-disk/xfs.img"
}

echo "fuzz: seeds"
seeds
[[ -z "${FUZZ_SEEDS_ONLY:-}" ]] || exit 0

# FUZZ_BIG=1: the real-size seeds (the Debian stub signed, 1 MiB disks) and their own
# corpora; by default the tiny set, with inputs capped at 32 KiB (128 KiB for disks).
big="${FUZZ_BIG:-}"
corpus_of() {
    local tiny=tiny-
    [[ -z "$big" ]] || tiny=
    case "$1" in
        inspect | extract | measure) echo "${tiny}pe" ;;
        verify | verify_anchors) echo "${tiny}signed" ;;
        gpt | fat | disk | xfs) echo "$tiny$1" ;;
        siglist) echo siglist ;;
        qcow2 | vhd | vmdk | bmap) echo "$1" ;;
        build_uki) echo build ;;
        kernel) echo kernel ;;
    esac
}
max_len_of() {
    if [[ -n "$big" ]]; then
        echo 1100000
    else
        case "$1" in
            gpt | fat | disk | xfs | qcow2 | vhd | vmdk) echo 131072 ;;
            *) echo 32768 ;;
        esac
    fi
}

log="$here/runs.log"
cd "$here"
for t in "${targets[@]}"; do
    src="$here/corpus/$(corpus_of "$t")"
    work="$here/corpus/run-$t"
    [[ -n "$big" ]] || work="$here/corpus/tiny-run-$t"
    mkdir -p "$work" "$here/artifacts/$t"
    echo "fuzz: $t for ${secs}s (seeds $src)"
    out=$(mktemp)
    # One in-process job (no -jobs: with it libFuzzer forks a worker that logs to
    # fuzz-N.log); the machine is shared. -rss_limit_mb: a leak or a header-sized
    # allocation fails the run as a crash; -timeout: a hang (one input > 10 s) too.
    # Debug assertions make every unchecked overflow a crash. FUZZ_SANITIZER=none
    # trades AddressSanitizer (little to find in a #![forbid(unsafe_code)] core, but
    # the dependencies have unsafe) for 2-3x the executions.
    rc=0
    cargo +nightly fuzz run --release --debug-assertions -s "${FUZZ_SANITIZER:-address}" "$t" "$work" "$src" -- \
        -max_total_time="$secs" -runs="${FUZZ_RUNS:--1}" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$(max_len_of "$t")" -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$t/" 2>"$out" || rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' || echo '?')
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$out" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$secs")
    printf '%s %s runs=%s seconds=%s exit=%s seeds=%s sanitizer=%s commit=%s\n' "$(date -u +%FT%TZ)" "$t" "$runs" \
        "$took" "$rc" "$(corpus_of "$t")" "${FUZZ_SANITIZER:-address}" \
        "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')" | tee -a "$log"
    if [[ $rc -ne 0 ]]; then
        tail -40 "$out"
        echo "fuzz: $t failed; crasher in fuzz/artifacts/$t/" >&2
    fi
    rm -f "$out"
done
