// DESIGN.md §3 as a table: every reason code of every action is reached at least once, and the
// table checks that it is.
#include "accord/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "accord/config.h"
#include "accord/request_json.h"
#include "request_builder_testing.h"

namespace accord {
namespace {

using ::testing::HasSubstr;
using testing::RequestBuilder;

// KOR, JPN, USA as in the GSOMIA example, plus GBR; agreements chosen to reach every code.
constexpr std::string_view kParties = R"(
[[party]]
id = "KOR"
name = "Republic of Korea"
levels = [ { id = "III", name = "군사III급비밀" }, { id = "II", name = "군사II급비밀" }, { id = "I", name = "군사I급비밀" } ]
[[party]]
id = "JPN"
name = "Japan"
levels = [ { id = "HI", name = "秘", rank = 1 }, { id = "GOKUHI", name = "極秘", rank = 2 },
           { id = "TOKUTEI", name = "特定秘密", rank = 2 }, { id = "KIMITSU", name = "機密", rank = 3 } ]
[[party]]
id = "USA"
name = "United States"
levels = [ { id = "C", name = "CONFIDENTIAL" }, { id = "S", name = "SECRET" }, { id = "TS", name = "TOP SECRET" } ]
[[party]]
id = "GBR"
name = "United Kingdom"
levels = [ { id = "OS", name = "OFFICIAL-SENSITIVE" }, { id = "S", name = "SECRET" } ]
)";

// KOR–JPN, ended by Korea's notice at 2019-11-23T00:00+09:00 (the history without suspension).
constexpr std::string_view kKorJpn = R"(
id = "kj"
parties = ["KOR", "JPN"]
in_force = 2016-11-23
zone = "+09:00"
term = "P1Y"
notice_period = "P90D"
scope = ["*"]
levels = [ { KOR = ["II"], JPN = ["GOKUHI", "TOKUTEI"] }, { KOR = ["III"], JPN = ["HI"] } ]
[[event]]
kind = "termination-notice"
by = "KOR"
at = 2019-08-23T15:25:00+09:00
)";
constexpr std::string_view kUsaKor = R"(
id = "uk"
parties = ["USA", "KOR"]
in_force = 1987-09-24
zone = "+09:00"
scope = ["*"]
levels = [ { USA = ["S"], KOR = ["II"] }, { USA = ["C"], KOR = ["III"] } ]
)";
// A second USA–KOR arrangement that marks Korea's class II TOP SECRET for the USA, where "uk"
// marks it SECRET: which release a holder's copy came from decides its marking. Never chosen for
// a new release while "uk" allows it (same parties, "uk" sorts first).
constexpr std::string_view kUsaKorHigh = R"(
id = "uk2"
parties = ["USA", "KOR"]
in_force = 2015-01-01
zone = "+09:00"
scope = ["*"]
levels = [ { USA = ["TS"], KOR = ["II"] } ]
)";
// USA–JPN with survival "revoke", ended by mutual consent in 2030.
constexpr std::string_view kUsaJpn = R"(
id = "uj"
parties = ["USA", "JPN"]
in_force = 2007-08-10
zone = "+09:00"
survival = "revoke"
scope = ["*"]
levels = [ { USA = ["TS"], JPN = ["KIMITSU"] }, { USA = ["S"], JPN = ["GOKUHI", "TOKUTEI"] },
           { USA = ["C"], JPN = ["HI"] } ]
[[event]]
kind = "terminated"
by = "JPN"
at = 2030-01-01
)";
constexpr std::string_view kTisa = R"(
id = "tisa"
parties = ["USA", "KOR", "JPN"]
in_force = 2014-12-29
zone = "+09:00"
hub = "USA"
scope = ["dprk-nuclear", "dprk-missile"]
levels = [ { USA = ["S"], KOR = ["II"], JPN = ["GOKUHI", "TOKUTEI"] }, { USA = ["C"], KOR = ["III"], JPN = ["HI"] } ]
)";
// USA–GBR: NATO topics only, and no row for CONFIDENTIAL.
constexpr std::string_view kUsaGbr = R"(
id = "ug"
parties = ["USA", "GBR"]
in_force = 2000-01-01
zone = "Z"
scope = ["nato"]
levels = [ { USA = ["S"], GBR = ["S"] } ]
)";

Engine MakeEngine() {
  PolicySources s;
  s.parties = PolicyFile{"parties.toml", std::string(kParties)};
  for (auto text : {kKorJpn, kUsaKor, kUsaKorHigh, kUsaJpn, kTisa, kUsaGbr}) {
    s.agreements.push_back(PolicyFile{"a.toml", std::string(text)});
  }
  auto policy = LoadPolicy(s);
  EXPECT_TRUE(policy.has_value()) << policy.error()[0].ToString();
  auto engine = Engine::Compile(std::move(*policy));
  EXPECT_TRUE(engine.has_value());
  return std::move(*engine);
}

