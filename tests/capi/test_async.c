/* SPDX-License-Identifier: MIT
 * The non-blocking calls, driven by a small poll() loop as a host event loop would. On Windows
 * (under Wine) the same, with WSAPoll; there is no unix:// there, and no SIGSTOP to stall the
 * server with. */
#define _POSIX_C_SOURCE 200809L
#ifdef _WIN32
#include <winsock2.h>
#define poll WSAPoll
#else
#include <poll.h>
#include <signal.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "httpcache.h"
#include "support.h"

/* The shared host loop (support.h); every process() call here must succeed. */
static size_t run_loop(test_loop *l, httpcache_async *ctx, int deadline_ms) {
  size_t pending = test_loop_run(l, ctx, deadline_ms);
  assert_int_equal(l->process_errors, 0);
  return pending;
}

/* ---- fixture (completion records: get_result, done_result in support.h) ---- */

typedef struct {
  httpcache_cache *cache;
  httpcache_async *ctx;
  test_loop l;
} fixture;

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static int setup_url(void **state, const char *url, const httpcache_options *opts) {
  fixture *f = calloc(1, sizeof *f);
  f->l.fd = -1;
  if (httpcache_cache_open(&f->cache, url, test_unique_namespace("async"), NULL, opts) != HTTPCACHE_OK)
    fail_msg("open: %s", httpcache_error_last()->message);
  assert_int_equal(httpcache_async_open(&f->ctx, f->cache, test_loop_watch, &f->l), HTTPCACHE_OK);
  *state = f;
  return 0;
}

static int setup_memory(void **state) { return setup_url(state, "memory://", NULL); }
static int setup_redis(void **state) { return setup_url(state, test_redis_url(), NULL); }
#ifndef _WIN32
static int setup_unix(void **state) { return setup_url(state, test_redis_unix_url(), NULL); }
#endif
static int setup_cluster(void **state) { return setup_url(state, test_cluster_url(), NULL); }

static int teardown(void **state) {
  fixture *f = *state;
  httpcache_async_free(f->ctx);
  httpcache_cache_free(f->cache);
  free(f);
  return 0;
}

/** set, get (value + remaining TTL), invalidate and a miss, each completed through the loop. */
static void test_async_round_trip(void **state) {
  fixture *f = *state;
  get_result g = {0};
  done_result d = {0};
  const char *keys[] = {"k", "absent"};
  size_t lens[] = {1, 6};
  assert_int_equal(httpcache_async_set(f->ctx, "k", 1, "v\0x", 3, &one_minute, test_on_done, &d), HTTPCACHE_OK);
  assert_int_equal(run_loop(&f->l, f->ctx, 2000), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(d.status, HTTPCACHE_OK);
  assert_int_equal(d.count, 60);
  assert_int_equal(httpcache_async_get(f->ctx, "k", 1, test_on_get, &g), HTTPCACHE_OK);
  assert_int_equal(run_loop(&f->l, f->ctx, 2000), 0);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_OK);
  assert_int_equal(g.size, 3);
  assert_memory_equal(g.value, "v\0x", 3);
  assert_in_range(g.ttl_ms, 58000, 60000);
  memset(&d, 0, sizeof d);
  assert_int_equal(httpcache_async_invalidate(f->ctx, (const void *const *)keys, lens, 2, test_on_done, &d), 0);
  assert_int_equal(run_loop(&f->l, f->ctx, 2000), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(d.count, 1);
  memset(&g, 0, sizeof g);
  assert_int_equal(httpcache_async_get(f->ctx, "k", 1, test_on_get, &g), HTTPCACHE_OK);
  assert_int_equal(run_loop(&f->l, f->ctx, 2000), 0);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_ENOTFOUND);
}

/** Many requests in flight at once complete in order, each exactly once, with its own value. */
static void test_async_pipelined_requests(void **state) {
  fixture *f = *state;
  enum { N = 200 };
  static get_result got[N];
  static done_result set[N];
  char key[32], value[32];
  int i;
  memset(got, 0, sizeof got);
  memset(set, 0, sizeof set);
  for (i = 0; i < N; ++i) {
    snprintf(key, sizeof key, "p%d", i);
    snprintf(value, sizeof value, "value-%d", i);
    assert_int_equal(httpcache_async_set(f->ctx, key, strlen(key), value, strlen(value), &one_minute, test_on_done, &set[i]),
                     0);
  }
  for (i = 0; i < N; ++i) {
    snprintf(key, sizeof key, "p%d", i);
    assert_int_equal(httpcache_async_get(f->ctx, key, strlen(key), test_on_get, &got[i]), 0);
  }
  assert_int_equal(run_loop(&f->l, f->ctx, 5000), 0);
  for (i = 0; i < N; ++i) {
    snprintf(value, sizeof value, "value-%d", i);
    assert_int_equal(set[i].done, 1);
    assert_int_equal(got[i].done, 1);
    assert_int_equal(got[i].status, HTTPCACHE_OK);
    assert_int_equal(got[i].size, strlen(value));
    assert_memory_equal(got[i].value, value, got[i].size);
  }
}

