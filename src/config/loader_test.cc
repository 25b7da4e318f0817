// One test per kind of mistake in a policy directory: each checks the message and its position.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "accord/config.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kParties = R"(
[[party]]
id = "KOR"
name = "Republic of Korea"
levels = [ { id = "III", name = "군사III급비밀", gloss = "Military Secret Class III" },
           { id = "II", name = "군사II급비밀", gloss = "Military Secret Class II" },
           { id = "I", name = "군사I급비밀", gloss = "Military Secret Class I" } ]

[[party]]
id = "JPN"
name = "Japan"
levels = [ { id = "HI", name = "秘", gloss = "Confidential", rank = 1 },
           { id = "GOKUHI", name = "極秘", gloss = "Secret", rank = 2 },
           { id = "TOKUTEI", name = "特定秘密", gloss = "Specially Designated Secret", rank = 2 } ]
)";

// The header of a valid agreement (lines 1–9); tests append their own lines.
constexpr std::string_view kAgreementHead = R"(id = "kor-jpn"
parties = ["KOR", "JPN"]
in_force = 2016-11-23
zone = "+09:00"
term = "P1Y"
notice_period = "P90D"
scope = ["*"]
levels = [ { KOR = ["II"], JPN = ["GOKUHI", "TOKUTEI"] },
           { KOR = ["III"], JPN = ["HI"] } ]
)";

LoadResult Load(std::string_view parties, std::string_view agreement,
                std::optional<std::string_view> subjects = std::nullopt) {
  PolicySources s;
  s.parties = PolicyFile{"parties.toml", std::string(parties)};
  if (!agreement.empty()) {
    s.agreements.push_back(PolicyFile{"agreements/kor-jpn.toml", std::string(agreement)});
  }
  if (subjects) s.subjects = PolicyFile{"subjects.toml", std::string(*subjects)};
  return LoadPolicy(s);
}

// Expects exactly one diagnostic at file:line:column containing `text`.
void ExpectOne(const LoadResult& r, std::string_view file, uint32_t line, uint32_t column,
               std::string_view text) {
  ASSERT_FALSE(r.has_value()) << "expected a diagnostic containing: " << text;
  ASSERT_EQ(r.error().size(), 1u) << [&] {
    std::string all;
    for (const auto& d : r.error()) all += d.ToString() + "\n";
    return all;
  }();
  const Diagnostic& d = r.error()[0];
  EXPECT_EQ(d.file, file);
  EXPECT_EQ(d.line, line) << d.ToString();
  EXPECT_EQ(d.column, column) << d.ToString();
  EXPECT_THAT(d.message, HasSubstr(std::string(text)));
  EXPECT_EQ(d.message.find('\n'), std::string::npos) << "messages are one line";
}

std::string With(std::string_view extra) {
  return std::string(kAgreementHead) + std::string(extra);
}

