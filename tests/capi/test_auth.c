/* SPDX-License-Identifier: MIT
 * AUTH, SELECT and least privilege against the fixture's ACL users (tests/fixtures/redis_server.sh):
 * `app` (password, every command), `confined` (only GET SET DEL PTTL EVAL (AUTH needs no permission;
 * no SELECT) on keys `confined:*`) and `confined_lock` (the same plus the stampede
 * lock's keys `httpcache-lock!confined:*`): the ACL lines of README.md's "Redis permissions". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

/* The password of a redis://user:password@host URL (into out). */
static const char *password_of(const char *url, char *out, size_t cap) {
  const char *colon = strchr(url + strlen("redis://"), ':');
  const char *at = strchr(url, '@');
  assert_non_null(colon);
  assert_non_null(at);
  assert_true(colon < at && (size_t)(at - colon) < cap);
  memcpy(out, colon + 1, (size_t)(at - colon - 1));
  out[at - colon - 1] = '\0';
  return out;
}

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

typedef struct {
  int calls;
} counter;

static int compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  ++((counter *)payload)->calls;
  return httpcache_buf_set(out, "computed", 8);
}

static httpcache_stats stats_of(const httpcache_cache *cache) {
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  return s;
}

/* A key unique to this process (the confined users' namespace is fixed: `confined`). */
static const char *unique_key(const char *prefix, char *out, size_t cap) {
  static unsigned n;
  snprintf(out, cap, "%s-%ld-%u", prefix, (long)getpid(), ++n);
  return out;
}

