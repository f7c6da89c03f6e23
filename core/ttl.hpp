// SPDX-License-Identifier: MIT
// TTL policies and time zones. ICU lives only in ttl.cpp; this header stays ICU-free.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace httpcache {

// An IANA time zone, loaded once and shared (immutable, so safe across threads).
class time_zone {
 public:
  // Throws error(errc::invalid) for an empty or unknown zone.
  static time_zone load(std::string_view id);
  const std::string& id() const noexcept;

  struct impl;
  const impl& get() const noexcept { return *impl_; }

 private:
  explicit time_zone(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

enum class ttl_kind : int { seconds = 1, end_of_day = 2, end_of_week = 3, callback = 4 };

struct ttl_policy {
  ttl_kind kind = ttl_kind::end_of_day;
  std::int64_t seconds = 0;                   // for ttl_kind::seconds
  std::function<std::int64_t()> callback;     // for ttl_kind::callback
};

// Throws error(errc::invalid) for an unknown kind, seconds <= 0 or a missing callback: what can be
// checked without computing, so a bad policy is refused before any work is done.
// The longest TTL any policy may give: one documented bound, checked before any I/O, so that a
// huge TTL is a clear EINVALID instead of an expiry a backend refuses (Redis: "invalid expire
// time", counted as an outage) or overflows (milliseconds past the epoch in an int64).
inline constexpr std::int64_t max_ttl_seconds = 10LL * 365 * 24 * 3600;

void validate_ttl_policy(const ttl_policy& policy);

// Seconds from now_ms until the policy expires an entry, >= 1. End of day/week are the first
// instant of the next local day / next Monday in tz, strictly after now, DST-correct.
// Throws error(errc::invalid) for a bad policy or a callback result <= 0.
std::int64_t ttl_seconds(const ttl_policy& policy, const time_zone& tz, std::int64_t now_ms);

// The IANA time zone database release ICU answers with, e.g. "2024a" (static; "" if ICU cannot
// tell). With HTTPCACHE_BUNDLED_ICU (the Python wheels) that is the data linked into the
// library, or ICU_TIMEZONE_FILES_DIR's zoneinfo64.res when that is set: never files from ICU's
// data directory or ICU_DATA, which belong to whatever ICU the host has.
const std::string& tzdata_version();

// Milliseconds since the epoch, from the system clock (what end-of-day is measured against).
std::int64_t now_unix_ms();

}  // namespace httpcache
