#include "tls.h"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <string>

#include "accord/pki.h"
#include "accord/time.h"

namespace accord::server_internal {
namespace {

// OpenSSL's error `e` in words, without its code ("error:0480006C:"): "no start line (PEM
// routines)", or for the most common mistake, a file of another kind, what it means.
std::string OpenSslReason(unsigned long e) {
  if (e == 0) return "unknown error";
  // OpenSSL 3.0 gives no text of its own for the system's errors: the system's.
  if (ERR_SYSTEM_ERROR(e)) return std::strerror(ERR_GET_REASON(e));
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    return "it holds no PEM block of that kind (-----BEGIN ...-----): is it empty, or a file of "
           "another kind?";
  }
  const char* reason = ERR_reason_error_string(e);
  const char* library = ERR_lib_error_string(e);
  if (reason == nullptr) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
  }
  return library != nullptr ? fmt::format("{} ({})", reason, library) : std::string(reason);
}

// The first OpenSSL error queued, the cause (those after it say what failed because of it:
// "PEM lib (SSL routines)"), in words, and the queue emptied.
std::string OpenSslError() {
  const unsigned long e = ERR_peek_error();
  ERR_clear_error();
  return OpenSslReason(e);
}

tl::unexpected<Error> Invalid(const std::string& what, const std::string& file) {
  return Fail(Code::kInvalidArgument, what + " `" + file + "`: " + OpenSslError());
}

}  // namespace

Status ConfigureMutualTls(SSL_CTX* ctx, const std::string& ca_file, const std::string& cert_file,
                          const std::string& key_file) {
  ERR_clear_error();  // what earlier calls left in the queue is not this one's error
  if (ca_file.empty() || cert_file.empty() || key_file.empty()) {
    return Fail(Code::kInvalidArgument, "the CA, certificate and key files are required");
  }
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return Fail(Code::kInternal, "cannot restrict TLS to version 1.3");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Invalid("cannot load the certificate chain", cert_file);
  }
  // Not SSL_CTX_use_PrivateKey_file: through stdio, whose buffer holding the key is freed
  // unwiped, and an encrypted key would be asked for on the terminal (ReadPrivateKey).
  ACCORD_ASSIGN_OR_RETURN(const std::shared_ptr<EVP_PKEY> key, ReadPrivateKey(key_file));
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    return Invalid("cannot load the private key", key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return Fail(Code::kInvalidArgument, "the private key `" + key_file +
                                            "` does not match the certificate `" + cert_file + "`");
  }
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return Invalid("cannot load the CA certificates", ca_file);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // A record's plaintext (a payload on its way) is wiped from OpenSSL's buffers once read.
  SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
  return OkStatus();
}

std::optional<std::string> NameEntry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) {
    return std::nullopt;
  }
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return std::string();
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) {
    return std::string();
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  if (out.find('\0') != std::string::npos) {
    return std::string();
  }
  return out;
}

bool IsNodeCertificate(X509* cert) {
  return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0 &&
         (X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) != 0;
}

