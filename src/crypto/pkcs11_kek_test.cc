// The PKCS#11 KEK against SoftHSM2.
//
// PKCS#11 initialisation is process-wide and SoftHSM2 reads SOFTHSM2_CONF in C_Initialize, so the
// whole binary shares one token directory, made in SetUpTestSuite; each test uses a key label of
// its own. softhsm2-util must be installed: without it the tests fail, they do not skip.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "accord/crypto.h"
#include "accord/keystore.h"
#include "accord/secret.h"

// The test reads the token directly too (its target links PkgConfig::P11).
#include <p11-kit/pkcs11.h>

namespace accord {
namespace {

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kToken[] = "accord-test";
constexpr char kPin[] = "5678";

bool SameSecret(const SecretBytes& a, const SecretBytes& b) {
  return ConstantTimeEquals(a.Reveal(InsecureSecretAccess()), b.Reveal(InsecureSecretAccess()));
}

class Pkcs11KekTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = testing::TempDir() + "pkcs11-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new std::string(tmpl);
    std::filesystem::create_directory(*dir_ + "/tokens");
    const std::string conf = *dir_ + "/softhsm2.conf";
    std::ofstream(conf) << "directories.tokendir = " << *dir_ << "/tokens\n"
                        << "objectstore.backend = file\n"
                        << "log.level = ERROR\n";
    ASSERT_EQ(setenv("SOFTHSM2_CONF", conf.c_str(), 1), 0);
    const std::string command = std::string("softhsm2-util --init-token --free --label ") + kToken +
                                " --so-pin 1234 --pin " + kPin + " >" + *dir_ + "/init.log 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0)
        << "`" << command << "` failed: is SoftHSM2 (Debian package softhsm2) installed?";
    ready_ = true;
  }

  static void TearDownTestSuite() {
    if (dir_ != nullptr) {
      std::filesystem::remove_all(*dir_);
      delete dir_;
      dir_ = nullptr;
    }
  }

  void SetUp() override { ASSERT_TRUE(ready_) << "no SoftHSM2 token to test with"; }

  // Options for this test's own key.
  static Pkcs11Options Options(std::string_view pin = kPin, std::string token = kToken) {
    Pkcs11Options options;
    options.module = kModule;
    options.token_label = std::move(token);
    options.pin = SecretBytes::Copy(pin);
    options.key_label = testing::UnitTest::GetInstance()->current_test_info()->name();
    return options;
  }

  static std::unique_ptr<KeyEncryptionKey> CreateAndOpen(const Pkcs11Options& options) {
    const auto created = CreatePkcs11Kek(options);
    EXPECT_TRUE(created) << created.error().ToString();
    auto kek = OpenPkcs11Kek(options);
    EXPECT_TRUE(kek) << kek.error().ToString();
    return kek ? std::move(*kek) : nullptr;
  }

  static std::string* dir_;
  static bool ready_;
};

std::string* Pkcs11KekTest::dir_ = nullptr;
bool Pkcs11KekTest::ready_ = false;

TEST_F(Pkcs11KekTest, CreatesOpensAndRoundTrips) {
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  EXPECT_EQ(kek->Describe(), "PKCS#11 token `accord-test`");
  const SecretBytes key = NewDataKey();
  auto wrapped = kek->Wrap(key, AsBytes("tenant/object/1"));
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  EXPECT_EQ(wrapped->size(), kAeadNonceSize + kAeadKeySize + kAeadTagSize);
  auto again = kek->Wrap(key, AsBytes("tenant/object/1"));
  ASSERT_TRUE(again);
  EXPECT_NE(*wrapped, *again) << "the nonce must be fresh";
  auto back = kek->Unwrap(*wrapped, AsBytes("tenant/object/1"));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(SameSecret(*back, key));
}

