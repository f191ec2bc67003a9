// DOM helpers. Text always goes in through textContent / createTextNode, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** h("td", {class: "x"}, "text", otherNode): an HTML element; strings become text nodes. */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** s("circle", {r: 4}): an SVG element. */
export function s(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function shortId(id) {
  return typeof id === "string" && id.length > 8 ? id.slice(0, 8) : String(id ?? "");
}

export function timeOf(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(11, 23);
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export async function getJSON(url, headers = {}) {
  const response = await fetch(url, {headers: {Accept: "application/json", ...headers}, credentials: "same-origin"});
  if (!response.ok) {
    const error = new Error(`${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

/** Milliseconds between two ISO times, or null. */
export function msBetween(a, b) {
  if (!a || !b) return null;
  const d = new Date(b) - new Date(a);
  return Number.isFinite(d) ? d : null;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
