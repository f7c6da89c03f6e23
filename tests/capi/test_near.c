/* SPDX-License-Identifier: MIT
 * The near tier (httpcache_options.near_cache) against the real redis-server and cluster: a near
 * hit makes no round trip; a change by another handle or by a raw client (SET, DEL, PEXPIRE,
 * FLUSHDB) is seen within a bound measured here (p50/p99 over 1000 trials, printed); while the
 * report link is killed (CLIENT KILL) or the server is stopped (SIGSTOP) nothing is served from
 * the tier; reads stay monotonic while another handle writes in a loop. */
#define _POSIX_C_SOURCE 200809L
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static httpcache_cache *open_with(const char *url, const char *ns, uint32_t near, uint32_t command_timeout_ms) {
  httpcache_options o = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  o.near_cache = near;
  o.command_timeout_ms = command_timeout_ms;
  assert_int_equal(httpcache_cache_open(&c, url, ns, NULL, &o), HTTPCACHE_OK);
  return c;
}

static httpcache_stats stats_of(const httpcache_cache *c) {
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  assert_int_equal(httpcache_cache_stats(&s, c), HTTPCACHE_OK);
  return s;
}

static redisContext *raw_at(const char *url) {
  const char *colon = strrchr(url, ':');
  redisContext *c = redisConnect("127.0.0.1", atoi(colon + 1));
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  return c;
}

static void raw(redisContext *c, const char *fmt, const char *a, const char *b) {
  redisReply *r = b ? redisCommand(c, fmt, a, b) : redisCommand(c, fmt, a);
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
}

/* What get returns for key: its value into out (NUL-terminated), or "" on a miss. */
static int read_key(httpcache_cache *c, const char *key, char *out, size_t cap) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get(&v, NULL, c, key, strlen(key));
  out[0] = 0;
  if (rc == HTTPCACHE_OK) snprintf(out, cap, "%.*s", (int)v.size, v.ptr);
  httpcache_buf_dispose(&v);
  return rc;
}

/* Reads key until the near tier answers it (its feed must first be subscribed). */
static void warm(httpcache_cache *c, const char *key) {
  char v[256];
  int64_t deadline = test_now_ms() + 3000;
  uint64_t before = stats_of(c).near_hits;
  while (stats_of(c).near_hits == before) {
    assert_true(test_now_ms() < deadline);
    read_key(c, key, v, sizeof v);
    test_sleep_ms(1);
  }
}

