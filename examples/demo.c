/* SPDX-License-Identifier: MIT
 * The demo: caches a slow computation on the embedded memory:// store (or the URL given as the
 * first argument) and prints how long a miss and the following hits take. Then the store for
 * several workers of one host (uvicorn --workers, gunicorn): worker processes on one lmdb://
 * directory share every entry and every invalidation, with no server to run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* One worker process: opens the shared store, asks for the report once, prints what happened. */
static int worker(const char *url, const char *name, int invalidate) {
  httpcache_cache *cache = NULL;
  httpcache_ttl_policy hour = {HTTPCACHE_TTL_SECONDS, 3600, NULL, NULL};
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
  int computations = 0;
  if (httpcache_cache_open(&cache, url, "demo", "UTC", NULL) != HTTPCACHE_OK) {
    fprintf(stderr, "open failed: %s\n", httpcache_error_last()->message);
    return 1;
  }
  if (invalidate) {
    const char *keys[] = {"report.monthly"};
    size_t lens[] = {14}, deleted = 0;
    httpcache_cache_invalidate(&deleted, cache, (const void *const *)keys, lens, 1);
    printf("  %s (pid %d): invalidated %zu key\n", name, (int)getpid(), deleted);
  } else if (httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "report.monthly", 14, &hour, slow_report,
                                            &computations) == HTTPCACHE_OK) {
    printf("  %s (pid %d): %-15s %s\n", name, (int)getpid(), outcome_name(outcome), value.ptr);
    httpcache_buf_dispose(&value);
  }
  httpcache_cache_free(cache);
  fflush(stdout); /* the child leaves with _exit, which flushes nothing */
  return 0;
}

/* Workers in turn, each its own process, on one lmdb:// directory made for the demo. */
static int workers_demo(void) {
  static const struct {
    const char *name;
    int invalidate;
  } steps[] = {{"worker 1", 0}, {"worker 2", 0}, {"worker 3", 1}, {"worker 4", 0}};
  char dir[] = "/tmp/httpcache-demo-XXXXXX", url[64];
  size_t i;
  if (!mkdtemp(dir)) return 1;
  snprintf(url, sizeof url, "lmdb://%s", dir);
  printf("\nseveral workers of one host share %s (no server):\n", url);
  fflush(stdout);
  for (i = 0; i < sizeof steps / sizeof steps[0]; ++i) {
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) _exit(worker(url, steps[i].name, steps[i].invalidate));
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  {
    const char *files[] = {"data.mdb", "lock.mdb", "boot_id", "open.lock"};
    char path[128];
    for (i = 0; i < 4; ++i) {
      snprintf(path, sizeof path, "%s/%s", dir, files[i]);
      unlink(path);
    }
    rmdir(dir);
  }
  return 0;
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
  if (computations != 1) return 1;
  return argc > 1 ? 0 : workers_demo();
}
