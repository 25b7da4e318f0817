// accord/policy_json.h — the JSON views of agreements and flows that `accord agreement ...
// --json`, `accord flows --json` and the API (docs/api.md) share.
//
// Instants are printed on the agreement's own clock (its zone) for agreements, and on `zone` for
// flows. Absent values are JSON null.
//
// Thread safety: plain functions.
#ifndef ACCORD_POLICY_JSON_H_
#define ACCORD_POLICY_JSON_H_

#include <boost/json/object.hpp>
#include <cstdint>
#include <span>

#include "accord/engine.h"
#include "accord/lifecycle.h"
#include "accord/time.h"

namespace accord {

// {"id","at","state","ends_at","ended_by","notice":{"by","given_at","state"}|null,
//  "suspended_notices":[{"by","given_at","state"}, ...]}
[[nodiscard]] boost::json::object AgreementStatusJson(const Engine& engine, int32_t agreement,
                                                      Instant at, const AgreementStatus& status);

// The status above with the agreement's terms: "title", "parties", "in_force", "term", "hub".
[[nodiscard]] boost::json::object AgreementJson(const Engine& engine, int32_t agreement, Instant at,
                                                const AgreementStatus& status);

// {"id","entries":[{"at","kind","what"}]}; kind is in-force | event | anniversary | end.
[[nodiscard]] boost::json::object TimelineJson(const Agreement& agreement,
                                               std::span<const TimelineEntry> timeline);

// {"at","flows":[{"from","to","allowed","reason","agreement","hub","scope"?,"levels"?}]} for
// every ordered pair of distinct parties.
[[nodiscard]] boost::json::object FlowsJson(const Engine& engine, Instant at, ZoneOffset zone);

}  // namespace accord

#endif  // ACCORD_POLICY_JSON_H_