// Every RequestProblem by name. No default: -Wswitch flags a problem added without a name here,
// and TheTablesReachEveryRequestProblem then asks for a row that reaches it.
std::string ProblemName(RequestProblem p) {
  switch (p) {
    case RequestProblem::kNone:
      return "none";
    case RequestProblem::kUnknownReleaseAgreement:
      return "unknown-release-agreement";
    case RequestProblem::kReleaseAgreementParties:
      return "release-agreement-parties";
    case RequestProblem::kReleaseToOriginator:
      return "release-to-originator";
    case RequestProblem::kUnknownForwardAgreement:
      return "unknown-forward-agreement";
    case RequestProblem::kForwardAgreementParties:
      return "forward-agreement-parties";
    case RequestProblem::kForwardWithoutRelease:
      return "forward-without-release";
    case RequestProblem::kForwardToSelf:
      return "forward-to-self";
    case RequestProblem::kReleaseToSelf:
      return "release-to-self";
    case RequestProblem::kForwardToHolder:
      return "forward-to-holder";
    case RequestProblem::kForwardToOriginator:
      return "forward-to-originator";
  }
  return "";  // not a RequestProblem
}

struct Row {
  std::string name;
  RequestBuilder request;
  std::string reason;
  std::string agreement = "";  // expected on allow
  std::string marking = "";    // expected on allow: "<party> <level>", e.g. "JPN GOKUHI"
  // Expected on invalid-request, exactly one of: what Decide found wrong, or a piece of the
  // decoder's error when the line does not decode at all.
  RequestProblem problem = RequestProblem::kNone;
  std::string decoder_error = "";
};

// A row that Decide refuses with invalid-request, for `problem`.
Row Invalid(std::string name, RequestBuilder request, RequestProblem problem) {
  return Row{std::move(name), std::move(request), "invalid-request", "", "", problem, ""};
}
// A row whose line the decoder refuses, with an error that contains `error`.
Row Undecodable(std::string name, RequestBuilder request, std::string error) {
  return Row{std::move(name),       std::move(request), "invalid-request", "", "",
             RequestProblem::kNone, std::move(error)};
}

// The answer to one request through the real decoder and writer.
struct Answer {
  bool allow = false;
  std::string reason;
  std::string agreement;
  std::string marking;  // "<party> <level>"
  std::vector<std::string> explain;
  bool decoded = false;  // false: the decoder refused the line, and `error` says why
  std::string error = "";
  RequestProblem problem = RequestProblem::kNone;
};

Answer Ask(const Engine& engine, const std::string& json) {
  RequestDecoder decoder;
  auto request = decoder.Decode(json);
  if (!request) {
    Answer a{false, "invalid-request", "", "", {request.error()}};
    a.error = request.error();
    return a;
  }
  const Decision d = engine.Decide(**request);
  Answer a{d.allow, std::string(ReasonName(d.reason)), "", "", engine.Explain(**request, d)};
  a.decoded = true;
  a.problem = d.problem;
  if (d.agreement >= 0) a.agreement = engine.agreement(d.agreement).id;
  if (d.marking.party >= 0) {
    const Party& party = engine.party(d.marking.party);
    a.marking = party.id + " " + party.levels[d.marking.level].id;
    EXPECT_EQ(engine.party(d.marking.originator).id, (*request)->object.originator)
        << "a marking names the object's originator";
  }
  return a;
}

// Midnight in Seoul on day n (1..28) of `month`, for long histories.
std::string Day(int n, const std::string& month = "2015-01") {
  return month + "-" + (n < 10 ? "0" : "") + std::to_string(n) + "T00:00:00+09:00";
}

