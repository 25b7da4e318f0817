// The client API: routing, JSON bodies and the mapping of errors to HTTP (docs/api.md).
#include "api.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "accord/clock.h"
#include "accord/crypto.h"
#include "accord/json.h"
#include "accord/merkle.h"
#include "accord/policy_json.h"
#include "accord/store.h"
#include "accord/time.h"
#include "accord/utf8.h"

namespace accord::server_internal {
namespace {

namespace json = boost::json;

constexpr std::string_view kJsonLines = "application/jsonl";
constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kObjects = "/v1/objects/";  // the prefix of an object's routes
// GET /v1/objects: objects a page by default, and at most.
constexpr uint64_t kDefaultListLimit = 100, kMaxListLimit = 1000;

ApiError MakeError(unsigned status, std::string code, std::string message, std::string allow = {}) {
  return ApiError{status, std::move(code), std::move(message), std::move(allow)};
}

ApiError NotFoundRoute(std::string_view path) {
  std::string message = "no route `";
  message.append(path);
  message += "`";
  return MakeError(404, "not-found", std::move(message));
}

// Percent-decodes one path segment; nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) {
      return std::nullopt;
    }
    const int hi = HexDigitValue(s[i + 1]);
    const int lo = HexDigitValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// The methods a route takes.
struct RouteMethods {
  std::optional<Route> get;
  std::optional<Route> post;
  std::string_view allow;
};

tl::expected<ApiRequest, ApiError> Dispatch(const RouteMethods& methods, std::string_view method) {
  ApiRequest request;
  if (method == "GET" && methods.get) {
    request.route = *methods.get;
    return request;
  }
  if (method == "POST" && methods.post) {
    request.route = *methods.post;
    return request;
  }
  std::string message = "method `";
  message.append(method);
  message += "` is not allowed here; use ";
  message.append(methods.allow);
  return tl::unexpected(
      MakeError(405, "method-not-allowed", std::move(message), std::string(methods.allow)));
}

// The envelopes of a batch, one per line, each with its newline (the last one's is optional), as
// it would be posted alone: at least one, at most kMaxBatchEnvelopes, and no blank line.
tl::expected<void, ApiError> SplitEnvelopes(std::string_view body,
                                            std::vector<std::string_view>& out) {
  if (body.empty()) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", "a batch holds at least one envelope, one per line"));
  }
  while (!body.empty()) {
    const size_t nl = body.find('\n');
    const std::string_view line = body.substr(0, nl == std::string_view::npos ? nl : nl + 1);
    if (line == "\n" || line == "\r\n" || line == "\r") {
      return tl::unexpected(MakeError(400, "invalid-argument",
                                      "line " + std::to_string(out.size() + 1) +
                                          " of the batch is blank: one envelope per line"));
    }
    if (out.size() == kMaxBatchEnvelopes) {
      return tl::unexpected(
          MakeError(400, "invalid-argument",
                    "a batch holds at most " + std::to_string(kMaxBatchEnvelopes) + " envelopes"));
    }
    out.push_back(line);
    body.remove_prefix(line.size());
  }
  return {};
}

// The longest id a party or a level may have, as an object made here (Node::Create's rule).
constexpr size_t kMaxIdBytes = 128;
// The longest object id in a path: that of an object received, which a partner's package may
// name with up to 256 bytes (wire.cc).
constexpr size_t kMaxObjectIdBytes = 256;
// The most of a client's field name or query parameter an error echoes.
constexpr size_t kMaxEchoedBytes = 64;

std::string FieldError(std::string_view field, std::string_view problem) {
  std::string message = "`";
  message.append(OneLine(field, kMaxEchoedBytes));  // a key may be the client's
  message += "`: ";
  message.append(problem);
  return message;
}

// A list of non-empty strings, e.g. "topics".
tl::expected<std::vector<std::string>, ApiError> StringList(const json::value& v,
                                                            std::string_view field) {
  const json::array* array = v.if_array();
  if (array == nullptr) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", FieldError(field, "expected an array of strings")));
  }
  std::vector<std::string> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string name = std::string(field) + "[" + std::to_string(i) + "]";
    const json::string* s = (*array)[i].if_string();
    if (s == nullptr) {
      return tl::unexpected(
          MakeError(400, "invalid-argument", FieldError(name, "expected a string")));
    }
    if (s->empty()) {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(name, "is empty")));
    }
    out.emplace_back(s->data(), s->size());
  }
  return out;
}

// The body as a JSON object nested at most `max_depth` deep.
tl::expected<json::value, ApiError> ParseBodyObject(std::string_view body, int max_depth,
                                                    json::storage_ptr storage = {}) {
  json::parse_options options;
  options.max_depth = static_cast<size_t>(max_depth);
  auto parsed = ParseJson(body, options, std::move(storage));
  if (!parsed) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", "the body is not valid JSON: " + parsed.error()));
  }
  json::value& v = *parsed;
  if (!v.is_object()) {
    return tl::unexpected(MakeError(400, "invalid-argument", "the body is not a JSON object"));
  }
  return std::move(v);
}

// {"id","level","topics","compartments","rel_to","payload_base64"}: unknown fields are refused,
// so that a misspelt "topic" cannot create an object readable without need-to-know.
tl::expected<void, ApiError> DecodeNewObject(std::string_view body, ApiRequest& request) {
  // The parser copies a string with an escape in it (a client may write `+` as `\u002B`)
  // through an array on the stack: wiped when this returns, however it returns.
  struct StackWiper {
    ~StackWiper() { WipeStackBelow(); }
  } stack_wiper;
  // The tree holds the payload in base64: its memory is wiped when the tree goes.
  WipingJsonResource wiping;
  auto parsed = ParseBodyObject(body, 8, json::storage_ptr(&wiping));
  if (!parsed) return tl::unexpected(std::move(parsed).error());
  const json::object* o = &parsed->get_object();
  bool have_id = false, have_level = false, have_payload = false;
  for (const auto& [key_view, value] : *o) {
    const std::string_view key(key_view.data(), key_view.size());
    if (key == "id" || key == "level" || key == "payload_base64") {
      const json::string* s = value.if_string();
      if (s == nullptr) {
        return tl::unexpected(
            MakeError(400, "invalid-argument", FieldError(key, "expected a string")));
      }
      const std::string_view text(s->data(), s->size());
      if (key == "id") {
        request.object.id = text;
        have_id = true;
      } else if (key == "level") {
        request.object.level = text;
        have_level = true;
      } else {
        auto payload = Base64Decode(text);
        if (!payload) {
          return tl::unexpected(
              MakeError(400, "invalid-argument", FieldError(key, "expected base64")));
        }
        try {
          request.payload = SecretBytes::Copy(std::span<const uint8_t>(*payload));
        } catch (...) {  // no memory for the copy: the decoded payload is wiped all the same
          SecureWipe(payload->data(), payload->size());
          throw;
        }
        SecureWipe(payload->data(), payload->size());
        have_payload = true;
      }
    } else if (key == "topics" || key == "compartments" || key == "rel_to") {
      auto list = StringList(value, key);
      if (!list) {
        return tl::unexpected(std::move(list).error());
      }
      if (key == "topics") {
        request.object.topics = std::move(*list);
      } else if (key == "compartments") {
        request.object.compartments = std::move(*list);
      } else {
        request.object.rel_to = std::move(*list);
      }
    } else {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(key, "unknown field")));
    }
  }
  for (const auto& [have, name] : {std::pair{have_id, "id"}, std::pair{have_level, "level"},
                                   std::pair{have_payload, "payload_base64"}}) {
    if (!have) {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(name, "missing")));
    }
  }
  return {};
}

