/**
 * The Smalltalk the simulated image understands: enough for a client to see real results, real
 * evaluation errors and Smalltalk's own rules, without a VM. The subset:
 *
 * - integer literals of any size, negative ones written `-5`;
 * - string literals in single quotes, a quote inside doubled (`'it''s'`);
 * - the binary messages `+ - * // \\` on integers, sent strictly left to right as Smalltalk does
 *   (`3 + 4 * 2` is 14); `//` and `\\` round towards negative infinity; dividing by zero fails;
 * - parentheses; the unary message `Smalltalk version`;
 * - statements separated by `.`, the value of the last one answered; `"comments"`.
 *
 * A result is its printString and its class name. Everything else fails with a message saying why.
 */

/** Pharo's 64-bit SmallInteger range (61-bit signed: Spur keeps 3 tag bits); beyond it, LargeIntegers. */
export const SMALL_INTEGER_MAX = 2n ** 60n - 1n;
export const SMALL_INTEGER_MIN = -(2n ** 60n);

/** Deeper parentheses are refused rather than risking the parser's stack. */
export const MAX_NESTING = 256;

export type EvaluationFailureKind =
  "SyntaxError" | "UndeclaredVariable" | "MessageNotUnderstood" | "ZeroDivide" | "InternalError";

export type Evaluation =
  | { readonly ok: true; readonly result: string; readonly resultType: string }
  | { readonly ok: false; readonly kind: EvaluationFailureKind; readonly message: string };

export interface EvaluationContext {
  /** What `Smalltalk version` answers, e.g. `Pharo-12.0.0`. */
  readonly imageVersion: string;
}

type Value = { readonly kind: "integer"; readonly value: bigint } | { readonly kind: "string"; readonly value: string };

type Token =
  | { readonly kind: "integer"; readonly value: bigint; readonly at: number }
  | { readonly kind: "string"; readonly value: string; readonly at: number }
  | { readonly kind: "identifier"; readonly name: string; readonly at: number }
  | { readonly kind: "keyword"; readonly name: string; readonly at: number }
  | { readonly kind: "binary"; readonly selector: string; readonly at: number }
  | { readonly kind: "punctuation"; readonly char: "(" | ")" | "."; readonly at: number }
  | { readonly kind: "end"; readonly at: number };

/** Thrown inside the evaluator only; `evaluate` turns it into its answer. */
class Failure extends Error {
  constructor(
    readonly kind: EvaluationFailureKind,
    message: string,
  ) {
    super(message);
  }
}

const BINARY_CHARS = "+-*/\\<>=~@%|&?,";
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
const isLetter = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);

function tokenize(code: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < code.length) {
    const c = code[i] ?? "";
    const at = i;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      const close = code.indexOf('"', i + 1);
      if (close < 0) throw new Failure("SyntaxError", `unterminated comment at ${at}`);
      i = close + 1;
    } else if (isDigit(c) || (c === "-" && isDigit(code[i + 1]) && expectsOperand(tokens))) {
      i++;
      while (isDigit(code[i])) i++;
      if (isLetter(code[i])) throw new Failure("SyntaxError", `unsupported number syntax at ${at}`);
      tokens.push({ kind: "integer", value: BigInt(code.slice(at, i)), at });
    } else if (c === "'") {
      let text = "";
      for (i++; ; i++) {
        if (i >= code.length) throw new Failure("SyntaxError", `unterminated string at ${at}`);
        if (code[i] === "'") {
          if (code[i + 1] !== "'") break;
          i++;
        }
        text += code[i];
      }
      i++;
      tokens.push({ kind: "string", value: text, at });
    } else if (isLetter(c)) {
      while (isLetter(code[i]) || isDigit(code[i])) i++;
      const name = code.slice(at, i);
      if (code[i] === ":") {
        tokens.push({ kind: "keyword", name: `${name}:`, at });
        i++;
      } else {
        tokens.push({ kind: "identifier", name, at });
      }
    } else if (c === "(" || c === ")" || c === ".") {
      tokens.push({ kind: "punctuation", char: c, at });
      i++;
    } else if (BINARY_CHARS.includes(c)) {
      // As Pharo's scanner does, a `-` never continues a selector, so `3--4` is `3 - -4`.
      i++;
      while (i < code.length && BINARY_CHARS.includes(code[i] ?? "") && code[i] !== "-") i++;
      tokens.push({ kind: "binary", selector: code.slice(at, i), at });
    } else {
      throw new Failure("SyntaxError", `unexpected character ${JSON.stringify(c)} at ${at}`);
    }
  }
  tokens.push({ kind: "end", at: code.length });
  return tokens;
}

/** A `-` before a digit is a negative literal only where an operand is expected. */
function expectsOperand(tokens: readonly Token[]): boolean {
  const last = tokens.at(-1);
  if (last === undefined) return true;
  if (last.kind === "binary" || last.kind === "keyword") return true;
  return last.kind === "punctuation" && last.char !== ")";
}

const className = (value: Value): string => (value.kind === "string" ? "ByteString" : integerClass(value.value));

function integerClass(n: bigint): string {
  if (n >= SMALL_INTEGER_MIN && n <= SMALL_INTEGER_MAX) return "SmallInteger";
  return n < 0n ? "LargeNegativeInteger" : "LargePositiveInteger";
}

