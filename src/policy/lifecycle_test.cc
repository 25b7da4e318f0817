// DESIGN.md §2, rule by rule, plus the details paragraph (calendar arithmetic, defaults, ordering).
#include "accord/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord {
namespace {

using ::testing::HasSubstr;

constexpr ZoneOffset kSeoul{540};

Instant At(std::string_view text) {
  auto t = ParseInstantInZone(text, kSeoul);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(Instant{});
}

Agreement Yearly(std::string_view in_force = "2016-11-23") {
  Agreement a;
  a.id = "kor-jpn";
  a.parties = {"KOR", "JPN"};
  a.in_force = At(in_force);
  a.zone = kSeoul;
  a.term = CalendarDuration{1, 0, 0, 0};
  a.notice_period = CalendarDuration{0, 0, 90, 0};
  a.scope = {"*"};
  return a;
}

Agreement Indefinite() {
  Agreement a = Yearly("1987-09-24");
  a.term.reset();
  return a;
}

void AddEvent(Agreement& a, EventKind kind, std::string_view at, std::string by = "KOR") {
  a.events.push_back(AgreementEvent{kind, std::move(by), At(at), ""});
}

AgreementStatus Status(const Agreement& a, std::string_view t) {
  auto s = StatusAt(a, At(t));
  EXPECT_TRUE(s.has_value());
  return s.value_or(AgreementStatus{});
}

Lifetime Life(const Agreement& a) {
  auto l = ComputeLifetime(a);
  EXPECT_TRUE(l.has_value());
  return l.value_or(Lifetime{});
}

TEST(LifecycleTest, PendingBeforeEntryIntoForce) {
  const Agreement a = Yearly();
  EXPECT_EQ(Status(a, "2016-11-22T23:59:59+09:00").state, AgreementState::kPending);
  EXPECT_EQ(Status(a, "2016-11-23T00:00:00+09:00").state, AgreementState::kInForce);
}

TEST(LifecycleTest, RenewsEveryYearWithoutNotice) {
  const Agreement a = Yearly();
  const AgreementStatus s = Status(a, "2030-01-01");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_FALSE(s.ends_at.has_value());
  EXPECT_FALSE(s.notice.has_value());
  EXPECT_EQ(Life(a).end, Instant::Max());
}

TEST(LifecycleTest, NoticeBeforeTheDeadlineEndsAtTheNextAnniversary) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  const AgreementStatus before = Status(a, "2019-11-22T23:59:59+09:00");
  EXPECT_EQ(before.state, AgreementState::kInForce);
  EXPECT_EQ(before.ends_at, At("2019-11-23T00:00:00+09:00"));
  EXPECT_FALSE(before.ended_by.has_value());
  ASSERT_TRUE(before.notice.has_value());
  EXPECT_EQ(before.notice->state, NoticeState::kActive);
  const AgreementStatus after = Status(a, "2019-11-23T00:00:00+09:00");  // the end is exclusive
  EXPECT_EQ(after.state, AgreementState::kEnded);
  EXPECT_EQ(after.ends_at, At("2019-11-23T00:00:00+09:00"));
  EXPECT_EQ(after.ended_by, EndCause::kNotice);
}

TEST(LifecycleTest, NoticeExactlyAtTheDeadlineApplies) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-25T00:00:00+09:00");  // A_3 − P90D
  EXPECT_EQ(Life(a).end, At("2019-11-23T00:00:00+09:00"));
}

TEST(LifecycleTest, NoticeOneSecondLateAppliesToTheFollowingAnniversary) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-25T00:00:01+09:00");
  EXPECT_EQ(Life(a).end, At("2020-11-23T00:00:00+09:00"));
  EXPECT_EQ(Status(a, "2019-11-23T00:00:00+09:00").state, AgreementState::kInForce);
  EXPECT_EQ(Status(a, "2019-11-23T00:00:00+09:00").ends_at, At("2020-11-23T00:00:00+09:00"));
}

TEST(LifecycleTest, NoticeInTheFirstYear) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2017-01-01");
  EXPECT_EQ(Life(a).end, At("2017-11-23"));
}

