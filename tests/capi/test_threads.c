/* SPDX-License-Identifier: MIT
 * One handle used from 8 threads at once (memory:// and Redis): values never torn or foreign, and the
 * last error stays thread-local. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

#define NTHREADS 8
#define NSHARED 16 /* keys every thread reads and writes */
#define NOWN 8     /* keys each thread alone writes */
#define ROUNDS 300 /* operations per thread */

/* ------------------------------------------------------------------------
 * Self-checking values: "<key>|<writer>|<gen>|" followed by a body whose length and bytes (NULs
 * included) are derived from that header, so a torn, truncated or foreign value never validates.
 * ------------------------------------------------------------------------ */

static uint32_t hash_str(const char *s, uint32_t h) {
  while (*s) h = test_mix32(h ^ (unsigned char)*s++);
  return h;
}

/* Fills out (capacity >= 4096) with the value `key` gets from `writer` at generation `gen`; returns its length. */
static size_t make_value(char *out, const char *key, int writer, unsigned gen) {
  int n = snprintf(out, 256, "%s|%d|%u|", key, writer, gen);
  uint32_t seed = hash_str(out, 2166136261U);
  size_t len = (size_t)n + 1 + test_mix32(seed) % 3000, i;
  for (i = (size_t)n; i < len; ++i) out[i] = (char)(test_mix32(seed + (uint32_t)i) & 0xff);
  return len;
}

/* 1 when value is exactly a value of `key` made by make_value() (any writer, any generation);
 * *writer and *gen receive its origin. */
static int value_is_valid(const char *key, const char *value, size_t size, int *writer, unsigned *gen) {
  char expected[4096], header[256];
  size_t klen = strlen(key), len;
  int w;
  unsigned g;
  if (size < klen + 1 || size > sizeof header + 3000 || memcmp(value, key, klen) != 0 || value[klen] != '|') return 0;
  len = size < sizeof header - 1 ? size : sizeof header - 1;
  memcpy(header, value, len);
  header[len] = '\0';
  if (sscanf(header + klen + 1, "%d|%u|", &w, &g) != 2) return 0;
  if (make_value(expected, key, w, g) != size || memcmp(expected, value, size) != 0) return 0;
  if (writer) *writer = w;
  if (gen) *gen = g;
  return 1;
}

/* ------------------------------------------------------------------------
 * Worker plumbing. Threads never call cmocka asserts (they longjmp on the main thread's stack):
 * they count problems and keep the first description, and the main thread asserts after join.
 * ------------------------------------------------------------------------ */

typedef struct worker {
  int id;
  httpcache_cache *cache;
  pthread_barrier_t *start;
  uint32_t rng;
  unsigned gen;
  int problems;
  char first_problem[512];
  /* statistics, to check the run exercised what it claims */
  int hits, stores, misses, coalesced, uncached;
  int64_t worst_ttl_ms; /* largest remaining TTL seen */
  /* for get_or_compute callbacks */
  const char *compute_key;
  char compute_buf[4096];
  size_t compute_len;
  int compute_calls;
} worker;

static void problem(worker *w, const char *what, const char *key, int rc) {
  if (w->problems++ == 0)
    snprintf(w->first_problem, sizeof w->first_problem, "thread %d: %s (key %s, rc %d: %s)", w->id, what,
             key ? key : "-", rc, httpcache_error_last()->message);
}

/* After a successful call, this thread's last error must read OK, whatever other threads do. */
static void expect_ok_error(worker *w, const char *key) {
  const httpcache_error *e = httpcache_error_last();
  if (e->code != HTTPCACHE_OK || strcmp(e->message, "no error") != 0) problem(w, "last error not OK after success", key, e->code);
}

static uint32_t next_rand(worker *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 17;
  w->rng ^= w->rng << 5;
  return w->rng;
}

static int compute_cb(httpcache_buf *value, uint32_t *flags, void *payload) {
  worker *w = (worker *)payload;
  (void)flags;
  ++w->compute_calls;
  w->compute_len = make_value(w->compute_buf, w->compute_key, w->id, ++w->gen);
  return httpcache_buf_set(value, w->compute_buf, w->compute_len);
}