std::string PublicKeyDer(X509* cert) {
  unsigned char* der = nullptr;
  const int n = cert == nullptr ? -1 : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

namespace {

using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;

struct X509StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// `cert` verified against the CAs `ctx` trusts (with `untrusted` as intermediates): the context
// holding the verified chain, leaf first, or why it does not verify.
Result<StoreCtxPtr> VerifyWithTrustedCas(SSL_CTX* ctx, X509* cert, STACK_OF(X509) * untrusted) {
  StoreCtxPtr verify(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (verify == nullptr ||
      X509_STORE_CTX_init(verify.get(), SSL_CTX_get_cert_store(ctx), cert, untrusted) != 1) {
    ERR_clear_error();
    return Fail(Code::kInternal, "cannot set up a certificate's verification");
  }
  if (X509_verify_cert(verify.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(verify.get());
    ERR_clear_error();
    return Fail(Code::kInvalidArgument, X509_verify_cert_error_string(error));
  }
  return verify;
}

// After a loop of PEM reads: 0 when it stopped at the end of the text, else the error of the
// block it could not read. Clears OpenSSL's error queue.
unsigned long PemReadError() {
  const unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  const bool at_end =
      ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  return at_end ? 0 : error;
}

// Every certificate of the PEM text in `bio` (from `path`), in order. A block that is not a
// certificate is an error, not the end of the file: the certificates after it would be lost.
Result<X509StackPtr> ReadCertificates(BIO* bio, const std::string& path) {
  X509StackPtr certs(sk_X509_new_null());
  if (certs == nullptr) return Fail(Code::kInternal, "out of memory");
  ERR_clear_error();
  while (X509* read = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (sk_X509_push(certs.get(), read) == 0) {
      X509_free(read);
      return Fail(Code::kInternal, "out of memory");
    }
  }
  if (const unsigned long error = PemReadError(); error != 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}`: certificate {} cannot be read ({})", path,
                            sk_X509_num(certs.get()) + 1, OpenSslReason(error)));
  }
  return certs;
}

std::string SubjectLine(X509* cert) {
  char* line = X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0);
  std::string out = line != nullptr ? line : "?";
  OPENSSL_free(line);
  return out;
}

}  // namespace

namespace {

struct CrlStackFree {
  void operator()(STACK_OF(X509_CRL) * stack) const { sk_X509_CRL_pop_free(stack, X509_CRL_free); }
};
using CrlStackPtr = std::unique_ptr<STACK_OF(X509_CRL), CrlStackFree>;

// Every revocation list of the PEM text in `bio` (from `path`); as ReadCertificates.
Result<CrlStackPtr> ReadCrls(BIO* bio, const std::string& path) {
  CrlStackPtr lists(sk_X509_CRL_new_null());
  if (lists == nullptr) return Fail(Code::kInternal, "out of memory");
  ERR_clear_error();
  while (X509_CRL* read = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr)) {
    if (sk_X509_CRL_push(lists.get(), read) == 0) {
      X509_CRL_free(read);
      return Fail(Code::kInternal, "out of memory");
    }
  }
  if (const unsigned long error = PemReadError(); error != 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}`: revocation list {} cannot be read ({})", path,
                            sk_X509_CRL_num(lists.get()) + 1, OpenSslReason(error)));
  }
  if (sk_X509_CRL_num(lists.get()) == 0) {
    return Fail(Code::kInvalidArgument, fmt::format("no revocation list in `{}`", path));
  }
  return lists;
}

// A CA without a list is not checked for revocation: a partner's CA, whose lists this node does
// not get. Every other error stands (a revoked certificate, an expired list).
int VerifyPeer(int ok, X509_STORE_CTX* ctx) {
  if (ok == 0 && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
  }
  return ok;
}

// The list's CRL number in hexadecimal without leading zeros, "" when it has none.
std::string CrlNumber(X509_CRL* crl) {
  std::string out;
  auto* number =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr));
  BIGNUM* bn = number != nullptr ? ASN1_INTEGER_to_BN(number, nullptr) : nullptr;
  char* hex = bn != nullptr ? BN_bn2hex(bn) : nullptr;
  if (hex != nullptr) out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  ASN1_INTEGER_free(number);
  ERR_clear_error();
  if (out.empty()) return out;
  out.erase(0, std::min(out.find_first_not_of('0'), out.size() - 1));  // BN_bn2hex pads bytes
  return out;
}

// Whether CRL number `a` is lower than `b` (CrlNumber's form: non-negative, no leading zeros).
bool LowerNumber(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

}  // namespace