// {"from":[sizes],"to":size}: 1 to kMaxConsistencySizes sizes; "to" may be left out (the log's
// size).
tl::expected<void, ApiError> DecodeConsistencies(std::string_view body, ApiRequest& request) {
  auto parsed = ParseBodyObject(body, 3);
  if (!parsed) return tl::unexpected(std::move(parsed).error());
  bool have_from = false;
  for (const auto& [key_view, value] : parsed->get_object()) {
    const std::string_view key(key_view.data(), key_view.size());
    if (key == "to") {
      const auto to = JsonCount(value);
      if (!to) {
        return tl::unexpected(
            MakeError(400, "invalid-argument", FieldError(key, "expected a non-negative integer")));
      }
      request.second = *to;
      request.second_given = true;
    } else if (key == "from") {
      const json::array* sizes = value.if_array();
      if (sizes == nullptr || sizes->empty() || sizes->size() > kMaxConsistencySizes) {
        return tl::unexpected(MakeError(
            400, "invalid-argument",
            FieldError(key,
                       fmt::format("expected a list of 1 to {} sizes", kMaxConsistencySizes))));
      }
      for (const json::value& size : *sizes) {
        const auto from = JsonCount(size);
        if (!from || *from == 0) {
          return tl::unexpected(
              MakeError(400, "invalid-argument", FieldError(key, "expected positive integers")));
        }
        request.sizes.push_back(*from);
      }
      have_from = true;
    } else {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(key, "unknown field")));
    }
  }
  if (!have_from) {
    return tl::unexpected(MakeError(400, "invalid-argument", FieldError("from", "missing")));
  }
  return {};
}

// A JSON object of string fields: each of `required` must be there, each of `optional` may be,
// and any other field is refused (a misspelt field must not be silently ignored).
tl::expected<std::map<std::string, std::string, std::less<>>, ApiError> DecodeStringFields(
    std::string_view body, std::initializer_list<std::string_view> required,
    std::initializer_list<std::string_view> optional = {}) {
  auto parsed = ParseBodyObject(body, 4);
  if (!parsed) return tl::unexpected(std::move(parsed).error());
  const json::object* o = &parsed->get_object();
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& [key_view, value] : *o) {
    const std::string_view key(key_view.data(), key_view.size());
    const auto known = [&](std::initializer_list<std::string_view> names) {
      return std::find(names.begin(), names.end(), key) != names.end();
    };
    if (!known(required) && !known(optional)) {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(key, "unknown field")));
    }
    const json::string* text = value.if_string();
    if (text == nullptr) {
      return tl::unexpected(
          MakeError(400, "invalid-argument", FieldError(key, "expected a string")));
    }
    out.emplace(std::string(key), std::string(text->data(), text->size()));
  }
  for (std::string_view name : required) {
    if (!out.contains(name)) {
      return tl::unexpected(MakeError(400, "invalid-argument", FieldError(name, "missing")));
    }
  }
  return out;
}

using QueryMap = std::map<std::string, std::string, std::less<>>;

// `target` without its query string.
std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// The query string of `target`, percent-decoded; a key not in `allowed`, or given twice, is
// refused.
tl::expected<QueryMap, ApiError> DecodeQuery(std::string_view target,
                                             std::initializer_list<std::string_view> allowed) {
  QueryMap out;
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest.remove_prefix(amp == std::string_view::npos ? rest.size() : amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!key || !value || !IsUtf8(*key) || !IsUtf8(*value)) {
      return tl::unexpected(MakeError(400, "invalid-argument", "bad query string"));
    }
    if (std::find(allowed.begin(), allowed.end(), *key) == allowed.end()) {
      return tl::unexpected(
          MakeError(400, "invalid-argument",
                    "unknown query parameter `" + OneLine(*key, kMaxEchoedBytes) + "`"));
    }
    if (!out.emplace(std::move(*key), std::move(*value)).second) {
      return tl::unexpected(MakeError(400, "invalid-argument", "a query parameter is repeated"));
    }
  }
  return out;
}

// A decimal count from the query, if given.
tl::expected<std::optional<uint64_t>, ApiError> QueryNumber(const QueryMap& query,
                                                            std::string_view key) {
  const auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  uint64_t value = 0;
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return tl::unexpected(MakeError(400, "invalid-argument",
                                    "`" + std::string(key) + "` is not a non-negative integer"));
  }
  return value;
}

// ?at=: an RFC 3339 instant.
tl::expected<void, ApiError> QueryAt(const QueryMap& query, ApiRequest& request) {
  const auto it = query.find("at");
  if (it == query.end()) return {};
  auto at = ParseInstant(it->second);
  if (!at) {
    return tl::unexpected(MakeError(400, "invalid-argument", "`at`: " + at.error().message));
  }
  request.at = *at;
  return {};
}

// A party or level id of an action: 1 to 128 bytes, as an object id. Others are no id of any
// policy: a malformed request, not a refusal to log (a longer one would stay in the log for good).
tl::expected<void, ApiError> CheckIdField(std::string_view name, const std::string& value) {
  if (value.empty() || value.size() > kMaxIdBytes) {
    return tl::unexpected(
        MakeError(400, "invalid-argument",
                  FieldError(name, "1 to " + std::to_string(kMaxIdBytes) + " bytes, as every id")));
  }
  return {};
}

// Decodes the body of an action on an object into `request`.
tl::expected<void, ApiError> DecodeAction(std::string_view body, ApiRequest& request) {
  switch (request.route) {
    case Route::kRelease:
    case Route::kForward:
    case Route::kConsent: {
      auto fields = DecodeStringFields(body, {"to"});
      if (!fields) return tl::unexpected(std::move(fields).error());
      request.to = (*fields)["to"];
      return CheckIdField("to", request.to);
    }
    case Route::kReclassify: {
      auto fields = DecodeStringFields(body, {"level"});
      if (!fields) return tl::unexpected(std::move(fields).error());
      request.level = (*fields)["level"];
      return CheckIdField("level", request.level);
    }
    case Route::kDestroy: {
      auto fields = DecodeStringFields(body, {"scope"});
      if (!fields) return tl::unexpected(std::move(fields).error());
      const std::string& scope = (*fields)["scope"];
      if (scope != "own-copy" && scope != "everywhere") {
        return tl::unexpected(MakeError(
            400, "invalid-argument", FieldError("scope", "expected `own-copy` or `everywhere`")));
      }
      request.scope = scope == "everywhere" ? DestroyScope::kEverywhere : DestroyScope::kOwnCopy;
      return {};
    }
    case Route::kReport: {
      auto fields = DecodeStringFields(body, {"kind"}, {"text"});
      if (!fields) return tl::unexpected(std::move(fields).error());
      request.kind = (*fields)["kind"];
      request.text = (*fields)["text"];
      return {};
    }
    default:
      return {};
  }
}

