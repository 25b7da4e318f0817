// ResolveWithin: a host name looked up with a deadline; ReadPortFile: a port a partner wrote.
#ifndef ACCORD_SRC_SERVER_RESOLVE_H_
#define ACCORD_SRC_SERVER_RESOLVE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "accord/status.h"

namespace accord::server_internal {

// The addresses of a host, each as a sockaddr's bytes (sockaddr_in or sockaddr_in6).
using SocketAddresses = std::vector<std::string>;

// Runs `lookup` and returns its answer, or kUnavailable "timed out" once `timeout` has passed.
// A lookup cannot be cancelled once started (getaddrinfo; Asio's resolver waits for it too), so
// it runs on a detached thread of its own: a lookup that outlives the deadline ends there, and
// its answer is dropped. kUnavailable as well when no thread can start.
[[nodiscard]] Result<SocketAddresses> ResolveWithin(std::function<Result<SocketAddresses>()> lookup,
                                                    std::chrono::milliseconds timeout);

// The TCP addresses of `host`:`port` from the system's resolver (getaddrinfo).
[[nodiscard]] Result<SocketAddresses> LookUp(const std::string& host, uint16_t port);

// The port a port file names (digits, and an optional line end, as `accord serve --port-file`
// writes it). Only a regular file is read, without waiting, and only its first bytes: whatever
// else is found under that name (a FIFO, a device) cannot hold the caller's thread. Otherwise a
// message that begins "its port file `PATH`" and says why: kUnavailable when there is no file
// ("names no port: its node is not running, or not yet") or it cannot be read, kInvalidArgument
// when it is not a regular file or holds no port.
[[nodiscard]] Result<uint16_t> ReadPortFile(const std::string& path);

}  // namespace accord::server_internal

#endif  // ACCORD_SRC_SERVER_RESOLVE_H_
