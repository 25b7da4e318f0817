// TLS settings shared by the server and the client: TLS 1.3 only, this node's certificate and
// key, and the CA certificates the peer's certificate must chain to.
//
// Thread safety: plain functions; an SSL_CTX is configured before it is shared.
#ifndef ACCORD_SRC_SERVER_TLS_H_
#define ACCORD_SRC_SERVER_TLS_H_

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "accord/status.h"

namespace accord::server_internal {

// Restricts `ctx` to TLS 1.3, loads the certificate chain and private key (which must match) and
// trusts the CAs in `ca_file`; the peer must present a certificate that chains to one of them.
// kInvalidArgument naming the file that cannot be used.
[[nodiscard]] Status ConfigureMutualTls(SSL_CTX* ctx, const std::string& ca_file,
                                        const std::string& cert_file, const std::string& key_file);

// The value of the one `nid` attribute of `name`: nullopt when there is none, "" (which no
// subject or party matches) when there are several or it is not text.
[[nodiscard]] std::optional<std::string> NameEntry(const X509_NAME* name, int nid);

// Whether `cert` is a node's certificate (usable as a TLS server: accord pki init gives node
// certificates serverAuth and clientAuth, users' clientAuth only).
[[nodiscard]] bool IsNodeCertificate(X509* cert);

// The DER encoding of `cert`'s SubjectPublicKeyInfo, the key a partner's configured certificate
// pins; empty (which no pin matches) when it cannot be encoded.
[[nodiscard]] std::string PublicKeyDer(X509* cert);

// The CAs that issue this node's users' certificates (each signs them itself).
struct UsersIssuers {
  std::set<std::string> keys;      // their public keys (PublicKeyDer)
  std::vector<std::string> names;  // their subjects, for the log
};

// The users' CAs: each certificate in the PEM file `user_ca_file` when it is given (each must
// verify against the CAs `ctx` trusts, through the file's other certificates and this node's
// own chain), else the CA that issued this node's own certificate (in the chain it verifies to
// in `ctx`, configured by ConfigureMutualTls). A partner's CA in the same bundle must verify its
// node's certificate, but must not vouch for this node's users: it could name any of them.
// kInvalidArgument when the file holds no certificate or one the server does not trust, or this
// node's certificate does not verify against the CAs `ctx` trusts.
[[nodiscard]] Result<UsersIssuers> UserIssuerKeys(SSL_CTX* ctx, const std::string& user_ca_file);

// Whether the CA that signed the peer's certificate, in the chain that the handshake of `ssl`
// verified, has one of `keys` (UsersIssuers::keys). Only that CA counts: a users' CA may stand
// above a partner's (one coalition root over a CA per party), which must not pass for it.
[[nodiscard]] bool IssuedByOneOf(SSL* ssl, const std::set<std::string>& keys);

// The public key (PublicKeyDer) of the node certificate of `party` in the PEM file `path`: its
// first certificate, which must be a node certificate (IsNodeCertificate) whose common name and
// organization are both `party`. kInvalidArgument naming the file otherwise.
[[nodiscard]] Result<std::string> PartnerKeyFromFile(const std::string& path,
                                                     const std::string& party);

// A store to verify peers' certificates with: the CAs `ctx` trusts (ConfigureMutualTls) and the
// certificate revocation lists of the PEM file `crl_file`, each a complete list (no delta, no
// distribution point) of its own CA, signed by one of those CAs and current at `now` (seconds
// since the epoch), with dates that can be read. With `in_force` (the lists read before), each CA
// that had a list must have one again, numbered no lower (RFC 5280's CRL number), and, after a list
// with no number, issued no earlier: a file cannot bring a revoked certificate back with an older
// list. kInvalidArgument naming the file otherwise.
struct RevocationLists {
  struct Numbered {
    std::string ca;                   // its subject, for messages
    std::string number;               // the list's CRL number in hexadecimal, "" when it has none
    std::chrono::sys_seconds issued;  // its thisUpdate
  };
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store{nullptr, X509_STORE_free};
  std::map<std::string, Numbered> numbers;  // by CA (PublicKeyDer)
  size_t lists = 0;                         // in the file
  size_t revoked = 0;                       // certificates, in all of them
  // Each list's next update and its CA's subject, earliest first: from then on, the certificates
  // of that CA fail to verify (fail closed) until a newer list is in force.
  std::vector<std::pair<std::chrono::sys_seconds, std::string>> expiries;
};
[[nodiscard]] Result<RevocationLists> LoadRevocationLists(
    SSL_CTX* ctx, const std::string& crl_file, time_t now,
    const RevocationLists* in_force = nullptr);
// Makes the handshakes of connections made from `ctx` from now on verify the peer's certificate
// against `lists`, and refuse it when a list of its CA revokes it (or that list has expired); a
// CA with no list there (a partner's, whose lists this node does not get) is not checked.
// Connections made before keep the store they began with.
void UseRevocationLists(SSL_CTX* ctx, const RevocationLists& lists);

// The revocation lists of one PEM file in force in one SSL_CTX (LoadRevocationLists,
// UseRevocationLists), read again when the file changes. Each look at the file is a stat(2):
// callers look at most once a second or so. A file read later must keep a list of
// each CA that had one, numbered no lower; until one does, the lists read before stay in force.
//
// Thread safety: not thread-safe; used by the thread that owns the SSL_CTX.
class RevocationListFile {
 public:
  explicit RevocationListFile(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // Reads the file and puts its lists in force in `ctx`: the line saying what they hold, or why
  // the file cannot be used (the lists in force before stay).
  [[nodiscard]] Result<std::string> Read(SSL_CTX* ctx);

  // Reads the file again when it changed since it was last read, or that reading failed, and
  // looks whether lists in force have expired since. The line to log, empty when there is none:
  // what new lists hold, why the file cannot be used (once per distinct error), and which lists
  // expired (once each). `*changed` is true when connections made before must be checked again
  // (new lists, or one expired): a peer's certificate that verified may no longer.
  [[nodiscard]] std::string Refresh(SSL_CTX* ctx, bool* changed = nullptr);

  // The lists in force (none before the first Read), and how many times connections made before
  // had to be checked again: lists put in force, or one of them expired.
  [[nodiscard]] const RevocationLists& in_force() const { return in_force_; }
  [[nodiscard]] uint64_t generation() const { return generation_; }

 private:
  std::string path_;
  RevocationLists in_force_;
  std::array<int64_t, 4> seen_{};  // the file's inode, size and time when last read
  std::string error_;              // the last reading's, "" when it succeeded
  size_t expired_ = 0;             // the first of in_force_.expiries that passed, and were said
  uint64_t generation_ = 0;
};

// Why the certificate the peer of `ssl` presented in its handshake no longer verifies against
// `lists` (as the handshake of a connection made after UseRevocationLists would verify it): a
// list revokes it or a CA of its chain, that list has expired, or a certificate has; "" when it
// still verifies. For connections made before the lists came into force.
[[nodiscard]] std::string VerifyPeerAgain(SSL* ssl, const RevocationLists& lists);

// `t` in seconds since the epoch, in a type that holds any date a certificate may carry (RFC
// 5280's "no expiry", 99991231235959Z, is past what system_clock's nanoseconds hold); nullopt
// when it cannot be read.
[[nodiscard]] std::optional<std::chrono::sys_seconds> AsnTimeSeconds(const ASN1_TIME* t);

// The `notAfter` of the first certificate of the chain the handshake of `ssl` verified (the
// peer's, or a CA above it) to expire: a connection kept open past it is refused, since a new
// handshake would be. The earliest instant there is (long past) when no chain was verified or
// a date cannot be read.
[[nodiscard]] std::chrono::sys_seconds VerifiedChainExpires(SSL* ssl);

// Whether a certificate valid through `not_after` (inclusive, as RFC 5280 and OpenSSL count)
// has expired now.
[[nodiscard]] bool HasExpired(std::chrono::sys_seconds not_after);

// How many CAs the PEM file `path` (a CA bundle) holds: its CA certificates, counting those on
// one key once; or why it cannot be read.
[[nodiscard]] Result<int> CountCas(const std::string& path);

}  // namespace accord::server_internal

#endif  // ACCORD_SRC_SERVER_TLS_H_
