// The GSOMIA example's real history at each key instant, the same history without Korea's
// suspension, and the TISA route, on the policy files in examples/.
#include <gtest/gtest.h>

#include <filesystem>

#include "accord/config.h"
#include "accord/engine.h"
#include "accord/request_json.h"
#include "request_builder_testing.h"

namespace accord {
namespace {

using testing::RequestBuilder;

Engine LoadExample(std::string_view name) {
  auto policy = LoadPolicyDir(std::filesystem::path(ACCORD_SOURCE_DIR) / "examples" / name);
  EXPECT_TRUE(policy.has_value()) << policy.error()[0].ToString();
  auto engine = Engine::Compile(std::move(*policy));
  EXPECT_TRUE(engine.has_value());
  return std::move(*engine);
}

std::string ReasonOf(const Engine& engine, const RequestBuilder& b) {
  RequestDecoder decoder;
  auto request = decoder.Decode(b.Json());
  EXPECT_TRUE(request.has_value()) << request.error();
  return request ? std::string(ReasonName(engine.Decide(**request).reason)) : "";
}

// Korea releases a missile report to Japan at t.
RequestBuilder KoreaToJapan(const std::string& t) {
  return RequestBuilder::Release(t, "JPN").Topics({"dprk-missile"}).RelTo({"JPN", "USA"});
}

// A Japanese analyst reads at t what Korea released to Japan in 2018.
RequestBuilder AnalystReads2018Release(const std::string& t) {
  return RequestBuilder::Read(t, "JPN", "GOKUHI")
      .NeedToKnow({"dprk-missile"})
      .Topics({"dprk-missile"})
      .RelTo({"JPN"})
      .Released("JPN", "2018-05-14T10:00:00+09:00", "kor-jpn-gsomia");
}

struct KeyInstant {
  std::string at;
  // Real history, then the history without the suspension.
  std::string state, state_without;
  std::string ends_at, ends_at_without;  // "" for none
  std::string notice, notice_without;    // notice state, "" for none
  std::string release, release_without;  // reason of a new release Korea → Japan
};

const std::vector<KeyInstant> kKeyInstants = {
    {"2016-11-22T23:59:59+09:00", "pending", "pending", "", "", "", "", "hub-only", "hub-only"},
    {"2016-11-23T00:00:00+09:00", "in-force", "in-force", "", "", "", "", "releasable",
     "releasable"},
    {"2019-08-23T15:24:59+09:00", "in-force", "in-force", "", "", "", "", "releasable",
     "releasable"},
    {"2019-08-23T15:25:00+09:00", "in-force", "in-force", "2019-11-23T00:00:00+09:00",
     "2019-11-23T00:00:00+09:00", "active", "active", "releasable", "releasable"},
    {"2019-11-22T17:59:59+09:00", "in-force", "in-force", "2019-11-23T00:00:00+09:00",
     "2019-11-23T00:00:00+09:00", "active", "active", "releasable", "releasable"},
    {"2019-11-22T18:00:00+09:00", "in-force", "in-force", "", "2019-11-23T00:00:00+09:00",
     "suspended", "active", "releasable", "releasable"},
    {"2019-11-22T23:59:59+09:00", "in-force", "in-force", "", "2019-11-23T00:00:00+09:00",
     "suspended", "active", "releasable", "releasable"},
    {"2019-11-23T00:00:00+09:00", "in-force", "ended", "", "2019-11-23T00:00:00+09:00", "suspended",
     "active", "releasable", "hub-only"},
    {"2023-03-21T08:59:59+09:00", "in-force", "ended", "", "2019-11-23T00:00:00+09:00", "suspended",
     "active", "releasable", "hub-only"},
    {"2023-03-21T09:00:00+09:00", "in-force", "ended", "", "2019-11-23T00:00:00+09:00", "withdrawn",
     "active", "releasable", "hub-only"},
};

void CheckStatus(const Engine& e, const std::string& at, const std::string& state,
                 const std::string& ends_at, const std::string& notice) {
  const int32_t g = e.AgreementIndex("kor-jpn-gsomia");
  auto s = e.Status(g, *ParseInstant(at));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(AgreementStateName(s->state), state);
  EXPECT_EQ(s->ends_at ? FormatInstant(*s->ends_at, ZoneOffset{540}) : "", ends_at);
  EXPECT_EQ(s->notice ? std::string(NoticeStateName(s->notice->state)) : "", notice);
  if (s->state == AgreementState::kEnded) {
    EXPECT_EQ(s->ended_by, EndCause::kNotice);
  }
}

TEST(GsomiaHistoryTest, KeyInstants) {
  const Engine real = LoadExample("gsomia");
  const Engine without = LoadExample("gsomia-no-suspension");
  for (const KeyInstant& k : kKeyInstants) {
    SCOPED_TRACE(k.at);
    CheckStatus(real, k.at, k.state, k.ends_at, k.notice);
    CheckStatus(without, k.at, k.state_without, k.ends_at_without, k.notice_without);
    EXPECT_EQ(ReasonOf(real, KoreaToJapan(k.at)), k.release);
    EXPECT_EQ(ReasonOf(without, KoreaToJapan(k.at)), k.release_without);
  }
}

TEST(GsomiaHistoryTest, EarlierReleasesStayReadableUnderProtect) {
  const Engine real = LoadExample("gsomia");
  const Engine without = LoadExample("gsomia-no-suspension");
  for (const std::string t :
       {"2018-05-14T10:00:00+09:00", "2019-11-22T23:59:59+09:00", "2019-11-23T00:00:00+09:00",
        "2021-01-01T00:00:00+09:00", "2024-01-01T00:00:00+09:00"}) {
    SCOPED_TRACE(t);
    EXPECT_EQ(ReasonOf(real, AnalystReads2018Release(t)), "released");
    EXPECT_EQ(ReasonOf(without, AnalystReads2018Release(t)), "released");
  }
  EXPECT_EQ(ReasonOf(real, AnalystReads2018Release("2018-05-14T09:59:59+09:00")), "not-released");
}

TEST(GsomiaHistoryTest, AnUnclearedClerkIsRefused) {
  const Engine real = LoadExample("gsomia");
  auto clerk = RequestBuilder::Read("2019-01-01T00:00:00+09:00", "JPN", "HI")
                   .NeedToKnow({"dprk-missile"})
                   .Topics({"dprk-missile"})
                   .Released("JPN", "2018-05-14T10:00:00+09:00", "kor-jpn-gsomia");
  EXPECT_EQ(ReasonOf(real, clerk), "insufficient-clearance");
}

TEST(TisaTest, KoreaToJapanBefore2016OnlyThroughTheHubWithConsent) {
  const Engine e = LoadExample("gsomia");
  const std::string t = "2015-06-01T10:00:00+09:00";
  // Direct: refused, the US is the hub.
  EXPECT_EQ(ReasonOf(e, KoreaToJapan(t)), "hub-only");
  // To the US: allowed, under the bilateral agreement (fewest parties first).
  auto to_us = RequestBuilder::Release(t, "USA").Topics({"dprk-missile"}).RelTo({"USA"});
  EXPECT_EQ(ReasonOf(e, to_us), "releasable");
  // The US forwards to Japan: refused without Korea's consent, allowed with it.
  auto forward = [&](bool consent) {
    auto b = RequestBuilder::Forward("2015-06-02T10:00:00+09:00", "USA", "JPN")
                 .Topics({"dprk-missile"})
                 .Released("USA", t, "usa-kor-gsomia");
    if (consent) b.Consent("JPN", "2015-06-01T12:00:00+09:00");
    return b;
  };
  EXPECT_EQ(ReasonOf(e, forward(false)), "no-consent");
  EXPECT_EQ(ReasonOf(e, forward(true)), "forwardable");
  // A Japanese analyst reads the forwarded copy at its mapped level.
  auto read = RequestBuilder::Read("2015-06-03T10:00:00+09:00", "JPN", "GOKUHI")
                  .NeedToKnow({"dprk-missile"})
                  .Topics({"dprk-missile"})
                  .Released("USA", t, "usa-kor-gsomia")
                  .Consent("JPN", "2015-06-01T12:00:00+09:00")
                  .Forwarded("USA", "JPN", "2015-06-02T10:00:00+09:00", "usa-jpn-gsomia");
  EXPECT_EQ(ReasonOf(e, read), "released");
  // Japan received it by forward, so it cannot pass it on.
  auto onward = RequestBuilder::Forward("2015-06-04T10:00:00+09:00", "JPN", "USA")
                    .Topics({"dprk-missile"})
                    .Released("USA", t, "usa-kor-gsomia")
                    .Consent("JPN", "2015-06-01T12:00:00+09:00")
                    .Consent("USA", "2015-06-01T12:00:00+09:00")
                    .Forwarded("USA", "JPN", "2015-06-02T10:00:00+09:00", "usa-jpn-gsomia");
  EXPECT_EQ(ReasonOf(e, onward), "not-held");
}

TEST(TisaTest, KoreasClassIIsNeverShared) {
  const Engine e = LoadExample("gsomia");
  for (const char* to : {"JPN", "USA"}) {
    auto b = RequestBuilder::Release("2020-01-01T00:00:00+09:00", to)
                 .Object("KOR", "I")
                 .Topics({"dprk-missile"})
                 .RelTo({"JPN", "USA"});
    EXPECT_EQ(ReasonOf(e, b), "no-equivalent-level") << to;
  }
}

}  // namespace
}  // namespace accord
