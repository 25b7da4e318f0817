// accord_load: concurrent HTTPS clients with mutual TLS and keep-alive against one node (or any
// HTTPS server), each on its own connection, reporting requests per second and latency
// percentiles per kind of request. Used by the load test (tests/cli/load_test.sh: 8 clients ×
// 10,000 mixed requests, no error allowed) and by bench/api_bench.sh (against nginx).
//
//   accord_load --port P --ca CA --cert CERT --key KEY [--host 127.0.0.1] [--clients 8]
//               [--requests 10000] [--threads T]
//               (--mix | --get PATH | --decide N | --read ID | --release TO)
//
//   --mix         reads, decisions, health, checkpoints, creates and releases to --to (default
//                 JPN), on objects each client creates (KOR's policy: level II, dprk-missile)
//   --get PATH    GET PATH only (a static file on nginx)
//   --read ID     GET /v1/objects/ID only
//   --decide N    POST /v1/decide with batches of N requests only
//   --release TO  create then release to TO, alternately (releases counted)
//
// By default each client is a thread of its own, making blocking requests. With --threads T (for
// --get, --read and --decide), the clients are event-driven connections shared among T threads,
// each running one Asio loop, as wrk does: on a machine with few cores, 32 blocking client
// threads crowd out the server's threads whenever their answers arrive together, and the server
// under test then waits for the CPU rather than for its own work.
//
// Prints one line per kind: count, errors, p50/p90/p99 in µs; then the total rate. Exit 1 if
// any request failed or got an unexpected status.
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "accord/crypto.h"
#include "accord/https_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  std::string kind;
  int64_t micros;
  bool ok;
};

struct Options {
  accord::HttpsClientOptions client;
  int clients = 8;
  int requests = 10000;
  bool mix = false;
  std::string get, read, release_to, to = "JPN";
  int decide = 0;
  int pause_ms = 0;  // between a client's requests (an open rate rather than as fast as possible)
  int threads = 0;   // 0: a blocking thread per client; otherwise event-driven (RunEvented)
};

std::string DecideBatch(int n, int client) {
  std::string body;
  for (int i = 0; i < n; ++i) {
    body += fmt::format(
        R"({{"id":"c{}-{}","action":"release","at":"2018-05-14T10:00:00+09:00","object":)"
        R"({{"id":"k-{}","originator":"KOR","level":"II","topics":["dprk-missile"],)"
        R"("compartments":[],"rel_to":["JPN","USA"]}},"to":"{}"}})"
        "\n",
        client, i, i, i % 2 == 0 ? "JPN" : "USA");
  }
  return body;
}

std::string NewObject(const std::string& id) {
  return fmt::format(R"({{"id":"{}","level":"II","topics":["dprk-missile"],"rel_to":["JPN","USA"],)"
                     R"("payload_base64":"{}"}})",
                     id, accord::Base64Encode(accord::AsBytes("load test payload " + id)));
}

// The request a client repeats with --get, --read or --decide; nullopt for --mix and --release.
struct Repeated {
  std::string kind, method, target, body;
};
std::optional<Repeated> RepeatedRequest(const Options& o, int client) {
  if (!o.get.empty()) return Repeated{"get", "GET", o.get, ""};
  if (!o.read.empty()) return Repeated{"read", "GET", "/v1/objects/" + o.read, ""};
  if (o.decide > 0) return Repeated{"decide", "POST", "/v1/decide", DecideBatch(o.decide, client)};
  return std::nullopt;
}

