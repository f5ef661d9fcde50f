/**
 * public/ must stay ES5 (the client targets old browsers too, see public/js/comet-core.js):
 * every .js file and every inline <script> of every .html file must parse with
 * acorn set to ECMAScript 5 as a classic script.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, tokenizer, tokTypes } from 'acorn';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PUBLIC_DIR = join(ROOT, 'public');

interface Source {
  /** Where it comes from, relative to the repository. */
  name: string;
  code: string;
  /** Line of the source's first character in its file, 1-based (inline scripts start mid-file). */
  firstLine: number;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out.sort();
}

/** Inline classic scripts: no src, and no type or a JavaScript type. */
function inlineScripts(html: string, name: string): Source[] {
  const out: Source[] = [];
  const scriptTag = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
  for (const match of html.matchAll(scriptTag)) {
    const attrs = match[1] ?? '';
    const code = match[2] ?? '';
    if (/\bsrc\s*=/i.test(attrs)) continue;
    const type = /\btype\s*=\s*["']?([^"'\s>]+)/i.exec(attrs)?.[1]?.toLowerCase();
    if (type !== undefined && type !== 'text/javascript' && type !== 'application/javascript') continue;
    const start = (match.index ?? 0) + match[0].indexOf('>') + 1;
    out.push({ name, code, firstLine: html.slice(0, start).split('\n').length });
  }
  return out;
}

/** null when the source is ES5, else `file:line:column: message`. */
function es5Error(source: Source): string | null {
  try {
    parse(source.code, { ecmaVersion: 5, sourceType: 'script', locations: true });
    return null;
  } catch (err) {
    const loc = (err as { loc?: { line: number; column: number } }).loc;
    const where = loc ? `${loc.line + source.firstLine - 1}:${loc.column + 1}` : '?';
    return `${source.name}:${where}: ${(err as Error).message}`;
  }
}

function publicSources(): Source[] {
  const sources: Source[] = [];
  for (const path of filesUnder(PUBLIC_DIR)) {
    const name = relative(ROOT, path);
    if (path.endsWith('.js')) sources.push({ name, code: readFileSync(path, 'utf8'), firstLine: 1 });
    else if (path.endsWith('.html')) sources.push(...inlineScripts(readFileSync(path, 'utf8'), name));
  }
  return sources;
}

test('every script in public/ parses as ECMAScript 5', () => {
  const sources = publicSources();
  const names = new Set(sources.map((s) => s.name));
  // The check must actually see the client, the bridge and the page's inline boot script.
  for (const expected of ['public/js/comet.js', 'public/js/comet-tabs.js', 'public/js/bridge.js', 'public/index.html']) {
    assert.ok(names.has(expected), `${expected} was not checked`);
  }
  const errors = sources.map(es5Error).filter((e): e is string => e !== null);
  assert.deepEqual(errors, [], `newer-than-ES5 syntax in public/:\n${errors.join('\n')}`);
});

/**
 * Globals that parse fine as ES5 but do not exist in the browsers we target
 * (IE8-11, old WebKit): the client uses XMLHttpRequest and callbacks instead.
 */
const MODERN_GLOBALS = new Set(['Promise', 'fetch', 'Symbol', 'Map', 'Set', 'WeakMap', 'Proxy', 'Reflect', 'requestIdleCallback']);

/** Uses of MODERN_GLOBALS as free names (not `obj.fetch`), as `file:line:column: name`. */
function modernGlobals(source: Source): string[] {
  const found: string[] = [];
  let previous: unknown = null;
  for (const token of tokenizer(source.code, { ecmaVersion: 5, locations: true })) {
    // Token's typings omit `value`; for a name it is the source text.
    const name = source.code.slice(token.start, token.end);
    if (token.type === tokTypes.name && MODERN_GLOBALS.has(name) && previous !== tokTypes.dot) {
      found.push(`${source.name}:${(token.loc?.start.line ?? 0) + source.firstLine - 1}:${(token.loc?.start.column ?? 0) + 1}: ${name}`);
    }
    previous = token.type;
  }
  return found;
}

test('no script in public/ relies on post-ES5 globals such as Promise or fetch', () => {
  const found = publicSources().flatMap(modernGlobals);
  assert.deepEqual(found, [], `post-ES5 globals in public/:\n${found.join('\n')}`);
  assert.deepEqual(modernGlobals({ name: 's.js', code: 'x.fetch(); new Promise(f);', firstLine: 1 }), ['s.js:1:16: Promise']);
});

test('the ES5 check rejects newer syntax and names the place', () => {
  const arrow = es5Error({ name: 'sample.js', code: 'var ok = 1;\nvar f = (x) => x;\n', firstLine: 1 });
  assert.match(arrow ?? '', /^sample\.js:2:\d+: /);
  for (const code of ['let x = 1;', 'const x = 1;', 'class A {}', 'var s = `t`;', 'for (var x of []) {}', 'function f(a = 1) {}', 'f(...args);']) {
    assert.notEqual(es5Error({ name: 'sample.js', code, firstLine: 1 }), null, `${code} was accepted`);
  }
});

test('inline scripts are located by their line in the HTML file', () => {
  const html = '<!DOCTYPE html>\n<p>x</p>\n<script src="/a.js"></script>\n<script type="text/template">`ok`</script>\n<script>\nvar a = 1;\nlet b = 2;\n</script>\n';
  const scripts = inlineScripts(html, 'page.html');
  assert.equal(scripts.length, 1);
  assert.match(es5Error(scripts[0]!) ?? '', /^page\.html:7:\d+: /);
});
