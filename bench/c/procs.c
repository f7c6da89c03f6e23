/* SPDX-License-Identifier: MIT
 * Misses from several processes at once, as the workers of one host make them: P processes each
 * run N get_or_compute calls on keys of their own (every call a miss, then a store), on one
 * shared store. Prints the wall time and the calls per second of the whole host, so that
 * lmdb:// and a local redis-server can be compared side by side (bench/run.sh).
 *   procs URL [PROCESSES] [CALLS_PER_PROCESS] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpcache.h"

static int produce(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  return httpcache_buf_set(out, payload, 256);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int child(const char *url, int index, long calls, int go) {
  httpcache_cache *cache = NULL;
  httpcache_ttl_policy hour = {HTTPCACHE_TTL_SECONDS, 3600, NULL, NULL};
  char payload[256], key[64], byte;
  long i;
  memset(payload, 'x', sizeof payload);
  if (httpcache_cache_open(&cache, url, "bench_procs", "UTC", NULL) != HTTPCACHE_OK) return 2;
  if (read(go, &byte, 1) != 1) return 2; /* every process starts together */
  for (i = 0; i < calls; ++i) {
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
    int n = snprintf(key, sizeof key, "m.%d.%d.%ld", (int)getppid(), index, i);
    if (httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, key, (size_t)n, &hour, produce, payload) !=
            HTTPCACHE_OK ||
        outcome != HTTPCACHE_OUTCOME_STORED)
      return 1;
    httpcache_buf_dispose(&value);
  }
  httpcache_cache_free(cache);
  return 0;
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "memory://";
  int procs = argc > 2 ? atoi(argv[2]) : 4, i, failed = 0, go[2];
  long calls = argc > 3 ? atol(argv[3]) : 20000;
  double start;
  if (procs < 1 || calls < 1 || pipe(go) != 0) return 2;
  for (i = 0; i < procs; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      close(go[1]);
      _exit(child(url, i, calls, go[0]));
    }
  }
  close(go[0]);
  {
    struct timespec settle = {0, 200 * 1000 * 1000}; /* the children have opened their handles */
    nanosleep(&settle, NULL);
  }
  start = now_s();
  for (i = 0; i < procs; ++i)
    if (write(go[1], "g", 1) != 1) return 2;
  for (i = 0; i < procs; ++i) {
    int status = 0;
    wait(&status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  {
    double elapsed = now_s() - start;
    printf("%s: %d processes x %ld misses+stores: %.2f s, %.0f calls/s, %.1f us per call per process%s\n", url, procs,
           calls, elapsed, procs * calls / elapsed, elapsed * 1e6 / calls, failed ? " (FAILED)" : "");
  }
  return failed ? 1 : 0;
}
