// accord/harden.h — keeps a process's memory, which holds keys and plaintext, off the disk and
// away from other processes.
//
// `HardenProcess()` is the first thing `accord` does, before it reads a passphrase:
//   - no core dump: RLIMIT_CORE is set to 0, and the process is made not dumpable
//     (PR_SET_DUMPABLE 0), which also keeps other processes of the same user from attaching
//     with ptrace or reading /proc/PID/mem;
//   - OpenSSL's secure heap: the private keys OpenSSL holds (the node's signing and wrapping keys,
//     TLS keys, ephemeral X25519 keys) live in an arena locked in memory (never swapped, when the
//     memory-lock limit allows), left out of dumps, between guard pages.
// Plaintext payloads and data keys held in `SecretBytes` are not locked (they can be large);
// swap is the host's to encrypt or turn off (docs/node.md).
#ifndef ACCORD_HARDEN_H_
#define ACCORD_HARDEN_H_

#include <cstddef>

#include "accord/status.h"

namespace accord {

// OpenSSL's secure heap, in bytes: a power of two. A private key takes 32 to a few hundred bytes,
// and each TLS handshake in progress holds one ephemeral key.
inline constexpr size_t kSecureHeapBytes = size_t{1} << 20;

struct HardeningReport {
  bool heap_locked = false;  // false: the secure heap could not be locked in memory (mlock)
};

// Applies the above. Fails only when a step cannot be applied at all; a secure heap that could not
// be locked in memory (RLIMIT_MEMLOCK) is still used, and reported. Idempotent.
[[nodiscard]] Result<HardeningReport> HardenProcess();

}  // namespace accord

#endif  // ACCORD_HARDEN_H_
