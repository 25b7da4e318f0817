// accord/pki.h — a deployment's development PKI, made with OpenSSL.
//
// Every connection between nodes, and from users to nodes, is mutual TLS. `CreateDevelopmentPki`
// makes what a test or demo deployment needs: a CA, a certificate per node (CN = the party,
// usable as TLS server and client, with subject alternative names for the hosts it listens on)
// and a certificate per user (CN = the subject id of its node's directory, O = its party, TLS
// client only). Keys are ECDSA P-256, certificates are signed with SHA-256, private keys are
// written with mode 0600.
//
//   DIR/ca.pem, DIR/ca.key
//   DIR/nodes/<PARTY>.pem, DIR/nodes/<PARTY>.key
//   DIR/users/<SUBJECT>.pem, DIR/users/<SUBJECT>.key
//
// A production deployment uses its own CA; accord only reads PEM files.
//
// Thread safety: plain functions.
#ifndef ACCORD_PKI_H_
#define ACCORD_PKI_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "accord/status.h"
#include "accord/time.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace accord {

// How far before the instant it is made `accord pki` dates what it issues: a certificate's start
// (notBefore) and a revocation list's date of issue (thisUpdate). OpenSSL refuses both while
// they lie in the future, with no allowance, so a node whose clock is behind the CA's by less
// than this, or that reads the coarse clock (time(2) lags by up to a tick), accepts them at once.
inline constexpr int64_t kIssueBackdateSeconds = 300;

struct PkiOptions {
  std::string dir;                                              // created; must not hold a ca.pem
  std::vector<std::string> nodes;                               // party ids
  std::vector<std::pair<std::string, std::string>> users;       // (subject id, party)
  std::vector<std::string> hosts = {"localhost", "127.0.0.1"};  // node certificates' names
  Instant not_before;                                           // usually now
  int64_t valid_days = 365;
};

// What `CreateDevelopmentPki` made: one certificate per node and per user, each named once
// (a node or user given twice, by a policy and a flag, has one certificate), in the order first
// given.
struct DevelopmentPki {
  std::vector<std::string> nodes;  // party ids
  std::vector<std::string> users;  // subject ids
};

// kAlreadyExists if DIR/ca.pem exists; kInvalidArgument for bad names, for a user given for
// two parties, or for node certificates with no host. Nothing is written unless every name is
// good.
[[nodiscard]] Result<DevelopmentPki> CreateDevelopmentPki(const PkiOptions& options);

enum class CertificateKind { kNode, kUser };

struct LeafOptions {
  std::string ca_cert;  // PEM files of the issuing CA
  std::string ca_key;
  std::string out_cert;
  std::string out_key;
  CertificateKind kind = CertificateKind::kUser;
  std::string common_name;         // party (node) or subject id (user)
  std::string organization;        // the party
  std::vector<std::string> hosts;  // node certificates
  Instant not_before;
  Instant not_after;
};

// Issues one more certificate from an existing CA (a new user, or an expired one for tests).
[[nodiscard]] Status IssueCertificate(const LeafOptions& options);

struct RevokeOptions {
  std::string ca_cert;  // PEM files of the CA whose list this is
  std::string ca_key;
  std::string crl;                 // PEM: read if it exists (its entries kept), then written anew
  std::vector<std::string> certs;  // PEM files of certificates to add; none: renew the list
  Instant at;                      // the revocations' date (usually now)
  int64_t valid_days = 30;         // the list's next update: at + valid_days
  int64_t backdate_seconds = 0;    // the list's date of issue (thisUpdate): at - backdate_seconds
};

// What `RevokeCertificate` wrote.
struct RevocationList {
  size_t added = 0;    // certificates newly revoked
  size_t revoked = 0;  // in the list, in all
  Instant next_update;
};

// Writes the CA's certificate revocation list (X.509 v2 CRL, SHA-256, with the CA's key
// identifier and a CRL number one above the old list's), with the entries of the list already in
// `crl` and one for each of `certs`, signed by the CA and valid `valid_days`; the file is
// replaced whole (a new file beside it, made durable, then renamed). Runs on one list take turns
// (a write lock on `crl`.lock, a file made beside it and left there). kInvalidArgument for an
// unreadable file, a certificate the CA did not issue, or an existing list the CA did not sign
// (it would be extended under the CA's name); kAlreadyExists, and nothing written, when every
// certificate given is in the list already; kFailedPrecondition when the lock cannot be taken
// ("cannot lock `PATH`: REASON"); kUnavailable when the directory cannot be made durable after
// the new list is in place (the message says so).
[[nodiscard]] Result<RevocationList> RevokeCertificate(const RevokeOptions& options);

// The private key in the PEM file at `path` (a CA's, or a node's for TLS), read into memory that
// wipes itself rather than through stdio's buffers, which are freed unwiped; an encrypted key is
// refused, not asked for on the terminal. kInvalidArgument ("cannot read the key `PATH`: …",
// naming why: the file, or what it holds).
[[nodiscard]] Result<std::shared_ptr<evp_pkey_st>> ReadPrivateKey(const std::string& path);

}  // namespace accord

#endif  // ACCORD_PKI_H_