TEST(LoaderTest, ValidPolicyLoads) {
  auto r = Load(kParties, With(R"(
[[event]]
kind = "termination-notice"
by = "KOR"
at = 2019-08-23T15:25:00+09:00
note = "notice"
)"));
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  ASSERT_EQ(r->parties.size(), 2u);
  EXPECT_EQ(r->parties[0].levels[0].name, "군사III급비밀");
  EXPECT_EQ(r->parties[0].levels[2].rank, 3);  // no ranks: rank = position
  EXPECT_EQ(r->parties[1].levels[2].rank, 2);  // TOKUTEI ranks with GOKUHI
  const Agreement& a = r->agreements[0];
  EXPECT_EQ(FormatInstant(a.in_force, a.zone), "2016-11-23T00:00:00+09:00");
  EXPECT_EQ(a.term, (CalendarDuration{1, 0, 0, 0}));
  EXPECT_EQ(a.renewal, Renewal::kAutomatic);  // default
  EXPECT_EQ(a.survival, Survival::kProtect);  // default
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(FormatInstant(a.events[0].at, a.zone), "2019-08-23T15:25:00+09:00");
}

TEST(LoaderTest, InstantsAsStringsAndLocalDateTimes) {
  std::string text(kAgreementHead);
  text.replace(text.find("in_force = 2016-11-23"), 21, "in_force = \"2016-11-23T00:00:00+09:00\"");
  auto r =
      Load(kParties,
           text + "[[event]]\nkind = \"terminated\"\nby = \"JPN\"\nat = 2020-01-01T10:00:00\n");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_EQ(FormatInstant(r->agreements[0].events[0].at, ZoneOffset{540}),
            "2020-01-01T10:00:00+09:00");
}

TEST(LoaderTest, TomlSyntaxError) {
  auto r = Load(kParties, "id = \"x\"\nparties = [\"KOR\", \n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].file, "agreements/kor-jpn.toml");
  EXPECT_GE(r.error()[0].line, 2u);
}

TEST(LoaderTest, UnknownKey) {
  ExpectOne(Load(kParties, With("survivl = \"protect\"\n")), "agreements/kor-jpn.toml", 10, 11,
            "unknown key `survivl` in an agreement");
  // A quoted key spells anything with escapes: the diagnostic is one line, with nothing a
  // terminal would act on (decision #156).
  auto escaped = Load(kParties, With("\"\\u001b]0;x\\u0007\\n\" = 1\n"));
  ASSERT_FALSE(escaped.has_value());
  ASSERT_EQ(escaped.error().size(), 1u);
  EXPECT_EQ(escaped.error()[0].message, "unknown key `\\x1b]0;x\\x07\\x0a` in an agreement");
}

TEST(LoaderTest, MissingRequiredKey) {
  std::string text(kAgreementHead);
  text.erase(text.find("zone = \"+09:00\"\n"), 16);
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 1, 1, "an agreement needs `zone`");
}

TEST(LoaderTest, WrongType) {
  std::string text(kAgreementHead);
  text.replace(text.find("parties = [\"KOR\", \"JPN\"]"), 24, "parties = \"KOR JPN\"      ");
  auto r = Load(kParties, text);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].line, 2u);
  EXPECT_EQ(r.error()[0].column, 11u);
  EXPECT_THAT(r.error()[0].message, HasSubstr("`parties` must be an array of strings"));
}

TEST(LoaderTest, BadPartyId) {
  std::string parties(kParties);
  parties.replace(parties.find("id = \"JPN\""), 10, "id = \"jp\"");
  auto r = Load(parties, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].ToString().substr(0, 17), "parties.toml:10:6");
  EXPECT_THAT(r.error()[0].message, HasSubstr("party id `jp` must match"));
}

TEST(LoaderTest, DuplicateParty) {
  std::string parties(kParties);
  parties.replace(parties.find("id = \"JPN\""), 10, "id = \"KOR\"");
  auto r = Load(parties, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].line, 10u);
  EXPECT_THAT(r.error()[0].message, HasSubstr("party `KOR` is defined twice"));
}

TEST(LoaderTest, LevelTwiceInScheme) {
  std::string parties(kParties);
  parties.replace(parties.find("id = \"TOKUTEI\""), 14, "id = \"HI\"     ");
  auto r = Load(parties, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].file, "parties.toml");
  EXPECT_EQ(r.error()[0].line, 14u);
  EXPECT_THAT(r.error()[0].message, HasSubstr("level `HI` appears twice in the scheme of `JPN`"));
}

TEST(LoaderTest, RanksAllOrNone) {
  std::string parties(kParties);
  parties.replace(parties.find(", rank = 1"), 10, "");
  auto r = Load(parties, With(""));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].line, 12u);
  EXPECT_THAT(r.error()[0].message,
              HasSubstr("either every level of `JPN` has a `rank` or none does"));
}

TEST(LoaderTest, RanksNeverDecrease) {
  std::string parties(kParties);
  parties.replace(parties.find("rank = 2 },\n"), 8, "rank = 0");
  // Columns count characters, not bytes: 極秘 is two columns wide here.
  ExpectOne(Load(parties, With("")), "parties.toml", 13, 67,
            "rank of level `GOKUHI` is lower than the level before it");
}

