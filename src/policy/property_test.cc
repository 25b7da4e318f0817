// Properties of decisions over random policies and requests (RapidCheck): default deny,
// determinism, monotonicity in clearance and in agreements, unknown names denied, nothing throws.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <map>
#include <optional>

#include "accord/engine.h"
#include "accord/request_json.h"
#include "request_builder_testing.h"

namespace accord {
namespace {

using testing::RequestBuilder;

const std::vector<std::string> kTopics = {"t1", "t2", "t3"};
const std::vector<std::string> kCompartments = {"c1", "c2"};

Instant RandomInstant(int from_year, int to_year) {
  const int year = *rc::gen::inRange(from_year, to_year + 1);
  const unsigned month = static_cast<unsigned>(*rc::gen::inRange(1, 13));
  const unsigned day = static_cast<unsigned>(*rc::gen::inRange(1, 29));
  const int64_t seconds = *rc::gen::inRange(0, 86'400);
  return *FromCivil(year, month, day, seconds, ZoneOffset{0});
}

std::string Text(Instant t) { return FormatInstant(t, ZoneOffset{540}); }

// A valid policy: parties PA, PB, ... with levels L1..Ln; agreements with random members, terms,
// hubs, scopes, rows and event histories that respect the notice state machine.
Policy GenPolicy() {
  Policy p;
  const int parties = *rc::gen::inRange(2, 6);
  for (int i = 0; i < parties; ++i) {
    Party party{std::string("P") + static_cast<char>('A' + i), "party", {}};
    const int levels = *rc::gen::inRange(1, 5);
    int32_t rank = 0;
    for (int l = 1; l <= levels; ++l) {
      rank += *rc::gen::inRange(0, 3);  // equal ranks allowed, never decreasing
      party.levels.push_back(Level{"L" + std::to_string(l), "level", "", rank});
    }
    p.parties.push_back(std::move(party));
  }
  const int agreements = *rc::gen::inRange(0, 7);
  for (int g = 0; g < agreements; ++g) {
    Agreement a;
    a.id = "g" + std::to_string(g);
    const int size = *rc::gen::inRange(2, parties + 1);
    const auto order =
        *rc::gen::unique<std::vector<int>>(static_cast<size_t>(size), rc::gen::inRange(0, parties));
    size_t min_levels = 99;
    for (int k = 0; k < size; ++k) {
      a.parties.push_back(p.parties[order[k]].id);
      min_levels = std::min(min_levels, p.parties[order[k]].levels.size());
    }
    a.in_force = RandomInstant(1990, 2015);
    a.zone = ZoneOffset{*rc::gen::inRange(-12, 15) * 60};
    if (*rc::gen::arbitrary<bool>()) {
      a.term = *rc::gen::element(CalendarDuration{1, 0, 0, 0}, CalendarDuration{0, 6, 0, 0},
                                 CalendarDuration{0, 1, 0, 0});
      a.renewal = *rc::gen::element(Renewal::kAutomatic, Renewal::kNone);
    }
    a.notice_period = CalendarDuration{0, 0, *rc::gen::inRange(0, 120), 0};
    a.survival = *rc::gen::element(Survival::kProtect, Survival::kRevoke);
    if (*rc::gen::arbitrary<bool>()) {
      a.scope = {"*"};
    } else {
      for (const auto& t : kTopics) {
        if (*rc::gen::arbitrary<bool>()) a.scope.push_back(t);
      }
      if (a.scope.empty()) a.scope = {"t1"};
    }
    if (size > 2 && *rc::gen::arbitrary<bool>()) a.hub = a.parties[*rc::gen::inRange(0, size)];
    // Rows map each party's levels in any order (a level in one row at most), so markings are
    // not the identity, and levels left out of every row have no equivalent.
    const int rows = *rc::gen::inRange(1, static_cast<int>(min_levels) + 1);
    std::map<std::string, std::vector<int>> order_of;
    for (const auto& party : a.parties) {
      const int levels = static_cast<int>(p.FindParty(party)->levels.size());
      order_of[party] = *rc::gen::unique<std::vector<int>>(static_cast<size_t>(rows),
                                                           rc::gen::inRange(0, levels));
    }
    for (int r = 0; r < rows; ++r) {
      LevelRow row;
      for (const auto& party : a.parties) {
        row.levels[party] = {"L" + std::to_string(order_of[party][static_cast<size_t>(r)] + 1)};
      }
      a.levels.push_back(std::move(row));
    }
    // Events by one party, in a valid order.
    const std::string by = a.parties[*rc::gen::inRange(0, size)];
    Instant t = a.in_force;
    bool notice = false, suspended = false;
    for (int e = *rc::gen::inRange(0, 5); e > 0; --e) {
      t = Instant{t.micros + int64_t{*rc::gen::inRange(1, 2000)} * 86'400'000'000};
      EventKind kind = EventKind::kTerminationNotice;
      if (notice) {
        kind = suspended
                   ? *rc::gen::element(EventKind::kNoticeResumed, EventKind::kNoticeWithdrawn)
                   : *rc::gen::element(EventKind::kNoticeSuspended, EventKind::kNoticeWithdrawn);
      }
      suspended = kind == EventKind::kNoticeSuspended;
      notice = kind != EventKind::kNoticeWithdrawn;
      a.events.push_back(AgreementEvent{kind, by, t, ""});
    }
    if (*rc::gen::inRange(0, 8) == 0) {
      a.events.push_back(
          AgreementEvent{EventKind::kTerminated, by, Instant{t.micros + 86'400'000'000}, ""});
    }
    p.agreements.push_back(std::move(a));
  }
  return p;
}

const std::string& AnyParty(const Policy& p) {
  return p.parties[*rc::gen::inRange(0, static_cast<int>(p.parties.size()))].id;
}
std::string AnyLevel(const Policy& p, const std::string& party) {
  const Party* found = p.FindParty(party);
  return found->levels[*rc::gen::inRange(0, static_cast<int>(found->levels.size()))].id;
}
// Mostly none: a compartment denies any reader who does not hold it.
std::vector<std::string> SomeCompartments() {
  std::vector<std::string> out;
  for (const auto& c : kCompartments) {
    if (*rc::gen::inRange(0, 4) == 0) out.push_back(c);
  }
  return out;
}
std::vector<std::string> SomeTopics() {
  std::vector<std::string> out;
  for (const auto& t : kTopics) {
    if (*rc::gen::inRange(0, 3) == 0) out.push_back(t);
  }
  return out;
}
template <typename T>
const T& Pick(const std::vector<T>& v) {
  return v[*rc::gen::inRange(0, static_cast<int>(v.size()))];
}

// A random request over the policy's vocabulary whose history is consistent with the policy:
// releases name agreements between the originator and the recipient, forwards follow releases.
// Unknown names are injected by the properties that want them.
RequestBuilder GenRequest(const Policy& p) {
  const std::string at = Text(RandomInstant(1988, 2040));
  const std::string originator = AnyParty(p);
  std::vector<std::string> holders, forwarded_to;
  struct Rel {
    std::string to, at, agreement;
  };
  struct Fwd {
    std::string from, to, at, agreement;
  };
  std::vector<Rel> rels;
  std::vector<Fwd> fwds;
  for (int k = *rc::gen::inRange(0, 4); k > 0; --k) {
    std::vector<const Agreement*> with;
    for (const Agreement& a : p.agreements) {
      if (a.HasParty(originator)) with.push_back(&a);
    }
    if (with.empty()) break;
    const Agreement& a = *Pick(with);
    std::vector<std::string> others;
    for (const auto& q : a.parties) {
      if (q != originator) others.push_back(q);
    }
    const std::string to = Pick(others);
    const Instant released = RandomInstant(1990, 2035);
    rels.push_back({to, Text(released), a.id});
    holders.push_back(to);
    if (*rc::gen::arbitrary<bool>()) {
      std::vector<const Agreement*> onward;
      for (const Agreement& f : p.agreements) {
        if (f.HasParty(to) && f.parties.size() > 1) onward.push_back(&f);
      }
      const Agreement& f = *Pick(onward);
      std::vector<std::string> targets;
      for (const auto& q : f.parties) {
        if (q != to) targets.push_back(q);
      }
      const std::string third = Pick(targets);
      fwds.push_back(
          {to, third,
           Text(Instant{released.micros + int64_t{*rc::gen::inRange(0, 900)} * 86'400'000'000}),
           f.id});
      forwarded_to.push_back(third);
    }
  }
  // A party other than the originator (policies have at least two parties). Drawn from a list,
  // never by retrying: RapidCheck's shrinking would repeat the same draw forever.
  std::vector<std::string> not_originator;
  for (const Party& q : p.parties) {
    if (q.id != originator) not_originator.push_back(q.id);
  }
  const std::string some = Pick(not_originator);
  std::string consent_to = some;  // the forward's target, when it is a forward
  RequestBuilder b = [&] {
    switch (*rc::gen::inRange(0, 3)) {
      case 0: {
        // Mostly a party that received the object.
        std::vector<std::string> readers = holders;
        readers.insert(readers.end(), forwarded_to.begin(), forwarded_to.end());
        const std::string party =
            readers.empty() || *rc::gen::inRange(0, 4) == 0 ? some : Pick(readers);
        return RequestBuilder::Read(at, party, AnyLevel(p, party))
            .NeedToKnow(SomeTopics())
            .Holds(SomeCompartments());
      }
      case 1:
        return RequestBuilder::Release(at, some);
      default: {
        const std::string holder = holders.empty() ? some : Pick(holders);
        // Mostly a partner of the holder under some agreement, so the agreement checks run.
        std::vector<std::string> targets;
        for (const Agreement& a : p.agreements) {
          if (!a.HasParty(holder)) continue;
          for (const std::string& q : a.parties) {
            if (q != holder && q != originator) targets.push_back(q);
          }
        }
        if (targets.empty() || *rc::gen::inRange(0, 4) == 0) {
          targets.clear();
          for (const Party& q : p.parties) {
            if (q.id != holder && q.id != originator) targets.push_back(q.id);
          }
        }
        consent_to = targets.empty() ? some : Pick(targets);
        return RequestBuilder::Forward(at, holder, consent_to);
      }
    }
  }();
  b.Object(originator, AnyLevel(p, originator))
      .Topics(SomeTopics())
      .Compartments(SomeCompartments());
  std::vector<std::string> rel_to;
  for (int k = *rc::gen::inRange(0, 4); k > 0; --k) rel_to.push_back(AnyParty(p));
  if (*rc::gen::arbitrary<bool>()) rel_to.push_back(some);
  b.RelTo(rel_to);
  for (const Rel& r : rels) b.Released(r.to, r.at, r.agreement);
  for (const Fwd& f : fwds) b.Forwarded(f.from, f.to, f.at, f.agreement);
  for (int k = *rc::gen::inRange(0, 3); k > 0; --k) {
    b.Consent(AnyParty(p), Text(RandomInstant(1990, 2035)));
  }
  if (*rc::gen::arbitrary<bool>()) b.Consent(consent_to, Text(RandomInstant(1990, 2020)));
  if (*rc::gen::inRange(0, 10) == 0) b.Destroyed(Text(RandomInstant(1990, 2040)));
  return b;
}

// inRange scales with RapidCheck's size, which starts at 0, so early cases would draw only the
// minimum of every range (no releases, the first party). Generate at full size throughout.
constexpr int kFullSize = 100;
Policy ArbitraryPolicy() { return *rc::gen::resize(kFullSize, rc::gen::exec(&GenPolicy)); }
RequestBuilder ArbitraryRequest(const Policy& p) {
  return *rc::gen::resize(kFullSize, rc::gen::exec([&p] { return GenRequest(p); }));
}

Engine Compile(Policy p) {
  auto e = Engine::Compile(std::move(p));
  RC_ASSERT(e.has_value());
  return std::move(*e);
}

// Decides `json`; nullopt when the line does not decode.
std::optional<Decision> Decide(const Engine& e, const std::string& json) {
  RequestDecoder decoder;
  auto request = decoder.Decode(json);
  if (!request) return std::nullopt;
  const Decision d = e.Decide(**request);
  (void)e.Explain(**request, d);  // explanations never throw either
  return d;
}

bool IsAllowReason(Reason r) {
  return r == Reason::kOriginatorCleared || r == Reason::kReleased || r == Reason::kReleasable ||
         r == Reason::kForwardable;
}

RC_GTEST_PROP(DecisionProperties, DecisionsAreDeterministicAndConsistent, ()) {
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  const Engine again = Compile(policy);
  for (int i = 0; i < 40; ++i) {
    const std::string json = ArbitraryRequest(policy).Json();
    const auto d1 = Decide(e, json);
    const auto d2 = Decide(e, json);
    const auto d3 = Decide(again, json);
    RC_ASSERT(d1.has_value());
    RC_ASSERT(d1->allow == d2->allow && d1->reason == d2->reason && d1->agreement == d2->agreement);
    RC_ASSERT(d1->allow == d3->allow && d1->reason == d3->reason && d1->agreement == d3->agreement);
    // The decision and its reason agree, and an allow always names what allowed it.
    RC_ASSERT(d1->allow == IsAllowReason(d1->reason));
    if (d1->allow && d1->reason != Reason::kOriginatorCleared) {
      RC_ASSERT(d1->agreement >= 0);
      RC_ASSERT(d1->marking.party >= 0 && d1->marking.level >= 0);
    } else {
      RC_ASSERT(d1->agreement < 0);
      RC_ASSERT(d1->marking.party < 0);
    }
  }
}

RC_GTEST_PROP(DecisionProperties, DefaultDeny, ()) {
  // With no releases, no forwards and no consents, only the originator's own subjects may read,
  // and nothing may be forwarded.
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  for (int i = 0; i < 20; ++i) {
    RequestBuilder b = ArbitraryRequest(policy);
    const std::string json = b.Json();
    boost::json::value v = boost::json::parse(json);
    auto& o = v.at("object").as_object();
    o["releases"] = boost::json::array{};
    o["forwards"] = boost::json::array{};
    o["consents"] = boost::json::array{};
    const auto d = Decide(e, boost::json::serialize(v));
    RC_ASSERT(d.has_value());
    const std::string action(v.at("action").as_string());
    if (action == "forward") RC_ASSERT(!d->allow);
    if (action == "read" && d->allow) RC_ASSERT(d->reason == Reason::kOriginatorCleared);
  }
}

RC_GTEST_PROP(DecisionProperties, WithoutAgreementsNothingLeavesItsOriginator, ()) {
  // The same policy with no agreement at all: no release, no forward, and only the originator's
  // own subjects read.
  Policy policy = ArbitraryPolicy();
  Policy none = policy;
  none.agreements.clear();
  const Engine e = Compile(none);
  for (int i = 0; i < 20; ++i) {
    boost::json::value v = boost::json::parse(ArbitraryRequest(policy).Json());
    auto& o = v.at("object").as_object();
    o["releases"] = boost::json::array{};  // they would name agreements that no longer exist
    o["forwards"] = boost::json::array{};
    const auto d = Decide(e, boost::json::serialize(v));
    RC_ASSERT(d.has_value());
    const std::string action(v.at("action").as_string());
    if (action != "read") {
      RC_ASSERT(!d->allow);
    } else if (v.at("subject").at("party") != o.at("originator")) {
      RC_ASSERT(!d->allow);
      RC_ASSERT(d->reason == Reason::kNotReleased || d->reason == Reason::kDestroyed ||
                d->reason == Reason::kNoNeedToKnow || d->reason == Reason::kCompartment);
    }
  }
}

RC_GTEST_PROP(DecisionProperties, UnknownPartiesAndLevelsAreDenied, ()) {
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  for (int i = 0; i < 20; ++i) {
    boost::json::value v = boost::json::parse(ArbitraryRequest(policy).Json());
    auto& o = v.at("object").as_object();
    const bool history = !o.at("releases").as_array().empty();
    const bool level = *rc::gen::arbitrary<bool>();
    if (level) {
      o["level"] = "NO-SUCH-LEVEL";
    } else {
      o["originator"] = "QQQ";  // unknown party
    }
    const auto d = Decide(e, boost::json::serialize(v));
    RC_ASSERT(d.has_value());
    RC_ASSERT(!d->allow);
    if (level) {
      // The history is consistent with the policy, so nothing before the level can fail.
      RC_ASSERT(d->reason == Reason::kUnknownLevel);
    } else if (!history) {
      RC_ASSERT(d->reason == Reason::kUnknownParty);
    } else {
      // Releases under agreements the unknown originator is not a party of.
      RC_ASSERT(d->reason == Reason::kUnknownParty || d->reason == Reason::kInvalidRequest);
    }
  }
}

RC_GTEST_PROP(DecisionProperties, RaisingClearanceNeverTurnsAllowIntoDeny, ()) {
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  for (int i = 0; i < 30; ++i) {
    boost::json::value v = boost::json::parse(ArbitraryRequest(policy).Json());
    if (v.at("action").as_string() != "read") continue;
    const auto before = Decide(e, boost::json::serialize(v));
    RC_ASSERT(before.has_value());
    if (!before->allow) continue;
    auto& s = v.at("subject").as_object();
    const Party* party = policy.FindParty(std::string(s.at("party").as_string()));
    RC_ASSERT(party != nullptr);
    const int current = party->LevelIndex(std::string(s.at("clearance").as_string()));
    for (size_t l = 0; l < party->levels.size(); ++l) {
      if (party->levels[l].rank < party->levels[current].rank) continue;
      s["clearance"] = party->levels[l].id;
      const auto after = Decide(e, boost::json::serialize(v));
      RC_ASSERT(after.has_value());
      RC_ASSERT(after->allow);
    }
  }
}

RC_GTEST_PROP(DecisionProperties, RemovingAnAgreementNeverTurnsDenyIntoAllow, ()) {
  const Policy policy = ArbitraryPolicy();
  RC_PRE(!policy.agreements.empty());
  const Engine full = Compile(policy);
  Policy smaller = policy;
  smaller.agreements.erase(smaller.agreements.begin() +
                           *rc::gen::inRange(0, static_cast<int>(policy.agreements.size())));
  const Engine fewer = Compile(smaller);
  for (int i = 0; i < 30; ++i) {
    const std::string json = ArbitraryRequest(policy).Json();
    const auto with = Decide(full, json);
    const auto without = Decide(fewer, json);
    RC_ASSERT(with.has_value() && without.has_value());
    if (!with->allow) RC_ASSERT(!without->allow);
  }
}

RC_GTEST_PROP(DecisionProperties, MalformedInputNeverThrows, (std::string line)) {
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  RequestDecoder decoder;
  auto request = decoder.Decode(line);
  if (request) {
    const Decision d = e.Decide(**request);
    (void)e.Explain(**request, d);
  }
}

// Every JSON object inside v, v's own included, in document order.
void CollectObjects(boost::json::value& v, std::vector<boost::json::object*>& out) {
  if (v.is_object()) {
    out.push_back(&v.get_object());
    for (auto& field : v.get_object()) CollectObjects(field.value(), out);
  } else if (v.is_array()) {
    for (auto& item : v.get_array()) CollectObjects(item, out);
  }
}

// Random strings almost never decode, so they leave Decide untried: this bends valid requests
// instead (a field removed, or given another type or an odd value), so that many still decode
// and reach Decide and Explain with values the generator never makes. Decide is noexcept, so a
// throw would end the test.
RC_GTEST_PROP(DecisionProperties, BentRequestsNeverThrow, ()) {
  const Policy policy = ArbitraryPolicy();
  const Engine e = Compile(policy);
  const std::vector<boost::json::value> odd = {nullptr,
                                               0,
                                               -1,
                                               1e300,
                                               "",
                                               "KOR",
                                               "2019-11-23T00:00:00+09:00",
                                               "9999-12-31T23:59:59Z",
                                               boost::json::array{},
                                               boost::json::array{"KOR", "JPN"},
                                               boost::json::object{}};
  int decided = 0;
  for (int i = 0; i < 30; ++i) {
    boost::json::value v = boost::json::parse(ArbitraryRequest(policy).Json());
    const int bends = *rc::gen::inRange(1, 4);
    for (int b = 0; b < bends; ++b) {
      std::vector<boost::json::object*> objects;
      CollectObjects(v, objects);
      boost::json::object& o = *objects[*rc::gen::inRange<size_t>(0, objects.size())];
      if (o.empty()) continue;
      auto it = o.begin() + *rc::gen::inRange<size_t>(0, o.size());
      if (*rc::gen::inRange(0, 4) == 0) {
        o.erase(it);
      } else {
        it->value() = odd[*rc::gen::inRange<size_t>(0, odd.size())];
      }
    }
    if (Decide(e, boost::json::serialize(v))) ++decided;
  }
  RC_TAG(decided > 0);
}

// The random requests must reach every reason a consistent request can have, allows and the
// deep checks alike, or the properties above prove little. (The unknown names are the
// UnknownPartiesAndLevelsAreDenied property's.)
TEST(DecisionProperties, GeneratorReachesEveryKindOfDecision) {
  std::array<int, kReasonCount> seen{};
  const bool sampled = rc::check("a sample of random decisions", [&seen] {
    const Policy policy = ArbitraryPolicy();
    const Engine e = Compile(policy);
    // 12,000 decisions: the rarest code reached (forwardable) then comes dozens of times.
    for (int i = 0; i < 120; ++i) {
      const auto d = Decide(e, ArbitraryRequest(policy).Json());
      RC_ASSERT(d.has_value());
      ++seen[static_cast<size_t>(d->reason)];
    }
  });
  ASSERT_TRUE(sampled);
  int total = 0;
  for (int n : seen) total += n;
  std::string histogram;
  for (int i = 0; i < kReasonCount; ++i) {
    if (seen[i] > 0) {
      histogram += fmt::format("{} {}, ", ReasonName(static_cast<Reason>(i)), seen[i]);
    }
  }
  std::cout << "reasons reached: " << histogram << "\n";
  for (int i = 0; i < kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    if (r == Reason::kInvalidRequest || r == Reason::kUnknownParty || r == Reason::kUnknownLevel) {
      continue;
    }
    EXPECT_GT(seen[static_cast<size_t>(i)], 0) << ReasonName(r);
  }
  const int invalid = seen[static_cast<size_t>(Reason::kInvalidRequest)] +
                      seen[static_cast<size_t>(Reason::kUnknownParty)];
  EXPECT_LT(invalid * 5, total) << "fewer than one request in five may fail validation";
}

}  // namespace
}  // namespace accord
