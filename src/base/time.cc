// Instants and calendar arithmetic. Civil dates go through std::chrono's calendar types
// (year_month_day, sys_days); only the RFC 3339 and ISO 8601 grammars are parsed here.
#include "accord/time.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdlib>

#include "accord/utf8.h"

namespace accord {
namespace {

namespace chr = std::chrono;

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int kMinYear = 1;
constexpr int kMaxYear = 9999;
// 0001-01-01T00:00:00 and 9999-12-31T23:59:59, in seconds since the epoch: the supported range, on
// any clock (local or UTC).
constexpr int64_t kMinSecs = -62'135'596'800;
constexpr int64_t kMaxSecs = 253'402'300'799;

// a·b + c, or nullopt where it would overflow.
std::optional<int64_t> MulAdd(int64_t a, int64_t b, int64_t c) {
  int64_t product = 0;
  int64_t sum = 0;
  if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum)) {
    return std::nullopt;
  }
  return sum;
}

// Reads exactly `width` ASCII digits at `pos`; advances pos.
std::optional<int> ReadDigits(std::string_view s, size_t& pos, size_t width) {
  if (pos + width > s.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += width;
  return value;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// Floor division that works for negative numerators.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int year;
  unsigned month;
  unsigned day;
  int64_t seconds_of_day;  // [0, 86400)
  int64_t sub_micros;      // [0, 1e6)
};

Civil ToCivil(Instant t, ZoneOffset zone) {
  const int64_t local_micros = t.micros + int64_t{zone.minutes} * 60 * kMicrosPerSecond;
  const int64_t secs = FloorDiv(local_micros, kMicrosPerSecond);
  const int64_t sub = local_micros - secs * kMicrosPerSecond;
  const int64_t days = FloorDiv(secs, kSecondsPerDay);
  const chr::year_month_day ymd{chr::sys_days{chr::days{days}}};
  return Civil{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()), secs - days * kSecondsPerDay, sub};
}

std::string OutOfRangeMessage() { return "instant outside years 0001 to 9999"; }

// The syntax of a date "YYYY-MM-DD" at pos; validates the day against the month.
Result<chr::year_month_day> ParseDate(std::string_view s, size_t& pos) {
  const auto y = ReadDigits(s, pos, 4);
  if (!y || !Expect(s, pos, '-')) return Fail(Code::kInvalidArgument, "expected a date YYYY-MM-DD");
  const auto m = ReadDigits(s, pos, 2);
  if (!m || !Expect(s, pos, '-')) return Fail(Code::kInvalidArgument, "expected a date YYYY-MM-DD");
  const auto d = ReadDigits(s, pos, 2);
  if (!d) return Fail(Code::kInvalidArgument, "expected a date YYYY-MM-DD");
  const chr::year_month_day ymd{chr::year{*y}, chr::month{static_cast<unsigned>(*m)},
                                chr::day{static_cast<unsigned>(*d)}};
  if (!ymd.ok() || *y < kMinYear) {
    return Fail(Code::kInvalidArgument, fmt::format("no such date `{}`", s.substr(0, 10)));
  }
  return ymd;
}