std::vector<Row> ReadRows() {
  using B = RequestBuilder;
  const std::string t2018 = "2018-03-01T09:00:00+09:00";
  auto rd = [&](std::string party, std::string clearance) {
    return B::Read(t2018, std::move(party), std::move(clearance)).NeedToKnow({"dprk-missile"});
  };
  // Released to the USA under USA–KOR, forwarded on to Japan under USA–JPN with consent.
  auto via_hub = [](B b) {
    b.Released("USA", "2015-06-01T00:00:00+09:00", "uk")
        .Consent("JPN", "2015-06-02T00:00:00+09:00")
        .Forwarded("USA", "JPN", "2015-06-03T00:00:00+09:00", "uj");
    return b;
  };
  // Releases to the USA under "uk", one a day from `first`: history a Japanese reader's party
  // never received, which still has to be read past.
  auto to_usa = [](B b, int count, int first = 1) {
    for (int i = 0; i < count; ++i) b.Released("USA", Day(first + i), "uk");
    return b;
  };
  return {
      // History that is not history (DESIGN §3 validation and §4: the engine trusts releases
      // and forwards, but not ones that could not have happened). Each row has one defect, after
      // an entry that is fine.
      Invalid("unknown release agreement",
              to_usa(rd("JPN", "GOKUHI"), 1).Released("JPN", "2017-01-01T00:00:00+09:00", "nope"),
              RequestProblem::kUnknownReleaseAgreement),
      Invalid("release agreement lacks a party",
              to_usa(rd("JPN", "GOKUHI"), 1).Released("JPN", "2017-01-01T00:00:00+09:00", "uj"),
              RequestProblem::kReleaseAgreementParties),
      Invalid("release to the originator itself",
              to_usa(rd("JPN", "GOKUHI"), 1).Released("KOR", "2017-01-01T00:00:00+09:00", "uk"),
              RequestProblem::kReleaseToOriginator),
      Invalid("forward with no release before it",
              rd("JPN", "GOKUHI").Forwarded("USA", "JPN", "2017-01-01T00:00:00+09:00", "uj"),
              RequestProblem::kForwardWithoutRelease),
      Invalid("forward released only after it",
              rd("JPN", "GOKUHI")
                  .Released("USA", "2017-01-02T00:00:00+09:00", "uk")
                  .Forwarded("USA", "JPN", "2017-01-01T00:00:00+09:00", "uj"),
              RequestProblem::kForwardWithoutRelease),
      Invalid("unknown forward agreement",
              via_hub(rd("JPN", "GOKUHI")).Forwarded("USA", "JPN", Day(10, "2015-07"), "nope"),
              RequestProblem::kUnknownForwardAgreement),
      // Korea–Japan has no USA among its parties.
      Invalid("forward agreement lacks a party",
              via_hub(rd("JPN", "GOKUHI")).Forwarded("USA", "JPN", Day(10, "2015-07"), "kj"),
              RequestProblem::kForwardAgreementParties),
      Invalid("forward from a party to itself",
              via_hub(rd("JPN", "GOKUHI")).Forwarded("USA", "USA", Day(10, "2015-07"), "uk"),
              RequestProblem::kForwardToSelf),
      // The history's structure before the request's parties (validation, decision #10): the
      // originator is unknown, and so Korea–Japan lacks it.
      Invalid("history before parties",
              rd("JPN", "GOKUHI")
                  .Object("XXX", "II")
                  .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
              RequestProblem::kReleaseAgreementParties),
      // The same with the two defects apart: an unknown subject, and a release under
      // USA–Japan of Korea's object.
      Invalid("history before the subject's party",
              rd("XXX", "GOKUHI").Released("JPN", "2017-01-01T00:00:00+09:00", "uj"),
              RequestProblem::kReleaseAgreementParties),
      {"unknown subject party", rd("XXX", "GOKUHI"), "unknown-party"},
      {"unknown rel_to party", rd("JPN", "GOKUHI").RelTo({"ZZZ"}), "unknown-party"},
      {"unknown clearance", rd("JPN", "SECRET"), "unknown-level"},
      // Every party id before any level.
      {"unknown rel_to party before unknown clearance", rd("JPN", "SECRET").RelTo({"ZZZ"}),
       "unknown-party"},
      {"unknown object level", rd("JPN", "GOKUHI").Object("KOR", "IV"), "unknown-level"},
      {"destroyed", rd("KOR", "I").Destroyed("2018-03-01T09:00:00+09:00"), "destroyed"},
      {"originator below the level", rd("KOR", "III"), "insufficient-clearance"},
      {"originator without need-to-know",
       rd("KOR", "II").NeedToKnow({"weather"}).Topics({"dprk-missile"}), "no-need-to-know"},
      {"originator without compartment", rd("KOR", "II").Compartments({"TALENT"}), "compartment"},
      {"originator cleared", rd("KOR", "I").Topics({"dprk-missile"}), "originator-cleared"},
      // Clearance, then need-to-know, then compartments (DESIGN §3 steps 1 and 7): each row
      // fails every check from its own on.
      {"originator: clearance before need-to-know and compartments",
       rd("KOR", "III").NeedToKnow({}).Topics({"dprk-missile"}).Compartments({"TALENT"}),
       "insufficient-clearance"},
      {"originator: need-to-know before compartments",
       rd("KOR", "II").NeedToKnow({}).Topics({"dprk-missile"}).Compartments({"TALENT"}),
       "no-need-to-know"},
      {"never released", rd("JPN", "GOKUHI"), "not-released"},
      {"released after t", rd("JPN", "GOKUHI").Released("JPN", "2018-06-01T00:00:00+09:00", "kj"),
       "not-released"},
      {"revoked with its agreement",
       B::Read("2030-06-01T00:00:00+09:00", "JPN", "GOKUHI")
           .Object("USA", "S")
           .Released("JPN", "2018-01-01T00:00:00+09:00", "uj"),
       "agreement-ended"},
      {"reclassified beyond the rows",
       rd("JPN", "KIMITSU").Object("KOR", "I").Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "no-equivalent-level"},
      {"below the marking", rd("JPN", "HI").Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "insufficient-clearance"},
      {"released, no need-to-know",
       rd("JPN", "GOKUHI")
           .NeedToKnow({})
           .Topics({"dprk-missile"})
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "no-need-to-know"},
      {"released, missing compartment",
       rd("JPN", "GOKUHI")
           .Compartments({"TALENT"})
           .Holds({"OTHER"})
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "compartment"},
      {"released: clearance before need-to-know and compartments",
       rd("JPN", "HI")
           .NeedToKnow({})
           .Topics({"dprk-missile"})
           .Compartments({"TALENT"})
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "insufficient-clearance"},
      {"released: need-to-know before compartments",
       rd("JPN", "GOKUHI")
           .NeedToKnow({})
           .Topics({"dprk-missile"})
           .Compartments({"TALENT"})
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "no-need-to-know"},
      // Step 5 before step 6: a copy forwarded under USA–JPN (revoked at its end in 2030) of an
      // object reclassified to Korea's class I, which no row of the agreement it reached the
      // USA under maps.
      {"agreement ended before no equivalent level",
       B::Read("2030-06-01T00:00:00+09:00", "JPN", "KIMITSU")
           .NeedToKnow({"dprk-missile"})
           .Object("KOR", "I")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2015-01-02T00:00:00+09:00")
           .Forwarded("USA", "JPN", "2016-01-01T00:00:00+09:00", "uj"),
       "agreement-ended"},
      // The end instant is exclusive (DESIGN §2.6): USA–JPN ends at 2030-01-01T00:00+09:00.
      {"revoked exactly at the end",
       B::Read("2030-01-01T00:00:00+09:00", "JPN", "GOKUHI")
           .NeedToKnow({"dprk-missile"})
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2015-01-02T00:00:00+09:00")
           .Forwarded("USA", "JPN", "2016-01-01T00:00:00+09:00", "uj"),
       "agreement-ended"},
      {"one second before the end",
       B::Read("2029-12-31T23:59:59+09:00", "JPN", "GOKUHI")
           .NeedToKnow({"dprk-missile"})
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2015-01-02T00:00:00+09:00")
           .Forwarded("USA", "JPN", "2016-01-01T00:00:00+09:00", "uj"),
       "released", "uj", "JPN GOKUHI"},
      // For a forwarded copy, step 5 looks at the forward's agreement (DESIGN §3): the USA's
      // object reached Japan under USA–JPN (revoked at its end in 2030) and went on to Korea
      // under KOR–JPN (ended in 2019, protect), so Korea's copy stays readable in 2030.
      {"forwarded under a protect agreement after its release's revoke agreement ended",
       B::Read("2030-06-01T00:00:00+09:00", "KOR", "II")
           .NeedToKnow({"dprk-missile"})
           .Object("USA", "S")
           .Released("JPN", "2015-01-01T00:00:00+09:00", "uj")
           .Consent("KOR", "2015-01-02T00:00:00+09:00")
           .Forwarded("JPN", "KOR", "2016-12-01T00:00:00+09:00", "kj"),
       "released", "kj", "KOR II"},
      {"released",
       rd("JPN", "GOKUHI")
           .Topics({"dprk-missile"})
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "released", "kj", "JPN GOKUHI"},
      {"specially designated clearance reads the same row",
       rd("JPN", "TOKUTEI").Released("JPN", "2017-01-01T00:00:00+09:00", "kj"), "released", "kj",
       "JPN GOKUHI"},
      {"lower level, lower marking",
       rd("JPN", "HI").Object("KOR", "III").Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "released", "kj", "JPN HI"},
      {"destroyed one second after t",
       rd("JPN", "GOKUHI")
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Destroyed("2018-03-01T09:00:01+09:00"),
       "released", "kj", "JPN GOKUHI"},
      {"originator reads until one second before destruction",
       rd("KOR", "I").Destroyed("2018-03-01T09:00:01+09:00"), "originator-cleared"},
      // The holder's marking is the one from its latest release at or before the forward
      // (DESIGN §3 read): "uk" marks Korea's class II SECRET for the USA and "uk2" TOP SECRET,
      // which USA–JPN maps to GOKUHI and KIMITSU. The reader is cleared for both.
      {"the holder's marking is from its latest release, by time not by list order",
       rd("JPN", "KIMITSU")
           .Released("USA", Day(2), "uk2")
           .Released("USA", Day(1), "uk")
           .Consent("JPN", Day(1))
           .Forwarded("USA", "JPN", Day(3), "uj"),
       "released", "uj", "JPN KIMITSU"},
      {"the holder's marking is not from an earlier release",
       rd("JPN", "KIMITSU")
           .Released("USA", Day(1), "uk2")
           .Released("USA", Day(2), "uk")
           .Consent("JPN", Day(1))
           .Forwarded("USA", "JPN", Day(3), "uj"),
       "released", "uj", "JPN GOKUHI"},
      {"a release to the holder after the forward does not change the copy's marking",
       rd("JPN", "KIMITSU")
           .Released("USA", Day(1), "uk")
           .Consent("JPN", Day(1))
           .Forwarded("USA", "JPN", Day(3), "uj")
           .Released("USA", Day(4), "uk2"),
       "released", "uj", "JPN GOKUHI"},
      // The engine resolves the first 16 releases and forwards of a request once and looks
      // later ones up as it goes (engine.cc, kCached): in these rows only the 18th entry
      // allows, and without it the answer would be the forwards' agreement-ended.
      {"only the 18th of 20 releases allows",
       to_usa(B::Read("2030-06-01T00:00:00+09:00", "JPN", "GOKUHI"), 17)
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Released("USA", Day(20), "uk")
           .Released("USA", Day(21), "uk")
           .Consent("JPN", Day(1))
           .Forwarded("USA", "JPN", Day(1, "2016-01"), "uj")
           .Forwarded("USA", "JPN", Day(2, "2016-01"), "uj"),
       "released", "kj", "JPN GOKUHI"},
      {"only the 18th of 20 forwards allows, from the holder's 18th release",
       [&] {
         B b = B::Read("2030-06-01T00:00:00+09:00", "JPN", "GOKUHI");
         // Releases to Japan after t are no path; the USA's release is the 18th entry.
         for (int i = 1; i <= 17; ++i) b.Released("JPN", Day(i, "2031-01"), "kj");
         b.Released("USA", Day(1), "uk");
         for (int i = 18; i <= 19; ++i) b.Released("JPN", Day(i, "2031-01"), "kj");
         b.Consent("JPN", Day(1));
         // Revoked with USA–JPN at its end in 2030, but for the 18th, under TISA (protect).
         for (int i = 1; i <= 17; ++i) b.Forwarded("USA", "JPN", Day(i, "2016-01"), "uj");
         b.Forwarded("USA", "JPN", Day(1, "2016-02"), "tisa");
         for (int i = 2; i <= 3; ++i) b.Forwarded("USA", "JPN", Day(i, "2016-02"), "uj");
         return b;
       }(),
       "released", "tisa", "JPN GOKUHI"},
      {"protect survives the end",
       B::Read("2021-01-01T00:00:00+09:00", "JPN", "GOKUHI")
           .Released("JPN", "2018-01-01T00:00:00+09:00", "kj"),
       "released", "kj", "JPN GOKUHI"},
      {"through the hub with consent", via_hub(rd("JPN", "GOKUHI")), "released", "uj",
       "JPN GOKUHI"},
      // A forwarded copy passes the same checks as a released one, on the marking derived
      // through the holder (DESIGN §3 read, steps 5-7).
      {"forwarded, no row for the holder's marking",
       via_hub(rd("JPN", "KIMITSU").Object("KOR", "I")), "no-equivalent-level"},
      {"forwarded, below the marking", via_hub(rd("JPN", "HI")), "insufficient-clearance"},
      {"forwarded, no need-to-know",
       via_hub(rd("JPN", "GOKUHI").NeedToKnow({}).Topics({"dprk-missile"})), "no-need-to-know"},
      {"forwarded, missing compartment",
       via_hub(rd("JPN", "GOKUHI").Compartments({"TALENT"}).Holds({"OTHER"})), "compartment"},
      {"forwarded after t is no path",
       rd("JPN", "GOKUHI")
           .Released("USA", "2015-06-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2015-06-02T00:00:00+09:00")
           .Forwarded("USA", "JPN", "2018-06-01T00:00:00+09:00", "uj"),
       "not-released"},
      {"most recent allowing release names the agreement",
       rd("JPN", "GOKUHI")
           .Released("JPN", "2015-06-01T00:00:00+09:00", "tisa")
           .Released("JPN", "2017-06-01T00:00:00+09:00", "kj"),
       "released", "kj", "JPN GOKUHI"},
      {"an allowing path beats a later denying one",
       B::Read("2030-06-01T00:00:00+09:00", "JPN", "GOKUHI")
           .Object("KOR", "II")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Forwarded("USA", "JPN", "2018-01-01T00:00:00+09:00", "uj"),
       "released", "kj", "JPN GOKUHI"},
      {"the most recent path's reason when all deny",
       B::Read("2030-06-01T00:00:00+09:00", "JPN", "HI")
           .Object("KOR", "II")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Forwarded("USA", "JPN", "2018-01-01T00:00:00+09:00", "uj"),
       "agreement-ended"},
  };
}

