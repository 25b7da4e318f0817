#!/usr/bin/env node
// Runs accord's `release` decisions through Cedar (cedar-wasm) and checks them against accord.
//
//   node compare.mjs --policy DIR --requests FILE --accord-out FILE [--accord BIN]
//                    [--runs 3] [--min-seconds 2] [--summary FILE]
//
// 1. Reads the policy directory (agreements/*.toml) and the agreements' [start, end) from
//    `accord agreement list --json` (accord owns the lifecycle of DESIGN.md §2).
// 2. Reads the requests (JSON Lines), keeps the release requests and converts each into the Cedar
//    requests that decide it: one per candidate agreement, i.e. per agreement that has both the
//    originator and the recipient among its parties. Not timed.
// 3. Times the Cedar calls only, for two entry points of cedar-wasm: `statefulIsAuthorized`
//    (policy set parsed once beforehand, as a server would hold it) and `isAuthorized` (policy
//    text parsed on every call). One decision = one accord release request = allow as soon as
//    one of its Cedar calls allows. Each timed run repeats whole passes for at least
//    --min-seconds; the figure is the median of --runs runs.
// 4. Checks that Cedar's allow/deny equals accord's (from `accord decide --no-explain`) for every
//    release request whose accord reason is not a validation failure, and, for the allowed ones,
//    that the first allowing candidate is the agreement accord names. Exits 1 on any mismatch.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

const HERE = dirname(fileURLToPath(import.meta.url));

// accord reasons of requests that fail validation: Cedar is not asked to reproduce those.
const NOT_COMPARED = new Set(['invalid-request', 'unknown-party', 'unknown-level']);

// ---------------------------------------------------------------------------------------------
// Instants

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

// RFC 3339 text with an offset -> epoch microseconds (accord's resolution), as a Cedar Long.
// JavaScript numbers are exact up to 2^53 µs (years 1685..2255); anything outside is refused
// rather than rounded. Throws on text that is not RFC 3339 with an offset.
function toMicros(text) {
  const m = RFC3339.exec(text);
  if (!m) throw new Error(`not an RFC 3339 instant with an offset: ${JSON.stringify(text)}`);
  const [, year, month, day, hour, minute, second, fraction = '', zulu, sign, offH, offM] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  date.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  const offsetMinutes = zulu ? 0 : (sign === '-' ? -1 : 1) * (Number(offH) * 60 + Number(offM));
  const seconds = date.getTime() / 1000 - offsetMinutes * 60;
  const micros = seconds * 1e6 + Math.floor(Number(fraction.padEnd(9, '0')) / 1000);
  if (!Number.isSafeInteger(micros)) throw new Error(`instant out of the exact range: ${text}`);
  return micros;
}

// ---------------------------------------------------------------------------------------------
// Policy -> Cedar entities

const party = (id) => ({ __entity: { type: 'Party', id } });

// Every agreement of the policy directory with its lifecycle from accord.
function loadAgreements(policyDir, accordBin) {
  // One JSON line per agreement, its state at a far-future instant: `in_force` is its start; an
  // agreement that is `ended` then ended at `ends_at`; any other never ends.
  const listing = execFileSync(
    accordBin,
    ['agreement', 'list', '--policy', policyDir, '--json', '--at', '9999-01-01T00:00:00Z'],
    { encoding: 'utf8', maxBuffer: 1 << 28 },
  );
  const lifecycle = new Map();
  for (const line of listing.split('\n')) {
    if (!line.trim()) continue;
    const s = JSON.parse(line);
    lifecycle.set(s.id, { start: toMicros(s.in_force), end: s.state === 'ended' ? toMicros(s.ends_at) : null });
  }

  const dir = join(policyDir, 'agreements');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.toml'))
    .map((name) => {
      const a = parseToml(readFileSync(join(dir, name), 'utf8'));
      const life = lifecycle.get(a.id);
      if (!life) throw new Error(`accord did not list agreement ${a.id} (${name})`);
      // A row for level X of party O exists iff some row lists X under O.
      const levelKeys = new Set();
      for (const row of a.levels) {
        for (const [p, ids] of Object.entries(row)) for (const level of ids) levelKeys.add(`${p}:${level}`);
      }
      const attrs = {
        parties: a.parties.map(party),
        start: life.start,
        scope: a.scope,
        level_keys: [...levelKeys],
      };
      if (life.end !== null) attrs.end = life.end;
      if (a.hub !== undefined) attrs.hub = party(a.hub);
      return {
        id: a.id,
        parties: a.parties,
        entity: { uid: { type: 'Agreement', id: a.id }, attrs, parents: [] },
      };
    });
}