// The routes under /v1/objects/{id}/.
std::optional<Route> ActionRoute(std::string_view action) {
  static constexpr std::pair<std::string_view, Route> kActions[] = {
      {"release", Route::kRelease}, {"forward", Route::kForward},
      {"consent", Route::kConsent}, {"reclassify", Route::kReclassify},
      {"destroy", Route::kDestroy}, {"report", Route::kReport}};
  for (const auto& [name, route] : kActions) {
    if (name == action) return route;
  }
  return std::nullopt;
}

// A percent-decoded, UTF-8 path segment (an object or agreement id).
tl::expected<std::string, ApiError> DecodeSegment(std::string_view segment, std::string_view what) {
  auto id = PercentDecode(segment);
  if (!id) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", "bad percent-encoding in the " + std::string(what)));
  }
  if (!IsUtf8(*id)) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", "the " + std::string(what) + " is not UTF-8"));
  }
  return std::move(*id);
}

json::value StringArray(const std::vector<std::string>& items) {
  json::array a;
  a.reserve(items.size());
  for (const auto& s : items) {
    a.emplace_back(json::string_view(s.data(), s.size()));
  }
  return a;
}

json::value StringOrNull(const std::string& s) {
  if (s.empty()) {
    return nullptr;
  }
  return json::string(s.data(), s.size());
}

ApiResponse Json(unsigned status, const json::value& v) {
  ApiResponse r;
  r.status = status;
  r.body = json::serialize(v);  // a JSON tree carries no payload (ReadObject appends it)
  return r;
}

}  // namespace

bool IsNodeRoute(Route route) {
  // Not the log's entries: they name subjects, objects and other partners, which a partner need
  // not see to check that the log only grows.
  return route == Route::kEnvelope || route == Route::kEnvelopes || route == Route::kCheckpoint ||
         route == Route::kLogConsistency || route == Route::kLogConsistencies ||
         route == Route::kLogProof || route == Route::kHealth;
}

namespace {

// Whether `route` reads parameters from the query string.
bool TakesQuery(Route route) {
  switch (route) {
    case Route::kListObjects:
    case Route::kAgreements:
    case Route::kAgreement:
    case Route::kTimeline:
    case Route::kFlows:
    case Route::kLogEntries:
    case Route::kLogProof:
    case Route::kLogConsistency:
      return true;
    default:
      return false;
  }
}

// DecodeApiRequest, but for the query string of the routes that take none.
tl::expected<ApiRequest, ApiError> DecodeRoute(std::string_view method, std::string_view target,
                                               std::string_view body) {
  try {
    std::string_view path = PathOf(target);
    if (path.empty() || path.front() != '/') {
      return tl::unexpected(MakeError(400, "invalid-argument", "the target is not a path"));
    }
    // Routes without parameters.
    static constexpr struct {
      std::string_view path;
      RouteMethods methods;
    } kFixed[] = {
        {"/v1/health", {Route::kHealth, std::nullopt, "GET"}},
        {"/v1/log/checkpoint", {Route::kCheckpoint, std::nullopt, "GET"}},
        {"/v1/outbox", {Route::kOutbox, std::nullopt, "GET"}},
        {"/v1/federation/peers", {Route::kPeers, std::nullopt, "GET"}},
    };
    for (const auto& fixed : kFixed) {
      if (path == fixed.path) return Dispatch(fixed.methods, method);
    }
    if (path == "/v1/decide") {
      auto request = Dispatch({std::nullopt, Route::kDecide, "POST"}, method);
      if (!request) return request;
      const size_t lines = static_cast<size_t>(std::count(body.begin(), body.end(), '\n')) +
                           (!body.empty() && body.back() != '\n' ? 1 : 0);
      if (lines > kMaxDecideLines) {
        return tl::unexpected(MakeError(413, "body-too-large",
                                        fmt::format("a decide request holds at most {} lines; "
                                                    "this one has {}",
                                                    kMaxDecideLines, lines)));
      }
      request->lines = body;
      return request;
    }
    if (path == "/v1/federation/envelopes") {
      auto request = Dispatch({std::nullopt, Route::kEnvelope, "POST"}, method);
      if (request) {
        request->envelope = body;
      }
      return request;
    }
    if (path == "/v1/federation/batches") {
      auto request = Dispatch({std::nullopt, Route::kEnvelopes, "POST"}, method);
      if (!request) return request;
      if (auto split = SplitEnvelopes(body, request->envelopes); !split) {
        return tl::unexpected(std::move(split).error());
      }
      return request;
    }
    if (path == "/v1/flows" || path == "/v1/agreements") {
      auto request = Dispatch(
          {path == "/v1/flows" ? Route::kFlows : Route::kAgreements, std::nullopt, "GET"}, method);
      if (!request) return request;
      auto query = DecodeQuery(target, {"at"});
      if (!query) return tl::unexpected(std::move(query).error());
      if (auto at = QueryAt(*query, *request); !at) return tl::unexpected(std::move(at).error());
      return request;
    }
    if (path == "/v1/log/consistency" && method == "POST") {
      auto request = Dispatch({std::nullopt, Route::kLogConsistencies, "GET, POST"}, method);
      if (!request) return request;
      if (auto sizes = DecodeConsistencies(body, *request); !sizes) {
        return tl::unexpected(std::move(sizes).error());
      }
      return request;
    }
    if (path == "/v1/log/entries" || path == "/v1/log/proof" || path == "/v1/log/consistency") {
      const bool entries = path == "/v1/log/entries";
      const bool proof = path == "/v1/log/proof";
      auto request = Dispatch({entries ? Route::kLogEntries
                               : proof ? Route::kLogProof
                                       : Route::kLogConsistency,
                               std::nullopt, entries || proof ? "GET" : "GET, POST"},
                              method);
      if (!request) return request;
      const std::string_view first = entries ? "from" : proof ? "index" : "from";
      const std::string_view second = entries ? "count" : proof ? "size" : "to";
      auto query = DecodeQuery(target, {first, second});
      if (!query) return tl::unexpected(std::move(query).error());
      auto a = QueryNumber(*query, first);
      if (!a) return tl::unexpected(std::move(a).error());
      auto b = QueryNumber(*query, second);
      if (!b) return tl::unexpected(std::move(b).error());
      if (!*a && !entries) {
        return tl::unexpected(
            MakeError(400, "invalid-argument", FieldError(first, "missing from the query")));
      }
      request->first = a->value_or(0);
      request->second = b->value_or(0);
      request->second_given = b->has_value();
      return request;
    }
    constexpr std::string_view kAgreements = "/v1/agreements/";
    if (path.starts_with(kAgreements)) {
      std::string_view rest = path.substr(kAgreements.size());
      const size_t slash = rest.find('/');
      const std::string_view tail =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
      if (rest.empty() || (slash != std::string_view::npos && tail != "/timeline")) {
        return tl::unexpected(NotFoundRoute(path));
      }
      auto id = DecodeSegment(rest.substr(0, slash), "agreement id");
      if (!id) return tl::unexpected(std::move(id).error());
      auto request = Dispatch(
          {tail.empty() ? Route::kAgreement : Route::kTimeline, std::nullopt, "GET"}, method);
      if (!request) return request;
      request->agreement_id = std::move(*id);
      auto query = DecodeQuery(target, {"at"});
      if (!query) return tl::unexpected(std::move(query).error());
      if (auto at = QueryAt(*query, *request); !at) return tl::unexpected(std::move(at).error());
      return request;
    }
    if (path == "/v1/objects") {
      auto request = Dispatch({Route::kListObjects, Route::kCreateObject, "GET, POST"}, method);
      if (request && request->route == Route::kCreateObject) {
        if (auto decoded = DecodeNewObject(body, *request); !decoded) {
          return tl::unexpected(std::move(decoded).error());
        }
      }
      if (request && request->route == Route::kListObjects) {
        auto query = DecodeQuery(target, {"after", "limit"});
        if (!query) return tl::unexpected(std::move(query).error());
        auto limit = QueryNumber(*query, "limit");
        if (!limit) return tl::unexpected(std::move(limit).error());
        request->limit = limit->value_or(kDefaultListLimit);
        if (request->limit == 0 || request->limit > kMaxListLimit) {
          return tl::unexpected(MakeError(400, "invalid-argument",
                                          fmt::format("`limit` must be 1 to {}", kMaxListLimit)));
        }
        if (const auto after = query->find("after"); after != query->end()) {
          request->after = after->second;
        }
      }
      return request;
    }
    if (path.starts_with(kObjects)) {
      const std::string_view rest = path.substr(kObjects.size());
      const size_t slash = rest.find('/');
      const std::string_view segment = rest.substr(0, slash);
      std::optional<Route> action;
      if (slash != std::string_view::npos) {
        action = ActionRoute(rest.substr(slash + 1));
        if (!action) {
          return tl::unexpected(NotFoundRoute(path));
        }
      }
      if (segment.empty()) {
        return tl::unexpected(NotFoundRoute(path));
      }
      auto id = DecodeSegment(segment, "object id");
      if (!id) return tl::unexpected(std::move(id).error());
      if (id->size() > kMaxObjectIdBytes) {
        return tl::unexpected(
            MakeError(400, "invalid-argument",
                      "an object id is 1 to " + std::to_string(kMaxObjectIdBytes) + " bytes"));
      }
      auto request = action ? Dispatch({std::nullopt, *action, "POST"}, method)
                            : Dispatch({Route::kGetObject, std::nullopt, "GET"}, method);
      if (!request) return request;
      request->object_id = std::move(*id);
      if (auto decoded = DecodeAction(body, *request); !decoded) {
        return tl::unexpected(std::move(decoded).error());
      }
      return request;
    }
    return tl::unexpected(NotFoundRoute(path));
  } catch (const std::exception& e) {  // only std::bad_alloc is expected here
    return tl::unexpected(MakeError(500, "internal", "internal error"));
  }
}

}  // namespace

