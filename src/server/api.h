// server/api.h — the client API without the transport: routing, JSON bodies, error mapping.
//
// `DecodeApiRequest` is a pure function from (method, target, body) to a request or an error with
// its HTTP status; `DecideLines` is the JSON Lines loop of `accord decide`; `Api` runs a decoded
// request against a Node as the caller its certificate names. None of this knows about sockets or
// TLS, so the fuzzer and the tests reach it without a network. The formats are in docs/api.md.
//
// Thread safety: `DecodeApiRequest` and `ErrorBody` are plain functions. An `Api` uses its Node,
// so it is used by one thread at a time.
#ifndef ACCORD_SERVER_API_H_
#define ACCORD_SERVER_API_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "accord/engine.h"
#include "accord/node.h"
#include "accord/request_json.h"
#include "accord/secret.h"
#include "accord/status.h"

namespace accord::server_internal {

enum class Route : uint8_t {
  kHealth,        // GET  /v1/health
  kDecide,        // POST /v1/decide
  kListObjects,   // GET  /v1/objects
  kGetObject,     // GET  /v1/objects/{id}
  kCreateObject,  // POST /v1/objects
  kCheckpoint,    // GET  /v1/log/checkpoint
};

struct ApiRequest {
  Route route = Route::kHealth;
  std::string object_id;   // kGetObject (percent-decoded)
  NewObject object;        // kCreateObject
  SecretBytes payload;     // kCreateObject: the decoded payload_base64
  std::string_view lines;  // kDecide: the body, a view into the `body` given to the decoder
};

// An answer: the status, a content type and the body. Errors have a JSON body
// {"error":{"code":"...","message":"..."}}.
struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // the Allow header of a 405
};

// An error before the request reaches the node: its status, stable code and message.
struct ApiError {
  unsigned status = 400;
  std::string code;
  std::string message;
  std::string allow;  // for 405: the methods the route takes
};

// Routes and decodes a request. Errors: 404 `not-found` (unknown route), 405
// `method-not-allowed`, 400 `invalid-argument` (a bad target, body JSON or field). The query
// string is ignored. Never throws.
[[nodiscard]] tl::expected<ApiRequest, ApiError> DecodeApiRequest(std::string_view method,
                                                                  std::string_view target,
                                                                  std::string_view body);

// {"error":{"code":code,"message":message}}
[[nodiscard]] std::string ErrorBody(std::string_view code, std::string_view message);
[[nodiscard]] ApiResponse ErrorResponse(unsigned status, std::string_view code,
                                        std::string_view message);

// The HTTP status for an error code (invalid-argument 400, not-found 404, ...).
[[nodiscard]] unsigned HttpStatus(Code code);

// Decides every line of `lines` (JSON Lines, blank lines skipped, a trailing '\r' dropped) and
// appends one response line per request to `out`, as `accord decide` does.
void DecideLines(std::string_view lines, const Engine& engine, RequestDecoder& decoder,
                 ResponseWriter& writer, std::string& out);

// Who is calling, from the verified client certificate.
struct Caller {
  std::string common_name;                  // the subject id
  std::optional<std::string> organization;  // when present, must be this node's party
};

class Api {
 public:
  // `log` receives internal error details, which are not sent to clients.
  Api(Node& node, std::function<void(std::string_view)> log);
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Authenticates the caller against the node's directory (403 `permission-denied` otherwise),
  // decodes the request and runs it. Never throws.
  [[nodiscard]] ApiResponse Handle(const Caller& caller, std::string_view method,
                                   std::string_view target, std::string_view body);

 private:
  ApiResponse Run(const std::string& subject, ApiRequest& request);
  ApiResponse FromError(const Error& error, std::string_view what);
  ApiResponse Health();
  ApiResponse Decide(std::string_view lines);
  ApiResponse ListObjects();
  ApiResponse GetObject(const std::string& subject, const std::string& id);
  ApiResponse CreateObject(ApiRequest& request);
  ApiResponse Checkpoint();

  Node& node_;
  const std::function<void(std::string_view)> log_;
  RequestDecoder decoder_;
  ResponseWriter writer_;
};

}  // namespace accord::server_internal

#endif  // ACCORD_SERVER_API_H_
