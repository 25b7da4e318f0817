#include "accord/harden.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace accord {
namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A standard descriptor closed at start is given /dev/null, opened the other way round (standard
// input for writing, output and error for reading): the next file or socket opened cannot take
// its number, and a read or write through it still fails as it would have (EBADF).
Status HoldClosedStandardDescriptors() {
  constexpr const char* kNames[] = {"standard input", "standard output", "standard error"};
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // The lowest free number: the ones below are open by now.
    const int held = open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
    if (held == fd) continue;
    const std::string why = Errno("cannot open /dev/null");
    if (held >= 0) close(held);
    return Fail(Code::kInternal,
                fmt::format("{} is closed, and its place cannot be held ({})", kNames[fd], why));
  }
  return {};
}

}  // namespace

Result<HardeningReport> HardenProcess() {
  ACCORD_RETURN_IF_ERROR(HoldClosedStandardDescriptors());
  const rlimit none{0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    return Fail(Code::kInternal, Errno("cannot turn core dumps off (setrlimit RLIMIT_CORE)"));
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Fail(Code::kInternal, Errno("cannot make the process not dumpable (prctl)"));
  }
  // 1: set up and locked; 2: set up, but mlock failed; 0: not set up. Once: a second call of
  // OpenSSL's would answer 0.
  static const int heap = CRYPTO_secure_malloc_init(kSecureHeapBytes, 16);
  if (heap == 0) {
    return Fail(Code::kInternal, "cannot set up OpenSSL's secure heap (CRYPTO_secure_malloc_init)");
  }
  HardeningReport report;
  report.heap_locked = heap == 1;
  return report;
}

}  // namespace accord
