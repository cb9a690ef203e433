/**
 * What every component needs besides its props: the store (read through selectors, so a pane re-renders only when
 * its slice changes), the theme, and the heatmap's cached rows and layer. Nothing here is written while rendering.
 */
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import { useShallow } from 'zustand/react/shallow';
import type { TuiState, TuiStore } from '../store/app-store.js';
import { HeatRowCache } from './heat-rows.js';
import { HeatmapLayer } from './heatmap-layer.js';
import { makeTheme, type Theme } from './theme.js';

export interface ViewContext {
  theme: Theme;
  heatRows: HeatRowCache;
  /** Where the heatmap's lines go (heatmap-layer.ts). */
  heat: HeatmapLayer;
}

/** A view context; the heatmap layer writes to `out` (the terminal; tests and benchmarks pass their own). */
export function makeViewContext(
  theme: Theme = makeTheme('ansi256'),
  out: { write(s: string): unknown } = { write: () => true },
): ViewContext {
  return { theme, heatRows: new HeatRowCache(), heat: new HeatmapLayer(out) };
}

export const ViewCtx = createContext<ViewContext>(makeViewContext());
export const StoreCtx = createContext<TuiStore | null>(null);

export function useView(): ViewContext {
  return useContext(ViewCtx);
}

/** A slice of the store; the component re-renders only when the slice changes (shallowly). */
export function useTui<T>(select: (s: TuiState) => T): T {
  const store = useContext(StoreCtx);
  if (!store) throw new Error('useTui outside <App>');
  return useStore(store, useShallow(select));
}
