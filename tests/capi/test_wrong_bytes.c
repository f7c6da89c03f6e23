/* SPDX-License-Identifier: MIT
 * Never serve the wrong bytes (issue 13): misuse of the non-blocking API that would make every
 * request time out is refused at once. Key encoding has its own tests in test_keys.c. */
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_async_open_needs_a_watch_callback_on_redis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
