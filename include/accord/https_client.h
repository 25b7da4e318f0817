// accord/https_client.h — a small HTTPS client with mutual TLS, for nodes talking to their
// partners' nodes (federation) and for tools and tests talking to a node.
//
// TLS 1.3 only. The client presents its certificate and checks the server's: it must chain to
// `ca_file`, name `host` (an IP literal or DNS name) in its subject alternative names, and, when
// `expect_common_name` is set, carry that common name (a node's party). One connection is kept
// alive across requests and reopened when it breaks. Every step (connect, handshake, write,
// read) is bounded by `timeout`.
//
// Not for plaintext payloads: unlike the server, it does not wipe its buffers, and a response's
// body is a plain string. What federation sends (envelopes, whose payloads are sealed, receipts,
// checkpoints) carries none; a tool that creates or reads objects through it (bench/load.cc)
// leaves copies of what it sent and read in freed memory.
//
// Thread safety: an HttpsClient is used by one thread at a time.
#ifndef ACCORD_HTTPS_CLIENT_H_
#define ACCORD_HTTPS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "accord/status.h"

namespace accord {

struct HttpsClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string expect_common_name;  // empty: any certificate of the CA that names `host`
  // With expect_common_name: the DER SubjectPublicKeyInfo the partner's certificate must carry
  // (the key of the certificate configured for it); empty: any key.
  std::string expect_public_key;
  // PEM: certificate revocation lists, as ServerOptions::crl_file: a server certificate a list
  // of its CA revokes is refused in the handshake. Empty: none.
  std::string crl_file;
  std::chrono::milliseconds timeout{5000};
  size_t max_response_bytes = 64 << 20;
};

struct HttpsResponse {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

class HttpsClient {
 public:
  // Loads the TLS material; does not connect. kInvalidArgument for unusable files.
  [[nodiscard]] static Result<std::unique_ptr<HttpsClient>> Create(HttpsClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Sends one request and reads the answer, connecting first when needed. A request on a kept-
  // alive connection that the server closed meanwhile is retried once on a new connection, so
  // requests should be idempotent or carry an idempotency key. kUnavailable when the server
  // cannot be reached, the handshake fails or a step times out (the message says which).
  [[nodiscard]] Result<HttpsResponse> Request(std::string_view method, std::string_view target,
                                              std::string_view body = {},
                                              std::string_view content_type = "application/json");

  // Changes the port for the next connection (a partner restarted on another port).
  void set_port(uint16_t port);
  // Closes the connection, if any.
  void Close();
  // With options.crl_file: reads it again when it changed since it was last read or that
  // reading failed (a stat(2) each call: call it once a second or so). New lists, or a list in
  // force that has expired, close the connection, so that the next handshake checks the server's
  // certificate against them. The line to log, empty when there is none: what the new lists
  // hold, why the file cannot be used (once per error; the lists read before stay in force), or
  // which list expired (once).
  [[nodiscard]] std::string RefreshRevocationLists();

 private:
  struct Impl;
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace accord

#endif  // ACCORD_HTTPS_CLIENT_H_
