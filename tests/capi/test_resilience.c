/* SPDX-License-Identifier: MIT
 * Counters, the circuit breaker (fail fast while Redis is down, close when it is back) and
 * in-process single-flight (N threads on a cold key compute it once). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpcache.h"
#include "support.h"

static const httpcache_ttl_policy one_minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

static httpcache_stats read_stats(const httpcache_cache *cache) {
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_OK);
  return s;
}

static int compute_value(httpcache_buf *out, uint32_t *flags, void *payload) {
  (void)flags;
  (void)payload;
  return httpcache_buf_set(out, "value", 5);
}

/** Hits, misses and stores are counted exactly; a stats struct of an unknown version is refused. */
static void test_resilience_counters(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  int i;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", "stats", NULL, NULL), 0);
  for (i = 0; i < 5; ++i)
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, NULL, cache, "k", 1, &one_minute, compute_value,
                                                    NULL),
                     0);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "absent", 6), HTTPCACHE_ENOTFOUND);
  s = read_stats(cache);
  assert_int_equal(s.hits, 4);
  assert_int_equal(s.misses, 2);
  assert_int_equal(s.stores, 1);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.breaker_open, 0);
  s.version = 77;
  assert_int_equal(httpcache_cache_stats(&s, cache), HTTPCACHE_EVERSION);
  assert_int_equal(httpcache_cache_stats(NULL, cache), HTTPCACHE_EINVALID);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** With Redis unreachable every call still succeeds; after 3 failures the breaker opens and the
 *  backend is skipped (no more connection attempts), which the counters show. */
static void test_resilience_breaker_opens_when_down(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  httpcache_stats s;
  int i;
  (void)state;
  opts.breaker_cooldown_ms = 60000;
  assert_int_equal(httpcache_cache_open(&cache, "redis://127.0.0.1:1", "down", NULL, &opts), 0);
  for (i = 0; i < 20; ++i) {
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute,
                                                    compute_value, NULL),
                     HTTPCACHE_OK);
    assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
    assert_string_equal(value.ptr, "value");
  }
  s = read_stats(cache);
  assert_int_equal(s.errors, 3);
  assert_int_equal(s.breaker_trips, 1);
  assert_int_equal(s.breaker_skips, 17);
  assert_int_equal(s.uncached, 20);
  assert_int_equal(s.breaker_open, 1);
  assert_int_equal(httpcache_cache_get(&value, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_non_null(strstr(httpcache_error_last()->message, "circuit breaker"));
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/** A stalled server trips the breaker through timeouts; once it resumes, the next probe after the
 *  cool-down closes the breaker and hits resume, well within a second. */
static void test_resilience_breaker_closes_when_back(void **state) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
  pid_t pid = (pid_t)test_redis_pid();
  int64_t resumed, recovered = -1;
  int i;
  (void)state;
  opts.command_timeout_ms = 100;
  opts.breaker_cooldown_ms = 200;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), test_unique_namespace("breaker"), NULL, &opts), 0);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "stored", 6, &one_minute), 0);
  assert_int_equal(kill(pid, SIGSTOP), 0);
  for (i = 0; i < 6; ++i)
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute,
                                                    compute_value, NULL),
                     HTTPCACHE_OK);
  assert_int_equal(read_stats(cache).breaker_open, 1);
  assert_int_equal(kill(pid, SIGCONT), 0);
  resumed = test_now_ms();
  while (test_now_ms() - resumed < 2000) {
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute,
                                                    compute_value, NULL),
                     HTTPCACHE_OK);
    if (outcome == HTTPCACHE_OUTCOME_HIT) {
      recovered = test_now_ms() - resumed;
      break;
    }
    test_sleep_ms(10);
  }
  assert_in_range(recovered, 0, 1000);
  assert_string_equal(value.ptr, "stored");
  assert_int_equal(read_stats(cache).breaker_open, 0);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/* ---- single-flight ---- */

typedef struct {
  httpcache_cache *cache;
  pthread_mutex_t lock;
  int computations;
  int fail_first; /* the first computation fails */
  int outcomes[5];
  int errors;
} flight;

