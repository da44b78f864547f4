/**
 * What a WGSL module asks of the device, read from its text before any pipeline exists: the
 * functions an entry point reaches, and the workgroup memory it declares. Our shaders keep braces
 * balanced and give workgroup arrays sizes that are products of integer consts and literals
 * (template sizes are expanded before this runs).
 */

/** Bodies of every `fn` in the module, by name (brace matching). */
function functionBodies(code: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /\bfn\s+(\w+)\s*\(/g;
  for (const m of code.matchAll(re)) {
    let i = code.indexOf('{', m.index);
    const from = i;
    let depth = 0;
    for (; i < code.length; i++) {
      if (code[i] === '{') depth++;
      else if (code[i] === '}' && --depth === 0) break;
    }
    out.set(m[1], code.slice(from, i + 1));
  }
  return out;
}

/** `code` without its line comments: a comment's words must not read as a call or a binding's use. */
export const stripComments = (code: string) => code.replace(/\/\/[^\n]*/g, '');

/**
 * The text of `entry` and of every function it calls, transitively (comments left out: "gv (the …"
 * in a comment once read as a call of gv and gave an entry point two bindings it never touches, over
 * the default limit of 8 storage buffers).
 */
export function reachableText(code: string, entry: string): string {
  const bodies = functionBodies(stripComments(code));
  const seen = new Set<string>();
  const stack = [entry];
  let text = '';
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f) || !bodies.has(f)) continue;
    seen.add(f);
    const body = bodies.get(f)!;
    text += body;
    for (const name of bodies.keys())
      if (!seen.has(name) && new RegExp(`\\b${name}\\s*\\(`).test(body)) stack.push(name);
  }
  if (!seen.has(entry)) throw new Error(`entry point ${entry} not found`);
  return text;
}

/** Bytes of one element type (WGSL alignment rules give the same sizes for these). */
const ELEMENT_BYTES: Record<string, number> = {
  f32: 4,
  u32: 4,
  i32: 4,
  'atomic<u32>': 4,
  'atomic<i32>': 4,
  'vec2<f32>': 8,
  'vec2<u32>': 8,
  'vec4<f32>': 16,
  'vec4<u32>': 16,
};

/** Integer value of a const-expression made of `NAME`, `12u` and `*` (null when it is anything else). */
function evalProduct(expr: string, consts: Map<string, number>): number | null {
  let v = 1;
  for (const term of expr.split('*').map((t) => t.trim())) {
    const lit = /^(\d+)u?$/.exec(term);
    if (lit) v *= Number(lit[1]);
    else if (consts.has(term)) v *= consts.get(term)!;
    else return null;
  }
  return v;
}

/**
 * Workgroup memory an entry point uses: the `var<workgroup>` declarations its reachable code names.
 * Throws when a size cannot be read (a declaration this scanner does not understand must not pass
 * unchecked).
 */
export function workgroupBytes(code: string, entry: string): number {
  const consts = new Map<string, number>();
  for (const m of code.matchAll(/\bconst\s+(\w+)\s*:\s*[ui]32\s*=\s*([^;]+);/g)) {
    const v = evalProduct(m[2], consts);
    if (v !== null) consts.set(m[1], v);
  }
  const text = reachableText(code, entry);
  let bytes = 0;
  for (const m of code.matchAll(/var<workgroup>\s+(\w+)\s*:\s*([^;]+);/g)) {
    if (!new RegExp(`\\b${m[1]}\\b`).test(text)) continue;
    const type = m[2].replace(/\s+/g, '');
    const arr = /^array<(.+),([^,<>]+)>$/.exec(type);
    const elem = arr ? arr[1] : type;
    const count = arr ? evalProduct(arr[2], consts) : 1;
    const size = ELEMENT_BYTES[elem];
    if (size === undefined || count === null)
      throw new Error(`cannot size var<workgroup> ${m[1]}: ${m[2]} (entry ${entry})`);
    bytes += size * count;
  }
  return bytes;
}