TEST(LoaderTest, AgreementWithUnknownParty) {
  std::string text(kAgreementHead);
  text.replace(text.find("\"JPN\"]\nin_force"), 5, "\"USA\"");
  auto r = Load(kParties, text);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].line, 2u);
  EXPECT_THAT(r.error()[0].message, HasSubstr("unknown party `USA`"));
}

TEST(LoaderTest, RowMissingAParty) {
  std::string text(kAgreementHead);
  text.replace(text.find("{ KOR = [\"III\"], JPN = [\"HI\"] }"), 31, "{ KOR = [\"III\"] }");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 9, 12,
            "equivalence row 2 does not map party `JPN`");
}

TEST(LoaderTest, RowWithUnknownLevel) {
  std::string text(kAgreementHead);
  text.replace(text.find("JPN = [\"HI\"]"), 12, "JPN = [\"XX\"]");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 9, 35,
            "unknown level `XX` for party `JPN`");
}

TEST(LoaderTest, LevelInTwoRows) {
  std::string text(kAgreementHead);
  text.replace(text.find("JPN = [\"HI\"]"), 12, "JPN = [\"HI\", \"GOKUHI\"]");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 9, 35,
            "level `GOKUHI` of `JPN` is listed in equivalence rows 1 and 2");
}

TEST(LoaderTest, RowNamesAStranger) {
  std::string text(kAgreementHead);
  text.replace(text.find("{ KOR = [\"III\"], JPN = [\"HI\"] }"), 31,
               "{ KOR = [\"III\"], JPN = [\"HI\"], USA = [\"C\"] }");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 9, 49,
            "party `USA` in equivalence row 2 is not a party");
}

TEST(LoaderTest, HubNotAParty) {
  ExpectOne(Load(kParties, With("hub = \"USA\"\n")), "agreements/kor-jpn.toml", 10, 7,
            "hub `USA` is not a party");
}

TEST(LoaderTest, RenewalNoneNeedsATerm) {
  std::string text(kAgreementHead);
  text.erase(text.find("term = \"P1Y\"\n"), 13);
  ExpectOne(Load(kParties, text + "renewal = \"none\"\n"), "agreements/kor-jpn.toml", 9, 11,
            "`renewal = \"none\"` needs a `term`");
}

TEST(LoaderTest, BadRenewalValue) {
  ExpectOne(Load(kParties, With("renewal = \"yearly\"\n")), "agreements/kor-jpn.toml", 10, 11,
            "`renewal` is `automatic` or `none`");
}

TEST(LoaderTest, BadDuration) {
  std::string text(kAgreementHead);
  text.replace(text.find("\"P90D\""), 6, "\"90 days\"");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 6, 17, "bad duration `90 days`");
}

TEST(LoaderTest, BadZone) {
  std::string text(kAgreementHead);
  text.replace(text.find("\"+09:00\""), 8, "\"Asia/Seoul\"");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 4, 8, "bad zone `Asia/Seoul`");
}

TEST(LoaderTest, BadInstant) {
  ExpectOne(
      Load(kParties,
           With("[[event]]\nkind = \"termination-notice\"\nby = \"KOR\"\nat = \"2019-02-30\"\n")),
      "agreements/kor-jpn.toml", 13, 6, "no such date `2019-02-30`");
}

// A malformed TOML date-time is refused by the TOML parser, which locates it inside the token
// alone; the diagnostic still names the line and column of the file where it is.
TEST(LoaderTest, BadTomlDateTimeNamesItsLine) {
  ExpectOne(Load(kParties, With("[[event]]\nkind = \"termination-notice\"\nby = \"KOR\"\n"
                                "at = 2019-02-30T15:25:00+09:00\n")),
            "agreements/kor-jpn.toml", 13, 16, "invalid date");
  // Not at a comment or a string that quotes the same text, before it or on its line.
  ExpectOne(Load(kParties, With("# at = 2019-02-30T15:25:00+09:00 is no date\n[[event]]\n"
                                "kind = \"termination-notice\"  # \"#\" 2019-02-30T15:25:00+09:00\n"
                                "by = \"KOR\"\nnote = 'not 2019-02-30T15:25:00+09:00'\n"
                                "at = 2019-02-30T15:25:00+09:00\n")),
            "agreements/kor-jpn.toml", 15, 16, "invalid date");
}

