#include "accord/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "accord/file.h"

namespace accord {
namespace {
namespace fs = std::filesystem;

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
struct CrlDeleter {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct Asn1IntegerDeleter {
  void operator()(ASN1_INTEGER* i) const { ASN1_INTEGER_free(i); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlDeleter>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Asn1IntegerDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using FilePtr = std::unique_ptr<FILE, FileCloser>;

Status OpenSslError(std::string_view what) {
  return Fail(Code::kInternal, fmt::format("{} failed (OpenSSL)", what));
}

Result<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return tl::unexpected(OpenSslError("generating a P-256 key").error());
  return key;
}

// A new file beside `path` (StagedFile) with the PEM text `write` makes in memory. `secret`: the
// text holds a private key, so its buffer comes from the secure heap and is wiped when freed.
template <typename Write>
Result<StagedFile> StagePem(const std::string& path, mode_t mode, bool secret, Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(secret ? BIO_s_secmem() : BIO_s_mem()),
                                                &BIO_free);
  if (!bio || write(bio.get()) != 1) {
    return tl::unexpected(OpenSslError(fmt::format("writing `{}`", path)).error());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return StagedFile::Write(path, std::string_view(data, static_cast<size_t>(size)), mode);
}

// Stages `key` with mode 0600 (when there is one), then `cert` with 0644, onto `staged`: each
// whole through a new file that its commit renames into place, so a file or symbolic link found
// under either name is replaced, never written through (decision #101). Committed in order (the
// key first), both are staged before either is renamed, so a full disk leaves the old key with
// its old certificate (decision #145).
Status StagePair(const std::string& cert_path, X509* cert, const std::string& key_path,
                 EVP_PKEY* key, std::vector<StagedFile>& staged) {
  if (key != nullptr) {
    ACCORD_ASSIGN_OR_RETURN(
        StagedFile staged_key, StagePem(key_path, 0600, /*secret=*/true, [&](BIO* bio) {
          return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
        }));
    staged.push_back(std::move(staged_key));
  }
  ACCORD_ASSIGN_OR_RETURN(StagedFile staged_cert,
                          StagePem(cert_path, 0644, /*secret=*/false,
                                   [&](BIO* bio) { return PEM_write_bio_X509(bio, cert); }));
  staged.push_back(std::move(staged_cert));
  return OkStatus();
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslError(fmt::format("extension `{}`", value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? OkStatus() : OpenSslError("adding an extension");
}

struct Name {
  std::string common_name;
  std::string organization;
};

// A certificate for `key` named `subject`, signed by `issuer_key` (self-signed when `issuer` is
// null), valid [not_before, not_after].
Result<X509Ptr> MakeCertificate(EVP_PKEY* key, const Name& subject, X509* issuer,
                                EVP_PKEY* issuer_key, Instant not_before, Instant not_after,
                                const std::vector<std::pair<int, std::string>>& extensions) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return tl::unexpected(OpenSslError("making a certificate").error());
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) std::abort();
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* asn1_serial = bn ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
  BN_free(bn);
  const bool serial_ok = asn1_serial && X509_set_serialNumber(cert.get(), asn1_serial) == 1;
  ASN1_INTEGER_free(asn1_serial);
  if (!serial_ok) return tl::unexpected(OpenSslError("setting the serial").error());

  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto add = [name](const char* field, const std::string& value) {
    return value.empty() ||
           X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                      0) == 1;
  };
  if (!add("O", subject.organization) || !add("CN", subject.common_name)) {
    return tl::unexpected(OpenSslError("naming a certificate").error());
  }
  if (X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name) !=
      1) {
    return tl::unexpected(OpenSslError("naming a certificate's issuer").error());
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before.micros / 1'000'000) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after.micros / 1'000'000) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return tl::unexpected(OpenSslError("setting validity").error());
  }
  X509* const signer = issuer != nullptr ? issuer : cert.get();
  for (const auto& [nid, value] : extensions) {
    ACCORD_RETURN_IF_ERROR(AddExtension(cert.get(), signer, nid, value));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return tl::unexpected(OpenSslError("signing a certificate").error());
  }
  return cert;
}

