/**
 * Reads a JAAS login configuration file, as ZooKeeper's server JAAS file
 * (`-Djava.security.auth.login.config`), for its DIGEST-MD5 users:
 *
 * ```
 * Server {
 *   org.apache.zookeeper.server.auth.DigestLoginModule required
 *   user_super="adminsecret"
 *   user_bob="bobsecret";
 * };
 * ```
 *
 * Sections are `Name { entries };`; an entry is a login module class, a
 * control flag and `name=value` options separated by white space, ended by
 * `;`. Values are quoted (with backslash escapes) or bare words; `//` and
 * `/* … *\/` comments are skipped, as Java's `ConfigFile` does. Errors name
 * the line, never a value (values are passwords).
 *
 * @module
 */

import { UsageError } from "./etcd_flags.ts";

/** A malformed JAAS file; the message names the line, never a value. */
export class JaasError extends Error {
  override name = "JaasError";
}

/** One login module entry of a section. */
export interface JaasEntry {
  module: string;
  flag: string;
  options: Map<string, string>;
}

type Token = { kind: "word" | "string" | "punct"; text: string; line: number };

const FLAGS = new Set(["required", "requisite", "sufficient", "optional"]);

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) throw new JaasError(`line ${line}: unterminated comment`);
      for (let j = i; j < end; j++) if (text[j] === "\n") line++;
      i = end + 2;
    } else if (c === '"') {
      const start = line;
      let value = "";
      i++;
      for (;;) {
        if (i >= n) throw new JaasError(`line ${start}: unterminated quoted string`);
        const d = text[i++];
        if (d === '"') break;
        if (d === "\n") line++;
        if (d === "\\" && i < n) {
          const e = text[i++];
          value += e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e;
        } else {
          value += d;
        }
      }
      out.push({ kind: "string", text: value, line: start });
    } else if ("{};=".includes(c)) {
      out.push({ kind: "punct", text: c, line });
      i++;
    } else {
      const start = i;
      while (i < n && !/\s/.test(text[i]) && !'{};="'.includes(text[i])) {
        if (text[i] === "/" && (text[i + 1] === "/" || text[i + 1] === "*")) break;
        i++;
      }
      out.push({ kind: "word", text: text.slice(start, i), line });
    }
  }
  return out;
}

/**
 * Parses a JAAS file into its sections (name → entries).
 *
 * @throws {JaasError} on a syntax error.
 */
export function parseJaas(text: string): Map<string, JaasEntry[]> {
  const tokens = tokenize(text);
  let i = 0;
  const lastLine = tokens.length ? tokens[tokens.length - 1].line : 1;
  const peek = () => tokens[i];
  const where = () => `line ${peek()?.line ?? lastLine}`;
  const punct = (p: string, what: string) => {
    const t = tokens[i];
    if (!t || t.kind !== "punct" || t.text !== p) {
      throw new JaasError(`${where()}: expected "${p}" ${what}`);
    }
    i++;
  };
  const word = (what: string) => {
    const t = tokens[i];
    if (!t || t.kind !== "word") throw new JaasError(`${where()}: expected ${what}`);
    i++;
    return t.text;
  };
  const sections = new Map<string, JaasEntry[]>();
  while (i < tokens.length) {
    const name = word("a section name");
    punct("{", `after section ${name}`);
    const entries: JaasEntry[] = [];
    while (peek() && !(peek().kind === "punct" && peek().text === "}")) {
      const module = word("a login module class name");
      const flagLine = where();
      const flag = word(`the control flag of ${module}`);
      if (!FLAGS.has(flag.toLowerCase())) {
        throw new JaasError(
          `${flagLine}: the control flag of ${module} must be required, requisite, sufficient or optional`,
        );
      }
      const options = new Map<string, string>();
      while (peek() && !(peek().kind === "punct" && peek().text === ";")) {
        const key = word(`an option name or ";" in ${module}`);
        punct("=", `after option ${key}`);
        const v = tokens[i];
        if (!v || v.kind === "punct") throw new JaasError(`${where()}: option ${key} has no value`);
        i++;
        options.set(key, v.text);
      }
      punct(";", `at the end of the ${module} entry`);
      entries.push({ module, flag: flag.toLowerCase(), options });
    }
    punct("}", `closing section ${name}`);
    punct(";", `after the "}" of section ${name}`);
    const previous = sections.get(name) ?? [];
    sections.set(name, [...previous, ...entries]);
  }
  return sections;
}

/**
 * The DIGEST-MD5 users of section `section` (ZooKeeper's
 * `zookeeper.sasl.serverconfig`, default `Server`): every `user_<name>`
 * option of its entries, as ZooKeeper's `SaslServerCallbackHandler` reads
 * them.
 *
 * @throws {JaasError} on a syntax error, or when the section is missing.
 */
export function jaasUsers(text: string, section = "Server"): Map<string, string> {
  const entries = parseJaas(text).get(section);
  if (entries === undefined) throw new JaasError(`no "${section}" section`);
  const users = new Map<string, string>();
  for (const entry of entries) {
    for (const [key, value] of entry.options) {
      if (key.startsWith("user_") && key.length > "user_".length) {
        users.set(key.slice("user_".length), value);
      }
    }
  }
  return users;
}

/**
 * The users of `--jaas-config FILE` (its `Server` section). A file that
 * cannot be read or parsed, or has no `Server` section, is a UsageError
 * naming flag, file and line; no value is ever shown.
 */
export function readJaasUsers(file: string): Map<string, string> {
  let text: string;
  try {
    text = new TextDecoder().decode(Deno.readFileSync(file));
  } catch (err) {
    const why = (err as Error).message.replace(/: \w+ '.*'$/, "");
    throw new UsageError(`--jaas-config ${file}: ${why}`);
  }
  try {
    return jaasUsers(text);
  } catch (err) {
    if (err instanceof JaasError) throw new UsageError(`--jaas-config ${file}: ${err.message}`);
    throw err;
  }
}