// "O P" -> the agreements having both O and P among their parties, in the order accord names an
// allowing agreement (fewest parties first, then id), so the first allowing call names it too.
function candidatesByPair(agreements) {
  const sorted = [...agreements].sort(
    (x, y) => x.parties.length - y.parties.length || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0),
  );
  const pairs = new Map();
  for (const a of sorted) {
    for (const o of a.parties) {
      for (const p of a.parties) {
        if (o === p) continue;
        const key = `${o} ${p}`;
        if (!pairs.has(key)) pairs.set(key, []);
        pairs.get(key).push(a);
      }
    }
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// Requests -> Cedar requests

// The non-blank lines of the requests file, paired in order with accord's output lines.
function readLines(file) {
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
}

// The Cedar requests that decide one accord release request: one per candidate agreement, each
// carrying its own entities (the object and that agreement). `error` is set when the request
// cannot be expressed (accord answers such requests `invalid-request`); it then has no calls.
function convertRelease(req, pairs) {
  const o = req.object;
  try {
    const object = {
      uid: { type: 'Object', id: o.id },
      attrs: {
        originator: party(o.originator),
        level_key: `${o.originator}:${o.level}`,
        topics: o.topics,
        rel_to: o.rel_to.map(party),
      },
      parents: [],
    };
    if (o.destroyed_at != null) object.attrs.destroyed_at = toMicros(o.destroyed_at);
    const at = toMicros(req.at);
    const candidates = pairs.get(`${o.originator} ${req.to}`) ?? [];
    const calls = candidates.map((a) => ({
      principal: { type: 'Party', id: o.originator },
      action: { type: 'Action', id: 'release' },
      resource: object.uid,
      context: { at, recipient: party(req.to), agreement: { __entity: a.entity.uid } },
      entities: [object, a.entity],
    }));
    return { id: req.id, agreements: candidates.map((a) => a.id), calls };
  } catch (e) {
    return { id: req.id, agreements: [], calls: [], error: e.message };
  }
}

// ---------------------------------------------------------------------------------------------
// Deciding and timing

// Decides every release: allowedBy[r] = index of the first allowing candidate of release r, or
// -1 for deny. Returns the number of Cedar calls made. A Cedar failure or an evaluation error
// (which Cedar would otherwise turn into a silent "not applicable") aborts the run.
function decideAll(releases, authorize, allowedBy) {
  let calls = 0;
  for (let r = 0; r < releases.length; r++) {
    const cs = releases[r].calls;
    let allowed = -1;
    for (let c = 0; c < cs.length; c++) {
      calls++;
      const answer = authorize(cs[c]);
      if (answer.type !== 'success' || answer.response.diagnostics.errors.length > 0) {
        throw new Error(`Cedar failed on ${releases[r].id}: ${JSON.stringify(answer)}`);
      }
      if (answer.response.decision === 'allow') {
        allowed = c;
        break;
      }
    }
    allowedBy[r] = allowed;
  }
  return calls;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// `runs` timed runs, each of whole passes over all releases lasting at least `minSeconds`, after
// an untimed warm-up over the first releases (V8 tiers the wasm code up while it runs). Rates are
// the medians over the runs; `allowedBy` holds the decisions (every pass makes the same ones).
function measure(releases, authorize, runs, minSeconds) {
  const allowedBy = new Int32Array(releases.length);
  decideAll(releases.slice(0, 2000), authorize, allowedBy);
  const decisionRates = [];
  const callRates = [];
  for (let run = 0; run < runs; run++) {
    let decisions = 0;
    let calls = 0;
    let seconds = 0;
    const start = process.hrtime.bigint();
    do {
      calls += decideAll(releases, authorize, allowedBy);
      decisions += releases.length;
      seconds = Number(process.hrtime.bigint() - start) / 1e9;
    } while (seconds < minSeconds);
    decisionRates.push(decisions / seconds);
    callRates.push(calls / seconds);
  }
  return { allowedBy, decisionsPerSecond: median(decisionRates), callsPerSecond: median(callRates), decisionRates };
}

// ---------------------------------------------------------------------------------------------
// Checking against accord

// The mismatches between Cedar's decisions and accord's, and how many releases were compared.
function compare(releases, allowedBy, accordLines) {
  const mismatches = [];
  let compared = 0;
  releases.forEach((release, r) => {
    const accord = JSON.parse(accordLines[release.line]);
    if (accord.id !== release.id) {
      throw new Error(`accord output line ${release.line + 1} is for ${accord.id}, not ${release.id}`);
    }
    if (NOT_COMPARED.has(accord.reason)) return;
    compared++;
    const cedarDecision = allowedBy[r] >= 0 ? 'allow' : 'deny';
    const cedarAgreement = allowedBy[r] >= 0 ? release.agreements[allowedBy[r]] : null;
    if (cedarDecision !== accord.decision || (accord.decision === 'allow' && cedarAgreement !== accord.agreement)) {
      mismatches.push({
        id: release.id,
        accord: { decision: accord.decision, reason: accord.reason, agreement: accord.agreement },
        cedar: { decision: cedarDecision, agreement: cedarAgreement, candidates: release.agreements, error: release.error },
      });
    }
  });
  return { compared, mismatches };
}

// ---------------------------------------------------------------------------------------------

const fmt = (x) => Math.round(x).toLocaleString('en-US');

function main() {
  const { values: opt } = parseArgs({
    options: {
      policy: { type: 'string' },
      requests: { type: 'string' },
      'accord-out': { type: 'string' },
      accord: { type: 'string', default: join(HERE, '..', '..', 'build', 'release', 'src', 'cli', 'accord') },
      runs: { type: 'string', default: '3' },
      'min-seconds': { type: 'string', default: '2' },
      summary: { type: 'string' },
    },
  });
  for (const required of ['policy', 'requests', 'accord-out']) {
    if (!opt[required]) {
      console.error('usage: node compare.mjs --policy DIR --requests FILE --accord-out FILE [--accord BIN]');
      console.error('                        [--runs 3] [--min-seconds 2] [--summary FILE]');
      process.exit(2);
    }
  }
  const runs = Number(opt.runs);
  const minSeconds = Number(opt['min-seconds']);

  // The policy, checked against the schema, and parsed once for the stateful entry point.
  const policyText = readFileSync(join(HERE, 'release.cedar'), 'utf8');
  const policies = { staticPolicies: policyText };
  const validation = cedar.validate({
    schema: readFileSync(join(HERE, 'release.cedarschema'), 'utf8'),
    policies,
    validationSettings: { mode: 'strict' },
  });
  if (validation.type !== 'success' || validation.validationErrors.length > 0) {
    throw new Error(`release.cedar does not validate: ${JSON.stringify(validation)}`);
  }
  const preparsed = cedar.preparsePolicySet('release', policies);
  if (preparsed.type !== 'success') throw new Error(`preparsePolicySet: ${JSON.stringify(preparsed)}`);

  // Conversion (not timed).
  const pairs = candidatesByPair(loadAgreements(opt.policy, opt.accord));
  const requestLines = readLines(opt.requests);
  const releases = [];
  requestLines.forEach((text, line) => {
    let req;
    try {
      req = JSON.parse(text);
    } catch {
      return; // not JSON: not a release request (accord answers invalid-request)
    }
    if (req?.action === 'release') releases.push({ line, ...convertRelease(req, pairs) });
  });
  const totalCalls = releases.reduce((n, r) => n + r.calls.length, 0);
  const unconvertible = releases.filter((r) => r.error).length;
  console.log(`cedar-wasm ${cedar.getCedarVersion()} (Cedar language ${cedar.getCedarLangVersion()}), Node ${process.version}`);
  console.log(`${fmt(requestLines.length)} requests, ${fmt(releases.length)} releases, ` +
              `${fmt(totalCalls)} candidate agreements (Cedar calls at most), ${fmt(unconvertible)} not convertible`);

  // The two entry points, each over the same Cedar requests.
  const stateful = releases.map((r) => ({ ...r, calls: r.calls.map((c) => ({ ...c, preparsedPolicySetId: 'release' })) }));
  const plain = releases.map((r) => ({ ...r, calls: r.calls.map((c) => ({ ...c, policies })) }));
  const results = {
    statefulIsAuthorized: measure(stateful, cedar.statefulIsAuthorized, runs, minSeconds),
    isAuthorized: measure(plain, cedar.isAuthorized, runs, minSeconds),
  };
  for (const [name, m] of Object.entries(results)) {
    console.log(`${name.padEnd(21)} ${fmt(m.decisionsPerSecond).padStart(9)} decisions/s ` +
                `${fmt(m.callsPerSecond).padStart(9)} Cedar calls/s  ` +
                `(median of ${runs}: ${m.decisionRates.map(fmt).join(', ')} decisions/s)`);
  }

  // The check against accord, for both entry points.
  const accordLines = readLines(opt['accord-out']);
  if (accordLines.length !== requestLines.length) {
    throw new Error(`${accordLines.length} accord output lines for ${requestLines.length} requests`);
  }
  let failed = false;
  let compared = 0;
  for (const [name, m] of Object.entries(results)) {
    const check = compare(releases, m.allowedBy, accordLines);
    compared = check.compared;
    console.log(`${name}: ${fmt(check.compared)} release decisions compared with accord, ` +
                `${check.mismatches.length} mismatches`);
    for (const mismatch of check.mismatches.slice(0, 10)) console.log(`  ${JSON.stringify(mismatch)}`);
    failed ||= check.mismatches.length > 0;
  }

  if (opt.summary) {
    writeFileSync(opt.summary, JSON.stringify({
      cedarVersion: cedar.getCedarVersion(),
      releases: releases.length,
      compared,
      statefulDecisionsPerSecond: results.statefulIsAuthorized.decisionsPerSecond,
      statefulCallsPerSecond: results.statefulIsAuthorized.callsPerSecond,
      plainDecisionsPerSecond: results.isAuthorized.decisionsPerSecond,
      plainCallsPerSecond: results.isAuthorized.callsPerSecond,
    }));
  }
  process.exit(failed ? 1 : 0);
}

main();
