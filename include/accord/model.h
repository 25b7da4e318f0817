// accord/model.h — the value types of DESIGN.md §1 and their validation.
//
// A `Policy` is what an agreements office writes down: parties with their classification schemes,
// agreements with their history, and optionally the subjects of this node. The types are plain
// values; `ValidatePolicy` checks every rule DESIGN.md states about them and reports each problem
// with a path ("agreement[0].levels[1].JPN") that the config loader turns into file:line:column.
//
// Thread safety: plain values.
#ifndef ACCORD_MODEL_H_
#define ACCORD_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accord/time.h"

namespace accord {

// One classification level of a party's scheme, e.g. {"II", "군사II급비밀", "Military Secret Class
// II", 2}. Levels are listed lowest first; `rank` orders them (equal ranks are equivalent).
struct Level {
  std::string id;     // ASCII, unique within the scheme
  std::string name;   // native script, UTF-8
  std::string gloss;  // English
  int32_t rank = 0;
};

struct Party {
  std::string id;  // [A-Z][A-Z0-9-]{1,15}
  std::string name;
  std::vector<Level> levels;  // lowest to highest

  // Index of the level with this id, or -1.
  [[nodiscard]] int LevelIndex(std::string_view level_id) const;
};

// A person or system of one party, as listed in subjects.toml.
struct Subject {
  std::string id;
  std::string party;
  std::string clearance;  // a level id of its own party
  std::vector<std::string> need_to_know;
  std::vector<std::string> compartments;
};

enum class EventKind {
  kTerminationNotice,
  kNoticeSuspended,
  kNoticeResumed,
  kNoticeWithdrawn,
  kTerminated,
};
// "termination-notice", "notice-suspended", "notice-resumed", "notice-withdrawn", "terminated".
[[nodiscard]] std::string_view EventKindName(EventKind kind);
[[nodiscard]] std::optional<EventKind> ParseEventKind(std::string_view name);

struct AgreementEvent {
  EventKind kind = EventKind::kTerminationNotice;
  std::string by;  // a party of the agreement
  Instant at;
  std::string note;  // optional free text, shown in timelines
};

enum class Renewal { kAutomatic, kNone };
enum class Survival { kProtect, kRevoke };

// One equivalence row: each party of the agreement → one or more of its level ids. The first
// listed is the marking used when mapping into that party.
struct LevelRow {
  std::map<std::string, std::vector<std::string>, std::less<>> levels;
};

struct Agreement {
  std::string id;
  std::string title;
  std::vector<std::string> parties;  // two or more
  Instant in_force;
  ZoneOffset zone;
  std::optional<CalendarDuration> term;  // absent: indefinite
  Renewal renewal = Renewal::kAutomatic;
  CalendarDuration notice_period;  // P0D by default
  Survival survival = Survival::kProtect;
  std::vector<std::string> scope;  // topics, or {"*"}
  std::vector<LevelRow> levels;
  std::optional<std::string> hub;
  std::vector<AgreementEvent> events;  // in order of `at`

  [[nodiscard]] bool HasParty(std::string_view party) const;
};

struct Policy {
  std::vector<Party> parties;
  std::vector<Agreement> agreements;
  std::vector<Subject> subjects;

  [[nodiscard]] const Party* FindParty(std::string_view id) const;
  [[nodiscard]] const Agreement* FindAgreement(std::string_view id) const;
};

// A rule broken by a policy: where (a path into the model) and what.
//
// Paths: `party[i]`, `party[i].id`, `party[i].levels[j]`, `party[i].levels[j].rank`,
// `agreement[i]` and `agreement[i].<field>`, `agreement[i].levels[r].<PARTY>`,
// `agreement[i].event[e]`, `agreement[i].event[e].by`, `subject[i].<field>`.
struct Problem {
  std::string path;
  std::string message;
};

// True for ids of the form [A-Z][A-Z0-9-]{1,15}.
[[nodiscard]] bool IsValidPartyId(std::string_view id);

// Checks every rule of DESIGN.md §1–§2 that does not need a position: party ids and schemes, rank
// order, agreement parties, rows that map every party with known levels and no level twice, hub
// membership, renewal without a term, events ordered by time, by a party of the agreement, and
// suspend/resume/withdraw applied to a notice in the right state. Returns every problem found
// (empty when valid), in the order of the model.
[[nodiscard]] std::vector<Problem> ValidatePolicy(const Policy& policy);

}  // namespace accord

#endif  // ACCORD_MODEL_H_
