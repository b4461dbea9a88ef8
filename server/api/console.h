/*
 * console.h - the web console's files, compiled into cofferd (cmake/embed_console.cmake makes the
 * table from server/console/) and served at / of the HTTP listener when --console is on
 * (docs/console.md). The console speaks to cofferd only through the Connect API.
 */
#ifndef COFFER_CONSOLE_H
#define COFFER_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;

/* One file of server/console/. */
struct console_file {
	const char *path;          /* "/index.html", "/components/secret-input.js" */
	const char *type;          /* its media type */
	const unsigned char *data; /* its bytes */
	size_t len;                /* how many */
};
extern const struct console_file console_files[];
extern const size_t console_n_files;

/* The file a request path names: a page of the console ("/", "/projects/{p}/...": the one page,
 * index.html, whose script draws what the path says), a file of its own ("/console/app.js"), or
 * the custom element other applications may load ("/components/secret-input.js"). NULL: not the
 * console's. */
const struct console_file *console_file_of(const char *path);

/* Answers a GET or HEAD of f with the console's headers (a Content-Security-Policy that allows
 * nothing from another origin, no referrer, no framing). */
void console_answer(struct http_request *req, const struct console_file *f);

#endif
