/* SPDX-License-Identifier: MIT
 * TTL policies through httpcache_ttl_compute() and httpcache_cache_ttl(): end of day and end of week
 * across DST changes (including skipped and repeated midnights), rounding, fixed seconds, callbacks
 * and invalid arguments. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "httpcache.h"
#include "support.h"

/* One fixed instant and the TTL the library must give for it. */
typedef struct ttl_case {
  const char *name;
  const char *zone;
  httpcache_ttl_kind kind;
  int64_t now_ms; /* Unix milliseconds */
  int64_t expected;
} ttl_case;

/* Every expected value below was computed independently of ICU, with Python 3.11's zoneinfo over the
 * system tzdata 2025b: the instant is the wall time in the comment (fold=1 for the second occurrence
 * of a repeated time), and the expected TTL is ceil((t - now) / 1000 s), at least 1, where t is the
 * first whole minute strictly after now whose local date is the next day (end of day) or the next
 * Monday (end of week). Each comment reads "now <local wall time> -> <first instant of that day>".
 * ICU 72 (the library's) ships tzdata 2022e; its UTC offsets were checked equal to Python's every
 * 15 minutes over each period used here (2024-2025; 2018 for America/Sao_Paulo and Dec 2011-Jan 2012
 * for Pacific/Apia, the two historical cases). Recent dates where the two disagree (Africa/Cairo's
 * DST, reinstated in 2023 and unknown to tzdata 2022e) are deliberately not used.
 * Skipped midnights: America/Santiago (Sat 24:00 -> Sun 01:00), Asia/Beirut and America/Havana
 * (00:00 -> 01:00), America/Sao_Paulo 2018-11-04, and Pacific/Apia, which skipped all of 2011-12-30.
 * Repeated midnight: America/Havana falls back 01:00 CDT -> 00:00 CST; Asia/Beirut and
 * America/Santiago fall back at 00:00 to 23:00, repeating the hour before midnight. */

static const ttl_case utc_cases[] = {
  /* now 2025-03-12 Wed 12:00:00.000 UTC (UTC+00:00) -> 2025-03-13 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_noon", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741780800000), 43200},
  /* now 2025-03-12 Wed 00:00:00.000 UTC (UTC+00:00) -> 2025-03-13 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_midnight", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741737600000), 86400},
  /* now 2025-03-12 Wed 23:59:59.999 UTC (UTC+00:00) -> 2025-03-13 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_1ms_before_midnight", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741823999999), 1},
  /* now 2025-03-12 Wed 12:00:00.001 UTC (UTC+00:00) -> 2025-03-13 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_noon_plus_1ms", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741780800001), 43200},
  /* now 2025-03-12 Wed 23:59:59.000 UTC (UTC+00:00) -> 2025-03-13 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_1s_before_midnight", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741823999000), 1},
  /* now 2024-12-31 Tue 12:00:00.000 UTC (UTC+00:00) -> 2025-01-01 Wed 00:00:00.000 UTC (UTC+00:00) */
  {"utc_new_years_eve", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1735646400000), 43200},
  /* now 2024-02-28 Wed 18:00:00.000 UTC (UTC+00:00) -> 2024-02-29 Thu 00:00:00.000 UTC (UTC+00:00) */
  {"utc_leap_day_eve", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1709143200000), 21600},
  /* now 2024-02-29 Thu 00:00:00.000 UTC (UTC+00:00) -> 2024-03-01 Fri 00:00:00.000 UTC (UTC+00:00) */
  {"utc_leap_day", "UTC", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1709164800000), 86400},
};

static const ttl_case utc_week_cases[] = {
  /* now 2025-03-10 Mon 00:00:00.000 UTC (UTC+00:00) -> 2025-03-17 Mon 00:00:00.000 UTC (UTC+00:00) */
  {"utc_week_monday_midnight", "UTC", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1741564800000), 604800},
  /* now 2025-03-12 Wed 12:00:00.000 UTC (UTC+00:00) -> 2025-03-17 Mon 00:00:00.000 UTC (UTC+00:00) */
  {"utc_week_wednesday_noon", "UTC", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1741780800000), 388800},
  /* now 2025-03-16 Sun 23:59:59.999 UTC (UTC+00:00) -> 2025-03-17 Mon 00:00:00.000 UTC (UTC+00:00) */
  {"utc_week_sunday_last_ms", "UTC", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1742169599999), 1},
  /* now 2025-03-16 Sun 12:00:00.000 UTC (UTC+00:00) -> 2025-03-17 Mon 00:00:00.000 UTC (UTC+00:00) */
  {"utc_week_sunday_noon", "UTC", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1742126400000), 43200},
  /* now 2025-12-31 Wed 12:00:00.000 UTC (UTC+00:00) -> 2026-01-05 Mon 00:00:00.000 UTC (UTC+00:00) */
  {"utc_week_over_new_year", "UTC", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1767182400000), 388800},
};

