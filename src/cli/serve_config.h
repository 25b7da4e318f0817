// The `accord serve` configuration file (docs/api.md, "Running a node"): where the node listens,
// its TLS files, its limits, and its partners' nodes.
//
//   [listen]      address, port, port_file
//   [tls]         ca, cert, key, user_ca, crl
//   [limits]      max_body_bytes, max_envelope_bytes, max_answer_bytes, max_connections,
//                 max_requests_per_caller, idle_timeout_s, handshake_timeout_s,
//                 read_timeout_s, write_timeout_s
//   [federation]  request_timeout_ms, retry_initial_ms, retry_max_ms, poll_interval_ms,
//                 witness_interval_ms
//   [[peer]]      party, host, port | port_file, cert
//
// A [[peer]] needs its party and its port or port file; `serve` needs the [tls] ca, cert and key
// (here or as flags). Every other key is optional; unknown keys are refused (a misspelt limit must
// not be ignored). Relative paths are relative to the file's directory.
#ifndef ACCORD_SRC_CLI_SERVE_CONFIG_H_
#define ACCORD_SRC_CLI_SERVE_CONFIG_H_

#include <string>

#include "accord/federation.h"
#include "accord/server.h"
#include "accord/status.h"

namespace accord::cli {

struct ServeConfig {
  ServerOptions server;
  FederationOptions federation;  // ca/cert/key are the server's
  std::string port_file;
};

// The configuration in `text`, read from the file `path` (named in messages; relative paths in
// it are relative to its directory). kInvalidArgument with "file:line: message" for a mistake.
[[nodiscard]] Result<ServeConfig> ParseServeConfig(const std::string& text,
                                                   const std::string& path);

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_SERVE_CONFIG_H_