// "HH:MM:SS[.frac]" → seconds of day and microseconds. The seconds may be left out ("HH:MM",
// as DESIGN.md writes its instants: 2019-11-23T00:00+09:00); then there is no fraction.
Result<std::pair<int64_t, int64_t>> ParseTime(std::string_view s, size_t& pos) {
  constexpr const char* kExpected = "expected a time HH:MM:SS or HH:MM";
  const auto h = ReadDigits(s, pos, 2);
  if (!h || !Expect(s, pos, ':')) return Fail(Code::kInvalidArgument, kExpected);
  const auto mi = ReadDigits(s, pos, 2);
  if (!mi) return Fail(Code::kInvalidArgument, kExpected);
  if (!Expect(s, pos, ':')) {
    if (pos < s.size() && s[pos] == '.') {
      return Fail(Code::kInvalidArgument, "a fraction needs the seconds before it (HH:MM:SS.f)");
    }
    if (*h > 23 || *mi > 59) return Fail(Code::kInvalidArgument, "time of day out of range");
    return std::pair<int64_t, int64_t>{int64_t{*h} * 3600 + int64_t{*mi} * 60, 0};
  }
  const auto sec = ReadDigits(s, pos, 2);
  if (!sec) return Fail(Code::kInvalidArgument, kExpected);
  // A leap second (:60) has no place in agreement arithmetic; RFC 3339 allows it, we refuse it
  // rather than silently shifting the instant.
  if (*h > 23 || *mi > 59 || *sec > 59) {
    return Fail(Code::kInvalidArgument, "time of day out of range");
  }
  int64_t micros = 0;
  if (Expect(s, pos, '.')) {
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return Fail(Code::kInvalidArgument, "expected digits after `.`");
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  return std::pair<int64_t, int64_t>{int64_t{*h} * 3600 + int64_t{*mi} * 60 + *sec, micros};
}

Result<ZoneOffset> ParseOffsetAt(std::string_view s, size_t& pos) {
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
    return ZoneOffset{0};
  }
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) {
    return Fail(Code::kInvalidArgument, "expected an offset such as `+09:00` or `Z`");
  }
  const int sign = s[pos] == '-' ? -1 : 1;
  ++pos;
  const auto h = ReadDigits(s, pos, 2);
  if (!h || !Expect(s, pos, ':')) {
    return Fail(Code::kInvalidArgument, "expected an offset such as `+09:00` or `Z`");
  }
  const auto m = ReadDigits(s, pos, 2);
  if (!m || *h > 23 || *m > 59) {
    return Fail(Code::kInvalidArgument, "expected an offset such as `+09:00` or `Z`");
  }
  return ZoneOffset{sign * (*h * 60 + *m)};
}

// Shared parser: when `zone` is empty an offset is required.
Result<Instant> ParseInstantImpl(std::string_view text, std::optional<ZoneOffset> zone) {
  size_t pos = 0;
  auto date = ParseDate(text, pos);
  if (!date) {
    return Fail(Code::kInvalidArgument,
                fmt::format("bad instant `{}`: {}", OneLine(text, 100), date.error().message));
  }
  int64_t seconds_of_day = 0;
  int64_t micros = 0;
  std::optional<ZoneOffset> offset;
  if (pos == text.size()) {
    if (!zone) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("bad instant `{}`: a date-time with an offset is required", text));
    }
    offset = zone;
  } else {
    if (!(Expect(text, pos, 'T') || Expect(text, pos, 't') || Expect(text, pos, ' '))) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("bad instant `{}`: expected `T` after the date", text));
    }
    auto time = ParseTime(text, pos);
    if (!time) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("bad instant `{}`: {}", text, time.error().message));
    }
    seconds_of_day = time->first;
    micros = time->second;
    if (pos == text.size()) {
      if (!zone) {
        return Fail(
            Code::kInvalidArgument,
            fmt::format("bad instant `{}`: an offset such as `+09:00` or `Z` is required", text));
      }
      offset = zone;
    } else {
      auto parsed = ParseOffsetAt(text, pos);
      if (!parsed) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("bad instant `{}`: {}", text, parsed.error().message));
      }
      offset = *parsed;
    }
  }
  if (pos != text.size()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("bad instant `{}`: unexpected text after it", text));
  }
  auto t = FromCivil(static_cast<int>(date->year()), static_cast<unsigned>(date->month()),
                     static_cast<unsigned>(date->day()), seconds_of_day, *offset);
  if (!t) {
    return Fail(t.error().code, fmt::format("bad instant `{}`: {}", text, t.error().message));
  }
  t->micros += micros;
  return t;
}

}  // namespace

Result<ZoneOffset> ParseZoneOffset(std::string_view text) {
  size_t pos = 0;
  auto zone = ParseOffsetAt(text, pos);
  if (!zone || pos != text.size()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("bad zone `{}`: expected an offset such as `+09:00` or `Z`", text));
  }
  return zone;
}

