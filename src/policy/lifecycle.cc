#include "accord/lifecycle.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <tuple>
#include <utility>

namespace accord {
namespace {

// A termination notice and what later events did to it.
struct Notice {
  std::string by;
  Instant given;
  std::vector<std::pair<Instant, bool>> suspensions;  // (at, suspended?) in order
  std::optional<Instant> withdrawn;

  [[nodiscard]] bool ActiveAt(Instant x) const {
    if (x < given) return false;
    if (withdrawn && *withdrawn <= x) return false;
    bool suspended = false;
    for (const auto& [at, s] : suspensions) {
      if (at > x) break;
      suspended = s;
    }
    return !suspended;
  }

  [[nodiscard]] NoticeState StateAt(Instant x) const {
    if (withdrawn && *withdrawn <= x) return NoticeState::kWithdrawn;
    return ActiveAt(x) ? NoticeState::kActive : NoticeState::kSuspended;
  }

  // The earliest instant x ≥ from at which the notice is active, if any.
  [[nodiscard]] std::optional<Instant> EarliestActiveFrom(Instant from) const {
    if (ActiveAt(from)) return from;
    for (const auto& [at, suspended] : suspensions) {
      if (at > from && !suspended && ActiveAt(at)) return at;
    }
    return std::nullopt;
  }
};

// Rebuilds the notices from the events at or before `known_at`. A suspend, resume or withdraw
// applies to the latest not-withdrawn notice of the same party (validated by ValidatePolicy; an
// unmatched one is ignored here so that this function cannot fail on it).
std::vector<Notice> CollectNotices(const Agreement& a, Instant known_at,
                                   std::optional<Instant>* terminated) {
  std::vector<Notice> notices;
  auto latest = [&](const std::string& by) -> Notice* {
    for (auto it = notices.rbegin(); it != notices.rend(); ++it) {
      if (it->by == by && !it->withdrawn) return &*it;
    }
    return nullptr;
  };
  for (const AgreementEvent& e : a.events) {
    if (e.at > known_at) continue;
    switch (e.kind) {
      case EventKind::kTerminationNotice:
        notices.push_back(Notice{e.by, e.at, {}, std::nullopt});
        break;
      case EventKind::kNoticeSuspended:
      case EventKind::kNoticeResumed:
        if (Notice* n = latest(e.by)) {
          n->suspensions.emplace_back(e.at, e.kind == EventKind::kNoticeSuspended);
        }
        break;
      case EventKind::kNoticeWithdrawn:
        if (Notice* n = latest(e.by)) n->withdrawn = e.at;
        break;
      case EventKind::kTerminated:
        if (!*terminated || e.at < **terminated) *terminated = e.at;
        break;
    }
  }
  return notices;
}

// The first anniversary a notice given at n applies to: the least k ≥ 1 with n ≤ A_k − period.
// A_k − period never decreases with k, so a doubling search then a binary search find it without
// stepping through every year. That needs a term of years, months and days (the model's checks
// refuse any other): every A_k then has in_force's time of day on the zone's clock, and taking
// months off with the day clamped keeps the order of instants of one time of day. A k past year
// 9999 counts as "applies" in the search, so the binary search still finds a k in range between the
// last one tried and it; nullopt when the least such k is out of range.
Result<std::optional<Instant>> FirstApplicableAnniversary(const Agreement& a, Instant n) {
  auto applies = [&](int64_t k) -> int {  // 1 applies, 0 not, -1 A_k is past year 9999
    auto ak = AddCalendar(a.in_force, *a.term, a.zone, k);
    if (!ak) return -1;
    auto d = AddCalendar(*ak, a.notice_period, a.zone, 1, Direction::kBackward);
    if (!d) return 0;  // a deadline before year 0001, which no notice meets
    return n <= *d ? 1 : 0;
  };
  // A term of one day spans about 2^22 anniversaries in the range, and 2^40 leaves room; a zero
  // term (refused by the model's checks) would never leave it.
  constexpr int64_t kMaxK = int64_t{1} << 40;
  int64_t hi = 1;
  while (true) {
    if (applies(hi) != 0) break;
    if (hi >= kMaxK) return std::optional<Instant>{};
    hi *= 2;
  }
  int64_t lo = hi / 2 + 1;  // applies(hi/2) was false (or hi == 1)
  if (hi == 1) lo = 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (applies(mid) != 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  if (applies(lo) < 0) return std::optional<Instant>{};  // the first that would is past 9999
  ACCORD_ASSIGN_OR_RETURN(Instant ak, AddCalendar(a.in_force, *a.term, a.zone, lo));
  return std::optional<Instant>{ak};
}

// The instant from which a notice can end the agreement: its first applicable anniversary, or
// n + notice_period without a term.
Result<std::optional<Instant>> NoticeEffectiveFrom(const Agreement& a, const Notice& n) {
  if (a.term) return FirstApplicableAnniversary(a, n.given);
  auto d = AddCalendar(n.given, a.notice_period, a.zone);
  if (!d) return std::optional<Instant>{};
  return std::optional<Instant>{*d};
}

// The order in which notices that end an agreement at the same instant are named.
std::pair<Instant, std::string_view> NoticeOrder(const Notice* n) {
  if (n == nullptr) return {Instant{}, {}};
  return {n->given, n->by};
}

struct EndCandidate {
  Instant at;
  EndCause cause;
  const Notice* notice;
};

Result<std::vector<EndCandidate>> EndCandidates(const Agreement& a,
                                                const std::vector<Notice>& notices,
                                                std::optional<Instant> terminated) {
  std::vector<EndCandidate> out;
  for (const Notice& n : notices) {
    ACCORD_ASSIGN_OR_RETURN(auto from, NoticeEffectiveFrom(a, n));
    if (!from) continue;
    if (auto end = n.EarliestActiveFrom(*from)) out.push_back({*end, EndCause::kNotice, &n});
  }
  if (a.renewal == Renewal::kNone && a.term) {
    auto a1 = AddCalendar(a.in_force, *a.term, a.zone, 1);
    if (a1) out.push_back({*a1, EndCause::kExpiry, nullptr});
  }
  if (terminated) out.push_back({*terminated, EndCause::kMutual, nullptr});
  // Of two notices that end it at once, the one given first (then by party) is named, as
  // Timeline names it, whatever the order of the events.
  std::sort(out.begin(), out.end(), [](const EndCandidate& x, const EndCandidate& y) {
    return std::tuple(x.at, x.cause, NoticeOrder(x.notice)) <
           std::tuple(y.at, y.cause, NoticeOrder(y.notice));
  });
  return out;
}

}  // namespace

std::string_view AgreementStateName(AgreementState s) {
  switch (s) {
    case AgreementState::kPending:
      return "pending";
    case AgreementState::kInForce:
      return "in-force";
    case AgreementState::kEnded:
      return "ended";
  }
  return "unknown";
}

std::string_view EndCauseName(EndCause c) {
  switch (c) {
    case EndCause::kNotice:
      return "notice";
    case EndCause::kExpiry:
      return "expiry";
    case EndCause::kMutual:
      return "mutual";
  }
  return "unknown";
}

std::string_view NoticeStateName(NoticeState s) {
  switch (s) {
    case NoticeState::kActive:
      return "active";
    case NoticeState::kSuspended:
      return "suspended";
    case NoticeState::kWithdrawn:
      return "withdrawn";
  }
  return "unknown";
}

Result<Instant> Anniversary(const Agreement& a, int64_t k) {
  if (!a.term) {
    return Fail(Code::kFailedPrecondition, fmt::format("agreement `{}` has no term", a.id));
  }
  return AddCalendar(a.in_force, *a.term, a.zone, k);
}

Result<Lifetime> ComputeLifetime(const Agreement& a, Instant known_at) {
  std::optional<Instant> terminated;
  const std::vector<Notice> notices = CollectNotices(a, known_at, &terminated);
  ACCORD_ASSIGN_OR_RETURN(auto candidates, EndCandidates(a, notices, terminated));
  Lifetime life{a.in_force, Instant::Max(), std::nullopt};
  if (!candidates.empty()) {
    life.end = std::max(candidates.front().at, a.in_force);
    life.cause = candidates.front().cause;
  }
  return life;
}

Result<AgreementStatus> StatusAt(const Agreement& a, Instant t) {
  AgreementStatus status;
  if (t < a.in_force) return status;  // pending: nothing is known to be scheduled yet
  std::optional<Instant> terminated;
  const std::vector<Notice> notices = CollectNotices(a, t, &terminated);
  ACCORD_ASSIGN_OR_RETURN(auto candidates, EndCandidates(a, notices, terminated));
  const Notice* reported = nullptr;
  if (!candidates.empty()) {
    const EndCandidate& first = candidates.front();
    status.ends_at = first.at;
    if (first.at <= t) {
      status.state = AgreementState::kEnded;
      status.ended_by = first.cause;
    } else {
      status.state = AgreementState::kInForce;
    }
    reported = first.notice;
  } else {
    status.state = AgreementState::kInForce;
  }
  // For an ended agreement the notice is reported as it stood when the agreement ended.
  const Instant as_of = status.state == AgreementState::kEnded ? *status.ends_at : t;
  if (reported == nullptr) {
    // Nothing ends it: a suspended notice if any (DESIGN §2.7), the latest given otherwise;
    // either given by then. Notices are in the order given.
    const Notice* suspended = nullptr;
    for (const Notice& n : notices) {
      if (n.given > as_of) continue;
      reported = &n;
      if (n.StateAt(as_of) == NoticeState::kSuspended) suspended = &n;
    }
    if (suspended != nullptr) reported = suspended;
  }
  if (reported != nullptr) {
    status.notice = NoticeStatus{reported->by, reported->given, reported->StateAt(as_of)};
  }
  if (status.state == AgreementState::kInForce) {
    for (const Notice& n : notices) {
      if (n.StateAt(t) == NoticeState::kSuspended) {
        status.suspended_notices.push_back(NoticeStatus{n.by, n.given, NoticeState::kSuspended});
      }
    }
  }
  return status;
}

Result<std::vector<TimelineEntry>> Timeline(const Agreement& a, Instant horizon,
                                            size_t max_anniversaries) {
  using Kind = TimelineEntry::Kind;
  std::vector<TimelineEntry> out;
  const ZoneOffset z = a.zone;
  ACCORD_ASSIGN_OR_RETURN(Lifetime life, ComputeLifetime(a));
  std::optional<Instant> terminated;
  const std::vector<Notice> notices = CollectNotices(a, Instant::Max(), &terminated);
  // When each notice can first end the agreement (its first applicable anniversary, or the end of
  // its period), computed once for the entries below.
  std::vector<std::optional<Instant>> effective(notices.size());
  for (size_t i = 0; i < notices.size(); ++i) {
    ACCORD_ASSIGN_OR_RETURN(effective[i], NoticeEffectiveFrom(a, notices[i]));
  }

  out.push_back({Kind::kInForce, a.in_force,
                 a.term
                     ? fmt::format("enters into force for a term of {}{}", FormatDuration(*a.term),
                                   a.renewal == Renewal::kAutomatic
                                       ? fmt::format(", renewed automatically unless notice is "
                                                     "given {} before an anniversary",
                                                     FormatDuration(a.notice_period))
                                       : ", not renewed")
                     : fmt::format("enters into force with no term; a notice takes effect {} after "
                                   "it is given",
                                   FormatDuration(a.notice_period))});
  for (const AgreementEvent& e : a.events) {
    std::string what;
    switch (e.kind) {
      case EventKind::kTerminationNotice: {
        what = fmt::format("{} gives notice of termination", e.by);
        for (size_t i = 0; i < notices.size(); ++i) {
          if (notices[i].by != e.by || notices[i].given != e.at) continue;
          const std::optional<Instant>& from = effective[i];
          if (from && a.term) {
            ACCORD_ASSIGN_OR_RETURN(
                Instant deadline, AddCalendar(*from, a.notice_period, z, 1, Direction::kBackward));
            what += fmt::format("; it applies to the anniversary of {} (notice deadline {})",
                                FormatInstant(*from, z), FormatInstant(deadline, z));
          } else if (from) {
            what += fmt::format("; it takes effect at {}", FormatInstant(*from, z));
          }
        }
        break;
      }
      case EventKind::kNoticeSuspended:
        what = fmt::format("{} suspends its notice of termination", e.by);
        break;
      case EventKind::kNoticeResumed:
        what = fmt::format("{} resumes its notice of termination", e.by);
        break;
      case EventKind::kNoticeWithdrawn:
        what = fmt::format("{} withdraws its notice of termination", e.by);
        break;
      case EventKind::kTerminated:
        what = fmt::format("terminated by mutual consent (recorded by {})", e.by);
        break;
    }
    if (!e.note.empty()) what += fmt::format(" — {}", e.note);
    out.push_back({Kind::kEvent, e.at, std::move(what)});
  }
  if (a.term) {
    const Instant last = std::min(life.end, horizon);
    size_t listed = 0;
    for (int64_t k = 1;; ++k) {
      auto ak = AddCalendar(a.in_force, *a.term, z, k);
      if (!ak || *ak > last) break;
      if (*ak == life.end) break;  // the end entry below says what happened
      if (listed == max_anniversaries) {
        out.push_back({Kind::kAnniversary, *ak, "… further anniversaries not listed"});
        break;
      }
      std::string what = fmt::format("anniversary {}: renewed for {}", k, FormatDuration(*a.term));
      for (size_t i = 0; i < notices.size(); ++i) {
        if (effective[i] && *effective[i] <= *ak &&
            notices[i].StateAt(*ak) == NoticeState::kSuspended) {
          what += fmt::format(" ({}'s notice applies but is suspended)", notices[i].by);
        }
      }
      out.push_back({Kind::kAnniversary, *ak, std::move(what)});
      ++listed;
    }
  }
  if (life.cause) {
    std::string what;
    switch (*life.cause) {
      case EndCause::kNotice: {
        const Notice* first = nullptr;  // as StatusAt names it (EndCandidates)
        for (size_t i = 0; i < notices.size(); ++i) {
          if (effective[i] && notices[i].EarliestActiveFrom(*effective[i]) == life.end &&
              (first == nullptr || NoticeOrder(&notices[i]) < NoticeOrder(first))) {
            first = &notices[i];
          }
        }
        const std::string_view by = first != nullptr ? std::string_view(first->by) : "";
        what = fmt::format("ends: {}'s notice of termination takes effect", by);
        break;
      }
      case EndCause::kExpiry:
        what = "ends: the term expires without renewal";
        break;
      case EndCause::kMutual:
        what = "ends by mutual consent";
        break;
    }
    out.push_back({Kind::kEnd, life.end, std::move(what)});
  }
  std::stable_sort(out.begin(), out.end(), [](const TimelineEntry& x, const TimelineEntry& y) {
    return std::tie(x.at, x.kind) < std::tie(y.at, y.kind);
  });
  return out;
}

}  // namespace accord
