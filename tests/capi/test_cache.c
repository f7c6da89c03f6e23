/* SPDX-License-Identifier: MIT
 * The blocking calls against every backend: memory://, a real redis-server over TCP and over its
 * unix socket, and a real 3-master Redis Cluster. Each test runs once per backend (its prestate
 * names the backend). */
#define _POSIX_C_SOURCE 200809L
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpcache.h"
#include "support.h"

typedef enum { BACKEND_MEMORY, BACKEND_REDIS, BACKEND_UNIX, BACKEND_CLUSTER } backend_kind;

static const backend_kind memory_backend = BACKEND_MEMORY;
static const backend_kind redis_backend = BACKEND_REDIS;
static const backend_kind unix_backend = BACKEND_UNIX;
static const backend_kind cluster_backend = BACKEND_CLUSTER;

typedef struct {
  backend_kind kind;
  httpcache_cache *cache;
  char ns[128];
} fixture;

static const char *url_of(backend_kind kind) {
  switch (kind) {
    case BACKEND_REDIS: return test_redis_url();
    case BACKEND_UNIX: return test_redis_unix_url();
    case BACKEND_CLUSTER: return test_cluster_url();
    default: return "memory://";
  }
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->kind = *(const backend_kind *)*state;
  snprintf(f->ns, sizeof f->ns, "%s", test_unique_namespace("cache"));
  if (httpcache_cache_open(&f->cache, url_of(f->kind), f->ns, "Europe/London", NULL) != HTTPCACHE_OK)
    fail_msg("open %s: %s", url_of(f->kind), httpcache_error_last()->message);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  httpcache_cache_free(f->cache);
  free(f);
  return 0;
}

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

typedef struct {
  int calls;
  const char *value;
  size_t size;
  int rc;
  uint32_t flags;
} compute_state;

static int compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  compute_state *c = payload;
  ++c->calls;
  if (c->rc) {
    httpcache_buf_set(out, "partial", 7); /* must be discarded, not stored */
    return c->rc;
  }
  *flags = c->flags;
  return httpcache_buf_set(out, c->value, c->size);
}

/** A key never set is a miss (ENOTFOUND, value untouched); after set it is a hit with its TTL. */
static void test_cache_set_then_get(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int64_t ttl_ms = -5, ttl_s = 0;
  assert_int_equal(httpcache_cache_get(&value, &ttl_ms, f->cache, "absent", 6), HTTPCACHE_ENOTFOUND);
  assert_null(value.ptr);
  assert_int_equal(ttl_ms, -5);
  assert_int_equal(httpcache_cache_set(&ttl_s, f->cache, "k", 1, "v1", 2, &one_minute), HTTPCACHE_OK);
  assert_int_equal(ttl_s, 60);
  assert_int_equal(httpcache_cache_get(&value, &ttl_ms, f->cache, "k", 1), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "v1");
  assert_in_range(ttl_ms, 58000, 60000);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v2", 2, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "k", 1), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "v2");
  httpcache_buf_dispose(&value);
}

/** Keys and values are binary-safe, and an empty value is a value (a hit), not a miss. */
static void test_cache_binary_safe(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  const char key[] = "k\0\xff:\r\n";
  const char bytes[] = "\0\x01\xfe\xff\0tail";
  assert_int_equal(httpcache_cache_set(NULL, f->cache, key, sizeof key - 1, bytes, sizeof bytes - 1, &one_minute),
                   HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, key, sizeof key - 1), HTTPCACHE_OK);
  assert_int_equal(value.size, sizeof bytes - 1);
  assert_memory_equal(value.ptr, bytes, sizeof bytes - 1);
  /* "k" alone is a different key from "k\0..." */
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "k", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "empty", 5, NULL, 0, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "empty", 5), HTTPCACHE_OK);
  assert_int_equal(value.size, 0);
  httpcache_buf_dispose(&value);
}