static int slow_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  flight *f = payload;
  int n;
  (void)flags;
  pthread_mutex_lock(&f->lock);
  n = ++f->computations;
  pthread_mutex_unlock(&f->lock);
  test_sleep_ms(150);
  if (f->fail_first && n == 1) return -77;
  return httpcache_buf_set(out, "shared-value", 12);
}

static void *flight_caller(void *arg) {
  flight *f = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = 0;
  int rc = httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "cold", 4, &one_minute, slow_compute, f);
  pthread_mutex_lock(&f->lock);
  if (rc == HTTPCACHE_OK && value.size == 12 && memcmp(value.ptr, "shared-value", 12) == 0)
    ++f->outcomes[outcome];
  else
    ++f->errors;
  pthread_mutex_unlock(&f->lock);
  httpcache_buf_dispose(&value);
  return NULL;
}

static void run_flight(flight *f, int threads) {
  pthread_t tids[32];
  int i;
  for (i = 0; i < threads; ++i) assert_int_equal(pthread_create(&tids[i], NULL, flight_caller, f), 0);
  for (i = 0; i < threads; ++i) pthread_join(tids[i], NULL);
}

static void check_single_flight(const char *url) {
  flight f;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  assert_int_equal(httpcache_cache_open(&f.cache, url, test_unique_namespace("flight"), NULL, NULL), 0);
  run_flight(&f, 16);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.computations, 1);
  assert_int_equal(f.outcomes[HTTPCACHE_OUTCOME_STORED], 1);
  assert_int_equal(f.outcomes[HTTPCACHE_OUTCOME_COALESCED], 15);
  assert_int_equal(read_stats(f.cache).coalesced, 15);
  httpcache_cache_free(f.cache);
  pthread_mutex_destroy(&f.lock);
}

/** 16 threads on one cold key compute it once on memory://; the others share the value. */
static void test_resilience_single_flight_memory(void **state) {
  (void)state;
  check_single_flight("memory://");
}

/** The same on Redis. */
static void test_resilience_single_flight_redis(void **state) {
  (void)state;
  check_single_flight(test_redis_url());
}

/** When the leader fails, its error is its own: the waiters compute for themselves and succeed. */
static void test_resilience_single_flight_leader_fails(void **state) {
  flight f;
  (void)state;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  f.fail_first = 1;
  assert_int_equal(httpcache_cache_open(&f.cache, "memory://", "flightfail", NULL, NULL), 0);
  run_flight(&f, 4);
  assert_int_equal(f.errors, 1); /* the leader gets -77 */
  assert_in_range(f.computations, 2, 4);
  assert_int_equal(f.outcomes[HTTPCACHE_OUTCOME_HIT] + f.outcomes[HTTPCACHE_OUTCOME_STORED] +
                       f.outcomes[HTTPCACHE_OUTCOME_COALESCED],
                   3);
  httpcache_cache_free(f.cache);
  pthread_mutex_destroy(&f.lock);
}

/** A waiter gives up after singleflight_wait_ms and computes itself, so a stuck leader cannot
 *  block other callers for longer than that. */
static void test_resilience_single_flight_bounded_wait(void **state) {
  flight f;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  (void)state;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  opts.singleflight_wait_ms = 20; /* far shorter than the 150 ms computation */
  assert_int_equal(httpcache_cache_open(&f.cache, "memory://", "flightwait", NULL, &opts), 0);
  run_flight(&f, 4);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.computations, 4);
  httpcache_cache_free(f.cache);
  pthread_mutex_destroy(&f.lock);
}

/* ---- cross-process lock ---- */

typedef struct {
  httpcache_cache *cache;
  volatile int *computations; /* shared by all processes (MAP_SHARED) */
  int failures;
  pthread_mutex_t lock;
} process_flight;

static int counted_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  process_flight *p = payload;
  (void)flags;
  __atomic_add_fetch(p->computations, 1, __ATOMIC_SEQ_CST);
  test_sleep_ms(300);
  return httpcache_buf_set(out, "once", 4);
}

