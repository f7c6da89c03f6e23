/* SPDX-License-Identifier: MIT
 * Opening handles: URL schemes and their options, bad URLs, zones, lazy connection, fail-open. */
#include <stdio.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

static int open_url(httpcache_cache **out, const char *url) {
  return httpcache_cache_open(out, url, "t", "UTC", NULL);
}

/** NULL, "" and memory:// all give the embedded store; free(NULL) is harmless. */
static void test_open_memory_forms(void **state) {
  const char *urls[] = {NULL, "", "memory://"};
  size_t i;
  (void)state;
  for (i = 0; i < 3; ++i) {
    httpcache_cache *cache = NULL;
    assert_int_equal(open_url(&cache, urls[i]), HTTPCACHE_OK);
    assert_non_null(cache);
    assert_string_equal(httpcache_cache_timezone(cache), "UTC");
    httpcache_cache_free(cache);
  }
  httpcache_cache_free(NULL);
  assert_null(httpcache_cache_namespace(NULL));
}

/** Every documented Redis URL form parses (the handle connects lazily, so no server is needed). */
static void test_open_redis_forms(void **state) {
  const char *urls[] = {
      "redis://localhost",
      "redis://127.0.0.1:6390",
      "redis://127.0.0.1:6390/3",
      "redis://:secret@127.0.0.1:6390/0",
      "redis://alice:s%3Acret@127.0.0.1/2?connect_timeout_ms=50&command_timeout_ms=70",
      "redis://secret@localhost",
      "redis://[::1]:6390/1",
      "unix:///tmp/none.sock",
      "unix:///tmp/none.sock?db=4&command_timeout_ms=10",
      "redis+cluster://127.0.0.1:7000",
      "redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001,[::1]:7002?command_timeout_ms=30",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof urls / sizeof urls[0]; ++i) {
    httpcache_cache *cache = NULL;
    int rc = open_url(&cache, urls[i]);
    if (rc != HTTPCACHE_OK) fail_msg("%s: %s", urls[i], httpcache_error_last()->message);
    httpcache_cache_free(cache);
  }
}

/** Bad URLs and unknown schemes fail with EINVALID, a message saying why, and *out NULL. */
static void test_open_bad_urls(void **state) {
  struct {
    const char *url;
    const char *why;
  } cases[] = {
      {"redis", "://"},
      {"http://localhost", "unknown scheme 'http'"},
      {"rediss://a:1", "unknown scheme 'rediss'"},
      {"redis://a:1,b:2", "one host"},
      {"redis+cluster://a:1,", "no host"},
      {"redis+cluster://a:1/2", "database 0"},
      {"memory://x", "memory://"},
      {"redis://", "no host"},
      {"redis://host:0", "port"},
      {"redis://host:70000", "port"},
      {"redis://host:12ab", "port"},
      {"redis://host/x", "database"},
      {"redis://host/-1", "database"},
      {"redis://host?command_timeout_ms=0", "command_timeout_ms"},
      {"redis://host?command_timeout_ms=", "command_timeout_ms"},
      {"redis://host?bogus=1", "unknown query parameter 'bogus'"},
      {"redis://host?novalue", "no value"},
      {"redis://[::1", "IPv6"},
      {"redis://ho st", "invalid character"},
      {"redis://u:%zz@host", "percent"},
      {"unix://relative.sock", "absolute"},
      {"unix:///tmp/s.sock?db=x", "db"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    httpcache_cache *cache = (httpcache_cache *)cases; /* must be reset */
    int rc = open_url(&cache, cases[i].url);
    if (rc != HTTPCACHE_EINVALID) fail_msg("%s: expected EINVALID, got %d", cases[i].url, rc);
    assert_null(cache);
    assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
    if (!strstr(httpcache_error_last()->message, cases[i].why))
      fail_msg("%s: message '%s' lacks '%s'", cases[i].url, httpcache_error_last()->message, cases[i].why);
  }
}

/** A password never appears in an error message: not for a bad URL, nor for a refused connection. */
static void test_open_credentials_never_echoed(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  (void)state;
  assert_int_equal(open_url(&cache, "redis://bob:hunter2@127.0.0.1:bad"), HTTPCACHE_EINVALID);
  assert_null(strstr(httpcache_error_last()->message, "hunter2"));
  /* Port 1 on loopback refuses: the connection error names the server, not the password. */
  assert_int_equal(open_url(&cache, "redis://bob:hunter2@127.0.0.1:1?connect_timeout_ms=200"), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_non_null(strstr(httpcache_error_last()->message, "127.0.0.1:1"));
  assert_non_null(strstr(httpcache_error_last()->message, "***"));
  assert_null(strstr(httpcache_error_last()->message, "hunter2"));
  httpcache_cache_free(cache);
}

/** Unknown, empty and absurd zone names are refused with the name in the message. */
static void test_open_unknown_time_zone(void **state) {
  httpcache_cache *cache = NULL;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "Mars/Olympus", NULL), HTTPCACHE_EINVALID);
  assert_null(cache);
  assert_non_null(strstr(httpcache_error_last()->message, "Mars/Olympus"));
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "", NULL), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_open(&cache, NULL, "t", "Africa/Casablanca", NULL), HTTPCACHE_OK);
  assert_string_equal(httpcache_cache_timezone(cache), "Africa/Casablanca");
  httpcache_cache_free(cache);
}

