// server/api.h — the client API without the transport: routing, JSON bodies, error mapping.
//
// `DecodeApiRequest` is a pure function from (method, target, body) to a request or an error with
// its HTTP status; `Api` runs a decoded request against a Node as the caller its certificate
// names (a decide body through `DecideLines`, accord/request_json.h, as `accord decide` does). None
// of this knows about sockets or TLS, so the fuzzer and the tests reach it without a network. The
// formats are in docs/api.md.
//
// Thread safety: `DecodeApiRequest` and `ErrorBody` are plain functions. An `Api` uses its Node,
// so it is used by one thread at a time.
#ifndef ACCORD_SERVER_API_H_
#define ACCORD_SERVER_API_H_

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/engine.h"
#include "accord/federation.h"
#include "accord/merkle.h"
#include "accord/node.h"
#include "accord/request_json.h"
#include "accord/secret.h"
#include "accord/status.h"
#include "accord/utf8.h"
#include "line_limiter.h"

namespace accord::server_internal {

enum class Route : uint8_t {
  kHealth,            // GET  /v1/health
  kDecide,            // POST /v1/decide
  kListObjects,       // GET  /v1/objects
  kGetObject,         // GET  /v1/objects/{id}
  kCreateObject,      // POST /v1/objects
  kRelease,           // POST /v1/objects/{id}/release     {"to"}
  kForward,           // POST /v1/objects/{id}/forward     {"to"}
  kConsent,           // POST /v1/objects/{id}/consent     {"to"}
  kReclassify,        // POST /v1/objects/{id}/reclassify  {"level"}
  kDestroy,           // POST /v1/objects/{id}/destroy     {"scope"}
  kReport,            // POST /v1/objects/{id}/report      {"kind","text"}
  kAgreements,        // GET  /v1/agreements[?at=]
  kAgreement,         // GET  /v1/agreements/{id}[?at=]
  kTimeline,          // GET  /v1/agreements/{id}/timeline[?at=]
  kFlows,             // GET  /v1/flows[?at=]
  kCheckpoint,        // GET  /v1/log/checkpoint
  kLogEntries,        // GET  /v1/log/entries?from=&count=
  kLogProof,          // GET  /v1/log/proof?index=&size=
  kLogConsistency,    // GET  /v1/log/consistency?from=&to=
  kOutbox,            // GET  /v1/outbox
  kEnvelope,          // POST /v1/federation/envelopes (partners' nodes only)
  kEnvelopes,         // POST /v1/federation/batches   (partners' nodes only): one per line
  kPeers,             // GET  /v1/federation/peers
  kLogConsistencies,  // POST /v1/log/consistency {"from":[...],"to"}: a proof for each size
};

// The sizes one request to POST /v1/log/consistency may name: as many proofs as one answer
// may hold.
inline constexpr size_t kMaxConsistencySizes = merkle::kMaxConsistencyProofs;

struct ApiRequest {
  Route route = Route::kHealth;
  std::string object_id;      // routes under /v1/objects/{id} (percent-decoded)
  std::string after;          // kListObjects: ?after= (percent-decoded; empty: from the first)
  uint64_t limit = 0;         // kListObjects: ?limit=
  NewObject object;           // kCreateObject
  SecretBytes payload;        // kCreateObject: the decoded payload_base64
  std::string_view lines;     // kDecide: the body, a view into the `body` given to the decoder
  std::string_view envelope;  // kEnvelope: the body
  // kEnvelopes: the body's lines, views into the `body` given to the decoder.
  std::vector<std::string_view> envelopes;
  std::string to;                               // kRelease, kForward, kConsent
  std::string level;                            // kReclassify
  DestroyScope scope = DestroyScope::kOwnCopy;  // kDestroy
  std::string kind, text;                       // kReport
  std::string agreement_id;                     // kAgreement, kTimeline
  std::optional<Instant> at;                    // ?at= (RFC 3339)
  uint64_t first = 0, second = 0;               // ?from=&count=, ?index=&size=, ?from=&to=
  bool second_given = false;                    // size / to given (default: the log's size)
  std::vector<uint64_t> sizes;                  // kLogConsistencies: "from"; "to" in second
};

// Whether `route` may be called by a partner's node (a node certificate of a partner) rather
// than by a subject of this node.
[[nodiscard]] bool IsNodeRoute(Route route);

// An answer: the status, a content type and the body. Errors have a JSON body
// {"error":{"code":"...","message":"..."}}. The body of a read carries the payload, so every
// body's memory is wiped when it is released, whichever path drops it.
struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  WipedString body;
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
// `method-not-allowed`, 400 `invalid-argument` (a bad target, query parameter, body JSON or
// field). Never throws.
[[nodiscard]] tl::expected<ApiRequest, ApiError> DecodeApiRequest(std::string_view method,
                                                                  std::string_view target,
                                                                  std::string_view body);

// {"error":{"code":code,"message":message}}
[[nodiscard]] std::string ErrorBody(std::string_view code, std::string_view message);
[[nodiscard]] ApiResponse ErrorResponse(unsigned status, std::string_view code,
                                        std::string_view message);

// "code: message" of an API error body ({"error":{...}}, with or without a "status"), or the
// status and the body's start, as OneLine of 200 bytes. Never throws.
[[nodiscard]] std::string ErrorMessage(unsigned status, std::string_view body);

// `s`, written by another party, made safe for one line of a log (accord/utf8.h).
using ::accord::OneLine;

// One line of the answer to POST /v1/federation/batches, as the sending node reads it: a
// receipt (anything not starting with {"status":<digit>), or {"status":N,"error":{...}}, whose
// status outside 100..599 reads as 502. Never throws.
struct BatchAnswer {
  bool error = false;
  unsigned status = 200;
  std::string message;  // an error's "code: message", or its status and the line's start
};
[[nodiscard]] BatchAnswer ReadBatchAnswer(std::string_view line);

// The HTTP status for an error code (invalid-argument 400, not-found 404, ...).
[[nodiscard]] unsigned HttpStatus(Code code);

// The most lines a `POST /v1/decide` body may hold, blank ones included. An answer line is up to
// about 65 times its request line (`1` is answered with a 131-byte invalid-request), so the bound
// on the body's bytes alone let 8 MiB of requests build half a gigabyte of answer on the node
// thread (decision #157); 10,000 lines answer in a few MiB.
inline constexpr size_t kMaxDecideLines = 10'000;

// Who is calling, from the verified client certificate.
struct Caller {
  std::string common_name;                  // the subject id, or a partner's party for a node
  std::optional<std::string> organization;  // when present, must be this node's party
  bool node = false;                        // a node certificate (TLS server use)
  // A user certificate (not a node's) signed by a CA of this node's users itself
  // (ServerOptions::user_ca_file); one that is not is refused.
  bool users_issuer = false;
  std::string public_key;  // of a node certificate: PublicKeyDer (tls.h)
};

// The public keys (PublicKeyDer) that partners' nodes must present, by party: the key of the
// certificate configured for each (ServerOptions::partner_certificates). A partner not listed
// may present any node certificate of the CA that names it.
using PinnedKeys = std::map<std::string, std::string, std::less<>>;

// What the Api needs from a running federation; empty functions when there is none.
struct FederationHooks {
  std::function<void()> queued;                    // something was queued: deliver
  std::function<std::vector<PeerStatus>()> peers;  // for GET /v1/federation/peers
};

// One request of a group (Api::HandleGroup); the views must outlive the call.
struct GroupedRequest {
  const Caller* caller = nullptr;
  std::string_view method, target, body;
};

class Api {
 public:
  // `log` receives internal error details, which are not sent to clients.
  Api(Node& node, std::function<void(std::string_view)> log, FederationHooks hooks = {},
      PinnedKeys pinned = {});
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Authenticates the caller, decodes the request and runs it. A user's certificate must name a
  // subject of the node's directory; a node certificate must name a partner whose public keys
  // the node holds, and may call the node routes only (IsNodeRoute). Otherwise 403
  // `permission-denied`. Never throws.
  [[nodiscard]] ApiResponse Handle(const Caller& caller, std::string_view method,
                                   std::string_view target, std::string_view body);

