/**
 * Loopback HTTP servers that answer as SGLang and vLLM do (the endpoints moescope calls), replaying the recorded
 * responses of fixtures/serving and /metrics pages. Each records the request bodies it got.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { FIXTURES } from '../../src/core/paths.js';
import { CLI } from '../pty/harness.js';

export const SERVING = join(FIXTURES, 'serving');
export const fixture = (name: string): unknown => JSON.parse(readFileSync(join(SERVING, name), 'utf8'));

export type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

export interface FakeServer {
  url: string;
  bodies: { path: string; body: unknown }[];
  close(): Promise<void>;
}

export async function serve(routes: Record<string, Handler>): Promise<FakeServer> {
  const bodies: { path: string; body: unknown }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const key = `${req.method} ${path}`;
      if (req.method === 'POST') bodies.push({ path, body: body ? JSON.parse(body) : null });
      const h = routes[key];
      if (!h) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: 'Not Found' }));
        return;
      }
      h(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export const json =
  (value: unknown, status = 200): Handler =>
  (_req, _body, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };

/** SGLang's GET /get_model_info (http_server.py): model_path, tokenizer_path, is_generation, … */
export const SGLANG_MODEL_INFO = {
  model_path: 'tiny/moe-4l',
  tokenizer_path: 'tiny/moe-4l',
  is_generation: true,
  preferred_sampling_params: null,
  weight_version: 'default',
  has_image_understanding: false,
  has_audio_understanding: false,
  model_type: 'deepseek_v3',
  architectures: ['DeepseekV3ForCausalLM'],
};

/** vLLM's GET /v1/models (openai/models/protocol.py ModelList / ModelCard). */
export const VLLM_MODELS = {
  object: 'list',
  data: [
    {
      id: 'tiny-moe',
      object: 'model',
      created: 1764866400,
      owned_by: 'vllm',
      root: 'tiny-moe',
      parent: null,
      max_model_len: 2048,
      permission: [],
    },
  ],
};

/** The CLI, asynchronously (the fake servers live in this process, so a synchronous child would block them). */
export function moescopeAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
