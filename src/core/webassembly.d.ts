/**
 * The part of the WebAssembly JS API that core/f16.ts and stats/row-kernel.ts use: Node has it as a global, but the
 * ES2023 lib this project compiles against (no DOM) declares none of it.
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
}