// A word without quotes where a value goes, the usual slip for a string: toml11 tries it as a
// boolean or a number and says only that it is not one. The diagnostic says to quote it, at the
// word's column (toml11 places some of these at the key).
TEST(LoaderTest, AStringWithoutQuotesIsSaidSo) {
  const auto event = [](std::string_view kind, std::string_view by) {
    return With(fmt::format("[[event]]\nkind = {}\nby = {}\nat = 2019-01-01\n", kind, by));
  };
  ExpectOne(Load(kParties, event("termination-notice", "\"KOR\"")), "agreements/kor-jpn.toml", 11,
            8,
            "`termination-notice` is not a TOML value: text goes in quotes "
            "(\"termination-notice\")");
  ExpectOne(Load(kParties, event("\"termination-notice\"", "KOR  # Korea")),
            "agreements/kor-jpn.toml", 12, 6, "`KOR` is not a TOML value: text goes in quotes");
  ExpectOne(Load(kParties, With("renewal = none\n")), "agreements/kor-jpn.toml", 10, 11,
            "`none` is not a TOML value");
  // In an array, at the word (toml11 shows where the array starts first); in a CRLF file too.
  std::string head(kAgreementHead);
  head.replace(head.find("[\"KOR\", \"JPN\"]"), 14, "[KOR, JPN]");
  ExpectOne(Load(kParties, head), "agreements/kor-jpn.toml", 2, 12,
            "`KOR` is not a TOML value: text goes in quotes (\"KOR\")");
  std::string crlf;
  for (const char c : event("termination-notice", "\"KOR\"")) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  ExpectOne(Load(kParties, crlf), "agreements/kor-jpn.toml", 11, 8,
            "`termination-notice` is not a TOML value: text goes in quotes "
            "(\"termination-notice\")");
  // Anything else keeps toml11's words, with what it expected where.
  ExpectOne(Load(kParties, With("term2 = 12x\n")), "agreements/kor-jpn.toml", 10, 11,
            "invalid line format (expected newline, but got 'x')");
}

// A parties.toml that is not TOML is the one mistake reported: the parties that the agreements
// and subjects name are not all reported unknown (before it, by file name) for want of it.
TEST(LoaderTest, APartiesFileThatIsNotTomlIsTheOneMistake) {
  const auto broken = Load("[[party]\nid = \"KOR\"\n", With(""),
                           "[[subject]]\nid = \"a\"\nparty = \"KOR\"\nclearance = \"II\"\n");
  ASSERT_FALSE(broken.has_value());
  ASSERT_EQ(broken.error().size(), 1u) << broken.error().back().ToString();
  EXPECT_EQ(broken.error()[0].file, "parties.toml");
  EXPECT_EQ(broken.error()[0].line, 1u);
  ExpectOne(Load("# no parties\n", With("")), "parties.toml", 1, 1,
            "needs a `[[party]]` table for each party");
}