TEST_F(Pkcs11KekTest, RoundTripsOtherSizesAndEmptyAssociatedData) {
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  for (const size_t size : std::array<size_t, 8>{0, 1, 15, 16, 17, 33, 64, 1000}) {
    const Bytes raw = RandomBytes(size);
    const SecretBytes key = SecretBytes::Copy(raw);
    auto wrapped = kek->Wrap(key, {});
    ASSERT_TRUE(wrapped) << size << ": " << wrapped.error().ToString();
    EXPECT_EQ(wrapped->size(), size + kAeadOverhead);
    auto back = kek->Unwrap(*wrapped, {});
    ASSERT_TRUE(back) << size << ": " << back.error().ToString();
    EXPECT_TRUE(SameSecret(*back, key)) << size;
    auto other = kek->Unwrap(*wrapped, AsBytes("x"));
    ASSERT_FALSE(other) << size;
    EXPECT_EQ(other.error().code, Code::kDataLoss);
  }
}

TEST_F(Pkcs11KekTest, OtherAssociatedDataFailsWithDataLoss) {
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  auto wrapped = kek->Wrap(NewDataKey(), AsBytes("tenant/object/1"));
  ASSERT_TRUE(wrapped);
  for (const std::string_view ad : {"tenant/object/2", "", "tenant/object/1 "}) {
    auto back = kek->Unwrap(*wrapped, AsBytes(ad));
    ASSERT_FALSE(back) << ad;
    EXPECT_EQ(back.error().code, Code::kDataLoss);
    EXPECT_EQ(back.error().message, "decryption failed");
  }
}

TEST_F(Pkcs11KekTest, EveryFlippedByteFailsWithDataLoss) {
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  auto wrapped = kek->Wrap(NewDataKey(), AsBytes("ad"));
  ASSERT_TRUE(wrapped);
  for (size_t i = 0; i < wrapped->size(); ++i) {
    for (const uint8_t mask : std::array<uint8_t, 3>{0x01, 0x80, 0xff}) {
      Bytes bad = *wrapped;
      bad[i] ^= mask;
      auto back = kek->Unwrap(bad, AsBytes("ad"));
      ASSERT_FALSE(back) << "byte " << i << " mask " << int{mask};
      EXPECT_EQ(back.error().code, Code::kDataLoss);
      EXPECT_EQ(back.error().message, "decryption failed");
    }
  }
  for (size_t size = 0; size < wrapped->size(); ++size) {
    const Bytes cut(wrapped->begin(), wrapped->begin() + static_cast<std::ptrdiff_t>(size));
    auto back = kek->Unwrap(cut, AsBytes("ad"));
    ASSERT_FALSE(back) << "truncated to " << size;
    EXPECT_EQ(back.error().code, Code::kDataLoss);
  }
  Bytes longer = *wrapped;
  longer.push_back(0);
  auto back = kek->Unwrap(longer, AsBytes("ad"));
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::kDataLoss);
  // The session is still usable after all those failures.
  auto good = kek->Unwrap(*wrapped, AsBytes("ad"));
  EXPECT_TRUE(good) << good.error().ToString();
}

TEST_F(Pkcs11KekTest, WrongPinIsPermissionDenied) {
  ASSERT_TRUE(CreatePkcs11Kek(Options()));
  const auto created = CreatePkcs11Kek(Options("0000"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kPermissionDenied);
  EXPECT_EQ(created.error().message, "wrong PIN for token `accord-test`");
  auto kek = OpenPkcs11Kek(Options("56789"));
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kPermissionDenied);
  EXPECT_EQ(kek.error().message, "wrong PIN for token `accord-test`");
  // The right PIN still works (SoftHSM2 has not locked it).
  EXPECT_TRUE(OpenPkcs11Kek(Options()));
}