static const ttl_case ny_cases[] = {
  /* now 2025-01-15 Wed 00:00:00.000 EST (UTC-05:00) -> 2025-01-16 Thu 00:00:00.000 EST (UTC-05:00) */
  {"ny_normal_midnight", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1736917200000), 86400},
  /* now 2025-03-09 Sun 00:00:00.000 EST (UTC-05:00) -> 2025-03-10 Mon 00:00:00.000 EDT (UTC-04:00) */
  {"ny_spring_day_midnight", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741496400000), 82800},
  /* now 2025-03-08 Sat 12:00:00.000 EST (UTC-05:00) -> 2025-03-09 Sun 00:00:00.000 EST (UTC-05:00) */
  {"ny_spring_eve_noon", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741453200000), 43200},
  /* now 2025-03-09 Sun 01:59:59.999 EST (UTC-05:00) -> 2025-03-10 Mon 00:00:00.000 EDT (UTC-04:00) */
  {"ny_spring_before_gap", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741503599999), 75601},
  /* now 2025-03-09 Sun 03:00:00.000 EDT (UTC-04:00) -> 2025-03-10 Mon 00:00:00.000 EDT (UTC-04:00) */
  {"ny_spring_after_gap", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741503600000), 75600},
  /* now 2025-11-02 Sun 00:00:00.000 EDT (UTC-04:00) -> 2025-11-03 Mon 00:00:00.000 EST (UTC-05:00) */
  {"ny_fall_day_midnight", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762056000000), 90000},
  /* now 2025-11-02 Sun 01:30:00.000 EDT (UTC-04:00) -> 2025-11-03 Mon 00:00:00.000 EST (UTC-05:00) */
  {"ny_fall_0130_first", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762061400000), 84600},
  /* now 2025-11-02 Sun 01:30:00.000 EST (UTC-05:00) -> 2025-11-03 Mon 00:00:00.000 EST (UTC-05:00) */
  {"ny_fall_0130_second", "America/New_York", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762065000000), 81000},
};

static const ttl_case week_dst_cases[] = {
  /* now 2025-03-03 Mon 00:00:00.000 EST (UTC-05:00) -> 2025-03-10 Mon 00:00:00.000 EDT (UTC-04:00) */
  {"ny_week_spring", "America/New_York", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1740978000000), 601200},
  /* now 2025-10-27 Mon 00:00:00.000 EDT (UTC-04:00) -> 2025-11-03 Mon 00:00:00.000 EST (UTC-05:00) */
  {"ny_week_fall", "America/New_York", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1761537600000), 608400},
  /* now 2025-03-06 Thu 18:30:00.250 EST (UTC-05:00) -> 2025-03-10 Mon 00:00:00.000 EDT (UTC-04:00) */
  {"ny_week_spring_thursday", "America/New_York", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1741303800250), 275400},
  /* now 2025-03-24 Mon 00:00:00.000 GMT (UTC+00:00) -> 2025-03-31 Mon 00:00:00.000 BST (UTC+01:00) */
  {"london_week_spring", "Europe/London", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1742774400000), 601200},
  /* now 2025-10-20 Mon 00:00:00.000 BST (UTC+01:00) -> 2025-10-27 Mon 00:00:00.000 GMT (UTC+00:00) */
  {"london_week_fall", "Europe/London", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1760914800000), 608400},
  /* now 2025-03-31 Mon 00:00:00.000 +11 (UTC+11:00) -> 2025-04-07 Mon 00:00:00.000 +1030 (UTC+10:30) */
  {"lordhowe_week_end_dst", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1743339600000), 606600},
  /* now 2025-09-29 Mon 00:00:00.000 +1030 (UTC+10:30) -> 2025-10-06 Mon 00:00:00.000 +11 (UTC+11:00) */
  {"lordhowe_week_start_dst", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1759066200000), 603000},
  /* now 2025-02-17 Mon 00:00:00.000 +01 (UTC+01:00) -> 2025-02-24 Mon 00:00:00.000 +00 (UTC+00:00) */
  {"casa_week_to_plus0", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1739746800000), 608400},
  /* now 2025-03-31 Mon 00:00:00.000 +00 (UTC+00:00) -> 2025-04-07 Mon 00:00:00.000 +01 (UTC+01:00) */
  {"casa_week_to_plus1", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1743379200000), 601200},
};

static const ttl_case london_cases[] = {
  /* now 2025-03-30 Sun 00:00:00.000 GMT (UTC+00:00) -> 2025-03-31 Mon 00:00:00.000 BST (UTC+01:00) */
  {"london_spring_day_midnight", "Europe/London", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743292800000), 82800},
  /* now 2025-10-26 Sun 00:00:00.000 BST (UTC+01:00) -> 2025-10-27 Mon 00:00:00.000 GMT (UTC+00:00) */
  {"london_fall_day_midnight", "Europe/London", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761433200000), 90000},
  /* now 2025-10-26 Sun 01:30:00.000 BST (UTC+01:00) -> 2025-10-27 Mon 00:00:00.000 GMT (UTC+00:00) */
  {"london_fall_0130_first", "Europe/London", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761438600000), 84600},
  /* now 2025-10-26 Sun 01:30:00.000 GMT (UTC+00:00) -> 2025-10-27 Mon 00:00:00.000 GMT (UTC+00:00) */
  {"london_fall_0130_second", "Europe/London", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761442200000), 81000},
  /* now 2025-07-01 Tue 23:00:00.500 BST (UTC+01:00) -> 2025-07-02 Wed 00:00:00.000 BST (UTC+01:00) */
  {"london_summer_evening", "Europe/London", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1751407200500), 3600},
};