static void run_join(worker *workers, void *(*fn)(void *)) {
  pthread_t threads[NTHREADS];
  int i;
  for (i = 0; i < NTHREADS; ++i) assert_int_equal(pthread_create(&threads[i], NULL, fn, &workers[i]), 0);
  for (i = 0; i < NTHREADS; ++i) assert_int_equal(pthread_join(threads[i], NULL), 0);
}

static void init_workers(worker *workers, httpcache_cache *cache, pthread_barrier_t *start) {
  int i;
  memset(workers, 0, sizeof(worker) * NTHREADS);
  for (i = 0; i < NTHREADS; ++i) {
    workers[i].id = i;
    workers[i].cache = cache;
    workers[i].start = start;
    workers[i].rng = 0x9e3779b9U * (uint32_t)(i + 1);
  }
  assert_int_equal(pthread_barrier_init(start, NULL, NTHREADS), 0);
}

static void assert_no_problems(worker *workers) {
  int i, total = 0;
  for (i = 0; i < NTHREADS; ++i)
    if (workers[i].problems) {
      print_error("%d problem(s), first: %s\n", workers[i].problems, workers[i].first_problem);
      total += workers[i].problems;
    }
  assert_int_equal(total, 0);
}

/* ------------------------------------------------------------------------
 * Mixed calls on shared and per-thread keys
 * ------------------------------------------------------------------------ */

static const httpcache_ttl_policy five_minutes = {HTTPCACHE_TTL_SECONDS, 300, NULL, NULL};

/* What the thread last did to one of its own keys: absent (0) or holding (writer id, gen). */
typedef struct own_state {
  int present;
  unsigned gen;
} own_state;

