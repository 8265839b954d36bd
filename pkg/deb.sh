#!/bin/bash
# Package a built ukitool binary as dist/ukitool_<version>_amd64.deb.
#
#   pkg/deb.sh BINARY OUT_DIR      (SOURCE_DATE_EPOCH must be set)
#
# Made with dpkg-dev's own tools (dpkg-shlibdeps computes Depends from the binary,
# dpkg-gencontrol writes the control file, dpkg-deb builds) rather than cargo-deb: they
# come with Debian, so CI does not compile a packaging tool first (docs/ship.md).
# Reproducible: every date is SOURCE_DATE_EPOCH (file mtimes, the changelog, the man
# pages' date, which the binary took from it at build time, dpkg-deb's ar members),
# gzip -n stores no name or time, and dpkg-deb sorts the files.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SOURCE_DATE_EPOCH:?pkg/deb.sh: set SOURCE_DATE_EPOCH}"
bin=$(realpath "$1")
out=$(realpath -m "$2")
version=$("$bin" -V | cut -d' ' -f2)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/debian/ukitool
man1=$root/usr/share/man/man1
doc=$root/usr/share/doc/ukitool
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$man1" "$doc" \
    "$root/usr/share/bash-completion/completions" \
    "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"

install -m0755 "$bin" "$root/usr/bin/ukitool"
"$bin" man-pages "$work/man"
for page in "$work"/man/*.1; do
    gzip -9n <"$page" >"$man1/$(basename "$page").gz"
done
"$bin" completions bash >"$root/usr/share/bash-completion/completions/ukitool"
"$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_ukitool"
"$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/ukitool.fish"

cp pkg/debian/control "$work/debian/control"
cp pkg/debian/copyright "$doc/copyright"
maintainer=$(sed -n 's/^Maintainer: //p' pkg/debian/control)
cat >"$work/debian/changelog" <<CHANGELOG
ukitool ($version) unstable; urgency=medium

  * Release $version; the changes are in the project's git history.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG
gzip -9n <"$work/debian/changelog" >"$doc/changelog.gz"

find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path '*/usr/bin/*' -exec chmod 0644 {} +
(
    cd "$work"
    dpkg-shlibdeps -Tdebian/ukitool.substvars debian/ukitool/usr/bin/ukitool
    dpkg-gencontrol -pukitool -Tdebian/ukitool.substvars -Pdebian/ukitool
    cd debian/ukitool
    find usr -type f | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums
)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/ukitool_${version}_amd64.deb" >/dev/null
echo "deb.sh: $out/ukitool_${version}_amd64.deb"