TEST(LoaderTest, EventsOutOfOrder) {
  ExpectOne(Load(kParties, With(R"([[event]]
kind = "termination-notice"
by = "KOR"
at = 2019-08-23T15:25:00+09:00
[[event]]
kind = "notice-suspended"
by = "KOR"
at = 2019-08-22T18:00:00+09:00
)")),
            "agreements/kor-jpn.toml", 17, 6,
            "event 2 (`notice-suspended`) is earlier than the event before it");
}

TEST(LoaderTest, EventBeforeEntryIntoForce) {
  ExpectOne(Load(kParties,
                 With("[[event]]\nkind = \"termination-notice\"\nby = \"KOR\"\nat = 2015-01-01\n")),
            "agreements/kor-jpn.toml", 13, 6, "before the agreement entered into force");
}

TEST(LoaderTest, EventByANonParty) {
  ExpectOne(Load(kParties,
                 With("[[event]]\nkind = \"termination-notice\"\nby = \"USA\"\nat = 2019-01-01\n")),
            "agreements/kor-jpn.toml", 12, 6, "`USA` is not a party of agreement `kor-jpn`");
}

TEST(LoaderTest, UnknownEventKind) {
  ExpectOne(Load(kParties, With("[[event]]\nkind = \"notice\"\nby = \"KOR\"\nat = 2019-01-01\n")),
            "agreements/kor-jpn.toml", 11, 8, "unknown event kind `notice`");
}

// An event skipped for a mistake leaves no position behind: the next one's mistake is found on
// its own lines.
TEST(LoaderTest, AMistakeAfterASkippedEventNamesItsOwnLine) {
  auto r = Load(kParties, With("[[event]]\nkind = \"notice\"\nby = \"KOR\"\nat = 2019-01-01\n"
                               "[[event]]\nkind = \"termination-notice\"\nby = \"USA\"\n"
                               "at = 2019-01-01\n"));
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error().size(), 2u);
  EXPECT_EQ(r.error()[0].ToString(),
            "agreements/kor-jpn.toml:11:8: unknown event kind `notice`; "
            "expected termination-notice, notice-suspended, "
            "notice-resumed, notice-withdrawn or terminated");
  EXPECT_EQ(r.error()[1].ToString(),
            "agreements/kor-jpn.toml:16:6: `USA` is not a party of agreement `kor-jpn`");
}

TEST(LoaderTest, SuspendWithoutNotice) {
  ExpectOne(Load(kParties,
                 With("[[event]]\nkind = \"notice-suspended\"\nby = \"KOR\"\nat = 2019-01-01\n")),
            "agreements/kor-jpn.toml", 10, 1, "no active notice of `KOR` to suspend");
}

TEST(LoaderTest, ResumeWithoutSuspension) {
  ExpectOne(Load(kParties, With(R"([[event]]
kind = "termination-notice"
by = "KOR"
at = 2019-01-01
[[event]]
kind = "notice-resumed"
by = "KOR"
at = 2019-02-01
)")),
            "agreements/kor-jpn.toml", 14, 1, "no suspended notice of `KOR` to resume");
}

TEST(LoaderTest, WithdrawWithoutNotice) {
  ExpectOne(Load(kParties,
                 With("[[event]]\nkind = \"notice-withdrawn\"\nby = \"JPN\"\nat = 2019-01-01\n")),
            "agreements/kor-jpn.toml", 10, 1, "no notice of `JPN` to withdraw");
}

TEST(LoaderTest, EventAfterMutualTermination) {
  ExpectOne(Load(kParties, With(R"([[event]]
kind = "terminated"
by = "KOR"
at = 2019-01-01
[[event]]
kind = "termination-notice"
by = "JPN"
at = 2019-02-01
)")),
            "agreements/kor-jpn.toml", 14, 1, "follows the mutual termination");
}

TEST(LoaderTest, ScopeMistakes) {
  std::string text(kAgreementHead);
  text.replace(text.find("scope = [\"*\"]"), 13, "scope = [\"*\", \"x\"]");
  ExpectOne(Load(kParties, text), "agreements/kor-jpn.toml", 7, 9,
            "`*` must be the only scope entry");
  std::string empty(kAgreementHead);
  empty.replace(empty.find("scope = [\"*\"]"), 13, "scope = []");
  ExpectOne(Load(kParties, empty), "agreements/kor-jpn.toml", 7, 9, "scope is empty");
}

TEST(LoaderTest, DuplicateAgreementId) {
  PolicySources s;
  s.parties = PolicyFile{"parties.toml", std::string(kParties)};
  s.agreements.push_back(PolicyFile{"agreements/a.toml", std::string(kAgreementHead)});
  s.agreements.push_back(PolicyFile{"agreements/b.toml", std::string(kAgreementHead)});
  auto r = LoadPolicy(s);
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].ToString(), "agreements/b.toml:1:6: agreement `kor-jpn` is defined twice");
}

