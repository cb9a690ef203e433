import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { UserError } from '../../src/core/errors.js';
import { loadConfig, parseConfig, withDiffFlags, withFlags, hasCheckRules } from '../../src/gate/config.js';
import { tempDir } from './fixtures.js';

const bad = (raw: unknown, re: RegExp) =>
  assert.throws(
    () => parseConfig(raw, 'moescope.config.json'),
    (e: unknown) => e instanceof UserError && re.test(e.message),
  );

test('a full config parses into thresholds, overall, per-layer limits, layers and diff limits', () => {
  const cfg = parseConfig(
    {
      $schema: './docs/ci.md',
      thresholds: { maxMaxvio: 1.5, maxDead: 0, minEntropy: 0.9 },
      overall: { maxCv: 0.4 },
      perLayer: { '3': { maxMaxvio: 3 } },
      layers: [1, 3],
      diff: { maxDrift: 0.05, minAgreement: 0.8 },
    },
    'moescope.config.json',
  );
  assert.deepEqual(cfg.thresholds, { maxMaxvio: 1.5, maxDead: 0, minEntropy: 0.9 });
  assert.deepEqual(cfg.overall, { maxCv: 0.4 });
  assert.deepEqual(cfg.perLayer.get(3), { maxMaxvio: 3 });
  assert.deepEqual(cfg.layers, [1, 3]);
  assert.deepEqual(cfg.diff, { maxDrift: 0.05, minAgreement: 0.8 });
  assert.equal(hasCheckRules(cfg), true);
});

test('config errors name the key and the problem', () => {
  bad([], /the config must be a JSON object, got a list/);
  bad({ threshold: {} }, /unknown key threshold \(known keys: .*thresholds/);
  bad({ thresholds: { maxMaxVio: 1 } }, /unknown key thresholds\.maxMaxVio \(did you mean "maxMaxvio"\?\)/);
  bad({ thresholds: { 'max-cv': 1 } }, /did you mean "maxCv"/);
  bad({ thresholds: { maxCv: 'high' } }, /thresholds\.maxCv must be a number, got "high"/);
  bad({ thresholds: { maxCv: -1 } }, /thresholds\.maxCv must be ≥ 0, got -1/);
  bad({ thresholds: { maxDead: 1.5 } }, /thresholds\.maxDead must be a whole number, got 1\.5/);
  bad({ thresholds: { minEntropy: 1.2 } }, /thresholds\.minEntropy must be ≤ 1, got 1\.2/);
  bad({ thresholds: { maxHotShare: null } }, /thresholds\.maxHotShare must be a number, got null/);
  bad({ perLayer: { first: { maxCv: 1 } } }, /perLayer key "first" is not a layer id/);
  bad({ perLayer: { '2': { maxCV: 1 } } }, /unknown key perLayer\.2\.maxCV \(did you mean "maxCv"\?\)/);
  bad({ layers: [] }, /layers must be a non-empty list of layer ids/);
  bad({ layers: [1, -2] }, /layers must be a non-empty list/);
  bad({ diff: { maxDrift: 2 } }, /diff\.maxDrift must be ≤ 1, got 2/);
  bad({ diff: { drift: 0.1 } }, /unknown key diff\.drift/);
});

test('loadConfig: explicit file must exist; the default file is optional; invalid JSON gives line and column', () => {
  const t = tempDir();
  try {
    assert.throws(() => loadConfig('nope.json', t.dir), /config file not found: nope\.json/);
    const empty = loadConfig(undefined, t.dir);
    assert.equal(empty.source, null);
    assert.equal(hasCheckRules(empty), false);

    writeFileSync(t.path('moescope.config.json'), JSON.stringify({ thresholds: { maxCv: 0.5 } }));
    const found = loadConfig(undefined, t.dir);
    assert.equal(found.source, 'moescope.config.json');
    assert.equal(found.thresholds.maxCv, 0.5);

    writeFileSync(t.path('broken.json'), '{\n  "thresholds": {\n    "maxCv": 0.5,\n  }\n}\n');
    assert.throws(
      () => loadConfig('broken.json', t.dir),
      (e: unknown) => e instanceof UserError && /^broken\.json is not valid JSON at line 4, column 3/.test(e.message),
    );
  } finally {
    t.cleanup();
  }
});

test('flags replace the config thresholds and are checked against each rule range', () => {
  const cfg = parseConfig({ thresholds: { maxCv: 0.5, maxDead: 1 }, layers: [0] }, 'c.json');
  const merged = withFlags(cfg, { maxCv: 0.2, layers: [1, 2] });
  assert.deepEqual(merged.thresholds, { maxCv: 0.2, maxDead: 1 });
  assert.deepEqual(merged.layers, [1, 2]);
  assert.ok(merged.flagged.has('maxCv') && !merged.flagged.has('maxDead'));
  assert.throws(() => withFlags(cfg, { maxHotShare: 1.5 }), /--max-hot-share must be ≤ 1, got 1\.5/);
  const d = withDiffFlags(parseConfig({ diff: { maxDrift: 0.1, maxTv: 0.2 } }, 'c.json'), { maxDrift: 0.01 });
  assert.deepEqual(d.diff, { maxDrift: 0.01, maxTv: 0.2 });
  assert.throws(() => withDiffFlags(cfg, { minAgreement: 3 }), /--min-agreement must be ≤ 1/);
});
