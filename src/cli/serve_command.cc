#include "serve_command.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "accord/config.h"
#include "accord/federation.h"
#include "accord/file.h"
#include "accord/harden.h"
#include "accord/node.h"
#include "accord/server.h"
#include "commands.h"
#include "node_commands.h"
#include "serve_config.h"

namespace accord::cli {

struct ServeCommand::Flags {
  CLI::App* cmd = nullptr;
  std::string home;
  std::string config;
  std::string passphrase_file;
  std::string pin_file;
  std::string at;
  std::string listen;
  uint16_t port = 0;
  std::string ca, user_ca, crl, cert, key;
  std::string port_file;
  size_t max_body = 0;
  size_t max_connections = 0;
  CLI::Option* port_option = nullptr;
};

ServeCommand::ServeCommand(CLI::App& app) : flags_(std::make_unique<Flags>()) {
  Flags& f = *flags_;
  f.cmd = app.add_subcommand(
      "serve",
      "Serve this node's API over HTTPS with mutual TLS, and deliver to and witness its "
      "partners' nodes, until SIGTERM or Ctrl-C");
  f.cmd->add_option("--home", f.home, "The node's home")->envname("ACCORD_HOME")->required();
  f.cmd->add_option("--config", f.config,
                    "Configuration file (default: HOME/serve.toml when it exists); the flags "
                    "below override it");
  f.cmd->add_option("--passphrase-file", f.passphrase_file,
                    "Key store passphrase file (or set ACCORD_PASSPHRASE)");
  f.cmd->add_option("--pin-file", f.pin_file, "PKCS#11 PIN file (or set ACCORD_PKCS11_PIN)");
  f.cmd->add_option("--at", f.at, "Simulated homes: the instant every request is decided at");
  f.cmd->add_option("--listen", f.listen, "Address to listen on (default 127.0.0.1)");
  f.port_option = f.cmd->add_option("--port", f.port, "Port (default 0: a free one, printed)")
                      ->check(CountValidator());
  f.cmd->add_option("--ca", f.ca, "CA certificate(s) client and partner certificates chain to");
  f.cmd->add_option("--user-ca", f.user_ca,
                    "CA certificate(s) that sign this node's users' certificates (default: the "
                    "one that issued --cert)");
  f.cmd->add_option("--crl", f.crl,
                    "Certificate revocation lists (PEM; read again when the file changes)");
  f.cmd->add_option("--cert", f.cert, "This node's certificate (PEM)");
  f.cmd->add_option("--key", f.key, "This node's private key (PEM)");
  f.cmd->add_option("--port-file", f.port_file,
                    "Write the port here once listening ('-': standard output)");
  // The ranges of serve.toml's [limits] (serve_config.cc), so that 0 is refused here too.
  f.cmd->add_option("--max-body", f.max_body, "Largest request body in bytes (default 8 MiB)")
      ->check(CountValidator())
      ->check(CLI::Range(size_t{1}, size_t{1} << 32));
  f.cmd
      ->add_option("--max-connections", f.max_connections,
                   "Most open connections (default 256, at most 4096)")
      ->check(CountValidator())
      ->check(CLI::Range(size_t{1}, kMaxConnectionsLimit));
}

ServeCommand::~ServeCommand() = default;

namespace {

// Whether `address` is an IPv4 or IPv6 address (a link-local one may name its interface after
// `%`), as the server listens only on one: a host name is not looked up.
bool IsIpAddress(const std::string& address) {
  const std::string ip = address.substr(0, address.find('%'));
  in6_addr v6{};
  in_addr v4{};
  if (ip.size() != address.size()) return ::inet_pton(AF_INET6, ip.c_str(), &v6) == 1;
  return ::inet_pton(AF_INET, ip.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, ip.c_str(), &v6) == 1;
}

// The configuration file, then the flags over it; or the exit code, after saying why: 3 for a
// file that cannot be read (the configuration) or written (the port file), 2 for a mistake in
// the configuration or the flags.
tl::expected<ServeConfig, int> ResolveConfig(const ServeCommand::Flags& f) {
  ServeConfig c;
  c.server.max_body_bytes = 8 << 20;
  std::string path = f.config;
  const std::filesystem::path in_home = std::filesystem::path(f.home) / "serve.toml";
  std::error_code ec;
  // Looked at without following a last link: a link to nothing, or a file that cannot be looked
  // at (type `none`), is read, and the read says why it fails; not taken for no file.
  if (path.empty() && std::filesystem::symlink_status(in_home, ec).type() !=
                          std::filesystem::file_type::not_found) {
    path = in_home.string();
  }
  if (path == "-") {
    // Standard input is the passphrase's or the PIN's (`--passphrase-file -`).
    PrintError("--config: give a file; the configuration is not read from standard input");
    return tl::unexpected(kExitUsage);
  }
  if (!path.empty()) {
    // Missing, unreadable or too large is a file error (3); a mistake in what it says, usage (2).
    const auto text = ReadInputFile(path, kMaxTomlFileBytes);
    if (!text) return tl::unexpected(kExitIo);
    auto parsed = ParseServeConfig(*text, path);
    if (!parsed) {
      PrintError(parsed.error().message);
      return tl::unexpected(kExitUsage);
    }
    c = std::move(*parsed);
  }
  if (!f.listen.empty()) c.server.listen_address = f.listen;
  if (f.port_option->count() > 0) c.server.port = f.port;
  if (!f.ca.empty()) c.server.ca_file = f.ca;
  if (!f.user_ca.empty()) c.server.user_ca_file = f.user_ca;
  if (!f.crl.empty()) c.server.crl_file = f.crl;
  if (!f.cert.empty()) c.server.cert_file = f.cert;
  if (!f.key.empty()) c.server.key_file = f.key;
  if (!f.port_file.empty()) c.port_file = f.port_file;
  if (!c.port_file.empty()) {
    // The file is replaced when the node listens and removed when it stops: never one of the
    // home's own (its key store, its store), nor a device.
    if (InsideHome(c.port_file, f.home)) {
      PrintError(fmt::format("cannot write the port file `{}`: it is inside the home `{}`",
                             c.port_file, f.home));
      return tl::unexpected(kExitIo);
    }
    if (!CanWrite(c.port_file)) return tl::unexpected(kExitIo);
  }
  if (!IsIpAddress(c.server.listen_address)) {
    PrintError(fmt::format(
        "the listen address `{}` is not an IP address (127.0.0.1, ::1, 0.0.0.0 for every one)",
        c.server.listen_address));
    return tl::unexpected(kExitUsage);
  }
  if (f.max_body > 0) c.server.max_body_bytes = f.max_body;
  if (f.max_connections > 0) c.server.max_connections = f.max_connections;
  if (c.server.ca_file.empty() || c.server.cert_file.empty() || c.server.key_file.empty()) {
    PrintError(
        "serve needs the CA, the node's certificate and its key: --ca, --cert and --key, or "
        "[tls] in the configuration file");
    return tl::unexpected(kExitUsage);
  }
  if (c.server.max_envelope_bytes == 0) {
    // A partner may send a package for any payload this node accepts (the default 64 MiB).
    c.server.max_envelope_bytes = MaxEnvelopeBytes(NodeOptions().max_payload_bytes);
  }
  for (const PeerOptions& p : c.federation.peers) {
    if (!p.cert_file.empty()) c.server.partner_certificates[p.party] = p.cert_file;
  }
  // The TLS files are read when the server starts, after the node has opened: one that cannot
  // be read is said now, with the exit code of a file that cannot be read.
  std::vector<std::pair<std::string, std::string>> tls_files = {
      {"the CA certificate", c.server.ca_file},
      {"the node's certificate", c.server.cert_file},
      {"the node's key", c.server.key_file},
      {"the users' CA certificates", c.server.user_ca_file},
      {"the revocation lists", c.server.crl_file}};
  for (const PeerOptions& p : c.federation.peers) {
    tls_files.emplace_back(fmt::format("the certificate of {}", p.party), p.cert_file);
  }
  for (const auto& [what, file] : tls_files) {
    if (file.empty()) continue;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || ::access(file.c_str(), R_OK) != 0) {
      PrintError(fmt::format("cannot read {} `{}`: {}", what, file, std::strerror(errno)));
      return tl::unexpected(kExitIo);
    }
    if (!S_ISREG(st.st_mode)) {
      PrintError(fmt::format("cannot read {} `{}`: not a regular file", what, file));
      return tl::unexpected(kExitIo);
    }
  }
  c.federation.ca_file = c.server.ca_file;
  c.federation.cert_file = c.server.cert_file;
  c.federation.key_file = c.server.key_file;
  c.federation.crl_file = c.server.crl_file;
  return c;
}

// Writes the port atomically (ReplaceFile: never through a file or link planted under the
// temporary name), readable by the partners' nodes on this machine. False, after saying why, when
// it cannot: partners would otherwise read a port of an earlier run.
bool WritePortFile(const std::string& path, uint16_t port) {
  const std::string text = std::to_string(port) + "\n";
  if (path == "-") return WriteFile(path, AsBytes(text), 0644);
  const Status written = ReplaceFile(path, text, 0644);
  if (written) return true;
  // In place, but its directory could not be made durable (kUnavailable): it would send
  // partners to a port that no node serves once this one exits.
  if (written.error().code == Code::kUnavailable && ::unlink(path.c_str()) == 0) {
    PrintError(fmt::format("{}: the port file is removed", written.error().message));
  } else {
    PrintError(written.error().message);
  }
  return false;
}

// Writes `text` to `to`; a failed write loses the text, and never throws.
void Say(std::FILE* to, const std::string& text) { std::fputs(text.c_str(), to); }

}  // namespace