TEST(LifecycleTest, SuspensionBeforeTheAnniversaryPreventsTheEnd) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-22T18:00:00+09:00");
  EXPECT_EQ(Life(a).end, Instant::Max());
  const AgreementStatus s = Status(a, "2019-11-23T00:00:00+09:00");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_FALSE(s.ends_at.has_value());
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->state, NoticeState::kSuspended);
  EXPECT_EQ(s.notice->by, "KOR");
  EXPECT_EQ(s.notice->given_at, At("2019-08-23T15:25:00+09:00"));
  // Status is as known at t: before the suspension the end was scheduled.
  EXPECT_EQ(Status(a, "2019-11-22T17:59:59+09:00").ends_at, At("2019-11-23T00:00:00+09:00"));
}

TEST(LifecycleTest, SuspensionExactlyAtTheAnniversaryPreventsTheEnd) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-23T00:00:00+09:00");
  EXPECT_EQ(Life(a).end, Instant::Max());
}

TEST(LifecycleTest, SuspensionOneSecondAfterTheAnniversaryIsTooLate) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-23T00:00:01+09:00");
  EXPECT_EQ(Life(a).end, At("2019-11-23T00:00:00+09:00"));
}

TEST(LifecycleTest, ResumedBeforeTheAnniversaryEndsAtTheAnniversary) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01");
  AddEvent(a, EventKind::kNoticeResumed, "2019-11-01");
  EXPECT_EQ(Life(a).end, At("2019-11-23"));
  EXPECT_EQ(Status(a, "2019-10-15").ends_at, std::nullopt);
  EXPECT_EQ(Status(a, "2019-11-02").ends_at, At("2019-11-23"));
}

TEST(LifecycleTest, ResumedAfterTheAnniversaryEndsAtTheResume) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-22T18:00:00+09:00");
  AddEvent(a, EventKind::kNoticeResumed, "2021-05-10T12:00:00+09:00");
  const Lifetime life = Life(a);
  EXPECT_EQ(life.end, At("2021-05-10T12:00:00+09:00"));
  EXPECT_EQ(life.cause, EndCause::kNotice);
  EXPECT_EQ(Status(a, "2021-05-10T11:59:59+09:00").state, AgreementState::kInForce);
  EXPECT_EQ(Status(a, "2021-05-10T12:00:00+09:00").state, AgreementState::kEnded);
}

TEST(LifecycleTest, WithdrawnNoticeEndsNothing) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-22T18:00:00+09:00");
  AddEvent(a, EventKind::kNoticeWithdrawn, "2023-03-21");
  EXPECT_EQ(Life(a).end, Instant::Max());
  const AgreementStatus s = Status(a, "2023-03-22");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->state, NoticeState::kWithdrawn);
}

TEST(LifecycleTest, WithdrawnThenANewNotice) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeWithdrawn, "2019-09-01");
  AddEvent(a, EventKind::kTerminationNotice, "2024-01-01");
  EXPECT_EQ(Life(a).end, At("2024-11-23"));
  const AgreementStatus s = Status(a, "2024-02-01");
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->given_at, At("2024-01-01"));
  EXPECT_EQ(s.notice->state, NoticeState::kActive);
}

TEST(LifecycleTest, TheEarlierOfTwoPartiesNoticesWins) {
  Agreement both = Yearly();
  AddEvent(both, EventKind::kTerminationNotice, "2019-08-23", "KOR");
  AddEvent(both, EventKind::kTerminationNotice, "2019-09-01", "JPN");  // too late for 2019
  EXPECT_EQ(Life(both).end, At("2019-11-23"));                         // KOR's
  EXPECT_EQ(Status(both, "2019-11-23").notice->by, "KOR");
}