/* Microseconds until key reads as `want` ("" for a miss), failing past 2 s. */
static int64_t until_seen(httpcache_cache *c, const char *key, const char *want) {
  char v[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    read_key(c, key, v, sizeof v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (strcmp(v, want) == 0) break;
    assert_true(t1.tv_sec - t0.tv_sec < 2);
  }
  return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
}

static int by_value(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A near hit makes no round trip: the server counts no command while the tier answers. */
static void test_near_hit_needs_no_round_trip(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  redisContext *r = raw_at(test_redis_url());
  char full[300], v[64];
  redisReply *before, *after;
  (void)state;
  snprintf(full, sizeof full, "%s:k", ns);
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v1", 2, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  before = redisCommand(r, "INFO commandstats");
  for (int i = 0; i < 1000; ++i) {
    assert_int_equal(read_key(a, "k", v, sizeof v), HTTPCACHE_OK);
    assert_string_equal(v, "v1");
  }
  after = redisCommand(r, "INFO commandstats");
  { /* cmdstat_get's line is unchanged: no GET reached the server */
    const char *g0 = strstr(before->str, "cmdstat_get:"), *g1 = strstr(after->str, "cmdstat_get:");
    assert_non_null(g0);
    assert_non_null(g1);
    assert_int_equal(strcspn(g0, "\r\n") == strcspn(g1, "\r\n") && strncmp(g0, g1, strcspn(g0, "\r\n")) == 0, 1);
  }
  assert_true(stats_of(a).near_hits >= 1000);
  freeReplyObject(before);
  freeReplyObject(after);
  redisFree(r);
  httpcache_cache_free(a);
}

/* Raw SET, DEL and PEXPIRE by another client, and another handle's set and invalidate: each is
 * seen by the near handle within 200 ms (tests/python/test_near.py adds tag invalidations). */
static void test_near_sees_every_kind_of_change(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  httpcache_cache *b = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_OFF, 0);
  redisContext *r = raw_at(test_redis_url());
  char full[300];
  (void)state;
  snprintf(full, sizeof full, "%s:k", ns);
  raw(r, "SET %s v1 PX 60000", full, NULL);
  warm(a, "k");
  raw(r, "SET %s v2 PX 60000", full, NULL);
  assert_true(until_seen(a, "k", "v2") < 200000);
  warm(a, "k");
  raw(r, "DEL %s", full, NULL);
  assert_true(until_seen(a, "k", "") < 200000);
  raw(r, "SET %s v3 PX 60000", full, NULL);
  warm(a, "k");
  raw(r, "PEXPIRE %s %s", full, "1");
  assert_true(until_seen(a, "k", "") < 200000);
  assert_int_equal(httpcache_cache_set(NULL, b, "k", 1, "v4", 2, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  assert_int_equal(httpcache_cache_set(NULL, b, "k", 1, "v5", 2, &one_minute), HTTPCACHE_OK);
  assert_true(until_seen(a, "k", "v5") < 200000);
  warm(a, "k");
  {
    const void *keys[] = {"k"};
    size_t lens[] = {1};
    assert_int_equal(httpcache_cache_invalidate(NULL, b, keys, lens, 1), HTTPCACHE_OK);
  }
  assert_true(until_seen(a, "k", "") < 200000);
  assert_true(stats_of(a).near_invalidations >= 5);
  redisFree(r);
  httpcache_cache_free(b);
  httpcache_cache_free(a);
}

/* A's own writes are read back at once (no wait for the server's report). */
static void test_near_reads_its_own_writes(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  char v[64], want[64];
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v0", 2, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  for (int i = 1; i < 200; ++i) {
    snprintf(want, sizeof want, "v%d", i);
    assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, want, strlen(want), &one_minute), HTTPCACHE_OK);
    assert_int_equal(read_key(a, "k", v, sizeof v), HTTPCACHE_OK);
    assert_string_equal(v, want);
  }
  httpcache_cache_free(a);
}

/* Writes by a raw client seen by the near handle: p50 and p99 over 1000 trials (printed), p99
 * under 50 ms on loopback. */
