// What partners send: packages, notices and receipts, each checked and recorded
// (include/accord/node.h, Node::Receive; docs/node.md).
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "node_impl.h"

namespace accord {

namespace {

// A package decided up to this far ahead of this node's clock waits for it (503); beyond, the
// sender's clock was wrong when it decided, which waiting would not mend (422, final).
constexpr int64_t kMaxWaitMicros = 60 * 60 * 1'000'000LL;

}  // namespace

Error AsPartnerSees(Error error) {
  if (!error.own_state || error.code != Code::kDataLoss) return error;
  // Still marked: the command line exits as for a failed integrity check.
  return OwnState(
      Error{Code::kUnavailable,
            "this node's own stored state is damaged, not the envelope: " + error.message});
}

Result<ReceiveResult> Node::Receive(ByteView bytes) { return Receive(bytes, nullptr); }

Result<ReceiveResult> Node::Receive(ByteView bytes, const EnvelopeVet& vet) {
  return impl_->ReceiveEnvelope(bytes, vet).map_error(AsPartnerSees);
}

Result<ReceiveResult> Node::Impl::ReceiveEnvelope(ByteView bytes, const EnvelopeVet& vet) {
  Impl& n = *this;
  ACCORD_ASSIGN_OR_RETURN(Envelope env, node_internal::ParseEnvelope(bytes, n.MaxEnvelope()));
  if (!node_internal::IsPackageKind(env.kind) && bytes.size() > node_internal::kMaxNoticeBytes) {
    return Fail(Code::kInvalidArgument,
                fmt::format("a `{}` envelope is at most {} bytes; this one has {}", env.kind,
                            node_internal::kMaxNoticeBytes, bytes.size()));
  }
  // With a vet, the body is parsed first, for what it says of itself. One that does not parse
  // is vetted on its envelope alone (kind and signer) and, as without a vet, refused once its
  // signature verified, so that a signed but malformed body is logged as refused on either path.
  std::optional<EnvelopeBody> body;
  std::optional<Error> unparsed;  // the vet path's parse error
  if (vet) {
    if (auto parsed = ParseBody(env)) {
      body = std::move(*parsed);
      ACCORD_RETURN_IF_ERROR(vet(InfoOf(env, *body)));
    } else {
      unparsed = std::move(parsed.error());
      EnvelopeInfo info;
      info.kind = env.kind;
      info.signer = env.signer;
      ACCORD_RETURN_IF_ERROR(vet(info));
    }
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
  ACCORD_ASSIGN_OR_RETURN(const Impl::PartnerVerifiers* keys, n.VerifiersOf(*partner));
  if (!keys->envelopes.Verify(node_internal::SignedMessage(env.kind, env.signer, env.body),
                              env.signature)) {
    // A body that does not parse is refused for what it is, not kept for keys to come.
    if (unparsed) return tl::unexpected(std::move(*unparsed));
    return Fail(Code::kDataLoss, fmt::format("{} `{}`'s key", kBadSignature, env.signer));
  }
  // The checks against this node's state and what they record, in one transaction (Decided).
  const auto checked = [&]() -> Result<ReceiveResult> {
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
    result = std::move(result).map_error(AsPartnerSees);
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
  };
  // A refusal is final for the sender (it gives the envelope up) only once it is logged.
  std::optional<Error> unlogged;
  Result<ReceiveResult> out = n.Decided(checked, &unlogged);
  return Impl::Unrefused(std::move(out), unlogged, "the envelope");
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
    if (body.label.originator == party) {
      // What the engine decides for a recipient who is the originator (DESIGN §3, P = O), found
      // before CheckForward would wait for this node's own keys, which it never imports.
      return Deny(Reason::kInvalidRequest,
                  fmt::format("a forward of `{}` to its originator", body.label.id), {});
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
                      fmt::format("`{}` ordered `{}` destroyed everywhere at {}", destruction.by,
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
                  fmt::format("the package labels `{}` version {} as `{}`, which its originator "
                              "reclassified to `{}`",
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
                  fmt::format("`{}` ordered `{}` destroyed everywhere before this copy came (the "
                              "order was taken at {})",
                              o.originator, o.id, FormatInstant(*orders.destroyed)),
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
  // An order to destroy is taken whatever its date (decision #189): this node erases its copy at
  // its own clock's instant and keeps the date only as the sender's word, and erasing releases
  // nothing. Refused for its date, the order would leave the copy here for good, while its
  // originator records it destroyed everywhere and cannot send it again (decision #111).
  const bool dated = body.kind != "destroy";
  if (dated) ACCORD_RETURN_IF_ERROR(CheckNotAhead("notice", body.at, now));
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
  if (dated) ACCORD_RETURN_IF_ERROR(CheckNotBackdated(env, body.at));
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
      summary = fmt::format("`{}` ordered `{}` destroyed everywhere: this node's copy is erased",
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
                fmt::format("`{}`'s release of `{}` to this node was erased with an earlier copy: "
                            "ask `{}` to release it again",
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
              fmt::format("`{}`'s release of `{}` to this node is not kept with its log evidence: "
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
                fmt::format("`{}`'s consent to `{}` names no label (it was given before consents "
                            "named one): `{}` must consent again",
                            o.originator, consent.to, o.originator));
  }
  if (o.version < consent.label->version) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("this node holds version {} of `{}`, older than the version {} `{}` "
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
                          "forward: `{}` must consent again",
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
  // The originator's only: what any other partner sent about the object is neither an order
  // nor read (a partner could keep notices about an id without bound before its copy comes).
  ACCORD_ASSIGN_OR_RETURN(const std::vector<PackageRecord> kept,
                          store->ListOrders(object_id, originator));
  for (const PackageRecord& p : kept) {
    // Taken once already, so a failure is damage here.
    ACCORD_ASSIGN_OR_RETURN(
        Envelope env, FromStore(node_internal::ParseEnvelope(p.bytes, MaxEnvelope()), "order"));
    ACCORD_ASSIGN_OR_RETURN(NoticeBody notice,
                            FromStore(node_internal::ParseNoticeBody(p.kind, env.body), "order"));
    if (p.kind == "consent") {
      orders.consents.push_back(ConsentRecord{object_id, notice.to, notice.at, p.bytes});
    } else if (p.kind == "destroy") {
      orders.destroyed = p.received_at;
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
                          store->GetQueued(body.package_id, body.by, EnvelopeBytes::kSkip));
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

}  // namespace accord