/** user:password in the URL: every call works, and the entries are the ones another client sees. */
static void test_auth_user_password_works(void **state) {
  char url[512], key[64];
  httpcache_cache *cache = NULL, *plain = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  counter c = {0};
  const char *ns = test_unique_namespace("auth");
  (void)state;
  test_redis_fixture_file("url_auth", url, sizeof url);
  unique_key("k", key, sizeof key);
  assert_int_equal(httpcache_cache_open(&cache, url, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_int_equal(c.calls, 1);
  assert_int_equal(stats_of(cache).errors, 0);
  /* The default user (no password) reads what `app` stored: same server, same key. */
  assert_int_equal(httpcache_cache_open(&plain, test_redis_url(), ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, plain, key, strlen(key)), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "computed");
  httpcache_buf_dispose(&value);
  httpcache_cache_free(plain);
  httpcache_cache_free(cache);
}

/** A wrong password: calls fail open (computed, uncached, counted as errors), the message says
 *  authentication failed, and neither the wrong nor the real password appears in it. */
static void test_auth_wrong_password_fails_open(void **state) {
  char url[512], real[128], bad_url[600];
  const char *at;
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_HIT;
  counter c = {0};
  const char *msg;
  (void)state;
  test_redis_fixture_file("url_auth", url, sizeof url);
  password_of(url, real, sizeof real);
  at = strchr(url, '@');
  snprintf(bad_url, sizeof bad_url, "redis://app:Wrong-%s%s", real, at); /* contains the real one too */
  assert_int_equal(httpcache_cache_open(&cache, bad_url, test_unique_namespace("auth"), NULL, NULL), HTTPCACHE_OK);

  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  msg = httpcache_error_last()->message;
  if (!strstr(msg, "WRONGPASS") || !strstr(msg, "invalid username-password pair"))
    fail_msg("message does not say authentication failed: %s", msg);
  assert_non_null(strstr(msg, "***"));
  if (strstr(msg, real)) fail_msg("password in message: %s", msg);

  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute, compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_int_equal(c.calls, 1);
  assert_string_equal(value.ptr, "computed");
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "v", 1, &one_minute), HTTPCACHE_EBACKEND);
  if (strstr(httpcache_error_last()->message, real)) fail_msg("password in message: %s", httpcache_error_last()->message);
  assert_true(stats_of(cache).errors >= 2);
  assert_int_equal(stats_of(cache).stores, 0);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** As `confined` (GET SET DEL PTTL on confined:* and nothing else), get, set, invalidate and
 *  get_or_compute all work with no backend error; a namespace outside its keys is refused. */
static void test_auth_confined_user_core_paths(void **state) {
  char url[512], key[64], other[64];
  httpcache_cache *cache = NULL, *outside = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  counter c = {0};
  int64_t ttl_ms = 0;
  size_t deleted = 0;
  const void *keys[2];
  size_t lens[2];
  httpcache_stats s;
  (void)state;
  test_redis_fixture_file("url_confined", url, sizeof url);
  unique_key("core", key, sizeof key);
  unique_key("other", other, sizeof other);
  assert_int_equal(httpcache_cache_open(&cache, url, "confined", NULL, NULL), HTTPCACHE_OK);

  assert_int_equal(httpcache_cache_get(&value, NULL, cache, key, strlen(key)), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(httpcache_cache_get_or_compute(&value, &ttl_ms, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_HIT);
  assert_in_range(ttl_ms, 58000, 60000);
  assert_int_equal(c.calls, 1);
  assert_int_equal(httpcache_cache_set(NULL, cache, other, strlen(other), "v", 1, &one_minute), HTTPCACHE_OK);
  keys[0] = key;
  keys[1] = other;
  lens[0] = strlen(key);
  lens[1] = strlen(other);
  assert_int_equal(httpcache_cache_invalidate(&deleted, cache, keys, lens, 2), HTTPCACHE_OK);
  assert_int_equal(deleted, 2);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, key, strlen(key)), HTTPCACHE_ENOTFOUND);
  s = stats_of(cache);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.stores, 2);

  /* Keys outside confined:* are refused by the server (NOPERM), as a backend error. */
  assert_int_equal(httpcache_cache_open(&outside, url, "notconfined", NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, outside, "k", 1, "v", 1, &one_minute), HTTPCACHE_EBACKEND);
  if (!strstr(httpcache_error_last()->message, "NOPERM")) fail_msg("%s", httpcache_error_last()->message);
  assert_int_equal(httpcache_cache_get(&value, NULL, outside, "k", 1), HTTPCACHE_EBACKEND);
  /* A refusal of one request by a server that is up is an error, not an outage: the breaker
   * (3 failures by default) never opens, every call still asks the server. */
  for (int i = 0; i < 5; ++i)
    assert_int_equal(httpcache_cache_set(NULL, outside, "k", 1, "v", 1, &one_minute), HTTPCACHE_EBACKEND);
  s = stats_of(outside);
  assert_int_equal(s.stores, 0);
  assert_int_equal(s.errors, 7);
  assert_int_equal(s.breaker_trips, 0);
  assert_int_equal(s.breaker_skips, 0);
  httpcache_cache_free(outside);

  /* A database other than 0 needs +select, which `confined` lacks (README: "Redis permissions"). */
  {
    char url_db[600];
    snprintf(url_db, sizeof url_db, "%s/2", url);
    assert_int_equal(httpcache_cache_open(&outside, url_db, "confined", NULL, NULL), HTTPCACHE_OK);
    assert_int_equal(httpcache_cache_get(&value, NULL, outside, key, strlen(key)), HTTPCACHE_EBACKEND);
    if (!strstr(httpcache_error_last()->message, "NOPERM") || !strstr(httpcache_error_last()->message, "select"))
      fail_msg("%s", httpcache_error_last()->message);
    httpcache_cache_free(outside);
  }
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** lock_ttl_ms needs more: as `confined` the lock is refused (the value is computed but not
 *  stored: fail open); as `confined_lock` (~httpcache-lock!confined:*) it stores and
 *  releases its lock, with no backend error. */
static void test_auth_confined_stampede_lock(void **state) {
  char url[512], url_lock[512], key[64];
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  counter c = {0};
  (void)state;
  opts.lock_ttl_ms = 2000;
  opts.breaker_failures = 100; /* the refused lock must not open the breaker for the next step */
  test_redis_fixture_file("url_confined", url, sizeof url);
  test_redis_fixture_file("url_confined_lock", url_lock, sizeof url_lock);
  unique_key("lock", key, sizeof key);

  assert_int_equal(httpcache_cache_open(&cache, url, "confined", NULL, &opts), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_true(stats_of(cache).errors >= 1);
  httpcache_cache_free(cache);

  assert_int_equal(httpcache_cache_open(&cache, url_lock, "confined", NULL, &opts), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                  compute, &c),
                   HTTPCACHE_OK);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_int_equal(c.calls, 2);
  assert_int_equal(stats_of(cache).errors, 0); /* SET NX PX took the lock, EVAL released it */
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, key, strlen(key)), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "computed");
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/* ---- non-blocking calls: nothing runs before the connection's AUTH and SELECT succeeded ---- */

typedef struct {
  int done;
  int status;
  char message[512];
} async_result;

static void note_result(async_result *r, int status) {
  ++r->done;
  r->status = status;
  /* Inside the callback, httpcache_error_last() says why a request failed. */
  snprintf(r->message, sizeof r->message, "%s", status == HTTPCACHE_OK ? "" : httpcache_error_last()->message);
}

static void on_async_get(int status, const void *value, size_t size, int64_t ttl_ms, void *payload) {
  (void)value, (void)size, (void)ttl_ms;
  note_result(payload, status);
}

static void on_async_done(int status, int64_t count, void *payload) {
  (void)count;
  note_result(payload, status);
}

/* An async set then get of `key` on a fresh context of `cache`: both must fail with EBACKEND (not
 * run, not a miss), with a message containing `expect`. */
