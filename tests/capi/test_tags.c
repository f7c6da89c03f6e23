/* SPDX-License-Identifier: MIT
 * Tags (issue 16) on memory://, one Redis server and the cluster, blocking and non-blocking:
 * - invalidating a tag makes exactly the entries stamped with it miss, on every handle;
 * - a computation that began before a tag's invalidation is never served after it (a looped
 *   property over random tag sets, with the invalidation made from another handle while the
 *   callback computes);
 * - a caller of a flight's process that read a tag's new generation (invalidated by another
 *   handle while the flight computed) does not share the flight's value;
 * - readers that name no tags still refuse stale entries and get the value without envelope;
 * - a tagged call refuses an entry stored without its tags;
 * - bad tag lists are refused before anything runs. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

static const char *memory_url(void) { return "memory://"; }
typedef const char *(*url_fn)(void);

static const httpcache_ttl_policy minute = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};

/* memory:// is one store per handle: its "other handle" is the same one. */
static httpcache_cache *open_other(url_fn url, const char *ns, httpcache_cache *c);
static void free_other(httpcache_cache *c, httpcache_cache *other) {
  if (other != c) httpcache_cache_free(other);
}

static httpcache_cache *open_cache(url_fn url, const char *ns) {
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL;
  opts.breaker_failures = 1000;
  assert_int_equal(httpcache_cache_open(&c, url(), ns, "UTC", &opts), HTTPCACHE_OK);
  return c;
}

static httpcache_cache *open_other(url_fn url, const char *ns, httpcache_cache *c) {
  return url == memory_url ? c : open_cache(url, ns);
}

/* The _ex calls with only tags. */
static httpcache_call with_tags(const void *const *tags, const size_t *lens, size_t n) {
  httpcache_call call = HTTPCACHE_CALL_INIT;
  call.tags = tags;
  call.tag_lens = lens;
  call.ntags = n;
  return call;
}
static int or_compute_tagged(httpcache_buf *v, int64_t *ttl, httpcache_outcome *o, httpcache_cache *c, const char *key,
                             size_t key_len, const void *const *tags, const size_t *lens, size_t n,
                             httpcache_compute_cb fn, void *payload) {
  httpcache_call call = with_tags(tags, lens, n);
  return httpcache_cache_get_or_compute_ex(v, ttl, o, c, key, key_len, &minute, &call, fn, payload);
}
static int get_tagged(httpcache_async *ctx, const char *key, size_t key_len, const void *const *tags,
                      const size_t *lens, size_t n, httpcache_async_get_cb cb, void *payload) {
  httpcache_call call = with_tags(tags, lens, n);
  return httpcache_async_get_ex(ctx, key, key_len, &call, cb, payload);
}
static int set_tagged(httpcache_async *ctx, const char *key, size_t key_len, const void *const *tags,
                      const size_t *lens, size_t n, const char *value, size_t value_len, httpcache_async_done_cb cb,
                      void *payload) {
  httpcache_call call = with_tags(tags, lens, n);
  return httpcache_async_set_ex(ctx, key, key_len, value, value_len, &minute, &call, cb, payload);
}

/* A compute callback: counts its calls, returns `value`, and may run `during` (an invalidation
 * made while it computes). */
typedef struct {
  int calls;
  const char *value;
  void (*during)(void *);
  void *during_arg;
} producer;

static int produce(httpcache_buf *out, uint32_t *flags, void *payload) {
  producer *p = payload;
  (void)flags;
  p->calls++;
  if (p->during) p->during(p->during_arg);
  return httpcache_buf_set(out, p->value, strlen(p->value));
}

/* get_or_compute_tagged with up to 4 NUL-terminated tags; the value in `got` (NUL-terminated). */
static int tagged(httpcache_cache *c, const char *key, const char **tags, size_t ntags, producer *p, char *got,
                  httpcache_outcome *outcome) {
  size_t lens[4];
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  int64_t ttl = 0;
  for (size_t i = 0; i < ntags; ++i) lens[i] = strlen(tags[i]);
  int rc = or_compute_tagged(&v, &ttl, outcome, c, key, strlen(key), (const void *const *)tags, lens, ntags, produce, p);
  if (rc == HTTPCACHE_OK) {
    memcpy(got, v.ptr, v.size);
    got[v.size] = '\0';
  }
  httpcache_buf_dispose(&v);
  return rc;
}

static void invalidate_tag(httpcache_cache *c, const char *tag) {
  const void *tags[] = {tag};
  size_t lens[] = {strlen(tag)};
  assert_int_equal(httpcache_cache_invalidate_tags(c, tags, lens, 1), HTTPCACHE_OK);
}