Result<RevocationLists> LoadRevocationLists(SSL_CTX* ctx, const std::string& crl_file, time_t now,
                                            const RevocationLists* in_force) {
  ERR_clear_error();  // what earlier calls left in the queue is not this one's error
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(crl_file.c_str(), "r"),
                                                      BIO_free);
  if (bio == nullptr) return Invalid("cannot read the revocation lists", crl_file);
  ACCORD_ASSIGN_OR_RETURN(CrlStackPtr crls, ReadCrls(bio.get(), crl_file));
  const X509StackPtr cas(X509_STORE_get1_all_certs(SSL_CTX_get_cert_store(ctx)));
  RevocationLists out;
  out.store.reset(X509_STORE_new());
  if (cas == nullptr || out.store == nullptr) return Fail(Code::kInternal, "out of memory");
  for (int i = 0; i < sk_X509_num(cas.get()); ++i) {
    if (X509_STORE_add_cert(out.store.get(), sk_X509_value(cas.get(), i)) != 1) {
      ERR_clear_error();
      return Fail(Code::kInternal, "cannot copy the trusted CAs");
    }
  }
  for (int i = 0; i < sk_X509_CRL_num(crls.get()); ++i) {
    X509_CRL* crl = sk_X509_CRL_value(crls.get(), i);
    const std::string which = fmt::format("`{}`: revocation list {}", crl_file, i + 1);
    // OpenSSL finds a certificate's list by its CA's name: two CAs of that name with different
    // keys would each be checked against the other's list too.
    X509* signer = nullptr;
    std::set<std::string> keys_of_that_name;
    for (int j = 0; j < sk_X509_num(cas.get()); ++j) {
      X509* ca = sk_X509_value(cas.get(), j);
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) continue;
      keys_of_that_name.insert(PublicKeyDer(ca));
      if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) signer = ca;
    }
    ERR_clear_error();
    if (signer == nullptr) {
      return Fail(Code::kInvalidArgument, which + " is not signed by a CA of the node's `ca`");
    }
    if (keys_of_that_name.size() > 1) {
      return Fail(Code::kInvalidArgument,
                  which + " is of " + SubjectLine(signer) +
                      ", and the node trusts another CA of that name: a revocation list names "
                      "its CA by name only, so give the CAs names of their own");
    }
    // OpenSSL does not use a delta list or a partial one (a distribution point's) for the
    // certificates of its CA, which would then pass as those of a CA without a list.
    if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0 ||
        X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1) >= 0) {
      return Fail(Code::kInvalidArgument,
                  which + " is a delta or partial list: each CA's list must be complete");
    }
    // OpenSSL compares a list's dates with the clock only in RFC 5280's form (YYMMDDHHMMSSZ or
    // YYYYMMDDHHMMSSZ), though it decodes others (a fraction, an offset, a 13th month): for those
    // X509_cmp_time answers 0, which would pass the checks below, then fail every certificate of
    // the CA in the handshake. Such a list is refused now, saying which date.
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    const int issued_vs_now = X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now);
    const int next_vs_now = next != nullptr ? X509_cmp_time(next, &now) : 1;
    const auto issued = AsnTimeSeconds(X509_CRL_get0_lastUpdate(crl));
    const auto expires = AsnTimeSeconds(next);
    if (issued_vs_now == 0 || !issued || next_vs_now == 0 || (next != nullptr && !expires)) {
      ERR_clear_error();
      return Fail(Code::kInvalidArgument,
                  fmt::format("{} has a {} that is not a valid date in RFC 5280's form "
                              "(YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ)",
                              which,
                              issued_vs_now == 0 || !issued ? "date of issue (thisUpdate)"
                                                            : "next update (nextUpdate)"));
    }
    const auto [numbered, first] = out.numbers.emplace(
        PublicKeyDer(signer),
        RevocationLists::Numbered{SubjectLine(signer), CrlNumber(crl), *issued});
    if (!first) {
      return Fail(Code::kInvalidArgument,
                  which + " is a second list of " + numbered->second.ca + ": give a CA one list");
    }
    if (issued_vs_now > 0) {
      return Fail(Code::kInvalidArgument, which + " is not valid yet");
    }
    if (next == nullptr) {
      return Fail(Code::kInvalidArgument,
                  which + " has no next update (nextUpdate): a list must say when the next is due");
    }
    if (next_vs_now < 0) {
      return Fail(Code::kInvalidArgument,
                  which + " has expired: its CA issues a new one (accord pki revoke --pki DIR)");
    }
    out.expiries.emplace_back(*expires, SubjectLine(signer));
    if (X509_STORE_add_crl(out.store.get(), crl) != 1) {
      ERR_clear_error();
      return Fail(Code::kInternal, "cannot keep a revocation list");
    }
    ++out.lists;
    // A list revoking nothing has no entries at all: a null stack, whose count is -1.
    out.revoked += static_cast<size_t>(std::max(0, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl))));
  }
  std::sort(out.expiries.begin(), out.expiries.end());
  if (in_force != nullptr) {
    for (const auto& [key, held] : in_force->numbers) {
      const auto it = out.numbers.find(key);
      if (it == out.numbers.end()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("`{}` has no list of {}, which had one (a restart drops it)",
                                crl_file, held.ca));
      }
      if (LowerNumber(it->second.number, held.number)) {
        return Fail(
            Code::kInvalidArgument,
            fmt::format("`{}`: the list of {} is number {}, older than the one in force "
                        "(number {})",
                        crl_file, held.ca, it->second.number.empty() ? "none" : it->second.number,
                        held.number));
      }
      // After an unnumbered list (RFC 5280 requires numbers, but a CA may not give them), the
      // next, numbered or not, is ordered by its date: one issued earlier may miss a revocation
      // since.
      const RevocationLists::Numbered& now_read = it->second;
      if (held.number.empty() && now_read.issued < held.issued) {
        const auto at = [](std::chrono::sys_seconds t) {
          return FormatInstant(Instant{t.time_since_epoch().count() * 1'000'000});
        };
        return Fail(Code::kInvalidArgument,
                    fmt::format("`{}`: the list of {} was issued at {}, before the one in force "
                                "(issued at {}, with no number)",
                                crl_file, held.ca, at(now_read.issued), at(held.issued)));
      }
    }
  }
  return out;
}