static const ttl_case lordhowe_cases[] = {
  /* now 2025-04-06 Sun 00:00:00.000 +11 (UTC+11:00) -> 2025-04-07 Mon 00:00:00.000 +1030 (UTC+10:30) */
  {"lordhowe_end_day_midnight", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743858000000), 88200},
  /* now 2025-10-05 Sun 00:00:00.000 +1030 (UTC+10:30) -> 2025-10-06 Mon 00:00:00.000 +11 (UTC+11:00) */
  {"lordhowe_start_day_midnight", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1759584600000), 84600},
  /* now 2025-04-06 Sun 01:45:00.000 +11 (UTC+11:00) -> 2025-04-07 Mon 00:00:00.000 +1030 (UTC+10:30) */
  {"lordhowe_end_0145_first", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743864300000), 81900},
  /* now 2025-04-06 Sun 01:45:00.000 +1030 (UTC+10:30) -> 2025-04-07 Mon 00:00:00.000 +1030 (UTC+10:30) */
  {"lordhowe_end_0145_second", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743866100000), 80100},
  /* now 2025-10-05 Sun 02:30:00.000 +11 (UTC+11:00) -> 2025-10-06 Mon 00:00:00.000 +11 (UTC+11:00) */
  {"lordhowe_start_after_gap", "Australia/Lord_Howe", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1759591800000), 77400},
};

static const ttl_case casablanca_cases[] = {
  /* now 2025-02-23 Sun 00:00:00.000 +01 (UTC+01:00) -> 2025-02-24 Mon 00:00:00.000 +00 (UTC+00:00) */
  {"casa_to_plus0_day_midnight", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1740265200000), 90000},
  /* now 2025-02-23 Sun 02:30:00.000 +01 (UTC+01:00) -> 2025-02-24 Mon 00:00:00.000 +00 (UTC+00:00) */
  {"casa_to_plus0_0230_first", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1740274200000), 81000},
  /* now 2025-02-23 Sun 02:30:00.000 +00 (UTC+00:00) -> 2025-02-24 Mon 00:00:00.000 +00 (UTC+00:00) */
  {"casa_to_plus0_0230_second", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1740277800000), 77400},
  /* now 2025-04-06 Sun 00:00:00.000 +00 (UTC+00:00) -> 2025-04-07 Mon 00:00:00.000 +01 (UTC+01:00) */
  {"casa_to_plus1_day_midnight", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743897600000), 82800},
  /* now 2025-03-15 Sat 00:00:00.000 +00 (UTC+00:00) -> 2025-03-16 Sun 00:00:00.000 +00 (UTC+00:00) */
  {"casa_ramadan_midnight", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741996800000), 86400},
  /* now 2024-03-10 Sun 00:00:00.000 +01 (UTC+01:00) -> 2024-03-11 Mon 00:00:00.000 +00 (UTC+00:00) */
  {"casa_2024_to_plus0_midnight", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1710025200000), 90000},
  /* now 2024-04-14 Sun 00:00:00.000 +00 (UTC+00:00) -> 2024-04-15 Mon 00:00:00.000 +01 (UTC+01:00) */
  {"casa_2024_to_plus1_midnight", "Africa/Casablanca", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1713052800000), 82800},
};

static const ttl_case kolkata_cases[] = {
  /* now 2025-03-09 Sun 00:00:00.000 IST (UTC+05:30) -> 2025-03-10 Mon 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_midnight", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741458600000), 86400},
  /* now 2025-03-09 Sun 12:34:56.789 IST (UTC+05:30) -> 2025-03-10 Mon 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_afternoon", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741503896789), 41104},
  /* now 2025-03-09 Sun 23:59:59.999 IST (UTC+05:30) -> 2025-03-10 Mon 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_last_ms", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741544999999), 1},
  /* now 2025-12-31 Wed 23:00:00.001 IST (UTC+05:30) -> 2026-01-01 Thu 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_new_years_eve", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1767202200001), 3600},
};

static const ttl_case kolkata_week_cases[] = {
  /* now 2025-03-10 Mon 00:00:00.000 IST (UTC+05:30) -> 2025-03-17 Mon 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_week_monday", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1741545000000), 604800},
  /* now 2025-03-15 Sat 05:30:00.000 IST (UTC+05:30) -> 2025-03-17 Mon 00:00:00.000 IST (UTC+05:30) */
  {"kolkata_week_saturday", "Asia/Kolkata", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1741996800000), 153000},
};

