#include "accord/secret.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "accord/harden.h"

namespace accord {

void SecureWipe(void* data, size_t size) {
  if (data != nullptr && size > 0) {
    OPENSSL_cleanse(data, size);
  }
}

// Not inlined, so that its array lies below the caller's frame, where the callee's frames were.
[[gnu::noinline]] void WipeStackBelow() {
  unsigned char below[32 * 1024];
  SecureWipe(below, sizeof below);
}

void* SecureAllocate(size_t size) {
  if (size == 0 || CRYPTO_secure_malloc_initialized() != 1) return nullptr;
  // Half the heap at most: the rest is OpenSSL's, whose random generator takes its seeds there
  // and cannot draw a byte once the heap is full.
  if (CRYPTO_secure_used() + size > kSecureHeapBytes / 2) return nullptr;
  // Should a failed allocation leave an error on this thread's queue (OpenSSL 3.0 leaves none),
  // a later TLS call would read it as its own: it would be taken off again.
  ERR_set_mark();
  void* p = OPENSSL_secure_malloc(size);
  if (p == nullptr)
    ERR_pop_to_mark();
  else
    ERR_clear_last_mark();
  return p;
}

bool SecureFree(void* data, size_t size) {
  if (data == nullptr || CRYPTO_secure_malloc_initialized() != 1 ||
      CRYPTO_secure_allocated(data) != 1) {
    return false;
  }
  OPENSSL_secure_clear_free(data, size);
  return true;
}

}  // namespace accord
