// SPDX-License-Identifier: MIT
#include "lmdb_backend.hpp"

#include <fmt/format.h>
#include <lmdb.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "immediate_session.hpp"
#include "lmdb_record.hpp"
#include "lmdb_files.hpp"
#include "thread_state.hpp"
#include "fork.hpp"
#include "tags.hpp"

namespace httpcache {

namespace {

constexpr int tidy_expired_per_write = 16;
constexpr std::size_t max_touches = 1024;
constexpr std::size_t restamps_per_write = 256;  // the rest wait: one write holds the host's lock briefly
constexpr std::size_t touch_flush_count = 64;
constexpr std::int64_t touch_flush_ms = 250;
constexpr std::int64_t older_than_refresh_ms = 250;
constexpr std::size_t evict_batch = 16;

std::int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// now + ttl_ms, kept far from overflow (a TTL past 30,000 years is that long).
std::int64_t expiry(std::int64_t now, std::int64_t ttl_ms) { return now + std::clamp<std::int64_t>(ttl_ms, 1, 1ll << 50); }

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

std::uint64_t from_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

// The stamp below which an entry is in the older half, given the next stamp and the live count:
// the newer half (rounded up, so a lone entry is never "older") stays out.
std::uint64_t older_half_end(std::uint64_t next, std::uint64_t live) {
  const std::uint64_t newer = (live + 1) / 2;
  return next > newer ? next - newer : 0;
}

// The map filled up inside a write: the write is retried once after making room.
struct map_full {};

class environment;

[[noreturn]] void fail(const std::string& path, const char* what, int rc) {
  throw backend_error(errc::backend, fmt::format("lmdb://{}: {}: {}", path, what, mdb_strerror(rc)));
}

// One per directory per process (LMDB: a second environment on the same files in one process
// would drop the first one's locks when closed), shared by every handle on that directory.
class environment final : private detail::fork_participant {
 public:
  environment(std::string path, std::uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) { open(); }
  ~environment() { close(); }

  // Closes the store in this process (when this process opened it: a forked child never touches
  // its parent's copy). Called by the registry, under its lock, once the last handle is gone, so
  // that no other thread can open the directory again before this close has dropped the locks.
  void close() {
    if (env_ && owner_.load(std::memory_order_relaxed) == detail::current_pid()) {
      for (auto& slot : readers_)
        if (MDB_txn* t = slot.txn.exchange(nullptr)) mdb_txn_abort(t);
      mdb_env_close(env_);
    }
    env_ = nullptr;
    owner_.store(0, std::memory_order_relaxed);
  }
  // Whether this process opened the store (false in a forked child until its first blocking call).
  bool opened_here() const noexcept { return owner_.load(std::memory_order_acquire) == detail::current_pid(); }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;

  // This process's environment: a forked child closes the one it inherited and opens its own.
  MDB_env* env() {
    if (owner_.load(std::memory_order_acquire) == detail::current_pid()) return env_;
    std::lock_guard<std::mutex> lock(reopen_mutex_);
    if (owner_.load(std::memory_order_relaxed) != detail::current_pid()) {
      // The inherited copy is only closed (mdb_env_close clears reader slots of this pid only);
      // its pooled transactions are the parent's and are left alone.
      for (auto& slot : readers_) slot.txn.store(nullptr);
      if (env_) mdb_env_close(env_);
      env_ = nullptr;
      open();
    }
    return env_;
  }

  // A read transaction, renewed from the pool when one is there (MDB_NOTLS: a transaction owns
  // its reader slot, so any thread may renew it): a hit then allocates nothing.
  int begin_read(MDB_txn** out) {
    MDB_env* env = this->env();
    for (auto& slot : readers_) {
      if (!slot.txn.load(std::memory_order_relaxed)) continue;
      if (MDB_txn* t = slot.txn.exchange(nullptr, std::memory_order_acquire)) {
        if (mdb_txn_renew(t) == 0) {
          *out = t;
          return 0;
        }
        mdb_txn_abort(t);
      }
    }
    return mdb_txn_begin(env, nullptr, MDB_RDONLY, out);
  }
  // Ends a read transaction begun by begin_read: reset and pooled, or aborted when the pool is full.
  void end_read(MDB_txn* t) {
    mdb_txn_reset(t);
    for (auto& slot : readers_) {
      MDB_txn* empty = nullptr;
      if (slot.txn.compare_exchange_strong(empty, t, std::memory_order_release, std::memory_order_relaxed)) return;
    }
    mdb_txn_abort(t);
  }

