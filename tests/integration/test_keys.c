/*
 * test_keys.c - key rotation against the running server: three rotations and rewraps while 8
 * writers run, then every stored value opens and every secret reveals its last write; and a
 * rewrap stopped halfway that a second run finishes with nothing lost; a row that does not open is
 * left as it was by a rewrap, and verify still reports it. Encryption at rest: a tampered or moved
 * ciphertext is INTERNAL naming the secret, and a wrong root key refuses to start.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "crypt.h"
#include "helpers.h"
#include "keys.h"

#define WRITERS 8
#define WRITES  25

/* A keyring and a session of our own, as `cofferd keys` has. */
struct tool {
	struct crypt_keyring *kr;
	struct session s;
};

static void tool_open(struct tool *t)
{
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_keyring_new(cfg.root_key_file, &t->kr, &e), 0);
	ck_assert_int_eq(session_connect(cfg.database_url, t->kr, 0, &t->s, &e), 0);
	ck_assert_msg(keys_load(&t->s, false, &e) == 0, "%s", e.msg);
}

static void tool_close(struct tool *t)
{
	session_close(&t->s);
	crypt_keyring_free(t->kr);
}

static int64_t rows_not_on(struct tool *t, int32_t term)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", (int)term);
	const char *vals[1] = {v};
	PGresult *r = sql("SELECT count(*) FROM secret_values WHERE term <> $1", 1, vals);
	int64_t n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	(void)t;
	return n;
}

struct writer {
	const char *project; /* shared */
	int id;              /* which secret it owns */
	char last[64];       /* its last successful value */
	int failures;        /* calls that failed */
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	coffer_channel *c = channel(20000);
	char name[16];
	snprintf(name, sizeof(name), "W%d", w->id);
	for (int i = 0; i < WRITES; i++) {
		char value[64];
		snprintf(value, sizeof(value), "writer-%d-write-%d", w->id, i);
		Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
		u.project = (char *)w->project;
		u.name = name;
		u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		u.value = value;
		Coffer__V1__Secret *s = NULL;
		coffer_error err;
		if (coffer_v1_secrets_update_secret(c, &u, &s, &err) == 0) {
			protobuf_c_message_free_unpacked(&s->base, NULL);
			snprintf(w->last, sizeof(w->last), "%s", value);
		} else {
			w->failures++;
		}
		usleep(10 * 1000);
	}
	coffer_channel_free(c);
	return NULL;
}

START_TEST(rotations_and_rewrap_under_writers)
{
	const char *p = uniq("rotate");
	create_project(p);
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "W%d", i);
		must_create_secret(p, name, "initial", 0);
		w[i] = (struct writer){.project = p, .id = i};
		snprintf(w[i].last, sizeof(w[i].last), "initial");
	}
	struct tool t;
	tool_open(&t);
	pthread_t th[WRITERS];
	for (int i = 0; i < WRITERS; i++)
		pthread_create(&th[i], NULL, write_loop, &w[i]);
	struct cof_err e = {0};
	int32_t first = crypt_keyring_active_term(t.kr), term = 0;
	struct keys_walk_opts o = {.batch_size = 7};
	for (int r = 0; r < 3; r++) {
		usleep(60 * 1000);
		ck_assert_msg(keys_rotate(&t.s, &term, &e) == 0, "%s", e.msg);
		int64_t moved = 0, failed = 0;
		ck_assert_msg(keys_rewrap(&t.s, &o, &moved, &failed, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(failed, 0);
	}
	ck_assert_int_eq(term, first + 3);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	/* The running server moves to the new active term by itself (it re-reads the keyring every
	 * few seconds while it serves calls): watch its metrics, then check a write's term. */
	char want[64];
	snprintf(want, sizeof(want), "coffer_keyring_active_term %d\n", (int)term);
	bool moved_on = false;
	for (int i = 0; i < 120 && !moved_on; i++) {
		project_revision(p); /* a call, so that the server gets a chance to refresh */
		char *body = http_get(server_metrics_port(srv), "/metrics");
		moved_on = strstr(body, want) != NULL;
		free(body);
		if (!moved_on)
			usleep(100 * 1000);
	}
	ck_assert_msg(moved_on, "the server did not take up keyring term %d", (int)term);
	char *v0 = must_reveal(p, "W0");
	free(v0);
	update_value(p, "W0", "after-the-rotation");
	char *row = value_row_id(p, "W0");
	const char *rv[1] = {row};
	PGresult *tr = sql("SELECT term FROM secret_values WHERE id = $1", 1, rv);
	ck_assert_int_eq(atoi(PQgetvalue(tr, 0, 0)), term);
	PQclear(tr);
	free(row);
	snprintf(w[0].last, sizeof(w[0].last), "after-the-rotation");
	/* Writers may still have sealed under the term their server knew: one more pass. */
	int64_t moved = 0, failed = 0;
	ck_assert_int_eq(keys_rewrap(&t.s, &o, &moved, &failed, &e), 0);
	ck_assert_int_eq(failed, 0);
	ck_assert_int_eq(rows_not_on(&t, term), 0);
	int64_t ok = 0, bad = 0;
	ck_assert_int_eq(keys_verify(&t.s, NULL, &ok, &bad, &e), 0);
	ck_assert_int_eq(bad, 0);
	ck_assert_int_gt(ok, WRITERS * WRITES / 2);
	for (int i = 0; i < WRITERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "W%d", i);
		ck_assert_int_eq(w[i].failures, 0);
		char *v = must_reveal(p, name);
		ck_assert_str_eq(v, w[i].last);
		free(v);
	}
	/* history too: every past revision still resolves */
	for (int64_t r = 2; r <= project_revision(p); r += 17) {
		struct resolved res;
		resolve_into(p, "main", 2, r, &res);
		resolved_clear(&res);
	}
	printf("rotation: terms %d..%d, %lld rows open, all on term %d\n", (int)first, (int)term,
	       (long long)ok, (int)term);
	tool_close(&t);
}
END_TEST