std::vector<Row> ReleaseRows() {
  using B = RequestBuilder;
  auto rel = [](std::string at, std::string to) {
    return B::Release(std::move(at), std::move(to)).Topics({"dprk-missile"});
  };
  const std::string t2018 = "2018-03-01T09:00:00+09:00";
  return {
      Invalid("to the originator", rel(t2018, "KOR").RelTo({"JPN"}),
              RequestProblem::kReleaseToSelf),
      Undecodable("an instant without an offset", rel("2018-03-01", "JPN").RelTo({"JPN"}),
                  "`at`: bad instant `2018-03-01`: a date-time with an offset is required"),
      {"unknown recipient", rel(t2018, "XXX").RelTo({"JPN"}), "unknown-party"},
      {"unknown originator", rel(t2018, "JPN").Object("XXX", "II"), "unknown-party"},
      {"unknown level", rel(t2018, "JPN").Object("KOR", "SECRET").RelTo({"JPN"}), "unknown-level"},
      {"destroyed", rel(t2018, "JPN").RelTo({"JPN"}).Destroyed("2018-01-01T00:00:00Z"),
       "destroyed"},
      // §3 release step 1: destroyed before P = O.
      {"destroyed before to the originator",
       rel(t2018, "KOR").RelTo({"JPN"}).Destroyed("2018-01-01T00:00:00Z"), "destroyed"},
      {"destroyed later is fine",
       rel(t2018, "JPN").RelTo({"JPN"}).Destroyed("2019-01-01T00:00:00Z"), "releasable", "kj",
       "JPN GOKUHI"},
      {"not in rel_to", rel(t2018, "JPN").RelTo({"USA"}), "not-releasable"},
      {"empty rel_to is originator only", rel(t2018, "JPN"), "not-releasable"},
      {"not releasable before no agreement", rel(t2018, "GBR"), "not-releasable"},
      {"no agreement", rel(t2018, "GBR").RelTo({"GBR"}), "no-agreement"},
      {"before any agreement", rel("2014-01-01T00:00:00+09:00", "JPN").RelTo({"JPN"}),
       "agreement-not-in-force"},
      {"only through the hub", rel("2015-06-01T00:00:00+09:00", "JPN").RelTo({"JPN"}), "hub-only"},
      {"after the end, only through the hub",
       rel("2019-11-23T00:00:00+09:00", "JPN").RelTo({"JPN"}), "hub-only"},
      // The hub check (step 5) comes before scope (step 6), even for a topic TISA does not cover.
      {"after the end, hub before scope",
       B::Release("2019-11-23T00:00:00+09:00", "JPN").Topics({"weather"}).RelTo({"JPN"}),
       "hub-only"},
      {"out of scope", rel(t2018, "GBR").Object("USA", "S").RelTo({"GBR"}), "out-of-scope"},
      {"out of scope before no row for the level",
       rel(t2018, "GBR").Object("USA", "C").RelTo({"GBR"}), "out-of-scope"},
      {"no topics is in scope only of *",
       B::Release(t2018, "GBR").Object("USA", "S").RelTo({"GBR"}), "out-of-scope"},
      {"no row for the level",
       B::Release(t2018, "GBR").Object("USA", "C").Topics({"nato"}).RelTo({"GBR"}),
       "no-equivalent-level"},
      {"class I is never shared", rel(t2018, "JPN").Object("KOR", "I").RelTo({"JPN"}),
       "no-equivalent-level"},
      {"releasable", rel(t2018, "JPN").RelTo({"JPN", "USA"}), "releasable", "kj", "JPN GOKUHI"},
      {"one second before the end", rel("2019-11-22T23:59:59+09:00", "JPN").RelTo({"JPN"}),
       "releasable", "kj", "JPN GOKUHI"},
      {"fewest parties first", rel(t2018, "USA").RelTo({"USA"}), "releasable", "uk", "USA S"},
      {"no topics under *", B::Release(t2018, "USA").RelTo({"USA"}).Object("KOR", "III"),
       "releasable", "uk", "USA C"},
  };
}