/** Bad arguments are refused when starting, and then no callback runs. */
static void test_async_bad_input(void **state) {
  fixture *f = *state;
  get_result g = {0};
  done_result d = {0};
  httpcache_ttl_policy zero = {HTTPCACHE_TTL_SECONDS, 0, NULL, NULL};
  assert_int_equal(httpcache_async_get(f->ctx, "", 0, test_on_get, &g), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_get(f->ctx, NULL, 1, test_on_get, &g), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_get(f->ctx, "k", 1, NULL, &g), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_get(NULL, "k", 1, test_on_get, &g), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_set(f->ctx, "k", 1, "v", 1, &zero, test_on_done, &d), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_set(f->ctx, "k", 1, NULL, 1, &one_minute, test_on_done, &d), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_invalidate(f->ctx, NULL, NULL, 0, test_on_done, &d), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_process(NULL, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_open(NULL, f->cache, NULL, NULL), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_async_pending(f->ctx), 0);
  assert_int_equal(g.done + d.done, 0);
  assert_int_equal(httpcache_async_timeout_ms(f->ctx), -1);
  httpcache_async_free(NULL);
}

/** memory:// completes every request inside the call that starts it, watching nothing. */
static void test_async_memory_completes_at_once(void **state) {
  fixture *f = *state;
  get_result g = {0};
  done_result d = {0};
  assert_int_equal(httpcache_async_set(f->ctx, "m", 1, "v", 1, &one_minute, test_on_done, &d), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(httpcache_async_get(f->ctx, "m", 1, test_on_get, &g), 0);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_OK);
  assert_int_equal(f->l.watch_calls, 0);
}

#ifndef _WIN32
/** A stalled server (SIGSTOP) makes requests fail with ETIMEOUT after the command timeout, never
 *  blocking the loop; once it resumes the context reconnects and serves again. */
static void test_async_stalled_server_times_out(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  test_loop l = TEST_LOOP_INIT;
  get_result g = {0};
  done_result d = {0};
  int64_t started, elapsed;
  pid_t pid = (pid_t)test_redis_pid();
  (void)state;
  opts.command_timeout_ms = 200;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), test_unique_namespace("stall"), NULL, &opts), 0);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &l), 0);
  assert_int_equal(httpcache_async_set(ctx, "s", 1, "v", 1, &one_minute, test_on_done, &d), 0);
  assert_int_equal(run_loop(&l, ctx, 2000), 0); /* connected and working */
  assert_int_equal(kill(pid, SIGSTOP), 0); /* test_redis_restore resumes it if an assertion fails */
  started = test_now_ms();
  assert_int_equal(httpcache_async_get(ctx, "s", 1, test_on_get, &g), 0);
  assert_int_equal(run_loop(&l, ctx, 10000), 0);
  elapsed = test_now_ms() - started;
  assert_int_equal(kill(pid, SIGCONT), 0);
  printf("stalled server: the get failed after %lld ms (command timeout 200 ms)\n", (long long)elapsed);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_ETIMEOUT);
  /* Not before the command timeout (a lower bound load cannot break); the upper bound is only
   * liveness: run_loop gives up after 10 s. */
  assert_true(elapsed >= 150);
  memset(&g, 0, sizeof g);
  assert_int_equal(httpcache_async_get(ctx, "s", 1, test_on_get, &g), 0);
  assert_int_equal(run_loop(&l, ctx, 3000), 0);
  assert_int_equal(g.status, HTTPCACHE_OK);
  httpcache_async_free(ctx);
  httpcache_cache_free(cache);
}
#endif