START_TEST(rewrap_stopped_halfway_resumes)
{
	const char *p = uniq("resume");
	create_project(p);
	for (int i = 0; i < 12; i++) {
		char name[16], value[32];
		snprintf(name, sizeof(name), "R%d", i);
		snprintf(value, sizeof(value), "resume-value-%d", i);
		must_create_secret(p, name, value, 0);
	}
	struct tool t;
	tool_open(&t);
	struct cof_err e = {0};
	int32_t term = 0;
	int64_t moved = 0, failed = 0;
	/* Settle everything onto the active term first, then rotate. */
	struct keys_walk_opts all = {.batch_size = 500};
	ck_assert_int_eq(keys_rewrap(&t.s, &all, &moved, &failed, &e), 0);
	ck_assert_int_eq(keys_rotate(&t.s, &term, &e), 0);
	int64_t before = rows_not_on(&t, term);
	ck_assert_int_ge(before, 12);
	/* "Killed" after two committed batches of three. */
	struct keys_walk_opts part = {.batch_size = 3, .max_batches = 2};
	ck_assert_int_eq(keys_rewrap(&t.s, &part, &moved, &failed, &e), 0);
	ck_assert_int_eq(moved, 6);
	ck_assert_int_eq(rows_not_on(&t, term), before - 6);
	/* Values open in between: some rows on the new term, some on the old. */
	for (int i = 0; i < 12; i++) {
		char name[16], want[32];
		snprintf(name, sizeof(name), "R%d", i);
		snprintf(want, sizeof(want), "resume-value-%d", i);
		char *v = must_reveal(p, name);
		ck_assert_str_eq(v, want);
		free(v);
	}
	ck_assert_int_eq(keys_rewrap(&t.s, &all, &moved, &failed, &e), 0);
	ck_assert_int_eq(moved, before - 6);
	ck_assert_int_eq(rows_not_on(&t, term), 0);
	int64_t ok = 0, bad = 0;
	ck_assert_int_eq(keys_verify(&t.s, NULL, &ok, &bad, &e), 0);
	ck_assert_int_eq(bad, 0);
	tool_close(&t);
}
END_TEST