// One client's run.
void Run(const Options& o, int index, std::vector<Sample>& out, std::atomic<int>& releases) {
  auto client = accord::HttpsClient::Create(o.client);
  if (!client) {
    fmt::print(stderr, "client {}: {}\n", index, client.error().message);
    out.push_back({"setup", 0, false});
    return;
  }
  const auto timed = [&](std::string kind, std::string_view method, const std::string& target,
                         std::string_view body, unsigned expect) {
    const auto start = Clock::now();
    auto r = (*client)->Request(method, target, body);
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    const bool ok = r && r->status == expect;
    if (!ok) {
      fmt::print(
          stderr, "client {}: {} {}: {}\n", index, method, target,
          r ? fmt::format("HTTP {}: {}", r->status, r->body.substr(0, 200)) : r.error().message);
    }
    out.push_back({std::move(kind), us, ok});
    return ok;
  };
  const std::string prefix =
      fmt::format("load-{}-{}", index, Clock::now().time_since_epoch().count());
  const std::string base = prefix + "-base";
  const std::string batch = DecideBatch(10, index);  // --mix's decisions
  const std::optional<Repeated> repeated = RepeatedRequest(o, index);
  if (o.mix && !timed("create", "POST", "/v1/objects", NewObject(base), 201)) return;
  int created = 0, released = 0;
  for (int i = 0; i < o.requests; ++i) {
    if (o.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.pause_ms));
    if (repeated) {
      timed(repeated->kind, repeated->method, repeated->target, repeated->body, 200);
    } else if (!o.release_to.empty()) {
      if (created == released) {
        if (timed("create", "POST", "/v1/objects", NewObject(fmt::format("{}-{}", prefix, created)),
                  201)) {
          ++created;
        }
      } else {
        const std::string target = fmt::format("/v1/objects/{}-{}/release", prefix, released++);
        if (timed("release", "POST", target, fmt::format(R"({{"to":"{}"}})", o.release_to), 202)) {
          releases.fetch_add(1);
        }
      }
    } else {  // the mix
      switch (i % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
          timed("read", "GET", "/v1/objects/" + base, {}, 200);
          break;
        case 4:
        case 5:
          timed("decide", "POST", "/v1/decide", batch, 200);
          break;
        case 6:
          timed(i % 20 == 6 ? "health" : "checkpoint", "GET",
                i % 20 == 6 ? "/v1/health" : "/v1/log/checkpoint", {}, 200);
          break;
        case 7:
          timed("list-agreements", "GET", "/v1/agreements", {}, 200);
          break;
        case 8:
          if (timed("create", "POST", "/v1/objects",
                    NewObject(fmt::format("{}-{}", prefix, created)), 201)) {
            ++created;
          }
          break;
        default:
          if (released < created) {
            const std::string target = fmt::format("/v1/objects/{}-{}/release", prefix, released++);
            if (timed("release", "POST", target, fmt::format(R"({{"to":"{}"}})", o.to), 202)) {
              releases.fetch_add(1);
            }
          }
          break;
      }
    }
  }
}

// --- event-driven clients (--threads) ------------------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// One keep-alive connection making `left` requests one after another, each timed from the start
// of its write to the end of its answer.
class EventedClient : public std::enable_shared_from_this<EventedClient> {
 public:
  EventedClient(asio::io_context& io, ssl::context& tls, const Options& o, int index,
                const Repeated& repeated, std::vector<Sample>& out)
      : o_(o), index_(index), out_(out), stream_(io, tls), kind_(repeated.kind), left_(o.requests) {
    request_.method(http::string_to_verb(repeated.method));
    request_.target(repeated.target);
    request_.version(11);
    request_.set(http::field::host, o.client.host);
    request_.keep_alive(true);
    if (!repeated.body.empty()) {
      request_.set(http::field::content_type, "application/json");
      request_.body() = repeated.body;
    }
    request_.prepare_payload();
  }

  void Start(const asio::ip::address& address) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream_.native_handle()), o_.client.host.c_str());
    const tcp::endpoint at(address, o_.client.port);
    beast::get_lowest_layer(stream_).expires_after(o_.client.timeout);
    beast::get_lowest_layer(stream_).async_connect(
        at, [self = shared_from_this()](const error_code& ec) { self->OnConnect(ec); });
  }

 private:
  void OnConnect(const error_code& ec) {
    if (ec) return Fail("setup", "connect: " + ec.message());
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(stream_).expires_after(o_.client.timeout);
    stream_.async_handshake(ssl::stream_base::client,
                            [self = shared_from_this()](const error_code& e) {
                              if (e) return self->Fail("setup", "TLS handshake: " + e.message());
                              self->Send();
                            });
  }

  void Send() {
    auto& socket = beast::get_lowest_layer(stream_);
    if (left_ <= 0) {
      error_code ignored;
      socket.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    --left_;
    start_ = Clock::now();
    socket.expires_after(o_.client.timeout);  // the write and the answer's read together
    http::async_write(stream_, request_, [self = shared_from_this()](const error_code& ec, size_t) {
      if (ec) return self->Fail(self->kind_, "write: " + ec.message(), self->Elapsed());
      self->response_ = {};
      http::async_read(self->stream_, self->buffer_, self->response_,
                       [self](const error_code& e, size_t) { self->OnRead(e); });
    });
  }

  void OnRead(const error_code& ec) {
    if (ec) return Fail(kind_, "read: " + ec.message(), Elapsed());
    const bool ok = response_.result_int() == 200;
    if (!ok) {
      fmt::print(stderr, "client {}: HTTP {}: {}\n", index_, response_.result_int(),
                 response_.body().substr(0, 200));
    }
    out_.push_back({kind_, Elapsed(), ok});
    if (!response_.keep_alive() && left_ > 0) {
      return Fail("setup", "the server closed the connection");
    }
    Send();
  }

  int64_t Elapsed() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  }

  // The connection is given up: its remaining requests are not made, and the run fails.
  void Fail(const std::string& kind, const std::string& why, int64_t micros = 0) {
    fmt::print(stderr, "client {}: {}; {} requests not made\n", index_, why, left_);
    out_.push_back({kind, micros, false});
  }

  const Options& o_;
  const int index_;
  std::vector<Sample>& out_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  beast::flat_buffer buffer_;
  std::string kind_;
  int left_;
  Clock::time_point start_;
};

