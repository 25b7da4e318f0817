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

#include <string>
#include <utility>
#include <vector>

#include "accord/status.h"
#include "accord/time.h"

namespace accord {

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

// kAlreadyExists if DIR/ca.pem exists; kInvalidArgument for bad names, or for a user given for
// two parties. Nothing is written unless every name is good.
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

}  // namespace accord

#endif  // ACCORD_PKI_H_
