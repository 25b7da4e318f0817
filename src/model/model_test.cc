#include "accord/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Party MakeParty(std::string id, std::vector<std::string> levels) {
  Party p{std::move(id), "name", {}};
  int32_t rank = 1;
  for (auto& l : levels) p.levels.push_back(Level{l, l, "", rank++});
  return p;
}

Policy Minimal() {
  Policy p;
  p.parties = {MakeParty("KOR", {"III", "II", "I"}), MakeParty("JPN", {"HI", "GOKUHI"})};
  Agreement a;
  a.id = "a";
  a.parties = {"KOR", "JPN"};
  a.scope = {"*"};
  LevelRow row;
  row.levels["KOR"] = {"II"};
  row.levels["JPN"] = {"GOKUHI"};
  a.levels.push_back(row);
  p.agreements.push_back(a);
  return p;
}

TEST(ModelTest, MinimalPolicyIsValid) { EXPECT_THAT(ValidatePolicy(Minimal()), IsEmpty()); }

TEST(ModelTest, PartyIds) {
  EXPECT_TRUE(IsValidPartyId("KOR"));
  EXPECT_TRUE(IsValidPartyId("NATO-1"));
  EXPECT_TRUE(IsValidPartyId("AB"));
  EXPECT_FALSE(IsValidPartyId("A"));
  EXPECT_FALSE(IsValidPartyId("kor"));
  EXPECT_FALSE(IsValidPartyId("1KOR"));
  EXPECT_FALSE(IsValidPartyId("ABCDEFGHIJKLMNOPQ"));
  EXPECT_FALSE(IsValidPartyId("KO R"));
}

TEST(ModelTest, ReportsEveryProblemWithItsPath) {
  Policy p = Minimal();
  p.agreements[0].hub = "USA";
  p.agreements[0].levels[0].levels["JPN"] = {"KIMITSU"};
  p.agreements[0].renewal = Renewal::kNone;
  EXPECT_THAT(ValidatePolicy(p), ElementsAre(Field(&Problem::path, "agreement[0].renewal"),
                                             Field(&Problem::path, "agreement[0].hub"),
                                             Field(&Problem::path, "agreement[0].levels[0].JPN")));
}

// DESIGN §1: a term is years, months and days. With a time part the anniversaries' time of day
// moves, and a notice period in months could then put a later deadline before an earlier one.
TEST(ModelTest, ATermHasNoTimePart) {
  Policy p = Minimal();
  p.agreements[0].term = CalendarDuration{0, 0, 1, 12 * 3600};  // P1DT12H
  auto problems = ValidatePolicy(p);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "agreement[0].term");
  EXPECT_THAT(problems[0].message, HasSubstr("years, months and days"));
  p.agreements[0].term = CalendarDuration{1, 6, 10, 0};  // P1Y6M10D
  EXPECT_THAT(ValidatePolicy(p), IsEmpty());
}

TEST(ModelTest, NoticeStateMachine) {
  Policy p = Minimal();
  auto& ev = p.agreements[0].events;
  ev.push_back({EventKind::kNoticeResumed, "KOR", Instant::FromSeconds(10), ""});
  ev.push_back({EventKind::kTerminationNotice, "KOR", Instant::FromSeconds(20), ""});
  ev.push_back({EventKind::kNoticeSuspended, "KOR", Instant::FromSeconds(30), ""});
  ev.push_back({EventKind::kNoticeSuspended, "KOR", Instant::FromSeconds(40), ""});
  ev.push_back({EventKind::kNoticeWithdrawn, "JPN", Instant::FromSeconds(50), ""});
  auto problems = ValidatePolicy(p);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_THAT(problems[0].message, HasSubstr("no suspended notice"));
  EXPECT_EQ(problems[1].path, "agreement[0].event[3]");
  EXPECT_THAT(problems[2].message, HasSubstr("no notice of `JPN` to withdraw"));
}

// Suspend, resume and withdraw apply to the latest notice of the party not withdrawn (DESIGN.md
// §2), as the lifecycle applies them: once the latest is withdrawn, the one before it is the
// latest again.
TEST(ModelTest, AWithdrawalMakesTheNoticeBeforeItTheLatestAgain) {
  Policy p = Minimal();
  auto& ev = p.agreements[0].events;
  ev.push_back({EventKind::kTerminationNotice, "KOR", Instant::FromSeconds(10), ""});
  ev.push_back({EventKind::kTerminationNotice, "KOR", Instant::FromSeconds(20), ""});
  ev.push_back({EventKind::kNoticeWithdrawn, "KOR", Instant::FromSeconds(30), ""});
  ev.push_back({EventKind::kNoticeSuspended, "KOR", Instant::FromSeconds(40), ""});  // the first
  ev.push_back({EventKind::kNoticeResumed, "KOR", Instant::FromSeconds(50), ""});
  ev.push_back({EventKind::kNoticeWithdrawn, "KOR", Instant::FromSeconds(60), ""});
  EXPECT_THAT(ValidatePolicy(p), IsEmpty());
  // Both are withdrawn now: a third withdrawal has nothing to withdraw.
  ev.push_back({EventKind::kNoticeWithdrawn, "KOR", Instant::FromSeconds(70), ""});
  auto problems = ValidatePolicy(p);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "agreement[0].event[6]");
  EXPECT_THAT(problems[0].message, HasSubstr("no notice of `KOR` to withdraw"));
}

TEST(ModelTest, EventKindsRoundTrip) {
  for (EventKind k :
       {EventKind::kTerminationNotice, EventKind::kNoticeSuspended, EventKind::kNoticeResumed,
        EventKind::kNoticeWithdrawn, EventKind::kTerminated}) {
    EXPECT_EQ(ParseEventKind(EventKindName(k)), k);
  }
  EXPECT_EQ(ParseEventKind("notice"), std::nullopt);
}

}  // namespace
}  // namespace accord
