#include "workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace accord::bench {
namespace {

constexpr int kLevels = 4;
constexpr int kTopics = 10;

Instant Date(int year, unsigned month, unsigned day) {
  return *FromCivil(year, month, day, 0, ZoneOffset{0});
}

std::string Topic(int i) { return fmt::format("t{}", i); }

}  // namespace

Policy GeneratePolicy(const WorkloadOptions& o) {
  std::mt19937_64 rng(o.seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Policy p;
  for (int i = 0; i < o.parties; ++i) {
    Party party{fmt::format("N{:02}", i), fmt::format("Nation {}", i), {}};
    for (int l = 1; l <= kLevels; ++l) {
      party.levels.push_back(Level{fmt::format("L{}", l), fmt::format("Level {}", l), "", l});
    }
    p.parties.push_back(std::move(party));
  }
  for (int g = 0; g < o.agreements; ++g) {
    Agreement a;
    a.id = fmt::format("g{:03}", g);
    a.title = fmt::format("Agreement {}", g);
    const int kind = g % 10;  // 0–6 bilateral, 7–8 multilateral, 9 hub-and-spoke
    const int size = kind <= 6 ? 2 : uniform(3, 6);
    std::set<int> members;
    while (static_cast<int>(members.size()) < size) members.insert(uniform(0, o.parties - 1));
    for (int m : members) a.parties.push_back(p.parties[m].id);
    if (kind == 9) a.hub = a.parties[uniform(0, size - 1)];
    a.zone = ZoneOffset{uniform(-12, 14) * 60};
    a.in_force = Date(uniform(1985, 2020), static_cast<unsigned>(uniform(1, 12)),
                      static_cast<unsigned>(uniform(1, 28)));
    if (uniform(0, 1) == 0) {
      a.term = CalendarDuration{1, 0, 0, 0};
      a.renewal = uniform(0, 9) == 0 ? Renewal::kNone : Renewal::kAutomatic;
    }
    a.notice_period = CalendarDuration{0, 0, 90, 0};
    a.survival = uniform(0, 4) == 0 ? Survival::kRevoke : Survival::kProtect;
    if (uniform(0, 3) == 0) {
      for (int t = 0; t < kTopics; ++t) {
        if (uniform(0, 1)) a.scope.push_back(Topic(t));
      }
    }
    if (a.scope.empty()) a.scope = {"*"};
    // Rows L1..L3 always; the top level only in some agreements (like Korea's Class I).
    const int rows = uniform(0, 2) == 0 ? kLevels : kLevels - 1;
    for (int r = 1; r <= rows; ++r) {
      LevelRow row;
      for (const std::string& party : a.parties) row.levels[party] = {fmt::format("L{}", r)};
      a.levels.push_back(std::move(row));
    }
    // History: a notice, perhaps suspended and resumed or withdrawn; perhaps a mutual end.
    Instant t = a.in_force;
    auto later = [&](int max_days) {
      t = Instant{t.micros + int64_t{uniform(1, max_days)} * 86'400'000'000};
      return t;
    };
    const std::string by = a.parties[uniform(0, size - 1)];
    switch (uniform(0, 5)) {
      case 0:
        a.events.push_back({EventKind::kTerminationNotice, by, later(5000), ""});
        break;
      case 1:
        a.events.push_back({EventKind::kTerminationNotice, by, later(5000), ""});
        a.events.push_back({EventKind::kNoticeSuspended, by, later(200), ""});
        if (uniform(0, 1)) a.events.push_back({EventKind::kNoticeResumed, by, later(2000), ""});
        break;
      case 2:
        a.events.push_back({EventKind::kTerminationNotice, by, later(5000), ""});
        a.events.push_back({EventKind::kNoticeWithdrawn, by, later(80), ""});
        break;
      case 3:
        a.events.push_back({EventKind::kTerminated, by, later(8000), ""});
        break;
      default:
        break;
    }
    p.agreements.push_back(std::move(a));
  }
  return p;
}

void WritePolicyDir(const Policy& policy, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "agreements");
  std::ofstream parties(fs::path(dir) / "parties.toml");
  for (const Party& p : policy.parties) {
    parties << fmt::format("[[party]]\nid = \"{}\"\nname = \"{}\"\nlevels = [", p.id, p.name);
    for (size_t i = 0; i < p.levels.size(); ++i) {
      parties << fmt::format("{}{{ id = \"{}\", name = \"{}\" }}", i ? ", " : " ", p.levels[i].id,
                             p.levels[i].name);
    }
    parties << " ]\n\n";
  }
  auto quoted_list = [](const std::vector<std::string>& xs) {
    std::string out = "[";
    for (size_t i = 0; i < xs.size(); ++i) out += fmt::format("{}\"{}\"", i ? ", " : "", xs[i]);
    return out + "]";
  };
  for (const Agreement& a : policy.agreements) {
    std::ofstream f(fs::path(dir) / "agreements" / (a.id + ".toml"));
    f << fmt::format(
        "id = \"{}\"\ntitle = \"{}\"\nparties = {}\nin_force = \"{}\"\nzone = \"{}\"\n", a.id,
        a.title, quoted_list(a.parties), FormatInstant(a.in_force, a.zone),
        FormatZoneOffset(a.zone));
    if (a.term) f << fmt::format("term = \"{}\"\n", FormatDuration(*a.term));
    f << fmt::format("renewal = \"{}\"\nnotice_period = \"{}\"\nsurvival = \"{}\"\nscope = {}\n",
                     a.renewal == Renewal::kNone ? "none" : "automatic",
                     FormatDuration(a.notice_period),
                     a.survival == Survival::kRevoke ? "revoke" : "protect", quoted_list(a.scope));
    if (a.hub) f << fmt::format("hub = \"{}\"\n", *a.hub);
    f << "levels = [\n";
    for (const LevelRow& row : a.levels) {
      f << "  {";
      bool first = true;
      for (const auto& [party, ids] : row.levels) {
        f << fmt::format("{} {} = {}", first ? "" : ",", party, quoted_list(ids));
        first = false;
      }
      f << " },\n";
    }
    f << "]\n";
    for (const AgreementEvent& e : a.events) {
      f << fmt::format("\n[[event]]\nkind = \"{}\"\nby = \"{}\"\nat = \"{}\"\n",
                       EventKindName(e.kind), e.by, FormatInstant(e.at, a.zone));
    }
  }
}

std::vector<std::string> GenerateRequests(const Policy& policy, uint64_t seed, size_t count) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int n = static_cast<int>(policy.parties.size());
  // Agreements shared by each ordered pair, for consistent histories.
  std::vector<std::vector<const Agreement*>> shared(static_cast<size_t>(n) * n);
  for (const Agreement& a : policy.agreements) {
    for (const std::string& x : a.parties) {
      for (const std::string& y : a.parties) {
        if (x == y) continue;
        const int xi = std::stoi(x.substr(1)), yi = std::stoi(y.substr(1));
        shared[static_cast<size_t>(xi) * n + yi].push_back(&a);
      }
    }
  }
  auto instant = [&]() {
    return Date(uniform(1986, 2030), static_cast<unsigned>(uniform(1, 12)),
                static_cast<unsigned>(uniform(1, 28)));
  };
  auto when = [&]() { return FormatInstant(instant(), ZoneOffset{540}); };
  auto party = [&](int i) { return policy.parties[i].id; };
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t q = 0; q < count; ++q) {
    const int origin = uniform(0, n - 1);
    std::string topics, rel_to, releases, forwards, consents;
    for (int k = uniform(0, 2); k > 0; --k) {
      topics += fmt::format("{}\"{}\"", topics.empty() ? "" : ",", Topic(uniform(0, kTopics - 1)));
    }
    std::vector<int> holders;
    std::vector<int> releasable;
    for (int k = uniform(0, 5); k > 0; --k) {
      const int p = uniform(0, n - 1);
      if (p == origin) continue;
      rel_to += fmt::format("{}\"{}\"", rel_to.empty() ? "" : ",", party(p));
      releasable.push_back(p);
    }
    // Releases to partners that share an agreement with the originator.
    for (int k = uniform(0, 3); k > 0; --k) {
      const int to = uniform(0, n - 1);
      const auto& list = shared[static_cast<size_t>(origin) * n + to];
      if (to == origin || list.empty()) continue;
      const Agreement* a = list[uniform(0, static_cast<int>(list.size()) - 1)];
      const Instant released = instant();
      releases += fmt::format("{}{{\"to\":\"{}\",\"at\":\"{}\",\"agreement\":\"{}\"}}",
                              releases.empty() ? "" : ",", party(to),
                              FormatInstant(released, ZoneOffset{540}), a->id);
      holders.push_back(to);
      // Sometimes the holder forwards it on, after the release, under an agreement it shares.
      const int third = uniform(0, n - 1);
      const auto& onward = shared[static_cast<size_t>(to) * n + third];
      if (uniform(0, 2) == 0 && third != to && third != origin && !onward.empty()) {
        const Agreement* b = onward[uniform(0, static_cast<int>(onward.size()) - 1)];
        const Instant at = Instant{released.micros + int64_t{uniform(1, 2000)} * 86'400'000'000};
        forwards +=
            fmt::format("{}{{\"from\":\"{}\",\"to\":\"{}\",\"at\":\"{}\",\"agreement\":\"{}\"}}",
                        forwards.empty() ? "" : ",", party(to), party(third),
                        FormatInstant(at, ZoneOffset{540}), b->id);
      }
    }
    const int action = static_cast<int>(q % 3);
    // A forward goes to a party the originator consented to more often than not.
    const int forward_to = uniform(0, n - 1);
    if (action == 2 && uniform(0, 4) < 3) {
      consents += fmt::format("{{\"to\":\"{}\",\"at\":\"{}\"}}", party(forward_to), when());
    }
    for (int k = uniform(0, 2); k > 0; --k) {
      consents += fmt::format("{}{{\"to\":\"{}\",\"at\":\"{}\"}}", consents.empty() ? "" : ",",
                              party(uniform(0, n - 1)), when());
    }
    const std::string at = when();
    const std::string object = fmt::format(
        "{{\"id\":\"o{}\",\"originator\":\"{}\",\"level\":\"L{}\",\"topics\":[{}],\"compartments\":"
        "[],"
        "\"rel_to\":[{}],\"releases\":[{}],\"forwards\":[{}],\"consents\":[{}],\"destroyed_at\":"
        "null}}",
        q, party(origin), uniform(1, kLevels), topics, rel_to, releases, forwards, consents);
    if (action == 0) {
      const int reader = holders.empty() || uniform(0, 3) == 0
                             ? uniform(0, n - 1)
                             : holders[uniform(0, static_cast<int>(holders.size()) - 1)];
      std::string ntk;
      for (int k = uniform(0, 3); k > 0; --k) {
        ntk += fmt::format("{}\"{}\"", ntk.empty() ? "" : ",", Topic(uniform(0, kTopics - 1)));
      }
      out.push_back(
          fmt::format("{{\"id\":\"q{}\",\"action\":\"read\",\"at\":\"{}\",\"subject\":{{\"party\":"
                      "\"{}\",\"clearance\":\"L{}\","
                      "\"need_to_know\":[{}],\"compartments\":[]}},\"object\":{}}}",
                      q, at, party(reader), uniform(1, kLevels), ntk, object));
    } else if (action == 1) {
      // Mostly to a party the object is releasable to, so that the agreement checks run.
      int to = !releasable.empty() && uniform(0, 9) < 7
                   ? releasable[uniform(0, static_cast<int>(releasable.size()) - 1)]
                   : uniform(0, n - 1);
      if (to == origin) to = (to + 1) % n;
      out.push_back(fmt::format(
          "{{\"id\":\"q{}\",\"action\":\"release\",\"at\":\"{}\",\"object\":{},\"to\":\"{}\"}}", q,
          at, object, party(to)));
    } else {
      const int holder = holders.empty()
                             ? (origin + 1) % n
                             : holders[uniform(0, static_cast<int>(holders.size()) - 1)];
      int to = forward_to;
      while (to == holder || to == origin) to = (to + 1) % n;
      out.push_back(
          fmt::format("{{\"id\":\"q{}\",\"action\":\"forward\",\"at\":\"{}\",\"object\":{},"
                      "\"holder\":\"{}\",\"to\":\"{}\"}}",
                      q, at, object, party(holder), party(to)));
    }
  }
  return out;
}

}  // namespace accord::bench
