/* projects.c - project transactions (see projects.h). */
#include "projects.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "session_internal.h"
#include "store.h"

static void project_of(const struct store_project *row, struct project *out)
{
	snprintf(out->name, sizeof(out->name), "%s", row->name);
	snprintf(out->description, sizeof(out->description), "%s", row->description);
	out->revision = row->revision;
	out->create_us = row->create_us;
}

struct create_tx {
	const char *name;         /* the name it is about */
	const char *description;  /* the description to store */
	struct store_project row; /* the row as written */
};

static int create_body(struct store *s, void *arg, struct cof_err *e)
{
	struct create_tx *t = arg;
	return store_project_insert(s, t->name, t->description, &t->row, e);
}

int projects_create(struct session *ss, const char *name, const char *description,
                    struct audit_row *audit, struct project *out, struct cof_err *e)
{
	struct create_tx t = {.name = name, .description = description};
	int rc = session_tx(ss, STORE_TX_WRITE, create_body, &t, audit, e);
	if (rc == 0)
		project_of(&t.row, out);
	return rc;
}

int projects_get(struct session *ss, const char *name, struct project *out, struct cof_err *e)
{
	struct store_project row;
	int rc = store_project_get(ss->store, name, &row, e);
	if (rc == 0)
		project_of(&row, out);
	return rc;
}

int projects_list(struct session *ss, const char *after, int limit, struct project *out, int *n,
                  struct cof_err *e)
{
	*n = 0;
	struct store_project *rows = calloc((size_t)limit + 1, sizeof(*rows));
	if (rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = store_project_list(ss->store, after, limit, rows, n, e);
	for (int i = 0; rc == 0 && i < *n; i++)
		project_of(&rows[i], &out[i]);
	free(rows);
	return rc;
}

struct delete_tx {
	const char *name;          /* the name it is about */
	int64_t expected_revision; /* in: 0, or the revision the caller saw */
};

static int delete_body(struct store *s, void *arg, struct cof_err *e)
{
	struct delete_tx *t = arg;
	int64_t id = 0, rev = 0;
	int rc = store_project_lock(s, t->name, &id, &rev, e);
	if (rc)
		return rc;
	if (t->expected_revision != 0 && t->expected_revision != rev)
		return cof_err_set(e, COF_ECONFLICT,
		                   "project \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                   t->name, rev, t->expected_revision);
	return store_project_delete(s, id, rev, e);
}

int projects_delete(struct session *ss, const char *name, int64_t expected_revision,
                    struct audit_row *audit, struct cof_err *e)
{
	struct delete_tx t = {name, expected_revision};
	return session_tx(ss, STORE_TX_WRITE, delete_body, &t, audit, e);
}