std::optional<int> ServeCommand::Run() {
  Flags& f = *flags_;
  if (!*f.cmd) return std::nullopt;
  auto config = ResolveConfig(f);
  if (!config) return config.error();
  // SIGTERM and SIGINT are taken by a thread that waits for them and stops the server; block
  // them before any thread starts (SQLite's and OpenSSL's too, in Node::Open) so that none other
  // receives them. A SIGINT ignored from the start stays ignored, as a shell asks of a command it
  // runs in the background: a Ctrl-C meant for the script that started the node (which then
  // stops it with SIGTERM) must not count as a first signal (a blocked signal is queued even
  // when ignored).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  struct sigaction interrupt {};
  if (sigaction(SIGINT, nullptr, &interrupt) != 0 || interrupt.sa_handler != SIG_IGN) {
    sigaddset(&signals, SIGINT);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A log line written to a pipe whose reader has gone (`accord serve 2>&1 | tee`, the tee
  // stopped) is lost; SIGPIPE would end the node at once, its requests in flight unanswered.
  // (Sockets are written with MSG_NOSIGNAL by Asio already.)
  signal(SIGPIPE, SIG_IGN);
  NodeOptions options;
  options.home = f.home;
  if (const int code = ReadHomeSecrets(f.passphrase_file, f.pin_file, options); code != 0) {
    return code;
  }
  if (!f.at.empty()) {
    auto at = ParseInstant(f.at);
    if (!at) {
      PrintError("--at: " + at.error().message);
      return kExitUsage;
    }
    options.at = *at;
  }
  // The federation's thread has a Node of its own on the same home. The secrets are copied only
  // for it: without partners no copy outlives the node's opening (Node::Open wipes its own).
  NodeOptions federation_node;
  federation_node.home = options.home;
  if (!config->federation.peers.empty()) {
    federation_node.passphrase = options.passphrase.Clone();
    federation_node.pin = options.pin.Clone();
  }
  federation_node.at = options.at;
  federation_node.max_payload_bytes = options.max_payload_bytes;
  // One server per home: a second would deliver the same outbox, and the first to stop would
  // remove the port file the other wrote, so that partners would think the node down. Other
  // commands run beside a server as before. Taken once the home opened (its errors first), and
  // declared before the node so that it is held until the node's store is closed.
  Result<FileLock> home_lock = Fail(Code::kFailedPrecondition, "not taken yet");
  auto node = Node::Open(std::move(options));
  if (!node) return Report(node.error());  // as every command on a home: 5 for data loss
  home_lock =
      FileLock::Take((std::filesystem::path(f.home) / "serve.lock").string(), FileLock::Wait::kNo);
  if (!home_lock) {
    PrintError(
        home_lock.error().code == Code::kUnavailable
            ? fmt::format("another `accord serve` uses this home ({})", home_lock.error().message)
            : home_lock.error().message);
    return kExitFailed;
  }
  // A partner of the configuration must be a party of this node's policy (the federation
  // would otherwise try it for ever); Federation::Start refuses the node itself.
  for (const PeerOptions& p : config->federation.peers) {
    if ((*node)->engine().PartyIndex(p.party) < 0) {
      PrintError(fmt::format("[[peer]] `{}` is not a party of this node's policy", p.party));
      return kExitUsage;
    }
  }
  std::unique_ptr<Federation> federation;
  if (!config->federation.peers.empty()) {
    auto started = Federation::Start(config->federation, std::move(federation_node));
    if (!started) {
      PrintError("federation: " + started.error().message);
      return kExitFailed;
    }
    federation = std::move(*started);
    config->server.on_queued = [&federation] { federation->Wake(); };
    config->server.peers = [&federation] { return federation->Peers(); };
  }
  const std::string listen = config->server.listen_address;
  auto server = Server::Create(config->server, **node);
  if (!server) {
    PrintError(server.error().message);
    return kExitFailed;
  }
  const uint16_t port = (*server)->port();
  if (!config->port_file.empty() && !WritePortFile(config->port_file, port)) {
    if (federation) federation->Stop();
    return kExitIo;
  }
  // From here on, lines go out with std::fputs, which cannot throw as fmt::print does when the
  // write fails (SIGPIPE is ignored): a line lost to a closed pipe must not end the node.
  Say(stdout, fmt::format("{} serving https://{}:{}/v1 (mutual TLS; Ctrl-C or SIGTERM stops)\n",
                          (*node)->party(), listen, port));
  for (const PeerOptions& p : config->federation.peers) {
    Say(stdout, fmt::format("  partner {} at {}:{}{}\n", p.party, p.host,
                            p.port_file.empty() ? std::to_string(p.port)
                                                : "(port file " + p.port_file + ")",
                            p.cert_file.empty() ? "" : ", the key of " + p.cert_file));
  }
  std::fflush(stdout);
  // main hardened the process; a node runs for long with its keys in memory, so say when they
  // could be swapped out (HardenProcess is idempotent and reports the same).
  if (auto hardened = HardenProcess(); hardened && !hardened->heap_locked) {
    Say(stderr,
        fmt::format("accord: warning: the secure heap that holds keys could not be fully "
                    "protected (locked in memory, guard pages, left out of dumps): keys may be "
                    "written to swap; most often the memory-lock limit is too low (`ulimit -l`, "
                    "LimitMEMLOCK=), which must allow at least {} KiB\n",
                    kSecureHeapBytes / 1024));
  }
  // The first signal stops the server after the requests in flight (a body still arriving may
  // take `read_timeout`, the federation's request in flight its deadline); a second one, from an
  // operator who will not wait, ends the process at once, as SIGKILL would, which loses nothing:
  // no answer leaves before its entries are durable, and the outbox is in the store.
  std::atomic<bool> served_out{false};
  std::thread waiter([&signals, &server, &served_out, &config] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (served_out.load()) return;
    static constexpr std::string_view kStopping =
        "accord: stopping after the requests in flight (a second signal stops at once)\n";
    (void)!::write(STDERR_FILENO, kStopping.data(), kStopping.size());
    (*server)->Stop();
    sigwait(&signals, &sig);
    if (served_out.load()) return;
    static constexpr std::string_view kNow =
        "accord: a second signal: stopped at once; requests in flight are not answered\n";
    (void)!::write(STDERR_FILENO, kNow.data(), kNow.size());
    if (!config->port_file.empty() && config->port_file != "-") ::unlink(config->port_file.c_str());
    std::_Exit(kExitFailed);
  });
  const Status served = (*server)->Run();
  // Run returned: either a signal stopped it, or it failed (said at once: a second signal while
  // the federation stops would end the process before the end of this function).
  if (!served) PrintError(served.error().message);
  // The federation stops after its request in flight (a second signal meanwhile stops at once).
  if (federation) federation->Stop();
  // A port file left behind would send partners to a port no longer this node's.
  if (!config->port_file.empty() && config->port_file != "-") ::unlink(config->port_file.c_str());
  served_out.store(true);  // then wake the waiter, which still waits for a signal
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!served) return kExitFailed;
  Say(stdout, fmt::format("{} stopped\n", (*node)->party()));
  return kExitOk;
}

}  // namespace accord::cli
