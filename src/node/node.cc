#include "accord/node.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "accord/clock.h"
#include "accord/config.h"
#include "accord/file.h"
#include "accord/json.h"
#include "accord/merkle.h"
#include "accord/note.h"
#include "accord/utf8.h"
#include "audit.h"
#include "wire.h"

namespace accord {
namespace fs = std::filesystem;
namespace json = boost::json;
using node_internal::AuditEntry;
using node_internal::Envelope;
using node_internal::Label;
using node_internal::LogEvidence;
using node_internal::NoticeBody;
using node_internal::PackageBody;
using node_internal::ReceiptBody;

namespace {

constexpr std::string_view kIdentityAd = "accord/1 identity\n";
constexpr std::string_view kDataKeyAd = "accord/1 data-key\n";
constexpr std::string_view kPackageKeyAd = "accord/1 package-key\n";
// A package may be decided a little ahead of this node's clock (clock skew between nodes).
// How Receive's refusal of an envelope's signature begins (IsBadSignature).
constexpr std::string_view kBadSignature = "the signature does not verify with";
constexpr int64_t kMaxSkewMicros = 5 * 60 * 1'000'000LL;
// A package decided up to this far ahead of this node's clock waits for it (503); beyond, the
// sender's clock was wrong when it decided, which waiting would not mend (422, final).
constexpr int64_t kMaxWaitMicros = 60 * 60 * 1'000'000LL;

// The size of a payload sealed in `ciphertext_bytes`: without the AEAD's nonce and tag, nor the
// salt its label commits to (`salted`, decision #109).
uint64_t PayloadBytes(uint64_t ciphertext_bytes, bool salted) {
  const uint64_t overhead = kAeadOverhead + (salted ? node_internal::kContentSaltBytes : 0);
  return ciphertext_bytes >= overhead ? ciphertext_bytes - overhead : 0;
}

Label LabelOf(const ObjectRecord& o) {
  return Label{o.id,           o.originator, o.level,   o.topics,
               o.compartments, o.rel_to,     o.version, o.commitment};
}

Bytes Concat(std::string_view prefix, ByteView rest) {
  Bytes out(prefix.begin(), prefix.end());
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

Bytes DataKeyAd(ByteView encoded_label) { return Concat(kDataKeyAd, encoded_label); }
Bytes DataKeyAd(const Label& label) { return DataKeyAd(node_internal::EncodeLabel(label)); }

Bytes PackageKeyAd(const std::string& package_id, const std::string& to) {
  return Concat(kPackageKeyAd, AsBytes(package_id + "\n" + to));
}

tl::unexpected<Error> Deny(Reason reason, std::string_view what,
                           const std::vector<std::string>& explain) {
  std::string message = fmt::format("{}: {}", ReasonName(reason), what);
  if (!explain.empty()) {
    message += fmt::format(" ({})", fmt::join(explain, " "));
  }
  return Fail(Code::kPermissionDenied, std::move(message));
}

// The object's facts as the engine sees them: views into records this struct owns.
class Facts {
 public:
  Facts(Label label, std::vector<ReleaseRecord> releases, std::vector<ForwardRecord> forwards,
        std::vector<ConsentRecord> consents, std::optional<Instant> destroyed_at)
      : label_(std::move(label)),
        releases_(std::move(releases)),
        forwards_(std::move(forwards)),
        consents_(std::move(consents)),
        destroyed_at_(destroyed_at) {
    for (const auto& t : label_.topics) topics_.push_back(t);
    for (const auto& c : label_.compartments) compartments_.push_back(c);
    for (const auto& r : label_.rel_to) rel_to_.push_back(r);
    for (const auto& r : releases_) release_views_.push_back({r.to, r.at, r.agreement, r.level});
    for (const auto& f : forwards_) forward_views_.push_back({f.from, f.to, f.at, f.agreement});
    for (const auto& c : consents_) consent_views_.push_back({c.to, c.at});
  }
  // Moving keeps the views valid: they point into the vectors' heap buffers, which move along.
  Facts(Facts&&) = default;
  Facts& operator=(Facts&&) = delete;
  Facts(const Facts&) = delete;
  Facts& operator=(const Facts&) = delete;

  [[nodiscard]] ObjectView View() const {
    return ObjectView{label_.id, label_.originator, label_.level,   topics_,        compartments_,
                      rel_to_,   release_views_,    forward_views_, consent_views_, destroyed_at_};
  }
  [[nodiscard]] const Label& label() const { return label_; }
  [[nodiscard]] const std::vector<ReleaseRecord>& releases() const { return releases_; }
  [[nodiscard]] const std::vector<ConsentRecord>& consents() const { return consents_; }

 private:
  Label label_;
  std::vector<ReleaseRecord> releases_;
  std::vector<ForwardRecord> forwards_;
  std::vector<ConsentRecord> consents_;
  std::optional<Instant> destroyed_at_;
  std::vector<std::string_view> topics_, compartments_, rel_to_;
  std::vector<ReleaseView> release_views_;
  std::vector<ForwardView> forward_views_;
  std::vector<ConsentView> consent_views_;
};

// Makes every file and directory under `root`, and `root` itself, durable: the files first, then
// the directories deepest first, so that each directory's entries are durable before its
// parent's. `what` names the tree in an error.
Status SyncTree(const fs::path& root, std::string_view what) {
  std::error_code ec;
  std::vector<fs::path> directories{root};
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec)) {
      directories.push_back(it->path());
    } else {
      ACCORD_RETURN_IF_ERROR(SyncPath(it->path().string()));
    }
  }
  if (ec) {
    return Fail(Code::kUnavailable,
                fmt::format("listing {} `{}`: {}", what, root.string(), ec.message()));
  }
  for (auto it = directories.rbegin(); it != directories.rend(); ++it) {
    ACCORD_RETURN_IF_ERROR(SyncPath(it->string()));
  }
  return OkStatus();
}

// Copies the policy directory `from` to `to`, every file and directory of the copy made durable
// (the home's own entry is made durable when the home's making ends).
Status CopyPolicy(const std::string& from, const fs::path& to) {
  std::error_code ec;
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument,
                fmt::format("copying the policy `{}`: {}", from, ec.message()));
  }
  return SyncTree(to, "the policy's copy");
}

Result<Engine> LoadEngine(const fs::path& policy_dir) {
  auto policy = LoadPolicyDir(policy_dir);
  if (!policy) {
    return tl::unexpected(DiagnosticsToError(policy.error()));
  }
  return Engine::Compile(std::move(*policy));
}

std::string Pkcs11Meta(const Pkcs11Options& o) {
  return json::serialize(
      json::object{{"module", o.module}, {"token", o.token_label}, {"key", o.key_label}});
}

Result<Pkcs11Options> ParsePkcs11Meta(const std::string& text) {
  auto v = ParseJson(text);
  const json::object* o = v ? v->if_object() : nullptr;
  if (o == nullptr || !o->contains("module") || !o->at("module").is_string() ||
      !o->contains("token") || !o->at("token").is_string() || !o->contains("key") ||
      !o->at("key").is_string()) {
    return Fail(Code::kDataLoss, "the home's PKCS#11 settings are damaged");
  }
  Pkcs11Options opts;
  opts.module = std::string(o->at("module").get_string());
  opts.token_label = std::string(o->at("token").get_string());
  opts.key_label = std::string(o->at("key").get_string());
  return opts;
}

}  // namespace

// --- the node --------------------------------------------------------------------------------

namespace {

// An envelope's body, parsed according to its kind.
using EnvelopeBody = std::variant<PackageBody, ReceiptBody, NoticeBody>;

Result<EnvelopeBody> ParseBody(const Envelope& env) {
  if (node_internal::IsPackageKind(env.kind)) {
    return node_internal::ParsePackageBody(env.body);
  }
  if (env.kind == "receipt") return node_internal::ParseReceiptBody(env.body);
  return node_internal::ParseNoticeBody(env.kind, env.body);
}

EnvelopeInfo InfoOf(const Envelope& env, const EnvelopeBody& body) {
  EnvelopeInfo info;
  info.kind = env.kind;
  info.signer = env.signer;
  if (const auto* package = std::get_if<PackageBody>(&body)) {
    info.id = package->id;
    info.object_id = package->label.id;
    info.to = package->to;
  } else if (const auto* receipt = std::get_if<ReceiptBody>(&body)) {
    info.id = receipt->package_id;
    info.object_id = receipt->object_id;
    info.to = receipt->from;
  } else {
    const auto& notice = std::get<NoticeBody>(body);
    info.id = notice.id;
    info.object_id = notice.object_id;
    info.to = notice.kind == "report" ? notice.originator : notice.to;
  }
  return info;
}

}  // namespace

struct Node::Impl {
  std::string home;
  std::string party;
  std::unique_ptr<Clock> clock;
  Engine engine;
  std::unique_ptr<KeyEncryptionKey> kek;
  SigningKey sign;
  WrapKeyPair wrap;
  std::unique_ptr<Store> store;
  size_t max_payload = 0;
  node_internal::AuditLog log;
  note::Signer log_signer;  // the identity key, named after the log's origin

  std::string actor;  // the subject on whose behalf operations run (Node::set_actor)
  // Inside Node::Group and outside any operation's own transaction: a read holds its log entry
  // back (LogRead).
  bool defer_reads = false;
  std::map<std::string, SubjectRecord, std::less<>> group_subjects{};  // Subject
  // Inside Decided: set by Refuse once the refusal's entry is in the operation's transaction.
  bool* refusal_logged = nullptr;
  // Group commits made, and those known durable (SyncCommits, from any thread): a checkpoint is
  // signed only over a durable log, so that a power loss cannot take back what it covers. One
  // at the start: what a process before this one committed without a sync (it died first) may
  // not be on disk yet, so the first receipt given again (StoredReceipt) syncs it.
  std::atomic<uint64_t> groups_committed{1};
  std::atomic<uint64_t> groups_synced{0};

  // A partner's signing key as the verifiers of its envelopes and of its log's checkpoints.
  struct PartnerVerifiers {
    PublicKey sign_public;
    VerifyingKey envelopes;
    note::Verifier log;
  };
  // By party, made once per key: every envelope is checked against its signer's key, and most
  // carry a checkpoint of its log. An imported new key replaces the entry. Like the rest of a
  // Node, used from one thread.
  std::map<std::string, PartnerVerifiers, std::less<>> verifiers{};

  // Whether the home runs on the system clock: only then do the instants this node records of
  // its own (when it witnessed a partner's log) say when things happened (decision #108).
  bool system_clock = false;

  Result<const PartnerVerifiers*> VerifiersOf(const PartnerRecord& p) {
    auto it = verifiers.find(p.party);
    if (it != verifiers.end() && it->second.sign_public == p.sign_public) return &it->second;
    ACCORD_ASSIGN_OR_RETURN(VerifyingKey envelopes, VerifyingKey::FromRaw(p.sign_public));
    if (envelopes.AcceptsForgeries()) {
      // Stored before the import refused such keys (decision #103). Nothing signed under it
      // means anything, so nothing from this partner is checked until its keys are imported
      // again: unavailable, so that what a partner sends waits for that, as for keys not yet
      // imported (decision #57).
      return Fail(Code::kUnavailable,
                  fmt::format("`{}`'s stored signing key is a point of small order, under which "
                              "anyone can make signatures: import its public keys again",
                              p.party));
    }
    ACCORD_ASSIGN_OR_RETURN(
        note::Verifier checkpoints,
        note::Verifier::FromPublicKey(node_internal::LogOrigin(p.party), p.sign_public));
    PartnerVerifiers made{p.sign_public, std::move(envelopes), std::move(checkpoints)};
    if (it != verifiers.end()) {
      it->second = std::move(made);  // in place: a pointer given out before stays valid
      return &it->second;
    }
    return &verifiers.emplace(p.party, std::move(made)).first->second;
  }

  [[nodiscard]] size_t MaxEnvelope() const { return MaxEnvelopeBytes(max_payload); }

  // Runs `body` in one store transaction. A rolled-back transaction may have appended to the log,
  // so the log's in-memory edge is rebuilt from the store afterwards.
  //
  // Inside a group, the entries the group's reads held back (defer_reads) are appended first,
  // outside the operation's own transaction (a savepoint), so that its rollback cannot take them
  // back; and the operation's own reads, if any, log at once.
  Status Transact(const std::function<Status()>& body) {
    ACCORD_RETURN_IF_ERROR(log.FlushDeferred());
    group_subjects.clear();  // the operation may change them
    const bool deferring = std::exchange(defer_reads, false);
    Status s = store->Transact(body);
    defer_reads = deferring;
    if (!s) log.Invalidate();
    return s;
  }

  // Runs `op`, an operation that decides (release, forward, consent, reclassify, destroy,
  // report, receive), as one transaction: what it reads, what it decides and what it records.
  // So nothing another connection commits (`accord destroy` beside `accord serve` on one home)
  // falls between a decision and its records. A refusal made with Refuse commits its entry;
  // any other failure rolls the whole operation back.
  template <typename Op>
  std::invoke_result_t<Op&> Decided(Op&& op) {
    std::optional<std::invoke_result_t<Op&>> out;
    bool refused = false;
    struct Restore {
      bool*& slot;
      bool* outer;
      ~Restore() { slot = outer; }
    } restore{refusal_logged, std::exchange(refusal_logged, &refused)};
    Status s = Transact([&]() -> Status {
      out.emplace(op());
      if (out->has_value() || refused) return OkStatus();
      return tl::unexpected(out->error());
    });
    if (!s && refused) {
      Error error = std::move(out->error());
      error.message += " (logging the refusal failed: " + s.error().message + ")";
      return tl::unexpected(std::move(error));
    }
    if (!s) return tl::unexpected(std::move(s.error()));
    return std::move(*out);
  }

  // Runs `body` as one group commit (Node::Group), synced or not.
  Status Group(const std::function<void()>& body, bool durable) {
    // Inside another group this one is a savepoint of it: what the outer group's reads hold back
    // goes in first, so that this one's rollback cannot undo it.
    ACCORD_RETURN_IF_ERROR(log.FlushDeferred());
    // However the group ends, even by an exception, reads after it log at once again (or as the
    // outer group's), and nothing it held or kept survives it.
    struct Restore {
      Impl& n;
      bool outer_defers;
      ~Restore() {
        n.defer_reads = outer_defers;
        n.group_subjects.clear();
        n.log.EndDeferral();
      }
    } restore{*this, defer_reads};
    const auto run = [&]() -> Status {
      defer_reads = true;
      body();
      defer_reads = false;
      // The reads' entries commit with the group, or nothing of it does.
      return log.FlushDeferred();
    };
    Status s = durable ? store->Transact(run) : store->TransactUnsynced(run);
    if (!s) log.Invalidate();
    return s;
  }

  // A subject, read once inside a group: its transaction holds the store's write lock, so only
  // an operation of the group could change it, and Transact forgets what is kept here.
  Result<SubjectRecord> Subject(const std::string& id) {
    if (!defer_reads) return store->GetSubject(id);
    if (auto it = group_subjects.find(id); it != group_subjects.end()) return it->second;
    ACCORD_ASSIGN_OR_RETURN(SubjectRecord subject, store->GetSubject(id));
    group_subjects.emplace(id, subject);
    return subject;
  }

  // Logs a read's entry: held back inside a group (AuditLog::Defer), where it is the read's only
  // write, so that the group's reads reach the store in one append; at once otherwise.
  Status LogRead(const AuditEntry& e) {
    if (!defer_reads) return Log(e);
    log.Defer(e);
    return OkStatus();
  }

  Result<Facts> LoadFacts(const ObjectRecord& o) {
    ACCORD_ASSIGN_OR_RETURN(auto releases, store->ListReleases(o.id));
    ACCORD_ASSIGN_OR_RETURN(auto forwards, store->ListForwards(o.id));
    ACCORD_ASSIGN_OR_RETURN(auto consents, store->ListConsents(o.id));
    return Facts(LabelOf(o), std::move(releases), std::move(forwards), std::move(consents),
                 o.destroyed_at);
  }

  // Decides `subject` reading the object of `facts` at `at`; `explain` gets the explanation.
  // A copy is erased when it is destroyed (EraseObjectCopy), so at an instant before its
  // destruction (a simulated clock set back) it is as destroyed as after; `destruction_aside`
  // decides as if it had not been destroyed (who may order its destruction everywhere).
  Decision DecideRead(const SubjectRecord& subject, const Facts& facts, Instant at,
                      std::vector<std::string>* explain, bool destruction_aside = false) const {
    std::vector<std::string_view> ntk(subject.need_to_know.begin(), subject.need_to_know.end());
    std::vector<std::string_view> comps(subject.compartments.begin(), subject.compartments.end());
    RequestView request;
    request.action = Action::kRead;
    request.at = at;
    request.subject = SubjectView{party, subject.clearance, ntk, comps};
    request.object = facts.View();
    if (destruction_aside) {
      request.object.destroyed_at.reset();
    } else if (request.object.destroyed_at && *request.object.destroyed_at > at) {
      request.object.destroyed_at = at;
    }
    const Decision d = engine.Decide(request);
    if (explain != nullptr) *explain = engine.Explain(request, d);
    return d;
  }

