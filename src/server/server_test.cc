// The server end to end on real parts: a KOR home on a simulated clock, a test PKI made with the
// openssl command, the server on a thread, and a small blocking OpenSSL client (no Beast here, so
// this file compiles fast). The API decoder is also tested directly, without a network.
#include "accord/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <regex>
#include <span>
#include <sstream>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "accord/clock.h"
#include "accord/crypto.h"
#include "accord/federation.h"
#include "accord/https_client.h"
#include "accord/merkle.h"
#include "accord/note.h"
#include "accord/pki.h"
#include "accord/time.h"
#include "api.h"
#include "line_limiter.h"
#include "resolve.h"
#include "tls.h"

namespace accord {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using server_internal::Api;
using server_internal::DecodeApiRequest;
using server_internal::Route;

// A second ago, for a revocation list's date of issue when the list is read at once: the server,
// as OpenSSL, reads the clock with time(), the kernel's coarse clock, which may still show the
// second before for a few milliseconds after a second begins ("not valid yet").
Instant ASecondAgo() { return Instant{SystemClock().Now().micros - 1'000'000}; }

// A read's answer carries the payload: every answer's body wipes its memory when it is freed,
// whichever path drops it (decision #61).
static_assert(std::is_same_v<decltype(server_internal::ApiResponse::body)::allocator_type,
                             WipingAllocator<char>>);

const std::string kExample = std::string(ACCORD_SOURCE_DIR) + "/examples/gsomia";

// --- a test PKI, made once with the openssl command -------------------------------------------

constexpr std::string_view kOpensslConf = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[server_cn_only_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[node_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
[node_server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1
[no_usage_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = IP:127.0.0.1
)";

class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {
    std::ofstream(dir_ + "/openssl.cnf") << kOpensslConf;
  }

  // A self-signed CA: NAME.pem, NAME.key, named /CN=NAME unless `subj` says otherwise.
  bool MakeCa(const std::string& name, const std::string& subj = {}) {
    return Run("req -x509 -config openssl.cnf -extensions ca_ext " + NewKey(name) + " -out " +
               name + ".pem -days 3650 -subj " + (subj.empty() ? "/CN=" + name : subj));
  }
  // A certificate NAME.pem, NAME.key issued by `ca`, valid for `days` from now (negative: it
  // ended before it began, i.e. it is expired).
  bool MakeLeaf(const std::string& name, const std::string& subj, const std::string& ca,
                const std::string& ext, int days = 30) {
    return Run("req -new -config openssl.cnf " + NewKey(name) + " -out " + name + ".csr -subj " +
               subj) &&
           Run("x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
               ".key -set_serial " + std::to_string(++serial_) + " -days " + std::to_string(days) +
               " -extfile openssl.cnf -extensions " + ext + " -out " + name + ".pem");
  }
  // As MakeLeaf, valid for `valid` from now: seconds, which the openssl command (days) cannot
  // say, so the certificate is made with the library from the command's request.
  bool MakeLeafValidFor(const std::string& name, const std::string& subj, const std::string& ca,
                        const std::string& ext, std::chrono::seconds valid) {
    if (!Run("req -new -config openssl.cnf " + NewKey(name) + " -out " + name + ".csr -subj " +
             subj)) {
      return false;
    }
    const auto read = [this](const std::string& file, auto reader) {
      std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(Path(file).c_str(), "r"),
                                                    BIO_free);
      return bio == nullptr ? nullptr : reader(bio.get(), nullptr, nullptr, nullptr);
    };
    std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> request(
        read(name + ".csr", PEM_read_bio_X509_REQ), X509_REQ_free);
    std::unique_ptr<X509, decltype(&X509_free)> issuer(read(ca + ".pem", PEM_read_bio_X509),
                                                       X509_free);
    const auto key = ReadPrivateKey(Path(ca + ".key"));
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    std::unique_ptr<CONF, decltype(&NCONF_free)> conf(NCONF_new(nullptr), NCONF_free);
    long error_line = 0;
    if (request == nullptr || issuer == nullptr || !key || cert == nullptr || conf == nullptr ||
        NCONF_load(conf.get(), Path("openssl.cnf").c_str(), &error_line) != 1) {
      return false;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer.get(), cert.get(), nullptr, nullptr, 0);
    X509V3_set_nconf(&ctx, conf.get());
    const bool made =
        X509_set_version(cert.get(), 2) == 1 &&
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial_) == 1 &&
        X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer.get())) == 1 &&
        X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(request.get())) == 1 &&
        X509_set_pubkey(cert.get(), X509_REQ_get0_pubkey(request.get())) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr &&
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(valid.count())) !=
            nullptr &&
        X509V3_EXT_add_nconf(conf.get(), &ctx, ext.c_str(), cert.get()) == 1 &&
        X509_sign(cert.get(), key->get(), EVP_sha256()) > 0;
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(Path(name + ".pem").c_str(), "w"),
                                                  BIO_free);
    return made && out != nullptr && PEM_write_bio_X509(out.get(), cert.get()) == 1;
  }
  // Waits until the certificate NAME.pem has expired (as HasExpired says), at most 30 s.
  bool WaitUntilExpired(const std::string& name) const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(Path(name + ".pem").c_str(), "r"),
                                                  BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        bio == nullptr ? nullptr : PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
        X509_free);
    const auto not_after = cert == nullptr
                               ? std::nullopt
                               : server_internal::AsnTimeSeconds(X509_get0_notAfter(cert.get()));
    if (!not_after) return false;
    for (int i = 0; i < 300 && !server_internal::HasExpired(*not_after); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return server_internal::HasExpired(*not_after);
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  const std::string& dir() const { return dir_; }

 private:
  static std::string NewKey(const std::string& name) {
    return "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key";
  }
  bool Run(const std::string& args) const {
    const std::string command =
        "cd '" + dir_ + "' && openssl " + args + " >>openssl.log 2>&1 </dev/null";
    return std::system(command.c_str()) == 0;
  }
  std::string dir_;
  int serial_ = 0;
};

// --- a small blocking HTTPS client ------------------------------------------------------------

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;

  json::object Json() const {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "not a JSON object: " << body;
      return {};
    }
    return v.as_object();
  }
  std::string ErrorCode() const {
    json::object o = Json();
    const json::value* e = o.if_contains("error");
    if (e == nullptr || !e->is_object() || !e->as_object().contains("code")) {
      return "<no error object>";
    }
    return std::string(e->as_object().at("code").as_string());
  }
};

struct ClientCert {
  std::string cert;  // empty: present no certificate
  std::string key;
};

std::string Str(const json::value& v) { return std::string(v.as_string()); }

class Client {
 public:
  ~Client() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
    }
    if (ctx_ != nullptr) {
      SSL_CTX_free(ctx_);
    }
    if (fd_ >= 0) {
      close(fd_);
    }
  }

  // A TCP connection, no TLS yet. Reads time out after 15 s so that a test cannot hang. A
  // `receive_buffer` in bytes keeps the kernel from taking a large answer in for the client.
  static std::unique_ptr<Client> Tcp(uint16_t port, int receive_buffer = 0) {
    auto c = std::unique_ptr<Client>(new Client());
    c->fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{15, 0};
    setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (receive_buffer > 0) {
      setsockopt(c->fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return nullptr;
    }
    return c;
  }

  // Connects and runs the TLS handshake; nullptr when the handshake fails. With TLS 1.3 a
  // refused client certificate does not fail the handshake here: the first read does.
  static std::unique_ptr<Client> Connect(uint16_t port, const std::string& ca,
                                         const ClientCert& cert, int max_version = TLS1_3_VERSION,
                                         int receive_buffer = 0) {
    auto c = Tcp(port, receive_buffer);
    if (c == nullptr) {
      return nullptr;
    }
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c->ctx_, max_version);
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(c->ctx_, ca.c_str(), nullptr) != 1) {
      ADD_FAILURE() << "cannot load " << ca;
      return nullptr;
    }
    if (!cert.cert.empty() &&
        (SSL_CTX_use_certificate_chain_file(c->ctx_, cert.cert.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(c->ctx_, cert.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
      ADD_FAILURE() << "cannot load " << cert.cert;
      return nullptr;
    }
    c->ssl_ = SSL_new(c->ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl_), "127.0.0.1");
    SSL_set_fd(c->ssl_, c->fd_);
    if (SSL_connect(c->ssl_) != 1) {
      ERR_clear_error();
      return nullptr;
    }
    return c;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const int n = ssl_ != nullptr ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                                    : static_cast<int>(::send(fd_, data.data(), data.size(), 0));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (to a HEAD request: its header only); nullopt when the connection ends or
  // fails first.
  std::optional<HttpResponse> Read(bool head_only = false) {
    size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) {
        return std::nullopt;
      }
    }
    HttpResponse r;
    std::istringstream head(buffer_.substr(0, end));
    std::string line;
    std::getline(head, line);
    if (line.size() < 12 || !line.starts_with("HTTP/1.1 ")) {
      ADD_FAILURE() << "bad status line: " << line;
      return std::nullopt;
    }
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      const size_t colon = line.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      std::string name = line.substr(0, colon);
      for (char& ch : name) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    buffer_.erase(0, end + 4);
    if (r.status == 100) {
      return r;
    }
    const size_t length = !head_only && r.headers.contains("content-length")
                              ? std::stoul(r.headers["content-length"])
                              : 0;
    while (buffer_.size() < length) {
      if (!Fill()) {
        return std::nullopt;
      }
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  // Each read of the socket waits `pause` first: a client on a slow link.
  void set_read_pause(std::chrono::milliseconds pause) { read_pause_ = pause; }

  // True when the server ends the connection (EOF or an error) before sending anything.
  bool EndsWithoutData() { return !Fill(); }

  std::optional<HttpResponse> Request(std::string_view method, std::string_view target,
                                      std::string_view body = {},
                                      std::string_view extra_headers = {}) {
    if (!Send(RequestText(method, target, body, extra_headers))) {
      return std::nullopt;
    }
    return Read();
  }

  static std::string RequestText(std::string_view method, std::string_view target,
                                 std::string_view body, std::string_view extra_headers = {}) {
    std::string text(method);
    text += " ";
    text += target;
    text += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    text += extra_headers;
    if (!body.empty() || method == "POST") {
      text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n";
    }
    text += "\r\n";
    text += body;
    return text;
  }

 private:
  Client() = default;

  bool Fill() {
    std::this_thread::sleep_for(read_pause_);
    char chunk[16384];
    const int n = ssl_ != nullptr ? SSL_read(ssl_, chunk, sizeof chunk)
                                  : static_cast<int>(::recv(fd_, chunk, sizeof chunk, 0));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
  std::chrono::milliseconds read_pause_{0};
};

// --- a scripted TLS server, for the client's side ---------------------------------------------

// Serves one connection at a time on a free loopback port, on a thread of its own: after the
// handshake, reads each request (its header and a Content-Length body) and lets `script` write
// whatever it wants, raw, as the answer to the request counted from 0 over all connections. The
// connection ends when the script returns false or the client closes it.
class ScriptedServer {
 public:
  using Script = std::function<bool(SSL* ssl, int request)>;

  ScriptedServer(const std::string& ca, const std::string& cert, const std::string& key,
                 Script script)
      : script_(std::move(script)) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr), 1);
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM), 1);
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    EXPECT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    shutdown(listener_, SHUT_RDWR);  // ends the accept
    thread_.join();
    close(listener_);
    SSL_CTX_free(ctx_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    int request = 0;
    for (;;) {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        while (ReadRequest(ssl) && script_(ssl, request++)) {
        }
      }
      ERR_clear_error();
      SSL_free(ssl);
      close(fd);
    }
  }

  static bool ReadRequest(SSL* ssl) {
    std::string in;
    char chunk[4096];
    size_t end = 0;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      const int n = SSL_read(ssl, chunk, sizeof chunk);
      if (n <= 0) return false;
      in.append(chunk, static_cast<size_t>(n));
    }
    static const std::regex kLength("[Cc]ontent-[Ll]ength: *([0-9]+)");
    std::smatch m;
    const std::string head = in.substr(0, end);
    size_t left = std::regex_search(head, m, kLength) ? std::stoul(m[1].str()) : 0;
    left -= std::min(left, in.size() - end - 4);
    while (left > 0) {
      const int n = SSL_read(ssl, chunk, static_cast<int>(std::min(left, sizeof chunk)));
      if (n <= 0) return false;
      left -= static_cast<size_t>(n);
    }
    return true;
  }

  Script script_;
  SSL_CTX* ctx_ = nullptr;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Writes all of `data`; false once the connection fails.
bool WriteAll(SSL* ssl, std::string_view data) {
  while (!data.empty()) {
    const int n = SSL_write(ssl, data.data(), static_cast<int>(data.size()));
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Lines of `log` holding `text`, a kind the server logs at most once a second (LineLimiter), and
// all the lines of that kind counted: those logged, and those left out, as the next one logged
// ("(and N more like it left out)") or the server's stop ("N more lines of `kind` were left
// out") counts them.
std::pair<size_t, size_t> CountLimitedLines(const std::string& log, std::string_view text,
                                            std::string_view kind) {
  size_t logged = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
    ++logged;
  }
  size_t counted = logged;
  const std::regex left_out(R"(\(and (\d+) more like it left out\)|(\d+) more lines of )" +
                            std::string(kind) + " were left out");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), left_out);
       it != std::sregex_iterator(); ++it) {
    counted += std::stoul((*it)[1].matched ? (*it)[1].str() : (*it)[2].str());
  }
  return {logged, counted};
}

// --- the fixture ------------------------------------------------------------------------------

class ServerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // a refused client writing to a closed connection
    std::string tmpl = testing::TempDir() + "server-pki-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    pki_ = new TestPki(tmpl);
    TestPki& p = *pki_;
    ASSERT_TRUE(p.MakeCa("ca"));
    ASSERT_TRUE(p.MakeLeaf("server", "/CN=KOR", "ca", "server_ext"));
    ASSERT_TRUE(p.MakeLeaf("server-cn-only", "/CN=localhost", "ca", "server_cn_only_ext"));
    ASSERT_TRUE(p.MakeLeaf("kor-analyst", "/CN=kor-analyst/O=KOR", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("kor-clerk", "/CN=kor-clerk", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("kor-analyst-no-o", "/CN=kor-analyst", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("stranger", "/CN=stranger", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("jpn-analyst", "/CN=jpn-analyst/O=JPN", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("kor-analyst-of-jpn", "/CN=kor-analyst/O=JPN", "ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("expired", "/CN=kor-analyst", "ca", "client_ext", -1));
    ASSERT_TRUE(p.MakeLeaf("jpn-node", "/CN=JPN/O=JPN", "ca", "node_ext"));
    ASSERT_TRUE(p.MakeLeaf("jpn-node-server", "/CN=JPN/O=JPN", "ca", "node_server_ext"));
    ASSERT_TRUE(p.MakeLeaf("jpn-of-usa", "/CN=JPN/O=USA", "ca", "node_server_ext"));
    ASSERT_TRUE(p.MakeLeaf("jpn-no-usage", "/CN=JPN/O=JPN", "ca", "no_usage_ext"));
    ASSERT_TRUE(p.MakeCa("other-ca"));
    ASSERT_TRUE(p.MakeCa("ca-of-the-same-name", "/CN=ca"));
    std::ofstream(p.Path("ca-and-its-namesake.pem"))
        << std::ifstream(p.Path("ca.pem")).rdbuf()
        << std::ifstream(p.Path("ca-of-the-same-name.pem")).rdbuf();
    ASSERT_TRUE(p.MakeLeaf("other-analyst", "/CN=kor-analyst", "other-ca", "client_ext"));
    // A partner's CA, trusted beside this node's in a bundle for its node's certificate.
    ASSERT_TRUE(p.MakeCa("jpn-ca"));
    ASSERT_TRUE(
        p.MakeLeaf("kor-analyst-by-jpn-ca", "/CN=kor-analyst/O=KOR", "jpn-ca", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("jpn-node-by-jpn-ca", "/CN=JPN/O=JPN", "jpn-ca", "node_server_ext"));
    // One coalition root with an intermediate CA per party; leaf files hold leaf + intermediate.
    ASSERT_TRUE(p.MakeCa("coalition"));
    for (const char* party : {"kor", "jpn"}) {
      const std::string ca = std::string(party) + "-int";
      ASSERT_TRUE(p.MakeLeaf(ca, "/CN=" + ca, "coalition", "ca_ext"));
      ASSERT_TRUE(p.MakeLeaf("kor-analyst-" + ca, "/CN=kor-analyst/O=KOR", ca, "client_ext"));
      std::ofstream(p.Path("kor-analyst-" + ca + ".pem"), std::ios::app)
          << std::ifstream(p.Path(ca + ".pem")).rdbuf();
    }
    ASSERT_TRUE(p.MakeLeaf("server-kor-int", "/CN=KOR", "kor-int", "server_ext"));
    std::ofstream(p.Path("server-kor-int.pem"), std::ios::app)
        << std::ifstream(p.Path("kor-int.pem")).rdbuf();
    // The root's own node and user, and a users' CA below Korea's intermediate.
    ASSERT_TRUE(p.MakeLeaf("server-coalition", "/CN=KOR", "coalition", "server_ext"));
    ASSERT_TRUE(
        p.MakeLeaf("kor-analyst-coalition", "/CN=kor-analyst/O=KOR", "coalition", "client_ext"));
    ASSERT_TRUE(p.MakeLeaf("kor-users", "/CN=kor-users", "kor-int", "ca_ext"));
    ASSERT_TRUE(
        p.MakeLeaf("kor-analyst-kor-users", "/CN=kor-analyst/O=KOR", "kor-users", "client_ext"));
    std::ofstream(p.Path("kor-analyst-kor-users.pem"), std::ios::app)
        << std::ifstream(p.Path("kor-users.pem")).rdbuf()
        << std::ifstream(p.Path("kor-int.pem")).rdbuf();
    std::ofstream(p.Path("kor-users-and-int.pem")) << std::ifstream(p.Path("kor-users.pem")).rdbuf()
                                                   << std::ifstream(p.Path("kor-int.pem")).rdbuf();
    // A certificate, then a block that is none.
    std::ofstream(p.Path("ca-then-garbage.pem"))
        << std::ifstream(p.Path("ca.pem")).rdbuf()
        << "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    std::ofstream(p.Path("ca-twice-and-user.pem"))
        << std::ifstream(p.Path("ca.pem")).rdbuf() << std::ifstream(p.Path("ca.pem")).rdbuf()
        << std::ifstream(p.Path("kor-analyst.pem")).rdbuf();
    std::ofstream bundle(p.Path("bundle.pem"));
    bundle << std::ifstream(p.Path("ca.pem")).rdbuf()
           << std::ifstream(p.Path("jpn-ca.pem")).rdbuf();
    ASSERT_TRUE(bundle.flush());
  }
  static void TearDownTestSuite() {
    fs::remove_all(pki_->dir());
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    std::string tmpl = testing::TempDir() + "server-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    auto node = InitAndOpen("KOR", ParseInstant("2020-02-01T10:00:00+09:00").value());
    ASSERT_TRUE(node) << node.error().ToString();
    node_ = std::move(*node);
    // A second KOR subject, cleared for III only.
    ASSERT_TRUE(node_->AddSubject(SubjectRecord{"kor-clerk", "III", {"dprk-missile"}, {}}));
  }

  void TearDown() override {
    StopServer();
    node_.reset();
    fs::remove_all(root_);
  }

  ServerOptions Options() const {
    ServerOptions o;
    o.ca_file = pki_->Path("ca.pem");
    o.cert_file = pki_->Path("server.pem");
    o.key_file = pki_->Path("server.key");
    return o;
  }

  void StartServer(ServerOptions o) {
    o.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
    auto server = Server::Create(std::move(o), *node_);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { EXPECT_TRUE(server_->Run()); });
  }
  void StartServer() { StartServer(Options()); }

  void StopServer() {
    if (server_ != nullptr) {
      server_->Stop();
      thread_.join();
      server_.reset();
    }
  }

  // Runs `sql` on the node's store through a connection of its own (as another process would).
  bool ExecSql(const char* sql) const {
    sqlite3* db = nullptr;
    const bool ok = sqlite3_open((root_ + "/KOR/state.db").c_str(), &db) == SQLITE_OK &&
                    sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
  }

  std::string Log() {
    std::lock_guard lock(log_mu_);
    std::string all;
    for (const auto& line : log_) {
      all += line + "\n";
    }
    return all;
  }

  static ClientCert As(const std::string& name) {
    return ClientCert{pki_->Path(name + ".pem"), pki_->Path(name + ".key")};
  }
  std::unique_ptr<Client> Connect(const std::string& name) {
    return Client::Connect(server_->port(), pki_->Path("ca.pem"), As(name));
  }

  // Puts a request in flight on `client`: the header of a POST of `body` to /v1/objects with
  // `Expect: 100-continue`, whose `100 Continue` says the server has read it and waits for the
  // body. FinishPost sends the body and checks the answer.
  static testing::AssertionResult PostHeaderInFlight(Client& client, const std::string& body) {
    if (!client.Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     "Content-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n")) {
      return testing::AssertionFailure() << "cannot send the header";
    }
    auto go_on = client.Read();
    if (!go_on || go_on->status != 100) {
      return testing::AssertionFailure() << "no 100 Continue";
    }
    return testing::AssertionSuccess();
  }
  static void FinishPost(Client& client, const std::string& body) {
    ASSERT_TRUE(client.Send(body));
    auto r = client.Read();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->status == 201 || r->status == 409) << r->status << " " << r->body;
  }
  // One request on a fresh connection as `name`.
  HttpResponse Call(const std::string& name, std::string_view method, std::string_view target,
                    std::string_view body = {}) {
    auto client = Connect(name);
    if (client == nullptr) {
      ADD_FAILURE() << "cannot connect as " << name;
      return {};
    }
    auto r = client->Request(method, target, body);
    if (!r) {
      ADD_FAILURE() << "no response to " << method << " " << target;
      return {};
    }
    return *r;
  }

  void ExpectRefused(const ClientCert& cert, std::string_view why,
                     int max_version = TLS1_3_VERSION);
  // Whether a new connection as `name` is refused in its handshake: no answer ever comes.
  bool RefusedInHandshake(const std::string& name) {
    auto client = Connect(name);
    if (client == nullptr) return true;
    client->Send(Client::RequestText("GET", "/v1/health", {}));
    return !client->Read().has_value();
  }
  // Whether `done()` holds within `seconds`, asked every 100 ms.
  static bool Eventually(const std::function<bool()>& done, int seconds) {
    for (int i = 0; i < 10 * seconds; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  }
  int FirstAnswer(const std::string& who, std::string_view target, size_t length);

  // A new home for `party` under root_ (simulated clock, a cheap passphrase KDF), opened at `at`
  // (the home's clock when none).
  Result<std::unique_ptr<Node>> InitAndOpen(const std::string& party,
                                            std::optional<Instant> at = std::nullopt) const {
    NodeInitOptions init;
    init.home = root_ + "/" + party;
    init.party = party;
    init.policy_dir = kExample;
    init.clock = ClockKind::kSimulated;
    init.passphrase = SecretBytes::Copy("pass-" + party);
    init.scrypt = ScryptParams{1u << 10, 8, 1};
    ACCORD_RETURN_IF_ERROR(InitNode(std::move(init)));
    NodeOptions o;
    o.home = root_ + "/" + party;
    o.passphrase = SecretBytes::Copy("pass-" + party);
    if (at) o.at = *at;
    return Node::Open(std::move(o));
  }

  // Makes JPN a partner of this node: a JPN node's public keys imported (server stopped).
  void ImportJpnKeys() {
    auto jpn = InitAndOpen("JPN");
    ASSERT_TRUE(jpn) << jpn.error().ToString();
    const auto party = node_->ImportPublic((*jpn)->ExportPublic());
    ASSERT_TRUE(party) << party.error().ToString();
  }

  static std::string NewObjectJson(std::string_view id, std::string_view level,
                                   std::string_view payload) {
    return std::string(R"({"id":")") + std::string(id) + R"(","level":")" + std::string(level) +
           R"(","topics":["dprk-missile"],"compartments":[],"rel_to":["JPN"],"payload_base64":")" +
           Base64Encode(AsBytes(payload)) + "\"}";
  }

  static TestPki* pki_;
  std::string root_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::mutex log_mu_;
  std::vector<std::string> log_;  // GUARDED_BY(log_mu_)
};

TestPki* ServerTest::pki_ = nullptr;

// --- TLS and identity -------------------------------------------------------------------------

TEST_F(ServerTest, HealthOverMutualTls) {
  StartServer();
  const HttpResponse r = Call("kor-analyst", "GET", "/v1/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("cache-control"), "no-store");
  const json::object o = r.Json();
  EXPECT_EQ(Str(o.at("status")), "ok");
  EXPECT_EQ(Str(o.at("party")), "KOR");
  EXPECT_GE(o.at("log_size").to_number<int64_t>(), 1);  // at least the added subject
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto r = client->Request("GET", "/v1/health");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
  }
  // Two pipelined requests are answered in order.
  ASSERT_TRUE(client->Send(Client::RequestText("GET", "/v1/health", {}) +
                           Client::RequestText("GET", "/v1/nope", {})));
  auto first = client->Read();
  auto second = client->Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 404);
}

// With TLS 1.3 a client's handshake may complete before the server's refusal arrives, so a
// refusal is asserted on the first read: no response ever comes. The server's log says why.
void ServerTest::ExpectRefused(const ClientCert& cert, std::string_view why, int max_version) {
  StartServer();
  auto client = Client::Connect(server_->port(), pki_->Path("ca.pem"), cert, max_version);
  if (client != nullptr) {
    client->Send(Client::RequestText("GET", "/v1/health", {}));
    EXPECT_FALSE(client->Read());
  }
  // The server still serves a good client.
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  StopServer();  // joins the server thread, so its log is complete
  EXPECT_NE(Log().find("tls handshake with 127.0.0.1:"), std::string::npos) << Log();
  EXPECT_NE(Log().find(why), std::string::npos) << Log();
}

TEST_F(ServerTest, ClientWithoutCertificateIsRefused) {
  ExpectRefused(ClientCert{}, "peer did not return a certificate");
}

TEST_F(ServerTest, CertificateFromAnotherCaIsRefused) {
  ExpectRefused(As("other-analyst"), "unable to get local issuer certificate");
}

TEST_F(ServerTest, ExpiredCertificateIsRefused) {
  ExpectRefused(As("expired"), "certificate has expired");
}

TEST_F(ServerTest, Tls12ClientIsRefused) {
  ExpectRefused(As("kor-analyst"), "unsupported protocol", TLS1_2_VERSION);
}

TEST_F(ServerTest, CertificateNotNamingASubjectOfThisNodeIsForbidden) {
  StartServer();
  const auto start = std::chrono::steady_clock::now();
  for (const char* name : {"stranger", "jpn-analyst", "kor-analyst-of-jpn"}) {
    for (const char* target : {"/v1/health", "/v1/objects", "/v1/no-such-route"}) {
      const HttpResponse r = Call(name, "GET", target);
      EXPECT_EQ(r.status, 403) << name << " " << target;
      EXPECT_EQ(r.ErrorCode(), "permission-denied") << name << " " << target;
    }
  }
  // One line a request would let any certificate holder flood the log: the nine refusals log
  // one line a second at most (one in all, unless a slow build took over a second for them).
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
          .count();
  StopServer();
  const std::string log = Log();
  const auto [refusals, counted] =
      CountLimitedLines(log, "refused a certificate for", "refused certificates");
  EXPECT_GE(refusals, 1u) << log;
  EXPECT_LE(refusals, 1u + static_cast<size_t>(seconds)) << log;
  // None is lost from the count: those left out are counted on the next line logged, or when
  // the server stops.
  EXPECT_EQ(counted, 9u) << log;
}

// A revocation list of the node's CA refuses the certificates it names in the handshake; a
// partner's CA with no list here is not checked. A new list is read while the server runs, a
// second or more after the last look; one that no longer loads leaves the old in force. The
// connections made before a list that revokes their certificate end: at once when they wait,
// with a refusal of the request they are sending.
// A certificate that expires while its connection is kept open: the connection's next request
// is refused (403) and the connection closes, as for a revoked one; a new one is refused in the
// handshake (decision #157). Before, it served that subject for as long as the connection lived.
TEST_F(ServerTest, ACertificateThatExpiresEndsItsKeptConnection) {
  ASSERT_TRUE(pki_->MakeLeafValidFor("brief", "/CN=kor-analyst/O=KOR", "ca", "client_ext", 5s));
  StartServer();
  auto client = Connect("brief");
  ASSERT_NE(client, nullptr);
  auto before = client->Request("GET", "/v1/health");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200);
  ASSERT_TRUE(pki_->WaitUntilExpired("brief"));
  auto after = client->Request("GET", "/v1/health");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 403);
  EXPECT_EQ(after->ErrorCode(), "permission-denied");
  EXPECT_EQ(after->headers["connection"], "close");
  EXPECT_FALSE(client->Read());
  EXPECT_TRUE(RefusedInHandshake("brief"));
  StopServer();
  EXPECT_NE(Log().find("the certificate of its connection has expired since the handshake"),
            std::string::npos)
      << Log();
}

TEST_F(ServerTest, ARevokedCertificateIsRefusedInTheHandshake) {
  const std::string crl = root_ + "/crl.pem";
  const Instant now = ASecondAgo();
  RevokeOptions revoke{pki_->Path("ca.pem"), pki_->Path("ca.key"), crl, {}, now};
  ASSERT_TRUE(RevokeCertificate(revoke));  // a list revoking nothing yet
  ServerOptions o = Options();
  o.ca_file = pki_->Path("bundle.pem");
  o.crl_file = crl;
  StartServer(o);
  const auto refused = [this](const std::string& name) { return RefusedInHandshake(name); };
  EXPECT_EQ(Call("kor-clerk", "GET", "/v1/health").status, 200);
  // Connections from before the revocation: waiting, with a request in flight, and another
  // subject's.
  auto kept = Connect("kor-clerk");
  auto busy = Connect("kor-clerk");
  auto other = Connect("kor-analyst");
  ASSERT_TRUE(kept && busy && other);
  for (Client* c : {kept.get(), other.get()}) {
    auto r = c->Request("GET", "/v1/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  const std::string body = NewObjectJson("k-revoked", "III", "x");
  ASSERT_TRUE(PostHeaderInFlight(*busy, body));

  revoke.certs = {pki_->Path("kor-clerk.pem")};
  ASSERT_TRUE(RevokeCertificate(revoke));
  EXPECT_TRUE(Eventually([&] { return refused("kor-clerk"); }, 4));  // it looks once a second
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  // The partner's CA has no list here: its node's certificate passes the handshake (and is
  // refused after it, as this node does not know the partner).
  EXPECT_EQ(Call("jpn-node-by-jpn-ca", "GET", "/v1/health").status, 403);
  EXPECT_FALSE(kept->Request("GET", "/v1/health"));  // it ended when the list was read
  // The request it was sending is refused, and the connection then closes.
  ASSERT_TRUE(busy->Send(body));
  auto answered = busy->Read();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 403);
  EXPECT_EQ(answered->ErrorCode(), "permission-denied");
  EXPECT_EQ(answered->headers["connection"], "close");
  EXPECT_FALSE(busy->Read());
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/objects/k-revoked").status, 404);
  auto still = other->Request("GET", "/v1/health");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
  EXPECT_NE(still->headers["connection"], "close");

  // A file that no longer loads: the list read before stays.
  std::ofstream(crl) << "not a list\n";
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  EXPECT_TRUE(refused("kor-clerk"));
  StopServer();
  const std::string log = Log();
  EXPECT_NE(log.find("revocation lists: 1 from `" + crl + "`, revoking 0 certificates"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("revoking 1 certificate\n"), std::string::npos) << log;
  // Two at least: those of `kept` and `busy`, and of a connection the test closed that the
  // server had not yet seen closed.
  EXPECT_TRUE(
      std::regex_search(log, std::regex("revocation lists: [2-9] connections made before "
                                        "them end \\(the certificate no longer verifies\\)\n")))
      << log;
  EXPECT_NE(log.find("(certificate revoked)"), std::string::npos) << log;
  EXPECT_NE(log.find("no revocation list in `" + crl + "`; the lists read before stay in force"),
            std::string::npos)
      << log;
}

// A list is replaced only by one that is current, covers every CA that had one, and is no older:
// one dated ahead is taken once its time comes, without the file changing again; an older list
// (which would bring a revoked certificate back) and a file without the CA's list are refused,
// and the list in force stays. Each refusal is logged once.
TEST_F(ServerTest, ARevocationListIsReplacedOnlyByACurrentCompleteNewerOne) {
  const std::string crl = root_ + "/crl.pem", first = root_ + "/crl-1.pem";
  const Instant now = ASecondAgo();
  RevokeOptions revoke{
      pki_->Path("ca.pem"), pki_->Path("ca.key"), crl, {pki_->Path("kor-clerk.pem")}, now};
  ASSERT_TRUE(RevokeCertificate(revoke));  // number 1
  fs::copy_file(crl, first);
  ServerOptions o = Options();
  o.ca_file = pki_->Path("bundle.pem");
  o.crl_file = crl;
  StartServer(o);
  EXPECT_TRUE(RefusedInHandshake("kor-clerk"));

  revoke.certs = {pki_->Path("kor-analyst.pem")};
  revoke.at = Instant{now.micros + 5'000'000};  // number 2, valid 4 s from now
  ASSERT_TRUE(RevokeCertificate(revoke));
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);  // not yet
  EXPECT_TRUE(Eventually([&] { return RefusedInHandshake("kor-analyst"); }, 7));

  fs::copy_file(first, crl, fs::copy_options::overwrite_existing);
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(RefusedInHandshake("kor-analyst"));
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(RefusedInHandshake("kor-analyst"));  // read again, refused again, logged once
  const std::string jpn_only = root_ + "/jpn-crl.pem";
  ASSERT_TRUE(
      RevokeCertificate({pki_->Path("jpn-ca.pem"), pki_->Path("jpn-ca.key"), jpn_only, {}, now}));
  fs::copy_file(jpn_only, crl, fs::copy_options::overwrite_existing);
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(RefusedInHandshake("kor-clerk"));
  EXPECT_EQ(Call("jpn-node-by-jpn-ca", "GET", "/v1/health").status, 403);
  StopServer();
  const std::string log = Log();
  const auto count = [&log](std::string_view what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("revocation list 1 is not valid yet"), 1u) << log;
  EXPECT_EQ(count("revoking 2 certificates"), 1u) << log;
  EXPECT_EQ(count("the list of /CN=ca is number 1, older than the one in force (number 2)"), 1u)
      << log;
  EXPECT_EQ(count("has no list of /CN=ca, which had one"), 1u) << log;
}

// Rewrites the revocation list in `crl` as `edit` changes it, signed again with `ca_key`: as
// another CA could make it.
bool EditList(const std::string& crl, const std::string& ca_key,
              const std::function<bool(X509_CRL*)>& edit) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_file(crl.c_str(), "r"), BIO_free);
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> list(
      in == nullptr ? nullptr : PEM_read_bio_X509_CRL(in.get(), nullptr, nullptr, nullptr),
      X509_CRL_free);
  auto key = ReadPrivateKey(ca_key);
  if (list == nullptr || !key || !edit(list.get())) return false;
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(crl.c_str(), "w"), BIO_free);
  return X509_CRL_sign(list.get(), key->get(), EVP_sha256()) > 0 && out != nullptr &&
         PEM_write_bio_X509_CRL(out.get(), list.get()) == 1;
}

// Without its CRL number: as a CA that does not number its lists would make it.
bool DropNumber(const std::string& crl, const std::string& ca_key) {
  return EditList(crl, ca_key, [](X509_CRL* list) {
    const int at = X509_CRL_get_ext_by_NID(list, NID_crl_number, -1);
    if (at < 0) return false;
    X509_EXTENSION_free(X509_CRL_delete_ext(list, at));
    return true;
  });
}

// Lists without a CRL number (RFC 5280 requires one, and `accord pki revoke` gives one, but
// another CA may not) are ordered by their dates: after one, an older list, numbered or not, does
// not replace it, which would bring back the certificates revoked since (decision #194).
TEST_F(ServerTest, AnUnnumberedListIsNotReplacedByAnOlderOne) {
  const Instant now = SystemClock().Now();
  const auto list = [&](const std::string& name, int64_t seconds_ago, bool numbered) {
    const std::string path = root_ + "/" + name;
    EXPECT_TRUE(RevokeCertificate({pki_->Path("ca.pem"),
                                   pki_->Path("ca.key"),
                                   path,
                                   {pki_->Path("kor-clerk.pem")},
                                   Instant{now.micros - seconds_ago * 1'000'000}}));
    if (!numbered) {
      EXPECT_TRUE(DropNumber(path, pki_->Path("ca.key")));
    }
    return path;
  };
  const std::string older = list("unnumbered-older.pem", 20, false);
  const std::string newer = list("unnumbered-newer.pem", 10, false);
  const std::string numbered_older = list("numbered-older.pem", 30, true);
  const std::string numbered_later = list("numbered-later.pem", 5, true);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx.get(), pki_->Path("ca.pem").c_str(), nullptr), 1);
  const time_t at = time(nullptr);
  const auto load = [&](const std::string& file, const server_internal::RevocationLists* held) {
    return server_internal::LoadRevocationLists(ctx.get(), file, at, held);
  };
  const auto seconds_ago = [&](int64_t s) {
    return FormatInstant(Instant{(now.micros / 1'000'000 - s) * 1'000'000});
  };

  auto in_force = load(newer, nullptr);
  ASSERT_TRUE(in_force) << in_force.error().ToString();
  ASSERT_EQ(in_force->numbers.size(), 1u);
  EXPECT_EQ(in_force->numbers.begin()->second.number, "");
  auto again = load(newer, &*in_force);
  EXPECT_TRUE(again) << again.error().ToString();
  for (const auto& [file, issued] : {std::pair{older, 20}, std::pair{numbered_older, 30}}) {
    auto back = load(file, &*in_force);
    ASSERT_FALSE(back) << file;
    EXPECT_EQ(back.error().code, Code::kInvalidArgument);
    EXPECT_EQ(back.error().message,
              fmt::format("`{}`: the list of /CN=ca was issued at {}, before the one in force "
                          "(issued at {}, with no number)",
                          file, seconds_ago(issued), seconds_ago(10)));
  }
  // A numbered list issued later follows, and from then the numbers order the lists.
  auto numbered_now = load(numbered_later, &*in_force);
  ASSERT_TRUE(numbered_now) << numbered_now.error().ToString();
  EXPECT_EQ(numbered_now->numbers.begin()->second.number, "1");
  auto unnumbered_after = load(newer, &*numbered_now);
  ASSERT_FALSE(unnumbered_after);
  EXPECT_NE(unnumbered_after.error().message.find("is number none, older than the one in force"),
            std::string::npos)
      << unnumbered_after.error().message;
}

