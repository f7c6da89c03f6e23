/* SPDX-License-Identifier: MIT
 * A consumer built outside the source tree against an installed or unpacked httpcache:
 * caches a value on memory://, hits it, and checks the loaded library's version. */
#include <httpcache.h>
#include <stdio.h>
#include <string.h>

static int compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  ++*(int *)payload;
  return httpcache_buf_set(out, "consumer-value", 14);
}

int main(void) {
  httpcache_cache *cache = NULL;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  int calls = 0, i;
  if (httpcache_version_number() != HTTPCACHE_VERSION_NUMBER) {
    fprintf(stderr, "header %d but library %d\n", HTTPCACHE_VERSION_NUMBER, httpcache_version_number());
    return 1;
  }
  if (httpcache_cache_open(&cache, "memory://", "consumer", "UTC", NULL) != HTTPCACHE_OK) return 2;
  for (i = 0; i < 2; ++i) {
    if (httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &policy, compute, &calls) != 0) return 3;
    if (value.size != 14 || memcmp(value.ptr, "consumer-value", 14) != 0) return 4;
  }
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  if (calls != 1 || outcome != HTTPCACHE_OUTCOME_HIT) return 5;
  printf("consumer ok: httpcache %s\n", httpcache_version_string());
  return 0;
}
