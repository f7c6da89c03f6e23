/* SPDX-License-Identifier: MIT
 * Counters, the circuit breaker (fail fast while Redis is down, cool-down, one probe, close when
 * it is back), in-process single-flight (N threads on a cold key compute it once) and the
 * cross-process stampede lock (one computation; a killed holder's lock expires after lock_ttl_ms). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
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

/* Whether a call was skipped by the open breaker (its own message says so). */
static int skipped_by_breaker(void) { return strstr(httpcache_error_last()->message, "circuit breaker") != NULL; }

/** A stalled server trips the breaker through timeouts. Resumed at once, it is still skipped until
 *  the cool-down has passed (no hit before it); then a probe closes the breaker and hits resume. */
static void test_resilience_breaker_closes_when_back(void **state) {
  enum { COOL_MS = 1500 };
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = HTTPCACHE_OUTCOME_UNCACHED;
  pid_t pid = (pid_t)test_redis_pid();
  int64_t tripping_call = -1, resumed, recovered = -1, cooled;
  uint64_t skips_before;
  int i, early_calls = 0;
  (void)state;
  opts.command_timeout_ms = 100;
  opts.breaker_cooldown_ms = COOL_MS;
  assert_int_equal(httpcache_cache_open(&cache, test_redis_url(), test_unique_namespace("breaker"), NULL, &opts), 0);
  assert_int_equal(httpcache_cache_set(NULL, cache, "k", 1, "stored", 6, &one_minute), 0);
  assert_int_equal(kill(pid, SIGSTOP), 0); /* test_redis_restore resumes it if an assertion fails */
  for (i = 0; i < 6 && tripping_call < 0; ++i) {
    int64_t before = test_now_ms();
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute,
                                                    compute_value, NULL),
                     HTTPCACHE_OK);
    if (read_stats(cache).breaker_open) tripping_call = before;
  }
  assert_true(tripping_call >= 0);
  /* The breaker opened during the call that started at tripping_call: it skips the backend until
   * at least tripping_call + COOL_MS, whatever the server does. */
  cooled = tripping_call + COOL_MS;
  assert_int_equal(kill(pid, SIGCONT), 0);
  resumed = test_now_ms();
  skips_before = read_stats(cache).breaker_skips;
  while (test_now_ms() - resumed < 10000) {
    int64_t returned;
    assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "k", 1, &one_minute,
                                                    compute_value, NULL),
                     HTTPCACHE_OK);
    returned = test_now_ms();
    if (returned < cooled) {
      /* Within the cool-down: served by the computation, the backend skipped. */
      assert_int_equal(outcome, HTTPCACHE_OUTCOME_UNCACHED);
      ++early_calls;
    }
    if (outcome == HTTPCACHE_OUTCOME_HIT) {
      recovered = returned - resumed;
      break;
    }
    test_sleep_ms(10); /* pacing, not synchronisation */
  }
  printf("breaker: hits resumed %lld ms after SIGCONT (cool-down %d ms, %d calls skipped before it ended)\n",
         (long long)recovered, COOL_MS, early_calls);
  assert_true(recovered >= 0); /* liveness: within 10 s */
  assert_true(resumed + recovered >= cooled);
  /* Every call inside the cool-down skipped the backend (get and set alike). */
  assert_true(early_calls > 0);
  assert_true(read_stats(cache).breaker_skips - skips_before >= (uint64_t)early_calls);
  assert_string_equal(value.ptr, "stored");
  assert_int_equal(read_stats(cache).breaker_open, 0);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
}

/* ---- a fake server that counts the connections reaching it ----
 * Each call that reaches the backend opens a connection (the pool drops a failed one), so the
 * accepted connections count the calls the breaker let through, independently of the library's
 * own counters. A connection is closed at once (the call fails) or, while `hold` is set, kept
 * open without a reply until fake_release() (the call waits). */

typedef struct {
  int listen_fd, port;
  pthread_t thread;
  pthread_mutex_t lock;
  int accepts, hold, stop, held[32], nheld;
} fake_server;

