#include "serve_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <toml.hpp>

#include "accord/config.h"
#include "accord/file.h"
#include "accord/utf8.h"

namespace accord::cli {
namespace {

namespace fs = std::filesystem;

class ConfigReader {
 public:
  ConfigReader(std::string file, fs::path dir) : file_(std::move(file)), dir_(std::move(dir)) {}

  tl::unexpected<accord::Error> Mistake(const toml::value& v, std::string_view message) const {
    const auto loc = v.location();
    // A message may quote a key as the file's escapes spelt it (`"\n" = 1`): one line, still.
    return Fail(Code::kInvalidArgument,
                fmt::format("{}:{}: {}", file_, loc.line(), OneLine(message, 1000)));
  }

  // Refuses keys of `table` not in `allowed`.
  Status Keys(const toml::value& table, std::initializer_list<std::string_view> allowed,
              std::string_view what) const {
    for (const auto& [key, value] : table.as_table()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Mistake(value, fmt::format("unknown key `{}` in {}", key, what));
      }
    }
    return OkStatus();
  }

  Result<const toml::value*> Table(const toml::value& root, std::string_view key) const {
    const auto& t = root.as_table();
    const auto it = t.find(std::string(key));
    if (it == t.end()) return nullptr;
    if (!it->second.is_table())
      return Mistake(it->second, fmt::format("`{}` must be a table", key));
    return &it->second;
  }

  Status String(const toml::value& table, std::string_view key, std::string& out) const {
    const auto& t = table.as_table();
    const auto it = t.find(std::string(key));
    if (it == t.end()) return OkStatus();
    if (!it->second.is_string()) {
      return Mistake(it->second, fmt::format("`{}` must be a string", key));
    }
    if (it->second.as_string().str.empty()) {
      // An empty path or host is never meant: `cert = ""` must not turn the pin off unseen.
      return Mistake(it->second, fmt::format("`{}` is empty", key));
    }
    out = it->second.as_string().str;
    return OkStatus();
  }

  Status Path(const toml::value& table, std::string_view key, std::string& out) const {
    std::string text;
    ACCORD_RETURN_IF_ERROR(String(table, key, text));
    if (!text.empty()) out = Beside(text);
    return OkStatus();
  }

  // A path as given in the file: relative to the file's directory.
  std::string Beside(const std::string& path) const {
    return (dir_ / path).lexically_normal().string();
  }

  template <typename T>
  Status Number(const toml::value& table, std::string_view key, T& out, int64_t min,
                int64_t max) const {
    const auto& t = table.as_table();
    const auto it = t.find(std::string(key));
    if (it == t.end()) return OkStatus();
    if (!it->second.is_integer() || it->second.as_integer() < min ||
        it->second.as_integer() > max) {
      return Mistake(it->second,
                     fmt::format("`{}` must be an integer from {} to {}", key, min, max));
    }
    out = static_cast<T>(it->second.as_integer());
    return OkStatus();
  }

  // A duration in the key's unit (`_s`, `_ms`): from one unit to one day.
  template <typename Duration>
  Status Time(const toml::value& table, std::string_view key, Duration& out) const {
    constexpr int64_t kDay = std::chrono::duration_cast<Duration>(std::chrono::hours(24)).count();
    int64_t n = out.count();
    ACCORD_RETURN_IF_ERROR(Number(table, key, n, 1, kDay));
    out = Duration(n);
    return OkStatus();
  }

 private:
  std::string file_;
  fs::path dir_;
};

}  // namespace