  // When operations run for a subject (Node::set_actor), the subject must be allowed to read an
  // object to act on it (`destruction_aside`: as DecideRead). A refusal is logged as a denial of
  // `op` (to `to`, if any).
  Status CheckActor(std::string_view op, const ObjectRecord& o, std::string_view to = {},
                    bool destruction_aside = false) {
    if (actor.empty()) return OkStatus();
    ACCORD_ASSIGN_OR_RETURN(SubjectRecord subject, store->GetSubject(actor));
    ACCORD_ASSIGN_OR_RETURN(Facts facts, LoadFacts(o));
    std::vector<std::string> explain;
    const Instant at = clock->Now();
    const Decision d = DecideRead(subject, facts, at, &explain, destruction_aside);
    if (d.allow) return OkStatus();
    AuditEntry e = RefusalEntry(op, o.id, ReasonName(d.reason), to);
    e.at = at;
    return Refuse(e, Deny(d.reason,
                          fmt::format("`{}` may not {} `{}`: only a subject who may read it may",
                                      actor, op, o.id),
                          explain)
                         .value());
  }

  // `id`'s copy for `op` (to `to`, if any), unless it was destroyed: that is a refusal of `op`,
  // logged (Refuse).
  Result<ObjectRecord> GetLiveObject(std::string_view op, const std::string& id,
                                     std::string_view to = {}) {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, store->GetObject(id));
    if (o.destroyed_at) return RefuseDestroyed(op, o, to);
    return o;
  }

  tl::unexpected<Error> RefuseDestroyed(std::string_view op, const ObjectRecord& o,
                                        std::string_view to = {}) {
    return Refuse(RefusalEntry(op, o.id, ReasonName(Reason::kDestroyed), to),
                  Deny(Reason::kDestroyed,
                       fmt::format("this node's copy of `{}` was destroyed at {}", o.id,
                                   FormatInstant(*o.destroyed_at)),
                       {})
                      .value());
  }

  // `o`'s data key; `label` is EncodeLabel(LabelOf(o)), which the key is bound to.
  Result<SecretBytes> DataKey(const ObjectRecord& o, ByteView label) const {
    auto key = kek->Unwrap(o.wrapped_key, DataKeyAd(label));
    if (!key && key.error().code == Code::kUnavailable) {
      // A token that cannot answer now (decision #149): no sign of damage.
      return Fail(Code::kUnavailable,
                  fmt::format("object `{}`: the key store: {}", o.id, key.error().message));
    }
    if (!key) {
      return Fail(Code::kDataLoss, fmt::format("object `{}`: stored label or key fails its "
                                               "integrity check",
                                               o.id));
    }
    return key;
  }

  // Seals `payload` under a fresh data key for `o`'s label; fills ciphertext and wrapped_key.
  Status Seal(ObjectRecord& o, ByteView payload) const {
    SecretBytes dk = NewDataKey();
    const Bytes label = node_internal::EncodeLabel(LabelOf(o));  // the key's and the payload's
    ACCORD_ASSIGN_OR_RETURN(Bytes wrapped, kek->Wrap(dk, DataKeyAd(label)));
    ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(dk)));
    ACCORD_ASSIGN_OR_RETURN(o.ciphertext, aead.Encrypt(payload, label));
    o.wrapped_key = std::move(wrapped);
    return OkStatus();
  }

  Result<SecretBytes> Open(const ObjectRecord& o) const {
    const Bytes label = node_internal::EncodeLabel(LabelOf(o));  // the key's and the payload's
    ACCORD_ASSIGN_OR_RETURN(SecretBytes dk, DataKey(o, label));
    ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(dk)));
    auto plain = aead.Decrypt(o.ciphertext, label);
    if (!plain) {
      return Fail(Code::kDataLoss,
                  fmt::format("object `{}`: stored ciphertext fails its integrity check", o.id));
    }
    return plain;
  }

  // What a reader gets of `o`: its sealed content without the salt its label commits to (an
  // object made before decision #109 has neither).
  Result<SecretBytes> OpenPayload(const ObjectRecord& o) const {
    ACCORD_ASSIGN_OR_RETURN(SecretBytes content, Open(o));
    if (o.commitment.empty()) return content;
    if (content.size() < node_internal::kContentSaltBytes) {
      return Fail(Code::kDataLoss, fmt::format("object `{}`: the sealed content is shorter "
                                               "than its salt",
                                               o.id));
    }
    content.RemovePrefix(node_internal::kContentSaltBytes);
    return content;
  }

  // A refusal of `op` (to `to`, if any), logged, unless this node originated `o`: only the
  // originator may `what` (DESIGN §3, `not-originator`).
  Status RequireOriginator(std::string_view op, const ObjectRecord& o, std::string_view what,
                           std::string_view to = {}) {
    if (o.originator == party) return OkStatus();
    return Refuse(
        RefusalEntry(op, o.id, kNotOriginator, to),
        Error{Code::kPermissionDenied, fmt::format("{}: only `{}`, the originator of `{}`, may {}",
                                                   kNotOriginator, o.originator, o.id, what)});
  }

  Result<PartnerRecord> Partner(const std::string& p) {
    auto partner = store->GetPartner(p);
    if (!partner && partner.error().code == Code::kNotFound) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("no public keys for `{}`: import them with `accord keys import`", p));
    }
    return partner;
  }

  std::string LevelId(int32_t party_index, int32_t level) const {
    return engine.party(party_index).levels[static_cast<size_t>(level)].id;
  }

  Envelope Notice(const NoticeBody& body) const {
    return node_internal::SealEnvelope(body.kind, party, node_internal::EncodeNoticeBody(body),
                                       sign);
  }

  // --- the audit log ---

  AuditEntry Entry(std::string op, std::string object = {}) const {
    AuditEntry e;
    e.op = std::move(op);
    e.at = clock->Now();
    e.party = party;
    e.subject = actor;
    e.object = std::move(object);
    return e;
  }

  // The entry of a refusal of `op` on `object` (to `to`, if any) for `reason`.
  AuditEntry RefusalEntry(std::string_view op, std::string object, std::string_view reason,
                          std::string_view to = {}) const {
    AuditEntry e = Entry(std::string(op), std::move(object));
    e.decision = "deny";
    e.reason = std::string(reason);
    if (!to.empty()) e.to = std::string(to);
    return e;
  }

  // Appends inside the caller's transaction.
  Status Log(const AuditEntry& e) {
    ACCORD_RETURN_IF_ERROR(log.Append(e));
    return OkStatus();
  }

  // Whether a failure is no refusal of the operation, and is not logged as one (decision #154):
  // one that may pass (a key store that cannot answer now, kUnavailable; a failure of this
  // node's own, kInternal: the store refusing a row, an I/O error), after which the caller tries
  // again, or one that finds the work done already (kAlreadyExists: a replay, logged once).
  static bool MayPass(const Error& error) {
    return error.code == Code::kUnavailable || error.code == Code::kInternal ||
           error.code == Code::kAlreadyExists;
  }

  // `entry`, an allowed decision of an operation this node then could not make, made the refusal
  // it became: `cause` (data-loss: the copy does not open; failed-precondition or
  // permission-denied: the evidence a forward needs is missing or does not match) is its reason,
  // and no agreement or marking was applied.
  static void AsUnmade(AuditEntry& entry, const Error& cause) {
    entry.decision = "deny";
    entry.reason = std::string(CodeName(cause.code));
    entry.agreement.clear();
    entry.marking.clear();
  }

  // Runs `make`, what an allowed release or forward does after its decision (find the partner's
  // keys, gather the evidence, open and re-wrap the copy, commit and queue the package). A
  // failure that stays is logged as the operation refused, with its cause (AsUnmade), as an
  // allowed read whose copy does not open is; one that may pass (MayPass) is not. Whatever
  // `make` wrote before it failed was a savepoint of its own, already rolled back (Transact).
  Result<Bytes> MakeOrRefuse(const AuditEntry& allowed,
                             const std::function<Result<Bytes>()>& make) {
    Result<Bytes> out = make();
    if (out || MayPass(out.error())) return out;
    AuditEntry entry = allowed;
    AsUnmade(entry, out.error());
    return Refuse(entry, std::move(out).error());
  }

  // Logs a refusal and returns `error`. Inside Decided, the entry is a savepoint of the
  // operation's transaction, which then commits; otherwise, a transaction of its own. (Through
  // Transact either way: after SQLite rolled a transaction back by itself, an I/O error say, a
  // savepoint is refused rather than run outside it.)
  tl::unexpected<Error> Refuse(const AuditEntry& e, Error error) {
    if (auto logged = Transact([&] { return Log(e); }); !logged) {
      error.message += " (logging the refusal failed: " + logged.error().message + ")";
    } else if (refusal_logged != nullptr) {
      *refusal_logged = true;
    }
    return tl::unexpected(std::move(error));
  }

  // kInvalidArgument unless `level` is one of `originator`'s levels in this node's policy.
  Status CheckLevel(const std::string& originator, const std::string& level) const {
    const int32_t p = engine.PartyIndex(originator);
    if (p < 0 || engine.party(p).LevelIndex(level) < 0) {
      return Fail(Code::kInvalidArgument, fmt::format("unknown level `{}`", level));
    }
    return OkStatus();
  }

  // CheckLevel for an originator's reclassification that came to this node: a level this
  // node's policy does not know yet waits (kUnavailable: the sender tries again) until the
  // operator brings the policy up to the originator's, as a consent for an unknown party does
  // (decision #129), instead of being refused for good.
  Status CheckReceivedLevel(const std::string& originator, const std::string& level) const {
    if (CheckLevel(originator, level)) return OkStatus();
    return Fail(Code::kUnavailable,
                fmt::format("`{}` reclassified to `{}`, a level this node's policy does not know "
                            "yet: it is taken once the policy names that level",
                            originator, level));
  }

  // The refusal's entry of a fork in `partner`'s log: `checkpoint` is the signed checkpoint no
  // consistency proof connects to the one this node cosigned (WitnessCheckpoint,
  // ProveCheckpoints).
  AuditEntry ForkEntry(std::string partner, std::string_view checkpoint) const {
    AuditEntry e = Entry("witness");
    e.decision = "deny";
    e.reason = "fork";
    e.from = std::move(partner);
    e.digest = HexEncode(Sha256(AsBytes(checkpoint)));
    return e;
  }

  // The entry of a notice taken from its issuer (the receiving node's `receive`).
  AuditEntry NoticeEntry(const NoticeBody& body, ByteView raw) const {
    AuditEntry e = Entry("receive", body.object_id);
    e.decision = "allow";
    e.reason = body.kind;
    e.from = body.by;
    e.package = body.id;
    e.digest = HexEncode(Sha256(raw));
    if (body.kind == "reclassify") {
      e.level = body.level;
      e.version = std::to_string(body.version);
    }
    return e;
  }

  // A decision's entry.
  AuditEntry DecisionEntry(std::string op, const std::string& object, const Decision& d) const {
    AuditEntry e = Entry(std::move(op), object);
    e.decision = d.allow ? "allow" : "deny";
    e.reason = std::string(ReasonName(d.reason));
    if (d.allow && d.agreement >= 0) e.agreement = engine.agreement(d.agreement).id;
    if (d.allow && d.marking.party >= 0 && d.marking.level >= 0) {
      e.marking =
          engine.party(d.marking.party).id + "/" + LevelId(d.marking.party, d.marking.level);
    }
    return e;
  }

  // The log's proof that entry `index` is in it: a fresh checkpoint, the entry, the path.
  Result<LogEvidence> Evidence(uint64_t index) {
    LogEvidence ev;
    ACCORD_ASSIGN_OR_RETURN(ev.checkpoint, log.Checkpoint(log_signer));
    ACCORD_ASSIGN_OR_RETURN(auto parsed, note::Parse(ev.checkpoint));
    ACCORD_ASSIGN_OR_RETURN(auto cp, note::ParseCheckpoint(parsed.text));
    ev.index = index;
    ACCORD_ASSIGN_OR_RETURN(auto entries, store->ReadLogEntries(index, 1));
    ev.entry = std::move(entries.front());
    ACCORD_ASSIGN_OR_RETURN(ev.proof, log.Inclusion(index, cp.size));
    return ev;
  }

  // What the entry a partner sends as evidence must say, beyond naming the package and the
  // partner; an empty field is not checked.
  struct LoggedAs {
    std::string_view op{};
    std::string_view object{};
    std::string_view from{};
    std::string_view to{};
    std::string_view digest{};
    std::string_view agreement{};
    bool allowed = false;  // a decision that allowed it
  };

  // Refuses an envelope dated more than the skew allowed before this node last witnessed, from
  // the sender itself, a checkpoint of the sender's log without the envelope's entry: the entry,
  // and so the decision, came later than the date says (decision #108).
  Status CheckNotBackdated(const Envelope& env, Instant at);
  // The same for entry `index` of `signer`'s log, dated `at`; `what` begins the message.
  Status CheckLoggedAfter(const std::string& signer, uint64_t index, Instant at,
                          std::string_view what);

  // Checks a partner's evidence that it logged `package_id`: its checkpoint is signed by its key,
  // the entry names the package and says what `logged_as` says, and is in the tree the
  // checkpoint commits to. So a package cannot stand on an entry that logged something else
  // (a denied read, a release of another object) under its id.
  Status CheckEvidence(const Envelope& env, const PartnerRecord& sender,
                       const std::string& package_id, const LoggedAs& logged_as) {
    if (!env.log) {
      return Fail(Code::kPermissionDenied,
                  fmt::format("`{}` sent no proof that it logged `{}`", env.signer, package_id));
    }
    ACCORD_ASSIGN_OR_RETURN(const PartnerVerifiers* of_sender, VerifiersOf(sender));
    ACCORD_RETURN_IF_ERROR(CheckLogged(*env.log, env.signer, *of_sender, package_id, logged_as));
    return OkStatus();
  }

  // The core of CheckEvidence, for an entry of `signer`'s log that `keys` verify: the entry, once
  // checked. An empty `package_id` is not checked (an entry named by what it logged).
  Result<AuditEntry> CheckLogged(const LogEvidence& ev, const std::string& signer,
                                 const PartnerVerifiers& keys, const std::string& package_id,
                                 const LoggedAs& logged_as) {
    const std::string about = package_id.empty()
                                  ? fmt::format("its {} of `{}`", logged_as.op, logged_as.object)
                                  : fmt::format("`{}`", package_id);
    auto opened = note::Open(ev.checkpoint, std::span<const note::Verifier>(&keys.log, 1));
    if (!opened) {
      return Fail(Code::kDataLoss, fmt::format("the log checkpoint is not signed by `{}`: {}",
                                               signer, opened.error().message));
    }
    ACCORD_ASSIGN_OR_RETURN(auto cp, note::ParseCheckpoint(opened->text));
    auto entry = node_internal::DecodeEntry(ev.entry);
    if (cp.origin != node_internal::LogOrigin(signer) || !entry ||
        (!package_id.empty() && entry->package != package_id) || entry->party != signer) {
      return Fail(Code::kDataLoss, fmt::format("`{}`'s log entry is not for {}", signer, about));
    }
    const auto differs = [](std::string_view want, const std::string& got) {
      return !want.empty() && want != got;
    };
    if (differs(logged_as.op, entry->op) || differs(logged_as.object, entry->object) ||
        differs(logged_as.from, entry->from) || differs(logged_as.to, entry->to) ||
        differs(logged_as.digest, entry->digest) ||
        differs(logged_as.agreement, entry->agreement) ||
        (logged_as.allowed && entry->decision != "allow")) {
      return Fail(Code::kDataLoss,
                  fmt::format("`{}`'s log entry for {} logged something else: {} {} of `{}` "
                              "(from `{}` to `{}`, under `{}`)",
                              signer, about, entry->op, entry->decision, entry->object, entry->from,
                              entry->to, entry->agreement));
    }
    if (auto s = merkle::VerifyInclusion(merkle::LeafHash(ev.entry), ev.index, cp.size, ev.proof,
                                         cp.root);
        !s) {
      return Fail(Code::kDataLoss,
                  fmt::format("the entry is not in `{}`'s log: {}", signer, s.error().message));
    }
    ACCORD_RETURN_IF_ERROR(KeepShown(cp, signer, ev.checkpoint));
    return std::move(*entry);
  }

  // Keeps `cp`, a checkpoint of `signer`'s log signed by its key (`signed_note`, as it came):
  // the signer's word that this is its log, kept until a consistency proof shows it on the
  // chain this node witnesses, not a private branch (decision #86).
  Status KeepShown(const note::Checkpoint& cp, std::string_view signer, std::string signed_note) {
    // An empty log is consistent with every later one: nothing to prove, nothing kept (the
    // store keeps checkpoints of one entry or more).
    if (cp.size == 0) return OkStatus();
    if (cp.size > static_cast<uint64_t>(INT64_MAX)) {
      return Fail(Code::kDataLoss,
                  fmt::format("`{}`'s log checkpoint has {} entries: too many", signer, cp.size));
    }
    return store->KeepShownCheckpoint(ShownCheckpointRecord{
        cp.origin, cp.size, cp.root, std::move(signed_note), SystemClock().Now()});
  }

  // A notice of `kind` about `o`, issued by this node now.
  NoticeBody NewNotice(std::string kind, const ObjectRecord& o) const {
    NoticeBody body;
    body.id = node_internal::NewId();
    body.kind = std::move(kind);
    body.object_id = o.id;
    body.originator = o.originator;
    body.by = party;
    body.at = clock->Now();
    return body;
  }

  // The entry of `env`, a notice of `body` this node signed: at the notice's instant (one
  // reading of the clock for both), naming it, with the digest of its signed body, as a
  // package's entry has (SendPackage), so that the log commits to what the notice says.
  AuditEntry NoticeEntrySent(const NoticeBody& body, const Envelope& env) const {
    AuditEntry e = Entry(body.kind, body.object_id);
    e.at = body.at;
    e.package = body.id;
    e.digest = HexEncode(Sha256(env.body));
    return e;
  }

  // A release or forward package of `facts`' object for `to`, as decision `d` allows it.
  PackageBody NewPackage(std::string kind, const std::string& to, Instant at, const Decision& d,
                         const Facts& facts) const {
    PackageBody body;
    body.id = node_internal::NewId();
    body.kind = std::move(kind);
    body.from = party;
    body.to = to;
    body.at = at;
    body.agreement = engine.agreement(d.agreement).id;
    body.label = facts.label();
    body.marking_party = to;
    body.marking_level = LevelId(d.marking.party, d.marking.level);
    return body;
  }

  // The parties that hold a copy of `object_id` as this node knows: those it released or
  // forwarded it to, and those the originator consented to (they may hold it through a hub).
  Result<std::vector<std::string>> Holders(const std::string& object_id) {
    ACCORD_ASSIGN_OR_RETURN(auto releases, store->ListReleases(object_id));
    ACCORD_ASSIGN_OR_RETURN(auto forwards, store->ListForwards(object_id));
    ACCORD_ASSIGN_OR_RETURN(auto consents, store->ListConsents(object_id));
    std::vector<std::string> out;
    for (const auto& r : releases) out.push_back(r.to);
    for (const auto& f : forwards) out.push_back(f.to);
    for (const auto& c : consents) out.push_back(c.to);
    std::erase(out, party);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  // What a listing shows of `listing`: its label, payload size and the parties it went to.
  Result<ObjectSummary> Summarize(ObjectListing listing) {
    ObjectRecord& o = listing.object;
    ObjectSummary s{std::move(o.id),
                    std::move(o.originator),
                    std::move(o.level),
                    o.version,
                    std::move(o.topics),
                    std::move(o.compartments),
                    std::move(o.rel_to),
                    std::move(o.received_from),
                    o.destroyed_at,
                    PayloadBytes(listing.ciphertext_bytes, !o.commitment.empty()),
                    {}};
    ACCORD_ASSIGN_OR_RETURN(auto releases, store->ListReleases(s.id));
    ACCORD_ASSIGN_OR_RETURN(auto forwards, store->ListForwards(s.id));
    for (const auto& r : releases) {
      if (r.to != party) s.held_by.push_back(r.to);
    }
    for (const auto& f : forwards) {
      if (f.to != party) s.held_by.push_back(f.to);
    }
    std::sort(s.held_by.begin(), s.held_by.end());
    s.held_by.erase(std::unique(s.held_by.begin(), s.held_by.end()), s.held_by.end());
    return s;
  }

  // Writes `records` and `entry` in one transaction with `env` (what this node sends, with the
  // log's proof of that entry) queued in the outbox for each of `recipients`; returns `env`.
  Result<Bytes> CommitAndSend(Envelope env, const AuditEntry& entry,
                              const std::function<Status()>& records,
                              std::span<const std::string> recipients) {
    Bytes out;
    ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(records());
      ACCORD_ASSIGN_OR_RETURN(const uint64_t index, log.Append(entry));
      ACCORD_ASSIGN_OR_RETURN(out, WithEvidence(env, index));
      const int64_t now_us = SystemClock().Now().micros;
      for (const std::string& to : recipients) {
        OutboxRecord r;
        r.id = entry.package;
        r.to = to;
        r.kind = env.kind;
        r.object_id = entry.object;
        r.envelope = out;
        r.queued_us = now_us;
        ACCORD_RETURN_IF_ERROR(store->Enqueue(r));
      }
      return OkStatus();
    }));
    return out;
  }

  // Completes `body` with the object's ciphertext and its data key wrapped to `partner`, signs
  // it, and commits `records` with `entry` (naming the package) before sending it.
  Result<Bytes> SendPackage(PackageBody body, const ObjectRecord& o, const PartnerRecord& partner,
                            AuditEntry entry, const std::function<Status()>& records) {
    ACCORD_ASSIGN_OR_RETURN(SecretBytes dk, DataKey(o, node_internal::EncodeLabel(LabelOf(o))));
    ACCORD_ASSIGN_OR_RETURN(body.wrapped_key,
                            WrapToParty(partner.wrap_public, dk, PackageKeyAd(body.id, body.to)));
    body.ciphertext = o.ciphertext;
    const Bytes encoded = node_internal::EncodePackageBody(body);
    entry.package = body.id;
    entry.digest = HexEncode(Sha256(encoded));
    const std::string to[] = {body.to};
    return CommitAndSend(node_internal::SealEnvelope(body.kind, party, encoded, sign), entry,
                         records, to);
  }

  // Encodes `env` with the evidence for log entry `index` (also inside the transaction that
  // appended it).
  Result<Bytes> WithEvidence(Envelope env, uint64_t index) {
    ACCORD_ASSIGN_OR_RETURN(env.log, Evidence(index));
    return node_internal::EncodeEnvelope(env);
  }

  Result<ReceiveResult> ReceivePackage(const Envelope& env, const PackageBody& body, ByteView raw,
                                       const PartnerRecord& sender);
  Status CheckNotAhead(std::string_view what, Instant at, Instant now) const;
  Status CheckReporter(const std::string& object_id, const std::string& by) const;
  Result<ReceiveResult> ReceiveNotice(const Envelope& env, const NoticeBody& body, ByteView raw,
                                      const PartnerRecord& sender);
  Result<ReceiveResult> ReceiveReceipt(const Envelope& env, const ReceiptBody& body,
                                       const PartnerRecord& sender);
  Result<ReceiveResult> KeepOrder(const NoticeBody& body, ByteView raw);
  struct ForwardProof {
    ReleaseRecord release;                           // to the forwarder
    ConsentRecord consent;                           // to this node
    std::optional<ReclassificationRecord> attached;  // when the label is newer
  };
  Result<ForwardProof> CheckForward(const PackageBody& body);
  // The originator's log evidence of `held`, its release of `o` to this node, as it came with
  // the release package: what a forward shows for the release it rests on (decision #85).
  Result<LogEvidence> ReleaseEvidence(const ObjectRecord& o, const ReleaseRecord& held);
  // A notice of `kind` carried inside a forward, checked to be signed by `originator`.
  Result<NoticeBody> OriginatorsNotice(ByteView raw, std::string_view kind,
                                       const std::string& originator, const PartnerVerifiers& keys);
  // What a forward of `o` under the originator's `consent_notice` carries to prove its label
  // (decision #84): nothing when the consent names the same version, the originator's
  // reclassification notice when the copy held here is newer.
  Result<Bytes> LabelProof(const ObjectRecord& o, ByteView consent_notice);
  struct KeptOrders {
    std::optional<NoticeBody> destroyed;
    std::optional<std::pair<NoticeBody, Bytes>> reclassified;  // the latest, with its envelope
    std::vector<ConsentRecord> consents;                       // in the order they came
  };
  Result<KeptOrders> OrdersFor(const std::string& object_id, const std::string& originator);
  Result<Bytes> MakeReceipt(const std::string& id, const std::string& kind,
                            const std::string& object_id, const std::string& from, ByteView raw,
                            uint64_t index);
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

