// SPDX-License-Identifier: MIT
// C benchmarks (Google Benchmark), each beside its baseline in the same binary and run:
//   raw hiredis GET+PTTL round trip   <- the limit for a networked hit
//   raw OpenSSL GET+PTTL round trip   <- the same limit over TLS (hiredis 0.14 has no TLS)
//   mutex-guarded unordered_map copy  <- the in-process floor for memory://
//   memory:// hit                     <- the floor for a near hit (issue 17: Redis URL with the
//                                        near tier on, served in-process, within 2x of it)
// Redis and cluster URLs come from the environment (bench/run.sh starts private servers).
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

#include "httpcache.h"

namespace {

const std::string payload(200, 'x');  // a ~200-byte value, like a small JSON document
const httpcache_ttl_policy one_hour = {HTTPCACHE_TTL_SECONDS, 3600, nullptr, nullptr};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    std::fprintf(stderr, "%s is not set (run bench/run.sh)\n", name);
    std::exit(2);
  }
  return v;
}

int compute_payload(httpcache_buf* out, uint32_t*, void*) { return httpcache_buf_set(out, payload.data(), payload.size()); }

uint64_t near_hits(const httpcache_cache* cache) {
  httpcache_stats s = HTTPCACHE_STATS_INIT;
  if (httpcache_cache_stats(&s, cache) != HTTPCACHE_OK) std::abort();
  return s.near_hits;
}

// One handle per URL (and near tier setting) for the whole run (as an application holds it),
// warmed with the hot key. With the near tier on, the handle is read until the tier answers
// (its report link must be subscribed before it keeps a copy): the timed loop then measures
// near hits, which BM_near_hit checks.
httpcache_cache* shared_cache(const std::string& url, bool near = false) {
  static std::mutex m;
  static std::unordered_map<std::string, httpcache_cache*> handles;
  std::lock_guard<std::mutex> lock(m);
  auto& h = handles[url + (near ? " near" : "")];
  if (!h) {
    httpcache_options o = HTTPCACHE_OPTIONS_INIT;
    o.near_cache = near ? HTTPCACHE_NEAR_CACHE_ON : HTTPCACHE_NEAR_CACHE_OFF;
    // A namespace of its own: the near tier tracks its namespace's prefix only.
    if (httpcache_cache_open(&h, url.c_str(), near ? "bench_near" : "bench", "UTC", &o) != HTTPCACHE_OK) std::abort();
    if (httpcache_cache_set(nullptr, h, "hot", 3, payload.data(), payload.size(), &one_hour) != HTTPCACHE_OK)
      std::abort();
    if (near) {
      const uint64_t before = near_hits(h);
      for (int i = 0; near_hits(h) == before; ++i) {
        if (i == 3000) {
          std::fprintf(stderr, "no near hit within 3 s on %s\n", url.c_str());
          std::abort();
        }
        httpcache_buf v = HTTPCACHE_BUF_INIT;
        httpcache_cache_get(&v, nullptr, h, "hot", 3);
        httpcache_buf_dispose(&v);
        usleep(1000);
      }
    }
  }
  return h;
}

void hit(benchmark::State& state, httpcache_cache* cache) {
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  httpcache_outcome outcome;
  for (auto _ : state) {
    if (httpcache_cache_get_or_compute(&value, nullptr, &outcome, cache, "hot", 3, &one_hour, compute_payload,
                                       nullptr) != HTTPCACHE_OK ||
        outcome != HTTPCACHE_OUTCOME_HIT)
      state.SkipWithError("not a hit");
    benchmark::DoNotOptimize(value.ptr);
  }
  httpcache_buf_dispose(&value);
}

void hit(benchmark::State& state, const std::string& url) { hit(state, shared_cache(url)); }

void BM_redis_hit(benchmark::State& state) { hit(state, env("HTTPCACHE_BENCH_REDIS_URL")); }

// A near hit: the Redis URL with the near tier on, so every hit is served in-process (no round
// trip), beside BM_memory_hit. Fails unless every timed call was a near hit.
void BM_near_hit(benchmark::State& state) {
  httpcache_cache* cache = shared_cache(env("HTTPCACHE_BENCH_REDIS_URL"), true);
  const uint64_t before = near_hits(cache);
  hit(state, cache);
  // Every thread's `before` is read before the start barrier and this after the end one: no timed
  // call is missed or counted twice.
  if (state.thread_index() == 0 && near_hits(cache) - before < uint64_t(state.iterations()) * state.threads())
    state.SkipWithError("not every hit was a near hit (the tier was emptied during the run?)");
}
void BM_cluster_hit(benchmark::State& state) { hit(state, env("HTTPCACHE_BENCH_CLUSTER_URL")); }
void BM_memory_hit(benchmark::State& state) { hit(state, "memory://"); }

// lmdb:// in a directory of this run's own, removed at exit.
const std::string& lmdb_url() {
  static const std::string url = [] {
    static char dir[] = "/tmp/httpcache-bench-lmdb-XXXXXX";
    if (!mkdtemp(dir)) std::abort();
    std::atexit([] {
      for (const char* f : {"data.mdb", "lock.mdb", "boot_id", "open.lock"}) unlink((std::string(dir) + "/" + f).c_str());
      rmdir(dir);
    });
    return std::string("lmdb://") + dir;
  }();
  return url;
}
void BM_lmdb_hit(benchmark::State& state) { hit(state, lmdb_url()); }
void BM_tls_hit(benchmark::State& state) { hit(state, env("HTTPCACHE_BENCH_REDIS_TLS_URL")); }