// Two notices that end the agreement at the same anniversary: the one given first is named, by
// the status and by the timeline alike, in whichever order the events are listed.
TEST(LifecycleTest, OfTwoNoticesEndingItAtOnceTheFirstGivenIsNamed) {
  for (const bool kor_listed_first : {true, false}) {
    SCOPED_TRACE(kor_listed_first);
    Agreement a = Yearly();
    if (kor_listed_first) AddEvent(a, EventKind::kTerminationNotice, "2019-08-01", "KOR");
    AddEvent(a, EventKind::kTerminationNotice, "2019-08-10", "JPN");
    if (!kor_listed_first) AddEvent(a, EventKind::kTerminationNotice, "2019-08-01", "KOR");
    EXPECT_EQ(Life(a).end, At("2019-11-23"));  // both in time for it
    const AgreementStatus s = Status(a, "2019-11-23");
    ASSERT_TRUE(s.notice.has_value());
    EXPECT_EQ(s.notice->by, "KOR");
    auto t = Timeline(a, At("2020-01-01"));
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->back().kind, TimelineEntry::Kind::kEnd);
    EXPECT_THAT(t->back().what, HasSubstr("KOR's notice of termination takes effect"));
  }
}

TEST(LifecycleTest, ALaterNoticeEndsItWhenTheEarlierIsSuspended) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23", "KOR");
  AddEvent(a, EventKind::kTerminationNotice, "2019-09-01", "JPN");  // too late for 2019
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01", "KOR");
  EXPECT_EQ(Life(a).end, At("2020-11-23"));  // JPN's notice
  const AgreementStatus s = Status(a, "2020-11-23");
  EXPECT_EQ(s.state, AgreementState::kEnded);
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->by, "JPN");
}

// While nothing ends the agreement, a suspended notice is reported (DESIGN §2.7), even when
// another party gave a later notice and withdrew it.
TEST(LifecycleTest, ASuspendedNoticeIsReportedOverALaterWithdrawnOne) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23", "KOR");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-22T18:00:00+09:00", "KOR");
  AddEvent(a, EventKind::kTerminationNotice, "2020-01-10", "JPN");
  AddEvent(a, EventKind::kNoticeWithdrawn, "2020-02-01", "JPN");
  const AgreementStatus s = Status(a, "2020-03-01");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->by, "KOR");
  EXPECT_EQ(s.notice->state, NoticeState::kSuspended);
}

// §2.7's "a suspended notice, if any" is reported beside the active notice that will end the
// agreement: Korea's notice is suspended, Japan's (too late for 2019) ends it in 2020.
TEST(LifecycleTest, ASuspendedNoticeIsReportedBesideTheOneThatWillEndIt) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23", "KOR");
  AddEvent(a, EventKind::kTerminationNotice, "2019-09-01", "JPN");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01", "KOR");
  const AgreementStatus s = Status(a, "2020-01-01");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_EQ(s.ends_at, At("2020-11-23"));
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->by, "JPN");
  EXPECT_EQ(s.notice->state, NoticeState::kActive);
  ASSERT_EQ(s.suspended_notices.size(), 1u);
  EXPECT_EQ(s.suspended_notices[0].by, "KOR");
  EXPECT_EQ(s.suspended_notices[0].given_at, At("2019-08-23"));
  EXPECT_EQ(s.suspended_notices[0].state, NoticeState::kSuspended);
  // Before the suspension nothing is suspended; once ended, nothing is reported as suspended.
  EXPECT_TRUE(Status(a, "2019-09-30").suspended_notices.empty());
  EXPECT_TRUE(Status(a, "2020-11-23").suspended_notices.empty());
}

// Two parties' notices suspended at once are both reported, in the order given.
TEST(LifecycleTest, EveryNoticeSuspendedIsReportedInTheOrderGiven) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23", "KOR");
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-24", "JPN");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01", "JPN");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-02", "KOR");
  const AgreementStatus s = Status(a, "2020-01-01");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_FALSE(s.ends_at.has_value());
  ASSERT_EQ(s.suspended_notices.size(), 2u);
  EXPECT_EQ(s.suspended_notices[0].by, "KOR");
  EXPECT_EQ(s.suspended_notices[1].by, "JPN");
  EXPECT_EQ(s.suspended_notices[1].given_at, At("2019-08-24"));
  // Between the two suspensions only Japan's is suspended, and Korea's still ends it.
  const AgreementStatus between = Status(a, "2019-10-01T12:00:00+09:00");
  EXPECT_EQ(between.ends_at, At("2019-11-23"));
  ASSERT_EQ(between.suspended_notices.size(), 1u);
  EXPECT_EQ(between.suspended_notices[0].by, "JPN");
}

