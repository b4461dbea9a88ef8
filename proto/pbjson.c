/* pbjson.c - the proto3 JSON mapping over protobuf-c descriptors (see pbjson.h). */
#include "pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- jansson's memory, wiped ---- */

/* Each block carries its size in front, so that free can wipe it. */
static void *wiping_malloc(size_t n)
{
	max_align_t *p = malloc(sizeof(max_align_t) + n);
	if (p == NULL)
		return NULL;
	*(size_t *)p = n;
	return p + 1;
}

static void wiping_free(void *q)
{
	if (q == NULL)
		return;
	max_align_t *p = (max_align_t *)q - 1;
	explicit_bzero(p, sizeof(max_align_t) + *(size_t *)p);
	free(p);
}

void pbjson_init(void)
{
	json_set_alloc_funcs(wiping_malloc, wiping_free);
}

/* ---- names ---- */

/* Whether key is field name's JSON name (lowerCamelCase: "page_token" -> "pageToken"). */
static bool json_name_is(const char *key, const char *name)
{
	for (; *name; name++) {
		if (*name == '_' && name[1] != '\0') {
			name++;
			if (*key++ != toupper((unsigned char)*name))
				return false;
		} else if (*key++ != *name) {
			return false;
		}
	}
	return *key == '\0';
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                const char *key)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (json_name_is(key, d->fields[i].name) || strcmp(key, d->fields[i].name) == 0)
			return &d->fields[i];
	return NULL;
}

static bool is_type(const ProtobufCMessageDescriptor *d, const char *name)
{
	return strcmp(d->name, name) == 0;
}

/* ---- decoding: JSON -> the binary form ---- */

struct dec {
	char *err;     /* what is wrong */
	size_t errlen; /* its room */
	bool oom;      /* memory ran out */
};

static int fail(struct dec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct dec *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A name from the request fit for a message: printable and short, or a stand-in. */
static const char *shown(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > 64)
		return "(a name)";
	for (size_t i = 0; i < n; i++)
		if (!isprint((unsigned char)key[i]) || key[i] == '"' || key[i] == '\\')
			return "(a name)";
	return key;
}

static int put(struct dec *x, struct coffer_wbuf *out, const void *p, size_t n)
{
	if (coffer_wbuf_put(out, p, n) != 0) {
		x->oom = true;
		return -1;
	}
	return 0;
}

static int put_varint(struct dec *x, struct coffer_wbuf *out, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return put(x, out, b, n);
}

static int put_fixed(struct dec *x, struct coffer_wbuf *out, uint64_t v, size_t bytes)
{
	uint8_t b[8];
	for (size_t i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return put(x, out, b, bytes);
}

enum { WIRE_VARINT = 0, WIRE_64 = 1, WIRE_LEN = 2, WIRE_32 = 5 };

static int put_tag(struct dec *x, struct coffer_wbuf *out, uint32_t id, int wire)
{
	return put_varint(x, out, ((uint64_t)id << 3) | (uint64_t)wire);
}

static int put_len(struct dec *x, struct coffer_wbuf *out, uint32_t id, const void *p, size_t n)
{
	if (put_tag(x, out, id, WIRE_LEN) || put_varint(x, out, n))
		return -1;
	return n ? put(x, out, p, n) : 0;
}

/* An integer of a JSON number (integral) or string, within [min, max]. */
static bool int_of(json_t *v, long long min, long long max, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
			return false;
		*out = (long long)d;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		errno = 0;
		*out = strtoll(s, &end, 10);
		if (errno || end == s || *end != '\0' || isspace((unsigned char)*s))
			return false;
	} else {
		return false;
	}
	return *out >= min && *out <= max;
}

static bool uint_of(json_t *v, unsigned long long max, unsigned long long *out)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		errno = 0;
		if (!isdigit((unsigned char)*s))
			return false;
		*out = strtoull(s, &end, 10);
		if (errno || *end != '\0')
			return false;
		return *out <= max;
	}
	long long n;
	if (!int_of(v, 0, LLONG_MAX, &n))
		return false;
	*out = (unsigned long long)n;
	return *out <= max;
}

static bool double_of(json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else
		return false;
	return true;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool pbjson_base64_decode(const char *s, size_t len, uint8_t *out, size_t *n)
{
	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return false;
	uint32_t acc = 0;
	int bits = 0;
	*n = 0;
	for (size_t i = 0; i < len; i++) {
		int d = b64_digit(s[i]);
		if (d < 0)
			return false;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[(*n)++] = (uint8_t)(acc >> bits);
		}
	}
	return true;
}