  const std::string& path() const { return path_; }
  std::uint64_t max_bytes() const { return max_bytes_; }
  MDB_dbi entries = 0, by_stamp = 0, by_expiry = 0;

  // Approximate LRU (lmdb_backend.hpp): keys read in the older half, for this process's next
  // write. True when a process that does not write should write them itself now (many queued, or
  // the oldest queued for touch_flush_ms).
  bool touched(std::string_view skey, std::int64_t now) {
    std::lock_guard<std::mutex> lock(touch_mutex_);
    if (touches_.empty()) first_touch_ms_ = now;
    if (touches_.size() < max_touches) touches_.emplace(skey);
    return touches_.size() >= touch_flush_count || now - first_touch_ms_ >= touch_flush_ms;
  }
  // Up to `most` queued keys, taken out of the queue; the rest stay for the next write.
  std::vector<std::string> take_touches(std::size_t most) {
    std::lock_guard<std::mutex> lock(touch_mutex_);
    std::vector<std::string> taken;
    while (!touches_.empty() && taken.size() < most) taken.push_back(std::move(touches_.extract(touches_.begin()).value()));
    return taken;
  }
  std::atomic<std::uint64_t> older_than{0};  // stamps below it are in the older half
  std::atomic<std::int64_t> older_than_read_ms{0};  // when a read last set it

 private:
  void open();
  void open_locked();

  const std::string path_;
  const std::uint64_t max_bytes_;
  std::mutex reopen_mutex_;
  MDB_env* env_ = nullptr;
  struct alignas(64) pooled {  // a cache line each: threads renewing side by side do not share one
    std::atomic<MDB_txn*> txn{nullptr};
  };
  std::array<pooled, 16> readers_{};
  std::atomic<pid_t> owner_{0};
  std::mutex touch_mutex_;
  std::unordered_set<std::string> touches_;
  std::int64_t first_touch_ms_ = 0;

  // Its locks are held across fork(), so a child never inherits one a vanished thread held.
  void before_fork() noexcept override {
    reopen_mutex_.lock();
    touch_mutex_.lock();
  }
  void after_fork_parent() noexcept override {
    touch_mutex_.unlock();
    reopen_mutex_.unlock();
  }
  void after_fork_child() noexcept override {
    touches_.clear();  // the parent's reads: the child's writes need not re-stamp them
    touch_mutex_.unlock();
    reopen_mutex_.unlock();
  }

 public:
  // Called by shared_environment once the registry's lock is released: a participant must not
  // register while holding a lock that a before_fork() takes (fork.hpp), as the registry's is.
  void register_for_fork() { registered_.emplace(static_cast<detail::fork_participant&>(*this)); }