std::string FormatZoneOffset(ZoneOffset zone) {
  const int total = std::abs(zone.minutes);
  return fmt::format("{}{:02}:{:02}", zone.minutes < 0 ? '-' : '+', total / 60, total % 60);
}

Result<Instant> FromCivil(int year, unsigned month, unsigned day, int64_t seconds_of_day,
                          ZoneOffset zone) {
  if (year < kMinYear || year > kMaxYear) return Fail(Code::kOutOfRange, OutOfRangeMessage());
  const chr::year_month_day ymd{chr::year{year}, chr::month{month}, chr::day{day}};
  if (!ymd.ok()) return Fail(Code::kInvalidArgument, "no such date");
  const int64_t days = chr::sys_days{ymd}.time_since_epoch().count();
  const int64_t secs = days * kSecondsPerDay + seconds_of_day - int64_t{zone.minutes} * 60;
  // In range on the local clock, and in UTC too (9999-12-31T23:00:00-05:00 is in year 10000).
  if (secs < kMinSecs || secs > kMaxSecs) return Fail(Code::kOutOfRange, OutOfRangeMessage());
  return Instant{secs * kMicrosPerSecond};
}

Result<Instant> ParseInstant(std::string_view text) { return ParseInstantImpl(text, std::nullopt); }

Result<Instant> ParseInstantInZone(std::string_view text, ZoneOffset zone) {
  return ParseInstantImpl(text, zone);
}

std::string FormatInstant(Instant t, ZoneOffset zone) {
  if (t == Instant::Max()) return "never";
  if (t == Instant::Min()) return "always";
  Civil c = ToCivil(t, zone);
  if (c.year < kMinYear || c.year > kMaxYear) {
    // Near the ends of the range, a zone's clock can be in year 0 or 10000, which RFC 3339
    // cannot write: the same instant in UTC, which is in range.
    zone = ZoneOffset{0};
    c = ToCivil(t, zone);
  }
  const int64_t sod = c.seconds_of_day;
  std::string frac;
  if (c.sub_micros != 0) {
    frac = fmt::format(".{:06}", c.sub_micros);
    while (frac.back() == '0') frac.pop_back();
  }
  const std::string offset = zone.minutes == 0 ? std::string("Z") : FormatZoneOffset(zone);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}", c.year, c.month, c.day, sod / 3600,
                     (sod / 60) % 60, sod % 60, frac, offset);
}

Result<CalendarDuration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Fail(Code::kInvalidArgument,
                fmt::format("bad duration `{}`: {} (expected ISO 8601 such as `P1Y` or `P90D`)",
                            text, why));
  };
  if (text.empty() || (text[0] != 'P' && text[0] != 'p')) return bad("it must start with `P`");
  CalendarDuration d;
  bool in_time = false;
  bool any = false;
  size_t pos = 1;
  // Designators must appear in order: Y M W D, then T, then H M S.
  constexpr std::string_view kDateOrder = "YMWD";
  constexpr std::string_view kTimeOrder = "HMS";
  size_t last_rank = 0;
  while (pos < text.size()) {
    if (text[pos] == 'T' || text[pos] == 't') {
      if (in_time) return bad("`T` appears twice");
      in_time = true;
      last_rank = 0;
      ++pos;
      if (pos == text.size()) return bad("no time part after `T`");
      continue;
    }
    int64_t value = 0;
    const char* begin = text.data() + pos;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec != std::errc() || ptr == begin) return bad("expected a whole number");
    if (value < 0) return bad("negative values are not allowed");
    pos += static_cast<size_t>(ptr - begin);
    if (pos >= text.size()) return bad("a number lacks its designator");
    const char designator = static_cast<char>(text[pos] & ~0x20);  // upper case
    const std::string_view order = in_time ? kTimeOrder : kDateOrder;
    const size_t rank = order.find(designator);
    if (rank == std::string_view::npos) {
      return bad(fmt::format("unknown designator `{}`", text[pos]));
    }
    if (rank + 1 <= last_rank) return bad("designators out of order or repeated");
    last_rank = rank + 1;
    ++pos;
    // Bound every part so later arithmetic cannot overflow: nothing in an agreement runs past
    // 10,000 years.
    constexpr int64_t kMaxPart = 10'000LL * 366 * 24 * 3600;
    if (value > kMaxPart) return bad("value too large");
    if (!in_time) {
      if (value > 10'000 * 12 && designator != 'D' && designator != 'W') {
        return bad("value too large");
      }
      if (value > 10'000LL * 366 && (designator == 'D' || designator == 'W')) {
        return bad("value too large");
      }
      switch (designator) {
        case 'Y':
          d.years = static_cast<int32_t>(value);
          break;
        case 'M':
          d.months = static_cast<int32_t>(value);
          break;
        case 'W':
          d.days += static_cast<int32_t>(value * 7);
          break;
        case 'D':
          d.days += static_cast<int32_t>(value);
          break;
        default:
          break;
      }
    } else {
      switch (designator) {
        case 'H':
          d.seconds += value * 3600;
          break;
        case 'M':
          d.seconds += value * 60;
          break;
        case 'S':
          d.seconds += value;
          break;
        default:
          break;
      }
    }
    any = true;
  }
  if (!any) return bad("it has no parts");
  return d;
}

