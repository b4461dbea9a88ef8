/*
 * errors.h - errors as values: what every layer of the server shares (the base room).
 *
 * A fallible function returns 0 or one of the negative COF_E* codes and fills a caller-owned
 * struct cof_err: `msg` is short, factual and safe to send to a client; `detail` is for the server
 * log only (SQL errors, SQLSTATE). Neither ever holds a secret value. status.c maps codes to gRPC.
 */
#ifndef COFFER_ERRORS_H
#define COFFER_ERRORS_H

enum cof_code {
	COF_OK = 0,
	COF_EINVAL = -1,      /* malformed input */
	COF_ENOTFOUND = -2,   /* the named object does not exist */
	COF_EEXIST = -3,      /* creating a name that exists */
	COF_ECONFLICT = -4,   /* expected revision mismatch, or a retried serialization failure */
	COF_EPRECOND = -5,    /* the state forbids the operation */
	COF_ERANGE = -6,      /* a revision beyond the current one */
	COF_EUNAVAIL = -7,    /* database unreachable or not caught up; retryable */
	COF_EINTERNAL = -8,   /* a bug or a broken invariant */
	COF_ETAMPER = -9,     /* a stored value failed to decrypt */
	COF_EUNAUTH = -10,    /* no or bad credentials */
	COF_EPERM = -11,      /* credentials do not cover the call */
	COF_EEXHAUSTED = -12, /* a size or rate limit */
	COF_ERETRY =
	        -13, /* serialization failure or deadlock: the caller may retry the transaction */
	COF_EDEADLINE = -14,   /* the call's deadline passed (statement timeout) */
	COF_EUNKNOWN = -15,    /* a commit whose outcome is unknown (the connection was lost) */
	COF_EWOULDBLOCK = -16, /* a memory-only session needs the database: run the call there */
};

struct cof_err {
	int code;         /* one of enum cof_code */
	char msg[256];    /* client-facing, short, never a value */
	char detail[512]; /* server log only */
};

/* Fills e (NULL-safe) with code and a printf-formatted client message; returns code. */
int cof_err_set(struct cof_err *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Sets the log-only detail of e (NULL-safe). */
void cof_err_detail(struct cof_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
