/* SPDX-License-Identifier: MIT
 * AUTH and least privilege against the fixture's ACL users (tests/fixtures/redis_server.sh):
 * `app` (password, every command), `confined` (only GET SET DEL PTTL (AUTH needs no permission;
 * no SELECT) on keys `confined:*`) and `confined_lock` (the same plus EVAL and the stampede
 * lock's keys `httpcache-lock!confined:*`): the ACL lines of README.md's "Redis permissions". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

/* DIR/name of the redis fixture, first line. Static storage per call site is not needed: the
 * caller passes its buffer. */
static const char *fixture_file(const char *name, char *out, size_t cap) {
  const char *dir = getenv("HTTPCACHE_TEST_REDIS_DIR");
  char path[1024];
  FILE *f;
  if (!dir) fail_msg("HTTPCACHE_TEST_REDIS_DIR is not set: run through ctest");
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "r");
  if (!f) fail_msg("cannot read %s: is the redis fixture running (with its ACL users)?", path);
  if (!fgets(out, (int)cap, f)) out[0] = '\0';
  fclose(f);
  out[strcspn(out, "\r\n")] = '\0';
  return out;
}

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
  fixture_file("url_auth", url, sizeof url);
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
  fixture_file("url_auth", url, sizeof url);
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
  fixture_file("url_confined", url, sizeof url);
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
  assert_int_equal(stats_of(outside).stores, 0);
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
 *  stored: fail open); as `confined_lock` (+EVAL, ~httpcache-lock!confined:*) it stores and
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
  fixture_file("url_confined", url, sizeof url);
  fixture_file("url_confined_lock", url_lock, sizeof url_lock);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth_user_password_works),
      cmocka_unit_test(test_auth_wrong_password_fails_open),
      cmocka_unit_test(test_auth_confined_user_core_paths),
      cmocka_unit_test(test_auth_confined_stampede_lock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