 private:
  std::optional<detail::fork_registration> registered_;  // last: unregistered before the rest goes
};

void environment::open() {
  lmdb_files::ensure_directory(path_);
  {
    // Openers take turns (a lock of DIR/open.lock) to compare boot ids and to create the store.
    lmdb_files::file_lock turn(path_ + "/open.lock");
    open_locked();
  }
  owner_.store(detail::current_pid(), std::memory_order_release);
}

void environment::open_locked() {
  // After an OS crash, unsynced pages may be missing: a store whose boot_id does not name this
  // boot (another boot, or none: a crash before it reached the disk) starts empty. No process of
  // another boot can still have it open, and openers of this boot take turns under open.lock.
  const std::string boot = lmdb_files::boot_id();
  const std::string boot_file = path_ + "/boot_id";
  if (!boot.empty() && lmdb_files::read_small_file(boot_file) != boot) {
    lmdb_files::remove_file(path_ + "/data.mdb");
    lmdb_files::remove_file(path_ + "/lock.mdb");
    lmdb_files::write_durably(boot_file, boot);
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc) fail(path_, "mdb_env_create", rc);
  auto close_env = [&] { mdb_env_close(env); };
  const std::uint64_t map = 2 * max_bytes_ + (32ull << 20);
  if ((rc = mdb_env_set_maxdbs(env, 8)) || (rc = mdb_env_set_maxreaders(env, 1024)) ||
      (rc = mdb_env_set_mapsize(env, static_cast<std::size_t>(map))) ||
      (rc = mdb_env_open(env, path_.c_str(), MDB_NOSYNC | MDB_NORDAHEAD | MDB_NOTLS, 0600))) {
    close_env();
    fail(path_, "cannot open the store", rc);
  }
  int dead = 0;
  mdb_reader_check(env, &dead);  // reader slots of dead processes
  MDB_txn* txn = nullptr;
  MDB_dbi meta = 0;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn))) {
    close_env();
    fail(path_, "cannot begin a write", rc);
  }
  if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &entries)) ||
      (rc = mdb_dbi_open(txn, "by_stamp", MDB_CREATE, &by_stamp)) ||
      (rc = mdb_dbi_open(txn, "by_expiry", MDB_CREATE, &by_expiry)) || (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta))) {
    mdb_txn_abort(txn);
    close_env();
    fail(path_, "cannot open its tables", rc);
  }
  const std::string limit = be64(max_bytes_);
  MDB_val k = val("max_bytes"), v{};
  rc = mdb_get(txn, meta, &k, &v);
  if (rc == 0 && view(v) != limit) {
    const std::uint64_t theirs = from_be64(view(v));
    mdb_txn_abort(txn);
    close_env();
    throw error(errc::invalid, fmt::format("lmdb://{} was created with max_bytes={}, not {}: open it with that "
                                           "value, or remove the directory to start anew",
                                           path_, theirs, max_bytes_));
  }
  MDB_val lv = val(limit);
  if (rc == MDB_NOTFOUND) rc = mdb_put(txn, meta, &k, &lv, 0);
  if (rc == 0) {
    rc = mdb_txn_commit(txn);
  } else {
    mdb_txn_abort(txn);
  }
  if (rc) {
    close_env();
    fail(path_, "cannot record max_bytes", rc);
  }
  env_ = env;
}

// The environments of this process by directory (device, inode), with how many handles use each.
// Never destroyed, and its lock is held across fork() like the environments' own.
struct registry_type final : private detail::fork_participant {
  struct slot {
    std::shared_ptr<environment> env;
    std::size_t handles = 0;
  };
  std::mutex mutex;
  std::map<std::pair<std::uint64_t, std::uint64_t>, slot> by_directory;

  void before_fork() noexcept override { mutex.lock(); }
  void after_fork_parent() noexcept override { mutex.unlock(); }
  void after_fork_child() noexcept override { mutex.unlock(); }
  detail::fork_registration registered{*this};
};

registry_type& registry() {
  static auto* r = new registry_type;
  return *r;
}

// The environment of DIR for one more handle (opened when it is the first).
std::shared_ptr<environment> shared_environment(const std::string& path, std::uint64_t max_bytes) {
  registry_type& r = registry();
  std::shared_ptr<environment> made;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    const auto id = lmdb_files::ensure_directory(path);
    auto& slot = r.by_directory[id];
    if (slot.env) {
      if (slot.env->max_bytes() != max_bytes)
        throw error(errc::invalid, fmt::format("lmdb://{} is open in this process with max_bytes={}, not {}", path,
                                               slot.env->max_bytes(), max_bytes));
      ++slot.handles;
      return slot.env;
    }
    try {
      made = std::make_shared<environment>(path, max_bytes);
    } catch (...) {
      r.by_directory.erase(id);
      throw;
    }
    slot = {made, 1};
  }
  // A participant registers only outside a lock that a before_fork() takes (fork.hpp).
  made->register_for_fork();
  return made;
}