static void *mixed_worker(void *arg) {
  worker *w = (worker *)arg;
  own_state own[NOWN];
  char key[64], buf[4096];
  int r;
  memset(own, 0, sizeof own);
  pthread_barrier_wait(w->start);
  for (r = 0; r < ROUNDS; ++r) {
    uint32_t dice = next_rand(w);
    int shared = (dice & 1) != 0;
    unsigned k = (dice >> 1) % (shared ? NSHARED : NOWN);
    unsigned op = (dice >> 8) % 4;
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    int64_t ttl = -1;
    int rc, writer;
    unsigned gen;
    if (shared)
      snprintf(key, sizeof key, "shared:%u", k);
    else
      snprintf(key, sizeof key, "own:%d:%u", w->id, k);

    if (op == 0) { /* get_or_compute */
      httpcache_outcome outcome = (httpcache_outcome)0;
      w->compute_key = key;
      w->compute_calls = 0;
      rc = httpcache_cache_get_or_compute(&value, &ttl, &outcome, w->cache, key, strlen(key), &five_minutes,
                                          compute_cb, w);
      if (rc != HTTPCACHE_OK) {
        problem(w, "get_or_compute failed", key, rc);
      } else {
        expect_ok_error(w, key);
        if (!value_is_valid(key, value.ptr, value.size, &writer, &gen))
          problem(w, "get_or_compute returned a torn or foreign value", key, rc);
        if (outcome == HTTPCACHE_OUTCOME_HIT) {
          ++w->hits;
          if (w->compute_calls != 0) problem(w, "hit but the callback was called", key, rc);
          if (ttl <= 0 || ttl > 300000) problem(w, "hit with a remaining TTL outside (0, 300 s]", key, rc);
        } else if (outcome == HTTPCACHE_OUTCOME_STORED) {
          ++w->stores;
          if (w->compute_calls != 1) problem(w, "stored but the callback was not called once", key, rc);
          if (value.size != w->compute_len || memcmp(value.ptr, w->compute_buf, value.size) != 0)
            problem(w, "stored value differs from the computed one", key, rc);
          if (ttl != 300000) problem(w, "stored with a TTL other than 300 s", key, rc);
        } else if (outcome == HTTPCACHE_OUTCOME_COALESCED) {
          /* single-flight: another thread's computation of this key, handed over */
          ++w->coalesced;
          if (!shared) problem(w, "own key coalesced although no other thread uses it", key, rc);
          if (w->compute_calls != 0) problem(w, "coalesced but the callback was called", key, rc);
          /* 0: the leader's store was refused (fencing: a set or invalidate of this key while it
           * computed); its waiters, who arrived before that, still share its value. */
          if (ttl < 0 || ttl > 300000) problem(w, "coalesced with a TTL outside [0, 300 s]", key, rc);
        } else if (outcome == HTTPCACHE_OUTCOME_UNCACHED) {
          /* Fencing: another thread's set or invalidate of this key while we computed voided our
           * lease, so our value (computed from what we read before) is returned, not stored. Only
           * keys other threads write can see that. */
          ++w->uncached;
          if (!shared) problem(w, "own key not stored although no other thread touches it", key, rc);
          if (w->compute_calls != 1) problem(w, "uncached but the callback was not called once", key, rc);
          if (value.size != w->compute_len || memcmp(value.ptr, w->compute_buf, value.size) != 0)
            problem(w, "uncached value differs from the computed one", key, rc);
        } else {
          problem(w, "unexpected outcome", key, (int)outcome);
        }
        if (!shared) {
          if (outcome == HTTPCACHE_OUTCOME_HIT && (!own[k].present || writer != w->id || gen != own[k].gen))
            problem(w, "own key hit does not hold what this thread stored last", key, rc);
          if (outcome == HTTPCACHE_OUTCOME_STORED && own[k].present)
            problem(w, "own key recomputed although it was stored", key, rc);
          own[k].present = 1;
          own[k].gen = gen;
        }
      }
    } else if (op == 1) { /* get */
      rc = httpcache_cache_get(&value, &ttl, w->cache, key, strlen(key));
      if (rc == HTTPCACHE_OK) {
        ++w->hits;
        expect_ok_error(w, key);
        if (!value_is_valid(key, value.ptr, value.size, &writer, &gen))
          problem(w, "get returned a torn or foreign value", key, rc);
        else if (!shared && (!own[k].present || writer != w->id || gen != own[k].gen))
          problem(w, "own key get does not hold what this thread stored last", key, rc);
        if (ttl <= 0 || ttl > 300000) problem(w, "get with a remaining TTL outside (0, 300 s]", key, rc);
      } else if (rc == HTTPCACHE_ENOTFOUND) {
        ++w->misses;
        if (httpcache_error_last()->code != HTTPCACHE_ENOTFOUND) problem(w, "miss without ENOTFOUND last error", key, rc);
        if (value.ptr != NULL) problem(w, "miss filled the value", key, rc);
        if (!shared && own[k].present) problem(w, "own key missing although stored", key, rc);
      } else {
        problem(w, "get failed", key, rc);
      }
    } else if (op == 2) { /* set */
      int64_t applied = 0;
      size_t len = make_value(buf, key, w->id, ++w->gen);
      rc = httpcache_cache_set(&applied, w->cache, key, strlen(key), buf, len, &five_minutes);
      if (rc != HTTPCACHE_OK) {
        problem(w, "set failed", key, rc);
      } else {
        expect_ok_error(w, key);
        if (applied != 300) problem(w, "set applied a TTL other than 300 s", key, rc);
        if (!shared) {
          own[k].present = 1;
          own[k].gen = w->gen;
          /* read it straight back: nobody else writes this key */
          rc = httpcache_cache_get(&value, NULL, w->cache, key, strlen(key));
          if (rc != HTTPCACHE_OK || value.size != len || memcmp(value.ptr, buf, len) != 0)
            problem(w, "own key does not read back what was just set", key, rc);
          else
            expect_ok_error(w, key);
        }
      }
    } else { /* invalidate, sometimes together with another key */
      const void *keys[2];
      size_t lens[2], deleted = 99;
      char other[64];
      size_t nkeys = 1;
      keys[0] = key;
      lens[0] = strlen(key);
      if (dice & 0x10000) {
        snprintf(other, sizeof other, "shared:%u", (dice >> 17) % NSHARED);
        keys[1] = other;
        lens[1] = strlen(other);
        nkeys = 2;
      }
      rc = httpcache_cache_invalidate(&deleted, w->cache, keys, lens, nkeys);
      if (rc != HTTPCACHE_OK) {
        problem(w, "invalidate failed", key, rc);
      } else {
        expect_ok_error(w, key);
        if (deleted > nkeys) problem(w, "invalidate deleted more keys than given", key, (int)deleted);
        if (!shared && nkeys == 1 && deleted != (size_t)own[k].present)
          problem(w, "invalidate of an own key reported the wrong count", key, (int)deleted);
        if (!shared) {
          own[k].present = 0;
          rc = httpcache_cache_get(&value, NULL, w->cache, key, strlen(key));
          if (rc != HTTPCACHE_ENOTFOUND) problem(w, "own key still there after invalidate", key, rc);
        }
      }
    }
    httpcache_buf_dispose(&value);
  }
  return NULL;
}