TEST_F(Pkcs11KekTest, WrongPinIsDeniedWhileTheTokenIsLoggedIn) {
  // PKCS#11 keeps one login per token and process: a second C_Login would not check the PIN.
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  auto second = OpenPkcs11Kek(Options("0000"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kPermissionDenied);
  const auto created = CreatePkcs11Kek(Options("0000"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kPermissionDenied);
  auto right = OpenPkcs11Kek(Options());
  EXPECT_TRUE(right) << right.error().ToString();
}

TEST_F(Pkcs11KekTest, MissingTokenIsNotFound) {
  const auto created = CreatePkcs11Kek(Options(kPin, "no-such-token"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kNotFound);
  EXPECT_EQ(created.error().message, "no PKCS#11 token `no-such-token`");
  auto kek = OpenPkcs11Kek(Options(kPin, "no-such-token"));
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kNotFound);
  // A prefix of the label is another label.
  EXPECT_EQ(OpenPkcs11Kek(Options(kPin, "accord")).error().code, Code::kNotFound);
}

TEST_F(Pkcs11KekTest, MissingKeyIsNotFound) {
  auto kek = OpenPkcs11Kek(Options());
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kNotFound);
  EXPECT_EQ(kek.error().message, "no key `MissingKeyIsNotFound` on token `accord-test`");
}

TEST_F(Pkcs11KekTest, CreatingTwiceIsAlreadyExists) {
  ASSERT_TRUE(CreatePkcs11Kek(Options()));
  const auto again = CreatePkcs11Kek(Options());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  // The first key is intact.
  EXPECT_TRUE(OpenPkcs11Kek(Options()));
}

// A key destroyed is gone (data wrapped under it cannot be unwrapped by a new one of the same
// label), and its label can be created again. Only the key of the id its creation returned is
// destroyed: not a later key of the same label, nor a key of another label.
TEST_F(Pkcs11KekTest, DestroyingFreesTheLabel) {
  const auto refused = [](const Status& s, Code code) {
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, code) << s.error().ToString();
  };
  const SecretBytes key = NewDataKey();
  Bytes wrapped;
  const auto first = CreatePkcs11Kek(Options());
  ASSERT_TRUE(first) << first.error().ToString();
  {
    auto kek = OpenPkcs11Kek(Options());
    ASSERT_TRUE(kek) << kek.error().ToString();
    wrapped = (*kek)->Wrap(key, AsBytes("ad")).value();
  }
  ASSERT_TRUE(DestroyPkcs11Kek(Options(), *first));
  EXPECT_EQ(OpenPkcs11Kek(Options()).error().code, Code::kNotFound);
  refused(DestroyPkcs11Kek(Options(), *first), Code::kNotFound);

  const auto second = CreatePkcs11Kek(Options());
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_NE(*second, *first);
  // The first key's id does not reach the second key of its label.
  refused(DestroyPkcs11Kek(Options(), *first), Code::kNotFound);
  refused(DestroyPkcs11Kek(Options(), {}), Code::kInvalidArgument);  // no id: not every key
  auto kek = OpenPkcs11Kek(Options());
  ASSERT_TRUE(kek) << kek.error().ToString();
  EXPECT_EQ((*kek)->Unwrap(wrapped, AsBytes("ad")).error().code, Code::kDataLoss);
  Pkcs11Options other = Options();
  other.key_label += "-other";
  const auto other_id = CreatePkcs11Kek(other);
  ASSERT_TRUE(other_id);
  ASSERT_TRUE(DestroyPkcs11Kek(Options(), *second));
  EXPECT_EQ(OpenPkcs11Kek(Options()).error().code, Code::kNotFound);
  EXPECT_TRUE(OpenPkcs11Kek(other));
}

TEST_F(Pkcs11KekTest, BadOptionsAreInvalidArgument) {
  Pkcs11Options options = Options();
  options.key_label.clear();
  EXPECT_EQ(CreatePkcs11Kek(options).error().code, Code::kInvalidArgument);
  EXPECT_EQ(OpenPkcs11Kek(Options("")).error().code, Code::kInvalidArgument);
  EXPECT_EQ(OpenPkcs11Kek(Options(kPin, "")).error().code, Code::kInvalidArgument);
  EXPECT_EQ(OpenPkcs11Kek(Options(kPin, std::string(33, 'a'))).error().code,
            Code::kInvalidArgument);
}

