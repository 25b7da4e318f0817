// The client API: routing, JSON bodies and the mapping of errors to HTTP (docs/api.md).
#include "api.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <exception>
#include <utility>
#include <vector>

#include "accord/crypto.h"
#include "accord/store.h"
#include "accord/time.h"

namespace accord::server_internal {
namespace {

namespace json = boost::json;

constexpr std::string_view kJsonLines = "application/jsonl";
constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

ApiError MakeError(unsigned status, std::string code, std::string message, std::string allow = {}) {
  return ApiError{status, std::move(code), std::move(message), std::move(allow)};
}

ApiError NotFoundRoute(std::string_view path) {
  std::string message = "no route `";
  message.append(path);
  message += "`";
  return MakeError(404, "not-found", std::move(message));
}

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF) at the start of `s`, or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) {
    return 1;
  }
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) {
    return 0;
  }
  for (size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) {
      return 0;
    }
  }
  return n;
}

bool IsUtf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      return false;
    }
    s.remove_prefix(n);
  }
  return true;
}

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD, so that a
// message echoing a client's bytes is still valid JSON text.
std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
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

std::string FieldError(std::string_view field, std::string_view problem) {
  std::string message = "`";
  message.append(field);
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

// {"id","level","topics","compartments","rel_to","payload_base64"}: unknown fields are refused,
// so that a misspelt "topic" cannot create an object readable without need-to-know.
tl::expected<void, ApiError> DecodeNewObject(std::string_view body, ApiRequest& request) {
  json::parse_options options;
  options.max_depth = 8;
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec, {}, options);
  if (ec) {
    return tl::unexpected(
        MakeError(400, "invalid-argument", "the body is not valid JSON: " + ec.message()));
  }
  const json::object* o = v.if_object();
  if (o == nullptr) {
    return tl::unexpected(MakeError(400, "invalid-argument", "the body is not a JSON object"));
  }
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
        request.payload = SecretBytes::Copy(std::span<const uint8_t>(*payload));
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
  r.body = json::serialize(v);
  return r;
}

}  // namespace

tl::expected<ApiRequest, ApiError> DecodeApiRequest(std::string_view method,
                                                    std::string_view target,
                                                    std::string_view body) {
  try {
    std::string_view path = target.substr(0, target.find('?'));
    if (path.empty() || path.front() != '/') {
      return tl::unexpected(MakeError(400, "invalid-argument", "the target is not a path"));
    }
    constexpr std::string_view kObjects = "/v1/objects/";
    if (path == "/v1/health") {
      return Dispatch({Route::kHealth, std::nullopt, "GET"}, method);
    }
    if (path == "/v1/log/checkpoint") {
      return Dispatch({Route::kCheckpoint, std::nullopt, "GET"}, method);
    }
    if (path == "/v1/decide") {
      auto request = Dispatch({std::nullopt, Route::kDecide, "POST"}, method);
      if (request) {
        request->lines = body;
      }
      return request;
    }
    if (path == "/v1/objects") {
      auto request = Dispatch({Route::kListObjects, Route::kCreateObject, "GET, POST"}, method);
      if (request && request->route == Route::kCreateObject) {
        if (auto decoded = DecodeNewObject(body, *request); !decoded) {
          return tl::unexpected(std::move(decoded).error());
        }
      }
      return request;
    }
    if (path.starts_with(kObjects)) {
      const std::string_view segment = path.substr(kObjects.size());
      if (segment.empty() || segment.find('/') != std::string_view::npos) {
        return tl::unexpected(NotFoundRoute(path));
      }
      auto id = PercentDecode(segment);
      if (!id) {
        return tl::unexpected(
            MakeError(400, "invalid-argument", "bad percent-encoding in the object id"));
      }
      if (!IsUtf8(*id)) {
        return tl::unexpected(MakeError(400, "invalid-argument", "the object id is not UTF-8"));
      }
      auto request = Dispatch({Route::kGetObject, std::nullopt, "GET"}, method);
      if (request) {
        request->object_id = std::move(*id);
      }
      return request;
    }
    return tl::unexpected(NotFoundRoute(path));
  } catch (const std::exception& e) {  // only std::bad_alloc is expected here
    return tl::unexpected(MakeError(500, "internal", "internal error"));
  }
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  std::string out = R"({"error":{"code":)";
  AppendJsonString(out, code);
  out += R"(,"message":)";
  AppendJsonString(out, SanitizeUtf8(message));
  out += "}}";
  return out;
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

void DecideLines(std::string_view lines, const Engine& engine, RequestDecoder& decoder,
                 ResponseWriter& writer, std::string& out) {
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      continue;  // blank lines are skipped
    }
    auto request = decoder.Decode(line);
    if (!request) {
      writer.WriteInvalid(out, decoder.id_json(), request.error());
    } else {
      writer.Write(out, decoder.id_json(), **request, engine.Decide(**request));
    }
  }
}

// --- Api ---------------------------------------------------------------------------------------

