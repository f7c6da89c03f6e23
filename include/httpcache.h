/* SPDX-License-Identifier: MIT
 * httpcache: a response and function-result cache with a stable C ABI. */
#ifndef HTTPCACHE_H
#define HTTPCACHE_H

/**
 * @file httpcache.h
 * @brief The public C API of httpcache; these comments are its reference.
 *
 * Introduction
 * ------------
 * httpcache caches opaque byte values under keys in a backend: an embedded
 * in-process store (`memory://`), a store shared by the processes of one host
 * (`lmdb://`), or Redis (`redis://`, `unix://`). A value is
 * stored exactly as the caller's bytes (no envelope), so any Redis client, and
 * the Python package, read the same entries.
 *
 * A handle (httpcache_cache) is opened from a URL, a namespace and an IANA time
 * zone. Every key is stored as `namespace:key`. Expiry comes from a TTL policy:
 * fixed seconds, end of the local day, end of the local week, or a callback;
 * "end of" is computed in the handle's zone with ICU and is DST-correct.
 *
 * Two ways to call it:
 *  1. Blocking: httpcache_cache_get_or_compute(), httpcache_cache_get(),
 *     httpcache_cache_set(), httpcache_cache_invalidate(). Safe from many
 *     threads at once on one handle: each call borrows a connection from the
 *     handle's pool (or takes the memory store's lock) for its duration.
 *  2. Non-blocking (httpcache_async_*): for event loops. The library tells the
 *     host which descriptor to watch and for what (a watch callback, as
 *     hiredis's event-loop adapters do); the host calls
 *     httpcache_async_process() when it is ready, and completion callbacks run
 *     inside that call, on the host's thread.
 *
 * Errors: every fallible call returns an `int` status (HTTPCACHE_OK or a
 * negative httpcache_error_code). httpcache_error_last() gives the detailed,
 * thread-local message of the last failure on the calling thread. No C++
 * exception ever crosses this API. Messages never contain URL credentials.
 *
 * Ownership: pointers returned through an httpcache_buf belong to the caller
 * and are released with httpcache_buf_dispose(); pointers returned directly
 * (strings, httpcache_error) are borrowed and owned by the library.
 * Input buffers are always copied before the call returns, unless said otherwise.
 */

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * Declarations and symbol export
 * ------------------------------------------------------------------------ */

#ifdef __cplusplus
#  define HTTPCACHE_BEGIN_DECL extern "C" {
#  define HTTPCACHE_END_DECL }
#else
#  define HTTPCACHE_BEGIN_DECL
#  define HTTPCACHE_END_DECL
#endif

/* HTTPCACHE_EXTERN(type) marks every exported declaration. Define
 * HTTPCACHE_STATIC when linking a static build on Windows. */
#if defined(_WIN32) && !defined(HTTPCACHE_STATIC)
#  ifdef HTTPCACHE_BUILDING
#    define HTTPCACHE_EXTERN(type) __declspec(dllexport) type
#  else
#    define HTTPCACHE_EXTERN(type) __declspec(dllimport) type
#  endif
#elif defined(__GNUC__) && !defined(HTTPCACHE_STATIC)
#  define HTTPCACHE_EXTERN(type) __attribute__((visibility("default"))) type
#else
#  define HTTPCACHE_EXTERN(type) type
#endif

/* ------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------ */

#define HTTPCACHE_VERSION_MAJOR 1
#define HTTPCACHE_VERSION_MINOR 7
#define HTTPCACHE_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH, e.g. 10000 for 1.0.0. */
#define HTTPCACHE_VERSION_NUMBER \
  (HTTPCACHE_VERSION_MAJOR * 10000 + HTTPCACHE_VERSION_MINOR * 100 + HTTPCACHE_VERSION_PATCH)
#define HTTPCACHE_VERSION_STRING "1.7.0"
/** The ABI version: the N of libhttpcache.so.N. Bumped only on ABI breaks. */
#define HTTPCACHE_SOVERSION 1

/* Limits, checked on every call that takes a key or a namespace. */
/** Longest namespace, in bytes. */
#define HTTPCACHE_MAX_NAMESPACE_BYTES 128
/** Longest key (after its template is filled, before the namespace is added), in bytes. */
#define HTTPCACHE_MAX_KEY_BYTES 4096
/** Longest TTL, in seconds (10 years): a policy giving more is refused with
 *  HTTPCACHE_EINVALID before any I/O (since v1.1). */
#define HTTPCACHE_MAX_TTL_SECONDS 315360000

HTTPCACHE_BEGIN_DECL

