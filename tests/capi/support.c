/* SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include "support.h"

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void read_file_in(const char *env, const char *name, char *out, size_t cap) {
  const char *dir = getenv(env);
  char path[1024];
  FILE *f;
  if (!dir) fail_msg("%s is not set: run through ctest (its fixture starts the server)", env);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "r");
  if (!f) fail_msg("cannot read %s: is the redis fixture running?", path);
  if (!fgets(out, (int)cap, f)) out[0] = '\0';
  fclose(f);
  out[strcspn(out, "\r\n")] = '\0';
}

static void read_fixture_file(const char *name, char *out, size_t cap) {
  read_file_in("HTTPCACHE_TEST_REDIS_DIR", name, out, cap);
}

const char *test_redis_fixture_file(const char *name, char *out, size_t cap) {
  read_fixture_file(name, out, cap);
  return out;
}

const char *test_cluster_url(void) {
  static char url[512];
  if (!url[0]) read_file_in("HTTPCACHE_TEST_CLUSTER_DIR", "url", url, sizeof url);
  return url;
}

const char *test_redis_url(void) {
  static char url[512];
  if (!url[0]) read_fixture_file("url", url, sizeof url);
  return url;
}

const char *test_redis_url_with(const char *path, const char *query, char *out, size_t cap) {
  const char *url = test_redis_url();
  const char *q = strchr(url, '?');
  int base = q ? (int)(q - url) : (int)strlen(url);
  const char *own = q ? q + 1 : "";
  const char *sep = own[0] && query[0] ? "&" : "";
  int n = snprintf(out, cap, "%.*s%s%s%s%s%s", base, url, path, own[0] || query[0] ? "?" : "", own, sep, query);
  assert_true(n > 0 && (size_t)n < cap);
  return out;
}

int test_silent_listener(int backlog, int *port) {
  struct sockaddr_in a;
#ifdef _WIN32
  int len = sizeof a;
  WSADATA wsa;
  SOCKET s;
  assert_int_equal(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
  s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s != INVALID_SOCKET);
  int fd = (int)s; /* test-only: Windows hands out small socket values */
#else
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
#endif
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, backlog), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

const char *test_redis_unix_url(void) {
  static char url[1100];
  if (!url[0]) {
    char sock[1024];
    read_fixture_file("socket", sock, sizeof sock);
    snprintf(url, sizeof url, "unix://%s", sock);
  }
  return url;
}

int test_redis_pid(void) {
  char pid[64];
  read_fixture_file("pid", pid, sizeof pid);
  return atoi(pid);
}

#ifdef _WIN32
/* The fixture scripts are the host's (bash, kill): a Windows test cannot run them. The tests that
 * stop, kill or revive the server are not built for Windows (tests/windows.cmake). */
void test_redis_fixture(const char *action) { fail_msg("test_redis_fixture(%s) is not available on Windows", action); }

int test_redis_restore(void **state) {
  (void)state;
  return 0;
}
#else
void test_redis_fixture(const char *action) {
  char cmd[2048];
  const char *dir = getenv("HTTPCACHE_TEST_REDIS_DIR");
  snprintf(cmd, sizeof cmd, "%s %s '%s' >/dev/null", HTTPCACHE_FIXTURE_SCRIPT, action, dir ? dir : "");
  assert_int_equal(system(cmd), 0);
}

int test_redis_restore(void **state) {
  const char *dir = getenv("HTTPCACHE_TEST_REDIS_DIR");
  char path[1024], cmd[2048], pid[64] = "";
  FILE *f;
  (void)state;
  if (!dir) return 0;
  snprintf(path, sizeof path, "%s/pid", dir);
  f = fopen(path, "r");
  if (f) {
    if (!fgets(pid, sizeof pid, f)) pid[0] = '\0';
    fclose(f);
  }
  if (atoi(pid) > 0 && kill((pid_t)atoi(pid), SIGCONT) == 0) return 0;
  /* No server any more (killed, and the test failed before reviving it): start it again. */
  snprintf(cmd, sizeof cmd, "%s revive '%s' >/dev/null", HTTPCACHE_FIXTURE_SCRIPT, dir);
  return system(cmd) == 0 ? 0 : -1;
}
#endif

const char *test_unique_namespace(const char *prefix) {
  static char ns[128];
  static unsigned counter;
  snprintf(ns, sizeof ns, "%s-%ld-%u", prefix, (long)getpid(), ++counter);
  return ns;
}

int64_t test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void test_sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

void test_on_get(int status, const void *value, size_t size, int64_t ttl_ms, void *payload) {
  get_result *r = payload;
  ++r->done;
  r->status = status;
  r->size = size;
  r->ttl_ms = ttl_ms;
  if (size && size < sizeof r->value) memcpy(r->value, value, size);
}

void test_on_done(int status, int64_t count, void *payload) {
  done_result *r = payload;
  ++r->done;
  r->status = status;
  r->count = count;
}

uint32_t test_mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/* HTTPCACHE_TEST_FILTER=PATTERN runs only the tests whose names match (cmocka's wildcards). */
__attribute__((constructor)) static void test_filter_from_env(void) {
  const char *pattern = getenv("HTTPCACHE_TEST_FILTER");
  if (pattern && *pattern) cmocka_set_test_filter(pattern);
}
