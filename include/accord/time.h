// accord/time.h — instants, calendar durations and fixed UTC offsets.
//
// An `Instant` is a count of microseconds since 1970-01-01T00:00:00Z. Agreements are written in
// civil time ("in force 2016-11-23, term one year, zone +09:00"), so calendar arithmetic happens on
// the clock of a fixed UTC offset: `AddCalendar` adds years and months first (clamping the day to
// the month's last day), then days, then the time part, exactly as DESIGN.md §2 says.
//
// Supported range: years 0001 to 9999; anything that would leave it is an error, never wraps.
//
// Thread safety: pure functions and plain values.
#ifndef ACCORD_TIME_H_
#define ACCORD_TIME_H_

#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "accord/status.h"

namespace accord {

// A point in time, microseconds since the Unix epoch, UTC.
struct Instant {
  int64_t micros = 0;

  static constexpr Instant FromSeconds(int64_t s) { return Instant{s * 1'000'000}; }
  // Sentinels for open intervals: "never ends" and "since forever".
  static constexpr Instant Max() { return Instant{std::numeric_limits<int64_t>::max()}; }
  static constexpr Instant Min() { return Instant{std::numeric_limits<int64_t>::min()}; }

  friend constexpr auto operator<=>(Instant, Instant) = default;
};

// A fixed offset from UTC in minutes (+09:00 is 540). accord needs no tz database: agreements name
// an offset, not a political zone.
struct ZoneOffset {
  int32_t minutes = 0;
  friend constexpr bool operator==(ZoneOffset, ZoneOffset) = default;
};

// An ISO 8601 duration: PnYnMnWnDTnHnMnS. Calendar parts stay separate because a month is not a
// fixed number of days. `seconds` holds the time part (hours, minutes, seconds).
struct CalendarDuration {
  int32_t years = 0;
  int32_t months = 0;
  int32_t days = 0;
  int64_t seconds = 0;

  [[nodiscard]] bool IsZero() const {
    return years == 0 && months == 0 && days == 0 && seconds == 0;
  }
  friend bool operator==(const CalendarDuration&, const CalendarDuration&) = default;
};

// Parses "+09:00", "-05:30", "Z" or "+00:00". Offsets beyond ±23:59 are errors.
[[nodiscard]] Result<ZoneOffset> ParseZoneOffset(std::string_view text);
[[nodiscard]] std::string FormatZoneOffset(ZoneOffset zone);

// Parses an RFC 3339 date-time that carries an offset: "2019-08-23T15:25:00+09:00",
// "2019-08-23T06:25:00Z", with optional fractional seconds (up to microseconds are kept). A 't',
// 'z' or a single space in place of 'T' are accepted as RFC 3339 §5.6 allows, and so is a time
// without seconds ("2019-11-23T00:00+09:00", as DESIGN.md writes instants). The instant must be
// in years 0001–9999 both on its own clock and in UTC.
[[nodiscard]] Result<Instant> ParseInstant(std::string_view text);

// Like ParseInstant, but a plain date "2019-08-23" (or a date-time without an offset) is read on
// the clock of `zone`. Used for policy files and `--at` where DESIGN.md §4 allows plain dates.
[[nodiscard]] Result<Instant> ParseInstantInZone(std::string_view text, ZoneOffset zone);

// Formats as RFC 3339 on the clock of `zone`: "2019-11-23T00:00:00+09:00". Fractional seconds
// are printed only when non-zero. Instant::Max() prints as "never". An instant whose date on that
// clock falls outside years 0001–9999 is printed in UTC.
[[nodiscard]] std::string FormatInstant(Instant t, ZoneOffset zone = {});

// The instant for a civil date and time of day on the clock of `zone`.
[[nodiscard]] Result<Instant> FromCivil(int year, unsigned month, unsigned day,
                                        int64_t seconds_of_day, ZoneOffset zone);

// Parses an ISO 8601 duration ("P1Y", "P90D", "P1Y2M10DT2H30M", "P2W"). Negative or empty
// durations ("P", "PT") are errors; so are fractional values.
[[nodiscard]] Result<CalendarDuration> ParseDuration(std::string_view text);
[[nodiscard]] std::string FormatDuration(const CalendarDuration& d);

// The direction of a calendar step.
enum class Direction { kForward, kBackward };

// t + factor·d (or t − factor·d) on the clock of `zone`: years and months first, the day clamped
// to the month's last day, then days, then the time part. `factor` multiplies the duration before
// it is applied, so A_k = AddCalendar(in_force, term, zone, k) is computed directly, never by
// repeated addition. Fails with kOutOfRange outside years 0001–9999.
[[nodiscard]] Result<Instant> AddCalendar(Instant t, const CalendarDuration& d, ZoneOffset zone,
                                          int64_t factor = 1,
                                          Direction direction = Direction::kForward);

}  // namespace accord

#endif  // ACCORD_TIME_H_