static void measure_bound(const char *url, const char *what) {
  const char *ns = test_unique_namespace("nearbound");
  httpcache_cache *a = open_with(url, ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  redisContext *r = raw_at(url);
  static int64_t us[1000];
  char full[300], value[32];
  snprintf(full, sizeof full, "%s:{b}k", ns);
  raw(r, "SET %s 0 PX 60000", full, NULL);
  for (int i = 0; i < 1000; ++i) {
    warm(a, "{b}k");
    snprintf(value, sizeof value, "%d", i + 1);
    raw(r, "SET %s %s PX 60000", full, value);
    us[i] = until_seen(a, "{b}k", value);
  }
  qsort(us, 1000, sizeof us[0], by_value);
  printf("near tier, %s: a raw SET seen after p50 %lld us, p99 %lld us, max %lld us (1000 trials)\n", what,
         (long long)us[499], (long long)us[989], (long long)us[999]);
  assert_true(us[989] < 50000);
  redisFree(r);
  httpcache_cache_free(a);
}

static void test_near_bound_one_server(void **state) {
  (void)state;
  measure_bound(test_redis_url(), "one server");
}

/* On a cluster, the handle is given the master of {b}'s slot as its one seed (it learns the
 * others), so that measure_bound's raw client writes to that master. */
static void test_near_bound_cluster(void **state) {
  const char *u = test_cluster_url(); /* redis+cluster://127.0.0.1:P1,... */
  redisContext *seed = redisConnect("127.0.0.1", atoi(strchr(strstr(u, "://") + 3, ':') + 1));
  redisReply *slots, *keyslot;
  char url[128] = "";
  (void)state;
  assert_int_equal(seed->err, 0);
  keyslot = redisCommand(seed, "CLUSTER KEYSLOT {b}");
  slots = redisCommand(seed, "CLUSTER SLOTS");
  assert_int_equal(slots->type, REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < slots->elements; ++i) {
    redisReply *range = slots->element[i];
    if (range->element[0]->integer <= keyslot->integer && keyslot->integer <= range->element[1]->integer)
      snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%lld", range->element[2]->element[1]->integer);
  }
  assert_true(url[0] != 0);
  freeReplyObject(slots);
  freeReplyObject(keyslot);
  redisFree(seed);
  measure_bound(url, "cluster");
}

/* CLIENT KILL of the report link: the tier is emptied at once (near_flushes), a change made
 * while it is down is read from Redis, and near hits come back once it is linked again. */
static void test_near_link_killed(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  redisContext *r = raw_at(test_redis_url());
  char full[300];
  uint64_t flushes;
  (void)state;
  snprintf(full, sizeof full, "%s:k", ns);
  raw(r, "SET %s before PX 60000", full, NULL);
  warm(a, "k");
  flushes = stats_of(a).near_flushes;
  raw(r, "CLIENT KILL TYPE %s", "pubsub", NULL);
  raw(r, "SET %s after PX 60000", full, NULL);
  assert_true(until_seen(a, "k", "after") < 200000);
  assert_true(stats_of(a).near_flushes > flushes);
  warm(a, "k"); /* linked again: hits come back */
  raw(r, "SET %s again PX 60000", full, NULL);
  assert_true(until_seen(a, "k", "again") < 200000);
  redisFree(r);
  httpcache_cache_free(a);
}

/* SIGSTOP of the server: once its PINGs go unanswered the tier serves nothing (a get goes to
 * the stopped server and times out instead of answering from memory); after SIGCONT near hits
 * return. */
static void test_near_server_stopped(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 300);
  char v[64];
  uint64_t hits;
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v", 1, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  assert_int_equal(kill(test_redis_pid(), SIGSTOP), 0);
  test_sleep_ms(800); /* a PING every 250 ms, unanswered after command_timeout_ms (300) */
  hits = stats_of(a).near_hits;
  assert_int_not_equal(read_key(a, "k", v, sizeof v), HTTPCACHE_OK);
  assert_int_equal(stats_of(a).near_hits, hits);
  assert_true(stats_of(a).near_flushes >= 1);
  assert_int_equal(kill(test_redis_pid(), SIGCONT), 0);
  test_sleep_ms(600); /* the breaker's cool-down */
  warm(a, "k");
  httpcache_cache_free(a);
}

/* FLUSHDB (a null report): everything the tier holds goes. */
static void test_near_flushdb(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  redisContext *r = raw_at(test_redis_url());
  uint64_t flushes;
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v", 1, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  flushes = stats_of(a).near_flushes;
  raw(r, "FLUSHDB", NULL, NULL);
  assert_true(until_seen(a, "k", "") < 200000);
  assert_true(stats_of(a).near_flushes > flushes);
  redisFree(r);
  httpcache_cache_free(a);
}

/* While another handle writes versions 1..N, the near handle's reads never go back to an older
 * version once it has seen a newer one, and it sees each within the bound. */
static void test_near_reads_are_monotonic(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  httpcache_cache *b = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_OFF, 0);
  char v[64], want[64];
  long seen = 0;
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, b, "m", 1, "0", 1, &one_minute), HTTPCACHE_OK);
  warm(a, "m");
  for (long i = 1; i <= 300; ++i) {
    int64_t deadline = test_now_ms() + 2000;
    snprintf(want, sizeof want, "%ld", i);
    assert_int_equal(httpcache_cache_set(NULL, b, "m", 1, want, strlen(want), &one_minute), HTTPCACHE_OK);
    for (;;) {
      assert_int_equal(read_key(a, "m", v, sizeof v), HTTPCACHE_OK);
      assert_true(atol(v) >= seen);
      seen = atol(v);
      if (seen == i) break;
      assert_true(test_now_ms() < deadline);
    }
  }
  httpcache_cache_free(b);
  httpcache_cache_free(a);
}

/* httpcache_cache_peek answers from the process alone: a near hit once warm, ENOTFOUND (not an
 * error, no I/O) for a key the tier does not hold or while the server is stopped; on memory://
 * every hit and miss. */
