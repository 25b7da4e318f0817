#include "accord/crypto.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "accord/harden.h"
#include "accord/secret.h"

namespace accord {
namespace {

Bytes FromHex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string Text(const SecretBytes& s) { return std::string(s.RevealText(InsecureSecretAccess())); }

// The GCM specification's test case 16 (McGrew & Viega, "The Galois/Counter Mode of Operation",
// AES-256 with associated data).
TEST(AeadTest, DecryptsGcmSpecTestCase16) {
  const Bytes key = FromHex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes sealed = FromHex("cafebabefacedbaddecaf888");
  const Bytes ct = FromHex(
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
      "56828838c5f61e6393ba7a0abcc9f662");
  const Bytes tag = FromHex("76fc6ece0f4e1768cddf8853bb2d551b");
  sealed.insert(sealed.end(), ct.begin(), ct.end());
  sealed.insert(sealed.end(), tag.begin(), tag.end());
  const Bytes ad = FromHex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  auto aead = Aead::Create(SecretBytes::Copy(key));
  ASSERT_TRUE(aead);
  auto plain = aead->Decrypt(sealed, ad);
  ASSERT_TRUE(plain) << plain.error().ToString();
  EXPECT_EQ(HexEncode(plain->Reveal(InsecureSecretAccess())),
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0"
            "e2449a6b525b16aedf5aa0de657ba637b39");
}

TEST(AeadTest, RoundTripsAndBindsAssociatedData) {
  auto aead = Aead::Create(NewDataKey());
  ASSERT_TRUE(aead);
  auto sealed = aead->Encrypt(AsBytes("payload"), AsBytes("label"));
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->size(), 7 + kAeadOverhead);
  auto plain = aead->Decrypt(*sealed, AsBytes("label"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(Text(*plain), "payload");
  auto wrong = aead->Decrypt(*sealed, AsBytes("labe1"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Code::kDataLoss);
  EXPECT_EQ(wrong.error().message, "decryption failed");
}

TEST(AeadTest, EveryFlippedBitFails) {
  auto aead = Aead::Create(NewDataKey());
  ASSERT_TRUE(aead);
  auto sealed = aead->Encrypt(AsBytes("attack at dawn"), AsBytes("ad"));
  ASSERT_TRUE(sealed);
  for (size_t i = 0; i < sealed->size() * 8; ++i) {
    Bytes bad = *sealed;
    bad[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    auto r = aead->Decrypt(bad, AsBytes("ad"));
    ASSERT_FALSE(r) << "bit " << i;
    EXPECT_EQ(r.error().code, Code::kDataLoss);
  }
  for (size_t n = 0; n < sealed->size(); ++n) {  // every truncation
    EXPECT_FALSE(aead->Decrypt(ByteView(*sealed).first(n), AsBytes("ad")));
  }
}

TEST(AeadTest, NoncesAreFresh) {
  auto aead = Aead::Create(NewDataKey());
  ASSERT_TRUE(aead);
  auto a = aead->Encrypt(AsBytes("same"), {});
  auto b = aead->Encrypt(AsBytes("same"), {});
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(AeadTest, RefusesShortKeys) {
  auto r = Aead::Create(SecretBytes(16));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
}

TEST(LocalKekTest, WrapsAndUnwraps) {
  auto kek = LocalKek::Create(NewDataKey(), "test");
  ASSERT_TRUE(kek);
  const SecretBytes dk = NewDataKey();
  auto wrapped = (*kek)->Wrap(dk, AsBytes("object k-1 v1"));
  ASSERT_TRUE(wrapped);
  auto back = (*kek)->Unwrap(*wrapped, AsBytes("object k-1 v1"));
  ASSERT_TRUE(back);
  EXPECT_TRUE(
      ConstantTimeEquals(back->Reveal(InsecureSecretAccess()), dk.Reveal(InsecureSecretAccess())));
  EXPECT_FALSE((*kek)->Unwrap(*wrapped, AsBytes("object k-2 v1")));
  auto other = LocalKek::Create(NewDataKey(), "other");
  ASSERT_TRUE(other);
  EXPECT_FALSE((*other)->Unwrap(*wrapped, AsBytes("object k-1 v1")));
}

// RFC 8032 §7.1, test 1 (empty message).
TEST(SigningKeyTest, MatchesRfc8032Test1) {
  auto key = SigningKey::FromSeed(SecretBytes::Copy(
      FromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")));
  ASSERT_TRUE(key);
  EXPECT_EQ(HexEncode(key->public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const Bytes sig = key->Sign({});
  EXPECT_EQ(HexEncode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3"
            "9701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(key->verifying_key().Verify({}, sig));
}

TEST(SigningKeyTest, RejectsForgeries) {
  const SigningKey key = SigningKey::Generate();
  const Bytes sig = key.Sign(AsBytes("release k-1 to JPN"));
  EXPECT_TRUE(key.verifying_key().Verify(AsBytes("release k-1 to JPN"), sig));
  auto other_message = key.verifying_key().Verify(AsBytes("release k-1 to USA"), sig);
  ASSERT_FALSE(other_message);
  EXPECT_EQ(other_message.error().code, Code::kDataLoss);
  const SigningKey stranger = SigningKey::Generate();
  EXPECT_FALSE(stranger.verifying_key().Verify(AsBytes("release k-1 to JPN"), sig));
  for (size_t i = 0; i < sig.size(); ++i) {
    Bytes bad = sig;
    bad[i] ^= 0x01;
    EXPECT_FALSE(key.verifying_key().Verify(AsBytes("release k-1 to JPN"), bad)) << i;
  }
  EXPECT_FALSE(key.verifying_key().Verify(AsBytes("release k-1 to JPN"), ByteView(sig).first(63)));
}

// Points of small order are taken by OpenSSL as public keys, and a signature made with no
// private key verifies under them; AcceptsForgeries finds them (decision #103).
TEST(VerifyingKeyTest, KeysOfSmallOrderAcceptForgeries) {
  auto encoding = [](uint8_t first, uint8_t fill, uint8_t last) {
    Bytes b(32, fill);
    b[0] = first;
    b[31] = last;
    return b;
  };
  const std::vector<std::pair<std::string, Bytes>> small = {
      {"the identity (y = 1)", encoding(0x01, 0x00, 0x00)},
      {"order 2 (y = -1)", encoding(0xec, 0xff, 0x7f)},
      {"order 4 (y = 0, x even)", encoding(0x00, 0x00, 0x00)},
      {"order 4 (y = 0, x odd)", encoding(0x00, 0x00, 0x80)},
  };
  Bytes forged(kSignatureSize, 0);
  forged[0] = 1;
  for (const auto& [name, raw] : small) {
    auto key = VerifyingKey::FromRaw(raw);
    ASSERT_TRUE(key) << name;  // OpenSSL takes it
    EXPECT_TRUE(key->AcceptsForgeries()) << name;
  }
  // The identity accepts the forged signature on any message at all.
  EXPECT_TRUE(VerifyingKey::FromRaw(small[0].second)->Verify(AsBytes("destroy k-1"), forged));
  for (int i = 0; i < 4; ++i) {
    const SigningKey real = SigningKey::Generate();
    EXPECT_FALSE(real.verifying_key().AcceptsForgeries());
    EXPECT_FALSE(real.verifying_key().Verify(AsBytes("destroy k-1"), forged));
  }
}

// RFC 7748 §6.1: Alice's and Bob's public keys from their private keys.
TEST(WrapKeyPairTest, MatchesRfc7748PublicKeys) {
  auto alice = WrapKeyPair::FromPrivate(SecretBytes::Copy(
      FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
  auto bob = WrapKeyPair::FromPrivate(SecretBytes::Copy(
      FromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")));
  ASSERT_TRUE(alice && bob);
  EXPECT_EQ(HexEncode(alice->public_key()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(HexEncode(bob->public_key()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
}

TEST(WrapKeyPairTest, OnlyTheRecipientUnwraps) {
  const WrapKeyPair jpn = WrapKeyPair::Generate();
  const WrapKeyPair usa = WrapKeyPair::Generate();
  const SecretBytes dk = NewDataKey();
  auto wrapped = WrapToParty(jpn.public_key(), dk, AsBytes("pkg-1"));
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(wrapped->size(), kPublicKeySize + kAeadOverhead + kAeadKeySize);
  auto back = jpn.Unwrap(*wrapped, AsBytes("pkg-1"));
  ASSERT_TRUE(back);
  EXPECT_TRUE(
      ConstantTimeEquals(back->Reveal(InsecureSecretAccess()), dk.Reveal(InsecureSecretAccess())));
  auto by_usa = usa.Unwrap(*wrapped, AsBytes("pkg-1"));
  ASSERT_FALSE(by_usa);
  EXPECT_EQ(by_usa.error().code, Code::kDataLoss);
  EXPECT_FALSE(jpn.Unwrap(*wrapped, AsBytes("pkg-2")));
  for (size_t i = 0; i < wrapped->size(); ++i) {
    Bytes bad = *wrapped;
    bad[i] ^= 0x80;
    EXPECT_FALSE(jpn.Unwrap(bad, AsBytes("pkg-1"))) << "byte " << i;
  }
  EXPECT_FALSE(jpn.Unwrap(ByteView(*wrapped).first(40), AsBytes("pkg-1")));
}

// With the process hardened, a key-sized SecretBytes lives on OpenSSL's secure heap, up to half of
// it: the other half stays OpenSSL's, whose random generator seeds there. With SecretBytes
// taking all they may, wrapping and unwrapping (an ephemeral key, a nonce) still work; a
// SecretBytes then comes from the ordinary heap, and no error of OpenSSL's queue is lost or left
// behind. (This test leaves the process hardened for the tests after it, as `accord` runs.)
TEST(WrapKeyPairTest, SecretsTakeNoMoreThanHalfOfTheSecureHeap) {
  ASSERT_TRUE(HardenProcess());
  ERR_clear_error();
  const WrapKeyPair jpn = WrapKeyPair::Generate();
  const SecretBytes dk = NewDataKey();
  EXPECT_EQ(CRYPTO_secure_allocated(dk.Reveal(InsecureSecretAccess()).data()), 1);

  struct Taken {
    std::vector<std::pair<void*, size_t>> blocks;
    ~Taken() {
      for (auto [p, size] : blocks) SecureFree(p, size);
    }
  } taken;
  for (size_t block = kSecureHeapBytes / 4; block >= 16; block /= 2) {
    while (void* p = SecureAllocate(block)) taken.blocks.emplace_back(p, block);
  }
  EXPECT_LE(CRYPTO_secure_used(), kSecureHeapBytes / 2);
  EXPECT_GE(CRYPTO_secure_used(), kSecureHeapBytes / 2 - 16);
  ERR_raise(ERR_LIB_USER, 1);  // an error of someone else's, which must stay
  const SecretBytes key(32);
  EXPECT_EQ(CRYPTO_secure_allocated(key.Reveal(InsecureSecretAccess()).data()), 0);
  EXPECT_EQ(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_USER);
  ERR_clear_error();

  // The generators of this thread and of a new one (which seeds now) still draw.
  std::thread([] {
    EXPECT_EQ(RandomBytes(16).size(), 16u);
    auto nonce = TryRandomBytes(12);  // the PKCS#11 key's nonces: fallible, never an abort
    ASSERT_TRUE(nonce) << nonce.error().ToString();
    EXPECT_EQ(nonce->size(), 12u);
    EXPECT_NE(*nonce, TryRandomBytes(12).value());
  }).join();
  auto wrapped = WrapToParty(jpn.public_key(), dk, AsBytes("pkg-1"));
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  auto back = jpn.Unwrap(*wrapped, AsBytes("pkg-1"));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(
      ConstantTimeEquals(back->Reveal(InsecureSecretAccess()), dk.Reveal(InsecureSecretAccess())));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(WrapKeyPairTest, RefusesLowOrderPublicKey) {
  const PublicKey zero{};
  auto r = WrapToParty(zero, NewDataKey(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
}

TEST(Base64Test, RoundTripsAndRefusesNonCanonical) {
  for (size_t n = 0; n < 20; ++n) {
    const Bytes data = RandomBytes(n);
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, data);
  }
  EXPECT_EQ(Base64Encode(AsBytes("foobar")), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("Zm9vYmF"));
  EXPECT_FALSE(Base64Decode("Zm9=YmFy"));
  EXPECT_FALSE(Base64Decode("Zm9vYmF6\n"));
  EXPECT_FALSE(Base64Decode("Zh=="));  // trailing bits set
  EXPECT_TRUE(Base64Decode("Zg=="));
  EXPECT_FALSE(Base64Decode("Zm9="));  // the same with one byte of padding
  EXPECT_EQ(Base64Decode("Zm8=").value(), (Bytes{'f', 'o'}));
  EXPECT_FALSE(Base64Decode("===="));
  EXPECT_FALSE(Base64Decode("Z==="));
  // Every last digit before padding: exactly the canonical ones decode.
  const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t v = 0; v < 64; ++v) {
    EXPECT_EQ(Base64Decode(std::string("Zm") + digits[v] + "=").has_value(), v % 4 == 0) << v;
    EXPECT_EQ(Base64Decode(std::string("Z") + digits[v] + "==").has_value(), v % 16 == 0) << v;
  }
  // Large inputs are encoded in pieces of 3 MiB: around and across the joins.
  for (const size_t n :
       {(size_t{3} << 20) - 1, size_t{3} << 20, (size_t{3} << 20) + 1, (size_t{6} << 20) + 2}) {
    const Bytes data = RandomBytes(n);
    const std::string text = Base64Encode(data);
    ASSERT_EQ(text.size(), 4 * ((n + 2) / 3)) << n;
    EXPECT_EQ(text.find('\0'), std::string::npos) << n;
    auto back = Base64Decode(text);
    ASSERT_TRUE(back) << n;
    EXPECT_TRUE(*back == data) << n;
    WipedString appended = "prefix:";
    AppendBase64(data, appended);
    EXPECT_TRUE(std::string_view(appended) == "prefix:" + text) << n;
  }
  WipedString empty;
  AppendBase64({}, empty);
  EXPECT_TRUE(empty.empty());
}

TEST(HexTest, RoundTripsAndRefusesBadDigits) {
  const Bytes data = RandomBytes(33);
  EXPECT_EQ(HexDecode(HexEncode(data)).value(), data);
  EXPECT_EQ(HexDecode("0aFF").value(), (Bytes{0x0a, 0xff}));
  EXPECT_FALSE(HexDecode("abc"));
  EXPECT_FALSE(HexDecode("zz"));
}

TEST(SecretBytesTest, MovesAndClears) {
  SecretBytes a = SecretBytes::Copy(std::string_view("key"));
  SecretBytes b = std::move(a);
  EXPECT_EQ(Text(b), "key");
  b = SecretBytes::Copy(std::string_view("other"));
  EXPECT_EQ(Text(b), "other");
  SecretBytes c = b.Clone();
  b.Clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(Text(c), "other");
}

TEST(SecretBytesTest, RemovesAPrefixInPlace) {
  SecretBytes s = SecretBytes::Copy(std::string_view("saltpayload"));
  s.RemovePrefix(4);
  EXPECT_EQ(Text(s), "payload");
  s.RemovePrefix(0);
  EXPECT_EQ(Text(s), "payload");
  s.RemovePrefix(100);
  EXPECT_TRUE(s.empty());
}

TEST(ConstantTimeEqualsTest, ComparesContentAndSize) {
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("ab")));
}

}  // namespace
}  // namespace accord
