/* SPDX-License-Identifier: MIT
 * Memory: (1) the memory:// store respects its byte limit: writing 10x the limit keeps RSS within
 * the limit plus the documented overhead; (2) nothing grows without bound over a long run of
 * mixed calls (hits, misses + stores, invalidations, failed calls). Prints what it measured and
 * exits non-zero when a bound is exceeded. Run under valgrind for the leak check (bench/run.sh).
 *   soak [CALLS] [REDIS_URL] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpcache.h"

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  fclose(f);
  return kb;
}

static int produce(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  return httpcache_buf_set(out, payload, 256);
}

static int fail(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)out, (void)flags, (void)payload;
  return -100;
}

/* Mixed calls on one handle; returns RSS growth (kB) between 10% and 100% of the run. */
static long mixed_run(const char *url, long calls) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_ttl_policy ttl = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  char body[256], key[32];
  long i, early = 0;
  memset(body, 'b', sizeof body);
  opts.memory_max_entries = 10000;
  if (httpcache_cache_open(&cache, url, "soak", "UTC", &opts) != HTTPCACHE_OK) {
    fprintf(stderr, "open %s: %s\n", url, httpcache_error_last()->message);
    exit(2);
  }
  for (i = 0; i < calls; ++i) {
    size_t len = (size_t)snprintf(key, sizeof key, "k%ld", i % 50000);
    if (i % 10 == 9) {
      const void *keys[1] = {key};
      httpcache_cache_invalidate(NULL, cache, keys, &len, 1);
    } else if (i % 100 == 42) {
      httpcache_cache_get_or_compute(&value, NULL, NULL, cache, "failing", 7, &ttl, fail, NULL);
    } else {
      httpcache_cache_get_or_compute(&value, NULL, NULL, cache, key, len, &ttl, produce, body);
    }
    if (i == calls / 10) early = rss_kb();
  }
  httpcache_buf_dispose(&value);
  {
    long growth = rss_kb() - early;
    httpcache_cache_free(cache);
    return growth;
  }
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 1000000;
  const char *redis = argc > 2 ? argv[2] : NULL;
  int bad = 0;
  /* (1) byte limit: 16 MiB store, 160 MiB written in 4 KiB values. */
  {
    const unsigned long long limit = 16ull << 20;
    httpcache_cache *cache = NULL;
    httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
    httpcache_ttl_policy ttl = {HTTPCACHE_TTL_SECONDS, 600, NULL, NULL};
    static char value[4096];
    char key[32];
    long before, after, i;
    opts.memory_max_bytes = limit;
    memset(value, 'v', sizeof value);
    before = rss_kb();
    httpcache_cache_open(&cache, "memory://", "bound", NULL, &opts);
    for (i = 0; i < (long)(10 * limit / sizeof value); ++i) {
      size_t len = (size_t)snprintf(key, sizeof key, "big%ld", i);
      httpcache_cache_set(NULL, cache, key, len, value, sizeof value, &ttl);
    }
    after = rss_kb();
    /* Documented overhead: the entry bookkeeping (list and hash nodes, ~120 B per entry) and the
     * allocator's slack; 25% of the limit covers both for 4 KiB values. */
    printf("memory:// byte limit: wrote %llu MiB into a %llu MiB store: RSS grew %.1f MiB (bound %.1f MiB)\n",
           10 * limit >> 20, limit >> 20, (after - before) / 1024.0, limit * 1.25 / 1048576.0);
    if ((after - before) * 1024.0 > limit * 1.25) bad = 1;
    httpcache_cache_free(cache);
  }
  /* (2) long runs: RSS must be flat after warm-up. */
  {
    long growth = mixed_run("memory://", calls);
    printf("memory:// %ld mixed calls: RSS growth after warm-up %ld kB\n", calls, growth);
    if (growth > 2048) bad = 1;
  }
  if (redis) {
    long n = calls / 5;
    long growth = mixed_run(redis, n);
    printf("redis %ld mixed calls: RSS growth after warm-up %ld kB\n", n, growth);
    if (growth > 2048) bad = 1;
  }
  /* Under valgrind RSS says nothing about us (its own allocator): only the leak check counts. */
  return getenv("SOAK_LEAK_CHECK_ONLY") ? 0 : bad;
}
