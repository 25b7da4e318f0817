// The HTTPS client: Beast over Asio and OpenSSL, synchronous to its caller. Each step is an
// asynchronous operation with a deadline on a private io_context, run until it completes, so
// that a peer that stops answering cannot hold the caller beyond `timeout`.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "accord/https_client.h"
#include "resolve.h"
#include "tls.h"

namespace accord {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

// A request body larger than this is announced with `Expect: 100-continue`, and each such size
// adds a second to the deadline of its upload.
constexpr size_t kAnnounceBodyBytes = 1 << 20;

// The most the read buffer holds of bytes not parsed yet. The parser takes a body's bytes as they
// arrive, so only a header, a chunk's size line or a trailer waits here; Beast bounds the first
// (8 KiB) but not the others, so without this a server could grow the buffer without end with one
// endless chunk line.
constexpr size_t kMaxUnparsedBytes = 64 << 10;

}  // namespace

struct HttpsClient::Impl {
  explicit Impl(HttpsClientOptions o) : options(std::move(o)) {}

  // Runs the io_context until the operation started before has called its handler (which sets
  // `done`). Not io.run(): the stream's deadline timer stays queued after the operation, and
  // would hold run() until it expires.
  void Wait() {
    io.restart();
    while (!done && io.run_one() > 0) {
    }
    done = false;
  }

  Status Fail(std::string_view step, const error_code& ec) {
    Close();
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    return accord::Fail(Code::kUnavailable, fmt_where() + ": " + std::string(step) + ": " + why);
  }

  std::string fmt_where() const {
    return "https://" + options.host + ":" + std::to_string(options.port);
  }