// Whether `host` is an IPv4 or IPv6 address: it goes into a certificate as an IP address.
bool IsIpLiteral(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Whether `host` is a DNS name (RFC 1123): labels of 1 to 63 letters, digits and hyphens, not
// beginning or ending with a hyphen, 253 characters in all, the last label not all digits (which
// would read as part of an IPv4 address).
bool IsDnsName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool last_all_digits = true;
  size_t label = 0;  // the current label's length
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const char c = host[i];
    const bool digit = c >= '0' && c <= '9';
    if (!digit && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c == '-' && label > 0)) {
      return false;
    }
    last_all_digits = (label == 0 || last_all_digits) && digit;
    ++label;
  }
  return !last_all_digits;
}

// Each host a node certificate names must be an IP address or a DNS name: checked before any
// file is written, so that a mistake leaves nothing behind.
Status CheckHosts(const std::vector<std::string>& hosts) {
  for (const std::string& h : hosts) {
    if (!IsIpLiteral(h) && !IsDnsName(h)) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("`{}` is neither an IP address nor a DNS name", h));
    }
  }
  return OkStatus();
}

std::vector<std::pair<int, std::string>> LeafExtensions(CertificateKind kind,
                                                        const std::vector<std::string>& hosts) {
  std::vector<std::pair<int, std::string>> ext = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid"},
  };
  if (kind == CertificateKind::kNode) {
    ext.emplace_back(NID_ext_key_usage, "serverAuth,clientAuth");
    std::string san;
    for (const std::string& h : hosts) {
      const bool ip = IsIpLiteral(h);  // CheckHosts let only these and DNS names through
      // Appended piece by piece: GCC 12 at -O3 warns falsely (-Wrestrict) on a chain of `+`.
      if (!san.empty()) san.push_back(',');
      san.append(ip ? "IP:" : "DNS:");
      san.append(h);
    }
    if (!san.empty()) ext.emplace_back(NID_subject_alt_name, san);
  } else {
    ext.emplace_back(NID_ext_key_usage, "clientAuth");
  }
  return ext;
}

// [A-Z][A-Z0-9-]{1,15}, as DESIGN.md §1 spells party ids.
bool IsValidPartyId(std::string_view s) {
  if (s.size() < 2 || s.size() > 16 || s[0] < 'A' || s[0] > 'Z') return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<X509Ptr> ReadCert(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "r"));
  X509Ptr cert(f ? PEM_read_X509(f.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    return Fail(Code::kInvalidArgument, fmt::format("cannot read the certificate `{}`", path));
  }
  return cert;
}

// A new key and its certificate, issued by `ca`, staged onto `staged` (not yet in place).
Status StageLeaf(X509* ca, EVP_PKEY* ca_key, const LeafOptions& o,
                 std::vector<StagedFile>& staged) {
  ACCORD_ASSIGN_OR_RETURN(PkeyPtr key, NewKey());
  ACCORD_ASSIGN_OR_RETURN(
      X509Ptr cert, MakeCertificate(key.get(), Name{o.common_name, o.organization}, ca, ca_key,
                                    o.not_before, o.not_after, LeafExtensions(o.kind, o.hosts)));
  return StagePair(o.out_cert, cert.get(), o.out_key, key.get(), staged);
}

Status Issue(X509* ca, EVP_PKEY* ca_key, const LeafOptions& o) {
  std::vector<StagedFile> staged;
  ACCORD_RETURN_IF_ERROR(StageLeaf(ca, ca_key, o, staged));
  return CommitInOrder(staged);
}

// The revocation list at `path`, which `ca` must have signed; null when there is no file.
Result<CrlPtr> ReadCrl(const std::string& path, X509* ca) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot look for the revocation list `{}`: {}", path, ec.message()));
  }
  if (!exists) return CrlPtr();
  FilePtr f(std::fopen(path.c_str(), "r"));
  CrlPtr crl(f ? PEM_read_X509_CRL(f.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!crl) {
    return Fail(Code::kInvalidArgument, fmt::format("cannot read the revocation list `{}`", path));
  }
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca)) != 0 ||
      X509_CRL_verify(crl.get(), X509_get0_pubkey(ca)) != 1) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the revocation list `{}` is not signed by this CA", path));
  }
  return crl;
}