static void test_near_peek(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 300), *m = NULL;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t ttl_ms = 0, t0;
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v", 1, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_peek(&v, NULL, a, "k", 1), HTTPCACHE_ENOTFOUND); /* not read yet */
  warm(a, "k");
  assert_int_equal(httpcache_cache_peek(&v, &ttl_ms, a, "k", 1), HTTPCACHE_OK);
  assert_true(v.size == 1 && v.ptr[0] == 'v' && ttl_ms > 50000 && ttl_ms <= 60000);
  assert_int_equal(httpcache_cache_peek(&v, NULL, a, "absent", 6), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_peek(&v, NULL, a, NULL, 1), HTTPCACHE_EINVALID);
  assert_int_equal(kill(test_redis_pid(), SIGSTOP), 0);
  t0 = test_now_ms();
  assert_int_equal(httpcache_cache_peek(&v, NULL, a, "absent", 6), HTTPCACHE_ENOTFOUND);
  assert_true(test_now_ms() - t0 < 50); /* never waits for the stopped server */
  test_sleep_ms(800);
  assert_int_equal(httpcache_cache_peek(&v, NULL, a, "k", 1), HTTPCACHE_ENOTFOUND); /* link lost: emptied */
  assert_int_equal(kill(test_redis_pid(), SIGCONT), 0);
  assert_int_equal(httpcache_cache_open(&m, "memory://", ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, m, "k", 1, "mem", 3, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_peek(&v, NULL, m, "k", 1), HTTPCACHE_OK);
  assert_true(v.size == 3 && memcmp(v.ptr, "mem", 3) == 0);
  assert_int_equal(httpcache_cache_peek(&v, NULL, m, "absent", 6), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&v);
  httpcache_cache_free(m);
  httpcache_cache_free(a);
}

/* httpcache_cache_peek_version: a version names the value held, and a peek that names it learns
 * that it is unchanged without a copy (value {NULL, 0}); a new value, even with the same bytes,
 * a raw SET by another client, an invalidation and an expiry each end it. On the near tier and on
 * memory://; a value with stale windows has none (its answer changes with time). */
static void expect_versions(httpcache_cache *c, httpcache_cache *writer, int near) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  uint64_t first = 0, again = 0, next = 0;
  int64_t ttl_ms = 0;
  const httpcache_ttl_policy one_second = {HTTPCACHE_TTL_SECONDS, 1, NULL, NULL};
  assert_int_equal(httpcache_cache_set(NULL, writer, "pv", 2, "same", 4, &one_minute), HTTPCACHE_OK);
  if (near) warm(c, "pv");
  assert_int_equal(httpcache_cache_peek_version(&v, &ttl_ms, &first, c, "pv", 2, 0), HTTPCACHE_OK);
  assert_true(first != 0 && v.size == 4 && memcmp(v.ptr, "same", 4) == 0 && ttl_ms > 50000);
  assert_int_equal(httpcache_cache_peek_version(&v, &ttl_ms, &again, c, "pv", 2, first), HTTPCACHE_OK);
  assert_true(again == first && v.ptr == NULL && v.size == 0 && ttl_ms > 50000); /* unchanged: no copy */
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, c, "pv", 2, first + 1000), HTTPCACHE_OK);
  assert_true(again == first && v.size == 4); /* another version named: the bytes come */
  { /* no value buffer: only "unchanged" is answered, and only it is counted as a hit */
    uint64_t hits = stats_of(c).hits;
    assert_int_equal(httpcache_cache_peek_version(NULL, NULL, &again, c, "pv", 2, first), HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_peek_version(NULL, NULL, &again, c, "pv", 2, first + 1000), HTTPCACHE_ENOTFOUND);
    assert_int_equal(stats_of(c).hits, hits + 1);
    assert_int_equal(httpcache_cache_peek_version(NULL, NULL, &again, c, "pv", 2, 0), HTTPCACHE_EINVALID);
    assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, NULL, "pv", 2, 0), HTTPCACHE_EINVALID);
    assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, c, NULL, 2, 0), HTTPCACHE_EINVALID);
  }
  /* the same bytes stored again: a new version */
  assert_int_equal(httpcache_cache_set(NULL, writer, "pv", 2, "same", 4, &one_minute), HTTPCACHE_OK);
  if (near) warm(c, "pv");
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &next, c, "pv", 2, first), HTTPCACHE_OK);
  assert_true(next != first && v.size == 4 && memcmp(v.ptr, "same", 4) == 0);
  { /* invalidated: not held */
    const void *keys[] = {"pv"};
    const size_t lens[] = {2};
    assert_int_equal(httpcache_cache_invalidate(NULL, writer, keys, lens, 1), HTTPCACHE_OK);
  }
  if (near) test_sleep_ms(50);
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, c, "pv", 2, next), HTTPCACHE_ENOTFOUND);
  /* expired: not held */
  assert_int_equal(httpcache_cache_set(NULL, writer, "pv", 2, "short", 5, &one_second), HTTPCACHE_OK);
  if (near) warm(c, "pv");
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &next, c, "pv", 2, 0), HTTPCACHE_OK);
  test_sleep_ms(1100);
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, c, "pv", 2, next), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_peek_version(NULL, NULL, &again, c, "pv", 2, next), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&v);
}

