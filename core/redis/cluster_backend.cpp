// SPDX-License-Identifier: MIT
// The blocking calls on a Redis Cluster: each key's commands go to the node owning its slot, and
// MOVED (the map is corrected) and ASK (ASKING before each command) are followed, so a blocking caller always
// gets the current owner's answer. Routing knowledge lives in cluster_slots; this file only
// decides what to send where and when to retry.
#include "cluster_backend.hpp"

#include <fmt/format.h>

#include <map>

#include "cluster_session.hpp"
#include "cluster_slots.hpp"
#include "tracking.hpp"
#include "../tags.hpp"

namespace httpcache {

namespace {

constexpr int max_redirects = 5;

using detail::command;
using detail::parse_redirect;
using detail::redirect;
using detail::redis_pool;
using detail::reply_ptr;

class redis_cluster final : public backend {
 public:
  redis_cluster(backend_url url, backend_options options) : map_(std::move(url), options) {}

  lookup_result get(std::string_view key) override {
    command get = detail::get_command(key), pttl = detail::pttl_command(key);
    return on_key(key, {&get, &pttl}, [](std::vector<reply_ptr>& r) {  // same key: same node, one round trip
      return detail::parse_lookup(r[0].get(), r[1].get());
    });
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    std::string ttl_text;
    command set = detail::set_command(key, value, ttl_ms, ttl_text);
    on_key(key, {&set}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return 0;
    });
  }

