/* console.c - serving the console's compiled-in files (see console.h). */
#include "console.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Every console answer: scripts, styles and connections from this origin only, nothing framed,
 * no plugins, forms only to this origin, no referrer. */
#define CSP                                                                                        \
	"default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri "    \
	"'none'; frame-ancestors 'none'; form-action 'self'"

static const struct console_file *find(const char *path)
{
	for (size_t i = 0; i < console_n_files; i++)
		if (strcmp(console_files[i].path, path) == 0)
			return &console_files[i];
	return NULL;
}

const struct console_file *console_file_of(const char *path)
{
	if (strcmp(path, "/") == 0 || strcmp(path, "/projects") == 0 ||
	    strncmp(path, "/projects/", 10) == 0)
		return find("/index.html");
	if (strncmp(path, "/console/", 9) == 0 && strstr(path, "..") == NULL)
		return find(path + 8);
	if (strncmp(path, "/components/", 12) == 0 && strstr(path, "..") == NULL)
		return find(path);
	return NULL;
}

void console_answer(struct http_request *req, const struct console_file *f)
{
	http_set_header(req, "Content-Security-Policy", CSP);
	http_set_header(req, "Referrer-Policy", "no-referrer");
	http_set_header(req, "X-Frame-Options", "DENY");
	char *body = malloc(f->len ? f->len : 1);
	if (body == NULL) {
		http_answer_error(req, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	memcpy(body, f->data, f->len);
	http_answer(req, 200, f->type, body,
	            f->len); /* a HEAD's body is left out by the listener */
}
