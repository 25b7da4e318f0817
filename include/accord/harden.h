// accord/harden.h — keeps a process's memory, which holds keys and plaintext, off the disk and
// away from other processes.
//
// `HardenProcess()` is the first thing `accord` does, before it reads a passphrase:
//   - no core dump: RLIMIT_CORE is set to 0, and the process is made not dumpable
//     (PR_SET_DUMPABLE 0), which also keeps other processes of the same user from attaching
//     with ptrace or reading /proc/PID/mem;
//   - OpenSSL's secure heap of kSecureHeapBytes, locked in memory (never swapped, when the
//     memory-lock limit allows), left out of dumps, between guard pages. Key-sized secrets in
//     `SecretBytes` live there (accord/secret.h: the node's seeds and key-encryption key, data
//     keys, passphrases; at most half the heap), and so do the keys OpenSSL generates (each TLS
//     connection's ephemeral key share, the keys of `pki init`) and its random generator's state
//     and seeds.
//   - a standard descriptor (input, output, error) closed at start is held by /dev/null, opened
//     the other way round: a file or socket opened later cannot take its number (a line meant for
//     standard error would go into it), and reading or writing through it still fails (EBADF),
//     so that a closed output is still reported ("cannot write the output").
// Not locked: payloads over 256 bytes (wiped, but they can be large), the AES key schedules inside
// OpenSSL's cipher contexts, and OpenSSL's own copies of the node's signing and wrapping keys
// (OpenSSL 3.0 keeps a key made from raw bytes on its ordinary heap) and of the TLS and CA keys
// (its PEM and DER decoders free their copies of a key file's bytes without wiping them; accord's
// own copy is wiped). Swap is the host's to encrypt or turn off (docs/node.md).
#ifndef ACCORD_HARDEN_H_
#define ACCORD_HARDEN_H_

#include <cstddef>

#include "accord/status.h"

namespace accord {

// OpenSSL's secure heap, in bytes: a power of two. Its blocks are powers of two of 16 bytes or
// more: a key takes 32 or 64, each open TLS connection keeps one (kMaxConnectionsLimit), and a
// thread that draws random bytes 512.
inline constexpr size_t kSecureHeapBytes = size_t{1} << 20;

struct HardeningReport {
  // false: the secure heap is used, but it could not be locked in memory (mlock), or its guard
  // pages or its exclusion from dumps could not be set up.
  bool heap_locked = false;
};

// Applies the above. Fails only when a step cannot be applied at all (no /dev/null to hold a
// closed descriptor's place, say); a secure heap that could not be locked in memory
// (RLIMIT_MEMLOCK) is still used, and reported. Idempotent.
[[nodiscard]] Result<HardeningReport> HardenProcess();

}  // namespace accord

#endif  // ACCORD_HARDEN_H_