static const ttl_case skipped_cases[] = {
  /* now 2024-09-07 Sat 00:00:00.000 -04 (UTC-04:00) -> 2024-09-08 Sun 01:00:00.000 -03 (UTC-03:00) */
  {"santiago_eve_midnight", "America/Santiago", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1725681600000), 86400},
  /* now 2024-09-07 Sat 23:59:59.999 -04 (UTC-04:00) -> 2024-09-08 Sun 01:00:00.000 -03 (UTC-03:00) */
  {"santiago_eve_last_ms", "America/Santiago", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1725767999999), 1},
  /* now 2024-09-08 Sun 01:00:00.000 -03 (UTC-03:00) -> 2024-09-09 Mon 00:00:00.000 -03 (UTC-03:00) */
  {"santiago_day_start_0100", "America/Santiago", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1725768000000), 82800},
  /* now 2024-09-02 Mon 00:00:00.000 -04 (UTC-04:00) -> 2024-09-09 Mon 00:00:00.000 -03 (UTC-03:00) */
  {"santiago_week_over_gap", "America/Santiago", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1725249600000), 601200},
  /* now 2018-11-03 Sat 00:00:00.000 -03 (UTC-03:00) -> 2018-11-04 Sun 01:00:00.000 -02 (UTC-02:00) */
  {"saopaulo_eve_midnight", "America/Sao_Paulo", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1541214000000), 86400},
  /* now 2018-11-03 Sat 23:30:00.000 -03 (UTC-03:00) -> 2018-11-04 Sun 01:00:00.000 -02 (UTC-02:00) */
  {"saopaulo_eve_2330", "America/Sao_Paulo", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1541298600000), 1800},
  /* now 2018-11-04 Sun 01:00:00.000 -02 (UTC-02:00) -> 2018-11-05 Mon 00:00:00.000 -02 (UTC-02:00) */
  {"saopaulo_day_start_0100", "America/Sao_Paulo", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1541300400000), 82800},
  /* now 2025-03-29 Sat 00:00:00.000 EET (UTC+02:00) -> 2025-03-30 Sun 01:00:00.000 EEST (UTC+03:00) */
  {"beirut_eve_midnight", "Asia/Beirut", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743199200000), 86400},
  /* now 2025-03-29 Sat 23:59:00.000 EET (UTC+02:00) -> 2025-03-30 Sun 01:00:00.000 EEST (UTC+03:00) */
  {"beirut_eve_2359", "Asia/Beirut", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743285540000), 60},
  /* now 2025-03-08 Sat 00:00:00.000 CST (UTC-05:00) -> 2025-03-09 Sun 01:00:00.000 CDT (UTC-04:00) */
  {"havana_eve_midnight", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741410000000), 86400},
  /* now 2025-03-08 Sat 12:00:00.000 CST (UTC-05:00) -> 2025-03-09 Sun 01:00:00.000 CDT (UTC-04:00) */
  {"havana_eve_noon", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1741453200000), 43200},
  /* now 2011-12-29 Thu 12:00:00.000 -10 (UTC-10:00) -> 2011-12-31 Sat 00:00:00.000 +14 (UTC+14:00) */
  {"apia_day_before_skipped_day", "Pacific/Apia", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1325196000000), 43200},
  /* now 2011-12-27 Tue 00:00:00.000 -10 (UTC-10:00) -> 2012-01-02 Mon 00:00:00.000 +14 (UTC+14:00) */
  {"apia_week_over_skipped_day", "Pacific/Apia", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1324980000000), 432000},
};

static const ttl_case repeated_cases[] = {
  /* now 2025-11-01 Sat 12:00:00.000 CDT (UTC-04:00) -> 2025-11-02 Sun 00:00:00.000 CDT (UTC-04:00) */
  {"havana_rep_eve_noon", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762012800000), 43200},
  /* now 2025-11-01 Sat 23:59:59.999 CDT (UTC-04:00) -> 2025-11-02 Sun 00:00:00.000 CDT (UTC-04:00) */
  {"havana_rep_eve_last_ms", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762055999999), 1},
  /* now 2025-11-02 Sun 00:00:00.000 CDT (UTC-04:00) -> 2025-11-03 Mon 00:00:00.000 CST (UTC-05:00) */
  {"havana_rep_first_midnight", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762056000000), 90000},
  /* now 2025-11-02 Sun 00:00:00.000 CST (UTC-05:00) -> 2025-11-03 Mon 00:00:00.000 CST (UTC-05:00) */
  {"havana_rep_second_midnight", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762059600000), 86400},
  /* now 2025-11-02 Sun 00:30:00.000 CST (UTC-05:00) -> 2025-11-03 Mon 00:00:00.000 CST (UTC-05:00) */
  {"havana_rep_0030_second", "America/Havana", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1762061400000), 84600},
  /* now 2025-10-27 Mon 00:00:00.000 CDT (UTC-04:00) -> 2025-11-03 Mon 00:00:00.000 CST (UTC-05:00) */
  {"havana_rep_week", "America/Havana", HTTPCACHE_TTL_END_OF_WEEK, INT64_C(1761537600000), 608400},
  /* now 2025-10-25 Sat 00:00:00.000 EEST (UTC+03:00) -> 2025-10-26 Sun 00:00:00.000 EET (UTC+02:00) */
  {"beirut_fall_eve_midnight", "Asia/Beirut", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761339600000), 90000},
  /* now 2025-10-25 Sat 23:30:00.000 EEST (UTC+03:00) -> 2025-10-26 Sun 00:00:00.000 EET (UTC+02:00) */
  {"beirut_fall_2330_first", "Asia/Beirut", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761424200000), 5400},
  /* now 2025-10-25 Sat 23:30:00.000 EET (UTC+02:00) -> 2025-10-26 Sun 00:00:00.000 EET (UTC+02:00) */
  {"beirut_fall_2330_second", "Asia/Beirut", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1761427800000), 1800},
  /* now 2025-04-05 Sat 23:30:00.000 -03 (UTC-03:00) -> 2025-04-06 Sun 00:00:00.000 -04 (UTC-04:00) */
  {"santiago_fall_2330_first", "America/Santiago", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743906600000), 5400},
  /* now 2025-04-05 Sat 23:30:00.000 -04 (UTC-04:00) -> 2025-04-06 Sun 00:00:00.000 -04 (UTC-04:00) */
  {"santiago_fall_2330_second", "America/Santiago", HTTPCACHE_TTL_END_OF_DAY, INT64_C(1743910200000), 1800},
};


