/* SPDX-License-Identifier: MIT
 * The Windows build of hiredis 0.14 (packaging/windows/build-deps.sh) takes its reply reader and
 * reply objects (read.c, sds.c, hiredis.c) but not net.c, whose POSIX sockets do not compile with
 * MinGW: httpcache talks to Redis through its own transport (core/redis/socket_win.cpp) and never
 * calls hiredis's connection functions. These stand in for net.c so that hiredis.c links; each
 * fails as a refused connection would. */
#include <stdio.h>
#include <string.h>

#include "hiredis.h"
#include "net.h"

static int not_built(redisContext *c) {
  c->err = REDIS_ERR_OTHER;
  snprintf(c->errstr, sizeof(c->errstr), "hiredis connections are not built on Windows");
  return REDIS_ERR;
}

int redisKeepAlive(redisContext *c, int interval) {
  (void)interval;
  return not_built(c);
}

int redisContextSetTimeout(redisContext *c, const struct timeval tv) {
  (void)tv;
  return not_built(c);
}

int redisContextConnectTcp(redisContext *c, const char *addr, int port, const struct timeval *timeout) {
  (void)addr, (void)port, (void)timeout;
  return not_built(c);
}

int redisContextConnectBindTcp(redisContext *c, const char *addr, int port, const struct timeval *timeout,
                               const char *source_addr) {
  (void)addr, (void)port, (void)timeout, (void)source_addr;
  return not_built(c);
}

int redisContextConnectUnix(redisContext *c, const char *path, const struct timeval *timeout) {
  (void)path, (void)timeout;
  return not_built(c);
}

/* hiredis.c formats an errno with the GNU/POSIX call; MinGW has the C11 one. */
int strerror_r(int err, char *buf, size_t len) { return strerror_s(buf, len, err); }
