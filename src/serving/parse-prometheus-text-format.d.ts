/** The package ships no types: its one export parses a text exposition page into metric families. */
declare module 'parse-prometheus-text-format' {
  export interface PrometheusFamily {
    name: string;
    help: string;
    type: string;
    metrics: { value?: string; labels?: Record<string, string>; [k: string]: unknown }[];
  }
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