static void *fake_server_run(void *arg) {
  fake_server *s = arg;
  for (;;) {
    struct pollfd p = {s->listen_fd, POLLIN, 0};
    int fd, stop;
    pthread_mutex_lock(&s->lock);
    stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    if (stop) break;
    if (poll(&p, 1, 20) <= 0) continue; /* 20 ms: only to notice `stop` */
    fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) continue;
    pthread_mutex_lock(&s->lock);
    ++s->accepts;
    if (s->hold && s->nheld < 32)
      s->held[s->nheld++] = fd;
    else
      close(fd);
    pthread_mutex_unlock(&s->lock);
  }
  return NULL;
}

static void fake_start(fake_server *s) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(s, 0, sizeof *s);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->listen_fd >= 0);
  assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->listen_fd, 64), 0);
  assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &len), 0);
  s->port = ntohs(a.sin_port);
  pthread_mutex_init(&s->lock, NULL);
  assert_int_equal(pthread_create(&s->thread, NULL, fake_server_run, s), 0);
}

static int fake_accepts(fake_server *s) {
  int n;
  pthread_mutex_lock(&s->lock);
  n = s->accepts;
  pthread_mutex_unlock(&s->lock);
  return n;
}

static void fake_hold(fake_server *s, int hold) {
  pthread_mutex_lock(&s->lock);
  s->hold = hold;
  pthread_mutex_unlock(&s->lock);
}

/* Closes the held connections: their calls fail now. */
static void fake_release(fake_server *s) {
  int i;
  pthread_mutex_lock(&s->lock);
  for (i = 0; i < s->nheld; ++i) close(s->held[i]);
  s->nheld = 0;
  s->hold = 0;
  pthread_mutex_unlock(&s->lock);
}

static void fake_stop(fake_server *s) {
  pthread_mutex_lock(&s->lock);
  s->stop = 1;
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->thread, NULL);
  fake_release(s);
  close(s->listen_fd);
  pthread_mutex_destroy(&s->lock);
}

/* The fake server and the handle on it live in the CMocka state, so a failed assertion cannot
 * leave the server's thread running on a dead stack frame: the teardown stops it. */
typedef struct {
  fake_server s;
  httpcache_cache *cache;
} fake_fixture;

static int fake_setup(void **state) {
  fake_fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  fake_start(&f->s);
  *state = f;
  return 0;
}

static int fake_teardown(void **state) {
  fake_fixture *f = *state;
  httpcache_cache_free(f->cache);
  fake_stop(&f->s);
  free(f);
  return 0;
}

static httpcache_cache *open_fake(fake_server *s, uint32_t cooldown_ms) {
  httpcache_cache *cache = NULL;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  char url[64];
  opts.breaker_cooldown_ms = cooldown_ms;
  opts.connect_timeout_ms = 10000; /* failures come from the fake server, never from a timeout */
  opts.command_timeout_ms = 10000;
  opts.near_cache = HTTPCACHE_NEAR_CACHE_OFF; /* its report link would be one more accept */
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", s->port);
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("fake"), NULL, &opts), 0);
  return cache;
}

/* Trips the breaker (3 failed calls, each reaching the server). Returns when the tripping call
 * started: the breaker skips until at least that + the cool-down. */
