#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/module-tree.sh TOP DIR
#
# Prepare DIR for an out-of-tree build of zchan.ko (`make module O=DIR`):
# Linux 6.1's kbuild writes an external module's objects next to its
# sources, so DIR gets the module's sources (Kbuild, module/, include/) as
# symlinks into TOP, refreshed on every build, and the objects land in DIR.
# Only sources are linked, never objects or generated files of an in-tree
# build.

set -eEuo pipefail
trap 'echo "module-tree: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

top=$1
dir=$2
[ "$(cd "$top" && pwd -P)" != "$(mkdir -p "$dir" && cd "$dir" && pwd -P)" ] ||
	{ echo "module-tree: O= must not be the source tree" >&2; exit 1; }

if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked files and new, not yet ignored ones.
	files=$(git -C "$top" ls-files --cached --others --exclude-standard -- Kbuild module include)
else
	files=$(cd "$top" && find Kbuild module include -type f \
		\( -name Kbuild -o -name Makefile -o -name '*.c' -o -name '*.h' -o -name '*.sh' \) \
		! -name '*.mod.c' ! -path module/compat.h)
fi

find "$dir/Kbuild" "$dir/module" "$dir/include" -type l -delete 2>/dev/null || true
for f in $files; do
	[ -f "$top/$f" ] || continue
	mkdir -p "$dir/$(dirname "$f")"
	ln -sfn "$top/$f" "$dir/$f"
done