#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* Runs every case through httpcache_ttl_compute() (cache NULL) or httpcache_cache_ttl() (cache set,
 * the case's zone then being the handle's), and reports every mismatch before failing. */
static void check_cases(const ttl_case *cases, size_t n, const httpcache_cache *cache) {
  size_t i;
  int failures = 0;
  for (i = 0; i < n; ++i) {
    httpcache_ttl_policy policy = {cases[i].kind, 0, NULL, NULL};
    int64_t got = -12345;
    int rc = cache ? httpcache_cache_ttl(&got, cache, &policy, cases[i].now_ms)
                   : httpcache_ttl_compute(&got, &policy, cases[i].zone, cases[i].now_ms);
    if (rc != HTTPCACHE_OK || got != cases[i].expected) {
      print_error("%s (%s, now_ms %lld): rc %d (%s), ttl %lld s, expected %lld s\n", cases[i].name,
                  cases[i].zone, (long long)cases[i].now_ms, rc, httpcache_error_last()->message,
                  (long long)got, (long long)cases[i].expected);
      ++failures;
    }
  }
  assert_int_equal(failures, 0);
}

/** End of day in UTC: the next midnight, a full day from midnight itself, 1 s from the last ms. */
static void test_ttl_end_of_day_utc(void **state) {
  (void)state;
  check_cases(utc_cases, NCASES(utc_cases), NULL);
}

/** End of week in UTC: the next Monday 00:00, 7 days from Monday 00:00 itself. */
static void test_ttl_end_of_week_utc(void **state) {
  (void)state;
  check_cases(utc_week_cases, NCASES(utc_week_cases), NULL);
}

/** A NULL or empty zone name means UTC. */
static void test_ttl_null_or_empty_zone_is_utc(void **state) {
  httpcache_ttl_policy eod = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  httpcache_ttl_policy eow = {HTTPCACHE_TTL_END_OF_WEEK, 0, NULL, NULL};
  int64_t out = 0;
  (void)state;
  /* 2025-03-12 Wed 12:00:00 UTC: 12 h to midnight, 4.5 days to Monday. */
  assert_int_equal(httpcache_ttl_compute(&out, &eod, NULL, INT64_C(1741780800000)), HTTPCACHE_OK);
  assert_int_equal(out, 43200);
  assert_int_equal(httpcache_ttl_compute(&out, &eod, "", INT64_C(1741780800000)), HTTPCACHE_OK);
  assert_int_equal(out, 43200);
  assert_int_equal(httpcache_ttl_compute(&out, &eow, NULL, INT64_C(1741780800000)), HTTPCACHE_OK);
  assert_int_equal(out, 388800);
  assert_int_equal(httpcache_ttl_compute(&out, &eow, "", INT64_C(1741780800000)), HTTPCACHE_OK);
  assert_int_equal(out, 388800);
}

/** America/New_York: 23-hour and 25-hour days, and both occurrences of the repeated 01:30. */
static void test_ttl_end_of_day_new_york_dst(void **state) {
  (void)state;
  check_cases(ny_cases, NCASES(ny_cases), NULL);
}

/** Europe/London: 23-hour and 25-hour days, the repeated 01:30, and a millisecond remainder. */
static void test_ttl_end_of_day_london_dst(void **state) {
  (void)state;
  check_cases(london_cases, NCASES(london_cases), NULL);
}

/** Australia/Lord_Howe shifts by 30 minutes: days of 24.5 h (April) and 23.5 h (October). */
static void test_ttl_end_of_day_lord_howe_half_hour_shift(void **state) {
  (void)state;
  check_cases(lordhowe_cases, NCASES(lordhowe_cases), NULL);
}