tl::expected<ApiRequest, ApiError> DecodeApiRequest(std::string_view method,
                                                    std::string_view target,
                                                    std::string_view body) {
  auto request = DecodeRoute(method, target, body);
  if (!request || TakesQuery(request->route)) return request;
  // A route that takes no query parameter refuses any (after the route and method are known to
  // be right, so 404 and 405 come first): a client's typo is never taken for an instruction.
  try {
    auto query = DecodeQuery(target, {});
    if (!query) return tl::unexpected(std::move(query).error());
  } catch (const std::exception&) {  // std::bad_alloc
    return tl::unexpected(MakeError(500, "internal", "internal error"));
  }
  return request;
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  std::string out = R"({"error":{"code":)";
  AppendJsonString(out, code);
  out += R"(,"message":)";
  AppendJsonString(out, SanitizeUtf8(message));
  out += "}}";
  return out;
}

std::string ErrorMessage(unsigned status, std::string_view body) {
  // A partner wrote the body: it goes into log lines and the peers' status as one line.
  constexpr size_t kMaxBytes = 200;
  try {
    const auto v = ParseJson(body);
    const json::value* error = v && v->is_object() ? v->as_object().if_contains("error") : nullptr;
    if (error != nullptr && error->is_object()) {
      const json::value* code = error->as_object().if_contains("code");
      const json::value* message = error->as_object().if_contains("message");
      if (code != nullptr && code->is_string() && message != nullptr && message->is_string()) {
        std::string out(code->get_string());
        out.append(": ").append(message->get_string());
        return OneLine(out, kMaxBytes);
      }
    }
  } catch (const std::exception&) {  // allocation: the generic message below
  }
  return "HTTP " + std::to_string(status) + ": " + OneLine(body, kMaxBytes);
}

BatchAnswer ReadBatchAnswer(std::string_view line) {
  constexpr std::string_view kStatus = R"({"status":)";
  BatchAnswer a;
  if (!line.starts_with(kStatus) || line.size() == kStatus.size() || line[kStatus.size()] < '0' ||
      line[kStatus.size()] > '9') {
    return a;  // a receipt, for Node::Receive to check
  }
  a.error = true;
  a.status = 502;
  try {
    const auto v = ParseJson(line);
    const json::value* status =
        v && v->is_object() ? v->as_object().if_contains("status") : nullptr;
    if (status != nullptr && status->is_int64() && status->get_int64() >= 100 &&
        status->get_int64() < 600) {
      a.status = static_cast<unsigned>(status->get_int64());
    }
  } catch (const std::exception&) {  // allocation: a server error
  }
  a.message = ErrorMessage(a.status, line);
  return a;
}

ApiResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message) {
  ApiResponse r;
  r.status = status;
  r.body = ErrorBody(code, message);
  return r;
}

unsigned HttpStatus(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
    case Code::kOutOfRange:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kPermissionDenied:
      return 403;
    case Code::kUnimplemented:
      return 501;
    case Code::kUnavailable:
      return 503;
    case Code::kInternal:
    case Code::kDataLoss:
      return 500;
  }
  return 500;
}

// --- Api ---------------------------------------------------------------------------------------

Api::Api(Node& node, std::function<void(std::string_view)> log, FederationHooks hooks,
         PinnedKeys pinned)
    : node_(node),
      log_(std::move(log)),
      hooks_(std::move(hooks)),
      pinned_(std::move(pinned)),
      writer_(node.engine()) {}

void Api::LogRefusedCaller(std::string line) {
  if (auto admitted = refused_lines_.Admit(LineLimiter::kRefusedCaller, OneLine(line, 1000),
                                           std::chrono::steady_clock::now())) {
    log_(*admitted);
  }
}

