// The exchange formats' rules that need no node: what a consent names, and which forward labels
// the originator's word covers (decision #84).
#include "wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace accord::node_internal {
namespace {

Label Consented() {
  Label l;
  l.id = "k-2015";
  l.originator = "KOR";
  l.level = "II";
  l.topics = {"dprk-missile"};
  l.compartments = {"TALENT"};
  l.rel_to = {"USA", "JPN"};
  l.version = 1;
  l.commitment = std::string(64, 'c');
  return l;
}

NoticeBody Reclassification(std::string level, int64_t version) {
  NoticeBody n;
  n.id = "0123456789abcdef0123456789abcdef";
  n.kind = "reclassify";
  n.object_id = "k-2015";
  n.originator = "KOR";
  n.by = "KOR";
  n.level = std::move(level);
  n.version = version;
  return n;
}

TEST(WireTest, AConsentNamesTheLabelOfItsObject) {
  NoticeBody consent;
  consent.id = "0123456789abcdef0123456789abcdef";
  consent.kind = "consent";
  consent.object_id = "k-2015";
  consent.originator = "KOR";
  consent.by = "KOR";
  consent.to = "JPN";
  consent.label = Consented();
  auto parsed = ParseNoticeBody("consent", EncodeNoticeBody(consent));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_TRUE(parsed->label);
  EXPECT_EQ(EncodeLabel(*parsed->label), EncodeLabel(Consented()));

  // A consent given before consents named a label still parses, without one.
  consent.label.reset();
  parsed = ParseNoticeBody("consent", EncodeNoticeBody(consent));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_FALSE(parsed->label);

  // A label of another object, or of another originator's, is refused.
  for (const auto& edit : std::initializer_list<std::function<void(Label&)>>{
           [](Label& l) { l.id = "k-other"; }, [](Label& l) { l.originator = "USA"; }}) {
    consent.label = Consented();
    edit(*consent.label);
    auto refused = ParseNoticeBody("consent", EncodeNoticeBody(consent));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
    EXPECT_NE(refused.error().message.find("label is of another object"), std::string::npos);
  }
}

// A partner's ids end up in logs and on terminals: one with a control or bidirectional formatting
// character is refused, as a node refuses to create such an object (decision #129).
TEST(WireTest, AnIdThatWouldShowAsAnotherIsRefused) {
  for (const std::string bad : {"k-\x1b[2J", "k-\u202e1202", "k-\xc2\x9b", "k-\n"}) {
    NoticeBody notice = Reclassification("III", 2);
    notice.object_id = bad;
    auto refused = ParseNoticeBody("reclassify", EncodeNoticeBody(notice));
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().message,
              "notice: `object` holds a control or bidirectional formatting character");
  }
  NoticeBody plain = Reclassification("III", 2);
  plain.object_id = "k-군사-2015";
  auto parsed = ParseNoticeBody("reclassify", EncodeNoticeBody(plain));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->object_id, "k-군사-2015");
}

TEST(WireTest, AForwardsReclassificationRoundTripsAndIsNeverEmpty) {
  PackageBody b;
  b.id = "0123456789abcdef0123456789abcdef";
  b.kind = "forward";
  b.from = "USA";
  b.to = "JPN";
  b.agreement = "tisa";
  b.label = Consented();
  b.marking_party = "JPN";
  b.marking_level = "GOKUHI";
  b.held_release = HistoryRelease{"USA", Instant{}, "kor-usa"};
  b.consent = {1, 2, 3};
  b.wrapped_key = {4};
  b.ciphertext = {5};
  auto parsed = ParsePackageBody(EncodePackageBody(b));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_TRUE(parsed->reclassification.empty());
  b.reclassification = {6, 7};
  parsed = ParsePackageBody(EncodePackageBody(b));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->reclassification, (Bytes{6, 7}));

  const auto with = [&](std::string_view from, std::string_view to) {
    const Bytes encoded = EncodePackageBody(b);
    std::string edited(encoded.begin(), encoded.end());
    const size_t at = edited.find(from);
    EXPECT_NE(at, std::string::npos);
    edited.replace(at, from.size(), to);
    return ParsePackageBody(AsBytes(edited));
  };
  auto empty = with("\"reclassification\":\"Bgc=\"", "\"reclassification\":\"\"");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("`reclassification` is empty"), std::string::npos);
  // A release carries none.
  auto release = with("\"kind\":\"forward\"", "\"kind\":\"release\"");
  ASSERT_FALSE(release);
  EXPECT_NE(release.error().message.find("carries no forward history"), std::string::npos);
}