Result<ServeConfig> ParseServeConfig(const std::string& text, const std::string& path) {
  if (auto unsafe = TomlUnsafe(text, path)) {
    return Fail(Code::kInvalidArgument, unsafe->ToString());
  }
  toml::value root;
  try {
    std::istringstream parsed(text);
    root = toml::parse(parsed, path);
  } catch (const std::exception& e) {
    // One line with the mistake's place, as a policy's: toml11's own message spans several.
    return Fail(Code::kInvalidArgument, TomlParseDiagnostic(e, PolicyFile{path, text}).ToString());
  }
  const ConfigReader r(path, fs::path(path).parent_path());
  ServeConfig c;
  c.server.max_body_bytes = 8 << 20;  // packages carry payloads
  ACCORD_RETURN_IF_ERROR(
      r.Keys(root, {"listen", "tls", "limits", "federation", "peer"}, "the configuration"));
  ACCORD_ASSIGN_OR_RETURN(const toml::value* listen, r.Table(root, "listen"));
  if (listen != nullptr) {
    ACCORD_RETURN_IF_ERROR(r.Keys(*listen, {"address", "port", "port_file"}, "[listen]"));
    ACCORD_RETURN_IF_ERROR(r.String(*listen, "address", c.server.listen_address));
    ACCORD_RETURN_IF_ERROR(r.Number(*listen, "port", c.server.port, 0, 65535));
    ACCORD_RETURN_IF_ERROR(r.String(*listen, "port_file", c.port_file));
    // `-` is standard output, as for --port-file; any other path is the configuration's.
    if (!c.port_file.empty() && c.port_file != "-") c.port_file = r.Beside(c.port_file);
  }
  ACCORD_ASSIGN_OR_RETURN(const toml::value* tls, r.Table(root, "tls"));
  if (tls != nullptr) {
    ACCORD_RETURN_IF_ERROR(r.Keys(*tls, {"ca", "cert", "key", "user_ca", "crl"}, "[tls]"));
    ACCORD_RETURN_IF_ERROR(r.Path(*tls, "ca", c.server.ca_file));
    ACCORD_RETURN_IF_ERROR(r.Path(*tls, "user_ca", c.server.user_ca_file));
    ACCORD_RETURN_IF_ERROR(r.Path(*tls, "crl", c.server.crl_file));
    ACCORD_RETURN_IF_ERROR(r.Path(*tls, "cert", c.server.cert_file));
    ACCORD_RETURN_IF_ERROR(r.Path(*tls, "key", c.server.key_file));
  }
  ACCORD_ASSIGN_OR_RETURN(const toml::value* limits, r.Table(root, "limits"));
  if (limits != nullptr) {
    ACCORD_RETURN_IF_ERROR(r.Keys(*limits,
                                  {"max_body_bytes", "max_envelope_bytes", "max_answer_bytes",
                                   "max_connections", "max_requests_per_caller", "idle_timeout_s",
                                   "handshake_timeout_s", "read_timeout_s", "write_timeout_s"},
                                  "[limits]"));
    ACCORD_RETURN_IF_ERROR(
        r.Number(*limits, "max_body_bytes", c.server.max_body_bytes, 1, int64_t{1} << 32));
    ACCORD_RETURN_IF_ERROR(
        r.Number(*limits, "max_envelope_bytes", c.server.max_envelope_bytes, 1, int64_t{1} << 32));
    ACCORD_RETURN_IF_ERROR(
        r.Number(*limits, "max_answer_bytes", c.server.max_answer_bytes, 1, int64_t{1} << 40));
    ACCORD_RETURN_IF_ERROR(r.Number(*limits, "max_connections", c.server.max_connections, 1,
                                    static_cast<int64_t>(kMaxConnectionsLimit)));
    ACCORD_RETURN_IF_ERROR(r.Number(*limits, "max_requests_per_caller",
                                    c.server.max_requests_per_caller, 1,
                                    static_cast<int64_t>(kMaxConnectionsLimit)));
    ACCORD_RETURN_IF_ERROR(r.Time(*limits, "idle_timeout_s", c.server.idle_timeout));
    ACCORD_RETURN_IF_ERROR(r.Time(*limits, "handshake_timeout_s", c.server.handshake_timeout));
    ACCORD_RETURN_IF_ERROR(r.Time(*limits, "read_timeout_s", c.server.read_timeout));
    ACCORD_RETURN_IF_ERROR(r.Time(*limits, "write_timeout_s", c.server.write_timeout));
  }
  ACCORD_ASSIGN_OR_RETURN(const toml::value* federation, r.Table(root, "federation"));
  FederationOptions& f = c.federation;
  if (federation != nullptr) {
    ACCORD_RETURN_IF_ERROR(r.Keys(*federation,
                                  {"request_timeout_ms", "retry_initial_ms", "retry_max_ms",
                                   "poll_interval_ms", "witness_interval_ms"},
                                  "[federation]"));
    ACCORD_RETURN_IF_ERROR(r.Time(*federation, "request_timeout_ms", f.request_timeout));
    ACCORD_RETURN_IF_ERROR(r.Time(*federation, "retry_initial_ms", f.retry_initial));
    ACCORD_RETURN_IF_ERROR(r.Time(*federation, "retry_max_ms", f.retry_max));
    ACCORD_RETURN_IF_ERROR(r.Time(*federation, "poll_interval_ms", f.poll_interval));
    ACCORD_RETURN_IF_ERROR(r.Time(*federation, "witness_interval_ms", f.witness_interval));
  }
  const auto& top = root.as_table();
  if (const auto it = top.find("peer"); it != top.end()) {
    if (!it->second.is_array()) return r.Mistake(it->second, "`peer` must be [[peer]] tables");
    for (const toml::value& p : it->second.as_array()) {
      if (!p.is_table()) return r.Mistake(p, "`peer` must be [[peer]] tables");
      ACCORD_RETURN_IF_ERROR(r.Keys(p, {"party", "host", "port", "port_file", "cert"}, "[[peer]]"));
      PeerOptions peer;
      ACCORD_RETURN_IF_ERROR(r.String(p, "party", peer.party));
      ACCORD_RETURN_IF_ERROR(r.String(p, "host", peer.host));
      ACCORD_RETURN_IF_ERROR(r.Number(p, "port", peer.port, 1, 65535));
      ACCORD_RETURN_IF_ERROR(r.Path(p, "port_file", peer.port_file));
      ACCORD_RETURN_IF_ERROR(r.Path(p, "cert", peer.cert_file));
      if (peer.party.empty() || (peer.port == 0 && peer.port_file.empty())) {
        return r.Mistake(p, "a [[peer]] needs `party` and `port` (or `port_file`)");
      }
      if (peer.port != 0 && !peer.port_file.empty()) {
        return r.Mistake(p, "a [[peer]] has `port` or `port_file`, not both");
      }
      for (const PeerOptions& other : f.peers) {
        if (other.party == peer.party) return r.Mistake(p, "`" + peer.party + "` is listed twice");
      }
      f.peers.push_back(std::move(peer));
    }
  }
  return c;
}

}  // namespace accord::cli
