/** Small helpers to build DOM without a framework. */

type Attributes = Readonly<Record<string, string | number | boolean | null | undefined>>;

function setAttributes(element: Element, attributes: Attributes): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
}

/** An HTML element with attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  element.append(...children);
  return element;
}

const svgNamespace = "http://www.w3.org/2000/svg";

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string)[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(svgNamespace, tag);
  setAttributes(element, attributes);
  element.append(...children);
  return element;
}

/** Sets an attribute only when it differs: the tree updates rows in place many times a second. */
export function setIfChanged(element: Element, name: string, value: string): void {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

export function setTextIfChanged(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}

/** The element with this `data-testid` in `root`; the page's HTML is fixed, so its absence is a bug. */
export function byTestId<T extends Element>(root: ParentNode, testId: string, type: new () => T): T {
  const element = root.querySelector(`[data-testid="${testId}"]`);
  if (!(element instanceof type)) throw new Error(`inspector: no ${type.name} [data-testid=${testId}]`);
  return element;
}

/** `HH:MM:SS.mmm` local time. */
export function clockTime(at: number): string {
  const date = new Date(at);
  const pad = (n: number, width = 2): string => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}