// A label's commitment is in its JSON and its encoding only when it has one, so that a label of
// an object made before commitments encodes as it did; a malformed one is refused.
TEST(WireTest, ALabelsCommitmentRoundTripsAndIsLeftOutWhenEmpty) {
  NoticeBody consent;
  consent.id = "0123456789abcdef0123456789abcdef";
  consent.kind = "consent";
  consent.object_id = "k-2015";
  consent.originator = "KOR";
  consent.by = "KOR";
  consent.to = "JPN";
  consent.label = Consented();
  auto parsed = ParseNoticeBody("consent", EncodeNoticeBody(consent));
  ASSERT_TRUE(parsed && parsed->label) << parsed.error().ToString();
  EXPECT_EQ(parsed->label->commitment, std::string(64, 'c'));

  Label old = Consented();
  old.commitment.clear();
  consent.label = old;
  const Bytes encoded = EncodeNoticeBody(consent);
  EXPECT_EQ(std::string(encoded.begin(), encoded.end()).find("commitment"), std::string::npos);
  parsed = ParseNoticeBody("consent", encoded);
  ASSERT_TRUE(parsed && parsed->label);
  EXPECT_TRUE(parsed->label->commitment.empty());
  const Bytes with = EncodeLabel(Consented());
  const Bytes without = EncodeLabel(old);
  EXPECT_NE(with, without);
  EXPECT_TRUE(std::equal(without.begin(), without.end(), with.begin()));  // only appended

  for (const std::string& bad :
       {std::string(63, 'c'), std::string(64, 'C'), std::string(64, 'g'), std::string()}) {
    const Bytes body = EncodeNoticeBody(consent);
    std::string text(body.begin(), body.end());
    const std::string key = R"("version":1)";
    text.replace(text.find(key), key.size(), key + R"(,"commitment":")" + bad + "\"");
    auto refused = ParseNoticeBody("consent", AsBytes(text));
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message.find("64 lowercase hex digits"), std::string::npos)
        << refused.error().message;
  }
  EXPECT_EQ(ContentCommitment(AsBytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(WireTest, AForwardsLabelIsTheOneConsentedOrAReclassifiedVersionOfIt) {
  const NoticeBody to_iii = Reclassification("III", 2);
  const auto lowered = [](Label& l) {
    l.level = "III";
    l.version = 2;
  };
  const struct {
    const char* what;
    std::function<void(Label&)> edit;
    const NoticeBody* reclassification;
    Code code;  // kOk: taken
    const char* message;
  } kCases[] = {
      {"the consented label", [](Label&) {}, nullptr, Code::kOk, ""},
      {"the consented label, a notice beside it", [](Label&) {}, &to_iii, Code::kInvalidArgument,
       "does not need"},
      {"another id", [](Label& l) { l.id = "k-other"; }, nullptr, Code::kPermissionDenied,
       "differs in `id`"},
      {"another originator", [](Label& l) { l.originator = "USA"; }, nullptr,
       Code::kPermissionDenied, "differs in `originator`"},
      {"another topic", [](Label& l) { l.topics = {"weather"}; }, nullptr, Code::kPermissionDenied,
       "differs in `topics`"},
      {"a compartment dropped", [](Label& l) { l.compartments.clear(); }, nullptr,
       Code::kPermissionDenied, "differs in `compartments`"},
      {"releasable to more", [](Label& l) { l.rel_to.push_back("GBR"); }, nullptr,
       Code::kPermissionDenied, "differs in `rel_to`"},
      {"another commitment", [](Label& l) { l.commitment = std::string(64, 'd'); }, nullptr,
       Code::kPermissionDenied, "differs in `commitment`"},
      {"the commitment dropped", [](Label& l) { l.commitment.clear(); }, nullptr,
       Code::kPermissionDenied, "differs in `commitment`"},
      {"the markings reordered",
       [](Label& l) {
         l.rel_to = {"JPN", "USA"};
       },
       nullptr, Code::kPermissionDenied, "differs in `rel_to`"},
      {"another level, same version", [](Label& l) { l.level = "III"; }, nullptr,
       Code::kPermissionDenied, "differs in `level`"},
      {"another level, same version, a notice beside it", [](Label& l) { l.level = "III"; },
       &to_iii, Code::kPermissionDenied, "differs in `level`"},
      {"a newer version without the notice", lowered, nullptr, Code::kPermissionDenied,
       "without the originator's reclassification"},
      {"a newer version with its notice", lowered, &to_iii, Code::kOk, ""},
      {"a newer version, the notice at another level",
       [](Label& l) {
         l.level = "I";
         l.version = 2;
       },
       &to_iii, Code::kPermissionDenied, "is not the one its label gives"},
      {"a newer version, the notice of another version",
       [](Label& l) {
         l.level = "III";
         l.version = 3;
       },
       &to_iii, Code::kPermissionDenied, "is not the one its label gives"},
      {"a newer version with its notice, a compartment dropped",
       [&](Label& l) {
         lowered(l);
         l.compartments.clear();
       },
       &to_iii, Code::kPermissionDenied, "differs in `compartments`"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.what);
    Label label = Consented();
    c.edit(label);
    const Status s = CheckForwardLabel(label, Consented(), c.reclassification);
    if (c.code == Code::kOk) {
      EXPECT_TRUE(s) << s.error().ToString();
      continue;
    }
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, c.code);
    EXPECT_NE(s.error().message.find(c.message), std::string::npos) << s.error().message;
  }

  // A label older than the consent's: the forwarder has not applied a reclassification.
  Label consented = Consented();
  consented.level = "III";
  consented.version = 2;
  const Status stale = CheckForwardLabel(Consented(), consented, nullptr);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Code::kFailedPrecondition);
  EXPECT_NE(stale.error().message.find("older than the version 2"), std::string::npos);

  // A notice of another object, or one that is not a reclassification.
  Label newer = Consented();
  newer.level = "III";
  newer.version = 2;
  NoticeBody other = to_iii;
  other.object_id = "k-other";
  EXPECT_FALSE(CheckForwardLabel(newer, Consented(), &other));
  other = to_iii;
  other.kind = "destroy";
  EXPECT_FALSE(CheckForwardLabel(newer, Consented(), &other));
  other = to_iii;
  other.originator = "USA";
  EXPECT_FALSE(CheckForwardLabel(newer, Consented(), &other));
}

