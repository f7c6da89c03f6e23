/* SPDX-License-Identifier: MIT
 * Stale entries (issue 16: stale-while-revalidate, stale-if-error) on memory://, one Redis
 * server and the cluster:
 * - past its freshness, within stale-while-revalidate, callers get the stale value at once
 *   (HTTPCACHE_OUTCOME_STALE, ttl_ms minus its staleness) while exactly one caller recomputes
 *   (a slow refresh in one thread, stale answers in others), and the refreshed value is stored;
 * - within stale-if-error a failing computation is answered with the stale value; past it the
 *   failure is the caller's;
 * - an invalidation during a refresh wins (the refresh does not store), and an entry invalidated
 *   by key or by tag is never served stale;
 * - a computation's own windows (httpcache_compute_stale) are kept with its value;
 * - the non-blocking API: one context gets HTTPCACHE_ESTALE (it refreshes), another the stale
 *   value; the refresh's set replaces the entry;
 * - bad windows and call versions are refused. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

static const char *memory_url(void) { return "memory://"; }
typedef const char *(*url_fn)(void);

static const httpcache_ttl_policy one_second = {HTTPCACHE_TTL_SECONDS, 1, NULL, NULL};

static httpcache_cache *open_cache(url_fn url, const char *ns) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  opts.breaker_failures = 1000;
  assert_int_equal(httpcache_cache_open(&c, url(), ns, "UTC", &opts), HTTPCACHE_OK);
  return c;
}

typedef struct {
  atomic_int calls;
  const char *value;
  int fail;         /* return this instead of a value */
  int sleep_ms;     /* compute this long */
  int64_t own_swr;  /* >= 0: httpcache_compute_stale(own_swr, own_sie) */
  int64_t own_sie;
  atomic_int started;
} producer;

static int produce(httpcache_buf *out, uint32_t *flags, void *payload) {
  producer *p = payload;
  (void)flags;
  atomic_fetch_add(&p->calls, 1);
  atomic_store(&p->started, 1);
  if (p->sleep_ms) test_sleep_ms(p->sleep_ms);
  if (p->own_swr >= 0 && httpcache_compute_stale(p->own_swr, p->own_sie) != HTTPCACHE_OK) return 9;
  if (p->fail) return p->fail;
  return httpcache_buf_set(out, p->value, strlen(p->value));
}
#define PRODUCER(v) {0, (v), 0, 0, -1, -1, 0}

typedef struct {
  int rc;
  httpcache_outcome outcome;
  int64_t ttl_ms;
  char value[64];
} answer;

static answer call(httpcache_cache *c, const char *key, int64_t swr_ms, int64_t sie_ms, const char *tag, producer *p) {
  httpcache_call opts = HTTPCACHE_CALL_INIT;
  const void *tags[] = {tag};
  size_t lens[] = {tag ? strlen(tag) : 0};
  if (tag) opts.tags = tags, opts.tag_lens = lens, opts.ntags = 1;
  opts.stale_while_revalidate_ms = swr_ms;
  opts.stale_if_error_ms = sie_ms;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  answer a = {0, 0, 0, ""};
  a.rc = httpcache_cache_get_or_compute_ex(&v, &a.ttl_ms, &a.outcome, c, key, strlen(key), &one_second, &opts, produce, p);
  if (a.rc == HTTPCACHE_OK) snprintf(a.value, sizeof a.value, "%.*s", (int)v.size, v.ptr);
  httpcache_buf_dispose(&v);
  return a;
}

/* ---- stale-while-revalidate: one refreshes, the others get the stale value ---- */
typedef struct {
  httpcache_cache *c;
  producer *p;
  answer a;
} refresher;
static void *refresh_main(void *arg) {
  refresher *r = arg;
  r->a = call(r->c, "k", 5000, 0, NULL, r->p);
  return NULL;
}

