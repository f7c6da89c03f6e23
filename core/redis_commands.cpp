// SPDX-License-Identifier: MIT
#include "redis_commands.hpp"

namespace httpcache::detail {

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

std::int64_t remaining_ttl_ms(const redisReply* pttl) {
  if (!pttl || pttl->type != REDIS_REPLY_INTEGER) return 0;
  if (pttl->integer == -1) return 0;
  if (pttl->integer < 1) return 1;
  return pttl->integer;
}

}  // namespace httpcache::detail