const std::string& Node::party() const { return impl_->party; }
Instant Node::Now() const { return impl_->clock->Now(); }
const Engine& Node::engine() const { return impl_->engine; }
Store& Node::store() {
  impl_->group_subjects.clear();  // the caller may change a subject behind Subject's back
  return *impl_->store;
}
void Node::set_actor(std::string subject) { impl_->actor = std::move(subject); }
const std::string& Node::actor() const { return impl_->actor; }

Status Node::Group(const std::function<void()>& body) {
  ACCORD_RETURN_IF_ERROR(impl_->Group(body, /*durable=*/false));
  impl_->groups_committed.fetch_add(1);
  return OkStatus();
}

Status Node::GroupDurable(const std::function<void()>& body) {
  return impl_->Group(body, /*durable=*/true);
}

Status Node::SyncCommits() {
  const uint64_t committed = impl_->groups_committed.load();
  ACCORD_RETURN_IF_ERROR(impl_->store->SyncCommits());
  // Monotonic: a slower concurrent call must not move it back.
  uint64_t synced = impl_->groups_synced.load();
  while (synced < committed && !impl_->groups_synced.compare_exchange_weak(synced, committed)) {
  }
  return OkStatus();
}

Status Node::SyncIfBehind() {
  if (impl_->groups_synced.load() < impl_->groups_committed.load()) return SyncCommits();
  return impl_->store->CheckWritable();  // nothing to sync, but a sync failed: see Store
}

Result<uint64_t> Node::DurableLogSize() {
  ACCORD_RETURN_IF_ERROR(SyncIfBehind());
  return impl_->log.Size();
}

Status Node::VerifyOwnEnvelope(ByteView envelope) const {
  auto env = node_internal::ParseEnvelope(envelope, envelope.size());
  if (!env) return Fail(Code::kDataLoss, "not an envelope: " + env.error().message);
  if (env->signer != impl_->party) {
    return Fail(Code::kDataLoss, fmt::format("signed by `{}`, not by this node", env->signer));
  }
  if (!impl_->sign.verifying_key().Verify(
          node_internal::SignedMessage(env->kind, env->signer, env->body), env->signature)) {
    return Fail(Code::kDataLoss, "its signature does not verify with this node's key");
  }
  return OkStatus();
}

Result<Bytes> Node::StoredReceipt(const std::string& from, const std::string& package_id) {
  ACCORD_ASSIGN_OR_RETURN(ReceiptRecord r,
                          impl_->store->GetReceipt(package_id, from, impl_->party));
  // It may have been made in a group commit not yet synced: a receipt leaves only once what it
  // acknowledges is durable.
  ACCORD_RETURN_IF_ERROR(SyncIfBehind());
  return std::move(r.bytes);
}

Result<EnvelopeInfo> InspectEnvelope(ByteView bytes, size_t max_bytes) {
  ACCORD_ASSIGN_OR_RETURN(node_internal::Envelope env,
                          node_internal::ParseEnvelope(bytes, max_bytes));
  ACCORD_ASSIGN_OR_RETURN(const EnvelopeBody body, ParseBody(env));
  return InfoOf(env, body);
}

// --- init and open ---------------------------------------------------------------------------

namespace {

// Made first in a home being created (`node init`) or copied (`node backup`), and removed last:
// a directory that still has it holds no home, whatever else it holds, since the command was
// stopped part way (killed, or the power cut).
constexpr std::string_view kUnfinished = ".unfinished";

// kFailedPrecondition when `dir` is a home whose making did not finish.
Status RefuseUnfinished(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / kUnfinished, ec)) return OkStatus();
  return Fail(
      Code::kFailedPrecondition,
      fmt::format("`{}` holds no usable home: its making did not finish (`accord node init` "
                  "or `node backup` was stopped part way). Remove the directory and make "
                  "it again; a PKCS#11 home's key may be left on its token (destroy it, or "
                  "give `node init` another --pkcs11-key-label)",
                  dir.string()));
}

// `path` as a directory's path without a trailing separator, so that its parent is the directory
// that holds it ("KOR/" has "KOR" as its parent path otherwise).
fs::path DirectoryPath(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p;
}

// The directory that holds `dir`, to make `dir`'s own entry durable.
std::string ParentOf(const fs::path& dir) {
  return dir.has_parent_path() ? dir.parent_path().string() : std::string(".");
}

// The mark, made under its own name at once (a temporary name renamed would leave a window in
// which the directory holds a file and no mark), then made durable with its entry. Whoever made
// it owns the making: `made` is set once this process created it, even should writing it fail
// after, so that the caller removes it. kAlreadyExists when another process made it (two
// `node init` on one empty directory), and the caller then removes nothing.
Status MarkUnfinished(const fs::path& dir, bool& made) {
  const std::string path = (dir / kUnfinished).string();
  constexpr std::string_view kText = "accord: the making of this home did not finish; no home\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) {
      return Fail(Code::kAlreadyExists,
                  fmt::format("`{}` is being made by another process (it holds `{}` now): "
                              "nothing it holds was touched",
                              dir.string(), kUnfinished));
    }
    return Fail(Code::kUnavailable,
                fmt::format("cannot make `{}`: {}", path, std::strerror(error)));
  }
  made = true;
  const ssize_t n = ::write(fd, kText.data(), kText.size());
  int error = 0;
  if (n != static_cast<ssize_t>(kText.size())) {
    error = n < 0 ? errno : EIO;  // a short write sets no errno
  } else if (::fsync(fd) != 0) {
    error = errno;
  }
  ::close(fd);
  if (error != 0) {
    return Fail(Code::kUnavailable,
                fmt::format("cannot write `{}`: {}", path, std::strerror(error)));
  }
  return SyncPath(dir.string());
}

// Removes what a failed making put in `dir` (marked by this process), then the mark and `dir`:
// the mark only once everything else is gone and that is durable, so that a removal that fails
// or is cut short leaves a directory that is still refused as a home. False when the mark is
// left; once it is gone, `dir` is removed if it is empty.
bool RemoveUnfinished(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> made;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (it->path().filename() != kUnfinished) made.push_back(it->path());
  }
  bool all = !ec;
  for (const fs::path& p : made) {
    fs::remove_all(p, ec);
    all = all && !ec;
  }
  if (!all || !SyncPath(dir.string())) return false;
  fs::remove(dir / kUnfinished, ec);
  if (ec) return false;
  fs::remove(dir, ec);  // should it stay, an empty directory is no home and harms nothing
  return true;
}

// The end of the making of `dir`: the mark goes, durably. Should the removal's sync fail, the
// mark is gone all the same: what `dir` holds is whole (the caller keeps it).
Status MarkFinished(const fs::path& dir) {
  if (::unlink((dir / kUnfinished).c_str()) != 0) {
    return Fail(
        Code::kUnavailable,
        fmt::format("cannot remove `{}`: {}", (dir / kUnfinished).string(), std::strerror(errno)));
  }
  return SyncPath(dir.string());
}

// The end of a making that `made` says how it went: on success the mark goes, and `kept` is
// set. On a failure before the mark went, what this process made is removed (only when it made
// the mark: `marked`); after it, `dir` is whole and kept (`kept`), and the error says so.
Status EndMaking(const fs::path& dir, bool marked, Status made, bool& kept) {
  kept = false;
  if (made) {
    made = MarkFinished(dir);
    std::error_code ec;
    kept = made || !fs::exists(dir / kUnfinished, ec);
    if (!made && kept) {
      return Fail(made.error().code, fmt::format("`{}` is made and whole, but {}", dir.string(),
                                                 made.error().message));
    }
  }
  if (!made) {
    std::error_code ec;
    if (!marked) {
      fs::remove(dir, ec);  // only if empty: nothing of another process's is touched
    } else if (!RemoveUnfinished(dir)) {
      return Fail(made.error().code,
                  fmt::format("{}; what was made could not all be removed: `{}` is left, "
                              "marked as unfinished (remove it)",
                              made.error().message, dir.string()));
    }
  }
  return made;
}

