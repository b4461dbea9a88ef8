/*
 * log.h - the server log: one JSON object per line on stderr.
 *
 * Messages and fields are written by the server's own code and never carry a secret value; callers
 * pass names, codes and counts only. Thread-safe.
 */
#ifndef COFFER_LOG_H
#define COFFER_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Parses "debug", "info", "warn" or "error"; returns false on anything else. */
bool log_parse_level(const char *s, enum log_level *out);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Writes {"ts":..,"level":..,"msg":..} with msg printf-formatted and JSON-escaped. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes one line with msg and extra pre-rendered JSON members (`"k":v,...`, may be NULL). */
void log_fields(enum log_level level, const char *msg, const char *json_members);
/* Appends s JSON-escaped (without quotes) to out, at most cap bytes including the NUL. */
void log_json_escape(char *out, size_t cap, const char *s);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
