#include "resolve.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace accord::server_internal {
namespace {

// What the lookup's thread and its caller share; the last of the two to let go frees it.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<SocketAddresses>> answer;  // GUARDED_BY(mu)
};

}  // namespace

Result<SocketAddresses> ResolveWithin(std::function<Result<SocketAddresses>()> lookup,
                                      std::chrono::milliseconds timeout) {
  try {
    auto pending = std::make_shared<Pending>();
    std::thread([pending, lookup = std::move(lookup)] {
      Result<SocketAddresses> answer = Fail(Code::kUnavailable, "out of memory");
      try {
        answer = lookup();
      } catch (const std::exception&) {  // std::bad_alloc: the answer above
      }
      {
        std::lock_guard lock(pending->mu);
        pending->answer = std::move(answer);
      }
      pending->cv.notify_one();
    }).detach();
    std::unique_lock lock(pending->mu);
    if (!pending->cv.wait_for(lock, timeout, [&] { return pending->answer.has_value(); })) {
      return Fail(Code::kUnavailable, "timed out");
    }
    return std::move(*pending->answer);
  } catch (const std::exception& e) {  // std::system_error: no thread; std::bad_alloc
    return Fail(Code::kUnavailable, std::string("cannot look the name up: ") + ExceptionText(e));
  }
}

Result<SocketAddresses> LookUp(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return Fail(Code::kUnavailable, rc == EAI_SYSTEM ? std::string("the resolver failed")
                                                     : std::string(gai_strerror(rc)));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  SocketAddresses addresses;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET || a->ai_family == AF_INET6) {
      addresses.emplace_back(reinterpret_cast<const char*>(a->ai_addr), a->ai_addrlen);
    }
  }
  if (addresses.empty()) {
    return Fail(Code::kUnavailable, "the name has no IPv4 or IPv6 address");
  }
  return addresses;
}

Result<uint16_t> ReadPortFile(const std::string& path) {
  const auto named = [&](std::string why) {
    return fmt::format("its port file `{}` {}", path, why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {
      // `accord serve` removes its port file when it stops, and writes it once it listens.
      return Fail(Code::kUnavailable, named("names no port: its node is not running, or not yet"));
    }
    return Fail(Code::kUnavailable, named(fmt::format("cannot be read: {}", strerror(error))));
  }
  struct stat st {};
  char text[16] = {};
  ssize_t n = -1;
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular) n = ::read(fd, text, sizeof text - 1);
  const int error = errno;
  ::close(fd);
  if (!regular) return Fail(Code::kInvalidArgument, named("is not a regular file"));
  if (n < 0) {
    return Fail(Code::kUnavailable, named(fmt::format("cannot be read: {}", strerror(error))));
  }
  uint16_t port = 0;
  const char* end = text + n;
  const auto [at, ec] = std::from_chars(text, end, port);
  if (n == 0 || ec != std::errc() || port == 0 || (at != end && *at != '\n')) {
    // `accord serve` replaces the file whole, so it is never seen half written.
    return Fail(Code::kInvalidArgument,
                named("does not hold a port (a number from 1 to 65535 and a line end, as "
                      "`accord serve --port-file` writes it)"));
  }
  return port;
}

}  // namespace accord::server_internal