// A date not in RFC 5280's form (a 13th month, a fraction of a second, an offset: OpenSSL
// decodes them, but compares with the clock only the fixed form) passed the checks of the file,
// then failed every certificate of the CA in the handshake: the file is refused instead, saying
// which date (decision #199).
TEST_F(ServerTest, AListWhoseDatesAreNotInRfc5280sFormIsRefused) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx.get(), pki_->Path("ca.pem").c_str(), nullptr), 1);
  const Instant now = SystemClock().Now();
  struct Date {
    int (*set)(X509_CRL*, const ASN1_TIME*);
    std::string field;
  };
  int made = 0;
  for (const auto& [setter, field] : {Date{X509_CRL_set1_lastUpdate, "date of issue (thisUpdate)"},
                                      Date{X509_CRL_set1_nextUpdate, "next update (nextUpdate)"}}) {
    for (const auto& [type, text] : {std::pair{V_ASN1_GENERALIZEDTIME, "20261301000000Z"},
                                     std::pair{V_ASN1_GENERALIZEDTIME, "20260101000000.5Z"},
                                     std::pair{V_ASN1_GENERALIZEDTIME, "20260101000000+0000"},
                                     std::pair{V_ASN1_UTCTIME, "2601010000Z"}}) {
      SCOPED_TRACE(field + " " + text);
      const std::string crl = fmt::format("{}/list-{}.pem", root_, ++made);
      ASSERT_TRUE(RevokeCertificate({pki_->Path("ca.pem"),
                                     pki_->Path("ca.key"),
                                     crl,
                                     {pki_->Path("kor-clerk.pem")},
                                     Instant{now.micros - 10'000'000}}));
      auto loaded = server_internal::LoadRevocationLists(ctx.get(), crl, time(nullptr));
      ASSERT_TRUE(loaded) << loaded.error().ToString();
      ASSERT_TRUE(EditList(crl, pki_->Path("ca.key"),
                           [set = setter, type = type, text = text](X509_CRL* list) {
                             std::unique_ptr<ASN1_STRING, decltype(&ASN1_STRING_free)> t(
                                 ASN1_STRING_type_new(type), ASN1_STRING_free);
                             return t != nullptr && ASN1_STRING_set(t.get(), text, -1) == 1 &&
                                    set(list, t.get()) == 1;
                           }));
      loaded = server_internal::LoadRevocationLists(ctx.get(), crl, time(nullptr));
      ASSERT_FALSE(loaded);
      EXPECT_EQ(loaded.error().code, Code::kInvalidArgument);
      EXPECT_EQ(loaded.error().message,
                fmt::format("`{}`: revocation list 1 has a {} that is not a valid date in RFC "
                            "5280's form (YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ)",
                            crl, field));
    }
  }
  // And a list with no next update at all, which OpenSSL would take as never expiring: made here
  // by hand (`X509_CRL_set1_nextUpdate` cannot take the field away).
  const std::string crl = root_ + "/no-next.pem";
  std::unique_ptr<BIO, decltype(&BIO_free)> ca_in(BIO_new_file(pki_->Path("ca.pem").c_str(), "r"),
                                                  BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> ca(
      ca_in == nullptr ? nullptr : PEM_read_bio_X509(ca_in.get(), nullptr, nullptr, nullptr),
      X509_free);
  const auto key = ReadPrivateKey(pki_->Path("ca.key"));
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> list(X509_CRL_new(), X509_CRL_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> issued(
      ASN1_TIME_set(nullptr, now.micros / 1'000'000 - 10), ASN1_TIME_free);
  ASSERT_TRUE(ca != nullptr && key && list != nullptr && issued != nullptr);
  ASSERT_EQ(X509_CRL_set_version(list.get(), X509_CRL_VERSION_2), 1);
  ASSERT_EQ(X509_CRL_set_issuer_name(list.get(), X509_get_subject_name(ca.get())), 1);
  ASSERT_EQ(X509_CRL_set1_lastUpdate(list.get(), issued.get()), 1);
  ASSERT_GT(X509_CRL_sign(list.get(), key->get(), EVP_sha256()), 0);
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(crl.c_str(), "w"), BIO_free);
    ASSERT_TRUE(out != nullptr && PEM_write_bio_X509_CRL(out.get(), list.get()) == 1);
  }
  const auto loaded = server_internal::LoadRevocationLists(ctx.get(), crl, time(nullptr));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message,
            fmt::format("`{}`: revocation list 1 has no next update (nextUpdate): a list must say "
                        "when the next is due",
                        crl));
}

// A list past its next update refuses every certificate of its CA (fail closed), though the
// file does not change: in new handshakes, and on a connection made before it expired, which ends
// as after new lists, since a stale list may miss a revocation (decision #191). A partner's CA,
// with no list here, is not affected.
TEST_F(ServerTest, AnExpiredListRefusesEveryCertificateOfItsCa) {
  const std::string crl = root_ + "/crl.pem";
  const Instant now = SystemClock().Now();
  // Valid for a day, from a day less 5 s ago.
  ASSERT_TRUE(RevokeCertificate({pki_->Path("ca.pem"),
                                 pki_->Path("ca.key"),
                                 crl,
                                 {},
                                 Instant{now.micros - 86'400'000'000LL + 5'000'000},
                                 1}));
  ServerOptions o = Options();
  o.ca_file = pki_->Path("bundle.pem");
  o.crl_file = crl;
  StartServer(o);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  auto kept = Connect("kor-analyst");
  ASSERT_TRUE(kept);
  auto r = kept->Request("GET", "/v1/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(Eventually([&] { return RefusedInHandshake("kor-analyst"); }, 8));
  // It ends at the first look at the lists after they expired (once a second).
  EXPECT_TRUE(Eventually([&] { return !kept->Request("GET", "/v1/health"); }, 4));
  // The probe that found the refusal may have been one that the same look ended (its handshake
  // just before the expiry): one made now fails in its handshake, for the expiry itself.
  EXPECT_TRUE(RefusedInHandshake("kor-analyst"));
  EXPECT_EQ(Call("jpn-node-by-jpn-ca", "GET", "/v1/health").status, 403);  // after its handshake
  StopServer();
  const std::string log = Log();
  EXPECT_NE(log.find("(CRL has expired)"), std::string::npos) << log;
  EXPECT_NE(log.find("revocation lists: in `" + crl + "`, the list of "), std::string::npos) << log;
  EXPECT_NE(log.find(" expired at "), std::string::npos) << log;
  // The kept connection's, and perhaps a probe's whose handshake came just before the expiry.
  EXPECT_TRUE(std::regex_search(
      log, std::regex("revocation lists: [1-9] connections? made before them ends? ")))
      << log;
}

// A partner's CA is in the bundle to verify its node's certificate. A user certificate it
// issues, even one naming this node's party and one of its subjects, is refused: this node's
// users' certificates come from the CA that issued its own (or those of user_ca_file).
TEST_F(ServerTest, AUserCertificateFromAPartnersCaIsForbidden) {
  ServerOptions o = Options();
  o.ca_file = pki_->Path("bundle.pem");
  // A node certificate of that CA is still taken for a node's: refused here only because this
  // node does not know the partner. (Refusals share one line a second in the log: one run each.)
  StartServer(o);
  const HttpResponse node = Call("jpn-node-by-jpn-ca", "POST", "/v1/federation/envelopes", "{}");
  EXPECT_EQ(node.status, 403) << node.body;
  StopServer();
  EXPECT_NE(Log().find("not a known partner"), std::string::npos) << Log();

  StartServer(o);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  for (const char* target : {"/v1/health", "/v1/objects"}) {
    const HttpResponse r = Call("kor-analyst-by-jpn-ca", "GET", target);
    EXPECT_EQ(r.status, 403) << target << " " << r.body;
    EXPECT_EQ(r.ErrorCode(), "permission-denied") << target;
  }
  StopServer();
  EXPECT_NE(Log().find("refused a certificate for `kor-analyst`: not issued by a CA of this "
                       "node's users"),
            std::string::npos)
      << Log();

  // user_ca_file names the CA of the users instead of the node's own.
  o.user_ca_file = pki_->Path("jpn-ca.pem");
  StartServer(o);
  EXPECT_EQ(Call("kor-analyst-by-jpn-ca", "GET", "/v1/health").status, 200);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 403);
}

// Under one coalition root with an intermediate CA per party, the users' CA is the one that
// issued the node's certificate, its party's intermediate: the root would let every party's
// intermediate name this node's users. A user's certificate passes only when a users' CA
// signed it itself, so a root in `user_ca`, or a node certified by the root, admits no
// partner's intermediate either. A users' CA deeper down is named in `user_ca`, and may chain
// to `ca` through this node's own intermediate.
TEST_F(ServerTest, UnderACoalitionRootTheUsersCaIsTheOneThatSignsThem) {
  const auto status = [this](const std::string& who) {
    auto client = Client::Connect(server_->port(), pki_->Path("coalition.pem"), As(who));
    if (client == nullptr) return 0;
    auto r = client->Request("GET", "/v1/health", "");
    return r ? r->status : 0;
  };
  const std::vector<std::string> users = {"kor-analyst-kor-int", "kor-analyst-jpn-int",
                                          "kor-analyst-coalition", "kor-analyst-kor-users"};
  struct Case {
    std::string server;         // its certificate and key
    std::string user_ca;        // "": none
    std::vector<int> statuses;  // of `users`, in order
  };
  for (const Case& c : std::vector<Case>{
           {"server-kor-int", "", {200, 403, 403, 403}},
           {"server-kor-int", "kor-int.pem", {200, 403, 403, 403}},
           {"server-kor-int", "coalition.pem", {403, 403, 200, 403}},
           {"server-kor-int", "kor-users.pem", {403, 403, 403, 200}},
           {"server-coalition", "", {403, 403, 200, 403}},
           // A users' CA that chains to `ca` through the file's other certificate, which is a
           // users' CA too.
           {"server-coalition", "kor-users-and-int.pem", {200, 403, 403, 200}},
       }) {
    ServerOptions o = Options();
    o.ca_file = pki_->Path("coalition.pem");
    o.cert_file = pki_->Path(c.server + ".pem");
    o.key_file = pki_->Path(c.server + ".key");
    o.user_ca_file = c.user_ca.empty() ? "" : pki_->Path(c.user_ca);
    StartServer(o);
    for (size_t i = 0; i < users.size(); ++i) {
      EXPECT_EQ(status(users[i]), c.statuses[i]) << users[i] << " " << c.server << " " << c.user_ca;
    }
    StopServer();
  }
  EXPECT_NE(Log().find("users' certificates: from /CN=kor-int (the CA of this node's certificate)"),
            std::string::npos)
      << Log();
  EXPECT_NE(Log().find("users' certificates: from /CN=kor-users ("), std::string::npos) << Log();
}

// A partner's node is refused (403) only when this node does not know it. When the store cannot
// say, the answer is a server error: the partner keeps its envelopes for a later attempt,
// where a 403 `permission-denied` also makes it wait, and other 4xx make it give them up.
TEST_F(ServerTest, NodeCallerIsRefusedWhenUnknownAndGetsA5xxWhenTheStoreFails) {
  StartServer();
  HttpResponse r = Call("jpn-node", "POST", "/v1/federation/envelopes", "{}");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "permission-denied") << r.body;
  EXPECT_NE(Log().find("not a known partner"), std::string::npos) << Log();

  ASSERT_TRUE(ExecSql("ALTER TABLE partners RENAME TO partners_away"));
  r = Call("jpn-node", "POST", "/v1/federation/envelopes", "{}");
  EXPECT_GE(r.status, 500) << r.body;
  ASSERT_TRUE(ExecSql("ALTER TABLE partners_away RENAME TO partners"));
  r = Call("jpn-node", "POST", "/v1/federation/envelopes", "{}");
  EXPECT_EQ(r.status, 403) << r.body;
}

// An action's party or level is an id of 1 to 128 bytes, and an object id in a path of at most
// 256: a longer one, or an empty one, is refused before the node runs anything, so no refusal
// carries it into the log.
TEST_F(ServerTest, AnOverlongIdIsRefusedBeforeItReachesTheLog) {
  StartServer();
  ASSERT_EQ(Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k-1", "II", "x")).status,
            201);
  const uint64_t size = node_->LogSize().value();
  const std::string long_id(100'000, 'Z');
  for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/objects/k-1/release", R"({"to":")" + long_id + "\"}"},
           {"/v1/objects/k-1/consent", R"({"to":")" + long_id + "\"}"},
           {"/v1/objects/k-1/reclassify", R"({"level":")" + long_id + "\"}"},
           {"/v1/objects/k-1/release", R"({"to":""})"},
           {"/v1/objects/k-1/consent", R"({"to":""})"},
           {"/v1/objects/k-1/reclassify", R"({"level":""})"},
           {"/v1/objects/" + std::string(300, 'k') + "/release", R"({"to":"JPN"})"}}) {
    SCOPED_TRACE(target.substr(0, 60));
    const HttpResponse r = Call("kor-analyst", "POST", target, body);
    EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
    EXPECT_EQ(r.ErrorCode(), "invalid-argument") << r.body.substr(0, 300);
  }
  // An object id in a path may be as long as a partner's package may make it (256 bytes).
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/objects/" + std::string(257, 'k')).status, 400);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/objects/" + std::string(256, 'k')).status, 404);
  // At 128 bytes an unknown party is a refusal the engine decides, and logged.
  const HttpResponse unknown = Call("kor-analyst", "POST", "/v1/objects/k-1/release",
                                    R"({"to":")" + std::string(128, 'Z') + "\"}");
  EXPECT_EQ(unknown.status, 403) << unknown.body;
  EXPECT_EQ(unknown.ErrorCode(), "unknown-party") << unknown.body;
  StopServer();
  EXPECT_EQ(node_->LogSize().value(), size + 1);
}

// A notice goes to the object's holders: with none, it is logged and nothing is queued, and the
// answer says so (it said "queued", with nothing in the outbox).
TEST_F(ServerTest, ANoticeToNoHolderIsAnsweredAsDeliveredToNone) {
  ImportJpnKeys();
  StartServer();
  ASSERT_EQ(Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k-1", "II", "x")).status,
            201);
  const auto action = [&](std::string_view what, std::string_view body) {
    return Call("kor-analyst", "POST", "/v1/objects/k-1/" + std::string(what), std::string(body));
  };
  for (const auto& [what, body] : std::vector<std::pair<std::string, std::string>>{
           {"reclassify", R"({"level":"III"})"}, {"consent", R"({"to":"USA"})"}}) {
    const HttpResponse r = action(what, body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find(R"("kind":")" + what + "\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("delivery":"none")"), std::string::npos) << r.body;
  }
  const HttpResponse released = action("release", R"({"to":"JPN"})");
  EXPECT_EQ(released.status, 202) << released.body;
  EXPECT_NE(released.body.find(R"("delivery":"queued")"), std::string::npos) << released.body;
  const HttpResponse held = action("reclassify", R"({"level":"II"})");
  EXPECT_EQ(held.status, 202) << held.body;
  EXPECT_NE(held.body.find(R"("delivery":"queued")"), std::string::npos) << held.body;
}

// A partner configured with its certificate must present that certificate's key: another node
// certificate of the same CA naming the same party (which the CA could issue to anyone) is
// refused, as are configured files that are not that partner's node certificate.
TEST_F(ServerTest, APartnerMustPresentTheKeyOfTheCertificateConfiguredForIt) {
  ImportJpnKeys();
  StartServer();  // none configured: any node certificate of the CA naming JPN
  for (const char* who : {"jpn-node", "jpn-node-server"}) {
    EXPECT_EQ(Call(who, "GET", "/v1/log/checkpoint").status, 200) << who;
  }
  StopServer();

  ServerOptions o = Options();
  o.partner_certificates["JPN"] = pki_->Path("jpn-node-server.pem");
  StartServer(o);
  HttpResponse r = Call("jpn-node", "GET", "/v1/log/checkpoint");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "permission-denied") << r.body;
  EXPECT_NE(Log().find("refused a node certificate for `JPN`: not the key of the certificate "
                       "configured for it"),
            std::string::npos)
      << Log();
  r = Call("jpn-node-server", "GET", "/v1/log/checkpoint");
  EXPECT_EQ(r.status, 200) << r.body;
  // Users are not partners: a pin for JPN changes nothing for them.
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  StopServer();

  for (const auto& [file, why] : std::vector<std::pair<std::string, std::string>>{
           {"server.pem", "is not the node certificate of `JPN`"},        // CN=KOR
           {"jpn-of-usa.pem", "is not the node certificate of `JPN`"},    // O=USA
           {"jpn-no-usage.pem", "is not the node certificate of `JPN`"},  // no TLS server use
           {"server.key", "no certificate of `JPN` in"},
           {"missing.pem", "cannot read the certificate of `JPN`"}}) {
    SCOPED_TRACE(file);
    ServerOptions bad = Options();
    bad.partner_certificates["JPN"] = pki_->Path(file);
    auto server = Server::Create(std::move(bad), *node_);
    ASSERT_FALSE(server);
    EXPECT_EQ(server.error().code, Code::kInvalidArgument);
    EXPECT_NE(server.error().message.find(why), std::string::npos) << server.error().message;
  }
}

// The node's TLS key is read as a CA's key is (ReadPrivateKey): into memory that wipes itself,
// and an encrypted key is refused rather than asked for on a terminal (decision #192).
TEST_F(ServerTest, AnEncryptedTlsKeyIsRefused) {
  const std::string encrypted = root_ + "/encrypted.key";
  {
    auto key = ReadPrivateKey(pki_->Path("server.key"));
    ASSERT_TRUE(key) << key.error().ToString();
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(encrypted.c_str(), "w"), &BIO_free);
    ASSERT_NE(out, nullptr);
    char passphrase[] = "a passphrase";
    ASSERT_EQ(PEM_write_bio_PrivateKey(out.get(), key->get(), EVP_aes_256_cbc(), nullptr, 0,
                                       nullptr, passphrase),
              1);
  }
  ServerOptions o = Options();
  o.key_file = encrypted;
  auto server = Server::Create(std::move(o), *node_);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kInvalidArgument);
  EXPECT_NE(server.error().message.find("cannot read the key `" + encrypted + "`"),
            std::string::npos)
      << server.error().message;
}

// With several CAs in `ca`, any of them can certify a node by a partner's names: the federation
// warns of each partner it knows by its names alone, and of no other.
TEST_F(ServerTest, AFederationWarnsOfPartnersKnownByTheirNamesAloneUnderSeveralCas) {
  const auto warnings = [this](const std::string& ca_file) {
    std::mutex mu;
    std::vector<std::string> lines;  // GUARDED_BY(mu)
    FederationOptions f;
    f.ca_file = pki_->Path(ca_file);
    f.cert_file = pki_->Path("server.pem");
    f.key_file = pki_->Path("server.key");
    PeerOptions jpn;  // pinned
    jpn.party = "JPN";
    jpn.port = 1;
    jpn.cert_file = pki_->Path("jpn-node-server.pem");
    PeerOptions usa;
    usa.party = "USA";
    usa.port = 1;
    f.peers = {jpn, usa};
    f.poll_interval = std::chrono::hours(1);
    f.witness_interval = std::chrono::hours(1);
    f.log = [&](std::string_view line) {
      std::lock_guard lock(mu);
      lines.emplace_back(line);
    };
    NodeOptions n;
    n.home = root_ + "/KOR";
    n.passphrase = SecretBytes::Copy("pass-KOR");
    auto federation = Federation::Start(std::move(f), std::move(n));
    EXPECT_TRUE(federation) << federation.error().ToString();
    if (federation) (*federation)->Stop();
    std::lock_guard lock(mu);
    std::vector<std::string> found;
    for (const std::string& line : lines) {
      if (line.starts_with("warning: ")) found.push_back(line);
    }
    return found;
  };
  const std::vector<std::string> two = warnings("bundle.pem");
  ASSERT_EQ(two.size(), 1u) << ::testing::PrintToString(two);
  EXPECT_EQ(two[0], "warning: partner USA is known by its names alone, and each of the 2 CAs of `" +
                        pki_->Path("bundle.pem") +
                        "` can certify a node by those names; pin its key with its node "
                        "certificate ([[peer]] cert)");
  EXPECT_TRUE(warnings("ca.pem").empty());  // one CA: the deployment's own
  // One CA twice, with a user's certificate: still one CA.
  EXPECT_TRUE(warnings("ca-twice-and-user.pem").empty());
}