static void test_peek_version(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 300), *m = NULL;
  redisContext *r = raw_at(test_redis_url());
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  uint64_t first = 0, again = 0;
  char full[128];
  (void)state;
  expect_versions(a, a, 1);
  /* another client's SET ends the version once its report arrives */
  assert_int_equal(httpcache_cache_set(NULL, a, "pv", 2, "mine", 4, &one_minute), HTTPCACHE_OK);
  warm(a, "pv");
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &first, a, "pv", 2, 0), HTTPCACHE_OK);
  snprintf(full, sizeof full, "%s:pv", ns);
  raw(r, "SET %s %s", full, "theirs");
  test_sleep_ms(100);
  assert_int_equal(httpcache_cache_peek_version(&v, NULL, &again, a, "pv", 2, first), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_open(&m, "memory://", ns, NULL, NULL), HTTPCACHE_OK);
  expect_versions(m, m, 0);
  httpcache_buf_dispose(&v);
  redisFree(r);
  httpcache_cache_free(m);
  httpcache_cache_free(a);
}

/* Link losses racing reads and writes: a reader thread reads in a loop while the main thread
 * kills the report link (CLIENT KILL TYPE pubsub) and writes a new version right after, 100
 * times. A read that began while the link was going down must never be kept: once the link is
 * back (near hits again) the reader sees the last version within the bound, never an older one
 * kept for near_max_age_ms. */
typedef struct {
  httpcache_cache *cache;
  int stop; /* atomic: __atomic builtins */
} looping_reader;

static void *read_in_a_loop(void *arg) {
  looping_reader *r = arg;
  char v[64];
  while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) read_key(r->cache, "race", v, sizeof v);
  return NULL;
}

static void test_near_link_loss_races_reads(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  redisContext *r = raw_at(test_redis_url());
  looping_reader reader = {a, 0};
  pthread_t tid;
  char full[300], value[32];
  (void)state;
  snprintf(full, sizeof full, "%s:race", ns);
  raw(r, "SET %s 0 PX 600000", full, NULL);
  warm(a, "race");
  assert_int_equal(pthread_create(&tid, NULL, read_in_a_loop, &reader), 0);
  for (int i = 1; i <= 100; ++i) {
    snprintf(value, sizeof value, "%d", i);
    raw(r, "CLIENT KILL TYPE %s", "pubsub", NULL);
    raw(r, "SET %s %s PX 600000", full, value);
    test_sleep_ms(i % 7);
    warm(a, "race");
    assert_true(until_seen(a, "race", value) < 200000);
  }
  __atomic_store_n(&reader.stop, 1, __ATOMIC_RELEASE);
  pthread_join(tid, NULL);
  redisFree(r);
  httpcache_cache_free(a);
}

/* Two handles of one process on the same server and namespace, both with the tier: what one
 * writes, the other reads at once (no wait for the server's report), while a third thread keeps
 * reads of the other handle in flight, so that a read begun before a write is never kept after
 * it. Both directions, 300 writes each; the value read must be the one just written. */