/** A miss computes once and stores; the next call hits without calling back, same bytes. */
static void test_cache_get_or_compute_miss_then_hit(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "computed", 8, 0, 0};
  httpcache_outcome outcome;
  int64_t ttl_ms = 0;
  assert_int_equal(httpcache_cache_get_or_compute(&value, &ttl_ms, &outcome, f->cache, "goc", 3, &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(ttl_ms, 60000);
  assert_string_equal(value.ptr, "computed");
  c.value = "other";
  c.size = 5;
  assert_int_equal(httpcache_cache_get_or_compute(&value, &ttl_ms, &outcome, f->cache, "goc", 3, &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_in_range(ttl_ms, 58000, 60000);
  assert_string_equal(value.ptr, "computed");
  httpcache_buf_dispose(&value);
}

/** A callback may decline storing: its value is returned, nothing is stored. */
static void test_cache_get_or_compute_dont_store(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "volatile", 8, 0, HTTPCACHE_COMPUTE_DONT_STORE};
  httpcache_outcome outcome;
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "d", 1, &one_minute, compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_string_equal(value.ptr, "volatile");
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "d", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "d", 1, &one_minute, compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(c.calls, 2);
  httpcache_buf_dispose(&value);
}

/** A failing callback's code comes back unchanged (positive ones as EUSER); nothing is stored. */
static void test_cache_get_or_compute_callback_failure(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "x", 1, -42, 0};
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, "fail", 4, &one_minute, compute, &c),
                   -42);
  assert_int_equal(httpcache_error_last()->code, -42);
  assert_non_null(strstr(httpcache_error_last()->message, "callback"));
  c.rc = 7;
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, "fail", 4, &one_minute, compute, &c),
                   HTTPCACHE_EUSER);
  assert_int_equal(c.calls, 2);
  assert_null(value.ptr);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "fail", 4), HTTPCACHE_ENOTFOUND);
}

/** Invalidation deletes N keys in one call, counts the ones that existed, ignores missing ones. */
static void test_cache_invalidate_many(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  const char *keys[] = {"b.logged_in.1", "b.profile.1", "never-set", "b.home"};
  size_t lens[4], i, deleted = 99;
  for (i = 0; i < 4; ++i) lens[i] = strlen(keys[i]);
  for (i = 0; i < 4; ++i)
    if (i != 2) assert_int_equal(httpcache_cache_set(NULL, f->cache, keys[i], lens[i], "v", 1, &one_minute), 0);
  assert_int_equal(httpcache_cache_invalidate(&deleted, f->cache, (const void *const *)keys, lens, 3), HTTPCACHE_OK);
  assert_int_equal(deleted, 2);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, keys[0], lens[0]), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, keys[1], lens[1]), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, keys[3], lens[3]), HTTPCACHE_OK);
  /* One bad key in the list: nothing at all is deleted. */
  lens[0] = 0;
  assert_int_equal(httpcache_cache_invalidate(&deleted, f->cache, (const void *const *)&keys[0], &lens[0], 4),
                   HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, keys[3], lens[3]), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_invalidate(&deleted, f->cache, NULL, lens, 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_invalidate(&deleted, f->cache, (const void *const *)keys, lens, 0),
                   HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&value);
}

static int64_t ttl_zero(void *payload) {
  (void)payload;
  return 0;
}

static int64_t ttl_ninety(void *payload) {
  ++*(int *)payload;
  return 90;
}