  // Keys are grouped by node and each group is sent as one pipeline of single-key DELs (a
  // multi-key DEL must stay within one slot): one round trip per node.
  std::size_t del(const std::vector<std::string_view>& keys) override {
    std::map<int, std::vector<std::string_view>> by_node;
    for (auto key : keys) by_node[map_.owner_of(cluster_key_slot(key))].push_back(key);
    std::size_t deleted = 0;
    for (auto& [node, group] : by_node) {
      std::vector<command> dels;
      dels.reserve(group.size());
      for (auto key : group) dels.push_back(detail::del_command({key}));
      std::vector<const command*> cmds;
      for (const auto& d : dels) cmds.push_back(&d);
      std::vector<reply_ptr> replies;
      try {
        replies = map_.pool(node).exchange(cmds);
      } catch (const backend_error&) {
        map_.refresh_map();
        replies.clear();
      }
      for (std::size_t i = 0; i < group.size(); ++i) {
        const redisReply* r = i < replies.size() ? replies[i].get() : nullptr;
        if (r && r->type == REDIS_REPLY_INTEGER) {
          deleted += static_cast<std::size_t>(r->integer);
          continue;
        }
        if (r && r->type == REDIS_REPLY_ERROR && parse_redirect(r, {}).what == redirect::kind::none)
          detail::throw_if_error(r);
        // Redirected, or the node failed: this key goes alone through the redirect-aware path.
        deleted += del_one(group[i]);
      }
    }
    return deleted;
  }

  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command lock = detail::lock_command(lock_key, token, ttl_text);
    return on_key(lock_key, {&lock}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return r[0]->type == REDIS_REPLY_STATUS;
    });
  }

  void unlock(std::string_view lock_key, std::string_view token) override {
    command unlock = detail::unlock_command(lock_key, token);
    on_key(lock_key, {&unlock}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return 0;
    });
  }

  // Key and placeholder are one key: one slot, one node, one round trip.
  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override {
    std::string ttl_text = std::to_string(lease_ms);
    command set_nx = detail::lock_command(key, placeholder, ttl_text), get = detail::get_command(key),
            pttl = detail::pttl_command(key);
    lease_result l = on_key(key, {&set_nx, &get, &pttl}, [](std::vector<reply_ptr>& r) {
      return detail::lease_from(r[0].get(), r[1].get(), r[2].get());
    });
    if (l.wrong_type) {  // a value of another type, as a plain SET would have overwritten it
      command set = detail::set_command(key, placeholder, lease_ms, ttl_text);
      on_key(key, {&set}, [](std::vector<reply_ptr>& r) {
        detail::throw_if_error(r[0].get());
        return 0;
      });
      l = lease_result{true, {}, false};
    }
    return l;
  }

  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command store = detail::store_leased_command(key, placeholder, value, ttl_text);
    return on_key(key, {&store}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer == 1;
    });
  }

  // The entry from its node, then one pipeline of GETs per node holding some of the tags: 1 + the
  // number of those nodes in round trips (not one per tag). A tag without a generation, or whose
  // GET was redirected or failed, takes the redirect-aware lease() path (SET NX, GET).
  lookup_result get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                            const std::vector<std::string>& candidates,
                            std::vector<std::string>& generations) override {
    lookup_result r;
    if (!key.empty()) r = get(key);
    generations.assign(tag_keys.size(), std::string());
    std::map<int, std::vector<std::size_t>> by_node;
    for (std::size_t i = 0; i < tag_keys.size(); ++i) by_node[map_.owner_of(cluster_key_slot(tag_keys[i]))].push_back(i);
    std::vector<std::size_t> unread;
    for (const auto& [node, indexes] : by_node) {
      std::vector<command> gets;
      for (std::size_t i : indexes) gets.push_back(detail::get_command(tag_keys[i]));
      std::vector<const command*> cmds;
      for (const auto& g : gets) cmds.push_back(&g);
      std::vector<reply_ptr> replies;
      try {
        replies = map_.pool(node).exchange(cmds);
      } catch (const backend_error&) {
        map_.refresh_map();
      }
      for (std::size_t j = 0; j < indexes.size(); ++j) {
        const redisReply* g = j < replies.size() ? replies[j].get() : nullptr;
        if (g && g->type == REDIS_REPLY_STRING) generations[indexes[j]].assign(g->str, g->len);
        else unread.push_back(indexes[j]);
      }
    }
    for (std::size_t i : unread) {
      lease_result l = lease(tag_keys[i], candidates[i], tag_ttl_ms);
      if (l.granted) generations[i] = candidates[i];
      else if (l.current.found) generations[i] = std::move(l.current.value);
    }
    return r;
  }

  std::unique_ptr<async_session> open_async(watch_fn watch) override {
    // Without a watch callback no descriptor is ever watched: every request would time out.
    if (!watch) throw error(errc::invalid, "a Redis handle's non-blocking context needs a watch callback");
    return make_cluster_session(map_, std::move(watch));
  }

  // One link per master that owns slots; a change of that set (a failover, a new node given
  // slots) changes the map's version: the near tier stops at once and the feed links anew.
  std::unique_ptr<invalidation_feed> watch(const std::vector<std::string>& prefixes,
                                           invalidation_sink& sink) override {
    auto targets = [m = &map_]() -> std::optional<detail::watch_targets> {
      auto owners = m->owners();
      if (!owners) {
        m->prefetch_map();
        return std::nullopt;
      }
      return detail::watch_targets{owners->first, std::move(owners->second)};
    };
    return detail::make_tracking_feed(map_.url(), map_.options(), map_.tls().get(), std::move(targets),
                                      &map_.owners_version(), prefixes, sink);
  }

 private:
  std::size_t del_one(std::string_view key) {
    command del = detail::del_command({key});
    return on_key(key, {&del}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return static_cast<std::size_t>(r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : 0);
    });
  }

  // Sends commands that all concern `key` to the node owning its slot, following MOVED (the slot
  // map is corrected) and ASK (ASKING before each command) redirections, at most max_redirects times. A node
  // that cannot be reached makes the map be fetched again, and the call is retried once.
  template <typename Parse>
  auto on_key(std::string_view key, std::vector<const command*> cmds, Parse&& parse)
      -> decltype(parse(std::declval<std::vector<reply_ptr>&>())) {
    const std::uint16_t slot = cluster_key_slot(key);
    int ask_node = -1;
    bool refreshed = false;
    command asking;
    asking.add("ASKING");
    for (int hop = 0; hop <= max_redirects; ++hop) {
      const int node = ask_node >= 0 ? ask_node : map_.owner_of(slot);
      redis_pool& target = map_.pool(node);
      // ASKING lets the next command only into an importing slot: one before each command.
      std::vector<const command*> send;
      for (const command* c : cmds) {
        if (ask_node >= 0) send.push_back(&asking);
        send.push_back(c);
      }
      std::vector<reply_ptr> replies;
      try {
        replies = target.exchange(send);
      } catch (const backend_error& e) {
        if (refreshed || e.code() == errc::timeout) throw;
        map_.refresh_map();  // the node may be gone (failover): learn the new owner and retry once
        refreshed = true;
        ask_node = -1;
        continue;
      }
      if (ask_node >= 0) {  // drop each ASKING's +OK
        std::vector<reply_ptr> answers;
        for (std::size_t i = 1; i < replies.size(); i += 2) answers.push_back(std::move(replies[i]));
        replies = std::move(answers);
      }
      redirect r;
      for (const auto& reply : replies) {
        r = parse_redirect(reply.get(), target.where().host);
        if (r.what != redirect::kind::none) break;
      }
      if (r.what == redirect::kind::none) return parse(replies);
      if (r.what == redirect::kind::moved) {
        map_.note_moved(r.slot, r.host, r.port);
        ask_node = -1;
      } else {
        ask_node = map_.node_index(r.host, r.port);
        map_.note_asked(ask_node);  // its keys must be reported too (the near tier's links)
      }
    }
    throw backend_error(errc::backend, fmt::format("more than {} cluster redirections for one key", max_redirects));
  }

  detail::slot_map map_;
};

}  // namespace

std::unique_ptr<backend> make_redis_cluster_backend(const backend_url& url, const backend_options& options) {
  return std::make_unique<redis_cluster>(url, options);
}

}  // namespace httpcache