/** Africa/Casablanca leaves +01 for +00 around Ramadan (2024 and 2025): 25-hour and 23-hour days. */
static void test_ttl_end_of_day_casablanca_ramadan(void **state) {
  (void)state;
  check_cases(casablanca_cases, NCASES(casablanca_cases), NULL);
}

/** Asia/Kolkata (+05:30, no DST): every day is 24 h, local midnight is 18:30 UTC. */
static void test_ttl_end_of_day_kolkata_no_dst(void **state) {
  (void)state;
  check_cases(kolkata_cases, NCASES(kolkata_cases), NULL);
}

/** Asia/Kolkata end of week: Monday 00:00 IST. */
static void test_ttl_end_of_week_kolkata(void **state) {
  (void)state;
  check_cases(kolkata_week_cases, NCASES(kolkata_week_cases), NULL);
}

/** End of week across a DST change inside the week: 7 days minus or plus the shift. */
static void test_ttl_end_of_week_across_dst(void **state) {
  (void)state;
  check_cases(week_dst_cases, NCASES(week_dst_cases), NULL);
}

/** Where DST skips midnight (the day begins at 01:00), end of day is that first valid instant. */
static void test_ttl_end_of_day_skipped_midnight(void **state) {
  (void)state;
  check_cases(skipped_cases, NCASES(skipped_cases), NULL);
}

/** Where local time is repeated at or just before midnight, the next day starts at its first instant,
 * and a time in the repeated hour counts from the occurrence it really is. */
static void test_ttl_end_of_day_repeated_midnight(void **state) {
  (void)state;
  check_cases(repeated_cases, NCASES(repeated_cases), NULL);
}

/** TTLs are rounded up to whole seconds, never down, and never below 1. */
static void test_ttl_rounds_up_to_whole_seconds(void **state) {
  /* 2025-03-13 00:00:00.000 UTC, the first instant of a Thursday. */
  const int64_t midnight = INT64_C(1741824000000);
  httpcache_ttl_policy eod = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  int64_t out = 0, k;
  (void)state;
  for (k = 1; k <= 3001; ++k) {
    assert_int_equal(httpcache_ttl_compute(&out, &eod, "UTC", midnight - k), HTTPCACHE_OK);
    assert_int_equal(out, (k + 999) / 1000);
  }
  /* 1 ms after midnight: 86399.999 s left, rounds up to a full day. */
  assert_int_equal(httpcache_ttl_compute(&out, &eod, "UTC", midnight + 1), HTTPCACHE_OK);
  assert_int_equal(out, 86400);
  /* Exactly midnight: the NEXT midnight. */
  assert_int_equal(httpcache_ttl_compute(&out, &eod, "UTC", midnight), HTTPCACHE_OK);
  assert_int_equal(out, 86400);
  /* 999 ms after midnight: 86399.001 s left. */
  assert_int_equal(httpcache_ttl_compute(&out, &eod, "UTC", midnight + 999), HTTPCACHE_OK);
  assert_int_equal(out, 86400);
  /* 1000 ms after midnight: exactly 86399 s. */
  assert_int_equal(httpcache_ttl_compute(&out, &eod, "UTC", midnight + 1000), HTTPCACHE_OK);
  assert_int_equal(out, 86399);
}

/** A fixed TTL is returned as is, whatever the zone or the instant. */
static void test_ttl_fixed_seconds(void **state) {
  const int64_t values[] = {1, 59, 3600, 86400, INT64_C(31536000), HTTPCACHE_MAX_TTL_SECONDS};
  const char *zones[] = {NULL, "UTC", "America/New_York", "Australia/Lord_Howe"};
  const int64_t instants[] = {0, INT64_C(1741780800000), INT64_C(1762056000000)};
  size_t v, z, t;
  (void)state;
  for (v = 0; v < NCASES(values); ++v)
    for (z = 0; z < NCASES(zones); ++z)
      for (t = 0; t < NCASES(instants); ++t) {
        httpcache_ttl_policy p = {HTTPCACHE_TTL_SECONDS, values[v], NULL, NULL};
        int64_t out = -1;
        assert_int_equal(httpcache_ttl_compute(&out, &p, zones[z], instants[t]), HTTPCACHE_OK);
        assert_int_equal(out, values[v]);
      }
  {
    /* Over the maximum: refused, not clamped (issue 13, finding 10). */
    httpcache_ttl_policy p = {HTTPCACHE_TTL_SECONDS, INT64_C(4000000000), NULL, NULL};
    int64_t out = -1;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", 0), HTTPCACHE_EINVALID);
    p.seconds = HTTPCACHE_MAX_TTL_SECONDS + 1;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", 0), HTTPCACHE_EINVALID);
  }
}

/** A fixed TTL of 0 or fewer seconds is refused with EINVALID and a message. */
static void test_ttl_fixed_seconds_not_positive_is_invalid(void **state) {
  const int64_t values[] = {0, -1, -86400, INT64_MIN};
  size_t i;
  (void)state;
  for (i = 0; i < NCASES(values); ++i) {
    httpcache_ttl_policy p = {HTTPCACHE_TTL_SECONDS, values[i], NULL, NULL};
    int64_t out = 0;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", INT64_C(1741780800000)), HTTPCACHE_EINVALID);
    assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
    assert_true(strlen(httpcache_error_last()->message) > 0);
  }
}