static void async_set_get_fail(httpcache_cache *cache, const char *key, const char *expect, const char *secret) {
  httpcache_async *ctx = NULL;
  test_loop l = TEST_LOOP_INIT;
  async_result set = {0, 0, ""}, get = {0, 0, ""};
  assert_int_equal(httpcache_async_open(&ctx, cache, test_loop_watch, &l), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_set(ctx, key, strlen(key), "stolen", 6, &one_minute, on_async_done, &set), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_get(ctx, key, strlen(key), on_async_get, &get), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&l, ctx, 5000), 0);
  httpcache_async_free(ctx);
  assert_int_equal(set.done, 1);
  assert_int_equal(get.done, 1);
  assert_int_equal(set.status, HTTPCACHE_EBACKEND);
  assert_int_equal(get.status, HTTPCACHE_EBACKEND);
  if (!strstr(set.message, expect) || !strstr(get.message, expect))
    fail_msg("messages do not say '%s': '%s' / '%s'", expect, set.message, get.message);
  if (secret && (strstr(set.message, secret) || strstr(get.message, secret))) fail_msg("password in message");
  assert_int_equal(l.process_errors, 0);
}

/* Whether `key` of namespace `ns` exists in database 0, read as the default user. */
static int stored_in_db0(const char *ns, const char *key) {
  httpcache_cache *plain = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int rc;
  assert_int_equal(httpcache_cache_open(&plain, test_redis_url(), ns, NULL, NULL), HTTPCACHE_OK);
  rc = httpcache_cache_get(&value, NULL, plain, key, strlen(key));
  httpcache_buf_dispose(&value);
  httpcache_cache_free(plain);
  assert_true(rc == HTTPCACHE_OK || rc == HTTPCACHE_ENOTFOUND);
  return rc == HTTPCACHE_OK;
}

/** A wrong password on the non-blocking path: the requests fail with "WRONGPASS" and never run
 *  (pipelined behind a refused AUTH they would run as the server's default user, which here needs
 *  no password: the set would be stored and the get would read the default user's keys). */
static void test_auth_async_wrong_password_runs_nothing(void **state) {
  char url[512], real[128], bad_url[600], key[64];
  httpcache_cache *cache = NULL;
  const char *ns = test_unique_namespace("authasync");
  httpcache_stats s;
  (void)state;
  test_redis_fixture_file("url_auth", url, sizeof url);
  password_of(url, real, sizeof real);
  snprintf(bad_url, sizeof bad_url, "redis://app:Wrong-%s%s", real, strchr(url, '@'));
  unique_key("wa", key, sizeof key);
  assert_int_equal(httpcache_cache_open(&cache, bad_url, ns, NULL, NULL), HTTPCACHE_OK);
  async_set_get_fail(cache, key, "WRONGPASS", real);
  assert_false(stored_in_db0(ns, key));
  s = stats_of(cache);
  assert_int_equal(s.stores, 0);
  assert_int_equal(s.hits + s.misses, 0);
  assert_int_equal(s.errors, 2);
  httpcache_cache_free(cache);
}

/** A database the server does not have (SELECT refused): blocking calls fail open with the
 *  server's message, the non-blocking ones never run in database 0, and since the server is up
 *  the breaker stays closed however many calls fail. */
static void test_refused_select_runs_nothing(void **state) {
  char url[600], key[64];
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  counter c = {0};
  const char *ns = test_unique_namespace("baddb");
  httpcache_stats s;
  (void)state;
  snprintf(url, sizeof url, "%s/99", test_redis_url()); /* the fixture has 16 databases */
  unique_key("db", key, sizeof key);
  assert_int_equal(httpcache_cache_open(&cache, url, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, key, strlen(key)), HTTPCACHE_EBACKEND);
  if (!strstr(httpcache_error_last()->message, "DB index is out of range"))
    fail_msg("%s", httpcache_error_last()->message);
  for (int i = 0; i < 5; ++i) {
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, strlen(key), &one_minute,
                                                    compute, &c),
                     HTTPCACHE_OK);
    assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  }
  assert_int_equal(c.calls, 5);
  async_set_get_fail(cache, key, "refused SELECT: ERR DB index is out of range", NULL);
  assert_false(stored_in_db0(ns, key));
  s = stats_of(cache);
  assert_int_equal(s.stores, 0);
  assert_int_equal(s.breaker_trips, 0);
  assert_int_equal(s.breaker_skips, 0);
  assert_true(s.errors >= 8);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth_user_password_works),
      cmocka_unit_test(test_auth_wrong_password_fails_open),
      cmocka_unit_test(test_auth_confined_user_core_paths),
      cmocka_unit_test(test_auth_confined_stampede_lock),
      cmocka_unit_test(test_auth_async_wrong_password_runs_nothing),
      cmocka_unit_test(test_refused_select_runs_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