std::vector<Row> ForwardRows() {
  using B = RequestBuilder;
  const std::string t2018 = "2018-03-01T09:00:00+09:00";
  const std::string t2015 = "2015-06-01T00:00:00+09:00";
  // Korea's object, released to the USA in 2015 under the bilateral agreement.
  auto held = [&](std::string at, std::string holder, std::string to) {
    return B::Forward(std::move(at), std::move(holder), std::move(to))
        .Topics({"dprk-missile"})
        .Released("USA", t2015, "uk");
  };
  return {
      // It was never released its own object (§3, forward step 1), as the node answers too.
      {"the originator does not forward", held(t2018, "KOR", "JPN"), "not-held"},
      Invalid("the originator to itself", held(t2018, "KOR", "KOR"),
              RequestProblem::kForwardToHolder),
      Invalid("to itself", held(t2018, "USA", "USA"), RequestProblem::kForwardToHolder),
      Invalid("back to the originator", held(t2018, "USA", "KOR").Consent("KOR", t2015),
              RequestProblem::kForwardToOriginator),
      Invalid("a forward in the history names an unknown agreement",
              held(t2018, "USA", "JPN")
                  .Consent("JPN", t2015)
                  .Forwarded("USA", "JPN", "2016-01-01T00:00:00+09:00", "nope"),
              RequestProblem::kUnknownForwardAgreement),
      {"unknown holder", held(t2018, "XXX", "JPN"), "unknown-party"},
      {"unknown party in a consent", held(t2018, "USA", "JPN").Consent("ZZZ", t2015),
       "unknown-party"},
      {"unknown level", held(t2018, "USA", "JPN").Object("KOR", "TS"), "unknown-level"},
      {"unknown party in a consent before unknown level",
       held(t2018, "USA", "JPN").Object("KOR", "TS").Consent("ZZZ", t2015), "unknown-party"},
      {"destroyed", held(t2018, "USA", "JPN").Consent("JPN", t2015).Destroyed(t2015), "destroyed"},
      // §3 forward step 1: destroyed before not-held, and before the forward's own request
      // checks (decision #11).
      {"destroyed before not held",
       held(t2018, "JPN", "USA").Consent("USA", t2015).Destroyed(t2015), "destroyed"},
      {"destroyed before to itself", held(t2018, "USA", "USA").Destroyed(t2015), "destroyed"},
      {"never held", held(t2018, "JPN", "USA").Consent("USA", t2015), "not-held"},
      {"held only after t", held("2015-05-01T00:00:00+09:00", "USA", "JPN").Consent("JPN", t2015),
       "not-held"},
      {"a forwarded copy is not held",
       held(t2018, "JPN", "GBR")
           .Consent("JPN", t2015)
           .Consent("GBR", t2015)
           .Forwarded("USA", "JPN", "2016-01-01T00:00:00+09:00", "uj"),
       "not-held"},
      {"no consent", held(t2018, "USA", "JPN"), "no-consent"},
      {"consent for someone else", held(t2018, "USA", "JPN").Consent("GBR", t2015), "no-consent"},
      {"consent after t", held(t2018, "USA", "JPN").Consent("JPN", "2019-01-01T00:00:00+09:00"),
       "no-consent"},
      {"no agreement",
       B::Forward(t2018, "JPN", "GBR")
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Consent("GBR", t2015),
       "no-agreement"},
      // §3 forward: consent (step 2) before the agreement checks (step 3).
      {"no consent before no agreement",
       B::Forward(t2018, "JPN", "GBR").Released("JPN", "2017-01-01T00:00:00+09:00", "kj"),
       "no-consent"},
      {"not in force yet",
       held("2006-01-01T00:00:00+09:00", "USA", "JPN")
           .Released("USA", "2000-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2000-01-01T00:00:00+09:00"),
       "agreement-not-in-force"},
      {"only through the hub",
       B::Forward(t2015, "KOR", "JPN")
           .Object("USA", "S")
           .Topics({"dprk-missile"})
           .Released("KOR", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", "2015-01-01T00:00:00+09:00"),
       "hub-only"},
      {"out of scope", held(t2018, "USA", "GBR").Consent("GBR", t2015), "out-of-scope"},
      {"out of scope before no row for the holder's marking",
       held(t2018, "USA", "GBR").Object("KOR", "III").Consent("GBR", t2015), "out-of-scope"},
      {"no row for the holder's marking",
       held(t2018, "USA", "GBR").Object("KOR", "III").Topics({"nato"}).Consent("GBR", t2015),
       "no-equivalent-level"},
      {"forwardable", held(t2018, "USA", "JPN").Consent("JPN", t2015), "forwardable", "uj",
       "JPN GOKUHI"},
      {"consent given before the holder received it",
       held(t2018, "USA", "JPN").Consent("JPN", "2010-01-01T00:00:00+09:00"), "forwardable", "uj",
       "JPN GOKUHI"},
      // The holder's marking is the one from its latest release at or before t (DESIGN §3
      // forward, step 3, and read): "uk" marks Korea's class II SECRET for the USA, "uk2" TOP
      // SECRET, which USA–JPN maps to GOKUHI and KIMITSU.
      {"the holder's marking is from its latest release",
       B::Forward(t2018, "USA", "JPN")
           .Released("USA", "2015-02-01T00:00:00+09:00", "uk2")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", t2015),
       "forwardable", "uj", "JPN KIMITSU"},
      {"the holder's marking is not from an earlier release",
       B::Forward(t2018, "USA", "JPN")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk2")
           .Released("USA", "2015-02-01T00:00:00+09:00", "uk")
           .Consent("JPN", t2015),
       "forwardable", "uj", "JPN GOKUHI"},
      {"the holder's release after t does not count",
       B::Forward(t2018, "USA", "JPN")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Released("USA", "2018-03-01T09:00:01+09:00", "uk2")
           .Consent("JPN", t2015),
       "forwardable", "uj", "JPN GOKUHI"},
      // Two releases to the holder at one instant: the one listed later marks the copy (the
      // node lists releases by instant, then in the order it recorded them; decision #122).
      {"of two releases to the holder at one instant, the later listed marks it",
       B::Forward(t2018, "USA", "JPN")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk2")
           .Consent("JPN", t2015),
       "forwardable", "uj", "JPN KIMITSU"},
      {"of two releases to the holder at one instant, the later listed marks it (reversed)",
       B::Forward(t2018, "USA", "JPN")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk2")
           .Released("USA", "2015-01-01T00:00:00+09:00", "uk")
           .Consent("JPN", t2015),
       "forwardable", "uj", "JPN GOKUHI"},
      // Past the engine's cache of the first 16 entries (engine.cc, kCached): the holder's only
      // release is the 18th of 20, and its agreement decides the marking.
      {"the holder's release is the 18th of 20",
       [&] {
         B b = B::Forward(t2018, "USA", "JPN");
         for (int i = 1; i <= 17; ++i) b.Released("JPN", Day(i, "2017-01"), "kj");
         b.Released("USA", t2015, "uk");
         b.Released("JPN", "2017-02-01T00:00:00+09:00", "kj");
         b.Released("JPN", "2017-02-02T00:00:00+09:00", "kj");
         b.Consent("JPN", t2015);
         return b;
       }(),
       "forwardable", "uj", "JPN GOKUHI"},
      {"any holder may forward once consented",
       B::Forward(t2018, "JPN", "USA")
           .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
           .Consent("USA", t2015),
       "forwardable", "uj", "USA S"},
  };
}

// The reason codes DESIGN.md §3 lists for each action.
const std::map<std::string, std::set<std::string>> kReasonsByAction = {
    {"read",
     {"invalid-request", "unknown-party", "unknown-level", "destroyed", "insufficient-clearance",
      "no-need-to-know", "compartment", "originator-cleared", "not-released", "agreement-ended",
      "no-equivalent-level", "released"}},
    {"release",
     {"invalid-request", "unknown-party", "unknown-level", "destroyed", "not-releasable",
      "no-agreement", "agreement-not-in-force", "hub-only", "out-of-scope", "no-equivalent-level",
      "releasable"}},
    {"forward",
     {"invalid-request", "unknown-party", "unknown-level", "destroyed", "not-held", "no-consent",
      "no-agreement", "agreement-not-in-force", "hub-only", "out-of-scope", "no-equivalent-level",
      "forwardable"}},
};

void RunTable(const std::string& action, const std::vector<Row>& rows) {
  const Engine engine = MakeEngine();
  std::set<std::string> reached;
  for (const Row& row : rows) {
    SCOPED_TRACE(action + ": " + row.name);
    const Answer a = Ask(engine, row.request.Json());
    EXPECT_EQ(a.reason, row.reason) << (a.explain.empty() ? "" : a.explain[0]);
    // Which check refused an invalid request: the decoder, or Decide and for what.
    if (row.reason == "invalid-request") {
      const bool by_decoder = !row.decoder_error.empty();
      EXPECT_NE(by_decoder, row.problem != RequestProblem::kNone)
          << "an invalid-request row names the decoder's error or Decide's problem, not both";
      EXPECT_EQ(a.decoded, !by_decoder) << a.error;
      if (by_decoder) {
        EXPECT_THAT(a.error, HasSubstr(row.decoder_error));
      }
    } else {
      EXPECT_TRUE(a.decoded) << a.error;
    }
    EXPECT_EQ(ProblemName(a.problem), ProblemName(row.problem));
    const bool allow = row.reason == "released" || row.reason == "releasable" ||
                       row.reason == "forwardable" || row.reason == "originator-cleared";
    EXPECT_EQ(a.allow, allow);
    EXPECT_EQ(a.agreement, row.agreement);
    EXPECT_EQ(a.marking, row.marking);
    EXPECT_FALSE(a.explain.empty()) << "every decision is explained";
    reached.insert(a.reason);
  }
  EXPECT_EQ(reached, kReasonsByAction.at(action))
      << "the table must reach every reason code of " << action;
}

TEST(DecisionTableTest, Read) { RunTable("read", ReadRows()); }
TEST(DecisionTableTest, Release) { RunTable("release", ReleaseRows()); }
TEST(DecisionTableTest, Forward) { RunTable("forward", ForwardRows()); }

// The tables' reason codes together are every code there is: a new code needs a row.
TEST(DecisionTableTest, TheTablesCoverEveryReasonCode) {
  std::set<std::string> all;
  for (int i = 0; i < kReasonCount; ++i)
    all.insert(std::string(ReasonName(static_cast<Reason>(i))));
  std::set<std::string> covered;
  for (const auto& [action, reasons] : kReasonsByAction)
    covered.insert(reasons.begin(), reasons.end());
  EXPECT_EQ(covered, all);
}

// Every way a history or an action can be invalid has a row that reaches it, so a row that
// expects invalid-request cannot pass for another of them.
TEST(DecisionTableTest, TheTablesReachEveryRequestProblem) {
  std::set<std::string> all, reached;
  for (int i = 1; !ProblemName(static_cast<RequestProblem>(i)).empty(); ++i) {
    all.insert(ProblemName(static_cast<RequestProblem>(i)));
  }
  for (const auto& rows : {ReadRows(), ReleaseRows(), ForwardRows()}) {
    for (const Row& row : rows) {
      if (row.problem != RequestProblem::kNone) reached.insert(ProblemName(row.problem));
    }
  }
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(reached, all);
}

TEST(DecisionTest, ReasonNamesRoundTrip) {
  for (int i = 0; i < kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    EXPECT_EQ(ParseReason(ReasonName(r)), r);
  }
  EXPECT_EQ(ParseReason("maybe"), std::nullopt);
}

TEST(DecisionTest, ExplanationsNameThePath) {
  const Engine engine = MakeEngine();
  const Answer a = Ask(engine, RequestBuilder::Read("2018-03-01T09:00:00+09:00", "JPN", "GOKUHI")
                                   .Released("JPN", "2017-01-01T00:00:00+09:00", "kj")
                                   .Json());
  ASSERT_EQ(a.explain.size(), 3u);
  EXPECT_EQ(a.explain[0],
            "`KOR` released `obj-1` to `JPN` at 2017-01-01T00:00:00+09:00 under `kj`");
  EXPECT_EQ(a.explain[1], "II (군사II급비밀) of `KOR` is marked GOKUHI (極秘) for `JPN`");
}

TEST(DecisionTest, FlowsAtAnInstant) {
  const Engine engine = MakeEngine();
  const int32_t kor = engine.PartyIndex("KOR"), jpn = engine.PartyIndex("JPN"),
                usa = engine.PartyIndex("USA");
  const Flow f2018 = engine.FlowAt(kor, jpn, *ParseInstant("2018-01-01T00:00:00+09:00"));
  EXPECT_TRUE(f2018.allowed);
  EXPECT_EQ(engine.agreement(f2018.agreement).id, "kj");
  ASSERT_EQ(f2018.level_map.size(), 3u);
  EXPECT_EQ(f2018.level_map[0], engine.party(jpn).LevelIndex("HI"));
  EXPECT_EQ(f2018.level_map[1], engine.party(jpn).LevelIndex("GOKUHI"));
  EXPECT_EQ(f2018.level_map[2], -1);  // Class I is never shared
  const Flow f2015 = engine.FlowAt(kor, jpn, *ParseInstant("2015-06-01T00:00:00+09:00"));
  EXPECT_FALSE(f2015.allowed);
  EXPECT_EQ(f2015.reason, Reason::kHubOnly);
  EXPECT_EQ(f2015.hub, usa);
  EXPECT_EQ(
      engine.FlowAt(kor, engine.PartyIndex("GBR"), *ParseInstant("2018-01-01T00:00:00Z")).reason,
      Reason::kNoAgreement);
  EXPECT_EQ(engine.FlowAt(kor, jpn, *ParseInstant("2010-01-01T00:00:00Z")).reason,
            Reason::kAgreementNotInForce);
}

TEST(DecisionTest, CompileRejectsAnInvalidPolicy) {
  Policy p;
  p.parties.push_back(Party{"kor", "bad id", {Level{"A", "A", "", 1}}});
  auto e = Engine::Compile(p);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, Code::kInvalidArgument);
  EXPECT_THAT(e.error().message, HasSubstr("party[0].id"));
}

}  // namespace
}  // namespace accord
