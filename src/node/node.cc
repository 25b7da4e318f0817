// The node's own operations: its objects, releases, forwards and notices, and its directory
// (include/accord/node.h). Making and opening a home are in node_home.cc, what partners send in
// node_receive.cc, the audit log in node_log.cc.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "accord/utf8.h"
#include "node_impl.h"

namespace accord {

namespace {

constexpr std::string_view kDataKeyAd = "accord/1 data-key\n";
constexpr std::string_view kPackageKeyAd = "accord/1 package-key\n";

Bytes Concat(std::string_view prefix, ByteView rest) {
  // Sized once and copied into: GCC 12 at -O3 takes a vector grown by insert() for a write
  // past its end (-Warray-bounds, a false positive).
  Bytes out(prefix.size() + rest.size());
  std::copy(prefix.begin(), prefix.end(), out.begin());
  std::copy(rest.begin(), rest.end(), out.begin() + static_cast<ptrdiff_t>(prefix.size()));
  return out;
}

}  // namespace

namespace node_internal {

uint64_t PayloadBytes(uint64_t ciphertext_bytes, bool salted) {
  const uint64_t overhead = kAeadOverhead + (salted ? node_internal::kContentSaltBytes : 0);
  return ciphertext_bytes >= overhead ? ciphertext_bytes - overhead : 0;
}

Label LabelOf(const ObjectRecord& o) {
  return Label{o.id,           o.originator, o.level,   o.topics,
               o.compartments, o.rel_to,     o.version, o.commitment};
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

}  // namespace node_internal

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

Status Node::CheckIntact() { return impl_->store->CheckIntact(); }

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
      return Fail(Code::kInvalidArgument, fmt::format("unknown party `{}` in `rel_to`", p));
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
    if (auto inserted = n.store->InsertObject(o); !inserted) {
      if (inserted.error().code != Code::kAlreadyExists) return inserted;
      // The store's text names its table; a caller knows objects by their ids.
      return Fail(Code::kAlreadyExists, fmt::format("object `{}` already exists", o.id));
    }
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
