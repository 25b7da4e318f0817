#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "accord/keystore.h"

namespace accord {
namespace {

// Cheap parameters keep the tests fast; the default (n = 2^17) is exercised once.
constexpr ScryptParams kFast{1u << 10, 8, 1};

class FileKeyStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "keystore-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keystore";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Read() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void Write(const std::string& text) const { std::ofstream(path_, std::ios::trunc) << text; }

  std::string dir_;
  std::string path_;
};

SecretBytes Pass(std::string_view p) { return SecretBytes::Copy(p); }

TEST_F(FileKeyStoreTest, CreatesOpensAndWrapsWithTheSameKek) {
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("correct horse"), kFast));
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto kek = OpenFileKeyStore(path_, Pass("correct horse"));
  ASSERT_TRUE(kek) << kek.error().ToString();
  const SecretBytes dk = NewDataKey();
  auto wrapped = (*kek)->Wrap(dk, AsBytes("ad"));
  ASSERT_TRUE(wrapped);
  auto again = OpenFileKeyStore(path_, Pass("correct horse"));
  ASSERT_TRUE(again);
  auto back = (*again)->Unwrap(*wrapped, AsBytes("ad"));
  ASSERT_TRUE(back);
  EXPECT_TRUE(
      ConstantTimeEquals(back->Reveal(InsecureSecretAccess()), dk.Reveal(InsecureSecretAccess())));
}

TEST_F(FileKeyStoreTest, DefaultParametersWork) {
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("p")));
  EXPECT_NE(Read().find("kdf scrypt n=131072 r=8 p=1"), std::string::npos);
  EXPECT_TRUE(OpenFileKeyStore(path_, Pass("p")));
}

TEST_F(FileKeyStoreTest, RefusesWrongPassphrase) {
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("correct horse"), kFast));
  auto kek = OpenFileKeyStore(path_, Pass("correct hors"));
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kPermissionDenied);
  EXPECT_NE(kek.error().message.find("wrong passphrase"), std::string::npos);
}

TEST_F(FileKeyStoreTest, RefusesEditedParameters) {
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("pw"), kFast));
  std::string text = Read();
  const size_t at = text.find("r=8");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 3, "r=9");
  Write(text);
  auto kek = OpenFileKeyStore(path_, Pass("pw"));
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kPermissionDenied);
}

TEST_F(FileKeyStoreTest, EveryByteFlipFailsCleanly) {
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("pw"), kFast));
  const std::string original = Read();
  for (size_t i = 0; i < original.size(); ++i) {
    std::string bad = original;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    Write(bad);
    auto kek = OpenFileKeyStore(path_, Pass("pw"));
    ASSERT_FALSE(kek) << "byte " << i;
    EXPECT_TRUE(kek.error().code == Code::kPermissionDenied ||
                kek.error().code == Code::kInvalidArgument)
        << kek.error().ToString();
  }
}

TEST_F(FileKeyStoreTest, RefusesHostileCosts) {
  Write(
      "accord-keystore v1\nkdf scrypt n=1073741824 r=8 p=1\nsalt AAAAAAAAAAAAAAAAAAAAAA==\n"
      "kek AAAA\n");
  auto kek = OpenFileKeyStore(path_, Pass("pw"));
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kInvalidArgument);
  EXPECT_EQ(kek.error().message,
            "`" + path_ + "` is not an accord key store: unreasonable scrypt parameters");
}

// A file that is not a key store says what is wrong with it, before any key is derived.
TEST_F(FileKeyStoreTest, AMalformedFileSaysWhy) {
  const std::string salt = "salt AAAAAAAAAAAAAAAAAAAAAA==\n";
  const std::string kdf = "kdf scrypt n=16384 r=8 p=1\n";
  const struct {
    std::string text;
    std::string why;
  } table[] = {
      {"accord-keystore v1\n" + kdf + salt + "kek AAAA", "its last line has no newline"},
      {"accord-keystore v2\n" + kdf + salt + "kek AAAA\n", "not the four lines of a key store"},
      {"accord-keystore v1\n" + kdf + salt, "not the four lines of a key store"},
      {"accord-keystore v1\nkdf scrypt n=16384 r=8\n" + salt + "kek AAAA\n",
       "the kdf line has not three parameters"},
      {"accord-keystore v1\nkdf scrypt n=16384 p=1 r=8\n" + salt + "kek AAAA\n",
       "the kdf line's parameters are not `n=N r=R p=P`"},
      {"accord-keystore v1\nkdf scrypt n=1000 r=8 p=1\n" + salt + "kek AAAA\n",
       "unreasonable scrypt parameters"},
      {"accord-keystore v1\n" + kdf + "salt AAAA\nkek AAAA\n",
       "the salt is not 16 bytes in base64"},
      {"accord-keystore v1\n" + kdf + salt + "kek A!AA\n", "the sealed key is not base64"},
      {std::string(4097, 'a'), "larger than 4 KiB"},
  };
  for (const auto& row : table) {
    Write(row.text);
    auto kek = OpenFileKeyStore(path_, Pass("pw"));
    ASSERT_FALSE(kek) << row.why;
    EXPECT_EQ(kek.error().code, Code::kInvalidArgument);
    EXPECT_EQ(kek.error().message, "`" + path_ + "` is not an accord key store: " + row.why);
  }
}

TEST_F(FileKeyStoreTest, ClearErrors) {
  auto missing = OpenFileKeyStore(path_, Pass("pw"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_FALSE(CreateFileKeyStore(path_, Pass(""), kFast));
  ASSERT_TRUE(CreateFileKeyStore(path_, Pass("pw"), kFast));
  auto twice = CreateFileKeyStore(path_, Pass("pw"), kFast);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Code::kAlreadyExists);
  EXPECT_EQ(twice.error().message, "key store `" + path_ + "` already exists");
  EXPECT_FALSE(CreateFileKeyStore(dir_ + "/k2", Pass("pw"), ScryptParams{1000, 8, 1}));
  // scrypt's n must stay under 2^(16 r): with r = 1, 2^16 is refused as unreasonable, not
  // passed to OpenSSL to fail there.
  for (const ScryptParams& p : {ScryptParams{1u << 16, 1, 1}, ScryptParams{1u << 17, 1, 1}}) {
    auto refused = CreateFileKeyStore(dir_ + "/k3", Pass("pw"), p);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
    EXPECT_EQ(refused.error().message, "unreasonable scrypt parameters");
  }
  EXPECT_TRUE(CreateFileKeyStore(dir_ + "/k4", Pass("pw"), ScryptParams{1u << 15, 1, 1}));
  // Nothing but the key stores made is left in the directory (no staged file).
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 2u);  // keystore, k4
}

// A key store is never written over, nor through, whatever is at its name: a symbolic link
// (whose target is not made) or a file someone planted there.
TEST_F(FileKeyStoreTest, IsNeverWrittenOverAnything) {
  std::filesystem::create_symlink(dir_ + "/target", path_);
  auto linked = CreateFileKeyStore(path_, Pass("pw"), kFast);
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().code, Code::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/target"));
  std::filesystem::remove(path_);
  Write("planted");
  EXPECT_FALSE(CreateFileKeyStore(path_, Pass("pw"), kFast));
  EXPECT_EQ(Read(), "planted");
  auto nowhere = CreateFileKeyStore(dir_ + "/missing/keystore", Pass("pw"), kFast);
  ASSERT_FALSE(nowhere);
  EXPECT_EQ(nowhere.error().message,
            "cannot write `" + dir_ + "/missing/keystore`: No such file or directory");
}

}  // namespace
}  // namespace accord