// The status of the first answer to a header announcing a body of `length` bytes: 100 Continue,
// or the refusal instead (0 if none came).
int ServerTest::FirstAnswer(const std::string& who, std::string_view target, size_t length) {
  auto c = Connect(who);
  if (c == nullptr || !c->Send("POST " + std::string(target) +
                               " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                               std::to_string(length) + "\r\n\r\n")) {
    return 0;
  }
  auto r = c->Read();
  return r ? static_cast<int>(r->status) : 0;
}

// A node certificate gets the envelope limit on the two envelope routes only; every other route,
// and every other caller, keeps max_body_bytes.
TEST_F(ServerTest, EnvelopeLimitIsForANodesEnvelopeRoutesOnly) {
  ServerOptions o = Options();
  o.max_body_bytes = 1000;
  o.max_envelope_bytes = 100'000;
  ImportJpnKeys();
  StartServer(o);
  const auto first_answer = [&](const std::string& who, std::string_view target, size_t length) {
    return FirstAnswer(who, target, length);
  };
  for (const char* target : {"/v1/federation/envelopes", "/v1/federation/batches"}) {
    EXPECT_EQ(first_answer("jpn-node", target, 5000), 100) << target;
    EXPECT_EQ(first_answer("kor-analyst", target, 5000), 413) << target;
  }
  EXPECT_EQ(first_answer("jpn-node", "/v1/federation/envelopes", 100'000), 100);
  EXPECT_EQ(first_answer("jpn-node", "/v1/federation/envelopes", 100'001), 413);
  EXPECT_EQ(first_answer("jpn-node", "/v1/decide", 5000), 413);
  // A body within the limit is read and handled (and refused: it is no envelope).
  const HttpResponse r =
      Call("jpn-node", "POST", "/v1/federation/envelopes", std::string(5000, 'x'));
  EXPECT_EQ(r.status, 400) << r.body;
}

// A node certificate that names no partner is refused before it sends a body larger than
// max_body_bytes, not after this node has read up to max_envelope_bytes of it; and once the
// store cannot say, with a server error, on which the partner tries again. A smaller body is
// read and refused as any other request of that node (NodeCallerIsRefused... above).
TEST_F(ServerTest, UnknownNodeIsRefusedBeforeItsLargeBodyIsRead) {
  ServerOptions o = Options();
  o.max_body_bytes = 1000;
  o.max_envelope_bytes = 100'000;
  StartServer(o);
  EXPECT_EQ(FirstAnswer("jpn-node", "/v1/federation/batches", 5000), 403);
  EXPECT_NE(Log().find("not a known partner"), std::string::npos) << Log();
  EXPECT_EQ(FirstAnswer("jpn-node", "/v1/federation/envelopes", 1000), 100);

  ASSERT_TRUE(ExecSql("ALTER TABLE partners RENAME TO partners_away"));
  EXPECT_GE(FirstAnswer("jpn-node", "/v1/federation/batches", 5000), 500);
  ASSERT_TRUE(ExecSql("ALTER TABLE partners_away RENAME TO partners"));

  // Known now: the same header is let through, and so are the next on the same connection.
  StopServer();
  ImportJpnKeys();
  StartServer(o);
  auto c = Connect("jpn-node");
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        c->Send("POST /v1/federation/envelopes HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 5000\r\n\r\n" +
                std::string(5000, 'x')));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;  // read and handled: not an envelope
  }
}

// A partner's node holds at most max_envelope_bytes of bodies larger than max_body_bytes in
// flight, not max_requests_per_caller times that: one more is answered 503 (not a refusal of the
// envelopes: the partner sends them again) before it is read, until one of them is done.
TEST_F(ServerTest, APartnerHoldsAtMostOneEnvelopesWorthOfLargeBodiesInFlight) {
  ServerOptions o = Options();
  o.max_body_bytes = 1000;
  o.max_envelope_bytes = 100'000;
  ImportJpnKeys();
  StartServer(o);
  const auto header = [](size_t length) {
    return "POST /v1/federation/envelopes HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           "Content-Length: " +
           std::to_string(length) + "\r\n\r\n";
  };
  // Sends the header of a body of `length` bytes on a new connection; the first answer.
  std::vector<std::unique_ptr<Client>> held;
  const auto start = [&](size_t length) {
    held.push_back(Connect("jpn-node"));
    if (held.back() == nullptr || !held.back()->Send(header(length))) return 0;
    auto r = held.back()->Read();
    return r ? static_cast<int>(r->status) : 0;
  };
  EXPECT_EQ(start(60'000), 100);  // held[0]
  EXPECT_EQ(start(60'000), 503);  // 120,000 would be in flight
  EXPECT_NE(Log().find("refusing a body of 60000 bytes"), std::string::npos) << Log();
  EXPECT_EQ(start(40'000), 100);  // held[2]: 100,000 in all
  EXPECT_EQ(start(1'001), 503);
  // Bodies up to max_body_bytes are not counted.
  EXPECT_EQ(Call("jpn-node", "POST", "/v1/federation/envelopes", std::string(1000, 'x')).status,
            400);

  // The first is read and answered (it is no envelope), and its bytes are free again.
  ASSERT_TRUE(held[0]->Send(std::string(60'000, 'x')));
  auto answered = held[0]->Read();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 400) << answered->body;
  EXPECT_EQ(start(60'000), 100);
  // A connection closed with its body unsent frees its bytes too.
  held[2].reset();
  int status = 0;
  for (int i = 0; i < 100 && status != 100; ++i) {
    if (i > 0) std::this_thread::sleep_for(20ms);
    status = start(40'000);
  }
  EXPECT_EQ(status, 100);
}

// --- objects ----------------------------------------------------------------------------------

// Answers go out as one buffer up to 16 KiB and as a header then a body above it; a request's
// body as large arrives whole too. Both sizes, and one on each side of the bound, on one
// kept-alive connection.
TEST_F(ServerTest, SmallAndLargeAnswersArriveWhole) {
  StartServer();
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  for (const size_t size : {size_t{10}, size_t{11'000}, size_t{12'500}, size_t{200'000}}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7 + size);
    const std::string id = "k-size-" + std::to_string(size);
    auto created = client->Request("POST", "/v1/objects", NewObjectJson(id, "II", payload));
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
    auto read = client->Request("GET", "/v1/objects/" + id, {});
    ASSERT_TRUE(read) << size;
    ASSERT_EQ(read->status, 200) << size;
    auto bytes = Base64Decode(Str(read->Json().at("payload_base64")));
    ASSERT_TRUE(bytes) << size;
    EXPECT_EQ(std::string(bytes->begin(), bytes->end()), payload) << size;
  }
}

// write_timeout bounds a small answer; a large one gets a second more for each MiB, as a large
// request does, so that a read of a large object is not cut off on a slow link after it was
// logged. Here 12 MiB at about 4 MiB/s: over 2 s, against a write_timeout of 1 s.
TEST_F(ServerTest, ALargeAnswerGetsMoreTimeToBeWritten) {
  ServerOptions o = Options();
  o.write_timeout = std::chrono::seconds(1);
  o.max_body_bytes = 16 << 20;
  StartServer(o);
  std::string payload(9 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 13 + (i >> 12));
  ASSERT_EQ(
      Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k-large", "II", payload)).status,
      201);
  auto client = Client::Connect(server_->port(), pki_->Path("ca.pem"), As("kor-analyst"),
                                TLS1_3_VERSION, /*receive_buffer=*/64 * 1024);
  ASSERT_NE(client, nullptr);
  client->set_read_pause(std::chrono::milliseconds(4));  // 16 KiB a read: 4 MiB/s
  const auto start = std::chrono::steady_clock::now();
  auto read = client->Request("GET", "/v1/objects/k-large");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(read) << "the answer was cut off after "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                    << " ms\n"
                    << Log();
  ASSERT_EQ(read->status, 200);
  EXPECT_GT(took, std::chrono::seconds(1));  // or the test shows nothing
  auto bytes = Base64Decode(Str(read->Json().at("payload_base64")));
  ASSERT_TRUE(bytes);
  EXPECT_TRUE(std::string(bytes->begin(), bytes->end()) == payload);  // not printed: 9 MiB
}

TEST_F(ServerTest, CreateThenReadAsClearedAndUnclearedSubjects) {
  StartServer();
  const std::string payload = "launch site coordinates \x01\x02\xff";
  HttpResponse created =
      Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k-1", "II", payload));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Str(created.Json().at("originator")), "KOR");

  const HttpResponse read = Call("kor-analyst", "GET", "/v1/objects/k-1");
  ASSERT_EQ(read.status, 200) << read.body;
  const json::object o = read.Json();
  EXPECT_EQ(Str(o.at("id")), "k-1");
  EXPECT_EQ(Str(o.at("reason")), "originator-cleared");
  EXPECT_TRUE(o.at("agreement").is_null());
  const json::object& marking = o.at("marking").as_object();
  EXPECT_EQ(Str(marking.at("party")), "KOR");
  EXPECT_EQ(Str(marking.at("level")), "II");
  EXPECT_EQ(Str(marking.at("name")), "군사II급비밀");
  auto bytes = Base64Decode(Str(o.at("payload_base64")));
  ASSERT_TRUE(bytes);
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), payload);

  // kor-clerk holds III only: the engine's reason code comes back, and no payload.
  const HttpResponse denied = Call("kor-clerk", "GET", "/v1/objects/k-1");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.ErrorCode(), "insufficient-clearance");
  EXPECT_EQ(denied.body.find("payload"), std::string::npos);

  // The list shows the object's label, never its payload.
  const HttpResponse list = Call("kor-analyst", "GET", "/v1/objects");
  ASSERT_EQ(list.status, 200);
  const json::object listed = list.Json();
  const json::array& objects = listed.at("objects").as_array();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(Str(objects[0].at("id")), "k-1");
  EXPECT_EQ(Str(objects[0].at("level")), "II");
  EXPECT_EQ(objects[0].at("payload_bytes").to_number<int64_t>(),
            static_cast<int64_t>(payload.size()));
  EXPECT_FALSE(objects[0].as_object().contains("payload_base64"));
  EXPECT_TRUE(listed.at("next").is_null());

  // Creating the same id again conflicts; reading an unknown id is 404.
  const HttpResponse again =
      Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k-1", "II", "x"));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body,
            R"({"error":{"code":"already-exists","message":"object `k-1` already exists"}})");
  const HttpResponse missing = Call("kor-analyst", "GET", "/v1/objects/no-such");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.ErrorCode(), "not-found");
  // Percent-encoded ids are decoded.
  ASSERT_EQ(Call("kor-analyst", "POST", "/v1/objects", NewObjectJson("k 2/b", "III", "y")).status,
            201);
  EXPECT_EQ(Call("kor-clerk", "GET", "/v1/objects/k%202%2Fb").status, 200);

  // Pages by id ("k 2/b" sorts before "k-1"); `next` is the following page's `after`.
  const HttpResponse first = Call("kor-analyst", "GET", "/v1/objects?limit=1");
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.Json().at("objects").as_array().size(), 1u);
  EXPECT_EQ(Str(first.Json().at("objects").as_array()[0].at("id")), "k 2/b");
  EXPECT_EQ(Str(first.Json().at("next")), "k 2/b");
  const HttpResponse second = Call("kor-analyst", "GET", "/v1/objects?after=k%202%2Fb&limit=1");
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(second.Json().at("objects").as_array().size(), 1u);
  EXPECT_EQ(Str(second.Json().at("objects").as_array()[0].at("id")), "k-1");
  EXPECT_TRUE(second.Json().at("next").is_null());
  // kor-clerk may not read k-1: its page of one says nothing follows.
  const HttpResponse clerk = Call("kor-clerk", "GET", "/v1/objects?limit=1");
  ASSERT_EQ(clerk.status, 200) << clerk.body;
  EXPECT_EQ(clerk.Json().at("objects").as_array().size(), 1u);
  EXPECT_TRUE(clerk.Json().at("next").is_null());
  for (const char* bad : {"/v1/objects?limit=0", "/v1/objects?limit=1001", "/v1/objects?limit=x",
                          "/v1/objects?page=2", "/v1/objects?after=a&after=b"}) {
    SCOPED_TRACE(bad);
    const HttpResponse refused = Call("kor-analyst", "GET", bad);
    EXPECT_EQ(refused.status, 400);
    EXPECT_EQ(refused.ErrorCode(), "invalid-argument");
  }
}

// A subject removed from the directory while the server runs, by another connection to its home
// (`accord subject remove` beside `accord serve`), is refused from its next request on, on a
// connection kept alive from before; added back, it is served again. Both changes are in the
// log the server's node appends to, which still verifies.
TEST_F(ServerTest, ASubjectRemovedWhileTheServerRunsIsRefusedFromItsNextRequest) {
  StartServer();
  ASSERT_EQ(Call("kor-clerk", "POST", "/v1/objects", NewObjectJson("k-1", "III", "x")).status, 201);
  const uint64_t before = *node_->LogSize();
  auto client = Connect("kor-clerk");
  ASSERT_NE(client, nullptr);
  auto read = client->Request("GET", "/v1/objects/k-1");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;

  NodeOptions o;
  o.home = root_ + "/KOR";
  o.passphrase = SecretBytes::Copy("pass-KOR");
  auto beside = Node::Open(std::move(o));
  ASSERT_TRUE(beside) << beside.error().ToString();
  ASSERT_TRUE((*beside)->RemoveSubject("kor-clerk"));
  EXPECT_EQ((*beside)->RemoveSubject("kor-clerk").error().code, Code::kNotFound);

  read = client->Request("GET", "/v1/objects/k-1");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 403) << read->body;
  EXPECT_EQ(read->ErrorCode(), "permission-denied");
  EXPECT_EQ(Call("kor-clerk", "GET", "/v1/health").status, 403);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/objects/k-1").status, 200);

  ASSERT_TRUE((*beside)->AddSubject(SubjectRecord{"kor-clerk", "III", {"dprk-missile"}, {}}));
  EXPECT_EQ(Call("kor-clerk", "GET", "/v1/objects/k-1").status, 200);
  StopServer();
  // Reads by kor-clerk (2) and kor-analyst (1), the removal and the addition.
  EXPECT_EQ(*node_->VerifyLog(), before + 5);
  const auto entries = node_->LogEntries(before, 5);
  ASSERT_TRUE(entries) << entries.error().ToString();
  std::vector<std::string> ops;
  for (const Bytes& e : *entries) {
    ops.push_back(Str(json::parse(std::string(e.begin(), e.end())).at("op")));
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"read", "subject-remove", "read", "subject", "read"}));
}

TEST_F(ServerTest, ConcurrentReadsEachGetTheirAnswerAndTheirLogEntry) {
  StartServer();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(Call("kor-analyst", "POST", "/v1/objects",
                   NewObjectJson("k-" + std::to_string(i), "II", "payload " + std::to_string(i)))
                  .status,
              201);
  }
  const uint64_t before = *node_->LogSize();
  // Eight clients read at once (their reads share commits), some of them refused.
  constexpr int kClients = 8, kReads = 25;
  std::atomic<int> wrong = 0;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string subject = c % 4 == 3 ? "kor-clerk" : "kor-analyst";
      auto client = Connect(subject);  // one kept-alive connection per client
      for (int i = 0; i < kReads && client != nullptr; ++i) {
        const std::string id = "k-" + std::to_string((c + i) % 4);
        auto answer = client->Request("GET", "/v1/objects/" + id, {});
        if (!answer) {
          ++wrong;
          continue;
        }
        const HttpResponse& r = *answer;
        if (subject == "kor-clerk") {
          wrong += r.status != 403 || r.ErrorCode() != "insufficient-clearance";
          continue;
        }
        if (r.status != 200) {
          ++wrong;
          continue;
        }
        auto payload = Base64Decode(Str(r.Json().at("payload_base64")));
        wrong += !payload || std::string(payload->begin(), payload->end()) !=
                                 "payload " + std::to_string((c + i) % 4);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong, 0) << Log();
  StopServer();
  // One entry per read, allowed or refused, and the log verifies.
  EXPECT_EQ(*node_->LogSize(), before + kClients * kReads);
  EXPECT_EQ(*node_->VerifyLog(), before + kClients * kReads);
}

// A group of reads stops after the answer that uses up the room it was given (the answers'
// budget, max_answer_bytes): only the reads it answered ran, and only they are logged.
TEST_F(ServerTest, AGroupOfReadsAnswersAPrefixWithinItsRoom) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        node_->Create(NewObject{"k-" + std::to_string(i), "II", {"dprk-missile"}, {}, {"JPN"}},
                      AsBytes(std::string(1000, 'x'))));
  }
  server_internal::Api api(*node_, [](std::string_view) {});
  const server_internal::Caller caller{"kor-analyst", "KOR", false, true, {}};
  const std::string targets[] = {"/v1/objects/k-0", "/v1/objects/k-1", "/v1/objects/k-2"};
  std::vector<server_internal::GroupedRequest> reads;
  for (const std::string& t : targets) reads.push_back({&caller, "GET", t, {}});

  uint64_t size = *node_->LogSize();
  auto answers = api.HandleGroup(reads, 1);  // room for less than one: one answer all the same
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200) << answers[0].body;
  EXPECT_EQ(*node_->LogSize(), size + 1);
  const size_t one = answers[0].body.size();

  size = *node_->LogSize();
  answers = api.HandleGroup(std::span(reads).subspan(1), one + 1);  // one answer's worth, and a bit
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_NE(answers[0].body.find("\"id\":\"k-1\""), std::string::npos) << answers[0].body;
  EXPECT_NE(answers[1].body.find("\"id\":\"k-2\""), std::string::npos) << answers[1].body;
  EXPECT_EQ(*node_->LogSize(), size + 2);

  size = *node_->LogSize();
  answers = api.HandleGroup(reads);  // no limit
  EXPECT_EQ(answers.size(), 3u);
  EXPECT_EQ(*node_->LogSize(), size + 3);
}

// A group whose commit cannot begin (another process holds the store's write lock past its busy
// timeout, 10 s) runs none of its reads and answers every one with the error (decision #160: a
// group that answered none would be taken again by the node thread, without end). The next
// group is served.
TEST_F(ServerTest, AGroupWhoseCommitCannotBeginAnswersEveryRead) {
  ASSERT_TRUE(node_->Create(NewObject{"k-1", "II", {"dprk-missile"}, {}, {"JPN"}},
                            AsBytes("payload of k-1")));
  const uint64_t before = *node_->LogSize();
  server_internal::Api api(*node_, [](std::string_view) {});
  const server_internal::Caller caller{"kor-analyst", "KOR", false, true, {}};
  const std::vector<server_internal::GroupedRequest> reads(
      3, server_internal::GroupedRequest{&caller, "GET", "/v1/objects/k-1", {}});
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open((root_ + "/KOR/state.db").c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto answers = api.HandleGroup(reads);
  EXPECT_EQ(sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(holder);
  ASSERT_EQ(answers.size(), reads.size());
  for (const server_internal::ApiResponse& a : answers) {
    EXPECT_EQ(a.status, 503) << a.body;
    EXPECT_NE(a.body.find("\"code\":\"unavailable\""), std::string::npos) << a.body;
    EXPECT_EQ(a.body.find("payload_base64"), std::string::npos) << a.body;
  }
  EXPECT_EQ(*node_->LogSize(), before);
  const auto again = api.HandleGroup(std::span(reads).first(1));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].status, 200) << again[0].body;
  EXPECT_EQ(*node_->LogSize(), before + 1);
}

// Answers not yet sent are bounded (max_answer_bytes): a reader too slow to take a large answer
// holds its bytes until it is written, and reads behind it wait up to a second for room, then
// get 503 without being run or logged. Reads whose answers fit go on in groups as small as the
// room allows, and all are answered.
TEST_F(ServerTest, AnswersNotYetSentAreBounded) {
  std::string large(6 << 20, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 13 + (i >> 12));
  ASSERT_TRUE(
      node_->Create(NewObject{"k-large", "II", {"dprk-missile"}, {}, {"JPN"}}, AsBytes(large)));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        node_->Create(NewObject{"k-" + std::to_string(i), "II", {"dprk-missile"}, {}, {"JPN"}},
                      AsBytes(std::string(100'000, static_cast<char>('a' + i)))));
  }
  // The log is counted with the server stopped: its node is the server's while it runs.
  const uint64_t before = *node_->LogSize();
  ServerOptions o = Options();
  o.max_answer_bytes = 256 << 10;
  StartServer(o);

  // Eight clients read the 100 KB objects at once: two answers fill the room, so the groups are
  // split, and every read is answered.
  constexpr int kClients = 8, kReads = 10;
  std::atomic<int> wrong = 0;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = Connect("kor-analyst");
      for (int i = 0; i < kReads && client != nullptr; ++i) {
        const int k = (c + i) % 4;
        auto r = client->Request("GET", "/v1/objects/k-" + std::to_string(k), {});
        if (!r || r->status != 200) {
          ++wrong;
          continue;
        }
        auto payload = Base64Decode(Str(r->Json().at("payload_base64")));
        wrong += !payload || std::string(payload->begin(), payload->end()) !=
                                 std::string(100'000, static_cast<char>('a' + k));
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong, 0) << Log();

  // A slow reader of the 8 MiB answer (about 1 MiB/s, so that a few MiB in the kernel's
  // buffers leave seconds to go): while it is written, a read behind it is answered 503 after a
  // second, unlogged; once it is written, the same read is served. If the slow read has not
  // reached the node thread when the fast one does, they share a batch: the slow one, first,
  // takes the room, and the fast one still waits.
  auto slow = Client::Connect(server_->port(), pki_->Path("ca.pem"), As("kor-analyst"),
                              TLS1_3_VERSION, /*receive_buffer=*/64 * 1024);
  ASSERT_NE(slow, nullptr);
  slow->set_read_pause(std::chrono::milliseconds(16));  // 16 KiB a read
  std::optional<HttpResponse> slow_read;
  std::thread slow_thread([&] {
    auto r = slow->Request("GET", "/v1/objects/k-large");
    if (r) slow_read = std::move(*r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // its answer is being written
  auto fast = Connect("kor-analyst");
  ASSERT_NE(fast, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto refused = fast->Request("GET", "/v1/objects/k-0", {});
  const auto waited = std::chrono::steady_clock::now() - start;
  slow_thread.join();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body.substr(0, 200);
  EXPECT_EQ(refused->ErrorCode(), "unavailable");
  EXPECT_NE(refused->body.find("max_answer_bytes"), std::string::npos)
      << refused->body.substr(0, 200);
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  ASSERT_TRUE(slow_read) << Log();
  ASSERT_EQ(slow_read->status, 200);
  auto bytes = Base64Decode(Str(slow_read->Json().at("payload_base64")));
  ASSERT_TRUE(bytes);
  EXPECT_TRUE(std::string(bytes->begin(), bytes->end()) == large);  // not printed: 6 MiB
  auto served = fast->Request("GET", "/v1/objects/k-0", {});
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  StopServer();
  // One entry for each read served (the 80, the slow one and the last): none for the refused.
  EXPECT_EQ(*node_->LogSize(), before + kClients * kReads + 2);
}

// Reads whose log entries cannot be stored fail together with their group commit: every one is
// answered with an error and no payload, and the node serves again once its store accepts them.
TEST_F(ServerTest, ReadsWhoseEntriesCannotBeStoredGetAnErrorAndNoPayload) {
  ASSERT_TRUE(node_->Create(NewObject{"k-1", "II", {"dprk-missile"}, {}, {"JPN"}},
                            AsBytes("payload of k-1")));
  const uint64_t before = *node_->LogSize();
  const std::string encoded = Base64Encode(AsBytes("payload of k-1"));
  ASSERT_TRUE(
      ExecSql("CREATE TRIGGER refuse BEFORE INSERT ON log_entries "
              "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"));
  StartServer();
  constexpr int kClients = 4;
  std::vector<HttpResponse> answers(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] { answers[c] = Call("kor-analyst", "GET", "/v1/objects/k-1"); });
  }
  for (auto& t : clients) t.join();
  for (const HttpResponse& r : answers) {
    EXPECT_GE(r.status, 500) << r.body;
    EXPECT_EQ(r.body.find("payload_base64"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(encoded), std::string::npos) << r.body;
  }
  ASSERT_TRUE(ExecSql("DROP TRIGGER refuse"));
  const HttpResponse again = Call("kor-analyst", "GET", "/v1/objects/k-1");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find(encoded), std::string::npos) << again.body;
  StopServer();
  EXPECT_EQ(*node_->LogSize(), before + 1);
  EXPECT_EQ(*node_->VerifyLog(), before + 1);
}

TEST_F(ServerTest, BadBodiesAreInvalidArgument) {
  StartServer();
  const std::string good = NewObjectJson("k-1", "II", "p");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[1]", "not a JSON object"},
      {R"({"id":"k-1","level":"II","level":"I","payload_base64":""})", "duplicate key `level`"},
      {R"({"id":"k-1","level":5,"payload_base64":""})", "`level`"},
      {R"({"id":"k-1","level":"II","topics":"dprk-missile","payload_base64":""})", "`topics`"},
      {R"({"id":"k-1","level":"II","topics":[1],"payload_base64":""})", "`topics[0]`"},
      {R"({"id":"k-1","level":"II","topic":["x"],"payload_base64":""})", "`topic`: unknown"},
      {R"({"id":"k-1","level":"II"})", "`payload_base64`: missing"},
      {R"({"id":"k-1","level":"II","payload_base64":"***"})", "`payload_base64`"},
      {R"({"id":"k-1","level":"NOPE","payload_base64":""})", "unknown level"},
      {R"({"id":"k-1","level":"II","rel_to":["XXX"],"payload_base64":""})", "unknown party"},
  };
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  for (const auto& [body, expected] : cases) {
    auto r = client->Request("POST", "/v1/objects", body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_EQ(r->headers["content-type"], "application/json");
    EXPECT_EQ(r->ErrorCode(), "invalid-argument") << body;
    EXPECT_NE(r->body.find(expected), std::string::npos) << r->body;
  }
  // The connection survived every error.
  auto r = client->Request("POST", "/v1/objects", good);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
}

TEST_F(ServerTest, UnknownRouteWrongMethodAndMalformedHttp) {
  StartServer();
  const HttpResponse unknown = Call("kor-analyst", "GET", "/v1/nothing-here");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.ErrorCode(), "not-found");
  const HttpResponse method = Call("kor-analyst", "DELETE", "/v1/objects");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.ErrorCode(), "method-not-allowed");
  EXPECT_EQ(method.headers.at("allow"), "GET, POST");

  // A target that is not UTF-8 is answered with valid JSON all the same.
  const HttpResponse binary = Call("kor-analyst", "GET", "/v1/\xff\xfe");
  EXPECT_TRUE(binary.status == 400 || binary.status == 404) << binary.status;
  EXPECT_NE(binary.ErrorCode(), "<no error object>");

  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"));
  auto bad = client->Read();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->ErrorCode(), "invalid-argument");
  EXPECT_TRUE(client->EndsWithoutData());  // and the connection is closed
}

// HEAD is not a route of the API (a read would log an access), so it gets 405; its answer is a
// header without the body, or the client would read the body as the next answer's start.
TEST_F(ServerTest, HeadIsAnsweredWithoutABody) {
  StartServer();
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  for (const char* target : {"/v1/health", "/v1/objects/k-none", "/v1/nothing-here"}) {
    ASSERT_TRUE(client->Send(std::string("HEAD ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto head = client->Read(/*head_only=*/true);
    ASSERT_TRUE(head) << target;
    EXPECT_TRUE(head->status == 405 || head->status == 404) << target << " " << head->status;
    EXPECT_GT(std::stoul(head->headers["content-length"]), 0u) << target;
    auto next = client->Request("GET", "/v1/health");  // on the same connection
    ASSERT_TRUE(next) << target;
    EXPECT_EQ(next->status, 200) << target << ": " << next->body;
  }
}

TEST_F(ServerTest, OversizeBodyIs413) {
  ServerOptions o = Options();
  o.max_body_bytes = 1024;
  StartServer(o);
  // The limit applies on the declared length, before the body is read.
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" +
                           std::string(100, 'x')));
  auto r = client->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->ErrorCode(), "body-too-large");
  EXPECT_EQ(r->headers["connection"], "close");

  // With Expect: 100-continue the refusal comes instead of the 100.
  auto expecting = Connect("kor-analyst");
  ASSERT_NE(expecting, nullptr);
  ASSERT_TRUE(expecting->Send(
      "POST /v1/objects HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "
      "4096\r\n\r\n"));
  auto refused = expecting->Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);

  // A body within the limit after a 100 Continue is served.
  auto fits = Connect("kor-analyst");
  ASSERT_NE(fits, nullptr);
  const std::string body = NewObjectJson("k-small", "III", "small");
  ASSERT_TRUE(
      fits->Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n"));
  auto go_on = fits->Read();
  ASSERT_TRUE(go_on);
  EXPECT_EQ(go_on->status, 100);
  ASSERT_TRUE(fits->Send(body));
  auto done = fits->Read();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 201) << done->body;

  // A chunked body that grows past the limit is refused too.
  auto chunked = Connect("kor-analyst");
  ASSERT_NE(chunked, nullptr);
  ASSERT_TRUE(chunked->Send(
      "POST /v1/decide HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
      std::string(0x800, ' ') + "\r\n"));
  auto too_long = chunked->Read();
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 413);
}

// A body too large sent without announcing it (no `Expect: 100-continue`) gets its 413 too, once
// it is sent: the server reads the rest and drops it before it closes. Closing at once, with the
// body unread, reset the connection, and the client's write failed with the answer unread.
TEST_F(ServerTest, ABodyTooLargeSentWithoutAnnouncingItStillGetsItsAnswer) {
  ServerOptions o = Options();
  o.max_body_bytes = 1024;
  o.read_timeout = 30s;  // the drain's deadline, far past the pause that ends it below
  StartServer(o);
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  constexpr size_t kBody = 12 << 20;  // more than the server's window and the client's buffer
  ASSERT_TRUE(client->Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(kBody) + "\r\n\r\n" + std::string(kBody, 'x')));
  auto r = client->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->ErrorCode(), "body-too-large");
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(client->EndsWithoutData());

  // A client that stops sending is let go after a pause of 2 s, long before the deadline.
  auto paused = Connect("kor-analyst");
  ASSERT_NE(paused, nullptr);
  ASSERT_TRUE(
      paused->Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                   std::string(100, 'x')));
  auto refused = paused->Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  const auto since = std::chrono::steady_clock::now();
  EXPECT_TRUE(paused->EndsWithoutData());
  EXPECT_LT(std::chrono::steady_clock::now() - since, 8s);

  // A partner's node sends a body under 1 MiB unannounced: its client reads the refusal.
  HttpsClientOptions co;
  co.port = server_->port();
  co.ca_file = pki_->Path("ca.pem");
  co.cert_file = pki_->Path("jpn-node.pem");
  co.key_file = pki_->Path("jpn-node.key");
  auto partner = HttpsClient::Create(co);
  ASSERT_TRUE(partner) << partner.error().ToString();
  auto answer = (*partner)->Request("POST", "/v1/decide", std::string(900'000, ' '));
  ASSERT_TRUE(answer) << answer.error().ToString();
  EXPECT_EQ(answer->status, 413u) << answer->body;
  // The server still serves.
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);

  // A stop does not wait for a connection whose refused body is still coming (slowly here: its
  // drain would last past the deadline, 30 s).
  auto uploading = Connect("kor-analyst");
  ASSERT_NE(uploading, nullptr);
  ASSERT_TRUE(
      uploading->Send("POST /v1/objects HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"));
  auto refused_too = uploading->Read();
  ASSERT_TRUE(refused_too);
  EXPECT_EQ(refused_too->status, 413);
  std::atomic<bool> stopped = false;
  std::thread sender([&] {  // the only user of `uploading` from here on
    while (!stopped && uploading->Send(std::string(1024, 'x'))) std::this_thread::sleep_for(100ms);
  });
  const auto stopping = std::chrono::steady_clock::now();
  StopServer();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 8s);
  stopped = true;
  sender.join();
}

// --- decide and the log -----------------------------------------------------------------------

std::vector<std::string> ExampleRequests() {
  std::ifstream in(kExample + "/requests.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

TEST_F(ServerTest, DecideAnswersEachJsonLine) {
  StartServer();
  const auto requests = ExampleRequests();
  ASSERT_GE(requests.size(), 3u);
  // r2: the analyst reads (allow, released); r3: the clerk is refused.
  const HttpResponse r =
      Call("kor-analyst", "POST", "/v1/decide", requests[1] + "\n" + requests[2] + "\n");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "application/jsonl");
  std::istringstream lines(r.body);
  std::vector<json::object> answers;
  for (std::string line; std::getline(lines, line);) {
    answers.push_back(json::parse(line).as_object());
  }
  ASSERT_EQ(answers.size(), 2u) << r.body;
  EXPECT_EQ(Str(answers[0].at("id")), "r2-analyst-reads");
  EXPECT_EQ(Str(answers[0].at("decision")), "allow");
  EXPECT_EQ(Str(answers[0].at("reason")), "released");
  EXPECT_EQ(Str(answers[0].at("agreement")), "kor-jpn-gsomia");
  EXPECT_EQ(Str(answers[1].at("id")), "r3-clerk-refused");
  EXPECT_EQ(Str(answers[1].at("decision")), "deny");
  EXPECT_EQ(Str(answers[1].at("reason")), "insufficient-clearance");

  // A malformed line is answered in place and the stream goes on.
  const HttpResponse mixed = Call("kor-analyst", "POST", "/v1/decide",
                                  "{\"id\":\"bad\",\"action\":7}\r\n\n" + requests[0]);
  ASSERT_EQ(mixed.status, 200);
  std::istringstream mixed_lines(mixed.body);
  std::string first, second;
  std::getline(mixed_lines, first);
  std::getline(mixed_lines, second);
  EXPECT_EQ(Str(json::parse(first).at("reason")), "invalid-request");
  EXPECT_EQ(Str(json::parse(first).at("id")), "bad");
  EXPECT_EQ(Str(json::parse(second).at("decision")), "allow");
}

TEST_F(ServerTest, CheckpointIsTheSignedNote) {
  StartServer();
  const HttpResponse r = Call("kor-analyst", "GET", "/v1/log/checkpoint");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/plain; charset=utf-8");
  EXPECT_TRUE(r.body.starts_with("accord/KOR\n")) << r.body;
  EXPECT_NE(r.body.find("\n\n\xe2\x80\x94 "), std::string::npos) << r.body;  // "— " signature line
  // Signed by the node's log key, and of its log as it stands.
  const auto verifier = note::Verifier::FromVerifierKey(node_->LogVerifierKey());
  ASSERT_TRUE(verifier) << verifier.error().ToString();
  const auto opened = note::Open(r.body, std::span(&*verifier, 1));
  ASSERT_TRUE(opened) << opened.error().ToString();
  const auto checkpoint = note::ParseCheckpoint(opened->text);
  ASSERT_TRUE(checkpoint) << checkpoint.error().ToString();
  EXPECT_EQ(checkpoint->origin, "accord/KOR");
  EXPECT_EQ(checkpoint->size, node_->LogSize().value());
  EXPECT_EQ(checkpoint->root, node_->LogRoot(checkpoint->size).value());
}

// POST /v1/log/consistency gives, in one answer, the proofs GET gives one at a time (the
// federation proves the checkpoints a partner showed with it, decision #86).
TEST_F(ServerTest, ConsistencyProofsOfSeveralSizesInOneRequest) {
  StartServer();
  for (const char* id : {"k-1", "k-2", "k-3", "k-4", "k-5"}) {
    ASSERT_EQ(Call("kor-analyst", "POST", "/v1/objects", NewObjectJson(id, "II", "x")).status, 201);
  }
  const HttpResponse checkpoint = Call("kor-analyst", "GET", "/v1/log/checkpoint");
  ASSERT_EQ(checkpoint.status, 200);
  const size_t line = checkpoint.body.find('\n') + 1;
  const uint64_t size = std::stoull(checkpoint.body.substr(line));
  ASSERT_GE(size, 6u);
  const std::string to = std::to_string(size);
  const HttpResponse batch =
      Call("kor-analyst", "POST", "/v1/log/consistency",
           R"({"from":[1,2,)" + std::to_string(size - 1) + R"(],"to":)" + to + "}");
  ASSERT_EQ(batch.status, 200) << batch.body;
  const json::object o = batch.Json();
  EXPECT_EQ(o.at("to").to_number<uint64_t>(), size);
  const json::array& proofs = o.at("proofs").as_array();
  ASSERT_EQ(proofs.size(), 3u);
  for (const json::value& one : proofs) {
    const uint64_t from = one.at("from").to_number<uint64_t>();
    const HttpResponse alone = Call(
        "kor-analyst", "GET", "/v1/log/consistency?from=" + std::to_string(from) + "&to=" + to);
    ASSERT_EQ(alone.status, 200) << alone.body;
    const json::object single = alone.Json();
    EXPECT_EQ(single.at("proof"), one.at("proof")) << from;
    EXPECT_EQ(single.at("root2"), o.at("root")) << from;
    std::vector<merkle::Hash> proof;
    for (const json::value& h : one.at("proof").as_array()) {
      proof.push_back(merkle::HashFromHex(Str(h)).value());
    }
    EXPECT_TRUE(merkle::VerifyConsistency(from, size, proof,
                                          merkle::HashFromHex(Str(single.at("root1"))).value(),
                                          merkle::HashFromHex(Str(o.at("root"))).value()))
        << from;
  }
  // Without "to", up to the log's size now (at least the size above).
  const HttpResponse latest = Call("kor-analyst", "POST", "/v1/log/consistency", R"({"from":[1]})");
  ASSERT_EQ(latest.status, 200) << latest.body;
  EXPECT_GE(latest.Json().at("to").to_number<uint64_t>(), size);
  // A size past "to" is the request's fault.
  const HttpResponse past =
      Call("kor-analyst", "POST", "/v1/log/consistency",
           R"({"from":[)" + std::to_string(size + 1) + R"(],"to":)" + to + "}");
  EXPECT_EQ(past.status, 400) << past.body;
  EXPECT_EQ(Str(past.Json().at("error").at("code")), "invalid-argument");
}

// --- timeouts, limits and stopping ------------------------------------------------------------

TEST_F(ServerTest, SlowClientIsClosedAfterTheReadTimeoutWhileOthersAreServed) {
  ServerOptions o = Options();
  o.read_timeout = 1s;
  StartServer(o);
  auto slow = Connect("kor-analyst");
  ASSERT_NE(slow, nullptr);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow->Send("GET /v1/health HTTP/1.1\r\nHost: 127."));
  // Meanwhile another client is served, on its own connection.
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  EXPECT_TRUE(slow->EndsWithoutData());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 8s);
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
}