TEST_F(Pkcs11KekTest, UnloadableModuleIsUnavailable) {
  Pkcs11Options options = Options();
  options.module = "/nonexistent/libnothing.so";
  const auto created = CreatePkcs11Kek(options);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kUnavailable);
  EXPECT_NE(created.error().message.find("/nonexistent/libnothing.so"), std::string::npos)
      << created.error().message;
  options.module = "libc.so.6";  // loads, but is no PKCS#11 module
  auto kek = OpenPkcs11Kek(options);
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kUnavailable);
  EXPECT_EQ(kek.error().message, "`libc.so.6` is not a PKCS#11 module");
}

TEST_F(Pkcs11KekTest, WrappedKeyUnwrapsAfterReopening) {
  const Pkcs11Options options = Options();
  ASSERT_TRUE(CreatePkcs11Kek(options));
  const SecretBytes key = NewDataKey();
  Bytes wrapped;
  {
    auto kek = OpenPkcs11Kek(options);
    ASSERT_TRUE(kek);
    auto sealed = (*kek)->Wrap(key, AsBytes("ad"));
    ASSERT_TRUE(sealed);
    wrapped = *sealed;
  }  // the last user: the module is finalised and unloaded here
  auto kek = OpenPkcs11Kek(options);
  ASSERT_TRUE(kek) << kek.error().ToString();
  auto back = (*kek)->Unwrap(wrapped, AsBytes("ad"));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(SameSecret(*back, key));
}

TEST_F(Pkcs11KekTest, KeksOnOneTokenAreIndependent) {
  Pkcs11Options first_options = Options();
  first_options.key_label += "-1";
  Pkcs11Options second_options = Options();
  second_options.key_label += "-2";
  auto first = CreateAndOpen(first_options);
  auto second = CreateAndOpen(second_options);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const SecretBytes key = NewDataKey();
  auto wrapped = first->Wrap(key, AsBytes("ad"));
  ASSERT_TRUE(wrapped);
  // Another key on the same token cannot unwrap it.
  auto other = second->Unwrap(*wrapped, AsBytes("ad"));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Code::kDataLoss);
  // Closing one KEK does not log the other out.
  auto again = OpenPkcs11Kek(first_options);
  ASSERT_TRUE(again);
  first.reset();
  auto sealed = second->Wrap(key, AsBytes("ad"));
  ASSERT_TRUE(sealed) << sealed.error().ToString();
  auto back = (*again)->Unwrap(*wrapped, AsBytes("ad"));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(SameSecret(*back, key));
}