/** The version of the loaded library, as HTTPCACHE_VERSION_NUMBER. Since v1.0. */
HTTPCACHE_EXTERN(int) httpcache_version_number(void);
/** The version of the loaded library, e.g. "1.0.0"; static storage. Since v1.0. */
HTTPCACHE_EXTERN(const char *) httpcache_version_string(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/** Status codes. Values are fixed forever; new codes are appended. */
typedef enum httpcache_error_code {
  HTTPCACHE_OK = 0,         /**< Success. */
  HTTPCACHE_ERROR = -1,     /**< Generic or internal error. */
  HTTPCACHE_ENOTFOUND = -2, /**< Cache miss: no live entry under the key. */
  HTTPCACHE_EINVALID = -3,  /**< Invalid argument: NULL, empty or over-long key, bad URL, bad zone, TTL <= 0... */
  HTTPCACHE_ENOMEM = -4,    /**< Out of memory. */
  HTTPCACHE_EBUFS = -5,     /**< A caller-supplied buffer is too small. */
  HTTPCACHE_EUSER = -6,     /**< A callback failed without giving its own negative code. */
  HTTPCACHE_EBACKEND = -7,  /**< The backend failed: connection refused, I/O error, error reply. */
  HTTPCACHE_ETIMEOUT = -8,  /**< The backend did not answer within the configured timeout. */
  HTTPCACHE_EVERSION = -9,  /**< An options struct has a version this library does not know. */
  HTTPCACHE_ECANCELED = -10, /**< A non-blocking request was canceled because its context was freed. */
  HTTPCACHE_ESTALE = -11     /**< A stale entry the caller should recompute (see "Stale entries"; since v1.4). */
} httpcache_error_code;

/** Details of the last failure on this thread. */
typedef struct httpcache_error {
  int code;            /**< The httpcache_error_code returned by the failing call. */
  const char *message; /**< Human-readable, never NULL, without credentials. */
} httpcache_error;

/**
 * The last error that occurred on the calling thread.
 *
 * @return never NULL. Library-owned and thread-local; valid until the next
 *         httpcache call on the same thread. After a success, code is
 *         HTTPCACHE_OK and message is "no error", with two exceptions that
 *         say why the backend failed although the call did not:
 *         httpcache_cache_get_or_compute() that failed open (outcome
 *         HTTPCACHE_OUTCOME_UNCACHED, code HTTPCACHE_EBACKEND), and inside an
 *         async completion callback whose status is HTTPCACHE_EBACKEND or
 *         HTTPCACHE_ETIMEOUT.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(const httpcache_error *) httpcache_error_last(void);

/**
 * A short static description of a status code, e.g. "cache miss". Needs no
 * handle; unknown codes give "unknown error". Since v1.0.
 */
HTTPCACHE_EXTERN(const char *) httpcache_strerror(int code);

/* ------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------ */

/**
 * Bytes allocated by the library and owned by the caller.
 * Initialize with HTTPCACHE_BUF_INIT; release with httpcache_buf_dispose().
 * `ptr` is always followed by a NUL byte (not counted in `size`) so text
 * values can be printed, but the bytes themselves may contain NULs.
 */
typedef struct httpcache_buf {
  char *ptr;   /**< The bytes, or NULL when empty and never filled. */
  size_t size; /**< Number of bytes at ptr. */
} httpcache_buf;

#define HTTPCACHE_BUF_INIT {NULL, 0}

/** Frees buf->ptr and resets buf to empty. NULL or an empty buf is a no-op. Since v1.0. */
HTTPCACHE_EXTERN(void) httpcache_buf_dispose(httpcache_buf *buf);

/** A borrowed byte range, used for template arguments. */
typedef struct httpcache_slice {
  const void *data; /**< May be NULL only when size is 0. */
  size_t size;
} httpcache_slice;

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

#define HTTPCACHE_OPTIONS_VERSION 3

/** httpcache_options.ssl_cert_reqs: whether the server's certificate is verified. */
#define HTTPCACHE_SSL_CERT_REQUIRED 0 /**< Default: chain and host name checked. */
#define HTTPCACHE_SSL_CERT_NONE 1     /**< No verification at all (a test server; never in production). */
/** httpcache_options.ssl_check_hostname: whether the certificate must name the host. */
#define HTTPCACHE_SSL_CHECK_HOSTNAME 0    /**< Default. */
#define HTTPCACHE_SSL_NO_CHECK_HOSTNAME 1 /**< The chain is still verified. */

/** httpcache_options.near_cache (version 3). */
#define HTTPCACHE_NEAR_CACHE_ON 1
#define HTTPCACHE_NEAR_CACHE_OFF 2 /**< Off, whatever HTTPCACHE_NEAR_CACHE in the environment says. */

/**
 * Options of httpcache_cache_open(). Zero in a field means "the default".
 * Always initialize with HTTPCACHE_OPTIONS_INIT or httpcache_options_init():
 * fields are only ever appended, and `version` tells the library which exist.
 * Timeouts given in the URL's query string override these.
 */
typedef struct httpcache_options {
  unsigned int version;        /**< HTTPCACHE_OPTIONS_VERSION. */
  uint32_t connect_timeout_ms; /**< Redis connect timeout; default 1000. */
  uint32_t command_timeout_ms; /**< Redis per-command timeout; default 1000. */
  uint32_t pool_size;          /**< Idle Redis connections kept per handle; default 8 (concurrent calls may open more; the extras are closed after use). */
  uint64_t memory_max_entries; /**< memory://: entry limit (LRU eviction); default 100000. */
  uint64_t memory_max_bytes;   /**< memory://: bytes of keys+values (LRU eviction); default 64 MiB. */
  uint64_t max_value_bytes;    /**< Largest value stored; larger ones are not stored (EINVALID from set); default 8 MiB. */
  uint32_t breaker_failures;   /**< Consecutive backend failures that open the circuit breaker; default 3. */
  uint32_t breaker_cooldown_ms; /**< How long an open breaker skips the backend before one probe; default 500. */
  uint32_t singleflight_wait_ms; /**< Longest wait for a concurrent caller computing the same key; default 5000. */
  uint32_t lock_ttl_ms;        /**< Redis: cross-process stampede lock held while computing, in ms; 0 (default) = off. */
  /* Since version 2 (v1.2): TLS for rediss://, rediss+cluster:// and rediss+sentinel:// URLs,
   * named as redis-py names them. The same names in the URL's query override these; they are
   * ignored for URLs without TLS. Strings are copied by httpcache_cache_open(); NULL = not set. */
  const char *ssl_ca_certs;        /**< PEM file of the CAs to trust; with ssl_ca_path NULL too: the system's CAs. */
  const char *ssl_ca_path;         /**< Directory of hashed CA certificates (c_rehash). */
  const char *ssl_certfile;        /**< Client certificate chain (PEM) for servers that require one; with ssl_keyfile. */
  const char *ssl_keyfile;         /**< The client certificate's private key (PEM). */
  const char *ssl_server_hostname; /**< Name checked in the certificate and sent as SNI; NULL: the URL's host. */
  uint32_t ssl_cert_reqs;          /**< HTTPCACHE_SSL_CERT_REQUIRED (default) or HTTPCACHE_SSL_CERT_NONE. */
  uint32_t ssl_check_hostname;     /**< HTTPCACHE_SSL_CHECK_HOSTNAME (default) or HTTPCACHE_SSL_NO_CHECK_HOSTNAME. */
  /* Since version 3 (v1.4): the near tier, an in-process copy of the entries a Redis backend
   * (one server, Sentinel, Cluster; with or without TLS) served, kept coherent by the server:
   * CLIENT TRACKING in BCAST mode on the namespace's keys, over one extra connection per node
   * (its user needs CLIENT and SUBSCRIBE). A near hit needs no round trip. A change made by any
   * client (another process, redis-cli, an expiry, an eviction) drops the copy when the server
   * reports it, within a few milliseconds on loopback; writes through this handle drop it at
   * once. SWAPDB is the exception: Redis reports nothing for it (copies then last until
   * near_max_age_ms). While a report link is down or unanswered (PING every 250 ms, answered within
   * command_timeout_ms) the tier is emptied and serves nothing, and so after FLUSHDB/FLUSHALL
   * and a change of the nodes (failover, resharding onto a new node). Ignored for memory://.
   * Stats: near_hits, near_invalidations, near_flushes (httpcache_stats version 2). */
  uint32_t near_cache;             /**< HTTPCACHE_NEAR_CACHE_ON or HTTPCACHE_NEAR_CACHE_OFF; 0 (default): off, unless the environment variable HTTPCACHE_NEAR_CACHE is "1" (a deployment's switch for every handle of a process). */
  uint64_t near_max_bytes;         /**< Bytes of keys and values it keeps (LRU eviction); default 32 MiB. A value over an eighth of it is never kept. */
  uint32_t near_max_age_ms;        /**< How long it keeps an entry at most (never past the entry's TTL in Redis); default 60000. */
} httpcache_options;

#define HTTPCACHE_OPTIONS_INIT {HTTPCACHE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0}

/**
 * Fills opts with the defaults of `version` (pass HTTPCACHE_OPTIONS_VERSION):
 * `version` set and every other field 0, which means "the default" given next
 * to each field above (the same as HTTPCACHE_OPTIONS_INIT). Only the fields of
 * that version are written: a program built against version 1 passes 1.
 * @return HTTPCACHE_OK, HTTPCACHE_EINVALID (opts NULL), HTTPCACHE_EVERSION.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_options_init(httpcache_options *opts, unsigned int version);

/* ------------------------------------------------------------------------
 * TTL policies
 * ------------------------------------------------------------------------ */

/** How an entry's time to live is chosen. Values are fixed forever. */
typedef enum httpcache_ttl_kind {
  HTTPCACHE_TTL_SECONDS = 1,     /**< `seconds` seconds. */
  HTTPCACHE_TTL_END_OF_DAY = 2,  /**< Until the next local midnight in the handle's zone. */
  HTTPCACHE_TTL_END_OF_WEEK = 3, /**< Until the next Monday 00:00 local in the handle's zone. */
  HTTPCACHE_TTL_CALLBACK = 4     /**< What `callback(payload)` returns, in seconds. */
} httpcache_ttl_kind;

/**
 * Computes a TTL in seconds for HTTPCACHE_TTL_CALLBACK. Called on the thread
 * that stores the entry, with no library lock held; may call the library.
 * @return seconds (> 0), or a value <= 0, which fails httpcache_cache_set()
 *         with EINVALID; httpcache_cache_get_or_compute() then returns the
 *         computed value uncached (HTTPCACHE_OUTCOME_UNCACHED).
 */
typedef int64_t (*httpcache_ttl_cb)(void *payload);

/** A TTL policy: a plain value the caller fills; the library keeps no pointer to it. */
typedef struct httpcache_ttl_policy {
  int kind;                  /**< An httpcache_ttl_kind (an int, so any value can be checked safely). */
  int64_t seconds;           /**< For HTTPCACHE_TTL_SECONDS; 1..HTTPCACHE_MAX_TTL_SECONDS. */
  httpcache_ttl_cb callback; /**< For HTTPCACHE_TTL_CALLBACK. */
  void *payload;             /**< Passed to callback. */
} httpcache_ttl_policy;

/**
 * The pure TTL computation: seconds from `now_ms` until the policy expires an
 * entry, in time zone `tz` (IANA name; NULL or "" means UTC).
 *
 * End of day is the first instant of the next local day (the next midnight,
 * or the first valid time after it where a DST jump skips midnight); end of
 * week is the first instant of the next Monday. Both are strictly after now,
 * rounded up to whole seconds, and never below 1.
 *
 * @param[out] out_seconds the TTL, >= 1.
 * @param policy the policy; HTTPCACHE_TTL_CALLBACK calls its callback.
 * @param tz an IANA zone name such as "Europe/London".
 * @param now_ms milliseconds since the Unix epoch.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID for a NULL argument, an unknown
 *         zone, an unknown kind or seconds <= 0; the callback's result is
 *         checked the same way.
 * Thread-safe. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_ttl_compute(int64_t *out_seconds, const httpcache_ttl_policy *policy,
                                            const char *tz, int64_t now_ms);

/**
 * The release of the IANA time zone database that end of day and end of week
 * are computed with, e.g. "2024a": ICU's own copy of the zones, which is
 * updated separately from the operating system's /usr/share/zoneinfo.
 *
 * Built against the system's ICU (the Debian packages, a source build), that
 * is the system ICU's data. The Python wheels carry a private ICU with its
 * data trimmed to the zones and read no other ICU data; in both, a directory
 * named by the environment variable ICU_TIMEZONE_FILES_DIR that holds a newer
 * zoneinfo64.res takes precedence (README "Time zone data").
 *
 * @return static storage, never NULL; "" if ICU cannot tell.
 * Thread-safe. Since v1.6.
 */
HTTPCACHE_EXTERN(const char *) httpcache_tzdata_version(void);

/* ------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------ */

/**
 * Fills a key template: each `{}` field takes the next argument, `{N}` the
 * Nth (the two styles cannot mix); `{{` and `}}` are literal braces. Only
 * these plain fields are allowed: a format spec (`{:.2}`, `{:>5}`) could give
 * different values one key, so it is refused. The number of fields must equal
 * nargs and no argument may be empty, so a missing value never collapses a
 * per-user key into a shared one.
 *
 * Arguments are binary-safe and are percent-encoded (`%XX`, upper-case hex)
 * except for the bytes `A-Z a-z 0-9 _ -`, which are copied: the encoding is
 * injective and a filled-in value can never contain a separator of the
 * template (`:`, `.`, `/`, `{`, `%`, ...). So in one namespace no value can
 * make a template's key equal the key of a template with other literal parts
 * and another value (`orders:{}` with `alice:summary` gives
 * `orders:alice%3Asummary`, never `orders:{}:summary`'s key for `alice`).
 * Plain ids keep their text (`b.logged_in.{}` with `112358` gives
 * `b.logged_in.112358`). What the encoding cannot rule out is two templates
 * of one namespace matching one key by their own literals (a fixed `a.b`
 * beside `a.{}` with the value `b`, or `{}` beside anything): keep such
 * templates in different namespaces or give them different literal parts
 * (the Python decorators refuse such a pair at decoration). A value may fill
 * at most a third of HTTPCACHE_MAX_KEY_BYTES if every byte is encoded.
 *
 * @param[out] out the key bytes; caller disposes with httpcache_buf_dispose().
 * @param tmpl the template bytes, tmpl_len long.
 * @param args nargs argument slices (may be NULL when nargs is 0).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID for NULL pointers, a malformed
 *         template, a field/argument count mismatch, an empty result or one
 *         over HTTPCACHE_MAX_KEY_BYTES.
 * Thread-safe. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_key_format(httpcache_buf *out, const char *tmpl, size_t tmpl_len,
                                           const httpcache_slice *args, size_t nargs);

/* ------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------ */

/** A cache handle: a backend, a namespace and a time zone. Opaque. */
typedef struct httpcache_cache httpcache_cache;

/**
 * Opens a cache handle.
 *
 * URLs:
 *  - NULL, "" or `memory://`: the embedded in-process store (per handle). It
 *    lives in one process: with several worker processes each has its own
 *    copy, computes every entry once for itself, and an invalidation reaches
 *    only the process that made it (the others serve the old value until its
 *    TTL). For several workers of one host, use lmdb://.
 *  - `lmdb:///abs/dir[?max_bytes=N]` (since v1.5): a store shared by every
 *    process of the host that opens the same directory (created, mode 0700,
 *    when missing), built on LMDB: a hit reads a memory map (no server, no
 *    I/O), a write commits atomically, so entries, invalidations, leases and
 *    the lock_ttl_ms lock are seen by every process at once, and a process
 *    killed mid-write leaves every committed entry intact. max_bytes (default
 *    256 MiB, 1 MiB to 1 TiB) bounds what the entries and their indexes
 *    occupy; the file may grow to twice that plus 32 MiB. When full, writes
 *    evict: expired entries first, then the least recently used
 *    (approximately: a read of an entry in the older half queues it, and the reading
 *    process's next write re-stamps it). A value over max_bytes/8 is not stored. Every
 *    process must open a directory with the same max_bytes (another value is
 *    HTTPCACHE_EINVALID, naming both). Commits are not fsync'ed: after an OS
 *    crash the store starts empty (the boot id is recorded), never torn.
 *    Expiry follows the wall clock. A directory another uid owns, or that
 *    group or others may write, is HTTPCACHE_EINVALID. Every process of a
 *    store must be in one PID namespace (containers sharing it: the host's).
 *    Move to Redis when processes on several hosts must share entries. Files: DIR/data.mdb, DIR/lock.mdb, DIR/boot_id,
 *    DIR/open.lock.
 *  - `redis://[[user]:password@]host[:port][/db][?connect_timeout_ms=N&command_timeout_ms=N]`
 *  - `rediss://...` the same over TLS (since v1.2), with the query settings
 *    ssl_ca_certs=FILE, ssl_ca_path=DIR, ssl_certfile=FILE, ssl_keyfile=FILE
 *    (client certificate for servers that require one), ssl_cert_reqs=required|none,
 *    ssl_check_hostname=true|false, ssl_server_hostname=NAME (checked in the
 *    certificate and sent as SNI); paths percent-encoded. They override the
 *    options' ssl_* fields. Verification is on by default: the chain against
 *    ssl_ca_certs/ssl_ca_path (or the system's CAs: OpenSSL's defaults,
 *    SSL_CERT_FILE/SSL_CERT_DIR, and where OpenSSL's own locations do not
 *    exist on the host (since v1.6), the distribution's CA bundle, e.g.
 *    /etc/pki/tls/certs/ca-bundle.crt) and the host name (or IP
 *    address) of the URL; TLS 1.2 at least. A refused handshake is an outage
 *    like any other: calls fail open, with the reason in the error message
 *    (e.g. "certificate verify failed: hostname mismatch").
 *  - `redis+cluster://host:port[,host:port...]` (seed nodes), `rediss+cluster://` over TLS.
 *  - `redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]`
 *    (since v1.2; sentinels' default port 26379), `rediss+sentinel://` over TLS
 *    (to the sentinels and the master). The master is asked of the sentinels in
 *    turn (SENTINEL get-master-addr-by-name); a background thread per handle
 *    listens for +switch-master and asks again when a call finds the master
 *    gone or read-only, so a failover is followed while calls fail open. The
 *    credentials and db are the master's; the sentinels are asked without AUTH.
 *  - `unix:///path/to.sock[?db=N&connect_timeout_ms=N&command_timeout_ms=N]`
 * A Redis handle connects lazily: open succeeds even if the server is down,
 * and each call reconnects by itself when the server comes back.
 *
 * The namespace is 1..HTTPCACHE_MAX_NAMESPACE_BYTES bytes of letters, digits
 * and `_ - .`: it cannot contain `:`, so `ns:key` never collides with another
 * namespace's keys. NULL means "httpcache".
 *
 * @param[out] out the new handle, or NULL on failure (nothing to free then).
 * @param url the backend URL (see above).
 * @param namespace_ the key namespace.
 * @param tz IANA time zone for end-of-day/week policies; NULL means "UTC".
 * @param opts options, or NULL for the defaults.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad URL, unknown scheme, bad
 *         namespace, unknown zone); HTTPCACHE_EVERSION; HTTPCACHE_ENOMEM.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_open(httpcache_cache **out, const char *url, const char *namespace_,
                                           const char *tz, const httpcache_options *opts);

/** Closes a handle and its connections. NULL is a no-op. No call may be in flight on it. Since v1.0. */
HTTPCACHE_EXTERN(void) httpcache_cache_free(httpcache_cache *cache);

/** The handle's namespace; borrowed, valid while the handle lives. Since v1.0. */
HTTPCACHE_EXTERN(const char *) httpcache_cache_namespace(const httpcache_cache *cache);

/** The handle's time zone ID, e.g. "Europe/London"; borrowed, valid while the handle lives. Since v1.0. */
HTTPCACHE_EXTERN(const char *) httpcache_cache_timezone(const httpcache_cache *cache);

/**
 * The backend key for `key`: `namespace:key`.
 * @param[out] out the full key; caller disposes.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL, empty or over-long key).
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_full_key(httpcache_buf *out, const httpcache_cache *cache,
                                               const void *key, size_t key_len);

/**
 * httpcache_ttl_compute() in the handle's time zone. Thread-safe. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_ttl(int64_t *out_seconds, const httpcache_cache *cache,
                                          const httpcache_ttl_policy *policy, int64_t now_ms);

/* ------------------------------------------------------------------------
 * fork()
 *
 * A handle used before fork() (a pre-forking server warming its cache, a
 * warm-up at import, multiprocessing's fork start method) keeps working in
 * the parent and in the child, since v1.1. Every Redis connection belongs
 * to the process that opened it: the child never reads or writes one it
 * inherited (sharing it would hand each process the other's replies, i.e.
 * other keys' values). On its first use in the child, an inherited
 * connection is dropped without any I/O (the child closes its copy of the
 * descriptor; nothing is sent, so the parent's connection is untouched) and
 * the child connects its own. This holds for the blocking pool, for
 * non-blocking contexts (one server or a cluster) and for a cluster's slot
 * map, whose background refresher thread, absent in the child, is started
 * again there when needed. The library's own locks are held across fork()
 * (pthread_atfork), so a child never inherits one held by a thread that
 * does not exist in it. memory:// needs nothing: the child has a copy of
 * the store, from then on separate from the parent's. lmdb:// follows LMDB's
 * rule (an environment is never used after fork): the child's first call
 * closes its inherited copy and opens the store again; both keep sharing it.
 *
 * Non-blocking contexts in the child: open new ones, on the child's own
 * event loop, and free the inherited ones (httpcache_async_free() does no
 * I/O there either). An inherited context still works if used: its first
 * call drops the inherited connection (requests pending at the fork then
 * complete with HTTPCACHE_ECANCELED, and the watch callback is told to stop
 * watching the old descriptor) and connects anew. But a host loop's own
 * state, such as an epoll descriptor, is usually shared with the parent
 * after fork, so a child should not keep using the parent's loop.
 *
 * Not supported: fork() from inside a library callback (compute, TTL,
 * watch or completion callbacks), and a fork() racing
 * httpcache_cache_free() of the same handle in another thread.
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Blocking calls. All are safe from many threads at once on one handle.
 * A key is `key_len` bytes (binary-safe) without the namespace, which the
 * library adds; it must be 1..HTTPCACHE_MAX_KEY_BYTES bytes.
 * ------------------------------------------------------------------------ */

/**
 * Looks a key up: one round trip to Redis (value and remaining TTL together).
 *
 * @param[out] value the stored bytes; caller disposes. Untouched on a miss.
 * @param[out] ttl_ms remaining time to live in milliseconds (may be NULL).
 * @return HTTPCACHE_OK (hit); HTTPCACHE_ENOTFOUND (miss); HTTPCACHE_EINVALID;
 *         HTTPCACHE_EBACKEND or HTTPCACHE_ETIMEOUT (backend down: treat as a miss).
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_get(httpcache_buf *value, int64_t *ttl_ms, httpcache_cache *cache,
                                          const void *key, size_t key_len);

/**
 * httpcache_cache_get() answered from this process alone: the near tier
 * (httpcache_options.near_cache) or the embedded store (memory://). Never does
 * any I/O and never blocks, so an event loop may call it before starting a
 * non-blocking get. A tagged entry, a stale one, one being computed
 * (a lease), or a key this process does not hold is not answered here.
 *
 * @param[out] value the stored bytes; caller disposes. Untouched unless OK.
 * @param[out] ttl_ms remaining time to live in milliseconds (may be NULL).
 * @return HTTPCACHE_OK (hit, counted as one); HTTPCACHE_ENOTFOUND (not answered
 *         here: the entry may still be in Redis, ask httpcache_cache_get() or
 *         httpcache_async_get()); HTTPCACHE_EINVALID.
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_peek(httpcache_buf *value, int64_t *ttl_ms, httpcache_cache *cache,
                                           const void *key, size_t key_len);

/**
 * httpcache_cache_peek() for a caller that keeps what it made of a value (a
 * decoded object, say): each answer names the value held with a version,
 * and a call that gives that version as known_version learns that the value
 * is unchanged without a copy of its bytes. A version is unique in the
 * process (a new value, even with the same bytes, gets a new one); only the
 * stores that keep values in this process's memory give them (the near tier,
 * memory://); lmdb:// and entries with stale windows give 0 (none).
 *
 * @param[out] value the stored bytes; caller disposes. Set to {NULL, 0} when
 *             the value is unchanged (releasing bytes it held); untouched
 *             unless OK. May be NULL when known_version is not 0: the call
 *             then answers OK only for the unchanged value, and anything else
 *             (another value, none) is ENOTFOUND, not counted as a hit.
 * @param[out] ttl_ms remaining time to live in milliseconds (may be NULL).
 * @param[out] version the value's version, 0 for none (may be NULL).
 * @param known_version 0, or a version this call answered before for key.
 * @return as httpcache_cache_peek(); an unchanged value is a hit (OK, counted).
 * Thread-safe. Since v1.7.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_peek_version(httpcache_buf *value, int64_t *ttl_ms, uint64_t *version,
                                                   httpcache_cache *cache, const void *key, size_t key_len,
                                                   uint64_t known_version);

/**
 * Stores a value (copied) with the policy's TTL: one command with the expiry.
 *
 * @param[out] ttl_seconds the TTL applied (may be NULL).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad key, bad policy, value over
 *         max_value_bytes: nothing is stored); HTTPCACHE_EBACKEND; HTTPCACHE_ETIMEOUT.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_set(int64_t *ttl_seconds, httpcache_cache *cache, const void *key,
                                          size_t key_len, const void *value, size_t value_len,
                                          const httpcache_ttl_policy *policy);

/**
 * Deletes keys in one round trip. Missing keys are not an error.
 *
 * An invalidation sticks (fencing, since v1.1): a get_or_compute computation
 * of a key that began before this call returned never stores its value after
 * it, on any backend and from any process, and no caller arriving after it
 * receives such a value (single-flight waiters included). The DEL removes
 * the key's lease placeholder (see httpcache_cache_get_or_compute()), which
 * is what refuses the late store.
 *
 * @param[out] deleted how many keys existed (may be NULL).
 * @param keys, key_lens nkeys keys and their lengths; every key is checked
 *        before anything is deleted.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID; HTTPCACHE_EBACKEND; HTTPCACHE_ETIMEOUT.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_invalidate(size_t *deleted, httpcache_cache *cache, const void *const *keys,
                                                 const size_t *key_lens, size_t nkeys);

/** What a compute callback tells the library about its result. */
typedef enum httpcache_compute_flags {
  HTTPCACHE_COMPUTE_STORE = 0,         /**< Store the result (the default). */
  HTTPCACHE_COMPUTE_DONT_STORE = 1u << 0 /**< Return the result but do not cache it. */
} httpcache_compute_flags;

/**
 * Produces a value on a miss. Runs on the caller's thread, with no library
 * lock held; it may call the library (but should not free the handle).
 *
 * @param[out] value fill with httpcache_buf_set() (the library disposes it).
 * @param[out] flags set HTTPCACHE_COMPUTE_DONT_STORE to decline storing.
 * @return 0 on success; any nonzero value is a failure returned unchanged by
 *         httpcache_cache_get_or_compute() (positive values are returned as
 *         HTTPCACHE_EUSER), and nothing is stored.
 */
typedef int (*httpcache_compute_cb)(httpcache_buf *value, uint32_t *flags, void *payload);

/**
 * Copies bytes into a buffer, replacing what it held (use it in compute callbacks).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID; HTTPCACHE_ENOMEM. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_buf_set(httpcache_buf *buf, const void *data, size_t size);

/** How httpcache_cache_get_or_compute() got its value. */
typedef enum httpcache_outcome {
  HTTPCACHE_OUTCOME_HIT = 1,       /**< Served from the cache. */
  HTTPCACHE_OUTCOME_STORED = 2,    /**< Computed and stored. */
  HTTPCACHE_OUTCOME_UNCACHED = 3,  /**< Computed, not stored (declined, too large, or backend down). */
  HTTPCACHE_OUTCOME_COALESCED = 4, /**< A concurrent caller on this handle computed it; shared (single-flight); ttl_ms 0 if its store was refused (fencing). */
  HTTPCACHE_OUTCOME_STALE = 5      /**< An entry past its freshness, served within its stale windows; ttl_ms is minus its staleness (since v1.4). */
} httpcache_outcome;

/**
 * Returns the cached value, or computes, stores and returns it.
 *
 * On a hit the callback is not called. On a miss it is called exactly once;
 * its value is stored with the policy's TTL and returned. If the backend
 * fails (down, timeout) the call still succeeds: the callback runs and its
 * value is returned uncached (fail open), and httpcache_error_last() says why
 * (code HTTPCACHE_EBACKEND; else it is cleared).
 * After breaker_failures consecutive outages (unreachable, timeout, AUTH
 * refused, a server still loading) a circuit breaker skips the backend for a
 * cool-down, so a dead server adds almost nothing per call. An error reply
 * to one request from a server that is up (WRONGTYPE, an ACL refusal of one
 * command or key, a database that does not exist) is an error of that call
 * (counted in `errors`), never an outage: the breaker stays closed.
 *
 * Single-flight: concurrent callers of the same cold key on one handle share
 * one computation: the first computes, the others wait (at most
 * singleflight_wait_ms) and get its value (HTTPCACHE_OUTCOME_COALESCED). If
 * it fails, every waiter gets the same failure (its status and message,
 * as Go's singleflight does; since v1.1). If it declines to store, or is too
 * slow, each waiter computes itself, uncached.
 * With lock_ttl_ms set, the computing caller also holds a Redis lock
 * (`SET httpcache-lock!<ns>:<key> <token> NX PX lock_ttl_ms`, released by token),
 * so callers in other processes wait for its stored value instead of
 * computing too; a crashed holder blocks nobody past lock_ttl_ms.
 *
 * Fencing (since v1.1): a miss takes the key's lease before computing: a
 * placeholder holding a random token is stored under the key itself
 * (`SET <ns>:<key> <placeholder> NX PX lease`, lease = lock_ttl_ms, or 30 s
 * when 0; one extra round trip on a miss, none on a hit). The value replaces
 * the placeholder only while it is still there (a script: EVAL), and an
 * invalidation deletes it, so a computation that began before an
 * invalidation never stores after it; its own caller (and the waiters that
 * arrived before the invalidation) still get its value, as
 * HTTPCACHE_OUTCOME_UNCACHED. A caller that finds another holder's
 * placeholder treats it as a miss and computes without storing (with
 * lock_ttl_ms, it waits for the holder first). A computation that runs longer
 * than the lease is not stored. Lookups (httpcache_cache_get() too) never
 * return a placeholder; values starting with its reserved prefix (a NUL byte
 * and "httpcache-lease") are refused with HTTPCACHE_EINVALID by the setters.
 * memory:// follows the same rules in process, lmdb:// across the processes of
 * the host (each lease is a write transaction). Redis ACL: the commands of a
 * hit (GET, PTTL), SET, DEL and EVAL.
 *
 * Re-entrancy (since v1.1): a compute callback that calls this function on
 * its own key and handle, on the same thread, does not wait for itself: the
 * inner call computes at once and returns HTTPCACHE_OUTCOME_UNCACHED.
 *
 * @param[out] value the value; caller disposes.
 * @param[out] ttl_ms remaining TTL in ms on a hit, the TTL applied on a store,
 *             0 when uncached, -1 when uncached because of fencing (the
 *             lease was voided, another caller holds it, or this call computed
 *             alone beside a flight; since v1.1), never an outage (may be NULL).
 * @param[out] outcome how the value was obtained (may be NULL).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad key or policy: the callback is
 *         not called); the callback's own failure code (nothing is stored).
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_get_or_compute(httpcache_buf *value, int64_t *ttl_ms,
                                                     httpcache_outcome *outcome, httpcache_cache *cache,
                                                     const void *key, size_t key_len,
                                                     const httpcache_ttl_policy *policy,
                                                     httpcache_compute_cb compute, void *payload);

/* ------------------------------------------------------------------------
 * Tags (since v1.4): invalidating groups of entries
 *
 * An entry stored under tags misses once any of them is invalidated. Each tag
 * has a generation, a random value under its own key
 * (`httpcache-tag!<ns>:<tag>`, kept 30 days from its creation or last
 * invalidation); a tagged entry is stored inside an envelope holding the
 * generation of each of its tags as read before its computation began, and
 * invalidating a tag gives it a new generation: one SET per tag, whatever the
 * number of entries, with no KEYS or SCAN, on one server, Sentinel or a
 * cluster. A tagged lookup reads the entry and its tags' generations in one
 * pipeline (GET, PTTL, MGET): on one server (or Sentinel) a hit costs the same
 * round trip as an untagged one; on a cluster the tags live on other nodes (the non-blocking
 * context asks them at the same time; the blocking calls one after another).
 * A lookup creates a generation that does not exist yet (SET NX), so an entry
 * is never stamped with "none": a tag key that expires or is evicted makes its
 * entries miss rather than bring back invalidated ones.
 *
 * Tags are given in an httpcache_call (httpcache_cache_get_or_compute_ex(),
 * httpcache_async_get_ex(), httpcache_async_set_ex()).
 * A tagged call accepts only entries stamped with each of its tags (an entry
 * stored without them, earlier or by another writer, is a miss for it); any
 * lookup (httpcache_cache_get() too) refuses an entry with a stale stamp, and
 * unwraps the envelope, so readers always get the value itself. Values stored
 * with the setters may not begin with the envelope's reserved prefix (a NUL
 * byte and "httpcache-tags"). A computation that began before a tag's
 * invalidation is stamped with the old generation, so it is never served after
 * it. Tags are 1..1024 bytes (any bytes), at most 32 per call; duplicates
 * count once. Redis ACL: MGET besides the untagged calls' SET, GET, PTTL and EVAL.
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Stale entries (since v1.4): stale-while-revalidate and stale-if-error
 *
 * A value stored with windows (httpcache_call, or httpcache_compute_stale()
 * from inside the compute callback, e.g. from the response's own
 * Cache-Control) stays in the store for the longer window past its TTL, in an
 * envelope that says when it stops being fresh and its windows: readers need
 * no configuration to honour them. Past its freshness:
 *  - within stale-while-revalidate, callers get it as it is
 *    (HTTPCACHE_OUTCOME_STALE; ttl_ms is minus its staleness) while exactly one
 *    caller, across processes, recomputes: the one that takes the key's refresh
 *    lock (`httpcache-refresh!<ns>:<key>`, SET NX PX, released by token);
 *  - the refreshed value replaces the stale entry only while the entry is still
 *    the one that caller saw (an EVAL comparing it), so an invalidation in
 *    between wins;
 *  - within stale-if-error, a computation that fails is answered with the stale
 *    entry (HTTPCACHE_OUTCOME_STALE) instead of its failure.
 * An invalidated entry is never served stale: invalidation deletes it, and a
 * tag's invalidation makes it a miss. httpcache_cache_get() treats a stale
 * entry as a miss, and gives a fresh one's remaining freshness as its TTL.
 * Windows are 0..366 days in ms. Values stored with the setters may not begin
 * with the envelope's reserved prefix (a NUL byte and "httpcache-fresh").
 * ------------------------------------------------------------------------ */

/** The version of httpcache_call this header describes. */
#define HTTPCACHE_CALL_VERSION 1

/** What a call asks besides its key and TTL policy. Initialize with HTTPCACHE_CALL_INIT. */
typedef struct httpcache_call {
  uint32_t version;              /**< HTTPCACHE_CALL_VERSION. */
  const void *const *tags;       /**< ntags tags (see "Tags"), or NULL with ntags 0. */
  const size_t *tag_lens;
  size_t ntags;
  int64_t stale_while_revalidate_ms; /**< Windows of the values this call stores (see "Stale entries"). */
  int64_t stale_if_error_ms;
} httpcache_call;
#define HTTPCACHE_CALL_INIT {HTTPCACHE_CALL_VERSION, NULL, NULL, 0, 0, 0}

/**
 * httpcache_cache_get_or_compute() with tags and stale windows (call may be
 * NULL: as httpcache_cache_get_or_compute()). With tags, a hit must carry
 * each tag's current generation, and the stored value is stamped with them.
 * A stale entry is served, refreshed or used on failure as "Stale entries"
 * says (the refresh lock is one more round trip; the refreshing caller's own
 * call computes at once and returns its value).
 * @return as httpcache_cache_get_or_compute(); HTTPCACHE_EINVALID also for a
 *         bad tag list or window, HTTPCACHE_EVERSION for an unknown
 *         call->version (the callback is not called).
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_get_or_compute_ex(httpcache_buf *value, int64_t *ttl_ms,
                                                        httpcache_outcome *outcome, httpcache_cache *cache,
                                                        const void *key, size_t key_len,
                                                        const httpcache_ttl_policy *policy, const httpcache_call *call,
                                                        httpcache_compute_cb compute, void *payload);

/**
 * Sets the stale windows of the value the running compute callback produces
 * (on its thread), overriding the call's: for a value whose own metadata says
 * how stale it may be served (a response's Cache-Control stale-while-revalidate
 * and stale-if-error).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (a bad window, or no compute
 *         callback of this library running on this thread).
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_compute_stale(int64_t stale_while_revalidate_ms, int64_t stale_if_error_ms);

/**
 * Invalidates tags: every entry stamped with one of them misses from now on,
 * on every handle and process. One SET per tag. A get_or_compute computation
 * on this handle that began before this call is not shared with callers that
 * arrive after it.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad tag list: nothing is sent);
 *         HTTPCACHE_EBACKEND; HTTPCACHE_ETIMEOUT.
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_invalidate_tags(httpcache_cache *cache, const void *const *tags,
                                                      const size_t *tag_lens, size_t ntags);

/* ------------------------------------------------------------------------
 * HTTP response records
 *
 * Cached HTTP responses are stored in one record format, so that a response
 * cached by the Python package can be served by a C program and the other
 * way round. Version 1, line-oriented (any language reads it with a few
 * splits at '\n'):
 *
 *   HTTPCACHE-RESPONSE 1\n        magic and version
 *   <status> <header count>\n     decimal; status 100..999, at most 256 headers
 *   <media type>\n                may be empty
 *   <name>: <value>\n             one line per header, in order
 *   <body>                        every remaining byte, verbatim
 *
 * Header names are HTTP tokens (1..256 bytes); the media type and header
 * values may not contain CR, LF or NUL.
 *
 * Version 2 (since v1.3; version 1 stays readable) adds what HTTP validation
 * and Age need:
 *
 *   HTTPCACHE-RESPONSE 2\n                                 magic and version
 *   <status> <header count> <stored-at> <vary count>\n     stored-at: Unix milliseconds
 *   <media type>\n
 *   <name>: <value>\n                                     headers; an ETag always among them
 *   <name>: <value>\n                                     the request's values of the Vary headers
 *   <body>
 *
 * When the headers carry no ETag, the encoder adds a strong one from the body
 * (httpcache_http_strong_etag).
 * ------------------------------------------------------------------------ */

/** A decoded response record. Opaque; immutable, so it may be read from many threads. */
typedef struct httpcache_response httpcache_response;

/** One header of a record: borrowed byte ranges. */
typedef struct httpcache_header {
  httpcache_slice name;
  httpcache_slice value;
} httpcache_header;

/**
 * Encodes a response record.
 * @param[out] out the record bytes; caller disposes.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (status outside 100..999, a header
 *         name that is not a token, CR/LF/NUL in the media type or a value,
 *         more than 256 headers, NULL pointers).
 * Thread-safe. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_response_encode(httpcache_buf *out, int status, const char *media_type,
                                                size_t media_type_len, const httpcache_header *headers,
                                                size_t nheaders, const void *body, size_t body_len);

/**
 * Decodes a record. Any input is safe: what is not a well-formed version-1 or
 * version-2 record gives HTTPCACHE_EINVALID (treat it as a cache miss).
 * @param[out] out the decoded record (owns copies of its fields), NULL on failure;
 *             free with httpcache_response_free().
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID; HTTPCACHE_ENOMEM.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_response_decode(httpcache_response **out, const void *data, size_t len);

/**
 * Encodes a version-2 record: as httpcache_response_encode, plus the time it is
 * stored (Unix milliseconds, for Age and If-Modified-Since) and the request's values
 * of the headers its Vary names (vary may be NULL when nvary is 0). Adds
 * `etag: <httpcache_http_strong_etag of the body>` when headers have no ETag.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (as httpcache_response_encode, or a
 *         negative stored_at).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_response_encode_v2(httpcache_buf *out, int status, const char *media_type,
                                                   size_t media_type_len, const httpcache_header *headers,
                                                   size_t nheaders, const void *body, size_t body_len,
                                                   int64_t stored_at_unix_ms, const httpcache_header *vary,
                                                   size_t nvary);

/** The record's version (1 or 2), 0 for NULL. Since v1.3. */
HTTPCACHE_EXTERN(int) httpcache_response_version(const httpcache_response *response);

/** When a version-2 record was stored (Unix milliseconds); 0 for version 1 or NULL. Since v1.3. */
HTTPCACHE_EXTERN(int64_t) httpcache_response_stored_at(const httpcache_response *response);

/** The number of stored Vary request values (0 for version 1 or NULL). Since v1.3. */
HTTPCACHE_EXTERN(size_t) httpcache_response_vary_count(const httpcache_response *response);

/**
 * Stored Vary request value `index` (name and value), borrowed while the record lives.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments, index out of range).
 * Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_response_vary(httpcache_header *out, const httpcache_response *response,
                                              size_t index);

/** Frees a decoded record. NULL is a no-op. Since v1.0. */
HTTPCACHE_EXTERN(void) httpcache_response_free(httpcache_response *response);

/** The record's HTTP status (100..999), or 0 for NULL. Since v1.0. */
HTTPCACHE_EXTERN(int) httpcache_response_status(const httpcache_response *response);

/** The media type and body, borrowed while the record lives (empty slices for NULL). Since v1.0. */
HTTPCACHE_EXTERN(httpcache_slice) httpcache_response_media_type(const httpcache_response *response);
HTTPCACHE_EXTERN(httpcache_slice) httpcache_response_body(const httpcache_response *response);

/** The number of headers, 0 for NULL. Since v1.0. */
HTTPCACHE_EXTERN(size_t) httpcache_response_header_count(const httpcache_response *response);

/**
 * Header `index`, borrowed while the record lives.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments, index out of range).
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_response_header(httpcache_header *out, const httpcache_response *response,
                                                size_t index);

/* ------------------------------------------------------------------------
 * HTTP storage rules (RFC 9111), since v1.3
 *
 * Every producer of shared entries judges a response the same way by asking
 * the library. A response may be stored only when all of these hold:
 *  - status 2xx except 206 (a partial body must never answer a request
 *    without Range);
 *  - no Set-Cookie (a cookie is one client's);
 *  - Cache-Control: not no-store, not no-cache (it may not be served without
 *    revalidation, and recomputing it is the revalidation), not private
 *    unless the key is one user's (HTTPCACHE_HTTP_PER_USER); max-age=0,
 *    s-maxage=0 or an Expires already past is not stored;
 *  - Vary: none, except Authorization or Cookie under a per-user key, and
 *    the request headers the caller keys variants by
 *    (httpcache_http_judge_varied() with httpcache_http_variant()); any other
 *    Vary is declined: the key does not hold that header, so one variant would
 *    answer every request (RFC 9111 section 4.1 lets a cache decline to
 *    store). `Vary: *` always is.
 * The freshness its handler allows (s-maxage, this being a shared cache, else
 * max-age, else Expires minus now) caps the TTL it is stored for and what
 * clients are told.
 * ------------------------------------------------------------------------ */

/** Flag: the key holds one user's responses (private and Vary: Authorization/Cookie are allowed). */
#define HTTPCACHE_HTTP_PER_USER 0x1u

/** The storage verdict of a response (httpcache_http_judge). */
typedef struct httpcache_http_verdict {
  int storable;          /**< 1: it may be stored; 0: not (reason says why). */
  int64_t lifetime_s;    /**< Seconds of freshness its handler allows; -1 when it sets none. */
  char reason[160];      /**< Why it may not be stored (NUL-terminated; "" when storable),
                              e.g. "status 500", "it sets a cookie", "Cache-Control: private
                              under a key shared by users". */
} httpcache_http_verdict;

/**
 * Judges a response by the rules above. Header names are compared without
 * regard to case; several Cache-Control headers are read as one list.
 * @param now_unix_s the current time (seconds since the epoch), for Expires.
 * @param flags 0 or HTTPCACHE_HTTP_PER_USER.
 * @return HTTPCACHE_OK (the verdict is in *out); HTTPCACHE_EINVALID (NULL
 *         arguments, unknown flags).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_judge(httpcache_http_verdict *out, int status, const httpcache_header *headers,
                                           size_t nheaders, unsigned flags, int64_t now_unix_s);

/**
 * httpcache_http_judge() for a key that tells variants apart by the request
 * headers named in `varied` (see httpcache_http_variant()): a Vary naming
 * only those (and credentials under a per-user key) is accepted.
 * @return as httpcache_http_judge(); HTTPCACHE_EINVALID also for NULL varied with nvaried > 0.
 * Thread-safe. Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_http_judge_varied(httpcache_http_verdict *out, int status,
                                                  const httpcache_header *headers, size_t nheaders, unsigned flags,
                                                  int64_t now_unix_s, const httpcache_slice *varied, size_t nvaried);

/**
 * The bytes to append to a key so that each variant of a response (RFC 9111
 * section 4.1) has its own entry: for each header named in `varied` (any
 * case; sorted, lower-cased, duplicates dropped), "." then "v" and its
 * values in the request joined by ", " and percent-encoded as key fields are,
 * or "n" when the request has none. Two requests get the same bytes only when
 * their values of every varied header are equal, so a value cannot reach
 * another variant. The Python package appends a NUL byte, "vary" and these
 * bytes to a call's key (`@cache(vary=[...])`); a C program sharing its
 * entries does the same.
 * @param[out] out the bytes; caller disposes.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments, a name that is not an HTTP token).
 * Thread-safe. Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_http_variant(httpcache_buf *out, const httpcache_header *request_headers,
                                             size_t nheaders, const httpcache_slice *varied, size_t nvaried);

/**
 * The stale windows a response's own Cache-Control allows (RFC 5861:
 * stale-while-revalidate=N and stale-if-error=N), in seconds; -1 for each it
 * does not give (or when its Cache-Control does not parse). Several
 * Cache-Control headers are read as one list.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments).
 * Thread-safe. Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_http_stale(int64_t *while_revalidate_s, int64_t *if_error_s,
                                           const httpcache_header *headers, size_t nheaders);

/**
 * The Cache-Control a stored response is sent with when max_age_s seconds of
 * its entry are left: the handler's own directives (handler, NULL for none)
 * kept in order, max-age and s-maxage lowered to max_age_s (max-age added
 * when it had neither); under HTTPCACHE_HTTP_PER_USER, public is dropped and
 * private added.
 * @param[out] out the header value; caller disposes.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL out, unknown flags).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_cache_control(httpcache_buf *out, int64_t max_age_s, unsigned flags,
                                                   const char *handler, size_t handler_len);

/**
 * Parses an HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" or asctime "Sun Nov  6 08:49:37 1994").
 * @param[out] out seconds since the epoch.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (not an HTTP-date, NULL arguments).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_date_parse(int64_t *out, const char *text, size_t len);

/** Flags of httpcache_http_request_flags. */
#define HTTPCACHE_HTTP_REQUEST_NO_STORE 0x1u /**< Cache-Control: no-store: never store its response. */
#define HTTPCACHE_HTTP_REQUEST_NO_CACHE 0x2u /**< no-cache or max-age=0 (or Pragma: no-cache without
                                                  Cache-Control): revalidate a stored response. */