/* The sealed bytes and term of a value row, as text. */
static char *row_bytes(const char *id)
{
	const char *vals[1] = {id};
	PGresult *r = sql("SELECT encode(sealed, 'hex') || ':' || term FROM secret_values "
	                  "WHERE id = $1",
	                  1, vals);
	char *out = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

/* A rewrap never turns a value it cannot open into anything else: it counts it, leaves it as it
 * was, and verify still reports it afterwards. */
START_TEST(rewrap_leaves_a_row_it_cannot_open_as_it_was)
{
	const char *p = uniq("broken");
	create_project(p);
	must_create_secret(p, "GOOD", "good-value", 0);
	must_create_secret(p, "BROKEN", "broken-value", 0);
	char *id = value_row_id(p, "BROKEN");
	const char *vals[1] = {id};
	PQclear(sql(
	        "UPDATE secret_values SET sealed = set_byte(sealed, 40, get_byte(sealed, 40) # 1) "
	        "WHERE id = $1",
	        1, vals));
	char *before = row_bytes(id);
	struct tool t;
	tool_open(&t);
	struct cof_err e = {0};
	int32_t term = 0;
	ck_assert_int_eq(keys_rotate(&t.s, &term, &e), 0);
	int64_t moved = 0, failed = 0;
	struct keys_walk_opts all = {.batch_size = 500};
	ck_assert_int_eq(keys_rewrap(&t.s, &all, &moved, &failed, &e), 0);
	ck_assert_int_eq(failed, 1);
	char *after = row_bytes(id);
	ck_assert_str_eq(after, before); /* not re-sealed: neither as empty nor as anything else */
	int64_t ok = 0, bad = 0;
	ck_assert_int_eq(keys_verify(&t.s, NULL, &ok, &bad, &e), 0);
	ck_assert_int_eq(bad, 1);
	coffer_error err;
	char *v = NULL;
	ck_assert_int_eq(reveal(ch, p, "BROKEN", &v, &err), 13 /* INTERNAL, never "" */);
	v = must_reveal(p, "GOOD");
	ck_assert_str_eq(v, "good-value");
	free(v);
	free(before);
	free(after);
	free(id);
	tool_close(&t);
	/* No broken row is left for the tests that open every row. */
	Coffer__V1__DeleteProjectRequest d = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	d.name = (char *)p;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_projects_delete_project(ch, &d, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
}
END_TEST

/* ---- encryption at rest ---- */

START_TEST(tampered_ciphertext_is_internal)
{
	const char *p = uniq("tamper");
	create_project(p);
	must_create_secret(p, "FLIPPED", "flip-canary-value", 0);
	must_create_secret(p, "DONOR", "donor-canary-value", 0);
	must_create_secret(p, "VICTIM", "victim-canary-value", 0);
	char *flip = value_row_id(p, "FLIPPED");
	const char *v1[1] = {flip};
	PQclear(sql(
	        "UPDATE secret_values SET sealed = set_byte(sealed, 40, get_byte(sealed, 40) # 1) "
	        "WHERE id = $1",
	        1, v1));
	coffer_error err;
	char *v = NULL;
	ck_assert_int_eq(reveal(ch, p, "FLIPPED", &v, &err), 13 /* INTERNAL */);
	ck_assert_ptr_nonnull(strstr(err.message, "FLIPPED"));
	ck_assert_ptr_null(strstr(err.message, "canary"));
	/* A valid ciphertext moved to another row does not open there. */
	char *donor = value_row_id(p, "DONOR"), *victim = value_row_id(p, "VICTIM");
	const char *v2[2] = {victim, donor};
	PQclear(sql("UPDATE secret_values SET sealed = (SELECT sealed FROM secret_values WHERE id "
	            "= $2) "
	            "WHERE id = $1",
	            2, v2));
	ck_assert_int_eq(reveal(ch, p, "VICTIM", &v, &err), 13);
	ck_assert_ptr_nonnull(strstr(err.message, "VICTIM"));
	ck_assert_ptr_null(strstr(err.message, "canary"));
	v = must_reveal(p, "DONOR");
	ck_assert_str_eq(v, "donor-canary-value");
	free(v);
	/* Stored bytes hold no plaintext. */
	const char *v3[1] = {p};
	PGresult *r =
	        sql("SELECT count(*) FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	            "JOIN projects p ON p.id = s.project_id WHERE p.name = $1 "
	            "AND position('canary'::bytea IN v.sealed) > 0",
	            1, v3);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	free(flip);
	free(donor);
	free(victim);
	/* Leave no broken rows behind for the key-rotation tests that open every row. */
	Coffer__V1__DeleteProjectRequest d = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	d.name = (char *)p;
	Google__Protobuf__Empty *empty = NULL;
	coffer_error derr;
	ck_assert_int_eq(coffer_v1_projects_delete_project(ch, &d, &empty, &derr), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
}
END_TEST

START_TEST(wrong_root_key_refuses_to_start)
{
	char path[] = "/tmp/coffer-wrong-key-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	        write(fd, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n", 65),
	        65);
	close(fd);
	struct settings c2 = cfg;
	c2.root_key_file = path;
	c2.listen = "127.0.0.1:0";
	struct server *other = NULL;
	struct cof_err e = {0};
	ck_assert_int_ne(server_start(&c2, 0, &other, &e), 0);
	ck_assert_ptr_null(other);
	ck_assert_msg(strstr(e.msg, "wrong root key") != NULL, "%s", e.msg);
	unlink(path);
}
END_TEST

TCase *tcase_keys(void)
{
	TCase *tc = tcase_create("keys");
	tcase_set_timeout(tc, 180);
	test_add(tc, rotations_and_rewrap_under_writers);
	test_add(tc, rewrap_stopped_halfway_resumes);
	test_add(tc, rewrap_leaves_a_row_it_cannot_open_as_it_was);
	test_add(tc, tampered_ciphertext_is_internal);
	test_add(tc, wrong_root_key_refuses_to_start);
	return tc;
}