static int64_t trip(httpcache_cache *cache, fake_server *s) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t started = 0;
  int i;
  for (i = 0; i < 3; ++i) {
    started = test_now_ms();
    assert_int_equal(httpcache_cache_get(&v, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
    assert_false(skipped_by_breaker());
  }
  assert_int_equal(fake_accepts(s), 3);
  assert_int_equal(read_stats(cache).breaker_open, 1);
  return started;
}

/* Calls until one returns at or after `until`: each call that returned before it must have been
 * skipped (no connection reached the server). *skips counts those. Returns the start time of the
 * last call if it reached the server (it probed), else -1. */
static int64_t expect_skips_until(httpcache_cache *cache, fake_server *s, int64_t until, int *skips) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  *skips = 0;
  for (;;) {
    int before = fake_accepts(s), reached;
    int64_t started = test_now_ms();
    assert_int_equal(httpcache_cache_get(&v, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
    reached = fake_accepts(s) != before;
    if (test_now_ms() >= until) return reached ? started : -1;
    if (reached)
      fail_msg("a call reached the backend %lld ms before the cool-down ended", (long long)(until - test_now_ms()));
    assert_true(skipped_by_breaker());
    ++*skips;
    test_sleep_ms(5); /* pacing, not synchronisation */
  }
}

/* One call after the cool-down (which ends at `cooled` at the latest): it must reach the server.
 * Returns when it started. */
static int64_t expect_probe_after(httpcache_cache *cache, fake_server *s, int64_t cooled) {
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int before = fake_accepts(s);
  int64_t started;
  while (test_now_ms() <= cooled + 1) test_sleep_ms(5); /* waiting out the cool-down under test */
  started = test_now_ms();
  assert_int_equal(httpcache_cache_get(&v, NULL, cache, "k", 1), HTTPCACHE_EBACKEND);
  assert_false(skipped_by_breaker());
  assert_int_equal(fake_accepts(s), before + 1);
  return started;
}

/** The cool-down: after the breaker opens no call reaches the backend before breaker_cooldown_ms,
 *  and one does after it; that probe fails, which re-opens the breaker for another cool-down and
 *  counts a trip; twice. */
static void test_resilience_breaker_cool_down(void **state) {
  enum { COOL_MS = 700 };
  fake_fixture *f = *state;
  fake_server *s = &f->s;
  httpcache_cache *cache;
  httpcache_stats st;
  int64_t started, opened;
  int skips, round;
  cache = f->cache = open_fake(s, COOL_MS);
  /* The call that opened the breaker started at `started` and returned before `opened`: it skips
   * from then until at least started + COOL_MS, at most opened + COOL_MS. */
  started = trip(cache, s);
  opened = test_now_ms();
  assert_int_equal(read_stats(cache).breaker_trips, 1);
  for (round = 2; round <= 3; ++round) {
    int64_t probe = expect_skips_until(cache, s, started + COOL_MS, &skips);
    printf("cool-down %d: %d calls skipped in the %d ms, then one probe\n", round - 1, skips, COOL_MS);
    assert_true(skips > 0);
    started = probe >= 0 ? probe : expect_probe_after(cache, s, opened + COOL_MS);
    opened = test_now_ms();
    st = read_stats(cache);
    assert_int_equal(st.breaker_open, 1);                /* the failed probe re-opened it... */
    assert_int_equal(st.breaker_trips, (uint64_t)round); /* ...and that is a trip */
  }
  st = read_stats(cache);
  assert_int_equal(st.errors, (uint64_t)fake_accepts(s)); /* every call that reached it failed */
  assert_int_equal(fake_accepts(s), 5);                   /* 3 to trip, 2 probes */
}

typedef struct {
  httpcache_cache *cache;
  pthread_barrier_t *go;
  pthread_mutex_t *lock;
  pthread_cond_t *returned;
  int *done;
  int rc, skipped;
} prober;

static void *probe_caller(void *arg) {
  prober *p = arg;
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  pthread_barrier_wait(p->go);
  p->rc = httpcache_cache_get(&v, NULL, p->cache, "k", 1);
  p->skipped = skipped_by_breaker(); /* the last error is per thread */
  httpcache_buf_dispose(&v);
  pthread_mutex_lock(p->lock);
  ++*p->done;
  pthread_cond_broadcast(p->returned);
  pthread_mutex_unlock(p->lock);
  return NULL;
}

/** Half-open: when the cool-down is over and many threads call at once, exactly one probes the
 *  backend (it is held there, unanswered, until all the others have returned: they skipped); its
 *  failure re-opens the breaker and counts a trip. */
static void test_resilience_breaker_one_probe(void **state) {
  enum { THREADS = 8, COOL_MS = 300 };
  fake_fixture *f = *state;
  fake_server *s = &f->s;
  httpcache_cache *cache;
  pthread_t tids[THREADS];
  prober probers[THREADS];
  pthread_barrier_t go;
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t returned = PTHREAD_COND_INITIALIZER;
  httpcache_stats before, after;
  int i, done = 0, probes = 0, skipped = 0, reached;
  int64_t opened;
  cache = f->cache = open_fake(s, COOL_MS);
  (void)trip(cache, s);
  opened = test_now_ms();
  before = read_stats(cache);
  fake_hold(s, 1);
  while (test_now_ms() <= opened + COOL_MS + 1) test_sleep_ms(5); /* waiting out the cool-down under test */
  assert_int_equal(pthread_barrier_init(&go, NULL, THREADS + 1), 0);
  for (i = 0; i < THREADS; ++i) {
    prober p = {cache, &go, &lock, &returned, &done, 0, 0};
    probers[i] = p;
    assert_int_equal(pthread_create(&tids[i], NULL, probe_caller, &probers[i]), 0);
  }
  pthread_barrier_wait(&go);
  /* All but the probe return; the probe waits on the held connection. Liveness bound: 10 s. */
  pthread_mutex_lock(&lock);
  {
    int64_t end = test_now_ms() + 10000;
    while (done < THREADS - 1 && test_now_ms() < end) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&returned, &lock, &ts);
    }
  }
  pthread_mutex_unlock(&lock);
  fake_release(s); /* the probe fails now */
  for (i = 0; i < THREADS; ++i) pthread_join(tids[i], NULL);
  /* Every call that reached the server waited until its connection was accepted (and closed). */
  reached = fake_accepts(s) - 3;
  pthread_barrier_destroy(&go);
  for (i = 0; i < THREADS; ++i) {
    assert_int_equal(probers[i].rc, HTTPCACHE_EBACKEND);
    if (probers[i].skipped)
      ++skipped;
    else
      ++probes;
  }
  after = read_stats(cache);
  printf("one probe: %d connection(s) reached the server, %d caller(s) probed, %d skipped\n", reached, probes,
         skipped);
  assert_int_equal(reached, 1);
  assert_int_equal(probes, 1);
  assert_int_equal(skipped, THREADS - 1);
  assert_int_equal(after.breaker_skips - before.breaker_skips, THREADS - 1);
  assert_int_equal(after.errors - before.errors, 1);
  assert_int_equal(after.breaker_trips, 2); /* the failed probe re-opened it */
  assert_int_equal(after.breaker_open, 1);
}