TEST_F(Pkcs11KekTest, OneKekServesManyThreads) {
  const auto kek = CreateAndOpen(Options());
  ASSERT_NE(kek, nullptr);
  std::vector<std::thread> threads;
  std::array<int, 4> failures{};
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&kek, &failures, t] {
      for (int i = 0; i < 50; ++i) {
        const SecretBytes key = NewDataKey();
        const std::string ad = "thread/" + std::to_string(t) + "/" + std::to_string(i);
        auto wrapped = kek->Wrap(key, AsBytes(ad));
        if (!wrapped) {
          ++failures[t];
          continue;
        }
        auto back = kek->Unwrap(*wrapped, AsBytes(ad));
        if (!back || !SameSecret(*back, key)) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (const int f : failures) {
    EXPECT_EQ(f, 0);
  }
}

// Reads the key's attributes straight from SoftHSM2, bypassing the code under test. Runs while no
// KEK is open, so its C_Initialize and C_Finalize are its own.
// A logged-in session on this test's token, through the module itself (not through accord).
class RawSession {
 public:
  RawSession() {
    library_ = dlopen(kModule, RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(library_, nullptr) << dlerror();
    if (library_ == nullptr) return;
    const auto get_function_list =
        reinterpret_cast<CK_C_GetFunctionList>(dlsym(library_, "C_GetFunctionList"));
    EXPECT_NE(get_function_list, nullptr);
    if (get_function_list == nullptr || get_function_list(&f_) != CKR_OK ||
        f_->C_Initialize(nullptr) != CKR_OK) {
      ADD_FAILURE() << "cannot initialise " << kModule;
      f_ = nullptr;
      return;
    }
    CK_ULONG count = 0;
    EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, nullptr, &count), CKR_OK);
    std::vector<CK_SLOT_ID> slots(count);
    EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, slots.data(), &count), CKR_OK);
    for (const CK_SLOT_ID s : slots) {
      CK_TOKEN_INFO info{};
      EXPECT_EQ(f_->C_GetTokenInfo(s, &info), CKR_OK);
      std::string label(reinterpret_cast<const char*>(info.label), sizeof(info.label));
      label.erase(label.find_last_not_of(' ') + 1);
      if (label == kToken && f_->C_OpenSession(s, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                               nullptr, &session_) == CKR_OK) {
        std::string pin = kPin;
        EXPECT_EQ(
            f_->C_Login(session_, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()), pin.size()),
            CKR_OK);
      }
    }
    EXPECT_NE(session_, CK_INVALID_HANDLE) << "no token " << kToken;
  }
  ~RawSession() {
    if (session_ != CK_INVALID_HANDLE) {
      EXPECT_EQ(f_->C_CloseSession(session_), CKR_OK);
    }
    if (f_ != nullptr) {
      EXPECT_EQ(f_->C_Finalize(nullptr), CKR_OK);
    }
    if (library_ != nullptr) {
      dlclose(library_);
    }
  }
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  [[nodiscard]] bool ok() const { return session_ != CK_INVALID_HANDLE; }
  [[nodiscard]] CK_FUNCTION_LIST_PTR f() const { return f_; }
  [[nodiscard]] CK_SESSION_HANDLE handle() const { return session_; }

 private:
  void* library_ = nullptr;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

// Generates an AES-256 key under `label` as another tool might, with `sensitive`,
// `extractable` and `is_private` as given; `then_unextractable` turns CKA_EXTRACTABLE off after
// (CKA_NEVER_EXTRACTABLE stays false: the value could have been taken out meanwhile).
void MakeForeignKey(std::string label, CK_BBOOL sensitive, CK_BBOOL extractable,
                    CK_BBOOL is_private, bool then_unextractable = false) {
  RawSession raw;
  ASSERT_TRUE(raw.ok());
  CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG size = 32;
  CK_BBOOL yes = CK_TRUE;
  std::array<CK_ATTRIBUTE, 9> attributes{{
      {CKA_CLASS, &object_class, sizeof(object_class)},
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_VALUE_LEN, &size, sizeof(size)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &is_private, sizeof(is_private)},
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
  }};
  CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  ASSERT_EQ(
      raw.f()->C_GenerateKey(raw.handle(), &mechanism, attributes.data(), attributes.size(), &key),
      CKR_OK);
  if (then_unextractable) {
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE off{CKA_EXTRACTABLE, &no, sizeof(no)};
    ASSERT_EQ(raw.f()->C_SetAttributeValue(raw.handle(), key, &off, 1), CKR_OK);
  }
}

// A key under the KEK's label that could leave the token, or could have left it once, or that
// can be used without logging in (made by another tool, say) is refused when the KEK opens, not
// used.
TEST_F(Pkcs11KekTest, AKeyThatCanLeaveTheTokenIsRefused) {
  MakeForeignKey(Options().key_label, CK_FALSE, CK_TRUE, CK_TRUE);
  auto kek = OpenPkcs11Kek(Options());
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kFailedPrecondition);
  EXPECT_NE(kek.error().message.find("can leave the token"), std::string::npos)
      << kek.error().message;
}