/**
 * What a request's own Cache-Control asks of a cache (RFC 9111 section 5.2.1).
 * Whether to honour no-cache is the caller's choice: a shared cache that does
 * lets any client force a recomputation (the Python decorators ignore it by
 * default); no-store is always honoured by not storing the response (a stored
 * one may still answer the request).
 * @param[out] out HTTPCACHE_HTTP_REQUEST_* flags.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_request_flags(unsigned *out, const httpcache_header *headers, size_t nheaders);

/**
 * The strong ETag of a body: `"` + the first 128 bits of its SHA-256 in
 * lower-case hex + `"`, the same for the same bytes in every process, restart
 * and language.
 * @param[out] out the quoted tag; caller disposes.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL out, or NULL body with a length).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_strong_etag(httpcache_buf *out, const void *body, size_t len);

/**
 * Whether a GET or HEAD request's preconditions (RFC 9110 section 13.2.2) make
 * a stored response's answer 304 Not Modified: If-None-Match (weak comparison,
 * lists, `*`) against the record's ETag; without it, If-Modified-Since against
 * its Last-Modified, or else the time a version-2 record was stored. A 304 is
 * sent with the headers a 200 would carry (ETag, Cache-Control, Expires, Vary,
 * Date) and no body.
 * @param[out] out 1: not modified; 0: send the response.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL arguments).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_not_modified(int *out, const httpcache_response *response,
                                                  const httpcache_header *request_headers, size_t nheaders);

/**
 * httpcache_http_not_modified from a stored response's validators alone, for
 * callers that keep them next to a decoded response: its ETag and Last-Modified
 * header values (NULL: none) and when it was stored (Unix ms; 0: unknown).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL out or request headers with a count).
 * Thread-safe. Since v1.3.
 */
