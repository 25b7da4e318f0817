// libFuzzer target: the `accord serve` configuration file (src/cli/serve_config.h), which an
// operator writes and `serve.toml` files copied between machines carry. A mistake is one
// "file:line: message" line; what parses has the limits the file format promises.
#include <cstddef>
#include <cstdint>
#include <string>

#include "serve_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = accord::cli::ParseServeConfig(text, "/etc/accord/serve.toml");
  if (!config) {
    const std::string& m = config.error().message;
    if (config.error().code != accord::Code::kInvalidArgument ||
        !m.starts_with("/etc/accord/serve.toml") || m.find('\n') != std::string::npos) {
      __builtin_trap();
    }
    return 0;
  }
  const auto& f = config->federation;
  for (size_t i = 0; i < f.peers.size(); ++i) {
    const auto& p = f.peers[i];
    // Each peer names its party once, and is reached by a port or a port file, not both.
    if (p.party.empty() || (p.port == 0) == p.port_file.empty()) __builtin_trap();
    for (size_t j = 0; j < i; ++j) {
      if (f.peers[j].party == p.party) __builtin_trap();
    }
  }
  if (config->server.max_body_bytes < 1 || config->server.max_connections < 1) __builtin_trap();
  return 0;
}