static void run_mixed(const char *url) {
  httpcache_cache *cache = NULL;
  pthread_barrier_t start;
  worker workers[NTHREADS];
  int i, hits = 0, stores = 0, misses = 0, coalesced = 0;
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("threads"), "UTC", NULL), HTTPCACHE_OK);
  init_workers(workers, cache, &start);
  run_join(workers, mixed_worker);
  pthread_barrier_destroy(&start);
  assert_no_problems(workers);
  for (i = 0; i < NTHREADS; ++i) {
    hits += workers[i].hits;
    stores += workers[i].stores;
    misses += workers[i].misses;
    coalesced += workers[i].coalesced;
  }
  print_message("%s: %d threads x %d calls: %d hits, %d stores, %d coalesced, %d misses\n", url, NTHREADS, ROUNDS,
                hits, stores, coalesced, misses);
  /* The run really mixed hits, stores and misses. */
  assert_true(hits > 0);
  assert_true(stores > 0);
  assert_true(misses > 0);
  httpcache_cache_free(cache);
}

/** memory://: 8 threads mixing get_or_compute/get/set/invalidate on shared and own keys always see
 * whole values of the right key, and their own keys hold exactly what they stored last. */
static void test_threads_memory_mixed_calls(void **state) {
  (void)state;
  run_mixed("memory://");
}

/** Redis: the same mix through the connection pool of one handle. */
static void test_threads_redis_mixed_calls(void **state) {
  (void)state;
  run_mixed(test_redis_url());
}

/* ------------------------------------------------------------------------
 * All threads race on one fresh key
 * ------------------------------------------------------------------------ */

#define RACE_ROUNDS 40

typedef struct race {
  pthread_barrier_t round;
  httpcache_cache *cache;
  char key[64];
} race;

static race the_race;

static void *race_worker(void *arg) {
  worker *w = (worker *)arg;
  int r, writer;
  unsigned gen;
  char seen[4096];
  size_t seen_len = 0;
  for (r = 0; r < RACE_ROUNDS; ++r) {
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    httpcache_outcome outcome = (httpcache_outcome)0;
    int rc;
    pthread_barrier_wait(&the_race.round); /* thread 0 has invalidated the key and renamed it */
    w->compute_key = the_race.key;
    w->compute_calls = 0;
    rc = httpcache_cache_get_or_compute(&value, NULL, &outcome, the_race.cache, the_race.key, strlen(the_race.key),
                                        &five_minutes, compute_cb, w);
    if (rc != HTTPCACHE_OK || !value_is_valid(the_race.key, value.ptr, value.size, &writer, &gen))
      problem(w, "racing get_or_compute returned a bad value", the_race.key, rc);
    else if (outcome == HTTPCACHE_OUTCOME_STORED)
      ++w->stores;
    else if (outcome == HTTPCACHE_OUTCOME_HIT)
      ++w->hits;
    else if (outcome == HTTPCACHE_OUTCOME_COALESCED)
      ++w->coalesced;
    else
      problem(w, "racing get_or_compute gave an unexpected outcome", the_race.key, (int)outcome);
    if (outcome != HTTPCACHE_OUTCOME_STORED && w->compute_calls != 0)
      problem(w, "racing get_or_compute called the callback without storing", the_race.key, (int)outcome);
    httpcache_buf_dispose(&value);
    pthread_barrier_wait(&the_race.round); /* every store of this round is done */
    rc = httpcache_cache_get(&value, NULL, the_race.cache, the_race.key, strlen(the_race.key));
    if (rc != HTTPCACHE_OK || !value_is_valid(the_race.key, value.ptr, value.size, &writer, &gen)) {
      problem(w, "after the race the key does not hold a whole value", the_race.key, rc);
    } else {
      memcpy(seen, value.ptr, value.size);
      seen_len = value.size;
    }
    httpcache_buf_dispose(&value);
    pthread_barrier_wait(&the_race.round); /* everyone read */
    /* Everyone read the same (last stored) value: compare with thread 0's through the shared slot. */
    if (w->id == 0) {
      memcpy(w->compute_buf, seen, seen_len);
      w->compute_len = seen_len;
    }
    pthread_barrier_wait(&the_race.round);
    if (w->id != 0) {
      worker *first = w - w->id;
      if (first->compute_len != seen_len || memcmp(first->compute_buf, seen, seen_len) != 0)
        problem(w, "threads read different values of one key after the race", the_race.key, 0);
    }
    pthread_barrier_wait(&the_race.round);
    if (w->id == 0) {
      size_t len = strlen(the_race.key);
      const void *keys[1];
      keys[0] = the_race.key;
      if (httpcache_cache_invalidate(NULL, the_race.cache, keys, &len, 1) != HTTPCACHE_OK)
        problem(w, "invalidate failed", the_race.key, -1);
      snprintf(the_race.key, sizeof the_race.key, "race:%d", r + 1);
    }
  }
  return NULL;
}