/* ---- single-flight ---- */

typedef struct {
  httpcache_cache *cache;
  pthread_mutex_t lock;
  pthread_cond_t computed;
  int threads;
  int computations;
  int fail_first;  /* the first computation fails */
  int wait_for;    /* what the leader's computation waits for before it returns: */
  int outcomes[5];
  int errors;
  int leader_failures; /* calls that returned the failing leader's -77 */
} flight;

enum {
  WAIT_FOLLOWERS = 1, /* every other thread has joined its flight (stats.coalesced counts joins) */
  WAIT_COMPUTED = 2   /* every other thread has computed (they gave up waiting) */
};

/* Liveness bound of the leader's wait: a broken single-flight shows in the counts, not a hang. */
static int64_t wait_deadline(void) { return test_now_ms() + 10000; }

static int slow_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  flight *f = payload;
  int n;
  (void)flags;
  pthread_mutex_lock(&f->lock);
  n = ++f->computations;
  pthread_cond_broadcast(&f->computed);
  pthread_mutex_unlock(&f->lock);
  if (n == 1 && f->wait_for == WAIT_FOLLOWERS) {
    /* The leader holds its flight until all the others are in it: no thread can arrive late and
     * find the stored value instead. The library bumps `coalesced` when a caller joins a flight
     * as a follower, before it waits. */
    int64_t end = wait_deadline();
    while ((int)read_stats(f->cache).coalesced < f->threads - 1 && test_now_ms() < end) test_sleep_ms(1);
  } else if (n == 1 && f->wait_for == WAIT_COMPUTED) {
    int64_t end = wait_deadline();
    pthread_mutex_lock(&f->lock);
    while (f->computations < f->threads && test_now_ms() < end) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&f->computed, &f->lock, &ts);
    }
    pthread_mutex_unlock(&f->lock);
  }
  if (f->fail_first && n == 1) return -77;
  return httpcache_buf_set(out, "shared-value", 12);
}

static void flight_init(flight *f, int threads, int wait_for) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->computed, NULL);
  f->threads = threads;
  f->wait_for = wait_for;
}

static void flight_destroy(flight *f) {
  httpcache_cache_free(f->cache);
  pthread_cond_destroy(&f->computed);
  pthread_mutex_destroy(&f->lock);
}

