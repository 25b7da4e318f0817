// The compiled decision engine. Decide() and everything it calls are noexcept and allocation-free:
// they read the immutable Index and the caller's views, and keep their state on the stack.
#include "accord/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "id_table.h"

namespace accord {
namespace {

constexpr std::array<std::string_view, kReasonCount> kReasonNames = {
    "originator-cleared",
    "released",
    "releasable",
    "forwardable",
    "invalid-request",
    "unknown-party",
    "unknown-level",
    "destroyed",
    "insufficient-clearance",
    "no-need-to-know",
    "compartment",
    "not-released",
    "agreement-ended",
    "no-equivalent-level",
    "not-releasable",
    "no-agreement",
    "agreement-not-in-force",
    "hub-only",
    "out-of-scope",
    "not-held",
    "no-consent",
};

bool Contains(std::span<const std::string_view> list, std::string_view item) noexcept {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Need-to-know holds when the object has no topics or shares one with the subject; clearance
// alone never suffices when topics are present.
bool NeedToKnow(const SubjectView& s, const ObjectView& o) noexcept {
  if (o.topics.empty()) return true;
  for (std::string_view t : o.topics) {
    if (Contains(s.need_to_know, t)) return true;
  }
  return false;
}

// The index of the first object compartment the subject lacks, or -1.
int32_t MissingCompartment(const SubjectView& s, const ObjectView& o) noexcept {
  for (size_t i = 0; i < o.compartments.size(); ++i) {
    if (!Contains(s.compartments, o.compartments[i])) return static_cast<int32_t>(i);
  }
  return -1;
}

Decision Deny(Reason reason) noexcept {
  Decision d;
  d.reason = reason;
  return d;
}

Decision Invalid(RequestProblem problem, int32_t detail = -1) noexcept {
  Decision d = Deny(Reason::kInvalidRequest);
  d.problem = problem;
  d.detail = detail;
  return d;
}

// The order of checks 4–7 of a release; a higher stage means more checks passed.
enum class Stage : uint8_t { kNoAgreement, kNotInForce, kHubOnly, kOutOfScope, kNoLevel, kPass };

Reason StageReason(Stage s) {
  switch (s) {
    case Stage::kNoAgreement:
      return Reason::kNoAgreement;
    case Stage::kNotInForce:
      return Reason::kAgreementNotInForce;
    case Stage::kHubOnly:
      return Reason::kHubOnly;
    case Stage::kOutOfScope:
      return Reason::kOutOfScope;
    case Stage::kNoLevel:
      return Reason::kNoEquivalentLevel;
    case Stage::kPass:
      return Reason::kReleasable;
  }
  return Reason::kNoAgreement;
}

}  // namespace

struct CompiledAgreement {
  Lifetime life;
  int32_t hub = -1;
  Survival survival = Survival::kProtect;
  bool scope_all = false;
  std::vector<std::string> scope;  // sorted, for binary search
  int32_t party_count = 0;
  std::vector<uint8_t> member;       // [party] → 1 if a party of the agreement
  std::vector<int16_t> row_of;       // [level_offset[party] + level] → row, or -1
  std::vector<int16_t> first_level;  // [row * party_count_total + party] → level, or -1

  [[nodiscard]] bool InForce(Instant t) const noexcept { return life.start <= t && t < life.end; }
  [[nodiscard]] bool DirectFlow(int32_t a, int32_t b) const noexcept {
    return hub < 0 || a == hub || b == hub;
  }
  [[nodiscard]] bool InScope(std::span<const std::string_view> topics) const noexcept {
    if (scope_all) return true;
    if (topics.empty()) return false;  // an object with no topics is in scope only of ["*"]
    for (std::string_view t : topics) {
      if (!std::binary_search(scope.begin(), scope.end(), t, std::less<>{})) return false;
    }
    return true;
  }
};

struct Engine::Index {
  Policy policy;
  int32_t parties = 0;
  IdTable party_index;
  IdTable agreement_index;
  std::vector<int32_t> level_offset;  // [party] → offset into CompiledAgreement::row_of
  std::vector<CompiledAgreement> agreements;
  std::vector<std::vector<int32_t>> pairs;  // [a * parties + b] → agreements in preference order

