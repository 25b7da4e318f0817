#include "accord/secret.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

namespace accord {

void SecureWipe(void* data, size_t size) {
  if (data != nullptr && size > 0) {
    OPENSSL_cleanse(data, size);
  }
}

void* SecureAllocate(size_t size) {
  if (size == 0 || CRYPTO_secure_malloc_initialized() != 1) return nullptr;
  // A full heap fails with an error on OpenSSL's queue for this thread, which a later TLS call
  // would read as its own: it is taken off again.
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
