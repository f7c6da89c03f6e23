// SPDX-License-Identifier: MIT
// Builds the argv of every command we send and reads the replies both paths share, so the
// blocking pool and the non-blocking session cannot drift apart in what they ask Redis.
#include "commands.hpp"

#include <fmt/format.h>

#include <iterator>

#include "pool.hpp"  // throw_if_error

namespace httpcache::detail {

void append_resp(std::string& out, const command& cmd) {
  fmt::format_to(std::back_inserter(out), "*{}\r\n", cmd.argv.size());
  for (std::size_t i = 0; i < cmd.argv.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "${}\r\n", cmd.lens[i]);
    out.append(cmd.argv[i], cmd.lens[i]);
    out.append("\r\n", 2);
  }
}

std::vector<command> connection_setup(const backend_url& url, std::string& db_text) {
  std::vector<command> setup;
  if (!url.password.empty()) {
    command auth;
    auth.add("AUTH");
    if (!url.user.empty()) auth.add(url.user);
    auth.add(url.password);
    setup.push_back(std::move(auth));
  }
  if (url.db != 0) {
    db_text = std::to_string(url.db);
    command select;
    select.add("SELECT");
    select.add(db_text);
    setup.push_back(std::move(select));
  }
  return setup;
}

command set_command(std::string_view key, std::string_view value, std::int64_t ttl_ms, std::string& ttl_text) {
  ttl_text = std::to_string(ttl_ms);
  command c;
  c.add("SET");
  c.add(key);
  c.add(value);
  c.add("PX");
  c.add(ttl_text);
  return c;
}

command del_command(const std::vector<std::string_view>& keys) {
  command c;
  c.add("DEL");
  for (auto k : keys) c.add(k);
  return c;
}

command mget_command(const std::vector<std::string_view>& keys) {
  command c;
  c.add("MGET");
  for (auto k : keys) c.add(k);
  return c;
}

command get_command(std::string_view key) {
  command c;
  c.add("GET");
  c.add(key);
  return c;
}

command pttl_command(std::string_view key) {
  command c;
  c.add("PTTL");
  c.add(key);
  return c;
}

lookup_result parse_lookup(const redisReply* value, const redisReply* pttl) {
  if (pttl->type == REDIS_REPLY_ERROR)
    throw backend_error(errc::backend, "Redis replied: " + std::string(pttl->str, pttl->len));
  lookup_result r;
  if (value->type == REDIS_REPLY_STRING) {
    r.found = true;
    r.value.assign(value->str, value->len);
    r.ttl_ms = remaining_ttl_ms(pttl);
  }
  return r;
}

command lock_command(std::string_view lock_key, std::string_view token, std::string_view ttl_text) {
  command c;
  for (std::string_view part : {std::string_view("SET"), lock_key, token, std::string_view("NX"),
                                std::string_view("PX"), ttl_text})
    c.add(part);
  return c;
}

command unlock_command(std::string_view lock_key, std::string_view token) {
  // Delete only our own lock: after our TTL ran out another process may hold it now.
  static constexpr std::string_view release_script =
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
  command c;
  for (std::string_view part : {std::string_view("EVAL"), release_script, std::string_view("1"), lock_key, token})
    c.add(part);
  return c;
}

lease_result lease_from(const redisReply* set_nx, const redisReply* value, const redisReply* pttl) {
  throw_if_error(set_nx);
  lease_result r;
  if (set_nx->type == REDIS_REPLY_STATUS) {
    r.granted = true;  // OK; NIL when the key exists
    return r;
  }
  r.current = parse_lookup(value, pttl);
  r.wrong_type = value->type == REDIS_REPLY_ERROR && std::string_view(value->str, value->len).substr(0, 9) == "WRONGTYPE";
  return r;
}

command store_leased_command(std::string_view key, std::string_view placeholder, std::string_view value,
                             std::string_view ttl_text) {
  static constexpr std::string_view store_script =
      "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3]) "
      "return 1 else return 0 end";
  command c;
  for (std::string_view part :
       {std::string_view("EVAL"), store_script, std::string_view("1"), key, placeholder, value, ttl_text})
    c.add(part);
  return c;
}

std::int64_t remaining_ttl_ms(const redisReply* pttl) {
  if (!pttl || pttl->type != REDIS_REPLY_INTEGER) return 0;
  if (pttl->integer == -1) return 0;
  if (pttl->integer < 1) return 1;
  return pttl->integer;
}

bool is_outage_reply(std::string_view error_text) {
  static constexpr std::string_view outages[] = {"LOADING",  "BUSY",     "CLUSTERDOWN", "MASTERDOWN",
                                                 "TRYAGAIN", "READONLY", "NOAUTH",      "WRONGPASS"};
  const std::string_view code = error_text.substr(0, error_text.find(' '));
  for (std::string_view o : outages)
    if (code == o) return true;
  return false;
}

}  // namespace httpcache::detail