  // Whether the request posts a partner's envelopes (POST /v1/federation/envelopes or
  // /batches), whose bodies may be as large as ServerOptions::max_envelope_bytes.
  [[nodiscard]] static bool IsEnvelopeRoute(std::string_view method, std::string_view target);

  // Why `caller`, a node certificate, may not call this node: 403 `permission-denied` when it
  // names no partner whose keys the node holds, or presents another key than the one pinned for
  // that partner (PinnedKeys), a server error when the store cannot say (the
  // partner must then try again). None for a partner. Handle asks this of every node request;
  // the server asks it too before it reads a body larger than max_body_bytes. Never throws.
  [[nodiscard]] std::optional<ApiResponse> RefuseNode(const Caller& caller);

  // Whether a request should wait to be answered with others through HandleGroup: an object
  // read (GET /v1/objects/{id}), whose log entry must be durable before the payload leaves, so
  // that the reads of concurrent clients share one commit; and a partner's batch of envelopes
  // (POST /v1/federation/batches), whose receipts must not leave before what they acknowledge
  // is durable.
  [[nodiscard]] static bool IsGrouped(std::string_view method, std::string_view target);

  // Answers requests, in order, as Handle does, in one Node::Group (group commit): one write to
  // disk for all their log entries. Stops after the answer whose body brings the answers' bodies
  // to `max_bytes` or more, so it answers at least one request and a prefix of `requests`: the
  // returned answers are those of its first answers.size() requests. If the commit fails, every
  // request is answered, each with the commit's error, and no answer carries what was computed.
  // Throws only std::bad_alloc, before running anything.
  [[nodiscard]] std::vector<ApiResponse> HandleGroup(std::span<const GroupedRequest> requests,
                                                     size_t max_bytes = SIZE_MAX);
  // The lines left out by the limit on refused certificates' lines, to log when the server
  // stops (node thread, or once it is joined).
  [[nodiscard]] std::vector<std::string> FlushLines() { return refused_lines_.Flush(); }