static void run_race(const char *url) {
  pthread_barrier_t unused;
  worker workers[NTHREADS];
  int i, stores = 0, coalesced = 0;
  assert_int_equal(httpcache_cache_open(&the_race.cache, url, test_unique_namespace("race"), NULL, NULL), HTTPCACHE_OK);
  snprintf(the_race.key, sizeof the_race.key, "race:0");
  init_workers(workers, the_race.cache, &unused);
  assert_int_equal(pthread_barrier_init(&the_race.round, NULL, NTHREADS), 0);
  run_join(workers, race_worker);
  pthread_barrier_destroy(&the_race.round);
  pthread_barrier_destroy(&unused);
  assert_no_problems(workers);
  for (i = 0; i < NTHREADS; ++i) {
    stores += workers[i].stores;
    coalesced += workers[i].coalesced;
  }
  print_message("%s: %d rounds of %d racing callers: %d stores, %d coalesced\n", url, RACE_ROUNDS, NTHREADS, stores,
                coalesced);
  assert_true(stores >= RACE_ROUNDS); /* at least one store per round: every key started absent */
  httpcache_cache_free(the_race.cache);
  the_race.cache = NULL;
}

/** memory://: 8 threads calling get_or_compute on one absent key at once each get a whole value of
 * that key, and afterwards all read the same one. */
static void test_threads_memory_same_key_race(void **state) {
  (void)state;
  run_race("memory://");
}

/** Redis: the same race through the connection pool. */
static void test_threads_redis_same_key_race(void **state) {
  (void)state;
  run_race(test_redis_url());
}

/* ------------------------------------------------------------------------
 * Remaining TTL under contention
 * ------------------------------------------------------------------------ */

typedef struct ttl_bound_run {
  httpcache_cache *cache;
  int iterations;
} ttl_bound_run;

static ttl_bound_run the_bound;

/* Odd threads keep re-storing one key with a 300 s TTL; even threads read it and check that the
 * remaining TTL is in (0, 300 s]: time left can never exceed the TTL applied by any store. */
