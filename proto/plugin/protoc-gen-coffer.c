/*
 * protoc-gen-coffer - the protoc plugin that writes Coffer's gRPC glue in C.
 *
 * protoc-c writes the messages; this plugin writes, next to them, for each .proto file:
 *   NAME.rpc.h / NAME.rpc.c   method tables (path, message descriptors, streaming flags), typed
 *                             handler tables with their dispatch functions, and the file's
 *                             serialized FileDescriptorProto for server reflection;
 *   NAME.stub.h / NAME.stub.c typed blocking client stubs over coffer__call_unary (files with
 *                             services only);
 * and once per run coffer_registry.h / coffer_registry.c listing every file it was given.
 * It reads a CodeGeneratorRequest on stdin and writes a CodeGeneratorResponse on stdout.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__ServiceDescriptorProto svc_proto;
typedef Google__Protobuf__MethodDescriptorProto method_proto;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File out_file;

/* A growable string; every append aborts on allocation failure (a plugin has no recovery). */
struct buf {
	char *p;    /* NUL-terminated text */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q == NULL) {
		fprintf(stderr, "protoc-gen-coffer: out of memory\n");
		exit(1);
	}
	return q;
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			exit(1);
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xrealloc(NULL, n), s, n);
}

/* protoc-c's CamelToLower: "CreateProject" -> "create_project". */
static void camel_to_lower(struct buf *b, const char *s)
{
	bool was_upper = true;
	for (; *s; s++) {
		bool is_upper = isupper((unsigned char)*s);
		if (is_upper && !was_upper)
			buf_printf(b, "_");
		buf_printf(b, "%c", is_upper ? tolower((unsigned char)*s) : *s);
		was_upper = is_upper;
	}
}

/* protoc-c's naming over a dotted name: lower ("coffer__v1__projects") or C type
 * ("Coffer__V1__Projects"). */
static char *full_name(const char *dotted, bool type)
{
	struct buf b = {0};
	buf_printf(&b, "%s", "");
	const char *p = dotted;
	if (*p == '.')
		p++;
	while (*p) {
		const char *end = strchr(p, '.');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *piece = xrealloc(NULL, n + 1);
		memcpy(piece, p, n);
		piece[n] = '\0';
		if (b.len)
			buf_printf(&b, "__");
		if (type) {
			bool up = true;
			for (char *c = piece; *c; c++) {
				if (*c == '_') {
					up = true;
				} else {
					buf_printf(&b, "%c", up ? toupper((unsigned char)*c) : *c);
					up = false;
				}
			}
		} else {
			camel_to_lower(&b, piece);
		}
		free(piece);
		p += n;
		if (*p == '.')
			p++;
	}
	return b.p;
}

static char *lower_of(const char *s)
{
	struct buf b = {0};
	buf_printf(&b, "%s", "");
	camel_to_lower(&b, s);
	return b.p;
}

/* "coffer/v1/projects.proto" -> "coffer_v1_projects" (a C identifier). */
static char *file_ident(const char *name)
{
	char *id = xstrdup(name);
	char *dot = strrchr(id, '.');
	if (dot && strcmp(dot, ".proto") == 0)
		*dot = '\0';
	for (char *c = id; *c; c++)
		if (!isalnum((unsigned char)*c))
			*c = '_';
	return id;
}

static char *base_name(const char *name)
{
	char *b = xstrdup(name);
	char *dot = strrchr(b, '.');
	if (dot && strcmp(dot, ".proto") == 0)
		*dot = '\0';
	return b;
}

static void emit(Google__Protobuf__Compiler__CodeGeneratorResponse *resp, const char *name,
                 struct buf *content)
{
	out_file *f = xrealloc(NULL, sizeof(*f));
	google__protobuf__compiler__code_generator_response__file__init(f);
	f->name = xstrdup(name);
	f->content = content->p ? content->p : xstrdup("");
	resp->file = xrealloc(resp->file, sizeof(*resp->file) * (resp->n_file + 1));
	resp->file[resp->n_file++] = f;
	*content = (struct buf){0};
}

static void add_symbols(struct buf *b, const char *prefix, msg_proto *const *msgs, size_t n,
                        Google__Protobuf__EnumDescriptorProto *const *enums, size_t n_enums)
{
	for (size_t i = 0; i < n_enums; i++)
		buf_printf(b, "\t\"%s%s\",\n", prefix, enums[i]->name);
	for (size_t i = 0; i < n; i++) {
		buf_printf(b, "\t\"%s%s\",\n", prefix, msgs[i]->name);
		struct buf nested = {0};
		buf_printf(&nested, "%s%s.", prefix, msgs[i]->name);
		add_symbols(b, nested.p, msgs[i]->nested_type, msgs[i]->n_nested_type,
		            msgs[i]->enum_type, msgs[i]->n_enum_type);
		free(nested.p);
	}
}

