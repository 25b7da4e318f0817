#include "accord/pki.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "accord/clock.h"
#include "accord/file.h"

namespace accord {
namespace {
namespace fs = std::filesystem;

X509* ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return cert;
}

// OpenSSL's verdict on `leaf` against `ca` at `at` (X509_V_OK when valid).
int Verify(const std::string& ca, const std::string& leaf, time_t at, int purpose) {
  X509* ca_cert = ReadCert(ca);
  X509* leaf_cert = ReadCert(leaf);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf_cert, nullptr);
  X509_STORE_CTX_set_time(ctx, 0, at);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const int ok = X509_verify_cert(ctx);
  const int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(ca_cert);
  X509_free(leaf_cert);
  return err;
}

// OpenSSL's verdict on `leaf` against `ca` and the revocation list `crl` at `at`, the list
// checked for the leaf (X509_V_FLAG_CRL_CHECK).
int VerifyWithCrl(const std::string& ca, const std::string& crl, const std::string& leaf,
                  time_t at) {
  X509* ca_cert = ReadCert(ca);
  X509* leaf_cert = ReadCert(leaf);
  FILE* f = std::fopen(crl.c_str(), "r");
  X509_CRL* list = f != nullptr ? PEM_read_X509_CRL(f, nullptr, nullptr, nullptr) : nullptr;
  if (f != nullptr) std::fclose(f);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert);
  if (list != nullptr) X509_STORE_add_crl(store, list);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf_cert, nullptr);
  X509_STORE_CTX_set_time(ctx, 0, at);
  X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
  const int ok = X509_verify_cert(ctx);
  const int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_CRL_free(list);
  X509_free(ca_cert);
  X509_free(leaf_cert);
  return err;
}

std::string Field(const std::string& path, int nid) {
  X509* cert = ReadCert(path);
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof buf);
  X509_free(cert);
  return buf;
}

class PkiTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "pki-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A deployment of one node, made now, and the options of a user's certificate good for a day
  // from now, to `user.pem` and `user.key` beside its CA.
  LeafOptions DeploymentAndUserLeaf() {
    const Instant now = SystemClock().Now();
    EXPECT_TRUE(CreateDevelopmentPki(PkiOptions{dir_, {"KOR"}, {}, {"127.0.0.1"}, now, 30}));
    return LeafOptions{dir_ + "/ca.pem",
                       dir_ + "/ca.key",
                       dir_ + "/user.pem",
                       dir_ + "/user.key",
                       CertificateKind::kUser,
                       "kor-analyst",
                       "KOR",
                       {},
                       now,
                       Instant{now.micros + 86'400'000'000LL}};
  }

  std::string dir_;
};

TEST_F(PkiTest, MakesAVerifiableDeployment) {
  const Instant now = SystemClock().Now();
  PkiOptions o{dir_, {"KOR", "JPN"}, {{"jpn-analyst", "JPN"}}, {"localhost", "127.0.0.1"}, now, 30};
  ASSERT_TRUE(CreateDevelopmentPki(o));
  const time_t t = static_cast<time_t>(now.micros / 1'000'000 + 60);
  const std::string ca = dir_ + "/ca.pem";
  EXPECT_EQ(Verify(ca, dir_ + "/nodes/KOR.pem", t, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(ca, dir_ + "/nodes/KOR.pem", t, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(Verify(ca, dir_ + "/users/jpn-analyst.pem", t, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  // A user certificate is not a server's.
  EXPECT_NE(Verify(ca, dir_ + "/users/jpn-analyst.pem", t, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  // Outside the validity period.
  EXPECT_EQ(Verify(ca, dir_ + "/nodes/JPN.pem", t + 31 * 86400, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(Field(dir_ + "/users/jpn-analyst.pem", NID_commonName), "jpn-analyst");
  EXPECT_EQ(Field(dir_ + "/users/jpn-analyst.pem", NID_organizationName), "JPN");
  EXPECT_EQ(Field(dir_ + "/nodes/KOR.pem", NID_commonName), "KOR");
  X509* node = ReadCert(dir_ + "/nodes/KOR.pem");
  EXPECT_EQ(X509_check_host(node, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(node, "127.0.0.1", 0), 1);
  X509_free(node);
  for (const char* key : {"/ca.key", "/nodes/KOR.key", "/users/jpn-analyst.key"}) {
    struct stat st {};
    ASSERT_EQ(stat((dir_ + key).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  auto again = CreateDevelopmentPki(o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
}

TEST_F(PkiTest, IssuesMoreCertificatesFromTheCa) {
  const Instant now = SystemClock().Now();
  ASSERT_TRUE(CreateDevelopmentPki(PkiOptions{dir_, {"KOR"}, {}, {"127.0.0.1"}, now, 30}));
  const Instant past{now.micros - 10LL * 86'400'000'000LL};
  LeafOptions leaf{dir_ + "/ca.pem",
                   dir_ + "/ca.key",
                   dir_ + "/old.pem",
                   dir_ + "/old.key",
                   CertificateKind::kUser,
                   "kor-analyst",
                   "KOR",
                   {},
                   past,
                   Instant{past.micros + 86'400'000'000LL}};
  ASSERT_TRUE(IssueCertificate(leaf));
  const time_t t = static_cast<time_t>(now.micros / 1'000'000);
  EXPECT_EQ(Verify(dir_ + "/ca.pem", dir_ + "/old.pem", t, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_HAS_EXPIRED);
  leaf.common_name = "bad name";
  EXPECT_FALSE(IssueCertificate(leaf));
  EXPECT_FALSE(CreateDevelopmentPki(PkiOptions{dir_ + "/x", {"kor"}, {}, {}, now, 1}));

  // A CA key under a passphrase is refused, not asked for (no terminal prompt); so is a file
  // that holds no key.
  leaf.common_name = "kor-analyst";
  {
    FILE* in = std::fopen((dir_ + "/ca.key").c_str(), "r");
    ASSERT_NE(in, nullptr);
    EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
    std::fclose(in);
    ASSERT_NE(key, nullptr);
    FILE* out = std::fopen((dir_ + "/encrypted.key").c_str(), "w");
    ASSERT_NE(out, nullptr);
    char passphrase[] = "a passphrase";
    EXPECT_EQ(PEM_write_PrivateKey(out, key, EVP_aes_256_cbc(), nullptr, 0, nullptr, passphrase),
              1);
    std::fclose(out);
    EVP_PKEY_free(key);
  }
  const auto not_a_key = [](const std::string& path) {
    return "cannot read the key `" + path +
           "`: not a private key in PEM, or one encrypted with a passphrase (accord reads keys "
           "unencrypted, protected by their files' mode, 0600)";
  };
  for (const std::string name : {"encrypted.key", "ca.pem"}) {
    leaf.ca_key = dir_ + "/" + name;
    const Status refused = IssueCertificate(leaf);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, not_a_key(leaf.ca_key));
  }
  leaf.ca_key = dir_ + "/missing.key";
  const Status missing = IssueCertificate(leaf);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().message.starts_with("cannot read the key `" + leaf.ca_key + "`: "))
      << missing.error().message;
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos)
      << missing.error().message;
  // Not asked for: in a process whose terminal (a pseudo-terminal of the test's) has the
  // passphrase typed already, where OpenSSL's default prompt would read it, the key is still
  // refused.
  leaf.ca_key = dir_ + "/encrypted.key";
  const int terminal = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(terminal, 0);
  ASSERT_EQ(::grantpt(terminal), 0);
  ASSERT_EQ(::unlockpt(terminal), 0);
  const std::string typed_at = ::ptsname(terminal);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Its own session, whose controlling terminal is the first one it opens; a prompt that
    // waits for more than was typed ends it (SIGALRM) rather than the test's run.
    ::alarm(10);
    if (::setsid() < 0 || ::open(typed_at.c_str(), O_RDWR) < 0) ::_exit(3);
    const Status issued = IssueCertificate(leaf);
    ::_exit(issued ? 1 : (issued.error().message == not_a_key(leaf.ca_key) ? 0 : 2));
  }
  ASSERT_EQ(::write(terminal, "a passphrase\n", 13), 13);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(terminal);
  ASSERT_TRUE(WIFEXITED(status)) << "the child waited for a passphrase (signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: the passphrase typed was read and the key used; 2: another error; 3: no terminal";
}

// A revocation list: a new one revokes the certificates given; a later one keeps them and adds
// more, with the next CRL number; a renewal (no certificate) moves the next update on; a
// certificate of another CA, a list the CA did not sign, or only certificates revoked already
// are refused, and the list is left as it was.
TEST_F(PkiTest, RevokesCertificatesInAListTheCaSigns) {
  const Instant now = SystemClock().Now();
  ASSERT_TRUE(CreateDevelopmentPki(PkiOptions{
      dir_, {"KOR"}, {{"kor-analyst", "KOR"}, {"kor-clerk", "KOR"}}, {"127.0.0.1"}, now, 30}));
  const std::string ca = dir_ + "/ca.pem", crl = dir_ + "/crl.pem";
  const std::string analyst = dir_ + "/users/kor-analyst.pem";
  const std::string clerk = dir_ + "/users/kor-clerk.pem";
  const time_t t = static_cast<time_t>(now.micros / 1'000'000 + 60);
  // Without a list, OpenSSL cannot check: the leaf's CA has none.
  EXPECT_EQ(VerifyWithCrl(ca, crl, clerk, t), X509_V_ERR_UNABLE_TO_GET_CRL);
  // A list revoking nothing.
  auto empty = RevokeCertificate(RevokeOptions{ca, dir_ + "/ca.key", dir_ + "/empty.pem", {}, now});
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(empty->added, 0u);
  EXPECT_EQ(empty->revoked, 0u);
  EXPECT_EQ(VerifyWithCrl(ca, dir_ + "/empty.pem", clerk, t), X509_V_OK);

  RevokeOptions o{ca, dir_ + "/ca.key", crl, {clerk}, now, 7};
  auto first = RevokeCertificate(o);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->added, 1u);
  EXPECT_EQ(first->revoked, 1u);
  EXPECT_EQ(first->next_update.micros, now.micros + 7 * 86'400'000'000LL);
  EXPECT_EQ(VerifyWithCrl(ca, crl, clerk, t), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(VerifyWithCrl(ca, crl, analyst, t), X509_V_OK);
  EXPECT_EQ(VerifyWithCrl(ca, crl, analyst, t + 8 * 86400), X509_V_ERR_CRL_HAS_EXPIRED);
  for (const auto& entry : fs::directory_iterator(dir_)) {  // no temporary file is left
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(!name.starts_with("crl.pem.") || name == "crl.pem.lock") << entry.path();
  }

  // Again: nothing new to revoke, and the file is untouched.
  const auto written = fs::last_write_time(crl);
  auto again = RevokeCertificate(o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_EQ(fs::last_write_time(crl), written);

  // Both, then a renewal: the clerk's revocation is kept.
  o.certs = {clerk, analyst};
  auto second = RevokeCertificate(o);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->added, 1u);
  EXPECT_EQ(second->revoked, 2u);
  o.certs.clear();
  o.at = Instant{now.micros + 6 * 86'400'000'000LL};
  auto renewed = RevokeCertificate(o);
  ASSERT_TRUE(renewed) << renewed.error().ToString();
  EXPECT_EQ(renewed->added, 0u);
  EXPECT_EQ(renewed->revoked, 2u);
  EXPECT_EQ(VerifyWithCrl(ca, crl, clerk, t + 8 * 86400), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(VerifyWithCrl(ca, crl, analyst, t + 8 * 86400), X509_V_ERR_CERT_REVOKED);
  FILE* f = std::fopen(crl.c_str(), "r");
  ASSERT_NE(f, nullptr);
  X509_CRL* list = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(list, nullptr);
  auto* number =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(list, NID_crl_number, nullptr, nullptr));
  ASSERT_NE(number, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(number), 3);
  ASN1_INTEGER_free(number);
  // The CA's key identifier, as RFC 5280 requires of a list.
  X509* issuer = ReadCert(ca);
  auto* akid = static_cast<AUTHORITY_KEYID*>(
      X509_CRL_get_ext_d2i(list, NID_authority_key_identifier, nullptr, nullptr));
  ASSERT_NE(akid, nullptr);
  ASSERT_NE(akid->keyid, nullptr);
  EXPECT_EQ(ASN1_STRING_cmp(akid->keyid, X509_get0_subject_key_id(issuer)), 0);
  AUTHORITY_KEYID_free(akid);
  X509_free(issuer);
  X509_CRL_free(list);

  // Another CA's certificate, and this list under another CA: refused.
  const std::string other = dir_ + "/other";
  ASSERT_TRUE(CreateDevelopmentPki(PkiOptions{other, {"JPN"}, {}, {"127.0.0.1"}, now, 30}));
  o.certs = {other + "/nodes/JPN.pem"};
  auto foreign = RevokeCertificate(o);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, Code::kInvalidArgument);
  EXPECT_NE(foreign.error().message.find("was not issued by the CA"), std::string::npos);
  auto forged =
      RevokeCertificate(RevokeOptions{other + "/ca.pem", other + "/ca.key", crl, {}, now});
  ASSERT_FALSE(forged);
  EXPECT_NE(forged.error().message.find("is not signed by this CA"), std::string::npos)
      << forged.error().message;
  auto mismatched = RevokeCertificate(RevokeOptions{ca, other + "/ca.key", crl, {}, now});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message.find("is not the key of"), std::string::npos);
  EXPECT_EQ(VerifyWithCrl(ca, crl, analyst, t + 8 * 86400), X509_V_ERR_CERT_REVOKED);
}

// A list asked to be backdated (as `accord pki revoke` asks) is dated that much before its
// revocations, and verifies at once on a clock that far behind; its next update does not move.
TEST_F(PkiTest, ARevocationListIsDatedBackByWhatItIsAsked) {
  const Instant now = SystemClock().Now();
  ASSERT_TRUE(CreateDevelopmentPki(
      PkiOptions{dir_, {"KOR"}, {{"kor-clerk", "KOR"}}, {"127.0.0.1"}, Instant{0}, 30}));
  const std::string ca = dir_ + "/ca.pem", crl = dir_ + "/crl.pem";
  const std::string clerk = dir_ + "/users/kor-clerk.pem";
  auto made = RevokeCertificate(
      RevokeOptions{ca, dir_ + "/ca.key", crl, {clerk}, now, 7, kIssueBackdateSeconds});
  ASSERT_TRUE(made) << made.error().ToString();
  EXPECT_EQ(made->next_update.micros, now.micros + 7 * 86'400'000'000LL);

  FILE* f = std::fopen(crl.c_str(), "r");
  ASSERT_NE(f, nullptr);
  X509_CRL* list = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(list, nullptr);
  const time_t seconds = static_cast<time_t>(now.micros / 1'000'000);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(list),
                           X509_REVOKED_get0_revocationDate(
                               sk_X509_REVOKED_value(X509_CRL_get_REVOKED(list), 0))),
            1);
  EXPECT_EQ(days * 86400 + secs, kIssueBackdateSeconds);
  X509_CRL_free(list);
  const time_t behind = seconds - kIssueBackdateSeconds + 10;
  EXPECT_EQ(VerifyWithCrl(ca, crl, clerk, behind), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(VerifyWithCrl(ca, crl, clerk, seconds - kIssueBackdateSeconds - 10),
            X509_V_ERR_CRL_NOT_YET_VALID);
}

// Revocations run at once on one CA's list each keep their entry: each waits for the one before
// to put its list in place, then extends that list.
TEST_F(PkiTest, RevocationsAtOnceLoseNoEntry) {
  const Instant now = SystemClock().Now();
  constexpr int kUsers = 6;
  std::vector<std::pair<std::string, std::string>> users;
  for (int i = 0; i < kUsers; ++i) users.emplace_back("kor-user-" + std::to_string(i), "KOR");
  ASSERT_TRUE(CreateDevelopmentPki(PkiOptions{dir_, {"KOR"}, users, {"127.0.0.1"}, now, 30}));
  const std::string ca = dir_ + "/ca.pem", crl = dir_ + "/crl.pem";
  std::vector<std::thread> threads;
  std::vector<int> added(kUsers, -1);
  for (int i = 0; i < kUsers; ++i) {
    threads.emplace_back([&, i] {
      auto made =
          RevokeCertificate(RevokeOptions{ca,
                                          dir_ + "/ca.key",
                                          crl,
                                          {dir_ + "/users/kor-user-" + std::to_string(i) + ".pem"},
                                          now});
      added[static_cast<size_t>(i)] = made ? static_cast<int>(made->added) : -2;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(added, std::vector<int>(kUsers, 1));
  auto renewed = RevokeCertificate(RevokeOptions{ca, dir_ + "/ca.key", crl, {}, now});
  ASSERT_TRUE(renewed) << renewed.error().ToString();
  EXPECT_EQ(renewed->revoked, static_cast<size_t>(kUsers));
}

// A node certificate names its hosts as IP addresses (v4 or v6) or DNS names, at least one;
// anything else, and a user given for two parties (whose files would replace each other), is
// refused before a file is written, so that the mistake can be mended and the command run again.
TEST_F(PkiTest, ChecksHostsAndNamesBeforeWritingAnything) {
  const Instant now = SystemClock().Now();
  ASSERT_TRUE(CreateDevelopmentPki(PkiOptions{
      dir_, {"KOR"}, {}, {"2001:db8::1", "kor.example", "localhost", "10.0.0.1"}, now, 30}));
  X509* node = ReadCert(dir_ + "/nodes/KOR.pem");
  EXPECT_EQ(X509_check_ip_asc(node, "2001:db8::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(node, "10.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(node, "kor.example", 0, 0, nullptr), 1);
  X509_free(node);

  const std::string label63(63, 'a');
  for (const std::string& host : std::vector<std::string>{
           "1.2.3", "", "-kor.example", "kor-.example", "kor..example", "kor_1.example",
           "kor.example.", "2001:db8::g", "1.2.3.4.5", label63 + "a.example", "a b"}) {
    const std::string dir = dir_ + "/bad";
    auto made = CreateDevelopmentPki(PkiOptions{dir, {"KOR"}, {}, {host}, now, 30});
    ASSERT_FALSE(made) << host;
    EXPECT_EQ(made.error().message, "`" + host + "` is neither an IP address nor a DNS name");
    EXPECT_FALSE(fs::exists(dir + "/ca.pem")) << host;
    LeafOptions leaf{dir_ + "/ca.pem",
                     dir_ + "/ca.key",
                     dir_ + "/n.pem",
                     dir_ + "/n.key",
                     CertificateKind::kNode,
                     "JPN",
                     "JPN",
                     {host},
                     now,
                     Instant{now.micros + 86'400'000'000LL}};
    EXPECT_FALSE(IssueCertificate(leaf)) << host;
    EXPECT_FALSE(fs::exists(dir_ + "/n.pem")) << host;
  }
  EXPECT_TRUE(CreateDevelopmentPki(
      PkiOptions{dir_ + "/long", {"KOR"}, {}, {label63 + ".example", "a-b.c0"}, now, 30}));

  // Node certificates that name no host could not be reached: a partner finds the host in the
  // subjectAltName only (decision #193).
  auto no_host = CreateDevelopmentPki(PkiOptions{dir_ + "/no-host", {"KOR"}, {}, {}, now, 30});
  ASSERT_FALSE(no_host);
  EXPECT_EQ(no_host.error().message,
            "no host for the node certificates: name the hosts or addresses partners reach the "
            "nodes at (--hosts)");
  EXPECT_FALSE(fs::exists(dir_ + "/no-host/ca.pem"));

  auto two_parties = CreateDevelopmentPki(
      PkiOptions{dir_ + "/users", {"KOR"}, {{"alice", "KOR"}, {"alice", "JPN"}}, {}, now, 30});
  ASSERT_FALSE(two_parties);
  EXPECT_EQ(two_parties.error().message, "user `alice` is given for two parties, `KOR` and `JPN`");
  EXPECT_FALSE(fs::exists(dir_ + "/users/ca.pem"));
  // The same node or user twice (a policy's and a flag's) is made once.
  auto twice = CreateDevelopmentPki(PkiOptions{dir_ + "/twice",
                                               {"KOR", "JPN", "KOR"},
                                               {{"alice", "KOR"}, {"bob", "JPN"}, {"alice", "KOR"}},
                                               {"localhost"},
                                               now,
                                               30});
  ASSERT_TRUE(twice) << twice.error().ToString();
  EXPECT_EQ(twice->nodes, (std::vector<std::string>{"KOR", "JPN"}));
  EXPECT_EQ(twice->users, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(Field(dir_ + "/twice/users/alice.pem", NID_organizationName), "KOR");
}

// A private key is written 0600 whatever was at its path, and never through a symbolic link
// (which could point anywhere, readable by others): its file is a new file renamed into place
// (decision #140). A file planted under its name (here readable by all, and kept open through
// a second name, as its owner would) receives none of the key, nor does a link's target.
TEST_F(PkiTest, AKeyIsWrittenPrivateAndNotThroughALink) {
  LeafOptions leaf = DeploymentAndUserLeaf();
  {
    std::FILE* old = std::fopen(leaf.out_key.c_str(), "w");
    ASSERT_NE(old, nullptr);
    std::fclose(old);
    fs::permissions(leaf.out_key, fs::perms(0644));
    fs::create_hard_link(leaf.out_key, dir_ + "/planted.key");
  }
  ASSERT_TRUE(IssueCertificate(leaf));
  struct stat st {};
  ASSERT_EQ(::stat(leaf.out_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GT(st.st_size, 100);
  EXPECT_EQ(st.st_nlink, 1u);
  struct stat planted {};
  ASSERT_EQ(::stat((dir_ + "/planted.key").c_str(), &planted), 0);
  EXPECT_EQ(planted.st_size, 0);
  EXPECT_NE(planted.st_ino, st.st_ino);

  fs::create_symlink(dir_ + "/elsewhere.key", dir_ + "/linked.key");
  leaf.out_key = dir_ + "/linked.key";
  ASSERT_TRUE(IssueCertificate(leaf));
  EXPECT_FALSE(fs::is_symlink(leaf.out_key));
  ASSERT_EQ(::stat(leaf.out_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(dir_ + "/elsewhere.key"));
  // Nothing is left beside them.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
}

// A certificate that cannot be written leaves the key it would have replaced (decision #145):
// both are staged before either is renamed, so a full disk or a missing directory does not pair
// a new key with the old certificate.
TEST_F(PkiTest, AKeyIsNotReplacedWhenItsCertificateCannotBe) {
  const auto Contents = [](const std::string& path) {
    return ReadFileAtMost(path, 1 << 20).value_or("(unreadable)");
  };
  LeafOptions leaf = DeploymentAndUserLeaf();
  ASSERT_TRUE(IssueCertificate(leaf));
  const std::string key_before = Contents(leaf.out_key);
  const std::string cert_before = Contents(leaf.out_cert);
  ASSERT_FALSE(key_before.empty());

  leaf.out_cert = dir_ + "/missing/user.pem";
  const Status failed = IssueCertificate(leaf);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Code::kFailedPrecondition) << failed.error().message;
  // Compared without printing: a failure would otherwise show the key.
  EXPECT_TRUE(Contents(leaf.out_key) == key_before) << "the key was replaced";
  EXPECT_EQ(Contents(dir_ + "/user.pem"), cert_before);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace accord
