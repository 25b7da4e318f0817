#include "accord/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace accord {
namespace {

bool IsAsciiId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

class Checker {
 public:
  void Add(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }
  std::vector<Problem> Take() && { return std::move(problems_); }

 private:
  std::vector<Problem> problems_;
};

void CheckParties(const Policy& policy, Checker& out) {
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < policy.parties.size(); ++i) {
    const Party& p = policy.parties[i];
    const std::string at = fmt::format("party[{}]", i);
    if (!IsValidPartyId(p.id)) {
      out.Add(at + ".id", fmt::format("party id `{}` must match [A-Z][A-Z0-9-]{{1,15}}", p.id));
    }
    if (!seen.insert(p.id).second) {
      out.Add(at + ".id", fmt::format("party `{}` is defined twice", p.id));
    }
    if (p.levels.empty()) out.Add(at + ".levels", fmt::format("party `{}` has no levels", p.id));
    std::set<std::string, std::less<>> level_ids;
    for (size_t j = 0; j < p.levels.size(); ++j) {
      const Level& l = p.levels[j];
      const std::string lat = fmt::format("{}.levels[{}]", at, j);
      if (!IsAsciiId(l.id)) {
        out.Add(lat + ".id",
                fmt::format("level id `{}` must be ASCII letters, digits, `-`, `_` or `.`", l.id));
      }
      if (!level_ids.insert(l.id).second) {
        out.Add(lat + ".id",
                fmt::format("level `{}` appears twice in the scheme of `{}`", l.id, p.id));
      }
      if (l.name.empty()) out.Add(lat + ".name", fmt::format("level `{}` has no name", l.id));
      if (j > 0 && l.rank < p.levels[j - 1].rank) {
        out.Add(lat + ".rank", fmt::format("rank of level `{}` is lower than the level before it; "
                                           "levels are listed lowest first",
                                           l.id));
      }
    }
  }
}

void CheckRows(const Policy& policy, const Agreement& a, const std::string& at, Checker& out) {
  if (a.levels.empty()) out.Add(at + ".levels", "an agreement needs at least one equivalence row");
  // party → level ids already placed in a row (a level may appear in one row only per party).
  std::map<std::string, std::map<std::string, size_t>, std::less<>> placed;
  for (size_t r = 0; r < a.levels.size(); ++r) {
    const LevelRow& row = a.levels[r];
    const std::string rat = fmt::format("{}.levels[{}]", at, r);
    for (const std::string& party : a.parties) {
      if (!row.levels.contains(party)) {
        out.Add(rat, fmt::format("equivalence row {} does not map party `{}`", r + 1, party));
      }
    }
    for (const auto& [party, ids] : row.levels) {
      const std::string pat = rat + "." + party;
      if (!a.HasParty(party)) {
        out.Add(pat, fmt::format("party `{}` in equivalence row {} is not a party of the agreement",
                                 party, r + 1));
        continue;
      }
      const Party* p = policy.FindParty(party);
      if (ids.empty()) {
        out.Add(pat, fmt::format("party `{}` has no level in equivalence row {}", party, r + 1));
      }
      for (const std::string& id : ids) {
        if (p != nullptr && p->LevelIndex(id) < 0) {
          out.Add(pat, fmt::format("unknown level `{}` for party `{}`", id, party));
          continue;
        }
        auto [it, inserted] = placed[party].emplace(id, r);
        if (!inserted) {
          out.Add(pat, fmt::format("level `{}` of `{}` is listed in equivalence rows {} and {}", id,
                                   party, it->second + 1, r + 1));
        }
      }
    }
  }
}

// Replays the notices per party to check that every suspend, resume and withdraw has a notice in
// the right state (DESIGN.md §2: they apply to the latest not-withdrawn notice of the same party).
void CheckEvents(const Agreement& a, const std::string& at, Checker& out) {
  enum class NoticeState { kActive, kSuspended };
  // Per party, its notices not withdrawn, the latest last.
  std::map<std::string, std::vector<NoticeState>, std::less<>> notices;
  bool terminated = false;
  for (size_t e = 0; e < a.events.size(); ++e) {
    const AgreementEvent& ev = a.events[e];
    const std::string eat = fmt::format("{}.event[{}]", at, e);
    const std::string_view kind = EventKindName(ev.kind);
    if (!a.HasParty(ev.by)) {
      out.Add(eat + ".by", fmt::format("`{}` is not a party of agreement `{}`", ev.by, a.id));
      continue;
    }
    if (e > 0 && ev.at < a.events[e - 1].at) {
      out.Add(eat + ".at", fmt::format("event {} (`{}`) is earlier than the event before it; "
                                       "list events in order of time",
                                       e + 1, kind));
    }
    if (ev.at < a.in_force) {
      out.Add(eat + ".at", fmt::format("event {} (`{}`) is before the agreement entered into force",
                                       e + 1, kind));
    }
    if (terminated) {
      out.Add(eat, fmt::format("event {} (`{}`) follows the mutual termination of the agreement",
                               e + 1, kind));
    }
    std::vector<NoticeState>& open = notices[ev.by];
    NoticeState* latest = open.empty() ? nullptr : &open.back();
    switch (ev.kind) {
      case EventKind::kTerminationNotice:
        open.push_back(NoticeState::kActive);
        break;
      case EventKind::kNoticeSuspended:
        if (latest == nullptr || *latest != NoticeState::kActive) {
          out.Add(eat, fmt::format("`{}` by `{}` has no active notice of `{}` to suspend", kind,
                                   ev.by, ev.by));
        } else {
          *latest = NoticeState::kSuspended;
        }
        break;
      case EventKind::kNoticeResumed:
        if (latest == nullptr || *latest != NoticeState::kSuspended) {
          out.Add(eat, fmt::format("`{}` by `{}` has no suspended notice of `{}` to resume", kind,
                                   ev.by, ev.by));
        } else {
          *latest = NoticeState::kActive;
        }
        break;
      case EventKind::kNoticeWithdrawn:
        if (latest == nullptr) {
          out.Add(eat, fmt::format("`{}` by `{}` has no notice of `{}` to withdraw", kind, ev.by,
                                   ev.by));
        } else {
          open.pop_back();  // the one before it, if any, is the latest again
        }
        break;
      case EventKind::kTerminated:
        terminated = true;
        break;
    }
  }
}