/* "1972-01-01T10:00:20.021Z" (or an offset "+01:00") into seconds and nanos. */
static bool timestamp_of(const char *s, int64_t *seconds, int32_t *nanos)
{
	int y, mo, d, h, mi, sec, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
	    used != 19 || y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 59)
		return false;
	const char *p = s + used;
	int32_t ns = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 9)
				ns = ns * 10 + (*p - '0');
		if (digits == 0 || digits > 9)
			return false;
		for (; digits < 9; digits++)
			ns *= 10;
	}
	int offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
			return false;
		offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = sec};
	time_t t = timegm(&tm);
	if (tm.tm_mday != d) /* February 30th and the like */
		return false;
	*seconds = (int64_t)t - offset;
	*nanos = ns;
	return true;
}

static int encode_message(struct dec *x, const ProtobufCMessageDescriptor *d, json_t *obj,
                          struct coffer_wbuf *out, int depth);

/* One value of field f (an element, for a repeated field). */
static int encode_value(struct dec *x, const ProtobufCFieldDescriptor *f, json_t *v,
                        struct coffer_wbuf *out, int depth)
{
	long long i;
	unsigned long long u;
	double dbl;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		bool wide = f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
		            f->type == PROTOBUF_C_TYPE_SFIXED64;
		if (!int_of(v, wide ? LLONG_MIN : INT32_MIN, wide ? LLONG_MAX : INT32_MAX, &i))
			return fail(x, "field \"%s\": expected a %d-bit integer", f->name,
			            wide ? 64 : 32);
		if (f->type == PROTOBUF_C_TYPE_SFIXED32 || f->type == PROTOBUF_C_TYPE_SFIXED64)
			return put_tag(x, out, f->id, wide ? WIRE_64 : WIRE_32) ||
			       put_fixed(x, out, wide ? (uint64_t)i : (uint32_t)(int32_t)i,
			                 wide ? 8 : 4);
		uint64_t zigzag =
		        wide ? ((uint64_t)i << 1) ^ (uint64_t)(i >> 63)
		             : (uint32_t)(((uint32_t)i << 1) ^ (uint32_t)((int32_t)i >> 31));
		bool sint = f->type == PROTOBUF_C_TYPE_SINT32 || f->type == PROTOBUF_C_TYPE_SINT64;
		return put_tag(x, out, f->id, WIRE_VARINT) ||
		       put_varint(x, out, sint ? zigzag : (uint64_t)i);
	}
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		bool wide = f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;
		if (!uint_of(v, wide ? ULLONG_MAX : UINT32_MAX, &u))
			return fail(x, "field \"%s\": expected an unsigned %d-bit integer", f->name,
			            wide ? 64 : 32);
		if (f->type == PROTOBUF_C_TYPE_FIXED32 || f->type == PROTOBUF_C_TYPE_FIXED64)
			return put_tag(x, out, f->id, wide ? WIRE_64 : WIRE_32) ||
			       put_fixed(x, out, u, wide ? 8 : 4);
		return put_tag(x, out, f->id, WIRE_VARINT) || put_varint(x, out, u);
	}
	case PROTOBUF_C_TYPE_FLOAT: {
		if (!double_of(v, &dbl) || (isfinite(dbl) && fabs(dbl) > 3.4028234663852886e38))
			return fail(x, "field \"%s\": expected a 32-bit floating-point number",
			            f->name);
		float fl = (float)dbl;
		uint32_t bits;
		memcpy(&bits, &fl, 4);
		return put_tag(x, out, f->id, WIRE_32) || put_fixed(x, out, bits, 4);
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		if (!double_of(v, &dbl))
			return fail(x, "field \"%s\": expected a number", f->name);
		uint64_t bits;
		memcpy(&bits, &dbl, 8);
		return put_tag(x, out, f->id, WIRE_64) || put_fixed(x, out, bits, 8);
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return fail(x, "field \"%s\": expected true or false", f->name);
		return put_tag(x, out, f->id, WIRE_VARINT) || put_varint(x, out, json_is_true(v));
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		const ProtobufCEnumValue *ev =
		        json_is_string(v) ? protobuf_c_enum_descriptor_get_value_by_name(
		                                    ed, json_string_value(v))
		                          : NULL;
		if (ev != NULL)
			i = ev->value;
		else if (json_is_string(v) || !int_of(v, INT32_MIN, INT32_MAX, &i))
			return fail(x, "field \"%s\": expected a name of %s", f->name, ed->name);
		return put_tag(x, out, f->id, WIRE_VARINT) || put_varint(x, out, (uint64_t)i);
	}
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(v))
			return fail(x, "field \"%s\": expected a string", f->name);
		return put_len(x, out, f->id, json_string_value(v), json_string_length(v));
	case PROTOBUF_C_TYPE_BYTES: {
		if (!json_is_string(v))
			return fail(x, "field \"%s\": expected base64 text", f->name);
		size_t n = json_string_length(v);
		uint8_t *b = malloc(n ? n : 1);
		if (b == NULL) {
			x->oom = true;
			return -1;
		}
		int rc = pbjson_base64_decode(json_string_value(v), n, b, &n)
		                 ? put_len(x, out, f->id, b, n)
		                 : fail(x, "field \"%s\": expected base64 text", f->name);
		explicit_bzero(b, n);
		free(b);
		return rc;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		struct coffer_wbuf sub = {0};
		int rc = encode_message(x, f->descriptor, v, &sub, depth + 1);
		if (rc == 0)
			rc = put_len(x, out, f->id, sub.p, sub.len);
		coffer_wbuf_free(&sub);
		return rc;
	}
	}
	return fail(x, "field \"%s\": a type this codec does not know", f->name);
}