/** Bad input gives EINVALID with a message; the callback is not called and nothing is stored. */
static void test_cache_bad_input(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "x", 1, 0, 0};
  httpcache_ttl_policy zero = {HTTPCACHE_TTL_SECONDS, 0, NULL, NULL};
  httpcache_ttl_policy negative = {HTTPCACHE_TTL_SECONDS, -5, NULL, NULL};
  httpcache_ttl_policy unknown = {99, 10, NULL, NULL};
  httpcache_ttl_policy no_callback = {HTTPCACHE_TTL_CALLBACK, 0, NULL, NULL};
  httpcache_ttl_policy zero_callback = {HTTPCACHE_TTL_CALLBACK, 0, ttl_zero, NULL};
  static char long_key[HTTPCACHE_MAX_KEY_BYTES + 1];
  memset(long_key, 'x', sizeof long_key);

  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, &zero), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "TTL"));
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, &negative), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, &unknown), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, &no_callback), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, &zero_callback), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "returned 0"));
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, "k", 1, &zero, compute, &c),
                   HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, "", 0, &one_minute, compute, &c),
                   HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, long_key, sizeof long_key,
                                                  &one_minute, compute, &c),
                   HTTPCACHE_EINVALID);
  assert_int_equal(c.calls, 0);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "k", 1), HTTPCACHE_ENOTFOUND);

  assert_int_equal(httpcache_cache_get(NULL, NULL, f->cache, "k", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get(&value, NULL, NULL, "k", 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, NULL, 1), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "", 0), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "empty"));
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, NULL, 3, &one_minute), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "k", 1, "v", 1, NULL), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, f->cache, "k", 1, &one_minute, NULL, NULL),
                   HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_ttl(NULL, f->cache, &one_minute, 0), HTTPCACHE_EINVALID);
}

/** A callback policy's TTL is applied; its callback runs once per store. */
static void test_cache_callback_policy(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int calls = 0;
  int64_t ttl_s = 0, ttl_ms = 0;
  httpcache_ttl_policy p = {HTTPCACHE_TTL_CALLBACK, 0, ttl_ninety, NULL};
  p.payload = &calls;
  assert_int_equal(httpcache_cache_set(&ttl_s, f->cache, "cb", 2, "v", 1, &p), HTTPCACHE_OK);
  assert_int_equal(ttl_s, 90);
  assert_int_equal(calls, 1);
  assert_int_equal(httpcache_cache_get(&value, &ttl_ms, f->cache, "cb", 2), HTTPCACHE_OK);
  assert_in_range(ttl_ms, 88000, 90000);
  httpcache_buf_dispose(&value);
}

/** A TTL callback returning 0 when get_or_compute stores costs the store, not the value. */
static void test_cache_bad_ttl_callback_fails_open(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "kept", 4, 0, 0};
  httpcache_ttl_policy zero_callback = {HTTPCACHE_TTL_CALLBACK, 0, ttl_zero, NULL};
  httpcache_outcome outcome;
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "badttl", 6, &zero_callback,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(c.calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_string_equal(value.ptr, "kept");
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "badttl", 6), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&value);
}

/** End of day stores with the TTL the pure computation gives for the handle's zone. */
static void test_cache_end_of_day_policy(void **state) {
  fixture *f = *state;
  httpcache_ttl_policy eod = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  int64_t applied = 0, expected = 0;
  assert_int_equal(httpcache_cache_set(&applied, f->cache, "eod", 3, "v", 1, &eod), HTTPCACHE_OK);
  assert_int_equal(httpcache_ttl_compute(&expected, &eod, "Europe/London", (int64_t)time(NULL) * 1000), 0);
  assert_in_range(applied, expected - 2, expected + 1);
  assert_in_range(applied, 1, 25 * 3600);
}

/** Entries expire after their TTL. */
static void test_cache_expiry(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy one_second = {HTTPCACHE_TTL_SECONDS, 1, NULL, NULL};
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "short", 5, "v", 1, &one_second), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "short", 5), HTTPCACHE_OK);
  test_sleep_ms(1150);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "short", 5), HTTPCACHE_ENOTFOUND);
  httpcache_buf_dispose(&value);
}

/** A value over max_value_bytes is refused by set and returned uncached by get_or_compute. */
static void test_cache_value_size_limit(void **state) {
  fixture *f = *state;
  httpcache_cache *small = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state c = {0, "0123456789ABCDEF", 16, 0, 0};
  httpcache_outcome outcome;
  opts.max_value_bytes = 10;
  assert_int_equal(httpcache_cache_open(&small, url_of(f->kind), f->ns, NULL, &opts), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, small, "big", 3, c.value, 16, &one_minute), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "max_value_bytes"));
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, small, "big", 3, &one_minute, compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_int_equal(value.size, 16);
  assert_int_equal(httpcache_cache_get(&value, NULL, small, "big", 3), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_set(NULL, small, "ok", 2, "0123456789", 10, &one_minute), HTTPCACHE_OK);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(small);
}