TEST(LoaderTest, SubjectWithUnknownClearance) {
  ExpectOne(
      Load(kParties, With(""), "[[subject]]\nid = \"a\"\nparty = \"JPN\"\nclearance = \"II\"\n"),
      "subjects.toml", 4, 13, "unknown level `II` for party `JPN`");
}

TEST(LoaderTest, ReportsEveryMistakeInOrder) {
  auto r = Load(kParties, With("hub = \"USA\"\nsurvival = \"keep\"\n"));
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error().size(), 2u);
  EXPECT_EQ(r.error()[0].line, 10u);
  EXPECT_EQ(r.error()[1].line, 11u);
}

TEST(LoaderTest, DeepNestingIsRefusedBeforeParsing) {
  // Regression: toml11 overflowed the stack on these (found by fuzz/policy_loader_fuzz).
  ExpectOne(Load("x = " + std::string(5000, '[') + std::string(5000, ']'), ""), "parties.toml", 1,
            37, "nested deeper than 32 levels");
  std::string tables = "x = ";
  for (int i = 0; i < 3000; ++i) tables += "{a=";
  ExpectOne(Load(tables, ""), "parties.toml", 1, 101, "nested deeper than 32 levels");
  // Brackets inside strings and comments do not count.
  const std::string quoted = "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n[[party]]\nid = \"" +
                             std::string(40, '[') + "\"\nname =  + std::string(40, '{') + \n";
  auto r = Load(quoted, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error()[0].message, ::testing::Not(HasSubstr("nested")));
  // A multi-line string closed by four or five quotes (the last one or two belong to it) does
  // not hide the nesting after it, in either kind of string (a review found the scan taking the
  // fourth quote for the start of a new string).
  for (const std::string quotes : {"'''", "\"\"\""}) {
    for (const std::string extra : {"", "'", "''", "\"", "\"\""}) {
      if (!extra.empty() && extra[0] != quotes[0]) continue;
      const std::string text = "x = [" + quotes + "s" + quotes + extra + ", " +
                               std::string(5000, '[') + std::string(5000, ']') + "]";
      ExpectOne(Load(text, ""), "parties.toml", 1, static_cast<uint32_t>(46 + extra.size()),
                "nested deeper than 32 levels");
    }
  }
  EXPECT_FALSE(TomlTooDeep("a = '''x''''\nb = [[1], [2]]\n", "f"));
  EXPECT_FALSE(TomlTooDeep("a = \"\"\"x\"\"\"\"\"\nb = [[1]]\n", "f"));
}