/* google.protobuf.Timestamp from its RFC 3339 text. */
static int encode_timestamp(struct dec *x, json_t *v, struct coffer_wbuf *out)
{
	int64_t seconds;
	int32_t nanos;
	if (!json_is_string(v) || !timestamp_of(json_string_value(v), &seconds, &nanos) ||
	    seconds < -62135596800LL || seconds > 253402300799LL)
		return fail(x, "a timestamp is RFC 3339 text from 0001 to 9999, "
		               "\"2026-01-02T15:04:05Z\"");
	return (seconds &&
	        (put_tag(x, out, 1, WIRE_VARINT) || put_varint(x, out, (uint64_t)seconds))) ||
	       (nanos && (put_tag(x, out, 2, WIRE_VARINT) || put_varint(x, out, (uint64_t)nanos)));
}

static int encode_message(struct dec *x, const ProtobufCMessageDescriptor *d, json_t *obj,
                          struct coffer_wbuf *out, int depth)
{
	if (depth > PBJSON_MAX_DEPTH)
		return fail(x, "messages are nested more than %d deep", PBJSON_MAX_DEPTH);
	if (is_type(d, "google.protobuf.Timestamp"))
		return encode_timestamp(x, obj, out);
	if (!json_is_object(obj))
		return fail(x, "a %s is a JSON object", d->name);
	/* oneofs set so far, by the offset of their case field; fields given so far (a name and
	 * its JSON name are one field) */
	unsigned oneofs[16];
	size_t n_oneofs = 0;
	bool seen[64] = {false};
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		const ProtobufCFieldDescriptor *f = field_of(d, key);
		if (f == NULL)
			return fail(x, "unknown field \"%s\" in %s", shown(key), d->name);
		size_t at = (size_t)(f - d->fields);
		if (at < 64 && seen[at])
			return fail(x, "field \"%s\" is given twice", f->name);
		if (at < 64)
			seen[at] = true;
		if (json_is_null(v))
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			for (size_t k = 0; k < n_oneofs; k++)
				if (oneofs[k] == f->quantifier_offset)
					return fail(x,
					            "field \"%s\": another member of its oneof is "
					            "set",
					            f->name);
			if (n_oneofs < sizeof(oneofs) / sizeof(oneofs[0]))
				oneofs[n_oneofs++] = f->quantifier_offset;
		}
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			if (encode_value(x, f, v, out, depth))
				return -1;
			continue;
		}
		if (!json_is_array(v))
			return fail(x, "field \"%s\": expected an array", f->name);
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (json_is_null(e))
				return fail(x, "field \"%s\": an array element is null", f->name);
			if (encode_value(x, f, e, out, depth))
				return -1;
		}
	}
	return 0;
}

int pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                  struct coffer_wbuf *out, char *err, size_t errlen)
{
	struct dec x = {.err = err, .errlen = errlen};
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		/* jansson's text names the problem and where, never the input */
		snprintf(err, errlen, "the JSON does not parse: %s (line %d, column %d)", je.text,
		         je.line, je.column);
		return -1;
	}
	int rc = encode_message(&x, desc, root, out, 0);
	json_decref(root);
	if (x.oom)
		return -2;
	return rc ? -1 : 0;
}

/* ---- encoding: a message -> JSON ---- */

/* The field's JSON name, quoted, and a colon. */
static int put_name(struct coffer_wbuf *b, const char *name)
{
	char buf[128];
	size_t n = 0;
	buf[n++] = '"';
	for (; *name && n < sizeof(buf) - 3; name++) {
		if (*name == '_' && name[1] != '\0')
			buf[n++] = (char)toupper((unsigned char)*++name);
		else
			buf[n++] = *name;
	}
	buf[n++] = '"';
	buf[n++] = ':';
	return coffer_wbuf_put(b, buf, n);
}