static void while_revalidate(url_fn url) {
  const char *ns = test_unique_namespace("swr");
  httpcache_cache *c = open_cache(url, ns);
  producer v1 = PRODUCER("v1");
  answer a = call(c, "k", 5000, 0, NULL, &v1);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STORED);
  a = call(c, "k", 5000, 0, NULL, &v1);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_HIT);
  assert_true(a.ttl_ms > 0 && a.ttl_ms <= 1000); /* freshness left, not the store's TTL */
  test_sleep_ms(1100);
  httpcache_buf plain = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_cache_get(&plain, NULL, c, "k", 1), HTTPCACHE_ENOTFOUND); /* stale: a miss for get */

  producer slow = PRODUCER("v2");
  slow.sleep_ms = 400;
  refresher r = {c, &slow, {0}};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, refresh_main, &r), 0);
  while (!atomic_load(&slow.started)) test_sleep_ms(1);
  producer others = PRODUCER("never");
  for (int i = 0; i < 5; ++i) {
    a = call(c, "k", 5000, 0, NULL, &others);
    assert_int_equal(a.rc, HTTPCACHE_OK);
    assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STALE);
    assert_string_equal(a.value, "v1");
    assert_true(a.ttl_ms <= 0 && a.ttl_ms > -5000);
  }
  pthread_join(t, NULL);
  assert_int_equal(atomic_load(&others.calls), 0);
  assert_int_equal(atomic_load(&slow.calls), 1);
  assert_int_equal(r.a.outcome, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(r.a.value, "v2");
  a = call(c, "k", 5000, 0, NULL, &others);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_HIT);
  assert_string_equal(a.value, "v2");
  assert_int_equal(httpcache_cache_get(&plain, NULL, c, "k", 1), HTTPCACHE_OK);
  assert_int_equal(plain.size, 2);
  httpcache_buf_dispose(&plain);
  httpcache_cache_free(c);
}
static void test_while_revalidate_memory(void **state) { (void)state, while_revalidate(memory_url); }
static void test_while_revalidate_redis(void **state) { (void)state, while_revalidate(test_redis_url); }
static void test_while_revalidate_cluster(void **state) { (void)state, while_revalidate(test_cluster_url); }