Api::Api(Node& node, std::function<void(std::string_view)> log)
    : node_(node), log_(std::move(log)), writer_(node.engine()) {}

ApiResponse Api::Handle(const Caller& caller, std::string_view method, std::string_view target,
                        std::string_view body) {
  try {
    // Authenticate first: a caller who is not in the directory learns nothing, not even which
    // routes exist.
    if (caller.common_name.empty() ||
        (caller.organization && *caller.organization != node_.party())) {
      log_("refused a certificate for `" + caller.common_name + "` of `" +
           caller.organization.value_or("") + "`: not of this node's party");
      return ErrorResponse(403, "permission-denied", "permission denied");
    }
    auto subject = node_.store().GetSubject(caller.common_name);
    if (!subject) {
      if (subject.error().code == Code::kNotFound) {
        log_("refused a certificate for `" + caller.common_name + "`: no such subject");
        return ErrorResponse(403, "permission-denied", "permission denied");
      }
      return FromError(subject.error(), "looking up the caller");
    }
    auto request = DecodeApiRequest(method, target, body);
    if (!request) {
      ApiResponse r =
          ErrorResponse(request.error().status, request.error().code, request.error().message);
      r.allow = std::move(request.error().allow);
      return r;
    }
    return Run(subject->id, *request);
  } catch (const std::exception& e) {
    log_(std::string("internal error: ") + e.what());
    return ErrorResponse(500, "internal", "internal error");
  }
}

ApiResponse Api::Run(const std::string& subject, ApiRequest& request) {
  switch (request.route) {
    case Route::kHealth:
      return Health();
    case Route::kDecide:
      return Decide(request.lines);
    case Route::kListObjects:
      return ListObjects();
    case Route::kGetObject:
      return GetObject(subject, request.object_id);
    case Route::kCreateObject:
      return CreateObject(request);
    case Route::kCheckpoint:
      return Checkpoint();
  }
  return ErrorResponse(500, "internal", "internal error");
}

ApiResponse Api::FromError(const Error& error, std::string_view what) {
  const unsigned status = HttpStatus(error.code);
  if (auto reason = Denial(error)) {
    // The reason code only: the node's explanation may describe the object to a caller who may
    // not read it.
    return ErrorResponse(403, ReasonName(*reason), std::string(what) + " is denied");
  }
  if (status >= 500 || error.code == Code::kPermissionDenied) {
    // Details go to the log, never to the client.
    log_(std::string(what) + ": " + error.ToString());
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
  auto size = node_.LogSize();
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
  DecideLines(lines, node_.engine(), decoder_, writer_, r.body);
  return r;
}

ApiResponse Api::ListObjects() {
  auto list = node_.List();
  if (!list) {
    return FromError(list.error(), "listing the objects");
  }
  json::array objects;
  objects.reserve(list->size());
  for (const ObjectSummary& s : *list) {
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
  return Json(200, out);
}

ApiResponse Api::GetObject(const std::string& subject, const std::string& id) {
  auto read = node_.Read(subject, id);
  if (!read) {
    return FromError(read.error(), "reading `" + id + "`");
  }
  json::object o;
  o["id"] = id;
  o["reason"] = ReasonName(read->reason);
  o["agreement"] = StringOrNull(read->agreement);
  o["originator"] = read->originator;
  // The marking the reader handles the payload under: the one the agreement maps to for a
  // released copy, the object's own level for the originator's readers.
  json::object marking;
  marking["party"] = node_.party();
  marking["originator"] = read->originator;
  if (!read->marking_level.empty()) {
    marking["level"] = read->marking_level;
    marking["name"] = read->marking_name;
  } else {
    auto object = node_.store().GetObject(id);
    if (!object) {
      return FromError(object.error(), "reading `" + id + "`");
    }
    const int32_t party = node_.engine().PartyIndex(node_.party());
    const int level = party < 0 ? -1 : node_.engine().party(party).LevelIndex(object->level);
    marking["level"] = object->level;
    marking["name"] = level < 0
                          ? std::string()
                          : node_.engine().party(party).levels[static_cast<size_t>(level)].name;
  }
  o["marking"] = std::move(marking);
  o["explain"] = StringArray(read->explain);
  // The payload is appended by hand rather than through the JSON tree, so that the only copies
  // of it are the base64 text and the body, which the server wipes once written.
  ApiResponse r = Json(200, o);
  std::string encoded = Base64Encode(read->payload.Reveal(InsecureSecretAccess()));
  r.body.pop_back();  // the closing brace
  r.body += R"(,"payload_base64":")";
  r.body += encoded;
  r.body += "\"}";
  SecureWipe(encoded.data(), encoded.size());
  return r;
}

ApiResponse Api::CreateObject(ApiRequest& request) {
  auto created = node_.Create(request.object, request.payload.Reveal(InsecureSecretAccess()));
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
  r.body = std::move(*checkpoint);
  return r;
}

}  // namespace accord::server_internal