static void *process_caller(void *arg) {
  process_flight *p = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  int rc = httpcache_cache_get_or_compute(&value, NULL, NULL, p->cache, "cold", 4, &one_minute, counted_compute, p);
  if (rc != HTTPCACHE_OK || value.size != 4 || memcmp(value.ptr, "once", 4) != 0) {
    pthread_mutex_lock(&p->lock);
    ++p->failures;
    pthread_mutex_unlock(&p->lock);
  }
  httpcache_buf_dispose(&value);
  return NULL;
}

static httpcache_cache *open_locking(const char *ns) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  opts.lock_ttl_ms = 5000;
  opts.pool_size = 64;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), ns, NULL, &opts), 0);
  return cache;
}

/** 4 processes x 50 threads on one cold key with the Redis lock on: one computation in all. */
static void test_resilience_lock_across_processes(void **state) {
  enum { PROCESSES = 4, THREADS = 50 };
  volatile int *computations = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t children[PROCESSES];
  char ns[128];
  int i, status, failed = 0;
  (void)state;
  assert_true(computations != MAP_FAILED);
  *computations = 0;
  snprintf(ns, sizeof ns, "%s", test_unique_namespace("xlock"));
  for (i = 0; i < PROCESSES; ++i) {
    children[i] = fork();
    assert_true(children[i] >= 0);
    if (children[i] == 0) {
      process_flight p;
      pthread_t tids[THREADS];
      int t;
      memset(&p, 0, sizeof p);
      pthread_mutex_init(&p.lock, NULL);
      p.computations = computations;
      p.cache = open_locking(ns); /* each process has its own handle and connections */
      for (t = 0; t < THREADS; ++t) pthread_create(&tids[t], NULL, process_caller, &p);
      for (t = 0; t < THREADS; ++t) pthread_join(tids[t], NULL);
      httpcache_cache_free(p.cache);
      _exit(p.failures > 100 ? 100 : p.failures);
    }
  }
  for (i = 0; i < PROCESSES; ++i) {
    assert_int_equal(waitpid(children[i], &status, 0), children[i]);
    assert_true(WIFEXITED(status));
    failed += WEXITSTATUS(status);
  }
  assert_int_equal(failed, 0);
  assert_int_equal(*computations, 1);
  munmap((void *)computations, sizeof(int));
}

/** A lock left by a crashed holder delays callers by at most its TTL; then one computes. */
static void test_resilience_lock_of_crashed_holder_expires(void **state) {
  const char *url = test_redis_url();
  redisContext *raw = redisConnect("127.0.0.1", atoi(strrchr(url, ':') + 1));
  httpcache_cache *cache;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  volatile int computations = 0;
  process_flight p;
  char ns[128], lock_key[300];
  int64_t started, elapsed;
  (void)state;
  memset(&p, 0, sizeof p);
  p.computations = &computations;
  snprintf(ns, sizeof ns, "%s", test_unique_namespace("crashed"));
  snprintf(lock_key, sizeof lock_key, "httpcache-lock!%s:cold", ns);
  assert_int_equal(raw->err, 0);
  freeReplyObject(redisCommand(raw, "SET %s dead-holder PX 400", lock_key));
  opts.lock_ttl_ms = 5000;
  assert_int_equal(httpcache_cache_open(&cache, url, ns, NULL, &opts), 0);
  p.cache = cache;
  started = test_now_ms();
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "cold", 4, &one_minute,
                                                  counted_compute, &p),
                   0);
  elapsed = test_now_ms() - started;
  assert_int_equal(computations, 1);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_in_range(elapsed, 350, 1500); /* ~400 ms lock wait + 300 ms computation */
  /* Our lock is released by token once stored. */
  {
    redisReply *r = redisCommand(raw, "EXISTS %s", lock_key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
  }
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  redisFree(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resilience_counters),
      cmocka_unit_test(test_resilience_breaker_opens_when_down),
      cmocka_unit_test(test_resilience_breaker_closes_when_back),
      cmocka_unit_test(test_resilience_single_flight_memory),
      cmocka_unit_test(test_resilience_single_flight_redis),
      cmocka_unit_test(test_resilience_single_flight_leader_fails),
      cmocka_unit_test(test_resilience_single_flight_bounded_wait),
      cmocka_unit_test(test_resilience_lock_across_processes),
      cmocka_unit_test(test_resilience_lock_of_crashed_holder_expires),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
