#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/install-deps.sh where nothing is installed yet, the case the
# README's two commands start from (NATIVE_TESTS; prints TAP).  Each case
# runs in a private mount namespace (unshare -m, or -rm when not root) with
# tmpfs over /usr/src, /boot and /lib/modules, so no kernel headers or
# images are seen,
# and stub dpkg-query, apt-get and apt-cache first on PATH: dpkg-query
# reports every package as not installed (or, in one case, all installed),
# apt-get and apt-cache log their calls and fail.  Last, make module on
# such a machine must say what to install.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
DEPS=$TOP/scripts/install-deps.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/install-deps-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

. "$TOP/tests/tap.sh"
tap_plan 17

if [ "$(id -u)" -eq 0 ]; then unshare=(unshare -m); else unshare=(unshare -rm); fi
if ! "${unshare[@]}" true 2>"$tmp/unshare.err"; then
	echo "Bail out! cannot make a mount namespace (${unshare[*]}): $(cat "$tmp/unshare.err")"
	exit 1
fi

# Stubs: dpkg-query answers from $STUB_INSTALLED ("none" or "all").
mkdir -p "$tmp/bin"
cat >"$tmp/bin/dpkg-query" <<'STUB'
#!/bin/sh
[ "$STUB_INSTALLED" = all ] || exit 1
printf 'install ok installed'
STUB
for tool in apt-get apt-cache; do
	printf '#!/bin/sh\necho "%s $*" >>"$STUB_LOG"\nexit 100\n' "$tool" >"$tmp/bin/$tool"
done
chmod +x "$tmp/bin/"*

# fresh NAME INSTALLED SETUP COMMAND...: run COMMAND on an empty /usr/src,
# /boot and /lib/modules, after the shell commands SETUP (run inside).
# Output in $tmp/NAME.out and .err, exit status in $status.
fresh() {
	local name=$1 installed=$2 setup=$3
	shift 3
	: >"$tmp/$name.calls"
	STUB_INSTALLED=$installed STUB_LOG=$tmp/$name.calls PATH=$tmp/bin:$PATH \
		"${unshare[@]}" bash -c '
		for d in /usr/src /boot /lib/modules; do mount -t tmpfs fresh "$d" || exit 99; done
		eval "$1" || exit 98
		shift
		exec "$@"' sh "$setup" "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
	status=$?
}
# The packages the "missing:" line names.
named() { sed -n 's/^install-deps: missing: //p' "$tmp/$1.err" | tr ' ' '\n'; }
names_all() { # names_all CASE PACKAGE...: each PACKAGE is named
	local p ok=0
	for p in "${@:2}"; do
		named "$1" | grep -qxF -- "$p" || { echo "# not named: $p"; ok=1; }
	done
	return $ok
}

mapfile -t all < <("$DEPS" --list)
expect "--list names the packages" test "${#all[@]}" -gt 20

# 1. Nothing installed: every package named, kernels included; nothing run.
fresh fresh none "" "$DEPS" --dry-run
expect "fresh machine: --dry-run exits 0" test "$status" -eq 0
expect "fresh machine: every package of --list is named" names_all fresh "${all[@]}"
expect "fresh machine: both kernels' images and headers are named" names_all fresh \
	linux-headers-amd64 linux-image-amd64 linux-headers-6.12-amd64 linux-image-6.12-amd64
expect "fresh machine: both linux-source packages are named" names_all fresh \
	linux-source-6.1 linux-source-6.12
expect "fresh machine: the apt-get command is printed" \
	grep -q '^install-deps: would run: apt-get update && .*apt-get install .*linux-headers-6.12-amd64' "$tmp/fresh.err"
expect "fresh machine: --dry-run runs no apt-get" test ! -s "$tmp/fresh.calls"
[ "$status" -eq 0 ] || show "$tmp/fresh.err"

# 2. Headers without their image: that exact image is named, for each
# supported series; an unsupported series and a kernel with its image are not.
headers='for v in 6.1.0-99-amd64 6.12.999+deb12-amd64 5.10.0-9-amd64 6.13.1-amd64; do
	mkdir -p /usr/src/linux-headers-$v && touch /usr/src/linux-headers-$v/Makefile; done'
fresh drift none "$headers; touch /boot/vmlinuz-6.1.0-99-amd64" "$DEPS" --dry-run
expect "headers without image: --dry-run exits 0" test "$status" -eq 0
expect "headers without image: linux-image-VERSION is named" \
	names_all drift linux-image-6.12.999+deb12-amd64
expect "an installed image or an unsupported series is not named" \
	sh -c '! grep -qE "linux-image-(6\.1\.0-99|5\.10|6\.13)" "$1"' sh "$tmp/drift.err"
[ "$failures" -eq 0 ] || show "$tmp/drift.err"

# 3. Everything installed, kernels matching: nothing to do, no apt-get.
fresh done all "$headers; for v in 6.1.0-99-amd64 6.12.999+deb12-amd64; do touch /boot/vmlinuz-\$v; done" "$DEPS"
expect "all installed: exits 0" test "$status" -eq 0
expect "all installed: says so" grep -q "^install-deps: all ${#all[@]} packages are installed" "$tmp/done.err"
expect "all installed: runs no apt-get" test ! -s "$tmp/done.calls"

# 4. Installing for real with a failing apt-get: a non-zero exit that
# names what failed (the stub is all that runs).
fresh broken none "" "$DEPS"
expect "failing apt-get: install-deps.sh fails" test "$status" -ne 0
expect "failing apt-get: the error names apt-get update" \
	grep -q '^install-deps: apt-get update failed (exit 100)' "$tmp/broken.err"
[ "$status" -ne 0 ] || show "$tmp/broken.err"

# 5. Without kernel headers, make module says what to install instead of
# building against nothing.
fresh nokernel none "" make -s -C "$TOP" module
expect "no headers: make module fails" test "$status" -ne 0
expect "no headers: make module says to run install-deps.sh" \
	grep -q "no kernel build tree.*scripts/install-deps.sh" "$tmp/nokernel.err"
[ "$status" -ne 0 ] || show "$tmp/nokernel.err"

[ "$failures" -eq 0 ]
