/** Router agreement between two traces of the same tokens, on a case worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouterAgreement } from '../../src/stats/agreement.js';
import type { RoutingSchema } from '../../src/core/batch.js';
import { isUserError } from '../../src/core/errors.js';
import { buildBatches } from './helpers.js';

const schema: RoutingSchema = { layers: [0, 1], experts: 6, topK: 2, scoring: 'softmax', hasLogits: false };

test('overlap |A∩B|/K and first-choice agreement per layer, whatever the batch boundaries', () => {
  // token 0: layer 0 {0,1} vs {1,2} → 1/2, first choices 0 vs 1; layer 1 {3,4} vs {4,3} → 1, first 3 vs 4
  // token 1: layer 0 {5,2} vs {5,2} → 1, first 5 vs 5;         layer 1 {0,1} vs {2,3} → 0, first 0 vs 2
  const w = [
    [0.7, 0.3],
    [0.6, 0.4],
  ];
  const a = [
    {
      tokenId: 11,
      experts: [
        [0, 1],
        [3, 4],
      ],
      weights: w,
    },
    {
      tokenId: 12,
      experts: [
        [5, 2],
        [0, 1],
      ],
      weights: w,
    },
  ];
  const b = [
    {
      tokenId: 11,
      experts: [
        [1, 2],
        [4, 3],
      ],
      weights: w,
    },
    {
      tokenId: 12,
      experts: [
        [5, 2],
        [2, 3],
      ],
      weights: w,
    },
  ];
  const ag = new RouterAgreement(schema, schema);
  for (const x of buildBatches(schema, a, 2)) ag.addA(x);
  for (const x of buildBatches(schema, b, 1)) ag.addB(x);
  const r = ag.result();
  assert.equal(r.tokens, 2);
  assert.deepEqual(
    r.layers.map((l) => l.overlap),
    [0.75, 0.5],
  );
  assert.deepEqual(
    r.layers.map((l) => l.firstChoice),
    [0.5, 0],
  );
  assert.equal(r.overlap, 0.625);
  assert.equal(ag.unmatched, 0);
});

test('traces of different tokens are refused with the position where they diverge', () => {
  const ag = new RouterAgreement(schema, schema);
  ag.addA(
    buildBatches(schema, [
      {
        tokenId: 1,
        experts: [
          [0, 1],
          [0, 1],
        ],
      },
    ])[0]!,
  );
  assert.throws(
    () =>
      ag.addB(
        buildBatches(schema, [
          {
            tokenId: 2,
            experts: [
              [0, 1],
              [0, 1],
            ],
          },
        ])[0]!,
      ),
    (e) => isUserError(e) && /diverge at token 0/.test((e as Error).message),
  );
  assert.throws(
    () => new RouterAgreement(schema, { ...schema, experts: 8 }),
    (e) => isUserError(e),
  );
});
