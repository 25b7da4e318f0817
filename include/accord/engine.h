// accord/engine.h — decisions of DESIGN.md §3 over a compiled policy.
//
// `Engine::Compile` validates a `Policy` and builds an index: party and agreement ids to dense
// indices, each agreement's [in force, end) interval, the agreements shared by every ordered pair
// of parties (already in preference order: fewest parties first, then id), and the equivalence
// rows as direct level → row → level tables.
//
// `Engine::Decide` is a pure function of (policy, request, instant): default deny, noexcept, and it
// allocates nothing. The request is a set of views (`RequestView`) over memory the caller owns —
// the JSON decoder in accord/request_json.h fills one from a line of JSON Lines.
//
// Thread safety: an Engine is immutable after Compile; all const methods may be called from any
// number of threads at once.
#ifndef ACCORD_ENGINE_H_
#define ACCORD_ENGINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/lifecycle.h"
#include "accord/model.h"
#include "accord/status.h"
#include "accord/time.h"

namespace accord {

enum class Action : uint8_t { kRead, kRelease, kForward };
[[nodiscard]] std::string_view ActionName(Action a);  // "read", "release", "forward"
[[nodiscard]] std::optional<Action> ParseAction(std::string_view name);

// The reason codes of DESIGN.md §3. Names are stable: they are part of the wire format.
enum class Reason : uint8_t {
  // allow
  kOriginatorCleared,
  kReleased,
  kReleasable,
  kForwardable,
  // deny
  kInvalidRequest,
  kUnknownParty,
  kUnknownLevel,
  kDestroyed,
  kInsufficientClearance,
  kNoNeedToKnow,
  kCompartment,
  kNotReleased,
  kAgreementEnded,
  kNoEquivalentLevel,
  kNotReleasable,
  kNoAgreement,
  kAgreementNotInForce,
  kHubOnly,
  kOutOfScope,
  kNotHeld,
  kNoConsent,
};
inline constexpr int kReasonCount = static_cast<int>(Reason::kNoConsent) + 1;
[[nodiscard]] std::string_view ReasonName(Reason r);  // "originator-cleared", "hub-only", ...
[[nodiscard]] std::optional<Reason> ParseReason(std::string_view name);

// --- the request, as views over caller-owned memory ------------------------------------------

struct SubjectView {
  std::string_view party;
  std::string_view clearance;
  std::span<const std::string_view> need_to_know;
  std::span<const std::string_view> compartments;
};

struct ReleaseView {
  std::string_view to;
  Instant at;
  std::string_view agreement;
  std::string_view level;  // informational; the marking is always derived
};

struct ForwardView {
  std::string_view from;
  std::string_view to;
  Instant at;
  std::string_view agreement;
};

struct ConsentView {
  std::string_view to;
  Instant at;
};

struct ObjectView {
  std::string_view id;
  std::string_view originator;
  std::string_view level;
  std::span<const std::string_view> topics;
  std::span<const std::string_view> compartments;
  std::span<const std::string_view> rel_to;
  std::span<const ReleaseView> releases;
  std::span<const ForwardView> forwards;
  std::span<const ConsentView> consents;
  std::optional<Instant> destroyed_at;
};

struct RequestView {
  Action action = Action::kRead;
  Instant at;
  SubjectView subject;  // read
  ObjectView object;
  std::string_view to;      // release, forward
  std::string_view holder;  // forward
};

// --- the decision ----------------------------------------------------------------------------

// Indices into the engine's parties and their schemes; -1 when unset.
struct Marking {
  int32_t party = -1;
  int32_t level = -1;  // index in `party`'s scheme
  int32_t originator = -1;
};

// What exactly made an invalid-request, so that the text can be written later without
// allocating in Decide.
enum class RequestProblem : uint8_t {
  kNone,
  kUnknownReleaseAgreement,  // detail: release index
  kReleaseAgreementParties,  // detail: release index
  kReleaseToOriginator,      // detail: release index
  kUnknownForwardAgreement,  // detail: forward index
  kForwardAgreementParties,  // detail: forward index
  kForwardWithoutRelease,    // detail: forward index
  kForwardToSelf,            // detail: forward index
  kReleaseToSelf,            // release action with to = originator
  kForwardToHolder,          // forward action with to = holder
  kForwardToOriginator,      // forward action with to = originator
};

struct Decision {
  bool allow = false;
  Reason reason = Reason::kInvalidRequest;
  int32_t agreement = -1;  // the agreement the allowing path names; -1 on a deny
  Marking marking;         // set on allow, except originator-cleared
  // Context for explanations. Which fields are set depends on the reason.
  RequestProblem problem = RequestProblem::kNone;
  int32_t detail = -1;      // an index into the request (release, forward, topic, compartment, ...)
  int32_t path_level = -1;  // the derived marking level on a clearance failure
  bool via_forward = false;  // the deciding read path was a forward
};

// What may flow between an ordered pair of parties at an instant (`accord flows`).
struct Flow {
  bool allowed = false;
  Reason reason = Reason::kNoAgreement;  // kReleasable, or why not
  int32_t agreement = -1;                // preferred agreement in force with a direct flow
  int32_t hub = -1;                      // when hub-only: the hub to go through
  // For each level of the originator, the recipient's marking level (-1: none).
  std::vector<int32_t> level_map;
};

class Engine {
 public:
  // Validates (ValidatePolicy) and compiles. Errors name the first problem and how many more.
  [[nodiscard]] static Result<Engine> Compile(Policy policy);

  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // The decision for one request at request.at. Never throws, never allocates.
  [[nodiscard]] Decision Decide(const RequestView& request) const noexcept;

  // A few sentences saying which path the decision took ("KOR released k-1 to JPN ...").
  [[nodiscard]] std::vector<std::string> Explain(const RequestView& request,
                                                 const Decision& decision) const;

  [[nodiscard]] Flow FlowAt(int32_t from, int32_t to, Instant t) const;

  // The status of agreement `index` at t, as lifecycle.h defines it.
  [[nodiscard]] Result<AgreementStatus> Status(int32_t agreement, Instant t) const;
  // The compiled [start, end) interval of agreement `index`.
  [[nodiscard]] const Lifetime& LifetimeOf(int32_t agreement) const;

  [[nodiscard]] const Policy& policy() const;
  [[nodiscard]] int32_t PartyIndex(std::string_view id) const;      // -1 if unknown
  [[nodiscard]] int32_t AgreementIndex(std::string_view id) const;  // -1 if unknown
  [[nodiscard]] const Party& party(int32_t index) const;
  [[nodiscard]] const Agreement& agreement(int32_t index) const;
  [[nodiscard]] int32_t party_count() const;
  [[nodiscard]] int32_t agreement_count() const;

 private:
  struct Index;
  explicit Engine(std::unique_ptr<const Index> index);
  std::unique_ptr<const Index> index_;  // never null after Compile
};

}  // namespace accord

#endif  // ACCORD_ENGINE_H_
