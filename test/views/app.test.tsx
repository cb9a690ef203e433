/** The whole App over a replayed trace: panes, keys, the overlay, too-small terminals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { RoutingModel } from '../../src/store/model.js';
import { ReplayPlayer } from '../../src/store/feeds.js';
import { createTuiStore, startPublishing } from '../../src/store/app-store.js';
import { contiguousSpec } from '../../src/store/placement-spec.js';
import { App } from '../../src/views/app.js';
import { BINDINGS, overlayRows } from '../../src/views/keys.js';
import { makeViewContext } from '../../src/views/context.js';
import { makeTheme } from '../../src/views/theme.js';
import { DEMO_TRACE } from '../store/helpers.js';
import { renderView, tick } from './render.js';

function setup(term = { columns: 100, rows: 30 }) {
  const trace = openTrace(DEMO_TRACE);
  const model = new RoutingModel(trace.schema, trace.meta);
  const feed = new ReplayPlayer(traceStream(trace), model, { playing: false });
  const store = createTuiStore({
    model,
    feed,
    source: { kind: 'replay', label: 'demo.arrows', recording: null, placement: contiguousSpec(trace.schema, 2) },
    term,
  });
  const pub = startPublishing(store, model, feed, 1000);
  feed.seek(600);
  pub.flush();
  const view = makeViewContext(makeTheme('ansi256'));
  const r = renderView(<App store={store} view={view} />, { view });
  return {
    store,
    r,
    press: async (k: string) => {
      r.stdin.write(k);
      await tick();
      pub.flush();
      await tick();
    },
    done: () => {
      r.unmount();
      pub.stop();
      trace.close();
    },
  };
}

test('status bar, tabs and hints; the heatmap of the demo trace', async () => {
  const s = setup();
  try {
    const t = s.r.text();
    assert.match(t, /moescope replay demo\.arrows ❚❚ paused ×1 │ token 600 \/ 719 \(83%\)/);
    assert.match(t, /1 Overview\s+2 Layer\s+3 Tokens\s+4 Warnings \(\d+\)\s+5 Devices/);
    assert.match(t, /Load per expert · 4 layers × 8 experts/);
    assert.match(t, /\? keys\s+q quit/);
  } finally {
    s.done();
  }
});

test('keys: j moves to the next layer, enter opens it, esc goes back, tab walks the panes', async () => {
  const s = setup();
  try {
    await s.press('j');
    assert.equal(s.store.getState().ui.layer, 1);
    assert.match(s.r.text(), /▶\s*L1/);
    await s.press('\r');
    assert.equal(s.store.getState().ui.pane, 'layer');
    assert.match(s.r.text(), /Layer L1 \(MoE layer 2 of 4\)/);
    assert.match(s.r.text(), /co-activation/);
    await s.press('\x1b');
    await new Promise((r) => setTimeout(r, 30)); // a lone ESC is told from a sequence by a short wait
    await s.press('');
    assert.equal(s.store.getState().ui.pane, 'overview');
    await s.press('\t');
    assert.equal(s.store.getState().ui.pane, 'layer');
    await s.press('5');
    assert.match(s.r.text(), /dev0\s+4 experts\/layer/);
    assert.match(s.r.text(), /Placement · contiguous over 2 devices/);
  } finally {
    s.done();
  }
});

test('? shows every key; any other key closes it and still acts', async () => {
  const s = setup();
  try {
    await s.press('?');
    const t = s.r.text();
    for (const row of overlayRows()) assert.ok(t.includes(row.keys), `overlay lists ${row.keys}`);
    for (const b of BINDINGS) if (b.label) assert.ok(t.includes(b.label), `overlay shows ${b.label}`);
    await s.press('3');
    assert.equal(s.store.getState().ui.help, false);
    assert.equal(s.store.getState().ui.pane, 'tokens');
  } finally {
    s.done();
  }
});

test('tokens: select with ←, open the routing with enter, / searches', async () => {
  const s = setup();
  try {
    await s.press('3');
    await s.press('\x1b[D'); // left arrow: select the newest token
    const sel = s.store.getState().ui.token;
    assert.equal(sel, 599);
    assert.match(s.r.text(), /token 599 “/);
    await s.press('\r');
    assert.match(s.r.text(), /routing in every layer/);
    assert.match(s.r.text(), /▶L0/);
    assert.match(s.r.text(), /margin/);
    await s.press('/');
    for (const ch of 'License') await s.press(ch);
    assert.match(s.r.text(), /\/License/);
    await s.press('\r');
    const t = s.store.getState().ui.token!;
    assert.ok(
      s.store
        .getState()
        .frame.stream.find((x) => x.index === t)!
        .text.toLowerCase()
        .includes('license'),
    );
  } finally {
    s.done();
  }
});

test('playback keys: . steps, : seeks to a percentage, G goes to the end', async () => {
  const s = setup();
  try {
    await s.press('.');
    assert.equal(s.store.getState().feed.position, 601);
    await s.press(',');
    await s.press(',');
    assert.equal(s.store.getState().feed.position, 599);
    await s.press(':');
    for (const ch of '50%') await s.press(ch);
    await s.press('\r');
    assert.equal(s.store.getState().feed.position, 360);
    await s.press('G');
    assert.equal(s.store.getState().feed.position, 719);
    assert.match(s.r.text(), /■ end/);
  } finally {
    s.done();
  }
});

test('a terminal below 80×24 says which size is needed', async () => {
  const s = setup({ columns: 60, rows: 20 });
  try {
    assert.match(
      s.r.text(),
      /needs a terminal of at least 80×24;\s+this one\s+is\s+60×20\.\s+Enlarge it, or press q to quit\./,
    );
  } finally {
    s.done();
  }
});

test('every key name is bound once per pane', () => {
  const panes = ['overview', 'layer', 'tokens', 'warnings', 'devices'] as const;
  for (const p of panes) {
    const seen = new Map<string, string>();
    for (const b of BINDINGS) {
      if (b.panes && !b.panes.includes(p)) continue;
      for (const n of b.names) {
        assert.ok(!seen.has(n), `${n} bound to ${seen.get(n)} and ${b.action} in ${p}`);
        seen.set(n, b.action);
      }
    }
  }
});

test('keys arriving together in one read are each handled: jj moves two layers, a pasted seek target reaches the prompt', async () => {
  const s = setup();
  try {
    await s.press('jj');
    assert.equal(s.store.getState().ui.layer, 2, 'two presses in one chunk');
    await s.press(':');
    await s.press('50%\r'); // pasted with its enter
    assert.equal(s.store.getState().feed.position, 360);
    await s.press('3');
    await s.press('/');
    await s.press('License');
    assert.match(s.r.text(), /\/License/, 'the whole paste is in the prompt');
  } finally {
    s.done();
  }
});

test('the warnings cursor stays on its warning while newer warnings push the list down', async () => {
  const s = setup();
  try {
    // The first position with two warnings, fewer than the whole trace has.
    for (let pos = 0; pos <= 719; pos += 10) {
      s.store.getState().actions.seek(pos);
      await s.press('');
      if (s.store.getState().frame.warnings.length >= 2) break;
    }
    await s.press('4');
    await s.press('j');
    const before = s.store.getState().frame.warnings;
    const id = s.store.getState().ui.warning!;
    const chosen = before[before.length - 1 - id]!;
    assert.match(s.r.text(), new RegExp(`▶ ${chosen.firstToken.toLocaleString('en-US')}\\s+${chosen.rule}`));
    s.store.getState().actions.seek(719);
    await s.press('');
    const after = s.store.getState().frame.warnings;
    assert.ok(after.length > before.length, 'newer warnings arrived');
    assert.match(
      s.r.text(),
      new RegExp(`▶ ${chosen.firstToken.toLocaleString('en-US')}\\s+${chosen.rule}`),
      'the cursor is still on it',
    );
    await s.press('\r');
    assert.equal(s.store.getState().ui.token, chosen.firstToken, 'enter opens the chosen warning');
  } finally {
    s.done();
  }
});

test('at the end of a replay , steps back (and stays paused); + and - say why nothing zooms when every expert fits', async () => {
  const s = setup();
  try {
    s.store.getState().actions.seekEnd();
    await s.press('');
    assert.equal(s.store.getState().feed.position, 719);
    await s.press(',');
    await new Promise((r) => setTimeout(r, 80));
    await s.press('');
    assert.equal(s.store.getState().feed.position, 718);
    assert.equal(s.store.getState().feed.playing, false);
    await s.press('1');
    await s.press('-');
    assert.match(s.r.text(), /all 8 experts fit the width: nothing to zoom out of/);
    await s.press('+');
    assert.match(s.r.text(), /zoomed in all the way: one expert per column/);
  } finally {
    s.done();
  }
});

test('selectors: a cursor move re-renders the Overview, not the status bar; a feed change re-renders the status bar, not the Overview', async () => {
  const { Profiler } = await import('react');
  const { StatusBar } = await import('../../src/views/components/Bars.js');
  const { Overview } = await import('../../src/views/components/Overview.js');
  const { StoreCtx, ViewCtx } = await import('../../src/views/context.js');
  const { render } = await import('ink-testing-library');
  const s = setup();
  try {
    const renders = { status: 0, overview: 0 };
    const view = makeViewContext(makeTheme('ansi256'));
    const r = render(
      <StoreCtx.Provider value={s.store}>
        <ViewCtx.Provider value={view}>
          <Profiler id="status" onRender={() => renders.status++}>
            <StatusBar />
          </Profiler>
          <Profiler id="overview" onRender={() => renders.overview++}>
            <Overview />
          </Profiler>
        </ViewCtx.Provider>
      </StoreCtx.Provider>,
    );
    await tick();
    const before = { ...renders };
    s.store.getState().actions.selectExpert(3);
    await tick();
    assert.ok(renders.overview > before.overview, 'the Overview shows the cursor');
    assert.equal(renders.status, before.status, 'the status bar did not re-render');
    const mid = { ...renders };
    s.store.setState({ feed: { ...s.store.getState().feed, speed: 4 } });
    await tick();
    assert.ok(renders.status > mid.status, 'the status bar shows the speed');
    assert.equal(renders.overview, mid.overview, 'the Overview did not re-render');
    r.unmount();
  } finally {
    s.done();
  }
});