/* What the generators need to know of a service, in each of protoc-c's spellings. */
struct svc_names {
	const svc_proto *sv; /* the service */
	char *qualified;     /* "coffer.v1.Projects" */
	char *lower;         /* "coffer__v1__projects" */
	char *ctype;         /* "Coffer__V1__Projects" */
	char *upper;         /* "COFFER__V1__PROJECTS" */
	char *short_lower;   /* "projects" */
	char *pub;           /* "coffer_v1_projects": the public stubs' prefix */
};

static void svc_names_init(struct svc_names *n, const char *pkg_prefix, const svc_proto *sv)
{
	struct buf q = {0}, pub = {0};
	buf_printf(&q, "%s%s", pkg_prefix, sv->name);
	n->sv = sv;
	n->qualified = q.p;
	n->lower = full_name(q.p, false);
	n->ctype = full_name(q.p, true);
	n->upper = xstrdup(n->lower);
	for (char *c = n->upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	n->short_lower = lower_of(sv->name);
	buf_printf(&pub, "%s", "");
	for (const char *c = n->lower; *c; c++) {
		if (c[0] == '_' && c[1] == '_')
			c++;
		buf_printf(&pub, "%c", *c);
	}
	n->pub = pub.p;
}

static void svc_names_free(struct svc_names *n)
{
	free(n->qualified);
	free(n->lower);
	free(n->ctype);
	free(n->upper);
	free(n->short_lower);
	free(n->pub);
}

static bool streaming(const method_proto *mp)
{
	return mp->client_streaming || mp->server_streaming;
}

/* The typed handler table: one function pointer per method. */
static void gen_handlers(struct buf *h, const struct svc_names *n)
{
	buf_printf(h, "typedef struct %s__Handlers {\n", n->ctype);
	for (size_t m = 0; m < n->sv->n_method; m++) {
		const method_proto *mp = n->sv->method[m];
		char *mname = lower_of(mp->name);
		if (streaming(mp)) {
			buf_printf(h,
			           "\tint (*%s)(struct call *call, struct rpc_stream *stream);\n",
			           mname);
		} else {
			char *in = full_name(mp->input_type, true);
			char *out = full_name(mp->output_type, true);
			buf_printf(h, "\tint (*%s)(struct call *call, const %s *req, %s *resp);\n",
			           mname, in, out);
			free(in);
			free(out);
		}
		free(mname);
	}
	buf_printf(h, "} %s__Handlers;\n", n->ctype);
}

/* Each method's index, and every method as an X-macro: a table that must name each method
 * (server/api/policy.c) is written over it, so a method it lacks does not compile. */
static void gen_method_list(struct buf *h, const struct svc_names *n)
{
	struct buf list = {0};
	buf_printf(h, "enum {\n");
	for (size_t m = 0; m < n->sv->n_method; m++) {
		char *mname = lower_of(n->sv->method[m]->name);
		struct buf up = {0};
		buf_printf(&up, "%s__%s", n->upper, mname);
		for (char *p = up.p; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		buf_printf(h, "\t%s = %zu,\n", up.p, m);
		buf_printf(&list, " \\\n\tX(%s, %s, %s)", up.p, n->short_lower, mname);
		free(up.p);
		free(mname);
	}
	buf_printf(h, "};\n");
	buf_printf(h,
	           "/* Every method of %s, in order: X(index, service, method). */\n"
	           "#define %s__METHODS(X)%s\n",
	           n->qualified, n->upper, list.p ? list.p : "");
	free(list.p);
}

/* The dispatch functions from the untyped runtime to the typed handler table. */
static void gen_invokers(struct buf *c, const struct svc_names *n)
{
	for (size_t m = 0; m < n->sv->n_method; m++) {
		const method_proto *mp = n->sv->method[m];
		char *mname = lower_of(mp->name);
		if (streaming(mp)) {
			buf_printf(c,
			           "static int %s__%s__invoke(const void *handlers, struct call "
			           "*call,\n"
			           "\t\tstruct rpc_stream *stream)\n{\n"
			           "\tconst %s__Handlers *t = handlers;\n"
			           "\tif (t == NULL || t->%s == NULL)\n"
			           "\t\treturn 12; /* UNIMPLEMENTED */\n"
			           "\treturn t->%s(call, stream);\n}\n\n",
			           n->lower, mname, n->ctype, mname, mname);
		} else {
			char *in = full_name(mp->input_type, true);
			char *out = full_name(mp->output_type, true);
			buf_printf(c,
			           "static int %s__%s__invoke(const void *handlers, struct call "
			           "*call,\n"
			           "\t\tconst ProtobufCMessage *req, ProtobufCMessage *resp)\n{\n"
			           "\tconst %s__Handlers *t = handlers;\n"
			           "\tif (t == NULL || t->%s == NULL)\n"
			           "\t\treturn 12; /* UNIMPLEMENTED */\n"
			           "\treturn t->%s(call, (const %s *)req, (%s *)resp);\n}\n\n",
			           n->lower, mname, n->ctype, mname, mname, in, out);
			free(in);
			free(out);
		}
		free(mname);
	}
}

/* The method table and the service's descriptor. */
static void gen_method_table(struct buf *c, const struct svc_names *n)
{
	buf_printf(c, "static const coffer_method_desc %s__methods[] = {\n", n->lower);
	for (size_t m = 0; m < n->sv->n_method; m++) {
		const method_proto *mp = n->sv->method[m];
		char *mname = lower_of(mp->name);
		char *in = full_name(mp->input_type, false);
		char *out = full_name(mp->output_type, false);
		bool idempotent =
		        mp->options && mp->options->has_idempotency_level &&
		        mp->options->idempotency_level !=
		                GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__IDEMPOTENCY_UNKNOWN;
		bool no_side_effects =
		        mp->options && mp->options->has_idempotency_level &&
		        mp->options->idempotency_level ==
		                GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__NO_SIDE_EFFECTS;
		buf_printf(c,
		           "\t{\"%s\", \"/%s/%s\", &%s__descriptor, &%s__descriptor, %s, %s, %s, "
		           "%s,\n",
		           mp->name, n->qualified, mp->name, in, out,
		           mp->client_streaming ? "true" : "false",
		           mp->server_streaming ? "true" : "false", idempotent ? "true" : "false",
		           no_side_effects ? "true" : "false");
		if (streaming(mp))
			buf_printf(c, "\t NULL, %s__%s__invoke},\n", n->lower, mname);
		else
			buf_printf(c, "\t %s__%s__invoke, NULL},\n", n->lower, mname);
		free(in);
		free(out);
		free(mname);
	}
	buf_printf(c,
	           "};\n\nconst coffer_service_desc %s__service = {\"%s\", %zu, %s__methods};\n\n",
	           n->lower, n->qualified, n->sv->n_method, n->lower);
}

/* The file's descriptor for reflection: its serialized FileDescriptorProto (without source
 * info), its imports, every name it declares, and its services. */
static void gen_file_desc(struct buf *c, const file_proto *fp, const char *pkg_prefix,
                          const char *ident)
{
	Google__Protobuf__SourceCodeInfo *sci = fp->source_code_info;
	((file_proto *)fp)->source_code_info = NULL;
	size_t len = protobuf_c_message_get_packed_size(&fp->base);
	uint8_t *bytes = xrealloc(NULL, len ? len : 1);
	protobuf_c_message_pack(&fp->base, bytes);
	((file_proto *)fp)->source_code_info = sci;
	buf_printf(c, "static const uint8_t descriptor_bytes[%zu] = {", len ? len : 1);
	for (size_t i = 0; i < len; i++)
		buf_printf(c, "%s%u,", i % 16 ? "" : "\n\t", bytes[i]);
	buf_printf(c, "\n};\n\n");
	free(bytes);

	if (fp->n_dependency) {
		buf_printf(c, "static const char *const deps[] = {\n");
		for (size_t i = 0; i < fp->n_dependency; i++)
			buf_printf(c, "\t\"%s\",\n", fp->dependency[i]);
		buf_printf(c, "};\n\n");
	}
	struct buf syms = {0};
	add_symbols(&syms, pkg_prefix, fp->message_type, fp->n_message_type, fp->enum_type,
	            fp->n_enum_type);
	for (size_t s = 0; s < fp->n_service; s++) {
		buf_printf(&syms, "\t\"%s%s\",\n", pkg_prefix, fp->service[s]->name);
		for (size_t m = 0; m < fp->service[s]->n_method; m++)
			buf_printf(&syms, "\t\"%s%s.%s\",\n", pkg_prefix, fp->service[s]->name,
			           fp->service[s]->method[m]->name);
	}
	size_t n_syms = 0;
	for (size_t i = 0; syms.p && i < syms.len; i++)
		n_syms += syms.p[i] == '\n';
	if (n_syms)
		buf_printf(c, "static const char *const symbols[] = {\n%s};\n\n", syms.p);
	free(syms.p);
	if (fp->n_service) {
		buf_printf(c, "static const coffer_service_desc *const services[] = {\n");
		for (size_t s = 0; s < fp->n_service; s++) {
			struct svc_names n;
			svc_names_init(&n, pkg_prefix, fp->service[s]);
			buf_printf(c, "\t&%s__service,\n", n.lower);
			svc_names_free(&n);
		}
		buf_printf(c, "};\n\n");
	}
	buf_printf(c,
	           "const coffer_file_desc coffer__file__%s = {\n\t\"%s\", descriptor_bytes, %zu,\n"
	           "\t%zu, %s, %zu, %s, %zu, %s,\n};\n",
	           ident, fp->name, len, fp->n_dependency, fp->n_dependency ? "deps" : "NULL",
	           n_syms, n_syms ? "symbols" : "NULL", fp->n_service,
	           fp->n_service ? "services" : "NULL");
}

/* The typed blocking client stubs of one service (unary methods only). */
static void gen_stubs_of(struct buf *sh, struct buf *sc, const struct svc_names *n)
{
	for (size_t m = 0; m < n->sv->n_method; m++) {
		const method_proto *mp = n->sv->method[m];
		if (streaming(mp))
			continue;
		char *mname = lower_of(mp->name);
		char *in = full_name(mp->input_type, true);
		char *out = full_name(mp->output_type, true);
		buf_printf(sh,
		           "/* %s.%s: 0 and *resp (free with protobuf_c_message_free_unpacked) on "
		           "OK;\n"
		           " * a negative value and err filled otherwise. */\n"
		           "COFFER_API int %s_%s(coffer_channel *ch, const %s *req, %s **resp, "
		           "coffer_error *err);\n\n",
		           n->qualified, mp->name, n->pub, mname, in, out);
		buf_printf(sc,
		           "int %s_%s(coffer_channel *ch, const %s *req, %s **resp, coffer_error "
		           "*err)\n"
		           "{\n\treturn coffer__call_unary(ch, &%s__service.methods[%zu], "
		           "&req->base,\n"
		           "\t                          (ProtobufCMessage **)resp, err);\n}\n\n",
		           n->pub, mname, in, out, n->lower, m);
		free(mname);
		free(in);
		free(out);
	}
}

/* NAME.stub.h and NAME.stub.c, for a file with services. */
static void gen_stubs(Google__Protobuf__Compiler__CodeGeneratorResponse *resp, const file_proto *fp,
                      const char *base, const char *ident, const char *pkg_prefix)
{
	struct buf sh = {0}, sc = {0}, path = {0};
	buf_printf(&sh, "/* Generated by protoc-gen-coffer from %s. Do not edit. */\n", fp->name);
	buf_printf(&sh, "#ifndef COFFER_GEN_%s_STUB_H\n#define COFFER_GEN_%s_STUB_H\n\n", ident,
	           ident);
	buf_printf(&sh, "#include \"coffer/client.h\"\n#include \"%s.pb-c.h\"\n\n", base);
	buf_printf(&sc, "/* Generated by protoc-gen-coffer from %s. Do not edit. */\n", fp->name);
	buf_printf(&sc,
	           "#include \"%s.stub.h\"\n#include \"%s.rpc.h\"\n"
	           "#include \"coffer_client_internal.h\"\n\n",
	           base, base);
	for (size_t s = 0; s < fp->n_service; s++) {
		struct svc_names n;
		svc_names_init(&n, pkg_prefix, fp->service[s]);
		gen_stubs_of(&sh, &sc, &n);
		svc_names_free(&n);
	}
	buf_printf(&sh, "#endif\n");
	buf_printf(&path, "%s.stub.h", base);
	emit(resp, path.p, &sh);
	path.len = 0;
	buf_printf(&path, "%s.stub.c", base);
	emit(resp, path.p, &sc);
	free(path.p);
}

/* NAME.rpc.h and NAME.rpc.c for one .proto file, and its stubs when it has services. */
static void gen_rpc(Google__Protobuf__Compiler__CodeGeneratorResponse *resp, const file_proto *fp)
{
	char *base = base_name(fp->name);
	char *ident = file_ident(fp->name);
	struct buf prefix = {0}, h = {0}, c = {0}, path = {0};
	buf_printf(&prefix, "%s%s", fp->package ? fp->package : "",
	           fp->package && *fp->package ? "." : "");

	buf_printf(&h, "/* Generated by protoc-gen-coffer from %s. Do not edit. */\n", fp->name);
	buf_printf(&h, "#ifndef COFFER_GEN_%s_RPC_H\n#define COFFER_GEN_%s_RPC_H\n\n", ident,
	           ident);
	buf_printf(&h, "#include \"coffer_rpc_meta.h\"\n#include \"%s.pb-c.h\"\n\n", base);
	buf_printf(&h, "extern const coffer_file_desc coffer__file__%s;\n", ident);
	buf_printf(&c, "/* Generated by protoc-gen-coffer from %s. Do not edit. */\n", fp->name);
	buf_printf(&c, "#include \"%s.rpc.h\"\n\n", base);
	for (size_t s = 0; s < fp->n_service; s++) {
		struct svc_names n;
		svc_names_init(&n, prefix.p, fp->service[s]);
		buf_printf(&h,
		           "\n/* service %s */\nextern const coffer_service_desc %s__service;\n",
		           n.qualified, n.lower);
		gen_handlers(&h, &n);
		gen_method_list(&h, &n);
		gen_invokers(&c, &n);
		gen_method_table(&c, &n);
		svc_names_free(&n);
	}
	gen_file_desc(&c, fp, prefix.p, ident);
	buf_printf(&h, "\n#endif\n");

	buf_printf(&path, "%s.rpc.h", base);
	emit(resp, path.p, &h);
	path.len = 0;
	buf_printf(&path, "%s.rpc.c", base);
	emit(resp, path.p, &c);
	if (fp->n_service)
		gen_stubs(resp, fp, base, ident, prefix.p);
	free(path.p);
	free(prefix.p);
	free(ident);
	free(base);
}

static const file_proto *find_file(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                                   const char *name)
{
	for (size_t i = 0; i < req->n_proto_file; i++)
		if (strcmp(req->proto_file[i]->name, name) == 0)
			return req->proto_file[i];
	return NULL;
}

int main(void)
{
	size_t len = 0, cap = 1 << 16;
	uint8_t *in = xrealloc(NULL, cap);
	size_t n;
	while ((n = fread(in + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap)
			in = xrealloc(in, cap *= 2);
	}
	Google__Protobuf__Compiler__CodeGeneratorRequest *req =
	        google__protobuf__compiler__code_generator_request__unpack(NULL, len, in);
	free(in);
	if (req == NULL) {
		fprintf(stderr, "protoc-gen-coffer: cannot parse the CodeGeneratorRequest\n");
		return 1;
	}
	Google__Protobuf__Compiler__CodeGeneratorResponse resp =
	        GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
	struct buf rh = {0}, rc = {0};
	buf_printf(&rh, "/* Generated by protoc-gen-coffer. Do not edit. */\n"
	                "#ifndef COFFER_GEN_REGISTRY_H\n#define COFFER_GEN_REGISTRY_H\n\n"
	                "#include \"coffer_rpc_meta.h\"\n\n"
	                "/* Every .proto file of this build, for server reflection. */\n"
	                "extern const coffer_file_desc *const coffer__files[];\n"
	                "extern const size_t coffer__n_files;\n\n#endif\n");
	buf_printf(&rc, "/* Generated by protoc-gen-coffer. Do not edit. */\n"
	                "#include \"coffer_registry.h\"\n");
	for (size_t i = 0; i < req->n_file_to_generate; i++) {
		const file_proto *fp = find_file(req, req->file_to_generate[i]);
		if (fp == NULL) {
			resp.error =
			        "protoc-gen-coffer: a file to generate is missing from the request";
			break;
		}
		gen_rpc(&resp, fp);
		char *base = base_name(fp->name);
		buf_printf(&rc, "#include \"%s.rpc.h\"\n", base);
		free(base);
	}
	buf_printf(&rc, "\nconst coffer_file_desc *const coffer__files[] = {\n");
	for (size_t i = 0; i < req->n_file_to_generate; i++) {
		char *ident = file_ident(req->file_to_generate[i]);
		buf_printf(&rc, "\t&coffer__file__%s,\n", ident);
		free(ident);
	}
	buf_printf(&rc, "};\n\nconst size_t coffer__n_files = %zu;\n", req->n_file_to_generate);
	emit(&resp, "coffer_registry.h", &rh);
	emit(&resp, "coffer_registry.c", &rc);

	size_t out_len = protobuf_c_message_get_packed_size(&resp.base);
	uint8_t *out = xrealloc(NULL, out_len ? out_len : 1);
	protobuf_c_message_pack(&resp.base, out);
	if (fwrite(out, 1, out_len, stdout) != out_len)
		return 1;
	free(out);
	google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
	return 0;
}
