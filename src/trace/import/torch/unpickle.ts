/**
 * A safe unpickler for the data.pkl of a `torch.save` archive (pickle protocols 2–5, the opcodes Python's pickler
 * emits for dicts, lists, tuples, numbers, strings and tensors). Nothing is executed: GLOBAL / STACK_GLOBAL may only
 * name the callables in `ALLOWED` (the ones torch's own `weights_only=True` loader accepts for these files), and
 * REDUCE only applies those, to build plain values (a TensorRef for `_rebuild_tensor_v2`, a Map for OrderedDict).
 * Every other global — os.system, builtins.eval, a class to instantiate — is refused by name, in one line.
 *
 * Memory is bounded by the pickle's size: each opcode reads its bytes from the buffer (lengths are checked
 * against what remains before anything is sliced), and containers only grow by values that opcodes produced.
 * Python ints beyond 2^53 are refused (none of these files needs them).
 */
import { UserError } from '../../../core/errors.js';

/** A Python tuple (kept apart from lists: torch passes shapes and persistent ids as tuples). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A storage that the archive holds in `data/<key>` (persistent id ('storage', type, key, location, numel)). */
export interface StorageRef {
  kind: 'storage';
  /** torch storage class name: IntStorage, LongStorage, FloatStorage, BFloat16Storage, … */
  type: string;
  key: string;
  location: string;
  numel: number;
}