/* ---- Redis only ---- */

static redisContext *raw_redis(void) {
  const char *url = test_redis_url(); /* redis://127.0.0.1:PORT */
  const char *colon = strrchr(url, ':');
  redisContext *c = redisConnect("127.0.0.1", atoi(colon + 1));
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  return c;
}

/** The stored value is exactly the caller's bytes under `namespace:key`, with an expiry, so any
 *  Redis client reads it; a value another client wrote is served too. */
static void test_cache_redis_plain_bytes(void **state) {
  fixture *f = *state;
  redisContext *c = raw_redis();
  redisReply *r;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int64_t ttl_ms = -1;
  char full[300];
  snprintf(full, sizeof full, "%s:plain", f->ns);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "plain", 5, "a\0b", 3, &one_minute), HTTPCACHE_OK);
  r = redisCommand(c, "GET %s", full);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_int_equal(r->len, 3);
  assert_memory_equal(r->str, "a\0b", 3);
  freeReplyObject(r);
  r = redisCommand(c, "PTTL %s", full);
  assert_in_range(r->integer, 58000, 60000);
  freeReplyObject(r);
  snprintf(full, sizeof full, "%s:foreign", f->ns);
  freeReplyObject(redisCommand(c, "SET %s %s", full, "from-redis-cli"));
  assert_int_equal(httpcache_cache_get(&value, &ttl_ms, f->cache, "foreign", 7), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "from-redis-cli");
  assert_int_equal(ttl_ms, 0); /* no expiry set by its writer */
  httpcache_buf_dispose(&value);
  redisFree(c);
}

/** A key of another type (a list) under our key is a miss, and get_or_compute replaces it. */
static void test_cache_redis_foreign_type_is_miss(void **state) {
  fixture *f = *state;
  redisContext *c = raw_redis();
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state cs = {0, "fresh", 5, 0, 0};
  httpcache_outcome outcome;
  char full[300];
  snprintf(full, sizeof full, "%s:list", f->ns);
  freeReplyObject(redisCommand(c, "RPUSH %s a b", full));
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "list", 4), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "list", 4, &one_minute, compute,
                                                  &cs),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "list", 4), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "fresh");
  /* The connection is still in step after the WRONGTYPE reply. */
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "after", 5, "x", 1, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "after", 5), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "x");
  httpcache_buf_dispose(&value);
  redisFree(c);
}

/** After a real server restart the handle reconnects by itself: no call fails. */
static void test_cache_redis_reconnects_after_restart(void **state) {
  fixture *f = *state;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "r", 1, "before", 6, &one_minute), HTTPCACHE_OK);
  test_redis_fixture("restart"); /* no persistence: the data is gone, the pooled connection is dead */
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "r", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_set(NULL, f->cache, "r", 1, "after", 5, &one_minute), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "r", 1), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "after");
  httpcache_buf_dispose(&value);
}

/* The `field` counter of INFO's `section` line `name` (e.g. "commandstats", "cmdstat_get",
 * "calls"), 0 when the line is absent. */
static long long info_counter(redisContext *c, const char *section, const char *name, const char *field) {
  redisReply *r = redisCommand(c, "INFO %s", section);
  char needle[128];
  const char *line, *at;
  long long n = 0;
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  snprintf(needle, sizeof needle, "\n%s:", name);
  line = strstr(r->str, needle);
  if (line) {
    snprintf(needle, sizeof needle, "%s=", field);
    at = field[0] ? strstr(line, needle) : line + strlen(name) + 2;
    if (at && (!field[0] || at < strchr(line + 1, '\n'))) n = atoll(field[0] ? at + strlen(needle) : at);
  }
  freeReplyObject(r);
  return n;
}