static void *ttl_bound_worker(void *arg) {
  worker *w = (worker *)arg;
  static const char key[] = "bounded";
  char buf[4096];
  size_t len = make_value(buf, key, w->id, 0);
  int i;
  pthread_barrier_wait(w->start);
  for (i = 0; i < the_bound.iterations; ++i) {
    if (w->id % 2) {
      int rc = httpcache_cache_set(NULL, w->cache, key, sizeof key - 1, buf, len, &five_minutes);
      if (rc != HTTPCACHE_OK) problem(w, "set failed", key, rc);
    } else {
      httpcache_buf value = HTTPCACHE_BUF_INIT;
      int64_t ttl = -1;
      int rc = httpcache_cache_get(&value, &ttl, w->cache, key, sizeof key - 1);
      if (rc == HTTPCACHE_OK) {
        ++w->hits;
        if (!value_is_valid(key, value.ptr, value.size, NULL, NULL)) problem(w, "get returned a torn value", key, rc);
        if (ttl > w->worst_ttl_ms) w->worst_ttl_ms = ttl;
        if (ttl <= 0 || ttl > 300000) problem(w, "remaining TTL outside (0, 300000] ms", key, (int)ttl);
      } else if (rc != HTTPCACHE_ENOTFOUND) {
        problem(w, "get failed", key, rc);
      }
      httpcache_buf_dispose(&value);
    }
  }
  return NULL;
}

static void run_ttl_bound(const char *url, int iterations) {
  pthread_barrier_t start;
  worker workers[NTHREADS];
  int i, hits = 0;
  int64_t worst = 0;
  the_bound.iterations = iterations;
  assert_int_equal(httpcache_cache_open(&the_bound.cache, url, test_unique_namespace("bound"), NULL, NULL),
                   HTTPCACHE_OK);
  init_workers(workers, the_bound.cache, &start);
  run_join(workers, ttl_bound_worker);
  pthread_barrier_destroy(&start);
  for (i = 0; i < NTHREADS; ++i) {
    hits += workers[i].hits;
    if (workers[i].worst_ttl_ms > worst) worst = workers[i].worst_ttl_ms;
  }
  print_message("%s: %d hits, largest remaining TTL %lld ms (300000 applied)\n", url, hits, (long long)worst);
  httpcache_cache_free(the_bound.cache);
  the_bound.cache = NULL;
  assert_no_problems(workers);
  assert_true(hits > 0);
}

/** memory://: while other threads keep re-storing a key with a 300 s TTL, a get never reports more
 * than 300 s left (the remaining TTL must be measured against the clock read under the store's lock). */
static void test_threads_memory_remaining_ttl_never_exceeds_applied(void **state) {
  (void)state;
  run_ttl_bound("memory://", 20000);
}

/** Redis: the same bound holds through the pool (PTTL never exceeds the PX given). */
static void test_threads_redis_remaining_ttl_never_exceeds_applied(void **state) {
  (void)state;
  run_ttl_bound(test_redis_url(), 300);
}

/* ------------------------------------------------------------------------
 * The last error is thread-local
 * ------------------------------------------------------------------------ */

#define ERROR_ROUNDS 400

/* Even threads fail on purpose (each with an error message naming itself); odd threads succeed and
 * check their last error stays OK, then fail once in their own way and check they see their own message. */
