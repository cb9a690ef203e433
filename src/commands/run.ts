import type { Command } from 'commander';
import { choiceArg, floatArg, intArg, intListArg } from './options.js';
import { pending } from './pending.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('generate with an ONNX MoE model token by token and capture its routing live')
    .argument('<model>', 'path to an ONNX MoE export (model.onnx; external data beside it is found)')
    .option('--prompt <text>', 'prompt text')
    .option('--prompts <file>', 'prompts file: JSONL {"text": …, "domain": …} or one prompt per line')
    .option('--input-ids <ids>', 'token ids instead of text, e.g. 5,17,3', intListArg('--input-ids'))
    .option('--max-tokens <n>', 'tokens to generate per prompt (0 = run the prompt only)', intArg('--max-tokens', 0), 32)
    .option('--greedy', 'greedy decoding (the default)')
    .option('--temperature <t>', 'sample with this temperature', floatArg('--temperature', 0))
    .option('--seed <s>', 'seed for sampling', intArg('--seed', 0), 0)
    .option('--ep <provider>', 'execution provider', choiceArg('--ep', ['cpu', 'cuda', 'webgpu'] as const), 'cpu')
    .option('--device-id <n>', 'GPU index for cuda', intArg('--device-id', 0), 0)
    .option('--tokenizer <file>', 'tokenizer.json (default: the one beside the model)')
    .option('--record <trace>', 'record the routing to an Arrow trace (.arrows)')
    .option('--logits', 'capture router logits too (needed for entropy, z-loss, margins)')
    .option('--devices <d>', 'assume experts are placed contiguously over D devices', intArg('--devices', 1))
    .option('--no-ui', 'print the text and a routing summary instead of the TUI')
    .option('--no-color', 'draw without colour')
    .action(async () => pending('run'));
}