static long long calls_of(redisContext *c, const char *command) {
  char name[64];
  snprintf(name, sizeof name, "cmdstat_%s", command);
  return info_counter(c, "commandstats", name, "calls");
}

/* Calls of every command but INFO (the counting itself). */
static long long all_calls(redisContext *c) {
  redisReply *r = redisCommand(c, "INFO commandstats");
  const char *p;
  long long n = 0;
  assert_non_null(r);
  for (p = strstr(r->str, "\ncmdstat_"); p; p = strstr(p + 1, "\ncmdstat_")) {
    const char *calls = strstr(p, "calls=");
    if (strncmp(p, "\ncmdstat_info:", 14) != 0 && calls) n += atoll(calls + 6);
  }
  freeReplyObject(r);
  return n;
}

/** A hit is one GET and one PTTL (pipelined, nothing else); a store one SET; an invalidation of
 *  N keys one DEL; a get_or_compute miss adds the lease's round trip. Counted by the server (INFO
 *  commandstats deltas). */
/* A handle of the fixture's URL and namespace whose calls all reach Redis (for the tests that
 * count the server's commands and connections): the near tier off, whatever the environment. */
static httpcache_cache *open_without_near_tier(const fixture *f) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  opts.near_cache = HTTPCACHE_NEAR_CACHE_OFF;
  assert_int_equal(httpcache_cache_open(&c, url_of(f->kind), f->ns, "Europe/London", &opts), HTTPCACHE_OK);
  return c;
}

static void test_cache_redis_commands_per_call(void **state) {
  fixture *f = *state;
  redisContext *c = raw_redis();
  httpcache_cache *plain = open_without_near_tier(f);
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  compute_state cs = {0, "v", 1, 0, 0};
  httpcache_outcome outcome;
  const char *keys[] = {"a", "b", "c"};
  size_t lens[] = {1, 1, 1}, deleted = 0;
  long long get0, pttl0, set0, del0, all0;
  int i;
  assert_int_equal(httpcache_cache_set(NULL, plain, "a", 1, "v", 1, &one_minute), HTTPCACHE_OK); /* connect */
  get0 = calls_of(c, "get"), pttl0 = calls_of(c, "pttl"), set0 = calls_of(c, "set"), all0 = all_calls(c);
  for (i = 1; i <= 3; ++i) {
    assert_int_equal(httpcache_cache_get(&value, NULL, plain, "a", 1), HTTPCACHE_OK);
    assert_int_equal(calls_of(c, "get"), get0 + i);
    assert_int_equal(calls_of(c, "pttl"), pttl0 + i);
    assert_int_equal(all_calls(c), all0 + 2 * i);
  }
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, plain, "a", 1, &one_minute, compute,
                                                  &cs),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_int_equal(all_calls(c), all0 + 8);
  assert_int_equal(httpcache_cache_set(NULL, plain, "b", 1, "v", 1, &one_minute), HTTPCACHE_OK);
  assert_int_equal(calls_of(c, "set"), set0 + 1);
  assert_int_equal(all_calls(c), all0 + 9);
  del0 = calls_of(c, "del");
  assert_int_equal(httpcache_cache_invalidate(&deleted, plain, (const void *const *)keys, lens, 3), HTTPCACHE_OK);
  assert_int_equal(deleted, 2);
  assert_int_equal(calls_of(c, "del"), del0 + 1);
  assert_int_equal(all_calls(c), all0 + 10);
  /* A miss of get_or_compute: the lookup (GET+PTTL), the lease (SET NX + GET + PTTL, pipelined:
   * fencing's one extra round trip) and the fenced store (one EVAL, whose script's GET and SET
   * the server counts too): 3 round trips. */
  set0 = calls_of(c, "set");
  {
    long long eval0 = calls_of(c, "eval");
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, plain, "m", 1, &one_minute, compute,
                                                    &cs),
                     HTTPCACHE_OK);
    assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
    assert_int_equal(calls_of(c, "set"), set0 + 2);
    assert_int_equal(calls_of(c, "eval"), eval0 + 1);
    assert_int_equal(all_calls(c), all0 + 18);
  }
  httpcache_buf_dispose(&value);
  redisFree(c);
  httpcache_cache_free(plain);
}