// An agreement that ended by expiry reports no notice given after its end.
TEST(LifecycleTest, ANoticeAfterTheEndIsNotReportedAsItStoodAtTheEnd) {
  Agreement a = Yearly();
  a.renewal = Renewal::kNone;
  AddEvent(a, EventKind::kTerminationNotice, "2018-06-01", "KOR");
  const AgreementStatus s = Status(a, "2018-07-01");
  EXPECT_EQ(s.state, AgreementState::kEnded);
  EXPECT_EQ(s.ended_by, EndCause::kExpiry);
  EXPECT_FALSE(s.notice.has_value());
}

TEST(LifecycleTest, MutualTermination) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminated, "2018-06-01T12:00:00+09:00", "JPN");
  const AgreementStatus s = Status(a, "2018-06-01T12:00:00+09:00");
  EXPECT_EQ(s.state, AgreementState::kEnded);
  EXPECT_EQ(s.ended_by, EndCause::kMutual);
  EXPECT_EQ(s.ends_at, At("2018-06-01T12:00:00+09:00"));
  // Before the event is known, nothing is scheduled.
  EXPECT_FALSE(Status(a, "2018-06-01T11:59:59+09:00").ends_at.has_value());
}

TEST(LifecycleTest, RenewalNoneExpiresAtTheFirstAnniversary) {
  Agreement a = Yearly();
  a.renewal = Renewal::kNone;
  const AgreementStatus s = Status(a, "2017-01-01");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_EQ(s.ends_at, At("2017-11-23"));
  const AgreementStatus e = Status(a, "2017-11-23");
  EXPECT_EQ(e.state, AgreementState::kEnded);
  EXPECT_EQ(e.ended_by, EndCause::kExpiry);
}

TEST(LifecycleTest, SimultaneousCausesAreReportedNoticeExpiryMutual) {
  Agreement a = Yearly();
  a.renewal = Renewal::kNone;
  AddEvent(a, EventKind::kTerminationNotice, "2017-01-01", "KOR");
  EXPECT_EQ(Life(a).cause, EndCause::kNotice);  // notice and expiry both at A_1
  Agreement b = Yearly();
  b.renewal = Renewal::kNone;
  AddEvent(b, EventKind::kTerminated, "2017-11-23", "JPN");
  EXPECT_EQ(Life(b).cause, EndCause::kExpiry);  // expiry and mutual both at A_1
}

TEST(LifecycleTest, IndefiniteAgreementEndsNoticePeriodAfterTheNotice) {
  Agreement a = Indefinite();
  AddEvent(a, EventKind::kTerminationNotice, "2020-01-10T10:00:00+09:00", "USA");
  a.parties = {"USA", "KOR"};
  EXPECT_EQ(Life(a).end, At("2020-04-09T10:00:00+09:00"));  // + P90D
  EXPECT_EQ(Status(a, "2020-02-01").ends_at, At("2020-04-09T10:00:00+09:00"));
}

TEST(LifecycleTest, IndefiniteSuspendedAtTheEndThenResumed) {
  Agreement a = Indefinite();
  AddEvent(a, EventKind::kTerminationNotice, "2020-01-10");
  AddEvent(a, EventKind::kNoticeSuspended, "2020-03-01");
  EXPECT_EQ(Life(a).end, Instant::Max());
  AddEvent(a, EventKind::kNoticeResumed, "2020-06-01");
  EXPECT_EQ(Life(a).end, At("2020-06-01"));  // period already run: ends at the resume
  Agreement b = Indefinite();
  AddEvent(b, EventKind::kTerminationNotice, "2020-01-10");
  AddEvent(b, EventKind::kNoticeSuspended, "2020-02-01");
  AddEvent(b, EventKind::kNoticeResumed, "2020-03-01");
  EXPECT_EQ(Life(b).end, At("2020-04-09"));  // resumed before the period ran: ends as planned
}

