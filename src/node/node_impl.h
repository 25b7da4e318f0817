// The node's private parts, shared by the files that implement it (include/accord/node.h):
//
//   node.cc          the node's own operations: objects, releases, forwards, notices, directory
//   node_home.cc     making, opening and backing up a home
//   node_receive.cc  what partners send: packages, notices and receipts
//   node_log.cc      the audit log, and the witnessing of partners' logs
//
// Private to src/node: nothing outside the module includes it, so the names it brings into
// `accord` below are the module's own.
//
// Thread safety: as Node: one thread at a time, but for Node::SyncCommits.
#ifndef ACCORD_SRC_NODE_NODE_IMPL_H_
#define ACCORD_SRC_NODE_NODE_IMPL_H_

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "accord/clock.h"
#include "accord/merkle.h"
#include "accord/node.h"
#include "accord/note.h"
#include "audit.h"
#include "wire.h"

namespace accord {
namespace node_internal {

// How Receive's refusal of an envelope's signature begins (IsBadSignature).
inline constexpr std::string_view kBadSignature = "the signature does not verify with";
// A package may be decided a little ahead of this node's clock (clock skew between nodes).
inline constexpr int64_t kMaxSkewMicros = 5 * 60 * 1'000'000LL;

// The size of a payload sealed in `ciphertext_bytes`: without the AEAD's nonce and tag, nor the
// salt its label commits to (`salted`, decision #109).
uint64_t PayloadBytes(uint64_t ciphertext_bytes, bool salted);

Label LabelOf(const ObjectRecord& o);

// The associated data that binds an object's data key to its label, and a package's key to the
// package and its recipient.
Bytes DataKeyAd(ByteView encoded_label);
Bytes DataKeyAd(const Label& label);
Bytes PackageKeyAd(const std::string& package_id, const std::string& to);

// kPermissionDenied, its message the reason's code, then `what` and the explanation.
tl::unexpected<Error> Deny(Reason reason, std::string_view what,
                           const std::vector<std::string>& explain);

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

// An envelope's body, parsed according to its kind.
using EnvelopeBody = std::variant<PackageBody, ReceiptBody, NoticeBody>;

Result<EnvelopeBody> ParseBody(const Envelope& env);
EnvelopeInfo InfoOf(const Envelope& env, const EnvelopeBody& body);

}  // namespace node_internal

using node_internal::AuditEntry;
using node_internal::DataKeyAd;
using node_internal::Deny;
using node_internal::Envelope;
using node_internal::EnvelopeBody;
using node_internal::Facts;
using node_internal::InfoOf;
using node_internal::kBadSignature;
using node_internal::kMaxSkewMicros;
using node_internal::Label;
using node_internal::LabelOf;
using node_internal::LogEvidence;
using node_internal::NoticeBody;
using node_internal::PackageBody;
using node_internal::PackageKeyAd;
using node_internal::ParseBody;
using node_internal::PayloadBytes;
using node_internal::ReceiptBody;

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
  // What became of the refusals made inside one Decided (Refuse).
  struct RefusalLog {
    bool logged = false;          // the refusal's entry is in the operation's transaction
    std::optional<Error> failed;  // why a refusal's entry could not be logged
  };
  RefusalLog* refusals = nullptr;  // inside Decided: its own
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
  // any other failure rolls the whole operation back. A refusal whose entry could not be logged
  // or committed is still returned, told so; `unlogged`, when given, is then set to why. Not
  // nested: a refusal logged by an inner one would be rolled back by the outer, unseen.
  template <typename Op>
  std::invoke_result_t<Op&> Decided(Op&& op, std::optional<Error>* unlogged = nullptr) {
    std::optional<std::invoke_result_t<Op&>> out;
    RefusalLog refused;
    struct Restore {
      RefusalLog*& slot;
      RefusalLog* outer;
      ~Restore() { slot = outer; }
    } restore{refusals, std::exchange(refusals, &refused)};
    Status s = Transact([&]() -> Status {
      out.emplace(op());
      if (out->has_value() || refused.logged) return OkStatus();
      return tl::unexpected(out->error());
    });
    // Only a refusal's own error is told unlogged: were an operation to log a refusal and then
    // succeed (none does), its failed commit is the answer.
    if (!s && refused.logged && out && !out->has_value()) {
      refused.failed = s.error();
      out.emplace(tl::unexpected(Unlogged(std::move(out->error()), s.error())));
    } else if (!s) {
      out.emplace(tl::unexpected(std::move(s.error())));
    }
    if (unlogged != nullptr) *unlogged = std::move(refused.failed);
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
      if (refusals != nullptr) refusals->failed = logged.error();
      return tl::unexpected(Unlogged(std::move(error), logged.error()));
    }
    if (refusals != nullptr) refusals->logged = true;
    return tl::unexpected(std::move(error));
  }

  // `refusal`, whose entry could not be logged (`why`): still the refusal, with its reason,
  // told so.
  static Error Unlogged(Error refusal, const Error& why) {
    refusal.message += " (logging the refusal failed: " + why.message + ")";
    return refusal;
  }

  // `result` of a Decided whose refusal could not be logged or committed (`unlogged` says why),
  // as kUnavailable: a refusal of what a partner sent (`what`) is final for it only once it is
  // on record, and until then the partner sends it again, or it is checked again (decision
  // #187). Marked as the logging failure was, so that damage to this node's own log still says
  // so.
  template <typename T>
  static Result<T> Unrefused(Result<T> result, const std::optional<Error>& unlogged,
                             std::string_view what) {
    if (result || !unlogged) return result;
    return tl::unexpected(Error{Code::kUnavailable,
                                fmt::format("{} is not refused until its refusal is logged: {}",
                                            what, result.error().ToString()),
                                unlogged->own_state});
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

  // Node::Receive, before damage found in this node's own state is told from the envelope's.
  Result<ReceiveResult> ReceiveEnvelope(ByteView bytes, const EnvelopeVet& vet);
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
    // When this node took an order to destroy it (not the order's own date, which #189 leaves
    // unchecked).
    std::optional<Instant> destroyed;
    std::optional<std::pair<NoticeBody, Bytes>> reclassified;  // the latest, with its envelope
    std::vector<ConsentRecord> consents;                       // in the order they came
  };
  Result<KeptOrders> OrdersFor(const std::string& object_id, const std::string& originator);
  Result<Bytes> MakeReceipt(const std::string& id, const std::string& kind,
                            const std::string& object_id, const std::string& from, ByteView raw,
                            uint64_t index);
};

}  // namespace accord

#endif  // ACCORD_SRC_NODE_NODE_IMPL_H_
