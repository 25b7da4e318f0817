// The node's audit log: its checkpoints and proofs, and the witnessing of partners' logs
// (include/accord/node.h; docs/node.md).
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "accord/merkle.h"
#include "accord/note.h"
#include "node_impl.h"

namespace accord {

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

Result<uint64_t> Node::VerifyLog(std::span<const std::string> signed_checkpoints,
                                 std::span<const std::string> names) {
  const note::Signer& signer = impl_->log_signer;
  const note::Verifier own = signer.verifier();
  // One checkpoint, which must be this node's own, of its own log.
  const auto anchor = [&](const std::string& text) -> Result<note::Checkpoint> {
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
    return checkpoint;
  };
  std::vector<note::Checkpoint> anchors;
  for (size_t i = 0; i < signed_checkpoints.size(); ++i) {
    auto checkpoint = anchor(signed_checkpoints[i]);
    if (!checkpoint) {
      Error e = std::move(checkpoint.error());
      if (i < names.size()) e.message = fmt::format("`{}`: {}", names[i], e.message);
      return tl::unexpected(std::move(e));
    }
    anchors.push_back(std::move(*checkpoint));
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
  const auto witnessed = [&]() -> Result<std::string> {
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
  };
  // A fork is reported (kDataLoss, and witnessing the partner stops) only once its refusal and
  // its evidence are stored: until then it is unavailable, and checked again (decision #187).
  std::optional<Error> unlogged;
  Result<std::string> out = n.Decided(witnessed, &unlogged);
  return Impl::Unrefused(std::move(out), unlogged, "the checkpoint");
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

}  // namespace accord