// §2.5 with §2.6: a suspension exactly at n + notice_period is in effect then, so the notice
// does not end the agreement; a later resume ends it at the resume.
TEST(LifecycleTest, IndefiniteSuspendedExactlyAtTheEnd) {
  Agreement a = Indefinite();
  AddEvent(a, EventKind::kTerminationNotice, "2020-01-10");
  AddEvent(a, EventKind::kNoticeSuspended, "2020-04-09");  // 2020-01-10 + P90D
  EXPECT_EQ(Life(a).end, Instant::Max());
  const AgreementStatus s = Status(a, "2020-04-09");
  EXPECT_EQ(s.state, AgreementState::kInForce);
  EXPECT_FALSE(s.ends_at.has_value());
  ASSERT_TRUE(s.notice.has_value());
  EXPECT_EQ(s.notice->state, NoticeState::kSuspended);
  AddEvent(a, EventKind::kNoticeResumed, "2020-06-01");
  EXPECT_EQ(Life(a).end, At("2020-06-01"));
}

TEST(LifecycleTest, IndefiniteWithoutNoticePeriodEndsAtTheNotice) {
  Agreement a = Indefinite();
  a.notice_period = CalendarDuration{};
  AddEvent(a, EventKind::kTerminationNotice, "2020-01-10");
  EXPECT_EQ(Life(a).end, At("2020-01-10"));
}

// §2.2 with §2.6: a notice suspended before the anniversary it applies to and resumed exactly at
// it is active at that instant (the resume is in effect at it): the agreement ends there.
TEST(LifecycleTest, ResumedExactlyAtTheAnniversaryEndsThere) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01");
  AddEvent(a, EventKind::kNoticeResumed, "2019-11-23");  // A_3
  const Lifetime life = Life(a);
  EXPECT_EQ(life.end, At("2019-11-23"));
  EXPECT_EQ(life.cause, EndCause::kNotice);
  EXPECT_EQ(Status(a, "2019-11-22T23:59:59+09:00").state, AgreementState::kInForce);
  const AgreementStatus s = Status(a, "2019-11-23");
  EXPECT_EQ(s.state, AgreementState::kEnded);
  EXPECT_EQ(s.ended_by, EndCause::kNotice);
}

// §2 details: A_k − notice_period takes years and months first (clamped), then days, as the
// forward sum does: 2021-03-31 − P1M1D = 2021-02-27, not 2021-02-28.
TEST(LifecycleTest, TheNoticeDeadlineTakesMonthsBeforeDays) {
  Agreement a = Yearly("2020-03-31");
  a.notice_period = CalendarDuration{0, 1, 1, 0};
  Agreement on_time = a;
  AddEvent(on_time, EventKind::kTerminationNotice, "2021-02-27T00:00:00+09:00");
  EXPECT_EQ(Life(on_time).end, At("2021-03-31"));
  Agreement late = a;
  AddEvent(late, EventKind::kTerminationNotice, "2021-02-27T00:00:01+09:00");
  EXPECT_EQ(Life(late).end, At("2022-03-31"));
}

TEST(LifecycleTest, AnniversariesClampToMonthEnds) {
  Agreement a = Yearly("2021-01-31");
  a.term = CalendarDuration{0, 1, 0, 0};
  a.notice_period = CalendarDuration{0, 0, 10, 0};
  EXPECT_EQ(*Anniversary(a, 1), At("2021-02-28"));
  EXPECT_EQ(*Anniversary(a, 2), At("2021-03-31"));  // computed directly, not from Feb 28
  EXPECT_EQ(*Anniversary(a, 13), At("2022-02-28"));
  // A notice on 2021-03-22 misses A_2 − P10D = 2021-03-21, so applies to A_3 = 2021-04-30.
  AddEvent(a, EventKind::kTerminationNotice, "2021-03-22");
  EXPECT_EQ(Life(a).end, At("2021-04-30"));
}

TEST(LifecycleTest, LeapDayAgreement) {
  Agreement a = Yearly("2020-02-29");
  EXPECT_EQ(*Anniversary(a, 1), At("2021-02-28"));
  EXPECT_EQ(*Anniversary(a, 4), At("2024-02-29"));
  EXPECT_FALSE(Anniversary(Indefinite(), 1).has_value());
}