// The list's CRL number plus one (1 for a new list): RFC 5280 §5.2.3.
Result<Asn1IntegerPtr> NextCrlNumber(X509_CRL* old) {
  BIGNUM* n = nullptr;
  if (old != nullptr) {
    Asn1IntegerPtr number(
        static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(old, NID_crl_number, nullptr, nullptr)));
    if (number) n = ASN1_INTEGER_to_BN(number.get(), nullptr);
  }
  if (n == nullptr) n = BN_new();
  Asn1IntegerPtr next(n != nullptr && BN_add_word(n, 1) == 1 ? BN_to_ASN1_INTEGER(n, nullptr)
                                                             : nullptr);
  BN_free(n);
  if (!next) return tl::unexpected(OpenSslError("numbering a revocation list").error());
  return next;
}

}  // namespace

Status IssueCertificate(const LeafOptions& options) {
  if (!ValidName(options.common_name)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` is not a certificate name", options.common_name));
  }
  ACCORD_RETURN_IF_ERROR(CheckHosts(options.hosts));
  ACCORD_ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(options.ca_cert));
  ACCORD_ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> ca_key, ReadPrivateKey(options.ca_key));
  return Issue(ca.get(), ca_key.get(), options);
}

Result<RevocationList> RevokeCertificate(const RevokeOptions& o) {
  if (o.valid_days < 1 || o.valid_days > 3650) {
    return Fail(Code::kInvalidArgument, "a revocation list is valid for 1 to 3650 days");
  }
  // One revocation at a time per list: two at once would each extend the list as it was, and
  // the second to rename its file would drop the other's entries. The lock is a write lock on
  // `crl`.lock, held until the new list is in place: an open file description's lock, so that
  // threads exclude each other as processes do, and one that NFS carries (flock(2) on NFS is a
  // lock of the whole process, and needs the file open for writing).
  ACCORD_ASSIGN_OR_RETURN(const FileLock lock,
                          FileLock::Take(o.crl + ".lock", FileLock::Wait::kUntilFree));
  ACCORD_ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(o.ca_cert));
  ACCORD_ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> ca_key, ReadPrivateKey(o.ca_key));
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the key `{}` is not the key of `{}`", o.ca_key, o.ca_cert));
  }
  ACCORD_ASSIGN_OR_RETURN(CrlPtr old, ReadCrl(o.crl, ca.get()));
  CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.get())) != 1) {
    return tl::unexpected(OpenSslError("making a revocation list").error());
  }
  if (old) {
    const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(old.get());
    for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
      X509_REVOKED* copy = X509_REVOKED_dup(sk_X509_REVOKED_value(entries, i));
      if (copy == nullptr || X509_CRL_add0_revoked(crl.get(), copy) != 1) {
        X509_REVOKED_free(copy);
        return tl::unexpected(OpenSslError("copying a revocation").error());
      }
    }
  }
  RevocationList made;
  for (const std::string& path : o.certs) {
    ACCORD_ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(path));
    if (X509_check_issued(ca.get(), cert.get()) != X509_V_OK ||
        X509_verify(cert.get(), X509_get0_pubkey(ca.get())) != 1) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("`{}` was not issued by the CA `{}`", path, o.ca_cert));
    }
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
    X509_REVOKED* listed = nullptr;
    if (X509_CRL_get0_by_serial(crl.get(), &listed, serial) == 1) continue;
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_TIME* when = ASN1_TIME_set(nullptr, o.at.micros / 1'000'000);
    const bool ok = entry != nullptr && when != nullptr &&
                    X509_REVOKED_set_serialNumber(entry, const_cast<ASN1_INTEGER*>(serial)) == 1 &&
                    X509_REVOKED_set_revocationDate(entry, when) == 1 &&
                    X509_CRL_add0_revoked(crl.get(), entry) == 1;
    ASN1_TIME_free(when);
    if (!ok) {
      X509_REVOKED_free(entry);
      return tl::unexpected(OpenSslError("adding a revocation").error());
    }
    ++made.added;
  }
  if (!o.certs.empty() && made.added == 0) {
    return Fail(Code::kAlreadyExists,
                fmt::format("`{}` revokes {} already", o.crl,
                            o.certs.size() == 1 ? "that certificate" : "those certificates"));
  }
  made.revoked = static_cast<size_t>(
      std::max(0, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get()))));  // -1: no entries
  made.next_update = Instant{o.at.micros + o.valid_days * 86'400'000'000LL};
  ACCORD_ASSIGN_OR_RETURN(Asn1IntegerPtr number, NextCrlNumber(old.get()));
  ASN1_TIME* last = ASN1_TIME_set(nullptr, o.at.micros / 1'000'000 - o.backdate_seconds);
  ASN1_TIME* next = ASN1_TIME_set(nullptr, made.next_update.micros / 1'000'000);
  const bool dated = last != nullptr && next != nullptr &&
                     X509_CRL_set1_lastUpdate(crl.get(), last) == 1 &&
                     X509_CRL_set1_nextUpdate(crl.get(), next) == 1;
  ASN1_TIME_free(last);
  ASN1_TIME_free(next);
  // The CA's key identifier (RFC 5280 §5.2.1), by which a verifier matches the list to its CA.
  X509V3_CTX ext_ctx;
  X509V3_set_ctx_nodb(&ext_ctx);
  X509V3_set_ctx(&ext_ctx, ca.get(), nullptr, nullptr, crl.get(), 0);
  X509_EXTENSION* akid =
      X509V3_EXT_conf_nid(nullptr, &ext_ctx, NID_authority_key_identifier, "keyid");
  const bool akid_added = akid != nullptr && X509_CRL_add_ext(crl.get(), akid, -1) == 1;
  X509_EXTENSION_free(akid);
  if (!dated || !akid_added ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1 ||
      X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) == 0) {
    return tl::unexpected(OpenSslError("signing a revocation list").error());
  }
  // Written to a new file beside the list, made durable, then renamed over it: a server reading
  // it meanwhile sees the old list or the new one, never part of one.
  // When only the directory's sync fails, the error says the new list is in place.
  ACCORD_ASSIGN_OR_RETURN(StagedFile staged, StagePem(o.crl, 0644, /*secret=*/false, [&](BIO* bio) {
                            return PEM_write_bio_X509_CRL(bio, crl.get());
                          }));
  ACCORD_RETURN_IF_ERROR(staged.Commit());
  return made;
}

Result<DevelopmentPki> CreateDevelopmentPki(const PkiOptions& o) {
  const fs::path dir(o.dir.empty() ? "." : o.dir);
  std::error_code ec;
  if (fs::exists(dir / "ca.pem", ec)) {
    return Fail(Code::kAlreadyExists, fmt::format("`{}` already holds a CA", o.dir));
  }
  // Everything is checked before the first file is written: a mistake leaves nothing behind
  // (a CA left alone would make the next run fail with "already holds a CA").
  // A node or user named twice (by a policy and a flag) is made once; a user named for two
  // parties is refused (users/NAME.pem would hold the second, and the first be lost).
  DevelopmentPki made;
  for (const auto& p : o.nodes) {
    if (!IsValidPartyId(p)) return Fail(Code::kInvalidArgument, fmt::format("bad party `{}`", p));
    if (std::find(made.nodes.begin(), made.nodes.end(), p) == made.nodes.end()) {
      made.nodes.push_back(p);
    }
  }
  std::map<std::string, std::string> parties;  // of each user
  std::vector<std::pair<std::string, std::string>> users;
  for (const auto& [subject, party] : o.users) {
    if (!ValidName(subject) || !IsValidPartyId(party)) {
      return Fail(Code::kInvalidArgument, fmt::format("bad user `{}:{}`", subject, party));
    }
    const auto [known, added] = parties.emplace(subject, party);
    if (added) {
      users.emplace_back(subject, party);
      made.users.push_back(subject);
    } else if (known->second != party) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("user `{}` is given for two parties, `{}` and `{}`", subject,
                              known->second, party));
    }
  }
  // A partner finds a node by the host or address it dials, in the certificate's subjectAltName
  // only (decision #193): a certificate naming none could not be reached.
  if (o.hosts.empty() && !made.nodes.empty()) {
    return Fail(Code::kInvalidArgument,
                "no host for the node certificates: name the hosts or addresses partners reach "
                "the nodes at (--hosts)");
  }
  ACCORD_RETURN_IF_ERROR(CheckHosts(o.hosts));
  fs::create_directories(dir / "nodes", ec);
  fs::create_directories(dir / "users", ec);
  if (ec) {
    return Fail(Code::kInvalidArgument, fmt::format("cannot create `{}`: {}", o.dir, ec.message()));
  }
  const Instant not_after{o.not_before.micros + o.valid_days * 86'400'000'000LL};
  ACCORD_ASSIGN_OR_RETURN(PkeyPtr ca_key, NewKey());
  // Each CA has a name of its own: a node that trusts two (its own and a partner's) finds a
  // revocation list's CA by the name the list gives.
  unsigned char tag[4];
  if (RAND_bytes(tag, sizeof tag) != 1) std::abort();
  const std::string ca_name =
      fmt::format("accord development CA {:02x}{:02x}{:02x}{:02x}", tag[0], tag[1], tag[2], tag[3]);
  ACCORD_ASSIGN_OR_RETURN(
      X509Ptr ca, MakeCertificate(ca_key.get(), Name{ca_name, "accord"}, nullptr, ca_key.get(),
                                  o.not_before, not_after,
                                  {{NID_basic_constraints, "critical,CA:TRUE"},
                                   {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                   {NID_subject_key_identifier, "hash"}}));
  // Every file is staged (written whole and made durable under a name of its own) before any is
  // put in place, and the CA's certificate goes in last, only once every other file is in place
  // and durable: a disk that fails while staging leaves no file of this run, and one that fails
  // later leaves no `ca.pem`, so that the next run is not refused as "already holds a CA" (the
  // files it finds, it replaces).
  std::vector<StagedFile> staged;
  for (const auto& p : made.nodes) {
    ACCORD_RETURN_IF_ERROR(
        StageLeaf(ca.get(), ca_key.get(),
                  LeafOptions{"", "", (dir / "nodes" / (p + ".pem")).string(),
                              (dir / "nodes" / (p + ".key")).string(), CertificateKind::kNode, p, p,
                              o.hosts, o.not_before, not_after},
                  staged));
  }
  for (const auto& [subject, party] : users) {
    ACCORD_RETURN_IF_ERROR(StageLeaf(ca.get(), ca_key.get(),
                                     LeafOptions{"",
                                                 "",
                                                 (dir / "users" / (subject + ".pem")).string(),
                                                 (dir / "users" / (subject + ".key")).string(),
                                                 CertificateKind::kUser,
                                                 subject,
                                                 party,
                                                 {},
                                                 o.not_before,
                                                 not_after},
                                     staged));
  }
  ACCORD_RETURN_IF_ERROR(StagePair((dir / "ca.pem").string(), ca.get(), (dir / "ca.key").string(),
                                   ca_key.get(), staged));
  StagedFile ca_cert = std::move(staged.back());
  staged.pop_back();
  ACCORD_RETURN_IF_ERROR(CommitInOrder(staged));
  // The directory's own entry is its parent's, found by the kernel (`..`), whichever run made it
  // (an earlier run may have made it and failed); `ca.key`'s commit made `nodes` and `users`
  // durable in it.
  ACCORD_RETURN_IF_ERROR(SyncPath((dir / "..").string()));
  ACCORD_RETURN_IF_ERROR(ca_cert.Commit());
  return made;
}

Result<std::shared_ptr<EVP_PKEY>> ReadPrivateKey(const std::string& path) {
  constexpr size_t kMaxKeyFile = 64 * 1024;
  const Result<SecretBytes> text = ReadSecretFileAtMost(path, kMaxKeyFile);
  if (!text) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot read the key `{}`: {}", path, text.error().message));
  }
  const auto pem = text->Reveal(InsecureSecretAccess());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  const auto no_passphrase = [](char*, int, int, void*) { return -1; };
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot read the key `{}`: not a private key in PEM, or one encrypted "
                            "with a passphrase (accord reads keys unencrypted, protected by their "
                            "files' mode, 0600)",
                            path));
  }
  return std::shared_ptr<EVP_PKEY>(std::move(key));
}

}  // namespace accord