static void *error_worker(void *arg) {
  worker *w = (worker *)arg;
  char zone[64], key[64], buf[4096];
  int r;
  snprintf(zone, sizeof zone, "Mars/Thread%d", w->id);
  snprintf(key, sizeof key, "err:%d", w->id);
  pthread_barrier_wait(w->start);
  for (r = 0; r < ERROR_ROUNDS; ++r) {
    httpcache_buf value = HTTPCACHE_BUF_INIT;
    const httpcache_error *e;
    int64_t out = 0;
    int rc;
    if (w->id % 2 == 0) {
      httpcache_ttl_policy eod = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
      httpcache_ttl_policy zero = {HTTPCACHE_TTL_SECONDS, 0, NULL, NULL};
      if (r % 3 == 0) {
        rc = httpcache_ttl_compute(&out, &eod, zone, 0);
        e = httpcache_error_last();
        if (rc != HTTPCACHE_EINVALID || e->code != HTTPCACHE_EINVALID || !strstr(e->message, zone))
          problem(w, "unknown zone did not leave this thread's own error", zone, rc);
      } else if (r % 3 == 1) {
        rc = httpcache_cache_get(&value, NULL, w->cache, key, 0); /* empty key */
        if (rc != HTTPCACHE_EINVALID || httpcache_error_last()->code != HTTPCACHE_EINVALID)
          problem(w, "empty key not refused with EINVALID", key, rc);
      } else {
        rc = httpcache_cache_set(NULL, w->cache, key, strlen(key), "x", 1, &zero);
        if (rc != HTTPCACHE_EINVALID || httpcache_error_last()->code != HTTPCACHE_EINVALID)
          problem(w, "TTL 0 not refused with EINVALID", key, rc);
      }
    } else {
      size_t len = make_value(buf, key, w->id, (unsigned)r);
      rc = httpcache_cache_set(NULL, w->cache, key, strlen(key), buf, len, &five_minutes);
      if (rc != HTTPCACHE_OK) problem(w, "set failed", key, rc);
      expect_ok_error(w, key);
      rc = httpcache_cache_get(&value, NULL, w->cache, key, strlen(key));
      if (rc != HTTPCACHE_OK || value.size != len || memcmp(value.ptr, buf, len) != 0) problem(w, "get failed", key, rc);
      expect_ok_error(w, key);
      if (r % 50 == 25) { /* a failure of this thread's own: its message, not another thread's */
        rc = httpcache_ttl_compute(&out, &five_minutes, zone, 0);
        e = httpcache_error_last();
        if (rc != HTTPCACHE_EINVALID || !strstr(e->message, zone)) problem(w, "own failure message lost", zone, rc);
        rc = httpcache_ttl_compute(&out, &five_minutes, "UTC", 0);
        if (rc != HTTPCACHE_OK || out != 300) problem(w, "ttl_compute failed", "UTC", rc);
        expect_ok_error(w, key);
      }
    }
    httpcache_buf_dispose(&value);
  }
  return NULL;
}

static void run_errors(const char *url) {
  httpcache_cache *cache = NULL;
  pthread_barrier_t start;
  worker workers[NTHREADS];
  assert_int_equal(httpcache_cache_open(&cache, url, test_unique_namespace("errors"), NULL, NULL), HTTPCACHE_OK);
  init_workers(workers, cache, &start);
  run_join(workers, error_worker);
  pthread_barrier_destroy(&start);
  assert_no_problems(workers);
  /* The main thread's last error is its own too: the open above succeeded. */
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_OK);
  httpcache_cache_free(cache);
}

/** memory://: threads failing with EINVALID never disturb the last error of threads that succeed. */
static void test_threads_memory_last_error_is_thread_local(void **state) {
  (void)state;
  run_errors("memory://");
}

/** Redis: the same, with the successful threads doing round trips through the pool. */
static void test_threads_redis_last_error_is_thread_local(void **state) {
  (void)state;
  run_errors(test_redis_url());
}

/** The value checker itself rejects torn, truncated and foreign values (so the tests above can fail). */
static void test_threads_value_checker_rejects_bad_values(void **state) {
  char a[4096], b[4096];
  size_t la, lb;
  int writer;
  unsigned gen;
  (void)state;
  la = make_value(a, "shared:1", 3, 7);
  lb = make_value(b, "shared:2", 3, 7);
  assert_true(value_is_valid("shared:1", a, la, &writer, &gen));
  assert_int_equal(writer, 3);
  assert_int_equal(gen, 7);
  assert_false(value_is_valid("shared:2", a, la, NULL, NULL)); /* foreign */
  assert_false(value_is_valid("shared:1", a, la - 1, NULL, NULL)); /* truncated */
  assert_false(value_is_valid("shared:1", b, lb, NULL, NULL));
  a[la / 2 + 20] ^= 1; /* torn */
  assert_false(value_is_valid("shared:1", a, la, NULL, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_value_checker_rejects_bad_values),
      cmocka_unit_test(test_threads_memory_mixed_calls),
      cmocka_unit_test(test_threads_redis_mixed_calls),
      cmocka_unit_test(test_threads_memory_same_key_race),
      cmocka_unit_test(test_threads_redis_same_key_race),
      cmocka_unit_test(test_threads_memory_remaining_ttl_never_exceeds_applied),
      cmocka_unit_test(test_threads_redis_remaining_ttl_never_exceeds_applied),
      cmocka_unit_test(test_threads_memory_last_error_is_thread_local),
      cmocka_unit_test(test_threads_redis_last_error_is_thread_local),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