void UseRevocationLists(SSL_CTX* ctx, const RevocationLists& lists) {
  SSL_CTX_set1_verify_cert_store(ctx, lists.store.get());
  // Every certificate of the chain below its root: a users' CA under a coalition root may be
  // revoked by the root's list.
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
                              X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), VerifyPeer);
}

namespace {

std::array<int64_t, 4> FileState(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec), static_cast<int64_t>(st.st_mtim.tv_nsec)};
}

}  // namespace

Result<std::string> RevocationListFile::Read(SSL_CTX* ctx) {
  const std::array<int64_t, 4> state = FileState(path_);
  ACCORD_ASSIGN_OR_RETURN(
      RevocationLists lists,
      LoadRevocationLists(ctx, path_, std::time(nullptr), in_force_.store ? &in_force_ : nullptr));
  UseRevocationLists(ctx, lists);
  std::string line = fmt::format("revocation lists: {} from `{}`, revoking {} certificate{}",
                                 lists.lists, path_, lists.revoked, lists.revoked == 1 ? "" : "s");
  in_force_ = std::move(lists);
  ++generation_;
  seen_ = state;
  error_.clear();
  expired_ = 0;
  return line;
}

std::string RevocationListFile::Refresh(SSL_CTX* ctx, bool* changed) {
  if (changed != nullptr) *changed = false;
  // A file changed since it was read is read again, and so is one that failed (a list not
  // valid yet, an I/O error) until it loads, its error reported once.
  std::string said;
  if (!error_.empty() || FileState(path_) != seen_) {
    Result<std::string> line = Read(ctx);
    if (line) {
      if (changed != nullptr) *changed = true;
      return std::move(*line);
    }
    std::string error = "revocation lists: " + line.error().message +
                        "; the lists read before stay in force (read again each second)";
    if (error != error_) said = error_ = std::move(error);
  }
  // A list in force that expired fails its CA's certificates from now on, in a handshake as in
  // VerifyPeerAgain: connections made before are checked again, as after new lists, since a
  // stale list may miss a revocation (decision #191).
  const std::vector<std::pair<std::chrono::sys_seconds, std::string>>& expiries =
      in_force_.expiries;
  const size_t first = expired_;
  while (expired_ < expiries.size() &&
         expiries[expired_].first <= std::chrono::system_clock::now()) {
    ++expired_;
  }
  if (expired_ == first) return said;
  ++generation_;
  if (changed != nullptr) *changed = true;
  std::string lists;
  for (size_t i = first; i < expired_; ++i) {
    lists += fmt::format(
        "{}the list of {} {}at {}", i == first ? "" : ", ", expiries[i].second,
        i == first ? "expired " : "",
        FormatInstant(Instant{expiries[i].first.time_since_epoch().count() * 1'000'000}));
  }
  const bool one = expired_ - first == 1;
  std::string line = fmt::format(
      "revocation lists: in `{}`, {}: the certificates of {} are refused, on connections made "
      "before as on new ones, until {} (accord pki revoke --pki DIR)",
      path_, lists, one ? "that CA" : "those CAs",
      one ? "it issues a new list" : "they issue new lists");
  return said.empty() ? line : said + "; " + line;
}