HTTPCACHE_EXTERN(int) httpcache_http_not_modified_by(int *out, const char *etag, size_t etag_len,
                                                     const char *last_modified, size_t last_modified_len,
                                                     int64_t stored_at_unix_ms,
                                                     const httpcache_header *request_headers, size_t nheaders);

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

#define HTTPCACHE_STATS_VERSION 2

/** Counters since the handle was opened. Set `version` before the call; fields are only appended. */
typedef struct httpcache_stats {
  unsigned int version;     /**< HTTPCACHE_STATS_VERSION. */
  uint64_t hits;            /**< Lookups that found a live entry. */
  uint64_t misses;          /**< Lookups that found none. */
  uint64_t stores;          /**< Values stored. */
  uint64_t errors;          /**< Backend failures (unreachable, I/O, timeout, error reply). */
  uint64_t breaker_trips;   /**< Times the circuit breaker opened: once from closed, then again each
                                 time the probe after a cool-down failed (a long outage counts one
                                 trip per cool-down). */
  uint64_t breaker_skips;   /**< Backend calls skipped because it was open. */
  uint64_t uncached;        /**< Computed values not stored (declined, too large, backend down). */
  uint64_t oversized;       /**< Values over max_value_bytes. */
  uint64_t coalesced;       /**< Callers that waited for a concurrent caller's computation. */
  int breaker_open;         /**< 1 while the breaker is open, else 0. */
  /* Since version 2 (v1.4): the near tier (httpcache_options.near_cache). */
  uint64_t near_hits;          /**< Lookups the near tier answered without a round trip, one per call: counted in hits too, or in misses when the entry it held turned out to carry an invalidated tag. */
  uint64_t near_invalidations; /**< Keys the server reported changed. */
  uint64_t near_flushes;       /**< Times the near tier was emptied: a report link lost or unanswered, FLUSHDB, nodes changed. */
} httpcache_stats;