// The deadline of a leap-day anniversary: 90 days before 2024-02-29 is 2023-12-01, and a
// notice a second later is for the next anniversary, clamped to 2025-02-28.
TEST(LifecycleTest, ANoticeDeadlineBeforeALeapDayAnniversary) {
  Agreement on_time = Yearly("2020-02-29");
  AddEvent(on_time, EventKind::kTerminationNotice, "2023-12-01T00:00:00");
  EXPECT_EQ(Life(on_time).end, At("2024-02-29"));
  Agreement late = Yearly("2020-02-29");
  AddEvent(late, EventKind::kTerminationNotice, "2023-12-01T00:00:01");
  EXPECT_EQ(Life(late).end, At("2025-02-28"));
}

// Instants are compared as instants, whatever offset they are written in: the end of the
// Korea–Japan GSOMIA under the 2019 notice, 2019-11-23T00:00+09:00, is 2019-11-22T15:00Z, and
// the notice's deadline, 2019-08-25T00:00+09:00, is 2019-08-24T15:00Z.
TEST(LifecycleTest, InstantsWrittenInAnotherOffsetMeetTheSameBoundaries) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-24T15:00:00Z");  // exactly the deadline
  EXPECT_EQ(Life(a).end, At("2019-11-23"));
  EXPECT_EQ(Status(a, "2019-11-22T14:59:59Z").state, AgreementState::kInForce);
  EXPECT_EQ(Status(a, "2019-11-22T15:00:00Z").state, AgreementState::kEnded);
  Agreement late = Yearly();
  AddEvent(late, EventKind::kTerminationNotice, "2019-08-24T15:00:01Z");
  EXPECT_EQ(Life(late).end, At("2020-11-23"));
}

TEST(LifecycleTest, LongHistoriesFindTheAnniversaryWithoutStepping) {
  Agreement a = Yearly("1900-01-01");
  a.term = CalendarDuration{0, 0, 1, 0};  // daily renewal
  a.notice_period = CalendarDuration{0, 0, 0, 0};
  AddEvent(a, EventKind::kTerminationNotice, "2020-06-15T12:00:00+09:00");
  EXPECT_EQ(Life(a).end, At("2020-06-16"));
}

TEST(LifecycleTest, ANoticeLateInTheRangeStillApplies) {
  // The doubling search for the first anniversary jumps past year 9999 (k = 8192 for a 2016
  // agreement); the anniversary in range before it must still be found.
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "7000-01-01");
  EXPECT_EQ(Life(a).end, At("7000-11-23"));
  Agreement last = Yearly();
  AddEvent(last, EventKind::kTerminationNotice, "9999-01-01");
  EXPECT_EQ(Life(last).end, At("9999-11-23"));
  // Past the last deadline in range: no end.
  Agreement none = Yearly();
  AddEvent(none, EventKind::kTerminationNotice, "9999-10-01");
  EXPECT_EQ(Life(none).end, Instant::Max());
}

// The search for a notice's first anniversary relies on A_k − notice_period never decreasing
// with k. That holds for terms of years, months and days (the only ones the model's checks let
// through), month-end clamping included, whatever the notice period.
TEST(LifecycleTest, DeadlinesNeverGoBackForCalendarTerms) {
  const CalendarDuration terms[] = {{0, 1, 0, 0}, {0, 1, 1, 0},  {1, 0, 0, 0},
                                    {0, 0, 3, 0}, {0, 2, 15, 0}, {0, 0, 1, 0}};
  const CalendarDuration periods[] = {{},           {0, 1, 0, 0},        {0, 0, 90, 0},
                                      {0, 1, 1, 0}, {0, 0, 0, 6 * 3600}, {1, 1, 0, 0}};
  for (std::string_view start : {"2021-01-31", "2020-02-29", "2021-03-30T18:00:00+09:00"}) {
    for (const CalendarDuration& term : terms) {
      for (const CalendarDuration& period : periods) {
        Agreement a = Yearly(start);
        a.term = term;
        a.notice_period = period;
        Instant last = Instant::Min();
        for (int64_t k = 1; k <= 400; ++k) {
          auto ak = AddCalendar(a.in_force, term, a.zone, k);
          ASSERT_TRUE(ak.has_value());
          auto deadline = AddCalendar(*ak, period, a.zone, 1, Direction::kBackward);
          ASSERT_TRUE(deadline.has_value());
          ASSERT_LE(last, *deadline) << start << " k=" << k;
          last = *deadline;
        }
      }
    }
  }
}