ApiResponse Api::Handle(const Caller& caller, std::string_view method, std::string_view target,
                        std::string_view body) {
  try {
    // Authenticate first: a caller who is not in the directory learns nothing, not even which
    // routes exist.
    if (caller.node) {
      return HandleNode(caller, method, target, body);
    }
    if (!caller.users_issuer) {
      LogRefusedCaller("refused a certificate for `" + caller.common_name +
                       "`: not issued by a CA of this node's users");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    if (caller.common_name.empty() ||
        (caller.organization && *caller.organization != node_.party())) {
      LogRefusedCaller("refused a certificate for `" + caller.common_name + "` of `" +
                       caller.organization.value_or("") + "`: not of this node's party");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    auto subject = node_.Subject(caller.common_name);
    if (!subject) {
      if (subject.error().code == Code::kNotFound) {
        LogRefusedCaller("refused a certificate for `" + caller.common_name + "`: no such subject");
        return ErrorResponse(403, "permission-denied", "permission denied");
      }
      return FromError(subject.error(), "looking up the caller");
    }
    auto request = DecodeApiRequest(method, target, body);
    if (!request) {
      return FromApiError(std::move(request).error());
    }
    if (request->route == Route::kEnvelope || request->route == Route::kEnvelopes) {
      LogRefusedCaller("refused `" + caller.common_name + "` on the federation route: not a node");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    return Run(subject->id, *request);
  } catch (const std::exception& e) {
    log_(std::string("internal error: ") + ExceptionText(e));
    return ErrorResponse(500, "internal", "internal error");
  }
}

bool Api::IsEnvelopeRoute(std::string_view method, std::string_view target) {
  const std::string_view path = PathOf(target);
  return method == "POST" &&
         (path == "/v1/federation/envelopes" || path == "/v1/federation/batches");
}

bool Api::IsGrouped(std::string_view method, std::string_view target) {
  const std::string_view path = PathOf(target);
  if (method == "POST") return path == "/v1/federation/batches";
  return method == "GET" && path.size() > kObjects.size() && path.starts_with(kObjects);
}

std::vector<ApiResponse> Api::HandleGroup(std::span<const GroupedRequest> requests,
                                          size_t max_bytes) {
  // The only allocation that may throw, before anything runs (Handle does not throw, moving an
  // answer into its slot does not allocate, and neither does shrinking the vector).
  std::vector<ApiResponse> answers(requests.size());
  size_t answered = 0;
  size_t bytes = 0;
  const Status committed = node_.Group([&] {
    while (answered < requests.size() && (answered == 0 || bytes < max_bytes)) {
      const GroupedRequest& r = requests[answered];
      answers[answered] = Handle(*r.caller, r.method, r.target, r.body);
      bytes += answers[answered].body.size();
      ++answered;
    }
  });
  if (!committed) {
    // Every request, run or not, gets the error: a commit that failed before the first one ran
    // (the write lock not had, the disk gone) answers them all, so no caller waits on a retry.
    for (ApiResponse& a : answers) {
      a = FromError(committed.error(), "committing a group of requests");  // wipes the payload
    }
    return answers;
  }
  answers.resize(answered);
  return answers;
}

std::optional<ApiResponse> Api::RefuseNode(const Caller& caller) {
  try {
    // A partner's node: its certificate names its party (CN and O), whose keys this node holds.
    auto partner = node_.store().GetPartner(caller.common_name);
    if (!partner && partner.error().code != Code::kNotFound) {
      // Not a refusal: the calling node must try again, not give its envelopes up. Keys held
      // for it found damaged are this node's damage, which stops its every envelope alike.
      return FromError(AsPartnerSees(partner.error()),
                       "reading the partner `" + caller.common_name + "`");
    }
    if (caller.common_name == node_.party() || !caller.organization ||
        *caller.organization != caller.common_name || !partner) {
      LogRefusedCaller("refused a node certificate for `" + caller.common_name +
                       "`: not a known partner");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    if (const auto pin = pinned_.find(caller.common_name);
        pin != pinned_.end() && pin->second != caller.public_key) {
      LogRefusedCaller("refused a node certificate for `" + caller.common_name +
                       "`: not the key of the certificate configured for it");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    log_(std::string("internal error: ") + ExceptionText(e));
    return ErrorResponse(500, "internal", "internal error");
  }
}

ApiResponse Api::HandleNode(const Caller& caller, std::string_view method, std::string_view target,
                            std::string_view body) {
  if (auto refusal = RefuseNode(caller)) {
    return std::move(*refusal);
  }
  auto request = DecodeApiRequest(method, target, body);
  if (!request) {
    return FromApiError(std::move(request).error());
  }
  if (!IsNodeRoute(request->route)) {
    return ErrorResponse(403, "permission-denied", "permission denied");
  }
  if (request->route == Route::kEnvelope) {
    return Envelope(caller.common_name, request->envelope);
  }
  if (request->route == Route::kEnvelopes) {
    return Envelopes(caller.common_name, request->envelopes);
  }
  return Run("", *request);
}

ApiResponse Api::FromApiError(ApiError error) {
  ApiResponse r = ErrorResponse(error.status, error.code, error.message);
  r.allow = std::move(error.allow);
  return r;
}

ApiResponse Api::Run(const std::string& subject, ApiRequest& request) {
  switch (request.route) {
    case Route::kHealth:
      return Health();
    case Route::kDecide:
      return Decide(request.lines);
    case Route::kListObjects:
      return ListObjects(subject, request);
    case Route::kGetObject:
      return GetObject(subject, request.object_id);
    case Route::kCreateObject:
      return CreateObject(subject, request);
    case Route::kRelease:
    case Route::kForward:
    case Route::kConsent:
    case Route::kReclassify:
    case Route::kDestroy:
    case Route::kReport:
      return Act(subject, request);
    case Route::kAgreements:
    case Route::kAgreement:
      return Agreements(request);
    case Route::kTimeline:
      return Timeline(request);
    case Route::kFlows:
      return Flows(request);
    case Route::kCheckpoint:
      return Checkpoint();
    case Route::kLogEntries:
      return LogEntries(request);
    case Route::kLogProof:
    case Route::kLogConsistency:
      return LogProof(request);
    case Route::kLogConsistencies:
      return LogConsistencies(request);
    case Route::kOutbox:
      return Outbox();
    case Route::kPeers:
      return Peers();
    case Route::kEnvelope:
    case Route::kEnvelopes:
      break;  // HandleNode's
  }
  return ErrorResponse(500, "internal", "internal error");
}

ApiResponse Api::FromError(const Error& error, std::string_view what, LogDetails log) {
  const unsigned status = HttpStatus(error.code);
  if (auto reason = Denial(error)) {
    // The reason code only: the node's explanation may describe the object to a caller who may
    // not read it.
    return ErrorResponse(403, ReasonName(*reason), std::string(what) + " is denied");
  }
  if (IsNotOriginator(error)) {
    // Who the originator is shows in the object's listing to those who may read it, not here.
    return ErrorResponse(403, kNotOriginator, std::string(what) + " is denied");
  }
  if (status >= 500 || error.code == Code::kPermissionDenied) {
    // Details go to the log, never to the client.
    if (log == LogDetails::kYes) {
      log_(OneLine(std::string(what) + ": " + error.ToString(), 1000));  // `what` may hold an id
    }
    std::string_view message = "internal error";
    if (error.code == Code::kUnavailable) {
      message = "unavailable, try again later";
    } else if (error.code == Code::kDataLoss) {
      message = "stored data failed its integrity check";
    } else if (error.code == Code::kPermissionDenied) {
      message = "permission denied";
    } else if (error.code == Code::kUnimplemented) {
      message = "not implemented";
    }
    return ErrorResponse(status, CodeName(error.code), message);
  }
  return ErrorResponse(status, CodeName(error.code), error.message);
}

ApiResponse Api::Health() {
  // Damage found in the node's own state leaves it serving what the damage does not touch
  // (decision #186), but not healthy: a monitor learns of it here, the operator from the log.
  // The damage is said once in the log: it stays until the node restarts, and a monitor asks
  // often.
  if (auto intact = node_.CheckIntact(); !intact) {
    const LogDetails log = std::exchange(damage_said_, true) ? LogDetails::kNo : LogDetails::kYes;
    return FromError(intact.error(), "checking the node's stored state", log);
  }
  auto size = node_.DurableLogSize();
  if (!size) {
    return FromError(size.error(), "reading the log size");
  }
  json::object o;
  o["status"] = "ok";
  o["party"] = node_.party();
  o["log_size"] = *size;
  return Json(200, o);
}

ApiResponse Api::Decide(std::string_view lines) {
  ApiResponse r;
  r.content_type = kJsonLines;
  decided_.clear();
  DecideLines(lines, node_.engine(), decoder_, writer_, decided_);
  r.body = decided_;
  return r;
}

ApiResponse Api::ListObjects(const std::string& subject, const ApiRequest& request) {
  // Only what is durable is shown: an object received in a group of envelopes committed beside
  // this request but not yet synced could be gone after a crash (decision #90).
  if (auto synced = node_.SyncIfBehind(); !synced) {
    return FromError(synced.error(), "syncing the store");
  }
  auto list = node_.List(subject, request.after, request.limit);
  if (!list) {
    return FromError(list.error(), "listing the objects");
  }
  json::array objects;
  objects.reserve(list->objects.size());
  for (const ObjectSummary& s : list->objects) {
    json::object o;
    o["id"] = s.id;
    o["originator"] = s.originator;
    o["level"] = s.level;
    o["version"] = s.version;
    o["topics"] = StringArray(s.topics);
    o["compartments"] = StringArray(s.compartments);
    o["rel_to"] = StringArray(s.rel_to);
    o["received_from"] = StringOrNull(s.received_from);
    o["destroyed_at"] =
        s.destroyed_at ? json::value(FormatInstant(*s.destroyed_at)) : json::value(nullptr);
    o["payload_bytes"] = s.payload_bytes;
    o["held_by"] = StringArray(s.held_by);
    objects.emplace_back(std::move(o));
  }
  json::object out;
  out["objects"] = std::move(objects);
  out["next"] = list->next ? json::value(*list->next) : json::value(nullptr);
  return Json(200, out);
}

ApiResponse Api::GetObject(const std::string& subject, const std::string& id) {
  auto read = node_.Read(subject, id);
  if (!read) {
    return FromError(read.error(), "reading `" + id + "`");
  }
  // The answer's tree in one arena: a read's answer is the server's most frequent.
  std::array<unsigned char, 2048> first_block;
  json::monotonic_resource arena(first_block.data(), first_block.size());
  json::object o(&arena);
  o["id"] = id;
  o["reason"] = ReasonName(read->reason);
  o["agreement"] = StringOrNull(read->agreement);
  o["originator"] = read->originator;
  // The marking the reader handles the payload under: the one the agreement maps to for a
  // released copy, the object's own level for the originator's readers.
  json::object marking(&arena);
  marking["party"] = node_.party();
  marking["originator"] = read->originator;
  if (!read->marking_level.empty()) {
    marking["level"] = read->marking_level;
    marking["name"] = read->marking_name;
  } else {
    const int32_t party = node_.engine().PartyIndex(node_.party());
    const int level = party < 0 ? -1 : node_.engine().party(party).LevelIndex(read->level);
    marking["level"] = read->level;
    marking["name"] = level < 0
                          ? std::string()
                          : node_.engine().party(party).levels[static_cast<size_t>(level)].name;
  }
  o["marking"] = std::move(marking);
  o["explain"] = StringArray(read->explain);
  // The payload is appended by hand rather than through the JSON tree, so that its only copy is
  // the body's, which wipes itself (decision #61), whatever way it is dropped.
  ApiResponse r = Json(200, json::value(std::move(o)));  // a move: not a copy of the tree
  const ByteView payload = read->payload.Reveal(InsecureSecretAccess());
  constexpr std::string_view kPayloadKey = R"(,"payload_base64":")";
  r.body.pop_back();  // the closing brace
  r.body.reserve(r.body.size() + kPayloadKey.size() + (payload.size() + 2) / 3 * 4 + 2);
  r.body += kPayloadKey;
  AppendBase64(payload, r.body);  // into the body itself, which wipes itself: no other copy
  r.body += "\"}";
  return r;
}

namespace {

// The subject the node's log names (Node::set_actor) while this lives, cleared on every way out
// (an exception among them), so that no later entry names a caller that is gone.
class ActingAs {
 public:
  ActingAs(Node& node, const std::string& subject) : node_(node) { node_.set_actor(subject); }
  ~ActingAs() { node_.set_actor(""); }
  ActingAs(const ActingAs&) = delete;
  ActingAs& operator=(const ActingAs&) = delete;

 private:
  Node& node_;
};

}  // namespace

ApiResponse Api::CreateObject(const std::string& subject, ApiRequest& request) {
  auto created = [&] {
    const ActingAs acting(node_, subject);
    return node_.Create(request.object, request.payload.Reveal(InsecureSecretAccess()));
  }();
  if (!created) {
    return FromError(created.error(), "creating `" + request.object.id + "`");
  }
  json::object o;
  o["id"] = request.object.id;
  o["originator"] = node_.party();
  o["level"] = request.object.level;
  o["version"] = 1;
  return Json(201, o);
}

ApiResponse Api::Checkpoint() {
  auto checkpoint = node_.LogCheckpoint();
  if (!checkpoint) {
    return FromError(checkpoint.error(), "signing the checkpoint");
  }
  ApiResponse r;
  r.content_type = kTextPlain;
  r.body = *checkpoint;
  return r;
}

// --- actions on objects --------------------------------------------------------------------------

ApiResponse Api::Act(const std::string& subject, ApiRequest& request) {
  const std::string& id = request.object_id;
  std::string_view action;
  Result<Bytes> sent = [&]() -> Result<Bytes> {
    const ActingAs acting(node_, subject);
    switch (request.route) {
      case Route::kRelease:
        action = "release";
        return node_.Release(id, request.to);
      case Route::kForward:
        action = "forward";
        return node_.Forward(id, request.to);
      case Route::kConsent:
        action = "consent";
        return node_.Consent(id, request.to);
      case Route::kReclassify:
        action = "reclassify";
        return node_.Reclassify(id, request.level);
      case Route::kDestroy:
        action = "destroy";
        return node_.Destroy(id, request.scope);
      default:
        action = "report";
        return node_.Report(id, request.kind, request.text);
    }
  }();
  if (!sent) {
    return FromError(sent.error(), std::string(action) + " of `" + id + "`");
  }
  // Committed and queued: the federation's thread delivers it while this answer is made.
  if (!sent->empty() && hooks_.queued) hooks_.queued();
  json::object o;
  o["object"] = id;
  o["action"] = action;
  if (sent->empty()) {  // this node's own copy destroyed: nothing to send
    o["id"] = nullptr;
    o["delivery"] = "none";
    return Json(200, o);
  }
  auto info = InspectEnvelope(*sent, sent->size());
  o["id"] = info ? json::value(info->id) : json::value(nullptr);
  o["kind"] = info ? json::value(info->kind) : json::value(nullptr);
  if (!request.to.empty()) o["to"] = request.to;
  o["delivery"] = "queued";
  // A notice goes to the object's holders, who may be none (an object released to no one):
  // logged, with nothing to deliver. (Should the outbox not answer, the notice is said queued,
  // as it is whenever there are holders.) A package always goes to its `to`: not asked.
  if (info && request.route != Route::kRelease && request.route != Route::kForward) {
    auto queued_for = node_.store().QueuedFor(info->id);
    if (!queued_for) {
      log_(OneLine(std::string(action) + " of `" + id + "`: " + queued_for.error().ToString(),
                   1000));
    } else if (queued_for->empty()) {
      o["delivery"] = "none";
      return Json(200, o);
    }
  }
  return Json(202, o);
}

// --- agreements and flows --------------------------------------------------------------------

ApiResponse Api::Agreements(const ApiRequest& request) {
  const Engine& engine = node_.engine();
  const Instant at = request.at.value_or(node_.Now());
  const auto one = [&](int32_t g) -> tl::expected<json::object, ApiResponse> {
    auto status = engine.Status(g, at);
    if (!status) return tl::unexpected(FromError(status.error(), "the agreement's status"));
    return AgreementJson(engine, g, at, *status);
  };
  if (request.route == Route::kAgreement) {
    const int32_t g = engine.AgreementIndex(request.agreement_id);
    if (g < 0) {
      return ErrorResponse(404, "not-found", "no agreement `" + request.agreement_id + "`");
    }
    auto agreement = one(g);
    return agreement ? Json(200, *agreement) : agreement.error();
  }
  json::array agreements;
  for (int32_t g = 0; g < engine.agreement_count(); ++g) {
    auto agreement = one(g);
    if (!agreement) return agreement.error();
    agreements.emplace_back(std::move(*agreement));
  }
  json::object o;
  o["at"] = FormatInstant(at);
  o["agreements"] = std::move(agreements);
  return Json(200, o);
}

ApiResponse Api::Timeline(const ApiRequest& request) {
  const Engine& engine = node_.engine();
  const int32_t g = engine.AgreementIndex(request.agreement_id);
  if (g < 0) {
    return ErrorResponse(404, "not-found", "no agreement `" + request.agreement_id + "`");
  }
  const Agreement& a = engine.agreement(g);
  auto timeline = accord::Timeline(a, request.at.value_or(node_.Now()));
  if (!timeline) {
    return FromError(timeline.error(), "the agreement's timeline");
  }
  return Json(200, TimelineJson(a, *timeline));
}

ApiResponse Api::Flows(const ApiRequest& request) {
  return Json(200, FlowsJson(node_.engine(), request.at.value_or(node_.Now()), ZoneOffset{}));
}

// --- the log ---------------------------------------------------------------------------------

ApiResponse Api::LogEntries(const ApiRequest& request) {
  constexpr uint64_t kDefaultCount = 100, kMaxCount = 1000;
  auto size = node_.DurableLogSize();
  if (!size) return FromError(size.error(), "reading the log size");
  const uint64_t from = std::min(request.first, *size);
  uint64_t count = request.second_given ? request.second : kDefaultCount;
  count = std::min({count, kMaxCount, *size - from});
  std::vector<Bytes> entries;
  if (count > 0) {
    auto read = node_.LogEntries(from, count);
    if (!read) return FromError(read.error(), "reading the log");
    entries = std::move(*read);
  }
  // Entries are canonical JSON already (docs/ledger.md): embedded as they are hashed.
  ApiResponse r;
  r.body = R"({"size":)" + std::to_string(*size) + R"(,"from":)" + std::to_string(from) +
           R"(,"entries":[)";
  // At most about 4 MiB of entries, however large some are: the caller asks again from the
  // first one left out (the answer's `from` plus the entries it holds).
  constexpr size_t kMaxBodyBytes = 4 << 20;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0 && r.body.size() + entries[i].size() > kMaxBodyBytes) break;
    if (i > 0) r.body += ',';
    r.body.append(reinterpret_cast<const char*>(entries[i].data()), entries[i].size());
  }
  r.body += "]}";
  return r;
}

ApiResponse Api::LogProof(const ApiRequest& request) {
  auto size = node_.DurableLogSize();
  if (!size) return FromError(size.error(), "reading the log size");
  const uint64_t second = request.second_given ? request.second : *size;
  const bool inclusion = request.route == Route::kLogProof;
  auto proof = inclusion ? node_.LogInclusionProof(request.first, second)
                         : node_.LogConsistencyProof(request.first, second);
  if (!proof) return FromError(proof.error(), "the proof");
  json::array hashes = merkle::EncodeProof(*proof);
  json::object o;
  auto root = node_.LogRoot(second);
  if (!root) return FromError(root.error(), "the root");
  if (inclusion) {
    auto entry = node_.LogEntries(request.first, 1);
    if (!entry) return FromError(entry.error(), "the entry");
    o["index"] = request.first;
    o["size"] = second;
    o["leaf_hash"] = merkle::ToHex(merkle::LeafHash(entry->front()));
    o["root"] = merkle::ToHex(*root);
  } else {
    auto root1 = node_.LogRoot(request.first);
    if (!root1) return FromError(root1.error(), "the root");
    o["from"] = request.first;
    o["to"] = second;
    o["root1"] = merkle::ToHex(*root1);
    o["root2"] = merkle::ToHex(*root);
  }
  o["proof"] = std::move(hashes);
  return Json(200, o);
}

ApiResponse Api::LogConsistencies(const ApiRequest& request) {
  auto size = node_.DurableLogSize();
  if (!size) return FromError(size.error(), "reading the log size");
  const uint64_t to = request.second_given ? request.second : *size;
  auto root = node_.LogRoot(to);
  if (!root) return FromError(root.error(), "the root");
  merkle::ConsistencyProofs out{to, *root, {}};
  out.proofs.reserve(request.sizes.size());
  for (const uint64_t from : request.sizes) {
    auto proof = node_.LogConsistencyProof(from, to);
    if (!proof) return FromError(proof.error(), fmt::format("the proof from {}", from));
    out.proofs.push_back({from, std::move(*proof)});
  }
  ApiResponse r;
  r.body = merkle::EncodeConsistencyProofs(out);
  return r;
}

// --- federation ------------------------------------------------------------------------------

namespace {

json::value MicrosJson(int64_t us) {
  return us > 0 ? json::value(FormatInstant(Instant{us})) : json::value(nullptr);
}

}  // namespace

ApiResponse Api::Outbox() {
  constexpr size_t kMaxListed = 100;
  if (auto synced = node_.SyncIfBehind(); !synced) {  // as ListObjects
    return FromError(synced.error(), "syncing the store");
  }
  // Counted and listed without reading an envelope: the outbox keeps every one sent.
  auto counts = node_.store().CountOutbox();
  if (!counts) return FromError(counts.error(), "reading the outbox");
  auto undelivered = node_.store().ListUndelivered(kMaxListed);
  if (!undelivered) return FromError(undelivered.error(), "reading the outbox");
  json::array listed;
  for (const OutboxRecord& r : *undelivered) {
    json::object d;
    d["id"] = r.id;
    d["to"] = r.to;
    d["kind"] = r.kind;
    d["object"] = r.object_id;
    d["state"] = DeliveryStateName(r.state);
    d["attempts"] = r.attempts;
    d["last_error"] = StringOrNull(r.last_error);
    d["queued_at"] = MicrosJson(r.queued_us);
    d["next_attempt_at"] =
        r.state == DeliveryState::kPending ? MicrosJson(r.next_attempt_us) : json::value(nullptr);
    listed.emplace_back(std::move(d));
  }
  json::object totals;
  for (const OutboxTotals& n : *counts) {
    totals[n.to] =
        json::object{{"pending", n.pending}, {"delivered", n.delivered}, {"failed", n.failed}};
  }
  json::object o;
  o["totals"] = std::move(totals);
  o["undelivered"] = std::move(listed);
  return Json(200, o);
}

ApiResponse Api::Envelope(const std::string& partner, std::string_view envelope) {
  const ByteView bytes = AsBytes(envelope);
  std::optional<EnvelopeInfo> info;  // set once the envelope parsed
  auto received = node_.Receive(bytes, [&](const EnvelopeInfo& i) -> Status {
    info = i;
    if (i.signer != partner) return Fail(Code::kPermissionDenied, "signed by another node");
    return OkStatus();
  });
  if (!info) {
    return ErrorResponse(400, "invalid-argument", received.error().message);
  }
  if (info->signer != partner) {
    return ErrorResponse(403, "permission-denied",
                         "the envelope is signed by `" + info->signer + "`, not by `" + partner +
                             "`, the node calling");
  }
  // A body that does not parse has no id (Node::Receive vets it on its kind and signer).
  const std::string named =
      info->id.empty() ? "the " + info->kind : "the " + info->kind + " `" + info->id + "`";
  ApiResponse r;
  if (received) {
    if (received->receipt.empty()) {
      r.body = R"({"status":"recorded"})";
    } else {
      r.body.assign(received->receipt.begin(), received->receipt.end());
    }
    return r;
  }
  const Error& error = received.error();
  if (error.code == Code::kAlreadyExists) {
    // Delivered before (the sender did not get the answer): the same receipt again. If it
    // cannot be given now (the store, or the sync of the group that made it, failed), the
    // sender must try again later rather than take the envelope as refused.
    auto stored = node_.StoredReceipt(info->signer, info->id);
    if (stored) {
      r.body.assign(stored->begin(), stored->end());
      return r;
    }
    if (stored.error().code != Code::kNotFound) {
      return FromError(stored.error(), "the receipt for `" + info->id + "`");
    }
  }
  if (auto reason = Denial(error)) {
    // The sending node made the package and may know why its partner refused it.
    return ErrorResponse(403, ReasonName(*reason), error.message);
  }
  if (error.code == Code::kUnavailable || error.code == Code::kInternal) {
    return FromError(error, "receiving " + named);
  }
  if (IsBadSignature(error)) {
    // Its certificate authenticated the calling node: its keys changed (a new home), or the wrong
    // ones were imported. That is mended by importing its keys, and the envelope waits for it,
    // as for keys not imported yet (decision #57), rather than be given up (decision #97). A 5xx
    // also stops the rest of a batch, whose order must hold.
    log_(OneLine("cannot check " + named + " from " + partner + ": " + error.message +
                     " (import its current public keys)",
                 1000));
    return ErrorResponse(503, "unavailable",
                         error.message + " held here: it waits until the keys are imported");
  }
  log_(OneLine("refused " + named + " from " + partner + ": " + error.ToString(), 1000));
  return ErrorResponse(422, CodeName(error.code), error.message);
}

ApiResponse Api::Envelopes(const std::string& partner, const std::vector<std::string_view>& lines) {
  // Each envelope on its own, as if posted alone, in order; in the server all of them share one
  // group commit (IsGrouped), so the receipts leave together once it is durable.
  ApiResponse r;
  r.content_type = kJsonLines;
  std::optional<size_t> stopped;  // the line that could not be applied now
  for (size_t i = 0; i < lines.size(); ++i) {
    ApiResponse one = stopped
                          ? ErrorResponse(503, "unavailable",
                                          "not applied: envelope " + std::to_string(*stopped + 1) +
                                              " of the batch could not be, and the order must hold")
                          : Envelope(partner, lines[i]);
    if (one.status >= 500 && !stopped) stopped = i;
    if (one.status == 200) {
      std::string_view receipt = one.body;
      if (receipt.ends_with('\n')) receipt.remove_suffix(1);
      r.body.append(receipt);
    } else {
      // {"status":N,"error":{...}}: the error body with the status the envelope alone would get.
      r.body += R"({"status":)";
      r.body += std::to_string(one.status);
      r.body += ',';
      r.body.append(std::string_view(one.body).substr(1));
    }
    r.body += '\n';
  }
  return r;
}

ApiResponse Api::Peers() {
  json::array peers;
  if (hooks_.peers) {
    for (const PeerStatus& p : hooks_.peers()) {
      json::object o;
      o["party"] = p.party;
      o["reachable"] = p.reachable;
      o["last_error"] = StringOrNull(p.last_error);
      o["fork"] = StringOrNull(p.fork);
      o["witnessed_size"] = p.witnessed_size;
      o["unproved_checkpoints"] = p.unproved;
      o["delivered"] = p.delivered;
      o["requests"] = p.requests;
      // Seconds since its log was last witnessed, on the system clock; null before the first.
      if (p.witnessed_at_us > 0) {
        o["seconds_since_witnessed"] =
            std::max<int64_t>(0, (SystemClock().Now().micros - p.witnessed_at_us) / 1'000'000);
      } else {
        o["seconds_since_witnessed"] = nullptr;
      }
      peers.emplace_back(std::move(o));
    }
  }
  json::object o;
  o["party"] = node_.party();
  o["peers"] = std::move(peers);
  return Json(200, o);
}

}  // namespace accord::server_internal