// Slow clients are lines anyone with a certificate can cause: at most one a second is logged,
// and none is lost from the count.
TEST_F(ServerTest, SlowClientsLogOneLineASecondAtMost) {
  ServerOptions o = Options();
  o.read_timeout = 1s;
  StartServer(o);
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 6; ++i) {
    slow.push_back(Connect("kor-analyst"));
    ASSERT_NE(slow.back(), nullptr);
    ASSERT_TRUE(slow.back()->Send("GET /v1/health HTTP/1.1\r\nHost: 127."));
  }
  for (auto& c : slow) EXPECT_TRUE(c->EndsWithoutData());
  StopServer();
  const std::string log = Log();
  const auto [lines, counted] =
      CountLimitedLines(log, "request not read in time", "requests not read in time");
  EXPECT_GE(lines, 1u) << log;
  EXPECT_LE(lines, 3u) << log;  // the six time out within a second or two of each other
  EXPECT_EQ(counted, 6u) << log;
}

TEST_F(ServerTest, IdleConnectionAndSilentTcpConnectionAreClosed) {
  ServerOptions o = Options();
  o.idle_timeout = 1s;
  o.handshake_timeout = 1s;
  StartServer(o);
  auto idle = Connect("kor-analyst");
  ASSERT_NE(idle, nullptr);
  auto r = idle->Request("GET", "/v1/health");
  ASSERT_TRUE(r);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle->EndsWithoutData());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);

  auto silent = Client::Tcp(server_->port());  // never starts a TLS handshake
  ASSERT_NE(silent, nullptr);
  EXPECT_TRUE(silent->EndsWithoutData());
}