/** Freeing a context with requests in flight completes them with ECANCELED and stops watching. */
static void test_async_free_cancels_pending(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  test_loop l = TEST_LOOP_INIT;
  get_result g1 = {0}, g2 = {0};
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), test_unique_namespace("cancel"), NULL, NULL), 0);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &l), 0);
  assert_int_equal(httpcache_async_get(ctx, "a", 1, test_on_get, &g1), 0);
  assert_int_equal(httpcache_async_get(ctx, "b", 1, test_on_get, &g2), 0);
  assert_int_equal(httpcache_async_pending(ctx), 2);
  assert_true(l.fd >= 0);
  httpcache_async_free(ctx);
  assert_int_equal(g1.done, 1);
  assert_int_equal(g2.done, 1);
  assert_int_equal(g1.status, HTTPCACHE_ECANCELED);
  assert_int_equal(g2.status, HTTPCACHE_ECANCELED);
  assert_int_equal(l.fd, -1);
  httpcache_cache_free(cache);
}

/** With nothing listening, requests fail with EBACKEND through the loop, and the loop never blocks. */
static void test_async_server_down(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  test_loop l = TEST_LOOP_INIT;
  get_result g = {0};
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "redis://127.0.0.1:1", "down", NULL, NULL), 0);
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &l), 0);
  assert_int_equal(httpcache_async_get(ctx, "a", 1, test_on_get, &g), 0);
  assert_int_equal(run_loop(&l, ctx, 3000), 0);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_EBACKEND);
  httpcache_async_free(ctx);
  httpcache_cache_free(cache);
}

/* Sets `key` to `value` through the loop, which also connects and establishes the connection. */
static void store_through_loop(fixture *f, const char *key, const char *value) {
  done_result d = {0};
  assert_int_equal(httpcache_async_set(f->ctx, key, strlen(key), value, strlen(value), &one_minute, test_on_done, &d), 0);
  assert_int_equal(run_loop(&f->l, f->ctx, 3000), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(d.status, HTTPCACHE_OK);
}

/** On an established connection, a lone request is written inside the call that starts it: the
 *  watch callback hears nothing (READ -> READ|WRITE -> READ nets to no change), the reply becomes
 *  readable on the watched descriptor without any process(EV_WRITE), and one process(EV_READ)
 *  completes it. On a cluster the node session does the same behind the epoll descriptor, so that
 *  descriptor turns readable only when the reply is there. */
static void test_async_lone_request_written_at_once(void **state) {
  fixture *f = *state;
  static get_result g; /* static: a failed assert leaves the request to be canceled by teardown */
  struct pollfd p[16];
  int readable = 0;
  memset(&g, 0, sizeof g);
  store_through_loop(f, "lone", "v1");
  assert_true(f->l.fd >= 0);
  assert_true(f->l.events & HTTPCACHE_EV_READ);
  f->l.watch_calls = 0;
  f->l.write_asks = 0;
  assert_int_equal(httpcache_async_get(f->ctx, "lone", 4, test_on_get, &g), HTTPCACHE_OK);
  assert_int_equal(f->l.write_asks, 0);
  assert_int_equal(f->l.watch_calls, 0);
  assert_int_equal(g.done, 0);
  assert_int_equal(httpcache_async_pending(f->ctx), 1);
  /* Every watched descriptor: on Windows a cluster context watches each node's socket. */
  for (int i = 0; i < f->l.nwatched; ++i) {
    p[i].fd = f->l.watched[i];
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  assert_int_equal(poll(p, (unsigned)f->l.nwatched, 2000), 1);
  for (int i = 0; i < f->l.nwatched; ++i) readable |= (p[i].revents & POLLIN) != 0;
  assert_true(readable);
  assert_int_equal(httpcache_async_process(f->ctx, HTTPCACHE_EV_READ), HTTPCACHE_OK);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.status, HTTPCACHE_OK);
  assert_int_equal(g.size, 2);
  assert_memory_equal(g.value, "v1", 2);
  assert_int_equal(f->l.write_asks, 0);
  assert_int_equal(f->l.watch_calls, 0);
  assert_int_equal(httpcache_async_pending(f->ctx), 0);
}

/** Two requests started back to back (the second while the first is pending) both complete
 *  through the loop, in order. */
static void test_async_back_to_back_requests(void **state) {
  fixture *f = *state;
  static get_result a, b; /* static: see above */
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  store_through_loop(f, "a", "va");
  store_through_loop(f, "b", "vb");
  assert_int_equal(httpcache_async_get(f->ctx, "a", 1, test_on_get, &a), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_get(f->ctx, "b", 1, test_on_get, &b), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_pending(f->ctx), 2);
  assert_int_equal(run_loop(&f->l, f->ctx, 3000), 0);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.status, HTTPCACHE_OK);
  assert_memory_equal(a.value, "va", 2);
  assert_int_equal(b.done, 1);
  assert_int_equal(b.status, HTTPCACHE_OK);
  assert_memory_equal(b.value, "vb", 2);
}

