import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluate, MAX_NESTING, SMALL_INTEGER_MAX, SMALL_INTEGER_MIN, type Evaluation } from "../src/sim/evaluator.js";

const context = { imageVersion: "Pharo-12.0.0" };
const run = (code: string): Evaluation => evaluate(code, context);

function success(code: string): { result: string; resultType: string } {
  const outcome = run(code);
  if (!outcome.ok) throw new Error(`expected ${code} to evaluate, got ${outcome.kind}: ${outcome.message}`);
  return { result: outcome.result, resultType: outcome.resultType };
}

function failure(code: string): { kind: string; message: string } {
  const outcome = run(code);
  if (outcome.ok) throw new Error(`expected ${code} to fail, got ${outcome.result}`);
  return { kind: outcome.kind, message: outcome.message };
}

describe("sim evaluator - integer arithmetic follows Smalltalk", () => {
  it("sends binary messages strictly left to right, without precedence", () => {
    expect(success("3 + 4 * 2").result).toBe("14");
    expect(success("2 * 3 + 4").result).toBe("10");
    expect(success("10 - 2 - 3").result).toBe("5");
    expect(success("20 // 3 * 3").result).toBe("18");
  });

  it("lets parentheses change the order", () => {
    expect(success("3 + (4 * 2)").result).toBe("11");
    expect(success("((1 + 2) * (3 + 4))").result).toBe("21");
  });

  it("reads -5 as a negative literal where an operand is expected, and - as a message elsewhere", () => {
    expect(success("-5").result).toBe("-5");
    expect(success("-5 + 2").result).toBe("-3");
    expect(success("3 - -5").result).toBe("8");
    expect(success("3--5").result).toBe("8");
    expect(success("3 -5").result).toBe("-2");
    expect(success("(-5)").result).toBe("-5");
  });

  it("rounds // and \\\\ towards negative infinity, as Smalltalk does", () => {
    expect(success("7 // 2").result).toBe("3");
    expect(success("-7 // 2").result).toBe("-4");
    expect(success("7 // -2").result).toBe("-4");
    expect(success("-7 \\\\ 2").result).toBe("1");
    expect(success("7 \\\\ -2").result).toBe("-1");
    expect(success("6 \\\\ 3").result).toBe("0");
  });

  it("keeps // and \\\\ consistent: (a // b) * b + (a \\\\ b) = a, with the remainder taking b's sign", () => {
    const nonZero = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).filter((b) => b !== 0n);
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), nonZero, (a, b) => {
        const q = BigInt(success(`${a} // ${b}`).result);
        const r = BigInt(success(`${a} \\\\ ${b}`).result);
        expect(q * b + r).toBe(a);
        expect(r === 0n || r < 0n === b < 0n).toBe(true);
        expect(r < 0n ? -r : r).toBeLessThan(b < 0n ? -b : b);
      }),
    );
  });

  it("computes with arbitrary precision and names the class by size", () => {
    expect(success("99999999999999999999 * 99999999999999999999")).toEqual({
      result: "9999999999999999999800000000000000000001",
      resultType: "LargePositiveInteger",
    });
    expect(success("0 - 99999999999999999999").resultType).toBe("LargeNegativeInteger");
    expect(success("3 + 4")).toEqual({ result: "7", resultType: "SmallInteger" });
  });

  it("puts the SmallInteger boundary where 64-bit Pharo does", () => {
    expect(success(`${SMALL_INTEGER_MAX}`).resultType).toBe("SmallInteger");
    expect(success(`${SMALL_INTEGER_MAX} + 1`).resultType).toBe("LargePositiveInteger");
    expect(success(`${SMALL_INTEGER_MIN}`).resultType).toBe("SmallInteger");
    expect(success(`${SMALL_INTEGER_MIN} - 1`).resultType).toBe("LargeNegativeInteger");
  });

  it("fails on division by zero instead of answering", () => {
    expect(failure("1 // 0")).toEqual({ kind: "ZeroDivide", message: "cannot evaluate: division by zero (1 // 0)" });
    expect(failure("1 \\\\ (2 - 2)").kind).toBe("ZeroDivide");
  });
});

describe("sim evaluator - strings and Smalltalk version", () => {
  it("answers a string's printString, doubling its quotes", () => {
    expect(success("'it''s'")).toEqual({ result: "'it''s'", resultType: "ByteString" });
    expect(success("''")).toEqual({ result: "''", resultType: "ByteString" });
    expect(success("'a \"b\" c'").result).toBe("'a \"b\" c'");
  });

  it("answers the configured version for Smalltalk version", () => {
    expect(success("Smalltalk version")).toEqual({ result: "'Pharo-12.0.0'", resultType: "ByteString" });
    expect(evaluate("Smalltalk version", { imageVersion: "Pharo-11.0.0" })).toMatchObject({ result: "'Pharo-11.0.0'" });
  });

  it("answers the last of several statements and skips comments", () => {
    expect(success("1. 2 + 3.").result).toBe("5");
    expect(success('"the answer" 6 * 7').result).toBe("42");
  });
});

describe("sim evaluator - anything else fails with a reason, never throws", () => {
  it.each([
    ["3 foo", "MessageNotUnderstood", "cannot evaluate: unknown message #foo"],
    ["3 / 4", "MessageNotUnderstood", "cannot evaluate: unknown message #/"],
    ["3 max: 4", "MessageNotUnderstood", "cannot evaluate: unknown message #max:"],
    ["Smalltalk foo", "MessageNotUnderstood", "cannot evaluate: unknown message #foo"],
    ["'a' + 1", "MessageNotUnderstood", "cannot evaluate: ByteString does not understand #+"],
    ["1 + 'a'", "MessageNotUnderstood", "cannot evaluate: ByteString is not a number (argument of #+)"],
    ["foo", "UndeclaredVariable", "cannot evaluate: undeclared variable foo"],
    ["", "SyntaxError", "cannot evaluate: nothing to evaluate"],
    ["(1 + 2", "SyntaxError", "cannot evaluate: expected ')', got end of input"],
    ["3 +", "SyntaxError", "cannot evaluate: expected an expression, got end of input"],
    ["'open", "SyntaxError", "cannot evaluate: unterminated string at 0"],
    ["#sym", "SyntaxError", 'cannot evaluate: unexpected character "#" at 0'],
    ["1 2", "SyntaxError", "cannot evaluate: unexpected 2 at 2"],
  ])("%s fails as %s", (code, kind, message) => {
    expect(failure(code)).toEqual({ kind, message });
  });

  it("refuses nesting deeper than the limit rather than overflowing the stack", () => {
    const deep = `${"(".repeat(MAX_NESTING + 1)}1${")".repeat(MAX_NESTING + 1)}`;
    expect(failure(deep).kind).toBe("SyntaxError");
    expect(success(`${"(".repeat(MAX_NESTING)}1${")".repeat(MAX_NESTING)}`).result).toBe("1");
    expect(failure("(".repeat(100_000)).kind).toBe("SyntaxError");
  });

  it("returns an outcome for any input at all", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(..."0123456789+-*/\\() '.\"abSmaltkvrsion:#"), maxLength: 40 }),
        (code) => {
          const outcome = run(code);
          expect(typeof outcome.ok).toBe("boolean");
        },
      ),
    );
  });
});
