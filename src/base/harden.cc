#include "accord/harden.h"

#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace accord {
namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

Result<HardeningReport> HardenProcess() {
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