  [[nodiscard]] int32_t Party(std::string_view id) const noexcept { return party_index.Find(id); }
  [[nodiscard]] int32_t AgreementOf(std::string_view id) const noexcept {
    return agreement_index.Find(id);
  }
  [[nodiscard]] int32_t Level(int32_t party, std::string_view id) const noexcept {
    const auto& levels = policy.parties[party].levels;
    for (size_t i = 0; i < levels.size(); ++i) {
      if (levels[i].id == id) return static_cast<int32_t>(i);
    }
    return -1;
  }
  [[nodiscard]] int32_t Rank(int32_t party, int32_t level) const noexcept {
    return policy.parties[party].levels[level].rank;
  }
  // The marking in `to`'s scheme for `level` of `from`, through agreement g's rows; -1 if none.
  [[nodiscard]] int32_t MapLevel(int32_t g, int32_t from, int32_t level,
                                 int32_t to) const noexcept {
    if (level < 0) return -1;
    const CompiledAgreement& a = agreements[g];
    const int16_t row = a.row_of[level_offset[from] + level];
    if (row < 0) return -1;
    return a.first_level[static_cast<size_t>(row) * parties + to];
  }
  [[nodiscard]] std::span<const int32_t> Shared(int32_t a, int32_t b) const noexcept {
    return pairs[static_cast<size_t>(a) * parties + b];
  }

  // Checks 3–7 of a release from `from` (holding `level` in its own scheme) to `to` at t. On a
  // pass, `agreement` and `marking_level` are set.
  struct FlowOutcome {
    Reason reason = Reason::kNoAgreement;
    int32_t agreement = -1;
    int32_t marking_level = -1;
  };
  [[nodiscard]] FlowOutcome CheckFlow(int32_t from, int32_t to, int32_t level,
                                      std::span<const std::string_view> topics,
                                      Instant t) const noexcept {
    Stage furthest = Stage::kNoAgreement;
    for (int32_t g : Shared(from, to)) {
      const CompiledAgreement& a = agreements[g];
      Stage reached = Stage::kNotInForce;
      if (a.InForce(t)) {
        reached = Stage::kHubOnly;
        if (a.DirectFlow(from, to)) {
          reached = Stage::kOutOfScope;
          if (a.InScope(topics)) {
            reached = Stage::kNoLevel;
            const int32_t mapped = MapLevel(g, from, level, to);
            if (mapped >= 0) return FlowOutcome{Reason::kReleasable, g, mapped};
          }
        }
      }
      furthest = std::max(furthest, reached);
    }
    return FlowOutcome{StageReason(furthest), -1, -1};
  }
};

namespace {

// Indices resolved once by validation, so that the checks compare integers, not strings.
struct Resolved {
  int32_t originator = -1;
  int32_t object_level = -1;
  int32_t subject_party = -1;
  int32_t clearance = -1;
  int32_t to = -1;
  int32_t holder = -1;
};

// The agreement and party indices of the first kCached releases and forwards of a request. A
// longer history is resolved again on use: bounded stack space, no allocation.
constexpr size_t kCached = 16;
struct ResolvedHistory {
  std::array<int32_t, kCached> release_agreement;
  std::array<int32_t, kCached> release_to;
  std::array<int32_t, kCached> forward_agreement;
  std::array<int32_t, kCached> forward_from;
  std::array<int32_t, kCached> forward_to;
};

}  // namespace

// --- names ---------------------------------------------------------------------------------------

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kRead:
      return "read";
    case Action::kRelease:
      return "release";
    case Action::kForward:
      return "forward";
  }
  return "unknown";
}

std::optional<Action> ParseAction(std::string_view name) {
  if (name == "read") return Action::kRead;
  if (name == "release") return Action::kRelease;
  if (name == "forward") return Action::kForward;
  return std::nullopt;
}

std::string_view ReasonName(Reason r) { return kReasonNames[static_cast<size_t>(r)]; }