/* Clients connected to the server, without the counting connection. */
static long long connected_clients(redisContext *c) {
  return info_counter(c, "clients", "connected_clients", "") - 1;
}

typedef struct {
  httpcache_cache *cache;
  pthread_barrier_t *go;
  int rc;
} pool_worker;

static void *pool_get(void *arg) {
  pool_worker *w = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  pthread_barrier_wait(w->go);
  w->rc = httpcache_cache_get(&value, NULL, w->cache, "p", 1);
  httpcache_buf_dispose(&value);
  return NULL;
}

/* With the near tier on (HTTPCACHE_NEAR_CACHE=1), waits until the handle's report link answers
 * (a near hit), so that it connects before a test counts the server's connections. */
static void settle_near_tier(httpcache_cache *cache) {
  const char *near = getenv("HTTPCACHE_NEAR_CACHE");
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  int64_t deadline = test_now_ms() + 3000;
  if (!near || strcmp(near, "1") != 0) return;
  assert_int_equal(httpcache_cache_set(NULL, cache, "settle", 6, "v", 1, &one_minute), HTTPCACHE_OK);
  do {
    assert_true(test_now_ms() < deadline);
    assert_int_equal(httpcache_cache_get(&v, NULL, cache, "settle", 6), HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  } while (s.near_hits == 0);
  httpcache_buf_dispose(&v);
}

/* Runs `threads` concurrent gets on a handle with the given pool_size (0: the default) while the
 * server holds every command (CLIENT PAUSE), so each get needs a connection of its own; returns
 * the connections the handle keeps open afterwards. */
static long long connections_kept(const char *url, const char *ns, uint32_t pool_size, int threads) {
  redisContext *c = raw_redis();
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *cache = NULL;
  pthread_t tid[16];
  pool_worker w[16];
  pthread_barrier_t go;
  long long before, opened, kept = -1;
  int i, tries;
  assert_true(threads <= 16);
  opts.pool_size = pool_size;
  opts.near_cache = HTTPCACHE_NEAR_CACHE_OFF; /* its report link would be one more connection */
  assert_int_equal(httpcache_cache_open(&cache, url, ns, NULL, &opts), HTTPCACHE_OK);
  before = connected_clients(c);
  opened = info_counter(c, "stats", "total_connections_received", "");
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  for (i = 0; i < threads; ++i) {
    w[i].cache = cache;
    w[i].go = &go;
    w[i].rc = 99;
    assert_int_equal(pthread_create(&tid[i], NULL, pool_get, &w[i]), 0);
  }
  freeReplyObject(redisCommand(c, "CLIENT PAUSE 400 ALL"));
  pthread_barrier_wait(&go);
  for (i = 0; i < threads; ++i) {
    pthread_join(tid[i], NULL);
    assert_int_equal(w[i].rc, HTTPCACHE_ENOTFOUND);
  }
  pthread_barrier_destroy(&go);
  /* Every get ran while the others were held: one connection each. */
  assert_int_equal(info_counter(c, "stats", "total_connections_received", "") - opened, threads);
  for (tries = 0; tries < 100; ++tries) { /* the closed extras leave the server's list shortly */
    kept = connected_clients(c) - before;
    if (kept <= (long long)(pool_size ? pool_size : 8)) break;
    test_sleep_ms(10);
  }
  httpcache_cache_free(cache);
  redisFree(c);
  return kept;
}

/** pool_size bounds the idle connections a handle keeps: 4 concurrent calls open 4, and with
 *  pool_size 2 only 2 stay open; with the default (8), 10 concurrent calls leave 8. */
static void test_cache_redis_pool_size(void **state) {
  fixture *f = *state;
  settle_near_tier(f->cache); /* the fixture handle's report link must not connect mid-count */
  assert_int_equal(connections_kept(test_redis_url(), f->ns, 2, 4), 2);
  assert_int_equal(connections_kept(test_redis_url(), f->ns, 0, 10), 8);
}

typedef struct {
  httpcache_cache *cache;
  pthread_barrier_t *go;
  int index;
  int calls;
  char got[32];
  httpcache_outcome outcome;
} waiter;

static int leader_count;
static pthread_mutex_t leader_mutex = PTHREAD_MUTEX_INITIALIZER;

/* The first caller declines to store its value, slowly (so the others arrive and wait for it);
 * every other caller computes its own value and stores it. */
static int compute_declining_leader(httpcache_buf *out, uint32_t *flags, void *payload) {
  waiter *w = payload;
  char own[32];
  int first;
  ++w->calls;
  pthread_mutex_lock(&leader_mutex);
  first = leader_count++ == 0;
  pthread_mutex_unlock(&leader_mutex);
  if (first) {
    test_sleep_ms(500);
    *flags = HTTPCACHE_COMPUTE_DONT_STORE;
    return httpcache_buf_set(out, "leader", 6);
  }
  snprintf(own, sizeof own, "own-%d", w->index);
  return httpcache_buf_set(out, own, strlen(own));
}

static void *waiter_main(void *arg) {
  waiter *w = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  pthread_barrier_wait(w->go);
  if (w->index > 0) test_sleep_ms(50); /* the leader first */
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &w->outcome, w->cache, "decline", 7, &one_minute,
                                                  compute_declining_leader, w),
                   HTTPCACHE_OK);
  snprintf(w->got, sizeof w->got, "%s", value.ptr);
  httpcache_buf_dispose(&value);
  return NULL;
}