  Status Connect() {
    Close();
    error_code ec;
    const auto address = asio::ip::make_address(options.host, ec);
    const bool literal = !ec;
    std::vector<tcp::endpoint> endpoints;
    if (!literal) {  // a name: look it up, within the same deadline as each step
      auto found = server_internal::ResolveWithin(
          [host = options.host, port = options.port] {
            return server_internal::LookUp(host, port);
          },
          options.timeout);
      if (!found) {
        Close();
        return accord::Fail(Code::kUnavailable,
                            fmt_where() + ": resolve: " + found.error().message);
      }
      for (const std::string& bytes : *found) {
        tcp::endpoint endpoint;
        if (bytes.size() <= endpoint.capacity()) {
          std::memcpy(endpoint.data(), bytes.data(), bytes.size());
          endpoint.resize(bytes.size());
          endpoints.push_back(endpoint);
        }
      }
    }
    stream.emplace(io, tls);
    SSL* ssl = stream->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    // The partner's certificate must name the address or the host, in its subjectAltName: a
    // common name alone is not taken for a host name (RFC 6125 §6.4.4). A name OpenSSL cannot
    // take (an IPv6 address with a zone, say) is refused rather than left unchecked.
    X509_VERIFY_PARAM_set_hostflags(
        param, X509_VERIFY_PARAM_get_hostflags(param) | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (literal ? X509_VERIFY_PARAM_set1_ip_asc(param, options.host.c_str()) != 1
                : X509_VERIFY_PARAM_set1_host(param, options.host.c_str(), 0) != 1 ||
                      SSL_set_tlsext_host_name(ssl, options.host.c_str()) != 1) {
      ERR_clear_error();
      Close();
      return accord::Fail(Code::kInvalidArgument,
                          fmt_where() + ": cannot check a certificate against this host");
    }
    auto& socket = beast::get_lowest_layer(*stream);
    socket.expires_after(options.timeout);
    error_code result;
    if (literal) {
      socket.async_connect(tcp::endpoint(address, options.port), [&](const error_code& e) {
        result = e;
        done = true;
      });
    } else {
      socket.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) {
        result = e;
        done = true;
      });
    }
    Wait();
    if (result) return Fail("connect", result);
    socket.socket().set_option(tcp::no_delay(true), ec);
    socket.expires_after(options.timeout);
    stream->async_handshake(ssl::stream_base::client, [&](const error_code& e) {
      result = e;
      done = true;
    });
    Wait();
    if (result) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        Close();
        return accord::Fail(Code::kUnavailable, fmt_where() +
                                                    ": the server's certificate is refused: " +
                                                    X509_verify_cert_error_string(verify));
      }
      return Fail("TLS handshake", result);
    }
    socket.expires_never();
    chain_expires = server_internal::VerifiedChainExpires(ssl);
    if (!options.expect_common_name.empty()) {
      std::unique_ptr<X509, X509Deleter> cert(SSL_get1_peer_certificate(ssl));
      const auto cn = cert == nullptr ? std::nullopt
                                      : server_internal::NameEntry(
                                            X509_get_subject_name(cert.get()), NID_commonName);
      if (!cn || *cn != options.expect_common_name) {
        Close();
        return accord::Fail(Code::kUnavailable, fmt_where() + ": the server's certificate names `" +
                                                    cn.value_or("") + "`, not `" +
                                                    options.expect_common_name + "`");
      }
      // That party's node, as the server requires of a calling node (api.cc): a node
      // certificate, whose organization is its party too.
      const auto o =
          server_internal::NameEntry(X509_get_subject_name(cert.get()), NID_organizationName);
      if (!server_internal::IsNodeCertificate(cert.get()) || o != cn) {
        Close();
        return accord::Fail(Code::kUnavailable,
                            fmt_where() + ": the server's certificate for `" + *cn +
                                "` is not a node's (TLS server use, organization `" + *cn + "`)");
      }
      if (!options.expect_public_key.empty() &&
          server_internal::PublicKeyDer(cert.get()) != options.expect_public_key) {
        Close();
        return accord::Fail(Code::kUnavailable,
                            fmt_where() + ": the server's certificate for `" + *cn +
                                "` does not carry the key of the certificate configured for it");
      }
    }
    return OkStatus();
  }

  void Close() {
    if (stream) {
      error_code ignored;
      beast::get_lowest_layer(*stream).socket().close(ignored);
      stream.reset();
    }
    buffer = beast::flat_buffer(kMaxUnparsedBytes);  // and its memory freed
  }

  // Whether `e`, met on a kept-alive connection before any byte of an answer, says that the
  // server had closed it (as a server does with a connection idle too long): the request may go
  // once more on a new connection. A timeout, an answer cut off or too large, is not that.
  static bool ClosedByServer(const error_code& e) {
    return e == http::error::end_of_stream || e == asio::error::eof ||
           e == asio::error::connection_reset || e == asio::error::broken_pipe ||
           e == ssl::error::stream_truncated;
  }

  // Sends the request and reads its answer on the connection open. A failure sets
  // closed_by_server when the connection was found closed before any of the answer came.
  Result<HttpsResponse> Once(http::verb verb, std::string_view target, std::string_view body,
                             std::string_view content_type) {
    closed_by_server = false;
    http::request<http::string_body> request(verb, beast::string_view(target.data(), target.size()),
                                             11);
    request.set(http::field::host, options.host);
    if (!body.empty() || verb == http::verb::post) {
      request.set(http::field::content_type,
                  beast::string_view(content_type.data(), content_type.size()));
      request.body().assign(body.data(), body.size());
    }
    request.keep_alive(true);
    // A large body is announced first: a server that refuses it (413) says so before it is sent,
    // where it would otherwise close the connection in the middle of the upload, and the refusal
    // would never be read.
    const bool announce = body.size() > kAnnounceBodyBytes;
    if (announce) request.set(http::field::expect, "100-continue");
    request.prepare_payload();
    http::request_serializer<http::string_body> serializer(request);
    auto& socket = beast::get_lowest_layer(*stream);
    // The usual deadline, and a second more for each MiB of the body (1 MiB/s at least).
    const auto deadline = options.timeout + std::chrono::seconds(body.size() / kAnnounceBodyBytes);
    error_code result;
    const auto on_done = [&](const error_code& e, size_t) {
      result = e;
      done = true;
    };
    if (announce) {
      socket.expires_after(options.timeout);
      http::async_write_header(*stream, serializer, on_done);
      Wait();
      if (result) {
        closed_by_server = ClosedByServer(result);
        return tl::unexpected(Fail("write", result).error());
      }
      http::response_parser<http::string_body> interim;
      interim.body_limit(options.max_response_bytes);
      http::async_read(*stream, buffer, interim, on_done);
      Wait();
      if (result) {
        closed_by_server = !interim.got_some() && ClosedByServer(result);
        return tl::unexpected(Fail("read", result).error());
      }
      if (interim.get().result() != http::status::continue_) {
        // A final answer instead of 100 Continue: the body was not sent, so this connection is
        // not reused (the server may still expect it, or have closed).
        auto out = Answer(interim.get());
        Close();
        return out;
      }
    }
    socket.expires_after(deadline);
    http::async_write(*stream, serializer, on_done);
    Wait();
    if (result) {
      // Closed before the request was written whole: it was not taken (a server answers only
      // a whole request), unless the write timed out, which says nothing of the kind.
      closed_by_server = !announce && ClosedByServer(result);
      return tl::unexpected(Fail("write", result).error());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    socket.expires_after(options.timeout);
    http::async_read(*stream, buffer, parser, on_done);
    Wait();
    if (result) {
      closed_by_server = !parser.got_some() && ClosedByServer(result);
      return tl::unexpected(Fail("read", result).error());
    }
    return Answer(parser.get());
  }

  // The response read, and the connection closed unless it stays open. An interim answer (1xx)
  // where a final one was due, or bytes after the answer that no request asked for, mean the two
  // sides no longer agree on which answer is whose: the connection is not used again, so that
  // nothing is taken as the answer to a later request.
  Result<HttpsResponse> Answer(http::response<http::string_body>& response) {
    beast::get_lowest_layer(*stream).expires_never();
    if (response.result_int() < 200) {
      Close();
      return accord::Fail(Code::kUnavailable, fmt_where() + ": an interim answer (" +
                                                  std::to_string(response.result_int()) +
                                                  ") instead of a final one");
    }
    HttpsResponse out;
    out.status = response.result_int();
    out.content_type = std::string(response[http::field::content_type]);
    out.body = std::move(response.body());
    if (!response.keep_alive() || buffer.size() > 0) Close();
    return out;
  }

  HttpsClientOptions options;
  bool done = false;              // set by the handler of the operation Wait() waits for
  bool closed_by_server = false;  // the last Once failed on a connection the server had closed
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_client};
  std::optional<server_internal::RevocationListFile> crls;  // options.crl_file's
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  // When a certificate of the chain the stream's handshake verified expires (Connect).
  std::chrono::sys_seconds chain_expires = std::chrono::sys_seconds::min();
  beast::flat_buffer buffer{kMaxUnparsedBytes};
};