std::optional<Reason> ParseReason(std::string_view name) {
  for (size_t i = 0; i < kReasonNames.size(); ++i) {
    if (kReasonNames[i] == name) return static_cast<Reason>(i);
  }
  return std::nullopt;
}

// --- compile -------------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<const Index> index) : index_(std::move(index)) {}
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::~Engine() = default;

Result<Engine> Engine::Compile(Policy policy) {
  if (auto problems = ValidatePolicy(policy); !problems.empty()) {
    std::string message = fmt::format("{}: {}", problems.front().path, problems.front().message);
    if (problems.size() > 1) message += fmt::format(" (and {} more)", problems.size() - 1);
    return Fail(Code::kInvalidArgument, std::move(message));
  }
  auto index = std::make_unique<Index>();
  index->policy = std::move(policy);
  const Policy& p = index->policy;
  const auto n = static_cast<int32_t>(p.parties.size());
  index->parties = n;
  std::vector<std::string> party_ids, agreement_ids;
  for (const Party& party : p.parties) party_ids.push_back(party.id);
  for (const Agreement& a : p.agreements) agreement_ids.push_back(a.id);
  index->party_index.Build(party_ids);
  index->agreement_index.Build(agreement_ids);
  int32_t offset = 0;
  for (int32_t i = 0; i < n; ++i) {
    index->level_offset.push_back(offset);
    offset += static_cast<int32_t>(p.parties[i].levels.size());
  }
  for (size_t g = 0; g < p.agreements.size(); ++g) {
    const Agreement& a = p.agreements[g];
    CompiledAgreement c;
    auto life = ComputeLifetime(a);
    if (!life) {
      return Fail(life.error().code, fmt::format("agreement `{}`: {}", a.id, life.error().message));
    }
    c.life = *life;
    c.hub = a.hub ? index->Party(*a.hub) : -1;
    c.survival = a.survival;
    c.scope_all = a.scope.size() == 1 && a.scope[0] == "*";
    c.scope = a.scope;
    std::sort(c.scope.begin(), c.scope.end());
    c.party_count = static_cast<int32_t>(a.parties.size());
    c.member.assign(n, 0);
    for (const std::string& id : a.parties) {
      const int32_t member = index->Party(id);  // known: ValidatePolicy checked every party
      if (member >= 0 && member < n) c.member[member] = 1;
    }
    if (a.levels.size() > 30000) return Fail(Code::kInvalidArgument, "too many equivalence rows");
    c.row_of.assign(offset, -1);
    c.first_level.assign(a.levels.size() * n, -1);
    for (size_t r = 0; r < a.levels.size(); ++r) {
      for (const auto& [party_id, ids] : a.levels[r].levels) {
        const int32_t party = index->Party(party_id);
        for (size_t k = 0; k < ids.size(); ++k) {
          const int32_t level = index->Level(party, ids[k]);
          c.row_of[index->level_offset[party] + level] = static_cast<int16_t>(r);
          if (k == 0) c.first_level[r * n + party] = static_cast<int16_t>(level);
        }
      }
    }
    index->agreements.push_back(std::move(c));
  }
  index->pairs.assign(static_cast<size_t>(n) * n, {});
  for (int32_t x = 0; x < n; ++x) {
    for (int32_t y = 0; y < n; ++y) {
      if (x == y) continue;
      auto& list = index->pairs[static_cast<size_t>(x) * n + y];
      for (size_t g = 0; g < index->agreements.size(); ++g) {
        if (index->agreements[g].member[x] && index->agreements[g].member[y]) {
          list.push_back(static_cast<int32_t>(g));
        }
      }
      std::sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
        const auto& ca = index->agreements[a];
        const auto& cb = index->agreements[b];
        return std::tie(ca.party_count, p.agreements[a].id) <
               std::tie(cb.party_count, p.agreements[b].id);
      });
    }
  }
  return Engine(std::move(index));
}

// --- decide --------------------------------------------------------------------------------------

