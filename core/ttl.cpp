// SPDX-License-Identifier: MIT
#include "ttl.hpp"

#include <fmt/format.h>
#include <unicode/gregocal.h>
#include <unicode/timezone.h>
#include <unicode/udata.h>
#include <unicode/unistr.h>

#include <chrono>
#include <map>
#include <mutex>

#include "error.hpp"
#include "fork.hpp"

namespace httpcache {

namespace {

// Runs before this file's first ICU call. A library that carries its own ICU (the wheels'
// private copy, its data trimmed to the time zones) reads only that data: ICU's default is to
// look for loose files in its data directory and ICU_DATA first, which on another host would
// mix that host's files into ours unannounced. ICU_TIMEZONE_FILES_DIR, the documented way to
// update the zones without a rebuild, is looked at before this rule, so it still applies.
void prepare_icu() {
#ifdef HTTPCACHE_BUNDLED_ICU
  static std::once_flag once;
  std::call_once(once, [] {
    UErrorCode status = U_ZERO_ERROR;
    udata_setFileAccess(UDATA_NO_FILES, &status);
  });
#endif
}

}  // namespace

const std::string& tzdata_version() {
  static const std::string version = [] {
    detail::fork_fence fence;
    prepare_icu();
    UErrorCode status = U_ZERO_ERROR;
    const char* v = icu::TimeZone::getTZDataVersion(status);
    return std::string(U_SUCCESS(status) && v ? v : "");
  }();
  return version;
}

struct time_zone::impl {
  std::string id;
  std::unique_ptr<icu::TimeZone> zone;
};

time_zone time_zone::load(std::string_view id) {
  if (id.empty()) throw error(errc::invalid, "time zone name is empty");
  if (id.size() > 128) throw error(errc::invalid, "time zone name is too long");
  // Zones are immutable and few, so each is loaded once per process: httpcache_ttl_compute(),
  // which takes a zone name per call, then costs a map lookup instead of an ICU zone load. The
  // lock also keeps ICU's lazy zone loading on one thread at a time. It is taken inside the fence
  // only, so no thread holds it while it waits for a fork.
  detail::fork_fence fence;
  prepare_icu();
  static std::mutex cache_mutex;
  static std::map<std::string, std::shared_ptr<const impl>, std::less<>> cache;
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (auto it = cache.find(id); it != cache.end()) return time_zone(it->second);
  auto uid = icu::UnicodeString::fromUTF8(icu::StringPiece(id.data(), static_cast<int32_t>(id.size())));
  std::unique_ptr<icu::TimeZone> zone(icu::TimeZone::createTimeZone(uid));
  icu::UnicodeString got;
  if (!zone || zone->getID(got) == icu::UnicodeString(UCAL_UNKNOWN_ZONE_ID))
    throw error(errc::invalid, fmt::format("unknown time zone '{}'", id));
  auto p = std::make_shared<impl>();
  p->id.assign(id);
  p->zone = std::move(zone);
  if (cache.size() < 1024) cache.emplace(p->id, p);  // bounded: zone names are few, but callers choose them
  return time_zone(std::move(p));
}

const std::string& time_zone::id() const noexcept { return impl_->id; }

std::int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

// The first instant of the local day `days_ahead` days after now's local date, strictly after now.
// Where DST skips midnight the day starts at the first valid time after it; where midnight occurs
// twice the first occurrence is the start of the day, unless now is already past it; if both are,
// the next candidate is step_days later.
std::int64_t next_day_start_ms(const icu::TimeZone& zone, std::int64_t now_ms, int days_ahead, int step_days) {
  UErrorCode status = U_ZERO_ERROR;
  icu::GregorianCalendar cal(zone, status);  // copies the zone: calendars are not thread-safe, zones are
  if (U_FAILURE(status)) throw error(errc::generic, "ICU calendar creation failed");
  cal.setTime(static_cast<UDate>(now_ms), status);
  const int32_t year = cal.get(UCAL_EXTENDED_YEAR, status);
  const int32_t month = cal.get(UCAL_MONTH, status);
  const int32_t day = cal.get(UCAL_DATE, status);
  if (U_FAILURE(status)) throw error(errc::generic, "ICU calendar field lookup failed");

  cal.setSkippedWallTimeOption(UCAL_WALLTIME_NEXT_VALID);
  for (int extra = 0; extra < 3; ++extra) {
    for (auto repeated : {UCAL_WALLTIME_FIRST, UCAL_WALLTIME_LAST}) {
      cal.setRepeatedWallTimeOption(repeated);
      cal.clear();
      cal.set(UCAL_EXTENDED_YEAR, year);
      cal.set(UCAL_MONTH, month);
      cal.set(UCAL_DATE, day + days_ahead + extra * step_days);
      cal.set(UCAL_HOUR_OF_DAY, 0);
      UDate start = cal.getTime(status);
      if (U_FAILURE(status)) throw error(errc::generic, "ICU date computation failed");
      auto start_ms = static_cast<std::int64_t>(start);
      if (start_ms > now_ms) return start_ms;
    }
  }
  throw error(errc::generic, "could not find the next local day start");
}

std::int64_t seconds_until(std::int64_t when_ms, std::int64_t now_ms) {
  std::int64_t secs = (when_ms - now_ms + 999) / 1000;  // round up: never expire early
  return secs < 1 ? 1 : secs;
}

int days_until_next_monday(const icu::TimeZone& zone, std::int64_t now_ms) {
  UErrorCode status = U_ZERO_ERROR;
  icu::GregorianCalendar cal(zone, status);
  cal.setTime(static_cast<UDate>(now_ms), status);
  int32_t dow = cal.get(UCAL_DAY_OF_WEEK, status);  // 1 = Sunday ... 7 = Saturday
  if (U_FAILURE(status)) throw error(errc::generic, "ICU day-of-week lookup failed");
  int days = (UCAL_MONDAY - dow + 7) % 7;
  return days == 0 ? 7 : days;
}

}  // namespace

