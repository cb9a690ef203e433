/** What every component needs besides the store: the theme and the painted-region registry. */
import { createContext, useContext } from 'react';
import { HeatRowCache } from './heat-rows.js';
import { PaintRegistry } from './paint.js';
import { makeTheme, type Theme } from './theme.js';

export interface ViewContext {
  theme: Theme;
  registry: PaintRegistry;
  heatRows: HeatRowCache;
  /** Layout facts the input handler needs (rows per page, tokens per line), written by the panes as they render. */
  layout: LayoutFacts;
}

export interface LayoutFacts {
  /** Heatmap: layer rows visible, experts per column now and when fitting the width. */
  heatRows: number;
  heatBin: number;
  heatFitBin: number;
  /** Tokens pane: each visible line's tokens and the column each starts at. */
  tokenGrid: { index: number; col: number }[][];
  /** Layer pane: experts per column of the bar list, and columns. */
  barRows: number;
  /** Rows of the warnings list. */
  listRows: number;
}

export function makeViewContext(theme: Theme = makeTheme('ansi256')): ViewContext {
  return {
    theme,
    registry: new PaintRegistry(),
    heatRows: new HeatRowCache(),
    layout: { heatRows: 10, heatBin: 1, heatFitBin: 1, tokenGrid: [], barRows: 10, listRows: 10 },
  };
}

export const ViewCtx = createContext<ViewContext>(makeViewContext());

export function useView(): ViewContext {
  return useContext(ViewCtx);
}
