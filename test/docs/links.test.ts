// The README and docs/ stay navigable: every relative link and image in README.md and docs/*.md names a file
// that exists, every #anchor names a heading of its target (GitHub's slugs, from github-slugger), every
// `lsmseg <command>` the README shows is a command of src/cli/index.ts, and the markers that
// `npm run bench -- all` (bench/all.ts) rewrites appear exactly once, in order.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import GithubSlugger from "github-slugger";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];

/** The text of a markdown file with fenced code blocks blanked out (line numbers kept). */
function withoutFences(text: string): string {
  let fence: string | null = null;
  return text.split("\n").map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (fence === null && m) { fence = m[1][0]; return ""; }
    if (fence !== null) { if (m && m[1][0] === fence) fence = null; return ""; }
    return line;
  }).join("\n");
}

/** The text's fenced code blocks and inline code spans: where commands are written. */
function codeOf(text: string): string[] {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of text.split("\n")) {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (fence === null && m) { fence = m[1][0]; continue; }
    if (fence !== null) { if (m && m[1][0] === fence) fence = null; else out.push(line); continue; }
    for (const span of line.matchAll(/(`+)([^`]+?)\1(?!`)/g)) out.push(span[2]);
  }
  return out;
}

/** GitHub's anchors of a markdown file's headings (ATX headings outside code; repeats get -1, -2, …). */
function anchorsOf(text: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const line of withoutFences(text).split("\n")) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    // GitHub slugs the heading's rendered text: code spans keep their content, links their text
    const rendered = m[1].replace(/`([^`]*)`/g, "$1").replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[*_]{1,2}([^*_]+)[*_]{1,2}/g, "$1");
    anchors.add(slugger.slug(rendered));
  }
  return anchors;
}

/** Every link and image target of a markdown file, outside code. */
function linksOf(text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  withoutFences(text).split("\n").forEach((line, i) => {
    const prose = line.replace(/(`+)[^`]+?\1(?!`)/g, "");
    for (const m of prose.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

test("github-slugger gives GitHub's anchors for the kinds of heading these files have", () => {
  const text = "# lsmseg\n## Another libtorch (CUDA, newer versions)\n### `lsmseg curate`\n#### Run on `demo`: 4 methods × 2 fractions\n"
    + "```sh\n# not a heading\n```\n## Speed\n## Speed\n";
  assert.deepEqual([...anchorsOf(text)], ["lsmseg", "another-libtorch-cuda-newer-versions", "lsmseg-curate", "run-on-demo-4-methods--2-fractions", "speed", "speed-1"]);
  assert.deepEqual(linksOf("see [a](docs/a.md#x), ![b](img/b.png) and `[c](not/a/link.md)`, [d](https://example.org)\n```\n[e](f.md)\n```\n"),
    [{ target: "docs/a.md#x", line: 1 }, { target: "img/b.png", line: 1 }, { target: "https://example.org", line: 1 }]);
});

test("every relative link and anchor in README.md and docs/*.md resolves", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of docs) {
    const text = readFileSync(join(root, file), "utf8");
    for (const { target, line } of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;          // https:, mailto: — not this test's business
      checked++;
      const [path, anchor] = target.split("#", 2) as [string, string | undefined];
      const to = path === "" ? join(root, file) : resolve(root, dirname(file), decodeURIComponent(path));
      const where = `${file}:${line}: ${target}`;
      if (relative(root, to).startsWith("..")) { broken.push(`${where} points outside the repository`); continue; }
      if (!existsSync(to)) { broken.push(`${where}: no such file`); continue; }
      if (anchor !== undefined && to.endsWith(".md") && !anchorsOf(readFileSync(to, "utf8")).has(anchor)) {
        broken.push(`${where}: ${relative(root, to)} has no heading with that anchor`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 20, `only ${checked} relative links found: is the scanner still reading links?`);
});

test("every `lsmseg <command>` in README.md is a command of src/cli/index.ts, with its file under src/cli/", () => {
  const index = readFileSync(join(root, "src/cli/index.ts"), "utf8");
  const block = /const COMMANDS[^=]*=\s*\{([\s\S]*?)\n\};/.exec(index);
  assert.ok(block, "src/cli/index.ts: the COMMANDS table was not found");
  const commands = new Set([...block[1].matchAll(/^\s*"?([a-z][a-z0-9-]*)"?\s*:/gm)].map((m) => m[1]));
  assert.ok(commands.has("demo") && commands.has("convert-dataset"), `parsed commands: ${[...commands].join(", ")}`);
  for (const c of commands) assert.ok(existsSync(join(root, "src/cli", `${c}.ts`)), `src/cli/${c}.ts is missing for command ${c}`);
  const named = new Set<string>();
  for (const code of codeOf(readFileSync(join(root, "README.md"), "utf8"))) {
    for (const m of code.matchAll(/(?:^|[\s(|;&])lsmseg\s+([a-z][a-z0-9-]*)/g)) named.add(m[1]);
  }
  const unknown = [...named].filter((c) => !commands.has(c));
  assert.deepEqual(unknown, [], `README.md names commands that src/cli/index.ts does not have (it has ${[...commands].join(", ")})`);
  const missing = [...commands].filter((c) => !named.has(c));
  assert.deepEqual(missing, [], "README.md shows no example of these commands");
});

test("the regions `npm run bench -- all` rewrites are marked exactly once, start before end", () => {
  for (const [file, name] of [["README.md", "bench"], ["docs/performance.md", "profile"]] as const) {
    const text = readFileSync(join(root, file), "utf8");
    const start = `<!-- ${name}:start -->`, end = `<!-- ${name}:end -->`;
    // bench/all.ts replaces from the first start marker to the first end marker: a marker quoted in prose
    // before the real one would make it overwrite the prose
    assert.equal(text.split(start).length - 1, 1, `${file}: ${start} must appear exactly once`);
    assert.equal(text.split(end).length - 1, 1, `${file}: ${end} must appear exactly once`);
    assert.ok(text.indexOf(start) < text.indexOf(end), `${file}: ${start} must come before ${end}`);
  }
});