typedef struct cb_state {
  int64_t value;
  int calls;
} cb_state;

static int64_t ttl_from_payload(void *payload) {
  cb_state *s = (cb_state *)payload;
  ++s->calls;
  return s->value;
}

/** A callback policy calls its callback once, with its payload, and returns what it returns. */
static void test_ttl_callback_returns_its_value(void **state) {
  const int64_t values[] = {1, 42, 86400, INT64_C(31536000)};
  size_t i;
  (void)state;
  for (i = 0; i < NCASES(values); ++i) {
    cb_state s = {values[i], 0};
    httpcache_ttl_policy p = {HTTPCACHE_TTL_CALLBACK, 0, ttl_from_payload, &s};
    int64_t out = 0;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "Europe/London", INT64_C(1761433200000)), HTTPCACHE_OK);
    assert_int_equal(out, values[i]);
    assert_int_equal(s.calls, 1);
  }
}

/** A callback returning 0 or a negative number fails the computation with EINVALID. */
static void test_ttl_callback_not_positive_is_invalid(void **state) {
  const int64_t values[] = {0, -1, -3600, INT64_MIN};
  size_t i;
  (void)state;
  for (i = 0; i < NCASES(values); ++i) {
    cb_state s = {values[i], 0};
    httpcache_ttl_policy p = {HTTPCACHE_TTL_CALLBACK, 0, ttl_from_payload, &s};
    int64_t out = 0;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", INT64_C(1741780800000)), HTTPCACHE_EINVALID);
    assert_int_equal(s.calls, 1);
    assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
    assert_true(strlen(httpcache_error_last()->message) > 0);
  }
}

/** A callback policy without a callback is refused with EINVALID. */
static void test_ttl_callback_null_is_invalid(void **state) {
  httpcache_ttl_policy p = {HTTPCACHE_TTL_CALLBACK, 0, NULL, NULL};
  int64_t out = 0;
  (void)state;
  assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", INT64_C(1741780800000)), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
}

/** A kind outside the enum is refused with EINVALID. */
static void test_ttl_unknown_kind_is_invalid(void **state) {
  const int kinds[] = {0, 5, 99, -1, 1000000};
  size_t i;
  (void)state;
  for (i = 0; i < NCASES(kinds); ++i) {
    httpcache_ttl_policy p;
    int64_t out = 0;
    memset(&p, 0, sizeof p);
    p.kind = kinds[i];
    p.seconds = 60;
    assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", INT64_C(1741780800000)), HTTPCACHE_EINVALID);
    assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
    assert_true(strlen(httpcache_error_last()->message) > 0);
  }
}