#define HTTPCACHE_STATS_INIT {HTTPCACHE_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Reads the handle's counters (blocking and non-blocking calls alike).
 * @param[out] out counters; out->version is HTTPCACHE_STATS_VERSION, or 1 (a program built
 *                 against v1.0-v1.3: the fields of version 2 are not written).
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID; HTTPCACHE_EVERSION. Thread-safe. Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_cache_stats(httpcache_stats *out, const httpcache_cache *cache);

/* ------------------------------------------------------------------------
 * Non-blocking calls, driven by a host event loop
 *
 * An httpcache_async context belongs to one thread (the loop's) and owns one
 * non-blocking connection. The library calls the watch callback whenever the
 * set of events it needs on its descriptor changes (events 0 means "stop
 * watching fd"). When the descriptor is ready, the host calls
 * httpcache_async_process() with the ready events; completion callbacks run
 * inside that call. The host should also call httpcache_async_process() with
 * events 0 when httpcache_async_timeout_ms() says a deadline has passed, so
 * that requests stuck on a stalled server fail with HTTPCACHE_ETIMEOUT.
 *
 * A lone request (nothing else pending on its connection) on an established
 * connection is written inside the start call; the watch callback hears only
 * the net change of interest, usually none, so the host just waits for
 * HTTPCACHE_EV_READ. Requests started while others are pending, or from inside
 * a completion, are queued and written when the host reports
 * HTTPCACHE_EV_WRITE.
 *
 * On memory:// and lmdb:// every request completes at once, inside the call
 * that starts it, and no descriptor is ever watched.
 *
 * Completion callbacks may start new requests; they must not free the context.
 * ------------------------------------------------------------------------ */

