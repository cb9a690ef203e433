/**
 * What every importer does with a token it has already imported (docs/trace-format.md#duplicates): the same
 * identity — what the format names a token by — with the same routing is the same token again (a line or record
 * block written twice, a dump given twice, Megatron's activation recomputation re-running the router): it is
 * skipped and counted, and a note names the first. The same identity with different routing means the inputs are
 * not one run: the import is refused, naming the place. Counting it twice would double its load.
 */
import { UserError } from '../../core/errors.js';

/** Skipped duplicates of one import, and the note that reports them. */
export class Duplicates {
  /** Tokens skipped (Megatron: rows of the skipped layer records ÷ layers, as one record is one layer of a call). */
  private skipped = 0;
  get tokens(): number {
    return Math.round(this.skipped);
  }
  /** Units skipped (tokens, router calls, records, responses). */
  private units = 0;
  private first: string | null = null;

  /**
   * @param unit what is skipped, singular and plural ("duplicate token", "duplicate tokens")
   * @param why what makes two of them the same, for the note
   */
  constructor(
    private readonly unit: [string, string],
    private readonly why: string,
    /** Say how many tokens the skipped units held (not for count records, which hold no tokens). */
    public sayTokens = true,
  ) {}

  /** One unit skipped at `at` (holding `tokens` tokens). */
  skip(at: string, tokens = 1): void {
    this.units++;
    this.skipped += tokens;
    this.first ??= at;
  }

  /** The note for the import's summary, or null when nothing was skipped. */
  note(): string | null {
    if (this.units === 0) return null;
    const [one, many] = this.unit;
    const tokens =
      this.sayTokens && !one.includes('token') ? `, ${this.tokens} token${this.tokens === 1 ? '' : 's'}` : '';
    return `skipped ${this.units} ${this.units === 1 ? one : many}${tokens} (${this.why}); the first at ${this.first}`;
  }
}

/** 30-bit FNV-1a of numbers (their float64 bytes): small integers, so a Map holds them without a heap number. */
export function contentHash(...parts: (ArrayLike<number> | number)[]): number {
  let h = 0x811c9dc5;
  const f = new Float64Array(1);
  const b = new Uint8Array(f.buffer);
  const add = (x: number) => {
    f[0] = x;
    for (let i = 0; i < 8; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  };
  for (const p of parts)
    if (typeof p === 'number') add(p);
    else {
      add(p.length);
      for (let i = 0; i < p.length; i++) add(p[i]!);
    }
  return h & 0x3fffffff;
}

/**
 * Identities of the tokens of the sequences still open: per sequence (seq, rank and step where the format has
 * them) its positions, each with a hash of its routing.
 *
 * Bound: at most MAX_IDENTITIES positions are kept, over the sequences seen most recently; past it the sequence
 * seen longest ago is closed (its positions forgotten), never the one being read. A recorder writes a sequence's
 * tokens together (a request, a step of a rank), and the sequences in flight at once — a serving batch, a step's
 * microbatches on every rank — hold far fewer tokens than that, so every duplicate a doubled write or a re-run
 * makes is still open when it comes; a whole large file concatenated after itself (more than MAX_IDENTITIES tokens
 * apart) is not caught. At ~40 bytes a Map entry that is ≤ 40 MiB, against the tokens' own 1–2 KiB each at
 * DeepSeek scale; a single sequence longer than the bound is kept whole (it is open).
 */
export class OpenSequences {
  static readonly MAX_IDENTITIES = 1 << 20;
  private readonly seqs = new Map<string, Map<number, number>>();
  private held = 0;
  private lastKey: string | null = null;
  private last: Map<number, number> | null = null;

  constructor(private readonly max = OpenSequences.MAX_IDENTITIES) {}

  /**
   * Records the token at `pos` of sequence `key` with routing hash `hash`: 'new' the first time, 'same' for the
   * same routing again, 'different' for other routing at an identity already imported.
   */
  see(key: string, pos: number, hash: number): 'new' | 'same' | 'different' {
    let positions = key === this.lastKey ? this.last : null;
    if (!positions) {
      positions = this.seqs.get(key) ?? null;
      if (positions)
        this.seqs.delete(key); // re-inserted below: the Map's order is the order last seen
      else positions = new Map();
      this.seqs.set(key, positions);
      this.lastKey = key;
      this.last = positions;
    }
    const before = positions.get(pos);
    if (before !== undefined) return before === hash ? 'same' : 'different';
    positions.set(pos, hash);
    if (++this.held > this.max) this.evict();
    return 'new';
  }

  private evict(): void {
    for (const [key, positions] of this.seqs) {
      if (this.held <= this.max || key === this.lastKey) break;
      this.seqs.delete(key);
      this.held -= positions.size;
    }
  }
}

/** The refusal for other routing at an identity already imported. */
export function conflict(at: string, identity: string, hint: string): UserError {
  return new UserError(
    `${at}: ${identity} was imported before with different routing: the inputs are not one run (${hint})`,
  );
}
