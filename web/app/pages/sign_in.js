// Sign-in: an API key, checked against the API, kept in this tab's sessionStorage.
import { html, useState } from "../html.js";
import { api } from "../api.js";
import { ErrorMessage } from "../components.js";
import { isWellFormedKey, storeKey } from "../session.js";

export function SignIn({ onSignedIn, version }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const candidate = key.trim();
    if (!isWellFormedKey(candidate)) {
      setError({ message: "An API key is tt_ followed by 48 letters and digits." });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api("/api-keys?per_page=1", { key: candidate });
      storeKey(candidate);
      onSignedIn(candidate);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="signin">
    <h1 tabindex="-1">Sign in</h1>
    <p>Paste an API key. It stays in this browser tab only and is forgotten when the tab closes.</p>
    ${version?.mode === "local" &&
    html`<p class="muted">On the local stack, <code>tt local up</code> prints a link that signs you in, and the key
      is in <code>.tt-local/local.json</code>.</p>`}
    <form onSubmit=${submit}>
      <label for="api-key">API key</label>
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" value=${key}
        onInput=${(e) => setKey(e.currentTarget.value)} placeholder="tt_…" required />
      <button type="submit" disabled=${busy}>${busy ? "Checking…" : "Sign in"}</button>
    </form>
    <${ErrorMessage} error=${error} />
  </section>`;
}