/** A non-blocking context. Opaque. */
typedef struct httpcache_async httpcache_async;

/** Event bits for httpcache_async_watch_cb and httpcache_async_process(). */
typedef enum httpcache_events {
  HTTPCACHE_EV_READ = 1u << 0,
  HTTPCACHE_EV_WRITE = 1u << 1
} httpcache_events;

/**
 * A descriptor the host watches: a socket, or on Linux the epoll descriptor of
 * a cluster context. `int` on POSIX; on Windows a SOCKET (since v1.6; 64 bits
 * on Win64), which the host passes to WSAPoll/select as is.
 */
#ifdef _WIN32
typedef uintptr_t httpcache_fd;
#else
typedef int httpcache_fd;
#endif

/**
 * Called when the events the library needs on fd change (0: stop watching
 * fd). On Windows a cluster context watches one socket per node at once
 * (there is no epoll to gather them behind one descriptor): the host then
 * calls httpcache_async_process() with the events of any of them, and the
 * context finds out which.
 */
typedef void (*httpcache_async_watch_cb)(httpcache_fd fd, uint32_t events, void *payload);

/**
 * Completion of httpcache_async_get(). `value` is borrowed for the duration
 * of the callback only. status is HTTPCACHE_OK (hit), HTTPCACHE_ENOTFOUND,
 * HTTPCACHE_EBACKEND, HTTPCACHE_ETIMEOUT or HTTPCACHE_ECANCELED. With
 * HTTPCACHE_EBACKEND or HTTPCACHE_ETIMEOUT, httpcache_error_last() says why
 * during the callback (e.g. "127.0.0.1:6379 refused AUTH: WRONGPASS ...").
 * On HTTPCACHE_ENOTFOUND, ttl_ms is the context's lease number for the key
 * (since v1.1; see httpcache_async_set()): > 0 this context holds the key's
 * lease, < 0 another holder's lease was found, 0 none could be taken. The
 * number stays the same while the same lease is seen, so a caller can tell
 * that a lease was replaced (the key was invalidated in between).
 *
 * A new connection sends AUTH and SELECT (when the URL asks for them) before
 * any request: requests started meanwhile wait for both to succeed, and fail
 * with HTTPCACHE_EBACKEND if either is refused, so no request ever runs as
 * another user or in another database.
 */