static void groups(url_fn url) {
  const char *ns = test_unique_namespace("tags");
  httpcache_cache *c = open_cache(url, ns), *other = open_other(url, ns, c);
  const char *ab[] = {"catalog", "user:1"}, *b[] = {"user:1"}, *a[] = {"catalog"};
  producer p = {0, "v1", NULL, NULL};
  char got[64];
  httpcache_outcome o;
  assert_int_equal(tagged(c, "both", ab, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(tagged(c, "user", b, 1, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(tagged(c, "catalog", a, 1, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(p.calls, 3);
  /* hits, from the other handle too, and a plain get sees the value without its envelope */
  assert_int_equal(tagged(other, "both", ab, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_HIT);
  assert_string_equal(got, "v1");
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  assert_int_equal(httpcache_cache_get(&v, NULL, other, "user", 4), HTTPCACHE_OK);
  assert_int_equal(v.size, 2);
  assert_memory_equal(v.ptr, "v1", 2);
  httpcache_buf_dispose(&v);
  assert_int_equal(p.calls, 3);

  invalidate_tag(other, "user:1");
  /* a reader naming no tags refuses the stale entry */
  assert_int_equal(httpcache_cache_get(&v, NULL, c, "user", 4), HTTPCACHE_ENOTFOUND);
  p.value = "v2";
  assert_int_equal(tagged(c, "both", ab, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(got, "v2");
  assert_int_equal(tagged(c, "user", b, 1, &p, got, &o), HTTPCACHE_OK);
  assert_string_equal(got, "v2");
  assert_int_equal(tagged(c, "catalog", a, 1, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_HIT); /* untouched by user:1 */
  assert_string_equal(got, "v1");
  assert_int_equal(p.calls, 5);
  /* and the new entries hit */
  assert_int_equal(tagged(other, "both", ab, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_HIT);
  assert_string_equal(got, "v2");

  /* an entry stored without the call's tags is not one of its hits */
  assert_int_equal(httpcache_cache_set(NULL, c, "plain", 5, "old", 3, &minute), HTTPCACHE_OK);
  p.value = "tagged";
  assert_int_equal(tagged(c, "plain", a, 1, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_STORED);
  assert_string_equal(got, "tagged");
  assert_int_equal(tagged(c, "plain", a, 1, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_HIT);
  httpcache_cache_free(c);
  free_other(c, other);
}
static void test_groups_memory(void **state) { (void)state, groups(memory_url); }
static void test_groups_redis(void **state) { (void)state, groups(test_redis_url); }
static void test_groups_cluster(void **state) { (void)state, groups(test_cluster_url); }

/* ---- the property: no value computed before a tag's invalidation is served after it ---- */
typedef struct {
  httpcache_cache *other;
  const char *tag;
} inval;
static void invalidate_during(void *arg) {
  inval *i = arg;
  invalidate_tag(i->other, i->tag);
}

static void never_stale(url_fn url) {
  const char *ns = test_unique_namespace("tagrace");
  httpcache_cache *c = open_cache(url, ns), *other = open_other(url, ns, c);
  const char *pool[] = {"a", "b", "c", "d"};
  const char *env = getenv("HTTPCACHE_TEST_FENCING_ROUNDS");
  int rounds = env && *env ? atoi(env) : 200;
  if (rounds <= 0 || rounds > 200) rounds = 200;
  unsigned seed = 16;
  for (int round = 0; round < rounds; ++round) {
    const char *tags[4];
    size_t n = 1 + rand_r(&seed) % 4;
    for (size_t i = 0; i < n; ++i) tags[i] = pool[(round + i) % 4];
    char key[32], got[64];
    snprintf(key, sizeof key, "k%d", rand_r(&seed) % 8);
    assert_int_equal(httpcache_cache_invalidate(NULL, c, (const void *const[]){key}, (const size_t[]){strlen(key)}, 1),
                     HTTPCACHE_OK);
    inval during = {other, tags[rand_r(&seed) % n]};
    producer slow = {0, "before", invalidate_during, &during};
    httpcache_outcome o;
    assert_int_equal(tagged(c, key, tags, n, &slow, got, &o), HTTPCACHE_OK);
    assert_string_equal(got, "before"); /* its own caller gets it */
    producer after = {0, "after", NULL, NULL};
    assert_int_equal(tagged(other, key, tags, n, &after, got, &o), HTTPCACHE_OK);
    assert_string_equal(got, "after");
    assert_int_equal(after.calls, 1);
  }
  httpcache_cache_free(c);
  free_other(c, other);
}
static void test_never_stale_memory(void **state) { (void)state, never_stale(memory_url); }
static void test_never_stale_redis(void **state) { (void)state, never_stale(test_redis_url); }
static void test_never_stale_cluster(void **state) { (void)state, never_stale(test_cluster_url); }

/* ---- a flight whose tag is invalidated elsewhere while it computes is not joined ---- */
typedef struct {
  httpcache_cache *cache;
  atomic_int started, release;
  char got[64];
} slow_leader;

static int slow_produce(httpcache_buf *out, uint32_t *flags, void *payload) {
  slow_leader *l = payload;
  (void)flags;
  atomic_store(&l->started, 1);
  /* long enough for the late caller to find the flight, well within its singleflight_wait_ms */
  for (int i = 0; i < 300 && !atomic_load(&l->release); ++i) test_sleep_ms(1);
  return httpcache_buf_set(out, "before", 6);
}

static void *leader_main(void *arg) {
  slow_leader *l = arg;
  const void *tags[] = {"t"};
  size_t lens[] = {1};
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  if (or_compute_tagged(&v, NULL, NULL, l->cache, "k", 1, tags, lens, 1, slow_produce, l) == HTTPCACHE_OK)
    snprintf(l->got, sizeof l->got, "%.*s", (int)v.size, v.ptr);
  httpcache_buf_dispose(&v);
  return NULL;
}

static void not_joined(url_fn url) {
  const char *ns = test_unique_namespace("tagflight");
  httpcache_options opts = HTTPCACHE_OPTIONS_INIT;
  httpcache_cache *c = NULL, *other;
  opts.singleflight_wait_ms = 5000;
  assert_int_equal(httpcache_cache_open(&c, url(), ns, "UTC", &opts), HTTPCACHE_OK);
  other = open_cache(url, ns);
  slow_leader l = {c, 0, 0, ""};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, leader_main, &l), 0);
  while (!atomic_load(&l.started)) test_sleep_ms(1);
  invalidate_tag(other, "t"); /* another process, as far as c's flights know */
  const char *tags[] = {"t"};
  producer late = {0, "after", NULL, NULL};
  char got[64];
  httpcache_outcome o;
  assert_int_equal(tagged(c, "k", tags, 1, &late, got, &o), HTTPCACHE_OK);
  atomic_store(&l.release, 1);
  pthread_join(t, NULL);
  assert_string_equal(l.got, "before"); /* the leader's own caller gets its value */
  assert_string_equal(got, "after");    /* the late caller never does */
  assert_int_equal(late.calls, 1);
  httpcache_cache_free(c);
  httpcache_cache_free(other);
}
static void test_not_joined_redis(void **state) { (void)state, not_joined(test_redis_url); }
static void test_not_joined_cluster(void **state) { (void)state, not_joined(test_cluster_url); }

/* ---- bad input ---- */
static void test_bad_tags(void **state) {
  (void)state;
  httpcache_cache *c = open_cache(memory_url, "badtags");
  producer p = {0, "v", NULL, NULL};
  httpcache_buf v = HTTPCACHE_BUF_INIT;
  const void *one[] = {"t"}, *empty[] = {""}, *null_tag[] = {NULL};
  size_t one_len[] = {1}, zero_len[] = {0};
  const void *many[33];
  size_t many_lens[33];
  for (int i = 0; i < 33; ++i) many[i] = "abcdefghijklmnopqrstuvwxyz0123456789" + i, many_lens[i] = 3;
  static char huge[1025];
  memset(huge, 'x', sizeof huge);
  const void *long_tag[] = {huge};
  size_t long_len[] = {sizeof huge};
  struct {
    const void *const *tags;
    const size_t *lens;
    size_t n;
    const char *says;
  } bad[] = {{one, one_len, 0, "no tags"}, {NULL, one_len, 1, "NULL"}, {one, NULL, 1, "NULL"},
             {null_tag, one_len, 1, "tag 0 is NULL"}, {empty, zero_len, 1, "tag is empty"},
             {many, many_lens, 33, "over the limit of 32"}, {long_tag, long_len, 1, "over the limit of 1024"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    if (bad[i].n) { /* with no tags, a call is simply untagged */
      assert_int_equal(or_compute_tagged(&v, NULL, NULL, c, "k", 1, bad[i].tags, bad[i].lens, bad[i].n, produce, &p),
                       HTTPCACHE_EINVALID);
      assert_non_null(strstr(httpcache_error_last()->message, bad[i].says));
    }
    assert_int_equal(httpcache_cache_invalidate_tags(c, bad[i].tags, bad[i].lens, bad[i].n), HTTPCACHE_EINVALID);
  }
  assert_int_equal(p.calls, 0);
  /* the envelope's prefix is reserved */
  static const char reserved[] = "\0httpcache-tags\0" "1\n1\nt0123456789abcdef0123456789abcdefX";
  assert_int_equal(httpcache_cache_set(NULL, c, "k", 1, reserved, sizeof reserved - 1, &minute), HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "reserved for tagged entries"));
  httpcache_buf_dispose(&v);
  httpcache_cache_free(c);
}

/* ---- non-blocking: get_tagged, set_tagged, invalidate_tags ---- */
typedef struct {
  int calls, status;
  char value[64];
  int64_t count;
} answer;
static void on_get(int status, const void *value, size_t len, int64_t ttl_ms, void *payload) {
  answer *a = payload;
  (void)ttl_ms;
  a->calls++;
  a->status = status;
  if (len) memcpy(a->value, value, len < 63 ? len : 63);
  a->value[len < 63 ? len : 63] = '\0';
}
static void on_done(int status, int64_t count, void *payload) {
  answer *a = payload;
  a->calls++;
  a->status = status;
  a->count = count;
}

static void async_tags(url_fn url) {
  const char *ns = test_unique_namespace("atags");
  httpcache_cache *c = open_cache(url, ns), *other = open_other(url, ns, c);
  test_loop loop = TEST_LOOP_INIT;
  httpcache_async *ctx = NULL;
  assert_int_equal(httpcache_async_open(&ctx, c, test_loop_watch, &loop), HTTPCACHE_OK);
  const void *tags[] = {"catalog", "user:7"};
  size_t lens[] = {7, 6};
  answer a = {0};
  /* a set without a tagged miss of this context is refused */
  assert_int_equal(set_tagged(ctx, "k", 1, tags, lens, 2, "v0", 2, on_done, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_ENOTFOUND);
  memset(&a, 0, sizeof a);
  assert_int_equal(get_tagged(ctx, "k", 1, tags, lens, 2, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_ENOTFOUND);
  memset(&a, 0, sizeof a);
  assert_int_equal(set_tagged(ctx, "k", 1, tags, lens, 2, "v1", 2, on_done, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_OK);
  memset(&a, 0, sizeof a);
  assert_int_equal(get_tagged(ctx, "k", 1, tags, lens, 2, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_OK);
  assert_string_equal(a.value, "v1");
  /* the blocking path of another handle sees the same entry */
  producer p = {0, "blocking", NULL, NULL};
  char got[64];
  httpcache_outcome o;
  const char *ctags[] = {"user:7", "catalog"};
  assert_int_equal(tagged(other, "k", ctags, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_HIT);
  assert_string_equal(got, "v1");
  /* an untagged async get unwraps it */
  memset(&a, 0, sizeof a);
  assert_int_equal(httpcache_async_get(ctx, "k", 1, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_OK);
  assert_string_equal(a.value, "v1");
  /* invalidate one tag without blocking: both kinds of reader miss */
  memset(&a, 0, sizeof a);
  assert_int_equal(httpcache_async_invalidate_tags(ctx, &tags[1], &lens[1], 1, on_done, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_OK);
  memset(&a, 0, sizeof a);
  assert_int_equal(httpcache_async_get(ctx, "k", 1, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_ENOTFOUND);
  p.value = "fresh";
  assert_int_equal(tagged(other, "k", ctags, 2, &p, got, &o), HTTPCACHE_OK);
  assert_int_equal(o, HTTPCACHE_OUTCOME_STORED);
  /* a miss whose tag is invalidated before its store: the stored value misses */
  assert_int_equal(httpcache_cache_invalidate(NULL, c, (const void *const[]){"k2"}, (const size_t[]){2}, 1), HTTPCACHE_OK);
  memset(&a, 0, sizeof a);
  assert_int_equal(get_tagged(ctx, "k2", 2, tags, lens, 2, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_ENOTFOUND);
  invalidate_tag(other, "catalog");
  memset(&a, 0, sizeof a);
  assert_int_equal(set_tagged(ctx, "k2", 2, tags, lens, 2, "late", 4, on_done, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  memset(&a, 0, sizeof a);
  assert_int_equal(get_tagged(ctx, "k2", 2, tags, lens, 2, on_get, &a), HTTPCACHE_OK);
  assert_int_equal(test_loop_run(&loop, ctx, 5000), 0);
  assert_int_equal(a.status, HTTPCACHE_ENOTFOUND);
  httpcache_async_free(ctx);
  httpcache_cache_free(c);
  free_other(c, other);
}
static void test_async_memory(void **state) { (void)state, async_tags(memory_url); }
static void test_async_redis(void **state) { (void)state, async_tags(test_redis_url); }
static void test_async_cluster(void **state) { (void)state, async_tags(test_cluster_url); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_groups_memory),      cmocka_unit_test(test_groups_redis),
      cmocka_unit_test(test_groups_cluster),     cmocka_unit_test(test_never_stale_memory),
      cmocka_unit_test(test_never_stale_redis),  cmocka_unit_test(test_never_stale_cluster),
      cmocka_unit_test(test_not_joined_redis),   cmocka_unit_test(test_not_joined_cluster),
      cmocka_unit_test(test_bad_tags),           cmocka_unit_test(test_async_memory),
      cmocka_unit_test(test_async_redis),        cmocka_unit_test(test_async_cluster),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