// One handle less: the last one closes the environment under the registry's lock, so an opener
// of the same directory either shares it or finds it closed, never opens a second copy beside one
// being closed (which would drop the new copy's file locks with the old one's).
void release_environment(const std::shared_ptr<environment>& e) {
  registry_type& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto it = r.by_directory.begin(); it != r.by_directory.end(); ++it) {
    if (it->second.env != e) continue;
    if (--it->second.handles == 0) {
      e->close();
      r.by_directory.erase(it);
    }
    return;
  }
}

// A transaction, aborted unless committed.
class txn {
 public:
  txn(environment& e, unsigned flags) : env_(e), read_(flags & MDB_RDONLY) {
    int rc = read_ ? e.begin_read(&t_) : mdb_txn_begin(e.env(), nullptr, flags, &t_);
    if (rc) fail(e.path(), read_ ? "cannot begin a read" : "cannot begin a write", rc);
  }
  ~txn() {
    if (!t_) return;
    if (read_) {
      env_.end_read(t_);
    } else {
      mdb_txn_abort(t_);
    }
  }
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  MDB_txn* get() const { return t_; }
  void commit() {
    int rc = mdb_txn_commit(std::exchange(t_, nullptr));
    if (rc == MDB_MAP_FULL) throw map_full{};
    if (rc) fail(env_.path(), "commit", rc);
  }
  // The value under key in dbi, or nullopt.
  std::optional<std::string_view> find(MDB_dbi dbi, std::string_view key) const {
    MDB_val k = val(key), v{};
    int rc = mdb_get(t_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc) fail(env_.path(), "read", rc);
    return view(v);
  }
  void put(MDB_dbi dbi, std::string_view key, std::string_view value) {
    MDB_val k = val(key), v = val(value);
    int rc = mdb_put(t_, dbi, &k, &v, 0);
    if (rc == MDB_MAP_FULL) throw map_full{};
    if (rc) fail(env_.path(), "write", rc);
  }
  void erase(MDB_dbi dbi, std::string_view key) {
    MDB_val k = val(key);
    int rc = mdb_del(t_, dbi, &k, nullptr);
    if (rc == MDB_MAP_FULL) throw map_full{};
    if (rc && rc != MDB_NOTFOUND) fail(env_.path(), "delete", rc);
  }
  // The first (or last) key of dbi, or nullopt when it is empty.
  std::optional<std::pair<std::string_view, std::string_view>> edge(MDB_dbi dbi, bool last) const {
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(t_, dbi, &c);
    if (rc) fail(env_.path(), "cursor", rc);
    MDB_val k{}, v{};
    rc = mdb_cursor_get(c, &k, &v, last ? MDB_LAST : MDB_FIRST);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc) fail(env_.path(), "cursor", rc);
    return std::pair{view(k), view(v)};
  }
  // key's entry (stored under skey, its store key) when it is live at `now`; views into the store.
  std::optional<lmdb_record::entry> live(std::string_view key, std::string_view skey, std::int64_t now) const {
    auto bytes = find(env_.entries, skey);
    if (!bytes) return std::nullopt;
    auto entry = lmdb_record::decode_for(key, *bytes);
    if (!entry || entry->expires_ms <= now) return std::nullopt;
    return entry;
  }
  // The stamp the next write takes: one past the newest.
  std::uint64_t next_stamp() const {
    auto last = edge(env_.by_stamp, true);
    return last ? from_be64(last->first) + 1 : 1;
  }
  std::uint64_t pages(MDB_dbi dbi) const {
    MDB_stat st{};
    int rc = mdb_stat(t_, dbi, &st);
    if (rc) fail(env_.path(), "stat", rc);
    return st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  }
  std::uint64_t entries(MDB_dbi dbi) const {
    MDB_stat st{};
    return mdb_stat(t_, dbi, &st) == 0 ? st.ms_entries : 0;
  }
  unsigned page_size() const {
    MDB_stat st{};
    mdb_env_stat(mdb_txn_env(t_), &st);
    return st.ms_psize;
  }

 private:
  environment& env_;
  const bool read_;
  MDB_txn* t_ = nullptr;
};

class lmdb_backend final : public backend {
 public:
  explicit lmdb_backend(std::shared_ptr<environment> e) : e_(std::move(e)) {}
  ~lmdb_backend() override { release_environment(e_); }
  lmdb_backend(const lmdb_backend&) = delete;
  lmdb_backend& operator=(const lmdb_backend&) = delete;