// At the limit, a new connection takes the place of the one that has waited longest for its
// handshake or its next request; when every connection has a request in flight, it is closed.
TEST_F(ServerTest, ConnectionsBeyondTheLimitAreClosedWhenEveryOneHasARequestInFlight) {
  ServerOptions o = Options();
  o.max_connections = 2;
  o.max_requests_per_caller = 2;  // one caller may fill the server here
  StartServer(o);
  auto a = Connect("kor-analyst");
  auto b = Connect("kor-analyst");
  ASSERT_TRUE(a && b);
  // Each has a request in flight: its header read, the server waiting for its body (the 100
  // Continue says so). Neither may be closed for a newcomer.
  const std::string body = NewObjectJson("k-1", "III", "x");
  ASSERT_TRUE(PostHeaderInFlight(*a, body));
  ASSERT_TRUE(PostHeaderInFlight(*b, body));
  auto c = Client::Connect(server_->port(), pki_->Path("ca.pem"), As("kor-analyst"));
  if (c != nullptr) {
    EXPECT_FALSE(c->Request("GET", "/v1/health"));
  }
  // Both requests are still answered.
  FinishPost(*a, body);
  FinishPost(*b, body);
  // Now both wait between requests: a new connection takes the place of the one idle longest.
  auto d = Connect("kor-analyst");
  ASSERT_TRUE(d);
  auto served = d->Request("GET", "/v1/health");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  EXPECT_FALSE(a->Request("GET", "/v1/health"));  // a was answered first: it waited longest
  auto again = b->Request("GET", "/v1/health");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

// One certificate's subject cannot take every connection of the server with requests it never
// finishes (one byte of a request holds a connection for read_timeout, and such a connection is
// never closed to make room): beyond max_requests_per_caller in flight, its next request is
// answered 429 and its connection closed. Other callers are served throughout, and the caller
// again once a request of its own is answered.
TEST_F(ServerTest, OneCallerHasAtMostItsShareOfRequestsInFlight) {
  ServerOptions o = Options();
  o.max_connections = 8;
  o.max_requests_per_caller = 2;
  StartServer(o);
  auto a = Connect("kor-analyst");
  auto b = Connect("kor-analyst");
  // The same subject with another certificate (no organization, which the Api admits too).
  auto c = Connect("kor-analyst-no-o");
  ASSERT_TRUE(a && b && c);
  const std::string body = NewObjectJson("k-1", "III", "x");
  ASSERT_TRUE(PostHeaderInFlight(*a, body));
  ASSERT_TRUE(PostHeaderInFlight(*b, body));
  // A third request of kor-analyst while both are in flight.
  auto refused = c->Request("GET", "/v1/health");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429) << refused->body;
  EXPECT_EQ(refused->ErrorCode(), "too-many-requests") << refused->body;
  EXPECT_NE(refused->body.find("max_requests_per_caller"), std::string::npos) << refused->body;
  EXPECT_FALSE(c->Request("GET", "/v1/health"));  // and closed
  // Another caller is served.
  auto other = Connect("kor-clerk");
  ASSERT_TRUE(other);
  auto served = other->Request("GET", "/v1/health");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  // The requests in flight are answered, and their connections stay open.
  FinishPost(*a, body);
  FinishPost(*b, body);
  // Nothing in flight now: kor-analyst is served on a new connection and on both old ones.
  auto d = Connect("kor-analyst");
  ASSERT_TRUE(d);
  for (Client* client : {d.get(), a.get(), b.get()}) {
    auto r = client->Request("GET", "/v1/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  StopServer();
  EXPECT_NE(Log().find("requests in flight (max_requests_per_caller)"), std::string::npos) << Log();
}

// A certificate of a partner's CA that names a subject of this node (refused on every request)
// has a limit of its own: holding requests in flight, it cannot use up that subject's.
TEST_F(ServerTest, ACertificateOfAnotherCaCannotUseUpASubjectsRequests) {
  ServerOptions o = Options();
  o.ca_file = pki_->Path("bundle.pem");
  o.max_requests_per_caller = 1;
  StartServer(o);
  auto held = Connect("kor-analyst-by-jpn-ca");
  ASSERT_TRUE(held);
  const std::string body = NewObjectJson("k-1", "III", "x");
  ASSERT_TRUE(PostHeaderInFlight(*held, body));  // in flight until its body is sent
  // A second request of the same certificate is over its limit.
  auto again = Connect("kor-analyst-by-jpn-ca");
  ASSERT_TRUE(again);
  auto refused = again->Request("GET", "/v1/health");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429) << refused->body;
  // The subject it names is served all the same.
  EXPECT_EQ(Call("kor-analyst", "GET", "/v1/health").status, 200);
  // The request in flight is refused once read: the Api admits no certificate of another CA.
  ASSERT_TRUE(held->Send(body));
  auto r = held->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
}

// A request over its caller's limit holds no place: while it is read, its connection may be
// closed to make room for another caller at max_connections.
TEST_F(ServerTest, ARequestOverItsCallersLimitIsClosedToMakeRoom) {
  ServerOptions o = Options();
  o.max_connections = 2;
  o.max_requests_per_caller = 1;
  StartServer(o);
  auto a = Connect("kor-analyst");
  auto c = Connect("kor-analyst");
  ASSERT_TRUE(a && c);
  const std::string body = NewObjectJson("k-1", "III", "x");
  ASSERT_TRUE(PostHeaderInFlight(*a, body));
  ASSERT_TRUE(c->Send("GET /v1/hea"));  // over the limit, and never finished
  // Once the server has read c's first bytes (it logs the refusal then), both places are taken
  // by requests, and the newcomer closes c, whose request will only be refused.
  for (int i = 0; i < 500 && Log().find("refusing a request from") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(Log().find("refusing a request from"), std::string::npos) << Log();
  auto other = Connect("kor-clerk");
  ASSERT_TRUE(other);
  auto served = other->Request("GET", "/v1/health");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  EXPECT_TRUE(c->EndsWithoutData());
  FinishPost(*a, body);
  StopServer();
  EXPECT_NE(Log().find("its request over its caller's limit, to make room"), std::string::npos)
      << Log();
}

// A request that is never answered (its connection timed out) no longer counts against its
// caller.
TEST_F(ServerTest, ARequestThatTimesOutNoLongerCountsAgainstItsCaller) {
  ServerOptions o = Options();
  o.max_requests_per_caller = 1;
  o.read_timeout = std::chrono::seconds(1);
  StartServer(o);
  auto slow = Connect("kor-analyst");
  ASSERT_TRUE(slow);
  ASSERT_TRUE(slow->Send("GET /v1/hea"));
  EXPECT_TRUE(slow->EndsWithoutData());  // closed after read_timeout, with no answer
  auto next = Connect("kor-analyst");
  ASSERT_TRUE(next);
  auto r = next->Request("GET", "/v1/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

// Connections that never finish their handshake (anyone who can reach the port can open them)
// cannot keep out a client with a certificate, nor close one kept alive between requests: a new
// connection closes the oldest of them first.
TEST_F(ServerTest, AFloodOfUnfinishedHandshakesDoesNotKeepClientsOut) {
  ServerOptions o = Options();
  o.max_connections = 4;
  o.handshake_timeout = std::chrono::seconds(60);
  StartServer(o);
  auto idle = Connect("kor-analyst");
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->Request("GET", "/v1/health"));
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 8; ++i) {
    silent.push_back(Client::Tcp(server_->port()));  // never starts a TLS handshake
    ASSERT_NE(silent.back(), nullptr);
  }
  auto client = Connect("kor-analyst");
  ASSERT_TRUE(client);
  auto r = client->Request("GET", "/v1/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // The oldest silent ones were closed to make room, long before the handshake timeout.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.front()->EndsWithoutData());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The client kept alive before the flood still has its connection.
  auto still = idle->Request("GET", "/v1/health");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
}

TEST_F(ServerTest, StopFinishesTheRequestInFlightAndClosesIdleConnections) {
  StartServer();
  auto busy = Connect("kor-analyst");
  auto idle = Connect("kor-analyst");
  ASSERT_TRUE(busy && idle);
  ASSERT_TRUE(idle->Request("GET", "/v1/health"));
  ASSERT_TRUE(busy->Send("GET /v1/health HTTP/1.1\r\n"));
  std::this_thread::sleep_for(1s);  // the server has the first bytes: a request in flight
  server_->Stop();
  EXPECT_TRUE(idle->EndsWithoutData());
  ASSERT_TRUE(busy->Send("Host: x\r\n\r\n"));
  auto r = busy->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["connection"], "close");
  thread_.join();  // Run returns
  const uint16_t port = server_->port();
  server_.reset();
  EXPECT_EQ(Client::Connect(port, pki_->Path("ca.pem"), As("kor-analyst")), nullptr);
}

// A server that can no longer wait for connections (an allocation failed as it re-armed its
// accept) stops as Stop would, and Run says why: it neither lingers without accepting nor ends
// as if asked to.
TEST_F(ServerTest, AServerThatCannotAcceptAnyMoreStopsAndSaysWhy) {
  ServerOptions o = Options();
  int waits = 0;  // io thread only
  o.before_wait_for_testing = [&waits](std::string_view wait) {
    if (wait == "accept" && ++waits == 2) throw std::bad_alloc();
  };
  auto server = Server::Create(std::move(o), *node_);
  ASSERT_TRUE(server) << server.error().ToString();
  Status served;
  std::thread run([&] { served = (*server)->Run(); });
  // The first connection is accepted; the wait for the next one fails.
  Client::Connect((*server)->port(), pki_->Path("ca.pem"), As("kor-analyst")).reset();
  run.join();
  ASSERT_FALSE(served);
  EXPECT_EQ(served.error().code, Code::kUnavailable);
  EXPECT_EQ(served.error().message, "cannot accept connections any more: out of memory");
  EXPECT_EQ(Client::Connect((*server)->port(), pki_->Path("ca.pem"), As("kor-analyst")), nullptr);
}

// The same when the revocation lists can no longer be watched: a server that would go on with
// the lists it read last, never again the file, stops instead.
TEST_F(ServerTest, AServerThatCannotWatchItsRevocationListsStopsAndSaysWhy) {
  const std::string crl = root_ + "/crl.pem";
  RevokeOptions revoke{pki_->Path("ca.pem"), pki_->Path("ca.key"), crl, {}, ASecondAgo()};
  ASSERT_TRUE(RevokeCertificate(revoke));
  ServerOptions o = Options();
  o.crl_file = crl;
  int looks = 0;  // io thread only
  o.before_wait_for_testing = [&looks](std::string_view wait) {
    if (wait == "revocation lists" && ++looks == 2) throw std::bad_alloc();
  };
  auto server = Server::Create(std::move(o), *node_);
  ASSERT_TRUE(server) << server.error().ToString();
  Status served;
  std::thread run([&] { served = (*server)->Run(); });
  run.join();  // the second look, a second after the first, fails
  EXPECT_EQ(looks, 2);
  ASSERT_FALSE(served);
  EXPECT_EQ(served.error().code, Code::kUnavailable);
  EXPECT_EQ(served.error().message, "cannot watch the revocation lists any more: out of memory");
  EXPECT_EQ(Client::Connect((*server)->port(), pki_->Path("ca.pem"), As("kor-analyst")), nullptr);
}

// The client checks the server's certificate against the address it dials: an address OpenSSL
// cannot check (an IPv6 address with a zone) is refused before any connection, not dialled with
// no check of the name.
// --- the client against a scripted server -------------------------------------------------------

// A client for the scripted server's port, as a node's federation makes one (`expect` names the
// partner), with a short deadline.
std::unique_ptr<HttpsClient> ClientOf(const TestPki& pki, uint16_t port, std::string expect = "",
                                      std::string crl_file = "", const std::string& ca = "ca.pem") {
  HttpsClientOptions o;
  o.port = port;
  o.ca_file = pki.Path(ca);
  o.cert_file = pki.Path("jpn-node.pem");
  o.key_file = pki.Path("jpn-node.key");
  o.expect_common_name = std::move(expect);
  o.crl_file = std::move(crl_file);
  o.timeout = 3s;
  auto client = HttpsClient::Create(o);
  EXPECT_TRUE(client) << client.error().ToString();
  return client ? std::move(*client) : nullptr;
}

ScriptedServer::Script Answers(std::vector<std::string> answers) {
  return [answers = std::move(answers)](SSL* ssl, int request) {
    return static_cast<size_t>(request) < answers.size() &&
           WriteAll(ssl, answers[static_cast<size_t>(request)]);
  };
}

// A partner's node must show a node certificate of its party, as a calling node must to the
// server: the common name and the organization both its party, for TLS server use.
TEST_F(ServerTest, ClientRequiresThePartnersNodeCertificate) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (const char* cert : {"jpn-node-server", "jpn-of-usa", "jpn-no-usage", "server"}) {
    SCOPED_TRACE(cert);
    ScriptedServer server(pki_->Path("ca.pem"), pki_->Path(std::string(cert) + ".pem"),
                          pki_->Path(std::string(cert) + ".key"), Answers({ok}));
    auto client = ClientOf(*pki_, server.port(), "JPN");
    ASSERT_NE(client, nullptr);
    auto r = client->Request("GET", "/v1/health");
    if (std::string_view(cert) == "jpn-node-server") {
      ASSERT_TRUE(r) << r.error().ToString();
      EXPECT_EQ(r->body, "ok");
      continue;
    }
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kUnavailable);
    const std::string_view why =
        std::string_view(cert) == "server" ? "names `KOR`, not `JPN`" : "is not a node's";
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }
}

// With revocation lists, a partner's certificate that a list of its CA revokes is refused in the
// handshake. Lists read again close the connection kept open, so the next request's handshake
// checks the certificate against them; an unchanged file is not read again; a file that no
// longer loads is reported once and leaves the lists read before in force.
TEST_F(ServerTest, ClientRefusesARevokedServerCertificate) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string crl = root_ + "/crl.pem";
  RevokeOptions revoke{pki_->Path("ca.pem"), pki_->Path("ca.key"), crl, {}, ASecondAgo()};
  ASSERT_TRUE(RevokeCertificate(revoke));  // a list revoking nothing yet
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                        pki_->Path("jpn-node-server.key"), Answers({ok, ok, ok}));
  auto client = ClientOf(*pki_, server.port(), "JPN", crl);
  ASSERT_NE(client, nullptr);
  auto r = client->Request("GET", "/v1/health");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(client->RefreshRevocationLists(), "");  // unchanged
  r = client->Request("GET", "/v1/health");         // on the connection kept open
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(server.connections(), 1);

  revoke.certs = {pki_->Path("jpn-node-server.pem")};
  ASSERT_TRUE(RevokeCertificate(revoke));
  EXPECT_EQ(client->RefreshRevocationLists(),
            "revocation lists: 1 from `" + crl + "`, revoking 1 certificate");
  r = client->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kUnavailable);
  EXPECT_NE(r.error().message.find("the server's certificate is refused: certificate revoked"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.connections(), 2);

  std::ofstream(crl) << "not a list\n";
  EXPECT_EQ(client->RefreshRevocationLists(),
            "revocation lists: no revocation list in `" + crl +
                "`; the lists read before stay in force (read again each second)");
  EXPECT_EQ(client->RefreshRevocationLists(), "");  // the same error, reported once
  r = client->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("certificate revoked"), std::string::npos) << r.error().message;

  // A client is not made with a file it cannot use.
  HttpsClientOptions o;
  o.ca_file = pki_->Path("ca.pem");
  o.cert_file = pki_->Path("jpn-node.pem");
  o.key_file = pki_->Path("jpn-node.key");
  o.crl_file = crl;
  auto refused = HttpsClient::Create(o);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("no revocation list in"), std::string::npos)
      << refused.error().message;
}

// Each list in force that expires closes the client's connection, kept open from before, as new
// lists do: the next handshake checks the server's certificate again (decision #191). Here a
// file holds two lists, `ca`'s and then `jpn-ca`'s, whose next updates are three seconds apart;
// the server's certificate is of `jpn-ca`.
TEST_F(ServerTest, ClientDropsItsConnectionWhenAListExpires) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string crl = root_ + "/crl.pem";
  const Instant now = SystemClock().Now();
  std::vector<Instant> next_updates;
  for (const auto& [ca, seconds] : {std::pair{"ca", 3}, std::pair{"jpn-ca", 6}}) {
    const std::string file = root_ + "/" + ca + "-crl.pem";
    auto made = RevokeCertificate({pki_->Path(std::string(ca) + ".pem"),
                                   pki_->Path(std::string(ca) + ".key"),
                                   file,
                                   {},
                                   Instant{now.micros - 86'400'000'000LL + seconds * 1'000'000LL},
                                   1});
    ASSERT_TRUE(made) << made.error().ToString();
    next_updates.push_back(made->next_update);
    std::ofstream(crl, std::ios::app) << std::ifstream(file).rdbuf();
  }
  const auto after = [](Instant t) {
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(
        std::chrono::microseconds(t.micros) + std::chrono::milliseconds(500)));
  };
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-by-jpn-ca.pem"),
                        pki_->Path("jpn-node-by-jpn-ca.key"), Answers({ok, ok}));
  auto client = ClientOf(*pki_, server.port(), "JPN", crl, "bundle.pem");
  ASSERT_NE(client, nullptr);
  auto r = client->Request("GET", "/v1/health");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(client->RefreshRevocationLists(), "");
  // `ca`'s list expires: the connection closes, and the next one passes (the server's certificate
  // is not of that CA).
  after(next_updates[0]);
  std::string line = client->RefreshRevocationLists();
  EXPECT_TRUE(line.starts_with("revocation lists: in `" + crl + "`, the list of ")) << line;
  EXPECT_NE(line.find(" expired at "), std::string::npos) << line;
  EXPECT_NE(line.find("the certificates of that CA are refused"), std::string::npos) << line;
  EXPECT_EQ(client->RefreshRevocationLists(), "");  // said once
  r = client->Request("GET", "/v1/health");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(server.connections(), 2);
  // Then `jpn-ca`'s: the connection closes again, and the next handshake is refused.
  after(next_updates[1]);
  line = client->RefreshRevocationLists();
  EXPECT_TRUE(line.starts_with("revocation lists: in `" + crl + "`, the list of ")) << line;
  EXPECT_EQ(client->RefreshRevocationLists(), "");
  r = client->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("the server's certificate is refused: CRL has expired"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.connections(), 3);
}

// A partner's server certificate that expires while the client keeps its connection: the
// connection is not used again, and the new handshake refuses the certificate (decision #157).
TEST_F(ServerTest, ClientDropsAConnectionWhoseServerCertificateExpired) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ASSERT_TRUE(pki_->MakeLeafValidFor("brief-server", "/CN=JPN/O=JPN", "ca", "node_server_ext", 5s));
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("brief-server.pem"),
                        pki_->Path("brief-server.key"), Answers({ok, ok, ok}));
  auto client = ClientOf(*pki_, server.port(), "JPN");
  ASSERT_NE(client, nullptr);
  auto r = client->Request("GET", "/v1/health");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_TRUE(pki_->WaitUntilExpired("brief-server"));
  r = client->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kUnavailable);
  EXPECT_NE(r.error().message.find("the server's certificate is refused: certificate has expired"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.connections(), 2);
}