std::string VerifyPeerAgain(SSL* ssl, const RevocationLists& lists) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return "no certificate";
  StoreCtxPtr verify(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  // The chain the peer sent (on a server, without its own certificate) as intermediates.
  if (verify == nullptr || X509_STORE_CTX_init(verify.get(), lists.store.get(), cert,
                                               SSL_get_peer_cert_chain(ssl)) != 1) {
    ERR_clear_error();
    return "cannot set up a certificate's verification";
  }
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(verify.get()),
                              X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  X509_STORE_CTX_set_verify_cb(verify.get(), VerifyPeer);
  const bool verified = X509_verify_cert(verify.get()) == 1;
  const int error = X509_STORE_CTX_get_error(verify.get());
  ERR_clear_error();
  return verified ? std::string() : X509_verify_cert_error_string(error);
}

std::optional<std::chrono::sys_seconds> AsnTimeSeconds(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  return std::chrono::sys_seconds(std::chrono::seconds(timegm(&tm)));
}

std::chrono::sys_seconds VerifiedChainExpires(SSL* ssl) {
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
  if (chain == nullptr || sk_X509_num(chain) == 0) return std::chrono::sys_seconds::min();
  auto earliest = std::chrono::sys_seconds::max();
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    const auto not_after = AsnTimeSeconds(X509_get0_notAfter(sk_X509_value(chain, i)));
    if (!not_after) return std::chrono::sys_seconds::min();
    earliest = std::min(earliest, *not_after);
  }
  return earliest;
}

bool HasExpired(std::chrono::sys_seconds not_after) {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) > not_after;
}