TEST_F(Pkcs11KekTest, AKeyThatWasOnceExtractableIsRefused) {
  MakeForeignKey(Options().key_label, CK_TRUE, CK_TRUE, CK_TRUE, /*then_unextractable=*/true);
  auto kek = OpenPkcs11Kek(Options());
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kFailedPrecondition);
  EXPECT_NE(kek.error().message.find("may have left the token"), std::string::npos)
      << kek.error().message;
}

TEST_F(Pkcs11KekTest, AKeyUsableWithoutLoginIsRefused) {
  MakeForeignKey(Options().key_label, CK_TRUE, CK_FALSE, CK_FALSE);
  auto kek = OpenPkcs11Kek(Options());
  ASSERT_FALSE(kek);
  EXPECT_EQ(kek.error().code, Code::kFailedPrecondition);
  EXPECT_NE(kek.error().message.find("without logging in"), std::string::npos)
      << kek.error().message;
}

TEST_F(Pkcs11KekTest, KeyIsSensitiveAndNotExtractable) {
  ASSERT_TRUE(CreatePkcs11Kek(Options()));
  RawSession raw;
  ASSERT_TRUE(raw.ok());
  CK_FUNCTION_LIST_PTR f = raw.f();
  CK_SESSION_HANDLE session = raw.handle();
  CK_ULONG count = 0;

  CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
  std::string label = Options().key_label;
  std::array<CK_ATTRIBUTE, 2> match{{
      {CKA_CLASS, &object_class, sizeof(object_class)},
      {CKA_LABEL, label.data(), label.size()},
  }};
  ASSERT_EQ(f->C_FindObjectsInit(session, match.data(), match.size()), CKR_OK);
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  ASSERT_EQ(f->C_FindObjects(session, &key, 1, &count), CKR_OK);
  ASSERT_EQ(f->C_FindObjectsFinal(session), CKR_OK);
  ASSERT_EQ(count, 1u);

  std::array<uint8_t, 64> value{};
  CK_ATTRIBUTE read_value{CKA_VALUE, value.data(), value.size()};
  EXPECT_EQ(f->C_GetAttributeValue(session, key, &read_value, 1), CKR_ATTRIBUTE_SENSITIVE);
  EXPECT_EQ(read_value.ulValueLen, CK_UNAVAILABLE_INFORMATION);
  EXPECT_EQ(value, (std::array<uint8_t, 64>{}));

  CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, token = CK_FALSE, is_private = CK_FALSE,
           wrap = CK_TRUE, derive = CK_TRUE, always_sensitive = CK_FALSE,
           never_extractable = CK_FALSE;
  CK_ULONG size = 0;
  std::array<CK_ATTRIBUTE, 9> attributes{{
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_TOKEN, &token, sizeof(token)},
      {CKA_PRIVATE, &is_private, sizeof(is_private)},
      {CKA_WRAP, &wrap, sizeof(wrap)},
      {CKA_DERIVE, &derive, sizeof(derive)},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
      {CKA_VALUE_LEN, &size, sizeof(size)},
  }};
  EXPECT_EQ(f->C_GetAttributeValue(session, key, attributes.data(), attributes.size()), CKR_OK);
  EXPECT_EQ(sensitive, CK_TRUE);
  EXPECT_EQ(extractable, CK_FALSE);
  EXPECT_EQ(token, CK_TRUE);
  EXPECT_EQ(is_private, CK_TRUE);
  EXPECT_EQ(wrap, CK_FALSE);
  EXPECT_EQ(derive, CK_FALSE);
  EXPECT_EQ(always_sensitive, CK_TRUE);
  EXPECT_EQ(never_extractable, CK_TRUE);
  EXPECT_EQ(size, 32u);
}

}  // namespace
}  // namespace accord