// The TLS limit: GET+PTTL pipelined over a bare OpenSSL connection (blocking socket, no
// verification: the handshake is outside the loop), replies parsed by hiredis's reader.
void BM_raw_openssl_get_pttl(benchmark::State& state) {
  const std::string url = env("HTTPCACHE_BENCH_REDIS_TLS_URL");  // rediss://127.0.0.1:PORT?...
  const std::string after_colon = url.substr(url.rfind(':') + 1);
  const int port = std::atoi(after_colon.c_str());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) std::abort();
  const std::string set = "*3\r\n$3\r\nSET\r\n$9\r\nbench:raw\r\n$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  const std::string get_pttl = "*2\r\n$3\r\nGET\r\n$9\r\nbench:raw\r\n*2\r\n$4\r\nPTTL\r\n$9\r\nbench:raw\r\n";
  redisReader* reader = redisReaderCreate();
  char buf[16384];
  auto exchange = [&](const std::string& out, int replies) {
    if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) <= 0) std::abort();
    for (int got = 0; got < replies;) {
      void* r = nullptr;
      if (redisReaderGetReply(reader, &r) != REDIS_OK) std::abort();
      if (r) {
        if (got == 0 && replies == 2) {  // copy the value out, as a cache hit must
          std::string copy(static_cast<redisReply*>(r)->str, static_cast<redisReply*>(r)->len);
          benchmark::DoNotOptimize(copy.data());
        }
        freeReplyObject(r);
        ++got;
        continue;
      }
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) std::abort();
      redisReaderFeed(reader, buf, static_cast<size_t>(n));
    }
  };
  exchange(set, 1);
  for (auto _ : state) exchange(get_pttl, 2);
  redisReaderFree(reader);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
}

// The limit for a networked hit: the same two commands, pipelined, on a bare hiredis connection.
void BM_raw_hiredis_get_pttl(benchmark::State& state) {
  std::string url = env("HTTPCACHE_BENCH_REDIS_URL");  // redis://127.0.0.1:PORT
  int port = std::atoi(url.substr(url.rfind(':') + 1).c_str());
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) std::abort();
  freeReplyObject(redisCommand(c, "SET bench:raw %b", payload.data(), payload.size()));
  for (auto _ : state) {
    redisAppendCommand(c, "GET bench:raw");
    redisAppendCommand(c, "PTTL bench:raw");
    void* value = nullptr;
    void* ttl = nullptr;
    redisGetReply(c, &value);
    redisGetReply(c, &ttl);
    // A fair floor copies the value out too, as a cache hit must.
    std::string copy(static_cast<redisReply*>(value)->str, static_cast<redisReply*>(value)->len);
    benchmark::DoNotOptimize(copy.data());
    freeReplyObject(value);
    freeReplyObject(ttl);
  }
  redisFree(c);
}

// The in-process floor: a mutex-guarded unordered_map lookup and a copy of the value.
void BM_map_floor(benchmark::State& state) {
  static std::mutex m;
  static std::unordered_map<std::string, std::string> map = {{"bench:hot", payload}};
  for (auto _ : state) {
    std::string copy;
    {
      std::lock_guard<std::mutex> lock(m);
      copy = map.find("bench:hot")->second;
    }
    benchmark::DoNotOptimize(copy.data());
  }
}

void miss_store(benchmark::State& state, const std::string& url) {
  httpcache_cache* cache = shared_cache(url);
  httpcache_buf value = HTTPCACHE_BUF_INIT;
  static std::atomic<unsigned long> next{0};
  // Unique across runs too: bench/run.sh runs rounds against one server, whose entries live an hour.
  static const std::string prefix = "miss." + std::to_string(getpid()) + ".";
  for (auto _ : state) {
    std::string key = prefix + std::to_string(next++);
    if (httpcache_cache_get_or_compute(&value, nullptr, nullptr, cache, key.data(), key.size(), &one_hour,
                                       compute_payload, nullptr) != HTTPCACHE_OK)
      state.SkipWithError("miss failed");
  }
  httpcache_buf_dispose(&value);
}

void BM_redis_miss_store(benchmark::State& state) { miss_store(state, env("HTTPCACHE_BENCH_REDIS_URL")); }
void BM_memory_miss_store(benchmark::State& state) { miss_store(state, "memory://"); }
void BM_lmdb_miss_store(benchmark::State& state) { miss_store(state, lmdb_url()); }

void BM_redis_invalidate(benchmark::State& state) {
  httpcache_cache* cache = shared_cache(env("HTTPCACHE_BENCH_REDIS_URL"));
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> names;
  std::vector<const void*> keys;
  std::vector<size_t> lens;
  for (std::size_t i = 0; i < n; ++i) names.push_back("inv." + std::to_string(i));
  for (const auto& k : names) {
    keys.push_back(k.data());
    lens.push_back(k.size());
  }
  for (auto _ : state) {
    if (httpcache_cache_invalidate(nullptr, cache, keys.data(), lens.data(), n) != HTTPCACHE_OK)
      state.SkipWithError("invalidate failed");
  }
}

}  // namespace

BENCHMARK(BM_raw_hiredis_get_pttl)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_redis_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_cluster_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_raw_openssl_get_pttl)->Threads(1)->UseRealTime();
BENCHMARK(BM_tls_hit)->Threads(1)->UseRealTime();
BENCHMARK(BM_map_floor)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_memory_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_lmdb_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_near_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_redis_miss_store)->UseRealTime();
BENCHMARK(BM_memory_miss_store)->UseRealTime();
BENCHMARK(BM_lmdb_miss_store)->UseRealTime();
BENCHMARK(BM_redis_invalidate)->Arg(1)->Arg(10)->UseRealTime();

BENCHMARK_MAIN();