/** An unknown zone is refused with EINVALID, and the message names the zone. */
static void test_ttl_unknown_zone_is_invalid(void **state) {
  httpcache_ttl_policy p = {HTTPCACHE_TTL_END_OF_DAY, 0, NULL, NULL};
  httpcache_cache *cache = (httpcache_cache *)&p; /* must be reset to NULL */
  int64_t out = 0;
  (void)state;
  assert_int_equal(httpcache_ttl_compute(&out, &p, "Mars/Olympus", INT64_C(1741780800000)), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
  assert_non_null(strstr(httpcache_error_last()->message, "Mars/Olympus"));
  assert_int_equal(httpcache_cache_open(&cache, "memory://", NULL, "Mars/Olympus", NULL), HTTPCACHE_EINVALID);
  assert_null(cache);
  assert_non_null(strstr(httpcache_error_last()->message, "Mars/Olympus"));
}

/** NULL out or policy arguments give EINVALID with a message; a later success clears the last error. */
static void test_ttl_null_arguments_are_invalid(void **state) {
  httpcache_ttl_policy p = {HTTPCACHE_TTL_SECONDS, 60, NULL, NULL};
  httpcache_cache *cache = NULL;
  int64_t out = 0;
  (void)state;
  assert_int_equal(httpcache_ttl_compute(NULL, &p, "UTC", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
  assert_true(strlen(httpcache_error_last()->message) > 0);
  assert_int_equal(httpcache_ttl_compute(&out, NULL, "UTC", 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_ttl(&out, NULL, &p, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_open(&cache, "memory://", NULL, "UTC", NULL), HTTPCACHE_OK);
  assert_int_equal(httpcache_cache_ttl(NULL, cache, &p, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_cache_ttl(&out, cache, NULL, 0), HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_EINVALID);
  assert_int_equal(httpcache_ttl_compute(&out, &p, "UTC", 0), HTTPCACHE_OK);
  assert_int_equal(out, 60);
  assert_int_equal(httpcache_error_last()->code, HTTPCACHE_OK);
  assert_string_equal(httpcache_error_last()->message, "no error");
  httpcache_cache_free(cache);
}

/** httpcache_cache_ttl() computes in the zone the memory:// handle was opened with. */
static void test_ttl_cache_ttl_uses_handle_zone(void **state) {
  struct {
    const char *zone;
    const ttl_case *cases;
    size_t n;
  } groups[] = {
      {"Australia/Lord_Howe", lordhowe_cases, NCASES(lordhowe_cases)},
      {"America/New_York", ny_cases, NCASES(ny_cases)},
      {"Africa/Casablanca", casablanca_cases, NCASES(casablanca_cases)},
      {"America/Havana", NULL, 0},
  };
  size_t g, i, n;
  (void)state;
  for (g = 0; g < NCASES(groups); ++g) {
    httpcache_cache *cache = NULL;
    ttl_case picked[NCASES(repeated_cases) + NCASES(skipped_cases)];
    const ttl_case *cases = groups[g].cases;
    n = groups[g].n;
    assert_int_equal(httpcache_cache_open(&cache, "memory://", test_unique_namespace("ttl"), groups[g].zone, NULL),
                     HTTPCACHE_OK);
    assert_string_equal(httpcache_cache_timezone(cache), groups[g].zone);
    if (!cases) { /* Havana's skipped and repeated midnights, through the handle. */
      n = 0;
      for (i = 0; i < NCASES(skipped_cases); ++i)
        if (strcmp(skipped_cases[i].zone, groups[g].zone) == 0) picked[n++] = skipped_cases[i];
      for (i = 0; i < NCASES(repeated_cases); ++i)
        if (strcmp(repeated_cases[i].zone, groups[g].zone) == 0) picked[n++] = repeated_cases[i];
      assert_true(n > 0);
      cases = picked;
    }
    check_cases(cases, n, cache);
    httpcache_cache_free(cache);
  }
}

/** A memory:// handle opened without a zone computes in UTC. */
static void test_ttl_cache_ttl_default_zone_is_utc(void **state) {
  httpcache_cache *cache = NULL;
  (void)state;
  assert_int_equal(httpcache_cache_open(&cache, "memory://", test_unique_namespace("ttl"), NULL, NULL), HTTPCACHE_OK);
  assert_string_equal(httpcache_cache_timezone(cache), "UTC");
  check_cases(utc_cases, NCASES(utc_cases), cache);
  check_cases(utc_week_cases, NCASES(utc_week_cases), cache);
  httpcache_cache_free(cache);
}

/* The zone data's release: "YYYYx" (IANA's naming), the same storage on every call. What the
 * release is depends on the ICU linked; packaging/python/test-wheel.sh checks the wheels' own. */
static void test_ttl_tzdata_version_is_a_release_name(void **state) {
  (void)state;
  const char *v = httpcache_tzdata_version();
  assert_non_null(v);
  assert_int_equal(strlen(v), 5);
  for (int i = 0; i < 4; i++) assert_true(v[i] >= '0' && v[i] <= '9');
  assert_true(v[4] >= 'a' && v[4] <= 'z');
  assert_true(strncmp(v, "2022", 4) >= 0); /* ICU 72 shipped 2022e; older data would be a wrong ICU */
  assert_ptr_equal(httpcache_tzdata_version(), v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ttl_tzdata_version_is_a_release_name),
      cmocka_unit_test(test_ttl_end_of_day_utc),
      cmocka_unit_test(test_ttl_end_of_week_utc),
      cmocka_unit_test(test_ttl_null_or_empty_zone_is_utc),
      cmocka_unit_test(test_ttl_end_of_day_new_york_dst),
      cmocka_unit_test(test_ttl_end_of_day_london_dst),
      cmocka_unit_test(test_ttl_end_of_day_lord_howe_half_hour_shift),
      cmocka_unit_test(test_ttl_end_of_day_casablanca_ramadan),
      cmocka_unit_test(test_ttl_end_of_day_kolkata_no_dst),
      cmocka_unit_test(test_ttl_end_of_week_kolkata),
      cmocka_unit_test(test_ttl_end_of_week_across_dst),
      cmocka_unit_test(test_ttl_end_of_day_skipped_midnight),
      cmocka_unit_test(test_ttl_end_of_day_repeated_midnight),
      cmocka_unit_test(test_ttl_rounds_up_to_whole_seconds),
      cmocka_unit_test(test_ttl_fixed_seconds),
      cmocka_unit_test(test_ttl_fixed_seconds_not_positive_is_invalid),
      cmocka_unit_test(test_ttl_callback_returns_its_value),
      cmocka_unit_test(test_ttl_callback_not_positive_is_invalid),
      cmocka_unit_test(test_ttl_callback_null_is_invalid),
      cmocka_unit_test(test_ttl_unknown_kind_is_invalid),
      cmocka_unit_test(test_ttl_unknown_zone_is_invalid),
      cmocka_unit_test(test_ttl_null_arguments_are_invalid),
      cmocka_unit_test(test_ttl_cache_ttl_uses_handle_zone),
      cmocka_unit_test(test_ttl_cache_ttl_default_zone_is_utc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
