// The HTTPS transport: Boost.Beast over Asio and OpenSSL, TLS 1.3 with client certificates.
//
// This is the only translation unit that includes Beast (it costs ~26 s and ~550 MB to compile);
// everything about requests and responses is in api.cc.
//
// Three threads, each with one job:
//
//   - the io thread (the one that calls Server::Run) runs one io_context, which serves every
//     connection: TLS and HTTP;
//   - the node thread runs every request against the Api, so the Node behind it is used from
//     that thread only;
//   - the sync thread makes the object reads' log entries durable (Node::SyncCommits).
//
// Each connection is a Session:
//
//   handshake (handshake_timeout)
//   -> wait for the first byte of a request (idle_timeout)
//   -> read the header, then the body (read_timeout for both, from the first byte)
//   -> hand the request to the node thread, which answers it (through the sync thread for a read)
//   -> answer (write_timeout) -> wait again, or close with a TLS close_notify (after reading
//      and dropping the rest of a request refused before its body was read: Drain)
//
// Group commit: the node thread takes every request waiting when it looks, and runs the object
// reads among them as one group (Api::HandleGroup), one commit that does not wait for the disk.
// The sync thread then syncs once for every group committed since its last sync, and only then
// are their answers sent. While it syncs, the node thread runs the next group and the io thread
// reads the next requests. There is no timer: a lone request waits for no one.
//
// Asio and Beast report errors through error_code overloads here; the few calls that may throw
// (allocation, Asio's own invariants) are caught in Create and around io_context::run.
#include "accord/server.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "accord/secret.h"
#include "answer_budget.h"
#include "api.h"
#include "line_limiter.h"
#include "tls.h"
#include "work_queue.h"