// toml11 3.7 reads past its buffer on a byte that is not UTF-8 inside a literal string (found by
// fuzz/serve_config_fuzz under ASan): such text is refused before toml11 sees it, at the byte's
// line and column, in every file of a policy, whatever kind of string or comment holds it.
TEST(LoaderTest, TextThatIsNotUtf8IsRefusedBeforeTomlReadsIt) {
  const auto lines_of = [](std::string_view text) {
    return static_cast<uint32_t>(std::count(text.begin(), text.end(), '\n'));
  };
  for (const std::string bad : {"\xff", "\xe3\x81", "\xc0\xaf", "\xed\xa0\x80"}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    for (const std::string& line : {"name = 'a" + bad + "'", "name = '''a" + bad + "'''",
                                    "name = \"a" + bad + "\"", "# a" + bad}) {
      const auto column = static_cast<uint32_t>(line.find(bad) + 1);
      const std::string parties = std::string(kParties) + "\n" + line + "\n";
      ExpectOne(Load(parties, ""), "parties.toml", lines_of(parties), column, "is not UTF-8");
      ExpectOne(Load(kParties, With("\n" + line + "\n")), "agreements/kor-jpn.toml",
                lines_of(kAgreementHead) + 2, column, "is not UTF-8");
      ExpectOne(Load(kParties, "", "x = 1\n" + line), "subjects.toml", 2, column, "is not UTF-8");
    }
  }
  // Columns count characters: the `é` before the byte is one.
  ExpectOne(Load(kParties, "", "x = '\xc3\xa9\xff'"), "subjects.toml", 1, 7,
            "byte 0xff is not UTF-8");
  EXPECT_FALSE(TomlUnsafe("name = '\xea\xb5\xb0'\n", "f"));
  // A byte order mark is no column: the bad byte after `x = '` on line 1 is at column 6.
  const auto after_bom = TomlUnsafe("\xef\xbb\xbfx = '\xff'\n", "f");
  ASSERT_TRUE(after_bom);
  EXPECT_EQ(after_bom->line, 1u);
  EXPECT_EQ(after_bom->column, 6u);
  const std::string deep = "\xef\xbb\xbfx = " + std::string(100, '[');
  const auto too_deep = TomlUnsafe(deep, "f");
  ASSERT_TRUE(too_deep);
  EXPECT_EQ(too_deep->column, 5u + kMaxTomlNesting);  // the first bracket past the limit
}