static void *flight_caller(void *arg) {
  flight *f = arg;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome = 0;
  int rc = httpcache_cache_get_or_compute(&value, NULL, &outcome, f->cache, "cold", 4, &one_minute, slow_compute, f);
  pthread_mutex_lock(&f->lock);
  if (rc == HTTPCACHE_OK && value.size == 12 && memcmp(value.ptr, "shared-value", 12) == 0)
    ++f->outcomes[outcome];
  else if (rc == -77)
    ++f->leader_failures;
  else
    ++f->errors;
  pthread_mutex_unlock(&f->lock);
  httpcache_buf_dispose(&value);
  return NULL;
}

static void run_flight(flight *f) {
  pthread_t tids[32];
  int i;
  for (i = 0; i < f->threads; ++i) assert_int_equal(pthread_create(&tids[i], NULL, flight_caller, f), 0);
  for (i = 0; i < f->threads; ++i) pthread_join(tids[i], NULL);
}

static void check_single_flight(const char *url) {
  flight f;
  flight_init(&f, 16, WAIT_FOLLOWERS);
  assert_int_equal(httpcache_cache_open(&f.cache, url, test_unique_namespace("flight"), NULL, NULL), 0);
  run_flight(&f);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.computations, 1);
  assert_int_equal(f.outcomes[HTTPCACHE_OUTCOME_STORED], 1);
  assert_int_equal(f.outcomes[HTTPCACHE_OUTCOME_COALESCED], 15);
  assert_int_equal(read_stats(f.cache).coalesced, 15);
  flight_destroy(&f);
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

/** When the leader fails, the waiters of its flight get the same failure (Go's singleflight):
 *  one computation, not one per waiter (50 callers of a failing computation ran it 50 times). */
static void test_resilience_single_flight_leader_fails(void **state) {
  flight f;
  (void)state;
  flight_init(&f, 4, WAIT_FOLLOWERS); /* the leader fails once the 3 others wait for it */
  f.fail_first = 1;
  assert_int_equal(httpcache_cache_open(&f.cache, "memory://", "flightfail", NULL, NULL), 0);
  run_flight(&f);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.leader_failures, 4); /* the leader and its 3 waiters get -77 */
  assert_int_equal(f.computations, 1);
  flight_destroy(&f);
}

/** A waiter gives up after singleflight_wait_ms and computes itself, so a stuck leader cannot
 *  block other callers for longer than that. */
static void test_resilience_single_flight_bounded_wait(void **state) {
  flight f;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  (void)state;
  flight_init(&f, 4, WAIT_COMPUTED); /* the leader returns only once the 3 others have computed */
  opts.singleflight_wait_ms = 20;
  assert_int_equal(httpcache_cache_open(&f.cache, "memory://", "flightwait", NULL, &opts), 0);
  run_flight(&f);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.computations, 4);
  flight_destroy(&f);
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

/* The crashed holder's computation: tells the parent it holds the lock, then never returns. */
static int blocking_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  int fd = *(int *)payload;
  (void)out;
  (void)flags;
  (void)!write(fd, "L", 1);
  for (;;) pause();
  return 0;
}

static int timed_compute(httpcache_buf *out, uint32_t *flags, void *payload) {
  int64_t *at = payload;
  (void)flags;
  *at = test_now_ms();
  return httpcache_buf_set(out, "after-crash", 11);
}

/** A real holder of the cross-process lock (another process, inside its computation) is killed:
 *  the lock it leaves carries the expiry the library set from lock_ttl_ms, and another process
 *  computes once it has expired, not before. */