/* ---- stale-if-error, a computation's own windows, and the end of the windows ---- */
static void if_error(url_fn url) {
  const char *ns = test_unique_namespace("sie");
  httpcache_cache *c = open_cache(url, ns);
  producer v1 = PRODUCER("v1"), failing = PRODUCER("x"), own = PRODUCER("own");
  answer a0;
  failing.fail = 7;
  own.own_swr = 0, own.own_sie = 5000; /* its own: no window from the call */
  assert_int_equal(call(c, "sie", 0, 5000, NULL, &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(call(c, "own", 0, 0, NULL, &own).outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(call(c, "short", 0, 1000, NULL, &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(call(c, "none", 0, 0, NULL, &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(call(c, "swronly", 5000, 0, NULL, &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  test_sleep_ms(1100);
  /* the refresher's own caller, within stale-while-revalidate: answered as the others are */
  a0 = call(c, "swronly", 5000, 0, NULL, &failing);
  assert_int_equal(a0.rc, HTTPCACHE_OK);
  assert_int_equal(a0.outcome, HTTPCACHE_OUTCOME_STALE);
  answer a = call(c, "sie", 0, 5000, NULL, &failing);
  assert_int_equal(a.rc, HTTPCACHE_OK); /* the failure is answered with the stale value */
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STALE);
  assert_string_equal(a.value, "v1");
  a = call(c, "own", 0, 0, NULL, &failing);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STALE);
  assert_string_equal(a.value, "own");
  assert_int_equal(call(c, "none", 0, 0, NULL, &failing).rc, HTTPCACHE_EUSER); /* no window: the failure */
  test_sleep_ms(1100);
  assert_int_equal(call(c, "short", 0, 1000, NULL, &failing).rc, HTTPCACHE_EUSER); /* past its window */
  /* and a refresh that succeeds replaces the stale entry */
  producer v2 = PRODUCER("v2");
  a = call(c, "sie", 0, 5000, NULL, &v2);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(call(c, "sie", 0, 5000, NULL, &failing).value, "v2");
  httpcache_cache_free(c);
}
static void test_if_error_memory(void **state) { (void)state, if_error(memory_url); }
static void test_if_error_redis(void **state) { (void)state, if_error(test_redis_url); }
static void test_if_error_cluster(void **state) { (void)state, if_error(test_cluster_url); }

/* ---- invalidations win over stale windows ---- */
static void invalidation_wins(url_fn url) {
  const char *ns = test_unique_namespace("stinv");
  httpcache_cache *c = open_cache(url, ns);
  httpcache_cache *other = url == memory_url ? c : open_cache(url, ns);
  producer v1 = PRODUCER("v1"), fresh = PRODUCER("fresh");
  assert_int_equal(call(c, "k", 5000, 5000, NULL, &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(call(c, "t", 5000, 5000, "grp", &v1).outcome, HTTPCACHE_OUTCOME_STORED);
  test_sleep_ms(1100);
  /* by tag: never served stale */
  const void *tags[] = {"grp"};
  size_t lens[] = {3};
  assert_int_equal(httpcache_cache_invalidate_tags(other, tags, lens, 1), HTTPCACHE_OK);
  answer a = call(c, "t", 5000, 5000, "grp", &fresh);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(a.value, "fresh");
  /* by key, during a refresh: the refresh does not store */
  producer slow = PRODUCER("stale-era");
  slow.sleep_ms = 300;
  refresher r = {c, &slow, {0}};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, refresh_main, &r), 0);
  while (!atomic_load(&slow.started)) test_sleep_ms(1);
  assert_int_equal(httpcache_cache_invalidate(NULL, other, (const void *const[]){"k"}, (const size_t[]){1}, 1), HTTPCACHE_OK);
  pthread_join(t, NULL);
  assert_string_equal(r.a.value, "stale-era"); /* its own caller gets it */
  assert_int_equal(r.a.ttl_ms, -1);             /* refused: fencing */
  a = call(c, "k", 5000, 5000, NULL, &fresh);
  assert_int_equal(a.outcome, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(a.value, "fresh");
  if (other != c) httpcache_cache_free(other);
  httpcache_cache_free(c);
}
static void test_invalidation_wins_memory(void **state) { (void)state, invalidation_wins(memory_url); }
static void test_invalidation_wins_redis(void **state) { (void)state, invalidation_wins(test_redis_url); }
static void test_invalidation_wins_cluster(void **state) { (void)state, invalidation_wins(test_cluster_url); }

/* ---- non-blocking ---- */
typedef struct {
  int calls, status;
  int64_t ttl_ms;
  char value[64];
} got;
static void on_get(int status, const void *value, size_t len, int64_t ttl_ms, void *payload) {
  got *g = payload;
  g->calls++, g->status = status, g->ttl_ms = ttl_ms;
  snprintf(g->value, sizeof g->value, "%.*s", (int)len, len ? (const char *)value : "");
}
static void on_done(int status, int64_t count, void *payload) {
  got *g = payload;
  (void)count;
  g->calls++, g->status = status;
}

static void async_stale(url_fn url) {
  const char *ns = test_unique_namespace("astale");
  httpcache_cache *c = open_cache(url, ns);
  test_loop l1 = TEST_LOOP_INIT, l2 = TEST_LOOP_INIT;
  httpcache_async *a = NULL, *b = NULL;
  assert_int_equal(httpcache_async_open(&a, c, test_loop_watch, &l1), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_open(&b, c, test_loop_watch, &l2), HTTPCACHE_OK);
  httpcache_call opts = HTTPCACHE_CALL_INIT;
  opts.stale_while_revalidate_ms = 5000;
  got g = {0};
  assert_int_equal(httpcache_async_get(a, "k", 1, on_get, &g), HTTPCACHE_OK);
  test_loop_run(&l1, a, 5000);
  assert_int_equal(g.status, HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_async_set_ex(a, "k", 1, "v1", 2, &one_second, &opts, on_done, &g), HTTPCACHE_OK);
  test_loop_run(&l1, a, 5000);
  assert_int_equal(g.status, HTTPCACHE_OK);
  test_sleep_ms(1100);
  got ga = {0}, gb = {0};
  assert_int_equal(httpcache_async_get(a, "k", 1, on_get, &ga), HTTPCACHE_OK);
  test_loop_run(&l1, a, 5000);
  assert_int_equal(ga.status, HTTPCACHE_ESTALE); /* a refreshes */
  assert_string_equal(ga.value, "v1");
  assert_true(ga.ttl_ms <= 0);
  assert_int_equal(httpcache_async_get(b, "k", 1, on_get, &gb), HTTPCACHE_OK);
  test_loop_run(&l2, b, 5000);
  assert_int_equal(gb.status, HTTPCACHE_OK); /* b is served the stale value */
  assert_string_equal(gb.value, "v1");
  assert_true(gb.ttl_ms <= 0);
  assert_int_equal(httpcache_async_set_ex(a, "k", 1, "v2", 2, &one_second, &opts, on_done, &g), HTTPCACHE_OK);
  test_loop_run(&l1, a, 5000);
  assert_int_equal(g.status, HTTPCACHE_OK);
  memset(&gb, 0, sizeof gb);
  assert_int_equal(httpcache_async_get(b, "k", 1, on_get, &gb), HTTPCACHE_OK);
  test_loop_run(&l2, b, 5000);
  assert_int_equal(gb.status, HTTPCACHE_OK);
  assert_string_equal(gb.value, "v2");
  assert_true(gb.ttl_ms > 0);
  /* the refresh lock was released: the next staleness is refreshed at once */
  test_sleep_ms(1100);
  memset(&gb, 0, sizeof gb);
  assert_int_equal(httpcache_async_get(b, "k", 1, on_get, &gb), HTTPCACHE_OK);
  test_loop_run(&l2, b, 5000);
  assert_int_equal(gb.status, HTTPCACHE_ESTALE);
  assert_int_equal(httpcache_async_release(b, "k", 1, on_done, &g), HTTPCACHE_OK);
  test_loop_run(&l2, b, 5000);
  memset(&ga, 0, sizeof ga);
  assert_int_equal(httpcache_async_get(a, "k", 1, on_get, &ga), HTTPCACHE_OK);
  test_loop_run(&l1, a, 5000);
  assert_int_equal(ga.status, HTTPCACHE_ESTALE); /* released: a may refresh now; the entry is still there */
  assert_string_equal(ga.value, "v2");
  httpcache_async_free(a);
  httpcache_async_free(b);
  httpcache_cache_free(c);
}
static void test_async_memory(void **state) { (void)state, async_stale(memory_url); }
static void test_async_redis(void **state) { (void)state, async_stale(test_redis_url); }
static void test_async_cluster(void **state) { (void)state, async_stale(test_cluster_url); }

static void test_bad_windows(void **state) {
  (void)state;
  httpcache_cache *c = open_cache(memory_url, "badstale");
  producer p = PRODUCER("v");
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_call opts = HTTPCACHE_CALL_INIT;
  opts.stale_if_error_ms = -1;
  assert_int_equal(httpcache_cache_get_or_compute_ex(&v, NULL, NULL, c, "k", 1, &one_second, &opts, produce, &p), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "stale window"));
  opts.stale_if_error_ms = 0;
  opts.version = 99;
  assert_int_equal(httpcache_cache_get_or_compute_ex(&v, NULL, NULL, c, "k", 1, &one_second, &opts, produce, &p), HTTPCACHE_EVERSION);
  assert_int_equal(atomic_load(&p.calls), 0);
  assert_int_equal(httpcache_compute_stale(0, 1000), HTTPCACHE_EINVALID); /* outside a callback */
  static const char reserved[] = "\0httpcache-fresh\0" "1 0 0\nX";
  assert_int_equal(httpcache_cache_set(NULL, c, "k", 1, reserved, sizeof reserved - 1, &one_second), HTTPCACHE_EINVALID);
  httpcache_cache_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_while_revalidate_memory),  cmocka_unit_test(test_while_revalidate_redis),
      cmocka_unit_test(test_while_revalidate_cluster), cmocka_unit_test(test_if_error_memory),
      cmocka_unit_test(test_if_error_redis),           cmocka_unit_test(test_if_error_cluster),
      cmocka_unit_test(test_invalidation_wins_memory), cmocka_unit_test(test_invalidation_wins_redis),
      cmocka_unit_test(test_invalidation_wins_cluster), cmocka_unit_test(test_async_memory),
      cmocka_unit_test(test_async_redis),              cmocka_unit_test(test_async_cluster),
      cmocka_unit_test(test_bad_windows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