// A dotted key or table header nests a table per part: toml11 copies and frees them
// recursively, and 100,000 parts overflowed the stack (decision #156).
TEST(LoaderTest, DottedKeysCountAsNesting) {
  const auto parts = [](int n) {
    std::string key = "a";
    for (int i = 1; i < n; ++i) key += ".a";
    return key;
  };
  for (const std::string& line :
       {parts(100'000) + " = 1", "[" + parts(100'000) + "]", "[[" + parts(100'000) + "]]",
        "x = {b = 1, " + parts(100'000) + " = 1}", "y = 1\n" + parts(kMaxTomlNesting + 2) + " = 1",
        "[t]\n" + parts(kMaxTomlNesting + 1) + " = 1",
        // The levels add up: a header's, a key's under it, an inline table's keys.
        "[" + parts(20) + "]\n" + parts(20) + " = 1",
        "[[" + parts(20) + "]]\n" + parts(13) + " = 1",
        "x = {" + parts(20) + " = {" + parts(20) + " = 1}}",
        "x = [{" + parts(16) + " = [{" + parts(16) + " = 1}]}]"}) {
    SCOPED_TRACE(line.substr(0, 40));
    const auto dotted = TomlTooDeep(line, "f");
    ASSERT_TRUE(dotted);
    EXPECT_THAT(dotted->message, HasSubstr("nested deeper than 32 levels"));
  }
  ExpectOne(Load(kParties, "", parts(100'000) + " = 1\n"), "subjects.toml", 1,
            2u * (kMaxTomlNesting + 1), "nested deeper than 32 levels");  // at the 33rd dot
  // Dots where no key is read nest nothing: values, strings, quoted keys, a multi-line array.
  for (const std::string& line : std::vector<std::string>{
           parts(kMaxTomlNesting + 1) + " = 1", "[" + parts(kMaxTomlNesting) + "]", "x = 1.5",
           "x = [\n" + parts(100).substr(1) + "5\n]", "x = {a = [1.5, 2.5], b.c = 1.5}",
           "\"" + parts(100) + "\" = 1", "x = '" + parts(100) + "'",
           "x = 1979-05-27T07:32:00.999Z # " + parts(100),
           "[" + parts(16) + "]\n" + parts(16) + " = 1",
           "[[" + parts(16) + "]]\n" + parts(15) + " = 1",
           "x = {" + parts(16) + " = {" + parts(15) + " = 1}}",
           "[a]\nb = 1\n[" + parts(kMaxTomlNesting) + "]\nc = 1"}) {
    SCOPED_TRACE(line.substr(0, 40));
    EXPECT_FALSE(TomlTooDeep(line, "f"));
  }
}

TEST(LoaderTest, DirectoryErrors) {
  auto missing = LoadPolicyDir("/nonexistent/policy");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error()[0].message, HasSubstr("not a policy directory"));
  const auto dir = std::filesystem::path(testing::TempDir()) / "accord-empty-policy";
  std::filesystem::create_directories(dir);
  auto empty = LoadPolicyDir(dir);
  ASSERT_FALSE(empty.has_value());
  EXPECT_THAT(empty.error()[0].ToString(), HasSubstr("parties.toml: missing"));
  EXPECT_THAT(DiagnosticsToError(empty.error()).message, HasSubstr("parties.toml"));

  // A file over kMaxTomlFileBytes (sparse: nothing is written) is refused before it is read, and
  // one that cannot be read says why; the diagnostic names each once.
  std::ofstream(dir / "parties.toml").close();
  std::filesystem::resize_file(dir / "parties.toml", kMaxTomlFileBytes + 1);
  auto large = LoadPolicyDir(dir);
  ASSERT_FALSE(large.has_value());
  EXPECT_EQ(large.error()[0].ToString(),
            (dir / "parties.toml").string() + ": it is larger than 67108864 bytes");
  std::filesystem::remove(dir / "parties.toml");
  std::filesystem::create_directory(dir / "parties.toml");
  auto directory = LoadPolicyDir(dir);
  ASSERT_FALSE(directory.has_value());
  EXPECT_EQ(directory.error()[0].ToString(),
            (dir / "parties.toml").string() + ": cannot read it: Is a directory");
  std::filesystem::remove_all(dir);
}

// A subjects.toml or agreements/ that is a link to nothing is said, not taken for a policy
// without subjects or agreements (a home would then be made with none, and nothing said).
TEST(LoaderTest, APartThatLinksToNothingIsSaid) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "accord-linked-policy";
  std::filesystem::remove_all(dir);
  std::filesystem::copy(std::filesystem::path(ACCORD_SOURCE_DIR) / "examples/gsomia", dir,
                        std::filesystem::copy_options::recursive);
  ASSERT_TRUE(LoadPolicyDir(dir).has_value());
  std::filesystem::remove(dir / "subjects.toml");
  std::filesystem::create_symlink(dir / "gone.toml", dir / "subjects.toml");
  auto subjects = LoadPolicyDir(dir);
  ASSERT_FALSE(subjects.has_value());
  EXPECT_THAT(subjects.error()[0].ToString(),
              HasSubstr((dir / "subjects.toml").string() + ": cannot read it"));
  std::filesystem::remove(dir / "subjects.toml");
  ASSERT_TRUE(LoadPolicyDir(dir).has_value());  // no subjects at all: allowed

  std::filesystem::remove_all(dir / "agreements");
  std::filesystem::create_symlink(dir / "gone", dir / "agreements");
  auto agreements = LoadPolicyDir(dir);
  ASSERT_FALSE(agreements.has_value());
  EXPECT_EQ(agreements.error()[0].ToString(),
            (dir / "agreements").string() + ": a link to nothing: not a directory");
  std::filesystem::remove(dir / "agreements");
  std::ofstream(dir / "agreements").close();
  EXPECT_EQ(LoadPolicyDir(dir).error()[0].ToString(),
            (dir / "agreements").string() + ": not a directory");
  std::filesystem::remove_all(dir);
}

TEST(LoaderTest, TheGsomiaExampleLoads) {
  auto r = LoadPolicyDir(std::filesystem::path(ACCORD_SOURCE_DIR) / "examples/gsomia");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_EQ(r->parties.size(), 3u);
  EXPECT_EQ(r->agreements.size(), 4u);
  EXPECT_EQ(r->subjects.size(), 4u);
  EXPECT_TRUE(
      LoadPolicyDir(std::filesystem::path(ACCORD_SOURCE_DIR) / "examples/gsomia-no-suspension")
          .has_value());
}

}  // namespace
}  // namespace accord
