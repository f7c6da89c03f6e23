/* SPDX-License-Identifier: MIT
 * Shared helpers of the CMocka tests: where the fixture's redis-server is, and small utilities. */
#ifndef HTTPCACHE_TEST_SUPPORT_H
#define HTTPCACHE_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* The fixture's redis:// URL (from $HTTPCACHE_TEST_REDIS_DIR/url); fails the test if absent:
 * Redis tests never skip. Static storage. */
const char *test_redis_url(void);
/* unix://<fixture socket>. Static storage. */
const char *test_redis_unix_url(void);
/* The cluster fixture's redis+cluster:// URL (from $HTTPCACHE_TEST_CLUSTER_DIR/url). Static storage. */
const char *test_cluster_url(void);
/* The fixture's redis-server pid. */
int test_redis_pid(void);
/* Runs the fixture script with `action` (e.g. "restart"); asserts it succeeded. */
void test_redis_fixture(const char *action);
/* A CMocka teardown for tests that stall (SIGSTOP) or kill the fixture's server: resumes it
 * (SIGCONT) and revives it if it is gone, so a failed assertion never leaves the shared server
 * stopped for the tests after it. Asserts nothing; returns non-zero if it could not. */
int test_redis_restore(void **state);
/* A namespace unique to this process and call, so tests never see each other's keys. */
const char *test_unique_namespace(const char *prefix);
/* Milliseconds of CLOCK_MONOTONIC. */
int64_t test_now_ms(void);
/* Sleeps ms milliseconds. */
void test_sleep_ms(int ms);

#endif