void CheckAgreements(const Policy& policy, Checker& out) {
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < policy.agreements.size(); ++i) {
    const Agreement& a = policy.agreements[i];
    const std::string at = fmt::format("agreement[{}]", i);
    if (!IsAsciiId(a.id)) {
      out.Add(
          at + ".id",
          fmt::format("agreement id `{}` must be ASCII letters, digits, `-`, `_` or `.`", a.id));
    }
    if (!seen.insert(a.id).second) {
      out.Add(at + ".id", fmt::format("agreement `{}` is defined twice", a.id));
    }
    if (a.parties.size() < 2) out.Add(at + ".parties", "an agreement needs at least two parties");
    std::set<std::string, std::less<>> members;
    for (const std::string& p : a.parties) {
      if (policy.FindParty(p) == nullptr) {
        out.Add(at + ".parties", fmt::format("unknown party `{}`", p));
      }
      if (!members.insert(p).second) {
        out.Add(at + ".parties", fmt::format("party `{}` is listed twice", p));
      }
    }
    if (a.term && a.term->IsZero()) out.Add(at + ".term", "a term must be longer than zero");
    if (a.term && a.term->seconds != 0) {
      // DESIGN §1: a term is years, months and days. With a time part, the anniversaries' time
      // of day moves, and a notice period in months can then put a later anniversary's
      // deadline before an earlier one's; the lifecycle's search relies on it never doing so.
      out.Add(at + ".term", "a term is years, months and days (no hours, minutes or seconds)");
    }
    if (a.renewal == Renewal::kNone && !a.term) {
      out.Add(at + ".renewal", "`renewal = \"none\"` needs a `term`");
    }
    if (a.scope.empty()) out.Add(at + ".scope", "scope is empty; use [\"*\"] for all topics");
    for (const std::string& topic : a.scope) {
      if (topic.empty()) out.Add(at + ".scope", "a scope topic is empty");
      if (topic == "*" && a.scope.size() > 1) {
        out.Add(at + ".scope", "`*` must be the only scope entry");
      }
    }
    if (a.hub && !a.HasParty(*a.hub)) {
      out.Add(at + ".hub", fmt::format("hub `{}` is not a party of the agreement", *a.hub));
    }
    CheckRows(policy, a, at, out);
    CheckEvents(a, at, out);
  }
}

void CheckSubjects(const Policy& policy, Checker& out) {
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < policy.subjects.size(); ++i) {
    const Subject& s = policy.subjects[i];
    const std::string at = fmt::format("subject[{}]", i);
    if (s.id.empty()) out.Add(at + ".id", "a subject needs an id");
    if (!seen.insert(s.id).second) {
      out.Add(at + ".id", fmt::format("subject `{}` is defined twice", s.id));
    }
    const Party* p = policy.FindParty(s.party);
    if (p == nullptr) {
      out.Add(at + ".party", fmt::format("unknown party `{}`", s.party));
    } else if (p->LevelIndex(s.clearance) < 0) {
      out.Add(at + ".clearance",
              fmt::format("unknown level `{}` for party `{}`", s.clearance, s.party));
    }
  }
}

}  // namespace

int Party::LevelIndex(std::string_view level_id) const {
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].id == level_id) return static_cast<int>(i);
  }
  return -1;
}

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kTerminationNotice:
      return "termination-notice";
    case EventKind::kNoticeSuspended:
      return "notice-suspended";
    case EventKind::kNoticeResumed:
      return "notice-resumed";
    case EventKind::kNoticeWithdrawn:
      return "notice-withdrawn";
    case EventKind::kTerminated:
      return "terminated";
  }
  return "unknown";
}

std::optional<EventKind> ParseEventKind(std::string_view name) {
  for (EventKind k :
       {EventKind::kTerminationNotice, EventKind::kNoticeSuspended, EventKind::kNoticeResumed,
        EventKind::kNoticeWithdrawn, EventKind::kTerminated}) {
    if (EventKindName(k) == name) return k;
  }
  return std::nullopt;
}

bool Agreement::HasParty(std::string_view party) const {
  return std::find(parties.begin(), parties.end(), party) != parties.end();
}

const Party* Policy::FindParty(std::string_view id) const {
  for (const Party& p : parties) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const Agreement* Policy::FindAgreement(std::string_view id) const {
  for (const Agreement& a : agreements) {
    if (a.id == id) return &a;
  }
  return nullptr;
}

bool IsValidPartyId(std::string_view id) {
  if (id.size() < 2 || id.size() > 16) return false;
  if (id[0] < 'A' || id[0] > 'Z') return false;
  return std::all_of(id.begin() + 1, id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::vector<Problem> ValidatePolicy(const Policy& policy) {
  Checker out;
  CheckParties(policy, out);
  CheckAgreements(policy, out);
  CheckSubjects(policy, out);
  return std::move(out).Take();
}

}  // namespace accord