void validate_ttl_policy(const ttl_policy& policy) {
  switch (policy.kind) {
    case ttl_kind::seconds:
      if (policy.seconds <= 0)
        throw error(errc::invalid, fmt::format("TTL must be > 0 seconds, got {}", policy.seconds));
      if (policy.seconds > max_ttl_seconds)
        throw error(errc::invalid, fmt::format("TTL of {} seconds is over the maximum of {} (10 years)",
                                               policy.seconds, max_ttl_seconds));
      return;
    case ttl_kind::end_of_day:
    case ttl_kind::end_of_week:
      return;
    case ttl_kind::callback:
      if (!policy.callback) throw error(errc::invalid, "TTL callback policy has no callback");
      return;
  }
  throw error(errc::invalid, fmt::format("unknown TTL policy kind {}", static_cast<int>(policy.kind)));
}

std::int64_t ttl_seconds(const ttl_policy& policy, const time_zone& tz, std::int64_t now_ms) {
  validate_ttl_policy(policy);
  switch (policy.kind) {
    case ttl_kind::seconds:
      return policy.seconds;
    case ttl_kind::end_of_day: {
      detail::fork_fence fence;  // ICU's calendars read its locale data under its own locks
      return seconds_until(next_day_start_ms(*tz.get().zone, now_ms, 1, 1), now_ms);
    }
    case ttl_kind::end_of_week: {
      detail::fork_fence fence;
      const auto& zone = *tz.get().zone;
      return seconds_until(next_day_start_ms(zone, now_ms, days_until_next_monday(zone, now_ms), 7), now_ms);
    }
    case ttl_kind::callback: {
      std::int64_t secs = policy.callback();
      if (secs <= 0 || secs > max_ttl_seconds)
        throw error(errc::invalid, fmt::format("TTL callback returned {} (must be 1..{})", secs, max_ttl_seconds));
      return secs;
    }
  }
  return 1;  // unreachable: validate_ttl_policy rejected every other kind
}

}  // namespace httpcache