static void test_near_sees_the_process_s_other_handles_at_once(void **state) {
  const char *ns = test_unique_namespace("near");
  httpcache_cache *h[2] = {open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0),
                           open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0)};
  char v[64], want[64];
  (void)state;
  assert_int_equal(httpcache_cache_set(NULL, h[0], "race", 4, "0", 1, &one_minute), HTTPCACHE_OK);
  warm(h[0], "race");
  warm(h[1], "race");
  for (int dir = 0; dir < 2; ++dir) {
    httpcache_cache *writer = h[dir], *reader = h[1 - dir];
    looping_reader background = {reader, 0};
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, read_in_a_loop, &background), 0);
    for (int i = 1; i <= 300; ++i) {
      snprintf(want, sizeof want, "%d-%d", dir, i);
      assert_int_equal(httpcache_cache_set(NULL, writer, "race", 4, want, strlen(want), &one_minute), HTTPCACHE_OK);
      assert_int_equal(read_key(reader, "race", v, sizeof v), HTTPCACHE_OK);
      assert_string_equal(v, want);
      if (i % 50 == 0) warm(reader, "race"); /* the tier still answers: the test is not vacuous */
    }
    __atomic_store_n(&background.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
  }
  assert_true(stats_of(h[0]).near_hits > 0 && stats_of(h[1]).near_hits > 0);
  httpcache_cache_free(h[1]);
  httpcache_cache_free(h[0]);
}

/* The clients subscribed to a channel (the report links among them). */
static long long pubsub_clients(redisContext *r) {
  redisReply *list = redisCommand(r, "CLIENT LIST TYPE pubsub");
  long long n = 0;
  assert_int_equal(list->type, REDIS_REPLY_STRING);
  for (const char *p = list->str; (p = strstr(p, " sub=")) != NULL; ++p) ++n;
  freeReplyObject(list);
  return n;
}

/* A forked child never keeps its parent's report links open: once the parent closes its handle,
 * the server drops the subscribed client although the child (which never used the cache) lives. */
static void test_near_child_closes_the_parents_links(void **state) {
  const char *ns = test_unique_namespace("near");
  redisContext *r = raw_at(test_redis_url());
  httpcache_cache *a;
  long long before, during = -1;
  pid_t child;
  int status;
  (void)state;
  before = pubsub_clients(r);
  a = open_with(test_redis_url(), ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  assert_int_equal(httpcache_cache_set(NULL, a, "k", 1, "v", 1, &one_minute), HTTPCACHE_OK);
  warm(a, "k");
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    sleep(3);
    _exit(0);
  }
  test_sleep_ms(100); /* the child has run its fork handlers */
  httpcache_cache_free(a);
  for (int tries = 0; tries < 100; ++tries) {
    during = pubsub_clients(r);
    if (during <= before) break;
    test_sleep_ms(20);
  }
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  assert_true(during <= before);
  redisFree(r);
}

/* A teardown that leaves no slot of the cluster fixture migrating or importing, whatever failed. */
static int cluster_slots_stable(void **state) {
  char path[1024];
  int port;
  FILE *f;
  (void)state;
  snprintf(path, sizeof path, "%s/ports", getenv("HTTPCACHE_TEST_CLUSTER_DIR"));
  f = fopen(path, "r");
  if (!f) return 0;
  while (fscanf(f, "%d", &port) == 1) {
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *nodes = c && !c->err ? redisCommand(c, "CLUSTER NODES") : NULL;
    for (const char *p = nodes && nodes->type == REDIS_REPLY_STRING ? nodes->str : ""; (p = strchr(p, '[')) != NULL; ++p)
      freeReplyObject(redisCommand(c, "CLUSTER SETSLOT %d STABLE", atoi(p + 1)));
    if (nodes) freeReplyObject(nodes);
    if (c) redisFree(c);
  }
  fclose(f);
  return 0;
}

/* A read of a key whose slot is being migrated (the owner answers ASK): the blocking path sends
 * ASKING before each pipelined command, so the GET and the PTTL both reach the importing node
 * (with one ASKING for the pipeline, PTTL was MOVED and every such read failed), with the tier
 * on and off. The slot is put back as it was. */
