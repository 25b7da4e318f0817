// accord/server.h — one node's client API over HTTPS with mutual TLS (docs/api.md).
//
// The server speaks HTTP/1.1 with keep-alive over TLS 1.3 only, and requires a client certificate
// on every connection, verified against `ca_file`. The caller's identity is the certificate's
// common name: a subject id of this node's directory. Everything else about the caller (party,
// clearance, need-to-know, compartments) comes from the directory, never from the request. A
// certificate whose CN is not a subject of this node gets 403 on every request.
//
// Every request is bounded: the TLS handshake by `handshake_timeout`, the wait for the next
// request on a kept-alive connection by `idle_timeout`, the whole request (header and body) by
// `read_timeout` from its first byte, the response by `write_timeout`, the body by
// `max_body_bytes` (413), and the server by `max_connections` open connections (beyond it, a
// connection that waits is closed to make room: the oldest still in its handshake, else one
// reading a request over its caller's limit, else the one idle longest between requests; when
// every one has a request in flight, the new one is closed as soon as it is accepted). A
// connection with a request in flight is never closed to make room, so one caller (a
// certificate's subject, user or node) may have at most `max_requests_per_caller` requests in
// flight, from their first byte to their answer: the next one's header is read, the request
// answered `429 too-many-requests`, and its connection closed (meanwhile it may be closed to make
// room). Bodies larger than `max_body_bytes` (a partner's envelopes) are also bounded in bytes:
// at most `max_envelope_bytes` of one caller's in flight and twice that of all callers; the next
// is answered `503 unavailable` before its body is read, and its connection closed.
//
// Concurrent object reads share one commit of their log entries (group commit): a read is answered
// once its entry is durable, and the reads that arrive while one commit is written go into the
// next, with no added wait for a lone request.
//
// Thread safety: `Run` serves every connection on the thread that calls it, and runs the
// requests on a thread of its own, which it starts and joins: the `Node` is only ever used from
// that thread (a Node is not thread-safe); the caller must not use the node while `Run` is
// running. The federation hooks of ServerOptions are called from the requests' thread, and `log`
// from either thread, never from both at once. `Stop` and `port` may be called from any thread.
// `Stop` is not async-signal-safe: wire SIGTERM through a thread that waits for the signal
// (sigwait) and calls `Stop`.
#ifndef ACCORD_SERVER_H_
#define ACCORD_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accord/federation.h"
#include "accord/node.h"
#include "accord/status.h"

namespace accord {

// The most connections a server may be configured for. Each open TLS connection keeps its key
// share (32 or 64 bytes, in a block of a power of two) on OpenSSL's secure heap of
// kSecureHeapBytes (accord/harden.h), which the keys of the node's own work share: 4,096
// connections take at most a quarter of it.
inline constexpr size_t kMaxConnectionsLimit = 4096;

struct ServerOptions {
  std::string listen_address = "127.0.0.1";  // an IPv4 or IPv6 literal
  uint16_t port = 0;                         // 0: pick a free port (see Server::port)
  std::string ca_file;                       // PEM: the CAs client certificates must chain to
  // PEM: the CAs that sign this node's users' certificates, every certificate of the file (each
  // a CA that chains to ca_file); empty: the one that issued this node's own certificate. A user
  // certificate that no such CA signed itself (a partner's CA's, there for its node's
  // certificate) gets 403 on every request.
  std::string user_ca_file;
  // PEM: certificate revocation lists (X.509 CRLs), each signed by a CA of ca_file; empty: none.
  // A client certificate a list of its CA revokes is refused in the handshake; a CA with no list
  // here is not checked. Read when the server is created (every list current, or it does not
  // start) and again, at most once a second, after the file changed: new handshakes use the new
  // lists, each connection made before is checked again (one whose certificate they revoke
  // ends, after answering a request already being handled), and a file that no longer loads
  // leaves the old ones in force (logged). A list past its next update refuses every
  // certificate of its CA (fail closed).
  std::string crl_file;
  std::string cert_file;            // PEM: the server's certificate chain
  std::string key_file;             // PEM: its private key
  size_t max_body_bytes = 1 << 20;  // larger request bodies get 413
  // The same for a caller with a node certificate (a partner's envelopes); 0: max_body_bytes.
  // A partner must be able to send an envelope for the largest payload (MaxEnvelopeBytes). Also
  // the bytes of such bodies one caller may have in flight (twice that for all; see above).
  size_t max_envelope_bytes = 0;
  // The bytes of answers built and not yet sent, in all (an object read's answer holds its
  // payload in base64, so 256 clients reading 64 MiB objects would otherwise hold some 21 GiB).
  // Reads wait for room, up to a second, and are then answered 503 without being run; a group
  // of reads stops once it has used the room there was, so the answers stay under this plus
  // one answer (and the other requests' answers, which their own limits bound).
  size_t max_answer_bytes = size_t{256} << 20;
  size_t max_connections = 256;           // open connections (see above), ≤ kMaxConnectionsLimit
  size_t max_requests_per_caller = 0;     // in flight at once (see above); 0: max_connections / 2
  std::chrono::seconds idle_timeout{30};  // between requests on a kept-alive connection
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds read_timeout{10};   // one request, from its first byte to its last
  std::chrono::seconds write_timeout{10};  // one response
  // Partners' node certificates (PEM), by party: a node calling as that party must present the
  // public key of its certificate here (a CA could issue a certificate naming any party). A
  // partner not listed may present any node certificate of the CA that names it.
  std::map<std::string, std::string> partner_certificates;
  // Called after a request queued a package or notice (a release, ...): wake the federation.
  std::function<void()> on_queued;
  // The federation's view of the partners, for GET /v1/federation/peers.
  std::function<std::vector<PeerStatus>()> peers;
  // Receives one line per notable event (a refused handshake, an internal error with its
  // details). Empty: lines go to stderr. Never receives payloads or keys.
  std::function<void(std::string_view line)> log;
  // For tests: called each time the server is about to wait, for a connection ("accept")
  // or for the revocation lists' next look ("revocation lists"); an exception from it stands
  // for an allocation that failed there.
  std::function<void(std::string_view wait)> before_wait_for_testing;
};

class Server {
 public:
  // Loads the TLS material, binds and listens. `node` must outlive the server. Errors:
  // kInvalidArgument (bad options, unreadable or mismatched certificate, key or CA files) and
  // kUnavailable (the address cannot be bound).
  [[nodiscard]] static Result<std::unique_ptr<Server>> Create(ServerOptions options, Node& node);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port the server listens on (the one picked when options.port was 0).
  [[nodiscard]] uint16_t port() const;

  // Serves until `Stop` and then until the requests in flight are answered. Call once, and let it
  // return before destroying the server. Never throws: an exception from a connection's handler
  // closes that connection and is logged. Errors: kUnavailable when the server's threads cannot
  // start (nothing was served), or when it stopped of itself, as `Stop` would, because it could
  // no longer accept connections or watch its revocation lists (an allocation failed; the
  // message says which).
  [[nodiscard]] Status Run();

  // Graceful stop: stops accepting, closes idle connections, lets each request in flight finish
  // (its response carries `Connection: close`), and then `Run` returns. Returns at once; may be
  // called before `Run`, more than once, and from any thread.
  void Stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace accord

#endif  // ACCORD_SERVER_H_
