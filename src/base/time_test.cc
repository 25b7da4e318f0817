#include "accord/time.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace accord {
namespace {

using ::testing::HasSubstr;

constexpr ZoneOffset kSeoul{540};

Instant At(std::string_view text) {
  auto t = ParseInstant(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(Instant{});
}

TEST(InstantTest, ParsesRfc3339WithOffsets) {
  EXPECT_EQ(At("1970-01-01T00:00:00Z").micros, 0);
  EXPECT_EQ(At("2019-08-23T15:25:00+09:00"), At("2019-08-23T06:25:00Z"));
  EXPECT_EQ(At("2019-08-23T06:25:00z"), At("2019-08-23T06:25:00Z"));
  EXPECT_EQ(At("2019-08-23 06:25:00Z"), At("2019-08-23T06:25:00Z"));
  EXPECT_EQ(At("2019-08-22T21:25:00-09:00"), At("2019-08-23T06:25:00Z"));
  EXPECT_EQ(At("1970-01-01T00:00:00.25Z").micros, 250'000);
  EXPECT_EQ(At("1969-12-31T23:59:59.5Z").micros, -500'000);
  EXPECT_EQ(At("0001-01-01T00:00:00Z").micros, -62'135'596'800'000'000);
}

TEST(InstantTest, RejectsMalformedInstants) {
  for (std::string_view bad :
       {"", "2019-08-23", "2019-08-23T15:25:00", "2019-02-29T00:00:00Z", "2019-13-01T00:00:00Z",
        "2019-08-23T24:00:00Z", "2019-08-23T23:59:60Z", "2019-08-23T24:00+09:00",
        "2019-08-23T15:25.5+09:00", "2019-08-23T15:2+09:00", "2019-08-23T15+09:00",
        "2019-08-23T15:25:+09:00", "2019-08-23T15:25:00+9:00", "2019-08-23T15:25:00+24:00",
        "2019-08-23T15:25:00Zjunk", "0000-01-01T00:00:00Z", "2019-8-23T15:25:00Z",
        "2019-08-23T15:25:00.Z", "20190823T152500Z"}) {
    EXPECT_FALSE(ParseInstant(bad).has_value()) << bad;
  }
}

TEST(InstantTest, SecondsMayBeLeftOut) {
  // DESIGN.md writes instants without seconds: 2019-11-23T00:00+09:00.
  EXPECT_EQ(At("2019-11-23T00:00+09:00"), At("2019-11-23T00:00:00+09:00"));
  auto fraction = ParseInstant("2019-11-23T00:00.5+09:00");
  ASSERT_FALSE(fraction);
  EXPECT_EQ(fraction.error().message,
            "bad instant `2019-11-23T00:00.5+09:00`: a fraction needs the seconds before it "
            "(HH:MM:SS.f)");
  EXPECT_EQ(At("2019-11-22T18:00Z"), At("2019-11-22T18:00:00Z"));
  EXPECT_EQ(*ParseInstantInZone("2019-11-22T18:00", kSeoul), At("2019-11-22T09:00:00Z"));
}

TEST(InstantTest, TheRangeHoldsInUtcToo) {
  // On their own clocks these are in range; in UTC they are in year 10000 and year 0.
  for (std::string_view out : {"9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-05:00",
                               "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00+23:59"}) {
    auto t = ParseInstant(out);
    ASSERT_FALSE(t.has_value()) << out;
    EXPECT_EQ(t.error().code, Code::kOutOfRange) << out;
    EXPECT_THAT(t.error().message, HasSubstr(out)) << out;
  }
  EXPECT_EQ(At("9999-12-31T23:59:59Z").micros, 253'402'300'799'000'000);
  // An instant in range whose date on a zone's clock is not is printed in UTC, still RFC 3339.
  EXPECT_EQ(FormatInstant(At("9999-12-31T23:00:00Z"), kSeoul), "9999-12-31T23:00:00Z");
  EXPECT_EQ(FormatInstant(At("0001-01-01T01:00:00Z"), ZoneOffset{-330}), "0001-01-01T01:00:00Z");
  EXPECT_EQ(FormatInstant(At("9999-12-31T14:00:00Z"), kSeoul), "9999-12-31T23:00:00+09:00");
}

TEST(InstantTest, PlainDatesUseTheZone) {
  auto t = ParseInstantInZone("2016-11-23", kSeoul);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, At("2016-11-23T00:00:00+09:00"));
  auto local = ParseInstantInZone("2016-11-23T10:00:00", kSeoul);
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(*local, At("2016-11-23T01:00:00Z"));
  // An explicit offset wins over the zone.
  EXPECT_EQ(*ParseInstantInZone("2016-11-23T00:00:00Z", kSeoul), At("2016-11-23T00:00:00Z"));
}

TEST(InstantTest, FormatsOnTheZoneClock) {
  EXPECT_EQ(FormatInstant(At("2019-11-22T09:00:00Z"), kSeoul), "2019-11-22T18:00:00+09:00");
  EXPECT_EQ(FormatInstant(At("2019-11-22T09:00:00Z")), "2019-11-22T09:00:00Z");
  EXPECT_EQ(FormatInstant(At("2019-11-22T09:00:00.125Z")), "2019-11-22T09:00:00.125Z");
  EXPECT_EQ(FormatInstant(At("1969-12-31T23:59:59.5Z")), "1969-12-31T23:59:59.5Z");
  EXPECT_EQ(FormatInstant(At("2019-11-22T09:00:00Z"), ZoneOffset{-330}),
            "2019-11-22T03:30:00-05:30");
  EXPECT_EQ(FormatInstant(Instant::Max()), "never");
}

TEST(InstantTest, RoundTrips) {
  for (std::string_view s : {"2016-11-23T00:00:00+09:00", "1987-09-24T12:34:56+09:00",
                             "2024-02-29T23:59:59+09:00", "0001-01-01T09:00:00+09:00"}) {
    EXPECT_EQ(FormatInstant(At(s), kSeoul), s);
  }
}

TEST(ZoneTest, ParsesAndFormats) {
  EXPECT_EQ(ParseZoneOffset("+09:00")->minutes, 540);
  EXPECT_EQ(ParseZoneOffset("-05:30")->minutes, -330);
  EXPECT_EQ(ParseZoneOffset("Z")->minutes, 0);
  EXPECT_FALSE(ParseZoneOffset("+9").has_value());
  EXPECT_FALSE(ParseZoneOffset("Asia/Seoul").has_value());
  EXPECT_EQ(FormatZoneOffset(ZoneOffset{-330}), "-05:30");
}

TEST(DurationTest, ParsesIso8601) {
  EXPECT_EQ(*ParseDuration("P1Y"), (CalendarDuration{1, 0, 0, 0}));
  EXPECT_EQ(*ParseDuration("P90D"), (CalendarDuration{0, 0, 90, 0}));
  EXPECT_EQ(*ParseDuration("P2W"), (CalendarDuration{0, 0, 14, 0}));
  EXPECT_EQ(*ParseDuration("P1Y2M10DT2H30M15S"),
            (CalendarDuration{1, 2, 10, 2 * 3600 + 30 * 60 + 15}));
  EXPECT_EQ(*ParseDuration("PT36H"), (CalendarDuration{0, 0, 0, 36 * 3600}));
  EXPECT_EQ(*ParseDuration("P0D"), (CalendarDuration{}));
  for (std::string_view bad : {"", "P", "PT", "1Y", "P1", "P-1D", "P1.5Y", "P1D1Y", "P1Y1Y", "P1H",
                               "PT1D", "P1YT", "P99999999999D", "P1X"}) {
    auto d = ParseDuration(bad);
    EXPECT_FALSE(d.has_value()) << bad;
    if (!d) {
      EXPECT_NE(d.error().message.find("bad duration"), std::string::npos);
    }
  }
  EXPECT_EQ(FormatDuration(*ParseDuration("P1Y2M10DT2H30M15S")), "P1Y2M10DT2H30M15S");
  EXPECT_EQ(FormatDuration(CalendarDuration{}), "P0D");
}

Instant Add(std::string_view t, std::string_view d, int64_t k = 1,
            Direction dir = Direction::kForward) {
  auto r = AddCalendar(At(t), *ParseDuration(d), kSeoul, k, dir);
  EXPECT_TRUE(r.has_value());
  return r.value_or(Instant{});
}

TEST(CalendarTest, MonthEndClamping) {
  // DESIGN.md §2: 2021-01-31 + P1M = 2021-02-28, + P2M = 2021-03-31 (computed directly).
  EXPECT_EQ(Add("2021-01-31T00:00:00+09:00", "P1M"), At("2021-02-28T00:00:00+09:00"));
  EXPECT_EQ(Add("2021-01-31T00:00:00+09:00", "P1M", 2), At("2021-03-31T00:00:00+09:00"));
  EXPECT_EQ(Add("2021-01-31T00:00:00+09:00", "P2M"), At("2021-03-31T00:00:00+09:00"));
  EXPECT_EQ(Add("2020-02-29T00:00:00+09:00", "P1Y"), At("2021-02-28T00:00:00+09:00"));
  EXPECT_EQ(Add("2020-02-29T00:00:00+09:00", "P1Y", 4), At("2024-02-29T00:00:00+09:00"));
  // Years and months first, then days: 2021-01-31 + P1M1D = 2021-03-01.
  EXPECT_EQ(Add("2021-01-31T00:00:00+09:00", "P1M1D"), At("2021-03-01T00:00:00+09:00"));
}

TEST(CalendarTest, ArithmeticHappensOnTheZoneClock) {
  // 2016-11-23T00:00+09:00 is 2016-11-22T15:00Z; a year later is again midnight in Seoul.
  EXPECT_EQ(Add("2016-11-23T00:00:00+09:00", "P1Y", 3), At("2019-11-23T00:00:00+09:00"));
  // The GSOMIA deadline: A_3 − P90D.
  EXPECT_EQ(Add("2019-11-23T00:00:00+09:00", "P90D", 1, Direction::kBackward),
            At("2019-08-25T00:00:00+09:00"));
  // Month-end clamping in the zone even when the UTC date is a different month.
  EXPECT_EQ(Add("2021-03-31T08:00:00+09:00", "P1M"), At("2021-04-30T08:00:00+09:00"));
  EXPECT_EQ(Add("2021-03-31T00:00:00+09:00", "P1M", 1, Direction::kBackward),
            At("2021-02-28T00:00:00+09:00"));
  // Backward likewise: years and months first (03-31 → 02-28, clamped), then days. Days first
  // would give 03-30 → 02-28.
  EXPECT_EQ(Add("2021-03-31T00:00:00+09:00", "P1M1D", 1, Direction::kBackward),
            At("2021-02-27T00:00:00+09:00"));
  EXPECT_EQ(Add("2021-01-01T00:00:00+09:00", "PT36H"), At("2021-01-02T12:00:00+09:00"));
}

TEST(CalendarTest, OutOfRangeIsAnErrorNotAWrap) {
  auto far = AddCalendar(At("9999-06-01T00:00:00Z"), *ParseDuration("P1Y"), ZoneOffset{});
  ASSERT_FALSE(far.has_value());
  EXPECT_EQ(far.error().code, Code::kOutOfRange);
  EXPECT_FALSE(AddCalendar(At("0001-06-01T00:00:00Z"), *ParseDuration("P1Y"), ZoneOffset{}, 1,
                           Direction::kBackward)
                   .has_value());
  EXPECT_FALSE(AddCalendar(Instant::Max(), *ParseDuration("P1D"), ZoneOffset{}).has_value());
  EXPECT_FALSE(
      AddCalendar(At("2000-01-01T00:00:00Z"), *ParseDuration("P1Y"), ZoneOffset{}, 4'000'001)
          .has_value());
  // Factors and durations whose products overflow 64 bits fail (under UBSan: without undefined
  // behaviour) rather than wrap back into the range.
  const int64_t huge = std::numeric_limits<int64_t>::max();
  for (std::string_view d :
       {"P1Y", "P1M", "P1D", "PT1S", "P3660000W3660000D", "PT2562047788015H"}) {
    for (int64_t factor : {huge, huge / 12, int64_t{1} << 40}) {
      for (Direction dir : {Direction::kForward, Direction::kBackward}) {
        auto r = AddCalendar(At("2000-01-01T00:00:00Z"), *ParseDuration(d), kSeoul, factor, dir);
        ASSERT_FALSE(r.has_value()) << d << " x " << factor;
        EXPECT_EQ(r.error().code, Code::kOutOfRange) << d << " x " << factor;
      }
    }
  }
  // No fixed bound on the factor: a term of a minute has millions of anniversaries in range.
  EXPECT_EQ(Add("2016-01-01T00:00:00+09:00", "PT1M", 5'000'000), At("2025-07-04T05:20:00+09:00"));
  EXPECT_EQ(AddCalendar(At("9999-12-31T14:00:00Z"), *ParseDuration("PT1H"), ZoneOffset{}, 10)
                .error()
                .code,
            Code::kOutOfRange);  // 9999-12-31T24:00Z is in year 10000
}

}  // namespace
}  // namespace accord