static void test_cluster_read_during_a_slot_migration(void **state) {
  const char *ns = test_unique_namespace("ask");
  const char *u = test_cluster_url();
  redisContext *seed = redisConnect("127.0.0.1", atoi(strchr(strstr(u, "://") + 3, ':') + 1));
  redisContext *from, *to;
  redisReply *slots, *keyslot, *r;
  char full[300], slot_text[16], url[128];
  long long slot;
  int from_port = 0, to_port = 0;
  char from_id[64] = "", to_id[64] = "";
  httpcache_cache *near, *plain;
  char v[64];
  (void)state;
  snprintf(full, sizeof full, "%s:{ask}k", ns);
  keyslot = redisCommand(seed, "CLUSTER KEYSLOT %s", full);
  slot = keyslot->integer;
  freeReplyObject(keyslot);
  snprintf(slot_text, sizeof slot_text, "%lld", slot);
  slots = redisCommand(seed, "CLUSTER SLOTS");
  for (size_t i = 0; i < slots->elements; ++i) {
    redisReply *range = slots->element[i], *master = range->element[2];
    int owns = range->element[0]->integer <= slot && slot <= range->element[1]->integer;
    if (owns && !from_port) {
      from_port = (int)master->element[1]->integer;
      snprintf(from_id, sizeof from_id, "%s", master->element[2]->str);
    } else if (!owns && !to_port) {
      to_port = (int)master->element[1]->integer;
      snprintf(to_id, sizeof to_id, "%s", master->element[2]->str);
    }
  }
  freeReplyObject(slots);
  redisFree(seed);
  assert_true(from_port && to_port && strcmp(from_id, to_id) != 0);
  from = redisConnect("127.0.0.1", from_port);
  to = redisConnect("127.0.0.1", to_port);
  snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%d", from_port);
  near = open_with(url, ns, HTTPCACHE_NEAR_CACHE_ON, 0);
  plain = open_with(url, ns, HTTPCACHE_NEAR_CACHE_OFF, 0);
  assert_int_equal(httpcache_cache_set(NULL, plain, "{ask}k", 6, "moving", 6, &one_minute), HTTPCACHE_OK);
  raw(to, "CLUSTER SETSLOT %s IMPORTING %s", slot_text, from_id);
  raw(from, "CLUSTER SETSLOT %s MIGRATING %s", slot_text, to_id);
  {
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", to_port);
    r = redisCommand(from, "MIGRATE 127.0.0.1 %s %s 0 5000 KEYS %s", port_text, "", full);
    if (r->type == REDIS_REPLY_ERROR) print_error("MIGRATE: %s\n", r->str);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
  }
  for (int i = 0; i < 3; ++i) {
    assert_int_equal(read_key(plain, "{ask}k", v, sizeof v), HTTPCACHE_OK);
    assert_string_equal(v, "moving");
    assert_int_equal(read_key(near, "{ask}k", v, sizeof v), HTTPCACHE_OK);
    assert_string_equal(v, "moving");
  }
  /* Put the slot back: the key leaves the importing node, the slot is stable on both. */
  freeReplyObject(redisCommand(to, "ASKING"));
  raw(to, "DEL %s", full, NULL);
  raw(to, "CLUSTER SETSLOT %s STABLE", slot_text, NULL);
  raw(from, "CLUSTER SETSLOT %s STABLE", slot_text, NULL);
  httpcache_cache_free(near);
  httpcache_cache_free(plain);
  redisFree(from);
  redisFree(to);
}

/* near_cache takes ON, OFF or 0; anything else is refused with a message. */
static void test_near_bad_option(void **state) {
  httpcache_options o = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  (void)state;
  o.near_cache = 7;
  assert_int_equal(httpcache_cache_open(&c, test_redis_url(), "x", NULL, &o), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "near_cache 7"));
  assert_null(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_near_hit_needs_no_round_trip),
      cmocka_unit_test(test_near_sees_every_kind_of_change),
      cmocka_unit_test(test_near_reads_its_own_writes),
      cmocka_unit_test(test_near_bound_one_server),
      cmocka_unit_test(test_near_bound_cluster),
      cmocka_unit_test(test_near_link_killed),
      cmocka_unit_test_teardown(test_near_server_stopped, test_redis_restore),
      cmocka_unit_test(test_near_flushdb),
      cmocka_unit_test(test_near_reads_are_monotonic),
      cmocka_unit_test(test_near_bad_option),
      cmocka_unit_test_teardown(test_near_peek, test_redis_restore),
      cmocka_unit_test(test_peek_version),
      cmocka_unit_test(test_near_link_loss_races_reads),
      cmocka_unit_test(test_near_sees_the_process_s_other_handles_at_once),
      cmocka_unit_test(test_near_child_closes_the_parents_links),
      cmocka_unit_test_teardown(test_cluster_read_during_a_slot_migration, cluster_slots_stable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