static void test_resilience_lock_of_crashed_holder_expires(void **state) {
  enum { LOCK_TTL_MS = 1500 };
  const char *url = test_redis_url();
  redisContext *raw = redisConnect("127.0.0.1", atoi(strrchr(url, ':') + 1));
  httpcache_cache *cache;
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  redisReply *r;
  char ns[128], lock_key[300], byte = 0;
  int pipefd[2], status, killed;
  ssize_t got;
  long long pttl;
  int64_t forked, asked, measured, started, computed_at = -1, elapsed;
  pid_t holder;
  (void)state;
  assert_non_null(raw);
  assert_int_equal(raw->err, 0);
  snprintf(ns, sizeof ns, "%s", test_unique_namespace("crashed"));
  snprintf(lock_key, sizeof lock_key, "httpcache-lock!%s:cold", ns);
  assert_int_equal(pipe(pipefd), 0);
  forked = test_now_ms();
  holder = fork();
  assert_true(holder >= 0);
  if (holder == 0) {
    httpcache_cache *mine = NULL;
    httpcache_options o = HTTPCACHE_OPTIONS_INIT;
    close(pipefd[0]);
    o.lock_ttl_ms = LOCK_TTL_MS;
    if (httpcache_cache_open(&mine, url, ns, NULL, &o) != HTTPCACHE_OK) _exit(2);
    (void)httpcache_cache_get_or_compute(&value, NULL, NULL, mine, "cold", 4, &one_minute, blocking_compute,
                                         &pipefd[1]);
    _exit(3); /* not reached: the computation blocks until the parent kills this process */
  }
  close(pipefd[1]);
  /* Once the holder is inside its computation it holds the lock: read its expiry, then kill it
   * (before any assertion, so a failure never leaves it running). */
  got = read(pipefd[0], &byte, 1);
  close(pipefd[0]);
  asked = test_now_ms();
  r = redisCommand(raw, "PTTL %s", lock_key);
  measured = test_now_ms();
  pttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
  freeReplyObject(r);
  killed = kill(holder, SIGKILL);
  assert_int_equal(waitpid(holder, &status, 0), holder);
  assert_int_equal(got, 1);
  assert_int_equal(killed, 0);
  assert_true(WIFSIGNALED(status));
  /* The expiry is the library's, from lock_ttl_ms: set after the fork, at most LOCK_TTL_MS. */
  printf("crashed holder: lock PTTL %lld ms, %lld ms after the fork (lock_ttl_ms %d)\n", pttl,
         (long long)(measured - forked), LOCK_TTL_MS);
  assert_true(pttl <= LOCK_TTL_MS);
  assert_true(pttl >= LOCK_TTL_MS - (measured - forked) - 1);

  /* This process (another one) waits for the dead holder's lock, then computes once. */
  opts.lock_ttl_ms = LOCK_TTL_MS;
  opts.singleflight_wait_ms = 30000; /* it must not give up waiting for the lock before it expires */
  assert_int_equal(httpcache_cache_open(&cache, url, ns, NULL, &opts), 0);
  started = test_now_ms();
  assert_int_equal(httpcache_cache_get_or_compute(&value, NULL, &outcome, cache, "cold", 4, &one_minute,
                                                  timed_compute, &computed_at),
                   0);
  elapsed = test_now_ms() - started;
  printf("crashed holder: computed %lld ms after asking PTTL (the lock had %lld ms left); the call took %lld ms\n",
         (long long)(computed_at - asked), pttl, (long long)elapsed);
  assert_int_equal(outcome, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(value.ptr, "after-crash");
  /* Not before the lock expired: it had pttl ms left when we asked (1 ms for PTTL's rounding;
   * Redis and this process read one machine's clock)... */
  assert_true(computed_at >= asked + pttl - 1);
  /* ...and soon after it did (liveness bound only). */
  assert_true(elapsed < 10000);
  /* Our own lock is released by token once stored. */
  r = redisCommand(raw, "EXISTS %s", lock_key);
  assert_int_equal(r->integer, 0);
  freeReplyObject(r);
  httpcache_buf_dispose(&value);
  httpcache_cache_free(cache);
  redisFree(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resilience_counters),
      cmocka_unit_test(test_resilience_breaker_opens_when_down),
      cmocka_unit_test_teardown(test_resilience_breaker_closes_when_back, test_redis_restore),
      cmocka_unit_test_setup_teardown(test_resilience_breaker_cool_down, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_resilience_breaker_one_probe, fake_setup, fake_teardown),
      cmocka_unit_test(test_resilience_single_flight_memory),
      cmocka_unit_test(test_resilience_single_flight_redis),
      cmocka_unit_test(test_resilience_single_flight_leader_fails),
      cmocka_unit_test(test_resilience_single_flight_bounded_wait),
      cmocka_unit_test(test_resilience_lock_across_processes),
      cmocka_unit_test(test_resilience_lock_of_crashed_holder_expires),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