typedef void (*httpcache_async_get_cb)(int status, const void *value, size_t value_len, int64_t ttl_ms,
                                       void *payload);

/**
 * Completion of httpcache_async_set() (`count` = TTL applied in seconds) and
 * httpcache_async_invalidate() (`count` = keys deleted).
 */
typedef void (*httpcache_async_done_cb)(int status, int64_t count, void *payload);

/**
 * Creates a non-blocking context over a handle's backend. The handle must
 * outlive the context.
 * @param watch called with (fd, events, watch_payload) as interest changes; may be NULL for memory://.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (also for a NULL watch on a Redis
 *         handle, whose requests could then never complete); HTTPCACHE_ENOMEM.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_async_open(httpcache_async **out, httpcache_cache *cache,
                                           httpcache_async_watch_cb watch, void *watch_payload);

/**
 * Frees a context. Pending requests complete with HTTPCACHE_ECANCELED inside
 * this call; the watch callback is told to stop watching. NULL is a no-op.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(void) httpcache_async_free(httpcache_async *ctx);

/**
 * Starts a lookup. On success `done` will be called exactly once (possibly
 * before this returns). On failure to start (bad key) it is not called.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_async_get(httpcache_async *ctx, const void *key, size_t key_len,
                                          httpcache_async_get_cb done, void *payload);

/**
 * Starts a store; the value is copied and the TTL computed before this returns.
 *
 * Fencing (since v1.1): a miss of httpcache_async_get() on this context takes
 * the key's lease (one extra round trip: see httpcache_cache_get_or_compute()),
 * and this context remembers it. The next store of that key from this
 * context is fenced with it: it replaces the lease's placeholder only while
 * the placeholder is still there, so a value computed before an invalidation
 * is never stored after it. done then gets HTTPCACHE_ENOTFOUND when the store
 * was refused (the key was invalidated or overwritten, or the lease expired,
 * since the miss; or the miss found another holder's lease, or a later get
 * of this context found a value). A store of a key this context has not
 * missed is a plain SET. Up to 65,536 leases are remembered per context.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad key, policy or oversized value: done is not called).
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_async_set(httpcache_async *ctx, const void *key, size_t key_len,
                                          const void *value, size_t value_len,
                                          const httpcache_ttl_policy *policy, httpcache_async_done_cb done,
                                          void *payload);

/**
 * Starts deleting keys (one command). Same contract as httpcache_async_set().
 * Fenced like httpcache_cache_invalidate(): the leases of these keys are
 * void once the DEL ran, and so are in-process computations of them that
 * began before it.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_async_invalidate(httpcache_async *ctx, const void *const *keys,
                                                 const size_t *key_lens, size_t nkeys,
                                                 httpcache_async_done_cb done, void *payload);

/**
 * Gives up the lease this context's miss of `key` took (see httpcache_async_set()),
 * when the caller will store nothing (its computation failed, declined or was
 * fenced): the placeholder is deleted if it is still there, so readers with
 * other clients never see it and the next caller need not wait for it to
 * expire. `done` gets count 1 when deleted, 0 (at once) without such a lease.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID.
 * Since v1.1.
 */