// A partner's public key file: what a node exports imports to the same keys; anything else is a
// clear refusal, never a throw.
TEST(WireTest, APublicKeyFileRoundTripsAndAnythingElseIsRefused) {
  PublicKeys keys{"KOR", {}, {}};
  for (size_t i = 0; i < kPublicKeySize; ++i) {
    keys.sign[i] = static_cast<uint8_t>(i);
    keys.wrap[i] = static_cast<uint8_t>(255 - i);
  }
  const std::string text = EncodePublicKeys(keys);
  EXPECT_EQ(text.back(), '\n');
  auto parsed = ParsePublicKeys(text);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->party, "KOR");
  EXPECT_EQ(parsed->sign, keys.sign);
  EXPECT_EQ(parsed->wrap, keys.wrap);

  const std::string short_key = Base64Encode(Bytes(31, 1));
  for (const std::string& bad :
       {std::string(""), std::string("[]"), std::string("{\"format\":\"accord/1\"}"),
        std::string("{\"format\":\"accord-public/1\",\"party\":\"KOR\"}"),
        "{\"format\":\"accord-public/1\",\"party\":\"KOR\",\"sign\":\"" + short_key +
            "\",\"wrap\":\"" + short_key + "\"}",
        text.substr(0, text.size() / 2)}) {
    SCOPED_TRACE(bad);
    auto refused = ParsePublicKeys(bad);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
  }

  // What is wrong is said: a file cut short or with a key twice, and one that names no party.
  const auto says = [](const std::string& bad) {
    auto refused = ParsePublicKeys(bad);
    return refused ? std::string("accepted") : refused.error().message;
  };
  EXPECT_THAT(says(text.substr(0, text.size() / 2)),
              testing::MatchesRegex("not a public key file \\(.+; expected the output of "
                                    "`accord keys export-public`\\)"));
  EXPECT_THAT(says("{\"party\":\"KOR\"," + text.substr(1)),
              testing::HasSubstr("(duplicate key `party`;"));
  std::string no_party = text;
  no_party.replace(no_party.find("\"KOR\""), 5, "\"\"");
  EXPECT_EQ(says(no_party), "the public key file names no party (`party`)");
}

}  // namespace
}  // namespace accord::node_internal