 private:
  ApiResponse HandleNode(const Caller& caller, std::string_view method, std::string_view target,
                         std::string_view body);
  ApiResponse FromApiError(ApiError error);
  ApiResponse Run(const std::string& subject, ApiRequest& request);
  // Whether FromError logs the details the client is not told.
  enum class LogDetails : bool { kNo, kYes };
  // The answer to `error` met while doing `what`; the details of an error the client is not told
  // them of go to the log, with `what`, unless `log` is kNo.
  ApiResponse FromError(const Error& error, std::string_view what,
                        LogDetails log = LogDetails::kYes);
  ApiResponse Health();
  ApiResponse Decide(std::string_view lines);
  ApiResponse ListObjects(const std::string& subject, const ApiRequest& request);
  ApiResponse GetObject(const std::string& subject, const std::string& id);
  ApiResponse CreateObject(const std::string& subject, ApiRequest& request);
  ApiResponse Act(const std::string& subject, ApiRequest& request);
  ApiResponse Agreements(const ApiRequest& request);
  ApiResponse Timeline(const ApiRequest& request);
  ApiResponse Flows(const ApiRequest& request);
  ApiResponse Checkpoint();
  ApiResponse LogEntries(const ApiRequest& request);
  ApiResponse LogProof(const ApiRequest& request);
  ApiResponse LogConsistencies(const ApiRequest& request);
  ApiResponse Outbox();
  ApiResponse Envelope(const std::string& partner, std::string_view envelope);
  ApiResponse Envelopes(const std::string& partner, const std::vector<std::string_view>& lines);
  ApiResponse Peers();
  // Logs the refusal of a certificate holder (one line a request it makes), at most one a second
  // (LineLimiter), with what the certificate names escaped (OneLine).
  void LogRefusedCaller(std::string line);

  Node& node_;
  const std::function<void(std::string_view)> log_;
  LineLimiter refused_lines_;  // node thread only, as the Api
  bool damage_said_ = false;   // Health logged the node's damage (kept until it restarts)
  const FederationHooks hooks_;
  const PinnedKeys pinned_;
  RequestDecoder decoder_;
  ResponseWriter writer_;
  std::string decided_;  // Decide's lines, reused: decisions carry no payload
};

}  // namespace accord::server_internal

#endif  // ACCORD_SERVER_API_H_