namespace accord {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kReadChunk = 4096;
// The most of a refused request's body read and dropped (Session::Drain). The clients that send a
// body without announcing it (`Expect: 100-continue`) send at most 1 MiB so: accord's own, curl.
constexpr uint64_t kMaxDrainBytes = 16 << 20;
constexpr size_t kDrainChunk = 16 * 1024;       // a TLS record's most
constexpr std::chrono::seconds kDrainPause{2};  // nginx's lingering_timeout is 5 s
// An answer up to this size goes out as one buffer: its header and body copied together, so that
// Beast's flat_stream does not copy them into a buffer of its own that nothing wipes (it
// flattens a sequence of buffers up to 16 KiB). A larger body goes out from its own string.
constexpr size_t kOneBufferAnswer = 16 * 1024;
// A request or an answer larger than this gets a second more to move for each such size
// (TransferDeadline): 1 MiB/s at least.
constexpr uint64_t kSlowBodyBytes = 1 << 20;
constexpr uint32_t kHeaderLimit = 16 * 1024;
// The most the read buffer holds of bytes not parsed yet: a header, a pipelined request, a chunk's
// size line or a trailer (the parser takes a body's bytes as they arrive). Beast bounds a header
// by kHeaderLimit but neither of the last two, so without this a caller could grow the buffer
// without end with one endless chunk line.
constexpr size_t kMaxUnparsedBytes = kHeaderLimit + (64 << 10);
constexpr std::chrono::milliseconds kAcceptRetry{100};
constexpr std::chrono::seconds kCloseNotifyWait{1};
// How long a connection between requests may still take to end once the server stops.
constexpr std::chrono::seconds kStopGrace{1};
// How long reads wait for the answers before them to leave room (ServerOptions::max_answer_bytes)
// before they are answered 503 without being run.
constexpr std::chrono::milliseconds kAnswerRoomWait{1000};

// The deadline to move a request or an answer of `bytes`: `base`, and a second more for each
// kSlowBodyBytes, since 85 MiB (a 64 MiB payload in base64) take longer than 10 s on a slow link.
std::chrono::seconds TransferDeadline(std::chrono::seconds base, uint64_t bytes) {
  return base + std::chrono::seconds(bytes / kSlowBodyBytes);
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

bool IsHttpError(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_target).category();
}

std::string_view View(beast::string_view s) { return std::string_view(s.data(), s.size()); }

// Bytes that may hold a payload (a create's body, a read's answer): wiped when freed, including
// the blocks a growing buffer leaves behind.
using WipedBuffer = beast::basic_flat_buffer<WipingAllocator<char>>;
using RequestBody = http::basic_string_body<char, std::char_traits<char>, WipingAllocator<char>>;

// Appends `header`'s bytes, as Beast serializes them, to `out`.
void AppendHeader(http::response<http::empty_body>& header, WipedString& out) {
  http::serializer<false, http::empty_body> serializer(header);
  error_code ec;
  while (!ec && !serializer.is_done()) {
    serializer.next(ec, [&](error_code&, const auto& buffers) {
      for (const auto b : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
      }
      serializer.consume(beast::buffer_bytes(buffers));
    });
  }
}

void LogToStderr(std::string_view line) {
  std::fprintf(stderr, "accord server: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

namespace server_internal {

class Session;

// The server's state. Server::Impl is this; Session, which is not a member of Server, names it.
struct ServerCore {
  ServerCore(ServerOptions o, Node& n, server_internal::PinnedKeys pinned)
      : options(std::move(o)),
        log([this](std::string_view line) noexcept {
          try {
            std::lock_guard lock(log_mu);  // called from the io, node and sync threads
            (options.log ? options.log : LogToStderr)(line);
          } catch (...) {  // a caller's log that throws loses its line, not the server's thread
          }
        }),
        node(n),
        api(n, log, server_internal::FederationHooks{options.on_queued, options.peers},
            std::move(pinned)) {}

  void Accept();
  void OnAccept(const error_code& ec, tcp::socket socket);
  // Reads options.crl_file again if it changed since it was last read, or its last reading
  // failed; new lists end the connections whose certificates they revoke (io thread).
  void RefreshRevocationLists();
  // RefreshRevocationLists now and each second until the server stops: the lists' only pace,
  // off the path of connections and requests (io thread).
  void WatchRevocationLists();
  void DoStop();
  // A server that cannot go on accepting connections or watching its revocation lists (an
  // allocation failed while re-arming them) stops, and Run returns `why` (io thread).
  void StopFailing(std::string why);
  // StopFailing, as no accept is pending any more: `e` (an allocation) stopped its re-arming.
  void StopAccepting(const std::exception& e);

  // A request handed to the node thread. The work guard keeps io.run() from returning before
  // its answer is posted back.
  struct Job {
    std::shared_ptr<Session> session;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    bool vet = false;  // only the header is read: may its caller send a partner's body?
    server_internal::AnswerCharge charge;  // its answer's bytes until it is sent (answer_budget)
  };
  // Answers for the sync thread to send once the commits before them are durable.
  struct Unsynced {
    std::vector<Job> jobs;
    std::vector<ApiResponse> answers;
  };

  // At max_connections: closes a connection that waits, the oldest still in its handshake, else
  // the oldest reading a request over its caller's limit, else the one idle longest between
  // requests, and returns true; false when every connection has a request in flight (io thread).
  // So connections that do nothing (a flood of handshakes never finished, clients kept alive but
  // idle) cannot keep out a new client, as nginx reuses its idle keep-alive ones.
  bool ReclaimOne();
  // A request of `caller` (a Session's caller_key_) starts: true if it may, counting it; false when
  // the caller has max_requests_per_caller in flight already, and `peer` is logged (io thread).
  // So one certificate cannot hold every connection of the server with requests it never
  // finishes: a connection with a request in flight is never closed to make room.
  bool StartRequest(const std::string& caller, const std::string& peer);
  // A request StartRequest counted is answered, or its connection is gone (io thread).
  void EndRequest(const std::string& caller);
  // A body of `bytes` larger than max_body_bytes (a partner's envelopes) is to be read for
  // `caller`: true if it may, counting it; false when that caller has max_envelope_bytes of such
  // bodies in flight already, or all callers twice that, and `peer` is logged (io thread). So
  // the memory that partners' nodes can hold with bodies is bounded by the server, not by
  // max_requests_per_caller × max_envelope_bytes (decision #129).
  bool StartLargeBody(const std::string& caller, size_t bytes, const std::string& peer);
  // A body StartLargeBody counted is freed (io thread).
  void EndLargeBody(const std::string& caller, size_t bytes);
  // Hands `session`'s request to the node thread (io thread); with `vet`, its header only, for
  // Session::OnVetted.
  void Submit(std::shared_ptr<Session> session, bool vet = false);
  // The node thread's work on the requests waiting.
  void HandleJobs(std::vector<Job>& batch);
  // The sync thread's work on the answers waiting.
  void SyncAndAnswer(std::vector<Unsynced>& batch);
  // Sends `answer` to `job`'s client on the io thread.
  void PostAnswer(Job job, ApiResponse answer);
  // Logs a line that anyone able to connect can cause, within peer_lines' bounds (io thread).
  void LogPeerLine(LineLimiter::Kind kind, std::string line) {
    if (auto admitted = peer_lines.Admit(kind, std::move(line), std::chrono::steady_clock::now())) {
      log(*admitted);
    }
  }

  const ServerOptions options;
  // The bytes of answers the node thread built that are not yet sent: reads wait for room
  // before they run (HandleJobs). Declared before `sessions` and `io` so that it outlives the
  // answers (and their charges) that sessions and handlers hold.
  server_internal::AnswerBudget answer_budget{options.max_answer_bytes};
  std::mutex log_mu;
  const std::function<void(std::string_view)> log;
  Node& node;  // SyncCommits only; the rest through `api`
  Api api;     // node thread only
  // INVARIANT: the sessions alive; touched on the io thread only. Declared before `io` so that
  // it outlives the handlers (and the sessions they own) that `io` destroys.
  std::unordered_set<Session*> sessions;
  // Of `sessions`, those closed to make room for a new connection whose handlers have not run
  // yet (io thread only): they no longer count against max_connections.
  size_t reclaimed = 0;
  // The requests in flight of each caller that has one (io thread only). Declared before `io`
  // for the same reason as `sessions`: a session's destructor ends its request.
  std::unordered_map<std::string, size_t> in_flight;
  // The bytes of bodies StartLargeBody counted, of each caller that has one and of all (io
  // thread only; declared before `io` as `in_flight` is).
  std::unordered_map<std::string, size_t> large_of;
  size_t large_bytes = 0;
  const size_t max_requests_per_caller = options.max_requests_per_caller > 0
                                             ? options.max_requests_per_caller
                                             : std::max<size_t>(1, options.max_connections / 2);
  bool stopping = false;   // io thread only
  std::string failure;     // why it stopped of itself (StopFailing; io thread only)
  LineLimiter peer_lines;  // io thread only
  ssl::context tls{ssl::context::tls_server};
  // The public keys of the CAs that sign this node's users' certificates (fixed in Create).
  std::set<std::string> users_issuers;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  // options.crl_file's lists, in force in `tls` (io thread after Create); none without one.
  std::optional<server_internal::RevocationListFile> crls;
  asio::steady_timer crl_timer{io};
  // The lists' generation the connections were checked for (RefreshRevocationLists).
  uint64_t crl_sessions_checked = 0;
  uint16_t port = 0;             // fixed in Create
  WorkQueue<Job> jobs;           // io thread -> node thread
  WorkQueue<Unsynced> unsynced;  // node thread -> sync thread
};

// One connection: its TLS stream, the caller its certificate names, the request being read and
// the response being written. Owned by the handlers of its pending operation (shared_ptr).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerCore& server)
      : server_(server), stream_(std::move(socket), server.tls), buffer_(kMaxUnparsedBytes) {
    error_code ec;
    const auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    peer_ = ec ? std::string("unknown peer")
               : peer.address().to_string() + ":" + std::to_string(peer.port());
    server_.sessions.insert(this);
    if (server_.crls) crl_generation_ = server_.crls->generation();
  }
  ~Session() {
    EndRequest();
    server_.sessions.erase(this);
    if (reclaimed_) --server_.reclaimed;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start() {
    waiting_since_ = std::chrono::steady_clock::now();
    beast::get_lowest_layer(stream_).expires_after(server_.options.handshake_timeout);
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](const error_code& ec) { self->OnHandshake(ec); });
  }

  // The server is stopping: a connection between requests (or in its handshake) ends now; one
  // with a request in flight answers it first (OnWrite then closes). Ending it cancels the
  // pending operation rather than closing the socket: a read that has already completed, its
  // handler queued with a request's first bytes, still reads and answers that request, while
  // an aborted one ends the session, and its socket closes with it.
  void OnStop() {
    if (busy_) return;
    auto& socket = beast::get_lowest_layer(stream_);
    // The TLS layer may be between two of its own reads, with none pending to cancel: the next
    // one it starts times out after the grace, not the idle timeout.
    socket.expires_after(kStopGrace);
    socket.cancel();
  }

  // Whether the connection holds no request and may be closed to make room for a new one: it is
  // in its handshake, waits between requests, or reads a request over its caller's limit, which
  // will only be refused (not when it is closing anyway); whether it is in its handshake; since
  // when it waits (io thread).
  [[nodiscard]] bool Reclaimable() const {
    return (!busy_ || over_limit_) && !closed_ && !closing_;
  }
  [[nodiscard]] bool handshaking() const { return handshaking_; }
  // Whether it reads the rest of a refused body, its answer sent (Drain).
  [[nodiscard]] bool draining() const { return draining_; }
  // Whether it reads a request over its caller's limit, to refuse it (io thread).
  [[nodiscard]] bool over_limit() const { return over_limit_; }
  [[nodiscard]] std::chrono::steady_clock::time_point waiting_since() const {
    return waiting_since_;
  }

  // New revocation lists are in force: a connection whose certificate they revoke ends, at once
  // when it waits between requests; a request it is still sending is refused (403), and one
  // being handled is answered; either way the connection then closes. Whether it ends (io
  // thread). A handshake under way checks its certificate as it completes (OnHandshake); a
  // connection already checked against these lists is not checked again.
  [[nodiscard]] bool EndIfRevoked() {
    if (handshaking_ || closed_ || closing_ || revoked_) return false;
    const uint64_t generation = server_.crls->generation();
    if (crl_generation_ == generation) return false;
    const bool verifies =
        server_internal::VerifyPeerAgain(stream_.native_handle(), server_.crls->in_force()).empty();
    crl_generation_ = generation;  // checked (VerifyPeerAgain may throw: checked next time)
    if (verifies) return false;
    revoked_ = true;
    if (!busy_) Close();
    return true;
  }

  // Closes a connection that holds no request, to make room for a new one (io thread).
  void Reclaim() {
    reclaimed_ = true;
    ++server_.reclaimed;
    Close();
  }

  // The request read (node thread).
  [[nodiscard]] server_internal::GroupedRequest Grouped() const {
    const auto& request = parser_->get();
    return {&caller_, View(request.method_string()), View(request.target()), request.body()};
  }

  // Sends the answer to the request read, holding `charge` until it is written (io thread).
  void Answer(server_internal::ApiResponse response, server_internal::AnswerCharge charge) {
    charge_ = std::move(charge);
    const auto& request = parser_->get();
    const bool keep_alive = request.keep_alive() && !server_.stopping;
    Respond(std::move(response), request.version(), keep_alive,
            request.method() == http::verb::head);
  }

  // The node thread's answer to Submit(vet): the refusal of a node certificate that names no
  // partner, or none (io thread).
  void OnVetted(std::optional<server_internal::ApiResponse> refusal) {
    if (refusal) {
      // The body is left unread: the connection closes after the answer.
      Respond(std::move(*refusal), parser_->get().version(), false);
      return;
    }
    partner_ = true;
    ReadBodyAfterHeader();
  }

 private:
  // Closes the socket from outside the session's own flow (Reclaim): the pending handshake or
  // read fails with operation_aborted, never inline. A handler already queued with success
  // (Asio reads what is there when the operation starts) sees `closed_` and stops: a request read
  // then is neither run nor answered.
  void Close() {
    closed_ = true;
    beast::get_lowest_layer(stream_).close();
  }

  void OnHandshake(const error_code& ec) {
    handshaking_ = false;
    if (closed_) return;  // to make room (logged then)
    if (ec) {
      // Ended by the stop itself (cancelled, or its grace ran out): not the caller's failure. A
      // refusal that completed as the stop began (the alert sent already) is still logged.
      if (server_.stopping &&
          (ec == asio::error::operation_aborted || ec == beast::error::timeout)) {
        return;
      }
      std::string why = ec.message();
      const long verify = SSL_get_verify_result(stream_.native_handle());
      if (verify != X509_V_OK) {
        why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      server_.LogPeerLine(LineLimiter::kHandshake,
                          "tls handshake with " + peer_ + " failed: " + why);
      return;
    }
    // verify_fail_if_no_peer_cert makes the handshake fail without a verified certificate; the
    // check is repeated so that a configuration mistake cannot let an anonymous caller in.
    X509Ptr cert(SSL_get1_peer_certificate(stream_.native_handle()));
    if (cert == nullptr || SSL_get_verify_result(stream_.native_handle()) != X509_V_OK) {
      server_.LogPeerLine(LineLimiter::kHandshake,
                          "connection from " + peer_ + " has no verified certificate");
      return;
    }
    // New revocation lists came into force during the handshake, which verified the certificate
    // against those before them.
    if (server_.crls && server_.crls->generation() != crl_generation_) {
      if (std::string why =
              server_internal::VerifyPeerAgain(stream_.native_handle(), server_.crls->in_force());
          !why.empty()) {
        server_.LogPeerLine(
            LineLimiter::kHandshake,
            "tls handshake with " + peer_ + " failed: certificate refused (" + why + ")");
        return;
      }
    }
    expires_ = server_internal::VerifiedChainExpires(stream_.native_handle());
    const X509_NAME* name = X509_get_subject_name(cert.get());
    caller_.common_name = server_internal::NameEntry(name, NID_commonName).value_or("");
    caller_.organization = server_internal::NameEntry(name, NID_organizationName);
    caller_.node = server_internal::IsNodeCertificate(cert.get());
    if (caller_.node) caller_.public_key = server_internal::PublicKeyDer(cert.get());
    caller_.users_issuer = !caller_.node && server_internal::IssuedByOneOf(stream_.native_handle(),
                                                                           server_.users_issuers);
    // One string per caller for ServerCore::in_flight: node or user, the organization (its
    // length first, so that no two subjects make one string) or `*` for none, the common name. A
    // user whose certificate names this node's party and one that names none are the same
    // subject (the Api admits both), so they share one limit. A certificate of another CA that
    // names a subject of this node (which the Api refuses) has a limit of its own ("x"), so
    // that it cannot use up that subject's.
    const bool own_user = caller_.users_issuer &&
                          (!caller_.organization || *caller_.organization == server_.node.party());
    caller_key_ = own_user
                      ? "u*|" + caller_.common_name
                      : std::string(caller_.node           ? "n"
                                    : caller_.users_issuer ? "u"
                                                           : "x") +
                            (caller_.organization ? std::to_string(caller_.organization->size()) +
                                                        ":" + *caller_.organization
                                                  : std::string("*")) +
                            "|" + caller_.common_name;
    WaitForRequest();
  }

  void WaitForRequest() {
    if (server_.stopping || revoked_) {
      Shutdown();
      return;
    }
    if (buffer_.size() > 0) {  // a pipelined request is already here
      ReadHeader();
      return;
    }
    waiting_since_ = std::chrono::steady_clock::now();
    beast::get_lowest_layer(stream_).expires_after(server_.options.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnFirstBytes(ec, n); });
  }

  void OnFirstBytes(const error_code& ec, size_t n) {
    if (ec || closed_) {
      return;  // idle timeout, the client closed, the server stopped, or room was made
    }
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    busy_ = true;
    // A request is in flight from its first byte. One over the caller's limit is read only to
    // be answered 429 (OnHeader), and its connection may be closed for room meanwhile.
    if (!over_limit_ && !counted_) {
      counted_ = server_.StartRequest(caller_key_, peer_);
      over_limit_ = !counted_;
    }
    parser_.emplace();
    length_refused_ = false;
    parser_->header_limit(kHeaderLimit);
    // Until the header says which route: a partner's node may post envelopes (OnHeader).
    const ServerOptions& o = server_.options;
    body_limit_ =
        caller_.node ? std::max(o.max_body_bytes, o.max_envelope_bytes) : o.max_body_bytes;
    parser_->body_limit(static_cast<uint64_t>(body_limit_));
    // One deadline for the whole request, header and body (a large body gets more: OnHeader).
    beast::get_lowest_layer(stream_).expires_after(server_.options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const error_code& ec) {
    if (closed_) return;  // closed to make room while over its caller's limit (ReclaimOne)
    if (ec) {
      OnReadError(ec);
      return;
    }
    if (!revoked_ && server_internal::HasExpired(expires_)) {
      // Its certificate, or a CA of its chain, expired while the connection was kept open (a
      // partner's node, which asks every second or so, never lets it go idle): refused as a
      // revoked one is, and closed. A new handshake is refused for the expiry itself.
      revoked_ = true;
      server_.LogPeerLine(LineLimiter::kRefusedCaller,
                          "refused a request from " + peer_ +
                              ": the certificate of its connection has expired since the "
                              "handshake; the connection closes");
      RefuseRevoked("this connection's certificate has expired; connect again with a current one");
      return;
    }
    if (over_limit_) {
      Respond(
          server_internal::ErrorResponse(
              429, "too-many-requests",
              "this certificate's subject has " + std::to_string(server_.max_requests_per_caller) +
                  " requests in flight on other connections; try again once one is answered "
                  "(max_requests_per_caller)"),
          parser_->get().version(), false, parser_->get().method() == http::verb::head);
      return;
    }
    const ServerOptions& o = server_.options;
    body_limit_ = RouteBodyLimit();
    parser_->body_limit(static_cast<uint64_t>(body_limit_));
    const auto length = parser_->content_length();  // boost::optional
    if (length && *length > body_limit_) {
      OnReadError(http::error::body_limit);  // 413 before the body is read
      return;
    }
    if (!partner_ && body_limit_ > o.max_body_bytes && (!length || *length > o.max_body_bytes)) {
      // Only a partner's node may send a body this large. Whether the certificate names one is
      // the store's to say, on the node thread: ask before reading the body (OnVetted).
      server_.Submit(shared_from_this(), /*vet=*/true);
      return;
    }
    ReadBodyAfterHeader();
  }

  // Reads the body of the request whose header OnHeader accepted.
  void ReadBodyAfterHeader() {
    if (revoked_) {  // the body is left unread (no 100 Continue), as for a refusal
      RefuseRevoked();
      return;
    }
    const auto& request = parser_->get();
    const ServerOptions& o = server_.options;
    const auto length = parser_->content_length();
    if (body_limit_ > o.max_body_bytes && (!length || *length > o.max_body_bytes)) {
      const size_t bytes = length ? static_cast<size_t>(*length) : body_limit_;
      if (!server_.StartLargeBody(caller_key_, bytes, peer_)) {
        // The body is left unread: the connection closes after the answer, and the partner's
        // node sends the envelopes again later (503 is not a refusal of them).
        Respond(server_internal::ErrorResponse(
                    503, "unavailable",
                    "this node is reading as many large envelopes as it takes at once; "
                    "try again shortly"),
                request.version(), false);
        return;
      }
      large_ = bytes;
    }
    if (length && *length > kSlowBodyBytes) {
      beast::get_lowest_layer(stream_).expires_after(TransferDeadline(o.read_timeout, *length));
    }
    if (request.version() >= 11 && beast::iequals(request[http::field::expect], "100-continue") &&
        !parser_->is_done()) {
      continue_.emplace(http::status::continue_, request.version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](const error_code& e, size_t) {
                          self->continue_.reset();
                          if (!e) {
                            self->ReadBody();
                          }
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) {
      Handle();
      return;
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const error_code& ec, size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                       } else {
                         self->Handle();
                       }
                     });
  }

  // The body limit of the request's route: a partner's node posting envelopes gets
  // max_envelope_bytes, any other request max_body_bytes. The request line must have been read.
  [[nodiscard]] size_t RouteBodyLimit() const {
    const ServerOptions& o = server_.options;
    const auto& request = parser_->get();
    return caller_.node && o.max_envelope_bytes > 0 &&
                   Api::IsEnvelopeRoute(View(request.method_string()), View(request.target()))
               ? o.max_envelope_bytes
               : o.max_body_bytes;
  }

  void OnReadError(const error_code& ec) {
    if (ec == http::error::body_limit) {
      // Refused on the declared length while the header was read, against the larger limit a
      // node may have: the message names the route's.
      length_refused_ = true;
      body_limit_ = RouteBodyLimit();
      Respond(
          server_internal::ErrorResponse(
              413, "body-too-large", "the body exceeds " + std::to_string(body_limit_) + " bytes"),
          11, false);
    } else if (ec == http::error::header_limit) {
      Respond(server_internal::ErrorResponse(
                  431, "header-too-large",
                  "the header exceeds " + std::to_string(kHeaderLimit) + " bytes"),
              11, false);
    } else if (ec == http::error::buffer_overflow) {
      Respond(server_internal::ErrorResponse(
                  400, "invalid-argument",
                  "a line of the request (a chunk's size or a trailer) exceeds " +
                      std::to_string(kMaxUnparsedBytes) + " bytes"),
              11, false);
    } else if (IsHttpError(ec) && ec != http::error::end_of_stream &&
               ec != http::error::partial_message) {
      Respond(server_internal::ErrorResponse(400, "invalid-argument", "malformed HTTP request"), 11,
              false);
    } else if (ec == beast::error::timeout) {
      server_.LogPeerLine(LineLimiter::kSlowRequest,
                          "closed the connection from " + peer_ + ": request not read in time");
    }
    // Otherwise the client went away mid-request: nothing to answer.
  }

  // The node thread reads the request (Grouped) and posts the answer (Answer): the session is
  // not touched on the io thread meanwhile, since no operation is pending on it.
  void Handle() {
    if (revoked_) {
      RefuseRevoked();
      return;
    }
    server_.Submit(shared_from_this());
  }

  // The request of a connection whose certificate was revoked while it was sent (EndIfRevoked),
  // or expired since its handshake (OnHeader): refused with `why`, and the connection closed
  // after the answer.
  void RefuseRevoked(std::string_view why =
                         "this connection's certificate was revoked while the request was sent") {
    Respond(server_internal::ErrorResponse(403, "permission-denied", why), parser_->get().version(),
            false, parser_->get().method() == http::verb::head);
  }

  // Writes `r`; to a HEAD request, its header only (RFC 9110 §9.3.2), whose Content-Length is
  // still the body's.
  void Respond(server_internal::ApiResponse r, unsigned version, bool keep_alive,
               bool head = false) {
    busy_ = true;
    keep_alive_ = keep_alive && !revoked_;
    http::response<http::empty_body> header(static_cast<http::status>(r.status), version);
    header.set(http::field::content_type, r.content_type);
    header.set(http::field::cache_control, "no-store");
    header.set("X-Content-Type-Options", "nosniff");
    if (!r.allow.empty()) {
      header.set(http::field::allow, r.allow);
    }
    header.keep_alive(keep_alive_);
    header.content_length(r.body.size());
    wire_.clear();
    AppendHeader(header, wire_);
    body_ = std::move(r.body);
    if (head) {
      WipeBody();
    }
    beast::get_lowest_layer(stream_).expires_after(
        TransferDeadline(server_.options.write_timeout, wire_.size() + body_.size()));
    const auto write = [this](const auto& buffers) {
      asio::async_write(
          stream_, buffers,
          [self = shared_from_this()](const error_code& ec, size_t) { self->OnWrite(ec); });
    };
    if (wire_.size() + body_.size() <= kOneBufferAnswer) {
      wire_.append(body_);
      WipeBody();
      write(asio::buffer(wire_.data(), wire_.size()));  // one buffer: flat_stream copies none
    } else {
      // The header alone first (flat_stream flattens no more than 16 KiB), then the body. Not
      // a std::array: Asio's write of exactly two buffers passes the header, once written, as
      // an empty first buffer, which flat_stream then writes alone, and the write ends there.
      write(std::vector<asio::const_buffer>{asio::buffer(wire_.data(), wire_.size()),
                                            asio::buffer(body_)});
    }
  }

  // The request StartRequest counted no longer is in flight, nor its large body.
  void EndRequest() {
    if (counted_) {
      counted_ = false;
      server_.EndRequest(caller_key_);
    }
    if (large_ > 0) {
      server_.EndLargeBody(caller_key_, large_);
      large_ = 0;
    }
  }

  // A read's answer carries a payload in base64: its memory is wiped as it is freed, now.
  void WipeBody() { WipedString().swap(body_); }

  void OnWrite(const error_code& ec) {
    const uint64_t unread = UnreadBody();  // before the parser goes
    SecureWipe(wire_.data(), wire_.size());
    wire_.clear();
    WipeBody();
    charge_.Reset();
    if (parser_ && !parser_->get().body().empty()) {
      // The request's bytes are still in the read buffer, behind its read position. With
      // nothing left to read there, the whole buffer is free: wipe it. (Bytes of a pipelined
      // request keep the rest until the buffer is freed, which wipes it.)
      if (buffer_.size() == 0) {
        const auto free = buffer_.prepare(buffer_.capacity());
        SecureWipe(free.data(), free.size());
      }
    }
    parser_.reset();  // the allocator wipes the request's body
    busy_ = false;
    EndRequest();
    if (ec) {
      return;
    }
    if (!keep_alive_ || revoked_ || server_.stopping) {
      if (unread > 0 && !server_.stopping) {
        Drain(unread);
      } else {
        Shutdown();
      }
      return;
    }
    WaitForRequest();
  }

  // How much of a request answered before its body was read whole may still come: its declared
  // length (without one, the route's limit), at most kMaxDrainBytes; 0 for a request read whole,
  // and for a header that could not be read (malformed, too large: where its body ends is not
  // known). Not the parser's count: a body refused on its declared length fails the header's
  // parse (length_refused_).
  [[nodiscard]] uint64_t UnreadBody() const {
    if (!parser_ || parser_->is_done() || !(parser_->is_header_done() || length_refused_)) {
      return 0;
    }
    uint64_t declared = body_limit_;
    const auto field = parser_->get()[http::field::content_length];
    std::from_chars(field.data(), field.data() + field.size(), declared);  // unchanged on error
    return std::min(declared, kMaxDrainBytes);
  }

  // Reads and drops up to `left` bytes the client still sends of a request refused before its
  // body was read (413, 429, a 403 or 503 to a partner's large body...), then closes with a
  // close_notify (Shutdown), unless the client closes first, as it does once it has read the
  // answer; past the deadline or the pause, the socket is closed without one (Beast's timeout).
  // Closing at once, with its bytes unread, makes the kernel reset the connection: a client still
  // uploading (one that did not announce its body with `Expect: 100-continue`; a partner's node
  // sends envelopes under 1 MiB so) would lose the answer with it, and could not tell a refusal
  // from a partner it cannot reach. As long as reading the body would have taken
  // (TransferDeadline), and while the client does not pause longer than kDrainPause; the connection
  // holds no request meanwhile, so room may be made by closing it, and a stop ends it.
  void Drain(uint64_t left) {
    draining_ = true;
    waiting_since_ = std::chrono::steady_clock::now();
    // The body's bytes read already count: the buffer holds no more of the header (Beast's
    // read consumes the header it parsed, even when the body's declared length fails it).
    drain_left_ = left - std::min<uint64_t>(left, buffer_.size());
    drain_until_ = waiting_since_ + TransferDeadline(server_.options.read_timeout, left);
    DropRead();
    DrainSome();
  }

  // Wipes and drops the bytes read (they may be a payload's).
  void DropRead() {
    SecureWipe(buffer_.data().data(), buffer_.size());
    buffer_.consume(buffer_.size());
  }

  void DrainSome() {
    if (drain_left_ == 0) {
      Shutdown();
      return;
    }
    beast::get_lowest_layer(stream_).expires_at(
        std::min(drain_until_, std::chrono::steady_clock::now() + kDrainPause));
    stream_.async_read_some(
        buffer_.prepare(static_cast<size_t>(std::min<uint64_t>(kDrainChunk, drain_left_))),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnDrained(ec, n); });
  }

  void OnDrained(const error_code& ec, size_t n) {
    buffer_.commit(n);
    DropRead();
    if (ec || closed_ || server_.stopping) {
      return;  // the client closed, or the deadline passed, room was made, or the server stops
    }
    drain_left_ -= std::min<uint64_t>(n, drain_left_);
    DrainSome();
  }

  // Sends a TLS close_notify and waits briefly for the client's (RFC 8446 §6.1 does not require
  // waiting): a client that keeps the connection open cannot hold up Stop. The socket closes when
  // the last handler lets go of the session.
  void Shutdown() {
    busy_ = false;
    closing_ = true;
    beast::get_lowest_layer(stream_).expires_after(kCloseNotifyWait);
    stream_.async_shutdown([self = shared_from_this()](const error_code&) {});
  }

  ServerCore& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::string peer_;
  server_internal::Caller caller_;
  WipedBuffer buffer_;
  std::optional<http::request_parser<RequestBody>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  WipedString wire_;  // the answer's header, and its body when small (kOneBufferAnswer)
  WipedString body_;  // a larger answer's body
  server_internal::AnswerCharge charge_;  // the answer's bytes (ServerCore::answer_budget)
  size_t body_limit_ = 0;                 // the request's (ReadHeader, then OnHeader)
  bool length_refused_ = false;           // the request's declared length is over its limit
  bool draining_ = false;                 // Drain: the answer sent, the rest of the body read
  uint64_t drain_left_ = 0;               // what Drain may still read and drop, until:
  std::chrono::steady_clock::time_point drain_until_;
  bool partner_ = false;     // the node thread found the caller a partner's node (OnVetted)
  bool busy_ = false;        // a request is being read, handled or answered
  bool reclaimed_ = false;   // closed by Reclaim: counted in ServerCore::reclaimed
  bool closed_ = false;      // closed by Close
  bool closing_ = false;     // Shutdown: a close_notify is under way
  bool revoked_ = false;     // new revocation lists revoke its certificate (EndIfRevoked), or
                             // it expired (OnHeader)
  bool handshaking_ = true;  // until OnHandshake
  bool counted_ = false;     // its request is in ServerCore::in_flight (StartRequest)
  size_t large_ = 0;         // its body's bytes in ServerCore::large_of (StartLargeBody)
  bool over_limit_ = false;  // its request came over its caller's limit: answered 429, closed
  std::string caller_key_;   // caller_ as a key of ServerCore::in_flight
  bool keep_alive_ = false;
  std::chrono::steady_clock::time_point waiting_since_;  // of the handshake, the request, or Drain
  // The lists its handshake verified against (RevocationListFile::generation).
  uint64_t crl_generation_ = 0;
  // When a certificate of the chain its handshake verified expires (OnHandshake).
  std::chrono::sys_seconds expires_ = std::chrono::sys_seconds::min();
};

void ServerCore::Accept() {
  try {
    if (options.before_wait_for_testing) options.before_wait_for_testing("accept");
    acceptor.async_accept(
        io, [this](const error_code& ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
  } catch (const std::exception& e) {  // allocation: no accept is pending any more
    StopAccepting(e);
  }
}

void ServerCore::StopAccepting(const std::exception& e) {
  StopFailing(std::string("cannot accept connections any more: ") + ExceptionText(e));
}

void ServerCore::OnAccept(const error_code& ec, tcp::socket socket) {
  if (stopping || ec == asio::error::operation_aborted) {
    return;
  }
  if (ec) {
    // E.g. out of file descriptors: pause instead of spinning on the error.
    try {
      accept_retry.expires_after(kAcceptRetry);
      accept_retry.async_wait([this](const error_code& e) {
        if (!e && !stopping) {
          Accept();
        }
      });
    } catch (const std::exception& e) {  // allocation: no accept is pending any more
      StopAccepting(e);
      return;
    }
    try {
      LogPeerLine(LineLimiter::kAccept, "accept failed: " + ec.message());
    } catch (const std::exception&) {  // allocation: the line is lost, the retry is armed
    }
    return;
  }
  try {
    if (sessions.size() - reclaimed >= options.max_connections && !ReclaimOne()) {
      error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      LogPeerLine(LineLimiter::kRefused,
                  "refused a connection: " + std::to_string(sessions.size() - reclaimed) +
                      " connections open, each with a request in flight");
    } else {
      // Responses go out as soon as they are written: with Nagle's algorithm, the last segment
      // of a multi-segment response waits for the client's delayed ACK (40 ms on Linux).
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
  } catch (const std::exception& e) {  // allocation: drop this connection, keep accepting
    try {
      log(std::string("cannot start a connection: ") + ExceptionText(e));
    } catch (const std::exception&) {  // the line is lost, not the accepting
    }
  }
  Accept();
}

bool ServerCore::ReclaimOne() {
  // The oldest reading the rest of a refused body (its answer sent: it holds nothing), else the
  // oldest in its handshake, else the oldest reading a request that will only be refused (over
  // its caller's limit), else the oldest between requests: an idle client that has proved its
  // certificate goes after every connection that has not, or that only waits for a 429.
  const auto rank = [](const Session* s) {
    return std::pair(s->draining()      ? 0
                     : s->handshaking() ? 1
                     : s->over_limit()  ? 2
                                        : 3,
                     s->waiting_since());
  };
  Session* oldest = nullptr;
  for (Session* session : sessions) {
    if (!session->Reclaimable()) continue;
    if (oldest == nullptr || rank(session) < rank(oldest)) oldest = session;
  }
  if (oldest == nullptr) return false;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - oldest->waiting_since());
  std::string line = oldest->draining()
                         ? "closed a connection that had read the rest of a refused body for " +
                               std::to_string(waited.count()) + " ms"
                         : "closed a connection that had waited " + std::to_string(waited.count()) +
                               (oldest->handshaking()  ? " ms in its handshake"
                                : oldest->over_limit() ? " ms, its request over its caller's limit"
                                                       : " ms for a request");
  line += ", to make room for a new one (max_connections)";
  oldest->Reclaim();
  LogPeerLine(LineLimiter::kReclaimed, std::move(line));
  return true;
}

bool ServerCore::StartRequest(const std::string& caller, const std::string& peer) {
  size_t& n = in_flight[caller];
  if (n < max_requests_per_caller) {
    ++n;
    return true;
  }
  LogPeerLine(LineLimiter::kCallerLimit,
              "refusing a request from " + peer + " (429): its certificate's subject has " +
                  std::to_string(n) + " requests in flight (max_requests_per_caller)");
  return false;
}

void ServerCore::EndRequest(const std::string& caller) {
  const auto it = in_flight.find(caller);
  if (it != in_flight.end() && --it->second == 0) in_flight.erase(it);
}

bool ServerCore::StartLargeBody(const std::string& caller, size_t bytes, const std::string& peer) {
  const auto it = large_of.find(caller);
  const size_t of_caller = it == large_of.end() ? 0 : it->second;
  const size_t bound = options.max_envelope_bytes;
  if (of_caller + bytes <= bound && large_bytes + bytes <= 2 * bound) {
    large_of[caller] += bytes;
    large_bytes += bytes;
    return true;
  }
  LogPeerLine(LineLimiter::kCallerLimit,
              "refusing a body of " + std::to_string(bytes) + " bytes from " + peer +
                  " (503): " + std::to_string(of_caller) + " bytes of this caller's and " +
                  std::to_string(large_bytes) +
                  " in all of large bodies in flight (max_envelope_bytes, twice that in all)");
  return false;
}

void ServerCore::EndLargeBody(const std::string& caller, size_t bytes) {
  large_bytes -= bytes;
  const auto it = large_of.find(caller);
  if (it != large_of.end() && (it->second -= bytes) == 0) large_of.erase(it);
}

void ServerCore::Submit(std::shared_ptr<Session> session, bool vet) {
  jobs.Push(Job{std::move(session), asio::make_work_guard(io), vet, {}});
}

void ServerCore::HandleJobs(std::vector<Job>& batch) {
  std::vector<Job> reads, others;
  try {
    std::vector<GroupedRequest> read_requests;
    for (Job& job : batch) {
      const GroupedRequest r = job.session->Grouped();
      if (job.vet) {
        std::optional<ApiResponse> refusal = api.RefuseNode(*r.caller);
        asio::post(io, [job = std::move(job), refusal = std::move(refusal)]() mutable {
          job.session->OnVetted(std::move(refusal));
        });
      } else if (Api::IsGrouped(r.method, r.target)) {
        read_requests.push_back(r);
        reads.push_back(std::move(job));
      } else {
        others.push_back(std::move(job));
      }
    }
    // The reads in groups, each as large as the answers' room allows (AnswerBudget): a group
    // waits, up to kAnswerRoomWait, for the answers of those before it to be sent, which the
    // sync and io threads do without this one. The reads left when no room comes are not run.
    for (size_t done = 0; done < reads.size();) {
      if (!answer_budget.WaitForRoom(kAnswerRoomWait)) {
        for (; done < reads.size(); ++done) {
          PostAnswer(std::move(reads[done]),
                     ErrorResponse(503, "unavailable",
                                   "the node holds its limit of answers not yet sent "
                                   "(`max_answer_bytes`); try again later"));
        }
        break;
      }
      const std::span<const GroupedRequest> rest(read_requests.data() + done,
                                                 read_requests.size() - done);
      Unsynced group;
      group.jobs.reserve(rest.size());  // before the reads run: their entries commit with them
      std::vector<ApiResponse> group_answers = api.HandleGroup(rest, answer_budget.Room());
      for (ApiResponse& answer : group_answers) {
        group.jobs.push_back(std::move(reads[done++]));
        group.jobs.back().charge = answer_budget.Charge(answer.body.size());
      }
      group.answers = std::move(group_answers);
      unsynced.Push(std::move(group));
    }
    // The others one by one, each committed (and synced) by its own transaction, and each
    // answer sent as soon as it is ready.
    for (Job& job : others) {
      const GroupedRequest r = job.session->Grouped();
      ApiResponse answer = api.Handle(*r.caller, r.method, r.target, r.body);
      job.charge = answer_budget.Charge(answer.body.size());
      PostAnswer(std::move(job), std::move(answer));
    }
  } catch (const std::exception& e) {
    // Out of memory: the connections not yet answered are dropped, on the io thread where
    // sessions live (a moved-from job holds none).
    log(std::string("cannot answer requests: ") + ExceptionText(e));
    asio::post(io, [a = std::move(batch), b = std::move(reads), c = std::move(others)] {});
  }
}

void ServerCore::SyncAndAnswer(std::vector<Unsynced>& batch) {
  try {
    const Status synced = node.SyncCommits();
    if (!synced) {
      log("cannot make the reads' log entries durable: " + synced.error().ToString());
    }
    for (Unsynced& u : batch) {
      if (!synced) {
        for (ApiResponse& a : u.answers) {
          // Frees, and so wipes, a payload whose read is not yet logged.
          a = ErrorResponse(503, "unavailable", "unavailable, try again later");
        }
      }
      for (size_t i = 0; i < u.jobs.size(); ++i) {
        PostAnswer(std::move(u.jobs[i]), std::move(u.answers[i]));
      }
    }
  } catch (const std::exception& e) {
    // Out of memory: the answers not yet sent are dropped with their connections, on the io
    // thread, where sessions live (an answer sent left a moved-from job and body behind). Their
    // bodies wipe themselves as they are freed.
    log(std::string("cannot send answers: ") + ExceptionText(e));
    asio::post(io, [dropped = std::move(batch)] {});
  }
}

void ServerCore::PostAnswer(Job job, ApiResponse answer) {
  asio::post(io, [job = std::move(job), answer = std::move(answer)]() mutable {
    job.session->Answer(std::move(answer), std::move(job.charge));
  });
}

void ServerCore::RefreshRevocationLists() {
  if (!crls) return;
  if (const std::string line = crls->Refresh(tls.native_handle()); !line.empty()) log(line);
  // Each connection made before the lists in force is checked against them once, here; a pass
  // that failed part way (allocation) goes on at the next call.
  if (crl_sessions_checked == crls->generation()) return;
  size_t ended = 0;
  for (Session* session : sessions) ended += session->EndIfRevoked() ? 1 : 0;
  crl_sessions_checked = crls->generation();
  if (ended > 0) {
    log(
        fmt::format("revocation lists: {} connection{} made before them end{} (the certificate "
                    "no longer verifies)",
                    ended, ended == 1 ? "" : "s", ended == 1 ? "s" : ""));
  }
}

void ServerCore::WatchRevocationLists() {
  try {
    if (options.before_wait_for_testing) options.before_wait_for_testing("revocation lists");
    crl_timer.expires_after(std::chrono::seconds(1));
    crl_timer.async_wait([this](const error_code& ec) {
      if (!ec && !stopping) WatchRevocationLists();
    });
  } catch (const std::exception& e) {  // allocation: the lists would no longer be read again
    StopFailing(std::string("cannot watch the revocation lists any more: ") + ExceptionText(e));
    return;
  }
  try {
    RefreshRevocationLists();
  } catch (const std::exception& e) {  // allocation: the timer tries again in a second
    log(std::string("revocation lists: ") + ExceptionText(e));
  }
}

void ServerCore::StopFailing(std::string why) {
  if (failure.empty() && !stopping) failure = std::move(why);
  DoStop();
}

void ServerCore::DoStop() {
  if (stopping) {
    return;
  }
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  crl_timer.cancel();
  for (Session* session : sessions) {
    session->OnStop();
  }
}

}  // namespace server_internal

struct Server::Impl : server_internal::ServerCore {
  using ServerCore::ServerCore;
};

namespace {

Status ConfigureTls(ssl::context& tls, const ServerOptions& o) {
  SSL_CTX* ctx = tls.native_handle();
  ACCORD_RETURN_IF_ERROR(
      server_internal::ConfigureMutualTls(ctx, o.ca_file, o.cert_file, o.key_file));
  // No session tickets: every connection presents and verifies its certificate afresh.
  SSL_CTX_set_num_tickets(ctx, 0);
  static constexpr unsigned char kSessionContext[] = "accord";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  // Tell clients which CAs are accepted, so that one holding several certificates picks right.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str())) {
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  return OkStatus();
}

Status Listen(tcp::acceptor& acceptor, const ServerOptions& o) {
  error_code ec;
  const auto address = asio::ip::make_address(o.listen_address, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument, "bad listen address `" + o.listen_address + "`");
  }
  const tcp::endpoint endpoint(address, o.port);
  const std::string where = "`" + o.listen_address + "` port " + std::to_string(o.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Fail(Code::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options, Node& node) {
  if (options.ca_file.empty() || options.cert_file.empty() || options.key_file.empty()) {
    return Fail(Code::kInvalidArgument, "the CA, certificate and key files are required");
  }
  if (options.max_connections == 0 || options.max_body_bytes == 0 ||
      options.max_answer_bytes == 0) {
    return Fail(Code::kInvalidArgument,
                "`max_connections`, `max_body_bytes` and `max_answer_bytes` must be positive");
  }
  if (options.max_connections > kMaxConnectionsLimit) {
    return Fail(Code::kInvalidArgument,
                "`max_connections` is at most " + std::to_string(kMaxConnectionsLimit));
  }
  using std::chrono::seconds;
  for (seconds t : {options.idle_timeout, options.handshake_timeout, options.read_timeout,
                    options.write_timeout}) {
    if (t <= seconds::zero()) {
      return Fail(Code::kInvalidArgument, "timeouts must be positive");
    }
  }
  try {
    server_internal::PinnedKeys pinned;
    for (const auto& [party, file] : options.partner_certificates) {
      ACCORD_ASSIGN_OR_RETURN(pinned[party], server_internal::PartnerKeyFromFile(file, party));
    }
    auto impl = std::make_unique<Impl>(std::move(options), node, std::move(pinned));
    ACCORD_RETURN_IF_ERROR(ConfigureTls(impl->tls, impl->options));
    ACCORD_ASSIGN_OR_RETURN(
        server_internal::UsersIssuers issuers,
        server_internal::UserIssuerKeys(impl->tls.native_handle(), impl->options.user_ca_file));
    impl->users_issuers = std::move(issuers.keys);
    if (!impl->options.crl_file.empty()) {
      impl->crls.emplace(impl->options.crl_file);
      ACCORD_ASSIGN_OR_RETURN(std::string line, impl->crls->Read(impl->tls.native_handle()));
      impl->crl_sessions_checked = impl->crls->generation();  // none yet
      impl->log(line);
    }
    std::string names;
    for (const std::string& name : issuers.names) names += (names.empty() ? "" : ", ") + name;
    impl->log("users' certificates: from " + names +
              (impl->options.user_ca_file.empty() ? " (the CA of this node's certificate)"
                                                  : " (" + impl->options.user_ca_file + ")"));
    ACCORD_RETURN_IF_ERROR(Listen(impl->acceptor, impl->options));
    error_code ec;
    impl->port = impl->acceptor.local_endpoint(ec).port();
    if (ec) {
      return Fail(Code::kUnavailable, "cannot read the listening port: " + ec.message());
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  } catch (const std::exception& e) {
    return Fail(Code::kInternal, std::string("cannot create the server: ") + ExceptionText(e));
  }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() = default;

uint16_t Server::port() const { return impl_->port; }

Status Server::Run() {
  Impl& s = *impl_;
  std::thread node_thread;
  std::thread sync_thread;
  try {
    node_thread = std::thread([&s] { s.jobs.Run([&s](auto& batch) { s.HandleJobs(batch); }); });
    sync_thread =
        std::thread([&s] { s.unsynced.Run([&s](auto& batch) { s.SyncAndAnswer(batch); }); });
    asio::post(s.io, [&s] {
      s.Accept();
      if (s.crls && !s.stopping) s.WatchRevocationLists();
    });
  } catch (const std::exception& e) {  // std::system_error (no thread), std::bad_alloc
    s.jobs.Stop();
    s.unsynced.Stop();
    if (node_thread.joinable()) node_thread.join();
    if (sync_thread.joinable()) sync_thread.join();
    return Fail(Code::kUnavailable,
                std::string("cannot start the server's threads: ") + ExceptionText(e));
  }
  while (true) {
    try {
      s.io.run();
      break;
    } catch (const std::exception& e) {
      // A handler threw (allocation failure, a bug): its connection is gone; keep serving.
      s.log(std::string("a connection failed: ") + ExceptionText(e));
    } catch (...) {
      s.log("a connection failed");
    }
  }
  for (const std::string& line : s.peer_lines.Flush()) {
    s.log(line);
  }
  // io.run() returns once every connection is closed, so every request handed to the node
  // thread has been answered (the work guards).
  s.jobs.Stop();
  node_thread.join();
  for (const std::string& line : s.api.FlushLines()) {  // the node thread's, now joined
    s.log(line);
  }
  s.unsynced.Stop();
  sync_thread.join();
  if (!s.failure.empty()) return Fail(Code::kUnavailable, s.failure);
  // Nothing was pending any more (an accept lost to an exception StopFailing could not take).
  if (!s.stopping) return Fail(Code::kUnavailable, "the server stopped accepting connections");
  return OkStatus();
}

void Server::Stop() {
  Impl* s = impl_.get();
  asio::post(s->io, [s] { s->DoStop(); });
}

}  // namespace accord