  lookup_result get(std::string_view key) override {
    lookup_result result;
    bool flush = false;
    {
      txn r(*e_, MDB_RDONLY);
      const std::int64_t now = wall_ms();
      flush = read_live(r, key, now, result);
      refresh_older_than(r, now);
    }
    if (flush) flush_touches();
    return result;
  }
  // Never opens the store (a forked child does on its first blocking call) and never fails: a
  // failure is left to get(), behind the breaker.
  // Versions are not kept (0): a hit copies from the mapped file.
  std::optional<lookup_result> peek(std::string_view key, std::uint64_t known) override {
    (void)known;
    if (!e_->opened_here()) return std::nullopt;
    try {
      return get(key);
    } catch (const backend_error&) {
      return std::nullopt;
    }
  }

  // The entry and every tag's generation in one read transaction; a write only for the tags
  // that have none yet (created as their candidates, as a lease would).
  lookup_result get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                            const std::vector<std::string>& candidates, std::vector<std::string>& generations) override {
    lookup_result entry;
    generations.assign(tag_keys.size(), std::string());
    std::vector<std::size_t> missing;
    bool flush = false;
    {
      txn r(*e_, MDB_RDONLY);
      const std::int64_t now = wall_ms();
      if (!key.empty()) flush = read_live(r, key, now, entry);
      for (std::size_t i = 0; i < tag_keys.size(); ++i) {
        lookup_result tag;
        flush = read_live(r, tag_keys[i], now, tag) || flush;
        if (tag.found) generations[i] = std::move(tag.value);
        else missing.push_back(i);
      }
    }
    for (std::size_t i : missing) {
      lease_result l = lease(tag_keys[i], candidates[i], tag_ttl_ms);
      if (l.granted) generations[i] = candidates[i];
      else if (l.current.found) generations[i] = std::move(l.current.value);
    }
    if (flush) flush_touches();
    return entry;
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    const std::string skey = lmdb_record::store_key(key);
    write([&](writer& w) {
      w.put_entry(key, skey, value, expiry(wall_ms(), ttl_ms));
      return true;
    });
  }

  std::size_t del(const std::vector<std::string_view>& keys) override {
    return write([&](writer& w) {
      std::size_t deleted = 0;
      const std::int64_t now = wall_ms();
      for (auto key : keys) deleted += w.remove(lmdb_record::store_key(key), now) ? 1 : 0;
      return deleted;
    });
  }

  std::unique_ptr<async_session> open_async(watch_fn) override { return make_immediate_session(*this); }

  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override {
    const std::string skey = lmdb_record::store_key(key);
    return write([&](writer& w) {
      lease_result r;
      const std::int64_t now = wall_ms();
      if (auto current = w.live(key, skey, now)) {
        // Read through leases only (a tag's generation, a lock): kept in the recency order too.
        if (current->stamp < e_->older_than.load(std::memory_order_relaxed)) w.restamp(skey, now);
        r.current = {true, std::move(current->value), std::max<std::int64_t>(1, current->expires_ms - now)};
        return r;
      }
      r.granted = w.put_entry(key, skey, placeholder, expiry(now, lease_ms));
      return r;
    });
  }

  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override {
    const std::string skey = lmdb_record::store_key(key);
    return write([&](writer& w) {
      const std::int64_t now = wall_ms();
      auto current = w.live(key, skey, now);
      if (!current || current->value != placeholder) return false;
      return w.put_entry(key, skey, value, expiry(now, ttl_ms));  // false: too large, not stored
    });
  }

  void release(std::string_view key, std::string_view placeholder) override {
    const std::string skey = lmdb_record::store_key(key);
    write([&](writer& w) {
      const std::int64_t now = wall_ms();
      auto current = w.live(key, skey, now);
      if (current && current->value == placeholder) w.remove(skey, now);
      return true;
    });
  }

  // The stampede lock is an entry of its own, taken like a lease.
  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    return lease(lock_key, token, ttl_ms).granted;
  }
  void unlock(std::string_view lock_key, std::string_view token) override { release(lock_key, token); }

 private:
  // Reads key's live entry into `out` (left a miss otherwise) and queues the key when its stamp is
  // in the older half; true when this process should write its queued keys now.
  bool read_live(txn& r, std::string_view key, std::int64_t now, lookup_result& out) {
    struct key_buffer {};
    std::string& skey = thread_state<key_buffer, std::string>();  // a hit allocates nothing for its key
    lmdb_record::store_key_into(key, skey);
    auto entry = r.live(key, skey, now);
    if (!entry) return false;
    out.found = true;
    out.value.assign(entry->value);
    out.ttl_ms = std::max<std::int64_t>(1, entry->expires_ms - now);
    return entry->stamp < e_->older_than.load(std::memory_order_relaxed) && e_->touched(skey, now);
  }

  // Where the older half of the stamps ends, read every older_than_refresh_ms by a reading
  // process: one that never writes would otherwise never know.
  void refresh_older_than(const txn& r, std::int64_t now) {
    if (now - e_->older_than_read_ms.load(std::memory_order_relaxed) < older_than_refresh_ms) return;
    e_->older_than_read_ms.store(now, std::memory_order_relaxed);
    e_->older_than.store(older_half_end(r.next_stamp(), r.entries(e_->by_stamp)), std::memory_order_relaxed);
  }

  // A write of nothing but the upkeep, to re-stamp the keys this process read; best effort.
  void flush_touches() {
    try {
      write([](writer&) { return true; });
    } catch (const backend_error&) {
    }
  }

  // A write transaction and the changes it makes to an entry and its indexes.
  class writer {
   public:
    explicit writer(environment& e) : e_(e), t_(e, 0), next_stamp_(t_.next_stamp()) {}

    // The live entry of key (a copy of its value: the view would not survive the next put).
    struct live_entry {
      std::string value;
      std::int64_t expires_ms;
      std::uint64_t stamp;
    };
    std::optional<live_entry> live(std::string_view key, const std::string& skey, std::int64_t now) {
      auto entry = t_.live(key, skey, now);
      if (!entry) return std::nullopt;
      return live_entry{std::string(entry->value), entry->expires_ms, entry->stamp};
    }

    // Stores value under key (replacing what was there); false for a value over max_bytes/8,
    // which is not stored: the key is then left empty rather than holding an older value.
    bool put_entry(std::string_view key, const std::string& skey, std::string_view value, std::int64_t expires_ms) {
      remove(skey, 0);
      if (key.size() + value.size() > e_.max_bytes() / 8) return false;
      const bool hashed = key.size() > lmdb_record::direct_key_max;
      const std::uint64_t stamp = next_stamp_++;
      t_.put(e_.entries, skey, lmdb_record::encode(expires_ms, stamp, hashed ? key : std::string_view(), value));
      t_.put(e_.by_stamp, be64(stamp), skey);
      t_.put(e_.by_expiry, be64(static_cast<std::uint64_t>(expires_ms)) + skey, {});
      return true;
    }

    // Removes the entry stored under skey and its index rows; whether it was live at `now`.
    bool remove(const std::string& skey, std::int64_t now) {
      auto bytes = t_.find(e_.entries, skey);
      if (!bytes) return false;
      auto entry = lmdb_record::decode(*bytes);
      const bool was_live = entry && entry->expires_ms > now;
      if (entry) {
        t_.erase(e_.by_expiry, be64(static_cast<std::uint64_t>(entry->expires_ms)) + skey);
        const std::string stamp = be64(entry->stamp);
        if (auto owner = t_.find(e_.by_stamp, stamp); owner && *owner == skey) t_.erase(e_.by_stamp, stamp);
      }
      t_.erase(e_.entries, skey);
      return was_live;
    }

    // Expired entries first (a few per write), then the stamps this process's reads queued.
    void tidy(std::int64_t now) {
      for (int i = 0; i < tidy_expired_per_write; ++i) {
        auto first = t_.edge(e_.by_expiry, false);
        if (!first) break;
        const std::string row(first->first);
        if (row.size() < 8) {  // no row of ours: dropped so that it never blocks the ones behind it
          t_.erase(e_.by_expiry, row);
          continue;
        }
        if (static_cast<std::int64_t>(from_be64(row)) > now) break;
        const std::string skey = row.substr(8);
        t_.erase(e_.by_expiry, row);
        if (auto bytes = t_.find(e_.entries, skey); bytes) {
          auto entry = lmdb_record::decode(*bytes);
          if (!entry || entry->expires_ms <= now) remove(skey, now);
        }
      }
      for (const std::string& skey : e_.take_touches(restamps_per_write)) restamp(skey, now);
    }

    // Moves a live entry to the newest end of the recency order: the record is written again
    // with a new stamp (its value copied), once per read in the older half of the store.
    void restamp(const std::string& skey, std::int64_t now) {
      auto bytes = t_.find(e_.entries, skey);
      if (!bytes) return;
      auto entry = lmdb_record::decode(*bytes);
      if (!entry || entry->expires_ms <= now) return;
      const std::string old = be64(entry->stamp);
      const std::uint64_t stamp = next_stamp_++;
      const std::string record = lmdb_record::encode(entry->expires_ms, stamp, entry->key, entry->value);
      if (auto owner = t_.find(e_.by_stamp, old); owner && *owner == skey) t_.erase(e_.by_stamp, old);
      t_.put(e_.entries, skey, record);
      t_.put(e_.by_stamp, be64(stamp), skey);
    }

    // Evicts the oldest stamps until the tables occupy at most `limit` bytes.
    void make_room(std::uint64_t limit) {
      const unsigned page = t_.page_size();
      while (used_pages() * page > limit) {
        for (std::size_t i = 0; i < evict_batch; ++i) {
          auto oldest = t_.edge(e_.by_stamp, false);
          if (!oldest) return;
          const std::string stamp(oldest->first), skey(oldest->second);
          t_.erase(e_.by_stamp, stamp);
          if (auto bytes = t_.find(e_.entries, skey)) {
            auto entry = lmdb_record::decode(*bytes);
            if (!entry || be64(entry->stamp) == stamp) remove(skey, 0);
          }
        }
      }
    }

    void commit() {
      const std::uint64_t live = t_.entries(e_.by_stamp);
      e_.older_than.store(older_half_end(next_stamp_, live), std::memory_order_relaxed);
      t_.commit();
    }

   private:
    std::uint64_t used_pages() const {
      return t_.pages(e_.entries) + t_.pages(e_.by_stamp) + t_.pages(e_.by_expiry);
    }
    environment& e_;
    txn t_;
    std::uint64_t next_stamp_;
  };

  // Runs body in a write transaction, with the store's upkeep; a full map is met by dropping
  // dead readers' slots and evicting down to half the limit, then one more try.
  template <typename Body>
  auto write(Body&& body) -> decltype(body(std::declval<writer&>())) {
    for (int attempt = 0;; ++attempt) {
      try {
        writer w(*e_);
        w.tidy(wall_ms());
        auto result = body(w);
        w.make_room(e_->max_bytes());
        w.commit();
        return result;
      } catch (const map_full&) {
        if (attempt > 0)
          throw backend_error(errc::backend, fmt::format("lmdb://{}: the store is full even after eviction", e_->path()));
        free_room();
      }
    }
  }

  void free_room() {
    int dead = 0;
    mdb_reader_check(e_->env(), &dead);
    try {
      writer w(*e_);
      w.make_room(e_->max_bytes() / 2);
      w.commit();
    } catch (const map_full&) {
      // Not even deletions fit (old pages held by live readers): empty the tables.
      txn t(*e_, 0);
      for (MDB_dbi dbi : {e_->entries, e_->by_stamp, e_->by_expiry})
        if (int rc = mdb_drop(t.get(), dbi, 0); rc) fail(e_->path(), "empty a full store", rc);
      try {
        t.commit();
      } catch (const map_full&) {
      }
    }
  }

  std::shared_ptr<environment> e_;
};

}  // namespace

std::unique_ptr<backend> make_lmdb_backend(const backend_url& url) {
  return std::make_unique<lmdb_backend>(shared_environment(url.lmdb_path, url.lmdb_max_bytes));
}

}  // namespace httpcache
