/* errors.c - filling struct cof_err. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

int cof_err_set(struct cof_err *e, int code, const char *fmt, ...)
{
	if (e == NULL)
		return code;
	va_list ap;
	va_start(ap, fmt);
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

void cof_err_detail(struct cof_err *e, const char *fmt, ...)
{
	if (e == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}
