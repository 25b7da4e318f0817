#include "accord/policy_json.h"

#include <boost/json.hpp>
#include <optional>
#include <string>

namespace accord {
namespace {

namespace json = boost::json;

json::value InstantJson(std::optional<Instant> t, ZoneOffset zone) {
  if (!t || *t == Instant::Max()) return nullptr;
  return json::value(FormatInstant(*t, zone));
}

}  // namespace

json::object AgreementStatusJson(const Engine& engine, int32_t agreement, Instant at,
                                 const AgreementStatus& status) {
  const ZoneOffset z = engine.agreement(agreement).zone;
  json::object o;
  o["id"] = engine.agreement(agreement).id;
  o["at"] = FormatInstant(at, z);
  o["state"] = AgreementStateName(status.state);
  o["ends_at"] = InstantJson(status.ends_at, z);
  o["ended_by"] =
      status.ended_by ? json::value(EndCauseName(*status.ended_by)) : json::value(nullptr);
  const auto notice_json = [z](const NoticeStatus& notice) {
    json::object n;
    n["by"] = notice.by;
    n["given_at"] = FormatInstant(notice.given_at, z);
    n["state"] = NoticeStateName(notice.state);
    return n;
  };
  o["notice"] = status.notice ? json::value(notice_json(*status.notice)) : json::value(nullptr);
  json::array suspended;
  for (const NoticeStatus& n : status.suspended_notices) suspended.push_back(notice_json(n));
  o["suspended_notices"] = std::move(suspended);
  return o;
}

json::object AgreementJson(const Engine& engine, int32_t agreement, Instant at,
                           const AgreementStatus& status) {
  const Agreement& a = engine.agreement(agreement);
  json::object j = AgreementStatusJson(engine, agreement, at, status);
  j["title"] = a.title;
  json::array parties;
  for (const std::string& p : a.parties) parties.emplace_back(p);
  j["parties"] = std::move(parties);
  j["in_force"] = FormatInstant(a.in_force, a.zone);
  j["term"] = a.term ? json::value(FormatDuration(*a.term)) : json::value(nullptr);
  j["hub"] = a.hub ? json::value(*a.hub) : json::value(nullptr);
  return j;
}

json::object TimelineJson(const Agreement& agreement, std::span<const TimelineEntry> timeline) {
  static constexpr std::string_view kKinds[] = {"in-force", "event", "anniversary", "end"};
  json::array entries;
  for (const TimelineEntry& t : timeline) {
    entries.push_back(json::object{{"at", FormatInstant(t.at, agreement.zone)},
                                   {"kind", kKinds[static_cast<int>(t.kind)]},
                                   {"what", t.what}});
  }
  return json::object{{"id", agreement.id}, {"entries", std::move(entries)}};
}

json::object FlowsJson(const Engine& engine, Instant at, ZoneOffset zone) {
  const int32_t n = engine.party_count();
  json::array flows;
  for (int32_t a = 0; a < n; ++a) {
    for (int32_t b = 0; b < n; ++b) {
      if (a == b) continue;
      const Flow f = engine.FlowAt(a, b, at);
      json::object j{{"from", engine.party(a).id},
                     {"to", engine.party(b).id},
                     {"allowed", f.allowed},
                     {"reason", ReasonName(f.reason)}};
      j["agreement"] =
          f.agreement >= 0 ? json::value(engine.agreement(f.agreement).id) : json::value(nullptr);
      j["hub"] = f.hub >= 0 ? json::value(engine.party(f.hub).id) : json::value(nullptr);
      if (f.allowed) {
        json::array scope;
        for (const std::string& s : engine.agreement(f.agreement).scope) scope.emplace_back(s);
        j["scope"] = std::move(scope);
        json::object levels;
        for (size_t l = 0; l < f.level_map.size(); ++l) {
          levels[engine.party(a).levels[l].id] =
              f.level_map[l] >= 0 ? json::value(engine.party(b).levels[f.level_map[l]].id)
                                  : json::value(nullptr);
        }
        j["levels"] = std::move(levels);
      }
      flows.push_back(std::move(j));
    }
  }
  return json::object{{"at", FormatInstant(at, zone)}, {"flows", std::move(flows)}};
}

}  // namespace accord
