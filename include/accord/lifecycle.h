// accord/lifecycle.h — the state of an agreement at any instant (DESIGN.md §2).
//
// An agreement enters into force at `in_force`; with a term it renews at each anniversary
// A_k = in_force + k·term unless a termination notice given at least `notice_period` before A_k
// is active at A_k; a notice may be suspended, resumed and withdrawn; `renewal = "none"` ends it at
// A_1; a `terminated` event ends it by mutual consent. Without a term a notice ends it
// `notice_period` after it is given. End instants are exclusive.
//
// The single rule behind §2.2, §2.3 and §2.5: a notice ends the agreement at the earliest instant
// x ≥ D at which the notice is active, where D is the first anniversary the notice applies to (with
// a term) or n + notice_period (without one).
//
// Status is "as known at t": events after t are ignored. Because an event never changes whether a
// notice was active before it, the end computed from all events equals the end known at any t at
// or after it, which is what lets the decision engine precompute one [start, end) per agreement.
//
// Thread safety: pure functions.
#ifndef ACCORD_LIFECYCLE_H_
#define ACCORD_LIFECYCLE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accord/model.h"
#include "accord/status.h"
#include "accord/time.h"

namespace accord {

enum class AgreementState { kPending, kInForce, kEnded };
// When several causes end an agreement at one instant, the first of this order is reported.
enum class EndCause { kNotice, kExpiry, kMutual };
enum class NoticeState { kActive, kSuspended, kWithdrawn };

[[nodiscard]] std::string_view AgreementStateName(
    AgreementState s);                                          // "pending", "in-force", "ended"
[[nodiscard]] std::string_view EndCauseName(EndCause c);        // "notice", "expiry", "mutual"
[[nodiscard]] std::string_view NoticeStateName(NoticeState s);  // "active", ...

struct NoticeStatus {
  std::string by;
  Instant given_at;
  NoticeState state = NoticeState::kActive;
};

// The end of an agreement computed from the events known at some instant.
struct Lifetime {
  Instant start;                  // in_force
  Instant end = Instant::Max();   // exclusive; Max when no end is known
  std::optional<EndCause> cause;  // set when end is finite
};

struct AgreementStatus {
  AgreementState state = AgreementState::kPending;
  // Ended: the instant it ended. In force: the scheduled end known at t (an active notice,
  // renewal "none", or nothing). Pending: unset.
  std::optional<Instant> ends_at;
  std::optional<EndCause> ended_by;  // set only when ended
  // The notice that ends or will end the agreement, else a suspended notice, else the latest
  // notice given at or before t.
  std::optional<NoticeStatus> notice;
  // In force: every notice suspended at t, in the order given (§2.7), whichever `notice` names.
  // Pending or ended: empty.
  std::vector<NoticeStatus> suspended_notices;
};

// The lifetime as known at `known_at` (events after it are ignored). Fails only when calendar
// arithmetic leaves years 0001–9999.
[[nodiscard]] Result<Lifetime> ComputeLifetime(const Agreement& a,
                                               Instant known_at = Instant::Max());

[[nodiscard]] Result<AgreementStatus> StatusAt(const Agreement& a, Instant t);

// Anniversary A_k, k ≥ 1. Fails for an agreement without a term.
[[nodiscard]] Result<Instant> Anniversary(const Agreement& a, int64_t k);

// One line of an agreement's timeline.
struct TimelineEntry {
  enum class Kind { kInForce, kEvent, kAnniversary, kEnd };
  Kind kind = Kind::kEvent;
  Instant at;
  std::string what;  // a sentence for a person: "renewed for P1Y", "ended by KOR's notice"
};

// Entry into force, every event, every anniversary up to the end (or up to `horizon` when the
// agreement does not end before it) and the end, in order of time; an event at an anniversary's
// instant is listed first, because it is in effect at that instant. At most `max_anniversaries`
// anniversaries are listed.
[[nodiscard]] Result<std::vector<TimelineEntry>> Timeline(const Agreement& a, Instant horizon,
                                                          size_t max_anniversaries = 200);

}  // namespace accord

#endif  // ACCORD_LIFECYCLE_H_
