/** The TUI store: actions, search, and frames published at a bounded rate and at once on selection changes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { RoutingModel } from '../../src/store/model.js';
import { LiveFeed, ReplayPlayer } from '../../src/store/feeds.js';
import { createTuiStore, startPublishing } from '../../src/store/app-store.js';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { DEMO_TRACE, META, batches } from './helpers.js';

const schema: RoutingSchema = { layers: [0, 1, 2], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
const words = ['The', ' cat', ' sat', ' on', ' the', ' mat', '.', ' The', ' end'];
const toks = words.map((text) => ({
  text,
  experts: [
    [0, 1],
    [1, 2],
    [2, 3],
  ],
}));

function setup() {
  const model = new RoutingModel(schema, META, { window: 4 });
  const feed = new LiveFeed(model);
  for (const b of batches(schema, toks)) feed.push(b);
  const store = createTuiStore({
    model,
    feed,
    source: { kind: 'live', label: 'test', recording: null, placement: null },
  });
  return { model, feed, store };
}

test('navigation actions clamp to the model and cycle panes', () => {
  const { store } = setup();
  const a = store.getState().actions;
  a.selectLayer(7);
  assert.equal(store.getState().ui.layer, 2);
  a.selectLayer(-3);
  assert.equal(store.getState().ui.layer, 0);
  a.selectExpert(99);
  assert.equal(store.getState().ui.expert, 3);
  a.nextPane(-1);
  assert.equal(store.getState().ui.pane, 'devices');
  a.nextPane(1);
  assert.equal(store.getState().ui.pane, 'overview');
  a.toggleHelp();
  assert.equal(store.getState().ui.help, true);
  a.setPane('tokens');
  assert.equal(store.getState().ui.help, false, 'choosing a pane closes the overlay');
});

test('w switches to the window, then cycles its length; c switches to cumulative', () => {
  const { store, model } = setup();
  const a = store.getState().actions;
  a.setScope('run');
  a.windowKey();
  assert.equal(store.getState().ui.scope, 'window');
  assert.equal(model.displayWindowSize, 4);
  a.windowKey();
  assert.equal(model.displayWindowSize, 64);
  assert.match(store.getState().ui.message ?? '', /last 64 tokens/);
  a.setScope('run');
  assert.equal(store.getState().ui.scope, 'run');
});

test('search finds token text case-insensitively, moves on with n, wraps, and says when nothing matches', () => {
  const { store } = setup();
  const a = store.getState().actions;
  assert.equal(a.search('the', 1), true);
  assert.equal(store.getState().ui.token, 0);
  assert.equal(store.getState().ui.pane, 'tokens');
  a.search('the', 1);
  assert.equal(store.getState().ui.token, 4);
  a.search('the', 1);
  assert.equal(store.getState().ui.token, 7);
  a.search('the', 1);
  assert.equal(store.getState().ui.token, 0, 'wraps around');
  a.search('the', -1);
  assert.equal(store.getState().ui.token, 7);
  assert.equal(a.search('dog', 1), false);
  assert.match(store.getState().ui.message ?? '', /no token matches "dog"/);
});

test('pause freezes a live source; the frame does not change until resumed', async () => {
  const { store, feed, model } = setup();
  const pub = startPublishing(store, model, feed, 1000);
  try {
    store.getState().actions.togglePause();
    assert.equal(store.getState().feed.playing, false);
    feed.push(
      batches(schema, [
        {
          experts: [
            [3, 2],
            [0, 1],
            [1, 0],
          ],
        },
      ])[0]!,
    );
    pub.flush();
    assert.equal(store.getState().frame.tokens, 9);
    assert.equal(store.getState().feed.buffered, 1);
    store.getState().actions.togglePause();
    pub.flush();
    assert.equal(store.getState().frame.tokens, 10);
  } finally {
    pub.stop();
  }
});

test('frames are published at most fps times a second while data streams in, and at once on a selection change', async () => {
  const { store, feed, model } = setup();
  const pub = startPublishing(store, model, feed, 10);
  try {
    let frames = 0;
    store.subscribe((s, p) => {
      if (s.frame !== p.frame) frames++;
    });
    const t0 = Date.now();
    while (Date.now() - t0 < 450) {
      feed.push(
        batches(schema, [
          {
            experts: [
              [0, 1],
              [1, 2],
              [2, 3],
            ],
          },
        ])[0]!,
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(frames >= 3 && frames <= 7, `10 fps over ~0.5 s, got ${frames} frames`);
    const before = frames;
    store.getState().actions.selectLayer(2);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(frames, before + 1);
    assert.equal(store.getState().frame.layer!.index, 2);
  } finally {
    pub.stop();
  }
});

test('replay keys: step pauses; seek to a token; start and end', () => {
  const t = openTrace(DEMO_TRACE);
  try {
    const model = new RoutingModel(t.schema, t.meta);
    const feed = new ReplayPlayer(traceStream(t), model, { playing: true });
    const store = createTuiStore({
      model,
      feed,
      source: { kind: 'replay', label: 'x', recording: null, placement: null },
    });
    const a = store.getState().actions;
    a.step(1);
    assert.equal(store.getState().feed.playing, false);
    assert.equal(store.getState().feed.position, 1);
    a.seek(500);
    assert.equal(store.getState().feed.position, 500);
    a.seekEnd();
    assert.equal(store.getState().feed.position, t.tokenCount);
    a.seekStart();
    assert.equal(store.getState().feed.position, 0);
    a.faster();
    a.faster();
    assert.equal(store.getState().feed.speed, 4);
  } finally {
    t.close();
  }
});
