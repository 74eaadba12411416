/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/* JSON output shared by the tools (zchan-bench, zchan-top, zchan-lat). */
#ifndef ZCHAN_TOOLS_JSON_H
#define ZCHAN_TOOLS_JSON_H

#include <stdio.h>

/* @s as a JSON string: quotes, backslashes and control bytes escaped. */
static inline void json_write_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

#endif /* ZCHAN_TOOLS_JSON_H */
