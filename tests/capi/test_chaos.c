/* SPDX-License-Identifier: MIT
 * Chaos: a steady load of cached calls from 4 threads while the real redis-server is killed,
 * revived on the same port, and stalled (SIGSTOP/SIGCONT). Every call must succeed with the right
 * value and hits must resume after each outage. Latency (p99, worst) and the time to resume are
 * printed, not asserted: they belong to bench/, and a loaded CI machine stretches them. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "httpcache.h"
#include "support.h"

enum { THREADS = 4, KEYS = 16, MAX_SAMPLES = 400000 };

typedef struct {
  httpcache_cache *cache;
  int stop; /* read and written with __atomic builtins */
  pthread_mutex_t lock;
  long calls, failures, hits;
  int64_t last_hit_ms;
  int64_t *latencies_us; /* of every call */
  long samples;
} load;

static int compute_for_key(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  return httpcache_buf_set(out, (const char *)payload, strlen((const char *)payload));
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *worker(void *arg) {
  load *l = arg;
  httpcache_ttl_policy policy = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  unsigned n = 0;
  while (!__atomic_load_n(&l->stop, __ATOMIC_RELAXED)) {
    char key[32], expect[48];
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    httpcache_outcome outcome = 0;
    int64_t start, took;
    int rc, ok;
    snprintf(key, sizeof key, "chaos.%u", n++ % KEYS);
    snprintf(expect, sizeof expect, "value-of-%s", key);
    start = now_us();
    rc = httpcache_cache_get_or_compute(&value, NULL, &outcome, l->cache, key, strlen(key), &policy,
                                        compute_for_key, expect);
    took = now_us() - start;
    ok = rc == HTTPCACHE_OK && value.size == strlen(expect) && memcmp(value.ptr, expect, value.size) == 0;
    pthread_mutex_lock(&l->lock);
    ++l->calls;
    if (!ok) ++l->failures;
    if (outcome == HTTPCACHE_OUTCOME_HIT) {
      ++l->hits;
      l->last_hit_ms = test_now_ms();
    }
    if (l->samples < MAX_SAMPLES) l->latencies_us[l->samples++] = took;
    pthread_mutex_unlock(&l->lock);
    httpcache_buf_dispose(&value);
    test_sleep_ms(1); /* a steady load, not a busy loop */
  }
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Waits until a hit is seen after `since_ms`; returns how long that took, or -1. */
static int64_t wait_for_hit(load *l, int64_t since_ms, int limit_ms) {
  while (test_now_ms() - since_ms < limit_ms) {
    int64_t last;
    pthread_mutex_lock(&l->lock);
    last = l->last_hit_ms;
    pthread_mutex_unlock(&l->lock);
    if (last > since_ms) return last - since_ms;
    test_sleep_ms(5);
  }
  return -1;
}

/** Kill, revive and stall the server under load: zero failed calls, and hits resume each time. */
static void test_chaos_kill_revive_stall(void **state) {
  load l;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  pthread_t tids[THREADS];
  pid_t pid;
  int i;
  int64_t revived, resumed_after_revive, resumed_after_stall, p99, worst;
  (void)state;
  memset(&l, 0, sizeof l);
  pthread_mutex_init(&l.lock, NULL);
  l.latencies_us = calloc(MAX_SAMPLES, sizeof *l.latencies_us);
  opts.connect_timeout_ms = 200;
  opts.command_timeout_ms = 200;
  assert_int_equal(httpcache_cache_open(&l.cache, test_redis_url(), test_unique_namespace("chaos"), NULL, &opts), 0);
  for (i = 0; i < THREADS; ++i) assert_int_equal(pthread_create(&tids[i], NULL, worker, &l), 0);

  test_sleep_ms(500);
  assert_true(wait_for_hit(&l, test_now_ms(), 1000) >= 0); /* warmed up */
  test_redis_fixture("kill");
  test_sleep_ms(1000);
  test_redis_fixture("revive");
  revived = test_now_ms();
  resumed_after_revive = wait_for_hit(&l, revived, 10000);
  test_sleep_ms(300);

  pid = (pid_t)test_redis_pid();
  assert_int_equal(kill(pid, SIGSTOP), 0);
  test_sleep_ms(1000);
  assert_int_equal(kill(pid, SIGCONT), 0);
  resumed_after_stall = wait_for_hit(&l, test_now_ms(), 10000);
  test_sleep_ms(300);

  __atomic_store_n(&l.stop, 1, __ATOMIC_RELAXED);
  for (i = 0; i < THREADS; ++i) pthread_join(tids[i], NULL);
  qsort(l.latencies_us, (size_t)l.samples, sizeof *l.latencies_us, cmp_i64);
  p99 = l.latencies_us[(l.samples * 99) / 100];
  worst = l.latencies_us[l.samples - 1];
  {
    httpcache_stats s = HTTPCACHE_STATS_INIT;
    httpcache_cache_stats(&s, l.cache);
    printf("chaos: %ld calls, %ld failed, %ld hits; p99 %lld us, worst %lld us; hits resumed %lld ms after "
           "revive, %lld ms after SIGCONT; backend errors %llu, breaker trips %llu, skips %llu\n",
           l.calls, l.failures, l.hits, (long long)p99, (long long)worst, (long long)resumed_after_revive,
           (long long)resumed_after_stall, (unsigned long long)s.errors, (unsigned long long)s.breaker_trips,
           (unsigned long long)s.breaker_skips);
    assert_true(s.breaker_trips >= 2); /* one per outage */
  }
  assert_true(l.calls > 1000);
  assert_int_equal(l.failures, 0);
  /* Liveness only: hits resumed (within wait_for_hit's 10 s) after the revival and the stall. */
  assert_true(resumed_after_revive >= 0);
  assert_true(resumed_after_stall >= 0);
  httpcache_cache_free(l.cache);
  free(l.latencies_us);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_chaos_kill_revive_stall, test_redis_restore),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