Decision Engine::Decide(const RequestView& rq) const noexcept {
  const Index& ix = *index_;
  const ObjectView& o = rq.object;
  const Instant t = rq.at;
  Resolved r;

  ResolvedHistory h;
  auto release_agreement = [&](size_t i) {
    return i < kCached ? h.release_agreement[i] : ix.AgreementOf(o.releases[i].agreement);
  };
  auto release_to = [&](size_t i) {
    return i < kCached ? h.release_to[i] : ix.Party(o.releases[i].to);
  };
  // The latest release of the object to `party` at or before `at`, or -1.
  auto latest_release = [&](int32_t party, Instant at) {
    int32_t best = -1;
    for (size_t i = 0; i < o.releases.size(); ++i) {
      if (release_to(i) == party && o.releases[i].at <= at &&
          (best < 0 || o.releases[i].at >= o.releases[best].at)) {
        best = static_cast<int32_t>(i);
      }
    }
    return best;
  };

  // 1. Structure of the history: agreements named must exist and hold both parties.
  const int32_t originator_guess = ix.Party(o.originator);
  for (size_t i = 0; i < o.releases.size(); ++i) {
    const ReleaseView& rel = o.releases[i];
    const int32_t g = ix.AgreementOf(rel.agreement);
    if (g < 0) return Invalid(RequestProblem::kUnknownReleaseAgreement, static_cast<int32_t>(i));
    const int32_t to = ix.Party(rel.to);
    if (i < kCached) {
      h.release_agreement[i] = g;
      h.release_to[i] = to;
    }
    if (originator_guess < 0 || to < 0 || !ix.agreements[g].member[originator_guess] ||
        !ix.agreements[g].member[to]) {
      return Invalid(RequestProblem::kReleaseAgreementParties, static_cast<int32_t>(i));
    }
    if (to == originator_guess) {
      return Invalid(RequestProblem::kReleaseToOriginator, static_cast<int32_t>(i));
    }
  }
  for (size_t i = 0; i < o.forwards.size(); ++i) {
    const ForwardView& f = o.forwards[i];
    const int32_t g = ix.AgreementOf(f.agreement);
    if (g < 0) return Invalid(RequestProblem::kUnknownForwardAgreement, static_cast<int32_t>(i));
    const int32_t from = ix.Party(f.from);
    const int32_t to = ix.Party(f.to);
    if (i < kCached) {
      h.forward_agreement[i] = g;
      h.forward_from[i] = from;
      h.forward_to[i] = to;
    }
    if (from < 0 || to < 0 || !ix.agreements[g].member[from] || !ix.agreements[g].member[to]) {
      return Invalid(RequestProblem::kForwardAgreementParties, static_cast<int32_t>(i));
    }
    if (f.from == f.to) return Invalid(RequestProblem::kForwardToSelf, static_cast<int32_t>(i));
    if (latest_release(from, f.at) < 0) {
      return Invalid(RequestProblem::kForwardWithoutRelease, static_cast<int32_t>(i));
    }
  }

  // 2. Every party id anywhere in the request.
  r.originator = originator_guess;
  if (r.originator < 0) return Deny(Reason::kUnknownParty);
  if (rq.action == Action::kRead) {
    r.subject_party = ix.Party(rq.subject.party);
    if (r.subject_party < 0) return Deny(Reason::kUnknownParty);
  }
  for (std::string_view p : o.rel_to) {
    if (ix.Party(p) < 0) return Deny(Reason::kUnknownParty);
  }
  for (const ConsentView& c : o.consents) {
    if (ix.Party(c.to) < 0) return Deny(Reason::kUnknownParty);
  }
  // The parties named in releases and forwards were checked in step 1, with their agreements.
  if (rq.action != Action::kRead) {
    r.to = ix.Party(rq.to);
    if (r.to < 0) return Deny(Reason::kUnknownParty);
  }
  if (rq.action == Action::kForward) {
    r.holder = ix.Party(rq.holder);
    if (r.holder < 0) return Deny(Reason::kUnknownParty);
  }

  // 3. Levels: the subject's clearance in its own scheme, the object's level in the originator's.
  if (rq.action == Action::kRead) {
    r.clearance = ix.Level(r.subject_party, rq.subject.clearance);
    if (r.clearance < 0) return Deny(Reason::kUnknownLevel);
  }
  r.object_level = ix.Level(r.originator, o.level);
  if (r.object_level < 0) return Deny(Reason::kUnknownLevel);

  if (o.destroyed_at && *o.destroyed_at <= t) return Deny(Reason::kDestroyed);

  switch (rq.action) {
    case Action::kRelease: {
      if (r.to == r.originator) return Invalid(RequestProblem::kReleaseToSelf);
      if (!Contains(o.rel_to, rq.to)) return Deny(Reason::kNotReleasable);
      const auto flow = ix.CheckFlow(r.originator, r.to, r.object_level, o.topics, t);
      if (flow.reason != Reason::kReleasable) return Deny(flow.reason);
      Decision d;
      d.allow = true;
      d.reason = Reason::kReleasable;
      d.agreement = flow.agreement;
      d.marking = Marking{r.to, flow.marking_level, r.originator};
      return d;
    }
    case Action::kForward: {
      if (r.to == r.holder) return Invalid(RequestProblem::kForwardToHolder);
      if (r.to == r.originator) return Invalid(RequestProblem::kForwardToOriginator);
      // The originator too: it was never released its own object (DESIGN §3, forward step 1).
      const int32_t held = latest_release(r.holder, t);
      if (held < 0) return Deny(Reason::kNotHeld);
      bool consented = false;
      for (const ConsentView& c : o.consents) {
        if (c.to == rq.to && c.at <= t) consented = true;
      }
      if (!consented) return Deny(Reason::kNoConsent);
      // The holder's marking: the current level mapped through the agreement it received under.
      const int32_t holder_level = ix.MapLevel(release_agreement(static_cast<size_t>(held)),
                                               r.originator, r.object_level, r.holder);
      const auto flow = ix.CheckFlow(r.holder, r.to, holder_level, o.topics, t);
      if (flow.reason != Reason::kReleasable) {
        Decision d = Deny(flow.reason);
        d.detail = held;
        return d;
      }
      Decision d;
      d.allow = true;
      d.reason = Reason::kForwardable;
      d.agreement = flow.agreement;
      d.marking = Marking{r.to, flow.marking_level, r.originator};
      d.detail = held;
      return d;
    }
    case Action::kRead:
      break;
  }

  // read
  const SubjectView& s = rq.subject;
  const int32_t sp = r.subject_party;
  const int32_t clearance_rank = ix.Rank(sp, r.clearance);
  if (sp == r.originator) {
    if (clearance_rank < ix.Rank(sp, r.object_level)) {
      Decision d = Deny(Reason::kInsufficientClearance);
      d.path_level = r.object_level;
      return d;
    }
    if (!NeedToKnow(s, o)) return Deny(Reason::kNoNeedToKnow);
    if (const int32_t missing = MissingCompartment(s, o); missing >= 0) {
      Decision d = Deny(Reason::kCompartment);
      d.detail = missing;
      return d;
    }
    Decision d;
    d.allow = true;
    d.reason = Reason::kOriginatorCleared;
    return d;
  }

  // Each release or forward to the subject's party is a path; allow if any allows.
  Decision best_allow;
  Instant best_allow_at = Instant::Min();
  Decision latest_deny;
  Instant latest_deny_at = Instant::Min();
  bool any_path = false;
  auto consider = [&](Decision d, Instant at) {
    any_path = true;
    if (d.allow) {
      if (at >= best_allow_at) {
        best_allow = d;
        best_allow_at = at;
      }
    } else if (at >= latest_deny_at) {
      latest_deny = d;
      latest_deny_at = at;
    }
  };
  // Steps 5–7 for one path through agreement g with derived marking `level` in sp's scheme.
  auto evaluate = [&](int32_t g, int32_t level, int32_t detail, bool via_forward) {
    Decision d;
    d.detail = detail;
    d.via_forward = via_forward;
    const CompiledAgreement& a = ix.agreements[g];
    if (a.life.end <= t && a.survival == Survival::kRevoke) {
      d.reason = Reason::kAgreementEnded;
      return d;
    }
    if (level < 0) {
      d.reason = Reason::kNoEquivalentLevel;
      return d;
    }
    if (clearance_rank < ix.Rank(sp, level)) {
      d.reason = Reason::kInsufficientClearance;
      d.path_level = level;
      return d;
    }
    if (!NeedToKnow(s, o)) {
      d.reason = Reason::kNoNeedToKnow;
      return d;
    }
    if (const int32_t missing = MissingCompartment(s, o); missing >= 0) {
      d.reason = Reason::kCompartment;
      d.detail = missing;
      return d;
    }
    d.allow = true;
    d.reason = Reason::kReleased;
    d.agreement = g;
    d.marking = Marking{sp, level, r.originator};
    return d;
  };
  for (size_t i = 0; i < o.releases.size(); ++i) {
    const ReleaseView& rel = o.releases[i];
    if (release_to(i) != sp || rel.at > t) continue;
    const int32_t g = release_agreement(i);
    consider(evaluate(g, ix.MapLevel(g, r.originator, r.object_level, sp), static_cast<int32_t>(i),
                      false),
             rel.at);
  }
  for (size_t i = 0; i < o.forwards.size(); ++i) {
    const ForwardView& f = o.forwards[i];
    const bool cached = i < kCached;
    if ((cached ? h.forward_to[i] : ix.Party(f.to)) != sp || f.at > t) continue;
    const int32_t g = cached ? h.forward_agreement[i] : ix.AgreementOf(f.agreement);
    const int32_t holder = cached ? h.forward_from[i] : ix.Party(f.from);
    const int32_t held = latest_release(holder, f.at);  // exists: validated above
    const int32_t holder_level = ix.MapLevel(release_agreement(static_cast<size_t>(held)),
                                             r.originator, r.object_level, holder);
    consider(evaluate(g, ix.MapLevel(g, holder, holder_level, sp), static_cast<int32_t>(i), true),
             f.at);
  }
  if (!any_path) return Deny(Reason::kNotReleased);
  return best_allow.allow ? best_allow : latest_deny;
}