/** A tensor as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` describes it. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export type PyValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | Map<PyValue, PyValue>
  | StorageRef
  | TensorRef
  | PyGlobal;

/** A whitelisted callable named by GLOBAL, applied only by REDUCE. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

const STORAGE_TYPES = new Set([
  'DoubleStorage',
  'FloatStorage',
  'HalfStorage',
  'BFloat16Storage',
  'LongStorage',
  'IntStorage',
  'ShortStorage',
  'CharStorage',
  'ByteStorage',
  'BoolStorage',
]);

/** The globals these files use (torch's weights_only allow-list, narrowed to what SGLang's dumps contain). */
function allowed(module: string, name: string): boolean {
  if (module === 'torch._utils' && name === '_rebuild_tensor_v2') return true;
  if (module === 'torch' && STORAGE_TYPES.has(name)) return true;
  if (module === 'collections' && name === 'OrderedDict') return true;
  return false;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/** Unpickles `data`; `file` names the archive in errors. */
export function unpickle(data: Uint8Array, file: string): PyValue {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bad = (why: string): never => {
    throw new UserError(`${file}: refused: ${why}`);
  };
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  let p = 0;
  const need = (n: number) => {
    if (n < 0 || p + n > buf.length) bad('pickle data ends inside an opcode (truncated)');
  };
  const u8 = () => (need(1), buf[p++]!);
  const u16 = () => (need(2), (p += 2), buf.readUInt16LE(p - 2));
  const u32 = () => (need(4), (p += 4), buf.readUInt32LE(p - 4));
  const i32 = () => (need(4), (p += 4), buf.readInt32LE(p - 4));
  const u64 = (): number => {
    need(8);
    const v = buf.readBigUInt64LE(p);
    p += 8;
    if (v > BigInt(buf.length)) bad('a length larger than the pickle');
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (p += n), buf.subarray(p - n, p));
  const line = (): string => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) bad('pickle data ends inside a text opcode (truncated)');
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) bad('corrupt pickle (stack underflow)');
    if (v === MARK) bad('corrupt pickle (unexpected mark)');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) bad('corrupt pickle (stack underflow)');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) bad('corrupt pickle (no mark)');
    const items = stack.splice(i) as Slot[];
    return items.slice(1) as PyValue[];
  };
  const long = (b: Uint8Array): number => {
    if (b.length === 0) return 0;
    if (b.length > 7) bad('an integer wider than 2^53');
    let v = 0;
    for (let i = b.length - 1; i >= 0; i--) v = v * 256 + b[i]!;
    if (b[b.length - 1]! & 0x80) v -= 2 ** (8 * b.length);
    return v;
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!allowed(module, name))
      bad(`pickle global ${module}.${name} is not one that expert-distribution dumps hold (nothing was executed)`);
    return new PyGlobal(module, name);
  };
  const setItems = (d: PyValue, items: PyValue[]) => {
    if (!(d instanceof Map)) bad('corrupt pickle (SETITEMS on a non-dict)');
    if (items.length % 2) bad('corrupt pickle (odd SETITEMS)');
    const m = d as Map<PyValue, PyValue>;
    for (let i = 0; i < items.length; i += 2) m.set(items[i]!, items[i + 1]!);
  };
  const asInt = (v: PyValue, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(`tensor ${what} is not an integer`);
    return v as number;
  };
  const intTuple = (v: PyValue, what: string): number[] => {
    if (!(v instanceof PyTuple)) bad(`tensor ${what} is not a tuple`);
    return (v as PyTuple).items.map((x) => asInt(x, what));
  };
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) bad('REDUCE on something other than an allowed global');
    if (!(args instanceof PyTuple)) bad('REDUCE arguments are not a tuple');
    const g = fn as PyGlobal;
    const a = (args as PyTuple).items;
    if (g.module === 'collections') {
      if (a.length > 0 && !(a.length === 1 && Array.isArray(a[0]) && a[0].length === 0))
        bad('OrderedDict with arguments');
      return new Map();
    }
    if (g.name === '_rebuild_tensor_v2') {
      if (a.length < 4) bad('_rebuild_tensor_v2 with too few arguments');
      const storage = a[0] as StorageRef;
      if (!storage || typeof storage !== 'object' || (storage as StorageRef).kind !== 'storage')
        bad('tensor without a storage');
      return {
        kind: 'tensor',
        storage,
        offset: asInt(a[1]!, 'offset'),
        shape: intTuple(a[2]!, 'size'),
        stride: intTuple(a[3]!, 'stride'),
      };
    }
    return bad(`calling ${g.qualified} is not allowed`);
  };
  const persistent = (pid: PyValue): StorageRef => {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage')
      bad('a persistent id that is not a torch storage');
    const [, type, key, location, numel] = (pid as PyTuple).items;
    if (!(type instanceof PyGlobal) || type.module !== 'torch') bad('storage of an unknown type');
    if (typeof key !== 'string' || !/^[0-9A-Za-z_]{1,64}$/.test(key)) bad('storage with a bad key');
    if (typeof location !== 'string') bad('storage without a location');
    return {
      kind: 'storage',
      type: (type as PyGlobal).name,
      key: key as string,
      location: location as string,
      numel: asInt(numel!, 'storage size'),
    };
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) bad('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: {
        // STOP
        const v = pop();
        if (stack.length) bad('corrupt pickle (values left on the stack)');
        return v;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const d = new Map<PyValue, PyValue>();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) bad('corrupt pickle (APPEND to a non-list)');
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) bad('corrupt pickle (APPENDS to a non-list)');
        for (const x of items) (l as PyValue[]).push(x);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) bad('corrupt pickle (memo miss)');
        stack.push(memo.get(i)!);
        break;
      }
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0 || n > 8) bad('an integer wider than 2^53');
        stack.push(long(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (text): also True/False as I01 / I00 in protocol 0 and 1
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else {
          const v = Number(s);
          if (!Number.isSafeInteger(v)) bad('a bad text integer');
          stack.push(v);
        }
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(buf.readDoubleBE(p));
        p += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x58: {
        // BINUNICODE
        const n = u32();
        stack.push(bytes(n).toString('utf8'));
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
        stack.push(bytes(u8()).toString('utf8'));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(bytes(u64()).toString('utf8'));
        break;
      case 0x54: // BINSTRING
      case 0x55: {
        // SHORT_BINSTRING
        const n = op === 0x55 ? u8() : i32();
        stack.push(bytes(n).toString('latin1'));
        break;
      }
      case 0x42: // BINBYTES
      case 0x43: // SHORT_BINBYTES
      case 0x8e: {
        // BINBYTES8
        const n = op === 0x43 ? u8() : op === 0x42 ? u32() : u64();
        stack.push(Uint8Array.from(bytes(n)));
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') bad('STACK_GLOBAL of non-strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x62: {
        // BUILD: only the empty state an OrderedDict may get
        const state = pop();
        const obj = top();
        if (!(obj instanceof Map) || !(state === null || (state instanceof Map && state.size === 0)))
          bad('BUILD with object state (not a plain value)');
        break;
      }
      default:
        bad(`pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1} is not one that plain data uses`);
    }
  }
}

/** A dict's value by string key (Python dicts in these files are keyed by str). */
export function dictGet(d: PyValue, key: string): PyValue | undefined {
  return d instanceof Map ? d.get(key) : undefined;
}