/** Waiters of a leader that declines to store (HTTPCACHE_COMPUTE_DONT_STORE) are not given its
 *  value: each computes its own, or reads the value a waiter that computed first stored (the
 *  leader's lease is released, so the first waiter to lease the key stores it); what ends up
 *  stored is never the leader's. */
static void test_cache_waiters_when_leader_declines(void **state) {
  fixture *f = *state;
  enum { N = 4 };
  pthread_t tid[N];
  waiter w[N];
  pthread_barrier_t go;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  int i;
  leader_count = 0;
  pthread_barrier_init(&go, NULL, N);
  for (i = 0; i < N; ++i) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].cache = f->cache;
    w[i].go = &go;
    w[i].index = i;
    assert_int_equal(pthread_create(&tid[i], NULL, waiter_main, &w[i]), 0);
  }
  for (i = 0; i < N; ++i) pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&go);
  assert_in_range(leader_count, 2, N); /* the leader, then at least one waiter */
  for (i = 0; i < N; ++i) {
    char own[32];
    snprintf(own, sizeof own, "own-%d", i);
    if (strcmp(w[i].got, "leader") == 0) {
      assert_int_equal(w[i].calls, 1);
      assert_int_equal(w[i].outcome, HTTPCACHE_OUTCOME_UNCACHED);
    } else if (strcmp(w[i].got, own) == 0) {
      assert_int_equal(w[i].calls, 1);
    } else if (strncmp(w[i].got, "own-", 4) == 0) {
      assert_int_equal(w[i].calls, 0); /* another waiter's stored value: a hit */
      assert_int_equal(w[i].outcome, HTTPCACHE_OUTCOME_HIT);
    } else {
      fail_msg("caller %d got '%s'", i, w[i].got);
    }
  }
  assert_int_equal(httpcache_cache_stats(&s, f->cache), HTTPCACHE_OK);
  assert_int_equal(s.coalesced, N - 1); /* the others did wait for the leader (then computed) */
  assert_int_equal(httpcache_cache_get(&value, NULL, f->cache, "decline", 7), HTTPCACHE_OK);
  assert_non_null(strstr(value.ptr, "own-"));
  httpcache_buf_dispose(&value);
}

/* ---- memory only ---- */