HTTPCACHE_EXTERN(int) httpcache_async_release(httpcache_async *ctx, const void *key, size_t key_len,
                                              httpcache_async_done_cb done, void *payload);

/**
 * httpcache_async_get() with a call's tags (see "Tags"; call may be NULL):
 * the entry and the tags' generations are asked in one pipeline; `done` gets
 * a hit only when the entry is stamped with each tag's current generation.
 * After a miss, the context remembers the generations read, and
 * httpcache_async_set_ex() of that key with the same tags stamps its value
 * with them. On HTTPCACHE_ENOTFOUND of a tagged call, value and its length
 * describe the generations read (opaque bytes: two misses read the same
 * generations when the bytes are equal), so a caller sharing one computation
 * among several misses can refuse to share across a tag's invalidation.
 *
 * An entry past its freshness (see "Stale entries"; any httpcache_async_get
 * too): within stale-while-revalidate while another caller refreshes it,
 * status HTTPCACHE_OK with ttl_ms <= 0 (minus its staleness); when this
 * context should recompute it, HTTPCACHE_ESTALE with the stale value and
 * ttl_ms <= 0: this context then holds the key's refresh lock (its next set
 * of the key replaces the stale entry only while it is still there, then
 * releases the lock; httpcache_async_release() releases it too), or, past
 * stale-while-revalidate while another caller refreshes, its set is refused.
 * A caller may answer with the stale value if its computation fails within
 * its stale-if-error window.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad key or call: done is not called).
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_async_get_ex(httpcache_async *ctx, const void *key, size_t key_len,
                                             const httpcache_call *call, httpcache_async_get_cb done, void *payload);

/**
 * httpcache_async_set() with a call's tags and stale windows (call may be
 * NULL). With tags, the value is stored stamped with the generations the
 * context's last tagged miss of the key read (fenced by its lease, as
 * httpcache_async_set()); when the context holds no such miss (never made,
 * other tags, or forgotten: up to 65,536 are remembered), or a generation
 * could not be read, nothing is stored, the lease is given up and done gets
 * HTTPCACHE_ENOTFOUND: a value whose generations are unknown could outlive an
 * invalidation.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad key, call, policy or oversized value: done is not called).
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_async_set_ex(httpcache_async *ctx, const void *key, size_t key_len,
                                             const void *value, size_t value_len,
                                             const httpcache_ttl_policy *policy, const httpcache_call *call,
                                             httpcache_async_done_cb done, void *payload);

/**
 * httpcache_cache_invalidate_tags() without blocking: one SET per tag,
 * pipelined; `done` gets count 0.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (bad tag list: done is not called).
 * Since v1.4.
 */
HTTPCACHE_EXTERN(int) httpcache_async_invalidate_tags(httpcache_async *ctx, const void *const *tags,
                                                      const size_t *tag_lens, size_t ntags,
                                                      httpcache_async_done_cb done, void *payload);

/**
 * Does the I/O the ready events allow and runs the completions that follow;
 * events 0 only checks deadlines. Never blocks.
 * @return HTTPCACHE_OK; HTTPCACHE_EINVALID (NULL ctx). Backend failures are
 *         reported to the requests' callbacks, not here.
 * Since v1.0.
 */
HTTPCACHE_EXTERN(int) httpcache_async_process(httpcache_async *ctx, uint32_t events);

/**
 * Milliseconds until the earliest pending request's deadline (0 if passed),
 * or -1 when nothing is pending. Since v1.0.
 */
HTTPCACHE_EXTERN(int64_t) httpcache_async_timeout_ms(const httpcache_async *ctx);

/** Number of requests started and not yet completed. Since v1.0. */
HTTPCACHE_EXTERN(size_t) httpcache_async_pending(const httpcache_async *ctx);

HTTPCACHE_END_DECL

#endif /* HTTPCACHE_H */