// With the partner's certificate configured, its node must present that certificate's key, not
// any node certificate of the CA that names it.
TEST_F(ServerTest, ClientRequiresTheKeyOfThePartnersConfiguredCertificate) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (const char* configured : {"jpn-node", "jpn-node-server"}) {
    SCOPED_TRACE(configured);
    ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                          pki_->Path("jpn-node-server.key"), Answers({ok}));
    HttpsClientOptions o;
    o.port = server.port();
    o.ca_file = pki_->Path("ca.pem");
    o.cert_file = pki_->Path("jpn-node.pem");
    o.key_file = pki_->Path("jpn-node.key");
    o.expect_common_name = "JPN";
    auto key =
        server_internal::PartnerKeyFromFile(pki_->Path(std::string(configured) + ".pem"), "JPN");
    ASSERT_TRUE(key) << key.error().ToString();
    o.expect_public_key = *key;
    o.timeout = 3s;
    auto client = HttpsClient::Create(o);
    ASSERT_TRUE(client) << client.error().ToString();
    auto r = (*client)->Request("GET", "/v1/health");
    if (std::string_view(configured) == "jpn-node-server") {
      ASSERT_TRUE(r) << r.error().ToString();
      EXPECT_EQ(r->body, "ok");
      continue;
    }
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kUnavailable);
    EXPECT_NE(r.error().message.find("does not carry the key of the certificate configured"),
              std::string::npos)
        << r.error().message;
  }
}

// A server cannot make the client hold more than a bounded buffer of bytes it has not parsed:
// a chunk's size line that never ends fails the read at once, not at the deadline (3 s here),
// which is all an unbounded buffer could do.
TEST_F(ServerTest, ClientRefusesAnEndlessChunkLine) {
  std::atomic<size_t> written{0};
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                        pki_->Path("jpn-node-server.key"), [&written](SSL* ssl, int) {
                          if (!WriteAll(ssl,
                                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                                        "\r\n\r\n1;a=")) {
                            return false;
                          }
                          const std::string run(16 << 10, 'a');
                          while (written < (16u << 20) && WriteAll(ssl, run)) written += run.size();
                          char byte;  // then holds the connection open until the client ends it
                          while (SSL_read(ssl, &byte, 1) > 0) {
                          }
                          return false;
                        });
  auto client = ClientOf(*pki_, server.port(), "JPN");
  ASSERT_NE(client, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

// An interim answer where a final one is due, or bytes after an answer, end the connection: no
// later request takes them for its answer.
TEST_F(ServerTest, ClientTakesNoStrayAnswerForTheNextRequest) {
  {
    ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                          pki_->Path("jpn-node-server.key"),
                          Answers({"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"}));
    auto client = ClientOf(*pki_, server.port(), "JPN");
    ASSERT_NE(client, nullptr);
    auto r = client->Request("GET", "/v1/health");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("interim answer (103)"), std::string::npos)
        << r.error().message;
  }
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                        pki_->Path("jpn-node-server.key"),
                        Answers({"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                 "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"}));
  auto client = ClientOf(*pki_, server.port(), "JPN");
  ASSERT_NE(client, nullptr);
  auto first = client->Request("GET", "/v1/health");
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->body, "ok");
  auto second = client->Request("GET", "/v1/health");
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->status, 200u);
  EXPECT_EQ(second->body, "yes");
  EXPECT_EQ(server.connections(), 2);
}

// A request on a kept-alive connection that the server closed meanwhile (as it does one idle
// too long) goes once more on a new connection; one whose answer did not come in time does not:
// the server has it, and the same request would wait the same (decision #162).
TEST_F(ServerTest, ClientSendsAgainOnlyOnAConnectionTheServerClosed) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  HttpsClientOptions o;
  o.ca_file = pki_->Path("ca.pem");
  o.cert_file = pki_->Path("jpn-node.pem");
  o.key_file = pki_->Path("jpn-node.key");
  o.expect_common_name = "JPN";
  o.timeout = 1s;
  {
    // The first connection ends after its answer, without a close_notify.
    ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                          pki_->Path("jpn-node-server.key"),
                          [&](SSL* ssl, int request) { return WriteAll(ssl, ok) && request > 0; });
    o.port = server.port();
    auto client = HttpsClient::Create(o);
    ASSERT_TRUE(client) << client.error().ToString();
    ASSERT_TRUE((*client)->Request("GET", "/v1/health"));
    std::this_thread::sleep_for(100ms);  // the server has closed it
    auto again = (*client)->Request("GET", "/v1/health");
    ASSERT_TRUE(again) << again.error().ToString();
    EXPECT_EQ(again->body, "ok");
    EXPECT_EQ(server.connections(), 2);
  }
  std::atomic<int> seen = 0;
  ScriptedServer server(pki_->Path("ca.pem"), pki_->Path("jpn-node-server.pem"),
                        pki_->Path("jpn-node-server.key"), [&](SSL* ssl, int request) {
                          ++seen;
                          if (request == 0) return WriteAll(ssl, ok);
                          std::this_thread::sleep_for(1500ms);  // past the client's deadline
                          return false;
                        });
  o.port = server.port();
  auto client = HttpsClient::Create(o);
  ASSERT_TRUE(client) << client.error().ToString();
  ASSERT_TRUE((*client)->Request("GET", "/v1/health"));
  auto late = (*client)->Request("GET", "/v1/health");
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message.find("timed out"), std::string::npos) << late.error().message;
  std::this_thread::sleep_for(1000ms);  // a request sent again would be seen by now
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(server.connections(), 1);
}

// The server's side of the endless chunk line: a 400 once the buffer's limit is reached, while
// the header and body limits still hold.
TEST_F(ServerTest, AnEndlessChunkLineIsRefused) {
  StartServer();
  auto client = Connect("kor-analyst");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(
      client->Send("POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   "application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n1;a=" +
                   std::string(100 << 10, 'a')));
  auto refused = client->Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("a chunk's size or a trailer"), std::string::npos) << refused->body;
  const HttpResponse health = Call("kor-analyst", "GET", "/v1/health");
  EXPECT_EQ(health.status, 200);
}

TEST_F(ServerTest, ClientRefusesAnAddressItCannotCheck) {
  HttpsClientOptions o;
  o.host = "fe80::1%lo";
  o.port = 9;
  o.ca_file = pki_->Path("ca.pem");
  o.cert_file = pki_->Path("jpn-node.pem");
  o.key_file = pki_->Path("jpn-node.key");
  auto client = HttpsClient::Create(o);
  ASSERT_TRUE(client) << client.error().ToString();
  auto r = (*client)->Request("GET", "/v1/health");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot check a certificate"), std::string::npos)
      << r.error().message;
}

// A flood of connections that fail their handshake logs a line a second, and the count of the
// rest; each kind apart.
TEST(LineLimiterTest, OneLineASecondOfEachKindAndTheCountOfTheRest) {
  using server_internal::LineLimiter;
  using std::chrono::milliseconds;
  LineLimiter limiter;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h1", t0), "h1");
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h2", t0 + milliseconds(1)), std::nullopt);
  EXPECT_EQ(limiter.Admit(LineLimiter::kRefused, "r1", t0 + milliseconds(2)), "r1");  // apart
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h3", t0 + milliseconds(999)), std::nullopt);
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h4", t0 + milliseconds(1000)),
            "h4 (and 2 more like it left out)");
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h5", t0 + milliseconds(2500)), "h5");
  EXPECT_EQ(limiter.Admit(LineLimiter::kHandshake, "h6", t0 + milliseconds(2600)), std::nullopt);
  EXPECT_EQ(limiter.Admit(LineLimiter::kRefused, "r2", t0 + milliseconds(2700)), "r2");
  EXPECT_EQ(limiter.Flush(),
            std::vector<std::string>{"1 more lines of failed handshakes were left out"});
  EXPECT_TRUE(limiter.Flush().empty());
}

// Through the server: many refused handshakes in a row, few lines, and the count at the stop.
TEST_F(ServerTest, RefusedHandshakesDoNotFloodTheLog) {
  StartServer();
  constexpr int kAttempts = 20;
  for (int i = 0; i < kAttempts; ++i) {
    auto client = Client::Connect(server_->port(), pki_->Path("ca.pem"), ClientCert{});
    if (client != nullptr) {
      client->Send(Client::RequestText("GET", "/v1/health", {}));
      EXPECT_FALSE(client->Read());
    }
  }
  StopServer();
  const std::string log = Log();
  size_t lines = 0;
  uint64_t left_out = 0;
  for (size_t at = log.find("tls handshake with"); at != std::string::npos;
       at = log.find("tls handshake with", at + 1)) {
    ++lines;
  }
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    uint64_t n = 0;
    if (const size_t at = line.find("(and "); at != std::string::npos) {
      n = std::stoull(line.substr(at + 5));
    } else if (line.ends_with("more lines of failed handshakes were left out")) {
      n = std::stoull(line);
    }
    left_out += n;
  }
  EXPECT_GE(lines, 1u) << log;
  EXPECT_LT(lines, static_cast<size_t>(kAttempts)) << log;
  EXPECT_EQ(lines + left_out, static_cast<uint64_t>(kAttempts)) << log;
}

// A handshake that the stop ends (the caller sent nothing) is not the caller's failure: not logged.
TEST_F(ServerTest, AHandshakeEndedByTheStopIsNotLogged) {
  StartServer();
  auto silent = Client::Tcp(server_->port());  // never starts a TLS handshake
  ASSERT_NE(silent, nullptr);
  auto client = Connect("kor-analyst");  // the silent one's accept has run by its answer
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Request("GET", "/v1/health"));
  StopServer();
  EXPECT_EQ(Log().find("tls handshake with"), std::string::npos) << Log();
}

// A host name is looked up within the client's deadline: a resolver that does not answer holds
// the federation's thread (and its stop) no longer than any other step.
TEST(ResolveTest, ALookupThatHangsIsGivenUpAtTheDeadline) {
  using server_internal::ResolveWithin;
  using server_internal::SocketAddresses;
  const auto start = std::chrono::steady_clock::now();
  auto hung = ResolveWithin(
      [] {
        std::this_thread::sleep_for(std::chrono::seconds(3));
        return Result<SocketAddresses>(SocketAddresses{"late"});
      },
      std::chrono::milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_FALSE(hung);
  EXPECT_EQ(hung.error().message, "timed out");
  auto quick = ResolveWithin(
      [] {
        return Result<SocketAddresses>(SocketAddresses{"a", "b"});
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(quick) << quick.error().ToString();
  EXPECT_EQ(*quick, (SocketAddresses{"a", "b"}));
  // A lookup's failure comes back as it is (no real lookup: nothing leaves the machine).
  auto failed = ResolveWithin(
      [] { return Result<SocketAddresses>(Fail(Code::kUnavailable, "no such host")); },
      std::chrono::seconds(10));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "no such host");
}

// A client that names the server by host name finds it, and checks the name in its certificate.
// A port file is read only when it is a regular file, and only when it names a port; the error
// says which it is not (a missing file: the node is not running).
TEST(PortFileTest, OnlyARegularFileNamingAPortIsRead) {
  std::string dir = testing::TempDir() + "port-file-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/JPN.port";
  const auto read = [&](const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    return server_internal::ReadPortFile(path);
  };
  const auto refused = [&](const Result<uint16_t>& port, Code code, const std::string& why) {
    ASSERT_FALSE(port);
    EXPECT_EQ(port.error().code, code);
    EXPECT_EQ(port.error().message, "its port file `" + path + "` " + why);
  };
  EXPECT_EQ(read("8443\n").value_or(0), 8443);
  EXPECT_EQ(read("8443").value_or(0), 8443);
  for (const char* bad : {"", "0\n", "65536\n", "-1\n", " 8443\n", "84x3\n", "99999999999"}) {
    SCOPED_TRACE(bad);
    refused(read(bad), Code::kInvalidArgument,
            "does not hold a port (a number from 1 to 65535 and a line end, as `accord serve "
            "--port-file` writes it)");
  }
  fs::remove(path);
  refused(server_internal::ReadPortFile(path), Code::kUnavailable,
          "names no port: its node is not running, or not yet");
  // A FIFO would block an open for reading until a writer came: it is not waited for.
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  refused(server_internal::ReadPortFile(path), Code::kInvalidArgument, "is not a regular file");
  fs::remove(path);
  // A name that cannot be opened for another reason than its absence: under a file.
  std::ofstream(path) << "8443\n";
  const std::string under = path + "/KOR.port";
  const auto port = server_internal::ReadPortFile(under);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().code, Code::kUnavailable);
  EXPECT_EQ(port.error().message, "its port file `" + under + "` cannot be read: Not a directory");
  fs::remove_all(dir);
}

// A client reaches a server by name. The host is checked against the certificate's
// subjectAltName alone: a certificate that names it only as its common name (the legacy fallback
// of RFC 6125 §6.4.4) is refused (decision #193).
TEST_F(ServerTest, ClientReachesTheServerByNameInItsSubjectAltNameOnly) {
  const auto health_by_name = [&](const std::string& server_cert) -> Result<HttpsResponse> {
    ServerOptions so = Options();
    so.cert_file = pki_->Path(server_cert + ".pem");
    so.key_file = pki_->Path(server_cert + ".key");
    StartServer(so);
    if (server_ == nullptr) return tl::unexpected(Error{Code::kInternal, "no server"});
    HttpsClientOptions o;
    o.host = "localhost";
    o.port = server_->port();
    o.ca_file = pki_->Path("ca.pem");
    o.cert_file = pki_->Path("kor-analyst.pem");
    o.key_file = pki_->Path("kor-analyst.key");
    auto client = HttpsClient::Create(o);
    EXPECT_TRUE(client) << client.error().ToString();
    auto r = client ? (*client)->Request("GET", "/v1/health") : tl::unexpected(client.error());
    StopServer();
    return r;
  };
  auto named = health_by_name("server");  // subjectAltName = IP:127.0.0.1, DNS:localhost
  ASSERT_TRUE(named) << named.error().ToString();
  EXPECT_EQ(named->status, 200u) << named->body;
  auto cn_only = health_by_name("server-cn-only");  // CN=localhost, no subjectAltName
  ASSERT_FALSE(cn_only);
  EXPECT_NE(cn_only.error().message.find("hostname mismatch"), std::string::npos)
      << cn_only.error().message;
}

TEST_F(ServerTest, StopBeforeRunReturnsAtOnce) {
  auto server = Server::Create(Options(), *node_);
  ASSERT_TRUE(server);
  (*server)->Stop();
  EXPECT_TRUE((*server)->Run());
  (*server)->Stop();
}

TEST_F(ServerTest, CreateRefusesBadOptions) {
  struct Bad {
    std::string what;
    std::function<void(ServerOptions&)> set;
    std::string says;  // a part of the message
  };
  const std::string no_ca_file = pki_->Path("openssl.cnf");
  const Instant now = ASecondAgo();
  const std::string jpn_crl = root_ + "/jpn-crl.pem", old_crl = root_ + "/old-crl.pem";
  const std::string crl = root_ + "/crl.pem";
  ASSERT_TRUE(RevokeCertificate({pki_->Path("ca.pem"), pki_->Path("ca.key"), crl, {}, now}));
  ASSERT_TRUE(
      RevokeCertificate({pki_->Path("jpn-ca.pem"), pki_->Path("jpn-ca.key"), jpn_crl, {}, now}));
  ASSERT_TRUE(RevokeCertificate({pki_->Path("ca.pem"),
                                 pki_->Path("ca.key"),
                                 old_crl,
                                 {},
                                 Instant{now.micros - 40 * 86'400'000'000LL},
                                 30}));
  const std::vector<Bad> table = {
      {"no revocation list file", [&](ServerOptions& o) { o.crl_file = root_ + "/none.pem"; },
       "cannot read the revocation lists `" + root_ + "/none.pem`"},
      {"a revocation list file with none", [&](ServerOptions& o) { o.crl_file = no_ca_file; },
       "no revocation list in `" + no_ca_file + "`"},
      {"a revocation list of a CA the node does not trust",
       [&](ServerOptions& o) { o.crl_file = jpn_crl; },
       "revocation list 1 is not signed by a CA of the node's `ca`"},
      {"an expired revocation list", [&](ServerOptions& o) { o.crl_file = old_crl; },
       "revocation list 1 has expired"},
      // OpenSSL would check the certificates of either CA against the list of the other.
      {"a revocation list of one of two CAs of one name",
       [&](ServerOptions& o) {
         o.ca_file = pki_->Path("ca-and-its-namesake.pem");
         o.crl_file = crl;
       },
       "is of /CN=ca, and the node trusts another CA of that name"},
      {"a key that is not the node certificate's",
       [&](ServerOptions& o) { o.key_file = pki_->Path("kor-analyst.key"); }, "key"},
      {"no CA file", [&](ServerOptions& o) { o.ca_file = pki_->Path("missing.pem"); },
       "missing.pem"},
      // OpenSSL's reason in words, not its code ("error:0480006C:PEM routines::no start line").
      {"a revocation list file that is not there",
       [&](ServerOptions& o) { o.crl_file = pki_->Path("missing-crl.pem"); },
       "cannot read the revocation lists `" + pki_->Path("missing-crl.pem") +
           "`: No such file or directory"},
      {"a key given as the certificate",
       [&](ServerOptions& o) { o.cert_file = pki_->Path("kor-analyst.key"); },
       "kor-analyst.key`: it holds no PEM block of that kind (-----BEGIN ...-----): is it empty, "
       "or a file of another kind?"},
      // CAs that do not verify the node's own certificate cannot say which of them issues its
      // users'.
      {"CAs that do not verify the node",
       [&](ServerOptions& o) { o.ca_file = pki_->Path("other-ca.pem"); },
       "does not verify against its CAs"},
      {"a users' CA not among the CAs",
       [&](ServerOptions& o) { o.user_ca_file = pki_->Path("other-ca.pem"); },
       "/CN=other-ca is not a CA the server trusts"},
      {"a users' CA file with no certificate",
       [&](ServerOptions& o) { o.user_ca_file = no_ca_file; },
       "no certificate in `" + no_ca_file + "`"},
      // A user's certificate in user_ca_file would make its key a users' CA's; a block that is
      // not a certificate would hide the ones after it.
      {"a user's certificate as a users' CA",
       [&](ServerOptions& o) { o.user_ca_file = pki_->Path("kor-analyst.pem"); },
       "/CN=kor-analyst/O=KOR is not a CA certificate"},
      {"a users' CA file with a block that is not a certificate",
       [&](ServerOptions& o) { o.user_ca_file = pki_->Path("ca-then-garbage.pem"); },
       "ca-then-garbage.pem`: certificate 2 cannot be read"},
      // A node's certificate that is one of its trusted CAs leaves no CA to issue its users'.
      {"the node's certificate its own trust anchor",
       [&](ServerOptions& o) {
         o.ca_file = o.cert_file = pki_->Path("ca.pem");
         o.key_file = pki_->Path("ca.key");
       },
       "is itself one of its trusted CAs"},
      {"a bad listen address", [](ServerOptions& o) { o.listen_address = "not an address"; },
       "bad listen address `not an address`"},
      {"a zero timeout", [](ServerOptions& o) { o.read_timeout = 0s; },
       "timeouts must be positive"},
  };
  for (const Bad& bad : table) {
    SCOPED_TRACE(bad.what);
    ServerOptions o = Options();
    bad.set(o);
    auto server = Server::Create(o, *node_);
    ASSERT_FALSE(server);
    EXPECT_EQ(server.error().code, Code::kInvalidArgument);
    EXPECT_NE(server.error().message.find(bad.says), std::string::npos) << server.error().message;
  }

  // A port in use.
  auto first = Server::Create(Options(), *node_);
  ASSERT_TRUE(first);
  ServerOptions o = Options();
  o.port = (*first)->port();
  auto second = Server::Create(o, *node_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kUnavailable);
}

// --- the decoder, without a network -----------------------------------------------------------

// A certificate's dates are read in seconds: RFC 5280's "no expiry" date is past what
// system_clock's nanoseconds hold, and read through them it wrapped to 1816, so that every
// request on a connection of such a chain was refused as expired (decision #157).
TEST(TlsTest, CertificateDatesAreReadInSeconds) {
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> t(ASN1_TIME_new(), ASN1_TIME_free);
  ASSERT_EQ(ASN1_TIME_set_string(t.get(), "99991231235959Z"), 1);
  const auto never = server_internal::AsnTimeSeconds(t.get());
  ASSERT_TRUE(never);
  EXPECT_EQ(never->time_since_epoch().count(), 253402300799);
  EXPECT_FALSE(server_internal::HasExpired(*never));
  ASSERT_EQ(ASN1_TIME_set_string(t.get(), "20190823062500Z"), 1);
  const auto notice = server_internal::AsnTimeSeconds(t.get());
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->time_since_epoch().count(), 1566541500);
  EXPECT_TRUE(server_internal::HasExpired(*notice));
  // Valid through the second it names, inclusive.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  EXPECT_FALSE(server_internal::HasExpired(now + std::chrono::seconds(60)));
}

TEST(ApiDecoderTest, RoutesAndMethods) {
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/health", "")->route, Route::kHealth);
  // Unknown query parameters are refused rather than ignored.
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/health?verbose=1", "").error().status, 400u);
  // On every route, the body's routes included: a query there is a client's mistake.
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/objects?offset=5"},
           {"POST", "/v1/objects?dry-run"},
           {"POST", "/v1/objects?limit=5"},
           {"GET", "/v1/objects/x?at=2019-11-23T00:00:00Z"},
           {"POST", "/v1/objects/x/release?to=JPN"},
           {"POST", "/v1/decide?at=2020-01-01T00:00:00Z"},
           {"POST", "/v1/federation/envelopes?key=1"},
           {"POST", "/v1/federation/batches?key=1"},
       }) {
    auto decoded = DecodeApiRequest(method, target, "{}\n");
    ASSERT_FALSE(decoded) << method << " " << target;
    EXPECT_EQ(decoded.error().status, 400u) << target;
    EXPECT_EQ(decoded.error().code, "invalid-argument") << target;
  }
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/x?", "")->object_id, "x");  // an empty query
  // The listing's page: 100 from the first by default.
  auto listing = DecodeApiRequest("GET", "/v1/objects", "");
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->limit, 100u);
  EXPECT_EQ(listing->after, "");
  listing = DecodeApiRequest("GET", "/v1/objects?limit=1000&after=k%2F1", "");
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->limit, 1000u);
  EXPECT_EQ(listing->after, "k/1");
  // The route and the method are checked before the query.
  EXPECT_EQ(DecodeApiRequest("DELETE", "/v1/objects/x?a=1", "").error().status, 405u);
  EXPECT_EQ(DecodeApiRequest("POST", "/v1/health?a=1", "").error().status, 405u);
  EXPECT_EQ(DecodeApiRequest("POST", "/v1/objects/x/bogus?a=1", "{}").error().status, 404u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/flows?at=2019-11-23T00:00:00Z", "")->route, Route::kFlows);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects", "")->route, Route::kListObjects);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/log/checkpoint", "")->route, Route::kCheckpoint);
  auto get = DecodeApiRequest("GET", "/v1/objects/a%20b%2fc", "");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->route, Route::kGetObject);
  EXPECT_EQ(get->object_id, "a b/c");
  auto decide = DecodeApiRequest("POST", "/v1/decide", "{}\n{}");
  ASSERT_TRUE(decide);
  EXPECT_EQ(decide->lines, "{}\n{}");
  // At most kMaxDecideLines lines, blank ones and a last one without its newline counted: each
  // answer line may be 65 times its request (decision #157).
  std::string many;
  for (size_t i = 0; i < server_internal::kMaxDecideLines; ++i) many += "1\n";
  EXPECT_TRUE(DecodeApiRequest("POST", "/v1/decide", many));
  for (const std::string& over : {many + "1", many + "\n"}) {
    auto refused = DecodeApiRequest("POST", "/v1/decide", over);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().status, 413u);
    EXPECT_EQ(refused.error().code, "body-too-large");
    EXPECT_EQ(refused.error().message,
              "a decide request holds at most 10000 lines; this one has 10001");
  }

  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/", "").error().status, 404u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/a/b", "").error().status, 404u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v2/health", "").error().status, 404u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/%zz", "").error().status, 400u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/%2", "").error().status, 400u);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/%ff", "").error().status, 400u);  // not UTF-8
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/objects/%c3%a9", "")->object_id, "\xc3\xa9");
  EXPECT_EQ(DecodeApiRequest("GET", "*", "").error().status, 400u);
  EXPECT_EQ(DecodeApiRequest("GET", "", "").error().status, 400u);
  auto wrong = DecodeApiRequest("POST", "/v1/health", "");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().status, 405u);
  EXPECT_EQ(wrong.error().allow, "GET");
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/decide", "").error().allow, "POST");
}