/** The memory store evicts the least recently used entry past its entry limit. */
static void test_cache_memory_lru_by_entries(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  (void)state;
  opts.memory_max_entries = 3;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "lru", NULL, &opts), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, cache, "a", 1, "1", 1, &one_minute), 0);
  assert_int_equal(httpcache_cache_set(NULL, cache, "b", 1, "2", 1, &one_minute), 0);
  assert_int_equal(httpcache_cache_set(NULL, cache, "c", 1, "3", 1, &one_minute), 0);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "a", 1), HTTPCACHE_OK); /* a is now recent */
  assert_int_equal(httpcache_cache_set(NULL, cache, "d", 1, "4", 1, &one_minute), 0);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "b", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "a", 1), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "c", 1), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "d", 1), HTTPCACHE_OK);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** The memory store keeps keys+values within its byte limit, evicting old entries. */
static void test_cache_memory_lru_by_bytes(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  char payload[100];
  char key[16];
  int i, present = 0;
  (void)state;
  memset(payload, 'p', sizeof payload);
  opts.memory_max_bytes = 1000; /* "by:NN" keys are 5-6 bytes: about 9 entries fit */
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "by", NULL, &opts), HTTPCACHE_OK);
  for (i = 0; i < 50; ++i) {
    snprintf(key, sizeof key, "%d", i);
    assert_int_equal(httpcache_cache_set(NULL, cache, key, strlen(key), payload, sizeof payload, &one_minute), 0);
  }
  for (i = 0; i < 50; ++i) {
    snprintf(key, sizeof key, "%d", i);
    if (httpcache_cache_get(&value, NULL, cache, key, strlen(key)) == HTTPCACHE_OK) ++present;
  }
  assert_in_range(present, 8, 9);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "49", 2), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "0", 1), HTTPCACHE_ENOTFOUND);
  /* A value that could never fit is not stored, and does not flush the others. */
  {
    static char huge[2000];
    assert_int_equal(httpcache_cache_set(NULL, cache, "huge", 4, huge, sizeof huge, &one_minute), 0);
    assert_int_equal(httpcache_cache_get(&value, NULL, cache, "huge", 4), HTTPCACHE_ENOTFOUND);
    assert_int_equal(httpcache_cache_get(&value, NULL, cache, "49", 2), HTTPCACHE_OK);
  }
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

#define EACH_BACKEND(test)                                                      \
  cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&memory_backend), \
  cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&redis_backend),  \
  cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&unix_backend), \
  cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&cluster_backend)
#define REDIS_ONLY(test) \
  cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&redis_backend)

int main(void) {
  const struct CMUnitTest tests[] = {
      EACH_BACKEND(test_cache_set_then_get),
      EACH_BACKEND(test_cache_binary_safe),
      EACH_BACKEND(test_cache_get_or_compute_miss_then_hit),
      EACH_BACKEND(test_cache_get_or_compute_dont_store),
      EACH_BACKEND(test_cache_get_or_compute_callback_failure),
      EACH_BACKEND(test_cache_invalidate_many),
      EACH_BACKEND(test_cache_bad_input),
      EACH_BACKEND(test_cache_callback_policy),
      EACH_BACKEND(test_cache_bad_ttl_callback_fails_open),
      EACH_BACKEND(test_cache_end_of_day_policy),
      EACH_BACKEND(test_cache_expiry),
      EACH_BACKEND(test_cache_value_size_limit),
      REDIS_ONLY(test_cache_redis_plain_bytes),
      REDIS_ONLY(test_cache_redis_foreign_type_is_miss),
      REDIS_ONLY(test_cache_redis_reconnects_after_restart),
      REDIS_ONLY(test_cache_redis_commands_per_call),
      REDIS_ONLY(test_cache_redis_pool_size),
      cmocka_unit_test_prestate_setup_teardown(test_cache_waiters_when_leader_declines, setup, teardown,
                                               (void *)&memory_backend),
      REDIS_ONLY(test_cache_waiters_when_leader_declines),
      cmocka_unit_test(test_cache_memory_lru_by_entries),
      cmocka_unit_test(test_cache_memory_lru_by_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