// --- flows, status, accessors --------------------------------------------------------------------

Flow Engine::FlowAt(int32_t from, int32_t to, Instant t) const {
  const Index& ix = *index_;
  Flow flow;
  const auto& levels = ix.policy.parties[from].levels;
  flow.level_map.assign(levels.size(), -1);
  if (from == to) {
    flow.reason = Reason::kInvalidRequest;
    return flow;
  }
  Stage furthest = Stage::kNoAgreement;
  for (int32_t g : ix.Shared(from, to)) {
    const CompiledAgreement& a = ix.agreements[g];
    if (!a.InForce(t)) {
      furthest = std::max(furthest, Stage::kNotInForce);
      continue;
    }
    if (!a.DirectFlow(from, to)) {
      if (furthest < Stage::kHubOnly) flow.hub = a.hub;
      furthest = std::max(furthest, Stage::kHubOnly);
      continue;
    }
    flow.allowed = true;
    flow.reason = Reason::kReleasable;
    flow.agreement = g;
    flow.hub = -1;
    for (size_t l = 0; l < levels.size(); ++l) {
      flow.level_map[l] = ix.MapLevel(g, from, static_cast<int32_t>(l), to);
    }
    return flow;
  }
  flow.reason = StageReason(furthest);
  if (flow.reason != Reason::kHubOnly) flow.hub = -1;
  return flow;
}

Result<AgreementStatus> Engine::Status(int32_t agreement, Instant t) const {
  return StatusAt(index_->policy.agreements[agreement], t);
}
const Lifetime& Engine::LifetimeOf(int32_t agreement) const {
  return index_->agreements[agreement].life;
}
const Policy& Engine::policy() const { return index_->policy; }
int32_t Engine::PartyIndex(std::string_view id) const { return index_->Party(id); }
int32_t Engine::AgreementIndex(std::string_view id) const { return index_->AgreementOf(id); }
const Party& Engine::party(int32_t index) const { return index_->policy.parties[index]; }
const Agreement& Engine::agreement(int32_t index) const { return index_->policy.agreements[index]; }
int32_t Engine::party_count() const { return index_->parties; }
int32_t Engine::agreement_count() const {
  return static_cast<int32_t>(index_->policy.agreements.size());
}

}  // namespace accord