function printString(value: Value): string {
  return value.kind === "string" ? `'${value.value.replaceAll("'", "''")}'` : value.value.toString();
}

/** Smalltalk's `//` and `\\` round the quotient towards negative infinity; BigInt's towards zero. */
function floorDivide(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function send(receiver: Value, selector: string, argument: Value): Value {
  if (receiver.kind !== "integer") {
    throw new Failure("MessageNotUnderstood", `${className(receiver)} does not understand #${selector}`);
  }
  if (!["+", "-", "*", "//", "\\\\"].includes(selector)) {
    throw new Failure("MessageNotUnderstood", `unknown message #${selector}`);
  }
  if (argument.kind !== "integer") {
    throw new Failure("MessageNotUnderstood", `${className(argument)} is not a number (argument of #${selector})`);
  }
  const [a, b] = [receiver.value, argument.value];
  switch (selector) {
    case "+":
      return { kind: "integer", value: a + b };
    case "-":
      return { kind: "integer", value: a - b };
    case "*":
      return { kind: "integer", value: a * b };
    default:
      if (b === 0n) throw new Failure("ZeroDivide", `division by zero (${a} ${selector} 0)`);
      return { kind: "integer", value: selector === "//" ? floorDivide(a, b) : a - b * floorDivide(a, b) };
  }
}

class Parser {
  private position = 0;
  private depth = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly context: EvaluationContext,
  ) {}

  /** statements := expression ('.' expression)* '.'? */
  statements(): Value {
    let value: Value | undefined;
    while (this.peek().kind !== "end") {
      value = this.expression();
      const next = this.peek();
      if (next.kind === "punctuation" && next.char === ".") this.position++;
      else if (next.kind !== "end") throw this.unexpected(next);
    }
    if (value === undefined) throw new Failure("SyntaxError", "nothing to evaluate");
    return value;
  }

  /** expression := unary (binarySelector unary)*: no precedence among binary messages. */
  private expression(): Value {
    let value = this.unary();
    for (let next = this.peek(); next.kind === "binary"; next = this.peek()) {
      this.position++;
      value = send(value, next.selector, this.unary());
    }
    const next = this.peek();
    if (next.kind === "keyword") throw new Failure("MessageNotUnderstood", `unknown message #${next.name}`);
    return value;
  }

  /** unary := primary identifier*: `Smalltalk version` is the only unary message understood. */
  private unary(): Value {
    const first = this.peek();
    if (first.kind === "identifier") {
      this.position++;
      if (first.name !== "Smalltalk") throw new Failure("UndeclaredVariable", `undeclared variable ${first.name}`);
      const message = this.peek();
      if (message.kind !== "identifier") throw new Failure("SyntaxError", "expected a message to Smalltalk");
      this.position++;
      if (message.name !== "version") throw new Failure("MessageNotUnderstood", `unknown message #${message.name}`);
      return this.unaryMessages({ kind: "string", value: this.context.imageVersion });
    }
    return this.unaryMessages(this.primary());
  }

  private unaryMessages(value: Value): Value {
    const next = this.peek();
    if (next.kind === "identifier") throw new Failure("MessageNotUnderstood", `unknown message #${next.name}`);
    return value;
  }

  private primary(): Value {
    const token = this.peek();
    this.position++;
    if (token.kind === "integer") return { kind: "integer", value: token.value };
    if (token.kind === "string") return { kind: "string", value: token.value };
    if (token.kind === "punctuation" && token.char === "(") {
      if (++this.depth > MAX_NESTING) throw new Failure("SyntaxError", `nested deeper than ${MAX_NESTING}`);
      const value = this.expression();
      const close = this.peek();
      if (close.kind !== "punctuation" || close.char !== ")") throw this.unexpected(close, "')'");
      this.position++;
      this.depth--;
      return value;
    }
    throw this.unexpected(token, "an expression");
  }

  private peek(): Token {
    return this.tokens[this.position] ?? { kind: "end", at: -1 };
  }

  private unexpected(token: Token, expected?: string): Failure {
    const found = token.kind === "end" ? "end of input" : `${describe(token)} at ${token.at}`;
    return new Failure(
      "SyntaxError",
      expected === undefined ? `unexpected ${found}` : `expected ${expected}, got ${found}`,
    );
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case "integer":
      return token.value.toString();
    case "string":
      return "a string";
    case "identifier":
    case "keyword":
      return token.name;
    case "binary":
      return token.selector;
    case "punctuation":
      return `'${token.char}'`;
    case "end":
      return "end of input";
  }
}

/** Evaluates `code`; never throws. */
export function evaluate(code: string, context: EvaluationContext): Evaluation {
  try {
    const value = new Parser(tokenize(code), context).statements();
    return { ok: true, result: printString(value), resultType: className(value) };
  } catch (error) {
    if (error instanceof Failure) return { ok: false, kind: error.kind, message: `cannot evaluate: ${error.message}` };
    // Only a bug (or an engine limit such as memory) lands here; it is still an answer, not a crash.
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, kind: "InternalError", message: `cannot evaluate: ${detail}` };
  }
}
