#include "serve_command.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "accord/node.h"
#include "accord/server.h"
#include "commands.h"
#include "node_commands.h"

namespace accord::cli {

struct ServeCommand::Flags {
  CLI::App* cmd = nullptr;
  std::string home;
  std::string passphrase_file;
  std::string pin_file;
  std::string at;
  std::string listen = "127.0.0.1";
  uint16_t port = 0;
  std::string ca, cert, key;
  std::string port_file;
  size_t max_body = 1 << 20;
  size_t max_connections = 256;
};

ServeCommand::ServeCommand(CLI::App& app) : flags_(std::make_unique<Flags>()) {
  Flags& f = *flags_;
  f.cmd = app.add_subcommand(
      "serve", "Serve this node's API over HTTPS with mutual TLS until SIGTERM or Ctrl-C");
  f.cmd->add_option("--home", f.home, "The node's home")->envname("ACCORD_HOME")->required();
  f.cmd->add_option("--passphrase-file", f.passphrase_file,
                    "Key store passphrase file (or set ACCORD_PASSPHRASE)");
  f.cmd->add_option("--pin-file", f.pin_file, "PKCS#11 PIN file (or set ACCORD_PKCS11_PIN)");
  f.cmd->add_option("--at", f.at, "Simulated homes: the instant every request is decided at");
  f.cmd->add_option("--listen", f.listen, "Address to listen on (default 127.0.0.1)");
  f.cmd->add_option("--port", f.port, "Port (default 0: a free one, printed)");
  f.cmd->add_option("--ca", f.ca, "CA certificate(s) client certificates must chain to")
      ->required();
  f.cmd->add_option("--cert", f.cert, "This node's certificate (PEM)")->required();
  f.cmd->add_option("--key", f.key, "This node's private key (PEM)")->required();
  f.cmd->add_option("--port-file", f.port_file, "Write the port here once listening");
  f.cmd->add_option("--max-body", f.max_body, "Largest request body in bytes (default 1 MiB)");
  f.cmd->add_option("--max-connections", f.max_connections, "Most open connections (default 256)");
}

ServeCommand::~ServeCommand() = default;

std::optional<int> ServeCommand::Run() {
  Flags& f = *flags_;
  if (!*f.cmd) return std::nullopt;
  NodeOptions options;
  options.home = f.home;
  if (const int code = ReadHomeSecrets(f.passphrase_file, f.pin_file, options); code != 0) {
    return code;
  }
  if (!f.at.empty()) {
    auto at = ParseInstant(f.at);
    if (!at) {
      fmt::print(stderr, "accord: --at: {}\n", at.error().message);
      return kExitUsage;
    }
    options.at = *at;
  }
  auto node = Node::Open(std::move(options));
  if (!node) {
    fmt::print(stderr, "accord: {}\n", node.error().message);
    return node.error().code == Code::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  ServerOptions so;
  so.listen_address = f.listen;
  so.port = f.port;
  so.ca_file = f.ca;
  so.cert_file = f.cert;
  so.key_file = f.key;
  so.max_body_bytes = f.max_body;
  so.max_connections = f.max_connections;
  // SIGTERM and SIGINT are taken by a thread that waits for them and stops the server; block
  // them before any thread starts so that none other receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto server = Server::Create(std::move(so), **node);
  if (!server) {
    fmt::print(stderr, "accord: {}\n", server.error().message);
    return kExitFailed;
  }
  const uint16_t port = (*server)->port();
  if (!f.port_file.empty()) {
    std::ofstream(f.port_file) << port << "\n";
  }
  fmt::print("{} serving https://{}:{}/v1 (mutual TLS; Ctrl-C or SIGTERM stops)\n",
             (*node)->party(), f.listen, port);
  std::fflush(stdout);
  std::thread waiter([&signals, &server] {
    int sig = 0;
    sigwait(&signals, &sig);
    (*server)->Stop();
  });
  (*server)->Run();
  // Run returned: either a signal stopped it, or it failed; wake the waiter if it still waits.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  fmt::print("{} stopped\n", (*node)->party());
  return kExitOk;
}

}  // namespace accord::cli
