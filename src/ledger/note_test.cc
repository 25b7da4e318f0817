// Signed notes (C2SP signed-note), checkpoints (C2SP tlog-checkpoint) and witnessing.
#include "accord/note.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord::note {
namespace {

using ::testing::HasSubstr;

// Known answers from golang.org/x/mod/sumdb/note (note_test.go, example_test.go) and the C2SP
// signed-note specification's example (C2SP/C2SP signed-note.md, verifier key from its tests).
constexpr std::string_view kPeterSigner =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view kPeterVerifier =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kEnochVerifier =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
constexpr std::string_view kText =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your "
    "problem is.\n";
constexpr std::string_view kPeterLine =
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
constexpr std::string_view kEnochLine =
    "\xE2\x80\x94 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/"
    "5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
constexpr std::string_view kExampleVerifier =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr std::string_view kExampleNote =
    "This is an example message.\n\n\xE2\x80\x94 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";

Verifier V(std::string_view vkey) {
  auto v = Verifier::FromVerifierKey(vkey);
  EXPECT_TRUE(v.has_value()) << vkey;
  return std::move(*v);
}

TEST(NoteTest, SignsExactlyAsThePublishedVector) {
  auto signer = Signer::FromSignerKey(kPeterSigner);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  EXPECT_EQ(signer->key_id(), 0xc74f20a3u);
  EXPECT_EQ(signer->verifier().VerifierKey(), kPeterVerifier);
  const Signer* signers[] = {&*signer};
  auto signed_note = Sign(kText, signers);
  ASSERT_TRUE(signed_note.has_value());
  EXPECT_EQ(*signed_note,
            std::string(kText) + "\n" + std::string(kPeterLine));  // Ed25519 is deterministic
}

TEST(NoteTest, OpensThePublishedVectors) {
  const std::string two =
      std::string(kText) + "\n" + std::string(kPeterLine) + std::string(kEnochLine);
  const Verifier both[] = {V(kPeterVerifier), V(kEnochVerifier)};
  auto note = Open(two, both);
  ASSERT_TRUE(note.has_value()) << note.error().message;
  EXPECT_EQ(note->text, kText);
  ASSERT_EQ(note->signatures.size(), 2u);
  EXPECT_EQ(note->signatures[1].key_id, 0xaf0cfe78u);
  EXPECT_EQ(Format(*note), two);
  const Verifier example[] = {V(kExampleVerifier)};
  EXPECT_TRUE(Open(kExampleNote, example).has_value());
  // Only Enoch known: Peter's signature is ignored, Enoch's verifies.
  const Verifier enoch[] = {V(kEnochVerifier)};
  EXPECT_TRUE(Open(two, enoch).has_value());
}

TEST(NoteTest, EveryByteOfASignedNoteMatters) {
  const std::string message = std::string(kText) + "\n" + std::string(kPeterLine);
  const Verifier peter[] = {V(kPeterVerifier)};
  for (size_t i = 0; i < message.size(); ++i) {
    std::string bad = message;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(Open(bad, peter).has_value()) << "byte " << i;
  }
}

TEST(NoteTest, RefusesWhatNoKnownKeySigned) {
  const std::string message = std::string(kText) + "\n" + std::string(kPeterLine);
  const Verifier enoch[] = {V(kEnochVerifier)};
  auto r = Open(message, enoch);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kPermissionDenied);
  // Same name as a known key but another id: an unknown key, ignored.
  auto other = Signer::Generate("PeterNeumann");
  ASSERT_TRUE(other.has_value());
  const Signer* signers[] = {&*other};
  const Verifier peter[] = {V(kPeterVerifier)};
  EXPECT_EQ(Open(*Sign(kText, signers), peter).error().code, Code::kPermissionDenied);
  // A known key whose signature fails rejects the note even if another verifies.
  std::string forged =
      std::string(kText) + "\n" + std::string(kPeterLine) + std::string(kEnochLine);
  forged[forged.size() - 10] = forged[forged.size() - 10] == 'A' ? 'B' : 'A';
  const Verifier both[] = {V(kPeterVerifier), V(kEnochVerifier)};
  EXPECT_EQ(Open(forged, both).error().code, Code::kDataLoss);
}

