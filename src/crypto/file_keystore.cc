// The file key store: a KEK sealed under a passphrase-derived key (scrypt, AES-256-GCM).
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accord/file.h"
#include "accord/keystore.h"
#include "keystore_text.h"

namespace accord {
namespace {

constexpr std::string_view kMagic = "accord-keystore v1";
// The ceiling on scrypt's memory, so a hostile file cannot exhaust the machine.
constexpr uint64_t kMaxMemory = uint64_t{1} << 30;

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

Result<SecretBytes> Scrypt(const SecretBytes& passphrase, ByteView salt, const ScryptParams& p) {
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) {
    ERR_clear_error();
    return Fail(Code::kInternal, "scrypt unavailable");
  }
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    ERR_clear_error();
    return Fail(Code::kInternal, "scrypt unavailable");
  }
  auto pass = passphrase.Reveal(InsecureSecretAccess());
  uint64_t n = p.n;
  uint32_t r = p.r;
  uint32_t par = p.p;
  uint64_t maxmem = kMaxMemory + (uint64_t{1} << 20);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string("pass", const_cast<uint8_t*>(pass.data()), pass.size()),
      OSSL_PARAM_construct_octet_string("salt", const_cast<uint8_t*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_uint64("n", &n),
      OSSL_PARAM_construct_uint32("r", &r),
      OSSL_PARAM_construct_uint32("p", &par),
      OSSL_PARAM_construct_uint64("maxmem_bytes", &maxmem),
      OSSL_PARAM_construct_end(),
  };
  SecretBytes key(kAeadKeySize);
  if (EVP_KDF_derive(ctx.get(), key.RevealMutable(InsecureSecretAccess()).data(), key.size(),
                     params) != 1) {
    ERR_clear_error();
    return Fail(Code::kInternal, "scrypt failed");
  }
  return key;
}

// Writes the key store's file whole (staged, made durable, then linked to its name), never over
// one that is there: a crash or a full disk leaves no file cut short under the name.
Status WriteNewFile(const std::string& path, std::string_view text) {
  ACCORD_ASSIGN_OR_RETURN(StagedFile staged, StagedFile::Write(path, text, 0600));
  Status put = staged.CommitNew();
  if (!put && put.error().code == Code::kAlreadyExists) {
    return Fail(Code::kAlreadyExists, fmt::format("key store `{}` already exists", path));
  }
  return put;
}