TEST(ApiDecoderTest, BatchOfEnvelopesIsOnePerLine) {
  auto two = DecodeApiRequest("POST", "/v1/federation/batches", "{\"a\":1}\n{\"b\":2}\n");
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two->route, Route::kEnvelopes);
  // Each line with its newline, as the envelope would be posted alone (its digest is the same).
  EXPECT_EQ(two->envelopes, (std::vector<std::string_view>{"{\"a\":1}\n", "{\"b\":2}\n"}));
  // The last newline is optional; what a line holds is the node's to check.
  auto one = DecodeApiRequest("POST", "/v1/federation/batches", "x");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->envelopes, (std::vector<std::string_view>{"x"}));
  EXPECT_TRUE(Api::IsGrouped("POST", "/v1/federation/batches"));
  EXPECT_TRUE(Api::IsGrouped("POST", "/v1/federation/batches?"));  // an empty query: the same
  EXPECT_TRUE(Api::IsGrouped("GET", "/v1/objects/x?"));
  EXPECT_FALSE(Api::IsGrouped("GET", "/v1/objects"));
  EXPECT_FALSE(Api::IsGrouped("GET", "/v1/objects/"));
  EXPECT_FALSE(Api::IsGrouped("POST", "/v1/federation/envelopes"));

  for (const std::string_view bad : {"", "\n", "a\n\nb", "a\n\r\nb", "\na", "a\n\r"}) {
    auto refused = DecodeApiRequest("POST", "/v1/federation/batches", bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().status, 400u);
    EXPECT_EQ(refused.error().code, "invalid-argument");
  }
  std::string full, over;
  for (size_t i = 0; i < kMaxBatchEnvelopes; ++i) full += "e\n";
  over = full + "e";
  EXPECT_EQ(DecodeApiRequest("POST", "/v1/federation/batches", full)->envelopes.size(),
            kMaxBatchEnvelopes);
  auto too_many = DecodeApiRequest("POST", "/v1/federation/batches", over);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().status, 400u);
  EXPECT_NE(too_many.error().message.find("at most 256"), std::string::npos);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/federation/batches", "").error().allow, "POST");
}

// What a partner answers goes into log lines and GET /v1/federation/peers: one line each, never
// a forged second line, and short.
TEST(ApiDecoderTest, APartnersErrorIsOneShortLine) {
  using server_internal::ErrorMessage;
  using server_internal::OneLine;
  EXPECT_EQ(OneLine("ok: fine 軍事", 100), "ok: fine 軍事");
  EXPECT_EQ(OneLine("a\nWITNESS: fork\r\t\x7f", 100), "a\\x0aWITNESS: fork\\x0d\\x09\\x7f");
  EXPECT_EQ(OneLine("a\xff\xc3", 100), "a\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(OneLine("abcdef", 4), "abcd\xe2\x80\xa6");
  EXPECT_EQ(OneLine("ab軍", 4), "ab\xe2\x80\xa6");  // not cut inside a character
  EXPECT_EQ(OneLine("ab\n", 4), "ab\xe2\x80\xa6");  // nor inside an escape
  EXPECT_EQ(ErrorMessage(500, R"({"error":{"code":"internal","message":"x\ny"}})"),
            "internal: x\\x0ay");
  EXPECT_EQ(ErrorMessage(502, "<html>\n<h1>Bad Gateway</h1>"),
            "HTTP 502: <html>\\x0a<h1>Bad Gateway</h1>");
  const std::string long_message = ErrorMessage(
      500, R"({"error":{"code":"internal","message":")" + std::string(5000, 'm') + "\"}}");
  EXPECT_LE(long_message.size(), 203u);
  const std::string lines = ErrorMessage(500, std::string(300, '\n'));
  EXPECT_EQ(lines.find('\n'), std::string::npos) << lines;
  EXPECT_LE(lines.size(), 213u) << lines;
}

TEST(ApiDecoderTest, TheSenderReadsEachLineOfABatchAnswer) {
  using server_internal::ReadBatchAnswer;
  EXPECT_FALSE(ReadBatchAnswer(R"({"format":"accord-envelope/1","kind":"receipt"})").error);
  EXPECT_FALSE(ReadBatchAnswer(R"({"status":"recorded"})").error);  // not a status: Receive's
  auto refused = ReadBatchAnswer(R"({"status":422,"error":{"code":"data-loss","message":"bad"}})");
  EXPECT_TRUE(refused.error);
  EXPECT_EQ(refused.status, 422u);
  EXPECT_EQ(refused.message, "data-loss: bad");
  // A status out of range, or a line that is not JSON after its start, is a server error.
  for (const std::string_view odd : {R"({"status":7})", R"({"status":600,"error":1})",
                                     R"({"status":4)", R"({"status":403.5})"}) {
    auto a = ReadBatchAnswer(odd);
    EXPECT_TRUE(a.error) << odd;
    EXPECT_EQ(a.status, 502u) << odd;
    EXPECT_NE(a.message.find(odd.substr(0, 10)), std::string::npos) << a.message;
  }
}

TEST(ApiDecoderTest, ActionsOnObjects) {
  auto release = DecodeApiRequest("POST", "/v1/objects/k%2d1/release", R"({"to":"JPN"})");
  ASSERT_TRUE(release) << release.error().message;
  EXPECT_EQ(release->route, Route::kRelease);
  EXPECT_EQ(release->object_id, "k-1");
  EXPECT_EQ(release->to, "JPN");
  EXPECT_EQ(DecodeApiRequest("POST", "/v1/objects/k/forward", R"({"to":"JPN"})")->route,
            Route::kForward);
  EXPECT_EQ(DecodeApiRequest("POST", "/v1/objects/k/consent", R"({"to":"JPN"})")->route,
            Route::kConsent);
  auto reclassify = DecodeApiRequest("POST", "/v1/objects/k/reclassify", R"({"level":"I"})");
  ASSERT_TRUE(reclassify);
  EXPECT_EQ(reclassify->level, "I");
  auto destroy = DecodeApiRequest("POST", "/v1/objects/k/destroy", R"({"scope":"everywhere"})");
  ASSERT_TRUE(destroy);
  EXPECT_EQ(destroy->scope, DestroyScope::kEverywhere);
  auto report = DecodeApiRequest("POST", "/v1/objects/k/report", R"({"kind":"loss"})");
  ASSERT_TRUE(report);
  EXPECT_EQ(report->kind, "loss");
  EXPECT_EQ(report->text, "");

  const auto status = [](std::string_view method, std::string_view target, std::string_view body) {
    auto r = DecodeApiRequest(method, target, body);
    return r ? 200u : r.error().status;
  };
  EXPECT_EQ(status("POST", "/v1/objects/k/release", R"({"to":7})"), 400u);
  EXPECT_EQ(status("POST", "/v1/objects/k/release", R"({"too":"JPN"})"), 400u);
  EXPECT_EQ(status("POST", "/v1/objects/k/release", R"({})"), 400u);
  EXPECT_EQ(status("POST", "/v1/objects/k/release", "{"), 400u);
  EXPECT_EQ(status("POST", "/v1/objects/k/release", "[]"), 400u);
  EXPECT_EQ(status("POST", "/v1/objects/k/destroy", R"({"scope":"all"})"), 400u);
  EXPECT_EQ(status("GET", "/v1/objects/k/release", ""), 405u);
  EXPECT_EQ(status("POST", "/v1/objects/k/explode", "{}"), 404u);
  EXPECT_EQ(status("POST", "/v1/objects//release", R"({"to":"JPN"})"), 404u);
}

TEST(ApiDecoderTest, QueriesAgreementsAndTheLog) {
  auto agreements = DecodeApiRequest("GET", "/v1/agreements?at=2019-11-23T00:00:00%2B09:00", "");
  ASSERT_TRUE(agreements) << agreements.error().message;
  EXPECT_EQ(agreements->route, Route::kAgreements);
  ASSERT_TRUE(agreements->at);
  EXPECT_EQ(FormatInstant(*agreements->at), "2019-11-22T15:00:00Z");
  auto one = DecodeApiRequest("GET", "/v1/agreements/kor-jpn-gsomia", "");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->route, Route::kAgreement);
  EXPECT_EQ(one->agreement_id, "kor-jpn-gsomia");
  EXPECT_FALSE(one->at);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/agreements/a/timeline", "")->route, Route::kTimeline);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/flows", "")->route, Route::kFlows);
  auto proof = DecodeApiRequest("GET", "/v1/log/proof?index=3&size=10", "");
  ASSERT_TRUE(proof);
  EXPECT_EQ(proof->route, Route::kLogProof);
  EXPECT_EQ(proof->first, 3u);
  EXPECT_EQ(proof->second, 10u);
  EXPECT_TRUE(proof->second_given);
  auto consistency = DecodeApiRequest("GET", "/v1/log/consistency?from=4", "");
  ASSERT_TRUE(consistency);
  EXPECT_EQ(consistency->route, Route::kLogConsistency);
  EXPECT_FALSE(consistency->second_given);
  auto entries = DecodeApiRequest("GET", "/v1/log/entries", "");
  ASSERT_TRUE(entries);
  EXPECT_EQ(entries->first, 0u);
  auto envelope = DecodeApiRequest("POST", "/v1/federation/envelopes", "xyz");
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->envelope, "xyz");
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/federation/peers", "")->route, Route::kPeers);
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/outbox", "")->route, Route::kOutbox);

  for (const char* bad : {"/v1/log/proof?size=3", "/v1/log/proof?index=-1", "/v1/log/proof?index=x",
                          "/v1/log/proof?index=1&index=2", "/v1/log/proof?index=1&foo=2",
                          "/v1/agreements?at=yesterday", "/v1/flows?at=%zz",
                          "/v1/log/entries?from=99999999999999999999999"}) {
    auto r = DecodeApiRequest("GET", bad, "");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().status, 400u) << bad;
  }
  EXPECT_EQ(DecodeApiRequest("GET", "/v1/agreements/a/b", "").error().status, 404u);

  auto sizes = DecodeApiRequest("POST", "/v1/log/consistency", R"({"from":[3,1,3],"to":9})");
  ASSERT_TRUE(sizes) << sizes.error().message;
  EXPECT_EQ(sizes->route, Route::kLogConsistencies);
  EXPECT_EQ(sizes->sizes, (std::vector<uint64_t>{3, 1, 3}));
  EXPECT_EQ(sizes->second, 9u);
  EXPECT_TRUE(sizes->second_given);
  auto latest = DecodeApiRequest("POST", "/v1/log/consistency", R"({"from":[2]})");
  ASSERT_TRUE(latest) << latest.error().message;
  EXPECT_FALSE(latest->second_given);
  std::string too_many = R"({"from":[1)";
  for (size_t i = 1; i <= server_internal::kMaxConsistencySizes; ++i) too_many += ",1";
  too_many += "]}";
  for (const std::string& bad :
       {std::string(R"({"from":[]})"), std::string(R"({"from":[0]})"),
        std::string(R"({"from":[-1]})"), std::string(R"({"from":[1.5]})"),
        std::string(R"({"from":["1"]})"), std::string(R"({"from":1})"), std::string(R"({"to":3})"),
        std::string(R"({"from":[1],"to":-1})"), std::string(R"({"from":[1],"too":3})"),
        std::string(R"({"from":[1],"from":[2]})"), std::string("[1]"), std::string("{"),
        too_many}) {
    auto r = DecodeApiRequest("POST", "/v1/log/consistency", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().status, 400u) << bad;
    EXPECT_EQ(r.error().code, "invalid-argument") << bad;
  }
  auto put = DecodeApiRequest("PUT", "/v1/log/consistency", "");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().status, 405u);
  EXPECT_EQ(put.error().allow, "GET, POST");
  EXPECT_FALSE(DecodeApiRequest("POST", "/v1/log/consistency?from=1", R"({"from":[1]})"));

  EXPECT_TRUE(IsNodeRoute(Route::kEnvelope));
  EXPECT_TRUE(IsNodeRoute(Route::kLogConsistency));
  EXPECT_TRUE(IsNodeRoute(Route::kLogConsistencies));
  EXPECT_FALSE(IsNodeRoute(Route::kGetObject));
  EXPECT_FALSE(IsNodeRoute(Route::kRelease));
  EXPECT_FALSE(IsNodeRoute(Route::kLogEntries));  // entries name subjects and other partners
}

TEST(ApiDecoderTest, NewObject) {
  auto r = DecodeApiRequest(
      "POST", "/v1/objects",
      R"({"id":"k-1","level":"II","topics":["a","b"],"rel_to":["JPN"],"payload_base64":"aGk="})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->route, Route::kCreateObject);
  EXPECT_EQ(r->object.id, "k-1");
  EXPECT_EQ(r->object.level, "II");
  EXPECT_EQ(r->object.topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r->object.compartments.empty());
  EXPECT_EQ(r->object.rel_to, (std::vector<std::string>{"JPN"}));
  EXPECT_EQ(r->payload.RevealText(InsecureSecretAccess()), "hi");

  for (std::string_view body :
       {"", "null", R"({"id":"k","level":"II","payload_base64":"aGk"})",
        R"({"id":"k","level":"II","payload_base64":"","topics":[""]})",
        R"({"id":"k","level":"II","payload_base64":"","extra":1})",
        "{\"id\":\"\xff\",\"level\":\"II\",\"payload_base64\":\"\"}",
        R"({"id":"k","level":"II","payload_base64":"","topics":[[[[[[[[[[]]]]]]]]]]})"}) {
    auto bad = DecodeApiRequest("POST", "/v1/objects", body);
    ASSERT_FALSE(bad) << body;
    EXPECT_EQ(bad.error().status, 400u) << body;
    EXPECT_EQ(bad.error().code, "invalid-argument") << body;
  }
}

TEST(ApiDecoderTest, ErrorBodyEscapes) {
  EXPECT_EQ(server_internal::ErrorBody("not-found", "no object `a\"b`"),
            R"({"error":{"code":"not-found","message":"no object `a\"b`"}})");
  // Bytes that are not UTF-8 (a client's target echoed back) become U+FFFD: still valid JSON.
  EXPECT_EQ(server_internal::ErrorBody("not-found", "no route `/\xff\xc3`"),
            "{\"error\":{\"code\":\"not-found\",\"message\":\"no route "
            "`/\xef\xbf\xbd\xef\xbf\xbd`\"}}");
  EXPECT_EQ(server_internal::HttpStatus(Code::kAlreadyExists), 409u);
  EXPECT_EQ(server_internal::HttpStatus(Code::kDataLoss), 500u);
  EXPECT_EQ(server_internal::HttpStatus(Code::kPermissionDenied), 403u);
}

}  // namespace
}  // namespace accord