// Two signatures by one key (same name and id) are refused, as Go's sumdb/note refuses them:
// the same line twice, or a second, different signature under the same key.
TEST(NoteTest, RefusesTwoSignaturesByOneKey) {
  const Verifier peter[] = {V(kPeterVerifier)};
  const std::string once = std::string(kText) + "\n" + std::string(kPeterLine);
  ASSERT_TRUE(Open(once, peter).has_value());
  const std::string twice = once + std::string(kPeterLine);
  auto r = Parse(twice);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("two signatures by the key `PeterNeumann`"));
  EXPECT_EQ(Open(twice, peter).error().code, Code::kInvalidArgument);
  Note other = *Parse(once);
  other.signatures.push_back(other.signatures[0]);
  other.signatures[1].bytes[0] ^= 1;
  EXPECT_EQ(Parse(Format(other)).error().code, Code::kInvalidArgument);
  // An unknown key's duplicates are refused too: the note is malformed whoever reads it.
  const Verifier enoch[] = {V(kEnochVerifier)};
  EXPECT_EQ(Open(std::string(kText) + "\n" + std::string(kEnochLine) + std::string(kPeterLine) +
                     std::string(kPeterLine),
                 enoch)
                .error()
                .code,
            Code::kInvalidArgument);
}

TEST(NoteTest, MalformedNotesAndKeys) {
  const Verifier peter[] = {V(kPeterVerifier)};
  for (std::string_view bad :
       {std::string_view("no blank line\n\xE2\x80\x94 a AAAA\n"), std::string_view("text\n\n"),
        std::string_view("text\n\n- PeterNeumann AAAAAAAA\n"),
        std::string_view("text\n\n\xE2\x80\x94 PeterNeumann not-base64!\n"),
        std::string_view("te\x01xt\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA\n"),
        std::string_view("te\xC3xt\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA\n"),
        // Bytes that never start a UTF-8 character: an overlong lead, and 0xF5-0xFF.
        std::string_view("te\xC0\xAFxt\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA\n"),
        std::string_view("te\xF5\x80\x80\x80xt\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA\n"),
        std::string_view("te\xFF\x80\x80xt\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA\n"),
        std::string_view("text\n\n\xE2\x80\x94 PeterNeumann AAAAAAAA")}) {
    auto r = Open(bad, peter);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << r.error().message;
  }
  EXPECT_FALSE(Verifier::FromVerifierKey(
                   "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                   .has_value());
  EXPECT_FALSE(Verifier::FromVerifierKey(
                   "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                   .has_value());
  EXPECT_FALSE(
      Verifier::FromVerifierKey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVk").has_value());
  EXPECT_FALSE(Signer::FromSignerKey(
                   "PRIVATE+KEY+PeterNeumann+00000000+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
                   .has_value());
  EXPECT_FALSE(Signer::Generate("two words").has_value());
  auto s = Signer::Generate("accord.example/KOR");
  ASSERT_TRUE(s.has_value());
  const Signer* signers[] = {&*s};
  EXPECT_FALSE(Sign("no final newline", signers).has_value());
}

TEST(CheckpointTest, RoundTripsAndRejectsMalformedText) {
  merkle::MemoryTree t;
  for (int i = 0; i < 5; ++i) t.Append(merkle::LeafHash("e" + std::to_string(i)));
  const Checkpoint c{"accord.example/KOR", 5, t.Root(), {"extension line"}};
  const std::string text = CheckpointText(c);
  EXPECT_EQ(text.substr(0, 21), "accord.example/KOR\n5\n");
  auto back = ParseCheckpoint(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->origin, c.origin);
  EXPECT_EQ(back->size, 5u);
  EXPECT_EQ(back->root, c.root);
  EXPECT_EQ(back->extensions, c.extensions);
  for (std::string_view bad : {"o\n5\n", "o\n05\nAAAA\n", "o\n-5\nAAAA\n", "o\n5\nAAAA\n",
                               "\n5\nAAAA\n", "o\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                               "o\nfive\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}) {
    EXPECT_FALSE(ParseCheckpoint(bad).has_value()) << bad;
  }
}

// A tree of size 0 has one root, SHA-256 of nothing (47DEQ…): a checkpoint of size 0 with any
// other root states something no tree can be.
TEST(CheckpointTest, ACheckpointOfSizeZeroHasTheEmptyRoot) {
  auto empty = ParseCheckpoint("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_EQ(empty->root, merkle::EmptyRoot());
  const Checkpoint other{"o", 0, merkle::LeafHash("x"), {}};
  auto refused = ParseCheckpoint(CheckpointText(other));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
  EXPECT_THAT(refused.error().message, HasSubstr("size 0"));
}

// A log of `entries` and its signed checkpoint.
struct Log {
  Signer key = *Signer::Generate("accord.example/KOR");
  merkle::MemoryTree tree;
  std::string Checkpoint() const {
    const Signer* signers[] = {&key};
    return *Sign(CheckpointText({"accord.example/KOR", tree.size(), tree.Root(), {}}), signers);
  }
};

TEST(WitnessTest, CosignsAGrowingLogAndCatchesRewrites) {
  Log log;
  Witness witness(*Signer::Generate("accord.example/JPN-witness"));
  witness.Watch("accord.example/KOR", log.key.verifier());
  for (int i = 0; i < 3; ++i) log.tree.Append(merkle::LeafHash("release " + std::to_string(i)));
  auto first = witness.Cosign(log.Checkpoint(), {});
  ASSERT_TRUE(first.has_value()) << first.error().message;
  // The cosigned note carries both signatures.
  EXPECT_EQ(Parse(*first)->signatures.size(), 2u);

  for (int i = 3; i < 7; ++i) log.tree.Append(merkle::LeafHash("release " + std::to_string(i)));
  auto proof = merkle::ConsistencyProof(log.tree, 3, 7);
  ASSERT_TRUE(witness.Cosign(log.Checkpoint(), *proof).has_value());
  EXPECT_THAT(*witness.Latest("accord.example/KOR"), HasSubstr("accord.example/KOR\n7\n"));

  // Rewritten history: the same key signs a tree of 8 whose entry 1 was edited.
  Log rewritten{std::move(log.key), {}};
  for (int i = 0; i < 8; ++i)
    rewritten.tree.Append(merkle::LeafHash(i == 1 ? "edited" : "release " + std::to_string(i)));
  auto forged_proof = merkle::ConsistencyProof(rewritten.tree, 7, 8);
  auto refused = witness.Cosign(rewritten.Checkpoint(), *forged_proof);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kDataLoss);
  ASSERT_EQ(witness.forks().size(), 1u);
  EXPECT_THAT(witness.forks()[0].earlier, HasSubstr("accord.example/KOR\n7\n"));
  EXPECT_THAT(witness.forks()[0].later, HasSubstr("accord.example/KOR\n8\n"));

  // A signed checkpoint smaller than the last one cosigned (the log's own earlier one, or a
  // truncated log's) is refused, and is no evidence: an earlier checkpoint contradicts nothing.
  Log shorter{std::move(rewritten.key), {}};
  for (int i = 0; i < 5; ++i) shorter.tree.Append(merkle::LeafHash("release " + std::to_string(i)));
  auto shrunk = witness.Cosign(shorter.Checkpoint(), {});
  ASSERT_FALSE(shrunk.has_value());
  EXPECT_EQ(shrunk.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(shrunk.error().message, HasSubstr("has 5 entries, older than the one of 7"));
  EXPECT_EQ(witness.forks().size(), 1u);

  // A checkpoint with a bad signature by the log's key is not the log's statement: refused, and
  // no evidence either.
  std::string forged = shorter.Checkpoint();
  char& in_signature = forged[forged.rfind(' ') + 20];  // past the key id
  in_signature = in_signature == 'A' ? 'B' : 'A';
  auto unsigned_by_log = witness.Cosign(forged, {});
  ASSERT_FALSE(unsigned_by_log.has_value());
  EXPECT_EQ(unsigned_by_log.error().code, Code::kPermissionDenied);
  EXPECT_EQ(witness.forks().size(), 1u);

  // The witness's view did not move.
  EXPECT_THAT(*witness.Latest("accord.example/KOR"), HasSubstr("accord.example/KOR\n7\n"));
}

// A proof whose shape alone is wrong for the two sizes cannot be checked, so it is evidence of
// nothing: refused with kInvalidArgument, nothing kept, the witness's view unmoved. A proof of
// the right length that does not connect the roots is still a fork.
TEST(WitnessTest, RefusesAProofOfTheWrongShapeWithoutEvidence) {
  Log log;
  Witness witness(*Signer::Generate("accord.example/JPN-witness"));
  witness.Watch("accord.example/KOR", log.key.verifier());
  for (int i = 0; i < 3; ++i) log.tree.Append(merkle::LeafHash("release " + std::to_string(i)));
  const std::string three = log.Checkpoint();
  ASSERT_TRUE(witness.Cosign(three, {}).has_value());
  const merkle::Hash any = merkle::LeafHash("any");

  // The same size and root: decided on the roots alone, and a proof there is malformed.
  auto same = witness.Cosign(three, std::vector<merkle::Hash>{any});
  ASSERT_FALSE(same.has_value());
  EXPECT_EQ(same.error().code, Code::kInvalidArgument);
  EXPECT_TRUE(witness.forks().empty());
  EXPECT_TRUE(witness.Cosign(three, {}).has_value());

  for (int i = 3; i < 7; ++i) log.tree.Append(merkle::LeafHash("release " + std::to_string(i)));
  const std::string seven = log.Checkpoint();
  const std::vector<merkle::Hash> proof = *merkle::ConsistencyProof(log.tree, 3, 7);
  ASSERT_EQ(proof.size(), merkle::ConsistencyProofSize(3, 7));
  std::vector<merkle::Hash> too_long = proof;
  too_long.push_back(any);
  const std::vector<merkle::Hash> too_short(proof.begin(), proof.end() - 1);
  for (const auto& bad : {too_long, too_short, std::vector<merkle::Hash>{}}) {
    auto r = witness.Cosign(seven, bad);
    ASSERT_FALSE(r.has_value()) << bad.size();
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr("hashes, not " + std::to_string(proof.size())));
    EXPECT_TRUE(witness.forks().empty());
  }
  EXPECT_THAT(*witness.Latest("accord.example/KOR"), HasSubstr("accord.example/KOR\n3\n"));

  // The right length, a bent hash: a fork, with the evidence kept.
  std::vector<merkle::Hash> bent = proof;
  bent[0][0] ^= 1;
  auto forked = witness.Cosign(seven, bent);
  ASSERT_FALSE(forked.has_value());
  EXPECT_EQ(forked.error().code, Code::kDataLoss);
  ASSERT_EQ(witness.forks().size(), 1u);
  EXPECT_TRUE(witness.Cosign(seven, proof).has_value());

  // Another root at the same size is a fork, whatever proof comes with it.
  Log other{std::move(log.key), {}};
  for (int i = 0; i < 7; ++i) other.tree.Append(merkle::LeafHash("other " + std::to_string(i)));
  auto other_root = witness.Cosign(other.Checkpoint(), std::vector<merkle::Hash>{any});
  ASSERT_FALSE(other_root.has_value());
  EXPECT_EQ(other_root.error().code, Code::kDataLoss);
  EXPECT_EQ(witness.forks().size(), 2u);
}

// From a checkpoint of size 0 (the empty tree), only an empty proof is well formed.
TEST(WitnessTest, RefusesAProofFromTheEmptyTree) {
  Log log;
  Witness witness(*Signer::Generate("w"));
  witness.Watch("accord.example/KOR", log.key.verifier());
  ASSERT_TRUE(witness.Cosign(log.Checkpoint(), {}).has_value());
  log.tree.Append(merkle::LeafHash("a"));
  log.tree.Append(merkle::LeafHash("b"));
  auto r = witness.Cosign(log.Checkpoint(), std::vector<merkle::Hash>{merkle::LeafHash("a")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_TRUE(witness.forks().empty());
  EXPECT_TRUE(witness.Cosign(log.Checkpoint(), {}).has_value());
}

// The cosigned note carries the log's signature and this witness's, and nothing else: neither
// a second cosignature of its own when it cosigns a note it cosigned before, nor the lines of
// keys it cannot check.
TEST(WitnessTest, CosignsWithTheLogsSignatureAndItsOwnOnly) {
  Log log;
  Witness witness(*Signer::Generate("accord.example/JPN"));
  witness.Watch("accord.example/KOR", log.key.verifier());
  log.tree.Append(merkle::LeafHash("x"));
  auto first = witness.Cosign(log.Checkpoint(), {});
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto again = witness.Cosign(*first, {});
  ASSERT_TRUE(again.has_value()) << again.error().message;
  auto note = Parse(*again);
  ASSERT_TRUE(note.has_value()) << note.error().message;
  ASSERT_EQ(note->signatures.size(), 2u);
  EXPECT_EQ(note->signatures[0].name, "accord.example/KOR");
  EXPECT_EQ(note->signatures[1].name, "accord.example/JPN");

  // Another witness's cosignature (a key this one does not know) is not passed on.
  const Signer usa = *Signer::Generate("accord.example/USA");
  Note with_usa = *Parse(log.Checkpoint());
  with_usa.signatures.push_back(usa.Sign(with_usa.text));
  auto cosigned = witness.Cosign(Format(with_usa), {});
  ASSERT_TRUE(cosigned.has_value()) << cosigned.error().message;
  note = Parse(*cosigned);
  ASSERT_EQ(note->signatures.size(), 2u);
  EXPECT_EQ(note->signatures[0].name, "accord.example/KOR");
  EXPECT_EQ(note->signatures[1].name, "accord.example/JPN");
}

// What a witness stored before #113 may hold its own cosignature twice (it cosigned a note it had
// cosigned already), which Parse now refuses: resuming from it keeps the log's signature only.
TEST(WitnessTest, ResumesFromANoteStoredWithItsCosignatureTwice) {
  Log log;
  const Signer earlier = *Signer::Generate("accord.example/JPN");  // its key then
  log.tree.Append(merkle::LeafHash("x"));
  Note stored = *Parse(log.Checkpoint());
  stored.signatures.push_back(earlier.Sign(stored.text));
  std::string text = Format(stored);
  text += text.substr(text.rfind("\xE2\x80\x94 accord.example/JPN "));  // the line again
  ASSERT_FALSE(Parse(text).has_value());

  Witness witness(*Signer::Generate("accord.example/JPN"));
  auto resumed = witness.Resume("accord.example/KOR", log.key.verifier(), text);
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  // It holds the checkpoint of size 1 with the log's signature alone.
  const auto latest = witness.Latest("accord.example/KOR");
  ASSERT_TRUE(latest.has_value());
  EXPECT_THAT(*latest, HasSubstr("accord.example/KOR\n1\n"));
  const auto kept = Parse(*latest);
  ASSERT_TRUE(kept.has_value()) << kept.error().message;
  ASSERT_EQ(kept->signatures.size(), 1u);
  EXPECT_EQ(kept->signatures[0].name, "accord.example/KOR");
  // So a larger one needs a proof from size 1 (a witness with nothing kept would take it bare).
  log.tree.Append(merkle::LeafHash("y"));
  auto bare = witness.Cosign(log.Checkpoint(), {});
  ASSERT_FALSE(bare.has_value());
  EXPECT_EQ(bare.error().code, Code::kInvalidArgument) << bare.error().message;
  auto proof = merkle::ConsistencyProof(log.tree, 1, 2);
  ASSERT_TRUE(proof.has_value());
  auto cosigned = witness.Cosign(log.Checkpoint(), *proof);
  ASSERT_TRUE(cosigned.has_value()) << cosigned.error().message;
}

TEST(WitnessTest, RefusesUnknownLogsAndForeignSignatures) {
  Log log;
  log.tree.Append(merkle::LeafHash("x"));
  Witness witness(*Signer::Generate("w"));
  EXPECT_EQ(witness.Cosign(log.Checkpoint(), {}).error().code, Code::kNotFound);
  witness.Watch("accord.example/KOR",
                Signer::Generate("accord.example/KOR")->verifier());  // another key
  EXPECT_EQ(witness.Cosign(log.Checkpoint(), {}).error().code, Code::kPermissionDenied);
}

// A node signs checkpoints with its identity key: the raw seed gives the same key, id and
// signatures as the sumdb-encoded signer key.
TEST(NoteTest, SignerFromSeedMatchesTheEncodedKey) {
  const uint8_t seed[] = {0x81, 0x0a, 0x14, 0x02, 0xd5, 0x14, 0x6c, 0x8d, 0x84, 0xf2, 0x44,
                          0x33, 0x30, 0xf5, 0x40, 0x80, 0xeb, 0xf9, 0x8e, 0xe1, 0x7d, 0x9c,
                          0x74, 0xf6, 0x25, 0x2f, 0xc5, 0xd5, 0xc7, 0x28, 0x31, 0x73};
  auto from_seed = Signer::FromSeed("PeterNeumann", seed);
  auto encoded = Signer::FromSignerKey(kPeterSigner);
  ASSERT_TRUE(from_seed && encoded);
  EXPECT_EQ(from_seed->key_id(), 0xc74f20a3u);
  EXPECT_EQ(from_seed->verifier().VerifierKey(), kPeterVerifier);
  EXPECT_EQ(from_seed->Sign(kText).bytes, encoded->Sign(kText).bytes);
  auto verifier = Verifier::FromPublicKey("PeterNeumann", std::span<const uint8_t>(seed).first(32));
  ASSERT_TRUE(verifier);  // any 32 bytes make a (wrong) key; the id tells them apart
  EXPECT_NE(verifier->key_id(), 0xc74f20a3u);
  EXPECT_FALSE(Signer::FromSeed("Peter Neumann", seed));
  EXPECT_FALSE(Signer::FromSeed("PeterNeumann", std::span<const uint8_t>(seed).first(31)));
}

}  // namespace
}  // namespace accord::note
