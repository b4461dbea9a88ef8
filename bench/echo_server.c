/*
 * echo_server - the ceiling: a bare gRPC C-core server that answers every unary call of the
 * methods it is given with the request's own bytes, the way the documentation's fastest examples
 * do (threads on one completion queue, calls requested up front, one batch per answer:
 * initial metadata, message, status, close). No parsing, no allocation beyond gRPC's own.
 *
 *   coffer-echo-server --listen 127.0.0.1:PORT [--threads N] [--slots N] [METHOD...]
 *
 * METHOD defaults to /grpc.health.v1.Health/Check, whose empty request echoed back parses as a
 * HealthCheckResponse: the same load generator drives this server and cofferd's health check.
 * Runs until SIGTERM or SIGINT. Figures, not assertions: scripts/dev bench.
 */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct slot {
	void *method;              /* registered method handle */
	grpc_call *call;           /* the call, once notified */
	gpr_timespec deadline;     /* its deadline */
	grpc_metadata_array md;    /* request metadata */
	grpc_byte_buffer *req;     /* the request message */
	int cancelled;             /* from RECV_CLOSE_ON_SERVER */
	int answering;             /* 0: waiting for a call; 1: the answer batch is out */
	grpc_server *server;       /* owner */
	grpc_completion_queue *cq; /* the shared queue */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void post(struct slot *s)
{
	s->call = NULL;
	s->req = NULL;
	s->answering = 0;
	grpc_metadata_array_init(&s->md);
	grpc_server_request_registered_call(s->server, s->method, &s->call, &s->deadline, &s->md,
	                                    &s->req, s->cq, s->cq, s);
}

static void answer(struct slot *s)
{
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->req;
	ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
	s->answering = 1;
	grpc_call_start_batch(s->call, ops, 4, s, NULL);
}

static void *worker(void *arg)
{
	grpc_completion_queue *cq = arg;
	for (;;) {
		grpc_event ev =
		        grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE || ev.tag == NULL)
			continue;
		struct slot *s = ev.tag;
		if (!s->answering) {
			if (!ev.success) /* shutting down */
				continue;
			if (s->req == NULL)
				s->req = grpc_raw_byte_buffer_create(NULL, 0);
			answer(s);
			continue;
		}
		grpc_byte_buffer_destroy(s->req);
		grpc_metadata_array_destroy(&s->md);
		grpc_call_unref(s->call);
		if (!stop)
			post(s);
	}
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:50999";
	int threads = 2, slots = 64;
	const char *methods[16];
	int n_methods = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--slots") == 0 && i + 1 < argc)
			slots = atoi(argv[++i]);
		else if (argv[i][0] == '/' && n_methods < 16)
			methods[n_methods++] = argv[i];
		else {
			fprintf(stderr, "usage: coffer-echo-server [--listen ADDR] [--threads N] "
			                "[--slots N] "
			                "[METHOD...]\n");
			return 2;
		}
	}
	if (n_methods == 0)
		methods[n_methods++] = "/grpc.health.v1.Health/Check";
	if (threads < 1 || slots < 1)
		return 2;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	grpc_init();
	grpc_arg arg = {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}};
	grpc_channel_args args = {1, &arg};
	grpc_server *server = grpc_server_create(&args, NULL);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	size_t n_slots = (size_t)slots * (size_t)n_methods;
	struct slot *all = calloc(n_slots, sizeof(*all));
	for (int m = 0; m < n_methods; m++) {
		void *h = grpc_server_register_method(server, methods[m], NULL,
		                                      GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		for (int k = 0; k < slots; k++) {
			struct slot *s = &all[m * slots + k];
			s->method = h;
			s->server = server;
			s->cq = cq;
		}
	}
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	int port = grpc_server_add_http2_port(server, listen, creds);
	grpc_server_credentials_release(creds);
	if (port <= 0) {
		fprintf(stderr, "coffer-echo-server: cannot listen on %s\n", listen);
		return 1;
	}
	grpc_server_start(server);
	for (size_t i = 0; i < n_slots; i++)
		post(&all[i]);
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, cq);
	fprintf(stderr, "coffer-echo-server: listening on %s (%d threads)\n", listen, threads);
	while (!stop)
		pause();
	grpc_server_shutdown_and_notify(server, cq, NULL);
	grpc_server_cancel_all_calls(server);
	grpc_completion_queue_shutdown(cq);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	grpc_server_destroy(server);
	grpc_completion_queue_destroy(cq);
	free(t);
	free(all);
	grpc_shutdown();
	return 0;
}
