// Human explanations of decisions. Runs after Decide, off the allocation-free path.
#include <fmt/format.h>

#include "accord/engine.h"

namespace accord {
namespace {

std::string LevelText(const Party& p, int32_t level) {
  if (level < 0 || level >= static_cast<int32_t>(p.levels.size())) return "(none)";
  const Level& l = p.levels[level];
  return l.name.empty() || l.name == l.id ? l.id : fmt::format("{} ({})", l.id, l.name);
}

std::string When(Instant t, ZoneOffset z) { return FormatInstant(t, z); }

}  // namespace

std::vector<std::string> Engine::Explain(const RequestView& rq, const Decision& d) const {
  std::vector<std::string> out;
  const ObjectView& o = rq.object;
  const int32_t origin = PartyIndex(o.originator);
  const ZoneOffset utc{};
  auto agreement_zone = [&](int32_t g) { return g >= 0 ? agreement(g).zone : utc; };

  switch (d.reason) {
    case Reason::kInvalidRequest: {
      const int32_t i = d.detail;
      switch (d.problem) {
        case RequestProblem::kUnknownReleaseAgreement:
          out.push_back(
              fmt::format("release {} names unknown agreement `{}`", i, o.releases[i].agreement));
          break;
        case RequestProblem::kReleaseAgreementParties:
          out.push_back(
              fmt::format("release {} names agreement `{}`, which is not between `{}` and `{}`", i,
                          o.releases[i].agreement, o.originator, o.releases[i].to));
          break;
        case RequestProblem::kReleaseToOriginator:
          out.push_back(
              fmt::format("release {} is to the originator `{}` itself", i, o.originator));
          break;
        case RequestProblem::kUnknownForwardAgreement:
          out.push_back(
              fmt::format("forward {} names unknown agreement `{}`", i, o.forwards[i].agreement));
          break;
        case RequestProblem::kForwardAgreementParties:
          out.push_back(
              fmt::format("forward {} names agreement `{}`, which is not between `{}` and `{}`", i,
                          o.forwards[i].agreement, o.forwards[i].from, o.forwards[i].to));
          break;
        case RequestProblem::kForwardWithoutRelease:
          out.push_back(
              fmt::format("forward {} is from `{}`, which had no release of the object by then", i,
                          o.forwards[i].from));
          break;
        case RequestProblem::kForwardToSelf:
          out.push_back(fmt::format("forward {} is from `{}` to itself", i, o.forwards[i].from));
          break;
        case RequestProblem::kReleaseToSelf:
          out.push_back(fmt::format("`{}` is the originator; it cannot release to itself", rq.to));
          break;
        case RequestProblem::kForwardToHolder:
          out.push_back(fmt::format("`{}` cannot forward to itself", rq.holder));
          break;
        case RequestProblem::kForwardToOriginator:
          out.push_back(fmt::format("`{}` is the originator and already holds the object", rq.to));
          break;
        case RequestProblem::kNone:
          out.push_back("the request is malformed");
          break;
      }
      break;
    }
    case Reason::kUnknownParty:
      out.push_back("the request names a party that is not in the policy");
      break;
    case Reason::kUnknownLevel:
      out.push_back(
          rq.action == Action::kRead
              ? fmt::format(
                    "clearance `{}` of `{}` or level `{}` of `{}` is not in that party's scheme",
                    rq.subject.clearance, rq.subject.party, o.level, o.originator)
              : fmt::format("level `{}` is not in the scheme of `{}`", o.level, o.originator));
      break;
    case Reason::kDestroyed:
      out.push_back(
          fmt::format("object `{}` was destroyed at {}", o.id, When(*o.destroyed_at, utc)));
      break;
    case Reason::kOriginatorCleared:
      out.push_back(
          fmt::format("subject of `{}` reads its own party's object `{}`", rq.subject.party, o.id));
      out.push_back(fmt::format("clearance {} covers level {}, need-to-know and compartments hold",
                                rq.subject.clearance,
                                LevelText(party(origin), party(origin).LevelIndex(o.level))));
      break;
    case Reason::kNotReleased:
      out.push_back(fmt::format("object `{}` of `{}` was never released or forwarded to `{}` by {}",
                                o.id, o.originator, rq.subject.party, When(rq.at, utc)));
      break;
    case Reason::kInsufficientClearance: {
      const int32_t sp = PartyIndex(rq.subject.party);
      out.push_back(fmt::format("clearance {} of `{}` is below the marking {}",
                                rq.subject.clearance, rq.subject.party,
                                LevelText(party(sp), d.path_level)));
      break;
    }
    case Reason::kNoNeedToKnow:
      out.push_back("the subject's need-to-know shares no topic with the object");
      break;
    case Reason::kCompartment:
      out.push_back(
          fmt::format("the subject does not hold compartment `{}`", o.compartments[d.detail]));
      break;
    case Reason::kAgreementEnded: {
      const std::string_view g =
          d.via_forward ? o.forwards[d.detail].agreement : o.releases[d.detail].agreement;
      const int32_t gi = AgreementIndex(g);
      out.push_back(fmt::format("agreement `{}` ended at {} and its survival is `revoke`", g,
                                When(LifetimeOf(gi).end, agreement_zone(gi))));
      break;
    }
    case Reason::kNoEquivalentLevel:
      out.push_back(fmt::format("no equivalence row maps level `{}` of `{}` along the path",
                                o.level, o.originator));
      break;
    case Reason::kNotReleasable:
      out.push_back(fmt::format("`{}` is not in rel_to of object `{}`", rq.to, o.id));
      break;
    case Reason::kNoAgreement:
      out.push_back(fmt::format("no agreement has both `{}` and `{}` among its parties",
                                rq.action == Action::kForward ? rq.holder : o.originator, rq.to));
      break;
    case Reason::kAgreementNotInForce:
      out.push_back(fmt::format("no agreement between `{}` and `{}` is in force at {}",
                                rq.action == Action::kForward ? rq.holder : o.originator, rq.to,
                                When(rq.at, utc)));
      break;
    case Reason::kHubOnly:
      out.push_back(fmt::format(
          "the agreements in force between `{}` and `{}` allow flows only through their hub",
          rq.action == Action::kForward ? rq.holder : o.originator, rq.to));
      break;
    case Reason::kOutOfScope:
      out.push_back("no agreement in force between the parties covers every topic of the object");
      break;
    case Reason::kNotHeld:
      out.push_back(rq.holder == o.originator
                        ? fmt::format("`{}` is the originator of `{}`: it releases, it does not "
                                      "forward",
                                      rq.holder, o.id)
                        : fmt::format("`{}` never received object `{}` from its originator by {}",
                                      rq.holder, o.id, When(rq.at, utc)));
      break;
    case Reason::kNoConsent:
      out.push_back(fmt::format("originator `{}` has not consented to onward release to `{}`",
                                o.originator, rq.to));
      break;
    case Reason::kReleased: {
      const Agreement& g = agreement(d.agreement);
      if (d.via_forward) {
        const ForwardView& f = o.forwards[d.detail];
        out.push_back(
            fmt::format("`{}` forwarded `{}` to `{}` at {} under `{}` with the consent of `{}`",
                        f.from, o.id, f.to, When(f.at, g.zone), g.id, o.originator));
      } else {
        const ReleaseView& r = o.releases[d.detail];
        out.push_back(fmt::format("`{}` released `{}` to `{}` at {} under `{}`", o.originator, o.id,
                                  r.to, When(r.at, g.zone), g.id));
      }
      out.push_back(fmt::format("{} of `{}` is marked {} for `{}`",
                                LevelText(party(origin), party(origin).LevelIndex(o.level)),
                                o.originator, LevelText(party(d.marking.party), d.marking.level),
                                party(d.marking.party).id));
      out.push_back(
          fmt::format("clearance {} covers the marking; need-to-know and compartments hold",
                      rq.subject.clearance));
      break;
    }
    case Reason::kReleasable:
    case Reason::kForwardable: {
      const Agreement& g = agreement(d.agreement);
      const std::string_view from = d.reason == Reason::kForwardable ? rq.holder : o.originator;
      out.push_back(fmt::format(
          "agreement `{}` between `{}` and `{}` is in force at {} and covers the object", g.id,
          from, rq.to, When(rq.at, g.zone)));
      if (d.reason == Reason::kForwardable) {
        out.push_back(fmt::format("originator `{}` consented to onward release to `{}`",
                                  o.originator, rq.to));
      }
      out.push_back(fmt::format("{} of `{}` is marked {} for `{}`",
                                LevelText(party(origin), party(origin).LevelIndex(o.level)),
                                o.originator, LevelText(party(d.marking.party), d.marking.level),
                                party(d.marking.party).id));
      break;
    }
  }
  return out;
}

}  // namespace accord