std::string FormatDuration(const CalendarDuration& d) {
  std::string out = "P";
  if (d.years) out += fmt::format("{}Y", d.years);
  if (d.months) out += fmt::format("{}M", d.months);
  if (d.days) out += fmt::format("{}D", d.days);
  if (d.seconds) {
    out += "T";
    const int64_t h = d.seconds / 3600, m = (d.seconds / 60) % 60, s = d.seconds % 60;
    if (h) out += fmt::format("{}H", h);
    if (m) out += fmt::format("{}M", m);
    if (s) out += fmt::format("{}S", s);
  }
  if (out == "P") out += "0D";
  return out;
}

Result<Instant> AddCalendar(Instant t, const CalendarDuration& d, ZoneOffset zone, int64_t factor,
                            Direction direction) {
  if (t == Instant::Max() || t == Instant::Min()) {
    return Fail(Code::kOutOfRange, OutOfRangeMessage());
  }
  if (factor < 0) return Fail(Code::kOutOfRange, OutOfRangeMessage());
  const int64_t step = direction == Direction::kForward ? factor : -factor;
  const Civil c = ToCivil(t, zone);
  // Each product is checked: a factor and a duration far beyond the range must fail, not wrap.
  const auto total_months =
      MulAdd(step, int64_t{d.years} * 12 + d.months, int64_t{c.year} * 12 + (c.month - 1));
  if (!total_months) return Fail(Code::kOutOfRange, OutOfRangeMessage());
  const int64_t year = FloorDiv(*total_months, 12);
  if (year < kMinYear || year > kMaxYear) return Fail(Code::kOutOfRange, OutOfRangeMessage());
  const auto month = static_cast<unsigned>(*total_months - year * 12 + 1);
  chr::year_month_day ymd{chr::year{static_cast<int>(year)}, chr::month{month}, chr::day{c.day}};
  if (!ymd.ok()) ymd = ymd.year() / ymd.month() / chr::last;  // clamp to the month's last day
  const auto days = MulAdd(step, d.days, chr::sys_days{ymd}.time_since_epoch().count());
  const auto day_secs = days ? MulAdd(*days, kSecondsPerDay, c.seconds_of_day) : std::nullopt;
  const auto local_secs = day_secs ? MulAdd(step, d.seconds, *day_secs) : std::nullopt;
  // In range on the local clock and in UTC, checked before scaling to microseconds so nothing
  // overflows.
  if (!local_secs || *local_secs < kMinSecs || *local_secs > kMaxSecs) {
    return Fail(Code::kOutOfRange, OutOfRangeMessage());
  }
  const int64_t utc_secs = *local_secs - int64_t{zone.minutes} * 60;
  if (utc_secs < kMinSecs || utc_secs > kMaxSecs)
    return Fail(Code::kOutOfRange, OutOfRangeMessage());
  return Instant{utc_secs * kMicrosPerSecond + c.sub_micros};
}

}  // namespace accord
