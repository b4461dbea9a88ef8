/* log.c - JSON lines on stderr. */

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile int min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

bool log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

bool log_enabled(enum log_level level)
{
	return (int)level >= min_level;
}

void log_json_escape(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);
	for (; s && *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

void log_fields(enum log_level level, const char *msg, const char *json_members)
{
	if (!log_enabled(level))
		return;
	char line[4096];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(
	        line, sizeof(line),
	        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":\"",
	        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	        ts.tv_nsec / 1000000, level_names[level]);
	if (n < 0)
		return;
	log_json_escape(line, sizeof(line) - 512, msg);
	size_t len = strlen(line);
	snprintf(line + len, sizeof(line) - len, "\"%s%s}\n",
	         json_members && *json_members ? "," : "", json_members ? json_members : "");
	fputs(line, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fields(level, msg, NULL);
}
