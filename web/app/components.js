// Shared pieces of every page: loading/empty/error states in the API's words, copy and confirm buttons,
// polling, and the formatting of numbers and dates.
import { html, useCallback, useEffect, useRef, useState } from "./html.js";

// Loads with `loader()` whenever `deps` change; `reload()` refetches, `poll` (ms) refetches while truthy.
export function useResource(loader, deps, { poll = 0 } = {}) {
  const [state, setState] = useState({ status: "loading", data: null, error: null });
  const latest = useRef(0);
  const load = useCallback(async (quiet = false) => {
    const call = ++latest.current;
    if (!quiet) setState((s) => ({ ...s, status: s.data ? s.status : "loading" }));
    try {
      const data = await loader();
      if (call === latest.current) setState({ status: "ready", data, error: null });
    } catch (error) {
      if (call === latest.current) setState((s) => ({ status: s.data && quiet ? "ready" : "error", data: s.data, error }));
    }
  }, deps);
  useEffect(() => {
    setState({ status: "loading", data: null, error: null });
    load();
  }, [load]);
  useEffect(() => {
    if (!poll) return undefined;
    const timer = setInterval(() => load(true), poll);
    return () => clearInterval(timer);
  }, [load, poll]);
  return { ...state, reload: load };
}

export function Loading({ label = "Loading…" }) {
  return html`<p class="state loading" role="status">${label}</p>`;
}

export function Empty({ children }) {
  return html`<div class="state empty" role="status">${children}</div>`;
}

export function ErrorMessage({ error }) {
  if (!error) return null;
  const details = error.details ?? [];
  return html`<div class="state error" role="alert">
    <p>${error.message}</p>
    ${details.length > 0 &&
    html`<ul>
      ${details.map((d) => html`<li><code>${d.field}</code>: ${d.message}</li>`)}
    </ul>`}
  </div>`;
}

// The three states of a resource: loading, error, else `children(data)` (which shows its own empty state).
export function Async({ resource, children }) {
  if (resource.status === "loading") return html`<${Loading} />`;
  if (resource.status === "error") return html`<${ErrorMessage} error=${resource.error} />`;
  return children(resource.data);
}

export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch {
      setDone(false);
    }
  };
  return html`<button type="button" class="secondary" onClick=${copy} aria-label=${label}>
    ${done ? "Copied" : "Copy"}
  </button>`;
}

// A destructive action asks once more, in place (no modal to trap focus in).
export function ConfirmButton({ label, question, onConfirm, busyLabel = "Working…" }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const yes = useRef(null);
  useEffect(() => asking && yes.current?.focus(), [asking]);
  if (!asking) return html`<button type="button" class="danger" onClick=${() => setAsking(true)}>${label}</button>`;
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span>${question}</span>
    <button type="button" class="danger" ref=${yes} disabled=${busy} onClick=${confirm}>${busy ? busyLabel : `Yes, ${label.toLowerCase()}`}</button>
    <button type="button" class="secondary" disabled=${busy} onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

export function CodeLine({ text, label }) {
  return html`<div class="codeline"><code>${text}</code><${CopyButton} text=${text} label=${label} /></div>`;
}

export function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`}>${(status ?? "").replace(/_/g, " ")}</span>`;
}

export function Progress({ value, label }) {
  return html`<progress max="100" value=${value ?? 0} aria-label=${label}>${value ?? 0}%</progress>`;
}

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
export const pct = (value, digits = 1) => (isNumber(value) ? `${(value * 100).toFixed(digits)}%` : "–");
export const num = (value, digits = 4) => (isNumber(value) ? value.toFixed(digits) : "–");
export const int = (value) => (isNumber(value) ? value.toLocaleString("en-US") : "–");
export const interval = (ci, format = pct) => (Array.isArray(ci) && ci.every(isNumber) ? `[${format(ci[0])}, ${format(ci[1])}]` : "–");
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
export const shortId = (id) => (id ? id.slice(0, 8) : "–");
export const ACTIVE = ["preparing", "training", "evaluating"];