// The files of the home other than the store, relative to it, sorted.
Result<std::vector<fs::path>> HomeFiles(const fs::path& home) {
  // The store's files, and the lock of a node serving the home (nothing of the home's state).
  static constexpr std::string_view kNotCopied[] = {"state.db", "state.db-wal", "state.db-shm",
                                                    "state.db-journal", "serve.lock"};
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(home, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path relative = it->path().lexically_relative(home);
    if (std::find(std::begin(kNotCopied), std::end(kNotCopied), relative.string()) !=
        std::end(kNotCopied)) {
      continue;
    }
    const fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    if (!fs::is_directory(status) && !fs::is_regular_file(status)) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("`{}` in the home is neither a file nor a directory: not copied",
                              relative.string()));
    }
    files.push_back(relative);
  }
  if (ec) {
    return Fail(Code::kUnavailable,
                fmt::format("cannot list the home `{}`: {}", home.string(), ec.message()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<HomeBackup> BackupHome(const std::string& home_dir, const std::string& out_dir) {
  const fs::path home(home_dir), out = DirectoryPath(out_dir);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (!fs::is_regular_file(home / "state.db", ec)) {
    return Fail(Code::kNotFound, fmt::format("`{}` is not a home: it has no store", home_dir));
  }
  ACCORD_ASSIGN_OR_RETURN(const std::vector<fs::path> files, HomeFiles(home));
  // A new directory, made here (not one found, nor a link to one), so that a failure removes
  // only what this made.
  const fs::path parent = ParentOf(out);
  fs::create_directories(parent, ec);
  if (ec || ::mkdir(out.c_str(), 0700) != 0) {
    const int error = errno;
    if (!ec && error == EEXIST) {
      return Fail(Code::kAlreadyExists,
                  fmt::format("`{}` exists already: a backup needs a new directory", out_dir));
    }
    return Fail(Code::kInvalidArgument, fmt::format("cannot create `{}`: {}", out_dir,
                                                    ec ? ec.message() : std::strerror(error)));
  }
  bool marked = false;
  auto made = [&]() -> Result<HomeBackup> {
    if (::chmod(out.c_str(), 0700) != 0) {  // whatever the umask
      return Fail(Code::kInvalidArgument,
                  fmt::format("cannot make `{}` private: {}", out_dir, std::strerror(errno)));
    }
    ACCORD_RETURN_IF_ERROR(MarkUnfinished(out, marked));
    HomeBackup backup;
    ACCORD_ASSIGN_OR_RETURN(
        backup.store, BackupSqliteStore((home / "state.db").string(), (out / "state.db").string()));
    for (const fs::path& file : files) {
      const fs::path from = home / file, to = out / file;
      const bool directory = fs::is_directory(fs::symlink_status(from, ec));
      if (directory) {
        fs::create_directory(to, from, ec);  // with the directory's permissions, less the umask
      } else {
        fs::copy_file(from, to, fs::copy_options::none, ec);  // with the file's permissions
      }
      // A file gone since the listing (a port file rewritten by a server) is not copied.
      if (ec == std::errc::no_such_file_or_directory && !fs::exists(from)) continue;
      if (ec) {
        return Fail(Code::kUnavailable,
                    fmt::format("cannot copy `{}`: {}", from.string(), ec.message()));
      }
      backup.files.push_back(directory ? file.string() + "/" : file.string());
    }
    // The copy's files and directories, then the new directory's own entry.
    ACCORD_RETURN_IF_ERROR(SyncTree(out, "the backup"));
    ACCORD_RETURN_IF_ERROR(SyncPath(parent.string()));
    return backup;
  }();
  // The mark goes last (its removal syncs `out`), or what was made goes.
  bool kept = false;
  const Status ended =
      EndMaking(out, marked, made ? OkStatus() : Status(tl::unexpected(made.error())), kept);
  if (!ended) return tl::unexpected(ended.error());
  return made;
}

Status InitNode(NodeInitOptions options) {
  const fs::path home = DirectoryPath(options.home);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (fs::exists(home, ec) && !fs::is_empty(home, ec)) {
    return Fail(
        Code::kAlreadyExists,
        fmt::format("`{}` exists and is not empty: a home needs a new directory", options.home));
  }
  ACCORD_ASSIGN_OR_RETURN(Engine engine, LoadEngine(options.policy_dir));
  const int32_t me = engine.PartyIndex(options.party);
  if (me < 0) {
    return Fail(Code::kInvalidArgument, fmt::format("party `{}` is not in the policy `{}`",
                                                    options.party, options.policy_dir));
  }
  fs::create_directories(home, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot create `{}`: {}", options.home, ec.message()));
  }
  // An empty directory someone else made, and could still change, is no home of this user's
  // (root's chmod succeeds on anyone's: the owner is checked too).
  struct stat st {};
  if (::chmod(home.c_str(), 0700) != 0 || ::stat(home.c_str(), &st) != 0) {
    const int error = errno;
    return Fail(Code::kInvalidArgument, fmt::format("cannot make `{}` private (mode 0700): {}",
                                                    options.home, std::strerror(error)));
  }
  if (st.st_uid != ::geteuid()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` belongs to another user (uid {}): a home must be its "
                            "own user's",
                            options.home, st.st_uid));
  }
  // Any failure from here on removes what was made, so a half-made home never exists; one
  // stopped part way keeps its mark, and is refused.
  std::optional<Bytes> token_key;  // the CKA_ID of the key made on the token
  bool marked = false;
  Status made = [&]() -> Status {
    ACCORD_RETURN_IF_ERROR(MarkUnfinished(home, marked));
    ACCORD_RETURN_IF_ERROR(CopyPolicy(options.policy_dir, home / "policy"));
    std::unique_ptr<KeyEncryptionKey> kek;
    std::string key_store;
    if (options.key_store == KeyStoreKind::kFile) {
      const std::string path = (home / "keystore").string();
      ACCORD_RETURN_IF_ERROR(CreateFileKeyStore(path, options.passphrase, options.scrypt));
      ACCORD_ASSIGN_OR_RETURN(kek, OpenFileKeyStore(path, options.passphrase));
      key_store = "file";
    } else {
      ACCORD_ASSIGN_OR_RETURN(token_key, CreatePkcs11Kek(options.pkcs11));
      ACCORD_ASSIGN_OR_RETURN(kek, OpenPkcs11Kek(options.pkcs11));
      key_store = "pkcs11";
    }
    const SigningKey sign = SigningKey::Generate();
    const WrapKeyPair wrap = WrapKeyPair::Generate();
    SecretBytes identity(64);
    {
      auto out = identity.RevealMutable(InsecureSecretAccess());
      auto s = sign.seed(InsecureSecretAccess()).Reveal(InsecureSecretAccess());
      auto w = wrap.private_key(InsecureSecretAccess()).Reveal(InsecureSecretAccess());
      std::copy(s.begin(), s.end(), out.begin());
      std::copy(w.begin(), w.end(), out.begin() + 32);
    }
    ACCORD_ASSIGN_OR_RETURN(Bytes sealed,
                            kek->Wrap(identity, AsBytes(std::string(kIdentityAd) + options.party)));
    ACCORD_ASSIGN_OR_RETURN(auto store, OpenSqliteStore((home / "state.db").string()));
    ACCORD_RETURN_IF_ERROR(store->Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store->SetMeta("party", options.party));
      ACCORD_RETURN_IF_ERROR(
          store->SetMeta("clock", options.clock == ClockKind::kSimulated ? "simulated" : "system"));
      ACCORD_RETURN_IF_ERROR(store->SetMeta("key_store", key_store));
      if (options.key_store == KeyStoreKind::kPkcs11) {
        ACCORD_RETURN_IF_ERROR(store->SetMeta("pkcs11", Pkcs11Meta(options.pkcs11)));
      }
      ACCORD_RETURN_IF_ERROR(store->SetMeta("identity", Base64Encode(sealed)));
      for (const Subject& s : engine.policy().subjects) {
        if (s.party == options.party) {
          ACCORD_RETURN_IF_ERROR(
              store->PutSubject(SubjectRecord{s.id, s.clearance, s.need_to_know, s.compartments}));
        }
      }
      return OkStatus();
    }));
    // Written whole and made durable with the directory's entries (ReplaceFile).
    ACCORD_RETURN_IF_ERROR(ReplaceFile(
        (home / "public.json").string(),
        node_internal::EncodePublicKeys({options.party, sign.public_key(), wrap.public_key()}),
        0644));
    // The home's own entry, made when the directory was (the policy's and the store's are
    // durable by now), before the mark goes.
    return SyncPath(ParentOf(home));
  }();
  bool kept = false;
  made = EndMaking(home, marked, std::move(made), kept);
  if (!made) {
    if (kept) return made;  // the mark went: the home is whole and kept, with its key
    // The key made on the token seals nothing that is kept: its label is freed for the next try.
    if (token_key) {
      if (Status destroyed = DestroyPkcs11Kek(options.pkcs11, *token_key); !destroyed) {
        return Fail(made.error().code,
                    fmt::format("{} (and the key `{}` made on token `{}` stays there: {})",
                                made.error().message, options.pkcs11.key_label,
                                options.pkcs11.token_label, destroyed.error().message));
      }
    }
    return made;
  }
  return OkStatus();
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options) {
  const fs::path home(options.home);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (!fs::exists(home / "state.db", ec)) {
    return Fail(Code::kNotFound, fmt::format("`{}` is not an accord home (no state.db): create "
                                             "one with `accord node init`",
                                             options.home));
  }
  SqliteOptions store_options;
  store_options.sync_file_for_testing = options.sync_file_for_testing;
  ACCORD_ASSIGN_OR_RETURN(auto store, OpenSqliteStore((home / "state.db").string(), store_options));
  auto meta = [&](const char* key) -> Result<std::string> {
    ACCORD_ASSIGN_OR_RETURN(auto v, store->GetMeta(key));
    if (!v) {
      return Fail(Code::kDataLoss, fmt::format("the home has no `{}` setting", key));
    }
    return *v;
  };
  ACCORD_ASSIGN_OR_RETURN(std::string party, meta("party"));
  ACCORD_ASSIGN_OR_RETURN(std::string clock_kind, meta("clock"));
  std::unique_ptr<Clock> clock;
  if (clock_kind == "simulated") {
    clock = options.at ? std::unique_ptr<Clock>(std::make_unique<FixedClock>(*options.at))
                       : std::make_unique<SystemClock>();
  } else if (options.at) {
    return Fail(Code::kFailedPrecondition,
                "this home runs on the system clock; `--at` is only for homes created with "
                "`--simulate`");
  } else {
    clock = std::make_unique<SystemClock>();
  }
  ACCORD_ASSIGN_OR_RETURN(Engine engine, LoadEngine(home / "policy"));
  // The policy is the operator's to edit (brought up to a partner's, say): one that no longer
  // names this home's party could decide nothing for it.
  if (engine.PartyIndex(party) < 0) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("this home's party `{}` is not in its policy `{}`", party,
                            (home / "policy").string()));
  }
  ACCORD_ASSIGN_OR_RETURN(std::string key_store, meta("key_store"));
  std::unique_ptr<KeyEncryptionKey> kek;
  if (key_store == "pkcs11") {
    ACCORD_ASSIGN_OR_RETURN(std::string settings, meta("pkcs11"));
    ACCORD_ASSIGN_OR_RETURN(Pkcs11Options p11, ParsePkcs11Meta(settings));
    if (options.pin.empty()) {
      return Fail(Code::kInvalidArgument, "this home's KEK is on a PKCS#11 token: a PIN is needed");
    }
    p11.pin = std::move(options.pin);
    ACCORD_ASSIGN_OR_RETURN(kek, OpenPkcs11Kek(p11));
  } else {
    if (options.passphrase.empty()) {
      return Fail(Code::kInvalidArgument, "this home's key store needs a passphrase");
    }
    ACCORD_ASSIGN_OR_RETURN(kek,
                            OpenFileKeyStore((home / "keystore").string(), options.passphrase));
  }
  ACCORD_ASSIGN_OR_RETURN(std::string identity_text, meta("identity"));
  auto sealed = Base64Decode(identity_text);
  if (!sealed) {
    return Fail(Code::kDataLoss, "the home's identity keys are damaged");
  }
  auto identity = kek->Unwrap(*sealed, AsBytes(std::string(kIdentityAd) + party));
  if (!identity || identity->size() != 64) {
    return Fail(Code::kDataLoss, "the home's identity keys fail their integrity check");
  }
  auto bytes = identity->Reveal(InsecureSecretAccess());
  ACCORD_ASSIGN_OR_RETURN(SigningKey sign,
                          SigningKey::FromSeed(SecretBytes::Copy(bytes.first(32))));
  ACCORD_ASSIGN_OR_RETURN(WrapKeyPair wrap,
                          WrapKeyPair::FromPrivate(SecretBytes::Copy(bytes.subspan(32))));
  ACCORD_ASSIGN_OR_RETURN(
      note::Signer log_signer,
      note::Signer::FromSeed(node_internal::LogOrigin(party),
                             sign.seed(InsecureSecretAccess()).Reveal(InsecureSecretAccess())));
  node_internal::AuditLog log(*store);
  const bool system_clock = clock_kind != "simulated";
  auto impl = std::unique_ptr<Impl>(new Impl{options.home,
                                             std::move(party),
                                             std::move(clock),
                                             std::move(engine),
                                             std::move(kek),
                                             std::move(sign),
                                             std::move(wrap),
                                             std::move(store),
                                             options.max_payload_bytes,
                                             std::move(log),
                                             std::move(log_signer),
                                             {}});
  impl->system_clock = system_clock;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

// --- objects ---------------------------------------------------------------------------------

Status Node::Create(const NewObject& object, ByteView payload) {
  Impl& n = *impl_;
  if (object.id.empty() || object.id.size() > 128) {
    return Fail(Code::kInvalidArgument, "an object id is 1 to 128 bytes");
  }
  // An id travels in JSON (packages, log entries, the API's answers), which is UTF-8 text, and
  // people read it: no control or bidirectional formatting character may make it show as
  // another.
  if (!IsPlainText(object.id)) {
    return Fail(Code::kInvalidArgument,
                "an object id is UTF-8 text without control or bidirectional formatting "
                "characters");
  }
  if (payload.size() > n.max_payload) {
    return Fail(Code::kInvalidArgument,
                fmt::format("payload of {} bytes exceeds the limit of {} bytes", payload.size(),
                            n.max_payload));
  }
  const int32_t me = n.engine.PartyIndex(n.party);
  if (n.engine.party(me).LevelIndex(object.level) < 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("unknown level `{}` for party `{}`", object.level, n.party));
  }
  for (const auto& p : object.rel_to) {
    if (n.engine.PartyIndex(p) < 0) {
      return Fail(Code::kInvalidArgument, fmt::format("unknown party `{}` in rel_to", p));
    }
  }
  // What every partner would refuse in a package is refused here, before it is stored.
  ACCORD_RETURN_IF_ERROR(node_internal::CheckLabelList("topics", object.topics));
  ACCORD_RETURN_IF_ERROR(node_internal::CheckLabelList("compartments", object.compartments));
  ACCORD_RETURN_IF_ERROR(node_internal::CheckLabelList("rel_to", object.rel_to));
  ObjectRecord o;
  o.id = object.id;
  o.originator = n.party;
  o.level = object.level;
  o.topics = object.topics;
  o.compartments = object.compartments;
  o.rel_to = object.rel_to;
  o.version = 1;
  o.created_at = Now();
  // What is sealed: a random salt, then the payload. The label commits to both, so that whoever
  // receives the object, from its originator or through a hub, checks it is the content its
  // originator sealed; the salt keeps the commitment from telling anything of the payload
  // (decision #109).
  // The salt is drawn into the content itself, memory that wipes itself: with it, a guess of a
  // short payload could be checked against the commitment, which travels in the clear.
  constexpr size_t kSalt = node_internal::kContentSaltBytes;
  SecretBytes content(kSalt + payload.size());
  const std::span<uint8_t> into = content.RevealMutable(InsecureSecretAccess());
  ACCORD_RETURN_IF_ERROR(TryFillSecretRandom(into.first(kSalt)));
  std::copy(payload.begin(), payload.end(), into.begin() + static_cast<ptrdiff_t>(kSalt));
  o.commitment = node_internal::ContentCommitment(content.Reveal(InsecureSecretAccess()));
  ACCORD_RETURN_IF_ERROR(n.Seal(o, content.Reveal(InsecureSecretAccess())));
  AuditEntry e = n.Entry("create", o.id);
  e.level = o.level;
  e.version = "1";
  return n.Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(n.store->InsertObject(o));
    return n.Log(e);
  });
}

Result<ReadResult> Node::Read(const std::string& subject_id, const std::string& object_id) {
  Impl& n = *impl_;
  ReadResult result;
  std::optional<Error> denial;
  // One transaction: a consistent view of the object and its history, and the log entry, which
  // is committed before the payload leaves the node (or the refusal is returned). In a group, the
  // group's transaction, whose commit the payload waits for.
  const auto read = [&]() -> Status {
    ACCORD_ASSIGN_OR_RETURN(SubjectRecord subject, n.Subject(subject_id));
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.store->GetObject(object_id));
    ACCORD_ASSIGN_OR_RETURN(Facts facts, n.LoadFacts(o));
    std::vector<std::string> explain;
    const Instant at = Now();
    const Decision d = n.DecideRead(subject, facts, at, &explain);
    AuditEntry entry = n.DecisionEntry("read", object_id, d);
    entry.at = at;  // the decision's instant, not a later reading of the clock
    entry.subject = subject_id;
    if (!d.allow) {
      denial = Deny(d.reason, fmt::format("`{}` may not read `{}`", subject_id, object_id), explain)
                   .value();
      return n.LogRead(entry);
    }
    result.reason = d.reason;
    result.originator = o.originator;
    result.level = o.level;
    result.explain = std::move(explain);
    if (d.agreement >= 0) {
      result.agreement = n.engine.agreement(d.agreement).id;
    }
    if (d.marking.party >= 0 && d.marking.level >= 0) {
      const Level& level =
          n.engine.party(d.marking.party).levels[static_cast<size_t>(d.marking.level)];
      result.marking_level = level.id;
      result.marking_name = level.name;
    }
    auto payload = n.OpenPayload(o);
    if (!payload && !Impl::MayPass(payload.error())) {
      // Allowed, but the copy does not open: its label (the AEAD's associated data) or its
      // sealed bytes were changed, which is how an edited store shows. The attempt is logged as
      // refused with the cause before the error is returned, as a package that fails is.
      Impl::AsUnmade(entry, payload.error());
      denial = std::move(payload).error();
      return n.LogRead(entry);
    }
    ACCORD_ASSIGN_OR_RETURN(result.payload, std::move(payload));
    return n.LogRead(entry);
  };
  // A read in a group changes nothing but the log, and its entry is held back: no transaction of
  // its own is needed.
  ACCORD_RETURN_IF_ERROR(n.defer_reads ? read() : n.Transact(read));
  if (denial) {
    return tl::unexpected(std::move(*denial));
  }
  return result;
}

Result<ObjectPage> Node::List(const std::string& subject_id, std::string_view after, size_t limit) {
  Impl& n = *impl_;
  std::optional<SubjectRecord> subject;
  if (!subject_id.empty()) {
    ACCORD_ASSIGN_OR_RETURN(subject, n.store->GetSubject(subject_id));
  }
  const Instant now = Now();
  ObjectPage page;
  // The store's rows in chunks, until one more object than `limit` is found (so that `next`
  // names an object the caller may read, never one it may not) or the rows run out. A chunk
  // holds one more row than a page of up to 255 needs (so a page of every object it reads takes
  // one query), at least 16 (a small page of a caller who may read few objects), at most 256.
  const size_t chunk = std::clamp<size_t>(std::min<size_t>(limit, 255) + 1, 16, 256);
  std::string cursor(after);
  for (;;) {
    ACCORD_ASSIGN_OR_RETURN(std::vector<ObjectListing> listings,
                            n.store->ListObjectLabels(cursor, chunk));  // no payload read
    for (ObjectListing& listing : listings) {
      cursor = listing.object.id;
      if (subject) {
        ACCORD_ASSIGN_OR_RETURN(Facts facts, n.LoadFacts(listing.object));
        if (!n.DecideRead(*subject, facts, now, nullptr).allow) continue;
      }
      if (page.objects.size() == limit) {
        if (!page.objects.empty()) page.next = page.objects.back().id;
        return page;
      }
      ACCORD_ASSIGN_OR_RETURN(ObjectSummary summary, n.Summarize(std::move(listing)));
      page.objects.push_back(std::move(summary));
    }
    if (listings.size() < chunk) return page;
  }
}

// --- release and forward ---------------------------------------------------------------------

Result<Bytes> Node::Release(const std::string& object_id, const std::string& to) {
  Impl& n = *impl_;
  return n.Decided([&]() -> Result<Bytes> {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.GetLiveObject("release", object_id, to));
    // The actor first: one who may not read the object learns why, not whose it is.
    ACCORD_RETURN_IF_ERROR(n.CheckActor("release", o, to));
    ACCORD_RETURN_IF_ERROR(n.RequireOriginator("release", o, "release it; a holder forwards", to));
    ACCORD_ASSIGN_OR_RETURN(Facts facts, n.LoadFacts(o));
    RequestView request;
    request.action = Action::kRelease;
    request.at = Now();
    request.object = facts.View();
    request.to = to;
    const Decision d = n.engine.Decide(request);
    AuditEntry entry = n.DecisionEntry("release", object_id, d);
    entry.at = request.at;  // the package's instant: a forward shows this entry (decision #85)
    entry.to = to;
    if (!d.allow) {
      return n.Refuse(entry,
                      Deny(d.reason, fmt::format("release of `{}` to `{}` refused", object_id, to),
                           n.engine.Explain(request, d))
                          .value());
    }
    return n.MakeOrRefuse(entry, [&]() -> Result<Bytes> {
      ACCORD_ASSIGN_OR_RETURN(PartnerRecord partner, n.Partner(to));
      const PackageBody body = n.NewPackage("release", to, request.at, d, facts);
      return n.SendPackage(body, o, partner, entry, [&] {
        return n.store->InsertRelease(
            ReleaseRecord{o.id, to, body.at, body.agreement, body.marking_level, body.id});
      });
    });
  });
}

Result<Bytes> Node::Forward(const std::string& object_id, const std::string& to) {
  Impl& n = *impl_;
  return n.Decided([&]() -> Result<Bytes> {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.GetLiveObject("forward", object_id, to));
    ACCORD_RETURN_IF_ERROR(n.CheckActor("forward", o, to));  // first, as in Release
    if (o.originator == n.party) {  // it was never released to this node (DESIGN §3)
      return n.Refuse(
          n.RefusalEntry("forward", object_id, ReasonName(Reason::kNotHeld), to),
          Deny(Reason::kNotHeld,
               fmt::format("`{}` originated here: release it instead of forwarding", object_id), {})
              .value());
    }
    ACCORD_ASSIGN_OR_RETURN(Facts facts, n.LoadFacts(o));
    RequestView request;
    request.action = Action::kForward;
    request.at = Now();
    request.object = facts.View();
    request.holder = n.party;
    request.to = to;
    const Decision d = n.engine.Decide(request);
    AuditEntry entry = n.DecisionEntry("forward", object_id, d);
    entry.at = request.at;
    entry.from = n.party;
    entry.to = to;
    if (!d.allow) {
      return n.Refuse(entry,
                      Deny(d.reason, fmt::format("forward of `{}` to `{}` refused", object_id, to),
                           n.engine.Explain(request, d))
                          .value());
    }
    return n.MakeOrRefuse(entry, [&]() -> Result<Bytes> {
      ACCORD_ASSIGN_OR_RETURN(PartnerRecord partner, n.Partner(to));
      // The evidence the recipient checks: the release to this node and the originator's
      // consent.
      const ReleaseRecord* held = nullptr;
      for (const auto& r : facts.releases()) {
        if (r.to == n.party && r.at <= request.at) held = &r;
      }
      const ConsentRecord* consent = nullptr;
      for (const auto& c : facts.consents()) {
        if (c.to == to && c.at <= request.at && !c.notice.empty()) consent = &c;
      }
      if (held == nullptr || consent == nullptr) {
        return Fail(Code::kFailedPrecondition,
                    fmt::format("no signed release and consent notice to prove the forward of `{}`",
                                object_id));
      }
      PackageBody body = n.NewPackage("forward", to, request.at, d, facts);
      body.held_release = node_internal::HistoryRelease{held->to, held->at, held->agreement};
      ACCORD_ASSIGN_OR_RETURN(body.held_log, n.ReleaseEvidence(o, *held));
      body.consent = consent->notice;
      ACCORD_ASSIGN_OR_RETURN(body.reclassification, n.LabelProof(o, consent->notice));
      return n.SendPackage(body, o, partner, entry, [&] {
        return n.store->InsertForward(
            ForwardRecord{o.id, n.party, to, body.at, body.agreement, body.id});
      });
    });
  });
}

// --- notices ---------------------------------------------------------------------------------

Result<Bytes> Node::Consent(const std::string& object_id, const std::string& to) {
  Impl& n = *impl_;
  return n.Decided([&]() -> Result<Bytes> {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.GetLiveObject("consent", object_id, to));
    ACCORD_RETURN_IF_ERROR(n.CheckActor("consent", o, to));  // first, as in Release
    ACCORD_RETURN_IF_ERROR(n.RequireOriginator("consent", o, "consent to its onward release", to));
    if (n.engine.PartyIndex(to) < 0 || to == n.party) {
      return Fail(Code::kInvalidArgument, fmt::format("cannot consent to `{}`", to));
    }
    NoticeBody body = n.NewNotice("consent", o);
    body.to = to;
    body.label = LabelOf(o);  // what a holder's forward must carry (decision #84)
    Envelope env = n.Notice(body);
    const Bytes notice = node_internal::EncodeEnvelope(env);
    AuditEntry entry = n.NoticeEntrySent(body, env);
    entry.to = to;
    // The holders that may forward it learn of the consent.
    ACCORD_ASSIGN_OR_RETURN(std::vector<std::string> holders, n.Holders(o.id));
    std::erase(holders, to);
    return n.CommitAndSend(
        std::move(env), entry,
        [&] {
          return n.store->InsertConsent(ConsentRecord{o.id, to, body.at, notice});
        },
        holders);
  });
}

Result<Bytes> Node::Reclassify(const std::string& object_id, const std::string& level) {
  Impl& n = *impl_;
  return n.Decided([&]() -> Result<Bytes> {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.GetLiveObject("reclassify", object_id));
    ACCORD_RETURN_IF_ERROR(n.CheckActor("reclassify", o));  // first, as in Release
    ACCORD_RETURN_IF_ERROR(n.RequireOriginator("reclassify", o, "reclassify it"));
    if (n.engine.party(n.engine.PartyIndex(n.party)).LevelIndex(level) < 0) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("unknown level `{}` for party `{}`", level, n.party));
    }
    if (level == o.level) {
      return Fail(Code::kInvalidArgument, fmt::format("`{}` is already `{}`", object_id, level));
    }
    ACCORD_ASSIGN_OR_RETURN(SecretBytes payload, n.Open(o));
    o.level = level;
    o.version += 1;
    ACCORD_RETURN_IF_ERROR(n.Seal(o, payload.Reveal(InsecureSecretAccess())));
    NoticeBody body = n.NewNotice("reclassify", o);
    body.level = level;
    body.version = o.version;
    Envelope env = n.Notice(body);
    const Bytes notice = node_internal::EncodeEnvelope(env);
    AuditEntry entry = n.NoticeEntrySent(body, env);
    entry.level = level;
    entry.version = std::to_string(o.version);
    ACCORD_ASSIGN_OR_RETURN(const std::vector<std::string> holders, n.Holders(o.id));
    return n.CommitAndSend(
        std::move(env), entry,
        [&]() -> Status {
          ACCORD_RETURN_IF_ERROR(n.store->UpdateSealed(o));
          return n.store->InsertReclassification(
              ReclassificationRecord{o.id, o.version, level, body.at, notice});
        },
        holders);
  });
}

Result<Bytes> Node::Destroy(const std::string& object_id, DestroyScope scope) {
  Impl& n = *impl_;
  return n.Decided([&]() -> Result<Bytes> {
    const bool everywhere = scope == DestroyScope::kEverywhere;
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.store->GetObject(object_id));
    // First whoever could read the object but for its destruction (as in Release).
    ACCORD_RETURN_IF_ERROR(n.CheckActor("destroy", o, {}, /*destruction_aside=*/true));
    if (everywhere) {
      ACCORD_RETURN_IF_ERROR(n.RequireOriginator("destroy", o, "order its destruction everywhere"));
    }
    // The originator may order every copy destroyed after it destroyed its own, once: its
    // holders' copies are not gone with its own.
    if (o.destroyed_at) {
      bool ordered = !everywhere;
      if (everywhere) {
        ACCORD_ASSIGN_OR_RETURN(const std::vector<DestructionRecord> destructions,
                                n.store->ListDestructions(o.id));
        ordered = std::any_of(destructions.begin(), destructions.end(), [](const auto& d) {
          return d.scope == DestructionScope::kEverywhere;
        });
      }
      if (ordered) return n.RefuseDestroyed("destroy", o);
    }
    std::optional<Envelope> env;
    Bytes notice;
    const Instant at = Now();
    AuditEntry entry = n.Entry("destroy", o.id);
    entry.at = at;
    if (everywhere) {
      NoticeBody body = n.NewNotice("destroy", o);
      body.at = at;
      env = n.Notice(body);
      notice = node_internal::EncodeEnvelope(*env);
      entry = n.NoticeEntrySent(body, *env);
    }
    entry.reason = everywhere ? "everywhere" : "own-copy";
    const auto records = [&]() -> Status {
      if (!o.destroyed_at) ACCORD_RETURN_IF_ERROR(n.store->EraseObjectCopy(o.id, at));
      return n.store->InsertDestruction(DestructionRecord{
          o.id, at, everywhere ? DestructionScope::kEverywhere : DestructionScope::kLocal, n.party,
          notice});
    };
    if (env) {
      ACCORD_ASSIGN_OR_RETURN(const std::vector<std::string> holders, n.Holders(o.id));
      return n.CommitAndSend(std::move(*env), entry, records, holders);
    }
    ACCORD_RETURN_IF_ERROR(n.Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(records());
      return n.Log(entry);
    }));
    return Bytes();
  });
}

Result<Bytes> Node::Report(const std::string& object_id, const std::string& kind,
                           const std::string& text) {
  Impl& n = *impl_;
  if (text.size() > node_internal::kMaxReportTextBytes) {
    return Fail(Code::kInvalidArgument, fmt::format("a report's text is at most {} bytes",
                                                    node_internal::kMaxReportTextBytes));
  }
  return n.Decided([&]() -> Result<Bytes> {
    ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, n.store->GetObject(object_id));
    if (kind != "loss" && kind != "compromise") {
      return Fail(Code::kInvalidArgument, "a report is a `loss` or a `compromise`");
    }
    if (o.originator == n.party) {
      return Fail(Code::kInvalidArgument,
                  "reports go to the originator; this node is the originator");
    }
    // No CheckActor: whoever learns of a loss or compromise reports it, cleared to read the object
    // or not (after a reclassification, say); a report discloses nothing of the object.
    NoticeBody body = n.NewNotice("report", o);
    body.report_kind = kind;
    body.text = text;
    Envelope env = n.Notice(body);
    const Bytes notice = node_internal::EncodeEnvelope(env);
    AuditEntry entry = n.NoticeEntrySent(body, env);
    entry.to = o.originator;
    entry.reason = kind;
    const std::string originator[] = {o.originator};
    return n.CommitAndSend(
        std::move(env), entry,
        [&] {
          return n.store->InsertReport(ReportRecord{o.id, n.party, body.at, kind, text, notice});
        },
        originator);
  });
}

// --- receiving -------------------------------------------------------------------------------

Result<ReceiveResult> Node::Receive(ByteView bytes) { return Receive(bytes, nullptr); }

Result<ReceiveResult> Node::Receive(ByteView bytes, const EnvelopeVet& vet) {
  Impl& n = *impl_;
  ACCORD_ASSIGN_OR_RETURN(Envelope env, node_internal::ParseEnvelope(bytes, n.MaxEnvelope()));
  if (!node_internal::IsPackageKind(env.kind) && bytes.size() > node_internal::kMaxNoticeBytes) {
    return Fail(Code::kInvalidArgument,
                fmt::format("a `{}` envelope is at most {} bytes; this one has {}", env.kind,
                            node_internal::kMaxNoticeBytes, bytes.size()));
  }
  // With a vet, the body is parsed first, for what it says of itself; without, only once the
  // signature verified, so that a signed but malformed body is logged as refused.
  std::optional<EnvelopeBody> body;
  if (vet) {
    ACCORD_ASSIGN_OR_RETURN(body, ParseBody(env));
    ACCORD_RETURN_IF_ERROR(vet(InfoOf(env, *body)));
  }
  if (env.signer == n.party) {
    return Fail(Code::kInvalidArgument, "this package was signed by this node itself");
  }
  auto partner = n.store->GetPartner(env.signer);
  if (!partner) {
    if (partner.error().code == Code::kNotFound) {
      return Fail(
          Code::kPermissionDenied,
          fmt::format("signed by `{}`, whose public keys this node does not have", env.signer));
    }
    return tl::unexpected(partner.error());
  }
  ACCORD_ASSIGN_OR_RETURN(const Impl::PartnerVerifiers* verifiers, n.VerifiersOf(*partner));
  if (!verifiers->envelopes.Verify(node_internal::SignedMessage(env.kind, env.signer, env.body),
                                   env.signature)) {
    return Fail(Code::kDataLoss, fmt::format("{} `{}`'s key", kBadSignature, env.signer));
  }
  // The checks against this node's state and what they record, in one transaction (Decided).
  return n.Decided([&]() -> Result<ReceiveResult> {
    // The keys checked above are still the partner's: `keys import` in another process may
    // have replaced them (a key found compromised) between that check and this transaction.
    ACCORD_ASSIGN_OR_RETURN(const PartnerRecord now, n.store->GetPartner(env.signer));
    if (now.sign_public != partner->sign_public || now.wrap_public != partner->wrap_public) {
      return Fail(Code::kUnavailable,
                  fmt::format("the keys of `{}` changed while this package was checked; send it "
                              "again",
                              env.signer));
    }
    Result<ReceiveResult> result = [&]() -> Result<ReceiveResult> {
      if (!body) {
        ACCORD_ASSIGN_OR_RETURN(body, ParseBody(env));
      }
      if (const auto* package = std::get_if<PackageBody>(&*body)) {
        return n.ReceivePackage(env, *package, bytes, *partner);
      }
      if (const auto* receipt = std::get_if<ReceiptBody>(&*body)) {
        return n.ReceiveReceipt(env, *receipt, *partner);
      }
      return n.ReceiveNotice(env, std::get<NoticeBody>(*body), bytes, *partner);
    }();
    // An authenticated package that is refused is logged (a replay is not: it was logged once;
    // nor is one that cannot be taken now, kUnavailable, or that this node failed to take,
    // kInternal: it comes again).
    if (!result && !Impl::MayPass(result.error())) {
      AuditEntry entry = n.Entry(env.kind == "receipt" ? "receipt" : "receive");
      entry.decision = "deny";
      const auto reason = Denial(result.error());
      entry.reason = std::string(reason ? ReasonName(*reason) : CodeName(result.error().code));
      entry.from = env.signer;
      entry.digest = HexEncode(Sha256(bytes));
      return n.Refuse(entry, result.error());
    }
    return result;
  });
}

// A package or notice dated `at` by its sender, no further ahead of this node's clock than the
// skew allowed. One of the two clocks is wrong: within the hour, the sender tries again later, as
// after a clock stepped back by NTP (kUnavailable is not a refusal, and is not logged as one);
// beyond it, it was made on a wrong clock, and it is refused.
Status Node::Impl::CheckNotAhead(std::string_view what, Instant at, Instant now) const {
  if (at.micros <= now.micros + kMaxSkewMicros) return OkStatus();
  const bool wait = at.micros <= now.micros + kMaxWaitMicros;
  return Fail(
      wait ? Code::kUnavailable : Code::kInvalidArgument,
      fmt::format("the {} was made at {}, after this node's clock ({}) by more than the "
                  "{} minutes of skew allowed; check both clocks",
                  what, FormatInstant(at), FormatInstant(now), kMaxSkewMicros / 60'000'000));
}

// A report on this node's object comes from a holder (a node reports only on a copy it holds,
// Node::Report): a party it was released to, or one it consented to, the only parties a forward
// can reach (decision #129).
Status Node::Impl::CheckReporter(const std::string& object_id, const std::string& by) const {
  ACCORD_ASSIGN_OR_RETURN(const std::vector<ReleaseRecord> releases,
                          store->ListReleases(object_id));
  for (const ReleaseRecord& r : releases) {
    if (r.to == by) return OkStatus();
  }
  ACCORD_ASSIGN_OR_RETURN(const std::vector<ConsentRecord> consents,
                          store->ListConsents(object_id));
  for (const ConsentRecord& c : consents) {
    if (c.to == by) return OkStatus();
  }
  return Fail(Code::kPermissionDenied,
              fmt::format("`{}` reports on `{}`, which this node never released to it nor "
                          "consented to forward to it",
                          by, object_id));
}

// The signed receipt for what was received, with the proof that receiving it was logged as entry
// `index`; kept, so that a partner that delivers the same package again gets the same receipt.
Result<Bytes> Node::Impl::MakeReceipt(const std::string& id, const std::string& kind,
                                      const std::string& object_id, const std::string& from,
                                      ByteView raw, uint64_t index) {
  ReceiptBody r{id, HexEncode(Sha256(raw)), kind, object_id, from, party, clock->Now()};
  Envelope receipt =
      node_internal::SealEnvelope("receipt", party, node_internal::EncodeReceiptBody(r), sign);
  ACCORD_ASSIGN_OR_RETURN(Bytes bytes, WithEvidence(std::move(receipt), index));
  ACCORD_RETURN_IF_ERROR(store->InsertReceipt(ReceiptRecord{id, from, party, r.at, bytes}));
  return bytes;
}

Result<ReceiveResult> Node::Impl::ReceivePackage(const Envelope& env, const PackageBody& body,
                                                 ByteView raw, const PartnerRecord& sender) {
  if (body.kind != env.kind || body.from != env.signer) {
    return Fail(Code::kInvalidArgument, "the package body does not match its envelope");
  }
  if (body.to != party) {
    return Fail(
        Code::kPermissionDenied,
        fmt::format("the package is addressed to `{}`, not to this node (`{}`)", body.to, party));
  }
  // A replay first, as for notices: a package taken is answered with its receipt even when this
  // node's clock has since gone back behind it.
  ACCORD_ASSIGN_OR_RETURN(bool seen, store->HasPackage(env.signer, body.id));
  if (seen) {
    return Fail(Code::kAlreadyExists,
                fmt::format("package `{}` was already received: a replay", body.id));
  }
  const Instant now = clock->Now();
  ACCORD_RETURN_IF_ERROR(CheckNotAhead("package", body.at, now));
  const std::string body_digest = HexEncode(Sha256(env.body));
  ACCORD_RETURN_IF_ERROR(CheckEvidence(env, sender, body.id,
                                       {.op = body.kind,
                                        .object = body.label.id,
                                        .to = party,
                                        .digest = body_digest,
                                        .allowed = true}));
  ACCORD_RETURN_IF_ERROR(CheckNotBackdated(env, body.at));
  // Re-decide what the sender decided, with this node's copy of the policy.
  std::vector<ReleaseRecord> releases;
  std::vector<ConsentRecord> consents;
  std::optional<ReclassificationRecord> attached;  // a forward's proof of a newer label
  if (body.kind == "release") {
    if (body.label.originator != body.from) {
      return Fail(Code::kPermissionDenied, "a release must come from the object's originator");
    }
  } else {
    if (body.label.originator == body.from) {
      return Fail(Code::kInvalidArgument, "a forward must come from a holder, not the originator");
    }
    ACCORD_ASSIGN_OR_RETURN(ForwardProof proof, CheckForward(body));
    releases.push_back(std::move(proof.release));
    consents.push_back(std::move(proof.consent));
    attached = std::move(proof.attached);
  }
  Facts facts(body.label, releases, {}, consents, std::nullopt);
  RequestView request;
  request.action = body.kind == "release" ? Action::kRelease : Action::kForward;
  request.at = body.at;
  request.object = facts.View();
  request.to = party;
  request.holder = body.kind == "forward" ? std::string_view(body.from) : std::string_view();
  const Decision d = engine.Decide(request);
  if (!d.allow) {
    return Deny(d.reason,
                fmt::format("the agreements did not allow this {} at {}", body.kind,
                            FormatInstant(body.at)),
                engine.Explain(request, d));
  }
  if (engine.agreement(d.agreement).id != body.agreement ||
      LevelId(d.marking.party, d.marking.level) != body.marking_level) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the package's agreement or marking (`{}`, `{}`) is not the one the "
                            "policy gives (`{}`, `{}`)",
                            body.agreement, body.marking_level, engine.agreement(d.agreement).id,
                            LevelId(d.marking.party, d.marking.level)));
  }
  // Open it: the key must unwrap with this party's key, the payload with the label bound.
  auto dk = wrap.Unwrap(body.wrapped_key, PackageKeyAd(body.id, party));
  if (!dk) {
    return Fail(Code::kDataLoss, "the data key does not unwrap with this party's key");
  }
  {
    ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(dk->Clone()));
    auto plain = aead.Decrypt(body.ciphertext, node_internal::EncodeLabel(body.label));
    if (!plain) {
      return Fail(Code::kDataLoss, "the payload does not open under its label");
    }
    // The content its originator sealed, whoever sends it: a hub holds the data key and could
    // seal anything under the label it was consented (decision #109).
    const ByteView content = plain->Reveal(InsecureSecretAccess());
    if (!body.label.commitment.empty() &&
        (content.size() < node_internal::kContentSaltBytes ||
         node_internal::ContentCommitment(content) != body.label.commitment)) {
      return Fail(Code::kPermissionDenied,
                  fmt::format("the payload of `{}` is not the content its originator `{}` "
                              "committed to in its label",
                              body.label.id, body.label.originator));
    }
    const size_t salt = body.label.commitment.empty() ? 0 : node_internal::kContentSaltBytes;
    if (plain->size() - salt > max_payload) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("payload of {} bytes exceeds the limit of {} bytes",
                              plain->size() - salt, max_payload));
    }
  }
  ObjectRecord o;
  o.id = body.label.id;
  o.originator = body.label.originator;
  o.level = body.label.level;
  o.topics = body.label.topics;
  o.compartments = body.label.compartments;
  o.rel_to = body.label.rel_to;
  o.version = body.label.version;
  o.commitment = body.label.commitment;
  o.created_at = now;
  o.received_from = body.from;
  o.ciphertext = body.ciphertext;
  ACCORD_ASSIGN_OR_RETURN(o.wrapped_key, kek->Wrap(*dk, DataKeyAd(body.label)));
  auto existing = store->GetObject(o.id);
  if (!existing && existing.error().code != Code::kNotFound) {
    return tl::unexpected(existing.error());
  }
  if (existing) {
    // One id, one object: a package whose label does not match the copy held here (another
    // originator's object of the same id, say) is refused, never written over it. The message
    // goes back to the sender: it does not say whose the held object is (decision #133).
    if (existing->originator != o.originator || existing->topics != o.topics ||
        existing->compartments != o.compartments || existing->rel_to != o.rel_to ||
        existing->commitment != o.commitment) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("this node holds another object `{}`: the package's label does "
                              "not match it",
                              o.id));
    }
    // A copy destroyed on the originator's order stays destroyed, whoever sends it again.
    if (existing->destroyed_at) {
      ACCORD_ASSIGN_OR_RETURN(const std::vector<DestructionRecord> destructions,
                              store->ListDestructions(o.id));
      for (const DestructionRecord& destruction : destructions) {
        if (destruction.scope == DestructionScope::kEverywhere) {
          return Deny(Reason::kDestroyed,
                      fmt::format("{} ordered `{}` destroyed everywhere at {}", destruction.by,
                                  o.id, FormatInstant(destruction.at)),
                      {});
        }
      }
    }
  }
  // Recorded with the copy when it sets the copy's label: the proof a holder shows (LabelProof).
  std::optional<ReclassificationRecord> reclassified = std::move(attached);
  // A reclassification by the originator that this node learnt before the copy: the copy is
  // stored under it when it is newer, and must agree with it at the same version.
  const auto apply = [&](int64_t version, const std::string& level) -> Result<bool> {
    if (version == o.version && level != o.level) {
      return Fail(Code::kPermissionDenied,
                  fmt::format("the package labels `{}` version {} as {}, which its originator "
                              "reclassified to {}",
                              o.id, o.version, o.level, level));
    }
    if (version <= o.version) return false;
    ACCORD_ASSIGN_OR_RETURN(SecretBytes payload, Open(o));
    o.level = level;
    o.version = version;
    ACCORD_RETURN_IF_ERROR(Seal(o, payload.Reveal(InsecureSecretAccess())));
    return true;
  };
  // What its originator ordered before this copy arrived (KeepOrder) applies to it now.
  KeptOrders orders;
  if (!existing) {
    ACCORD_ASSIGN_OR_RETURN(orders, OrdersFor(o.id, o.originator));
    if (orders.destroyed) {
      return Deny(Reason::kDestroyed,
                  fmt::format("{} ordered `{}` destroyed everywhere at {}, before this copy came",
                              o.originator, o.id, FormatInstant(orders.destroyed->at)),
                  {});
    }
    if (orders.reclassified) {
      const NoticeBody& r = orders.reclassified->first;
      ACCORD_ASSIGN_OR_RETURN(const bool newer, apply(r.version, r.level));
      if (newer) {
        reclassified =
            ReclassificationRecord{o.id, r.version, r.level, r.at, orders.reclassified->second};
      }
    }
  } else if (existing->destroyed_at) {
    // Destroyed here by this node only, and sent again: the copy comes back under the newest
    // label its originator gave that this node knows (from a reclassification received while it
    // was gone), never under an older one.
    ACCORD_ASSIGN_OR_RETURN(const std::vector<ReclassificationRecord> known,
                            store->ListReclassifications(o.id));
    const ReclassificationRecord* latest = nullptr;
    for (const ReclassificationRecord& r : known) {
      if (latest == nullptr || r.version > latest->version) latest = &r;
    }
    if (latest != nullptr) {
      ACCORD_RETURN_IF_ERROR(apply(latest->version, latest->level));
      if (latest->version >= o.version) reclassified.reset();  // known here already
    }
    if (o.version < existing->version) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("this node held version {} of `{}`: the package's label is the "
                              "older version {}",
                              existing->version, o.id, o.version));
    }
  }
  AuditEntry entry = DecisionEntry("receive", o.id, d);
  entry.from = body.from;
  entry.package = body.id;
  entry.digest = HexEncode(Sha256(raw));
  Bytes receipt;
  ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
    if (!existing) {
      ACCORD_RETURN_IF_ERROR(store->InsertObject(o));
    } else if (existing->destroyed_at) {
      ACCORD_RETURN_IF_ERROR(store->ReinstateObjectCopy(o));  // destroyed here by this node only
    } else if (existing->version < o.version) {
      ACCORD_RETURN_IF_ERROR(store->UpdateSealed(o));  // a fresh copy replaces the old one
    } else {
      reclassified.reset();  // the copy held here is as new: it stays, and so does its label
    }
    if (reclassified) ACCORD_RETURN_IF_ERROR(store->InsertReclassification(*reclassified));
    for (const ConsentRecord& c : orders.consents) ACCORD_RETURN_IF_ERROR(store->InsertConsent(c));
    if (body.kind == "release") {
      ACCORD_RETURN_IF_ERROR(store->InsertRelease(
          ReleaseRecord{o.id, party, body.at, body.agreement, body.marking_level, body.id}));
    } else {
      ACCORD_RETURN_IF_ERROR(store->InsertRelease(releases.front()));
      ACCORD_RETURN_IF_ERROR(store->InsertConsent(consents.front()));
      ACCORD_RETURN_IF_ERROR(store->InsertForward(
          ForwardRecord{o.id, body.from, party, body.at, body.agreement, body.id}));
    }
    ACCORD_RETURN_IF_ERROR(store->InsertPackage(PackageRecord{
        body.id, body.kind, o.id, body.from, body.at, now, Bytes(raw.begin(), raw.end())}));
    ACCORD_ASSIGN_OR_RETURN(const uint64_t index, log.Append(entry));
    ACCORD_ASSIGN_OR_RETURN(receipt, MakeReceipt(body.id, body.kind, o.id, body.from, raw, index));
    return OkStatus();
  }));
  ReceiveResult result;
  result.kind = body.kind;
  result.object_id = o.id;
  result.from = body.from;
  result.summary =
      fmt::format("{} of `{}` from {} under `{}`, marked {} {} (originator {})", body.kind, o.id,
                  body.from, body.agreement, party, body.marking_level, o.originator);
  result.receipt = std::move(receipt);
  return result;
}

Result<ReceiveResult> Node::Impl::ReceiveNotice(const Envelope& env, const NoticeBody& body,
                                                ByteView raw, const PartnerRecord& sender) {
  if (body.by != env.signer) {
    return Fail(Code::kInvalidArgument, "the notice's issuer is not its signer");
  }
  if (body.kind == "report" ? body.originator != party : body.originator == party) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the notice is addressed to `{}`'s holders, not to this node",
                            body.originator));
  }
  ACCORD_ASSIGN_OR_RETURN(bool seen, store->HasPackage(env.signer, body.id));
  if (seen) {
    return Fail(Code::kAlreadyExists,
                fmt::format("notice `{}` was already received: a replay", body.id));
  }
  const Instant now = clock->Now();
  ACCORD_RETURN_IF_ERROR(CheckNotAhead("notice", body.at, now));
  // A consent recorded for a party this node's policy does not know would make every later
  // decision on the object `unknown-party`, for good. It waits (the sender tries again) until
  // this node's policy knows the party: a policy behind the originator's is mended by its
  // operator. One for the originator itself is refused (decision #129).
  if (body.kind == "consent" && body.to == body.originator) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the consent is for the originator `{}` itself", body.to));
  }
  if (body.kind == "consent" && engine.PartyIndex(body.to) < 0) {
    return Fail(Code::kUnavailable,
                fmt::format("the consent is for `{}`, which this node's policy does not know yet: "
                            "it is taken once the policy names that party",
                            body.to));
  }
  // A consent names the party it is for, a report the originator it goes to.
  const std::string_view notice_to = body.kind == "consent"  ? std::string_view(body.to)
                                     : body.kind == "report" ? std::string_view(body.originator)
                                                             : std::string_view();
  ACCORD_RETURN_IF_ERROR(CheckEvidence(
      env, sender, body.id, {.op = body.kind, .object = body.object_id, .to = notice_to}));
  ACCORD_RETURN_IF_ERROR(CheckNotBackdated(env, body.at));
  auto held = store->GetObject(body.object_id);
  if (!held && held.error().code == Code::kNotFound && body.kind != "report") {
    return KeepOrder(body, raw);
  }
  ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, std::move(held));
  if (o.originator != body.originator) {
    return Fail(Code::kPermissionDenied, "the notice names the wrong originator");
  }
  if (body.kind == "report") ACCORD_RETURN_IF_ERROR(CheckReporter(o.id, body.by));
  std::string summary;
  // A reclassification re-seals the payload under the new label, before the records are written.
  // One this node has already (carried with a forward, decision #84) is receipted and changes
  // nothing; one for a copy this node destroyed itself is kept for the copy that may come back.
  bool known = false;
  if (body.kind == "reclassify") {
    ACCORD_ASSIGN_OR_RETURN(const std::vector<ReclassificationRecord> kept,
                            store->ListReclassifications(o.id));
    int64_t newest = o.version;
    for (const ReclassificationRecord& r : kept) {
      known = known || (r.version == body.version && r.level == body.level);
      newest = std::max(newest, r.version);
    }
    if (!known && body.version <= newest) {
      return Fail(
          Code::kFailedPrecondition,
          fmt::format("stale reclassification: `{}` is already at version {}", o.id, newest));
    }
    // Only one that would change the copy waits for its level: a stale or known one is
    // answered now, not held with the rest of the sender's queue behind it.
    if (!known) ACCORD_RETURN_IF_ERROR(CheckReceivedLevel(o.originator, body.level));
    if (!known && !o.destroyed_at) {
      ACCORD_ASSIGN_OR_RETURN(SecretBytes payload, Open(o));
      o.level = body.level;
      o.version = body.version;
      ACCORD_RETURN_IF_ERROR(Seal(o, payload.Reveal(InsecureSecretAccess())));
    }
  }
  const AuditEntry entry = NoticeEntry(body, raw);
  Bytes receipt;
  ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
    if (body.kind == "consent") {
      ACCORD_RETURN_IF_ERROR(store->InsertConsent(
          ConsentRecord{o.id, body.to, body.at, Bytes(raw.begin(), raw.end())}));
      summary = fmt::format("{} consents to the onward release of `{}` to {}", body.originator,
                            o.id, body.to);
    } else if (body.kind == "reclassify") {
      if (!known) {
        if (!o.destroyed_at) ACCORD_RETURN_IF_ERROR(store->UpdateSealed(o));
        ACCORD_RETURN_IF_ERROR(store->InsertReclassification(ReclassificationRecord{
            o.id, body.version, body.level, body.at, Bytes(raw.begin(), raw.end())}));
      }
      summary = fmt::format("{} reclassified `{}` to {} (version {}){}", body.originator, o.id,
                            body.level, body.version,
                            known            ? ": this node has it already"
                            : o.destroyed_at ? ": this node's copy is destroyed"
                                             : "");
    } else if (body.kind == "destroy") {
      if (!o.destroyed_at) {
        ACCORD_RETURN_IF_ERROR(store->EraseObjectCopy(o.id, now));
      }
      ACCORD_RETURN_IF_ERROR(store->InsertDestruction(
          DestructionRecord{o.id, now, DestructionScope::kEverywhere, body.originator,
                            Bytes(raw.begin(), raw.end())}));
      summary = fmt::format("{} ordered `{}` destroyed everywhere: this node's copy is erased",
                            body.originator, o.id);
    } else {
      ACCORD_RETURN_IF_ERROR(store->InsertReport(ReportRecord{
          o.id, body.by, body.at, body.report_kind, body.text, Bytes(raw.begin(), raw.end())}));
      summary =
          fmt::format("{} reports a {} of `{}`: {}", body.by, body.report_kind, o.id, body.text);
    }
    ACCORD_RETURN_IF_ERROR(store->InsertPackage(PackageRecord{
        body.id, body.kind, o.id, body.by, body.at, now, Bytes(raw.begin(), raw.end())}));
    ACCORD_ASSIGN_OR_RETURN(const uint64_t index, log.Append(entry));
    ACCORD_ASSIGN_OR_RETURN(receipt, MakeReceipt(body.id, body.kind, o.id, body.by, raw, index));
    return OkStatus();
  }));
  return ReceiveResult{body.kind, o.id, body.by, std::move(summary), std::move(receipt)};
}

// What a forward rests on, each the originator's word (decisions #84, #85): its consent, under
// which label, and the release to the forwarder, proved by the originator's log.
Result<Node::Impl::ForwardProof> Node::Impl::CheckForward(const PackageBody& body) {
  ForwardProof proof;
  auto originator = store->GetPartner(body.label.originator);
  if (!originator) {
    if (originator.error().code != Code::kNotFound) return tl::unexpected(originator.error());
    // A configuration being mended, not a refusal of the forward: the sender keeps it and
    // tries again (a final refusal would lose it for good once the keys are imported).
    return Fail(Code::kUnavailable,
                fmt::format("cannot check the consent yet: no public keys for the originator "
                            "`{}` (import them with `accord keys import`)",
                            body.label.originator));
  }
  ACCORD_ASSIGN_OR_RETURN(const PartnerVerifiers* okeys, VerifiersOf(*originator));
  ACCORD_ASSIGN_OR_RETURN(NoticeBody consent,
                          OriginatorsNotice(body.consent, "consent", originator->party, *okeys));
  if (consent.object_id != body.label.id || consent.to != party) {
    return Fail(Code::kPermissionDenied,
                "the forward's consent notice is for another object or party");
  }
  // The label is the originator's word, not the forwarder's (decision #84).
  if (!consent.label) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward's consent notice names no label (it was given before "
                            "consents named one): `{}` must consent again",
                            body.label.originator));
  }
  std::optional<NoticeBody> reclassification;
  if (!body.reclassification.empty()) {
    ACCORD_ASSIGN_OR_RETURN(reclassification, OriginatorsNotice(body.reclassification, "reclassify",
                                                                originator->party, *okeys));
  }
  ACCORD_RETURN_IF_ERROR(node_internal::CheckForwardLabel(
      body.label, *consent.label, reclassification ? &*reclassification : nullptr));
  if (reclassification && body.label.version > consent.label->version) {
    proof.attached =
        ReclassificationRecord{body.label.id, reclassification->version, reclassification->level,
                               reclassification->at, body.reclassification};
  }
  // The release it rests on is the originator's log's word, not the forwarder's (decision
  // #85): an entry of the originator's allowing the release of this object to the forwarder,
  // under the agreement and at the instant it names.
  if (!body.held_release) {
    return Fail(Code::kInvalidArgument, "a forward must name the release it rests on");
  }
  if (!body.held_log) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward carries no proof from `{}`'s log of its release to `{}`",
                            originator->party, body.from));
  }
  ACCORD_ASSIGN_OR_RETURN(const AuditEntry held,
                          CheckLogged(*body.held_log, originator->party, *okeys, "",
                                      {.op = "release",
                                       .object = body.label.id,
                                       .to = body.from,
                                       .agreement = body.held_release->agreement,
                                       .allowed = true}));
  if (held.to != body.held_release->to || held.at != body.held_release->at) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward's held release (to `{}` at {}) is not the one `{}`'s "
                            "log shows (to `{}` at {})",
                            body.held_release->to, FormatInstant(body.held_release->at),
                            originator->party, held.to, FormatInstant(held.at)));
  }
  // Dated as the originator's log has it, and that date bounded as a package's is: an
  // originator and a hub together could otherwise date the release the forward rests on back.
  ACCORD_RETURN_IF_ERROR(CheckLoggedAfter(originator->party, body.held_log->index, held.at,
                                          "the release the forward rests on is "));
  proof.release = ReleaseRecord{body.label.id, held.to, held.at, held.agreement, "", body.id};
  proof.consent = ConsentRecord{body.label.id, consent.to, consent.at, body.consent};
  return proof;
}

namespace {

// What this node parses of bytes it stored itself, taken once already: a failure is damage to
// its store (data-loss), not the caller's mistake.
template <typename T>
Result<T> FromStore(Result<T> parsed, std::string_view what) {
  if (parsed) return parsed;
  return Fail(Code::kDataLoss,
              fmt::format("this node's stored {} is damaged: {}", what, parsed.error().message));
}

}  // namespace

Result<LogEvidence> Node::Impl::ReleaseEvidence(const ObjectRecord& o, const ReleaseRecord& held) {
  auto p = store->GetPackage(o.originator, held.package_id);
  if (!p && p.error().code != Code::kNotFound) return tl::unexpected(p.error());
  if (p && p->kind == "release" && p->bytes.empty()) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("{}'s release of `{}` to this node was erased with an earlier copy: "
                            "ask {} to release it again",
                            o.originator, o.id, o.originator));
  }
  if (p && p->kind == "release") {
    // Accepted once already, under whatever limit held then.
    ACCORD_ASSIGN_OR_RETURN(
        Envelope env,
        FromStore(node_internal::ParseEnvelope(p->bytes, p->bytes.size()), "release package"));
    if (env.log) return std::move(*env.log);
  }
  return Fail(Code::kFailedPrecondition,
              fmt::format("{}'s release of `{}` to this node is not kept with its log evidence: "
                          "nothing proves it to the recipient of a forward",
                          o.originator, o.id));
}

Result<NoticeBody> Node::Impl::OriginatorsNotice(ByteView raw, std::string_view kind,
                                                 const std::string& originator,
                                                 const PartnerVerifiers& keys) {
  const auto failed = [&](Code code, std::string_view why) {
    return Fail(code, fmt::format("the forward's {} notice {}", kind, why));
  };
  auto env = node_internal::ParseEnvelope(raw, node_internal::kMaxNoticeBytes);
  if (!env) return failed(Code::kInvalidArgument, env.error().message);
  if (env->kind != kind) {
    return failed(Code::kInvalidArgument, fmt::format("is a `{}` notice", env->kind));
  }
  if (env->signer != originator ||
      !keys.envelopes.Verify(node_internal::SignedMessage(env->kind, env->signer, env->body),
                             env->signature)) {
    return failed(Code::kPermissionDenied, "is not signed by the originator");
  }
  auto notice = node_internal::ParseNoticeBody(kind, env->body);
  if (!notice) return failed(Code::kInvalidArgument, notice.error().message);
  return notice;
}

Result<Bytes> Node::Impl::LabelProof(const ObjectRecord& o, ByteView consent_notice) {
  ACCORD_ASSIGN_OR_RETURN(
      Envelope env,
      FromStore(node_internal::ParseEnvelope(consent_notice, node_internal::kMaxNoticeBytes),
                "consent"));
  ACCORD_ASSIGN_OR_RETURN(
      NoticeBody consent,
      FromStore(node_internal::ParseNoticeBody("consent", env.body), "consent"));
  if (!consent.label) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("{}'s consent to `{}` names no label (it was given before consents "
                            "named one): {} must consent again",
                            o.originator, consent.to, o.originator));
  }
  if (o.version < consent.label->version) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("this node holds version {} of `{}`, older than the version {} {} "
                            "consented at: it must receive the reclassification first",
                            o.version, o.id, consent.label->version, o.originator));
  }
  // The recipient's check, made here first (CheckForwardLabel).
  const Label label = LabelOf(o);
  if (o.version == consent.label->version) {
    ACCORD_RETURN_IF_ERROR(node_internal::CheckForwardLabel(label, *consent.label, nullptr));
    return Bytes{};
  }
  ACCORD_ASSIGN_OR_RETURN(const std::vector<ReclassificationRecord> kept,
                          store->ListReclassifications(o.id));
  for (const ReclassificationRecord& r : kept) {
    if (r.version != o.version || r.level != o.level) continue;
    ACCORD_ASSIGN_OR_RETURN(
        Envelope sealed,
        FromStore(node_internal::ParseEnvelope(r.notice, node_internal::kMaxNoticeBytes),
                  "reclassification"));
    ACCORD_ASSIGN_OR_RETURN(
        NoticeBody notice,
        FromStore(node_internal::ParseNoticeBody("reclassify", sealed.body), "reclassification"));
    ACCORD_RETURN_IF_ERROR(node_internal::CheckForwardLabel(label, *consent.label, &notice));
    return r.notice;
  }
  return Fail(Code::kFailedPrecondition,
              fmt::format("no signed reclassification of `{}` to version {} to show with the "
                          "forward: {} must consent again",
                          o.id, o.version, o.originator));
}

// The originator's order to destroy or reclassify an object this node does not hold (yet), or
// its consent to an onward release: a copy may still be on its way, a forward held in a hub's
// outbox, say. Kept with its log entry and receipt like any notice, and applied to a copy that
// arrives later (OrdersFor).
Result<ReceiveResult> Node::Impl::KeepOrder(const NoticeBody& body, ByteView raw) {
  if (body.kind == "reclassify") {
    ACCORD_RETURN_IF_ERROR(CheckReceivedLevel(body.originator, body.level));
  }
  const AuditEntry entry = NoticeEntry(body, raw);
  Bytes receipt;
  ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(
        store->InsertPackage(PackageRecord{body.id, body.kind, body.object_id, body.by, body.at,
                                           clock->Now(), Bytes(raw.begin(), raw.end())}));
    ACCORD_ASSIGN_OR_RETURN(const uint64_t index, log.Append(entry));
    ACCORD_ASSIGN_OR_RETURN(receipt,
                            MakeReceipt(body.id, body.kind, body.object_id, body.by, raw, index));
    return OkStatus();
  }));
  return ReceiveResult{
      body.kind, body.object_id, body.by,
      fmt::format("{} {}: not held here; kept, and applied to a copy that arrives", body.originator,
                  body.kind == "destroy"
                      ? fmt::format("ordered `{}` destroyed everywhere", body.object_id)
                  : body.kind == "reclassify"
                      ? fmt::format("reclassified `{}` to {}", body.object_id, body.level)
                      : fmt::format("consents to the onward release of `{}` to {}", body.object_id,
                                    body.to)),
      std::move(receipt)};
}

// The orders kept for `object_id` by KeepOrder, from its originator: whether it is to be
// destroyed, the latest reclassification, and the consents to onward releases.
Result<Node::Impl::KeptOrders> Node::Impl::OrdersFor(const std::string& object_id,
                                                     const std::string& originator) {
  KeptOrders orders;
  ACCORD_ASSIGN_OR_RETURN(const std::vector<PackageRecord> kept, store->ListPackages(object_id));
  for (const PackageRecord& p : kept) {
    if (p.from != originator ||
        (p.kind != "destroy" && p.kind != "reclassify" && p.kind != "consent")) {
      continue;
    }
    ACCORD_ASSIGN_OR_RETURN(Envelope env, node_internal::ParseEnvelope(p.bytes, MaxEnvelope()));
    ACCORD_ASSIGN_OR_RETURN(NoticeBody notice, node_internal::ParseNoticeBody(p.kind, env.body));
    if (p.kind == "consent") {
      orders.consents.push_back(ConsentRecord{object_id, notice.to, notice.at, p.bytes});
    } else if (p.kind == "destroy") {
      orders.destroyed = std::move(notice);
    } else if (!orders.reclassified || notice.version > orders.reclassified->first.version) {
      orders.reclassified.emplace(std::move(notice), p.bytes);
    }
  }
  return orders;
}

Result<ReceiveResult> Node::Impl::ReceiveReceipt(const Envelope& env, const ReceiptBody& body,
                                                 const PartnerRecord& sender) {
  if (body.by != env.signer || body.from != party) {
    return Fail(Code::kPermissionDenied, "the receipt is not for something this node sent");
  }
  // Every envelope this node sends is queued first, also one carried by hand.
  ACCORD_ASSIGN_OR_RETURN(const std::optional<OutboxRecord> sent,
                          store->GetQueued(body.package_id, body.by));
  if (!sent) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the receipt is for `{}`, which this node never sent to `{}`",
                            body.package_id, body.by));
  }
  // And for what was sent under that id: its kind and object (decision 89). Not its digest:
  // the receiver hashes the bytes as they reached it, and a file carried by hand may gain or
  // lose whitespace around the same signed envelope, which this node cannot hash again.
  if (body.kind != sent->kind || body.object_id != sent->object_id) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the receipt for `{}` is not for the {} of `{}` this node sent to `{}`",
                            body.package_id, sent->kind, sent->object_id, body.by));
  }
  // The receiver proves it logged the receipt of the package.
  ACCORD_RETURN_IF_ERROR(CheckEvidence(env, sender, body.package_id,
                                       {.op = "receive",
                                        .object = body.object_id,
                                        .from = party,
                                        .digest = body.package_digest,
                                        .allowed = true}));
  // Keep the receiver's envelope with its evidence, re-encoded from what was verified.
  const Bytes bytes = node_internal::EncodeEnvelope(env);
  AuditEntry entry = Entry("receipt", body.object_id);
  entry.from = body.by;
  entry.package = body.package_id;
  entry.digest = HexEncode(Sha256(bytes));
  auto kept = store->GetReceipt(body.package_id, party, body.by);
  if (!kept && kept.error().code != Code::kNotFound) return tl::unexpected(kept.error());
  // The receipt closes the outbox entry; one received again (a retried delivery) only does that.
  ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
    if (!kept) {
      ACCORD_RETURN_IF_ERROR(
          store->InsertReceipt(ReceiptRecord{body.package_id, party, body.by, body.at, bytes}));
      ACCORD_RETURN_IF_ERROR(Log(entry));
    }
    return store->MarkDelivered(body.package_id, body.by, SystemClock().Now().micros);
  }));
  return ReceiveResult{"receipt",
                       body.object_id,
                       body.by,
                       fmt::format("{} acknowledges the {} of `{}` at {}", body.by, body.kind,
                                   body.object_id, FormatInstant(body.at)),
                       {}};
}

// --- the audit log --------------------------------------------------------------------------

namespace {
constexpr std::string_view kWitnessPrefix = "witness:";
// The least time between two witnessings of one partner's log that are kept (decision #108):
// a busy partner is witnessed every few seconds, and each kept row only tightens the bound.
constexpr int64_t kWitnessingSpacingMicros = 60 * 1'000'000LL;
}  // namespace

Status Node::Impl::CheckNotBackdated(const Envelope& env, Instant at) {
  if (!env.log) return OkStatus();
  return CheckLoggedAfter(env.signer, env.log->index, at, "");
}

Status Node::Impl::CheckLoggedAfter(const std::string& signer, uint64_t index, Instant at,
                                    std::string_view what) {
  if (!system_clock) return OkStatus();
  // A witnessing timed ahead of this node's clock now was taken on a clock that has since gone
  // back: it bounds nothing, and the one before it is used.
  ACCORD_ASSIGN_OR_RETURN(
      const std::optional<WitnessingRecord> seen,
      store->WitnessingAtOrBelow(node_internal::LogOrigin(signer), index,
                                 Instant{clock->Now().micros + kMaxSkewMicros}));
  if (!seen || at.micros >= seen->at.micros - kMaxSkewMicros) return OkStatus();
  return Fail(Code::kPermissionDenied,
              fmt::format("{}dated {}, but its entry {} of `{}`'s log was not there yet at {}, "
                          "when this node saw that log with {} entries: it was logged later than "
                          "it says (or `{}`'s clock is behind by more than the {} minutes allowed)",
                          what, FormatInstant(at), index, signer, FormatInstant(seen->at),
                          seen->size, signer, kMaxSkewMicros / 60'000'000));
}

Result<uint64_t> Node::LogSize() { return impl_->log.Size(); }

Result<std::string> Node::LogCheckpoint() {
  // The size, then the sync: every entry the size counts was committed before the sync began, so
  // the sync covers it. In the other order another connection (the server's, when `accord log
  // checkpoint` runs on a live home) could commit unsynced entries in between, and the
  // checkpoint would cover a log a power cut could take back (decisions #63, #143). The sync is
  // made always, not only when this Node has group commits to sync, for that other connection's.
  const note::Signer& signer = impl_->log_signer;
  ACCORD_ASSIGN_OR_RETURN(const note::Checkpoint head, impl_->log.Head(signer.name()));
  ACCORD_RETURN_IF_ERROR(SyncCommits());
  return node_internal::AuditLog::Sign(head, signer);
}

std::string Node::LogVerifierKey() const { return impl_->log_signer.verifier().VerifierKey(); }

Result<std::vector<Bytes>> Node::LogEntries(uint64_t from, uint64_t count) {
  ACCORD_RETURN_IF_ERROR(impl_->log.FlushDeferred());
  return impl_->store->ReadLogEntries(from, count);
}

Result<std::vector<merkle::Hash>> Node::LogInclusionProof(uint64_t index, uint64_t size) {
  return impl_->log.Inclusion(index, size);
}

Result<std::vector<merkle::Hash>> Node::LogConsistencyProof(uint64_t size1, uint64_t size2) {
  return impl_->log.Consistency(size1, size2);
}

Result<merkle::Hash> Node::LogRoot(uint64_t size) { return impl_->log.Root(size); }

Result<uint64_t> Node::VerifyLog(std::span<const std::string> signed_checkpoints) {
  const note::Signer& signer = impl_->log_signer;
  const note::Verifier own = signer.verifier();
  std::vector<note::Checkpoint> anchors;
  for (const std::string& text : signed_checkpoints) {
    auto opened = note::Open(text, std::span(&own, 1));
    if (!opened) {
      // A signature of this node's key that fails is an integrity failure (exit 5); a file that
      // is malformed or that this node did not sign is the wrong file.
      const Error& e = opened.error();
      if (e.code == Code::kDataLoss) {
        return Fail(
            Code::kDataLoss,
            fmt::format("a checkpoint's signature by this node does not verify: {}", e.message));
      }
      return Fail(
          Code::kInvalidArgument,
          e.code == Code::kPermissionDenied
              ? fmt::format("a checkpoint not signed by this node's key `{}`", signer.name())
              : fmt::format("a checkpoint that is not a signed note: {}", e.message));
    }
    ACCORD_ASSIGN_OR_RETURN(note::Checkpoint checkpoint, note::ParseCheckpoint(opened->text));
    if (checkpoint.origin != signer.name()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("a checkpoint of `{}`, not of this node's log `{}`",
                              checkpoint.origin, signer.name()));
    }
    anchors.push_back(std::move(checkpoint));
  }
  uint64_t checked = 0;
  ACCORD_RETURN_IF_ERROR(impl_->log.VerifyAll(&checked, anchors));
  return checked;
}

std::string Node::LogOrigin(std::string_view party) { return node_internal::LogOrigin(party); }

Result<std::string> Node::WitnessCheckpoint(std::string_view checkpoint,
                                            std::span<const merkle::Hash> proof,
                                            WitnessLogging logging, std::string_view served_by,
                                            std::optional<uint64_t> proof_from) {
  Impl& n = *impl_;
  ACCORD_ASSIGN_OR_RETURN(note::Note parsed, note::Parse(checkpoint));
  ACCORD_ASSIGN_OR_RETURN(note::Checkpoint cp, note::ParseCheckpoint(parsed.text));
  constexpr std::string_view kPrefix = "accord/";
  if (!cp.origin.starts_with(kPrefix)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` is not the origin of an accord node's log", cp.origin));
  }
  const std::string party = cp.origin.substr(kPrefix.size());
  if (!served_by.empty() && party != served_by) {
    return Fail(Code::kPermissionDenied,
                fmt::format("`{}` served a checkpoint of `{}`'s log, not of its own", served_by,
                            cp.origin));
  }
  if (party == n.party) {
    return Fail(Code::kInvalidArgument, "this is this node's own checkpoint");
  }
  ACCORD_ASSIGN_OR_RETURN(PartnerRecord partner, n.Partner(party));
  // cp.origin is the partner's log origin: its cached verifier.
  ACCORD_ASSIGN_OR_RETURN(const Impl::PartnerVerifiers* verifiers, n.VerifiersOf(partner));
  const note::Verifier& key = verifiers->log;
  // The witness cosigns with this node's identity key, under its log's name.
  ACCORD_ASSIGN_OR_RETURN(
      note::Signer cosigner,
      note::Signer::FromSeed(node_internal::LogOrigin(n.party),
                             n.sign.seed(InsecureSecretAccess()).Reveal(InsecureSecretAccess())));
  const std::string meta_key = std::string(kWitnessPrefix) + cp.origin;
  // Read, checked and written back in one transaction: two witnesses of one home (the
  // federation, and `accord log witness` beside it) cannot both cosign from the same state.
  return n.Decided([&]() -> Result<std::string> {
    note::Witness witness(std::move(cosigner));
    ACCORD_ASSIGN_OR_RETURN(auto last, n.store->GetMeta(meta_key));
    if (last) {
      // What this node cosigned last, read back: a failure here is this home's, not a fork.
      if (auto resumed = witness.Resume(cp.origin, key, *last); !resumed) {
        // kInternal: a caller reads kFailedPrecondition as Cosign's "older than" (a rollback).
        return Fail(
            Code::kInternal,
            fmt::format("the checkpoint of `{}` this node cosigned last does not verify: {}",
                        cp.origin, resumed.error().message));
      }
    } else {
      witness.Watch(cp.origin, key);
    }
    // The proof is checked from the size cosigned last when the checkpoint is larger: it must
    // be the size the caller fetched it from.
    if (proof_from) {
      uint64_t held_size = 0;  // nothing cosigned yet
      if (const std::optional<std::string> latest = witness.Latest(cp.origin)) {
        ACCORD_ASSIGN_OR_RETURN(note::Note held, note::Parse(*latest));
        ACCORD_ASSIGN_OR_RETURN(note::Checkpoint held_cp, note::ParseCheckpoint(held.text));
        held_size = held_cp.size;
      }
      if (held_size < cp.size && held_size != *proof_from) {
        return Fail(Code::kUnavailable,
                    fmt::format("the checkpoint of `{}` cosigned last has {} entries, and the "
                                "proof starts at {}: another witness of this home may have "
                                "cosigned meanwhile; fetch the proof from {}",
                                cp.origin, held_size, *proof_from, held_size));
      }
    }
    auto cosigned = witness.Cosign(checkpoint, proof);
    if (!cosigned) {
      if (witness.forks().empty()) return tl::unexpected(cosigned.error());
      // Both signed checkpoints are kept, with the refusal's entry.
      const note::Fork& fork = witness.forks().back();
      if (auto kept = n.store->InsertEvidence(
              EvidenceRecord{cp.origin, fork.earlier, fork.later, fork.reason, Now()});
          !kept) {
        return Fail(Code::kInternal, "keeping the evidence failed: " + kept.error().message);
      }
      return n.Refuse(n.ForkEntry(party, checkpoint), cosigned.error());
    }
    AuditEntry entry = n.Entry("witness");
    entry.decision = "allow";
    entry.from = party;
    entry.version = std::to_string(cp.size);
    entry.digest = merkle::ToHex(cp.root);
    ACCORD_RETURN_IF_ERROR(n.store->SetMeta(meta_key, *cosigned));
    if (n.system_clock && !served_by.empty()) {
      // Fetched from the partner just now: its log had no entry past cp.size at this time. (A
      // checkpoint given by hand may be of any age, so it says nothing of when.) One a minute
      // is kept: a later one of the same minute would tighten the bound by seconds.
      const Instant now = n.clock->Now();
      ACCORD_ASSIGN_OR_RETURN(const std::optional<WitnessingRecord> latest,
                              n.store->LatestWitnessing(cp.origin));
      if (!latest ||
          (cp.size > latest->size && now.micros - latest->at.micros >= kWitnessingSpacingMicros)) {
        ACCORD_RETURN_IF_ERROR(
            n.store->InsertWitnessing(WitnessingRecord{cp.origin, cp.size, now}));
      }
    }
    if (logging == WitnessLogging::kEveryCosignature) ACCORD_RETURN_IF_ERROR(n.Log(entry));
    return cosigned;
  });
}

Status Node::KeepShownCheckpoint(std::string_view signed_checkpoint, const std::string& party) {
  Impl& n = *impl_;
  ACCORD_ASSIGN_OR_RETURN(PartnerRecord partner, n.Partner(party));
  ACCORD_ASSIGN_OR_RETURN(const Impl::PartnerVerifiers* verifiers, n.VerifiersOf(partner));
  auto opened = note::Open(signed_checkpoint, std::span(&verifiers->log, 1));
  if (!opened) {
    return Fail(Code::kPermissionDenied,
                fmt::format("not a checkpoint signed by `{}`'s log key: {}", party,
                            opened.error().message));
  }
  ACCORD_ASSIGN_OR_RETURN(note::Checkpoint cp, note::ParseCheckpoint(opened->text));
  if (cp.origin != node_internal::LogOrigin(party)) {
    return Fail(Code::kPermissionDenied,
                fmt::format("a checkpoint of `{}`, not of `{}`'s log", cp.origin, party));
  }
  return n.KeepShown(cp, party, std::string(signed_checkpoint));
}

Result<uint64_t> Node::WitnessedSize(const std::string& party) {
  ACCORD_ASSIGN_OR_RETURN(auto last, LastCosigned(party));
  return last ? last->size : 0;
}

Result<std::optional<Node::Cosigned>> Node::LastCosigned(const std::string& party) {
  ACCORD_ASSIGN_OR_RETURN(auto last, impl_->store->GetMeta(std::string(kWitnessPrefix) +
                                                           node_internal::LogOrigin(party)));
  if (!last) return std::nullopt;
  ACCORD_ASSIGN_OR_RETURN(note::Note parsed, note::Parse(*last));
  ACCORD_ASSIGN_OR_RETURN(note::Checkpoint cp, note::ParseCheckpoint(parsed.text));
  return Cosigned{cp.size, cp.root};
}

Result<std::vector<EvidenceRecord>> Node::ForkEvidence() { return impl_->store->ListEvidence(); }

Result<std::vector<ShownCheckpointRecord>> Node::UnprovedCheckpoints(const std::string& party,
                                                                     uint64_t max_size,
                                                                     size_t limit) {
  return impl_->store->ListShownCheckpoints(node_internal::LogOrigin(party), max_size, limit);
}

Result<int64_t> Node::ShownCheckpointMark() { return impl_->store->ShownCheckpointMark(); }

Result<std::optional<ShownCheckpointRecord>> Node::OvertakenCheckpoint(const std::string& party,
                                                                       uint64_t size,
                                                                       int64_t mark) {
  return impl_->store->LargestShownAbove(node_internal::LogOrigin(party), size, mark);
}

Result<uint64_t> Node::CountUnprovedCheckpoints(const std::string& party) {
  return impl_->store->CountShownCheckpoints(node_internal::LogOrigin(party));
}

Result<std::vector<std::string>> Node::ProveCheckpoints(uint64_t to_size,
                                                        const merkle::Hash& to_root,
                                                        std::span<const CheckpointProof> proofs) {
  Impl& n = *impl_;
  if (proofs.empty()) return std::vector<std::string>{};
  const std::string& origin = proofs.front().shown.origin;
  return n.Decided([&]() -> Result<std::vector<std::string>> {
    ACCORD_ASSIGN_OR_RETURN(auto last, n.store->GetMeta(std::string(kWitnessPrefix) + origin));
    if (!last) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("this node has cosigned no checkpoint of `{}`", origin));
    }
    ACCORD_ASSIGN_OR_RETURN(note::Note cosigned, note::Parse(*last));
    ACCORD_ASSIGN_OR_RETURN(note::Checkpoint to, note::ParseCheckpoint(cosigned.text));
    if (to.size != to_size) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("the checkpoint of `{}` cosigned last has {} entries, not {}", origin,
                              to.size, to_size));
    }
    if (to.root != to_root) {
      // Proofs to another tree than the one cosigned: they prove nothing about what was shown.
      return Fail(Code::kFailedPrecondition,
                  fmt::format("the checkpoint of `{}` cosigned last, of {} entries, has another "
                              "root than the proofs lead to",
                              origin, to.size));
    }
    std::vector<std::string> forks;
    for (const CheckpointProof& p : proofs) {
      const ShownCheckpointRecord& shown = p.shown;
      if (shown.origin != origin || shown.size > to.size) {
        return Fail(Code::kFailedPrecondition,
                    fmt::format("a checkpoint of `{}` with {} entries is not proved against one "
                                "of `{}` with {}",
                                shown.origin, shown.size, origin, to.size));
      }
      // A proof of the wrong length proves nothing either way (as for Witness::Cosign): it is
      // the sender's mistake, not evidence against the log.
      if (const size_t want = merkle::ConsistencyProofSize(shown.size, to.size);
          p.proof.size() != want) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("a consistency proof of `{}` from {} to {} entries has {} hashes, "
                                "not {}",
                                origin, shown.size, to.size, p.proof.size(), want));
      }
      auto consistent =
          merkle::VerifyConsistency(shown.size, to.size, p.proof, shown.root, to.root);
      ACCORD_ASSIGN_OR_RETURN(
          const bool settled,
          n.store->SettleShownCheckpoint(shown.origin, shown.size, shown.root,
                                         consistent ? ShownState::kProved : ShownState::kForked));
      if (!settled || consistent) continue;  // settled before: neither kept nor logged again
      std::string reason = fmt::format(
          "the checkpoint of {} entries it showed as evidence is not consistent with the one of "
          "{} this node cosigned: {}",
          shown.size, to.size, consistent.error().message);
      ACCORD_RETURN_IF_ERROR(n.store->InsertEvidence(
          EvidenceRecord{shown.origin, shown.note, *last, reason, n.clock->Now()}));
      ACCORD_RETURN_IF_ERROR(
          n.Log(n.ForkEntry(shown.origin.substr(node_internal::LogOrigin("").size()), shown.note)));
      forks.push_back(std::move(reason));
    }
    return forks;
  });
}

// --- directory -------------------------------------------------------------------------------

Status Node::AddSubject(const SubjectRecord& subject) {
  Impl& n = *impl_;
  if (subject.id.empty()) {
    return Fail(Code::kInvalidArgument, "a subject needs an id");
  }
  if (n.engine.party(n.engine.PartyIndex(n.party)).LevelIndex(subject.clearance) < 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("unknown level `{}` for party `{}`", subject.clearance, n.party));
  }
  AuditEntry entry = n.Entry("subject");
  entry.subject = subject.id;
  entry.level = subject.clearance;
  return n.Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(n.store->PutSubject(subject));
    return n.Log(entry);
  });
}

Status Node::RemoveSubject(const std::string& id) {
  Impl& n = *impl_;
  AuditEntry entry = n.Entry("subject-remove");
  entry.subject = id;
  return n.Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(n.store->DeleteSubject(id));
    return n.Log(entry);
  });
}

Result<SubjectRecord> Node::Subject(const std::string& id) { return impl_->Subject(id); }

std::string Node::ExportPublic() const {
  return node_internal::EncodePublicKeys(
      {impl_->party, impl_->sign.public_key(), impl_->wrap.public_key()});
}

Result<std::string> Node::ImportPublic(std::string_view text) {
  Impl& n = *impl_;
  ACCORD_ASSIGN_OR_RETURN(const node_internal::PublicKeys file,
                          node_internal::ParsePublicKeys(text));
  const std::string& p = file.party;
  if (n.engine.PartyIndex(p) < 0) {
    return Fail(Code::kInvalidArgument, fmt::format("party `{}` is not in this node's policy", p));
  }
  if (p == n.party) {
    return Fail(Code::kInvalidArgument, "these are this node's own keys");
  }
  // A signing key anyone can sign for would let anyone speak for that partner: its envelopes,
  // its receipts and its log's checkpoints (decision #103).
  ACCORD_ASSIGN_OR_RETURN(const VerifyingKey verifying, VerifyingKey::FromRaw(file.sign));
  if (verifying.AcceptsForgeries()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}`'s signing key is a point of small order, under which anyone "
                            "can make signatures: not imported",
                            p));
  }
  PartnerRecord r;
  r.party = p;
  r.sign_public = file.sign;
  r.wrap_public = file.wrap;
  AuditEntry entry = n.Entry("partner");
  entry.from = p;
  Bytes keys(r.sign_public.begin(), r.sign_public.end());
  keys.insert(keys.end(), r.wrap_public.begin(), r.wrap_public.end());
  entry.digest = HexEncode(Sha256(keys));
  ACCORD_RETURN_IF_ERROR(n.Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(n.store->PutPartner(r));
    return n.Log(entry);
  }));
  return p;
}

bool IsBadSignature(const Error& error) {
  return error.code == Code::kDataLoss && error.message.starts_with(kBadSignature);
}

bool IsNotOriginator(const Error& error) {
  return error.code == Code::kPermissionDenied && error.message.starts_with(kNotOriginator) &&
         error.message.substr(kNotOriginator.size()).starts_with(':');
}

std::optional<Reason> Denial(const Error& error) {
  if (error.code != Code::kPermissionDenied) {
    return std::nullopt;
  }
  const size_t colon = error.message.find(':');
  return colon == std::string::npos ? std::nullopt
                                    : ParseReason(std::string_view(error.message).substr(0, colon));
}

}  // namespace accord
