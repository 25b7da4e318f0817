#include "accord/harden.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include "accord/secret.h"

namespace accord {
namespace {

TEST(HardenProcessTest, TurnsCoreDumpsOffAndKeepsPrivateKeysOnTheSecureHeap) {
  ASSERT_EQ(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);

  auto report = HardenProcess();
  ASSERT_TRUE(report.has_value()) << report.error().ToString();

  rlimit core{};
  ASSERT_EQ(getrlimit(RLIMIT_CORE, &core), 0);
  EXPECT_EQ(core.rlim_cur, 0u);
  EXPECT_EQ(core.rlim_max, 0u);
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  EXPECT_EQ(CRYPTO_secure_malloc_initialized(), 1);

  // A private key made now takes room on the secure heap, and gives it back when freed. (The
  // first key also seeds the random generator, which keeps its state there.)
  EVP_PKEY_free(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  const size_t before = CRYPTO_secure_used();
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(key, nullptr);
  EXPECT_GT(CRYPTO_secure_used(), before);
  EVP_PKEY_free(key);
  EXPECT_EQ(CRYPTO_secure_used(), before);

  // A key-sized SecretBytes lives there too (wiped and freed there); a payload-sized one does not.
  {
    SecretBytes seed(32);
    SecretBytes payload(4096);
    EXPECT_EQ(CRYPTO_secure_allocated(seed.Reveal(InsecureSecretAccess()).data()), 1);
    EXPECT_EQ(CRYPTO_secure_allocated(payload.Reveal(InsecureSecretAccess()).data()), 0);
    EXPECT_GT(CRYPTO_secure_used(), before);
  }
  EXPECT_EQ(CRYPTO_secure_used(), before);

  // Again: nothing changes, and nothing fails.
  auto again = HardenProcess();
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(again->heap_locked, report->heap_locked);
}

// Standard input and output closed at start: each is held by /dev/null, so that the next file
// opened takes another number, and reading or writing through it still fails.
TEST(HardenProcessTest, HoldsAClosedStandardDescriptorsPlace) {
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO}) {
    SCOPED_TRACE(fd);
    // Nothing may print while the descriptor is away (a failed EXPECT would, on standard output):
    // the results are kept, then checked once it is back.
    std::fflush(stdout);
    const int saved = dup(fd);
    ASSERT_GE(saved, 0);
    ASSERT_EQ(close(fd), 0);
    const bool hardened = HardenProcess().has_value();
    const bool held = fcntl(fd, F_GETFD) != -1;
    char byte = 'x';
    errno = 0;
    const ssize_t used = fd == STDIN_FILENO ? read(fd, &byte, 1) : write(fd, &byte, 1);
    const int used_errno = errno;
    const int next = open("/dev/null", O_RDONLY);
    if (next >= 0) close(next);
    ASSERT_EQ(dup2(saved, fd), fd);
    close(saved);

    EXPECT_TRUE(hardened);
    EXPECT_TRUE(held);
    EXPECT_EQ(used, -1);
    EXPECT_EQ(used_errno, EBADF);
    EXPECT_GT(next, STDERR_FILENO);
  }
}

}  // namespace
}  // namespace accord