Result<UsersIssuers> UserIssuerKeys(SSL_CTX* ctx, const std::string& user_ca_file) {
  ERR_clear_error();  // what earlier calls left in the queue is not this one's error
  UsersIssuers issuers;
  const auto add = [&issuers](X509* ca) -> Status {
    std::string key = PublicKeyDer(ca);
    if (key.empty()) return Fail(Code::kInternal, "cannot encode a CA's public key");
    if (issuers.keys.insert(std::move(key)).second) issuers.names.push_back(SubjectLine(ca));
    return OkStatus();
  };
  X509* own = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  if (own == nullptr || SSL_CTX_get0_chain_certs(ctx, &chain) != 1) {
    ERR_clear_error();
    return Fail(Code::kInternal, "cannot read this node's own certificate");
  }
  if (!user_ca_file.empty()) {
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(user_ca_file.c_str(), "r"),
                                                        BIO_free);
    if (bio == nullptr) return Invalid("cannot read the users' CA certificates", user_ca_file);
    // Every certificate of the file, then this node's chain: the CAs between a users' CA and
    // one that `ctx` trusts may be in either.
    ACCORD_ASSIGN_OR_RETURN(X509StackPtr cas, ReadCertificates(bio.get(), user_ca_file));
    const int in_file = sk_X509_num(cas.get());
    if (in_file == 0) {
      return Fail(Code::kInvalidArgument, "no certificate in `" + user_ca_file + "`");
    }
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      X509* ca = sk_X509_value(chain, i);
      if (X509_up_ref(ca) != 1) return Fail(Code::kInternal, "out of memory");
      if (sk_X509_push(cas.get(), ca) == 0) {
        X509_free(ca);
        return Fail(Code::kInternal, "out of memory");
      }
    }
    for (int i = 0; i < in_file; ++i) {
      X509* ca = sk_X509_value(cas.get(), i);
      // A user's certificate here (its chain file, say) would make its key a users' CA's: any
      // CA of `ca`, a partner's too, could certify that key as a CA.
      if (X509_check_ca(ca) == 0) {
        return Fail(Code::kInvalidArgument, "`" + user_ca_file + "`: " + SubjectLine(ca) +
                                                " is not a CA certificate; the file names the "
                                                "CAs that sign this node's users' certificates");
      }
      // A CA that does not chain to a trusted one could issue no certificate a handshake takes.
      if (auto verified = VerifyWithTrustedCas(ctx, ca, cas.get()); !verified) {
        return Fail(Code::kInvalidArgument, "`" + user_ca_file + "`: " + SubjectLine(ca) +
                                                " is not a CA the server trusts (" +
                                                verified.error().message + ")");
      }
      ACCORD_RETURN_IF_ERROR(add(ca));
    }
    return issuers;
  }
  auto verified = VerifyWithTrustedCas(ctx, own, chain);
  if (!verified) {
    return Fail(Code::kInvalidArgument,
                "this node's certificate does not verify against its CAs (" +
                    verified.error().message +
                    "), so they cannot tell which of them issues its users' certificates");
  }
  // The CA that issued it: the chain's second certificate.
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(verified->get());
  if (sk_X509_num(path) < 2) {
    return Fail(Code::kInvalidArgument,
                "this node's certificate is itself one of its trusted CAs, so no CA of its chain "
                "issues its users' certificates: name the ones that do in `user_ca`");
  }
  ACCORD_RETURN_IF_ERROR(add(sk_X509_value(path, 1)));
  return issuers;
}

bool IssuedByOneOf(SSL* ssl, const std::set<std::string>& keys) {
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);  // the peer's certificate first
  return chain != nullptr && sk_X509_num(chain) >= 2 &&
         keys.contains(PublicKeyDer(sk_X509_value(chain, 1)));
}

Result<std::string> PartnerKeyFromFile(const std::string& path, const std::string& party) {
  ERR_clear_error();  // what earlier calls left in the queue is not this one's error
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), BIO_free);
  if (bio == nullptr) {
    return Invalid("cannot read the certificate of `" + party + "`", path);
  }
  const std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) {
    return Invalid("no certificate of `" + party + "` in", path);
  }
  const X509_NAME* name = X509_get_subject_name(cert.get());
  if (!IsNodeCertificate(cert.get()) || NameEntry(name, NID_commonName) != party ||
      NameEntry(name, NID_organizationName) != party) {
    return Fail(Code::kInvalidArgument,
                "the certificate in `" + path + "` is not the node certificate of `" + party +
                    "` (TLS server use, common name and organization `" + party + "`)");
  }
  std::string key = PublicKeyDer(cert.get());
  if (key.empty()) {
    return Fail(Code::kInvalidArgument, "cannot encode the public key in `" + path + "`");
  }
  return key;
}

Result<int> CountCas(const std::string& path) {
  ERR_clear_error();  // what earlier calls left in the queue is not this one's error
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), BIO_free);
  if (bio == nullptr) return Invalid("cannot read the CA certificates", path);
  ACCORD_ASSIGN_OR_RETURN(X509StackPtr certs, ReadCertificates(bio.get(), path));
  std::set<std::string> keys;
  for (int i = 0; i < sk_X509_num(certs.get()); ++i) {
    X509* cert = sk_X509_value(certs.get(), i);
    if (X509_check_ca(cert) != 0) keys.insert(PublicKeyDer(cert));
  }
  return static_cast<int>(keys.size());
}

}  // namespace accord::server_internal