/** NULL out is EINVALID, never a crash. */
static void test_open_null_out(void **state) {
  (void)state;
  assert_int_equal(httpcache_cache_open(NULL, NULL, NULL, NULL, NULL), HTTPCACHE_EINVALID);
}

static int compute_hello(httpcache_buf *value, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(value, "hello", 5);
}

/** With Redis down, get reports EBACKEND and get_or_compute still serves the computed value. */
static void test_open_server_down_fails_open(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_HIT;
  int calls = 0;
  const char *keys[] = {"k"};
  size_t lens[] = {1};
  (void)state;
  assert_int_equal(open_url(&cache, "redis://127.0.0.1:1?connect_timeout_ms=200"), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &policy, compute_hello,
                                                  &calls),
                   HTTPCACHE_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
  assert_string_equal(value.ptr, "hello");
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "v", 1, &policy), HTTPCACHE_EBACKEND);
  assert_int_equal(httpcache_cache_invalidate(NULL, cache, (const void *const *)keys, lens, 1), HTTPCACHE_EBACKEND);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** Options from the URL override the struct; db selects a database (seen by a second handle). */
static void test_open_db_selects_database(void **state) {
  char url3[600], url4[600];
  httpcache_cache *db3 = NULL, *db4 = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  const char *ns = test_unique_namespace("db");
  (void)state;
  snprintf(url3, sizeof url3, "%s/3?command_timeout_ms=2000", test_redis_url());
  snprintf(url4, sizeof url4, "%s/4", test_redis_url());
  assert_int_equal(httpcache_cache_open(&db3, url3, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_open(&db4, url4, ns, NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_set(NULL, db3, "k", 1, "three", 5, &policy), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_get(&value, NULL, db4, "k", 1), HTTPCACHE_ENOTFOUND);
  assert_int_equal(httpcache_cache_get(&value, NULL, db3, "k", 1), HTTPCACHE_OK);
  assert_string_equal(value.ptr, "three");
  httpcache_buf_dispose(&value);
  httpcache_cache_free(db3);
  httpcache_cache_free(db4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_memory_forms),
      cmocka_unit_test(test_open_redis_forms),
      cmocka_unit_test(test_open_bad_urls),
      cmocka_unit_test(test_open_credentials_never_echoed),
      cmocka_unit_test(test_open_unknown_time_zone),
      cmocka_unit_test(test_open_null_out),
      cmocka_unit_test(test_open_server_down_fails_open),
      cmocka_unit_test(test_open_db_selects_database),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