typedef struct {
  httpcache_async *ctx;
  get_result first, second;
  int start_rc; /* checked after the loop: a failing assert must not jump out of the library */
} chained;

static void on_get_then_start(int status, const void *value, size_t size, int64_t ttl_ms, void *payload) {
  chained *c = payload;
  test_on_get(status, value, size, ttl_ms, &c->first);
  c->start_rc = httpcache_async_get(c->ctx, "b", 1, test_on_get, &c->second);
}

/** A completion that starts a request runs inside process(), within the reply loop of the
 *  connection: that request is queued (not written there) and completes on a later loop pass. */
static void test_async_request_started_by_a_completion(void **state) {
  fixture *f = *state;
  static chained c; /* static: see above */
  memset(&c, 0, sizeof c);
  c.ctx = f->ctx;
  store_through_loop(f, "a", "va");
  store_through_loop(f, "b", "vb");
  assert_int_equal(httpcache_async_get(f->ctx, "a", 1, on_get_then_start, &c), HTTPCACHE_OK);
  assert_int_equal(run_loop(&f->l, f->ctx, 3000), 0);
  assert_int_equal(c.first.done, 1);
  assert_int_equal(c.first.status, HTTPCACHE_OK);
  assert_int_equal(c.start_rc, HTTPCACHE_OK);
  assert_int_equal(c.second.done, 1);
  assert_int_equal(c.second.status, HTTPCACHE_OK);
  assert_memory_equal(c.second.value, "vb", 2);
}

/** A completion of a failed request (its connection dropped: AUTH refused) that starts another
 *  one: that request goes out on a new connection at once (the watch callback hears of it), so
 *  it fails for the same reason, not by timing out at its deadline. */
static void test_async_request_started_by_a_failure(void **state) {
  static chained c; /* static: see above */
  char url[600];
  const char *base = test_redis_url();
  const char *rest = strstr(base, "://") + 3;
  fixture *f;
  int64_t start;
  snprintf(url, sizeof url, "%.*sapp:wrong-password@%s", (int)(rest - base), base, rest);
  setup_url(state, url, NULL);
  f = *state;
  memset(&c, 0, sizeof c);
  c.ctx = f->ctx;
  start = test_now_ms();
  assert_int_equal(httpcache_async_get(f->ctx, "a", 1, on_get_then_start, &c), HTTPCACHE_OK);
  assert_int_equal(run_loop(&f->l, f->ctx, 5000), 0);
  assert_int_equal(c.first.status, HTTPCACHE_EBACKEND);
  assert_int_equal(c.start_rc, HTTPCACHE_OK);
  assert_int_equal(c.second.done, 1);
  assert_int_equal(c.second.status, HTTPCACHE_EBACKEND); /* not ETIMEOUT */
  printf("failure chain: first %d second %d after %lld ms, watch calls %d\n", c.first.status, c.second.status, (long long)(test_now_ms() - start), f->l.watch_calls);
  if (test_now_ms() - start > 1000) fail_msg("the second request took %lld ms", (long long)(test_now_ms() - start));
  teardown(state);
}

#define ON(test, s) cmocka_unit_test_setup_teardown(test, s, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      ON(test_async_round_trip, setup_memory),
      ON(test_async_round_trip, setup_redis),
#ifndef _WIN32
      ON(test_async_round_trip, setup_unix),
#endif
      ON(test_async_round_trip, setup_cluster),
      ON(test_async_pipelined_requests, setup_cluster),
      ON(test_async_pipelined_requests, setup_memory),
      ON(test_async_pipelined_requests, setup_redis),
      ON(test_async_bad_input, setup_memory),
      ON(test_async_bad_input, setup_redis),
      ON(test_async_memory_completes_at_once, setup_memory),
      ON(test_async_lone_request_written_at_once, setup_redis),
#ifndef _WIN32
      ON(test_async_lone_request_written_at_once, setup_unix),
#endif
      ON(test_async_lone_request_written_at_once, setup_cluster),
      ON(test_async_back_to_back_requests, setup_redis),
      ON(test_async_back_to_back_requests, setup_cluster),
      ON(test_async_request_started_by_a_completion, setup_redis),
      ON(test_async_request_started_by_a_completion, setup_cluster),
      cmocka_unit_test(test_async_request_started_by_a_failure),
#ifndef _WIN32
      cmocka_unit_test_teardown(test_async_stalled_server_times_out, test_redis_restore),
#endif
      cmocka_unit_test(test_async_free_cancels_pending),
      cmocka_unit_test(test_async_server_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