Result<uint64_t> ParseNumber(std::string_view field, std::string_view prefix) {
  if (!field.starts_with(prefix)) {
    return Fail(Code::kInvalidArgument, fmt::format("no `{}`", prefix));
  }
  field.remove_prefix(prefix.size());
  uint64_t v = 0;
  if (field.empty() || field.size() > 10) {
    return Fail(Code::kInvalidArgument, fmt::format("`{}` takes 1 to 10 digits", prefix));
  }
  for (char c : field) {
    if (c < '0' || c > '9') {
      return Fail(Code::kInvalidArgument, fmt::format("`{}` takes digits only", prefix));
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

namespace crypto_internal {

bool KeyStoreParamsReasonable(const ScryptParams& p) {
  const bool power_of_two = p.n >= 2 && (p.n & (p.n - 1)) == 0;
  // OpenSSL's scrypt also needs n < 2^(16 r) (RFC 7914): r = 1 allows n up to 2^15 only.
  return power_of_two && p.r >= 1 && p.p >= 1 && p.p <= 16 && p.r <= 64 &&
         p.n <= (uint64_t{1} << 24) && 128 * p.n * p.r <= kMaxMemory &&
         (p.r > 1 || p.n < (uint64_t{1} << 16));
}

std::string KeyStoreHeader(const ScryptParams& params, ByteView salt) {
  return fmt::format("{}\nkdf scrypt n={} r={} p={}\nsalt {}\n", kMagic, params.n, params.r,
                     params.p, Base64Encode(salt));
}

Result<KeyStoreText> ParseKeyStoreText(std::string_view text) {
  const auto bad = [](std::string_view what) {
    return Fail(Code::kInvalidArgument, std::string(what));
  };
  std::vector<std::string_view> lines;
  for (std::string_view rest = text; !rest.empty();) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return bad("its last line has no newline");
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.size() != 4 || lines[0] != kMagic || !lines[1].starts_with("kdf scrypt ") ||
      !lines[2].starts_with("salt ") || !lines[3].starts_with("kek ")) {
    return bad("not the four lines of a key store");
  }
  // "kdf scrypt n=N r=R p=P"
  std::vector<std::string_view> fields;
  std::string_view kdf = lines[1].substr(11);
  for (size_t sp; (sp = kdf.find(' ')) != std::string_view::npos; kdf.remove_prefix(sp + 1)) {
    fields.push_back(kdf.substr(0, sp));
  }
  fields.push_back(kdf);
  if (fields.size() != 3) return bad("the kdf line has not three parameters");
  auto n = ParseNumber(fields[0], "n=");
  auto r = ParseNumber(fields[1], "r=");
  auto p = ParseNumber(fields[2], "p=");
  if (!n || !r || !p) return bad("the kdf line's parameters are not `n=N r=R p=P`");
  if (*r > 64 || *p > 16) return bad("unreasonable scrypt parameters");
  KeyStoreText out;
  out.params = ScryptParams{*n, static_cast<uint32_t>(*r), static_cast<uint32_t>(*p)};
  if (!KeyStoreParamsReasonable(out.params)) return bad("unreasonable scrypt parameters");
  auto salt = Base64Decode(lines[2].substr(5));
  if (!salt || salt->size() != kKeyStoreSaltSize) return bad("the salt is not 16 bytes in base64");
  auto sealed = Base64Decode(lines[3].substr(4));
  if (!sealed) return bad("the sealed key is not base64");
  out.salt = std::move(*salt);
  out.sealed = std::move(*sealed);
  // The header as written is the associated data: any edit fails like a wrong passphrase.
  out.header = std::string(text.substr(0, text.size() - lines[3].size() - 1));
  return out;
}

}  // namespace crypto_internal

Status CreateFileKeyStore(const std::string& path, const SecretBytes& passphrase,
                          const ScryptParams& params) {
  if (passphrase.empty()) {
    return Fail(Code::kInvalidArgument, "the passphrase is empty");
  }
  if (!crypto_internal::KeyStoreParamsReasonable(params)) {
    return Fail(Code::kInvalidArgument, "unreasonable scrypt parameters");
  }
  const Bytes salt = RandomBytes(crypto_internal::kKeyStoreSaltSize);
  const std::string header = crypto_internal::KeyStoreHeader(params, salt);
  ACCORD_ASSIGN_OR_RETURN(SecretBytes wrapping, Scrypt(passphrase, salt, params));
  ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(wrapping)));
  const SecretBytes kek = NewDataKey();
  ACCORD_ASSIGN_OR_RETURN(Bytes sealed,
                          aead.Encrypt(kek.Reveal(InsecureSecretAccess()), AsBytes(header)));
  return WriteNewFile(path, header + "kek " + Base64Encode(sealed) + "\n");
}

Result<std::unique_ptr<KeyEncryptionKey>> OpenFileKeyStore(const std::string& path,
                                                           const SecretBytes& passphrase) {
  const auto malformed = [&path](std::string_view why) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` is not an accord key store: {}", path, why));
  };
  auto read = ReadFileAtMost(path, 4096);
  if (!read) {
    if (read.error().code == Code::kNotFound) {
      return Fail(Code::kNotFound, fmt::format("no key store at `{}`", path));
    }
    if (read.error().code == Code::kInvalidArgument) {
      return malformed("larger than 4 KiB");  // larger than any
    }
    return tl::unexpected(read.error());
  }
  auto parsed = crypto_internal::ParseKeyStoreText(*read);
  if (!parsed) return malformed(parsed.error().message);
  const crypto_internal::KeyStoreText& file = *parsed;
  ACCORD_ASSIGN_OR_RETURN(SecretBytes wrapping, Scrypt(passphrase, file.salt, file.params));
  ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(wrapping)));
  auto kek = aead.Decrypt(file.sealed, AsBytes(file.header));
  if (!kek) {
    // The two cannot be told apart (the header is the associated data): both are said.
    return Fail(Code::kPermissionDenied,
                fmt::format("wrong passphrase for `{}` (or the file was altered or damaged: "
                            "if the passphrase is right, restore it from a backup)",
                            path));
  }
  ACCORD_ASSIGN_OR_RETURN(auto local, LocalKek::Create(std::move(*kek), "file key store"));
  return std::unique_ptr<KeyEncryptionKey>(std::move(local));
}

}  // namespace accord