static int put_base64(struct coffer_wbuf *b, const uint8_t *p, size_t n)
{
	static const char digits[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int rc = coffer_wbuf_str(b, "\"");
	for (size_t i = 0; i < n && rc == 0; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {digits[v >> 18 & 63], digits[v >> 12 & 63],
		             i + 1 < n ? digits[v >> 6 & 63] : '=',
		             i + 2 < n ? digits[v & 63] : '='};
		rc = coffer_wbuf_put(b, q, 4);
	}
	return rc || coffer_wbuf_str(b, "\"");
}

static int put_double(struct coffer_wbuf *b, double d)
{
	if (isnan(d))
		return coffer_wbuf_str(b, "\"NaN\"");
	if (isinf(d))
		return coffer_wbuf_str(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	return coffer_wbuf_fmt(b, "%.17g", d);
}

static int put_timestamp(struct coffer_wbuf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	int64_t seconds = 0;
	int32_t nanos = 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const char *p = (const char *)m + d->fields[i].offset;
		if (d->fields[i].id == 1)
			memcpy(&seconds, p, sizeof(seconds));
		else if (d->fields[i].id == 2)
			memcpy(&nanos, p, sizeof(nanos));
	}
	time_t t = (time_t)seconds;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		return coffer_wbuf_str(b, "null");
	char buf[48];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	int rc = coffer_wbuf_fmt(b, "\"%04d%s", tm.tm_year + 1900, buf + strcspn(buf, "-"));
	if (nanos > 0 && nanos % 1000000 == 0)
		rc = rc || coffer_wbuf_fmt(b, ".%03d", nanos / 1000000);
	else if (nanos > 0 && nanos % 1000 == 0)
		rc = rc || coffer_wbuf_fmt(b, ".%06d", nanos / 1000);
	else if (nanos > 0)
		rc = rc || coffer_wbuf_fmt(b, ".%09d", nanos);
	return rc || coffer_wbuf_str(b, "Z\"");
}

static int encode_msg(const ProtobufCMessage *m, struct coffer_wbuf *b);

/* One value of f at p (an element, for a repeated field). */
static int put_value(struct coffer_wbuf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return coffer_wbuf_fmt(b, "%" PRId32, *(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return coffer_wbuf_fmt(b, "%" PRIu32, *(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return coffer_wbuf_fmt(b, "\"%" PRId64 "\"", *(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return coffer_wbuf_fmt(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return put_double(b, *(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return put_double(b, *(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return coffer_wbuf_str(b, *(const protobuf_c_boolean *)p ? "true" : "false");
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		        protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		return ev ? coffer_wbuf_json(b, ev->name) : coffer_wbuf_fmt(b, "%d", v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return coffer_wbuf_json(b, s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = p;
		return put_base64(b, bd->data, bd->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		return sub ? encode_msg(sub, b) : coffer_wbuf_str(b, "{}");
	}
	}
	return coffer_wbuf_str(b, "null");
}

/* Whether a singular field at p holds its default (and is then left out). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s == NULL || *s == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p == NULL;
	default: /* 32-bit integers, bool, enum */
		return *(const uint32_t *)p == 0;
	}
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static int encode_msg(const ProtobufCMessage *m, struct coffer_wbuf *b)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (is_type(d, "google.protobuf.Timestamp"))
		return put_timestamp(b, m);
	int rc = coffer_wbuf_str(b, "{");
	bool first = true;
	for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *p = (const char *)m + f->offset;
		const char *q = (const char *)m + f->quantifier_offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)q;
			if (n == 0)
				continue;
			const char *arr = *(char *const *)p;
			rc = (first ? 0 : coffer_wbuf_str(b, ",")) || put_name(b, f->name) ||
			     coffer_wbuf_str(b, "[");
			for (size_t k = 0; k < n && rc == 0; k++)
				rc = (k ? coffer_wbuf_str(b, ",") : 0) ||
				     put_value(b, f, arr + k * value_size(f));
			rc = rc || coffer_wbuf_str(b, "]");
			first = false;
			continue;
		}
		bool present;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			present = *(const uint32_t *)q == f->id;
		else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
			present = *(const protobuf_c_boolean *)q;
		else
			present = !is_default(f, p);
		if (!present)
			continue;
		rc = (first ? 0 : coffer_wbuf_str(b, ",")) || put_name(b, f->name) ||
		     put_value(b, f, p);
		first = false;
	}
	return rc || coffer_wbuf_str(b, "}");
}

int pbjson_encode(const ProtobufCMessage *msg, struct coffer_wbuf *out)
{
	return encode_msg(msg, out) || out->failed ? -1 : 0;
}