Result<std::unique_ptr<HttpsClient>> HttpsClient::Create(HttpsClientOptions options) {
  try {
    auto impl = std::make_unique<Impl>(std::move(options));
    ACCORD_RETURN_IF_ERROR(
        server_internal::ConfigureMutualTls(impl->tls.native_handle(), impl->options.ca_file,
                                            impl->options.cert_file, impl->options.key_file));
    if (!impl->options.crl_file.empty()) {
      impl->crls.emplace(impl->options.crl_file);
      ACCORD_RETURN_IF_ERROR(impl->crls->Read(impl->tls.native_handle()));
    }
    return std::unique_ptr<HttpsClient>(new HttpsClient(std::move(impl)));
  } catch (const std::exception& e) {
    return Fail(Code::kInternal, std::string("https client: ") + ExceptionText(e));
  }
}

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::~HttpsClient() = default;

void HttpsClient::set_port(uint16_t port) {
  if (port != impl_->options.port) {
    impl_->Close();
    impl_->options.port = port;
  }
}

void HttpsClient::Close() { impl_->Close(); }

std::string HttpsClient::RefreshRevocationLists() {
  if (!impl_->crls) return {};
  bool changed = false;
  std::string line = impl_->crls->Refresh(impl_->tls.native_handle(), &changed);
  if (changed) impl_->Close();  // the next request's handshake checks the server's certificate
  return line;
}

Result<HttpsResponse> HttpsClient::Request(std::string_view method, std::string_view target,
                                           std::string_view body, std::string_view content_type) {
  const http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == http::verb::unknown) {
    return Fail(Code::kInvalidArgument, "unknown HTTP method `" + std::string(method) + "`");
  }
  try {
    // A connection whose server certificate (or a CA above it) has expired since its handshake
    // is not used again: a new handshake says so.
    if (impl_->stream && server_internal::HasExpired(impl_->chain_expires)) impl_->Close();
    const bool reused = impl_->stream.has_value();
    if (!reused) ACCORD_RETURN_IF_ERROR(impl_->Connect());
    auto response = impl_->Once(verb, target, body, content_type);
    if (!response && reused && impl_->closed_by_server) {
      // The server had closed the kept-alive connection while it was idle: once more. (Not
      // after a timeout, an answer cut off or too large: the same request would meet the same.)
      ACCORD_RETURN_IF_ERROR(impl_->Connect());
      response = impl_->Once(verb, target, body, content_type);
    }
    return response;
  } catch (const std::exception& e) {
    impl_->Close();
    return Fail(Code::kInternal, std::string("https client: ") + ExceptionText(e));
  }
}

}  // namespace accord
