/* SPDX-License-Identifier: MIT
 * Shared helpers of the CMocka tests: where the fixture's redis-server is, and small utilities. */
#ifndef HTTPCACHE_TEST_SUPPORT_H
#define HTTPCACHE_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpcache.h"

/* The fixture's redis:// URL (from $HTTPCACHE_TEST_REDIS_DIR/url); fails the test if absent:
 * Redis tests never skip. Static storage. */
const char *test_redis_url(void);
/* The fixture's URL with `path` (e.g. "/3") after its authority and `query` (e.g.
 * "command_timeout_ms=2000", or "") joined to its own query (a TLS fixture's ssl_ca_certs=...). */
const char *test_redis_url_with(const char *path, const char *query, char *out, size_t cap);
/* A loopback TCP listener that never accepts (connects complete into its backlog of `backlog`;
 * a full one leaves the next connect in SYN-SENT): a peer that never answers. Its port in *port;
 * returns the socket (the caller closes it). */
int test_silent_listener(int backlog, int *port);
/* unix://<fixture socket>. Static storage. */
const char *test_redis_unix_url(void);
/* The cluster fixture's redis+cluster:// URL (from $HTTPCACHE_TEST_CLUSTER_DIR/url). Static storage. */
const char *test_cluster_url(void);
/* The first line of DIR/name in the redis fixture's directory (url, url_auth, ...) into out. */
const char *test_redis_fixture_file(const char *name, char *out, size_t cap);
/* The fixture's redis-server pid. */
int test_redis_pid(void);
/* Runs the fixture script with `action` (e.g. "restart"); asserts it succeeded. */
void test_redis_fixture(const char *action);
/* A CMocka teardown for tests that stall (SIGSTOP) or kill the fixture's server: resumes it
 * (SIGCONT) and revives it if it is gone, so a failed assertion never leaves the shared server
 * stopped for the tests after it. Asserts nothing; returns non-zero if it could not. */
int test_redis_restore(void **state);
/* A namespace unique to this process and call, so tests never see each other's keys. */
const char *test_unique_namespace(const char *prefix);
/* Milliseconds of CLOCK_MONOTONIC. */
int64_t test_now_ms(void);

/* What a non-blocking request's completion reported (and how many times it ran), for
 * test_on_get / test_on_done as its callback with the record as payload. */
typedef struct {
  int done;
  int status;
  char value[256];
  size_t size;
  int64_t ttl_ms;
} get_result;
void test_on_get(int status, const void *value, size_t size, int64_t ttl_ms, void *payload);
typedef struct {
  int done;
  int status;
  int64_t count;
} done_result;
void test_on_done(int status, int64_t count, void *payload);

#ifdef _WIN32
/* POSIX's reentrant rand(), which Windows lacks (a linear congruential step). */
static inline int rand_r(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return (int)((*seed >> 1) & 0x7fffffff);
}
#endif
/* A 32-bit integer hash (xorshift-multiply), for values derived from seeds. */
uint32_t test_mix32(uint32_t x);
/* Sleeps ms milliseconds. */
void test_sleep_ms(int ms);

/* support_loop.c (a test declared with LOOP): a tiny host loop for the non-blocking API, as an application's would be: it polls the
 * descriptors the watch callback names (test_loop_watch, payload: the test_loop) and calls
 * httpcache_async_process with what is ready. Never asserts (it also runs in forked children):
 * failed process() calls are counted in process_errors. */
typedef struct {
  int fd;          /* the descriptor watched last (-1: none) */
  uint32_t events; /* what it is watched for */
  int watch_calls;
  int write_asks; /* watch calls asking for HTTPCACHE_EV_WRITE */
  int process_errors;
  /* Every descriptor watched now: on Windows a cluster context watches one socket per node. */
  int nwatched;
  httpcache_fd watched[16];
  uint32_t watched_events[16];
} test_loop;
#define TEST_LOOP_INIT {-1, 0, 0, 0, 0, 0, {0}, {0}}
void test_loop_watch(httpcache_fd fd, uint32_t events, void *payload);
/* Polls and processes until nothing is pending or deadline_ms passes; returns the pending count. */
size_t test_loop_run(test_loop *l, httpcache_async *ctx, int deadline_ms);

#endif