// The clients spread over `o.threads` threads, each with an io_context of its own.
bool RunEvented(const Options& o, std::vector<std::vector<Sample>>& samples) {
  ssl::context tls(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_3_VERSION);
  error_code ec;
  tls.load_verify_file(o.client.ca_file, ec);
  if (!ec) tls.use_certificate_chain_file(o.client.cert_file, ec);
  if (!ec) tls.use_private_key_file(o.client.key_file, ssl::context::pem, ec);
  if (ec) {
    fmt::print(stderr, "accord_load: cannot load the TLS files: {}\n", ec.message());
    return false;
  }
  tls.set_verify_mode(ssl::verify_peer);
  const auto address = asio::ip::make_address(o.client.host, ec);
  if (ec) {
    fmt::print(stderr, "accord_load: --threads needs --host to be an IP address, not `{}`\n",
               o.client.host);
    return false;
  }
  std::vector<std::unique_ptr<asio::io_context>> loops;
  for (int t = 0; t < o.threads; ++t) loops.push_back(std::make_unique<asio::io_context>(1));
  for (int i = 0; i < o.clients; ++i) {
    std::make_shared<EventedClient>(*loops[static_cast<size_t>(i % o.threads)], tls, o, i,
                                    *RepeatedRequest(o, i), samples[static_cast<size_t>(i)])
        ->Start(address);
  }
  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([&loop] { loop->run(); });
  for (auto& t : threads) t.join();
  return true;
}

int64_t Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("accord_load: concurrent mutual-TLS HTTPS clients against a node");
  app.add_option("--host", o.client.host, "Server address");
  app.add_option("--port", o.client.port, "Server port")->required();
  app.add_option("--ca", o.client.ca_file, "CA file")->required();
  app.add_option("--cert", o.client.cert_file, "Client certificate")->required();
  app.add_option("--key", o.client.key_file, "Client key")->required();
  app.add_option("--clients", o.clients, "Concurrent clients (default 8)");
  app.add_option("--requests", o.requests, "Requests per client (default 10000)");
  app.add_flag("--mix", o.mix, "Mixed API requests");
  app.add_option("--to", o.to, "--mix: the party releases go to (default JPN)");
  app.add_option("--get", o.get, "GET this path only");
  app.add_option("--read", o.read, "GET /v1/objects/ID only");
  app.add_option("--decide", o.decide, "POST /v1/decide with batches of N only");
  app.add_option("--release", o.release_to, "Create and release to this party, alternately");
  app.add_option("--pause-ms", o.pause_ms, "Pause between a client's requests (default 0)");
  app.add_option("--threads", o.threads,
                 "Event-driven clients on this many threads (--get, --read, --decide; default 0: "
                 "a blocking thread per client)");
  CLI11_PARSE(app, argc, argv);
  if (!o.mix && o.get.empty() && o.read.empty() && o.decide == 0 && o.release_to.empty()) {
    fmt::print(stderr, "accord_load: choose --mix, --get, --read, --decide or --release\n");
    return 2;
  }
  if (o.clients <= 0 || o.requests < 0) {
    fmt::print(stderr, "accord_load: --clients must be positive and --requests not negative\n");
    return 2;
  }
  if (o.threads < 0 || (o.threads > 0 && (o.mix || !o.release_to.empty() || o.pause_ms > 0))) {
    fmt::print(stderr,
               "accord_load: --threads takes a positive count, with --get, --read or "
               "--decide and no --pause-ms\n");
    return 2;
  }
  std::vector<std::vector<Sample>> samples(static_cast<size_t>(o.clients));
  std::atomic<int> releases{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  if (o.threads > 0) {
    if (!RunEvented(o, samples)) return 2;
  } else {
    for (int i = 0; i < o.clients; ++i) {
      threads.emplace_back([&, i] { Run(o, i, samples[static_cast<size_t>(i)], releases); });
    }
    for (auto& t : threads) t.join();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::map<std::string, std::vector<int64_t>> by_kind;
  size_t total = 0, errors = 0;
  for (const auto& client : samples) {
    for (const Sample& s : client) {
      by_kind[s.kind].push_back(s.micros);
      by_kind["all"].push_back(s.micros);
      ++total;
      if (!s.ok) ++errors;
    }
  }
  fmt::print("{:<16} {:>8} {:>10} {:>10} {:>10}\n", "kind", "count", "p50 µs", "p90 µs", "p99 µs");
  for (auto& [kind, v] : by_kind) {
    fmt::print("{:<16} {:>8} {:>10} {:>10} {:>10}\n", kind, v.size(), Percentile(v, 0.5),
               Percentile(v, 0.9), Percentile(v, 0.99));
  }
  fmt::print("requests {} errors {} seconds {:.2f} rate {:.0f}/s releases {}\n", total, errors,
             seconds, static_cast<double>(total) / seconds, releases.load());
  return errors == 0 ? 0 : 1;
}
