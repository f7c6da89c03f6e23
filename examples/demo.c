/* SPDX-License-Identifier: MIT
 * The demo: caches a slow computation on the embedded memory:// store (or the URL given as the
 * first argument) and prints how long a miss and the following hits take. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpcache.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The "expensive" work: 200 ms of pretend database time, then a small JSON document. */
static int slow_report(httpcache_buf *out, uint32_t *flags, void *payload) {
  struct timespec pause = {0, 200 * 1000 * 1000};
  char json[128];
  (void)flags;
  ++*(int *)payload;
  nanosleep(&pause, NULL);
  snprintf(json, sizeof json, "{\"report\": \"monthly\", \"rows\": %d}", 42);
  return httpcache_buf_set(out, json, strlen(json));
}

static const char *outcome_name(httpcache_outcome o) {
  return o == HTTPCACHE_OUTCOME_HIT ? "hit" : o == HTTPCACHE_OUTCOME_STORED ? "miss -> stored" : "uncached";
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "memory://";
  httpcache_cache *cache = NULL;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  int computations = 0, i, rc;
  int64_t ttl_s = 0;

  printf("httpcache %s demo on %s\n", httpcache_version_string(), url);
  rc = httpcache_cache_open(&cache, url, "demo", "Europe/London", NULL);
  if (rc != HTTPCACHE_OK) {
    fprintf(stderr, "open failed: %s (%s)\n", httpcache_strerror(rc), httpcache_error_last()->message);
    return 1;
  }
  httpcache_cache_ttl(&ttl_s, cache, &policy, (int64_t)time(NULL) * 1000);
  printf("entries expire at the end of the day in Europe/London: in %lld s\n", (long long)ttl_s);

  for (i = 0; i < 4; ++i) {
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
    double start = now_us();
    rc = httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "report.monthly", 14, &policy, slow_report,
                                        &computations);
    if (rc != HTTPCACHE_OK) {
      fprintf(stderr, "get_or_compute failed: %s\n", httpcache_error_last()->message);
      httpcache_cache_free(cache);
      return 1;
    }
    printf("call %d: %-15s %10.1f us  %s\n", i + 1, outcome_name(outcome), now_us() - start, value.ptr);
    httpcache_buf_dispose(&value);
  }
  {
    const char *keys[] = {"report.monthly"};
    size_t lens[] = {14}, deleted = 0;
    httpcache_cache_invalidate(&deleted, cache, (const void *const *)keys, lens, 1);
    printf("invalidated %zu key; the computation ran %d time(s) for 4 calls\n", deleted, computations);
  }
  httpcache_cache_free(cache);
  return computations == 1 ? 0 : 1;
}