// DESIGN §2: a suspend, resume or withdraw applies to the latest not-withdrawn notice of the
// same party. Suspending the second of two pending notices leaves the first one to end it.
TEST(LifecycleTest, ASuspensionAppliesToThePartysLatestNotice) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");  // applies to A_3
  AddEvent(a, EventKind::kTerminationNotice, "2019-09-01");                 // applies to A_4
  AddEvent(a, EventKind::kNoticeSuspended, "2019-10-01");                   // the second one
  EXPECT_EQ(Life(a).end, At("2019-11-23"));
  // Withdraw the second, and the next suspension reaches the first: then nothing ends it.
  Agreement b = Yearly();
  AddEvent(b, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(b, EventKind::kTerminationNotice, "2019-09-01");
  AddEvent(b, EventKind::kNoticeWithdrawn, "2019-10-01");
  AddEvent(b, EventKind::kNoticeSuspended, "2019-10-02");
  EXPECT_EQ(Life(b).end, Instant::Max());
}

// An event at instant e is in effect at e (DESIGN §2.6): a notice withdrawn exactly at the
// anniversary it applies to ends nothing, one withdrawn a second later has ended it.
TEST(LifecycleTest, WithdrawnExactlyAtTheAnniversaryEndsNothing) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(a, EventKind::kNoticeWithdrawn, "2019-11-23T00:00:00+09:00");
  EXPECT_EQ(Life(a).end, Instant::Max());
  Agreement late = Yearly();
  AddEvent(late, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(late, EventKind::kNoticeWithdrawn, "2019-11-23T00:00:01+09:00");
  EXPECT_EQ(Life(late).end, At("2019-11-23"));
}

TEST(LifecycleTest, TimelineTellsWhatEachInstantDid) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23T15:25:00+09:00");
  AddEvent(a, EventKind::kNoticeSuspended, "2019-11-22T18:00:00+09:00");
  AddEvent(a, EventKind::kNoticeWithdrawn, "2023-03-21T09:00:00+09:00");
  auto t = Timeline(a, At("2024-01-01"));
  ASSERT_TRUE(t.has_value());
  std::vector<std::string> lines;
  for (const auto& e : *t) lines.push_back(FormatInstant(e.at, kSeoul) + " " + e.what);
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_THAT(lines[0], HasSubstr("2016-11-23T00:00:00+09:00 enters into force for a term of P1Y"));
  EXPECT_THAT(lines[3],
              HasSubstr("applies to the anniversary of 2019-11-23T00:00:00+09:00 (notice deadline "
                        "2019-08-25T00:00:00+09:00)"));
  EXPECT_THAT(lines[4], HasSubstr("2019-11-22T18:00:00+09:00 KOR suspends"));
  EXPECT_THAT(lines[5],
              HasSubstr("anniversary 3: renewed for P1Y (KOR's notice applies but is suspended)"));
  EXPECT_THAT(lines[9], HasSubstr("KOR withdraws"));
  EXPECT_THAT(lines[10], HasSubstr("2023-11-23T00:00:00+09:00 anniversary 7: renewed for P1Y"));
}

TEST(LifecycleTest, TimelineEndsWithTheEnd) {
  Agreement a = Yearly();
  AddEvent(a, EventKind::kTerminationNotice, "2019-08-23");
  auto t = Timeline(a, At("2030-01-01"));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->back().kind, TimelineEntry::Kind::kEnd);
  EXPECT_EQ(t->back().at, At("2019-11-23"));
  EXPECT_THAT(t->back().what, HasSubstr("KOR's notice of termination takes effect"));
}

TEST(LifecycleTest, NamesAreStable) {
  EXPECT_EQ(AgreementStateName(AgreementState::kInForce), "in-force");
  EXPECT_EQ(EndCauseName(EndCause::kExpiry), "expiry");
  EXPECT_EQ(NoticeStateName(NoticeState::kSuspended), "suspended");
}

}  // namespace
}  // namespace accord
