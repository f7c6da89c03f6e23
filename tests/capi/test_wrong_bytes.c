/* SPDX-License-Identifier: MIT
 * Never serve the wrong bytes (issue 13): misuse of the non-blocking API that would make every
 * request time out is refused at once. Key encoding has its own tests in test_keys.c. */
#include <stdint.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

static void test_async_open_needs_a_watch_callback_on_redis(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_async *ctx = NULL;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), "wrong_bytes", NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_open(&ctx, cache, NULL, NULL), HTTPCACHE_EINVALID);
  assert_null(ctx);
  assert_non_null(strstr(httpcache_error_last()->message, "watch callback"));
  httpcache_cache_free(cache);
  /* memory:// completes every request inside the call that starts it: no watch is needed. */
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "wrong_bytes", NULL, NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_async_open(&ctx, cache, NULL, NULL), HTTPCACHE_OK);
  httpcache_async_free(ctx);
  httpcache_cache_free(cache);
}

/* Finding 10: a TTL over HTTPCACHE_MAX_TTL_SECONDS is EINVALID before any I/O, on every backend,
 * and never an outage: three of them must not open the circuit breaker. */
static int64_t huge_ttl(void *payload) {
  (void)payload;
  return INT64_MAX;
}

static int compute_value(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  (void)payload;
  return httpcache_buf_set(out, "v", 1);
}

static void check_ttl_limit(const char *url) {
  httpcache_cache *cache = NULL;
  httpcache_ttl_policy too_long = {HTTPCACHE_TTL_SECONDS, INT64_MAX, NULL, NULL};
  httpcache_ttl_policy longest = {HTTPCACHE_TTL_SECONDS, HTTPCACHE_MAX_TTL_SECONDS, NULL, NULL};
  httpcache_ttl_policy callback = {HTTPCACHE_TTL_CALLBACK, 0, huge_ttl, NULL};
  httpcache_stats st = HTTPCACHE_STATS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int64_t secs = 0;
  int i;
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("ttlmax"), NULL, NULL), HTTPCACHE_OK);
  for (i = 0; i < 3; i++) {
    assert_int_equal(httpcache_cache_set(&secs, cache, "k", 1, "v", 1, &too_long), HTTPCACHE_EINVALID);
    assert_non_null(strstr(httpcache_error_last()->message, "maximum"));
    assert_int_equal(httpcache_cache_set(&secs, cache, "k", 1, "v", 1, &callback), HTTPCACHE_EINVALID);
  }
  assert_int_equal(httpcache_ttl_compute(&secs, &too_long, "UTC", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, cache, "g", 1, &too_long, compute_value, NULL),
                   HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_stats(&st, cache), HTTPCACHE_OK);
  assert_int_equal(st.breaker_trips, 0);
  assert_int_equal(st.errors, 0);
  assert_int_equal(httpcache_cache_set(&secs, cache, "k", 1, "v", 1, &longest), HTTPCACHE_OK);
  assert_int_equal(secs, HTTPCACHE_MAX_TTL_SECONDS);
  assert_int_equal(httpcache_cache_get(&value, &secs, cache, "k", 1), HTTPCACHE_OK);
  assert_true(secs > (int64_t)(HTTPCACHE_MAX_TTL_SECONDS - 60) * 1000);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

static void test_ttl_over_the_maximum_is_einvalid_memory(void **state) {
  (void)state;
  check_ttl_limit("memory://");
}

static void test_ttl_over_the_maximum_is_einvalid_redis(void **state) {
  (void)state;
  check_ttl_limit(test_redis_url());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_async_open_needs_a_watch_callback_on_redis),
      cmocka_unit_test(test_ttl_over_the_maximum_is_einvalid_memory),
      cmocka_unit_test(test_ttl_over_the_maximum_is_einvalid_redis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
